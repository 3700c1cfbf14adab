/* registry.c — loaded models by name: folder scan, reload, reference counts, workspaces. */
#include "registry.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daed/serve/serve.h"
#include "sbuf.h"

struct dae_registry {
    char dir[1024];
    int n_workers;
    dae_file_map map;          /* model files: mapped or copied */
    dae_precision prec;        /* of the inference workspaces */
    pthread_mutex_t mu;        /* guards entries / n */
    pthread_mutex_t reload_mu; /* one reload at a time */
    dae_entry **entries;       /* sorted by name, each holds one reference */
    int n;
};

static void entry_free(dae_entry *e)
{
    for (int i = 0; i < e->n_ws; i++) {
        dae_workspace_free(e->ws[i]);
        dae_score_ws_free(e->sws[i]);
    }
    free(e->ws);
    free(e->ws_batch);
    free(e->ws_in);
    free(e->sws);
    free(e->sws_batch);
    dae_scorer_free(e->scorer);
    dae_modelfile_free(e->mf);
    free(e);
}

void dae_entry_ref(dae_entry *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}

void dae_entry_unref(dae_entry *e)
{
    if (e && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
        entry_free(e);
}

dae_registry *dae_registry_create(const char *dir, int n_workers, dae_error *err)
{
    dae_registry *r = calloc(1, sizeof *r);
    if (!r) {
        dae_error_set(err, DAE_ENOMEM, "registry: out of memory");
        return NULL;
    }
    if (strlen(dir) >= sizeof r->dir) {
        free(r);
        dae_error_set(err, DAE_EINVAL, "model folder path is too long (%zu bytes)",
                      strlen(dir));
        return NULL;
    }
    strcpy(r->dir, dir);
    r->n_workers = n_workers < 1 ? 1 : n_workers;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->reload_mu, NULL);
    return r;
}

void dae_registry_set_map(dae_registry *r, dae_file_map map)
{
    r->map = map;
}

void dae_registry_set_precision(dae_registry *r, dae_precision prec)
{
    r->prec = prec;
}

void dae_registry_free(dae_registry *r)
{
    if (!r)
        return;
    dae_registry_release(r->entries, r->n);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->reload_mu);
    free(r);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp((*(dae_entry *const *)a)->name, (*(dae_entry *const *)b)->name);
}

static void tasks_text(unsigned tasks, char *buf, size_t n)
{
    buf[0] = '\0';
    size_t len = 0;
    for (unsigned bit = 1; bit <= DAE_TASK_SCORE; bit <<= 1) {
        if (!(tasks & bit))
            continue;
        int w = snprintf(buf + len, n - len, "%s%s", len ? "," : "", dae_task_name(bit));
        if (w < 0 || (size_t)w >= n - len)
            break;
        len += (size_t)w;
    }
    if (!len)
        snprintf(buf, n, "none");
}

