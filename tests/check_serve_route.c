/* check_serve_route.c — which denoiser answers /v1/denoise without ?model= (route.h): by
 * the image's size and channels, photo models for photos, colour never turned gray. */
#include "check_quiet.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/io/modelfile.h"
#include "../src/serve/route.h"

/* The shapes of tests/helpers/mkmodel's test models. */
#define DIGITS_STRIDED                                                                    \
    "\"input\":[1,28,28],\"encoder\":[{\"type\":\"conv2d\",\"in_channels\":1,"             \
    "\"out_channels\":4,\"kernel_size\":3,\"stride\":2,\"padding\":1},{\"type\":\"relu\"},"  \
    "{\"type\":\"conv2d\",\"in_channels\":4,\"out_channels\":4,\"kernel_size\":3,"          \
    "\"stride\":2,\"padding\":1}],\"decoder\":[{\"type\":\"conv_transpose2d\","            \
    "\"in_channels\":4,\"out_channels\":4,\"kernel_size\":3,\"stride\":2,\"padding\":1,"    \
    "\"output_padding\":1},{\"type\":\"relu\"},{\"type\":\"conv_transpose2d\","             \
    "\"in_channels\":4,\"out_channels\":1,\"kernel_size\":3,\"stride\":2,\"padding\":1,"    \
    "\"output_padding\":1},{\"type\":\"sigmoid\"}]"
#define RGB32                                                                             \
    "\"input\":[3,32,32],\"encoder\":[{\"type\":\"conv2d\",\"in_channels\":3,"             \
    "\"out_channels\":4,\"kernel_size\":3,\"stride\":2,\"padding\":1},{\"type\":\"relu\"}]," \
    "\"decoder\":[{\"type\":\"conv_transpose2d\",\"in_channels\":4,\"out_channels\":3,"     \
    "\"kernel_size\":3,\"stride\":2,\"padding\":1,\"output_padding\":1}]"
#define STACK(C, N)                                                                       \
    "\"input\":[" #C "," #N "," #N "],\"residual\":true,\"encoder\":[{\"type\":\"conv2d\"," \
    "\"in_channels\":" #C ",\"out_channels\":4,\"kernel_size\":3,\"padding\":1},"           \
    "{\"type\":\"relu\"}],\"decoder\":[{\"type\":\"conv2d\",\"in_channels\":4,"             \
    "\"out_channels\":" #C ",\"kernel_size\":3,\"padding\":1}]"
#define PHOTO(C, RANGE) STACK(C, 40) ",\"corruption\":{\"type\":\"gaussian255\",\"sigma\":" RANGE "}"
/* A C-channel photo model with a noise-level map (C + 1 channels in). */
#define MAP(C, C1, RANGE)                                                                  \
    "\"input\":[" #C1 ",40,40],\"residual\":true,\"noise_map\":true,\"encoder\":[{"       \
    "\"type\":\"conv2d\",\"in_channels\":" #C1 ",\"out_channels\":4,\"kernel_size\":3,"   \
    "\"padding\":1},{\"type\":\"relu\"}],\"decoder\":[{\"type\":\"conv2d\","             \
    "\"in_channels\":4,\"out_channels\":" #C ",\"kernel_size\":3,\"padding\":1}],"          \
    "\"corruption\":{\"type\":\"gaussian255\",\"sigma\":" RANGE "}"

enum { MAX_MODELS = 8 };
static dae_entry ents[MAX_MODELS];
static dae_entry *list[MAX_MODELS];
static int n_models;

/* Adds a denoiser named `name` (call in name order, as the registry lists them). */
static dae_entry *add(const char *name, const char *body)
{
    char cfg[2048];
    snprintf(cfg, sizeof cfg, "{\"name\":\"%s\",%s}", name, body);
    dae_error e = {0};
    dae_modelfile *mf = calloc(1, sizeof *mf);
    ck_assert_ptr_nonnull(mf);
    mf->model = dae_model_from_config(cfg, &e);
    ck_assert_msg(mf->model != NULL, "%s: %s", name, e.msg);
    snprintf(mf->name, sizeof mf->name, "%s", name);
    mf->tasks = DAE_TASK_DENOISE;
    dae_entry *en = &ents[n_models];
    memset(en, 0, sizeof *en);
    en->mf = mf;
    en->name = mf->name;
    ck_assert_int_eq(dae_photo_facts_parse(cfg, dae_model_image_channels(mf->model), &en->photo,
                                           &e),
                     DAE_OK);
    list[n_models++] = en;
    return en;
}

static void clear(void)
{
    for (int i = 0; i < n_models; i++) {
        dae_model_free(ents[i].mf->model);
        free(ents[i].mf);
    }
    n_models = 0;
}

/* The name of the model answering w x h x c (sigma < 0: no hint; resize 2: the hint is
 * the estimated level, not ?sigma=), or the error. */
