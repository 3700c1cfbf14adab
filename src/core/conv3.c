/* conv3.c — 3x3 stride-1 'same' (padding 1) convolutions computed directly with AVX-512:
 * no im2col matrix, the output and weight gradient held in registers.
 *
 * Each image plane is read as a flat run of pixels, 16 per vector whatever the width, so a
 * 40x40 patch fills every lane. Tap (kh,kw) of the output pixel q reads the input pixel
 * q + (kh-1)*W + (kw-1); the lanes whose tap falls outside the image (the padding, or the
 * neighbouring row across an edge) are masked off, and a masked load touches no memory
 * there. The 9 masks of a vector depend only on its position, so they are computed once per
 * vector and shared by every channel.
 *
 * Forward: a block of 8 output channels x 48 pixels (24 accumulators) runs over every input
 * channel and tap: per step 3 loads, 8 broadcasts (weights repacked so a block's are
 * contiguous), 24 FMAs; bias and activation applied as it is stored. The input gradient is
 * the same kernel with the weights transposed and flipped. The weight gradient holds 3
 * output channels x 9 taps of one input channel (27 accumulators) over the pixels of a
 * group of images that fits in L2, then adds their sums into dw; with input channels in
 * multiples of 16 on narrow rows (training patches) it holds 16 input channels per vector
 * instead, on rows transposed pixel-major (dw_cv: no masks, no horizontal sums).
 *
 * Measured on one core (AVX-512 FMA peak ~240 GFLOP/s), 32 -> 32 channels: forward and
 * input gradient ~190 GFLOP/s in cache, ~165 on a batch of 32 40x40 patches or a 144x144
 * tile; weight gradient ~145 in cache, ~120 on the batch (im2col + sgemm: 66-90); dw_cv on
 * a batch of 16 32x32 images, 64 -> 64 channels: ~139 (dw_all 123), 96 -> 96: ~150 (121).
 *
 * The taps kernel (dae_conv3x3_taps_forward) is the same forward block generalised: a list
 * of up to 9 taps, each a plane and a (dy, dx) shift, over flat runs that hold several
 * small images side by side, with every vector's masks from a table. layers.c runs the
 * forward of stride-2 convolutions (on the 4 polyphase planes of the input), of stride-2
 * transposed ones (4 output phases of 1, 2 or 4 taps) and of stride-1 ones on images too
 * small for fwd_range through it: the shipped 28x28 encoder-decoder went from 46-54 to
 * 110-160 GFLOP/s (im2col + sgemm -> taps). Its blocks hold 24 accumulators in the shape
 * the vectors allow (4x6, 3x8, 2x12, 1x16 vectors x output channels), its taps a loop. */
#include "daed/core/layers.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define C3_X86 1
#include <immintrin.h>
#endif

int dae_conv3x3_supported(void)
{
#ifdef C3_X86
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
    return 0;
#endif
}

#ifdef C3_X86

#define TGT __attribute__((target("avx512f")))
/* the taps kernel also has a bf16 form (vdpbf16ps): its functions may use AVX512-BF16,
 * which they execute only when dae_bf16_supported() */
#define TGT_BF __attribute__((target("avx512f,avx512bf16")))
#define INL static inline __attribute__((always_inline))
/* the accumulator arrays stay in registers only when their loops are fully unrolled; not
 * under clang's sanitizers, where the unrolled, instrumented kernels took clang over 10
 * minutes and 2 GB to compile (the fuzz build) */
#if defined(__clang__) && defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define C3_NO_UNROLL 1
#endif
#endif
#ifdef C3_NO_UNROLL
#define UNROLL
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif

#define FWD_OCB 8 /* output channels per forward block */
#define FWD_NV 3  /* vectors (of 16 pixels) per forward block */
#define FWD_PF (2 * 16 * FWD_NV) /* pixels ahead the forward prefetches */
#define ACC_OCB 16 /* accumulator arrays of the block helpers: output channels ... */
#define ACC_NV 4   /* ... x vectors (at most 24 used; the rest is never touched) */
#define DW_OCB 3  /* output channels per weight-gradient block */
#define DW_CHUNK 4096 /* pixels whose masks the weight gradient computes at once */
#define DW_GROUP (256 * 1024) /* floats of x and dy the weight gradient keeps in L2 */

/* m[t] (t = kh*3 + kw): the lanes l of the vector at flat pixel q0 (in column col0 = q0 % W)
 * whose pixel q0 + l is below qend and whose tap t lies inside the H x W image: from the
 * lanes at the first and last column and in the first and last row, a few bit operations
 * per vector (the callers step col0 along: no division). */
static void tap_masks(uint16_t m[9], int q0, int qend, int H, int W, int col0)
{
    unsigned all = qend - q0 >= 16 ? 0xFFFFu : qend <= q0 ? 0u : (1u << (qend - q0)) - 1u;
    unsigned first = 0, last = 0, top = 0, bottom = 0; /* lanes at col 0, col W-1, ... */
    for (int l = col0 ? W - col0 : 0; l < 16; l += W)
        first |= 1u << l;
    for (int l = W - 1 - col0; l < 16; l += W)
        last |= 1u << l;
    if (q0 < W) /* lanes l < W - q0 lie in row 0 */
        top = W - q0 >= 16 ? 0xFFFFu : (1u << (W - q0)) - 1u;
    int lb = (H - 1) * W - q0; /* lanes l >= lb lie in row H-1 */
    if (lb < 16)
        bottom = lb <= 0 ? 0xFFFFu : 0xFFFFu & ~((1u << lb) - 1u);
    unsigned row[3] = {~top, ~0u, ~bottom}, col[3] = {~first, ~0u, ~last};
    for (int t = 0; t < 9; t++)
        m[t] = (uint16_t)(all & row[t / 3] & col[t % 3]);
}

