/* check_serve_jobs.c — the job table: ids, states and progress, answers kept and copied,
 * delete of a running job cancels it, --max-jobs, --job-memory and --job-ttl. */
#include "check_quiet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/serve/jobs.h"

#define SEC 1000000000LL

static dae_jobs *make(int max_jobs, int ttl, size_t memory)
{
    dae_jobs_params p = {max_jobs, ttl, memory};
    dae_jobs *J = dae_jobs_create(&p, NULL);
    ck_assert_ptr_nonnull(J);
    return J;
}

static dae_job_answer answer(int status, const char *text)
{
    dae_job_answer a = {0};
    a.status = status;
    a.type = "text/plain";
    a.len = strlen(text);
    a.body = malloc(a.len);
    memcpy(a.body, text, a.len);
    snprintf(a.model, sizeof a.model, "m1");
    return a;
}

/* The status JSON of id, or "" when unknown. */
static char *status(dae_jobs *J, const char *id, int64_t now)
{
    static char out[1024];
    sbuf b;
    dae_sb_init(&b);
    out[0] = '\0';
    if (dae_jobs_status(J, id, now, &b) == DAE_OK)
        snprintf(out, sizeof out, "%s", b.p);
    dae_sb_free(&b);
    return out;
}

START_TEST(test_ids_are_random_hex)
{
    dae_jobs *J = make(8, 60, 1 << 20);
    dae_job_progress p1 = {0}, p2 = {0};
    char a[DAE_JOB_ID_LEN + 1], b[DAE_JOB_ID_LEN + 1];
    ck_assert_ptr_nonnull(dae_jobs_add(J, "/v1/denoise", "m1", 10, &p1, 0, a, NULL));
    ck_assert_ptr_nonnull(dae_jobs_add(J, "/v1/denoise", "m1", 10, &p2, 0, b, NULL));
    ck_assert_uint_eq(strlen(a), DAE_JOB_ID_LEN);
    ck_assert_uint_eq(strspn(a, "0123456789abcdef"), DAE_JOB_ID_LEN);
    ck_assert_str_ne(a, b);
    /* a prefix or a near miss is not the job */
    char c[DAE_JOB_ID_LEN + 1];
    memcpy(c, a, sizeof c);
    c[DAE_JOB_ID_LEN - 1] = c[DAE_JOB_ID_LEN - 1] == '0' ? '1' : '0';
    ck_assert_str_eq(status(J, c, 0), "");
    c[10] = '\0';
    ck_assert_str_eq(status(J, c, 0), "");
    dae_jobs_free(J); /* unfinished records are freed too */
}
END_TEST

START_TEST(test_states_progress_and_answer)
{
    dae_jobs *J = make(8, 60, 1 << 20);
    dae_job_progress p = {0};
    char id[DAE_JOB_ID_LEN + 1];
    dae_job_rec *rec = dae_jobs_add(J, "/v1/denoise", "m1", 100, &p, 0, id, NULL);
    ck_assert_ptr_nonnull(strstr(status(J, id, 0), "\"status\":\"queued\""));
    ck_assert_ptr_nonnull(strstr(status(J, id, 0), "\"tiles_done\":0,\"tiles_total\":1"));
    dae_job_answer got;
    dae_job_state st;
    ck_assert_int_eq(dae_jobs_result(J, id, 0, &got, &st), DAE_EBUSY);
    ck_assert_int_eq(st, DAE_JOB_QUEUED);
    atomic_store(&p.started, 1);
    atomic_store(&p.total, 60);
    atomic_store(&p.done, 7);
    ck_assert_ptr_nonnull(strstr(status(J, id, SEC), "\"status\":\"running\""));
    ck_assert_ptr_nonnull(strstr(status(J, id, SEC), "\"tiles_done\":7,\"tiles_total\":60"));
    ck_assert_uint_eq(dae_jobs_get_stats(J).bytes, 100); /* the body, while it runs */
    atomic_store(&p.done, 60);
    dae_job_answer a = answer(200, "PNGDATA");
    dae_jobs_finish(J, rec, &a, 2 * SEC);
    ck_assert_ptr_null(a.body); /* taken */
    ck_assert_uint_eq(dae_jobs_get_stats(J).bytes, 7); /* the answer, no longer the body */
    const char *s = status(J, id, 3 * SEC);
    ck_assert_ptr_nonnull(strstr(s, "\"status\":\"done\""));
    ck_assert_ptr_nonnull(strstr(s, "\"http_status\":200"));
    ck_assert_ptr_nonnull(strstr(s, "\"tiles_done\":60,\"tiles_total\":60"));
    ck_assert_ptr_nonnull(strstr(s, "/result"));
    /* the answer, copied: fetch it twice */
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(dae_jobs_result(J, id, 3 * SEC, &got, &st), DAE_OK);
        ck_assert_int_eq(st, DAE_JOB_DONE);
        ck_assert_int_eq(got.status, 200);
        ck_assert_uint_eq(got.len, 7);
        ck_assert_int_eq(memcmp(got.body, "PNGDATA", 7), 0);
        ck_assert_str_eq(got.type, "text/plain");
        ck_assert_str_eq(got.model, "m1");
        free(got.body);
    }
    dae_jobs_stats t = dae_jobs_get_stats(J);
    ck_assert_uint_eq(t.created, 1);
    ck_assert_uint_eq(t.done, 1);
    ck_assert_int_eq(dae_jobs_delete(J, id, 3 * SEC, NULL), DAE_OK);
    ck_assert_str_eq(status(J, id, 3 * SEC), "");
    ck_assert_uint_eq(dae_jobs_get_stats(J).bytes, 0);
    ck_assert_int_eq(dae_jobs_get_stats(J).held, 0);
    dae_jobs_free(J);
}
END_TEST

