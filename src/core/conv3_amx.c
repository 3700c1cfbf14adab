/* conv3_amx.c — 3x3 stride-1 padding-1 convolutions in bf16 on Intel AMX tiles.
 *
 * The bf16 form of conv3 for the large convolutions of photo models (layers.c routes them
 * here when the workspace runs bf16): AVX512-BF16's vdpbf16ps issues on one port where
 * fp32 FMAs issue on two, so the taps kernel's bf16 form ran 0.6-0.7x the speed of conv3
 * in fp32 on photo-ffd-rgb (bench/precision); a tile multiply (tdpbf16ps) does 16x16x32
 * multiply-adds at once.
 *
 * The convolution as 9 shifted matrix products per 32-channel chunk, no im2col: the input
 * goes once into channel-pair planes (lane q of pair k = bf16 x[2k][q] | x[2k+1][q] << 16,
 * AMX's "VNNI" layout) with a zero border of one pixel around the image (rows [oh0-1,
 * oh1], columns -1..W), so tap (dy, dx) of the pixel at flat position q of the padded
 * plane is position q + dy*(W+2) + dx, whatever the row. An accumulator tile C (16 output
 * channels x 16 consecutive padded positions) gets, per tap and chunk, A (16 output
 * channels x 32 input channels of the tap's weights) times B (16 channel pairs x those
 * positions shifted by the tap: a 16-row load, one row per pair plane). The positions in
 * the border columns are computed and dropped: vcompressps stores the others, which are
 * consecutive output pixels. Blocks of 2 x 2 accumulators (32 output channels x 32
 * positions) use 8 tile registers: C 0-3, B 4-5, A 6-7.
 *
 * layers.c takes it only from 8 channels in and out: photo-denoise-rgb's 1 -> 48 and 48 -> 1
 * convolutions on a 152x152 tile took 0.60 and 0.89 ms here against 0.37 and 0.69 ms in
 * fp32 conv3 (eval/photos --layers), where photo-ffd-rgb's 16 -> 96 and 96 -> 12 on 88x88
 * took 0.73 and 0.47 ms against 1.42 and 1.14.
 *
 * Rounding as the taps kernel's bf16 form: inputs and weights to bf16, nearest even, the
 * products summed in fp32 (in another order: results differ from it in the last bits).
 *
 * Between two such convolutions of one image (inference, model_run.c; channels multiples
 * of 16, layers.c dae_conv2d_pairs_ok) the activation can
 * stay in the pair planes: the first stores its output tiles as the second's planes
 * (store_pairs: bias, activation, bf16 pairs, zero at the border positions, full 16-lane
 * stores) and the second reads them as they are, with no fp32 planes written (16 64-byte
 * compress-stores per accumulator tile, to 16 planes) and re-read and packed (pack_b).
 * Skipping those stores alone took a 64 -> 64 convolution of a 162x162 tile from 2.77 to
 * 1.89 ms (eval/photos --layers, an experiment). The values are the same bf16 roundings
 * of the same fp32 sums, so the output is the same to the bit.
 *
 * Training (mixed precision, layers.h): the forward and the input gradient (the same
 * convolution of the output gradient, channels swapped and taps flipped) from A tiles
 * packed once per optimizer step by dae_amx_pack_tiles, no per-call regrouping; the weight
 * gradient by its own kernel (below). On photo-dncnn's 64 -> 64 convolutions on a batch
 * of 16 48x48 patches (one thread's share), under load: forward 4.1-4.2 ms, input gradient
 * 5.0, weight gradient 5.9-6.2 against 17.5-20.6, 17.2-27.0 and 18.5-18.9 in fp32 conv3. */
#include "daed/core/layers.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#define AMX_X86 1
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define AMX_KC 32 /* input channels per chunk (one A tile row, 64 bytes of bf16) */
#define AMX_OB 16 /* output channels per accumulator tile */
#define AMX_NP 16 /* padded positions per accumulator tile */
#define AMX_SLACK 64 /* zero positions after each pair plane: the last block reads past */

