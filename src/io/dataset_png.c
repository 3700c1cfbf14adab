/* dataset_png.c — a dataset from a folder of PNG files, optionally one sub-folder per class. */
#include "daed/io/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "daed/io/image.h"

#define MAX_CLASSES 100000

typedef struct {
    char **v;
    int n, cap;
} name_list;

static void names_free(name_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int names_push(name_list *l, const char *s, dae_error *err)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return dae_error_set(err, DAE_ENOMEM, "png folder: no memory for %d names", cap);
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s)))
        return dae_error_set(err, DAE_ENOMEM, "png folder: no memory for a name");
    l->n++;
    return DAE_OK;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_png_name(const char *s)
{
    size_t l = strlen(s);
    return l > 4 && strcasecmp(s + l - 4, ".png") == 0;
}

static int join(char *out, size_t cap, const char *a, const char *b, dae_error *err)
{
    int l = snprintf(out, cap, "%s/%s", a, b);
    if (l < 0 || (size_t)l >= cap)
        return dae_error_set(err, DAE_EINVAL, "png folder: path %s/%s too long", a, b);
    return DAE_OK;
}

/* Sorted visible entries of dir: sub-directories into dirs (if not NULL), *.png files into
 * files. Other files are ignored. `limit` caps the number kept. */
static int list_dir(const char *dir, name_list *dirs, name_list *files, int limit,
                    dae_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return dae_error_set(err, errno == ENOENT ? DAE_ENOTFOUND : DAE_EIO, "%s: %s", dir,
                             strerror(errno));
    int rc = DAE_OK;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if ((rc = join(path, sizeof path, dir, e->d_name, err)))
            break;
        struct stat st;
        if (stat(path, &st) != 0)
            continue; /* a dangling link is not an image */
        if (S_ISDIR(st.st_mode) && dirs)
            rc = names_push(dirs, e->d_name, err);
        else if (S_ISREG(st.st_mode) && is_png_name(e->d_name))
            rc = names_push(files, e->d_name, err);
        if (!rc && (files->n > limit || (dirs && dirs->n > MAX_CLASSES)))
            rc = dae_error_set(err, DAE_ELIMIT, "%s: more than %d entries", dir, limit);
        if (rc)
            break;
    }
    closedir(d);
    if (!rc) {
        if (dirs && dirs->n > 1)
            qsort(dirs->v, (size_t)dirs->n, sizeof *dirs->v, cmp_name);
        if (files->n > 1)
            qsort(files->v, (size_t)files->n, sizeof *files->v, cmp_name);
    }
    return rc;
}

/* The class-folder layout: every PNG of each folder dirs->v[k] of dir into paths (at most
 * max_samples in all) and k into (*labels_out)[i] (allocated here, freed by the caller). */
static int list_classes(const char *dir, const name_list *dirs, int max_samples,
                        name_list *paths, int **labels_out, dae_error *err)
{
    char path[4096];
    int *labels = *labels_out = malloc(1024 * sizeof *labels);
    int lcap = 1024;
    if (!labels) {
        dae_error_set(err, DAE_ENOMEM, "%s: no memory", dir);
        return -1;
    }
    for (int k = 0; k < dirs->n; k++) {
        char sub[4096];
        name_list files = {0};
        if (join(sub, sizeof sub, dir, dirs->v[k], err) ||
            list_dir(sub, NULL, &files, max_samples - paths->n, err)) {
            names_free(&files);
            return -1;
        }
        for (int i = 0; i < files.n; i++) {
            if (join(path, sizeof path, sub, files.v[i], err) ||
                names_push(paths, path, err)) {
                names_free(&files);
                return -1;
            }
            if (paths->n > lcap) {
                int *nl = realloc(labels, (size_t)(2 * lcap) * sizeof *labels);
                if (!nl) {
                    names_free(&files);
                    dae_error_set(err, DAE_ENOMEM, "%s: no memory", dir);
                    return -1;
                }
                labels = *labels_out = nl;
                lcap *= 2;
            }
            labels[paths->n - 1] = k;
        }
        names_free(&files);
    }
    return DAE_OK;
}

dae_dataset *dae_dataset_load_png_dir(const char *dir, int channels,
                                      const dae_dataset_limits *lim, dae_error *err)
{
    dae_dataset_limits dl = lim ? *lim : dae_dataset_default_limits();
    name_list dirs = {0}, top = {0}, paths = {0};
    int *labels = NULL;
    dae_dataset *ds = NULL;
    dae_image im = {0};
    char path[4096];
    if (channels != 1 && channels != 3) {
        dae_error_set(err, DAE_EINVAL, "%s: %d channels requested, expected 1 or 3", dir,
                      channels);
        return NULL;
    }
    if (list_dir(dir, &dirs, &top, dl.max_samples, err))
        goto fail;
    int classes = dirs.n > 0;
    if (classes && top.n > 0) {
        dae_error_set(err, DAE_EFORMAT, "%s: holds both PNG files (%s) and class folders (%s); "
                      "expected one layout", dir, top.v[0], dirs.v[0]);
        goto fail;
    }
    if (classes) {
        if (list_classes(dir, &dirs, dl.max_samples, &paths, &labels, err))
            goto fail;
    } else {
        for (int i = 0; i < top.n; i++)
            if (join(path, sizeof path, dir, top.v[i], err) || names_push(&paths, path, err))
                goto fail;
    }
    if (paths.n == 0) {
        dae_error_set(err, DAE_ENOTFOUND, "%s: no .png files%s", dir,
                      classes ? " in its class folders" : "");
        goto fail;
    }
    dae_image_limits il = dae_image_default_limits();
    if (il.max_width > dl.max_dim)
        il.max_width = dl.max_dim;
    if (il.max_height > dl.max_dim)
        il.max_height = dl.max_dim;
    for (int i = 0; i < paths.n; i++) {
        /* dae_image_read_file's messages already start with the path */
        if (dae_image_read_file(paths.v[i], &il, &im, err))
            goto fail;
        if (dae_image_to_channels(&im, channels, err)) {
            dae_error_prefix(err, "%s: ", paths.v[i]);
            goto fail;
        }
        if (!ds) {
            size_t per = (size_t)channels * im.h * im.w;
            if (per > dl.max_values / (size_t)paths.n) {
                dae_error_set(err, DAE_ELIMIT, "%s: %d images of %zu values exceed the limit "
                              "%zu", dir, paths.n, per, dl.max_values);
                goto fail;
            }
            ds = dae_dataset_create(paths.n, channels, im.h, im.w, classes, err);
            if (!ds)
                goto fail;
        } else if (im.w != ds->w || im.h != ds->h) {
            dae_error_set(err, DAE_ESHAPE, "%s: %dx%d pixels, but %s is %dx%d; all images of a "
                          "folder must have the same size", paths.v[i], im.w, im.h, paths.v[0],
                          ds->w, ds->h);
            goto fail;
        }
        memcpy(dae_dataset_sample(ds, i), im.px,
               (size_t)channels * im.h * im.w * sizeof(float));
        if (classes)
            ds->labels[i] = labels[i];
        dae_image_free(&im);
    }
    names_free(&dirs);
    names_free(&top);
    names_free(&paths);
    free(labels);
    return ds;
fail:
    dae_image_free(&im);
    names_free(&dirs);
    names_free(&top);
    names_free(&paths);
    free(labels);
    dae_dataset_free(ds);
    return NULL;
}