START_TEST(test_error_answer_is_failed)
{
    dae_jobs *J = make(8, 60, 1 << 20);
    dae_job_progress p = {0};
    char id[DAE_JOB_ID_LEN + 1];
    dae_job_rec *rec = dae_jobs_add(J, "/v1/denoise", "m1", 1, &p, 0, id, NULL);
    dae_job_answer a = answer(422, "{\"error\":{}}");
    dae_jobs_finish(J, rec, &a, 0);
    ck_assert_ptr_nonnull(strstr(status(J, id, 0), "\"status\":\"failed\""));
    dae_job_answer got;
    dae_job_state st;
    ck_assert_int_eq(dae_jobs_result(J, id, 0, &got, &st), DAE_OK); /* the error, as sync */
    ck_assert_int_eq(got.status, 422);
    ck_assert_int_eq(st, DAE_JOB_FAILED);
    free(got.body);
    ck_assert_uint_eq(dae_jobs_get_stats(J).failed, 1);
    dae_jobs_free(J);
}
END_TEST

START_TEST(test_delete_running_cancels_and_frees_at_finish)
{
    dae_jobs *J = make(1, 60, 1 << 20);
    dae_job_progress p = {0};
    char id[DAE_JOB_ID_LEN + 1], id2[DAE_JOB_ID_LEN + 1];
    dae_job_rec *rec = dae_jobs_add(J, "/v1/denoise", "m1", 50, &p, 0, id, NULL);
    atomic_store(&p.started, 1);
    sbuf b;
    dae_sb_init(&b);
    ck_assert_int_eq(dae_jobs_delete(J, id, 0, &b), DAE_OK);
    ck_assert_ptr_nonnull(strstr(b.p, "\"status\":\"cancelled\""));
    dae_sb_free(&b);
    ck_assert_int_eq(atomic_load(&p.cancel), 1);  /* the worker stops at its next tile */
    ck_assert_str_eq(status(J, id, 0), "");        /* hidden at once */
    ck_assert_int_eq(dae_jobs_delete(J, id, 0, NULL), DAE_ENOTFOUND);
    /* still held until its worker is done: --max-jobs 1 is full */
    dae_job_progress p2 = {0};
    dae_error err = {0};
    ck_assert_ptr_null(dae_jobs_add(J, "/v1/denoise", "m1", 1, &p2, 0, id2, &err));
    ck_assert_int_eq(err.code, DAE_EBUSY);
    ck_assert_ptr_nonnull(strstr(err.msg, "--max-jobs"));
    dae_job_answer a = answer(503, "cancelled");
    dae_jobs_finish(J, rec, &a, SEC);
    ck_assert_ptr_null(a.body);
    dae_jobs_stats st = dae_jobs_get_stats(J);
    ck_assert_int_eq(st.held, 0);
    ck_assert_uint_eq(st.bytes, 0);
    ck_assert_uint_eq(st.cancelled, 1);
    ck_assert_uint_eq(st.refused, 1);
    ck_assert_ptr_nonnull(dae_jobs_add(J, "/v1/denoise", "m1", 1, &p2, SEC, id2, NULL));
    dae_jobs_free(J);
}
END_TEST