/* The column of pixel q + 16, from q's. */
static inline int col_next(int col, int W)
{
    col += 16;
    while (col >= W)
        col -= W;
    return col;
}

/* Lanes of the vector at q0 below qend. */
static inline uint16_t tail_mask(int q0, int qend)
{
    int n = qend - q0;
    return n >= 16 ? 0xFFFF : n <= 0 ? 0 : (uint16_t)((1u << n) - 1);
}

TGT INL __m512 act_v(__m512 v, dae_act act, float slope)
{
    if (act == DAE_ACT_RELU)
        return _mm512_max_ps(v, _mm512_setzero_ps());
    if (act == DAE_ACT_LEAKY_RELU) {
        __m512 z = _mm512_setzero_ps();
        return _mm512_add_ps(_mm512_max_ps(v, z),
                             _mm512_mul_ps(_mm512_set1_ps(slope), _mm512_min_ps(v, z)));
    }
    return v;
}

/* The accumulators of a forward block (ocb output channels x nv vectors; constants at the
 * call sites, so the arrays stay in registers) start at the output channels' biases. */
TGT INL void block_init(__m512 (*acc)[ACC_NV], const float *b, int oc0, int ocb, int nv)
{
    UNROLL
    for (int o = 0; o < ocb; o++)
        UNROLL
        for (int v = 0; v < nv; v++)
            acc[o][v] = _mm512_set1_ps(b ? b[oc0 + o] : 0.0f);
}

/* One tap: acc[o][v] += w[o*ws] * xv[v]. */
TGT INL void block_fma(__m512 (*acc)[ACC_NV], const __m512 *xv, const float *w, size_t ws,
                       int ocb, int nv)
{
    UNROLL
    for (int o = 0; o < ocb; o++) {
        __m512 wb = _mm512_set1_ps(w[(size_t)o * ws]);
        UNROLL
        for (int v = 0; v < nv; v++)
            acc[o][v] = _mm512_fmadd_ps(wb, xv[v], acc[o][v]);
    }
}

/* y[o*ld + 16*v ...] = act(acc[o][v]) on the lanes of sm[v]. */
TGT INL void block_store(float *y, size_t ld, __m512 (*acc)[ACC_NV], const uint16_t *sm,
                         int ocb, int nv, dae_act act, float slope)
{
    UNROLL
    for (int o = 0; o < ocb; o++)
        UNROLL
        for (int v = 0; v < nv; v++)
            _mm512_mask_storeu_ps(y + (size_t)o * ld + 16 * v, sm[v],
                                  act_v(acc[o][v], act, slope));
}

/* y[oc0..oc0+ocb) at the FWD_NV vectors from flat pixel i. wp: this block's packed weights,
 * wp[(c*9 + t)*ocb + o]; b may be NULL. mk[t*FWD_NV + v] are the tap masks and sm[v] the
 * store masks. `inner` (a constant): every lane is in rows 1..H-2 and stored, so the taps
 * need only the masks of the first and last column, cm[v] and cm[FWD_NV + v], and those 6
 * stay in mask registers. */
TGT INL void fwd_block(float *y, const float *x, const float *wp, const float *b, int C,
                       int P, int W, int i, const uint16_t *mk, const uint16_t *cm,
                       const uint16_t *sm, int oc0, int ocb, int inner, dae_act act,
                       float slope)
{
    __m512 acc[ACC_OCB][ACC_NV];
    __mmask16 lm[FWD_NV], rm[FWD_NV];
    UNROLL
    for (int v = 0; v < FWD_NV; v++) {
        lm[v] = cm[v];
        rm[v] = cm[FWD_NV + v];
    }
    block_init(acc, b, oc0, ocb, FWD_NV);
    for (int c = 0; c < C; c++) {
        const float *xc = x + (size_t)c * P + i, *wc = wp + (size_t)c * 9 * ocb;
        UNROLL
        for (int t = 0; t < 9; t++) {
            ptrdiff_t off = (ptrdiff_t)(t / 3 - 1) * W + (t % 3 - 1);
            __m512 xv[FWD_NV];
            UNROLL
            for (int v = 0; v < FWD_NV; v++) {
                const float *src = xc + off + 16 * v;
                if (!inner)
                    xv[v] = _mm512_maskz_loadu_ps(mk[t * FWD_NV + v], src);
                else if (t % 3 == 0)
                    xv[v] = _mm512_maskz_loadu_ps(lm[v], src);
                else if (t % 3 == 2)
                    xv[v] = _mm512_maskz_loadu_ps(rm[v], src);
                else
                    xv[v] = _mm512_loadu_ps(src);
            }
            block_fma(acc, xv, wc + t * ocb, 1, ocb, FWD_NV);
        }
    }
    block_store(y + (size_t)oc0 * P + i, (size_t)P, acc, sm, ocb, FWD_NV, act, slope);
}

