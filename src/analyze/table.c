/* table.c — the containers of the analysis: the live-block table (address -> block, open
 * addressing with linear probing and backward-shift deletion, so no tombstones pile up over a
 * long trace), a map from 64-bit keys to 32-bit values, a string pool, and array growth.
 *
 * The block table keeps its load at most 0.7: lookups stay short and its memory is about
 * 32 / 0.5 bytes per live block on average. Tables of 2 MiB and more are mapped on their own
 * and asked for transparent huge pages: every event touches a random slot, and with 4 KiB pages
 * the TLB misses cost as much as the cache misses. Nothing here knows about events. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "analyze/analyze_internal.h"

int hti_grow(void **array, size_t *capacity, size_t need, size_t element)
{
    if (need <= *capacity)
        return 0;
    size_t n = *capacity ? *capacity : 16;
    while (n < need) {
        if (n > SIZE_MAX / 2 / element)
            return -ENOMEM;
        n *= 2;
    }
    void *p = realloc(*array, n * element);
    if (!p)
        return -ENOMEM;
    *array = p;
    *capacity = n;
    return 0;
}

/* ---- hti_arena ---- */

#define ARENA_BLOCK (64u << 10)

void *hti_arena_alloc(hti_arena *arena, size_t size)
{
    size = (size + 7) & ~(size_t)7;
    if (arena->used + size > arena->size || !arena->block_count) {
        size_t block = size > ARENA_BLOCK ? size : ARENA_BLOCK;
        if (HTI_GROW(arena->blocks, arena->block_count, arena->block_capacity) != 0)
            return NULL;
        char *b = malloc(block);
        if (!b)
            return NULL;
        arena->blocks[arena->block_count++] = b;
        arena->used = 0;
        arena->size = block;
    }
    void *p = arena->blocks[arena->block_count - 1] + arena->used;
    arena->used += size;
    return p;
}

void hti_arena_free(hti_arena *arena)
{
    for (size_t i = 0; i < arena->block_count; i++)
        free(arena->blocks[i]);
    free(arena->blocks);
    memset(arena, 0, sizeof *arena);
}

/* ---- hti_map ---- */

void hti_map_free(hti_map *map)
{
    free(map->keys);
    free(map->values);
    memset(map, 0, sizeof *map);
}

uint32_t hti_map_get(const hti_map *map, uint64_t key)
{
    if (!map->keys)
        return UINT32_MAX;
    size_t i = (size_t)hti_mix64(key) & map->mask;
    for (;;) {
        if (map->keys[i] == key)
            return map->values[i];
        if (!map->keys[i])
            return UINT32_MAX;
        i = (i + 1) & map->mask;
    }
}

static int map_resize(hti_map *map, size_t capacity)
{
    uint64_t *keys = calloc(capacity, sizeof *keys);
    uint32_t *values = calloc(capacity, sizeof *values);
    if (!keys || !values) {
        free(keys);
        free(values);
        return -ENOMEM;
    }
    size_t old_capacity = map->keys ? map->mask + 1 : 0;
    for (size_t j = 0; j < old_capacity; j++) {
        if (!map->keys[j])
            continue;
        size_t i = (size_t)hti_mix64(map->keys[j]) & (capacity - 1);
        while (keys[i])
            i = (i + 1) & (capacity - 1);
        keys[i] = map->keys[j];
        values[i] = map->values[j];
    }
    free(map->keys);
    free(map->values);
    map->keys = keys;
    map->values = values;
    map->mask = capacity - 1;
    return 0;
}

int hti_map_put(hti_map *map, uint64_t key, uint32_t value)
{
    if (!map->keys || (map->count + 1) * 2 > map->mask + 1) {
        int error = map_resize(map, map->keys ? (map->mask + 1) * 2 : 64);
        if (error)
            return error;
    }
    size_t i = (size_t)hti_mix64(key) & map->mask;
    while (map->keys[i] && map->keys[i] != key)
        i = (i + 1) & map->mask;
    if (!map->keys[i]) {
        map->keys[i] = key;
        map->count++;
    }
    map->values[i] = value;
    return 0;
}

void hti_map_remove(hti_map *map, uint64_t key)
{
    if (!map->keys)
        return;
    size_t i = (size_t)hti_mix64(key) & map->mask;
    while (map->keys[i] != key) {
        if (!map->keys[i])
            return;
        i = (i + 1) & map->mask;
    }
    /* Backward shift: move later entries of the probe run into the hole when their home slot
     * does not lie between the hole and them (cyclically), so lookups never stop early. */
    for (size_t j = (i + 1) & map->mask; map->keys[j]; j = (j + 1) & map->mask) {
        size_t home = (size_t)hti_mix64(map->keys[j]) & map->mask;
        if (((j - home) & map->mask) >= ((j - i) & map->mask)) {
            map->keys[i] = map->keys[j];
            map->values[i] = map->values[j];
            i = j;
        }
    }
    map->keys[i] = 0;
    map->count--;
}

