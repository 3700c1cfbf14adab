/* internal.h — state shared by the files of src/serve: the server, a request, the job ops.
 *
 * A request (dae_req) lives from the first access-handler call to MHD's completion
 * callback. Its ownership passes to a worker while it is queued or running (the HTTP
 * thread has suspended the connection and does not touch it); the worker's last act is
 * MHD_resume_connection, after which only the HTTP thread touches it again.
 */
#ifndef DAED_SERVE_INTERNAL_H
#define DAED_SERVE_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "http.h"
#include "daed/io/image.h"
#include "prom.h"
#include "registry.h"
#include "daed/serve/serve.h"
#include "daed/serve/serve_config.h"
#include "workpool.h"
#include "admit.h"
#include "errcode.h"
#include "hangup.h"
#include "jobs.h"
#include "sbuf.h"

/* What a worker does for a job; jobs batch together only with the same op and model. */
typedef enum { OP_FORWARD, OP_ENCODE, OP_DECODE, OP_INTERPOLATE, OP_TILE, OP_PART } job_op;

typedef struct worker_ctx {
    float *stage;   /* batch staging buffer, grows, reused */
    size_t stage_cap;
    /* dae_infer_chunk's last answer, for this model and workspace shape (a model loaded later
     * at the same address only gets a batch size sized for another model: never wrong
     * results, at worst a batch off the --batch-memory budget until the shape changes) */
    const dae_model *chunk_model;
    dae_shape chunk_in;
    int chunk;
} worker_ctx;

/* dae_req.nonlocal: the non-local stage after a photo model (core/nlm.h, tiles.c) */
enum { NONLOCAL_AUTO = 0, NONLOCAL_ON, NONLOCAL_OFF };

typedef struct dae_req dae_req;

struct dae_server {
    dae_serve_config cfg;
    struct MHD_Daemon *mhd;
    int port;
    int n_workers;
    dae_registry *reg;
    dae_workpool *pool;
    dae_prom *prom;
    worker_ctx *wctx;         /* [n_workers] */
    dae_image_limits img_lim;
    atomic_int inflight;      /* requests between first handler call and completion */
    atomic_int draining;
    atomic_int ready;
    /* control: the run loop waits here for signals, stop and reload requests */
    pthread_mutex_t ctl_mu;
    pthread_cond_t ctl_cv;
    int want_stop, want_reload;
    dae_req *reload_waiters;  /* admin reload requests, suspended */
    int sig_pipe[2];          /* self-pipe: signal handler -> control thread */
    pthread_t sig_thread;
    int sig_started;
    struct dae_deadline *deadline; /* --request-timeout watchdog (deadline.c); NULL: off */
    dae_admit *admit;         /* --body-budget (admit.c) */
    dae_admit *pixels;        /* --pixel-budget (pixels.h): image planes in flight */
    dae_hangup *hangup;       /* clients gone while their request runs (hangup.c) */
    dae_jobs *jobs;           /* asynchronous requests (jobs.h, jobs_http.c) */
};

/* PH_ADMIT: suspended after the headers until --body-budget lets the body in.
 * PH_PIXELS: suspended after the body until --pixel-budget lets its images be decoded. */
enum { PH_HEADERS, PH_ADMIT, PH_BODY, PH_PIXELS, PH_WAITING, PH_DONE };

