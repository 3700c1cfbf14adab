/* check_optim.c — optimizer updates against hand-computed values; schedules; clipping. */
#include "check_quiet.h"
#include <math.h>
#include <string.h>

#include "daed/train/optim.h"

/* Two steps of Adam on 5 parameters (4 through the vector path, 1 scalar), checked against
 * the PyTorch formulas evaluated in double. */
static void adam_case(dae_opt_kind kind, float wd)
{
    enum { N = 5 };
    float p[N] = {0.5f, -1.0f, 2.0f, 0.0f, 0.25f};
    const float g1[N] = {0.1f, -0.2f, 0.0f, 1.0f, -3.0f};
    const float g2[N] = {-0.05f, 0.4f, 0.3f, 1.0f, 2.0f};
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    double ep[N], m[N] = {0}, v[N] = {0};
    for (int i = 0; i < N; i++)
        ep[i] = p[i];

    dae_optim_params op = dae_optim_default_params();
    op.kind = kind;
    op.weight_decay = wd;
    dae_optim *o = dae_optim_create(&op, N, NULL);
    ck_assert_ptr_nonnull(o);
    float g[N];
    for (int t = 1; t <= 2; t++) {
        const float *gs = t == 1 ? g1 : g2;
        memcpy(g, gs, sizeof g);
        dae_optim_step(o, p, g, (float)lr);
        for (int i = 0; i < N; i++) {
            double gi = gs[i];
            if (kind == DAE_OPT_ADAMW)
                ep[i] *= 1.0 - lr * wd;
            else
                gi += wd * ep[i];
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            double mh = m[i] / (1 - pow(b1, t)), vh = v[i] / (1 - pow(b2, t));
            ep[i] -= lr * mh / (sqrt(vh) + eps);
            ck_assert_msg(fabs(p[i] - ep[i]) < 1e-6, "step %d param %d: got %.9g, want %.9g",
                          t, i, p[i], ep[i]);
            ck_assert_float_eq(g[i], 0.0f); /* consumed */
        }
    }
    ck_assert_int_eq(o->t, 2);
    dae_optim_reset(o);
    ck_assert_int_eq(o->t, 0);
    ck_assert_float_eq(o->m[0], 0.0f);
    ck_assert_float_eq(o->v[4], 0.0f);
    dae_optim_free(o);
}

START_TEST(test_adam)
{
    adam_case(DAE_OPT_ADAM, 0.0f);
}
END_TEST

START_TEST(test_adam_l2)
{
    adam_case(DAE_OPT_ADAM, 0.1f);
}
END_TEST

START_TEST(test_adamw)
{
    adam_case(DAE_OPT_ADAMW, 0.1f);
}
END_TEST

START_TEST(test_sgd_momentum)
{
    float p[2] = {1.0f, -2.0f}, g[2];
    dae_optim_params op = dae_optim_default_params();
    op.kind = DAE_OPT_SGD;
    op.momentum = 0.5f;
    op.weight_decay = 0.1f;
    dae_optim *o = dae_optim_create(&op, 2, NULL);
    ck_assert_ptr_null(o->v);
    /* step 1: g' = 1 + 0.1*1 = 1.1, buf = 1.1, p = 1 - 0.1*1.1 = 0.89 */
    g[0] = 1.0f;
    g[1] = 0.0f;
    dae_optim_step(o, p, g, 0.1f);
    ck_assert_float_eq_tol(p[0], 0.89f, 1e-6f);
    ck_assert_float_eq_tol(p[1], -2.0f + 0.1f * 0.2f, 1e-6f); /* decay only: buf = -0.2 */
    /* step 2: g' = 1 + 0.089 = 1.089, buf = 0.55 + 1.089 = 1.639, p = 0.89 - 0.1639 */
    g[0] = 1.0f;
    g[1] = 0.0f;
    dae_optim_step(o, p, g, 0.1f);
    ck_assert_float_eq_tol(p[0], 0.89f - 0.1639f, 1e-6f);
    ck_assert_float_eq(g[0], 0.0f);
    dae_optim_free(o);
}
END_TEST