#ifdef AMX_X86
#define TGT_AMX __attribute__((target("avx512f,avx512bf16,amx-tile,amx-bf16")))

static int amx_ok;

/* CPUID leaf 7: AMX-BF16 (EDX bit 22) and AMX-TILE (bit 24); then the kernel's permission
 * to use the tile data state (Linux 5.16+: arch_prctl ARCH_REQ_XCOMP_PERM, XTILEDATA),
 * asked once for the process. */
static void amx_probe(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 22)) || !(d & (1u << 24)))
        return;
    if (!dae_bf16_supported())
        return;
    amx_ok = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
}
#endif

int dae_amx_supported(void)
{
#ifdef AMX_X86
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, amx_probe);
    return amx_ok;
#else
    return 0;
#endif
}

/* Channels rounded up to whole chunks, output channels to whole tiles. */
static size_t round_up(size_t n, size_t m)
{
    return (n + m - 1) / m * m;
}

/* Positions of one pair plane for output rows [oh0, oh0 + R). */
static size_t pair_plane(int R, int W)
{
    return (size_t)(R + 2) * (size_t)(W + 2) + AMX_SLACK;
}

size_t dae_conv3x3_amx_scratch(const dae_conv_geom *g)
{
    int C = g->C, H = g->H, W = g->W, OC = g->OC;
    size_t Cp = round_up((size_t)C, AMX_KC), OCp = round_up((size_t)OC, AMX_OB);
    /* the pair planes (uint32), the weights (bf16, as halves of floats), 4 accumulator
     * tiles' worth of floats, 16 floats to align the tiles to 64 bytes */
    return Cp / 2 * pair_plane(H, W) + OCp * 9 * Cp / 2 + 4 * AMX_OB * AMX_NP + 16;
}

#ifdef AMX_X86
typedef struct {
    uint8_t palette, start;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

/* wa: the A tiles, tile (ob, t, kc) at ((ob*9 + t)*KC + kc) * 512: row o, columns 2i and
 * 2i+1 = the bf16 pair i of chunk kc (channels kc*32 + 2i, +1) of output channel ob*16 + o
 * at tap t, taken from wb (dae_bf16_pack_weights: pair k of tap t and output o at
 * (k*9 + t)*OC + o); 0 past OC or the pairs. A gather, no rounding: copying from the
 * workspace's bf16 weights took the per-call repacking from fp32 off the convolution. */
static void pack_a(uint16_t *wa, const uint32_t *wb, int C, int OC, int KC, int OB)
{
    int pairs = (C + 1) / 2;
    for (int ob = 0; ob < OB; ob++)
        for (int t = 0; t < 9; t++)
            for (int kc = 0; kc < KC; kc++) {
                uint16_t *tile = wa + ((size_t)(ob * 9 + t) * KC + kc) * AMX_OB * AMX_KC;
                for (int o = 0; o < AMX_OB; o++)
                    for (int i = 0; i < AMX_KC / 2; i++) {
                        int oc = ob * AMX_OB + o, k = kc * (AMX_KC / 2) + i;
                        uint32_t pr =
                            oc < OC && k < pairs ? wb[((size_t)k * 9 + t) * OC + oc] : 0;
                        tile[o * AMX_KC + 2 * i] = (uint16_t)(pr & 0xFFFFu);
                        tile[o * AMX_KC + 2 * i + 1] = (uint16_t)(pr >> 16);
                    }
            }
}

/* xp: Cp/2 pair planes of `plane` positions, row r of plane k = input row oh0 - 1 + r of
 * channels 2k and 2k+1 between zero columns (zero rows outside the image, zero planes
 * past C). */
TGT_AMX static void pack_b(uint32_t *xp, const float *x, int C, int H, int W, int oh0, int R,
                           int Cp, size_t plane)
{
    int Wp = W + 2;
    size_t P = (size_t)H * W;
    for (int k = 0; k < Cp / 2; k++) {
        uint32_t *d = xp + (size_t)k * plane;
        memset(d, 0, plane * sizeof *d);
        if (2 * k >= C)
            continue;
        const float *a = x + (size_t)(2 * k) * P, *b = 2 * k + 1 < C ? a + P : NULL;
        for (int r = 0; r < R + 2; r++) {
            int ih = oh0 - 1 + r;
            if (ih < 0 || ih >= H)
                continue;
            uint32_t *dr = d + (size_t)r * Wp + 1;
            const float *ar = a + (size_t)ih * W, *br = b ? b + (size_t)ih * W : NULL;
            for (int j = 0; j < W; j += 16) {
                __mmask16 m = W - j >= 16 ? 0xFFFF : (__mmask16)((1u << (W - j)) - 1u);
                __m512 va = _mm512_maskz_loadu_ps(m, ar + j);
                __m512 vb = br ? _mm512_maskz_loadu_ps(m, br + j) : _mm512_setzero_ps();
                __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(va));
                __m512i hi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(vb));
                _mm512_mask_storeu_epi32(dr + j, m, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
            }
        }
    }
}

