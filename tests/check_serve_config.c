/* check_serve_config.c — daed's option table: defaults, environment, flags, ranges, help. */
#include "check_quiet.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/serve/serve_config.h"

START_TEST(test_defaults)
{
    dae_serve_config c;
    dae_error e = {0};
    char *argv[] = {"daed", NULL};
    ck_assert_int_eq(dae_serve_config_parse(&c, 1, argv, NULL, &e), DAE_OK);
    ck_assert_int_eq(c.port, 8080);
    ck_assert_str_eq(c.models, "./models");
    ck_assert_int_eq(c.workers, 0);
    ck_assert_int_eq(c.batch_delay_us, 0);
    ck_assert_uint_eq(c.max_body, 16u << 20);
    ck_assert_uint_eq(c.conn_memory, 16u << 10);
    ck_assert_uint_eq(c.body_budget, 2u << 20);
    ck_assert_uint_eq(c.batch_memory, 1u << 20);
    ck_assert_str_eq(c.api_key, "");
    ck_assert_str_eq(c.model_mmap, "auto");
    ck_assert_int_eq(c.access_log, 1);
}
END_TEST

START_TEST(test_flags_env_precedence)
{
    dae_serve_config c;
    dae_error e = {0};
    char *env[] = {"PATH=/bin", "DAED_PORT=9000", "DAED_MAX_BATCH=8", "DAED_API_KEY=s3cret",
                   "DAED_MAX_BODY=2M", NULL};
    char *argv[] = {"daed", "--port", "9100", "--models=/srv/m", "--default-denoise", "fm",
                    NULL};
    ck_assert_int_eq(dae_serve_config_parse(&c, 6, argv, env, &e), DAE_OK);
    ck_assert_int_eq(c.port, 9100); /* the command line wins */
    ck_assert_int_eq(c.max_batch, 8);
    ck_assert_str_eq(c.api_key, "s3cret");
    ck_assert_uint_eq(c.max_body, 2u << 20);
    ck_assert_str_eq(c.models, "/srv/m");
    ck_assert_str_eq(c.default_model[0], "fm");
}
END_TEST

START_TEST(test_sizes)
{
    dae_serve_config c;
    dae_error e = {0};
    char *a1[] = {"daed", "--max-body", "64k", "--conn-memory=1MiB", "--max-pixels", "1000"};
    ck_assert_int_eq(dae_serve_config_parse(&c, 6, a1, NULL, &e), DAE_OK);
    ck_assert_uint_eq(c.max_body, 65536);
    ck_assert_uint_eq(c.conn_memory, 1u << 20);
    ck_assert_uint_eq(c.max_pixels, 1000);
}
END_TEST

/* Each bad value is refused with a message naming the option, the value and the range. */
static const struct {
    const char *arg, *val, *want;
} BAD[] = {
    {"--port", "70000", "--port: 70000 is out of range, expected 0 to 65535"},
    {"--port", "80x", "--port: \"80x\" is not an integer"},
    {"--port", "", "--port: \"\" is not an integer"},
    {"--workers", "-1", "--workers: -1 is out of range"},
    {"--max-batch", "0", "--max-batch: 0 is out of range, expected 1 to 1024"},
    {"--max-body", "12q", "--max-body: \"12q\" is not a size"},
    {"--max-body", "2G", "--max-body: 2147483648 is out of range"},
    {"--access-log", "2", "--access-log: 2 is out of range, expected 0 to 1"},
    {"--models", "", "--models: value of 0 characters, expected 1 to 1023"},
    {"--model-mmap", "yes", "--model-mmap: \"yes\" is not one of auto|always|never"},
    {"--precision", "fp16", "--precision: \"fp16\" is not one of bf16|fp32"},
};

START_TEST(test_bad_values)
{
    dae_serve_config c;
    dae_error e = {0};
    char *argv[] = {"daed", (char *)BAD[_i].arg, (char *)BAD[_i].val, NULL};
    ck_assert_int_eq(dae_serve_config_parse(&c, 3, argv, NULL, &e), DAE_EINVAL);
    ck_assert_msg(strstr(e.msg, BAD[_i].want), "message \"%s\" lacks \"%s\"", e.msg,
                  BAD[_i].want);
}
END_TEST

START_TEST(test_bad_usage)
{
    dae_serve_config c;
    dae_error e = {0};
    char *a1[] = {"daed", "--nope", "1"};
    ck_assert_int_eq(dae_serve_config_parse(&c, 3, a1, NULL, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "unknown option --nope"));
    char *a2[] = {"daed", "--port"};
    ck_assert_int_eq(dae_serve_config_parse(&c, 2, a2, NULL, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "--port needs a value"));
    char *a3[] = {"daed", "models"};
    ck_assert_int_eq(dae_serve_config_parse(&c, 2, a3, NULL, &e), DAE_EINVAL);
    char *env[] = {"DAED_QUEUE_SIZE=0", NULL};
    char *a4[] = {"daed"};
    ck_assert_int_eq(dae_serve_config_parse(&c, 1, a4, env, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "environment DAED_QUEUE_SIZE"));
}
END_TEST

START_TEST(test_help_lists_everything)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    dae_serve_config_help(f, "daed");
    fclose(f);
    const char *want[] = {"--port", "DAED_PORT", "default: 8080", "--models", "DAED_MODELS",
                          "--workers", "--max-batch", "--batch-delay-us", "--api-key",
                          "DAED_API_KEY", "--per-ip-limit", "--conn-memory", "--max-json-depth",
                          "--shutdown-timeout", "--default-score", "--openapi"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(buf, want[i]), "--help lacks %s", want[i]);
    free(buf);
    char *a[] = {"daed", "--port", "1", "--help"};
    ck_assert_int_eq(dae_serve_config_wants(4, a), 'h');
    char *b[] = {"daed", "--version"};
    ck_assert_int_eq(dae_serve_config_wants(2, b), 'v');
    ck_assert_int_eq(dae_serve_config_wants(1, b), 0);
}
END_TEST

START_TEST(test_describe_hides_key)
{
    dae_serve_config c;
    dae_serve_config_defaults(&c);
    strcpy(c.api_key, "topsecretkey");
    char line[1024];
    dae_serve_config_describe(&c, line, sizeof line);
    ck_assert_ptr_null(strstr(line, "topsecretkey"));
    ck_assert_ptr_nonnull(strstr(line, "api-key=set"));
}
END_TEST

Suite *suite_serve_config(void)
{
    Suite *s = suite_create("serve_config");
    TCase *tc = tcase_create("basic");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_flags_env_precedence);
    tcase_add_test(tc, test_sizes);
    tcase_add_loop_test(tc, test_bad_values, 0, sizeof BAD / sizeof BAD[0]);
    tcase_add_test(tc, test_bad_usage);
    tcase_add_test(tc, test_help_lists_everything);
    tcase_add_test(tc, test_describe_hides_key);
    suite_add_tcase(s, tc);
    return s;
}