static const char *route(const dae_entry *def, int w, int h, int c, double sigma, int resize,
                         dae_error *e)
{
    dae_denoise_want want = {.w = w, .h = h, .c = c, .has_sigma = sigma >= 0,
                             .sigma = sigma, .estimated = resize == 2, .resize = resize == 1};
    memset(e, 0, sizeof *e);
    const dae_entry *pick = dae_denoise_route(list, n_models, def, &want, e);
    return pick ? pick->name : "(refused)";
}

START_TEST(test_photos_go_to_photo_models)
{
    /* first by name: a fully convolutional digit model that runs in tiles (no photo range) */
    add("a-digits", STACK(1, 28));
    dae_entry *def = add("digits", DIGITS_STRIDED);
    add("photo-gray", PHOTO(1, "[0,55]"));
    add("photo-rgb", PHOTO(3, "[0,55]"));
    dae_error e;
    ck_assert_str_eq(route(def, 28, 28, 1, -1, 0, &e), "digits");
    /* the default takes 64x64 (multiples of 4) but is a 28x28 model: photo model */
    ck_assert_str_eq(route(def, 64, 64, 1, -1, 0, &e), "photo-gray");
    ck_assert_str_eq(route(def, 256, 256, 1, -1, 0, &e), "photo-gray");
    ck_assert_str_eq(route(def, 64, 64, 1, -1, 1, &e), "photo-gray");
    /* colour never goes to the gray default, even at its own size */
    ck_assert_str_eq(route(def, 40, 40, 3, -1, 0, &e), "photo-rgb");
    ck_assert_str_eq(route(def, 28, 28, 3, -1, 0, &e), "photo-rgb");
    ck_assert_str_eq(route(def, 500, 500, 3, -1, 0, &e), "photo-rgb");
    /* a photo default keeps its channel count, any size; the other goes to its model */
    dae_entry *pg = list[2];
    ck_assert_str_eq(route(pg, 13, 7, 1, -1, 0, &e), "photo-gray");
    ck_assert_str_eq(route(pg, 13, 7, 3, -1, 0, &e), "photo-rgb");
    /* kinds for GET /v1/models: 0 x 0 is no model's input size */
    ck_assert_str_eq(route(def, 0, 0, 1, -1, 0, &e), "photo-gray");
    ck_assert_str_eq(route(def, 0, 0, 3, -1, 0, &e), "photo-rgb");
    clear();
}
END_TEST

START_TEST(test_sigma_hint)
{
    dae_entry *def = add("digits", DIGITS_STRIDED);
    add("photo-gray", PHOTO(1, "[0,55]"));
    add("photo-hi", PHOTO(1, "[40,100]"));
    dae_error e;
    ck_assert_str_eq(route(def, 64, 64, 1, 80, 0, &e), "photo-hi");
    ck_assert_str_eq(route(def, 64, 64, 1, 20, 0, &e), "photo-gray");
    ck_assert_str_eq(route(def, 64, 64, 1, 110, 0, &e), "photo-gray"); /* none: the first */
    /* the default's own size keeps it, hint or not */
    ck_assert_str_eq(route(def, 28, 28, 1, 80, 0, &e), "digits");
    /* a tiled default whose range does not hold the hint gives way to one that does */
    dae_entry *pg = list[1];
    ck_assert_str_eq(route(pg, 64, 64, 1, 80, 0, &e), "photo-hi");
    ck_assert_str_eq(route(pg, 64, 64, 1, 110, 0, &e), "photo-gray"); /* stays blind */
    clear();
}
END_TEST

START_TEST(test_sigma_specialists)
{
    add("digits", DIGITS_STRIDED);
    dae_entry *all = add("photo-all", PHOTO(1, "[0,75]"));
    add("photo-s15", PHOTO(1, "[10,20]"));
    add("photo-s50", PHOTO(1, "[35,75]"));
    add("photo-z25", PHOTO(1, "[20,30]"));
    add("photo-z25b", PHOTO(1, "[20,30]"));
    dae_error e;
    /* the narrowest range holding the hint, even against the default */
    ck_assert_str_eq(route(all, 256, 256, 1, 15, 0, &e), "photo-s15");
    ck_assert_str_eq(route(all, 256, 256, 1, 50, 0, &e), "photo-s50");
    ck_assert_str_eq(route(all, 256, 256, 1, 32, 0, &e), "photo-all");
    ck_assert_str_eq(route(all, 256, 256, 1, 5, 0, &e), "photo-all");
    /* equal widths: the default, else the first by name */
    ck_assert_str_eq(route(all, 256, 256, 1, 25, 0, &e), "photo-z25");
    ck_assert_str_eq(route(list[5], 256, 256, 1, 25, 0, &e), "photo-z25b");
    /* no hint: the default; a hint no range holds: the default, blind */
    ck_assert_str_eq(route(all, 256, 256, 1, -1, 0, &e), "photo-all");
    ck_assert_str_eq(route(all, 256, 256, 1, 90, 0, &e), "photo-all");
    /* the digits default keeps its own size, hint or not */
    ck_assert_str_eq(route(list[0], 28, 28, 1, 15, 0, &e), "digits");
    ck_assert_str_eq(route(list[0], 64, 64, 1, 15, 0, &e), "photo-s15");
    clear();
}
END_TEST

