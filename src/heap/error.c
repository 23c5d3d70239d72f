/* error.c — the thread-local last error, the failure handler for GENERATE_EXCEPTIONS, and
 * corruption reports (which abort when termination on corruption is on).
 * Nothing here allocates: messages go to stderr with write(2). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap_internal.h"

static __thread ht_error last_error __attribute__((tls_model("initial-exec")));
__thread int hti_damage_seen __attribute__((tls_model("initial-exec")));
atomic_int hti_terminate_on_corruption;

static void default_handler(void *heap, ht_error error, void *context);
static _Atomic(ht_failure_handler) handler = default_handler;
static void *_Atomic handler_context;

static const char *const messages[HT_ERROR_COUNT] = {
    [HT_OK] = "no error",
    [HT_ERROR_NO_MEMORY] = "out of memory",
    [HT_ERROR_HEAP_FULL] = "fixed-size heap is full",
    [HT_ERROR_INVALID_HANDLE] = "invalid heap handle",
    [HT_ERROR_INVALID_PARAMETER] = "invalid parameter",
    [HT_ERROR_INVALID_POINTER] = "pointer is not a block of this heap",
    [HT_ERROR_DOUBLE_FREE] = "block is already free",
    [HT_ERROR_CORRUPTION] = "heap corruption detected",
    [HT_ERROR_NOT_IN_PLACE] = "block cannot be resized in place",
    [HT_ERROR_NO_MORE_ITEMS] = "no more items",
    [HT_ERROR_BUSY] = "operation not allowed on this heap",
};

ht_error ht_last_error(void)
{
    return last_error;
}
void ht_set_last_error(ht_error error)
{
    last_error = error;
}

const char *ht_error_message(ht_error error)
{
    if ((unsigned)error >= HT_ERROR_COUNT)
        return "unknown error";
    return messages[error];
}

static void write_line(const char *a, const char *b)
{
    ssize_t r = write(2, a, strlen(a));
    r = write(2, b, strlen(b));
    r = write(2, "\n", 1);
    (void)r;
}

static void default_handler(void *heap, ht_error error, void *context)
{
    (void)heap;
    (void)context;
    write_line("heaptrail: unhandled heap failure (GENERATE_EXCEPTIONS): ",
               ht_error_message(error));
    abort();
}

ht_failure_handler ht_set_failure_handler(ht_failure_handler new_handler, void *context)
{
    atomic_store(&handler_context, context);
    ht_failure_handler old = atomic_exchange(&handler, new_handler ? new_handler : default_handler);
    return old;
}

void hti_fail(ht_heap *heap, uint32_t flags, ht_error error)
{
    last_error = error;
    if (hti_heap_ok(heap))
        flags |= heap->flags;
    if (flags & HT_HEAP_GENERATE_EXCEPTIONS) {
        atomic_load (&handler)(heap, error, atomic_load(&handler_context));
        last_error = error;
    }
}

/* "0x" and 16 hex digits, without printf (which may allocate). */
static void format_address(char out[19], const void *address)
{
    static const char digits[] = "0123456789abcdef";
    uintptr_t value = (uintptr_t)address;
    out[0] = '0';
    out[1] = 'x';
    for (int i = 0; i < 16; i++)
        out[2 + i] = digits[(value >> (60 - 4 * i)) & 15];
    out[18] = '\0';
}

void hti_corruption(ht_heap *heap, const void *address, const char *what)
{
    (void)heap;
    last_error = HT_ERROR_CORRUPTION;
    hti_damage_seen = 1;
    if (atomic_load_explicit(&hti_terminate_on_corruption, memory_order_relaxed)) {
        /* one write: the line reaches stderr whole even when threads die together */
        char line[256], hex[19];
        format_address(hex, address);
        size_t n = 0;
        const char *parts[] = {"heaptrail: heap corruption at ", hex, ": ", what,
                               ", terminating\n"};
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
            for (const char *c = parts[i]; *c && n < sizeof line - 1; c++)
                line[n++] = *c;
        if (line[n - 1] != '\n')
            line[n - 1] = '\n';
        ssize_t r = write(2, line, n);
        (void)r;
        abort();
    }
}
