/* check_safetensors.c — the strict safetensors reader, table-driven malformed headers, and the
 * atomic writer (replace, and failures that leave nothing behind). */
#include "check_quiet.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daed/io/safetensors.h"

/* 8-byte length + header text (as given, no padding) + data_len bytes of pattern. */
static unsigned char *blob(const char *hdr, size_t data_len, size_t *len)
{
    size_t h = strlen(hdr);
    *len = 8 + h + data_len;
    unsigned char *b = malloc(*len + 1);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, hdr, h);
    for (size_t i = 0; i < data_len; i++)
        b[8 + h + i] = (unsigned char)(i * 7 + 1);
    return b;
}

#define T_A "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"
#define T_B "\"b\":{\"dtype\":\"F16\",\"shape\":[2,1],\"data_offsets\":[8,12]}"

START_TEST(test_parse_valid)
{
    size_t len;
    unsigned char *b = blob("{\"__metadata__\":{\"format\":\"x\",\"k\":\"v\"}," T_B "," T_A "}  ",
                            12, &len);
    dae_error e = {0};
    dae_st_file *f = dae_st_parse(b, len, NULL, &e);
    ck_assert_msg(f != NULL, "%s", e.msg);
    ck_assert_int_eq(f->n_tensors, 2);
    ck_assert_int_eq(f->n_meta, 2);
    ck_assert_str_eq(dae_st_meta(f, "k"), "v");
    ck_assert_ptr_null(dae_st_meta(f, "nope"));
    const dae_st_tensor *a = dae_st_find(f, "a"), *bt = dae_st_find(f, "b");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(bt);
    ck_assert_ptr_null(dae_st_find(f, "c"));
    ck_assert_str_eq(a->dtype, "F32");
    ck_assert_int_eq(a->ndim, 1);
    ck_assert_int_eq(a->shape[0], 2);
    ck_assert_uint_eq(a->n_elem, 2);
    ck_assert_str_eq(bt->dtype, "F16");
    ck_assert_int_eq(bt->elem_size, 2);
    ck_assert_int_eq(bt->ndim, 2);
    ck_assert_ptr_eq(a->data, f->data);
    ck_assert_ptr_eq(bt->data, f->data + 8);
    ck_assert_uint_eq(f->data_bytes, 12);
    dae_st_free(f);
    free(b);

    /* no metadata at all, a scalar and an empty tensor */
    b = blob("{\"s\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]},"
             "\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[1,1]}}", 1, &len);
    f = dae_st_parse(b, len, NULL, &e);
    ck_assert_msg(f != NULL, "%s", e.msg);
    ck_assert_int_eq(f->n_meta, -1);
    ck_assert_uint_eq(dae_st_find(f, "s")->n_elem, 1);
    ck_assert_uint_eq(dae_st_find(f, "z")->n_elem, 0);
    dae_st_free(f);
    free(b);
    dae_st_free(NULL);
}
END_TEST

typedef struct bad_case {
    const char *what;
    const char *hdr;
    size_t data_len;
    int code;
    const char *needle;
} bad_case;

