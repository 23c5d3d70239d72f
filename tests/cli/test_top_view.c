/* test_top_view.c — `heaptrail top`'s terminal view (src/cli/top_view.c, top_render.c) on
 * constructed frames: the layout at 80x24 and at every smaller size (no line wider than the
 * screen, no more lines than it has, printable ASCII only), the three sort keys (ties by id),
 * the selection following its site across a re-sort and refreshes where sites come and go, the
 * expanded stack, 500 sites with very long labels and frames cut, the LOST marker, the pause
 * (whose copy outlives the caller's frame), the keys and split escape sequences; then the view
 * on a pseudo-terminal: the alternate screen entered and left, and the terminal's settings
 * back as they were after close, after SIGTERM and while stopped by SIGTSTP. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "cli/top_view.h"

/* ---- constructed frames ---- */

typedef struct sample {
    ht_top_frame frame;
    ht_top_site *sites;
    ht_top_row heaps[5], sources[5];
    char **strings; /* every string and frame array, freed with the sample */
    size_t string_count, string_capacity;
} sample;

static void *keep(sample *s, void *pointer)
{
    assert_non_null(pointer);
    if (s->string_count == s->string_capacity) {
        s->string_capacity = s->string_capacity * 2 + 64;
        s->strings = realloc(s->strings, s->string_capacity * sizeof *s->strings);
        assert_non_null(s->strings);
    }
    s->strings[s->string_count++] = pointer;
    return pointer;
}

/* printf, then "-long" repeated up to length characters. */
static char *text(sample *s, size_t length, const char *format, ...)
{
    char head[256];
    va_list args;
    va_start(args, format);
    vsnprintf(head, sizeof head, format, args);
    va_end(args);
    size_t n = strlen(head), total = n > length ? n : length;
    char *out = keep(s, malloc(total + 1));
    memcpy(out, head, n);
    for (size_t i = n; i < total; i++)
        out[i] = "-long"[(i - n) % 5];
    out[total] = '\0';
    return out;
}

static uint32_t site_id(size_t index)
{
    return (uint32_t)(index * 7 + 3); /* ids that are not the indices */
}

/* count sites: live takes 11 values, allocated 17, rate 5 (so every key has ties), labels
 * "fnID (app.c:ID)" padded to label_length, stacks of depth frames padded to frame_length. */
static sample *sample_new(size_t count, size_t depth, size_t label_length, size_t frame_length)
{
    sample *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->sites = keep(s, calloc(count ? count : 1, sizeof *s->sites));
    for (size_t i = 0; i < count; i++) {
        ht_top_site *site = &s->sites[i];
        site->id = site_id(i);
        site->label = text(s, label_length, "fn%u (app.c:%u)", site->id, site->id);
        const char **frames = keep(s, calloc(depth ? depth : 1, sizeof *frames));
        for (size_t k = 0; k < depth; k++)
            frames[k] = text(s, frame_length, "callee%zu_of_%u (lib.c:%zu)", k, site->id, k);
        site->frames = frames;
        site->depth = depth;
        site->live_bytes = (double)((i * 37) % 11) * 1000;
        site->live_blocks = (double)(i + 1);
        site->alloc_bytes = (double)((i * 53) % 17) * 5000;
        site->alloc_count = (double)(i * 2 + 1);
        site->rate_bytes = (double)((count - i) % 5) * 100;
        site->rate_count = (double)((count - i) % 5);
    }
    static const double heap_live[5] = {5e6, 1e3, 7e5, 3e7, 2e2};
    static const char *const source_names[5] = {"LOOKASIDE", "LFH", "BACKEND", "LARGE", "INVALID"};
    for (int i = 0; i < 5; i++) {
        s->heaps[i] = (ht_top_row){.name = i == 0 ? "0x55d0c2a3b000 (process heap)"
                                                  : text(s, 0, "0x7f00000010%02d (heap %d)", i, i),
                                   .live_bytes = heap_live[i],
                                   .live_blocks = 10.0 * i,
                                   .alloc_rate = 100.0 * i,
                                   .free_rate = 90.0 * i,
                                   .alloc_bytes_rate = 1000.0 * i};
        s->sources[i] = (ht_top_row){.name = source_names[i],
                                     .live_bytes = 1e6 / (i + 1),
                                     .alloc_rate = 5000.0 / (i + 1)};
    }
    s->frame = (ht_top_frame){.program = "prog",
                              .pid = 4242,
                              .mode = "discard",
                              .elapsed_ns = 62000000000u,
                              .live_bytes = 12.5 * 1048576,
                              .live_blocks = 123456,
                              .peak_bytes = 20 * 1048576.0,
                              .alloc_rate = 1234,
                              .free_rate = 1200,
                              .alloc_bytes_rate = 2.5 * 1048576,
                              .free_bytes_rate = 2 * 1048576.0,
                              .events = 9876543,
                              .heaps = s->heaps,
                              .heap_count = 5,
                              .sources = s->sources,
                              .source_count = 5,
                              .sites = s->sites,
                              .site_count = count};
    return s;
}