/* The output-channel blocks of the forward: 8 at a time, then 4, 2, 1. */
static int fwd_ocb(int OC, int oc0)
{
    int r = OC - oc0;
    return r >= 8 ? 8 : r >= 4 ? 4 : r >= 2 ? 2 : 1;
}

/* wp = the (OC, C, 3, 3) weights w, or (flip) those of the convolution that computes the
 * input gradient, (C, OC) swapped and the taps reversed, packed for fwd_block: block by
 * block of output channels, wp[oc0*C*9 + (c*9 + t)*ocb + o]. */
static void pack_weights(float *wp, const float *w, int C, int OC, int flip)
{
    int NO = flip ? C : OC, NI = flip ? OC : C; /* the packed convolution's channels */
    for (int oc0 = 0; oc0 < NO;) {
        int ocb = fwd_ocb(NO, oc0);
        float *blk = wp + (size_t)oc0 * NI * 9;
        for (int o = 0; o < ocb; o++)
            for (int c = 0; c < NI; c++)
                for (int t = 0; t < 9; t++)
                    blk[((size_t)c * 9 + t) * ocb + o] =
                        flip ? w[((size_t)c * C + oc0 + o) * 9 + 8 - t]
                             : w[((size_t)(oc0 + o) * C + c) * 9 + t];
        oc0 += ocb;
    }
}

TGT static void fwd_range(float *y, const float *x, const float *wp, const float *b, int C,
                          int H, int W, int OC, int p0, int p1, dae_act act, float slope)
{
    int P = H * W;
    uint16_t mk[9 * FWD_NV], cm[2 * FWD_NV], sm[FWD_NV];
    for (int i = p0, col = p0 % W; i < p1; i += 16 * FWD_NV) {
        for (int v = 0; v < FWD_NV; v++, col = col_next(col, W)) {
            uint16_t m[9];
            tap_masks(m, i + 16 * v, p1, H, W, col);
            for (int t = 0; t < 9; t++)
                mk[t * FWD_NV + v] = m[t];
            sm[v] = tail_mask(i + 16 * v, p1);
        }
        int end = i + 16 * FWD_NV, inner = i >= W && end <= (H - 1) * W && end <= p1;
        if (inner) /* the masks of the first and last column, of tap (1,0) and (1,2) */
            for (int v = 0; v < FWD_NV; v++) {
                cm[v] = mk[3 * FWD_NV + v];
                cm[FWD_NV + v] = mk[5 * FWD_NV + v];
            }
        /* the input rows a block ahead of time: beyond L2, the hardware prefetchers do not
         * follow the 2*C streams of a block (measured: a batch of 32 40x40 images ran at
         * 60% of the speed of one) */
        for (int c = 0; c < C; c++) {
            const char *pf = (const char *)(x + (size_t)c * P + i + W + FWD_PF);
            for (int l = 0; l < 4 * 16 * FWD_NV + 64; l += 64)
                __builtin_prefetch(pf + l, 0, 3);
        }
        for (int oc = 0; oc < OC; oc++) {
            const char *pf = (const char *)(y + (size_t)oc * P + i + FWD_PF);
            for (int l = 0; l < 4 * 16 * FWD_NV + 64; l += 64)
                __builtin_prefetch(pf + l, 1, 3);
        }
        for (int oc0 = 0; oc0 < OC;) {
            int ocb = fwd_ocb(OC, oc0);
            const float *wb = wp + (size_t)oc0 * C * 9;
            if (ocb == 8 && inner)
                fwd_block(y, x, wb, b, C, P, W, i, mk, cm, sm, oc0, 8, 1, act, slope);
            else if (ocb == 8)
                fwd_block(y, x, wb, b, C, P, W, i, mk, cm, sm, oc0, 8, 0, act, slope);
            else if (ocb == 4)
                fwd_block(y, x, wb, b, C, P, W, i, mk, cm, sm, oc0, 4, 0, act, slope);
            else if (ocb == 2)
                fwd_block(y, x, wb, b, C, P, W, i, mk, cm, sm, oc0, 2, 0, act, slope);
            else
                fwd_block(y, x, wb, b, C, P, W, i, mk, cm, sm, oc0, 1, 0, act, slope);
            oc0 += ocb;
        }
    }
}

/* ---- taps kernel: any list of up to 9 taps over flat runs of side-by-side images ----
 * y (OC, N) from C*NPL input planes of N pixels; tap t reads plane pl[t] of each channel
 * at the pixel offset (dy[t], dx[t]) of the Hp x Wp image grid the run holds. The masks of
 * every vector (mk[v*T + t]) are computed once per call from each lane's row and column
 * in its image, so images of any size (7x7 included) sit side by side in the vectors. */

static void taps_masks(uint16_t *mk, const dae_conv_taps *tp, int Hp, int Wp, size_t N)
{
    size_t nvec = (N + 15) / 16;
    int T = tp->T, r = 0, col = 0;
    memset(mk, 0, nvec * (size_t)T * sizeof *mk);
    for (size_t q = 0; q < N; q++) {
        uint16_t bit = (uint16_t)(1u << (q % 16));
        uint16_t *m = mk + (q / 16) * (size_t)T;
        for (int t = 0; t < T; t++) {
            int rr = r + tp->dy[t], cc = col + tp->dx[t];
            if (rr >= 0 && rr < Hp && cc >= 0 && cc < Wp)
                m[t] |= bit;
        }
        if (++col == Wp) {
            col = 0;
            if (++r == Hp)
                r = 0;
        }
    }
}

