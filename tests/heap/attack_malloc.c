/* attack_malloc.c — the attack suite (attacks.h) through malloc and free, for a run under
 * libheaptrail-preload.so, where termination on corruption is the default: every attack must
 * end in SIGABRT after heaptrail's one line (run_attacks.sh checks), never in exit status 3
 * (exploited) or 0 (not noticed). Usage: attack_malloc NAME. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attacks.h"

static void *c_alloc(attack_heap *h, size_t size)
{
    void *p = malloc(size);
    if (!p)
        h->refused++;
    return p;
}

static void c_release(attack_heap *h, void *block)
{
    (void)h;
    free(block);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: attack_malloc NAME\n");
        return 2;
    }
    attack_heap h = {c_alloc, c_release, NULL, 0};
    const char *name = argv[1];
    int outcome;
    /* private sizes per attack, so each starts on buckets the start-up code has not touched */
    if (!strcmp(name, "poison"))
        outcome = attack_list_poison(&h, 2000, 40);
    else if (!strcmp(name, "poison-lfh"))
        outcome = attack_lfh_poison(&h, 2000);
    else if (!strcmp(name, "overflow-16"))
        outcome = attack_overflow(&h, 24, 16, 40);
    else if (!strcmp(name, "overflow-32"))
        outcome = attack_overflow(&h, 100, 32, 40);
    else if (!strcmp(name, "overflow-freed"))
        outcome = attack_overflow_freed(&h, 24, 16, 40);
    else if (!strcmp(name, "overflow-back-end"))
        outcome = attack_overflow(&h, 9000, 32, 0);
    else if (!strcmp(name, "unlink"))
        outcome = attack_unlink(&h, 9000, 0);
    else if (!strcmp(name, "unlink-fill"))
        outcome = attack_unlink(&h, 9000, 0x41);
    else if (!strcmp(name, "double-free"))
        outcome = attack_double_free(&h, 24, 40, false);
    else if (!strcmp(name, "double-free-scrubbed"))
        outcome = attack_double_free(&h, 24, 40, true);
    else if (!strcmp(name, "double-free-back-end"))
        outcome = attack_double_free(&h, 20000, 0, true);
    else if (!strcmp(name, "header-replay"))
        outcome = attack_header_replay(&h, 24, 40, false);
    else if (!strcmp(name, "header-replay-back-end"))
        outcome = attack_header_replay(&h, 20000, 0, false);
    else if (!strcmp(name, "header-smash"))
        outcome = attack_header_replay(&h, 20000, 0, true); /* an LFH slot has no header */
    else if (!strcmp(name, "forged-size"))
        outcome = attack_forged_size(&h, 20000);
    else {
        fprintf(stderr, "attack_malloc: unknown attack %s\n", name);
        return 2;
    }
    if (outcome == ATTACK_EXPLOITED) {
        printf("EXPLOITED\n");
        return 3;
    }
    printf("not noticed\n");
    return 0;
}
