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

static void free_files(char **files, int n)
{
    for (int i = 0; i < n; i++)
        free(files[i]);
    free(files);
}

/* The *.safetensors names of folder dir (no hidden files), sorted. All or nothing: a read
 * error or out of memory is an error, never a shorter list (which would unload the models
 * of the names left out). */
static int list_files(const char *dir, char ***out, int *n_out, dae_error *err)
{
    char **files = NULL;
    int n = 0, cap = 0, rc = DAE_OK;
    DIR *d = opendir(dir);
    if (!d)
        return dae_error_set(err, DAE_EIO, "model folder %s: %s", dir, strerror(errno));
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                rc = dae_error_set(err, DAE_EIO, "model folder %s: %s", dir, strerror(errno));
            break;
        }
        if (de->d_name[0] == '.' || !ends_with(de->d_name, ".safetensors"))
            continue;
        if (n == cap) {
            int c = cap ? cap * 2 : 16;
            char **f = realloc(files, (size_t)c * sizeof *f);
            if (!f) {
                rc = dae_error_set(err, DAE_ENOMEM, "model folder %s: out of memory listing "
                                   "%d files", dir, n + 1);
                break;
            }
            files = f;
            cap = c;
        }
        if (!(files[n] = strdup(de->d_name))) {
            rc = dae_error_set(err, DAE_ENOMEM, "model folder %s: out of memory listing %d "
                               "files", dir, n + 1);
            break;
        }
        n++;
    }
    closedir(d);
    if (rc != DAE_OK) {
        free_files(files, n);
        return rc;
    }
    if (n)
        qsort(files, (size_t)n, sizeof *files, cmp_str);
    *out = files;
    *n_out = n;
    return DAE_OK;
}

/* One reload in progress: the folder's files, the table serving now and the one being
 * built. */
typedef struct reload {
    dae_registry *r;
    dae_reload_report *rep;
    char **files;
    int n_files;
    dae_entry **old;  /* the table serving now, referenced: kept entries stay alive */
    int n_old;
    dae_entry **next; /* the table being built, each entry referenced */
    int n_next;
    preload pre;
    sbuf fails;       /* the report's failures as a JSON array */
} reload;

static int reload_oom(reload *rl, dae_error *err)
{
    return dae_error_set(err, DAE_ENOMEM, "model folder %s: out of memory", rl->r->dir);
}

/* The old table and room for the new one. */
static int reload_prepare(reload *rl, dae_error *err)
{
    int n = rl->n_files;
    int have = dae_registry_count(rl->r); /* only a reload changes it: we hold reload_mu */
    rl->old = dae_registry_list(rl->r, &rl->n_old);
    if (have && !rl->old)
        return reload_oom(rl, err);
    rl->next = calloc((size_t)n + 1, sizeof *rl->next);
    preload *p = &rl->pre;
    *p = (preload){.r = rl->r, .files = rl->files, .n = n};
    p->st = calloc((size_t)n + 1, sizeof *p->st);
    p->st_rc = calloc((size_t)n + 1, sizeof *p->st_rc);
    p->need = calloc((size_t)n + 1, sizeof *p->need);
    p->got = calloc((size_t)n + 1, sizeof *p->got);
    p->errs = calloc((size_t)n + 1, sizeof *p->errs);
    if (!rl->next || !p->st || !p->st_rc || !p->need || !p->got || !p->errs)
        return reload_oom(rl, err);
    return DAE_OK;
}

static void reload_free(reload *rl)
{
    dae_registry_release(rl->old, rl->n_old);
    for (int i = 0; rl->pre.got && i < rl->pre.n; i++)
        dae_entry_unref(rl->pre.got[i]);
    free(rl->pre.st);
    free(rl->pre.st_rc);
    free(rl->pre.need);
    free(rl->pre.got);
    free(rl->pre.errs);
    free_files(rl->files, rl->n_files);
    dae_registry_release(rl->next, rl->n_next); /* not published: an error */
}