static dae_entry *entry_load(dae_registry *r, const char *file, const struct stat *st,
                             dae_error *err)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", r->dir, file);
    dae_modelfile_limits lim = dae_modelfile_default_limits();
    lim.map = r->map;
    dae_modelfile *mf = dae_modelfile_load(path, &lim, err);
    if (!mf)
        return NULL;
    dae_photo_facts facts;
    if (dae_photo_facts_parse(mf->config_json, dae_model_image_channels(mf->model), &facts,
                              err) != DAE_OK) {
        dae_error_prefix(err, "%s: ", path);
        dae_modelfile_free(mf);
        return NULL;
    }
    dae_entry *e = calloc(1, sizeof *e);
    if (e) {
        e->ws = calloc((size_t)r->n_workers, sizeof *e->ws);
        e->ws_batch = calloc((size_t)r->n_workers, sizeof *e->ws_batch);
        e->ws_in = calloc((size_t)r->n_workers, sizeof *e->ws_in);
        e->sws = calloc((size_t)r->n_workers, sizeof *e->sws);
        e->sws_batch = calloc((size_t)r->n_workers, sizeof *e->sws_batch);
    }
    if (!e || !e->ws || !e->ws_batch || !e->ws_in || !e->sws || !e->sws_batch) {
        if (e) {
            free(e->ws);
            free(e->ws_batch);
            free(e->ws_in);
            free(e->sws);
            free(e->sws_batch);
            free(e);
        }
        dae_modelfile_free(mf);
        dae_error_set(err, DAE_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    atomic_init(&e->refs, 1);
    e->mf = mf;
    e->name = mf->name;
    snprintf(e->file, sizeof e->file, "%s", file);
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->size = st->st_size;
    e->mtime = st->st_mtim;
    e->loaded_at = time(NULL);
    e->photo = facts;
    e->n_ws = r->n_workers;
    e->prec = r->prec;
    /* The anomaly scorer of the model's calibration; models whose output is not an image
     * of the input's shape (super-resolution) have none and cannot serve /v1/score. */
    dae_error serr = {0};
    e->scorer = dae_modelfile_scorer(mf, &serr);
    return e;
}

static int same_file(const dae_entry *e, const struct stat *st)
{
    return e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
           e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static void log_entry(const dae_entry *e, const char *what)
{
    const dae_model *m = e->mf->model;
    char tasks[128];
    tasks_text(e->mf->tasks, tasks, sizeof tasks);
    dae_log(DAE_LOG_INFO,
            "model %s %s: file %s, tasks %s, input [%d,%d,%d]%s, latent [%d,%d,%d], "
            "%zu parameters",
            e->name, what, e->file, tasks, m->in_shape.c, m->in_shape.h, m->in_shape.w,
            m->fully_conv ? " (fully convolutional)" : "", m->latent_shape.c,
            m->latent_shape.h, m->latent_shape.w, m->n_params);
}

/* The entry currently serving file `file`, in the old table (not referenced). */
static dae_entry *find_file(dae_entry **list, int n, const char *file)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i]->file, file) == 0)
            return list[i];
    return NULL;
}

/* The files of a reload that need loading (new or changed), loaded by up to n_workers
 * threads at once: a start-up with several models takes about 1/n_workers of the time.
 * Slot i: stat result, the loaded entry or its error. */
typedef struct preload {
    dae_registry *r;
    char **files;
    int n;
    struct stat *st;
    int *st_rc;      /* 0: st is valid */
    int *need;       /* load file i */
    dae_entry **got;
    dae_error *errs;
    atomic_int next;
} preload;

static void *preload_run(void *arg)
{
    preload *p = arg;
    for (;;) {
        int i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (i >= p->n)
            return NULL;
        if (p->need[i])
            p->got[i] = entry_load(p->r, p->files[i], &p->st[i], &p->errs[i]);
    }
}

static void preload_all(preload *p, dae_entry **old, int n_old)
{
    int todo = 0;
    for (int i = 0; i < p->n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", p->r->dir, p->files[i]);
        p->st_rc[i] = stat(path, &p->st[i]) != 0 ? errno : 0;
        dae_entry *prev = find_file(old, n_old, p->files[i]);
        p->need[i] = p->st_rc[i] == 0 && S_ISREG(p->st[i].st_mode) &&
                     !(prev && same_file(prev, &p->st[i]));
        todo += p->need[i];
    }
    int threads = todo < p->r->n_workers ? todo : p->r->n_workers;
    pthread_t th[16]; /* this thread and up to 16 more */
    int started = 0;
    if (threads > 17)
        threads = 17;
    atomic_init(&p->next, 0);
    for (; started < threads - 1; started++)
        if (pthread_create(&th[started], NULL, preload_run, p) != 0)
            break;
    preload_run(p);
    for (int k = 0; k < started; k++)
        pthread_join(th[k], NULL);
}