/* The taps of one call: tap t reads the input at xo[t] (plane and shift) from a block's
 * first pixel and the weights at wk[t] from its channel's. */
typedef struct {
    int T;
    ptrdiff_t xo[9];
    size_t wk[9];
} taps_tab;

/* One tap in bf16: acc[o][v] += the dot product of the channel pair in each lane of xv[v]
 * with the weight pair at w[o*ws] (vdpbf16ps: 2 multiply-adds per lane, fp32 sums). */
TGT_BF INL void block_dot_bf16(__m512 (*acc)[ACC_NV], const __m512 *xv, const float *w,
                               size_t ws, int ocb, int nv)
{
    UNROLL
    for (int o = 0; o < ocb; o++) {
        uint32_t pair; /* bf16 bits stored as uint32: read as bytes, not as a float */
        memcpy(&pair, w + (size_t)o * ws, sizeof pair);
        __m512bh wb = (__m512bh)_mm512_set1_epi32((int)pair);
        UNROLL
        for (int v = 0; v < nv; v++)
            acc[o][v] = _mm512_dpbf16_ps(acc[o][v], (__m512bh)xv[v], wb);
    }
}

/* The nv vectors from pixel q of output channels oc0..oc0+ocb (nv, ocb, bf constants: the
 * accumulators stay in registers). The taps are a loop, not unrolled: unrolled, GCC
 * shuffled the 24 accumulators between registers every tap (and spilled), and the kernel
 * ran 8-30 % slower. The sums run in conv3's order (bias, then channel by channel, tap by
 * tap), so a stride-1 3x3 convolution gives the same bits here as in fwd_block. bf: x
 * holds channel pairs and w weight pairs (bf16 in 4 bytes, see dae_bf16_pack_*), C counts
 * the pairs. */
TGT_BF INL void taps_block(float *y, const float *x, const float *w, const float *b,
                           const taps_tab *tt, int C, size_t cs, size_t N, size_t wo,
                           size_t wc, size_t q, const uint16_t *mk, int oc0, int ocb, int nv,
                           int bf, dae_act act, float slope)
{
    __m512 acc[ACC_OCB][ACC_NV];
    uint16_t sm[ACC_NV]; /* nv covers only vectors that start below N */
    int T = tt->T;
    UNROLL
    for (int v = 0; v < nv; v++)
        sm[v] = N - q - 16 * v >= 16 ? 0xFFFF : (uint16_t)((1u << (N - q - 16 * v)) - 1u);
    block_init(acc, b, oc0, ocb, nv);
    const float *xc = x + q, *wcp = w + (size_t)oc0 * wo;
    for (int c = 0; c < C; c++, xc += cs, wcp += wc) {
#pragma GCC unroll 1
        for (int t = 0; t < T; t++) {
            const float *src = xc + tt->xo[t];
            __m512 xv[ACC_NV];
            UNROLL
            for (int v = 0; v < nv; v++)
                xv[v] = _mm512_maskz_loadu_ps(mk[v * T + t], src + 16 * v);
            if (bf)
                block_dot_bf16(acc, xv, wcp + tt->wk[t], wo, ocb, nv);
            else
                block_fma(acc, xv, wcp + tt->wk[t], wo, ocb, nv);
        }
    }
    block_store(y + (size_t)oc0 * N + q, N, acc, sm, ocb, nv, act, slope);
}

/* Output channels [oc0, OC) of the nv vectors at q in blocks of ocb, the largest shape
 * first. */
#define TAPS_OCB(NV_, OCB_)                                                                \
    for (; OC - oc0 >= OCB_; oc0 += OCB_)                                                  \
    taps_block(y, x, w, b, tt, C, cs, N, wo, wc, q, m, oc0, OCB_, NV_, bf_, act, slope)

/* Block shapes: 24 accumulators where the vectors allow (4 x 6, 3 x 8, 2 x 12, 1 x 16),
 * so a 7x7 image (49 pixels, 4 vectors) is one block of 4 vectors, not 3 + 1 (measured
 * 96 -> 96 channels, one 7x7 image: 1.2-1.3x faster); runs of 3-vector blocks when the
 * vectors divide by 3 or not by 4. BF_: 0 fp32, 1 bf16 pairs. */
