/* json.h — strict JSON (RFC 8259) checking before cJSON, which is lenient: it accepts
 * leading zeros (028, -01), "2.", raw control characters in strings, bad \u escapes, NUL or
 * formfeed between tokens, and returns the first of duplicate keys.
 *
 * dae_json_check validates the text in one pass, without recursion or allocation, against
 * the grammar and limits: whitespace is space, tab, LF, CR only; strings are valid UTF-8
 * (no overlong forms, no surrogates) with no raw control characters and only the escapes
 * \" \\ \/ \b \f \n \r \t \uXXXX, a \u surrogate only as a high-low pair; numbers as in
 * the grammar; exactly one value (any type) then only whitespace; no byte-order mark.
 * Every JSONTestSuite y_ file passes, every n_ file fails (tests/check_json.c). After
 * cJSON has built the tree, dae_json_duplicate_key finds repeated keys in any object.
 */
#ifndef DAED_JSON_H
#define DAED_JSON_H

#include <stddef.h>

#include "daed/core/error.h"

struct cJSON;

typedef struct dae_json_limits {
    int max_depth;     /* nesting of arrays and objects, at most 256 (capped there) */
    size_t max_array;  /* elements of any one array */
    size_t max_values; /* values in total (scalars, arrays and objects) */
} dae_json_limits;

/* DAE_OK, DAE_EFORMAT naming the fault and its byte offset ("invalid JSON at byte 12: a
 * number may not start with 0 followed by a digit"), or DAE_EINVAL for an exceeded limit
 * ("JSON nesting deeper than 16 at byte 16", "JSON array with more than N elements (at
 * byte B)", "JSON body with more than N values (at byte B)"). NULL lim: no limits but
 * the depth cap of 256. */
int dae_json_check(const char *buf, size_t len, const dae_json_limits *lim, dae_error *err);

/* The first key (in sorted order) that occurs twice in one object anywhere in the tree,
 * else NULL. Keys are compared as cJSON decoded them (up to an escaped NUL). Recursion is
 * as deep as the tree (bounded by dae_json_check's depth). *oom set on allocation failure. */
const char *dae_json_duplicate_key(const struct cJSON *root, int *oom);
/* The same for the keys of object obj alone (not its children). */
const char *dae_json_object_duplicate_key(const struct cJSON *obj, int *oom);

/* cJSON_ParseWithLengthOpts of len bytes; on a syntax error NULL and DAE_EINVAL with
 * "WHAT: invalid JSON near byte N". Lenient as cJSON is: for untrusted text run
 * dae_json_check first. The tree is the caller's (cJSON_Delete). */
struct cJSON *dae_json_parse(const char *json, size_t len, const char *what, dae_error *err);

/* v as the shortest decimal that reads back to the same float (0.2f -> 0.2, not
 * 0.20000000298023224), for JSON a person reads. */
double dae_json_float(float v);

#endif
