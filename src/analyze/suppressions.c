/* suppressions.c — `heaptrail check`'s suppressions: LeakSanitizer's file syntax (`leak:PATTERN`,
 * plus `invalid:PATTERN` for invalid operations), its pattern rule, and the default list.
 *
 * A PATTERN matches a frame when it matches the frame's function name, its source file or its
 * module's path: `*` stands for any run of characters, `^` at the start and `$` at the end anchor
 * it, and without anchors it may match anywhere (as LSan's TemplateMatch). A finding is
 * suppressed when a pattern of its kind matches any frame of its stack. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_internal.h"
#include "check.h"

/* One-time allocations of the C library and the loader, which a program cannot free: thread
 * descriptors' static TLS, the dynamic TLS of __tls_get_addr, a thread's exit. */
static const char *const default_entries[] = {
    "leak:*tls_get_addr*", "leak:_dl_allocate_tls",   "leak:*pthread_exit*",
    "leak:_dl_map_object", "leak:__libc_dlopen_mode",
};

/* Glob with `*`: the whole of text against the whole of pattern[0, n). Iterative, with one
 * backtrack point (the last star), so linear in practice. */
static bool glob(const char *pattern, size_t n, const char *text)
{
    size_t p = 0, star_p = 0;
    const char *resume = NULL;
    bool star = false;
    while (*text) {
        if (p < n && pattern[p] == '*') {
            star = true;
            star_p = ++p;
            resume = text;
        } else if (p < n && pattern[p] == *text) {
            p++;
            text++;
        } else if (star) {
            p = star_p;
            text = ++resume;
        } else {
            return false;
        }
    }
    while (p < n && pattern[p] == '*')
        p++;
    return p == n;
}

bool hti_pattern_match(const char *pattern, const char *text)
{
    if (!text || !*text)
        return false;
    size_t n = strlen(pattern);
    bool start = n && pattern[0] == '^';
    bool end = n > (size_t)start && pattern[n - 1] == '$';
    /* Unanchored ends match anything: a star there. */
    char effective[1024];
    int length = snprintf(effective, sizeof effective, "%s%.*s%s", start ? "" : "*",
                          (int)(n - start - end), pattern + start, end ? "" : "*");
    if (length < 0 || (size_t)length >= sizeof effective)
        return false;
    return glob(effective, (size_t)length, text);
}

static int add_entry(hti_suppressions *list, hti_suppression_kind kind, const char *pattern,
                     size_t length, const char *origin)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? 2 * list->capacity : 16;
        hti_suppression *bigger = realloc(list->entries, capacity * sizeof *bigger);
        if (!bigger)
            return -ENOMEM;
        list->entries = bigger;
        list->capacity = capacity;
    }
    hti_suppression *s = &list->entries[list->count];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->pattern = strndup(pattern, length);
    s->origin = strdup(origin);
    if (!s->pattern || !s->origin) {
        free(s->pattern);
        free(s->origin);
        return -ENOMEM;
    }
    list->count++;
    return 0;
}

/* One line: blank, `# comment`, or KIND:PATTERN. 0, -EINVAL (message in error) or -ENOMEM. */
static int parse_line(hti_suppressions *list, char *line, const char *origin, char *error,
                      size_t error_size)
{
    while (*line == ' ' || *line == '\t')
        line++;
    size_t n = strlen(line);
    while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r' ||
                 line[n - 1] == '\n'))
        line[--n] = '\0';
    if (!n || line[0] == '#')
        return 0;
    hti_suppression_kind kind;
    const char *pattern;
    if (!strncmp(line, "leak:", 5)) {
        kind = HTI_SUPPRESS_LEAK;
        pattern = line + 5;
    } else if (!strncmp(line, "invalid:", 8)) {
        kind = HTI_SUPPRESS_INVALID;
        pattern = line + 8;
    } else {
        snprintf(error, error_size, "%s: expected leak:PATTERN or invalid:PATTERN, not '%.60s'",
                 origin, line);
        return -EINVAL;
    }
    if (!*pattern) {
        snprintf(error, error_size, "%s: empty pattern", origin);
        return -EINVAL;
    }
    return add_entry(list, kind, pattern, strlen(pattern), origin);
}

int hti_suppressions_load(hti_suppressions *list, const char *path, char *error, size_t error_size)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        snprintf(error, error_size, "cannot open suppressions file '%s': %s", path, strerror(e));
        return -e;
    }
    char *line = NULL;
    size_t capacity = 0;
    unsigned number = 0;
    int status = 0;
    while (!status && getline(&line, &capacity, f) >= 0) {
        char origin[4200];
        snprintf(origin, sizeof origin, "%s:%u", path, ++number);
        status = parse_line(list, line, origin, error, error_size);
    }
    if (!status && ferror(f)) {
        snprintf(error, error_size, "cannot read suppressions file '%s'", path);
        status = -EIO;
    }
    free(line);
    fclose(f);
    return status;
}

int hti_suppressions_add_defaults(hti_suppressions *list)
{
    for (size_t i = 0; i < sizeof default_entries / sizeof default_entries[0]; i++) {
        char line[128], error[64];
        snprintf(line, sizeof line, "%s", default_entries[i]);
        int status = parse_line(list, line, "default", error, sizeof error);
        if (status)
            return status;
    }
    return 0;
}

void hti_suppressions_print_defaults(FILE *out)
{
    for (size_t i = 0; i < sizeof default_entries / sizeof default_entries[0]; i++)
        fprintf(out, "%s\n", default_entries[i]);
}

void hti_suppressions_free(hti_suppressions *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->entries[i].pattern);
        free(list->entries[i].origin);
    }
    free(list->entries);
    memset(list, 0, sizeof *list);
}

hti_suppression *hti_suppressions_match(hti_suppressions *list, hti_suppression_kind kind,
                                        const hti_frame *const *frames, long count)
{
    for (size_t i = 0; i < list->count; i++) {
        hti_suppression *s = &list->entries[i];
        if (s->kind != kind)
            continue;
        for (long k = 0; k < count; k++) {
            const hti_frame *f = frames[k];
            if (hti_pattern_match(s->pattern, f->function) ||
                hti_pattern_match(s->pattern, f->file) ||
                hti_pattern_match(s->pattern, f->module_path))
                return s;
        }
    }
    return NULL;
}
