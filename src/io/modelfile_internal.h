/* modelfile_internal.h — what the three model-file sources of src/io share (private).
 *
 *   model_config.c  the config JSON <-> dae_layer / dae_model (parse_config, arch JSON)
 *   calibration.c   the "calibration" and "score" blocks: parse, percentile, set_score
 *   modelfile.c     load (tensors matched by name), save, the scorer of a file
 */
#ifndef DAED_IO_MODELFILE_INTERNAL_H
#define DAED_IO_MODELFILE_INTERNAL_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "daed/io/modelfile.h"

#define FORMAT_NAME "daed-1"
#define MAX_IMAGE_DIM 65535
#define MAX_IMAGE_VALUES ((int64_t)1 << 28)
#define MAX_FEATURES (1 << 24)
#define MAX_KERNEL 64
#define MAX_STRIDE 16
#define MAX_PADDING 64
#define MAX_ADD_FROM 65535 /* add layers: the source index (the model checks it is earlier) */

/* A config parsed but not yet a model: what parse_config read, before the tensors. */
typedef struct parsed_config {
    dae_layer *layers; /* encoder then decoder, owned */
    int n_enc, n_dec;
    dae_shape in, out;
    int has_out, residual, noise_map;
    char name[64];     /* "" when absent */
    unsigned tasks;
    dae_calibration calib;
    dae_score_spec score;                                   /* banks unset */
    char tensor[DAE_SCORE_MAX_TERMS][DAE_SCORE_TENSOR_NAME_MAX]; /* knn term -> tensor */
} parsed_config;

/* 1 and an error when obj has a key twice (cJSON keeps both); `where` names obj. */
int dae_mf_check_dup_keys(const cJSON *obj, const char *where, dae_error *err);
/* v printed as JSON into buf for an error message (cut after 60 characters; "?" for none). */
void dae_mf_json_text(const cJSON *v, char *buf, size_t n);
/* The config name of an activation ("relu", ...). */
const char *dae_mf_act_type_name(dae_act a);
/* The architecture of m as config JSON (input, output, residual, encoder, decoder); NULL
 * when out of memory. The caller deletes it. */
cJSON *dae_mf_arch_object(const dae_model *m);
/* The "calibration" block of config c into cal; the "score" spec it names into spec and
 * the tensor names of its knn terms into tensor. */
int dae_mf_parse_calibration(const cJSON *c, dae_calibration *cal, dae_score_spec *spec,
                             char tensor[][DAE_SCORE_TENSOR_NAME_MAX], dae_error *err);
/* Parses and checks a config JSON (at most max_layers layers) into pc. */
int dae_mf_parse_config(const char *text, int max_layers, parsed_config *pc, dae_error *err);
void dae_mf_parsed_config_free(parsed_config *pc);
/* The model of a parsed config; with_params 0 leaves the parameters to the caller. */
dae_model *dae_mf_model_from_parsed(const parsed_config *pc, int with_params, dae_error *err);

#endif
