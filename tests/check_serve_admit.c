/* check_serve_admit.c — --body-budget: who reads a body now, who waits, in which order. */
#include "check_quiet.h"

#include "../src/serve/admit.h"
#include "../src/serve/pixels.h"

#include <stdlib.h>
#include <string.h>

#include "daed/io/image.h"
#include "daed/io/png.h"
#include "daed/io/base64.h"

#define KB ((size_t)1024)

static int count(const dae_admit_ticket *t)
{
    int n = 0;
    for (; t; t = t->next)
        n++;
    return n;
}

START_TEST(test_budget_holds_back_and_lets_in_in_order)
{
    dae_admit *a = dae_admit_create(40 * KB);
    ck_assert_ptr_nonnull(a);
    dae_admit_ticket t[5] = {{0}};
    /* Each is charged min(declared, 16 KB) when let in: 16 + 16 = 32 < 40, 48 >= 40. */
    ck_assert_int_eq(dae_admit_try(a, &t[0], 43 * KB), 1);
    ck_assert_int_eq(dae_admit_try(a, &t[1], 43 * KB), 1);
    ck_assert_uint_eq(dae_admit_get_stats(a).charged, 32 * KB);
    ck_assert_int_eq(dae_admit_try(a, &t[2], 43 * KB), 1); /* 32 < 40: room for one more */
    ck_assert_int_eq(dae_admit_try(a, &t[3], 500), 0);     /* 48 >= 40 */
    ck_assert_int_eq(dae_admit_wait(a, &t[3]), 0);
    ck_assert_int_eq(t[3].state, DAE_ADMIT_WAITING);
    /* Nobody jumps the queue, however small. */
    ck_assert_int_eq(dae_admit_try(a, &t[4], 10), 0);
    ck_assert_int_eq(dae_admit_wait(a, &t[4]), 0);
    ck_assert_int_eq(dae_admit_get_stats(a).waiting, 2);
    ck_assert_uint_eq(dae_admit_get_stats(a).waited_total, 2);
    /* Received bytes count once they pass the reservation. */
    dae_admit_grow(a, &t[0], 8 * KB);
    ck_assert_uint_eq(dae_admit_get_stats(a).charged, 48 * KB);
    dae_admit_grow(a, &t[0], 43 * KB);
    ck_assert_uint_eq(dae_admit_get_stats(a).charged, 75 * KB);
    /* t[1] leaves: 59 KB still charged, over 40: nobody gets in. */
    ck_assert_ptr_null(dae_admit_leave(a, &t[1]));
    /* t[0] leaves: 16 KB charged: t[3] (500 B) and then t[4] (10 B) fit, in that order. */
    dae_admit_ticket *in = dae_admit_leave(a, &t[0]);
    ck_assert_int_eq(count(in), 2);
    ck_assert_ptr_eq(in, &t[3]);
    ck_assert_ptr_eq(in->next, &t[4]);
    ck_assert_int_eq(t[3].state, DAE_ADMIT_IN);
    ck_assert_uint_eq(dae_admit_get_stats(a).charged, 16 * KB + 500 + 10);
    ck_assert_int_eq(dae_admit_get_stats(a).waiting, 0);
    for (int i = 2; i < 5; i++)
        ck_assert_ptr_null(dae_admit_leave(a, &t[i]));
    ck_assert_uint_eq(dae_admit_get_stats(a).charged, 0);
    /* Leaving twice is harmless. */
    ck_assert_ptr_null(dae_admit_leave(a, &t[2]));
    ck_assert_uint_eq(dae_admit_get_stats(a).charged, 0);
    dae_admit_free(a);
}
END_TEST

START_TEST(test_oversized_body_gets_in_alone)
{
    dae_admit *a = dae_admit_create(16 * KB);
    dae_admit_ticket big = {0}, small = {0};
    /* Nothing charged: a body far over the budget is let in. */
    ck_assert_int_eq(dae_admit_try(a, &big, 5000 * KB), 1);
    dae_admit_grow(a, &big, 5000 * KB);
    ck_assert_int_eq(dae_admit_try(a, &small, 100), 0);
    ck_assert_int_eq(dae_admit_wait(a, &small), 0);
    dae_admit_ticket *in = dae_admit_leave(a, &big);
    ck_assert_ptr_eq(in, &small);
    ck_assert_ptr_null(in->next);
    ck_assert_ptr_null(dae_admit_leave(a, &small));
    dae_admit_free(a);
}
END_TEST

START_TEST(test_declared_length_alone_holds_little)
{
    /* A client that declares 1 GB and sends nothing is charged 16 KB, not 1 GB. */
    dae_admit *a = dae_admit_create(64 * KB);
    dae_admit_ticket liar = {0}, t = {0};
    ck_assert_int_eq(dae_admit_try(a, &liar, (size_t)1 << 30), 1);
    ck_assert_uint_eq(dae_admit_get_stats(a).charged, 16 * KB);
    ck_assert_int_eq(dae_admit_try(a, &t, 43 * KB), 1);
    dae_admit_leave(a, &t);
    dae_admit_leave(a, &liar);
    dae_admit_free(a);
}
END_TEST