static void sample_free(sample *s)
{
    for (size_t i = 0; i < s->string_count; i++)
        free(s->strings[i]);
    free(s->strings);
    free(s);
}

/* ---- reading the rendered text ---- */

/* At most rows lines of at most cols printable ASCII characters, each ended by '\n'. */
static void check_fits(const char *out, int rows, int cols)
{
    assert_non_null(out);
    int lines = 0, width = 0;
    for (const char *p = out; *p; p++) {
        if (*p == '\n') {
            lines++;
            width = 0;
            continue;
        }
        if (*p < 0x20 || *p > 0x7e)
            fail_msg("byte 0x%02x in the text", (unsigned char)*p);
        if (++width > cols)
            fail_msg("line %d wider than %d columns:\n%s", lines + 1, cols, out);
    }
    if (lines > rows)
        fail_msg("%d lines on a screen of %d:\n%s", lines, rows, out);
    if (*out && out[strlen(out) - 1] != '\n')
        fail_msg("last line not ended");
}

static char *render(const ht_top_view *view, const ht_top_frame *frame, int rows, int cols)
{
    char *out = ht_top_render_text(view, frame, rows, cols);
    check_fits(out, rows, cols);
    return out;
}

/* The site of a table row: the id in " fnID (". UINT32_MAX if the line has none. */
static uint32_t line_site(const char *line, const char *end)
{
    for (const char *p = line; p + 3 < end; p++)
        if (p[0] == ' ' && p[1] == 'f' && p[2] == 'n' && p[3] >= '0' && p[3] <= '9')
            return (uint32_t)strtoul(p + 3, NULL, 10);
    return UINT32_MAX;
}

/* The sites of the table's rows, top to bottom; *selected their index of the row marked '>'
 * (SIZE_MAX if none). */
static size_t rendered_sites(const char *out, uint32_t *ids, size_t max, size_t *selected)
{
    size_t n = 0;
    *selected = SIZE_MAX;
    for (const char *line = out; *line;) {
        const char *end = strchr(line, '\n');
        uint32_t id = line_site(line, end);
        if (id != UINT32_MAX && n < max) {
            if (line[0] == '>')
                *selected = n;
            ids[n++] = id;
        }
        line = end + 1;
    }
    return n;
}

static uint32_t selected_site(const char *out)
{
    uint32_t ids[600];
    size_t selected;
    rendered_sites(out, ids, 600, &selected);
    assert_true(selected != SIZE_MAX);
    return ids[selected];
}

static double key_of(const ht_top_site *site, ht_top_sort sort)
{
    return sort == HT_TOP_SORT_LIVE        ? site->live_bytes
           : sort == HT_TOP_SORT_ALLOCATED ? site->alloc_bytes
                                           : site->rate_bytes;
}

/* The order the table must have: key descending, ties by id ascending (a selection sort, on
 * purpose nothing like the view's). */
static void expected_order(const ht_top_frame *f, ht_top_sort sort, uint32_t *ids)
{
    bool *taken = calloc(f->site_count, sizeof *taken);
    assert_non_null(taken);
    for (size_t k = 0; k < f->site_count; k++) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < f->site_count; i++) {
            if (taken[i])
                continue;
            if (best == SIZE_MAX)
                best = i;
            double a = key_of(&f->sites[i], sort), b = key_of(&f->sites[best], sort);
            if (a > b || (a == b && f->sites[i].id < f->sites[best].id))
                best = i;
        }
        taken[best] = true;
        ids[k] = f->sites[best].id;
    }
    free(taken);
}

static size_t position_of(const uint32_t *ids, size_t n, uint32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return i;
    return SIZE_MAX;
}

static void input(ht_top_view *view, const char *keys)
{
    assert_int_equal(ht_top_view_input(view, keys, strlen(keys)), 0);
}

static const char *line_with(const char *out, const char *needle)
{
    const char *at = strstr(out, needle);
    if (!at)
        fail_msg("'%s' not in:\n%s", needle, out);
    return at;
}