static const bad_case bad_cases[] = {
    {"not JSON", "{\"a\":", 0, DAE_EFORMAT, "not valid JSON"},
    {"garbage after JSON", "{} x", 0, DAE_EFORMAT, "not valid JSON"},
    {"header too short", "{", 0, DAE_EFORMAT, "header length 1 is too short"},
    {"JSON array", "[1,2,3]", 0, DAE_EFORMAT, "not a JSON object"},
    {"JSON string", "\"abc\"", 0, DAE_EFORMAT, "not a JSON object"},
    {"duplicate tensor", "{" T_A "," T_A "}", 8, DAE_EFORMAT, "duplicate key \"a\""},
    {"duplicate metadata key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, DAE_EFORMAT,
     "duplicate __metadata__ key \"k\""},
    {"duplicate metadata object", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, DAE_EFORMAT,
     "duplicate key \"__metadata__\""},
    {"duplicate field", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],"
     "\"data_offsets\":[0,8]}}", 8, DAE_EFORMAT, "tensor a: duplicate field \"dtype\""},
    {"metadata not object", "{\"__metadata__\":[]}", 0, DAE_EFORMAT,
     "__metadata__ is not a JSON object"},
    {"metadata value number", "{\"__metadata__\":{\"k\":1}}", 0, DAE_EFORMAT,
     "value of \"k\" is not a string"},
    {"entry not object", "{\"a\":[1]}", 0, DAE_EFORMAT, "tensor a: entry is not a JSON object"},
    {"unknown field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],"
     "\"stride\":[1]}}", 8, DAE_EFORMAT, "tensor a: unknown field \"stride\""},
    {"missing offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, DAE_EFORMAT,
     "tensor a: missing \"data_offsets\""},
    {"unknown dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     DAE_EFORMAT, "tensor a: unknown dtype \"F33\""},
    {"dtype not string", "{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     DAE_EFORMAT, "dtype is not a string"},
    {"count mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
     DAE_EFORMAT, "shape [3] of F32 needs 12 bytes, data_offsets span 8"},
    {"negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8,
     DAE_EFORMAT, "shape dim 0 is -1"},
    {"absurd dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1e12],\"data_offsets\":[0,8]}}", 8,
     DAE_EFORMAT, "shape dim 0 is 1000000000000"},
    {"fractional dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8,
     DAE_EFORMAT, "shape dim 0 is 1.5"},
    {"dim not number", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}",
     8, DAE_EFORMAT, "shape dim 0 is \"2\", expected an integer"},
    {"too many dims", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],"
     "\"data_offsets\":[0,8]}}", 8, DAE_EFORMAT, "9 dims, at most 8"},
    {"count overflow", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],"
     "\"data_offsets\":[0,8]}}", 8, DAE_EFORMAT, "element count overflows"},
    {"offsets not pair", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8,
     DAE_EFORMAT, "data_offsets is not [begin, end]"},
    {"negative offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8,
     DAE_EFORMAT, "data_offsets is not [begin, end]"},
    {"end before begin", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
     DAE_EFORMAT, "end before begin"},
    {"offsets out of range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
     8, DAE_EFORMAT, "tensor a: data_offsets [0,16] beyond the data section (8 bytes"},
    {"overlap", "{" T_A ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
     DAE_EFORMAT, "tensor b data [4,12) overlaps tensor a [0,8)"},
    {"hole between", "{" T_A ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
     20, DAE_EFORMAT, "hole in the data: tensor a ends at 8 but the next, b, begins at 12"},
    {"hole at start", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
     DAE_EFORMAT, "first tensor a begins at 4, expected 0"},
    {"data longer", "{" T_A "}", 12, DAE_EFORMAT, "data section is 12 bytes but the tensors end "
     "at 8 (4 trailing bytes)"},
    {"data shorter", "{" T_A "," T_B "}", 10, DAE_EFORMAT,
     "tensor b: data_offsets [8,12] beyond the data section (10 bytes"},
    {"data but no tensors", "{}", 4, DAE_EFORMAT, "4 data bytes after the header but no tensors"},
    {"empty name", "{\"\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     DAE_EFORMAT, "tensor name of 0 bytes"},
};

START_TEST(test_malformed_table)
{
    const bad_case *c = &bad_cases[_i];
    size_t len;
    unsigned char *b = blob(c->hdr, c->data_len, &len);
    dae_error e = {0};
    dae_st_file *f = dae_st_parse(b, len, NULL, &e);
    ck_assert_msg(f == NULL, "case %s: accepted", c->what);
    ck_assert_msg(e.code == c->code, "case %s: code %d, expected %d (%s)", c->what, e.code,
                  c->code, e.msg);
    ck_assert_msg(strstr(e.msg, c->needle) != NULL, "case %s: message \"%s\" lacks \"%s\"",
                  c->what, e.msg, c->needle);
    free(b);
}
END_TEST