START_TEST(test_waiter_that_goes_away_leaves_the_queue)
{
    dae_admit *a = dae_admit_create(1);
    dae_admit_ticket t[4] = {{0}};
    ck_assert_int_eq(dae_admit_try(a, &t[0], 100), 1);
    for (int i = 1; i < 4; i++) {
        ck_assert_int_eq(dae_admit_try(a, &t[i], 100), 0);
        ck_assert_int_eq(dae_admit_wait(a, &t[i]), 0);
    }
    /* The middle and then the last waiter hang up while waiting. */
    ck_assert_ptr_null(dae_admit_leave(a, &t[2]));
    ck_assert_ptr_null(dae_admit_leave(a, &t[3]));
    ck_assert_int_eq(dae_admit_get_stats(a).waiting, 1);
    ck_assert_int_eq(dae_admit_get_stats(a).admitted, 1);
    dae_admit_ticket *in = dae_admit_leave(a, &t[0]);
    ck_assert_ptr_eq(in, &t[1]);
    ck_assert_ptr_null(in->next);
    /* The queue's tail was fixed: a new waiter queues and is let in next. */
    dae_admit_ticket u = {0};
    ck_assert_int_eq(dae_admit_try(a, &u, 100), 0);
    ck_assert_int_eq(dae_admit_wait(a, &u), 0);
    ck_assert_ptr_eq(dae_admit_leave(a, &t[1]), &u);
    dae_admit_leave(a, &u);
    ck_assert_uint_eq(dae_admit_get_stats(a).charged, 0);
    dae_admit_free(a);
}
END_TEST

START_TEST(test_wait_after_room_freed_admits_at_once)
{
    /* try says no, then the budget frees before the caller queues: wait admits it. */
    dae_admit *a = dae_admit_create(1);
    dae_admit_ticket t0 = {0}, t1 = {0};
    ck_assert_int_eq(dae_admit_try(a, &t0, 100), 1);
    ck_assert_int_eq(dae_admit_try(a, &t1, 100), 0);
    ck_assert_ptr_null(dae_admit_leave(a, &t0));
    ck_assert_int_eq(dae_admit_wait(a, &t1), 1);
    ck_assert_int_eq(t1.state, DAE_ADMIT_IN);
    ck_assert_uint_eq(dae_admit_get_stats(a).waited_total, 0);
    dae_admit_leave(a, &t1);
    dae_admit_free(a);
}
END_TEST

START_TEST(test_open_lets_everyone_in)
{
    dae_admit *a = dae_admit_create(1);
    dae_admit_ticket t[3] = {{0}};
    ck_assert_int_eq(dae_admit_try(a, &t[0], 100), 1);
    for (int i = 1; i < 3; i++) {
        ck_assert_int_eq(dae_admit_try(a, &t[i], 100), 0);
        dae_admit_wait(a, &t[i]);
    }
    ck_assert_int_eq(count(dae_admit_open(a)), 2);
    dae_admit_ticket late = {0};
    ck_assert_int_eq(dae_admit_try(a, &late, 100), 1);
    for (int i = 0; i < 3; i++)
        dae_admit_leave(a, &t[i]);
    dae_admit_leave(a, &late);
    dae_admit_free(a);
}
END_TEST

START_TEST(test_no_budget_admits_all)
{
    dae_admit *a = dae_admit_create(0);
    dae_admit_ticket t[100] = {{0}};
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(dae_admit_try(a, &t[i], 1 << 20), 1);
        dae_admit_grow(a, &t[i], 1 << 20);
    }
    ck_assert_uint_eq(dae_admit_get_stats(a).charged, (size_t)100 << 20);
    for (int i = 0; i < 100; i++)
        ck_assert_ptr_null(dae_admit_leave(a, &t[i]));
    ck_assert_uint_eq(dae_admit_get_stats(a).charged, 0);
    dae_admit_free(a);
}
END_TEST

/* --pixel-budget's estimate (pixels.h): from the image header, 5 bytes a value with 8-bit
 * planes and 9 with float ones; JSON bodies by their numbers and base64 images. */