#define TAPS_ALL(NAME, BF_)                                                                \
    TGT_BF static void NAME(float *y, const float *x, const float *w, const float *b,     \
                            const taps_tab *tt, int C, size_t cs, size_t N, int OC,       \
                            size_t wo, size_t wc, const uint16_t *mk, dae_act act,        \
                            float slope)                                                  \
    {                                                                                      \
        enum { bf_ = BF_ };                                                                \
        size_t nvec = (N + 15) / 16;                                                       \
        int nvb = nvec % 4 == 0 && nvec % 3 != 0 ? 4 : 3;                                  \
        for (size_t q = 0; q < N; q += 16 * (size_t)nvb) {                                 \
            const uint16_t *m = mk + q / 16 * (size_t)tt->T;                               \
            size_t left = (N - q + 15) / 16; /* the last block: only the vectors left */   \
            int nv = left >= (size_t)nvb ? nvb : (int)left, oc0 = 0;                       \
            if (nv == 4) {                                                                 \
                TAPS_OCB(4, 6);                                                            \
                TAPS_OCB(4, 4);                                                            \
                TAPS_OCB(4, 2);                                                            \
                TAPS_OCB(4, 1);                                                            \
            } else if (nv == 3) {                                                          \
                TAPS_OCB(3, 8);                                                            \
                TAPS_OCB(3, 4);                                                            \
                TAPS_OCB(3, 2);                                                            \
                TAPS_OCB(3, 1);                                                            \
            } else if (nv == 2) {                                                          \
                TAPS_OCB(2, 12);                                                           \
                TAPS_OCB(2, 4);                                                            \
                TAPS_OCB(2, 2);                                                            \
                TAPS_OCB(2, 1);                                                            \
            } else {                                                                       \
                TAPS_OCB(1, 16);                                                           \
                TAPS_OCB(1, 8);                                                            \
                TAPS_OCB(1, 4);                                                            \
                TAPS_OCB(1, 2);                                                            \
                TAPS_OCB(1, 1);                                                            \
            }                                                                              \
        }                                                                                  \
    }
TAPS_ALL(taps_all, 0)
TAPS_ALL(taps_all_bf16, 1)

/* y (C/2 rounded up, M) channel pairs of x (C, M): lane q of pair k holds x[2k][q] in its
 * low 16 bits and x[2k+1][q] (0 past C) in its high 16, each rounded to bf16 (nearest
 * even, as vcvtneps2bf16). */
TGT_BF static void pairs_bf16(uint32_t *y, const float *x, int C, size_t M)
{
    for (int k = 0; k < (C + 1) / 2; k++) {
        const float *a = x + (size_t)(2 * k) * M, *b = 2 * k + 1 < C ? a + M : NULL;
        uint32_t *d = y + (size_t)k * M;
        for (size_t q = 0; q < M; q += 16) {
            __mmask16 m = M - q >= 16 ? 0xFFFF : (__mmask16)((1u << (M - q)) - 1u);
            __m512 va = _mm512_maskz_loadu_ps(m, a + q);
            __m512 vb = b ? _mm512_maskz_loadu_ps(m, b + q) : _mm512_setzero_ps();
            __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(va));
            __m512i hi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(vb));
            _mm512_mask_storeu_epi32(d + q, m, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
    }
}

/* acc[o][t] += dy[o] * x shifted to tap t over the vectors [v0, v1) of a chunk starting at
 * pixel q0. `inner` (a constant): those vectors lie in rows 1..H-2 and below the chunk's
 * end, so only the first and last column are masked (mk[v*9 + 3], mk[v*9 + 5]). */
TGT INL void dw_run(__m512 (*acc)[9], const float *dyo, const float *xc, int P, int W, int q0,
                    int qend, int v0, int v1, const uint16_t *mk, int ocb, int inner)
{
    for (int v = v0; v < v1; v++) {
        int q = q0 + 16 * v;
        __mmask16 tm = inner ? 0xFFFF : tail_mask(q, qend);
        __mmask16 lm = mk[v * 9 + 3], rm = mk[v * 9 + 5];
        __m512 g[DW_OCB];
        UNROLL
        for (int o = 0; o < ocb; o++)
            g[o] = inner ? _mm512_loadu_ps(dyo + (size_t)o * P + q)
                         : _mm512_maskz_loadu_ps(tm, dyo + (size_t)o * P + q);
        UNROLL
        for (int t = 0; t < 9; t++) {
            const float *src = xc + q + (ptrdiff_t)(t / 3 - 1) * W + (t % 3 - 1);
            /* inner: a plain load (a masked one costs an FMA-port uop on top of its load),
             * the first (last) column's lanes of taps kw = 0 (2) left out by merge-masked
             * FMAs, which leave those accumulators as they are: the same sums as adding
             * the zeros of a masked load (measured, 64 -> 64 channels on a batch of 16
             * 32x32 images: 108-116 -> 119-125 GFLOP/s per cpu-s) */
            __m512 xv = !inner ? _mm512_maskz_loadu_ps(mk[v * 9 + t], src) : _mm512_loadu_ps(src);
            /* one load into a register: left alone, GCC folds an unmasked load into each
             * of the ocb FMAs, and the loads become the bottleneck */
            __asm__("" : "+v"(xv));
            UNROLL
            for (int o = 0; o < ocb; o++)
                acc[o][t] = !inner || t % 3 == 1
                                ? _mm512_fmadd_ps(g[o], xv, acc[o][t])
                                : _mm512_mask3_fmadd_ps(g[o], xv, acc[o][t],
                                                        t % 3 == 0 ? lm : rm);
        }
    }
}

/* dw[oc0..oc0+ocb, c, :, :] += over images [n0, n1) of the nvec vectors of the chunk at q0
 * (vectors [va, vb) inner, see dw_run) */