START_TEST(test_nul_inside_header)
{
    /* header length covers a NUL byte */
    const char hdr[] = "{}\0  \0  ";
    unsigned char b[16];
    memset(b, 0, sizeof b);
    b[0] = 8;
    memcpy(b + 8, hdr, 8);
    dae_error e = {0};
    ck_assert_ptr_null(dae_st_parse(b, sizeof b, NULL, &e));
    ck_assert_int_eq(e.code, DAE_EFORMAT);
    ck_assert_str_eq(e.msg, "header contains a NUL byte");
}
END_TEST

START_TEST(test_limits_and_truncation)
{
    size_t len;
    unsigned char *b = blob("{\"__metadata__\":{\"k\":\"v\"}," T_A "," T_B "}", 12, &len);
    dae_error e = {0};
    dae_st_file *f = dae_st_parse(b, len, NULL, &e);
    ck_assert_msg(f != NULL, "%s", e.msg);
    dae_st_free(f);

    /* truncated at several points: always rejected with a message, never a crash */
    size_t hdr_end = len - 12;
    size_t cuts[] = {0, 1, 7, 8, 9, 20, hdr_end - 1, hdr_end, hdr_end + 3, len - 1};
    const char *needles[] = {"too short", "too short", "too short", "larger than the rest",
                             "larger than the rest", "larger than the rest",
                             "larger than the rest", "beyond the data section",
                             "beyond the data section", "beyond the data section"};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        unsigned char *cut = malloc(cuts[i] + 1);
        memcpy(cut, b, cuts[i]);
        memset(&e, 0, sizeof e);
        f = dae_st_parse(cut, cuts[i], NULL, &e);
        ck_assert_msg(f == NULL, "cut at %zu accepted", cuts[i]);
        ck_assert_int_eq(e.code, DAE_EFORMAT);
        ck_assert_msg(strstr(e.msg, needles[i]), "cut at %zu: \"%s\" lacks \"%s\"", cuts[i],
                      e.msg, needles[i]);
        free(cut);
    }

    /* header length larger than the file */
    unsigned char big[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    ck_assert_ptr_null(dae_st_parse(big, sizeof big, NULL, &e));
    ck_assert_int_eq(e.code, DAE_EFORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "header length 65535 is larger than the rest of the "
                                        "file (8 bytes"));
    /* a header length far beyond any cap */
    unsigned char huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    ck_assert_ptr_null(dae_st_parse(huge, sizeof huge, NULL, &e));
    ck_assert_int_eq(e.code, DAE_ELIMIT);

    /* caps: header and file */
    dae_st_limits lim = dae_st_default_limits();
    lim.max_header_bytes = 16;
    ck_assert_ptr_null(dae_st_parse(b, len, &lim, &e));
    ck_assert_int_eq(e.code, DAE_ELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, "exceeds the limit 16"));
    lim = dae_st_default_limits();
    lim.max_file_bytes = len - 1;
    ck_assert_ptr_null(dae_st_parse(b, len, &lim, &e));
    ck_assert_int_eq(e.code, DAE_ELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, "the limit is"));
    lim = dae_st_default_limits();
    lim.max_tensors = 1;
    ck_assert_ptr_null(dae_st_parse(b, len, &lim, &e));
    ck_assert_int_eq(e.code, DAE_ELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, "more than 1 tensors"));
    free(b);
}
END_TEST

/* ---- writer ---- */

static char tmpdir[256];

static void mk_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/check_st.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* Entries in tmpdir other than . and .. */
static int count_entries(const char *dir, const char *containing)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
            (!containing || strstr(de->d_name, containing)))
            n++;
    closedir(d);
    return n;
}

static void rm_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *de;
        char p[600];
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
            if (remove(p) != 0) {
                chmod(p, 0700);
                remove(p);
            }
        }
        closedir(d);
    }
    rmdir(tmpdir);
}