/* ---- string pool ---- */

#define STRING_BLOCK (64u << 10)

void hti_strings_free(hti_strings *pool)
{
    for (size_t i = 0; i < pool->block_count; i++)
        free(pool->blocks[i]);
    free(pool->blocks);
    free(pool->slots);
    memset(pool, 0, sizeof *pool);
}

static uint64_t hash_text(const char *text, size_t length)
{
    uint64_t h = 0xCBF29CE484222325u;
    for (size_t i = 0; i < length; i++)
        h = (h ^ (unsigned char)text[i]) * 0x100000001B3u;
    return h;
}

static char *pool_store(hti_strings *pool, const char *text, size_t length)
{
    if (!pool->block || pool->block_used + length + 1 > pool->block_size) {
        size_t size = length + 1 > STRING_BLOCK ? length + 1 : STRING_BLOCK;
        char *block = malloc(size);
        if (!block || HTI_GROW(pool->blocks, pool->block_count, pool->block_capacity) != 0) {
            free(block);
            return NULL;
        }
        pool->blocks[pool->block_count++] = block;
        pool->block = block;
        pool->block_size = size;
        pool->block_used = 0;
    }
    char *p = pool->block + pool->block_used;
    memcpy(p, text, length);
    p[length] = '\0';
    pool->block_used += length + 1;
    return p;
}

const char *hti_strings_intern(hti_strings *pool, const char *text, size_t length)
{
    if (!pool->slots || (pool->count + 1) * 2 > pool->mask + 1) {
        size_t capacity = pool->slots ? (pool->mask + 1) * 2 : 256;
        const char **slots = calloc(capacity, sizeof *slots);
        if (!slots)
            return NULL;
        size_t old_capacity = pool->slots ? pool->mask + 1 : 0;
        for (size_t j = 0; j < old_capacity; j++) {
            const char *s = pool->slots[j];
            if (!s)
                continue;
            size_t i = (size_t)hash_text(s, strlen(s)) & (capacity - 1);
            while (slots[i])
                i = (i + 1) & (capacity - 1);
            slots[i] = s;
        }
        free(pool->slots);
        pool->slots = slots;
        pool->mask = capacity - 1;
    }
    size_t i = (size_t)hash_text(text, length) & pool->mask;
    while (pool->slots[i]) {
        const char *s = pool->slots[i];
        if (strncmp(s, text, length) == 0 && s[length] == '\0')
            return s;
        i = (i + 1) & pool->mask;
    }
    char *copy = pool_store(pool, text, length);
    if (!copy)
        return NULL;
    pool->slots[i] = copy;
    pool->count++;
    return copy;
}

/* ---- live blocks ---- */

#define BLOCKS_INITIAL_BITS 12

#define HUGE_PAGE (2u << 20)

static int blocks_allocate(hti_blocks *table, unsigned bits)
{
    size_t capacity = (size_t)1 << bits;
    size_t bytes = capacity * sizeof(hti_block);
    hti_block *slots = NULL;
    void *mapping = NULL;
    size_t mapping_size = 0;
    if (bytes >= HUGE_PAGE) {
        mapping_size = bytes + HUGE_PAGE;
        mapping = mmap(NULL, mapping_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                       0);
        if (mapping == MAP_FAILED)
            return -ENOMEM;
        uintptr_t aligned = ((uintptr_t)mapping + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
        slots = (hti_block *)aligned;
        (void)madvise(slots, bytes, MADV_HUGEPAGE); /* a hint: fine if refused */
    } else if (!(slots = calloc(capacity, sizeof *slots))) {
        return -ENOMEM;
    }
    table->slots = slots;
    table->mask = capacity - 1;
    table->shift = 64 - bits;
    table->count = 0;
    table->mapping = mapping;
    table->mapping_size = mapping_size;
    return 0;
}

static void blocks_release(hti_block *slots, void *mapping, size_t mapping_size)
{
    if (mapping)
        munmap(mapping, mapping_size);
    else
        free(slots);
}

int hti_blocks_init(hti_blocks *table)
{
    memset(table, 0, sizeof *table);
    return blocks_allocate(table, BLOCKS_INITIAL_BITS);
}

void hti_blocks_free(hti_blocks *table)
{
    blocks_release(table->slots, table->mapping, table->mapping_size);
    memset(table, 0, sizeof *table);
}

int hti_blocks_grow(hti_blocks *table)
{
    hti_blocks old = *table;
    unsigned bits = 64 - old.shift + 1;
    if (blocks_allocate(table, bits) != 0) {
        *table = old;
        return -ENOMEM;
    }
    for (size_t j = 0; j <= old.mask; j++) {
        const hti_block *b = &old.slots[j];
        if (!b->address)
            continue;
        size_t i = hti_blocks_slot(table, b->address);
        while (table->slots[i].address)
            i = (i + 1) & table->mask;
        table->slots[i] = *b;
    }
    table->count = old.count;
    blocks_release(old.slots, old.mapping, old.mapping_size);
    return 0;
}