/* A view without a terminal showing s. */
static ht_top_view *view_on(const sample *s)
{
    ht_top_view *view = ht_top_view_create();
    assert_non_null(view);
    ht_top_view_draw(view, &s->frame);
    return view;
}

static void expect_selected(const ht_top_view *view, int rows, int cols, uint32_t id)
{
    char *out = render(view, NULL, rows, cols);
    assert_int_equal(selected_site(out), id);
    free(out);
}

/* The text of view (or of frame with defaults if view is NULL) has present and not absent
 * (either NULL for no check). */
static void expect_text(const ht_top_view *view, const ht_top_frame *frame, int rows, int cols,
                        const char *present, const char *absent)
{
    char *out = render(view, frame, rows, cols);
    if (present)
        line_with(out, present);
    if (absent && strstr(out, absent))
        fail_msg("'%s' in:\n%s", absent, out);
    free(out);
}

/* ---- the renderer ---- */

static void test_layout_80x24(void **state)
{
    (void)state;
    sample *s = sample_new(50, 8, 0, 0);
    char *out = render(NULL, &s->frame, 24, 80);
    const char *first_end = strchr(out, '\n');
    assert_true(strncmp(out, "heaptrail top - prog (pid 4242)  discard  elapsed 1m02s", 55) == 0);
    assert_true(line_with(out, "live 12.50 MiB") < line_with(out, "alloc 1,234/s 2.50 MiB/s"));
    static const char *const shown[] = {"blocks 123,456",   "peak 20.00 MiB",
                                        "events 9,876,543", "free 1,200/s 2.00 MiB/s",
                                        "lost 0",           "LOOKASIDE",
                                        "INVALID",          "*LIVE",
                                        "SITE  1 of 50"};
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++)
        line_with(out, shown[i]);
    assert_null(strstr(out, "LOST"));
    assert_null(strstr(out, "[paused]"));
    /* HEAPS and SOURCES side by side: the 3 heaps with the most live bytes, largest first. */
    const char *heaps = line_with(out, "HEAPS");
    assert_true(heaps > first_end);
    assert_true(strstr(heaps, "SOURCES") < strchr(heaps, '\n'));
    const char *big = line_with(out, "0x7f0000001003"), *process = line_with(out, "0x55d0c2a3b000"),
               *third = line_with(out, "0x7f0000001002");
    assert_true(big < process && process < third);
    assert_null(strstr(out, "0x7f0000001001"));
    assert_null(strstr(out, "0x7f0000001004"));
    uint32_t ids[64];
    size_t selected, n = rendered_sites(out, ids, 64, &selected);
    assert_true(n >= 10);
    assert_int_equal(selected, 0);
    const char *last = out + strlen(out) - 1;
    while (last > out && last[-1] != '\n')
        last--;
    assert_true(strncmp(last, "q quit  l/a/r sort live/alloc/rate  Up/Dn select", 48) == 0);
    int lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 24);
    free(out);

    /* Larger screens show more sites. */
    out = render(NULL, &s->frame, 50, 200);
    assert_true(rendered_sites(out, ids, 64, &selected) > n);
    free(out);
    sample_free(s);
}

static void test_sort_keys(void **state)
{
    (void)state;
    sample *s = sample_new(30, 2, 0, 0);
    ht_top_view *view = view_on(s);
    static const struct {
        const char *key, *marker;
        ht_top_sort sort;
    } steps[] = {{"a", "*ALLOC", HT_TOP_SORT_ALLOCATED}, {"r", "*RATE/s", HT_TOP_SORT_RATE},
                 {"l", "*LIVE", HT_TOP_SORT_LIVE},       {"s", "*ALLOC", HT_TOP_SORT_ALLOCATED},
                 {"s", "*RATE/s", HT_TOP_SORT_RATE},     {"s", "*LIVE", HT_TOP_SORT_LIVE}};
    for (size_t step = 0; step < sizeof steps / sizeof steps[0]; step++) {
        input(view, steps[step].key);
        char *out = render(view, NULL, 60, 120);
        line_with(out, steps[step].marker);
        uint32_t want[30], got[40];
        expected_order(&s->frame, steps[step].sort, want);
        size_t selected, n = rendered_sites(out, got, 40, &selected);
        assert_int_equal(n, 30);
        assert_memory_equal(got, want, sizeof want);
        assert_int_equal(selected, 0); /* nobody moved: the first row */
        free(out);
    }
    ht_top_view_close(view);
    sample_free(s);
}