/* File i's entry: the unchanged one kept, or the one just loaded; NULL with *lerr set. */
static dae_entry *reconcile_file(reload *rl, int i, dae_entry *prev, dae_error *lerr)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", rl->r->dir, rl->files[i]);
    const preload *p = &rl->pre;
    *lerr = p->errs[i];
    if (p->st_rc[i] != 0) {
        dae_error_set(lerr, DAE_EIO, "%s: %s", path, strerror(p->st_rc[i]));
        return NULL;
    }
    if (!S_ISREG(p->st[i].st_mode)) {
        dae_error_set(lerr, DAE_EFORMAT, "%s: not a regular file", path);
        return NULL;
    }
    dae_entry *e = NULL;
    if (!p->need[i]) {
        dae_entry_ref(prev);
        e = prev;
    } else if (!(e = p->got[i])) {
        return NULL;
    } else {
        p->got[i] = NULL;
    }
    /* Two files declaring one name: the first file (by file name) wins. */
    for (int j = 0; j < rl->n_next; j++) {
        if (strcmp(rl->next[j]->name, e->name) == 0) {
            dae_error_set(lerr, DAE_EINVAL, "%s: model name %s is already served from %s",
                          path, e->name, rl->next[j]->file);
            dae_entry_unref(e);
            return NULL;
        }
    }
    return e;
}

/* File i failed to load (lerr): its previous version, if any, keeps serving. */
static void reload_failed(reload *rl, int i, dae_entry *prev, const dae_error *lerr)
{
    rl->rep->failed++;
    if (prev) {
        dae_log(DAE_LOG_ERROR, "model file %s failed to load, previous version of %s "
                "keeps serving: %s", rl->files[i], prev->name, lerr->msg);
        dae_entry_ref(prev);
        rl->next[rl->n_next++] = prev;
    } else {
        dae_log(DAE_LOG_ERROR, "model file %s skipped: %s", rl->files[i], lerr->msg);
    }
    sbuf *f = &rl->fails;
    if (f->len > 1)
        dae_sb_str(f, ",");
    dae_sb_str(f, "{\"file\":");
    dae_sb_json_str(f, rl->files[i]);
    dae_sb_str(f, ",\"error\":");
    dae_sb_json_str(f, lerr->msg);
    dae_sb_str(f, "}");
}

/* The new table from the files: kept, loaded, or the old version of a failed file. */
static void reconcile(reload *rl)
{
    for (int i = 0; i < rl->n_files; i++) {
        dae_entry *prev = find_file(rl->old, rl->n_old, rl->files[i]);
        dae_error lerr = {0};
        dae_entry *e = reconcile_file(rl, i, prev, &lerr);
        if (!e) {
            reload_failed(rl, i, prev, &lerr);
            continue;
        }
        if (e == prev) {
            rl->rep->kept++;
        } else {
            rl->rep->loaded++;
            log_entry(e, prev ? "reloaded" : "loaded");
        }
        rl->next[rl->n_next++] = e;
    }
    for (int i = 0; i < rl->n_old; i++) {
        int still = 0;
        for (int j = 0; j < rl->n_next && !still; j++)
            still = rl->next[j] == rl->old[i];
        if (!still) {
            rl->rep->removed++;
            dae_log(DAE_LOG_INFO, "model %s unloaded (file %s %s)", rl->old[i]->name,
                    rl->old[i]->file,
                    find_file(rl->next, rl->n_next, rl->old[i]->file) ? "replaced" : "gone");
        }
    }
}

/* Swap the new table in; the old one's references go (requests keep theirs). */
static void publish(reload *rl)
{
    dae_registry *r = rl->r;
    if (rl->n_next)
        qsort(rl->next, (size_t)rl->n_next, sizeof *rl->next, cmp_entry);
    pthread_mutex_lock(&r->mu);
    dae_entry **retired = r->entries;
    int n_retired = r->n;
    r->entries = rl->next;
    r->n = rl->n_next;
    pthread_mutex_unlock(&r->mu);
    rl->rep->serving = rl->n_next;
    rl->next = NULL;
    rl->n_next = 0;
    dae_registry_release(retired, n_retired);
}

int dae_registry_reload(dae_registry *r, dae_reload_report *rep, dae_error *err)
{
    dae_reload_report local = {0};
    if (!rep)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    reload rl = {.r = r, .rep = rep};
    dae_sb_init(&rl.fails);
    dae_sb_str(&rl.fails, "[");
    pthread_mutex_lock(&r->reload_mu);
    int rc = list_files(r->dir, &rl.files, &rl.n_files, err);
    if (rc == DAE_OK)
        rc = reload_prepare(&rl, err);
    if (rc == DAE_OK) {
        preload_all(&rl.pre, rl.old, rl.n_old);
        reconcile(&rl);
        publish(&rl);
    }
    reload_free(&rl);
    pthread_mutex_unlock(&r->reload_mu);
    dae_sb_str(&rl.fails, "]");
    rep->failures_json = dae_sb_take(&rl.fails, NULL);
    if (rep == &local)
        free(local.failures_json);
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
