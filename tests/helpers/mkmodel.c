/* mkmodel.c — writes small random-weight daed model files for the service tests.
 *
 *   mkmodel OUT.safetensors KIND NAME [SEED]
 *
 * KIND: conv (1x28x28 fully convolutional, every task but superres, calibrated),
 *       mlp (1x28x28 through a linear bottleneck, denoise/inpaint/encode/score),
 *       rgb (3x32x32 fully convolutional denoise/inpaint/encode),
 *       sr (1x14x14 -> 1x28x28 superres),
 *       dncnn / dncnn-rgb (a small DnCNN-style residual photo denoiser, 3x3 same
 *       convolutions, receptive field 7x7, gray / colour in the opponent space, blind
 *       sigma 0..55 on the 0-255 scale), dncnn-hi (gray, trained range 40..100),
 *       dncnn-digits (the same stack at 1x28x28 without a photo noise range),
 *       ffd (FFDNet-style gray denoiser with a noise-level map: pixel_unshuffle 2, two
 *       3x3 convolutions at half resolution, pixel_shuffle 2; sigma 0..75).
 *       The weights are PyTorch's default
 * initialisation from SEED: useless as a denoiser, exact as a test subject. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/io/modelfile.h"

static const char *CONV =
    "\"tasks\":[\"denoise\",\"inpaint\",\"encode\",\"score\"],\"input\":[1,28,28],"
    "\"encoder\":[{\"type\":\"conv2d\",\"in_channels\":1,\"out_channels\":8,\"kernel_size\":3,"
    "\"stride\":2,\"padding\":1},{\"type\":\"relu\"},{\"type\":\"conv2d\",\"in_channels\":8,"
    "\"out_channels\":8,\"kernel_size\":3,\"stride\":2,\"padding\":1},{\"type\":\"relu\"}],"
    "\"decoder\":[{\"type\":\"conv_transpose2d\",\"in_channels\":8,\"out_channels\":8,"
    "\"kernel_size\":3,\"stride\":2,\"padding\":1,\"output_padding\":1},{\"type\":\"relu\"},"
    "{\"type\":\"conv_transpose2d\",\"in_channels\":8,\"out_channels\":1,\"kernel_size\":3,"
    "\"stride\":2,\"padding\":1,\"output_padding\":1},{\"type\":\"sigmoid\"}],"
    "\"corruption\":{\"type\":\"gaussian\",\"sigma\":0.3},"
    "\"training\":{\"epochs\":0,\"note\":\"random weights for tests\"},"
    "\"quality\":{\"psnr\":null},"
    "\"calibration\":{\"score\":\"mse\",\"quantiles\":{\"p50\":0.05,\"p90\":0.08,"
    "\"p99\":0.12},\"threshold\":0.12}";

static const char *MLP =
    "\"tasks\":[\"denoise\",\"inpaint\",\"encode\",\"score\"],\"input\":[1,28,28],"
    "\"encoder\":[{\"type\":\"flatten\"},{\"type\":\"linear\",\"in_features\":784,"
    "\"out_features\":32},{\"type\":\"relu\"},{\"type\":\"linear\",\"in_features\":32,"
    "\"out_features\":8}],"
    "\"decoder\":[{\"type\":\"linear\",\"in_features\":8,\"out_features\":784},"
    "{\"type\":\"sigmoid\"},{\"type\":\"unflatten\",\"unflattened_size\":[1,28,28]}]";

static const char *RGB =
    "\"tasks\":[\"denoise\",\"inpaint\",\"encode\"],\"input\":[3,32,32],"
    "\"encoder\":[{\"type\":\"conv2d\",\"in_channels\":3,\"out_channels\":8,\"kernel_size\":3,"
    "\"stride\":2,\"padding\":1},{\"type\":\"relu\"}],"
    "\"decoder\":[{\"type\":\"conv_transpose2d\",\"in_channels\":8,\"out_channels\":3,"
    "\"kernel_size\":3,\"stride\":2,\"padding\":1,\"output_padding\":1},{\"type\":\"sigmoid\"}]";

static const char *SR =
    "\"tasks\":[\"superres\"],\"input\":[1,14,14],"
    "\"encoder\":[{\"type\":\"conv2d\",\"in_channels\":1,\"out_channels\":4,\"kernel_size\":3,"
    "\"stride\":1,\"padding\":1},{\"type\":\"relu\"}],"
    "\"decoder\":[{\"type\":\"upsample\",\"scale_factor\":2,\"mode\":\"nearest\"},"
    "{\"type\":\"conv2d\",\"in_channels\":4,\"out_channels\":1,\"kernel_size\":3,\"stride\":1,"
    "\"padding\":1},{\"type\":\"sigmoid\"}]";

#define DNCNN(C, HI)                                                                      \
    "\"tasks\":[\"denoise\"],\"input\":[" #C ",40,40],\"residual\":true,"                  \
    "\"encoder\":[{\"type\":\"conv2d\",\"in_channels\":" #C ",\"out_channels\":8,"         \
    "\"kernel_size\":3,\"padding\":1},{\"type\":\"relu\"},{\"type\":\"conv2d\","          \
    "\"in_channels\":8,\"out_channels\":8,\"kernel_size\":3,\"padding\":1},{\"type\":"     \
    "\"relu\"}],\"decoder\":[{\"type\":\"conv2d\",\"in_channels\":8,\"out_channels\":" #C \
    ",\"kernel_size\":3,\"padding\":1}],\"corruption\":{\"type\":\"gaussian255\","          \
    "\"sigma\":" HI ",\"quantize\":true}"
static const char *DNCNN_GRAY = DNCNN(1, "[0,55]");
static const char *DNCNN_HI = DNCNN(1, "[40,100]");
static const char *DNCNN_RGB = DNCNN(3, "[0,55]") ",\"color_space\":\"opponent\"";
/* the same stack as a digit denoiser: 28x28, no photo noise range */
static const char *DNCNN_DIGITS =
    "\"tasks\":[\"denoise\"],\"input\":[1,28,28],\"residual\":true,"
    "\"encoder\":[{\"type\":\"conv2d\",\"in_channels\":1,\"out_channels\":8,"
    "\"kernel_size\":3,\"padding\":1},{\"type\":\"relu\"}],\"decoder\":[{\"type\":"
    "\"conv2d\",\"in_channels\":8,\"out_channels\":1,\"kernel_size\":3,\"padding\":1}]";