START_TEST(test_estimate_hint)
{
    /* as shipped: a blind colour model for 0-55 and a map one for 0-75 */
    dae_entry *def = add("digits", DIGITS_STRIDED);
    add("photo-blind-rgb", PHOTO(3, "[0,55]"));
    add("photo-map-rgb", MAP(3, 4, "[0,75]"));
    add("photo-map-s15", MAP(1, 2, "[10,20]"));
    add("photo-zblind", PHOTO(1, "[0,55]"));
    dae_error e;
    /* ?sigma=: the narrowest range, blind or not */
    ck_assert_str_eq(route(def, 500, 500, 3, 17, 0, &e), "photo-blind-rgb");
    ck_assert_str_eq(route(def, 500, 500, 3, 60, 0, &e), "photo-map-rgb");
    /* an estimate: only the models that take a level */
    ck_assert_str_eq(route(def, 500, 500, 3, 17, 2, &e), "photo-map-rgb");
    ck_assert_str_eq(route(def, 500, 500, 3, 1, 2, &e), "photo-map-rgb");
    ck_assert_str_eq(route(def, 256, 256, 1, 15, 2, &e), "photo-map-s15");
    /* an estimate no map model's range holds: rule 4, a photo model whose range holds it */
    ck_assert_str_eq(route(def, 256, 256, 1, 1, 2, &e), "photo-zblind");
    ck_assert_str_eq(route(def, 256, 256, 1, 40, 2, &e), "photo-zblind");
    clear();
}
END_TEST

START_TEST(test_no_photo_models)
{
    dae_entry *def = add("digits", DIGITS_STRIDED);
    add("rgb", RGB32);
    dae_error e;
    /* gray: the default, for the sizes it takes (or any with ?resize=1) */
    ck_assert_str_eq(route(def, 64, 64, 1, -1, 0, &e), "digits");
    ck_assert_str_eq(route(def, 66, 66, 1, -1, 0, &e), "(refused)");
    ck_assert_int_eq(e.code, DAE_ESHAPE);
    ck_assert_ptr_nonnull(strstr(e.msg, "does not fit the default denoise model digits"));
    ck_assert_str_eq(route(def, 66, 66, 1, -1, 1, &e), "digits");
    ck_assert_str_eq(route(def, 0, 0, 1, -1, 0, &e), "(refused)");
    /* colour: the colour model for the sizes it takes, else refused, never gray */
    ck_assert_str_eq(route(def, 32, 32, 3, -1, 0, &e), "rgb");
    ck_assert_str_eq(route(def, 64, 48, 3, -1, 0, &e), "rgb");
    ck_assert_str_eq(route(def, 31, 31, 3, -1, 0, &e), "(refused)");
    ck_assert_int_eq(e.code, DAE_ESHAPE);
    ck_assert_ptr_nonnull(strstr(e.msg, "never answered gray"));
    ck_assert_ptr_nonnull(strstr(e.msg, "?resize=1"));
    ck_assert_str_eq(route(def, 31, 31, 3, -1, 1, &e), "rgb");
    clear();

    def = add("digits", DIGITS_STRIDED);
    ck_assert_str_eq(route(def, 28, 28, 3, -1, 0, &e), "(refused)");
    ck_assert_ptr_nonnull(strstr(e.msg, "image 28x28 (3 channels): no fully convolutional "
                                        "denoise model for 3 channels is loaded"));
    ck_assert_ptr_null(strstr(e.msg, "?resize=1")); /* would not help */
    ck_assert_str_eq(route(def, 28, 28, 3, -1, 1, &e), "(refused)");
    ck_assert_str_eq(route(NULL, 28, 28, 1, -1, 0, &e), "digits"); /* no default loaded */
    ck_assert_str_eq(route(NULL, 66, 66, 1, -1, 0, &e), "(refused)");
    clear();
}
END_TEST

START_TEST(test_per_channel_colour)
{
    /* a gray photo model run one channel at a time counts as a colour model */
    dae_entry *def = add("digits", DIGITS_STRIDED);
    add("photo-pc", PHOTO(1, "[0,55]") ",\"per_channel\":true");
    dae_error e;
    ck_assert_str_eq(route(def, 40, 40, 3, -1, 0, &e), "photo-pc");
    ck_assert_str_eq(route(def, 40, 40, 1, -1, 0, &e), "digits"); /* 40 = 10 x 4 */
    /* it is no gray model: a gray size the default cannot take is refused */
    ck_assert_str_eq(route(def, 42, 42, 1, -1, 0, &e), "(refused)");
    clear();
}
END_TEST

Suite *suite_serve_route(void)
{
    Suite *s = suite_create("serve_route");
    TCase *tc = tcase_create("basic");
    tcase_add_test(tc, test_photos_go_to_photo_models);
    tcase_add_test(tc, test_sigma_hint);
    tcase_add_test(tc, test_sigma_specialists);
    tcase_add_test(tc, test_estimate_hint);
    tcase_add_test(tc, test_no_photo_models);
    tcase_add_test(tc, test_per_channel_colour);
    suite_add_tcase(s, tc);
    return s;
}
