# conv.mk — build settings of the direct 3x3 convolution kernels (src/core/conv3.c).
#
# Its register-blocked loops (8x3 and 3x9 accumulator arrays) must be fully unrolled so the
# accumulators live in registers: GCC 12 does that at -O3, not -O2. A command-line OPT
# (asan) still wins.
$(BUILD)/obj/src/core/conv3.o: OPT = -O3
