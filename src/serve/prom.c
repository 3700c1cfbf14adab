/* prom.c — lock-free service counters and histograms, rendered as Prometheus text. */
#include "prom.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "sbuf.h"

static const int STATUSES[] = {200, 400, 401, 404, 405, 413, 422, 500, 503};
#define N_STATUS ((int)(sizeof STATUSES / sizeof STATUSES[0]) + 1) /* + "other" */

static const double LAT_BUCKETS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define N_LAT ((int)(sizeof LAT_BUCKETS / sizeof LAT_BUCKETS[0]))
static const int BATCH_BUCKETS[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
#define N_BATCH ((int)(sizeof BATCH_BUCKETS / sizeof BATCH_BUCKETS[0]))

typedef struct hist {
    _Atomic uint64_t bucket[N_LAT + 1]; /* non-cumulative; last = +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
} hist;

struct dae_prom {
    const char *const *names;
    int n_ep;                     /* endpoints + 1 ("other") */
    _Atomic uint64_t *requests;   /* [n_ep][N_STATUS] */
    hist *latency;                /* [n_ep] */
    hist inference;
    hist queue_wait;
    _Atomic uint64_t batch_bucket[N_BATCH + 1];
    _Atomic uint64_t batch_count, batch_sum;
    _Atomic uint64_t reloads, reload_failures;
    _Atomic uint64_t splits, split_parts;
};

static int status_slot(int status)
{
    for (int i = 0; i < N_STATUS - 1; i++)
        if (STATUSES[i] == status)
            return i;
    return N_STATUS - 1;
}

static void hist_add(hist *h, double seconds)
{
    if (!(seconds >= 0))
        seconds = 0;
    int b = 0;
    while (b < N_LAT && seconds > LAT_BUCKETS[b])
        b++;
    atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, (uint64_t)(seconds * 1e9), memory_order_relaxed);
}

dae_prom *dae_prom_create(const char *const *names, int n_endpoints)
{
    dae_prom *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->names = names;
    m->n_ep = n_endpoints + 1;
    m->requests = calloc((size_t)m->n_ep * N_STATUS, sizeof *m->requests);
    m->latency = calloc((size_t)m->n_ep, sizeof *m->latency);
    if (!m->requests || !m->latency) {
        dae_prom_free(m);
        return NULL;
    }
    return m;
}

void dae_prom_free(dae_prom *m)
{
    if (!m)
        return;
    free(m->requests);
    free(m->latency);
    free(m);
}

static int ep_slot(const dae_prom *m, int endpoint)
{
    return endpoint >= 0 && endpoint < m->n_ep - 1 ? endpoint : m->n_ep - 1;
}

void dae_prom_request(dae_prom *m, int endpoint, int status, double seconds)
{
    int e = ep_slot(m, endpoint);
    atomic_fetch_add_explicit(&m->requests[e * N_STATUS + status_slot(status)], 1,
                              memory_order_relaxed);
    hist_add(&m->latency[e], seconds);
}

void dae_prom_batch(dae_prom *m, int batch, double seconds)
{
    int b = 0;
    while (b < N_BATCH && batch > BATCH_BUCKETS[b])
        b++;
    atomic_fetch_add_explicit(&m->batch_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->batch_count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->batch_sum, (uint64_t)(batch > 0 ? batch : 0),
                              memory_order_relaxed);
    hist_add(&m->inference, seconds);
}

void dae_prom_queue_wait(dae_prom *m, double seconds)
{
    hist_add(&m->queue_wait, seconds);
}

void dae_prom_reload(dae_prom *m, int failures)
{
    atomic_fetch_add_explicit(&m->reloads, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->reload_failures, (uint64_t)(failures > 0 ? failures : 0),
                              memory_order_relaxed);
}

void dae_prom_split(dae_prom *m, int parts)
{
    atomic_fetch_add_explicit(&m->splits, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->split_parts, (uint64_t)parts, memory_order_relaxed);
}

uint64_t dae_prom_count(dae_prom *m, int endpoint, int status)
{
    int e = ep_slot(m, endpoint);
    uint64_t n = 0;
    for (int s = 0; s < N_STATUS; s++)
        if (!status || s == status_slot(status))
            n += atomic_load(&m->requests[e * N_STATUS + s]);
    return n;
}