struct dae_req {
    dae_job job;              /* workpool link */
    dae_server *s;
    struct MHD_Connection *conn;
    const dae_route *route;   /* NULL for unknown routes */
    char param[128];          /* the {name} path segment */
    unsigned method;
    char method_text[8];
    char path[160];           /* for the access log (truncated) */
    int64_t t0_ns;
    int phase;
    /* body */
    char *body;
    size_t len, cap;
    size_t declared;          /* Content-Length (0: none or chunked) */
    dae_admit_ticket ticket;  /* its place in --body-budget */
    dae_admit_ticket pix;     /* its place in --pixel-budget (from submit to its answer) */
    size_t discarded;         /* body bytes dropped after an error */
    /* request facts captured on the first call */
    int is_json;              /* Content-Type application/json */
    int want_json;            /* Accept: application/json */
    int want_png;             /* Accept: image/png (explicit) */
    int want_jpeg;            /* Accept: image/jpeg (explicit) */
    int has_sigma;
    double sigma;             /* ?sigma= noise level hint, 0-255 scale */
    int has_est;              /* no ?sigma=: est_sigma holds the decoded first image's */
    double est_sigma;         /* noise level estimate (photo.h dae_noise_estimate) */
    int est_c;                /* the channels it was estimated on (tiles.c reuses it) */
    int correlated;           /* its noise reads as correlated (photo.h DAE_NOISE_CORR_*) */
    double corr_level;        /* then the level it is routed with and its model is given */
    int nonlocal;             /* ?nonlocal=: NONLOCAL_AUTO (absent), _ON (1), _OFF (0) */
    int resize;               /* ?resize=1 */
    int heatmap;              /* ?heatmap=1 */
    int has_threshold;
    double threshold;         /* ?threshold= */
    int steps;                /* ?steps= (interpolate), 0 = from body/default */
    int encoding;             /* ?encoding=: 0 mirror input, 1 pixels, 2 png */
    /* model */
    dae_entry *entry;         /* referenced */
    char model_name[64];
    int op;
    /* answer */
    int status;
    char *resp;               /* malloc'd body */
    size_t resp_len;
    const char *resp_type;    /* static string */
    unsigned allow;           /* 405: Allow header */
    char extra_name[32], extra_value[64]; /* one extra header (X-Heatmap-Max) */
    const char *const *headers; /* more headers: static name, value pairs, NULL-ended */
    int batch;                /* samples in the model call that served it */
    int answered;             /* response queued */
    int close;                /* answer with Connection: close */
    int linger;               /* error decided at the headers: read and drop the body first */
    dae_req *next_waiter;
    /* cancellation and progress, read by workers and the jobs table */
    dae_job_progress prog;    /* cancel flag (client gone, job deleted), started, tiles */
    dae_hangup_node watch;    /* its socket in s->hangup while a worker has it */
    int async;                /* Prefer: respond-async: answered 202, runs as a job */
    dae_job_rec *jobrec;      /* a job's own request (conn NULL): its record (jobs.h) */
    char answer_model[64];    /* X-Model of an answer replayed from a job */
};

/* ---- answers (reply.c) ---- */
/* Set the response: takes ownership of body (malloc'd). */
void dae_req_answer(dae_req *r, int status, const char *type, char *body, size_t len);
/* The same with b's text (taken from b); a buffer that ran out of memory answers 503
 * out_of_memory instead. */
void dae_req_answer_sb(dae_req *r, int status, const char *type, sbuf *b);
/* A JSON error answer {"error":{"code","message"}} (v2 routes: {"error": message}), its
 * status the code's (errcode.h); 503s carry Retry-After. */
void dae_req_error(dae_req *r, dae_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An error answer from a dae_error (its code mapped by dae_errcode_of). */
void dae_req_fail(dae_req *r, const dae_error *e);
/* Queue r's answer (status, body, headers) on its connection; r is then PH_DONE. */
enum MHD_Result dae_req_queue_answer(dae_req *r);

/* ---- to the workers and back (submit.c) ---- */
/* Hand r to the worker pool (suspending the connection) or answer 503 when full. */
void dae_req_submit(dae_req *r, int op);
/* The rest of dae_req_submit once --pixel-budget let r in: suspend, to the pool. */
void dae_req_run(dae_req *r);
/* Resume a suspended request after its answer was set (worker side); a job's request
 * (no connection) goes to the job table instead. Either way its --pixel-budget charge ends. */
void dae_req_resume(dae_req *r);
/* r's image planes are charged against --pixel-budget (pixels.h): 1 when it may run now,
 * 0 when it waits (queued; dae_req_pixels_granted hands it on when it is let in). */
int dae_req_pixels_enter(dae_req *r);
/* Hand on the requests --pixel-budget let in (the list dae_admit_leave/open return): a
 * connection is resumed (its next handler call submits it), a job goes to the pool. */
void dae_req_pixels_granted(dae_admit_ticket *t);

/* ---- the request state machine (request.c, query.c) ---- */
/* libmicrohttpd's callbacks (MHD_start_daemon in server.c): the access handler, the
 * request's completion, and a connection's start and close (--request-timeout). */
enum MHD_Result dae_req_on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls);
void dae_req_on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                          enum MHD_RequestTerminationCode toe);
void dae_req_on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                           enum MHD_ConnectionNotificationCode code);
/* Resume the requests --body-budget let in (the list dae_admit_leave/open return). */
void dae_req_admitted_resume(dae_admit_ticket *t);
/* Free r's body (parsed, or the request is over) and give its bytes back to --body-budget,
 * resuming the requests that may now read theirs. Any thread that owns r. */
