/* gcc_input.c — the small C program that run_real.sh compiles with gcc, plainly and under
 * libheaptrail-preload.so: the compiler's exit status and the produced program's output must
 * match. It allocates, sorts and hashes a little so that a wrong compile would show. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct record {
    char name[24];
    uint32_t weight;
};

static int by_weight(const void *left, const void *right)
{
    const struct record *a = left, *b = right;
    if (a->weight != b->weight)
        return a->weight < b->weight ? -1 : 1;
    return strcmp(a->name, b->name);
}

int main(void)
{
    enum { COUNT = 5000, LIMIT = 100000 };
    struct record *records = malloc(COUNT * sizeof *records);
    unsigned char *composite = calloc(LIMIT, 1);
    if (records == NULL || composite == NULL)
        return 1;
    for (int i = 0; i < COUNT; i++) {
        snprintf(records[i].name, sizeof records[i].name, "r%d", i * 37 % COUNT);
        records[i].weight = (uint32_t)i * 2654435761u % 1000u;
    }
    qsort(records, COUNT, sizeof *records, by_weight);
    uint64_t hash = 1469598103934665603ull;
    for (int i = 0; i < COUNT; i++)
        for (const char *c = records[i].name; *c; c++)
            hash = (hash ^ (unsigned char)*c) * 1099511628211ull;
    int primes = 0;
    for (int i = 2; i < LIMIT; i++) {
        if (composite[i])
            continue;
        primes++;
        for (long j = (long)i * i; j < LIMIT; j += i)
            composite[j] = 1;
    }
    printf("first %s, last %s, hash %016llx, primes %d\n", records[0].name, records[COUNT - 1].name,
           (unsigned long long)hash, primes);
    free(composite);
    free(records);
    return 0;
}