/* gray image + noise-level map through a full-resolution conv stack (KAIR DnCNN + map) */
static const char *DNCNN_MAP =
    "\"tasks\":[\"denoise\"],\"input\":[2,40,40],\"residual\":true,\"noise_map\":true,"
    "\"encoder\":[{\"type\":\"conv2d\",\"in_channels\":2,\"out_channels\":8,"
    "\"kernel_size\":3,\"padding\":1},{\"type\":\"relu\"}],\"decoder\":[{\"type\":"
    "\"conv2d\",\"in_channels\":8,\"out_channels\":1,\"kernel_size\":3,\"padding\":1}],"
    "\"corruption\":{\"type\":\"gaussian255\",\"sigma\":[0,75],\"quantize\":false}";

/* gray image + noise-level map -> half resolution -> back: size_div 2 */
static const char *FFD =
    "\"tasks\":[\"denoise\"],\"input\":[2,40,40],\"residual\":true,\"noise_map\":true,"
    "\"encoder\":[{\"type\":\"pixel_unshuffle\",\"downscale_factor\":2},{\"type\":"
    "\"conv2d\",\"in_channels\":8,\"out_channels\":8,\"kernel_size\":3,\"padding\":1},"
    "{\"type\":\"relu\"}],\"decoder\":[{\"type\":\"conv2d\",\"in_channels\":8,"
    "\"out_channels\":4,\"kernel_size\":3,\"padding\":1},{\"type\":\"pixel_shuffle\","
    "\"upscale_factor\":2}],\"corruption\":{\"type\":\"gaussian255\",\"sigma\":[0,75],"
    "\"quantize\":true}";

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: mkmodel OUT.safetensors conv|mlp|rgb|sr|dncnn|dncnn-rgb|"
                        "dncnn-hi|dncnn-digits|dncnn-map|ffd NAME [SEED]\n");
        return 2;
    }
    const char *body = !strcmp(argv[2], "conv") ? CONV : !strcmp(argv[2], "mlp") ? MLP
                       : !strcmp(argv[2], "rgb") ? RGB : !strcmp(argv[2], "sr") ? SR
                       : !strcmp(argv[2], "dncnn") ? DNCNN_GRAY
                       : !strcmp(argv[2], "dncnn-rgb") ? DNCNN_RGB
                       : !strcmp(argv[2], "dncnn-hi") ? DNCNN_HI
                       : !strcmp(argv[2], "dncnn-digits") ? DNCNN_DIGITS
                       : !strcmp(argv[2], "dncnn-map") ? DNCNN_MAP
                       : !strcmp(argv[2], "ffd") ? FFD : NULL;
    if (!body) {
        fprintf(stderr, "mkmodel: unknown kind %s (conv, mlp, rgb, sr, dncnn, dncnn-rgb, "
                        "dncnn-hi, dncnn-digits, dncnn-map, ffd)\n",
                argv[2]);
        return 2;
    }
    size_t n = strlen(body) + strlen(argv[3]) + 32;
    char *cfg = malloc(n);
    if (!cfg)
        return 1;
    snprintf(cfg, n, "{\"name\":\"%s\",%s}", argv[3], body);
    dae_error err = {0};
    dae_model *m = dae_model_from_config(cfg, &err);
    if (!m) {
        fprintf(stderr, "mkmodel: %s\n", err.msg);
        return 1;
    }
    dae_model_init_params(m, argc > 4 ? strtoull(argv[4], NULL, 10) : 1);
    int rc = dae_modelfile_save(argv[1], m, cfg, NULL, &err);
    if (rc != DAE_OK)
        fprintf(stderr, "mkmodel: %s\n", err.msg);
    dae_model_free(m);
    free(cfg);
    return rc == DAE_OK ? 0 : 1;
}