void dae_req_body_free(dae_req *r);
/* The query parameters of an image route into r; 0, or -1 with a 400 answer set. */
int dae_req_read_query(dae_req *r);
/* CLOCK_MONOTONIC now, in nanoseconds (server.c). */
int64_t dae_now_ns(void);

/* reqcheck.c: framing (Content-Length with Transfer-Encoding, HTTP/1.1 without Host) and
 * control characters (%00) in the path or query. 0, or -1 with a 400 answer set. */
int dae_req_check(dae_req *r, const char *url, const char *version);
/* MHD_OPTION_UNESCAPE_CALLBACK: percent-decoding, with %00 turned into a byte dae_req_check
 * refuses instead of a NUL that would silently cut the path or a parameter short. */
size_t dae_req_unescape(void *cls, struct MHD_Connection *c, char *s);

/* ---- handlers (v1.c, v2.c, web.c) run on the HTTP thread ---- */
void dae_v1_handle(dae_req *r);
void dae_v2_handle(dae_req *r);
/* GET /, /docs, /web/<path>: a file of --web-dir (web.h). */
void dae_web_handle(dae_req *r);
/* One start-up log line: where the page comes from, or that it is missing. */
void dae_web_log_start(const dae_serve_config *cfg);
/* /v1/denoise without ?model=: point r at the denoiser for an image of w x h with c
 * channels (route.h; r->entry holds the default or an earlier pick). Either thread that
 * owns r. DAE_ESHAPE (err says why) when no model takes it. */
int dae_v1_denoise_route(dae_req *r, int w, int h, int c, dae_error *err);

/* Models loaded and not draining. */
int dae_server_is_ready(dae_server *s);

/* ---- the worker side (parse.c, infer.c, answer.c) ---- */
/* A request's parsed work: n samples of one input shape, and the model's results. */
typedef struct work {
    int n;                 /* samples */
    int batched;           /* came as a list: answer with a list */
    int form;              /* how images came: 0 raw body, 1 JSON pixels, 2 JSON base64 */
    dae_image *orig;       /* [n] inputs after channel conversion, original size */
    /* [n] or NULL: a raw PNG or JPEG body (so n = 1) of a request held as 8-bit
     * (dae_tiles_8bit), decoded to 8-bit planes; orig[i] then holds only its size and
     * channels (px and alpha NULL) until dae_work_to_float makes it the float image */
    dae_image8 *orig8;
    float **mask;          /* [n] h*w known-pixel masks at original size (inpaint), or NULL */
    int resized;           /* x was resized from orig to the model's nominal size */
    float *x;              /* n * |in| model inputs */
    dae_shape in;
    float *y;              /* n * |out| model outputs (filled by the batch run) */
    dae_shape out;
    int steps;             /* interpolate */
    int want_output, want_latent; /* v2: requested outputs */
    int v2_flat;           /* v2: input came as [B, N] */
    int tiled;             /* run in tiles (tiles.c): x unused, orig holds the inputs */
    /* [n] or NULL: a tiled noise-map model's level for each image (0-255): ?sigma=, or
     * estimated from the image (dae_noise_estimate) */
    float *noise;
    /* the non-local stage (core/nlm.h, tiles.c) may run on this one-image answer: white is
     * its image's white-noise estimate (0-255) */
    int nonlocal;
    double white;
    char v2_id[128];       /* v2: request id, echoed */
} work;

void dae_work_free(work *w);
/* parse.c: image i's noise level estimate (dae_noise_estimate on its planes as held, 8-bit
 * or float; 0-255), < 0 when out of memory. */
double dae_work_noise_estimate(const work *w, int i);
/* parse.c: the same estimate one scale coarser (dae_noise_estimate_coarse). */
double dae_work_noise_estimate_coarse(const work *w, int i);
/* parse.c: w's 8-bit images (orig8) into float ones (orig); a no-op without them. */
int dae_work_to_float(work *w, dae_error *err);
/* The input shape a workspace needs for an op on `in` (decode: the image a code stands
 * for). */
dae_shape dae_infer_ws_shape(const dae_model *m, int op, dae_shape in);

/* parse.c: the request body into w (images fitted to the model, codes, v2 tensors). */
int dae_parse_request(dae_req *r, work *w, dae_error *err);
/* JSON body -> cJSON with the configured caps (400 with the byte offset on bad JSON). */
struct cJSON *dae_parse_json_body(dae_req *r, dae_error *err);
/* answer.c: --max-answer checked from the parsed images, before the model runs (images
 * in, images out: denoise, inpaint, superres); DAE_ELIMIT naming the estimate. */
