/* symbolize.c — return addresses to function, file and line (with inlined frames) from the
 * trace's module records (path, load address, GNU build-id) through elfutils libdwfl.
 *
 * Each module gets its own Dwfl, opened on first use: the recorded path if the file there has
 * the recorded build-id, else the same base name in a search directory, else a file found by
 * build-id under <dir>/.build-id/ (the search directories, then /usr/lib/debug). A trace moved
 * to another machine symbolizes as long as one of these exists. Results are cached per address;
 * frames live in fixed-size arenas so the pointers handed out never move. */
#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyze/analyze_internal.h"

#define FRAMES_PER_ARENA 4096u
#define INLINE_DEPTH_MAX 64u

/* An address range of one compilation unit (clang emits no .debug_aranges, and libdw 0.188's
 * address lookup needs them: the units' own ranges stand in). */
typedef struct cu_range {
    uint64_t low, high; /* module addresses (bias applied) */
    Dwarf_Addr bias;
    Dwarf_Die die;
} cu_range;

typedef struct sym_module {
    ht_module record; /* a copy (a live reader's table moves), Path interned */
    const char *name; /* base name (interned) */
    const char *path; /* interned */
    Dwfl *dwfl;
    Dwfl_Module *module;
    int state;              /* 0: not tried, 1: file found, -1: none */
    int has_heaptrail;      /* 0: unknown, 1: heaptrail is linked in statically, -1: no */
    bool heaptrail_library; /* libheaptrail*.so */
    bool cu_ranges_built;
    cu_range *cu_ranges; /* sorted by low */
    size_t cu_range_count, cu_range_capacity;
} sym_module;

typedef struct sym_entry {
    const hti_frame *frames;
    uint32_t count;
} sym_entry;

struct hti_symbolizer {
    const ht_reader *reader;
    bool symbols;
    const char *const *search_dirs;
    char *debuginfo_path;
    Dwfl_Callbacks callbacks;
    sym_module *modules;
    size_t module_count;
    hti_strings strings;
    hti_map cache; /* address -> entry */
    hti_map kinds; /* address -> hti_frame_kind */
    sym_entry *entries;
    size_t entry_count, entry_capacity;
    hti_frame **arenas;
    size_t arena_count, arena_capacity, arena_used;
    char *(*demangle)(const char *, char *, size_t *, int *);
    bool demangle_tried;
};

static const char *const allocator_symbols[] = {
    "malloc",
    "calloc",
    "realloc",
    "free",
    "reallocarray",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "_Znwm",
    "_Znam",
    "_ZnwmRKSt9nothrow_t",
    "_ZnamRKSt9nothrow_t",
    "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t",
    "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t",
    NULL,
};

/* ---- files ---- */

static bool file_matches(const char *path, const ht_module *record)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = false;
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    if (elf && elf_kind(elf) == ELF_K_ELF) {
        if (!record->BuildIdSize) {
            ok = true;
        } else {
            const void *id = NULL;
            ssize_t n = dwelf_elf_gnu_build_id(elf, &id);
            ok = n == (ssize_t)record->BuildIdSize && memcmp(id, record->BuildId, (size_t)n) == 0;
        }
    }
    if (elf)
        elf_end(elf);
    close(fd);
    return ok;
}

static bool by_build_id(const char *root, const ht_module *record, char *out, size_t size)
{
    if (!record->BuildIdSize)
        return false;
    char hex[2 * 32 + 1];
    for (uint32_t i = 0; i < record->BuildIdSize; i++)
        snprintf(hex + 2 * i, 3, "%02x", record->BuildId[i]);
    static const char *const suffixes[] = {".debug", ""};
    for (int k = 0; k < 2; k++) {
        snprintf(out, size, "%s/.build-id/%.2s/%s%s", root, hex, hex + 2, suffixes[k]);
        if (file_matches(out, record))
            return true;
    }
    return false;
}