START_TEST(test_write_roundtrip)
{
    mk_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/t.safetensors", tmpdir);
    float w[6] = {1.5f, -2.25f, 3e-8f, -0.0f, 1e30f, 7};
    float bias[3] = {0.5f, -1, 2};
    unsigned short h[2] = {0x3c00, 0xc000};
    dae_st_out ts[3] = {
        {.name = "encoder.0.weight", .dtype = "F32", .ndim = 2, .shape = {3, 2}, .data = w},
        {.name = "encoder.0.bias", .dtype = "F32", .ndim = 1, .shape = {3}, .data = bias},
        {.name = "half \"quoted\"", .dtype = "F16", .ndim = 1, .shape = {2}, .data = h},
    };
    const char *meta[] = {"format", "daed-1", "config", "{\"a\": \"b\\n\"}", NULL};
    dae_error e = {0};
    ck_assert_msg(dae_st_write(path, ts, 3, meta, &e) == DAE_OK, "%s", e.msg);

    unsigned char *buf;
    size_t len;
    ck_assert_int_eq(dae_file_read(path, 1 << 20, &buf, &len, &e), DAE_OK);
    dae_st_file *f = dae_st_parse(buf, len, NULL, &e);
    ck_assert_msg(f != NULL, "%s", e.msg);
    ck_assert_uint_eq(f->header_bytes % 8, 0);
    ck_assert_uint_eq(f->data_bytes, sizeof w + sizeof bias + sizeof h);
    ck_assert_str_eq(dae_st_meta(f, "config"), "{\"a\": \"b\\n\"}");
    ck_assert_str_eq(dae_st_meta(f, "format"), "daed-1");
    const dae_st_tensor *t = dae_st_find(f, "encoder.0.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->shape[0], 3);
    ck_assert_int_eq(t->shape[1], 2);
    ck_assert_int_eq(memcmp(t->data, w, sizeof w), 0);
    ck_assert_int_eq(t->begin, 0);
    t = dae_st_find(f, "encoder.0.bias");
    ck_assert_int_eq(memcmp(t->data, bias, sizeof bias), 0);
    t = dae_st_find(f, "half \"quoted\"");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(memcmp(t->data, h, sizeof h), 0);
    dae_st_free(f);
    free(buf);

    /* saving over an existing file replaces it; no temporary remains */
    ck_assert_int_eq(dae_st_write(path, ts, 1, NULL, &e), DAE_OK);
    ck_assert_int_eq(dae_file_read(path, 1 << 20, &buf, &len, &e), DAE_OK);
    f = dae_st_parse(buf, len, NULL, &e);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(f->n_tensors, 1);
    ck_assert_int_eq(f->n_meta, -1);
    dae_st_free(f);
    free(buf);
    ck_assert_int_eq(count_entries(tmpdir, NULL), 1);

    /* dae_file_load: the same bytes copied or mapped; the policy decides which */
    unsigned char *copy;
    size_t clen;
    ck_assert_int_eq(dae_file_read(path, 1 << 20, &copy, &clen, &e), DAE_OK);
    static const dae_file_map pol[3] = {DAE_FILE_MAP_NEVER, DAE_FILE_MAP_ALWAYS,
                                        DAE_FILE_MAP_AUTO};
    for (int k = 0; k < 3; k++) {
        int mapped = -1;
        ck_assert_int_eq(dae_file_load(path, 1 << 20, pol[k], &buf, &len, &mapped, &e), DAE_OK);
        ck_assert_uint_eq(len, clen);
        ck_assert_int_eq(memcmp(buf, copy, len), 0);
        /* the test folder is writable: AUTO copies */
        ck_assert_int_eq(mapped, pol[k] == DAE_FILE_MAP_ALWAYS);
        dae_file_release(buf, len, mapped);
    }
    free(copy);
    int mapped = -1;
    ck_assert_int_eq(dae_file_load(path, 16, DAE_FILE_MAP_ALWAYS, &buf, &len, &mapped, &e),
                     DAE_ELIMIT);
    ck_assert_ptr_null(buf);
    ck_assert_int_eq(dae_file_load(tmpdir, 1 << 20, DAE_FILE_MAP_ALWAYS, &buf, &len, &mapped,
                                   &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "not a regular file"));
    ck_assert_int_eq(dae_file_map_from_name("always"), DAE_FILE_MAP_ALWAYS);
    ck_assert_int_eq(dae_file_map_from_name("sometimes"), -1);
    ck_assert_str_eq(dae_file_map_name(DAE_FILE_MAP_AUTO), "auto");

    /* refused: duplicate names and keys, leaving the file untouched */
    dae_st_out dup[2] = {ts[1], ts[1]};
    ck_assert_int_eq(dae_st_write(path, dup, 2, NULL, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "duplicate tensor name \"encoder.0.bias\""));
    const char *dmeta[] = {"k", "1", "k", "2", NULL};
    ck_assert_int_eq(dae_st_write(path, ts, 1, dmeta, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "duplicate metadata key \"k\""));
    ck_assert_int_eq(count_entries(tmpdir, NULL), 1);
    rm_tmpdir();
}
END_TEST

START_TEST(test_atomic_failures)
{
    mk_tmpdir();
    char path[700], dir[300];
    const char data[] = "hello";
    dae_iovec part = {data, 5};
    dae_error e = {0};

    /* a path in a missing directory: error, nothing created */
    snprintf(path, sizeof path, "%s/missing/x.safetensors", tmpdir);
    ck_assert_int_eq(dae_file_write_atomic(path, &part, 1, &e), DAE_EIO);
    ck_assert_ptr_nonnull(strstr(e.msg, "cannot create temporary"));
    ck_assert_int_eq(count_entries(tmpdir, NULL), 0);

    /* the target is a directory: rename fails, the temporary is removed, target intact */
    snprintf(dir, sizeof dir, "%s/target", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    ck_assert_int_eq(dae_file_write_atomic(dir, &part, 1, &e), DAE_EIO);
    ck_assert_ptr_nonnull(strstr(e.msg, "rename"));
    ck_assert_int_eq(count_entries(tmpdir, ".tmp."), 0);
    struct stat st;
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));

    /* a read-only directory (meaningless as root, who may write anyway) */
    if (geteuid() != 0) {
        snprintf(path, sizeof path, "%s/x.bin", dir);
        ck_assert_int_eq(dae_file_write_atomic(path, &part, 1, &e), DAE_OK);
        ck_assert_int_eq(chmod(dir, 0500), 0);
        const char other[] = "other!";
        dae_iovec p2 = {other, 6};
        ck_assert_int_eq(dae_file_write_atomic(path, &p2, 1, &e), DAE_EIO);
        ck_assert_int_eq(chmod(dir, 0700), 0);
        unsigned char *buf;
        size_t len;
        ck_assert_int_eq(dae_file_read(path, 100, &buf, &len, &e), DAE_OK);
        ck_assert_uint_eq(len, 5);
        ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
        free(buf);
        ck_assert_int_eq(count_entries(dir, ".tmp."), 0);
        remove(path);
    }
    rmdir(dir);

    /* a stale temporary with our pid does not block the save */
    snprintf(path, sizeof path, "%s/y.bin", tmpdir);
    char tmp[800];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "w");
    ck_assert_ptr_nonnull(fp);
    fputs("stale stale stale", fp);
    fclose(fp);
    ck_assert_int_eq(dae_file_write_atomic(path, &part, 1, &e), DAE_OK);
    ck_assert_int_eq(count_entries(tmpdir, NULL), 1);

    /* file reads: missing file, over the cap, not a regular file */
    unsigned char *buf;
    size_t len;
    snprintf(tmp, sizeof tmp, "%s/nope", tmpdir);
    ck_assert_int_eq(dae_file_read(tmp, 100, &buf, &len, &e), DAE_ENOTFOUND);
    ck_assert_int_eq(dae_file_read(path, 4, &buf, &len, &e), DAE_ELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, "file is 5 bytes, the limit is 4"));
    ck_assert_int_eq(dae_file_read(tmpdir, 100, &buf, &len, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "not a regular file"));
    rm_tmpdir();
}
END_TEST

Suite *suite_safetensors(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_parse_valid);
    tcase_add_loop_test(tc, test_malformed_table, 0,
                        (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, test_nul_inside_header);
    tcase_add_test(tc, test_limits_and_truncation);
    suite_add_tcase(s, tc);
    tc = tcase_create("write");
    tcase_add_test(tc, test_write_roundtrip);
    tcase_add_test(tc, test_atomic_failures);
    suite_add_tcase(s, tc);
    return s;
}
