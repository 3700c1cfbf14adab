/* serve_config.c — daed's option table: defaults, environment, flags, ranges, --help. */
#include "daed/serve/serve_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daed/io/modelfile.h"

typedef enum { OPT_INT, OPT_SIZE, OPT_STR, OPT_BOOL } opt_type;

typedef struct opt {
    const char *name;  /* flag without the leading "--" */
    opt_type type;
    long long min, max; /* INT/SIZE/BOOL: value range; STR: maximum length (max) */
    const char *def;   /* default as text (parsed like any other value) */
    size_t off;        /* offset in dae_serve_config */
    size_t size;       /* field size (STR: buffer size) */
    const char *help;
} opt;

#define F(field) offsetof(dae_serve_config, field), sizeof(((dae_serve_config *)0)->field)
#define KiB 1024LL
#define MiB (1024LL * 1024)
#define GiB (1024LL * 1024 * 1024)

static const opt OPTS[] = {
    {"bind", OPT_STR, 0, 63, "0.0.0.0", F(bind), "listen address (IPv4)"},
    {"port", OPT_INT, 0, 65535, "8080", F(port), "TCP port; 0 picks a free one (logged)"},
    {"port-file", OPT_STR, 0, 1023, "", F(port_file), "write the bound port to this file"},
    {"models", OPT_STR, 1, 1023, "./models", F(models), "folder of *.safetensors models"},
    {"default-denoise", OPT_STR, 0, 63, "", F(default_model[0]),
     "model for /v1/denoise without ?model= (\"\": first by name with the task)"},
    {"default-inpaint", OPT_STR, 0, 63, "", F(default_model[1]), "model for /v1/inpaint"},
    {"default-superres", OPT_STR, 0, 63, "", F(default_model[2]), "model for /v1/superres"},
    {"default-encode", OPT_STR, 0, 63, "", F(default_model[3]),
     "model for /v1/encode, /v1/decode, /v1/interpolate"},
    {"default-score", OPT_STR, 0, 63, "", F(default_model[4]), "model for /v1/score"},
    {"workers", OPT_INT, 0, 256, "0", F(workers), "inference threads; 0 = number of CPUs"},
    {"queue-size", OPT_INT, 1, 65536, "256", F(queue_size),
     "jobs allowed to wait; when full: 503 with Retry-After"},
    {"max-batch", OPT_INT, 1, 1024, "16", F(max_batch), "samples per forward call"},
    {"batch-memory", OPT_SIZE, 64 * KiB, 1 * GiB, "1M", F(batch_memory),
     "workspace memory per worker and model: a model whose batch of --max-batch would need "
     "more runs in smaller batches (at least one sample). Bounds peak RSS: the shipped "
     "28x28 conv models need 1.1 MB for one sample and 2 MB for four (measured: 2M gives "
     "them 6% more requests/s and 3 MB more peak RSS), MLPs a few KB a sample (they keep "
     "their full batch)"},
    {"batch-delay-us", OPT_INT, 0, 1000000, "0", F(batch_delay_us),
     "wait up to this long for more jobs to batch (0: take what is waiting)"},
    {"retry-after", OPT_INT, 1, 3600, "1", F(retry_after), "seconds, sent with 503"},
    {"max-body", OPT_SIZE, 1 * KiB, 1 * GiB, "16M", F(max_body), "request body bytes (413)"},
    {"body-budget", OPT_SIZE, 0, 1 * GiB, "2M", F(body_budget),
     "request body bytes held in memory at once, over all connections: past it, a request "
     "waits after its headers (its body unread, in the kernel's socket buffer) until "
     "bodies already read are parsed. One request always gets in, whatever its size. "
     "Chunked bodies (no Content-Length) are not held back. With 256 clients POSTing "
     "batches of 64 PNGs (43 KB), peak RSS 38.4 MB without it, 30.6 with 2M, same "
     "requests/s. A client is charged what it has sent (at least the first 16 KB of its Content-Length once let in), so "
     "uploads slower than the workers (clients on slow links, without a buffering proxy "
     "in front) can make others wait: raise it then. 0: no bound"},
    {"pixel-budget", OPT_SIZE, 0, 64 * GiB, "512M", F(pixel_budget),
     "image memory of the requests in flight, estimated from each image's header before it "
     "is decoded: 3 bytes per pixel and channel when its planes are held as 8-bit (a tiled "
     "denoise answered as PNG or JPEG; a 16-megapixel colour photo ~144 MB), 5 when only "
     "its input is (a per-channel model in the opponent colour space: float output), else "
     "9 (float input and output planes and the answer, ~430 MB); a JSON body 88 bytes per number "
     "plus its base64 images. Past it, a request waits after its body is read until "
     "earlier ones finish. One request always gets in. 0: no bound"},
    {"max-jobs", OPT_INT, 1, 100000, "64", F(max_jobs),
     "asynchronous jobs (requests sent with Prefer: respond-async) held at once: queued, "
     "running, and finished ones not yet fetched and deleted or expired; past it: 503"},
    {"job-ttl", OPT_INT, 1, 604800, "600", F(job_ttl),
     "seconds a finished job's answer is kept for GET /v1/jobs/{id}/result"},
    {"job-memory", OPT_SIZE, 1 * MiB, 64 * GiB, "512M", F(job_memory),
     "bytes held for jobs at once: the bodies of unfinished jobs and the answers of "
     "finished ones (a 16-megapixel colour PNG answer is up to ~48 MB); a new job past it "
     "gets 503, an answer past it becomes a 507 error answer"},
    {"max-pixels", OPT_SIZE, 1, 256 * MiB, "16M", F(max_pixels),
     "decoded width*height of one image (413)"},
    {"max-side", OPT_INT, 1, 65535, "8192", F(max_side), "decoded width or height (413)"},
    {"max-answer", OPT_SIZE, 64 * KiB, 1 * GiB, "64M", F(max_answer),
     "bytes of one JSON answer (413): images as JSON pixels take ~10 bytes a value, so a "
     "4096x4096 gray image would be ~170 MB; refused before it is built, with a pointer to "
     "PNG (?encoding=png or Accept: image/png)"},
    {"max-json-depth", OPT_INT, 2, 256, "16", F(max_json_depth), "JSON nesting depth (400)"},
    {"max-json-array", OPT_SIZE, 1, 256 * MiB, "1M", F(max_json_array),
     "elements in one JSON array (400)"},
    {"max-json-values", OPT_SIZE, 1, 256 * MiB, "1M", F(max_json_values),
     "JSON values in one body (400); each costs ~64 bytes while parsed"},
    {"max-batch-images", OPT_INT, 1, 4096, "64", F(max_batch_images),
     "images in one {\"images\":[...]} request (400)"},
    {"max-steps", OPT_INT, 2, 1024, "32", F(max_steps), "interpolation steps (400)"},
    {"conn-timeout", OPT_INT, 1, 86400, "30", F(conn_timeout),
     "seconds before an idle connection is closed (every byte received restarts it)"},
    {"request-timeout", OPT_INT, 0, 86400, "60", F(request_timeout),
     "seconds a client gets to send a whole request, headers and body, counted from "
     "the connection's start or the end of its previous request; then the connection is "
     "closed (slow clients, slowloris); 0: no limit"},
    {"conn-limit", OPT_INT, 1, 1000000, "1024", F(conn_limit), "connections in total"},
    {"per-ip-limit", OPT_INT, 0, 1000000, "256", F(per_ip_limit),
     "connections per client address (0: no limit)"},
    {"conn-memory", OPT_SIZE, 16 * KiB, 64 * MiB, "16k", F(conn_memory),
     "buffer memory per connection: the request headers (a 12 KB header still fits in 16k) "
     "and the read buffer. With 256 clients POSTing batches of 64 PNGs, 16k instead of 32k "
     "cut peak RSS 30.6 -> 25.6 MB at the same requests/s (bench/serve.sh, 3 rounds)"},
    {"epoll", OPT_BOOL, 0, 1, "0", F(epoll),
     "I/O thread uses poll (0) or epoll (1). With epoll, libmicrohttpd 0.9.75 stalls for "
     "seconds when exactly 128 (or 256) keep-alive clients are ready at once (measured: "
     "2-4000 req/s instead of 20 000 at 128 connections) and notices a client that "
     "vanished mid-body only at --conn-timeout; poll costs time per wakeup for every open "
     "connection: next to 550 slow clients, normal clients' p99 grew 2.3-4.4x with poll, "
     "1.2x with epoll (bench/slowclient.sh)"},
    {"api-key", OPT_STR, 0, 255, "", F(api_key),
     "require Authorization: Bearer KEY on every route but health (\"\": none)"},
    {"shutdown-timeout", OPT_INT, 0, 3600, "30", F(shutdown_timeout),
     "seconds in-flight requests get to finish on SIGTERM"},
    {"openapi", OPT_STR, 0, 1023, "./openapi.yaml", F(openapi), "file served at /openapi.yaml"},
    {"web-dir", OPT_STR, 0, 1023, "./web", F(web_dir),
     "folder of the browser page served at / (try every task) and /docs (the API "
     "document, interactive); without its files GET / answers a pointer to the API"},
    {"access-log", OPT_BOOL, 0, 1, "1", F(access_log), "one log line per request (0/1)"},
    {"png-level", OPT_INT, 0, 9, "1", F(png_level), "zlib level of PNG answers"},
    {"jpeg-quality", OPT_INT, 1, 100, "90", F(jpeg_quality),
     "quality of JPEG answers (requests with Accept: image/jpeg)"},
    {"tile", OPT_INT, 16, 4096, "128", F(tile),
     "fully convolutional models run in tiles of this many output pixels a side (plus "
     "the receptive-field halo; at least 8 halo radii, so the overlap costs at most 1.56x); "
     "bounds a worker's memory whatever the image size"},
    {"model-mmap", OPT_STR, 1, 15, "auto", F(model_mmap),
     "map model files instead of copying them: auto (only files on a read-only filesystem, "
     "e.g. the container's read-only root in docker/), always, never. Mapped, a model costs "
     "no copy and no fresh memory, and only the models in use are resident: with the 8 "
     "shipped models, exec to the first answer took 53-65 ms mapped vs 121-147 ms copied, "
     "peak RSS under a denoise/score/batch load 22.0 vs 32.2 MB (the project's 2-core VM, "
     "where a first write to a page costs ~10 us). But a mapped file truncated or rewritten "
     "in place changes under daed or crashes it (SIGBUS): with always, replace model files "
     "only by rename (as dae-train does), never with cp over the old file"},
    {"precision", OPT_STR, 1, 7, "bf16", F(precision),
     "inference precision of the 3x3 padding-1 convolutions: bf16 (AVX512-BF16 CPUs; "
     "others use fp32) or fp32. bf16 rounds their inputs and weights to 8-bit mantissas "
     "and sums in fp32. The taps kernel's (stride 2, transposed, images under 64 pixels): "
     "the shipped fmnist-denoise forward 1.6x faster (128-144 vs 211-239 us per image on "
     "one thread), its PSNR unchanged at 0.01 dB on "
     "every PROTOCOL task, answers within 2/255 of fp32 (6% of 8-bit pixels differ by one "
     "level). The large stride-1 ones of photo models (8+ channels in and out) on AMX "
     "tiles where the CPU has AMX-BF16: the 12 Mpx photo demo in 14.0 vs 52.1 CPU-s "
     "(photo-ffd-rgb) and 68.6 vs 136.9 (photo-denoise-rgb), PSNR within 0.012 dB of "
     "fp32 on a 1024x768 photo at sigma 25. fp32 gives PyTorch's numbers to float "
     "rounding. Scoring always runs fp32"},
};
#define N_OPTS (sizeof OPTS / sizeof OPTS[0])