int dae_answer_precheck(const dae_req *r, const work *w, dae_error *err);
/* answer.c: r's answer from w after the model ran. */
int dae_answer_images(dae_req *r, work *w, dae_error *err);
/* Clip n values to [0, 1] in place (NaN to 0): every image answer, and v2 "output". */
void dae_answer_clip01(float *px, size_t n);
int dae_answer_encode(dae_req *r, work *w, dae_error *err);
int dae_answer_score(dae_req *r, work *w, int worker, dae_error *err);

void dae_infer_run(void *ctx, int worker, dae_job **jobs, int n);
/* Samples per model call for workspace input shape ws_in: --max-batch at the model's
 * nominal size, proportionally fewer for larger inputs, then halved until one worker's
 * workspace for the model fits --batch-memory (at least 1). Remembered per worker for the
 * last model and shape, so the sizing runs when they change, not on every batch. */
int dae_infer_chunk(const dae_server *s, int worker, const dae_model *m, dae_shape ws_in);
/* Worker `wc`'s staging buffer of at least n floats (grown, reused); NULL when out of memory. */
float *dae_infer_stage(worker_ctx *wc, size_t n);
void dae_infer_cancel(void *ctx, dae_job *job);
/* Encode b samples of r's model in worker `worker`'s workspace; *z malloc'd. */
int dae_infer_encode(dae_req *r, int worker, const float *x, int b, dae_shape in, float **z,
                     dae_shape *zs, dae_error *err);

/* v2.c, worker side: parse an infer body into w; answer from w after the forward. */
int dae_v2_prepare(dae_req *r, work *w, dae_error *err);
void dae_v2_finish(dae_req *r, work *w, int worker);

/* tiles.c: fully convolutional denoisers run in tiles through the pool. */
/* The tile radius of r's model when /v1/denoise should run it in tiles, else -1. */
int dae_tiles_radius(const dae_req *r);
/* Will r hold its planes as 8-bit (tiled, a PNG or JPEG body answered as an image)? 2:
 * input and output, 1: the input only (a per-channel model in a colour space that mixes
 * the channels keeps float outputs), 0: no. For its --pixel-budget estimate (pixels.h). */
int dae_tiles_8bit(const dae_req *r);
/* Channel-convert and check w's images for the tiled path (instead of fit_images). */
int dae_tiles_prepare(dae_req *r, work *w, dae_error *err);
/* Take over r and its parsed work: the tiles go to the pool; the worker finishing the last
 * one answers and resumes r. *w is left empty. */
void dae_tiles_start(dae_req *r, work *w, int worker);
/* Run n tile jobs (one model) on worker `worker`. */
void dae_tiles_run(dae_server *s, int worker, dae_job **jobs, int n);
void dae_tiles_cancel(dae_job *job);

/* ---- asynchronous requests (jobs_http.c; the table is jobs.h) ---- */
/* Does a Prefer header ask for respond-async (RFC 7240)? NULL: 0. */
int dae_jobs_http_prefer_async(const char *prefer);
/* HTTP thread: r (its op, model and body set, as dae_req_submit would take it) becomes a job:
 * a copy without a connection goes to the pool, r is answered 202 with its Location (or
 * 503 when the job table, its memory or the queue is full). */
void dae_jobs_http_submit(dae_req *r);
/* GET, HEAD, DELETE /v1/jobs/{id}; GET, HEAD /v1/jobs/{id}/result. */
void dae_jobs_http_handle(dae_req *r);
/* Worker side (dae_req_resume of a job's request): its answer goes to the table, j is freed. */
void dae_jobs_http_done(dae_req *j);
/* A job let in by --pixel-budget: to the pool (answered 503 in its record if refused). */
void dae_jobs_http_run(dae_req *j);

/* ---- control (control.c) ---- */
/* POST /v1/admin/reload: r waits (suspended) for the control thread's reload. */
void dae_server_request_reload(dae_req *r);
/* Reload the models now and answer the waiting admin requests; 1 when a file failed. */
int dae_server_reload_now(dae_server *s, dae_req *waiters);
/* SIGHUP, SIGTERM and SIGINT to the control thread (a self-pipe and its reader thread). */
int dae_server_signals_start(dae_server *s, dae_error *err);
/* Stop the signal thread and give the signals back their default actions. */
void dae_server_signals_stop(dae_server *s);

#endif
