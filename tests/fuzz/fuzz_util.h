/* fuzz_util.h — helpers shared by the libFuzzer targets: oracles that abort, in-memory files. */
#ifndef DAED_FUZZ_UTIL_H
#define DAED_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daed/core/error.h"

/* A broken invariant is a finding: print it and abort so libFuzzer saves the input. */
#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* FUZZ_VERBOSE=1 in the environment prints why each input was refused (seed triage). */
static inline void fuzz_note(const char *what, const dae_error *err)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "%s: %s\n", what, err ? err->msg : "accepted");
}

/* The error contract of every fallible function: a failure has a code and a message. */
static inline void fuzz_check_error(int rc, const dae_error *err)
{
    fuzz_note("refused", err);
    FUZZ_CHECK(rc > DAE_OK && rc <= DAE_EINTERNAL);
    FUZZ_CHECK(err->code == rc);
    FUZZ_CHECK(err->msg[0] != '\0');
    FUZZ_CHECK(memchr(err->msg, '\0', sizeof err->msg) != NULL);
    /* DAE_EINTERNAL means a bug by definition; DAE_EIO cannot come from bytes in memory. */
    FUZZ_CHECK(rc != DAE_EINTERNAL);
}

/* The bytes as an anonymous in-memory file (no disk traffic); *path names it for readers
 * that open paths ("/proc/self/fd/N"). Returns the descriptor (close it after), -1 on
 * failure. */
static inline int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t cap)
{
    int fd = memfd_create("daed-fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    for (size_t done = 0; done < size;) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

/* A private scratch directory for targets whose API writes files (created once per process
 * on tmpfs when there is one; the fuzzer runs in one process). NULL if none can be made. */
static char fuzz_dir_[64];
static inline void fuzz_scratch_remove(void) { rmdir(fuzz_dir_); }
static inline const char *fuzz_scratch_dir(void)
{
    char *dir = fuzz_dir_;
    if (!dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof fuzz_dir_, "%s/daed-fuzz-XXXXXX", base);
        if (!mkdtemp(dir)) {
            dir[0] = '\0';
            return NULL;
        }
        atexit(fuzz_scratch_remove); /* the targets remove their own files */
    }
    return dir;
}

#endif