/* The lanes of the 16 positions from q0 that are output pixels (rows 1..R, columns 1..W
 * of the padded plane, before qe), and the output index of the first (*first; the others
 * follow it: the border positions between them are not pixels). */
static __mmask16 run_mask(long q0, long qe, int W, int R, int oh0, size_t *first)
{
    int Wp = W + 2;
    __mmask16 m = 0;
    for (int l = 15; l >= 0; l--) {
        long q = q0 + l, row = q / Wp, col = q % Wp;
        if (q < qe && row >= 1 && row <= R && col >= 1 && col <= W) {
            m |= (__mmask16)(1u << l);
            *first = (size_t)(oh0 + row - 1) * W + (size_t)(col - 1);
        }
    }
    return m;
}

/* accumulator row v + bias, then the activation the stores apply (identity, ReLU, leaky) */
TGT_AMX static inline __m512 bias_act(__m512 v, const float *b, int oc, dae_act act,
                                      __m512 sl)
{
    __m512 z = _mm512_setzero_ps();
    if (b)
        v = _mm512_add_ps(v, _mm512_set1_ps(b[oc]));
    if (act == DAE_ACT_RELU)
        v = _mm512_max_ps(v, z);
    else if (act == DAE_ACT_LEAKY_RELU)
        v = _mm512_add_ps(_mm512_max_ps(v, z), _mm512_mul_ps(sl, _mm512_min_ps(v, z)));
    return v;
}

/* y[oc][...] = act(c[o][lanes of m] + b[oc]) for the 16 output channels from oc0 */
TGT_AMX static void store_tile(float *y, const float *c, const float *b, int oc0, int OC,
                               size_t P, __mmask16 m, size_t first, dae_act act, float slope)
{
    if (!m)
        return;
    __m512 sl = _mm512_set1_ps(slope);
    for (int o = 0; o < AMX_OB && oc0 + o < OC; o++) {
        __m512 v = bias_act(_mm512_loadu_ps(c + o * AMX_NP), b, oc0 + o, act, sl);
        _mm512_mask_compressstoreu_ps(y + (size_t)(oc0 + o) * P + first, m, v);
    }
}

/* The 16 positions from q0 of the next layer's pair planes yp (pack_b's layout, all rows
 * of the image): pair k of output channels 2k, 2k+1 = act(c + b) rounded to bf16 at the
 * pixels (lanes of m), 0 at the border positions. The 16 output channels from oc0, all
 * there (OC a multiple of 16: dae_conv2d_pairs_ok, layers.c). */
TGT_AMX static void store_pairs(uint32_t *yp, const float *c, const float *b, int oc0,
                                size_t plane, __mmask16 m, long q0, dae_act act, float slope)
{
    __m512 sl = _mm512_set1_ps(slope);
    for (int o = 0; o < AMX_OB; o += 2) {
        __m512 lo = bias_act(_mm512_loadu_ps(c + o * AMX_NP), b, oc0 + o, act, sl);
        __m512 hi = bias_act(_mm512_loadu_ps(c + (o + 1) * AMX_NP), b, oc0 + o + 1, act, sl);
        __m512i l = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(lo));
        __m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(hi));
        _mm512_storeu_si512(yp + (size_t)((oc0 + o) / 2) * plane + q0,
                            _mm512_maskz_or_epi32(m, l, _mm512_slli_epi32(h, 16)));
    }
}

