/* prom.h — daed's service metrics and their Prometheus text exposition (format 0.0.4).
 *
 * Counters and histograms are lock-free atomics, updated from any thread. Endpoints are a
 * fixed set of small integers (the route table's indices) named at creation, so label
 * cardinality is bounded whatever clients send.
 */
#ifndef DAED_PROM_H
#define DAED_PROM_H

#include <stddef.h>
#include <stdint.h>

typedef struct dae_prom dae_prom;

/* endpoint_names[0..n_endpoints) label the endpoints (copied by reference: they must
 * outlive the object, e.g. string literals). */
dae_prom *dae_prom_create(const char *const *endpoint_names, int n_endpoints);
void dae_prom_free(dae_prom *m);

/* One finished request: endpoint index (out of range counts as "other"), HTTP status,
 * wall time. */
void dae_prom_request(dae_prom *m, int endpoint, int status, double seconds);
/* One forward/encode/decode call of `batch` samples that took `seconds`. */
void dae_prom_batch(dae_prom *m, int batch, double seconds);
/* Time a job waited in the queue. */
void dae_prom_queue_wait(dae_prom *m, double seconds);
void dae_prom_reload(dae_prom *m, int failures);
/* One request split into `parts` parts run by several workers at once. */
void dae_prom_split(dae_prom *m, int parts);

/* Gauges read at exposition time. */
typedef struct dae_prom_gauges {
    int queue_depth;
    int models_loaded;
    int inflight;
    int ready;
    int workers;
    size_t body_bytes;          /* request bodies held (--body-budget) */
    int body_waiting;           /* requests waiting to read their body */
    uint64_t body_waited_total; /* requests that ever waited */
    uint64_t hangups_total;     /* requests whose client left while they ran (cancelled) */
    size_t body_budget;         /* --body-budget (0: no bound) */
    /* --pixel-budget (pixels.h): the estimated image-plane bytes of the requests let in,
     * how many they are, the bound (0: none), requests waiting now and that ever waited.
     * The budget never refuses a request (it queues), so there is no refusal count. */
    size_t pixel_bytes, pixel_budget;
    int pixel_requests, pixel_waiting;
    uint64_t pixel_waited_total;
} dae_prom_gauges;

/* The whole exposition as a malloc'd NUL-terminated text (*len without the NUL); NULL on
 * allocation failure. */
char *dae_prom_render(dae_prom *m, const dae_prom_gauges *g, size_t *len);

/* A request count, for tests: status 0 sums every status. */
uint64_t dae_prom_count(dae_prom *m, int endpoint, int status);

#endif