START_TEST(test_memory_bound)
{
    dae_jobs *J = make(8, 60, 100);
    dae_job_progress p[3] = {{0}};
    char id[3][DAE_JOB_ID_LEN + 1];
    dae_error err = {0};
    dae_job_rec *r0 = dae_jobs_add(J, "/v1/denoise", "m1", 60, &p[0], 0, id[0], NULL);
    ck_assert_ptr_nonnull(r0);
    /* 60 + 50 > 100: refused, naming the option */
    ck_assert_ptr_null(dae_jobs_add(J, "/v1/denoise", "m1", 50, &p[1], 0, id[1], &err));
    ck_assert_int_eq(err.code, DAE_EBUSY);
    ck_assert_ptr_nonnull(strstr(err.msg, "--job-memory"));
    dae_job_rec *r1 = dae_jobs_add(J, "/v1/denoise", "m1", 40, &p[1], 0, id[1], NULL);
    ck_assert_ptr_nonnull(r1);
    /* r0 finishes with a 30-byte answer: 40 + 30 fits */
    dae_job_answer a = answer(200, "012345678901234567890123456789");
    dae_jobs_finish(J, r0, &a, 0);
    ck_assert_uint_eq(dae_jobs_get_stats(J).bytes, 70);
    /* r1's 80-byte answer does not fit next to it: a 507 naming --job-memory instead */
    char big[81];
    memset(big, 'x', 80);
    big[80] = '\0';
    a = answer(200, big);
    dae_jobs_finish(J, r1, &a, 0);
    dae_job_answer got;
    dae_job_state st;
    ck_assert_int_eq(dae_jobs_result(J, id[1], 0, &got, &st), DAE_OK);
    ck_assert_int_eq(got.status, 507);
    ck_assert_int_eq(st, DAE_JOB_FAILED);
    ck_assert_ptr_nonnull(memmem(got.body, got.len, "--job-memory", 12));
    /* the short error answer is counted (it may pass the bound by its few hundred bytes) */
    ck_assert_uint_eq(dae_jobs_get_stats(J).bytes, 30 + got.len);
    free(got.body);
    dae_jobs_free(J);
}
END_TEST

START_TEST(test_finished_jobs_expire_running_ones_do_not)
{
    dae_jobs *J = make(8, 10, 1 << 20);
    dae_job_progress p[2] = {{0}};
    char id[2][DAE_JOB_ID_LEN + 1];
    dae_job_rec *r0 = dae_jobs_add(J, "/v1/denoise", "m1", 1, &p[0], 0, id[0], NULL);
    ck_assert_ptr_nonnull(dae_jobs_add(J, "/v1/denoise", "m1", 1, &p[1], 0, id[1], NULL));
    dae_job_answer a = answer(200, "ok");
    dae_jobs_finish(J, r0, &a, 5 * SEC);
    ck_assert_str_ne(status(J, id[0], 15 * SEC), ""); /* 10 s after it finished: kept */
    ck_assert_str_eq(status(J, id[0], 15 * SEC + 1), "");
    ck_assert_str_ne(status(J, id[1], 1000 * SEC), ""); /* still running: never expires */
    dae_jobs_stats st = dae_jobs_get_stats(J);
    ck_assert_uint_eq(st.expired, 1);
    ck_assert_int_eq(st.held, 1);
    ck_assert_int_eq(st.queued, 1);
    dae_jobs_free(J);
}
END_TEST

Suite *suite_serve_jobs(void)
{
    Suite *s = suite_create("serve_jobs");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_ids_are_random_hex);
    tcase_add_test(tc, test_states_progress_and_answer);
    tcase_add_test(tc, test_error_answer_is_failed);
    tcase_add_test(tc, test_delete_running_cancels_and_frees_at_finish);
    tcase_add_test(tc, test_memory_bound);
    tcase_add_test(tc, test_finished_jobs_expire_running_ones_do_not);
    suite_add_tcase(s, tc);
    return s;
}