static bool find_file(const hti_symbolizer *s, const ht_module *record, char *out, size_t size)
{
    const char *path = record->Path;
    if (path[0] == '/' && file_matches(path, record)) {
        snprintf(out, size, "%s", path);
        return true;
    }
    const char *base = hti_basename(path);
    for (const char *const *dir = s->search_dirs; dir && *dir; dir++) {
        if (*base) {
            snprintf(out, size, "%s/%s", *dir, base);
            if (file_matches(out, record))
                return true;
        }
        if (by_build_id(*dir, record, out, size))
            return true;
    }
    return by_build_id("/usr/lib/debug", record, out, size);
}

static void module_open(hti_symbolizer *s, sym_module *m)
{
    m->state = -1;
    if (!s->symbols || !m->record.Path[0])
        return;
    char path[PATH_MAX];
    if (!find_file(s, &m->record, path, sizeof path))
        return;
    Dwfl *dwfl = dwfl_begin(&s->callbacks);
    if (!dwfl)
        return;
    dwfl_report_begin(dwfl);
    /* add_p_vaddr: LoadAddress is the bias (dlpi_addr), added to the ELF's own addresses. */
    Dwfl_Module *module = dwfl_report_elf(dwfl, m->name, path, -1, m->record.LoadAddress, true);
    dwfl_report_end(dwfl, NULL, NULL);
    if (!module) {
        dwfl_end(dwfl);
        return;
    }
    m->dwfl = dwfl;
    m->module = module;
    m->state = 1;
}

static sym_module *module_for(hti_symbolizer *s, uint64_t address)
{
    /* The latest load wins, as in ht_reader_module_find. */
    for (size_t i = s->module_count; i-- > 0;) {
        const ht_module *r = &s->modules[i].record;
        if (address >= r->Start && address - r->Start < r->Size)
            return &s->modules[i];
    }
    return NULL;
}

static Dwfl_Module *module_dwfl(hti_symbolizer *s, sym_module *m)
{
    if (!m->state)
        module_open(s, m);
    return m->state == 1 ? m->module : NULL;
}

/* ---- names ---- */

static const char *intern(hti_symbolizer *s, const char *text)
{
    return text ? hti_strings_intern(&s->strings, text, strlen(text)) : NULL;
}

static const char *function_name(hti_symbolizer *s, const char *raw)
{
    if (!raw)
        return NULL;
    if (raw[0] == '_' && raw[1] == 'Z') {
        if (!s->demangle_tried) {
            s->demangle_tried = true;
            void *f = dlsym(RTLD_DEFAULT, "__cxa_demangle");
            if (!f) {
                void *library = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
                if (library)
                    f = dlsym(library, "__cxa_demangle");
            }
            s->demangle = (char *(*)(const char *, char *, size_t *, int *))f;
        }
        if (s->demangle) {
            int status = -1;
            char *d = s->demangle(raw, NULL, NULL, &status);
            if (d && status == 0) {
                const char *result = intern(s, d);
                free(d);
                return result;
            }
            free(d);
        }
    }
    return intern(s, raw);
}

static const char *die_name(Dwarf_Die *die)
{
    Dwarf_Attribute attribute;
    const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attribute));
    if (!name)
        name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attribute));
    if (!name)
        name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attribute));
    return name;
}

/* ---- compilation units ---- */

static int compare_cu_ranges(const void *x, const void *y)
{
    const cu_range *a = x, *b = y;
    return a->low < b->low ? -1 : a->low > b->low;
}

static void build_cu_ranges(sym_module *m)
{
    m->cu_ranges_built = true;
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = NULL;
    while ((cu = dwfl_module_nextcu(m->module, cu, &bias)) != NULL) {
        Dwarf_Addr base, low, high;
        ptrdiff_t offset = 0;
        while ((offset = dwarf_ranges(cu, offset, &base, &low, &high)) > 0) {
            if (high <= low)
                continue;
            if (HTI_GROW(m->cu_ranges, m->cu_range_count, m->cu_range_capacity) != 0)
                return;
            m->cu_ranges[m->cu_range_count++] = (cu_range){low + bias, high + bias, bias, *cu};
        }
    }
    if (m->cu_range_count)
        qsort(m->cu_ranges, m->cu_range_count, sizeof *m->cu_ranges, compare_cu_ranges);
}

