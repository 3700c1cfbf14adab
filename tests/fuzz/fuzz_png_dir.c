/* fuzz_png_dir.c — libFuzzer target: dae_dataset_load_png_dir on a folder made from the input.
 *
 * Input layout: byte 0 = flags (bit 0: class sub-folders c0/, c1/, c2/; bit 1: 3 channels);
 * then up to 8 PNG files separated by the 4 bytes "\n--\n" (written as f<i>.png, in
 * sub-folder c<i%3> in the class layout).
 * FUZZ_OPTIONS: -max_len=65536 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daed/io/dataset.h"
#include "fuzz_util.h"

#define MAX_FILES 8
static const char SEP[4] = {'\n', '-', '-', '\n'};

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(n == 0 || fwrite(p, 1, n, f) == n);
    FUZZ_CHECK(fclose(f) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *scratch = fuzz_scratch_dir();
    if (size < 1 || !scratch)
        return 0;
    int classes = data[0] & 1, channels = data[0] & 2 ? 3 : 1;
    char dir[128], sub[160], path[192];
    snprintf(dir, sizeof dir, "%s/pngdir", scratch);
    FUZZ_CHECK(mkdir(dir, 0700) == 0);
    const uint8_t *p = data + 1, *end = data + size;
    int nfiles = 0, used_class[3] = {0};
    while (nfiles < MAX_FILES && p < end) {
        const uint8_t *q = memmem(p, (size_t)(end - p), SEP, sizeof SEP);
        size_t n = q ? (size_t)(q - p) : (size_t)(end - p);
        if (classes) {
            snprintf(sub, sizeof sub, "%s/c%d", dir, nfiles % 3);
            if (!used_class[nfiles % 3])
                FUZZ_CHECK(mkdir(sub, 0700) == 0);
            used_class[nfiles % 3] = 1;
        } else {
            snprintf(sub, sizeof sub, "%s", dir);
        }
        snprintf(path, sizeof path, "%s/f%d.png", sub, nfiles);
        write_file(path, p, n);
        nfiles++;
        p = q ? q + sizeof SEP : end;
    }
    dae_dataset_limits lim = {.max_samples = 100, .max_dim = 512,
                              .max_values = (size_t)1 << 22,
                              .max_file_bytes = (size_t)1 << 20};
    dae_error err = {0};
    dae_dataset *ds = dae_dataset_load_png_dir(dir, channels, &lim, &err);
    if (!ds) {
        fuzz_check_error(err.code, &err);
        FUZZ_CHECK(err.code != DAE_EIO);
    } else {
        fuzz_note("accepted", NULL);
        FUZZ_CHECK(ds->n == nfiles && ds->c == channels && ds->h >= 1 && ds->w >= 1);
        FUZZ_CHECK(ds->h <= lim.max_dim && ds->w <= lim.max_dim);
        size_t nv = (size_t)ds->n * (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
        for (size_t i = 0; i < nv; i++)
            FUZZ_CHECK(ds->x[i] >= -1e-6f && ds->x[i] <= 1.000001f);
        FUZZ_CHECK((ds->labels != NULL) == classes);
        for (int i = 0; classes && i < ds->n; i++) /* sorted: f0,f3,f6 in c0; f1,f4,f7 ... */
            FUZZ_CHECK(ds->labels[i] >= 0 && ds->labels[i] < 3);
        dae_dataset_free(ds);
    }
    /* Clean up for the next input. */
    for (int i = 0; i < nfiles; i++) {
        if (classes)
            snprintf(path, sizeof path, "%s/c%d/f%d.png", dir, i % 3, i);
        else
            snprintf(path, sizeof path, "%s/f%d.png", dir, i);
        FUZZ_CHECK(unlink(path) == 0);
    }
    for (int k = 0; classes && k < 3; k++) {
        if (!used_class[k])
            continue;
        snprintf(sub, sizeof sub, "%s/c%d", dir, k);
        FUZZ_CHECK(rmdir(sub) == 0);
    }
    FUZZ_CHECK(rmdir(dir) == 0);
    return 0;
}
