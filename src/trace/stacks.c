/* stacks.c — call stacks and the module map.
 *
 * Stacks are captured by unwind.c's walk with .eh_frame rules cached per return address, by
 * libunwind's unw_backtrace where that walk cannot go (loaded with dlopen RTLD_LOCAL so its
 * _Unwind_* symbols never interpose the program's), or by following frame pointers within the
 * thread's stack bounds (unwind.c). Each distinct stack gets an id from a table
 * of mmap memory: lookups take no lock; inserts take insert_lock and publish the entry before
 * the count (release), so the writer emits every stack whose id it reads from `count`.
 * Module records (path, load address, extent, GNU build-id) come from dl_iterate_phdr; the
 * writer re-reads it when the loader's add counter changes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trace_internal.h"

#define STACK_SLOTS (1u << 20)
#define STACK_MAX (STACK_SLOTS / 2)
#define FRAMES_MAX (16u << 20)
#define PROBE_LIMIT 128u
_Static_assert(HT_TRACE_MAX_DEPTH <= HTI_STACK_DEPTH_MAX,
               "every stack taken is one a reader reads");

typedef struct stack_entry {
    uint64_t hash;
    uint32_t depth;
    uint32_t offset; /* into frames_arena */
} stack_entry;

static _Atomic uint32_t *slots;
static stack_entry *entries; /* index = id; entry 0 unused */
static uint64_t *frames_arena;
static _Atomic uint32_t stack_count;
static uint32_t frames_used;
static pthread_mutex_t insert_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t stacks_dropped;

typedef int (*backtrace_fn)(void **, int);
static backtrace_fn unwind_backtrace;
static ht_trace_unwinder unwinder; /* DEFAULT (rules, then libunwind), LIBUNWIND or FRAME_POINTER */

/* ---- table ---- */

static int table_map(void)
{
    if (slots)
        return 0;
    slots = hti_map_memory(STACK_SLOTS * sizeof *slots);
    entries = hti_map_memory((STACK_MAX + 1) * sizeof *entries);
    frames_arena = hti_map_memory(FRAMES_MAX * sizeof *frames_arena);
    if (!slots || !entries || !frames_arena)
        return -ENOMEM;
    return 0;
}

static void table_reset(void)
{
    /* Zero and give the pages back; the mappings stay (a late hook may still read them). */
    madvise((void *)slots, STACK_SLOTS * sizeof *slots, MADV_DONTNEED);
    madvise(entries, (STACK_MAX + 1) * sizeof *entries, MADV_DONTNEED);
    madvise(frames_arena, FRAMES_MAX * sizeof *frames_arena, MADV_DONTNEED);
    atomic_store(&stack_count, 0);
    frames_used = 0;
    atomic_store(&stacks_dropped, 0);
}

static uint64_t hash_frames(const uint64_t *frames, unsigned depth)
{
    uint64_t h = 0x84222325CBF29CE4u ^ depth;
    for (unsigned i = 0; i < depth; i++) {
        h = (h ^ frames[i]) * 0x9E3779B97F4A7C15u;
        h ^= h >> 29;
    }
    return h | 1u;
}

static bool entry_matches(uint32_t id, uint64_t hash, const uint64_t *frames, unsigned depth)
{
    const stack_entry *e = &entries[id];
    return e->hash == hash && e->depth == depth &&
           memcmp(&frames_arena[e->offset], frames, depth * sizeof *frames) == 0;
}

static HTI_NOINLINE uint32_t insert_slow(uint64_t hash, const uint64_t *frames, unsigned depth)
{
    pthread_mutex_lock(&insert_lock);
    uint32_t id = 0;
    uint32_t i = (uint32_t)hash & (STACK_SLOTS - 1);
    for (unsigned probe = 0; probe < PROBE_LIMIT; probe++, i = (i + 1) & (STACK_SLOTS - 1)) {
        uint32_t existing = atomic_load_explicit(&slots[i], memory_order_acquire);
        if (existing && entry_matches(existing, hash, frames, depth)) {
            id = existing;
            break;
        }
        if (existing)
            continue;
        uint32_t next = atomic_load_explicit(&stack_count, memory_order_relaxed) + 1;
        if (next > STACK_MAX || frames_used + depth > FRAMES_MAX)
            break;
        stack_entry *e = &entries[next];
        e->hash = hash;
        e->depth = depth;
        e->offset = frames_used;
        memcpy(&frames_arena[frames_used], frames, depth * sizeof *frames);
        frames_used += depth;
        atomic_store_explicit(&slots[i], next, memory_order_release);
        atomic_store_explicit(&stack_count, next, memory_order_release);
        id = next;
        break;
    }
    pthread_mutex_unlock(&insert_lock);
    if (!id)
        atomic_fetch_add_explicit(&stacks_dropped, 1, memory_order_relaxed);
    return id;
}