/* Accumulators C 0..3 = (output tiles ob, ob+1) x (positions q0, q0+16) over the 9 taps
 * and KC chunks. `two`: ob+1 exists (a constant at the call sites). */
TGT_AMX static inline __attribute__((always_inline)) void
block(const uint32_t *xp, const uint16_t *wa, size_t plane, const ptrdiff_t *off, int KC,
      long q0, int ob, int two)
{
    size_t xs = plane * sizeof *xp, ws = (size_t)9 * KC * AMX_OB * AMX_KC;
    _tile_zero(0);
    _tile_zero(1);
    if (two) {
        _tile_zero(2);
        _tile_zero(3);
    }
    for (int t = 0; t < 9; t++)
        for (int kc = 0; kc < KC; kc++) {
            const uint32_t *src = xp + (size_t)kc * (AMX_KC / 2) * plane + q0 + off[t];
            const uint16_t *a = wa + ((size_t)(ob * 9 + t) * KC + kc) * AMX_OB * AMX_KC;
            _tile_loadd(4, src, xs);
            _tile_loadd(5, src + AMX_NP, xs);
            _tile_loadd(6, a, AMX_KC * 2);
            _tile_dpbf16ps(0, 6, 4);
            _tile_dpbf16ps(1, 6, 5);
            if (two) {
                _tile_loadd(7, a + ws, AMX_KC * 2);
                _tile_dpbf16ps(2, 7, 4);
                _tile_dpbf16ps(3, 7, 5);
            }
        }
}

/* The tile configuration of amx_rows: 8 tiles of 16 rows of 64 bytes. */
TGT_AMX static void amx_config_load(void)
{
    amx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.colsb[i] = 64;
        cfg.rows[i] = 16;
    }
    _tile_loadconfig(&cfg);
}

/* Where amx_rows reads its input and writes its output: x as fp32 planes (packed into
 * pair planes per call) or xin as pair planes already; y as fp32 planes or yp as the next
 * layer's pair planes (then all rows: oh0 = 0, oh1 = H). */
typedef struct {
    float *y;
    uint32_t *yp;
    const float *x;
    const uint32_t *xin;
} amx_io;

/* One block of positions (q0, 32 of them) and output tiles (ob, ob + 1 if two) out of the
 * accumulators: bias, activation, stored as io says. */
TGT_AMX static void store_block(const amx_io *io, float *cbuf, const float *b, int ob,
                                int two, const dae_conv_geom *g, size_t plane, long q0,
                                const __mmask16 m[2], const size_t f[2], dae_act act,
                                float slope)
{
    size_t P = (size_t)g->H * g->W;
    for (int k = 0; k < 1 + two; k++) {
        int oc0 = (ob + k) * AMX_OB;
        if (k == 0) { /* tile numbers are immediates */
            _tile_stored(0, cbuf, 64);
            _tile_stored(1, cbuf + 256, 64);
        } else {
            _tile_stored(2, cbuf, 64);
            _tile_stored(3, cbuf + 256, 64);
        }
        for (int h = 0; h < 2; h++) {
            if (io->yp)
                store_pairs(io->yp, cbuf + 256 * h, b, oc0, plane, m[h], q0 + h * AMX_NP, act,
                            slope);
            else
                store_tile(io->y, cbuf + 256 * h, b, oc0, g->OC, P, m[h], f[h], act, slope);
        }
    }
}

/* Output rows [oh0, oh1) with the A tiles wa (pack_a's layout); scratch: the accumulator
 * buffer, then the pair planes (unused when io->xin has them). */