/* "--max-body" -> "DAED_MAX_BODY" */
static void env_name(const char *name, char *buf, size_t n)
{
    size_t j = (size_t)snprintf(buf, n, "DAED_");
    for (size_t i = 0; name[i] && j + 1 < n; i++)
        buf[j++] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    buf[j] = '\0';
}

/* Parse a whole decimal integer, with k/M/G suffix for sizes. */
static int parse_number(const char *s, int allow_suffix, long long *out)
{
    if (!*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s)
        return -1;
    if (allow_suffix && *end) {
        long long mul = 1;
        switch (*end) {
        case 'k': case 'K': mul = KiB; break;
        case 'm': case 'M': mul = MiB; break;
        case 'g': case 'G': mul = GiB; break;
        default: return -1;
        }
        end++;
        if (*end == 'i' || *end == 'B') /* "Mi", "MB", "MiB" */
            end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
        if (v < 0 || v > INT64_MAX / mul)
            return -1;
        v *= mul;
    }
    if (*end)
        return -1;
    *out = v;
    return 0;
}

/* STR options that take one of a few words: the allowed values as "a|b|c". */
static const struct {
    const char *name, *choices;
} CHOICES[] = {{"model-mmap", "auto|always|never"}, {"precision", "bf16|fp32"}};

static const char *choices_of(const opt *o)
{
    for (size_t i = 0; i < sizeof CHOICES / sizeof *CHOICES; i++)
        if (strcmp(CHOICES[i].name, o->name) == 0)
            return CHOICES[i].choices;
    return NULL;
}

