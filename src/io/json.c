/* json.c — RFC 8259 validation before cJSON, and duplicate keys (see daed/json.h). */
#include "daed/io/json.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DEPTH_CAP = 256 };

typedef struct jcur {
    const unsigned char *s; /* start of the text */
    size_t i, n;            /* position, length */
    dae_error *err;
} jcur;

static int bad(jcur *c, const char *what)
{
    return dae_error_set(c->err, DAE_EFORMAT, "invalid JSON at byte %zu: %s", c->i, what);
}

static void skip_ws(jcur *c)
{
    while (c->i < c->n) {
        unsigned char b = c->s[c->i];
        if (b != ' ' && b != '\t' && b != '\n' && b != '\r')
            return;
        c->i++;
    }
}

static int hex4(jcur *c, unsigned *v)
{
    *v = 0;
    for (int k = 0; k < 4; k++, c->i++) {
        if (c->i >= c->n)
            return bad(c, "unterminated \\u escape");
        unsigned char b = c->s[c->i];
        int d = b >= '0' && b <= '9' ? b - '0' : b >= 'a' && b <= 'f' ? b - 'a' + 10
                                               : b >= 'A' && b <= 'F' ? b - 'A' + 10 : -1;
        if (d < 0)
            return bad(c, "\\u must be followed by 4 hex digits");
        *v = *v << 4 | (unsigned)d;
    }
    return DAE_OK;
}

/* After the backslash. */
static int escape(jcur *c)
{
    if (c->i >= c->n)
        return bad(c, "unterminated string");
    unsigned char b = c->s[c->i++];
    if (b != 'u')
        return strchr("\"\\/bfnrt", b) && b ? DAE_OK : bad(c, "unknown escape");
    unsigned v;
    if (hex4(c, &v))
        return DAE_EFORMAT;
    if (v >= 0xDC00 && v <= 0xDFFF)
        return bad(c, "\\u escape of a lone low surrogate");
    if (v < 0xD800 || v > 0xDBFF)
        return DAE_OK;
    if (c->i + 2 > c->n || c->s[c->i] != '\\' || c->s[c->i + 1] != 'u')
        return bad(c, "high surrogate not followed by a \\u low surrogate");
    c->i += 2;
    if (hex4(c, &v))
        return DAE_EFORMAT;
    return v >= 0xDC00 && v <= 0xDFFF ? DAE_OK : bad(c, "high surrogate not followed by a "
                                                          "low surrogate");
}

