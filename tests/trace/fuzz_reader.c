/* fuzz_reader.c — fuzz target for the trace reader: any input must open and read to an error
 * or the end without crashing, hanging or over-allocating.
 *
 * Built with -DHT_LIBFUZZER=1 and -fsanitize=fuzzer it is a libFuzzer target. Otherwise main()
 * is a standalone driver: `fuzz_trace_reader [--seconds N] [--seed N] FILE|DIR...` replays the
 * corpus, then mutates it (bit flips, byte values, cuts, splices, duplicated ranges) for N
 * seconds, so CI without libFuzzer still exercises the reader on malformed input. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "heaptrail/reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ht_reader *reader = ht_reader_open_memory(data, size, NULL, 0);
    if (!reader)
        return 0;
    static ht_event events[256];
    long n;
    unsigned long rounds = 0;
    while ((n = ht_reader_read(reader, events, 256)) > 0) {
        for (long i = 0; i < n; i++) {
            const uint64_t *frames;
            uint32_t depth;
            if (events[i].stack_id && ht_reader_stack(reader, events[i].stack_id, &frames, &depth) &&
                depth)
                ht_reader_module_find(reader, frames[0]);
        }
        if (++rounds > 10000000ul)
            abort(); /* cannot happen: every event consumes input bytes */
    }
    for (size_t i = 0; i < ht_reader_module_count(reader); i++)
        (void)ht_reader_module(reader, i)->Path;
    ht_reader_rewind(reader);
    ht_reader_read(reader, events, 16);
    ht_reader_close(reader);
    return 0;
}

#ifndef HT_LIBFUZZER

typedef struct input {
    uint8_t *data;
    size_t size;
} input;

static input corpus[512];
static size_t corpus_count;

static void add_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f || corpus_count >= 512) {
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

static void add_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        add_file(path);
        return;
    }
    DIR *dir = opendir(path);
    if (!dir)
        return;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char child[4096];
        snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
        add_file(child);
    }
    closedir(dir);
}

static uint64_t rng_state;
static uint64_t next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static size_t mutate(uint8_t *out, size_t capacity, const input *base, const input *other)
{
    size_t size = base->size < capacity ? base->size : capacity;
    memcpy(out, base->data, size);
    int edits = 1 + (int)(next() % 8);
    for (int e = 0; e < edits && size; e++) {
        size_t at = (size_t)(next() % size);
        switch (next() % 7) {
        case 0: out[at] ^= (uint8_t)(1u << (next() % 8)); break;
        case 1: out[at] = (uint8_t)next(); break;
        case 2: out[at] = (uint8_t[]){0, 0x7F, 0x80, 0xFF}[next() % 4]; break;
        case 3: size = at; break; /* cut */
        case 4: { /* overwrite with bytes from another input */
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
        default: { /* a 32-bit length-like value */
            if (at + 4 <= size) {
                uint32_t v = (uint32_t[]){0, 1, 0xFFFF, 0x1000000, 0xFFFFFFFF}[next() % 5];
                memcpy(out + at, &v, 4);
            }
            break;
        }
        }
    }
    return size;
}

int main(int argc, char **argv)
{
    double seconds = 5;
    rng_state = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            rng_state = strtoull(argv[++i], NULL, 0);
        else
            add_path(argv[i]);
    }
    if (corpus_count == 0) {
        fprintf(stderr, "fuzz_trace_reader: no corpus given\n");
        return 1;
    }
    for (size_t i = 0; i < corpus_count; i++)
        LLVMFuzzerTestOneInput(corpus[i].data, corpus[i].size);
    size_t capacity = 1 << 20;
    uint8_t *buffer = malloc(capacity);
    if (!buffer)
        return 1;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    unsigned long runs = 0;
    for (;;) {
        const input *base = &corpus[next() % corpus_count];
        const input *other = &corpus[next() % corpus_count];
        size_t size = mutate(buffer, capacity, base, other);
        /* copy to an exact-size allocation so ASan sees any read past the end */
        uint8_t *exact = malloc(size ? size : 1);
        if (!exact)
            return 1;
        memcpy(exact, buffer, size);
        LLVMFuzzerTestOneInput(exact, size);
        free(exact);
        runs++;
        if (runs % 64 == 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            double elapsed = (double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
            if (elapsed >= seconds)
                break;
        }
    }
    printf("fuzz_trace_reader: %lu inputs from %zu corpus files, no failure\n", runs, corpus_count);
    free(buffer);
    for (size_t i = 0; i < corpus_count; i++)
        free(corpus[i].data);
    return 0;
}

#endif
