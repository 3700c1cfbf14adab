/* check_fuzz_regress.c — every input the fuzzers (tests/fuzz/) found to break a parser, as a
 * minimal hand-written reproducer with the behaviour it must have now. */
#include "check_quiet.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "daed/io/dataset.h"
#include "daed/core/error.h"
#include "daed/io/image.h"
#include "daed/io/png.h"
#include "daed/io/modelfile.h"

/* fuzz_png: a tEXt chunk declaring 1.68 GB in a 56-byte PNG made libpng malloc its declared
 * length before reading it (libpng caps only IDAT lengths). The decoder must refuse a chunk
 * longer than the input, naming it, before libpng sees it. */
START_TEST(test_png_chunk_longer_than_input)
{
    static const unsigned char png[] = {
        0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
        0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0,
        0x3a, 0x7e, 0x9b, 0x55,                  /* IHDR CRC */
        0x64, 0x61, 0x74, 0x61, 't', 'E', 'X', 't', /* length 0x64617461 = 1684108385 */
        'C', 'o', 'm', 'm', 'e', 'n', 't', 0, 'x', 'y', 'z', 0, 0, 0, 0};
    dae_image im;
    dae_error err = {0};
    int rc = dae_png_decode(png, sizeof png, NULL, &im, &err);
    ck_assert_int_eq(rc, DAE_EFORMAT);
    ck_assert_msg(strstr(err.msg, "chunk tEXt at byte 33 declares 1684108385 data bytes"),
                  "message: %s", err.msg);
    ck_assert_ptr_null(im.px);
}
END_TEST

/* fuzz_modelfile: a 344-byte model file whose config declares two linear layers of 2^24
 * features, and no tensors, made dae_modelfile_parse calloc 2.2 GB of parameters before it
 * found them missing. A config needing far more parameters than the data section holds
 * must be refused before the model is built. */
START_TEST(test_modelfile_config_larger_than_data)
{
    static const char header[] =
        "{\"__metadata__\":{\"format\":\"daed-1\",\"config\":\"{\\\"input\\\":[1,4,4],"
        "\\\"encoder\\\":[{\\\"type\\\":\\\"flatten\\\"},{\\\"type\\\":\\\"linear\\\","
        "\\\"in_features\\\":16,\\\"out_features\\\":16777216}],\\\"decoder\\\":["
        "{\\\"type\\\":\\\"linear\\\",\\\"in_features\\\":16777216,\\\"out_features\\\":16},"
        "{\\\"type\\\":\\\"unflatten\\\",\\\"unflattened_size\\\":[1,4,4]}]}\"}}";
    size_t n = sizeof header - 1;
    unsigned char *buf = malloc(8 + n);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    dae_error err = {0};
    dae_modelfile *mf = dae_modelfile_parse(buf, 8 + n, "big.safetensors", NULL, &err);
    ck_assert_ptr_null(mf);
    ck_assert_int_eq(err.code, DAE_EFORMAT);
    ck_assert_msg(strstr(err.msg, "big.safetensors: config: the layers have 553648144 "
                                  "parameters") &&
                      strstr(err.msg, "the data section holds 0 bytes"),
                  "message: %s", err.msg);
    free(buf);
}
END_TEST

/* fuzz_idx: a 16-byte IDX header claiming 4000 x 512 x 512 images (within the default caps)
 * made dae_dataset_load_idx allocate 4 GiB of floats before reading one pixel. The reader
 * must refuse the file as truncated with memory bounded by what it read: checked in a child
 * whose address space is capped at 512 MB above its current size, where that allocation
 * fails (ENOMEM would be the old behaviour). Not under ASan or valgrind, whose own
 * address-space needs do not fit under such a cap (ASan builds run the corpus entry
 * tests/fuzz/corpus/idx/claims_1g.idx with -malloc_limit_mb=512 instead). */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#ifndef UNDER_ASAN
static int under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "vgpreload");
}

/* Current address-space size in bytes, from /proc/self/statm (pages). */
static size_t vm_size(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}
#endif

START_TEST(test_idx_header_claims_more_than_file)
{
    char dir[] = "/tmp/daed-regress.XXXXXX", plain[64], gz[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(plain, sizeof plain, "%s/claims.idx", dir);
    snprintf(gz, sizeof gz, "%s/claims.idx.gz", dir);
    static const unsigned char hdr[16] = {0, 0, 8, 3, 0, 0, 0x0f, 0xa0, /* 4000 images */
                                          0, 0, 2, 0, 0, 0, 2, 0};     /* 512 x 512 */
    FILE *f = fopen(plain, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(hdr, 1, sizeof hdr, f), sizeof hdr);
    fclose(f);
    /* The same header gzip-compressed. */
    gzFile g = gzopen(gz, "wb");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(gzwrite(g, hdr, sizeof hdr), (int)sizeof hdr);
    gzclose(g);

    /* Both fail without the cap too (memory aside). */
    dae_error e = {0};
    ck_assert_ptr_null(dae_dataset_load_idx(plain, NULL, NULL, &e));
    ck_assert_int_eq(e.code, DAE_EFORMAT);
    ck_assert_msg(strstr(e.msg, "byte 16: truncated image data"), "message: %s", e.msg);
    ck_assert_ptr_null(dae_dataset_load_idx(gz, NULL, NULL, &e));
    ck_assert_int_eq(e.code, DAE_EFORMAT);
    ck_assert_msg(strstr(e.msg, "the header claims 1048576000 bytes of data, more than a gzip "
                                "file of"), "message: %s", e.msg);
#ifndef UNDER_ASAN
    if (!under_valgrind()) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            size_t cap = vm_size() + ((size_t)512 << 20);
            struct rlimit rl = {cap, cap};
            if (setrlimit(RLIMIT_AS, &rl) != 0)
                _exit(100);
            dae_error ce = {0};
            dae_dataset *ds = dae_dataset_load_idx(plain, NULL, NULL, &ce);
            _exit(ds ? 101 : ce.code == DAE_EFORMAT ? 0 : ce.code == DAE_ENOMEM ? 102 : 103);
        }
        int st = 0;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                      "child status %d (102: it tried to allocate the claimed 4 GiB)",
                      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
#endif
    unlink(plain);
    unlink(gz);
    rmdir(dir);
}
END_TEST

Suite *suite_fuzz_regress(void)
{
    Suite *s = suite_create("fuzz_regress");
    TCase *tc = tcase_create("png");
    tcase_add_test(tc, test_png_chunk_longer_than_input);
    suite_add_tcase(s, tc);
    tc = tcase_create("modelfile");
    tcase_add_test(tc, test_modelfile_config_larger_than_data);
    suite_add_tcase(s, tc);
    tc = tcase_create("idx");
    tcase_add_test(tc, test_idx_header_claims_more_than_file);
    suite_add_tcase(s, tc);
    return s;
}
