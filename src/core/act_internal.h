/* act_internal.h — what layers.c and act.c share (private). */
#ifndef DAED_CORE_ACT_INTERNAL_H
#define DAED_CORE_ACT_INTERNAL_H

#include <stddef.h>

#include "daed/core/layers.h"

/* d[i] = act(s[i] + v) over n values; d may equal s (act.c). */
void dae_bias_act(float *d, const float *s, float v, size_t n, dae_act act, float slope);

#endif