int dae_registry_reload(dae_registry *r, dae_reload_report *rep, dae_error *err)
{
    dae_reload_report local = {0};
    if (!rep)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    sbuf fails;
    sb_init(&fails);
    sb_str(&fails, "[");
    char **files = NULL;
    int n_files = 0, cap_files = 0, rc = DAE_OK;
    dae_entry **next = NULL;
    int n_next = 0;
    preload pre = {0};

    pthread_mutex_lock(&r->reload_mu);
    DIR *d = opendir(r->dir);
    if (!d) {
        rc = dae_error_set(err, DAE_EIO, "model folder %s: %s", r->dir, strerror(errno));
        goto out;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !ends_with(de->d_name, ".safetensors"))
            continue;
        if (n_files == cap_files) {
            int cap = cap_files ? cap_files * 2 : 16;
            char **f = realloc(files, (size_t)cap * sizeof *f);
            if (!f)
                break;
            files = f;
            cap_files = cap;
        }
        if (!(files[n_files] = strdup(de->d_name)))
            break;
        n_files++;
    }
    closedir(d);
    if (n_files)
        qsort(files, (size_t)n_files, sizeof *files, cmp_str);

    /* The old table, referenced, so entries we keep stay alive while we build. */
    int n_old;
    dae_entry **old = dae_registry_list(r, &n_old);
    next = calloc((size_t)n_files + 1, sizeof *next);
    if (!next || (n_old && !old)) {
        dae_registry_release(old, n_old);
        rc = dae_error_set(err, DAE_ENOMEM, "model folder %s: out of memory", r->dir);
        goto out;
    }
    pre.r = r;
    pre.files = files;
    pre.n = n_files;
    pre.st = calloc((size_t)n_files + 1, sizeof *pre.st);
    pre.st_rc = calloc((size_t)n_files + 1, sizeof *pre.st_rc);
    pre.need = calloc((size_t)n_files + 1, sizeof *pre.need);
    pre.got = calloc((size_t)n_files + 1, sizeof *pre.got);
    pre.errs = calloc((size_t)n_files + 1, sizeof *pre.errs);
    if (!pre.st || !pre.st_rc || !pre.need || !pre.got || !pre.errs) {
        dae_registry_release(old, n_old);
        rc = dae_error_set(err, DAE_ENOMEM, "model folder %s: out of memory", r->dir);
        goto out;
    }
    preload_all(&pre, old, n_old);
    for (int i = 0; i < n_files; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", r->dir, files[i]);
        const struct stat st = pre.st[i];
        dae_entry *prev = find_file(old, n_old, files[i]);
        dae_entry *e = NULL;
        dae_error lerr = pre.errs[i];
        if (pre.st_rc[i] != 0) {
            dae_error_set(&lerr, DAE_EIO, "%s: %s", path, strerror(pre.st_rc[i]));
        } else if (!S_ISREG(st.st_mode)) {
            dae_error_set(&lerr, DAE_EFORMAT, "%s: not a regular file", path);
        } else if (!pre.need[i]) {
            dae_entry_ref(prev);
            e = prev;
            rep->kept++;
        } else if ((e = pre.got[i])) {
            pre.got[i] = NULL;
            rep->loaded++;
        }
        if (e) {
            /* Two files declaring one name: the first file (by file name) wins. */
            for (int j = 0; j < n_next; j++) {
                if (strcmp(next[j]->name, e->name) == 0) {
                    dae_error_set(&lerr, DAE_EINVAL,
                                  "%s: model name %s is already served from %s", path,
                                  e->name, next[j]->file);
                    if (e != prev)
                        rep->loaded--;
                    else
                        rep->kept--;
                    dae_entry_unref(e);
                    e = NULL;
                    break;
                }
            }
        }
        if (e) {
            if (e != prev)
                log_entry(e, prev ? "reloaded" : "loaded");
            next[n_next++] = e;
            continue;
        }
        rep->failed++;
        if (prev) {
            dae_log(DAE_LOG_ERROR, "model file %s failed to load, previous version of %s "
                    "keeps serving: %s", files[i], prev->name, lerr.msg);
            dae_entry_ref(prev);
            next[n_next++] = prev;
        } else {
            dae_log(DAE_LOG_ERROR, "model file %s skipped: %s", files[i], lerr.msg);
        }
        if (fails.len > 1)
            sb_str(&fails, ",");
        sb_str(&fails, "{\"file\":");
        sb_json_str(&fails, files[i]);
        sb_str(&fails, ",\"error\":");
        sb_json_str(&fails, lerr.msg);
        sb_str(&fails, "}");
    }
    for (int i = 0; i < n_old; i++) {
        int still = 0;
        for (int j = 0; j < n_next && !still; j++)
            still = next[j] == old[i];
        if (!still) {
            rep->removed++;
            dae_log(DAE_LOG_INFO, "model %s unloaded (file %s %s)", old[i]->name, old[i]->file,
                    find_file(next, n_next, old[i]->file) ? "replaced" : "gone");
        }
    }
    if (n_next)
        qsort(next, (size_t)n_next, sizeof *next, cmp_entry);
    pthread_mutex_lock(&r->mu);
    dae_entry **retired = r->entries;
    int n_retired = r->n;
    r->entries = next;
    r->n = n_next;
    pthread_mutex_unlock(&r->mu);
    next = NULL;
    rep->serving = n_next;
    dae_registry_release(retired, n_retired);
    dae_registry_release(old, n_old);
