/* fuzz_idx.c — libFuzzer target: dae_dataset_load_idx on an images file and, optionally, a
 * labels file (plain or gzip), handed over as in-memory files.
 *
 * Input layout: byte 0 bit 0 = with labels; with labels, bytes 1-2 (big-endian) are the
 * length L of the labels file, bytes 3 .. 3+L its content and the rest the images file;
 * without, bytes 1.. are the images file.
 * FUZZ_OPTIONS: -max_len=65536 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daed/io/dataset.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int with_labels = data[0] & 1;
    const uint8_t *img = data + 1, *lab = NULL;
    size_t img_len = size - 1, lab_len = 0;
    if (with_labels) {
        if (size < 3)
            return 0;
        lab_len = (size_t)data[1] << 8 | data[2];
        if (lab_len > size - 3)
            lab_len = size - 3;
        lab = data + 3;
        img = lab + lab_len;
        img_len = size - 3 - lab_len;
    }
    char ipath[64], lpath[64];
    int ifd = fuzz_memfile(img, img_len, ipath, sizeof ipath), lfd = -1;
    FUZZ_CHECK(ifd >= 0);
    if (with_labels) {
        lfd = fuzz_memfile(lab, lab_len, lpath, sizeof lpath);
        FUZZ_CHECK(lfd >= 0);
    }
    /* The default caps (up to 2^30 values, 4 GiB of floats): a 16-byte header may claim
     * them, and the reader must not allocate from the claim (fuzz.mk's -malloc_limit_mb
     * turns any allocation over 512 MB into a finding; corpus/idx/claims_1g*). What the
     * input really holds is at most 64 KB, or 64 MB inflated. */
    dae_dataset_limits lim = dae_dataset_default_limits();
    dae_error err = {0};
    dae_dataset *ds = dae_dataset_load_idx(ipath, with_labels ? lpath : NULL, &lim, &err);
    if (!ds) {
        fuzz_check_error(err.code, &err);
        FUZZ_CHECK(err.code == DAE_EFORMAT || err.code == DAE_ELIMIT);
        FUZZ_CHECK(strstr(err.msg, "/proc/self/fd/") != NULL); /* messages name the file */
    } else {
        fuzz_note("accepted", NULL);
        FUZZ_CHECK(ds->n >= 0 && ds->c == 1 && ds->h >= 1 && ds->w >= 1);
        size_t nv = (size_t)ds->n * (size_t)ds->h * (size_t)ds->w;
        FUZZ_CHECK(nv <= lim.max_values);
        for (size_t i = 0; i < nv; i++)
            FUZZ_CHECK(ds->x[i] >= 0.0f && ds->x[i] <= 1.0f);
        FUZZ_CHECK((ds->labels != NULL) == with_labels);
        for (int i = 0; with_labels && i < ds->n; i++)
            FUZZ_CHECK(ds->labels[i] >= 0 && ds->labels[i] <= 255);
        dae_dataset_free(ds);
    }
    close(ifd);
    if (lfd >= 0)
        close(lfd);
    return 0;
}
