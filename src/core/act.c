/* act.c — the elementwise activation kernels (layers.h) and the bias + activation pass
 * the convolutions of layers.c apply to their output blocks (act_internal.h). */
#include "daed/core/layers.h"

#include <math.h>
#include <string.h>
#ifdef __SSE2__
#include <immintrin.h>
#endif

#include "act_internal.h"

/* Elementwise kernels may run in place (out == in), so full blocks of 16 go through a
 * local array: alias-free with a constant trip count, which GCC vectorises at -O2. */
#define ACT_BLOCK 16

static inline float act1(float x, dae_act act, float slope)
{
    switch (act) {
    case DAE_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case DAE_ACT_LEAKY_RELU: return x > 0.0f ? x : x * slope;
    case DAE_ACT_TANH: return tanhf(x);
    case DAE_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    default: return x;
    }
}

static inline float dact1(float g, float y, dae_act act, float slope)
{
    switch (act) {
    case DAE_ACT_RELU: return y > 0.0f ? g : 0.0f;
    case DAE_ACT_LEAKY_RELU: return y > 0.0f ? g : g * slope;
    case DAE_ACT_TANH: return g * (1.0f - y * y);
    case DAE_ACT_SIGMOID: return g * y * (1.0f - y);
    default: return g;
    }
}

/* d[i] = act(s[i] + v); d may equal s. Blocks of 16 through a local array keep the loop
 * alias-free with a constant trip count (vectorised). */
void dae_bias_act(float *d, const float *s, float v, size_t n, dae_act act, float slope)
{
    size_t i = 0;
#ifdef __SSE2__
    /* GCC does not if-convert float selects into max/min (NaN and -0 rules), so the
     * rectifiers are written with SSE: max(u, 0) is 0 for NaN as act1's relu; the leaky
     * form keeps NaN as act1 does. */
    __m128 vv = _mm_set1_ps(v), z = _mm_setzero_ps(), sl = _mm_set1_ps(slope);
    if (act == DAE_ACT_IDENTITY)
        for (; i + 4 <= n; i += 4)
            _mm_storeu_ps(d + i, _mm_add_ps(_mm_loadu_ps(s + i), vv));
    else if (act == DAE_ACT_RELU)
        for (; i + 4 <= n; i += 4)
            _mm_storeu_ps(d + i, _mm_max_ps(_mm_add_ps(_mm_loadu_ps(s + i), vv), z));
    else if (act == DAE_ACT_LEAKY_RELU)
        for (; i + 4 <= n; i += 4) {
            __m128 u = _mm_add_ps(_mm_loadu_ps(s + i), vv);
            __m128 pos = _mm_max_ps(u, z), ng = _mm_min_ps(z, u);
            _mm_storeu_ps(d + i, _mm_add_ps(pos, _mm_mul_ps(sl, ng)));
        }
#endif
    for (; i < n; i++)
        d[i] = act1(s[i] + v, act, slope);
}

void dae_act_forward(float *out, const float *in, size_t n, dae_act act, float slope)
{
    if (act == DAE_ACT_IDENTITY) {
        if (out != in)
            memmove(out, in, n * sizeof *out);
        return;
    }
    if (act == DAE_ACT_RELU || act == DAE_ACT_LEAKY_RELU) {
        dae_bias_act(out, in, 0.0f, n, act, slope);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = act1(in[i], act, slope);
}

/* From the output: relu/leaky (slope >= 0) keep the sign of their input, tanh' = 1 - y^2,
 * sigmoid' = y (1 - y). din may alias dout. */
void dae_act_backward(float *din, const float *dout, const float *out, size_t n, dae_act act,
                      float slope)
{
    if (act == DAE_ACT_IDENTITY) {
        if (din != dout)
            memmove(din, dout, n * sizeof *din);
        return;
    }
    float sl = act == DAE_ACT_LEAKY_RELU ? slope : 0.0f;
    size_t i = 0;
#ifdef __SSE2__
    if (act == DAE_ACT_RELU || act == DAE_ACT_LEAKY_RELU) {
        /* g * (y > 0 ? 1 : sl) as a blend of g and g*sl on the mask y > 0 */
        __m128 z = _mm_setzero_ps(), vs = _mm_set1_ps(sl);
        for (; i + 4 <= n; i += 4) {
            __m128 g = _mm_loadu_ps(dout + i), m = _mm_cmpgt_ps(_mm_loadu_ps(out + i), z);
            __m128 r = _mm_or_ps(_mm_and_ps(m, g), _mm_andnot_ps(m, _mm_mul_ps(g, vs)));
            _mm_storeu_ps(din + i, r);
        }
    }
#endif
    for (; i + ACT_BLOCK <= n; i += ACT_BLOCK) {
        float g[ACT_BLOCK], y[ACT_BLOCK];
        memcpy(g, dout + i, sizeof g);
        memcpy(y, out + i, sizeof y);
        if (act == DAE_ACT_RELU || act == DAE_ACT_LEAKY_RELU)
            for (int q = 0; q < ACT_BLOCK; q++) {
                float k = y[q] > 0.0f ? 1.0f : sl;
                g[q] *= k;
            }
        else if (act == DAE_ACT_TANH)
            for (int q = 0; q < ACT_BLOCK; q++)
                g[q] = g[q] * (1.0f - y[q] * y[q]);
        else
            for (int q = 0; q < ACT_BLOCK; q++)
                g[q] = g[q] * y[q] * (1.0f - y[q]);
        memcpy(din + i, g, sizeof g);
    }
    for (; i < n; i++)
        din[i] = dact1(dout[i], out[i], act, slope);
}