/* Is val one of the '|'-separated choices? */
static int is_choice(const char *choices, const char *val)
{
    size_t n = strlen(val);
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && strncmp(c, val, n) == 0)
            return 1;
        c += len + (bar != NULL);
    }
    return 0;
}

static int set_value(dae_serve_config *cfg, const opt *o, const char *val, const char *from,
                     dae_error *err)
{
    char *field = (char *)cfg + o->off;
    if (o->type == OPT_STR) {
        size_t len = strlen(val);
        if ((long long)len > o->max || (long long)len < o->min)
            return dae_error_set(err, DAE_EINVAL,
                                 "%s: option --%s: value of %zu characters, expected %lld to %lld",
                                 from, o->name, len, o->min, o->max);
        const char *choices = choices_of(o);
        if (choices && !is_choice(choices, val))
            return dae_error_set(err, DAE_EINVAL, "%s: option --%s: \"%.64s\" is not one of %s",
                                 from, o->name, val, choices);
        memcpy(field, val, len + 1);
        return DAE_OK;
    }
    long long v;
    if (parse_number(val, o->type == OPT_SIZE, &v) != 0)
        return dae_error_set(err, DAE_EINVAL, "%s: option --%s: \"%.64s\" is not %s", from,
                             o->name, val,
                             o->type == OPT_SIZE ? "a size (e.g. 4096, 64k, 16M)"
                             : o->type == OPT_BOOL ? "0 or 1" : "an integer");
    if (v < o->min || v > o->max)
        return dae_error_set(err, DAE_EINVAL,
                             "%s: option --%s: %lld is out of range, expected %lld to %lld",
                             from, o->name, v, o->min, o->max);
    if (o->type == OPT_SIZE)
        *(size_t *)field = (size_t)v;
    else
        *(int *)field = (int)v;
    return DAE_OK;
}

