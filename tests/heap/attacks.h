/* attacks.h — heap misuse as an attacker practises it, written once over an allocator
 * interface so that the same attacks run against the heap API (test_attacks.c, termination
 * off: the damaged call must fail) and against malloc under the preload library
 * (attack_malloc.c, termination on: the process must abort with heaptrail's line).
 *
 * Each attack returns ATTACK_EXPLOITED when the misuse paid off — an allocation inside a
 * chosen global, two live blocks that overlap, a write to a chosen address — and
 * ATTACK_STOPPED otherwise. The interface counts the calls the allocator refused
 * (`refused`), which is how the API run tells "detected" from "not noticed". The attacks
 * follow how2heap (tcache_poisoning, overlapping_chunks, unsafe_unlink, fastbin_dup) adapted
 * to this heap's layout: free-list links in the first bytes of a freed block, a 16-byte
 * header before every back-end and large block, and none before an LFH slot, whose requested
 * bytes are followed by a canary when the slot has room to spare. */
#ifndef HEAPTRAIL_TESTS_HEAP_ATTACKS_H
#define HEAPTRAIL_TESTS_HEAP_ATTACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct attack_heap {
    void *(*alloc)(struct attack_heap *h, size_t size); /* NULL when refused */
    void (*release)(struct attack_heap *h, void *block);
    void *context;
    unsigned refused; /* calls the allocator failed (set by the interface) */
} attack_heap;

enum { ATTACK_STOPPED = 0, ATTACK_EXPLOITED = 1 };

/* The chosen address the attacker wants malloc to return or write to. */
static _Alignas(64) unsigned char attack_target[512];

#define ATTACK_LIVE_MAX 256
typedef struct attack_live {
    void *block[ATTACK_LIVE_MAX];
    size_t size[ATTACK_LIVE_MAX];
    unsigned count;
} attack_live;

static inline bool attack_in_target(const void *p)
{
    return (uintptr_t)p + 16 > (uintptr_t)attack_target &&
           (uintptr_t)p < (uintptr_t)attack_target + sizeof attack_target;
}

/* Allocates size bytes and records the block; true when the result is exploited: inside the
 * target, or overlapping a block that is still live. */
static inline bool attack_take(attack_heap *h, attack_live *live, size_t size, void **out)
{
    void *p = h->alloc(h, size);
    if (out)
        *out = p;
    if (!p)
        return false;
    if (attack_in_target(p))
        return true;
    for (unsigned i = 0; i < live->count; i++) {
        uintptr_t a = (uintptr_t)live->block[i], b = (uintptr_t)p;
        if (live->block[i] && a < b + size && b < a + live->size[i])
            return true;
    }
    if (live->count < ATTACK_LIVE_MAX) {
        live->block[live->count] = p;
        live->size[live->count++] = size ? size : 1;
    }
    return false;
}

static inline void attack_forget(attack_live *live, const void *p)
{
    for (unsigned i = 0; i < live->count; i++)
        if (live->block[i] == p)
            live->block[i] = NULL;
}

static inline bool attack_target_changed(void)
{
    for (size_t i = 0; i < sizeof attack_target; i++)
        if (attack_target[i] != 0)
            return true;
    return false;
}

/* Frees p, which the attack no longer counts as live. */
static inline void attack_release(attack_heap *h, attack_live *live, void *p)
{
    h->release(h, p);
    attack_forget(live, p);
}

/* n allocations of size; true when one of them is exploited. */
static inline bool attack_take_n(attack_heap *h, attack_live *live, size_t size, int n)
{
    for (int i = 0; i < n; i++)
        if (attack_take(h, live, size, NULL))
            return true;
    return false;
}

/* Blocks of size kept live so the front end serves the size (LFH active, lookaside in use). */
static inline void attack_warm(attack_heap *h, attack_live *live, size_t size, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        attack_take(h, live, size, NULL);
}

/* 1. Free-list poisoning: two blocks freed, the chosen address written over the first bytes
 * of the last one freed (where a free-list link lives), then allocations of that size. */
static inline int attack_list_poison(attack_heap *h, size_t size, unsigned warm)
{
    attack_live live = {0};
    attack_warm(h, &live, size, warm);
    void *a, *b, *guard;
    /* guards between the blocks keep back-end blocks from coalescing */
    if (attack_take(h, &live, size, &a) || attack_take(h, &live, size, &guard) ||
        attack_take(h, &live, size, &b) || attack_take(h, &live, size, &guard) || !a || !b)
        return ATTACK_EXPLOITED;
    attack_release(h, &live, a);
    attack_release(h, &live, b);
    uintptr_t forged[3] = {(uintptr_t)attack_target + 64, (uintptr_t)attack_target + 64,
                           (uintptr_t)attack_target + 64};
    memcpy(b, forged, size < sizeof forged ? size : sizeof forged); /* use after free */
    if (attack_take_n(h, &live, size, 4))
        return ATTACK_EXPLOITED;
    return ATTACK_STOPPED;
}

/* The same with the list filled past the lookaside depth, so the poisoned block sits in the
 * LFH's own list. */
static inline int attack_lfh_poison(attack_heap *h, size_t size)
{
    attack_live live = {0};
    attack_warm(h, &live, size, 20);
    void *blocks[80];
    for (int i = 0; i < 80; i++)
        if (attack_take(h, &live, size, &blocks[i]) || !blocks[i])
            return ATTACK_EXPLOITED;
    for (int i = 0; i < 80; i++) {
        attack_release(h, &live, blocks[i]);
    }
    uintptr_t forged = (uintptr_t)attack_target + 64;
    for (int i = 0; i < 80; i++)
        memcpy(blocks[i], &forged, sizeof forged);
    if (attack_take_n(h, &live, size, 100))
        return ATTACK_EXPLOITED;
    return ATTACK_STOPPED;
}

