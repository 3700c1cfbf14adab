/* check_json.c — the strict JSON check (daed/json.h): limits, and JSONTestSuite
 * (tests/conformance/jsontestsuite): every y_ file passes and cJSON parses it, every n_ file
 * is refused with a message; duplicate keys are found at any depth. */
#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/io/json.h"

#define SUITE_DIR "tests/conformance/jsontestsuite/"

static const struct {
    const char *json;
    int depth;
    size_t array, values;
    int rc;
    const char *msg;
} CASES[] = {
    {"{\"a\":[1,2,3]}", 4, 3, 10, DAE_OK, NULL},
    {"{\"a\":[1,2,3,4]}", 4, 3, 10, DAE_EINVAL, "more than 3 elements"},
    {"[[[[1]]]]", 3, 10, 10, DAE_EINVAL, "nesting deeper than 3"},
    {"[[[1]]]", 3, 10, 10, DAE_OK, NULL},
    {"[1,2,3,4,5]", 4, 100, 4, DAE_EINVAL, "more than 4 values"},
    {"{\"s\":\"[[[[[[,,,,]]]]]]\"}", 2, 1, 10, DAE_OK, NULL}, /* brackets inside strings */
    {"{\"s\":\"a\\\"[[[[\"}", 2, 1, 10, DAE_OK, NULL},        /* escaped quote */
    {"[\"a\",\"b\",{\"c\":1}]", 4, 3, 10, DAE_OK, NULL},
    {"[\"a\",\"b\",{\"c\":1},2]", 4, 3, 10, DAE_EINVAL, "more than 3 elements"},
    {"[1.5e3, -2, true, null]", 4, 4, 10, DAE_OK, NULL},
    {"{\"w\": 028}", 4, 4, 10, DAE_EFORMAT, "at byte 7: a number may not start with 0"},
    {"[2.]", 4, 4, 10, DAE_EFORMAT, "at byte 3: expected a digit after the decimal"},
    {"[-01]", 4, 4, 10, DAE_EFORMAT, "at byte 3: a number may not start with 0"},
    {"[\"a\tb\"]", 4, 4, 10, DAE_EFORMAT, "at byte 3: raw control character"},
    {"[\"\\uqqqq\"]", 4, 4, 10, DAE_EFORMAT, "4 hex digits"},
    {"[1]\f", 4, 4, 10, DAE_EFORMAT, "at byte 3: data after the JSON value"},
    {"[\"\\ud800\"]", 4, 4, 10, DAE_EFORMAT, "high surrogate not followed"},
    {"[\"\\ud834\\udd1e\"]", 4, 4, 10, DAE_OK, NULL},
    {"", 4, 4, 10, DAE_EFORMAT, "at byte 0: expected a value, found the end"},
};

START_TEST(test_cases)
{
    dae_error e = {0};
    dae_json_limits lim = {CASES[_i].depth, CASES[_i].array, CASES[_i].values};
    const char *j = CASES[_i].json;
    int rc = dae_json_check(j, strlen(j), &lim, &e);
    ck_assert_msg(rc == CASES[_i].rc, "%s: rc %d (%s), want %d", j, rc, e.msg, CASES[_i].rc);
    if (CASES[_i].msg)
        ck_assert_msg(strstr(e.msg, CASES[_i].msg), "%s: \"%s\"", j, e.msg);
}
END_TEST

START_TEST(test_nul_between_tokens)
{
    dae_error e = {0};
    ck_assert_int_eq(dae_json_check("[1,\0 2]", 7, NULL, &e), DAE_EFORMAT);
    ck_assert_int_eq(dae_json_check("{}\0", 3, NULL, &e), DAE_EFORMAT);
    ck_assert_int_eq(dae_json_check("{}", 2, NULL, &e), DAE_OK);
}
END_TEST

START_TEST(test_deep_bomb)
{
    /* 100k open brackets are refused at the cap, without recursion. */
    size_t n = 100000;
    char *s = malloc(n);
    memset(s, '[', n);
    dae_error e = {0};
    dae_json_limits lim = {16, 100, 1000000};
    ck_assert_int_eq(dae_json_check(s, n, &lim, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "nesting deeper than 16 at byte 16"));
    ck_assert_int_eq(dae_json_check(s, n, NULL, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "nesting deeper than 256"));
    free(s);
}
END_TEST

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    ck_assert_int_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

START_TEST(test_jsontestsuite)
{
    DIR *d = opendir(SUITE_DIR);
    ck_assert_msg(d != NULL, "cannot open " SUITE_DIR);
    int y = 0, n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char kind = de->d_name[0];
        if ((kind != 'y' && kind != 'n') || de->d_name[1] != '_')
            continue;
        char path[512];
        snprintf(path, sizeof path, SUITE_DIR "%s", de->d_name);
        size_t len;
        char *b = slurp(path, &len);
        dae_error e = {0};
        int rc = dae_json_check(b, len, NULL, &e);
        if (kind == 'y') {
            ck_assert_msg(rc == DAE_OK, "%s refused: %s", de->d_name, e.msg);
            cJSON *j = cJSON_ParseWithLengthOpts(b, len, NULL, 0);
            ck_assert_msg(j != NULL, "%s: cJSON cannot parse it", de->d_name);
            cJSON_Delete(j);
            y++;
        } else {
            ck_assert_msg(rc != DAE_OK && e.msg[0], "%s accepted", de->d_name);
            n++;
        }
        free(b);
    }
    closedir(d);
    ck_assert_int_eq(y, 95); /* the whole suite, not a shorter copy */
    ck_assert_int_eq(n, 188);
}
END_TEST

START_TEST(test_duplicate_keys)
{
    static const struct {
        const char *json, *dup;
    } D[] = {
        {"{\"a\":1,\"b\":2}", NULL},
        {"{\"a\":1,\"a\":2}", "a"},
        {"{\"x\":[{\"k\":1},{\"k\":2,\"j\":0,\"k\":3}]}", "k"},
        {"[{\"a\":{\"b\":1,\"b\":1}}]", "b"},
        {"{\"a\":1,\"\\u0061\":2}", "a"}, /* the same key, escaped */
        {"[1,2,{}]", NULL},
    };
    for (size_t i = 0; i < sizeof D / sizeof D[0]; i++) {
        cJSON *j = cJSON_Parse(D[i].json);
        ck_assert_ptr_nonnull(j);
        int oom;
        const char *dup = dae_json_duplicate_key(j, &oom);
        ck_assert_int_eq(oom, 0);
        if (D[i].dup)
            ck_assert_msg(dup && !strcmp(dup, D[i].dup), "%s: %s", D[i].json, dup);
        else
            ck_assert_ptr_null(dup);
        cJSON_Delete(j);
    }
}
END_TEST

Suite *suite_json(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("json");
    tcase_add_loop_test(tc, test_cases, 0, sizeof CASES / sizeof CASES[0]);
    tcase_add_test(tc, test_nul_between_tokens);
    tcase_add_test(tc, test_deep_bomb);
    tcase_add_test(tc, test_jsontestsuite);
    tcase_add_test(tc, test_duplicate_keys);
    suite_add_tcase(s, tc);
    return s;
}