TGT INL void dw_block(float *dw, const float *dy, const float *x, int n0, int n1, int C, int P,
                      int W, int OC, int q0, int qend, int nvec, int va, int vb,
                      const uint16_t *mk, int oc0, int ocb, int c)
{
    __m512 acc[DW_OCB][9];
    UNROLL
    for (int o = 0; o < ocb; o++)
        UNROLL
        for (int t = 0; t < 9; t++)
            acc[o][t] = _mm512_setzero_ps();
    for (int n = n0; n < n1; n++) {
        const float *xc = x + ((size_t)n * C + c) * P;
        const float *dyo = dy + ((size_t)n * OC + oc0) * P;
        dw_run(acc, dyo, xc, P, W, q0, qend, 0, va, mk, ocb, 0);
        dw_run(acc, dyo, xc, P, W, q0, qend, va, vb, mk, ocb, 1);
        dw_run(acc, dyo, xc, P, W, q0, qend, vb, nvec, mk, ocb, 0);
    }
    UNROLL
    for (int o = 0; o < ocb; o++)
        UNROLL
        for (int t = 0; t < 9; t++)
            dw[((size_t)(oc0 + o) * C + c) * 9 + t] += _mm512_reduce_add_ps(acc[o][t]);
}

/* Pixels in chunks of DW_CHUNK (their masks computed once), images in groups whose chunks
 * of x and dy fit in DW_GROUP floats (L2), then every (3 output channels, input channel)
 * block over the group. */
TGT static void dw_all(float *dw, const float *dy, const float *x, int B, int C, int H, int W,
                       int OC)
{
    int P = H * W;
    uint16_t mk[DW_CHUNK / 16 * 9];
    for (int q0 = 0; q0 < P; q0 += DW_CHUNK) {
        int qend = q0 + DW_CHUNK < P ? q0 + DW_CHUNK : P, nvec = (qend - q0 + 15) / 16;
        for (int v = 0, col = q0 % W; v < nvec; v++, col = col_next(col, W))
            tap_masks(mk + v * 9, q0 + 16 * v, qend, H, W, col);
        /* inner vectors: from the first at or after pixel W + 1 to the last ending by
         * pixel (H-1)*W - 1 and by qend, so that the plain loads of their taps stay
         * within the plane */
        int lo = W + 1 - q0, hi = ((H - 1) * W - 1 < qend ? (H - 1) * W - 1 : qend) - q0;
        int va = lo <= 0 ? 0 : (lo + 15) / 16, vb = hi <= 0 ? 0 : hi / 16;
        va = va > nvec ? nvec : va;
        vb = vb < va ? va : vb;
        size_t per = (size_t)(C + OC) * (size_t)(qend - q0);
        int G = per >= DW_GROUP ? 1 : (int)(DW_GROUP / per);
        for (int n0 = 0; n0 < B; n0 += G) {
            int n1 = n0 + G < B ? n0 + G : B;
            for (int oc0 = 0; oc0 < OC;) {
                int ocb = OC - oc0 >= 3 ? 3 : OC - oc0;
                for (int c = 0; c < C; c++)
                    if (ocb == 3)
                        dw_block(dw, dy, x, n0, n1, C, P, W, OC, q0, qend, nvec, va, vb, mk,
                                 oc0, 3, c);
                    else if (ocb == 2)
                        dw_block(dw, dy, x, n0, n1, C, P, W, OC, q0, qend, nvec, va, vb, mk,
                                 oc0, 2, c);
                    else
                        dw_block(dw, dy, x, n0, n1, C, P, W, OC, q0, qend, nvec, va, vb, mk,
                                 oc0, 1, c);
                oc0 += ocb;
            }
        }
    }
}

/* ---- weight gradient with 16 input channels in each vector ----
 * For C a multiple of 16 on rows narrow enough for a ring of 4 transposed rows in
 * CV_RING floats (the training patches: 32x32 at 64 or 96 channels): each image row of x
 * is transposed once, pixel-major with a zero column either side, into a ring of 3 rows
 * (plus a zero row for the padding above and below), so that every tap of every pixel is
 * an aligned load of 16 channels: no masks, no split loads, no horizontal sums. A block
 * holds 3 output channels x 9 taps of one vector of channels (27 accumulators) over a
 * row, kept between rows in acc (OC, 9, C); dw gets acc's sums at the end. Each sum runs
 * pixel by pixel in one lane (dw_all: 16 lanes, then their sum), so dw differs from
 * dw_all's by float rounding. */
#define CV_RING (16 * 1024)

static int dw_cv_fits(int C, int W)
{
    return C % 16 == 0 && (size_t)4 * ((size_t)W + 2) * (size_t)C <= CV_RING;
}

/* r[k] = lane k of r[0..16) (a 16x16 transpose: 64 shuffles) */
TGT INL void transpose16(__m512 *r)
{
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);
        t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xdd);
        t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
        t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xdd);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
        r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
        r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xdd);
    }
}

/* d (W+2, C) = row r of the C planes of x (plane stride P), zero columns 0 and W+1; d is
 * 64-byte aligned, C a multiple of 16: 16x16 blocks transposed in registers */