static uint32_t intern(const uint64_t *frames, unsigned depth)
{
    uint64_t hash = hash_frames(frames, depth);
    uint32_t i = (uint32_t)hash & (STACK_SLOTS - 1);
    for (unsigned probe = 0; probe < PROBE_LIMIT; probe++, i = (i + 1) & (STACK_SLOTS - 1)) {
        uint32_t id = atomic_load_explicit(&slots[i], memory_order_acquire);
        if (!id)
            break;
        if (entry_matches(id, hash, frames, depth))
            return id;
    }
    return insert_slow(hash, frames, depth);
}

/* ---- unwinding ---- */

/* libunwind for the whole stack: the slow path of the default unwinder, or the one asked for. */
static HTI_NOINLINE int libunwind_backtrace(uint64_t *frames, int max)
{
    /* libunwind's first frame returns into this function: one more, then dropped. */
    void *raw[HT_TRACE_MAX_DEPTH + 9];
    int n = unwind_backtrace(raw, max + 1);
    for (int i = 1; i < n; i++)
        frames[i - 1] = (uint64_t)(uintptr_t)raw[i];
    return n > 0 ? n - 1 : 0;
}

uint32_t hti_stack_capture(unsigned skip)
{
    unsigned depth = hti_session_state.options.stack_depth;
    if (!depth || !slots)
        return 0;
    uint64_t frames[HT_TRACE_MAX_DEPTH + 8];
    unsigned want = depth + skip;
    if (want > HT_TRACE_MAX_DEPTH + 8)
        want = HT_TRACE_MAX_DEPTH + 8;
    /* Every unwinder's frames[0] is the return address into this function. */
    int n = -ENOENT;
    if (unwinder == HT_TRACE_UNWIND_DEFAULT)
        n = hti_unwind_backtrace(frames, (int)want);
    if (n < 0 && unwind_backtrace && unwinder != HT_TRACE_UNWIND_FRAME_POINTER)
        n = libunwind_backtrace(frames, (int)want);
    if (n < 0)
        n = hti_fp_backtrace(frames, (int)want);
    if (n <= (int)skip)
        return 0;
    unsigned count = (unsigned)n - skip < depth ? (unsigned)n - skip : depth;
    return intern(frames + skip, count);
}

uint32_t hti_stack_count(void)
{
    return atomic_load_explicit(&stack_count, memory_order_acquire);
}

unsigned ht_trace_stack_frames(uint32_t stack_id, uint64_t *frames, unsigned max)
{
    if (!stack_id || stack_id > hti_stack_count())
        return 0;
    const stack_entry *e = &entries[stack_id];
    unsigned n = e->depth < max ? e->depth : max;
    memcpy(frames, &frames_arena[e->offset], n * sizeof *frames);
    return e->depth;
}

/* libunwind opens a pipe when it is loaded or first used, to check memory before reading it, and
 * keeps it open for good, although on Linux it checks with mincore and never writes to the pipe.
 * A session must leave no descriptor in the program: the two lowest free descriptor numbers are
 * noted before libunwind is loaded, and after its first use, if they are the two ends of one pipe
 * opened as libunwind opens it (close-on-exec, non-blocking) and mincore works here (so libunwind
 * chose it), they are closed. */
