/* check_serve_web.c — the browser page's static files (web.h): which paths pass the check,
 * the types, and reading from a folder (regular files only, no symbolic links, size cap). */
#include "check_quiet.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../src/serve/web.h"

static const struct {
    const char *path;
    int ok;
    const char *msg; /* part of the message when refused */
} PATHS[] = {
    {"index.html", 1, NULL},
    {"app.js", 1, NULL},
    {"vendor/swagger-ui/swagger-ui-bundle.js", 1, NULL},
    {"samples/digit-7-noisy.png", 1, NULL},
    {"a/b/c/d.css", 1, NULL},
    {"a/b/c/d/e.css", 0, "more than 4 path segments"},
    {"", 0, "empty file path"},
    {"/etc/passwd.txt", 0, "empty segment at byte 0"},
    {"../openapi.yaml", 0, "starts with '.'"},
    {"vendor/../../x.js", 0, "starts with '.'"},
    {"..", 0, "starts with '.'"},
    {".hidden.js", 0, "starts with '.'"},
    {"vendor/.git/config.txt", 0, "starts with '.'"},
    {"a//b.js", 0, "empty segment"},
    {"vendor/", 0, "empty segment"},
    {"a\\b.js", 0, "byte 0x5c"},
    {"a%2e%2e.js", 0, "byte 0x25"},
    {"a b.js", 0, "byte 0x20"},
    {"caf\xc3\xa9.js", 0, "byte 0xc3"},
    {"run.sh", 0, "not a served file type"},
    {"Makefile", 0, "not a served file type"},
    {"x.html.bak", 0, "not a served file type"},
    {"index.HTML", 0, "not a served file type"},
};

START_TEST(test_path_check)
{
    dae_error e = {0};
    const char *p = PATHS[_i].path;
    int rc = dae_web_path_check(p, strlen(p), &e);
    ck_assert_msg((rc == DAE_OK) == PATHS[_i].ok, "%s: rc %d (%s)", p, rc, e.msg);
    if (!PATHS[_i].ok) {
        ck_assert_int_eq(rc, DAE_EINVAL);
        ck_assert_msg(strstr(e.msg, PATHS[_i].msg) != NULL, "%s: message '%s' lacks '%s'", p,
                      e.msg, PATHS[_i].msg);
    }
}
END_TEST

START_TEST(test_path_nul_and_length)
{
    dae_error e = {0};
    /* a NUL inside the given length (a %00 in the URL) is refused, not cut short */
    ck_assert_int_eq(dae_web_path_check("app.js\0.png", 11, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "NUL"));
    char longp[DAE_WEB_MAX_PATH + 2];
    memset(longp, 'a', sizeof longp);
    memcpy(longp + DAE_WEB_MAX_PATH - 3, ".js", 3);
    ck_assert_int_eq(dae_web_path_check(longp, DAE_WEB_MAX_PATH, &e), DAE_OK);
    memcpy(longp + DAE_WEB_MAX_PATH - 2, ".js", 3);
    ck_assert_int_eq(dae_web_path_check(longp, DAE_WEB_MAX_PATH + 1, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "at most"));
}
END_TEST

START_TEST(test_types)
{
    ck_assert_str_eq(dae_web_type("index.html"), "text/html; charset=utf-8");
    ck_assert_str_eq(dae_web_type("vendor/x.min.js"), "text/javascript; charset=utf-8");
    ck_assert_str_eq(dae_web_type("style.css"), "text/css; charset=utf-8");
    ck_assert_str_eq(dae_web_type("a.png"), "image/png");
    ck_assert_str_eq(dae_web_type("favicon.svg"), "image/svg+xml");
    ck_assert_ptr_null(dae_web_type("a.js/b"));
    ck_assert_ptr_null(dae_web_type("noext"));
    ck_assert_ptr_null(dae_web_type("a.exe"));
}
END_TEST

/* dir/name holding text (a fixture) */
static void write_text(const char *dir, const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_read)
{
    char dir[] = "/tmp/daed-web-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    write_text(dir, "app.js", "console.log(1);\n");
    char p[256];
    snprintf(p, sizeof p, "%s/sub.css", dir);
    ck_assert_int_eq(mkdir(p, 0700), 0); /* a folder with a served extension */
    snprintf(p, sizeof p, "%s/link.js", dir);
    ck_assert_int_eq(symlink("/etc/passwd", p), 0);

    char *data = NULL;
    size_t len = 0;
    dae_error e = {0};
    ck_assert_int_eq(dae_web_read(dir, "app.js", &data, &len, &e), DAE_OK);
    ck_assert_uint_eq(len, 16);
    ck_assert(memcmp(data, "console.log(1);\n", 16) == 0);
    free(data);
    ck_assert_int_eq(dae_web_read(dir, "nope.js", &data, &len, &e), DAE_ENOTFOUND);
    ck_assert_ptr_null(data);
    ck_assert_int_eq(dae_web_read(dir, "sub.css", &data, &len, &e), DAE_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(e.msg, "not a regular file"));
    ck_assert_int_eq(dae_web_read(dir, "link.js", &data, &len, &e), DAE_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(e.msg, "symbolic link"));
    ck_assert_int_eq(dae_web_read(dir, "../app.js", &data, &len, &e), DAE_EINVAL);
    ck_assert_int_eq(dae_web_read("/nonexistent-daed-web", "index.html", &data, &len, &e),
                     DAE_ENOTFOUND);

    snprintf(p, sizeof p, "%s/app.js", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/link.js", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/sub.css", dir);
    rmdir(p);
    rmdir(dir);
}
END_TEST