/* The compilation unit covering pc, or NULL (code without DWARF). */
static Dwarf_Die *unit_for(sym_module *m, Dwarf_Addr pc, Dwarf_Addr *bias)
{
    Dwarf_Die *cu = dwfl_module_addrdie(m->module, pc, bias);
    if (cu && dwarf_haspc(cu, pc - *bias) > 0)
        return cu;
    if (!m->cu_ranges_built)
        build_cu_ranges(m);
    size_t low = 0, high = m->cu_range_count;
    while (low < high) { /* the first range starting above pc */
        size_t mid = (low + high) / 2;
        if (m->cu_ranges[mid].low <= pc)
            low = mid + 1;
        else
            high = mid;
    }
    for (size_t i = low; i-- > 0;) {
        cu_range *r = &m->cu_ranges[i];
        if (pc < r->high) {
            *bias = r->bias;
            return &r->die;
        }
        if (low - i > 8) /* ranges rarely nest deeper */
            break;
    }
    return NULL;
}

/* ---- symbolization ---- */

static void frame_base(hti_frame *f, const sym_module *m, uint64_t address)
{
    memset(f, 0, sizeof *f);
    f->address = address;
    f->module_index = -1;
    if (m) {
        f->module = m->name;
        f->module_path = m->path;
        f->offset = address - m->record.LoadAddress;
    }
}

/* Fills out[0..] for one address; returns the count (>= 1). */
static size_t resolve(hti_symbolizer *s, uint64_t address, hti_frame *out, size_t max)
{
    sym_module *m = module_for(s, address);
    frame_base(&out[0], m, address);
    if (m)
        out[0].module_index = (int)(m - s->modules);
    Dwfl_Module *mod = m ? module_dwfl(s, m) : NULL;
    if (!mod)
        return 1;
    /* Return addresses point after the call: look up the call instruction. */
    Dwarf_Addr pc = address ? address - 1 : 0;
    GElf_Off symbol_offset = 0;
    GElf_Sym symbol;
    const char *symbol_name = dwfl_module_addrinfo(mod, pc, &symbol_offset, &symbol, NULL, NULL,
                                                   NULL);

    size_t count = 0;
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = unit_for(m, pc, &bias);
    const char *file = NULL;
    int line = 0;
    Dwarf_Line *line_info = cu ? dwarf_getsrc_die(cu, pc - bias) : NULL;
    if (line_info) {
        file = dwarf_linesrc(line_info, NULL, NULL);
        dwarf_lineno(line_info, &line);
    }
    if (cu) {
        Dwarf_Die *scopes = NULL;
        int n = dwarf_getscopes(cu, pc - bias, &scopes);
        Dwarf_Files *files = NULL;
        size_t file_count = 0;
        if (dwarf_getsrcfiles(cu, &files, &file_count) != 0)
            files = NULL;
        for (int i = 0; i < n && count < max; i++) {
            int tag = dwarf_tag(&scopes[i]);
            if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine)
                continue;
            hti_frame *f = &out[count];
            if (count)
                frame_base(f, m, address), f->module_index = out[0].module_index;
            f->function = function_name(s, die_name(&scopes[i]));
            f->file = intern(s, file);
            f->line = line > 0 ? (uint32_t)line : 0;
            f->inlined = tag == DW_TAG_inlined_subroutine;
            count++;
            if (tag == DW_TAG_subprogram)
                break;
            /* The next (outer) frame is where this one was inlined. */
            Dwarf_Attribute attribute;
            Dwarf_Word value;
            file = NULL;
            line = 0;
            if (files &&
                dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &attribute), &value) == 0 &&
                value < file_count)
                file = dwarf_filesrc(files, value, NULL, NULL);
            if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &attribute), &value) == 0)
                line = (int)value;
        }
        free(scopes);
        if (count && out[count - 1].inlined && count < max && symbol_name) {
            /* Scopes ended without the enclosing subprogram: name it from the symbol table. */
            hti_frame *f = &out[count];
            frame_base(f, m, address);
            f->module_index = out[0].module_index;
            f->function = function_name(s, symbol_name);
            f->file = intern(s, file);
            f->line = line > 0 ? (uint32_t)line : 0;
            count++;
        }
    }
    if (!count) {
        out[0].function = function_name(s, symbol_name);
        out[0].file = intern(s, file);
        out[0].line = line > 0 ? (uint32_t)line : 0;
        count = 1;
    }
    return count;
}

