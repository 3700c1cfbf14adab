/* fuzz_http.c — libFuzzer target: whole HTTP requests through a running daed (see
 * fuzz_daemon.h): method, URL, headers and body, written in pieces split at points the
 * input chooses.
 *
 * Input: one flag byte, then "METHOD TARGET\n", header lines "Name: value\n", an empty
 * line, the body. Flag bits: 0 adds "Authorization: Bearer <the key>"; 1-2 the framing:
 * 0 Content-Length, 1 chunked, 2 the bytes after the flag byte sent verbatim and the
 * write side closed (a client going away, any framing), 3 the request twice on one
 * keep-alive connection; 3-7 seed the split points (0: one write).
 * In modes 0, 1 and 3 the harness owns the framing headers (Content-Length,
 * Transfer-Encoding, Connection, Host are dropped from the input), so a missing answer is
 * a hang, not a request still waiting for its body.
 *
 * FUZZ_OPTIONS: -max_len=32768
 */
#include <ctype.h>
#include <stdint.h>

#include "fuzz_daemon.h"

static int is_framing_header(const char *l, size_t n)
{
    static const char *const names[] = {"content-length", "transfer-encoding", "connection",
                                        "host", "expect"};
    size_t colon = 0;
    while (colon < n && l[colon] != ':')
        colon++;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t k = strlen(names[i]);
        if (colon == k && !strncasecmp(l, names[i], k))
            return 1;
    }
    return 0;
}

/* Builds the request (CRLF lines, harness framing); *method_bits and *target_needs_key
 * for the oracle. -1 when the input has no request line. */
static int build(fuzz_buf *b, const uint8_t *d, size_t n, int flags, int last,
                 unsigned *method_bits, int *no_key_route)
{
    const char *t = (const char *)d, *end = t + n;
    const char *nl = memchr(t, '\n', n);
    if (!nl)
        return -1;
    /* request line: METHOD TARGET (no spaces or controls inside either) */
    const char *sp = memchr(t, ' ', (size_t)(nl - t));
    if (!sp || sp == t || sp + 1 >= nl)
        return -1;
    char method[32], target[4096];
    size_t ml = (size_t)(sp - t), tl = (size_t)(nl - sp - 1);
    if (tl && sp[tl] == '\r')
        tl--;
    if (ml >= sizeof method || tl == 0 || tl >= sizeof target)
        return -1;
    memcpy(method, t, ml);
    method[ml] = '\0';
    memcpy(target, sp + 1, tl);
    target[tl] = '\0';
    for (size_t i = 0; i < ml; i++)
        if (!isgraph((unsigned char)method[i]))
            return -1;
    for (size_t i = 0; i < tl; i++)
        if (!isgraph((unsigned char)target[i]))
            return -1;
    fb_str(b, method);
    fb_str(b, " ");
    fb_str(b, target);
    fb_str(b, " HTTP/1.1\r\nHost: daed\r\n");
    int has_auth = flags & 1;
    if (has_auth)
        fb_str(b, "Authorization: Bearer " FUZZ_API_KEY "\r\n");
    const char *p = nl + 1;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e)
            e = end;
        size_t ll = (size_t)(e - p);
        if (ll && p[ll - 1] == '\r')
            ll--;
        if (ll == 0) {
            p = e < end ? e + 1 : end;
            break;
        }
        if (!is_framing_header(p, ll)) {
            if (ll >= 14 && !strncasecmp(p, "authorization:", 14))
                has_auth = 1;
            fb_add(b, p, ll);
            fb_str(b, "\r\n");
        }
        p = e < end ? e + 1 : end;
    }
    if (last)
        fb_str(b, "Connection: close\r\n");
    int chunked = ((flags >> 1) & 3) == 1;
    fb_body(b, (const uint8_t *)p, (size_t)(end - p), chunked, (uint32_t)n * 2654435761u);
    *method_bits = dae_http_method(method);
    *no_key_route = !has_auth && fuzz_path_needs_key(target, *method_bits);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int flags = data[0];
    int mode = (flags >> 1) & 3;
    fuzz_buf b = {0};
    unsigned method = 0;
    int no_key = 0, reps = mode == 3 ? 2 : 1;
    fuzz_exchange x = {0};
    if (mode == 2) {
        x.data = data + 1;
        x.len = size - 1;
        x.half_close = 1;
    } else {
        for (int i = 0; i < reps; i++)
            if (build(&b, data + 1, size - 1, flags, i == reps - 1, &method, &no_key) != 0) {
                free(b.p);
                return 0;
            }
        x.data = (const uint8_t *)b.p;
        x.len = b.n;
    }
    x.split_seed = (uint32_t)(flags >> 3);
    if (x.split_seed)
        x.split_seed = x.split_seed * 2654435761u ^ (uint32_t)size;
    if (x.len)
        fuzz_exchange_run(&x);
    size_t pos = 0;
    fuzz_answer an;
    int answers = 0;
    while (x.ans && fuzz_answer_next(x.ans, x.ans_len, &pos, method == DAE_HTTP_HEAD, &an)) {
        fuzz_answer_check(&an, mode != 2 && no_key);
        answers++;
    }
    /* The harness framed a complete request: it must be answered (libmicrohttpd's own
     * refusals of a malformed request are answers too). */
    if (mode != 2)
        FUZZ_CHECK(answers >= 1);
    free(x.ans);
    free(b.p);
    return 0;
}
