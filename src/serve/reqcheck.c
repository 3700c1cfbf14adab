/* reqcheck.c — request hygiene on the first handler call, before routing decides anything:
 * message framing (RFC 9112) and the bytes of the path and query. libmicrohttpd 0.9.75
 * serves a request with both Content-Length and Transfer-Encoding (chunked wins: request
 * smuggling behind a proxy that trusts Content-Length), an HTTP/1.1 request without Host,
 * and hands over "?model=name%00x" as the C string "name". */
#include <string.h>
#include <strings.h>

#include "internal.h"

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* A byte a name or number never holds: NUL (from %00), other controls, DEL. */
static int bad_byte(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return 1;
    return 0;
}

typedef struct bad_param {
    char key[40];
    int found;
} bad_param;

static enum MHD_Result check_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    bad_param *b = cls;
    (void)kind;
    if (bad_byte(key, key_size) || (value && bad_byte(value, value_size))) {
        b->found = 1;
        size_t i = 0;
        for (; i < key_size && i + 1 < sizeof b->key; i++)
            b->key[i] = (key[i] > 0x20 && key[i] < 0x7f) ? key[i] : '?';
        b->key[i] = '\0';
        return MHD_NO;
    }
    return MHD_YES;
}

int dae_req_check(dae_req *r, const char *url, const char *version)
{
    struct MHD_Connection *c = r->conn;
    if (header(c, MHD_HTTP_HEADER_CONTENT_LENGTH) &&
        header(c, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        r->close = 1;
        dae_req_error(r, ERR_INVALID_ARGUMENT, "both Content-Length and Transfer-Encoding: "
                      "the body's length is ambiguous (RFC 9112 6.1); the connection is "
                      "closed");
        return -1;
    }
    const char *te = header(c, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (te && strcasecmp(te, "chunked") != 0) {
        /* libmicrohttpd would read such a body until the client hangs up. */
        r->close = 1;
        dae_req_error(r, ERR_NOT_IMPLEMENTED, "Transfer-Encoding: %.40s: only chunked is "
                      "understood (RFC 9112 6.1); the connection is closed", te);
        return -1;
    }
    if (version && !strcmp(version, MHD_HTTP_VERSION_1_1) && !header(c, MHD_HTTP_HEADER_HOST)) {
        dae_req_error(r, ERR_INVALID_ARGUMENT, "an HTTP/1.1 request needs a Host header "
                      "(RFC 9112 3.2)");
        return -1;
    }
    if (bad_byte(url, strlen(url))) {
        dae_req_error(r, ERR_INVALID_ARGUMENT, "control character in the path");
        return -1;
    }
    bad_param b = {"", 0};
    MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, check_param, &b);
    if (b.found) {
        dae_req_error(r, ERR_INVALID_ARGUMENT, "query parameter %s: a NUL (%%00) or other "
                      "control character in its name or value", b.key);
        return -1;
    }
    return 0;
}

size_t dae_req_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    /* %00 would end the C string the handler sees ("name%00x" -> "name"): make it a DEL,
     * which dae_req_check refuses like any control character. */
    for (char *p = s; (p = strstr(p, "%00")) != NULL; p += 3)
        p[1] = '7', p[2] = 'f';
    return MHD_http_unescape(s);
}