static hti_frame *arena_reserve(hti_symbolizer *s, size_t count)
{
    if (!s->arena_count || s->arena_used + count > FRAMES_PER_ARENA) {
        if (HTI_GROW(s->arenas, s->arena_count, s->arena_capacity) != 0)
            return NULL;
        hti_frame *arena = malloc(FRAMES_PER_ARENA * sizeof *arena);
        if (!arena)
            return NULL;
        s->arenas[s->arena_count++] = arena;
        s->arena_used = 0;
    }
    hti_frame *p = &s->arenas[s->arena_count - 1][s->arena_used];
    s->arena_used += count;
    return p;
}

static sym_entry *entry_for(hti_symbolizer *s, uint64_t address)
{
    /* Key 0 is the map's empty marker: address 0 is stored under a key no frame can have. */
    uint64_t key = address ? address : UINT64_MAX;
    uint32_t index = hti_map_get(&s->cache, key);
    if (index != UINT32_MAX)
        return &s->entries[index];
    hti_frame frames[INLINE_DEPTH_MAX];
    size_t count = resolve(s, address, frames, INLINE_DEPTH_MAX);
    hti_frame *stored = arena_reserve(s, count);
    if (!stored || HTI_GROW(s->entries, s->entry_count, s->entry_capacity) != 0)
        return NULL;
    memcpy(stored, frames, count * sizeof *stored);
    if (hti_map_put(&s->cache, key, (uint32_t)s->entry_count) != 0)
        return NULL;
    sym_entry *e = &s->entries[s->entry_count++];
    e->frames = stored;
    e->count = (uint32_t)count;
    return e;
}

const hti_frame *hti_symbolize(hti_symbolizer *s, uint64_t address, size_t *count)
{
    sym_entry *e = entry_for(s, address);
    if (!e)
        return NULL;
    *count = e->count;
    return e->frames;
}

/* ---- the allocator's own frames ---- */

static bool module_has_heaptrail(sym_module *m)
{
    if (m->has_heaptrail)
        return m->has_heaptrail > 0;
    m->has_heaptrail = -1;
    int n = dwfl_module_getsymtab(m->module);
    for (int i = 0; i < n; i++) {
        GElf_Sym symbol;
        GElf_Addr value;
        const char *name = dwfl_module_getsym_info(m->module, i, &symbol, &value, NULL, NULL, NULL);
        if (name && symbol.st_shndx != SHN_UNDEF && strcmp(name, "ht_heap_alloc") == 0) {
            m->has_heaptrail = 1;
            break;
        }
    }
    return m->has_heaptrail > 0;
}

/* Without DWARF line tables: the module, its symbol table, and for heaptrail linked into a
 * program the compilation unit's name (its static functions have no prefix). */
static hti_frame_kind compute_kind(hti_symbolizer *s, uint64_t address)
{
    sym_module *m = module_for(s, address);
    if (!m)
        return HTI_FRAME_USER;
    if (m->heaptrail_library)
        return HTI_FRAME_HEAPTRAIL;
    Dwfl_Module *mod = module_dwfl(s, m);
    if (!mod)
        return HTI_FRAME_USER;
    Dwarf_Addr pc = address ? address - 1 : 0;
    GElf_Off offset;
    GElf_Sym symbol;
    const char *name = dwfl_module_addrinfo(mod, pc, &offset, &symbol, NULL, NULL, NULL);
    if (module_has_heaptrail(m)) {
        if (name && (strncmp(name, "ht_", 3) == 0 || strncmp(name, "hti_", 4) == 0))
            return HTI_FRAME_HEAPTRAIL;
        /* The unit must really cover pc: code without DWARF (crt1's _start) has none. */
        Dwarf_Addr bias;
        Dwarf_Die *cu = unit_for(m, pc, &bias);
        const char *cu_name = cu ? dwarf_diename(cu) : NULL;
        if (cu_name && (strstr(cu_name, "src/heap/") || strstr(cu_name, "src/trace/") ||
                        strstr(cu_name, "src/preload/")))
            return HTI_FRAME_HEAPTRAIL;
    }
    if (name)
        for (const char *const *a = allocator_symbols; *a; a++)
            if (strcmp(name, *a) == 0)
                return HTI_FRAME_ALLOCATOR;
    return HTI_FRAME_USER;
}