/* Leaves in s's frame only the sites keep_site accepts, in their order. */
static void sample_keep(sample *s, bool (*keep_site)(const ht_top_site *, const void *),
                        const void *argument)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->frame.site_count; i++)
        if (keep_site(&s->sites[i], argument))
            s->sites[kept++] = s->sites[i];
    s->frame.site_count = kept;
}

typedef struct ranking {
    const uint32_t *order;
    size_t before; /* sites ranked before this are dropped, except chosen */
    uint32_t chosen;
} ranking;

static bool not_ahead(const ht_top_site *site, const void *argument)
{
    const ranking *r = argument;
    return site->id == r->chosen || position_of(r->order, 30, site->id) >= r->before;
}

static bool not_chosen(const ht_top_site *site, const void *argument)
{
    return site->id != *(const uint32_t *)argument;
}

static void test_selection_follows_site(void **state)
{
    (void)state;
    sample *s = sample_new(30, 2, 0, 0);
    ht_top_view *view = view_on(s);
    uint32_t live[30], rate[30], got[40];
    expected_order(&s->frame, HT_TOP_SORT_LIVE, live);
    expected_order(&s->frame, HT_TOP_SORT_RATE, rate);
    input(view, "jjjjjk"); /* the fifth by live bytes */
    uint32_t chosen = live[4];
    expect_selected(view, 60, 120, chosen);

    /* A re-sort keeps it, at its new row. */
    input(view, "r");
    size_t row = position_of(rate, 30, chosen);
    assert_int_not_equal(row, 4);
    char *out = render(view, NULL, 60, 120);
    size_t selected;
    rendered_sites(out, got, 40, &selected);
    assert_int_equal(selected, row);
    assert_int_equal(got[selected], chosen);
    free(out);

    /* A refresh where the sites ahead of it are gone and the numbers changed. */
    sample *next = sample_new(30, 2, 0, 0);
    sample_keep(next, not_ahead, &(ranking){rate, row, chosen});
    for (size_t i = 0; i < next->frame.site_count; i++)
        next->sites[i].rate_bytes = next->sites[i].id == chosen ? 50 : (double)(i % 4) * 40;
    ht_top_view_draw(view, &next->frame);
    out = render(view, NULL, 60, 120);
    rendered_sites(out, got, 40, &row);
    assert_int_equal(got[row], chosen);
    free(out);

    /* Gone too: the selection stays on the same row, now another site's. */
    sample *last = sample_new(30, 2, 0, 0);
    sample_keep(last, not_chosen, &chosen);
    ht_top_view_draw(view, &last->frame);
    out = render(view, NULL, 60, 120);
    rendered_sites(out, got, 40, &selected);
    assert_int_equal(selected, row);
    uint32_t successor = got[row];
    free(out);
    /* ... and from then on follows that one. */
    input(view, "l");
    expect_selected(view, 60, 120, successor);

    /* End, as a CSI sequence split in two: the last site, scrolled into view at 80x24. */
    input(view, "\033[");
    input(view, "F");
    uint32_t order[30];
    expected_order(&last->frame, HT_TOP_SORT_LIVE, order);
    expect_selected(view, 24, 80, order[28]);
    expect_text(view, NULL, 24, 80, "SITE  29 of 29", NULL);
    /* Home, PgDn (a page of 10 before any terminal layout), Up, as SS3 and CSI. */
    input(view, "\033OH\033[6~\033[A");
    expect_selected(view, 60, 120, order[9]);

    ht_top_view_close(view);
    sample_free(s);
    sample_free(next);
    sample_free(last);
}