/* dir/name written as a gzip file of n bytes of `fill` (fill < 0: the bytes 0..n-1 mod 251) */
static void write_gz(const char *dir, const char *name, size_t n, int fill)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    gzFile g = gzopen(p, "wb9");
    ck_assert_ptr_nonnull(g);
    static unsigned char chunk[251 * 256];
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (unsigned char)(fill < 0 ? (int)(i % 251) : fill);
    for (size_t done = 0; done < n;) { /* chunks of a multiple of 251: the pattern runs on */
        size_t k = n - done < sizeof chunk ? n - done : sizeof chunk;
        ck_assert_int_eq(gzwrite(g, chunk, (unsigned)k), (int)k);
        done += k;
    }
    ck_assert_int_eq(gzclose(g), Z_OK);
}

START_TEST(test_load_gzip)
{
    char dir[] = "/tmp/daed-webgz-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    write_gz(dir, "big.js.gz", 100000, -1);
    dae_web_file f;
    dae_error e = {0};
    /* a client that takes gzip: the stored bytes */
    ck_assert_int_eq(dae_web_load(dir, "big.js", 1, &f, &e), DAE_OK);
    ck_assert(f.gzip && f.stored_gzip);
    ck_assert_uint_eq((unsigned char)f.data[0], 0x1f);
    ck_assert_uint_eq((unsigned char)f.data[1], 0x8b);
    ck_assert_uint_lt(f.len, 100000);
    free(f.data);
    /* one that does not: inflated, byte for byte */
    ck_assert_int_eq(dae_web_load(dir, "big.js", 0, &f, &e), DAE_OK);
    ck_assert(!f.gzip && f.stored_gzip);
    ck_assert_uint_eq(f.len, 100000);
    for (size_t i = 0; i < f.len; i++)
        ck_assert_uint_eq((unsigned char)f.data[i], i % 251);
    free(f.data);
    /* the plain file wins when both exist; neither: not found, the plain name in the message */
    write_text(dir, "big.js", "x");
    ck_assert_int_eq(dae_web_load(dir, "big.js", 1, &f, &e), DAE_OK);
    ck_assert(!f.gzip && !f.stored_gzip && f.len == 1);
    free(f.data);
    char p[256];
    snprintf(p, sizeof p, "%s/big.js", dir);
    unlink(p);
    ck_assert_int_eq(dae_web_load(dir, "none.js", 1, &f, &e), DAE_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(e.msg, "none.js: no such file"));
    ck_assert_ptr_null(f.data);
    /* a bomb: 9 MiB of zeros in a few kB is refused when inflated, sent as it is otherwise */
    write_gz(dir, "bomb.js.gz", ((size_t)9 << 20), 0);
    ck_assert_int_eq(dae_web_load(dir, "bomb.js", 0, &f, &e), DAE_ELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, "inflates past"));
    ck_assert_int_eq(dae_web_load(dir, "bomb.js", 1, &f, &e), DAE_OK);
    free(f.data);
    /* not gzip, and a truncated stream: an error of the server's file, not a crash */
    write_text(dir, "bad.css.gz", "not gzip at all");
    ck_assert_int_eq(dae_web_load(dir, "bad.css", 0, &f, &e), DAE_EIO);
    ck_assert_ptr_nonnull(strstr(e.msg, "bad.css.gz: not one whole gzip stream"));
    write_gz(dir, "cut.css.gz", 5000, -1);
    char q[256];
    snprintf(q, sizeof q, "%s/cut.css.gz", dir);
    ck_assert_int_eq(truncate(q, 40), 0);
    ck_assert_int_eq(dae_web_load(dir, "cut.css", 0, &f, &e), DAE_EIO);
    /* the path rules hold for the compressed form too */
    ck_assert_int_eq(dae_web_load(dir, "../big.js", 1, &f, &e), DAE_EINVAL);
    const char *names[] = {"big.js.gz", "bomb.js.gz", "bad.css.gz", "cut.css.gz"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}
END_TEST

Suite *suite_serve_web(void)
{
    Suite *s = suite_create("serve_web");
    TCase *tc = tcase_create("web");
    tcase_add_loop_test(tc, test_path_check, 0, sizeof PATHS / sizeof PATHS[0]);
    tcase_add_test(tc, test_path_nul_and_length);
    tcase_add_test(tc, test_types);
    tcase_add_test(tc, test_read);
    tcase_add_test(tc, test_load_gzip);
    suite_add_tcase(s, tc);
    return s;
}