TGT_AMX static void amx_rows(const amx_io *io, const uint16_t *wa, const float *b,
                             float *scratch, const dae_conv_geom *g, int oh0, int oh1,
                             dae_act act, float slope)
{
    int C = g->C, H = g->H, W = g->W, OC = g->OC;
    int R = oh1 - oh0, Wp = W + 2, KC = (int)(round_up((size_t)C, AMX_KC) / AMX_KC);
    int OB = (int)(round_up((size_t)OC, AMX_OB) / AMX_OB);
    size_t plane = pair_plane(R, W);
    float *cbuf = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    const uint32_t *xp = io->xin;
    if (!xp) {
        uint32_t *pk = (uint32_t *)(void *)(cbuf + 4 * AMX_OB * AMX_NP);
        pack_b(pk, io->x, C, H, W, oh0, R, KC * AMX_KC, plane);
        xp = pk;
    }
    ptrdiff_t off[9];
    for (int t = 0; t < 9; t++)
        off[t] = (ptrdiff_t)(t / 3 - 1) * Wp + (t % 3 - 1);
    amx_config_load();
    long qs = Wp + 1, qe = (long)R * Wp + W + 1; /* the first and past the last pixel */
    long q0 = qs;
    for (; q0 < qe; q0 += 2 * AMX_NP) {
        __mmask16 m[2];
        size_t f[2] = {0, 0};
        m[0] = run_mask(q0, qe, W, R, oh0, &f[0]);
        m[1] = run_mask(q0 + AMX_NP, qe, W, R, oh0, &f[1]);
        for (int ob = 0; ob < OB; ob += 2) {
            int two = ob + 1 < OB;
            if (two)
                block(xp, wa, plane, off, KC, q0, ob, 1);
            else
                block(xp, wa, plane, off, KC, q0, ob, 0);
            store_block(io, cbuf, b, ob, two, g, plane, q0, m, f, act, slope);
        }
    }
    _tile_release();
    if (io->yp) { /* the positions no block wrote: before the first pixel, past the last
                   * block; and the planes past OC up to the next layer's whole chunks
                   * (its weights are zero there, but stale bits could read as NaN) */
        for (int k = 0; k < OC / 2; k++) {
            uint32_t *d = io->yp + (size_t)k * plane;
            memset(d, 0, (size_t)qs * sizeof *d);
            memset(d + q0, 0, (plane - (size_t)q0) * sizeof *d);
        }
        size_t past = round_up((size_t)OC, AMX_KC) / 2 - (size_t)OC / 2;
        memset(io->yp + (size_t)OC / 2 * plane, 0, past * plane * sizeof *io->yp);
    }
}

/* amx_rows, then the activations the stores do not apply (tanh, sigmoid) over its rows */
static void amx_forward(float *out, const float *in, const uint16_t *wa, const float *b,
                        float *scratch, const dae_conv_geom *g, int oh0, int oh1, dae_act act,
                        float slope)
{
    int H = g->H, W = g->W, OC = g->OC;
    int fused = act == DAE_ACT_IDENTITY || act == DAE_ACT_RELU || act == DAE_ACT_LEAKY_RELU;
    amx_io io = {.y = out, .x = in};
    amx_rows(&io, wa, b, scratch, g, oh0, oh1, fused ? act : DAE_ACT_IDENTITY, slope);
    if (!fused) /* tanh, sigmoid: over the rows just written */
        for (int o = 0; o < OC; o++) {
            float *y = out + ((size_t)o * H + oh0) * W;
            dae_act_forward(y, y, (size_t)(oh1 - oh0) * W, act, slope);
        }
}
#endif

#ifdef AMX_X86
/* The A tiles of wb packed into scratch after the accumulators and the pair planes of rows
 * oh0..oh1 (amx_rows' part of it); returns them. */
static const uint16_t *scratch_tiles(float *scratch, const uint32_t *wb, const dae_conv_geom *g,
                                     int oh0, int oh1)
{
    int KC = (int)(round_up((size_t)g->C, AMX_KC) / AMX_KC);
    int OB = (int)(round_up((size_t)g->OC, AMX_OB) / AMX_OB);
    float *cbuf = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    uint32_t *xp = (uint32_t *)(void *)(cbuf + 4 * AMX_OB * AMX_NP);
    uint16_t *wa = (uint16_t *)(void *)(xp + (size_t)KC * (AMX_KC / 2) *
                                                 pair_plane(oh1 - oh0, g->W));
    pack_a(wa, wb, g->C, g->OC, KC, OB);
    return wa;
}
#endif