static void test_expand_shows_stack(void **state)
{
    (void)state;
    sample *s = sample_new(20, 5, 0, 0);
    ht_top_view *view = view_on(s);
    uint32_t live[20];
    expected_order(&s->frame, HT_TOP_SORT_LIVE, live);
    expect_text(view, NULL, 24, 80, NULL, "STACK");
    input(view, "j\r");
    char *out = render(view, NULL, 24, 80);
    const char *stack = line_with(out, "STACK  5 frames, innermost first");
    for (size_t k = 0; k < 5; k++) {
        char frame[64];
        snprintf(frame, sizeof frame, "#%-3zu callee%zu_of_%u (lib.c:%zu)", k, k, live[1], k);
        assert_true(line_with(out, frame) > stack);
    }
    assert_int_equal(selected_site(out), live[1]);
    assert_true(strstr(out, "fn") < stack); /* the list above the stack */
    free(out);
    /* The stack follows the selection. */
    input(view, "j");
    char frame[64];
    snprintf(frame, sizeof frame, "callee4_of_%u", live[2]);
    expect_text(view, NULL, 24, 80, frame, NULL);
    input(view, "e");
    expect_text(view, NULL, 24, 80, NULL, "STACK");
    ht_top_view_close(view);
    sample_free(s);

    /* A deep stack: as many frames as fit, then how many more. */
    s = sample_new(20, 100, 0, 0);
    view = view_on(s);
    input(view, "e");
    out = render(view, NULL, 24, 80);
    line_with(out, "STACK  100 frames");
    line_with(out, "#0   callee0_of_");
    const char *more = line_with(out, "  ... ");
    assert_non_null(strstr(more, "more frames"));
    assert_true(rendered_sites(out, (uint32_t[40]){0}, 40, &(size_t){0}) >= 5);
    free(out);
    ht_top_view_close(view);
    sample_free(s);
}

static void test_many_sites_long_text(void **state)
{
    (void)state;
    sample *s = sample_new(500, 60, 400, 600);
    s->frame.program = text(s, 300, "a-program-with-a-very-long-name");
    s->frame.message = text(s, 300, "a long message");
    s->frame.target_gone = true;
    s->heaps[3].name = text(s, 200, "0x7f0000001003 (a heap)");
    s->frame.lost = 123456789;
    s->frame.lost_recent = 5;
    ht_top_view *view = view_on(s);
    static const int sizes[][2] = {{24, 80}, {43, 132}, {50, 200}, {10, 40}, {60, 300}};
    for (int expanded = 0; expanded < 2; expanded++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            int rows = sizes[i][0], cols = sizes[i][1];
            char *out = render(view, NULL, rows, cols);
            /* The selected row runs to the edge: its label was cut, not wrapped. */
            const char *line = out;
            while (line[0] != '>')
                line = strchr(line, '\n') + 1;
            assert_int_equal(strchr(line, '\n') - line, cols);
            line_with(out, "LOST 123,456,789 (+5)");
            if (rows >= 24)
                line_with(out, "SITE  1 of 500");
            if (expanded && rows >= 24)
                line_with(out, "more frames");
            free(out);
        }
        input(view, "e");
    }
    input(view, "?");
    expect_text(view, NULL, 24, 80, "heaptrail top: keys", NULL);
    ht_top_view_close(view);
    sample_free(s);
}

static void test_small_sizes(void **state)
{
    (void)state;
    sample *s = sample_new(40, 12, 30, 30);
    s->frame.lost = 1234;
    s->frame.lost_recent = 56;
    s->frame.message = "a message";
    ht_top_view *view = view_on(s);
    /* Every state at every size up to 82x26: nothing wider or taller than the screen. */
    static const char *const states[] = {"", "e", "jjj", "?", "?", "p", "e"};
    for (size_t k = 0; k < sizeof states / sizeof states[0]; k++) {
        input(view, states[k]);
        for (int rows = 0; rows <= 26; rows++)
            for (int cols = 0; cols <= 82; cols++)
                free(render(view, NULL, rows, cols));
    }
    ht_top_view_close(view);

    /* 40x10: the title, the LOST marker, the sort key and a few sites still there. */
    char *out = render(NULL, &s->frame, 10, 40);
    assert_true(strncmp(out, "heaptrail top - prog (pid 4242)", 31) == 0);
    line_with(out, "LOST 1,234 (+56)");
    line_with(out, "*LIVE");
    uint32_t ids[16];
    size_t selected;
    assert_true(rendered_sites(out, ids, 16, &selected) >= 3);
    free(out);
    /* Paused at 30 columns: the marker kept, the program's name cut for it. */
    view = view_on(s);
    input(view, "p");
    out = render(view, NULL, 10, 30);
    assert_true(strncmp(out, "heaptrail top - prog ", 21) == 0);
    assert_true(strstr(out, "[paused]") < strchr(out, '\n'));
    free(out);
    ht_top_view_close(view);
    sample_free(s);
}

static void test_lost_marker(void **state)
{
    (void)state;
    sample *s = sample_new(5, 1, 0, 0);
    s->frame.lost = 1234;
    expect_text(NULL, &s->frame, 24, 80, "lost 1,234", "LOST");
    s->frame.lost_recent = 56;
    expect_text(NULL, &s->frame, 24, 80, "LOST 1,234 (+56)", NULL);
    sample_free(s);
}