/* One UTF-8 sequence of 2-4 bytes starting at a byte >= 0x80 (RFC 3629 table). */
static int utf8(jcur *c)
{
    const unsigned char *p = c->s + c->i;
    size_t left = c->n - c->i;
    unsigned char b = p[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (b >= 0xC2 && b <= 0xDF)
        len = 2;
    else if (b >= 0xE0 && b <= 0xEF)
        len = 3, lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
    else if (b >= 0xF0 && b <= 0xF4)
        len = 4, lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
    else
        return bad(c, "invalid UTF-8 lead byte");
    if (left < len || p[1] < lo || p[1] > hi)
        return bad(c, "invalid UTF-8 sequence");
    for (size_t k = 2; k < len; k++)
        if (p[k] < 0x80 || p[k] > 0xBF)
            return bad(c, "invalid UTF-8 sequence");
    c->i += len;
    return DAE_OK;
}

/* At the opening quote. */
static int string(jcur *c)
{
    size_t start = c->i++;
    while (c->i < c->n) {
        unsigned char b = c->s[c->i];
        if (b == '"') {
            c->i++;
            return DAE_OK;
        }
        if (b < 0x20)
            return bad(c, "raw control character in a string (escape it)");
        if (b == '\\') {
            c->i++;
            if (escape(c))
                return DAE_EFORMAT;
        } else if (b >= 0x80) {
            if (utf8(c))
                return DAE_EFORMAT;
        } else {
            c->i++;
        }
    }
    c->i = start;
    return bad(c, "unterminated string");
}

static int digits(jcur *c)
{
    size_t start = c->i;
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9')
        c->i++;
    return c->i > start;
}

static int number(jcur *c)
{
    if (c->s[c->i] == '-')
        c->i++;
    if (c->i < c->n && c->s[c->i] == '0') {
        c->i++;
        if (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9')
            return bad(c, "a number may not start with 0 followed by a digit");
    } else if (!digits(c)) {
        return bad(c, "expected a digit");
    }
    if (c->i < c->n && c->s[c->i] == '.') {
        c->i++;
        if (!digits(c))
            return bad(c, "expected a digit after the decimal point");
    }
    if (c->i < c->n && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
        c->i++;
        if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-'))
            c->i++;
        if (!digits(c))
            return bad(c, "expected a digit in the exponent");
    }
    return DAE_OK;
}

static int scalar(jcur *c)
{
    unsigned char b = c->s[c->i];
    if (b == '"')
        return string(c);
    if (b == '-' || (b >= '0' && b <= '9'))
        return number(c);
    static const char *const lit[3] = {"true", "false", "null"};
    for (int k = 0; k < 3; k++) {
        size_t l = strlen(lit[k]);
        if (c->n - c->i >= l && memcmp(c->s + c->i, lit[k], l) == 0) {
            c->i += l;
            return DAE_OK;
        }
    }
    return bad(c, "expected a value (object, array, string, number, true, false, null)");
}

typedef struct jstack {
    int depth;
    char kind[DEPTH_CAP + 1];     /* '[' or '{' */
    size_t count[DEPTH_CAP + 1];  /* elements so far (arrays) */
    size_t values;
} jstack;

/* Count the value starting at c->i against the limits. */
static int count_value(jcur *c, jstack *st, const dae_json_limits *lim)
{
    if (st->depth && st->kind[st->depth - 1] == '[' && ++st->count[st->depth - 1] >
                                                           lim->max_array)
        return dae_error_set(c->err, DAE_EINVAL,
                             "JSON array with more than %zu elements (at byte %zu)",
                             lim->max_array, c->i);
    if (++st->values > lim->max_values)
        return dae_error_set(c->err, DAE_EINVAL, "JSON body with more than %zu values (at "
                             "byte %zu)", lim->max_values, c->i);
    return DAE_OK;
}

/* A value, or an array or object opened (pushed). *opened says which. */
static int value(jcur *c, jstack *st, const dae_json_limits *lim, int max_depth, int *opened)
{
    *opened = 0;
    if (c->i >= c->n)
        return bad(c, "expected a value, found the end");
    if (count_value(c, st, lim))
        return DAE_EINVAL;
    unsigned char b = c->s[c->i];
    if (b != '[' && b != '{')
        return scalar(c);
    if (st->depth >= max_depth)
        return dae_error_set(c->err, DAE_EINVAL, "JSON nesting deeper than %d at byte %zu",
                             max_depth, c->i);
    st->kind[st->depth] = (char)b;
    st->count[st->depth++] = 0;
    c->i++;
    *opened = 1;
    return DAE_OK;
}

/* A key and its colon (at the opening quote). */
static int key(jcur *c)
{
    if (c->i >= c->n || c->s[c->i] != '"')
        return bad(c, "expected a string key");
    if (string(c))
        return DAE_EFORMAT;
    skip_ws(c);
    if (c->i >= c->n || c->s[c->i] != ':')
        return bad(c, "expected ':' after the key");
    c->i++;
    return DAE_OK;
}

/* After a complete value inside a container: ',' then the next member, or the close. Sets
 * *more when a member follows (cursor at its value). */
static int after_value(jcur *c, jstack *st, int *more)
{
    char k = st->kind[st->depth - 1];
    *more = 0;
    skip_ws(c);
    if (c->i >= c->n)
        return bad(c, k == '[' ? "unclosed array" : "unclosed object");
    unsigned char b = c->s[c->i++];
    if (b == (k == '[' ? ']' : '}')) {
        st->depth--;
        return DAE_OK;
    }
    if (b != ',') {
        c->i--;
        return bad(c, k == '[' ? "expected ',' or ']'" : "expected ',' or '}'");
    }
    skip_ws(c);
    if (k == '{' && key(c))
        return DAE_EFORMAT;
    skip_ws(c);
    *more = 1;
    return DAE_OK;
}

/* Just inside '[' or '{': the close, or the first member (cursor at its value). */
static int first_member(jcur *c, jstack *st, int *more)
{
    char k = st->kind[st->depth - 1];
    skip_ws(c);
    *more = 0;
    if (c->i < c->n && c->s[c->i] == (k == '[' ? ']' : '}')) {
        c->i++;
        st->depth--;
        return DAE_OK;
    }
    if (k == '{' && key(c))
        return DAE_EFORMAT;
    skip_ws(c);
    *more = 1;
    return DAE_OK;
}

int dae_json_check(const char *buf, size_t len, const dae_json_limits *lim, dae_error *err)
{
    dae_json_limits none = {DEPTH_CAP, (size_t)-1, (size_t)-1};
    if (!lim)
        lim = &none;
    int max_depth = lim->max_depth < DEPTH_CAP ? lim->max_depth : DEPTH_CAP;
    jcur c = {(const unsigned char *)buf, 0, len, err};
    jstack st;
    st.depth = 0;
    st.values = 0;
    skip_ws(&c);
    int opened, more = 1, rc = value(&c, &st, lim, max_depth, &opened);
    while (rc == DAE_OK && st.depth > 0) {
        if (opened)
            rc = first_member(&c, &st, &more);
        else
            rc = after_value(&c, &st, &more);
        opened = 0;
        if (rc == DAE_OK && more)
            rc = value(&c, &st, lim, max_depth, &opened);
    }
    if (rc)
        return rc;
    skip_ws(&c);
    return c.i == c.n ? DAE_OK : bad(&c, "data after the JSON value");
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char *dae_json_object_duplicate_key(const cJSON *obj, int *oom)
{
    *oom = 0;
    int n = cJSON_GetArraySize(obj);
    if (n < 2)
        return NULL;
    const char **keys = malloc((size_t)n * sizeof *keys);
    if (!keys) {
        *oom = 1;
        return NULL;
    }
    int k = 0;
    for (const cJSON *c = obj->child; c && k < n; c = c->next)
        keys[k++] = c->string ? c->string : "";
    qsort(keys, (size_t)k, sizeof *keys, cmp_str_ptr);
    const char *dup = NULL;
    for (int i = 1; i < k && !dup; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0)
            dup = keys[i];
    free(keys);
    return dup;
}

const char *dae_json_duplicate_key(const cJSON *root, int *oom)
{
    *oom = 0;
    if (!root)
        return NULL;
    const char *dup = cJSON_IsObject(root) ? dae_json_object_duplicate_key(root, oom)
                                           : NULL;
    for (const cJSON *c = root->child; c && !dup && !*oom; c = c->next)
        if (cJSON_IsObject(c) || cJSON_IsArray(c))
            dup = dae_json_duplicate_key(c, oom);
    return dup;
}

cJSON *dae_json_parse(const char *json, size_t len, const char *what, dae_error *err)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root)
        dae_error_set(err, DAE_EINVAL, "%s: invalid JSON near byte %zu", what,
                      end && end >= json ? (size_t)(end - json) : (size_t)0);
    return root;
}

double dae_json_float(float v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)v);
    double d = strtod(buf, NULL);
    return (float)d == v ? d : (double)v;
}