static int lowest_free_fds(int free_fds[2])
{
    int found = 0;
    for (int fd = 0; fd < 65536 && found < 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
            free_fds[found++] = fd;
    return found;
}

static void unwinder_first_use(const int free_fds[2], int found)
{
    void *frames[2];
    unwind_backtrace(frames, 2);
    long page = sysconf(_SC_PAGESIZE);
    unsigned char present;
    if (found < 2 || page <= 0 ||
        mincore((void *)((uintptr_t)&present & ~(uintptr_t)(page - 1)), (size_t)page, &present))
        return;
    struct stat a, b;
    for (int i = 0; i < 2; i++) {
        int fd = free_fds[i];
        if (fcntl(fd, F_GETFD) != FD_CLOEXEC || !(fcntl(fd, F_GETFL) & O_NONBLOCK))
            return;
    }
    if (fstat(free_fds[0], &a) != 0 || fstat(free_fds[1], &b) != 0 || !S_ISFIFO(a.st_mode) ||
        a.st_ino != b.st_ino || a.st_dev != b.st_dev)
        return;
    close(free_fds[0]);
    close(free_fds[1]);
}

int hti_stacks_init(hti_session *s)
{
    int error = table_map();
    if (error)
        return error;
    table_reset();
    unwinder = s->options.unwinder;
    /* Rules found in an earlier session may describe modules unloaded since. */
    hti_unwind_forget();
    if (unwinder == HT_TRACE_UNWIND_DEFAULT && hti_unwind_init() != 0)
        unwinder = HT_TRACE_UNWIND_LIBUNWIND;
    if (unwinder != HT_TRACE_UNWIND_FRAME_POINTER && !unwind_backtrace) {
        int free_fds[2], found = lowest_free_fds(free_fds);
        void *lib = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
        if (lib) {
            typedef int (*policy_fn)(void *, int);
            void **space = dlsym(lib, "_ULx86_64_local_addr_space");
            policy_fn policy = (policy_fn)dlsym(lib, "_ULx86_64_set_caching_policy");
            if (space && policy)
                policy(*space, 2 /* UNW_CACHE_PER_THREAD */);
            unwind_backtrace = (backtrace_fn)dlsym(lib, "unw_backtrace");
            if (unwind_backtrace)
                unwinder_first_use(free_fds, found);
        }
        if (!unwind_backtrace && unwinder == HT_TRACE_UNWIND_LIBUNWIND) {
            hti_message("libunwind.so.8 not found; stacks follow frame pointers", NULL, -1);
            unwinder = HT_TRACE_UNWIND_FRAME_POINTER;
        }
    }
    return 0;
}

void hti_stacks_fini(void)
{
}

void hti_stacks_emit(hti_session *s, uint32_t *emitted)
{
    uint32_t count = hti_stack_count();
    uint8_t *body = s->records;
    uint8_t *p = body;
    const size_t room = s->records_size - HTI_STACK_RECORD_MAX(HT_TRACE_MAX_DEPTH);
    for (uint32_t id = *emitted + 1; id <= count; id++) {
        const stack_entry *e = &entries[id];
        p = hti_put_stack_record(p, id, &frames_arena[e->offset], e->depth);
        if ((size_t)(p - body) > room) {
            hti_write_chunk(s, HTI_CHUNK_STACKS, NULL, 0, body, (size_t)(p - body));
            p = body;
        }
    }
    if (p != body)
        hti_write_chunk(s, HTI_CHUNK_STACKS, NULL, 0, body, (size_t)(p - body));
    *emitted = count;
    atomic_store(&s->stacks, count);
}

/* ---- modules ---- */

#define MODULES_MAX 4096u

static struct {
    uint64_t address;
    uint64_t name_hash;
} known[MODULES_MAX];
static uint32_t known_count;
static uint32_t strings_next;
static unsigned long long last_adds = ~0ull;
static unsigned long long last_subs = ~0ull;
static char exe_path[4096];

typedef struct module_pass {
    hti_session *session;
    uint8_t *strings, *strings_end, *strings_limit;
    uint8_t *modules, *modules_end, *modules_limit;
    bool force;
    bool counted; /* the add counter was looked at in this pass */
    bool unchanged;
} module_pass;

static uint64_t hash_name(const char *name)
{
    uint64_t h = 0xCBF29CE484222325u;
    for (; *name; name++)
        h = (h ^ (uint8_t)*name) * 0x100000001B3u;
    return h;
}

static void module_flush(module_pass *pass)
{
    hti_session *s = pass->session;
    if (pass->strings_end != pass->strings)
        hti_write_chunk(s, HTI_CHUNK_STRINGS, NULL, 0, pass->strings,
                        (size_t)(pass->strings_end - pass->strings));
    if (pass->modules_end != pass->modules)
        hti_write_chunk(s, HTI_CHUNK_MODULES, NULL, 0, pass->modules,
                        (size_t)(pass->modules_end - pass->modules));
    pass->strings_end = pass->strings;
    pass->modules_end = pass->modules;
}

static size_t build_id(const struct dl_phdr_info *info, uint8_t *out)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
        const uint8_t *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *note = (const ElfW(Nhdr) *)p;
            size_t name_size = (note->n_namesz + 3u) & ~3u;
            size_t desc_size = (note->n_descsz + 3u) & ~3u;
            const uint8_t *name = p + sizeof *note;
            const uint8_t *desc = name + name_size;
            if (desc + desc_size > end)
                break;
            if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 &&
                memcmp(name, "GNU", 4) == 0 && note->n_descsz <= HTI_BUILD_ID_MAX) {
                memcpy(out, desc, note->n_descsz);
                return note->n_descsz;
            }
            p = desc + desc_size;
        }
    }
    return 0;
}

