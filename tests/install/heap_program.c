/* heap_program.c — a program of the installed library's users: the heap API through
 * <heaptrail/heaptrail.h>, built by tests/install and scripts/package-test.sh against an installed
 * tree (pkg-config shared and static, find_package). Prints "heap ok" and exits 0 when a private
 * heap creates, allocates zeroed memory, frees and is destroyed. */
#include <heaptrail/heaptrail.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    ht_heap *heap = ht_heap_create(0, 0, 0);
    if (!heap) {
        fprintf(stderr, "ht_heap_create: %s\n", ht_error_message(ht_last_error()));
        return 1;
    }
    char *p = ht_heap_alloc(heap, HT_HEAP_ZERO_MEMORY, 100);
    if (!p || p[0] != 0 || p[99] != 0) {
        fprintf(stderr, "ht_heap_alloc: %s\n", ht_error_message(ht_last_error()));
        return 1;
    }
    strcpy(p, "heap ok");
    puts(p);
    if (!ht_heap_free(heap, 0, p) || !ht_heap_destroy(heap)) {
        fprintf(stderr, "free/destroy: %s\n", ht_error_message(ht_last_error()));
        return 1;
    }
    return 0;
}