static void render_hist(sbuf *b, const char *name, const char *label, hist *h)
{
    uint64_t cum = 0;
    const char *sep = label[0] ? "," : "";
    for (int i = 0; i <= N_LAT; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        if (i < N_LAT)
            dae_sb_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, label, sep,
                          LAT_BUCKETS[i], (unsigned long long)cum);
        else
            dae_sb_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, label, sep,
                          (unsigned long long)cum);
    }
    const char *lb = label[0] ? "{" : "", *rb = label[0] ? "}" : "";
    dae_sb_printf(b, "%s_sum%s%s%s %.9f\n", name, lb, label, rb,
                  (double)atomic_load(&h->sum_ns) / 1e9);
    dae_sb_printf(b, "%s_count%s%s%s %llu\n", name, lb, label, rb,
                  (unsigned long long)cum);
}

/* The --body-budget bound and the --pixel-budget gauges. */
static void render_budgets(sbuf *b, const dae_prom_gauges *g)
{
    dae_sb_printf(b,
              "# HELP daed_body_budget_bytes --body-budget (0: no bound).\n"
              "# TYPE daed_body_budget_bytes gauge\ndaed_body_budget_bytes %zu\n"
              "# HELP daed_pixel_bytes Image-plane bytes of the requests let in by "
              "--pixel-budget (estimated from their image headers).\n"
              "# TYPE daed_pixel_bytes gauge\ndaed_pixel_bytes %zu\n"
              "# HELP daed_pixel_budget_bytes --pixel-budget (0: no bound).\n"
              "# TYPE daed_pixel_budget_bytes gauge\ndaed_pixel_budget_bytes %zu\n"
              "# HELP daed_pixel_requests Requests holding image planes now.\n"
              "# TYPE daed_pixel_requests gauge\ndaed_pixel_requests %d\n"
              "# HELP daed_pixel_waiting Requests waiting for --pixel-budget (body read, "
              "not yet decoded).\n"
              "# TYPE daed_pixel_waiting gauge\ndaed_pixel_waiting %d\n"
              "# HELP daed_pixel_waited_total Requests that had to wait for --pixel-budget.\n"
              "# TYPE daed_pixel_waited_total counter\ndaed_pixel_waited_total %llu\n",
              g->body_budget, g->pixel_bytes, g->pixel_budget, g->pixel_requests,
              g->pixel_waiting, (unsigned long long)g->pixel_waited_total);
}

