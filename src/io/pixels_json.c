/* pixels_json.c — images as float pixels in JSON (pixels_json.h). */
#include "daed/io/pixels_json.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/io/safetensors.h" /* dae_file_read */

#define PIXELS_JSON_MAX_BYTES ((size_t)512 << 20) /* a 16 Mpx RGB image is ~500 MB of JSON */

static int json_get_dim(const cJSON *root, const char *key, int lo, int hi, int *out,
                        const char *path, dae_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsNumber(v))
        return dae_error_set(err, DAE_EFORMAT, "%s: \"%s\" missing or not a number", path, key);
    double d = v->valuedouble;
    if (!(d >= lo && d <= hi) || d != floor(d))
        return dae_error_set(err, DAE_EFORMAT, "%s: \"%s\" is %g, expected an integer in [%d, %d]",
                             path, key, d, lo, hi);
    *out = (int)d;
    return DAE_OK;
}

/* Copy exactly n finite numbers of a JSON array into dst. */
static int json_get_floats(const cJSON *root, const char *key, float *dst, size_t n,
                           const char *path, dae_error *err)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsArray(arr))
        return dae_error_set(err, DAE_EFORMAT, "%s: \"%s\" missing or not an array", path, key);
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (i == n)
            return dae_error_set(err, DAE_ESHAPE, "%s: \"%s\" has more than %zu values", path,
                                 key, n);
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
            return dae_error_set(err, DAE_EFORMAT, "%s: \"%s\"[%zu] is not a finite number",
                                 path, key, i);
        dst[i++] = (float)it->valuedouble;
    }
    if (i != n)
        return dae_error_set(err, DAE_ESHAPE, "%s: \"%s\" has %zu values, expected %zu", path,
                             key, i, n);
    return DAE_OK;
}

int dae_pixels_json_read(const char *path, dae_image *im, dae_error *err)
{
    dae_image_limits lim = dae_image_default_limits();
    unsigned char *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    int w, h, c;
    int rc = dae_file_read(path, PIXELS_JSON_MAX_BYTES, &text, &len, err);
    if (rc)
        return rc;
    root = cJSON_ParseWithLengthOpts((const char *)text, len, NULL, 0);
    if (!cJSON_IsObject(root)) {
        rc = dae_error_set(err, DAE_EFORMAT, "%s: not a JSON object", path);
        goto done;
    }
    if ((rc = json_get_dim(root, "width", 1, lim.max_width, &w, path, err)) ||
        (rc = json_get_dim(root, "height", 1, lim.max_height, &h, path, err)) ||
        (rc = json_get_dim(root, "channels", 1, 3, &c, path, err)))
        goto done;
    if (c == 2) {
        rc = dae_error_set(err, DAE_EFORMAT, "%s: \"channels\" is 2, expected 1 or 3", path);
        goto done;
    }
    if ((size_t)w * (size_t)h > lim.max_pixels) {
        rc = dae_error_set(err, DAE_ELIMIT, "%s: %dx%d is more than %zu pixels", path, w, h,
                           lim.max_pixels);
        goto done;
    }
    const cJSON *mask = cJSON_GetObjectItemCaseSensitive(root, "mask");
    if ((rc = dae_image_alloc(im, w, h, c, mask != NULL, err)))
        goto done;
    size_t hw = (size_t)w * (size_t)h;
    if ((rc = json_get_floats(root, "pixels", im->px, (size_t)c * hw, path, err)) ||
        (mask && (rc = json_get_floats(root, "mask", im->alpha, hw, path, err))))
        dae_image_free(im);
done:
    cJSON_Delete(root);
    free(text);
    return rc;
}

int dae_pixels_json_write(const char *path, const float *px, int w, int h, int c,
                          dae_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return dae_error_set(err, DAE_EIO, "%s: %s", path, strerror(errno));
    size_t n = (size_t)c * (size_t)h * (size_t)w;
    fprintf(f, "{\"width\":%d,\"height\":%d,\"channels\":%d,\"pixels\":[", w, h, c);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%.9g", i ? "," : "", (double)px[i]);
    fprintf(f, "]}\n");
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return dae_error_set(err, DAE_EIO, "%s: write failed", path);
    return DAE_OK;
}