hti_frame_kind hti_symbolizer_frame_kind(hti_symbolizer *s, uint64_t address)
{
    uint64_t key = address ? address : UINT64_MAX;
    uint32_t kind = hti_map_get(&s->kinds, key);
    if (kind != UINT32_MAX)
        return (hti_frame_kind)kind;
    hti_frame_kind computed = compute_kind(s, address);
    (void)hti_map_put(&s->kinds, key, (uint32_t)computed); /* uncached if out of memory */
    return computed;
}

/* ---- life cycle ---- */

hti_symbolizer *hti_symbolizer_open(const ht_reader *reader, bool symbols,
                                    const char *const *search_dirs)
{
    hti_symbolizer *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->reader = reader;
    s->symbols = symbols;
    s->search_dirs = search_dirs;
    if (symbols)
        elf_version(EV_CURRENT);
    /* Separate debug files: next to the file, in .debug/, under /usr/lib/debug (by build-id
     * or debuglink), and under each search directory. */
    size_t length = strlen(":.debug:/usr/lib/debug") + 1;
    for (const char *const *d = search_dirs; d && *d; d++)
        length += strlen(*d) + 1;
    s->debuginfo_path = malloc(length);
    if (!s->debuginfo_path) {
        hti_symbolizer_close(s);
        return NULL;
    }
    strcpy(s->debuginfo_path, ":.debug:/usr/lib/debug");
    for (const char *const *d = search_dirs; d && *d; d++) {
        strcat(s->debuginfo_path, ":");
        strcat(s->debuginfo_path, *d);
    }
    s->callbacks.find_elf = dwfl_build_id_find_elf;
    s->callbacks.find_debuginfo = dwfl_standard_find_debuginfo;
    s->callbacks.section_address = dwfl_offline_section_address;
    s->callbacks.debuginfo_path = &s->debuginfo_path;
    if (hti_symbolizer_refresh(s) != 0) {
        hti_symbolizer_close(s);
        return NULL;
    }
    return s;
}

int hti_symbolizer_refresh(hti_symbolizer *s)
{
    size_t count = ht_reader_module_count(s->reader);
    if (count <= s->module_count && s->modules)
        return 0;
    sym_module *modules = realloc(s->modules, (count ? count : 1) * sizeof *modules);
    if (!modules)
        return -ENOMEM;
    s->modules = modules;
    for (size_t i = s->module_count; i < count; i++) {
        sym_module *m = &s->modules[i];
        memset(m, 0, sizeof *m);
        m->record = *ht_reader_module(s->reader, i);
        m->path = intern(s, m->record.Path);
        m->name = intern(s, hti_basename(m->record.Path));
        if (!m->path || !m->name)
            return -ENOMEM; /* this module is not counted: the next refresh tries again */
        m->record.Path = m->path;
        m->heaptrail_library = strncmp(m->name, "libheaptrail", 12) == 0;
        s->module_count = i + 1;
    }
    return 0;
}

void hti_symbolizer_close(hti_symbolizer *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->module_count && s->modules; i++) {
        if (s->modules[i].dwfl)
            dwfl_end(s->modules[i].dwfl);
        free(s->modules[i].cu_ranges);
    }
    free(s->modules);
    for (size_t i = 0; i < s->arena_count; i++)
        free(s->arenas[i]);
    free(s->arenas);
    free(s->entries);
    hti_map_free(&s->cache);
    hti_map_free(&s->kinds);
    hti_strings_free(&s->strings);
    free(s->debuginfo_path);
    free(s);
}