START_TEST(test_schedules)
{
    dae_schedule s = {.kind = DAE_SCHED_CONSTANT, .lr = 0.1};
    ck_assert_double_eq(dae_schedule_lr(&s, 0), 0.1);
    ck_assert_double_eq(dae_schedule_lr(&s, 100000), 0.1);

    s.warmup_steps = 4;
    ck_assert_double_eq_tol(dae_schedule_lr(&s, 0), 0.025, 1e-15);
    ck_assert_double_eq_tol(dae_schedule_lr(&s, 3), 0.1, 1e-15);
    ck_assert_double_eq_tol(dae_schedule_lr(&s, 4), 0.1, 1e-15);

    s = (dae_schedule){.kind = DAE_SCHED_STEP, .lr = 1.0, .step_size = 10, .gamma = 0.5};
    ck_assert_double_eq(dae_schedule_lr(&s, 9), 1.0);
    ck_assert_double_eq(dae_schedule_lr(&s, 10), 0.5);
    ck_assert_double_eq(dae_schedule_lr(&s, 25), 0.25);

    s = (dae_schedule){.kind = DAE_SCHED_COSINE, .lr = 1.0, .total_steps = 100, .min_lr = 0.1};
    ck_assert_double_eq_tol(dae_schedule_lr(&s, 0), 1.0, 1e-12);
    ck_assert_double_eq_tol(dae_schedule_lr(&s, 50), 0.55, 1e-12);
    ck_assert_double_eq_tol(dae_schedule_lr(&s, 100), 0.1, 1e-12);
    ck_assert_double_eq_tol(dae_schedule_lr(&s, 1000), 0.1, 1e-12);

    /* cosine after warm-up: the cosine runs over the remaining steps */
    s.warmup_steps = 20;
    ck_assert_double_eq_tol(dae_schedule_lr(&s, 9), 0.5, 1e-12);
    ck_assert_double_eq_tol(dae_schedule_lr(&s, 20), 1.0, 1e-12);
    ck_assert_double_eq_tol(dae_schedule_lr(&s, 60), 0.55, 1e-12);

    ck_assert_int_eq(dae_sched_kind_from_name("cosine"), DAE_SCHED_COSINE);
    ck_assert_int_eq(dae_sched_kind_from_name("linear"), -1);
    ck_assert_int_eq(dae_opt_kind_from_name("adamw"), DAE_OPT_ADAMW);
    ck_assert_str_eq(dae_opt_kind_name(DAE_OPT_SGD), "sgd");
}
END_TEST

START_TEST(test_clip)
{
    float g[2] = {3.0f, 4.0f};
    ck_assert_double_eq_tol(dae_grad_clip(g, 2, 10.0), 5.0, 1e-12); /* below: unchanged */
    ck_assert_float_eq(g[0], 3.0f);
    ck_assert_double_eq_tol(dae_grad_clip(g, 2, 1.0), 5.0, 1e-12);
    ck_assert_double_eq_tol(dae_grad_norm(g, 2), 1.0, 1e-6);
    ck_assert_float_eq_tol(g[0] / g[1], 0.75f, 1e-6f);
    float z[2] = {3.0f, 4.0f};
    dae_grad_clip(z, 2, 0.0); /* 0 = off */
    ck_assert_float_eq(z[1], 4.0f);
}
END_TEST

Suite *suite_optim(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("updates");
    tcase_add_test(tc, test_adam);
    tcase_add_test(tc, test_adam_l2);
    tcase_add_test(tc, test_adamw);
    tcase_add_test(tc, test_sgd_momentum);
    tcase_add_test(tc, test_schedules);
    tcase_add_test(tc, test_clip);
    suite_add_tcase(s, tc);
    return s;
}
