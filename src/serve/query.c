/* query.c — the query parameters of the image routes (?resize, ?heatmap, ?threshold,
 * ?steps, ?encoding, ?sigma, ?nonlocal, ?model), each checked against what the document
 * allows. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *query(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

/* "1" -> 1, "0" or absent -> 0, anything else -1: the document says 0 or 1, and a
 * "true" accepted here would be refused by a stricter proxy or client generator. */
static int parse_flag(const char *v)
{
    if (!v || !strcmp(v, "0"))
        return 0;
    return !strcmp(v, "1") ? 1 : -1;
}

/* Reads the query parameters of the image routes; 0 or answered with 400. */
int dae_req_read_query(dae_req *r)
{
    struct MHD_Connection *c = r->conn;
    const char *v;
    if ((r->resize = parse_flag(query(c, "resize"))) < 0) {
        dae_req_error(r, ERR_INVALID_ARGUMENT, "query resize=%.32s: expected 0 or 1",
                      query(c, "resize"));
        return -1;
    }
    if ((r->heatmap = parse_flag(query(c, "heatmap"))) < 0) {
        dae_req_error(r, ERR_INVALID_ARGUMENT, "query heatmap=%.32s: expected 0 or 1",
                      query(c, "heatmap"));
        return -1;
    }
    if ((v = query(c, "threshold"))) {
        char *end;
        errno = 0;
        double t = strtod(v, &end);
        if (!*v || *end || errno || !(t >= 0) || t > 1e30) {
            dae_req_error(r, ERR_INVALID_ARGUMENT,
                          "query threshold=%.32s: expected a number >= 0", v);
            return -1;
        }
        r->threshold = t;
        r->has_threshold = 1;
    }
    if ((v = query(c, "steps"))) {
        char *end;
        long n = strtol(v, &end, 10);
        if (!*v || *end || n < 2 || n > r->s->cfg.max_steps) {
            dae_req_error(r, ERR_INVALID_ARGUMENT, "query steps=%.32s: expected 2 to %d", v,
                          r->s->cfg.max_steps);
            return -1;
        }
        r->steps = (int)n;
    }
    if ((v = query(c, "encoding"))) {
        if (!strcmp(v, "pixels"))
            r->encoding = 1;
        else if (!strcmp(v, "png"))
            r->encoding = 2;
        else {
            dae_req_error(r, ERR_INVALID_ARGUMENT,
                          "query encoding=%.32s: expected pixels or png", v);
            return -1;
        }
    }
    if ((v = query(c, "sigma"))) {
        char *end;
        errno = 0;
        double sg = strtod(v, &end);
        if (!*v || *end || errno || !(sg >= 0 && sg <= 255)) {
            dae_req_error(r, ERR_INVALID_ARGUMENT,
                          "query sigma=%.32s: expected a noise level from 0 to 255", v);
            return -1;
        }
        r->sigma = sg;
        r->has_sigma = 1;
    }
    if ((v = query(c, "nonlocal"))) {
        int on = parse_flag(v);
        if (on < 0) {
            dae_req_error(r, ERR_INVALID_ARGUMENT, "query nonlocal=%.32s: expected 0 or 1", v);
            return -1;
        }
        r->nonlocal = on ? NONLOCAL_ON : NONLOCAL_OFF;
    }
    const char *m = query(c, "model");
    if (m) {
        if (!*m || strlen(m) >= sizeof r->model_name) {
            dae_req_error(r, ERR_INVALID_ARGUMENT, "query model: expected a model name of 1 to "
                          "%zu characters", sizeof r->model_name - 1);
            return -1;
        }
        snprintf(r->model_name, sizeof r->model_name, "%s", m);
    }
    return 0;
}
