/* registry.h — the models being served: loaded from a folder, reference-counted, reloaded.
 *
 * An entry is one loaded model file. Entries are immutable and reference-counted: a
 * request takes a reference when it picks its model and drops it when it completes, so a
 * reload that replaces or removes a model never frees one a request is still using (the
 * request finishes on the version it started with). Each entry also holds one workspace
 * slot per inference worker; slot i is only ever touched by worker i.
 *
 * Reload rescans the folder: unchanged files (same device, inode, size, mtime) keep their
 * entry, changed or new files are loaded, removed files are dropped. A file that fails to
 * load is logged with the reason and skipped; if an older version of it was serving, that
 * version keeps serving.
 */
#ifndef DAED_REGISTRY_H
#define DAED_REGISTRY_H

#include <stdatomic.h>
#include <sys/types.h>
#include <time.h>

#include "daed/core/error.h"
#include "daed/core/model.h"
#include "daed/io/modelfile.h"
#include "daed/io/photo.h"

typedef struct dae_entry {
    atomic_int refs;
    dae_modelfile *mf;       /* owned */
    const char *name;        /* mf->name */
    char file[256];          /* file name within the folder */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    time_t loaded_at;
    dae_photo_facts photo;   /* colour space, per-channel use, trained sigma range */
    /* per worker: workspace and the batch / input it was sized for */
    int n_ws;
    dae_workspace **ws;
    int *ws_batch;
    dae_shape *ws_in;
    /* the anomaly scorer of mf's calibration (NULL if the model cannot score), and per
     * worker its scratch and the batch it was sized for */
    dae_scorer *scorer;
    dae_score_ws **sws;
    int *sws_batch;
    dae_precision prec;           /* of the inference workspaces (the registry's) */
} dae_entry;

typedef struct dae_registry dae_registry;

/* Does not load anything yet: call dae_registry_reload. n_workers workspace slots per
 * entry. */
dae_registry *dae_registry_create(const char *dir, int n_workers, dae_error *err);
/* How model files are brought into memory (safetensors.h; default DAE_FILE_MAP_AUTO).
 * Call before the first reload. */
void dae_registry_set_map(dae_registry *r, dae_file_map map);
/* Precision of the entries' inference workspaces (model.h; default DAE_PREC_FP32): the
 * models loaded by later reloads get it. Scoring stays fp32 (its calibration was fitted
 * there). */
void dae_registry_set_precision(dae_registry *r, dae_precision prec);
void dae_registry_free(dae_registry *r);

typedef struct dae_reload_report {
    int loaded;    /* new or changed files loaded */
    int kept;      /* unchanged */
    int removed;   /* entries dropped (file gone) */
    int failed;    /* files that did not load */
    int serving;   /* models served after the reload */
    char *failures_json; /* malloc'd JSON array [{"file":..,"error":..}]; caller frees */
} dae_reload_report;

/* Rescan the folder (serialised: concurrent calls wait). DAE_EIO when the folder cannot be
 * read, DAE_ENOMEM when memory runs out listing it or building the new table: either way
 * the current models keep serving. report may be NULL. */
int dae_registry_reload(dae_registry *r, dae_reload_report *report, dae_error *err);

/* A referenced entry by model name, NULL if none. */
dae_entry *dae_registry_get(dae_registry *r, const char *name);
/* The default model of a task: `preferred` when not empty (NULL if not loaded), else the
 * first model by name declaring the task. Referenced. */
dae_entry *dae_registry_default(dae_registry *r, unsigned task, const char *preferred);
/* Referenced snapshot of every entry sorted by name; release with dae_registry_release. */
dae_entry **dae_registry_list(dae_registry *r, int *n);
void dae_registry_release(dae_entry **list, int n);
int dae_registry_count(dae_registry *r);

void dae_entry_ref(dae_entry *e);
/* Drops a reference; the last one frees the entry (model, workspaces). NULL is a no-op. */
void dae_entry_unref(dae_entry *e);

/* Worker `worker`'s workspace for running `batch` samples of shape `in` on e (created or
 * re-created larger on demand; batch and shape must pass dae_model_check_input). */
dae_workspace *dae_entry_workspace(dae_entry *e, int worker, int batch, dae_shape in,
                                   dae_error *err);

/* Worker `worker`'s scorer scratch for `batch` images (created or grown on demand).
 * NULL + DAE_ESHAPE if the model has no scorer. */
dae_score_ws *dae_entry_score_ws(dae_entry *e, int worker, int batch, dae_error *err);

#endif