static void test_pause(void **state)
{
    (void)state;
    sample *before = sample_new(10, 3, 0, 0), *after = sample_new(10, 3, 0, 0);
    before->frame.live_bytes = 1024 * 1024;
    before->frame.program = text(before, 0, "prog");
    after->frame.live_bytes = 3 * 1024 * 1024;
    after->frame.target_gone = true;
    after->frame.message = "exit status 3";
    ht_top_view *view = view_on(before);
    assert_false(ht_top_view_paused(view));
    input(view, "p");
    assert_true(ht_top_view_paused(view));
    input(view, "e");
    /* The caller's frame may go: the view kept its own copy. */
    sample_free(before);
    ht_top_view_draw(view, &after->frame);
    char *out = render(view, NULL, 24, 80);
    assert_true(strstr(out, "[paused]") < strchr(out, '\n'));
    line_with(out, "live 1.00 MiB");
    assert_null(strstr(out, "live 3.00 MiB"));
    line_with(out, "callee2_of_"); /* the copy's stacks */
    /* A process that ends is seen at once, paused or not. */
    line_with(out, "process 4242 exited - q to quit  exit status 3");
    free(out);
    input(view, " ");
    assert_false(ht_top_view_paused(view));
    ht_top_view_draw(view, &after->frame);
    expect_text(view, NULL, 24, 80, "live 3.00 MiB", "[paused]");
    ht_top_view_close(view);
    sample_free(after);
}

static void test_untrusted_text(void **state)
{
    (void)state;
    sample *s = sample_new(3, 2, 0, 0);
    s->frame.program = "evil\033[2J\033]0;title\007";
    s->frame.message = "caf\xc3\xa9\r\n";
    s->sites[0].label = "fn3 (\xe2\x9c\x93\033[31m.c:1)";
    s->sites[0].live_bytes = 1e9; /* the first row, selected: its stack is shown */
    ((const char **)s->sites[0].frames)[0] = "\x9b"
                                             "6n";
    ht_top_view *view = view_on(s);
    input(view, "e");
    char *out = render(view, NULL, 24, 80); /* printable ASCII only, see check_fits */
    line_with(out, "heaptrail top - evil?[2J?]0;title? (pid");
    line_with(out, "caf???");
    line_with(out, "fn3 (??[31m.c:1)");
    line_with(out, "#0   ?6n");
    free(out);
    ht_top_view_close(view);
    sample_free(s);
}

static void test_keys(void **state)
{
    (void)state;
    sample *s = sample_new(30, 2, 0, 0);
    ht_top_view *view = view_on(s);
    static const char *const quits[] = {"q", "Q", "\003", "\034", "xq", "\033q", "\033[1;5Zq"};
    for (size_t i = 0; i < sizeof quits / sizeof quits[0]; i++)
        assert_int_equal(ht_top_view_input(view, quits[i], strlen(quits[i])), 1);
    /* Unknown keys and sequences, a sequence too long to be a key: nothing happens. */
    input(view, "xyz\001\033[99~\033[12;34;56Z\033Ox");
    input(view, "\033[1111111111111111111111111111111111111111A");
    uint32_t live[30];
    expected_order(&s->frame, HT_TOP_SORT_LIVE, live);
    expect_selected(view, 60, 120, live[0]);
    /* Ctrl-Up (modifiers in the parameters) is Up; Down split byte by byte. */
    input(view, "\033");
    input(view, "[");
    input(view, "B");
    input(view, "\033[1;5B\033[1;5A");
    expect_selected(view, 60, 120, live[1]);
    /* The help: shown, and any key closes it without acting. */
    input(view, "?");
    expect_text(view, NULL, 24, 80, "heaptrail top: keys", NULL);
    input(view, "j");
    expect_text(view, NULL, 24, 80, NULL, "heaptrail top: keys");
    expect_selected(view, 60, 120, live[1]);
    input(view, "?x");
    expect_text(view, NULL, 24, 80, NULL, "heaptrail top: keys");
    ht_top_view_close(view);
    sample_free(s);
}

/* ---- the view on a pseudo-terminal ---- */

/* A pseudo-terminal of 24x80 and everything written to it, read from its master by a thread (a
 * full pty would block the view's writes). */
typedef struct pty {
    int master, slave;
    struct termios saved; /* as openpty made it */
    pthread_t thread;
    volatile bool stop;
    char *output;
    size_t length, capacity;
} pty;