static const opt *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (strlen(OPTS[i].name) == len && strncmp(OPTS[i].name, name, len) == 0)
            return &OPTS[i];
    return NULL;
}

void dae_serve_config_defaults(dae_serve_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_OPTS; i++) {
        int rc = set_value(cfg, &OPTS[i], OPTS[i].def, "default", NULL);
        (void)rc; /* the table's defaults are in range; check_serve_config asserts it */
    }
}

int dae_serve_config_parse(dae_serve_config *cfg, int argc, char *const *argv,
                           char *const *envp, dae_error *err)
{
    dae_serve_config_defaults(cfg);
    for (size_t i = 0; envp && i < N_OPTS; i++) {
        char env[96];
        env_name(OPTS[i].name, env, sizeof env);
        size_t n = strlen(env);
        for (char *const *e = envp; *e; e++) {
            if (strncmp(*e, env, n) == 0 && (*e)[n] == '=') {
                char from[128];
                snprintf(from, sizeof from, "environment %s", env);
                if (set_value(cfg, &OPTS[i], *e + n + 1, from, err) != DAE_OK)
                    return DAE_EINVAL;
            }
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            return dae_error_set(err, DAE_EINVAL,
                                 "argument \"%.64s\": expected an option --name VALUE "
                                 "(see --help)", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const opt *o = find_opt(name, len);
        if (!o)
            return dae_error_set(err, DAE_EINVAL, "unknown option --%.*s (see --help)",
                                 (int)(len > 64 ? 64 : len), name);
        const char *val;
        if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc)
                return dae_error_set(err, DAE_EINVAL, "option --%s needs a value", o->name);
            val = argv[++i];
        }
        char from[96];
        snprintf(from, sizeof from, "command line");
        if (set_value(cfg, o, val, from, err) != DAE_OK)
            return DAE_EINVAL;
    }
    return DAE_OK;
}

