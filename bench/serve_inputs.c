/* serve_inputs.c — the request bodies of bench/serve.sh, from the Fashion-MNIST test set.
 *
 *   serve_inputs OUT_DIR [IDX_IMAGES]
 *
 * IDX_IMAGES defaults to data/fashion-mnist/t10k-images-idx3-ubyte.gz (make data), else
 * Debian's /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz. Writes
 *   OUT_DIR/one.png        test image 0 as a 28x28 gray PNG
 *   OUT_DIR/batch64.json   {"images":[{"png":"<base64>"}, ...]} of test images 0..63
 * and prints the source path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daed/io/dataset.h"
#include "daed/io/image.h"
#include "daed/io/png.h"
#include "daed/io/base64.h"

#define BATCH 64

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "serve_inputs: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: serve_inputs OUT_DIR [IDX_IMAGES]\n");
        return 2;
    }
    const char *src = argc == 3 ? argv[2] : "data/fashion-mnist/t10k-images-idx3-ubyte.gz";
    if (argc == 2 && access(src, R_OK) != 0)
        src = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    dae_error err = {0};
    dae_dataset *ds = dae_dataset_load_idx(src, NULL, NULL, &err);
    if (!ds) {
        fprintf(stderr, "serve_inputs: %s (make data, or apt-get install dataset-fashion-mnist)\n",
                err.msg);
        return 1;
    }
    int rc = 1;
    char path[4096];
    char *json = NULL;
    size_t len = 0, pos = 0, cap = 0;
    if (ds->n < BATCH) {
        fprintf(stderr, "serve_inputs: %s has %d images, need %d\n", src, ds->n, BATCH);
        goto out;
    }
    for (int i = 0; i < BATCH; i++) {
        unsigned char *png = NULL;
        if (dae_png_encode(dae_dataset_sample(ds, i), ds->w, ds->h, ds->c, 6, &png, &len,
                           &err) != DAE_OK) {
            fprintf(stderr, "serve_inputs: image %d: %s\n", i, err.msg);
            goto out;
        }
        if (i == 0) {
            snprintf(path, sizeof path, "%s/one.png", argv[1]);
            if (write_file(path, png, len) != 0) {
                free(png);
                goto out;
            }
        }
        size_t need = pos + dae_base64_encoded_len(len) + 64;
        if (need > cap) {
            cap = need * 2;
            char *j = realloc(json, cap);
            if (!j) {
                free(png);
                goto out;
            }
            json = j;
        }
        pos += (size_t)sprintf(json + pos, "%s{\"png\":\"", i ? "," : "{\"images\":[");
        dae_base64_encode(png, len, json + pos);
        pos += strlen(json + pos);
        pos += (size_t)sprintf(json + pos, "\"}");
        free(png);
    }
    pos += (size_t)sprintf(json + pos, "]}\n");
    snprintf(path, sizeof path, "%s/batch64.json", argv[1]);
    if (write_file(path, json, pos) != 0)
        goto out;
    printf("%s\n", src);
    rc = 0;
out:
    free(json);
    dae_dataset_free(ds);
    return rc;
}