void dae_conv3x3_forward_amx(float *out, const float *in, const uint32_t *wb, const float *b,
                             float *scratch, const dae_conv_geom *g, int oh0, int oh1,
                             dae_act act, float slope)
{
#ifdef AMX_X86
    amx_forward(out, in, scratch_tiles(scratch, wb, g, oh0, oh1), b, scratch, g, oh0, oh1, act,
                slope);
#endif
}

size_t dae_conv3x3_amx_pairs_size(int C, int H, int W)
{
    return round_up((size_t)C, AMX_KC) / 2 * pair_plane(H, W);
}

void dae_conv3x3_forward_amx_pairs(float *out, uint32_t *yp, const float *in,
                                   const uint32_t *xin, const uint32_t *wb, const float *b,
                                   float *scratch, const dae_conv_geom *g, dae_act act,
                                   float slope)
{
#ifdef AMX_X86
    amx_io io = {.y = out, .yp = yp, .x = in, .xin = xin};
    amx_rows(&io, scratch_tiles(scratch, wb, g, 0, g->H), b, scratch, g, 0, g->H, act, slope);
#endif
}

size_t dae_amx_tiles_size(int C, int OC)
{
    return round_up((size_t)OC, AMX_OB) * 9 * round_up((size_t)C, AMX_KC);
}