START_TEST(test_pixel_estimates)
{
    dae_error e = {0};
    dae_image im = {0};
    ck_assert_int_eq(dae_image_alloc(&im, 300, 200, 3, 1, &e), DAE_OK);
    unsigned char *png = NULL;
    size_t len = 0;
    ck_assert_int_eq(dae_png_encode_image(&im, 1, &png, &len, &e), DAE_OK);
    size_t vals = (size_t)300 * 200 * 4;
    ck_assert_uint_eq(dae_pixels_estimate(png, len, 0, 0, 0), vals * 9);
    ck_assert_uint_eq(dae_pixels_estimate(png, len, 0, 1, 0), vals * 5);
    ck_assert_uint_eq(dae_pixels_estimate(png, len, 0, 2, 0), vals * 3);
    /* the non-local stage: + 5 a value, except with 8-bit input and output */
    ck_assert_uint_eq(dae_pixels_estimate(png, len, 0, 0, DAE_PIXELS_NONLOCAL), vals * 14);
    ck_assert_uint_eq(dae_pixels_estimate(png, len, 0, 1, 1), vals * 10);
    ck_assert_uint_eq(dae_pixels_estimate(png, len, 0, 2, 1), vals * 3);
    ck_assert_uint_eq(dae_pixels_estimate(png, len, 0, 0, DAE_PIXELS_HALF_CHROMA), vals * 11);
    ck_assert_uint_eq(dae_pixels_estimate(png, len, 0, 0, 3), vals * 16);
    /* a colour photo that may go to a half-chroma model once decoded: at least its planes
     * (8-bit in, float out, half chroma, the non-local stage: 5 + 2 + 5) */
    ck_assert_uint_eq(dae_pixels_estimate(png, len, 0, 2, DAE_PIXELS_REROUTE), vals * 12);
    ck_assert_uint_eq(dae_pixels_estimate(png, len, 0, 0, DAE_PIXELS_NONLOCAL | DAE_PIXELS_REROUTE),
                      vals * 14);
    ck_assert_uint_eq(dae_pixels_estimate(png, len, 0, 1, DAE_PIXELS_REROUTE | 2), vals * 7);
    ck_assert_uint_eq(dae_pixels_estimate((const unsigned char *)"GIF89a..", 8, 0, 0, 0), 32);
    dae_image g = {0};
    unsigned char *gpng = NULL;
    size_t glen = 0;
    ck_assert_int_eq(dae_image_alloc(&g, 30, 20, 1, 0, &e), DAE_OK);
    ck_assert_int_eq(dae_png_encode_image(&g, 1, &gpng, &glen, &e), DAE_OK);
    ck_assert_uint_eq(dae_pixels_estimate(gpng, glen, 0, 2, DAE_PIXELS_REROUTE), 600 * 3);
    free(gpng);
    dae_image_free(&g);

    /* JSON: 88 bytes per number, strings (keys, "1,2" in a string) count nothing */
    const char *pix = "{\"width\":2,\"height\":2,\"channels\":1,\"note\":\"1,2 \\\" 3\","
                      "\"pixels\":[0,0.5,-1e-3,1.0E+2]}";
    ck_assert_uint_eq(dae_pixels_estimate((const unsigned char *)pix, strlen(pix), 1, 0, 0), 7 * 88);
    /* a long string that is no readable image (a JPEG with escaped slashes): 4 per byte */
    const char *esc = "{\"jpeg\":\"\\/9j\\/4AAQSkZJRgABAQAAAQABAAD\\/2wBDAAgGBgcGBQgHBwcJCQgKDBQN"
                      "DAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL\"}";
    size_t esc_len = strlen(esc) - strlen("{\"jpeg\":\"\"}");
    ck_assert_uint_ge(esc_len, 64);
    ck_assert_uint_eq(dae_pixels_estimate((const unsigned char *)esc, strlen(esc), 1, 0, 0),
                      esc_len * 4);

    /* a base64 PNG inside JSON: its image (9 bytes a value) and its decoded bytes */
    size_t b64 = dae_base64_encoded_len(len);
    char *body = malloc(b64 + 32);
    ck_assert_ptr_nonnull(body);
    strcpy(body, "{\"png\":\"");
    dae_base64_encode(png, len, body + 8);
    strcat(body, "\"}");
    ck_assert_uint_eq(dae_pixels_estimate((const unsigned char *)body, strlen(body), 1, 0, 0),
                      vals * 9 + b64 / 4 * 3);
    /* a base64 image whose header cannot be read: 4 bytes per character */
    memcpy(body + 8 + 16, "!!!!", 4);
    ck_assert_uint_eq(dae_pixels_estimate((const unsigned char *)body, strlen(body), 1, 0, 0),
                      b64 * 4);
    free(body);
    free(png);
    dae_image_free(&im);
}
END_TEST

Suite *suite_serve_admit(void)
{
    Suite *s = suite_create("serve_admit");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_budget_holds_back_and_lets_in_in_order);
    tcase_add_test(tc, test_oversized_body_gets_in_alone);
    tcase_add_test(tc, test_declared_length_alone_holds_little);
    tcase_add_test(tc, test_waiter_that_goes_away_leaves_the_queue);
    tcase_add_test(tc, test_wait_after_room_freed_admits_at_once);
    tcase_add_test(tc, test_open_lets_everyone_in);
    tcase_add_test(tc, test_no_budget_admits_all);
    tcase_add_test(tc, test_pixel_estimates);
    suite_add_tcase(s, tc);
    return s;
}