static void *capture_main(void *arg)
{
    pty *p = arg;
    for (;;) {
        struct pollfd ready = {.fd = p->master, .events = POLLIN};
        int n = poll(&ready, 1, 20);
        if (n == 0 && p->stop)
            break;
        if (n <= 0)
            continue;
        char buffer[4096];
        ssize_t got = read(p->master, buffer, sizeof buffer);
        if (got <= 0)
            break;
        if (p->length + (size_t)got + 1 > p->capacity) {
            p->capacity = (p->length + (size_t)got + 1) * 2;
            p->output = realloc(p->output, p->capacity);
        }
        memcpy(p->output + p->length, buffer, (size_t)got);
        p->length += (size_t)got;
        p->output[p->length] = '\0';
    }
    return NULL;
}

static void pty_open(pty *p)
{
    memset(p, 0, sizeof *p);
    struct winsize size = {.ws_row = 24, .ws_col = 80};
    assert_int_equal(openpty(&p->master, &p->slave, NULL, NULL, &size), 0);
    assert_int_equal(tcgetattr(p->slave, &p->saved), 0);
    setenv("TERM", "xterm-256color", 1);
    assert_int_equal(pthread_create(&p->thread, NULL, capture_main, p), 0);
}

/* Everything written to the terminal, once the capture is over. */
static const char *pty_output(pty *p)
{
    p->stop = true;
    pthread_join(p->thread, NULL);
    return p->output ? p->output : "";
}

static void pty_close(pty *p)
{
    free(p->output);
    close(p->slave);
    close(p->master);
}

static bool same_termios(const struct termios *a, const struct termios *b)
{
    return a->c_iflag == b->c_iflag && a->c_oflag == b->c_oflag && a->c_cflag == b->c_cflag &&
           a->c_lflag == b->c_lflag && memcmp(a->c_cc, b->c_cc, sizeof a->c_cc) == 0 &&
           cfgetispeed(a) == cfgetispeed(b) && cfgetospeed(a) == cfgetospeed(b);
}

static void expect_restored(const pty *p)
{
    struct termios now;
    assert_int_equal(tcgetattr(p->slave, &now), 0);
    assert_true(same_termios(&now, &p->saved));
}

static void send_keys(const pty *p, const char *keys)
{
    assert_int_equal(write(p->master, keys, strlen(keys)), (ssize_t)strlen(keys));
}

static void test_terminal_keys_and_restore(void **state)
{
    (void)state;
    pty p;
    pty_open(&p);
    sample *s = sample_new(30, 4, 0, 0);
    uint32_t live[30];
    expected_order(&s->frame, HT_TOP_SORT_LIVE, live);

    ht_top_view *view = ht_top_view_open(p.slave, p.slave);
    assert_non_null(view);
    struct termios now;
    assert_int_equal(tcgetattr(p.slave, &now), 0);
    assert_int_equal(now.c_lflag & (ECHO | ICANON | ISIG), 0);
    ht_top_view_draw(view, &s->frame);
    send_keys(&p, "j");
    assert_int_equal(ht_top_view_wait(view, 100), 0);
    /* Down, the sequence split across two reads; then Down as SS3, split too. */
    static const char *const pieces[] = {"\033", "[B", "\033O", "B"};
    for (size_t i = 0; i < 4; i++) {
        send_keys(&p, pieces[i]);
        assert_int_equal(ht_top_view_wait(view, 50), 0);
    }
    expect_selected(view, 24, 80, live[3]);
    /* A resize (the pty is not this process's controlling terminal: SIGWINCH by hand): drawn
     * again at the new size without waiting for the next frame. */
    struct winsize size = {.ws_row = 30, .ws_col = 100};
    assert_int_equal(ioctl(p.master, TIOCSWINSZ, &size), 0);
    raise(SIGWINCH);
    assert_int_equal(ht_top_view_wait(view, 100), 0);
    send_keys(&p, "q");
    assert_int_equal(ht_top_view_wait(view, 5000), 1);
    assert_int_equal(ht_top_view_signalled(view), 0);
    ht_top_view_close(view);
    expect_restored(&p);

    const char *written = pty_output(&p);
    const char *enter = strstr(written, "\033[?1049h"), *leave = strstr(written, "\033[?1049l");
    assert_non_null(enter);
    assert_non_null(leave);
    assert_true(enter < leave);
    assert_true(strstr(written, "\033[?25l") < strstr(written, "\033[?25h"));
    assert_true(strstr(written, "heaptrail top - prog (pid 4242)") > enter);
    assert_non_null(strstr(written, "\033[30;1H")); /* a row only the larger screen has */
    assert_non_null(strstr(written, "\033[0;7m>")); /* the selected row in reverse video */
    pty_close(&p);
    sample_free(s);
}

