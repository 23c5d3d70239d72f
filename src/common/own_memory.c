/* own_memory.c — the table of heaptrail's own mappings (own_memory.h).
 *
 * A fixed table in static storage under a spin lock: notes and forgets are rare (a thread's
 * first event, a pool's new chunk, a page-map leaf), the scan reads it once at exit. Static
 * storage, not a mapping, so the table is never a root itself (the scan skips heaptrail's own
 * module) and never needs memory to grow. */
#include "own_memory.h"

#include <stdatomic.h>

#define OWN_CAPACITY 4096u

static hti_own_range table[OWN_CAPACITY];
static size_t used; /* entries [0, used) may be live; a forgotten one has start == end == 0 */
static atomic_flag table_lock = ATOMIC_FLAG_INIT;
static atomic_bool dropped_any;

static void lock(void)
{
    while (atomic_flag_test_and_set_explicit(&table_lock, memory_order_acquire)) {
    }
}

static void unlock(void)
{
    atomic_flag_clear_explicit(&table_lock, memory_order_release);
}

void hti_own_memory_note(const void *base, size_t size)
{
    if (!base || !size)
        return;
    uintptr_t start = (uintptr_t)base;
    lock();
    size_t slot = used;
    for (size_t i = 0; i < used; i++)
        if (table[i].end == 0) {
            slot = i;
            break;
        }
    if (slot < OWN_CAPACITY) {
        table[slot] = (hti_own_range){start, start + size};
        if (slot == used)
            used++;
    } else {
        atomic_store(&dropped_any, true);
    }
    unlock();
}

void hti_own_memory_forget(const void *base)
{
    if (!base)
        return;
    lock();
    for (size_t i = 0; i < used; i++)
        if (table[i].start == (uintptr_t)base) {
            table[i] = (hti_own_range){0, 0};
            break;
        }
    while (used && table[used - 1].end == 0)
        used--;
    unlock();
}

size_t hti_own_memory_ranges(hti_own_range *out, size_t capacity, bool *dropped)
{
    size_t count = 0;
    /* The scan reads the table with the other threads stopped, one of them maybe inside a note:
     * past a bounded wait it reads without the lock (an entry half written is one range more or
     * less taken for roots, never a fault: every entry is a pair of integers). */
    bool locked = false;
    for (unsigned spins = 0; spins < (1u << 20); spins++)
        if (!atomic_flag_test_and_set_explicit(&table_lock, memory_order_acquire)) {
            locked = true;
            break;
        }
    for (size_t i = 0; i < used; i++) {
        if (table[i].end == 0)
            continue;
        if (count < capacity)
            out[count] = table[i];
        count++;
    }
    if (locked)
        unlock();
    if (dropped)
        *dropped = atomic_load(&dropped_any);
    return count;
}