char *dae_prom_render(dae_prom *m, const dae_prom_gauges *g, size_t *len)
{
    sbuf b;
    dae_sb_init(&b);
    dae_sb_str(&b, "# HELP daed_requests_total HTTP requests by endpoint and status.\n"
                   "# TYPE daed_requests_total counter\n");
    for (int e = 0; e < m->n_ep; e++) {
        const char *name = e < m->n_ep - 1 ? m->names[e] : "other";
        for (int s = 0; s < N_STATUS; s++) {
            uint64_t v = atomic_load(&m->requests[e * N_STATUS + s]);
            if (!v)
                continue;
            if (s < N_STATUS - 1)
                dae_sb_printf(&b, "daed_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n",
                              name, STATUSES[s], (unsigned long long)v);
            else
                dae_sb_printf(&b, "daed_requests_total{endpoint=\"%s\",status=\"other\"} "
                              "%llu\n", name, (unsigned long long)v);
        }
    }
    dae_sb_str(&b, "# HELP daed_request_duration_seconds Time from a request's headers to "
                   "its answer being sent.\n"
                   "# TYPE daed_request_duration_seconds histogram\n");
    for (int e = 0; e < m->n_ep; e++) {
        if (!atomic_load(&m->latency[e].count))
            continue;
        char label[128];
        snprintf(label, sizeof label, "endpoint=\"%s\"",
                 e < m->n_ep - 1 ? m->names[e] : "other");
        render_hist(&b, "daed_request_duration_seconds", label, &m->latency[e]);
    }
    dae_sb_str(&b, "# HELP daed_inference_duration_seconds Time of one batched model call.\n"
                   "# TYPE daed_inference_duration_seconds histogram\n");
    render_hist(&b, "daed_inference_duration_seconds", "", &m->inference);
    dae_sb_str(&b, "# HELP daed_queue_wait_seconds Time a job waited for a worker.\n"
                   "# TYPE daed_queue_wait_seconds histogram\n");
    render_hist(&b, "daed_queue_wait_seconds", "", &m->queue_wait);
    dae_sb_str(&b, "# HELP daed_batch_size Samples per model call.\n"
                   "# TYPE daed_batch_size histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i <= N_BATCH; i++) {
        cum += atomic_load(&m->batch_bucket[i]);
        if (i < N_BATCH)
            dae_sb_printf(&b, "daed_batch_size_bucket{le=\"%d\"} %llu\n", BATCH_BUCKETS[i],
                          (unsigned long long)cum);
        else
            dae_sb_printf(&b, "daed_batch_size_bucket{le=\"+Inf\"} %llu\n",
                          (unsigned long long)cum);
    }
    dae_sb_printf(&b, "daed_batch_size_sum %llu\ndaed_batch_size_count %llu\n",
                  (unsigned long long)atomic_load(&m->batch_sum), (unsigned long long)cum);
    dae_sb_printf(&b,
                  "# HELP daed_inference_seconds_total Seconds spent in model calls.\n"
                  "# TYPE daed_inference_seconds_total counter\n"
                  "daed_inference_seconds_total %.9f\n",
                  (double)atomic_load(&m->inference.sum_ns) / 1e9);
    dae_sb_printf(&b,
                  "# HELP daed_queue_depth Jobs waiting for a worker.\n"
                  "# TYPE daed_queue_depth gauge\ndaed_queue_depth %d\n"
                  "# HELP daed_inflight_requests Requests being handled.\n"
                  "# TYPE daed_inflight_requests gauge\ndaed_inflight_requests %d\n"
                  "# HELP daed_workers Inference worker threads.\n"
                  "# TYPE daed_workers gauge\ndaed_workers %d\n"
                  "# HELP daed_models_loaded Models being served.\n"
                  "# TYPE daed_models_loaded gauge\ndaed_models_loaded %d\n"
                  "# HELP daed_ready 1 when serving, 0 while starting or draining.\n"
                  "# TYPE daed_ready gauge\ndaed_ready %d\n"
                  "# HELP daed_reloads_total Model folder reloads.\n"
                  "# TYPE daed_reloads_total counter\ndaed_reloads_total %llu\n"
                  "# HELP daed_reload_failures_total Model files that failed to load on a "
                  "reload.\n"
                  "# TYPE daed_reload_failures_total counter\ndaed_reload_failures_total %llu\n"
                  "# HELP daed_split_requests_total Requests of many samples split over idle "
                  "workers.\n"
                  "# TYPE daed_split_requests_total counter\ndaed_split_requests_total %llu\n"
                  "# HELP daed_split_parts_total Parts those requests ran in.\n"
                  "# TYPE daed_split_parts_total counter\ndaed_split_parts_total %llu\n",
                  g->queue_depth, g->inflight, g->workers, g->models_loaded, g->ready,
                  (unsigned long long)atomic_load(&m->reloads),
                  (unsigned long long)atomic_load(&m->reload_failures),
                  (unsigned long long)atomic_load(&m->splits),
                  (unsigned long long)atomic_load(&m->split_parts));
    dae_sb_printf(&b,
                  "# HELP daed_body_bytes Request body bytes held now (counted against "
                  "--body-budget).\n"
                  "# TYPE daed_body_bytes gauge\ndaed_body_bytes %zu\n"
                  "# HELP daed_body_waiting Requests waiting for --body-budget before their "
                  "body is read.\n"
                  "# TYPE daed_body_waiting gauge\ndaed_body_waiting %d\n"
                  "# HELP daed_body_waited_total Requests that had to wait for --body-budget.\n"
                  "# TYPE daed_body_waited_total counter\ndaed_body_waited_total %llu\n"
                  "# HELP daed_client_gone_total Requests cancelled because their client "
                  "closed the connection while they ran.\n"
                  "# TYPE daed_client_gone_total counter\ndaed_client_gone_total %llu\n",
                  g->body_bytes, g->body_waiting, (unsigned long long)g->body_waited_total,
                  (unsigned long long)g->hangups_total);
    render_budgets(&b, g);
    return dae_sb_take(&b, len);
}