static void test_terminal_sigterm(void **state)
{
    (void)state;
    pty p;
    pty_open(&p);
    sample *s = sample_new(10, 2, 0, 0);
    ht_top_view *view = ht_top_view_open(p.slave, p.slave);
    assert_non_null(view);
    /* One terminal view at a time: the signal handlers are the process's. */
    assert_null(ht_top_view_open(p.slave, p.slave));
    assert_int_equal(errno, EBUSY);
    ht_top_view_draw(view, &s->frame);

    raise(SIGTERM);
    expect_restored(&p); /* by the handler already */
    assert_int_equal(ht_top_view_wait(view, 5000), -1);
    assert_int_equal(ht_top_view_signalled(view), SIGTERM);
    ht_top_view_draw(view, &s->frame); /* nothing: the terminal is the shell's again */
    ht_top_view_close(view);
    expect_restored(&p);
    struct sigaction action;
    sigaction(SIGTERM, NULL, &action);
    assert_true(action.sa_handler == SIG_DFL);

    const char *leave = strstr(pty_output(&p), "\033[?1049l");
    assert_non_null(leave);
    assert_string_equal(leave, "\033[?1049l"); /* the last thing written */
    pty_close(&p);
    sample_free(s);
}

/* SIGTSTP in a child of its own process group (not orphaned, so the stop happens): stopped with
 * the terminal restored, raw again after SIGCONT, restored at close. */
static void test_terminal_stop_and_continue(void **state)
{
    (void)state;
    pty p;
    pty_open(&p);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        setpgid(0, 0);
        sample *s = sample_new(10, 2, 0, 0);
        ht_top_view *view = ht_top_view_open(p.slave, p.slave);
        if (!view)
            _exit(10);
        ht_top_view_draw(view, &s->frame);
        raise(SIGTSTP);
        struct termios raw;
        if (tcgetattr(p.slave, &raw) != 0 || (raw.c_lflag & (ECHO | ICANON)))
            _exit(11);
        if (ht_top_view_wait(view, 50) != 0)
            _exit(12);
        ht_top_view_close(view);
        if (tcgetattr(p.slave, &raw) != 0 || !same_termios(&raw, &p.saved))
            _exit(13);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(child, &status, WUNTRACED), child);
    if (!WIFSTOPPED(status))
        fail_msg("the child was not stopped (status 0x%x)", status);
    assert_int_equal(WSTOPSIG(status), SIGTSTP);
    expect_restored(&p);
    assert_int_equal(kill(child, SIGCONT), 0);
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    expect_restored(&p);
    /* Entered, left for the stop, entered again, left at close. */
    const char *at = pty_output(&p);
    for (int i = 0; i < 2; i++) {
        at = strstr(at, "\033[?1049h");
        assert_non_null(at);
        at = strstr(at, "\033[?1049l");
        assert_non_null(at);
    }
    pty_close(&p);
}

static void test_open_refused(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    errno = 0;
    assert_null(ht_top_view_open(fds[0], fds[1]));
    assert_int_equal(errno, ENOTTY);
    close(fds[0]);
    close(fds[1]);
    pty p;
    pty_open(&p);
    setenv("TERM", "dumb", 1);
    errno = 0;
    assert_null(ht_top_view_open(p.slave, p.slave));
    assert_int_equal(errno, ENOTSUP);
    expect_restored(&p);
    pty_output(&p);
    pty_close(&p);
    /* A view without a terminal: draw and wait do no harm. */
    sample *s = sample_new(3, 1, 0, 0);
    ht_top_view *view = view_on(s);
    assert_int_equal(ht_top_view_wait(view, 10), 0);
    assert_int_equal(ht_top_view_signalled(view), 0);
    ht_top_view_close(view);
    ht_top_view_close(NULL);
    sample_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_80x24),
        cmocka_unit_test(test_sort_keys),
        cmocka_unit_test(test_selection_follows_site),
        cmocka_unit_test(test_expand_shows_stack),
        cmocka_unit_test(test_many_sites_long_text),
        cmocka_unit_test(test_small_sizes),
        cmocka_unit_test(test_lost_marker),
        cmocka_unit_test(test_pause),
        cmocka_unit_test(test_untrusted_text),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_terminal_keys_and_restore),
        cmocka_unit_test(test_terminal_sigterm),
        cmocka_unit_test(test_terminal_stop_and_continue),
        cmocka_unit_test(test_open_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