TGT static void cv_row(float *d, const float *x, int C, size_t P, int W, int r)
{
    memset(d, 0, (size_t)C * sizeof *d);
    memset(d + (size_t)(W + 1) * C, 0, (size_t)C * sizeof *d);
    for (int c0 = 0; c0 < C; c0 += 16)
        for (int j0 = 0; j0 < W; j0 += 16) {
            int n = W - j0 < 16 ? W - j0 : 16;
            __mmask16 m = (__mmask16)((1u << n) - 1u);
            __m512 v[16];
            for (int i = 0; i < 16; i++)
                v[i] = _mm512_maskz_loadu_ps(m, x + (size_t)(c0 + i) * P + (size_t)r * W + j0);
            transpose16(v);
            for (int k = 0; k < n; k++)
                _mm512_store_ps(d + (size_t)(j0 + k + 1) * C + c0, v[k]);
        }
}

/* acc[(o*9 + t)*C + 16*cv ...] += over the row's W pixels j of dyr[o*P + j] times tap t
 * of channels 16*cv.. at pixel j: rows[kh] + (j + kw)*C. */
TGT INL void cv_block(float *acc, const float *const *rows, const float *dyr, size_t P, int W,
                      int C, int cv, int ocb)
{
    __m512 a[DW_OCB][9];
    UNROLL
    for (int o = 0; o < ocb; o++)
        UNROLL
        for (int t = 0; t < 9; t++)
            a[o][t] = _mm512_loadu_ps(acc + ((size_t)o * 9 + t) * C + 16 * cv);
    for (int j = 0; j < W; j++) {
        __m512 g[DW_OCB];
        UNROLL
        for (int o = 0; o < ocb; o++)
            g[o] = _mm512_set1_ps(dyr[(size_t)o * P + j]);
        UNROLL
        for (int t = 0; t < 9; t++) {
            __m512 xv = _mm512_load_ps(rows[t / 3] + (size_t)(j + t % 3) * C + 16 * cv);
            __asm__("" : "+v"(xv)); /* one load for the ocb FMAs, as in dw_run */
            UNROLL
            for (int o = 0; o < ocb; o++)
                a[o][t] = _mm512_fmadd_ps(g[o], xv, a[o][t]);
        }
    }
    UNROLL
    for (int o = 0; o < ocb; o++)
        UNROLL
        for (int t = 0; t < 9; t++)
            _mm512_storeu_ps(acc + ((size_t)o * 9 + t) * C + 16 * cv, a[o][t]);
}

/* dw += the weight gradient of B images (dw_cv_fits(C, W)); acc: C*OC*9 floats */
TGT static void dw_cv(float *dw, const float *dy, const float *x, float *acc, int B, int C,
                      int H, int W, int OC)
{
    float ring[CV_RING] __attribute__((aligned(64)));
    size_t P = (size_t)H * W, rs = ((size_t)W + 2) * (size_t)C;
    float *zero = ring + 3 * rs;
    memset(zero, 0, rs * sizeof *zero);
    memset(acc, 0, (size_t)OC * 9 * C * sizeof *acc);
    for (int n = 0; n < B; n++) {
        const float *xn = x + (size_t)n * C * P, *dyn = dy + (size_t)n * OC * P;
        cv_row(ring, xn, C, P, W, 0);
        for (int r = 0; r < H; r++) {
            if (r + 1 < H) /* over the slot of row r - 2 */
                cv_row(ring + (size_t)((r + 1) % 3) * rs, xn, C, P, W, r + 1);
            const float *rows[3] = {r > 0 ? ring + (size_t)((r + 2) % 3) * rs : zero,
                                    ring + (size_t)(r % 3) * rs,
                                    r + 1 < H ? ring + (size_t)((r + 1) % 3) * rs : zero};
            for (int oc0 = 0; oc0 < OC;) {
                int ocb = OC - oc0 >= 3 ? 3 : OC - oc0;
                float *ab = acc + (size_t)oc0 * 9 * C;
                const float *dyr = dyn + (size_t)oc0 * P + (size_t)r * W;
                for (int cv = 0; cv < C / 16; cv++)
                    if (ocb == 3)
                        cv_block(ab, rows, dyr, P, W, C, cv, 3);
                    else if (ocb == 2)
                        cv_block(ab, rows, dyr, P, W, C, cv, 2);
                    else
                        cv_block(ab, rows, dyr, P, W, C, cv, 1);
                oc0 += ocb;
            }
        }
    }
    for (int o = 0; o < OC; o++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < 9; t++)
                dw[((size_t)o * C + c) * 9 + t] += acc[((size_t)o * 9 + t) * C + c];
}

#endif /* C3_X86 */

void dae_conv3x3_forward_rows(float *out, const float *in, const float *w, const float *b,
                              float *scratch, const dae_conv_geom *g, int oh0, int oh1,
                              dae_act act, float slope)
{
#ifdef C3_X86
    int C = g->C, H = g->H, W = g->W, OC = g->OC;
    pack_weights(scratch, w, C, OC, 0);
    int fused = act == DAE_ACT_IDENTITY || act == DAE_ACT_RELU || act == DAE_ACT_LEAKY_RELU;
    fwd_range(out, in, scratch, b, C, H, W, OC, oh0 * W, oh1 * W,
              fused ? act : DAE_ACT_IDENTITY, slope);
    if (!fused) /* tanh, sigmoid: over the rows just written */
        for (int o = 0; o < OC; o++) {
            float *y = out + ((size_t)o * H + oh0) * W;
            dae_act_forward(y, y, (size_t)(oh1 - oh0) * W, act, slope);
        }
#endif
}

size_t dae_conv3x3_scratch_size(int C, int OC)
{
    return (size_t)C * OC * 9;
}

