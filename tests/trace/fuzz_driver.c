/* fuzz_driver.c — the standalone driver of the fuzz targets, for builds without libFuzzer:
 * `fuzz_trace_NAME [--seconds N] [--seed N] FILE|DIR...` replays the corpus, then mutates it
 * (bit flips, byte values, cuts, splices, duplicated and repeated ranges, length-like words,
 * and the target's text tokens) for N seconds, so CI exercises every target on malformed input
 * with no libFuzzer at hand. The sequence depends only on the seed and the corpus. An input that
 * crashes the target (signal, abort, failed check) is written to fuzz-crash-NAME.bin in the
 * current directory before the signal takes its course: replay it by naming it. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_driver.h"

#define CORPUS_MAX 1024
#define INPUT_MAX (1u << 20)

typedef struct input {
    uint8_t *data;
    size_t size;
} input;

static input corpus[CORPUS_MAX];
static size_t corpus_count;

static void add_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f || corpus_count >= CORPUS_MAX) {
        if (f)
            fclose(f);
        return;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (8 << 20)) {
        fclose(f);
        return;
    }
    uint8_t *data = malloc((size_t)n + 1);
    if (data && fread(data, 1, (size_t)n, f) == (size_t)n) {
        corpus[corpus_count].data = data;
        corpus[corpus_count].size = (size_t)n;
        corpus_count++;
    } else {
        free(data);
    }
    fclose(f);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* A file, or the files of a directory in name order (the sequence must not depend on the
 * directory's order on disk). */
static void add_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "fuzz: cannot read %s\n", path);
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        add_file(path);
        return;
    }
    struct dirent **entries;
    int n = scandir(path, &entries, NULL, by_name);
    for (int i = 0; i < n; i++) {
        if (entries[i]->d_name[0] != '.') {
            char child[4096];
            snprintf(child, sizeof child, "%s/%s", path, entries[i]->d_name);
            add_file(child);
        }
        free(entries[i]);
    }
    if (n >= 0)
        free(entries);
}

static uint64_t rng_state;
static uint64_t next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static size_t token_count(void)
{
    size_t n = 0;
    while (fuzz_tokens[n])
        n++;
    return n;
}

static size_t mutate(uint8_t *out, size_t capacity, const input *base, const input *other)
{
    size_t size = base->size < capacity ? base->size : capacity;
    memcpy(out, base->data, size);
    size_t tokens = token_count();
    int edits = 1 + (int)(next() % 8);
    for (int e = 0; e < edits; e++) {
        size_t at = size ? (size_t)(next() % (size + 1)) : 0;
        switch (next() % 10) {
        case 0:
            if (at < size)
                out[at] ^= (uint8_t)(1u << (next() % 8));
            break;
        case 1:
            if (at < size)
                out[at] = (uint8_t)next();
            break;
        case 2:
            if (at < size)
                out[at] = (uint8_t[]){0, '\n', 0x7F, 0x80, 0xFF}[next() % 5];
            break;
        case 3: size = at; break; /* cut */
        case 4: {                 /* overwrite with bytes from another input */
            size_t len = (size_t)(next() % 64);
            if (other->size > len && at + len <= size) {
                size_t from = (size_t)(next() % (other->size - len));
                memcpy(out + at, other->data + from, len);
            }
            break;
        }
        case 5: { /* duplicate a range at the end */
            size_t len = (size_t)(next() % 256);
            if (at + len <= size && size + len <= capacity) {
                memcpy(out + size, out + at, len);
                size += len;
            }
            break;
        }
        case 6: { /* a 32-bit length-like value */
            if (at + 4 <= size) {
                uint32_t v = (uint32_t[]){0, 1, 0xFFFF, 0x1000000, 0xFFFFFFFF}[next() % 5];
                memcpy(out + at, &v, 4);
            }
            break;
        }
        case 7: { /* delete a range */
            size_t len = (size_t)(next() % 16);
            if (at + len <= size) {
                memmove(out + at, out + at + len, size - at - len);
                size -= len;
            }
            break;
        }
        case 8: { /* repeat a short range up to a few KiB: long lines, deep nesting */
            size_t len = 1 + (size_t)(next() % 8), times = (size_t)(next() % 4096);
            if (at + len <= size && size + len * times <= capacity) {
                memmove(out + at + len * times, out + at, size - at);
                for (size_t i = 1; i < times; i++)
                    memcpy(out + at + len * i, out + at + len * times, len);
                size += len * times;
            }
            break;
        }
        default: { /* insert one of the target's tokens */
            if (!tokens)
                break;
            const char *token = fuzz_tokens[next() % tokens];
            size_t len = strlen(token);
            if (size + len <= capacity) {
                memmove(out + at + len, out + at, size - at);
                memcpy(out + at, token, len);
                size += len;
            }
            break;
        }
        }
    }
    return size;
}

/* ---- keeping the input that failed ---- */

static const uint8_t *current_data;
static size_t current_size;
static char crash_path[256];

static void save_and_die(int signal_number)
{
    int fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        (void)!write(fd, current_data, current_size);
        close(fd);
    }
    static const char note[] = "fuzz: the failing input is in ";
    (void)!write(STDERR_FILENO, note, sizeof note - 1);
    (void)!write(STDERR_FILENO, crash_path, strlen(crash_path));
    (void)!write(STDERR_FILENO, "\n", 1);
    signal(signal_number, SIG_DFL);
    raise(signal_number);
}

static void run(const uint8_t *data, size_t size)
{
    current_data = data;
    current_size = size;
    LLVMFuzzerTestOneInput(data, size);
}

int main(int argc, char **argv)
{
    double seconds = 5;
    rng_state = 1;
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            rng_state = strtoull(argv[++i], NULL, 0);
        else
            add_path(argv[i]);
    }
    if (corpus_count == 0) {
        fprintf(stderr, "%s: no corpus given\n", name);
        return 1;
    }
    uint64_t seed = rng_state;
    snprintf(crash_path, sizeof crash_path, "fuzz-crash-%s.bin", name);
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        signal(fatal[i], save_and_die);

    for (size_t i = 0; i < corpus_count; i++)
        run(corpus[i].data, corpus[i].size);
    uint8_t *buffer = malloc(INPUT_MAX);
    if (!buffer)
        return 1;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    unsigned long runs = 0;
    for (;;) {
        const input *base = &corpus[next() % corpus_count];
        const input *other = &corpus[next() % corpus_count];
        size_t size = mutate(buffer, INPUT_MAX, base, other);
        /* copy to an exact-size allocation so ASan sees any read past the end */
        uint8_t *exact = malloc(size ? size : 1);
        if (!exact)
            return 1;
        memcpy(exact, buffer, size);
        run(exact, size);
        free(exact);
        runs++;
        if (runs % 64 == 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            double elapsed = (double)(now.tv_sec - start.tv_sec) +
                             (now.tv_nsec - start.tv_nsec) / 1e9;
            if (elapsed >= seconds)
                break;
        }
    }
    printf("%s: %lu inputs from %zu corpus files (seed %llu), no failure\n", name, runs,
           corpus_count, (unsigned long long)seed);
    free(buffer);
    for (size_t i = 0; i < corpus_count; i++)
        free(corpus[i].data);
    return 0;
}