void hti_module_extent(const struct dl_phdr_info *info, uint32_t need, uint64_t *low,
                       uint64_t *high)
{
    *low = UINT64_MAX;
    *high = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || (ph->p_flags & need) != need)
            continue;
        uint64_t start = info->dlpi_addr + ph->p_vaddr;
        if (start < *low)
            *low = start;
        if (start + ph->p_memsz > *high)
            *high = start + ph->p_memsz;
    }
}

static int module_visit(struct dl_phdr_info *info, size_t size, void *arg)
{
    module_pass *pass = arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs &&
        info->dlpi_subs != last_subs) {
        /* A module was unloaded: another one may now lie where its code was. */
        if (last_subs != ~0ull)
            hti_unwind_forget();
        last_subs = info->dlpi_subs;
    }
    /* The loader's add counter is the same in every module's visit: compared at the first. */
    if (!pass->counted &&
        size >= offsetof(struct dl_phdr_info, dlpi_adds) + sizeof info->dlpi_adds) {
        pass->counted = true;
        if (!pass->force && info->dlpi_adds == last_adds) {
            pass->unchanged = true;
            return 1;
        }
        last_adds = info->dlpi_adds;
    }
    const char *name = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : exe_path;
    uint64_t name_hash = hash_name(name);
    for (uint32_t i = 0; i < known_count; i++)
        if (known[i].address == info->dlpi_addr && known[i].name_hash == name_hash)
            return 0;
    if (known_count >= MODULES_MAX)
        return 1;
    known[known_count].address = info->dlpi_addr;
    known[known_count].name_hash = name_hash;
    known_count++;

    uint64_t low, high;
    hti_module_extent(info, 0, &low, &high);
    if (low > high)
        low = high = info->dlpi_addr;
    size_t name_length = strnlen(name, 4000);
    if (pass->strings_end + HTI_STRING_RECORD_MAX(name_length) > pass->strings_limit ||
        pass->modules_end + HTI_MODULE_RECORD_MAX > pass->modules_limit)
        module_flush(pass);
    hti_string_record string = {++strings_next, (const uint8_t *)name, name_length};
    pass->strings_end = hti_put_string_record(pass->strings_end, &string);
    hti_module_record module = {
        .load_address = info->dlpi_addr,
        .start = low,
        .size = high - low,
        .string_id = string.id,
    };
    module.build_id_size = (uint32_t)build_id(info, module.build_id);
    pass->modules_end = hti_put_module_record(pass->modules_end, &module);
    return 0;
}

void hti_modules_reset(void)
{
    known_count = 0;
    strings_next = 0;
    last_adds = ~0ull;
    last_subs = ~0ull;
    ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
    exe_path[n > 0 ? n : 0] = '\0';
}

void hti_modules_emit(hti_session *s, bool force)
{
    if (s->fd < 0 || !s->records)
        return;
    module_pass pass;
    memset(&pass, 0, sizeof pass);
    pass.session = s;
    pass.force = force;
    size_t half = s->records_size / 2;
    pass.strings = pass.strings_end = s->records;
    pass.strings_limit = s->records + half;
    pass.modules = pass.modules_end = s->records + half;
    pass.modules_limit = s->records + s->records_size;
    dl_iterate_phdr(module_visit, &pass);
    module_flush(&pass);
}