out:
    pthread_mutex_unlock(&r->reload_mu);
    for (int i = 0; pre.got && i < pre.n; i++)
        if (pre.got[i])
            dae_entry_unref(pre.got[i]);
    free(pre.st);
    free(pre.st_rc);
    free(pre.need);
    free(pre.got);
    free(pre.errs);
    sb_str(&fails, "]");
    rep->failures_json = sb_take(&fails, NULL);
    if (rep == &local)
        free(local.failures_json);
    for (int i = 0; i < n_files; i++)
        free(files[i]);
    free(files);
    free(next);
    return rc;
}

dae_entry *dae_registry_get(dae_registry *r, const char *name)
{
    dae_entry *found = NULL;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n; i++) {
        if (strcmp(r->entries[i]->name, name) == 0) {
            found = r->entries[i];
            dae_entry_ref(found);
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return found;
}

dae_entry *dae_registry_default(dae_registry *r, unsigned task, const char *preferred)
{
    if (preferred && preferred[0])
        return dae_registry_get(r, preferred);
    dae_entry *found = NULL;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n; i++) {
        if (r->entries[i]->mf->tasks & task) {
            found = r->entries[i];
            dae_entry_ref(found);
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return found;
}

dae_entry **dae_registry_list(dae_registry *r, int *n)
{
    pthread_mutex_lock(&r->mu);
    dae_entry **list = r->n ? malloc((size_t)r->n * sizeof *list) : NULL;
    *n = list ? r->n : 0;
    for (int i = 0; i < *n; i++) {
        list[i] = r->entries[i];
        dae_entry_ref(list[i]);
    }
    pthread_mutex_unlock(&r->mu);
    return list;
}

void dae_registry_release(dae_entry **list, int n)
{
    for (int i = 0; i < n; i++)
        dae_entry_unref(list[i]);
    free(list);
}

int dae_registry_count(dae_registry *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

dae_workspace *dae_entry_workspace(dae_entry *e, int worker, int batch, dae_shape in,
                                   dae_error *err)
{
    if (worker < 0 || worker >= e->n_ws) {
        dae_error_set(err, DAE_EINTERNAL, "model %s: no workspace slot for worker %d",
                      e->name, worker);
        return NULL;
    }
    dae_shape have = e->ws_in[worker];
    if (e->ws[worker] && batch <= e->ws_batch[worker] && in.c == have.c && in.h <= have.h &&
        in.w <= have.w)
        return e->ws[worker];
    dae_workspace_free(e->ws[worker]);
    e->ws[worker] = NULL;
    /* Sized for this shape; the caller asks for its full batch chunk, so a worker that
     * keeps seeing one shape creates its workspace once. */
    dae_workspace *ws = dae_workspace_create(e->mf->model, batch, in, 0, err);
    if (ws && dae_workspace_set_precision(ws, e->prec, err)) {
        dae_workspace_free(ws);
        ws = NULL;
    }
    if (!ws) {
        e->ws_batch[worker] = 0;
        e->ws_in[worker] = (dae_shape){0, 0, 0};
        return NULL;
    }
    e->ws[worker] = ws;
    e->ws_batch[worker] = batch;
    e->ws_in[worker] = in;
    return ws;
}

dae_score_ws *dae_entry_score_ws(dae_entry *e, int worker, int batch, dae_error *err)
{
    if (!e->scorer) {
        dae_error_set(err, DAE_ESHAPE, "model %s cannot score: its output is not an image of "
                      "its input's shape", e->name);
        return NULL;
    }
    if (worker < 0 || worker >= e->n_ws) {
        dae_error_set(err, DAE_EINTERNAL, "model %s: no score slot for worker %d", e->name,
                      worker);
        return NULL;
    }
    if (e->sws[worker] && batch <= e->sws_batch[worker])
        return e->sws[worker];
    dae_score_ws_free(e->sws[worker]);
    e->sws_batch[worker] = 0;
    e->sws[worker] = dae_score_ws_create(e->scorer, batch, err);
    if (e->sws[worker])
        e->sws_batch[worker] = batch;
    return e->sws[worker];
}