void dae_conv3x3_backward(float *din, float *dw, const float *dout, const float *in,
                          const float *w, float *scratch, const dae_conv_geom *g)
{
#ifdef C3_X86
    int B = g->B, C = g->C, H = g->H, W = g->W, OC = g->OC;
    if (dw && dw_cv_fits(C, W)) /* scratch: the accumulators, then the packed weights */
        dw_cv(dw, dout, in, scratch, B, C, H, W, OC);
    else if (dw)
        dw_all(dw, dout, in, B, C, H, W, OC);
    if (!din)
        return;
    /* din = conv(dout) with wt(C, OC, 3, 3) = w(OC, C, 2-kh, 2-kw) */
    pack_weights(scratch, w, C, OC, 1);
    size_t P = (size_t)H * W;
    for (int n = 0; n < B; n++)
        fwd_range(din + (size_t)n * C * P, dout + (size_t)n * OC * P, scratch, NULL, OC, H, W,
                  C, 0, H * W, DAE_ACT_IDENTITY, 0.0f);
#endif
}

int dae_bf16_supported(void)
{
#ifdef C3_X86
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

/* f rounded to bf16, nearest even (NaN stays a quiet NaN) */
static uint32_t bf16_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u)
        return (u >> 16) | 0x40u;
    return (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
}

size_t dae_bf16_weights_size(int C, int OC)
{
    return (size_t)((C + 1) / 2) * 9 * (size_t)OC;
}

void dae_bf16_pack_weights(uint32_t *wb, const float *w, int C, int OC, int transposed)
{
    for (int k = 0; k < (C + 1) / 2; k++)
        for (int t = 0; t < 9; t++)
            for (int o = 0; o < OC; o++) {
                uint32_t pair = 0;
                for (int h = 0; h < 2 && 2 * k + h < C; h++) {
                    int c = 2 * k + h;
                    size_t i = transposed ? ((size_t)c * OC + o) * 9 + t
                                          : ((size_t)o * C + c) * 9 + t;
                    pair |= bf16_bits(w[i]) << (16 * h);
                }
                wb[((size_t)k * 9 + t) * OC + o] = pair;
            }
}

void dae_bf16_pack_pairs(uint32_t *xb, const float *x, int C, size_t M)
{
#ifdef C3_X86
    pairs_bf16(xb, x, C, M);
#endif
}

#ifdef C3_X86
/* Masks, tap table, kernel and the unfused activation of either form. C: channels (bf16:
 * channel pairs) of cs floats each; tap t's weights at wt[t] * wk (times OC when packed). */
static void taps_run(float *y, const float *x, const float *w, const float *b,
                     const dae_conv_taps *tp, int C, size_t cs, size_t wo, size_t wc,
                     size_t wk, int bf, float *scratch, dae_act act, float slope)
{
    int Hp = tp->Hp, Wp = tp->Wp, OC = tp->OC;
    size_t N = tp->N;
    uint16_t *mk = (uint16_t *)scratch;
    taps_masks(mk, tp, Hp, Wp, N);
    taps_tab tt = {.T = tp->T};
    for (int t = 0; t < tp->T; t++) {
        tt.xo[t] = (ptrdiff_t)tp->pl[t] * (ptrdiff_t)N + tp->off[t];
        tt.wk[t] = (size_t)tp->wt[t] * wk;
    }
    int fused = act == DAE_ACT_IDENTITY || act == DAE_ACT_RELU || act == DAE_ACT_LEAKY_RELU;
    dae_act fa = fused ? act : DAE_ACT_IDENTITY;
    if (bf)
        taps_all_bf16(y, x, w, b, &tt, C, cs, N, OC, wo, wc, mk, fa, slope);
    else
        taps_all(y, x, w, b, &tt, C, cs, N, OC, wo, wc, mk, fa, slope);
    if (!fused)
        for (int o = 0; o < OC; o++)
            dae_act_forward(y + (size_t)o * N, y + (size_t)o * N, N, act, slope);
}
#endif

void dae_conv3x3_taps_forward_bf16(float *y, const uint32_t *xb, const uint32_t *wb,
                                   const float *b, const dae_conv_taps *tp, float *scratch,
                                   dae_act act, float slope)
{
#ifdef C3_X86
    /* the pairs travel through the kernel's float pointers: its vector loads may alias
     * anything, and block_dot_bf16 reads the weights with memcpy */
    size_t OC = (size_t)tp->OC;
    taps_run(y, (const float *)(const void *)xb, (const float *)(const void *)wb, b, tp,
             (tp->C + 1) / 2, (size_t)tp->NPL * tp->N, 1, 9 * OC, OC, 1, scratch, act, slope);
#endif
}

size_t dae_conv3x3_taps_scratch(size_t N, int T)
{
    /* the mask table (uint16 per vector and tap), in whole floats */
    return ((N + 15) / 16 * (size_t)T + 1) / 2;
}

void dae_conv3x3_taps_forward(float *y, const float *x, const float *w, const float *b,
                              const dae_conv_taps *tp, float *scratch, dae_act act,
                              float slope)
{
#ifdef C3_X86
    taps_run(y, x, w, b, tp, tp->C, (size_t)tp->NPL * tp->N, tp->wo, tp->wc, 1, 0, scratch,
             act, slope);
#endif
}