int dae_serve_config_wants(int argc, char *const *argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 'h';
        if (!strcmp(argv[i], "--version"))
            return 'v';
    }
    return 0;
}

void dae_serve_config_help(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s [--option VALUE]...\n"
            "Serves denoising autoencoders over HTTP (v1 API and KServe v2).\n"
            "Every option is also an environment variable; the command line wins.\n"
            "Sizes take k/M/G suffixes. SIGHUP reloads the models, SIGTERM drains and exits.\n\n",
            prog);
    for (size_t i = 0; i < N_OPTS; i++) {
        const opt *o = &OPTS[i];
        char env[96], range[64], flag[64];
        env_name(o->name, env, sizeof env);
        snprintf(flag, sizeof flag, "--%s", o->name);
        if (o->type == OPT_STR && choices_of(o))
            snprintf(range, sizeof range, "one of %s", choices_of(o));
        else if (o->type == OPT_STR)
            snprintf(range, sizeof range, "text, up to %lld chars", o->max);
        else if (o->type == OPT_BOOL)
            snprintf(range, sizeof range, "0 or 1");
        else
            snprintf(range, sizeof range, "%lld..%lld", o->min, o->max);
        fprintf(f, "  %-20s %-24s %s\n  %20s default: %s%s%s; %s\n", flag, env, o->help, "",
                o->type == OPT_STR ? "\"" : "", o->def, o->type == OPT_STR ? "\"" : "",
                range);
    }
    fprintf(f, "\n  --help, --version\n");
}

void dae_serve_config_describe(const dae_serve_config *c, char *buf, size_t n)
{
    snprintf(buf, n,
             "bind=%s port=%d models=%s workers=%d queue-size=%d max-batch=%d "
             "batch-memory=%zu batch-delay-us=%d max-body=%zu body-budget=%zu pixel-budget=%zu max-jobs=%d "
             "job-ttl=%d job-memory=%zu max-pixels=%zu "
             "max-side=%d max-answer=%zu max-json-depth=%d "
             "max-json-array=%zu max-json-values=%zu max-batch-images=%d conn-timeout=%d "
             "request-timeout=%d conn-limit=%d per-ip-limit=%d conn-memory=%zu epoll=%d "
             "shutdown-timeout=%d tile=%d jpeg-quality=%d model-mmap=%s precision=%s "
             "api-key=%s",
             c->bind, c->port, c->models, c->workers, c->queue_size, c->max_batch,
             c->batch_memory, c->batch_delay_us, c->max_body, c->body_budget, c->pixel_budget,
             c->max_jobs,
             c->job_ttl, c->job_memory, c->max_pixels,
             c->max_side, c->max_answer, c->max_json_depth,
             c->max_json_array, c->max_json_values, c->max_batch_images, c->conn_timeout,
             c->request_timeout, c->conn_limit, c->per_ip_limit, c->conn_memory, c->epoll,
             c->shutdown_timeout, c->tile, c->jpeg_quality, c->model_mmap, c->precision,
             c->api_key[0] ? "set" : "none");
}

int dae_serve_task_index(unsigned task_bit)
{
    switch (task_bit) {
    case DAE_TASK_DENOISE: return 0;
    case DAE_TASK_INPAINT: return 1;
    case DAE_TASK_SUPERRES: return 2;
    case DAE_TASK_ENCODE: return 3;
    case DAE_TASK_SCORE: return 4;
    default: return -1;
    }
}