/* 2. Overflow: `over` bytes written past the requested end (over the slack, into the next
 * block's header or data), then the block freed and the size allocated again. */
static inline int attack_overflow(attack_heap *h, size_t size, size_t over, unsigned warm)
{
    attack_live live = {0};
    attack_warm(h, &live, size, warm);
    void *p, *guard;
    if (attack_take(h, &live, size, &p) || attack_take(h, &live, size, &guard) || !p)
        return ATTACK_EXPLOITED;
    memset((char *)p + size, 0x41, over); /* heap overflow */
    attack_release(h, &live, p);
    if (attack_take_n(h, &live, size, 4))
        return ATTACK_EXPLOITED;
    attack_release(h, &live, guard); /* the block whose header was hit */
    if (attack_take_n(h, &live, size, 4))
        return ATTACK_EXPLOITED;
    return ATTACK_STOPPED;
}

/* The same into a block already freed (cached by the front end, or free in the back end):
 * the damage must be caught when that block is taken again, not laundered. */
static inline int attack_overflow_freed(attack_heap *h, size_t size, size_t over, unsigned warm)
{
    attack_live live = {0};
    attack_warm(h, &live, size, warm);
    void *p, *next, *guard;
    if (attack_take(h, &live, size, &p) || attack_take(h, &live, size, &next) ||
        attack_take(h, &live, size, &guard) || !p || !next)
        return ATTACK_EXPLOITED;
    attack_release(h, &live, next);
    memset((char *)p + size, 0x41, over); /* heap overflow */
    if (attack_take_n(h, &live, size, 4))
        return ATTACK_EXPLOITED;
    h->release(h, p);
    return ATTACK_STOPPED;
}

/* 3. Use after free into back-end links: the unlink of a freed block whose links point at a
 * chosen global would write there (how2heap unsafe_unlink). fill != 0 fills the block
 * instead. */
static inline int attack_unlink(attack_heap *h, size_t size, int fill)
{
    attack_live live = {0};
    memset(attack_target, 0, sizeof attack_target);
    void *before, *victim, *after;
    if (attack_take(h, &live, size, &before) || attack_take(h, &live, size, &victim) ||
        attack_take(h, &live, size, &after) || !victim)
        return ATTACK_EXPLOITED;
    attack_release(h, &live, victim);
    if (fill) {
        memset(victim, fill, size);
    } else {
        uintptr_t links[2] = {(uintptr_t)attack_target + 64, (uintptr_t)attack_target + 128};
        memcpy(victim, links, sizeof links);
    }
    if (attack_take_n(h, &live, size, 4))
        return ATTACK_EXPLOITED;
    return attack_target_changed() ? ATTACK_EXPLOITED : ATTACK_STOPPED;
}

/* 4. Double free, straight (fastbin_dup) or after scrubbing the block's data (what defeats a
 * key stored in the freed block), then allocations: one block handed out twice is the
 * exploit. */
static inline int attack_double_free(attack_heap *h, size_t size, unsigned warm, bool scrub)
{
    attack_live live = {0};
    attack_warm(h, &live, size, warm);
    void *p, *q;
    if (attack_take(h, &live, size, &p) || attack_take(h, &live, size, &q) || !p)
        return ATTACK_EXPLOITED;
    attack_release(h, &live, p);
    if (scrub)
        memset(p, 0, size < 32 ? size : 32);
    h->release(h, p);
    if (attack_take_n(h, &live, size, 4))
        return ATTACK_EXPLOITED;
    return ATTACK_STOPPED;
}

/* 5. A header overwrite from an underflow: the 16 bytes before a block saved while it is live
 * and written back after its free (a replayed, validly sealed header), then a second free.
 * `smash` writes garbage there instead. */
static inline int attack_header_replay(attack_heap *h, size_t size, unsigned warm, bool smash)
{
    attack_live live = {0};
    attack_warm(h, &live, size, warm);
    void *p, *q;
    if (attack_take(h, &live, size, &p) || attack_take(h, &live, size, &q) || !p)
        return ATTACK_EXPLOITED;
    unsigned char saved[16];
    memcpy(saved, (char *)p - 16, 16); /* underflow read */
    if (smash) {
        memset((char *)p - 8, 0x7f, 8); /* underflow write into the block's own header */
        h->release(h, p);
    } else {
        h->release(h, p);
        memcpy((char *)p - 16, saved, 16); /* the busy header written back */
        h->release(h, p);
    }
    attack_forget(&live, p);
    if (attack_take_n(h, &live, size, 4))
        return ATTACK_EXPLOITED;
    return ATTACK_STOPPED;
}

/* 6. A forged size: the next block's header copied from a bigger block's (so it covers the
 * blocks after it), the victim freed and a big block asked for: it would overlap live ones. */
static inline int attack_forged_size(attack_heap *h, size_t size)
{
    attack_live live = {0};
    void *a, *b, *c, *d;
    if (attack_take(h, &live, size, &a) || attack_take(h, &live, size, &b) ||
        attack_take(h, &live, size, &c) || attack_take(h, &live, size, &d) || !a || !b)
        return ATTACK_EXPLOITED;
    /* b's header grows to cover c and d: size field doubled or tripled, check left as is */
    uint32_t granules;
    memcpy(&granules, (char *)b - 16, sizeof granules);
    granules *= 3;
    memcpy((char *)b - 16, &granules, sizeof granules); /* overflow from a */
    attack_release(h, &live, b);
    if (attack_take(h, &live, size * 3, NULL))
        return ATTACK_EXPLOITED;
    if (attack_take(h, &live, size, NULL))
        return ATTACK_EXPLOITED;
    return ATTACK_STOPPED;
}

#endif
