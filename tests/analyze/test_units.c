/* test_units.c — the analysis library's building blocks on their own: the duration and window
 * parsers (every accepted and rejected form), the live-block table against a simple model
 * over random inserts and deletions (backward-shift deletion must keep every block findable),
 * the key map, the string pool and the number formats. Arguments: [--seed N] [--ops N]. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze_internal.h"
#include "cli/durations.h"

static int failures;

#define CHECK(condition, ...)                                                                      \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static void test_durations(void)
{
    static const struct {
        const char *text;
        uint64_t ns;
    } good[] = {
        {"0", 0},
        {"1", 1000000000},
        {"1.5s", 1500000000},
        {"200ms", 200000000},
        {"10us", 10000},
        {"10\xC2\xB5s", 10000},
        {"500ns", 500},
        {"2min", 120000000000},
        {"2m", 120000000000},
        {"1h", 3600000000000},
        {".5s", 500000000},
        {"3.", 3000000000},
        {"0.000000001s", 1},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t ns = 99;
        int r = hti_parse_duration(good[i].text, &ns);
        CHECK(r == 0 && ns == good[i].ns, "duration %s: %d, %" PRIu64, good[i].text, r, ns);
    }
    static const char *const bad[] = {"",    "s",   "-1s",    "1 s",  "1ss", "1e3",          "0x10",
                                      "inf", "nan", "1.2.3s", "1sec", "1S",  "99999999999h", NULL};
    for (size_t i = 0; bad[i]; i++) {
        uint64_t ns;
        CHECK(hti_parse_duration(bad[i], &ns) != 0, "duration '%s' accepted", bad[i]);
    }
}

static void test_windows(void)
{
    uint64_t b, e;
    CHECK(hti_parse_window("1.5s..3s", &b, &e) == 0 && b == 1500000000 && e == 3000000000,
          "1.5s..3s");
    CHECK(hti_parse_window("200ms..", &b, &e) == 0 && b == 200000000 && e == HT_ANALYSIS_NO_END,
          "200ms..");
    CHECK(hti_parse_window("..2s", &b, &e) == 0 && b == 0 && e == 2000000000, "..2s");
    CHECK(hti_parse_window("..", &b, &e) == 0 && b == 0 && e == HT_ANALYSIS_NO_END, "..");
    static const char *const bad[] = {"",     "1s",         "2s..1s", "1s..1s",  "1s...2s",
                                      "a..b", "1s..2s..3s", "..0",    "1s..-2s", NULL};
    for (size_t i = 0; bad[i]; i++)
        CHECK(hti_parse_window(bad[i], &b, &e) != 0, "window '%s' accepted", bad[i]);
}

static void test_blocks(uint64_t seed, size_t ops)
{
    enum { SLOTS = 4096 };
    static uint64_t model[SLOTS]; /* address of slot i, or 0 */
    memset(model, 0, sizeof model);
    hti_blocks table;
    CHECK(hti_blocks_init(&table) == 0, "init");
    uint64_t state = seed;
    size_t live = 0;
    for (size_t n = 0; n < ops; n++) {
        uint64_t r = rng_next(&state);
        size_t i = (size_t)(r % SLOTS);
        uint64_t address = 0x10000 + (uint64_t)i * 16;
        if (model[i]) {
            hti_block *b = hti_blocks_find(&table, address);
            CHECK(b && hti_block_size(b) == (address ^ 0x55) % 1000, "lost block %" PRIx64,
                  address);
            if (b)
                hti_blocks_remove(&table, b);
            model[i] = 0;
            live--;
        } else {
            bool fresh = false;
            hti_block *b = hti_blocks_insert(&table, address, &fresh);
            CHECK(b && fresh, "insert %" PRIx64, address);
            if (b)
                b->size_heap = (address ^ 0x55) % 1000;
            model[i] = address;
            live++;
        }
        CHECK(table.count == live, "count %zu, model %zu", table.count, live);
        if (n % 997 == 0)
            for (size_t k = 0; k < SLOTS; k++) {
                uint64_t a = 0x10000 + (uint64_t)k * 16;
                CHECK((hti_blocks_find(&table, a) != NULL) == (model[k] != 0),
                      "membership of %" PRIx64, a);
            }
    }
    bool fresh = true;
    hti_block *b = hti_blocks_insert(&table, 0x10000, &fresh);
    CHECK(b && fresh == !model[0], "re-insert");
    hti_blocks_free(&table);
}

static void test_map_and_strings(void)
{
    hti_map map = {0};
    for (uint64_t k = 1; k <= 10000; k++)
        CHECK(hti_map_put(&map, k * 0x1000, (uint32_t)k) == 0, "put");
    for (uint64_t k = 1; k <= 10000; k++)
        CHECK(hti_map_get(&map, k * 0x1000) == k, "get %" PRIu64, k);
    CHECK(hti_map_get(&map, 12345) == UINT32_MAX, "absent key");
    hti_map_free(&map);

    hti_strings pool = {0};
    const char *a = hti_strings_intern(&pool, "main", 4);
    const char *b = hti_strings_intern(&pool, "mainly", 4);
    const char *c = hti_strings_intern(&pool, "mainly", 6);
    CHECK(a && a == b && c != a && strcmp(c, "mainly") == 0, "interning");
    char big[100000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *d = hti_strings_intern(&pool, big, sizeof big - 1);
    CHECK(d && strlen(d) == sizeof big - 1, "a string larger than a pool block");
    for (int i = 0; i < 5000; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%d", i);
        CHECK(hti_strings_intern(&pool, name, strlen(name)) ==
                  hti_strings_intern(&pool, name, strlen(name)),
              "stable");
    }
    CHECK(hti_strings_intern(&pool, "main", 4) == a, "still interned after growth");
    hti_strings_free(&pool);
}

static void test_formats(void)
{
    char buffer[64];
    CHECK(strcmp(hti_format_count(buffer, sizeof buffer, 1234567), "1,234,567") == 0, "%s", buffer);
    CHECK(strcmp(hti_format_count(buffer, sizeof buffer, -1234), "-1,234") == 0, "%s", buffer);
    CHECK(strcmp(hti_format_count(buffer, sizeof buffer, -0.2), "0") == 0, "%s", buffer);
    CHECK(strcmp(hti_format_bytes(buffer, sizeof buffer, 1023), "1023 B") == 0, "%s", buffer);
    CHECK(strcmp(hti_format_bytes(buffer, sizeof buffer, 8 << 20), "8.00 MiB") == 0, "%s", buffer);
    CHECK(strcmp(hti_format_bytes(buffer, sizeof buffer, -2048), "-2.00 KiB") == 0, "%s", buffer);
    CHECK(strcmp(hti_format_time(buffer, sizeof buffer, 1500000000), "1.500 s") == 0, "%s", buffer);
    CHECK(strcmp(hti_basename("/a/b/c.so"), "c.so") == 0, "basename");
}

int main(int argc, char **argv)
{
    uint64_t seed = 1;
    size_t ops = 200000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seed"))
            seed = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--ops"))
            ops = (size_t)strtoull(argv[i + 1], NULL, 10);
    }
    test_durations();
    test_windows();
    test_blocks(seed, ops);
    test_map_and_strings();
    test_formats();
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