/* f rounded to bf16, nearest even, as conv3.c's dae_bf16_pack_weights (NaN stays NaN) */
static uint16_t bf16_round(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/* pack_a's layout straight from the fp32 weights: element (o, c) at tap t of the packed
 * convolution (NO outputs, NI inputs) is w[o][c][t], or for din w[c][o][8 - t] */
void dae_amx_pack_tiles(uint16_t *wa, const float *w, int C, int OC, int din)
{
    int NO = din ? C : OC, NI = din ? OC : C;
    int KC = (int)(round_up((size_t)NI, AMX_KC) / AMX_KC);
    int OB = (int)(round_up((size_t)NO, AMX_OB) / AMX_OB);
    for (int ob = 0; ob < OB; ob++)
        for (int t = 0; t < 9; t++)
            for (int kc = 0; kc < KC; kc++) {
                uint16_t *tile = wa + ((size_t)(ob * 9 + t) * KC + kc) * AMX_OB * AMX_KC;
                for (int o = 0; o < AMX_OB; o++)
                    for (int i = 0; i < AMX_KC; i++) {
                        int no = ob * AMX_OB + o, ni = kc * AMX_KC + i;
                        float v = no >= NO || ni >= NI ? 0.0f
                                  : din ? w[((size_t)ni * C + no) * 9 + 8 - t]
                                        : w[((size_t)no * C + ni) * 9 + t];
                        tile[o * AMX_KC + i] = bf16_round(v);
                    }
            }
}

void dae_conv3x3_forward_amx_tiles(float *out, const float *in, const uint16_t *wa,
                                   const float *b, float *scratch, const dae_conv_geom *g,
                                   int oh0, int oh1, dae_act act, float slope)
{
#ifdef AMX_X86
    amx_forward(out, in, wa, b, scratch, g, oh0, oh1, act, slope);
#endif
}

/* ---- weight gradient on AMX tiles (training) ----
 * dw[o][c][t] = sum over pixels q of dy[o][q] * x[c][q + off t]: per tap a matrix product
 * over the pixels, the accumulator tile C (16 input channels x 16 output channels) adding A
 * (16 input channels x 32 positions of x, shifted by the tap: a 16-row load from the bf16
 * planes) times B (16 position pairs x 16 output channels: dy transposed, pixel-pair
 * major, the VNNI layout). Each image goes into zero-padded planes of rows of Wp (W + 1
 * rounded up to even) positions, pixel (i, j) at (i + 1) * Wp + j: a tap that leaves the
 * image reads a zero, and dy is zero off the pixels, so the run of positions from row 1
 * on (whole steps of 32) needs no masks. Blocks of 2 x 2 accumulators (32 input x 32
 * output channels: channels padded to 32) over one image, kept between images in an fp32
 * buffer (tile (cb, ob, t) at ((cb * OB + ob) * 9 + t) * 256). */
#define DW_MARG 64 /* zero positions before each x plane */

typedef struct {
    int Wp, Cp, OCp;
    long qs, qn;    /* the run: positions [qs, qs + qn) */
    size_t xs, acc; /* uint16 per x plane; floats of the accumulators */
} dw_geo;

static void dw_geom(dw_geo *d, const dae_conv_geom *g)
{
    d->Wp = (g->W + 2) / 2 * 2;
    d->Cp = (int)round_up((size_t)g->C, 32);
    d->OCp = (int)round_up((size_t)g->OC, 32);
    d->qs = d->Wp;
    d->qn = (long)round_up((size_t)g->H * d->Wp, 32);
    d->xs = round_up(DW_MARG + (size_t)(2 * d->Wp) + (size_t)d->qn + 64, 32);
    d->acc = (size_t)d->Cp * d->OCp * 9;
}

size_t dae_conv3x3_dw_amx_scratch(const dae_conv_geom *g)
{
    dw_geo d;
    dw_geom(&d, g);
    /* the accumulators, the x planes (uint16), dy's pair rows (uint32), 64-byte alignment */
    return d.acc + (size_t)d.Cp * d.xs / 2 + (size_t)d.qn / 2 * (size_t)d.OCp + 16;
}

#ifdef AMX_X86
/* xb: the C planes of x (bf16), zero elsewhere; rows written in order, each as whole
 * vectors of 32 whose tail zeros land on the padding and the next row's start */
TGT_AMX static void dw_pack_x(uint16_t *xb, const float *x, const dae_conv_geom *g,
                              const dw_geo *d)
{
    int C = g->C, H = g->H, W = g->W;
    memset(xb, 0, (size_t)d->Cp * d->xs * sizeof *xb);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H; i++) {
            uint16_t *row = xb + (size_t)c * d->xs + DW_MARG + (size_t)(i + 1) * d->Wp;
            const float *src = x + ((size_t)c * H + i) * W;
            for (int j = 0; j < W; j += 32) {
                __mmask16 m0 = W - j >= 16 ? 0xFFFF : (__mmask16)((1u << (W - j)) - 1u);
                __mmask16 m1 = W - j >= 32   ? 0xFFFF
                               : W - j <= 16 ? 0
                                             : (__mmask16)((1u << (W - j - 16)) - 1u);
                __m512 lo = _mm512_maskz_loadu_ps(m0, src + j);
                __m512 hi = _mm512_maskz_loadu_ps(m1, src + j + 16);
                _mm512_storeu_si512(row + j, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
            }
        }
}

/* dt: pair row r (positions qs + 2r, +1) x OCp output channels of dy, bf16 pairs, zero off
 * the pixels: each row's 16 pairs at a time converted and scattered */
TGT_AMX static void dw_pack_dy(uint32_t *dt, const float *dy, const dae_conv_geom *g,
                               const dw_geo *d)
{
    int OC = g->OC, H = g->H, W = g->W, half = d->Wp / 2;
    memset(dt, 0, (size_t)d->qn / 2 * (size_t)d->OCp * sizeof *dt);
    __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5,
                                                      4, 3, 2, 1, 0),
                                     _mm512_set1_epi32(d->OCp));
    for (int o = 0; o < OC; o++)
        for (int i = 0; i < H; i++) {
            const float *src = dy + ((size_t)o * H + i) * W;
            for (int k = 0; k < half; k += 16) {
                int j = 2 * k;
                __mmask16 m0 = W - j >= 16 ? 0xFFFF : W - j <= 0 ? 0
                                                                 : (__mmask16)((1u << (W - j)) - 1u);
                __mmask16 m1 = W - j >= 32   ? 0xFFFF
                               : W - j <= 16 ? 0
                                             : (__mmask16)((1u << (W - j - 16)) - 1u);
                __mmask16 mp = half - k >= 16 ? 0xFFFF : (__mmask16)((1u << (half - k)) - 1u);
                __m512 lo = _mm512_maskz_loadu_ps(m0, src + j);
                __m512 hi = _mm512_maskz_loadu_ps(m1, src + j + 16);
                uint32_t *base = dt + ((size_t)i * half + (size_t)k) * d->OCp + o;
                _mm512_mask_i32scatter_epi32(base, mp, idx,
                                             (__m512i)_mm512_cvtne2ps_pbh(hi, lo), 4);
            }
        }
}

