/* dae_train.c — dae-train: train a denoising autoencoder from a recipe (see trainer.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daed/core/blas.h"
#include "daed/train/recipe.h"
#include "daed/train/trainer.h"

static volatile sig_atomic_t stop_requested;

static void on_sigint(int sig)
{
    (void)sig;
    stop_requested = 1;
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C ends the process at once */
}

/* The folder a file goes to (runs/ for the shipped recipes) is made when missing, one level:
 * a missing parent of it is still an error, reported where the file is written. */
static void make_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path || (size_t)(slash - path) >= sizeof dir)
        return;
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    struct stat st;
    if (stat(dir, &st) != 0 && mkdir(dir, 0777) == 0)
        fprintf(stdout, "dae-train: created %s/\n", dir);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dae-train RECIPE.json [--key value | --key=value ...] [--resume[=CKPT]]\n"
            "                 [--snapshot]\n"
            "\n"
            "Trains the model a recipe describes and writes its model file (output), with a\n"
            "checkpoint after every epoch. Options override recipe fields (dotted names for\n"
            "nested ones). Ctrl-C writes a checkpoint at the end of the current step and exits\n"
            "0; --resume continues from it exactly (same recipe and thread count).\n"
            "Exit status: 0 trained (or interrupted with a checkpoint), 1 training failed\n"
            "(data, model, NaN/Inf loss, I/O), 2 bad recipe or arguments.\n"
            "\n"
            "  --help                      this text\n"
            "  --resume[=CKPT]             continue from the recipe's checkpoint (or CKPT)\n"
            "  --snapshot                  with --resume: write the model file (output) of the\n"
            "                              checkpoint as it is, without training: a look at a\n"
            "                              training in progress (e.g. --output runs/ep3.safetensors)\n"
            "\n"
            "Recipe fields (type, meaning, default):\n");
    dae_recipe_print_help(f);
}

int main(int argc, char **argv)
{
    const char *recipe_path = NULL, *resume = NULL;
    int resume_flag = 0, snapshot = 0, n_over = 0;
    char **over = argc > 0 ? calloc((size_t)argc, sizeof *over) : NULL;
    if (!over) {
        fprintf(stderr, "dae-train: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            free(over);
            return 0;
        } else if (!strcmp(a, "--resume")) {
            resume_flag = 1;
        } else if (!strcmp(a, "--snapshot")) {
            snapshot = 1;
        } else if (!strncmp(a, "--resume=", 9)) {
            resume_flag = 1;
            resume = a + 9;
        } else if (!strncmp(a, "--", 2)) {
            over[n_over++] = argv[i];
            if (!strchr(a, '=') && i + 1 < argc)
                over[n_over++] = argv[++i];
        } else if (!recipe_path) {
            recipe_path = a;
        } else {
            fprintf(stderr, "dae-train: unexpected argument \"%s\" (one recipe per run)\n", a);
            free(over);
            return 2;
        }
    }
    if (!recipe_path) {
        usage(stderr);
        free(over);
        return 2;
    }
    dae_error err = {0};
    dae_recipe *r = dae_recipe_load(recipe_path, n_over, over, &err);
    free(over);
    if (!r) {
        fprintf(stderr, "dae-train: %s\n", err.msg);
        return 2;
    }
    if (resume_flag && !resume)
        resume = r->checkpoint;
    make_parent(r->output);
    make_parent(r->checkpoint);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    dae_train_options o = {
        .log = stdout,
        .progress_bar = r->progress == DAE_TRI_ON ||
                        (r->progress == DAE_TRI_AUTO && isatty(STDERR_FILENO)),
        .stop = &stop_requested,
        .snapshot = snapshot,
    };
    fprintf(stdout, "dae-train: recipe %s; BLAS: %s\n", recipe_path, dae_blas_config());
    dae_train_status status = DAE_TRAIN_DONE;
    int rc = dae_train_main(r, resume, &o, &status, &err);
    dae_recipe_free(r);
    if (rc) {
        fprintf(stderr, "dae-train: %s\n", err.msg);
        return 1;
    }
    return 0;
}