/* The accumulators of input blocks cb, cb+1 x output blocks ob, ob+1 at tap t over the
 * run of one image */
TGT_AMX static void dw_block(float *acc, const uint16_t *xb, const uint32_t *dt,
                             const dw_geo *d, int cb, int ob, int t)
{
    int OB = d->OCp / 16;
    float *c00 = acc + ((size_t)(cb * OB + ob) * 9 + t) * 256, *c10 = c00 + (size_t)OB * 9 * 256;
    _tile_loadd(0, c00, 64);
    _tile_loadd(1, c00 + 9 * 256, 64);
    _tile_loadd(2, c10, 64);
    _tile_loadd(3, c10 + 9 * 256, 64);
    ptrdiff_t off = (ptrdiff_t)(t / 3 - 1) * d->Wp + (t % 3 - 1);
    const uint16_t *a = xb + (size_t)cb * 16 * d->xs + DW_MARG + d->qs + off;
    const uint32_t *b = dt + (size_t)ob * 16;
    size_t as = d->xs * sizeof *xb, bs = (size_t)d->OCp * sizeof *dt;
    for (long q = 0; q < d->qn; q += 32) {
        _tile_loadd(4, a + q, as);
        _tile_loadd(5, a + q + 16 * d->xs, as);
        _tile_loadd(6, b + (size_t)q / 2 * d->OCp, bs);
        _tile_loadd(7, b + (size_t)q / 2 * d->OCp + 16, bs);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c00, 64);
    _tile_stored(1, c00 + 9 * 256, 64);
    _tile_stored(2, c10, 64);
    _tile_stored(3, c10 + 9 * 256, 64);
}

TGT_AMX static void dw_images(float *acc, uint16_t *xb, uint32_t *dt, const float *dout,
                              const float *in, const dae_conv_geom *g, const dw_geo *d)
{
    size_t P = (size_t)g->H * g->W;
    amx_config_load();
    for (int n = 0; n < g->B; n++) {
        dw_pack_x(xb, in + (size_t)n * g->C * P, g, d);
        dw_pack_dy(dt, dout + (size_t)n * g->OC * P, g, d);
        for (int cb = 0; cb < d->Cp / 16; cb += 2)
            for (int ob = 0; ob < d->OCp / 16; ob += 2)
                for (int t = 0; t < 9; t++)
                    dw_block(acc, xb, dt, d, cb, ob, t);
    }
    _tile_release();
}
#endif

void dae_conv3x3_dw_amx(float *dw, const float *dout, const float *in, float *scratch,
                        const dae_conv_geom *g)
{
#ifdef AMX_X86
    dw_geo d;
    dw_geom(&d, g);
    int OB = d.OCp / 16;
    float *acc = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    uint16_t *xb = (uint16_t *)(void *)(acc + d.acc);
    uint32_t *dt = (uint32_t *)(void *)(xb + (size_t)d.Cp * d.xs);
    memset(acc, 0, d.acc * sizeof *acc);
    dw_images(acc, xb, dt, dout, in, g, &d);
    for (int o = 0; o < g->OC; o++)
        for (int c = 0; c < g->C; c++)
            for (int t = 0; t < 9; t++)
                dw[((size_t)o * g->C + c) * 9 + t] +=
                    acc[((size_t)((c / 16) * OB + o / 16) * 9 + t) * 256 + (c % 16) * 16 +
                        o % 16];
#endif
}
