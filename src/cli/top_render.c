/* top_render.c — the layout of `heaptrail top`'s screen (contract in top_render.h): the title,
 * the totals, the status of a process that ended, the HEAPS and SOURCES block, the sites table
 * with the selected site's stack, the key line and the help box, on a screen of rows x cols
 * cells. Every character goes through put(), which cuts at the screen's edge and shows anything
 * but printable ASCII as '?': no line is ever longer than the screen nor wraps, whatever the
 * frame holds, and nothing from the traced program reaches the terminal as an escape. Numbers
 * are units.h's. When rows or columns run short, the least useful parts go first: the block,
 * then the sites table's columns other than the sort key, then the table itself. */
#include "cli/top_render.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/units.h"

#define HEAP_ROWS 3          /* the HEAPS block: the 3 heaps with the most live bytes */
#define SOURCE_ROWS 6        /* Sources shown at most (there are 5 that serve requests) */
#define SITE_ROWS_MIN 4      /* the block is left out rather than leave fewer site rows */
#define LABEL_MIN 16         /* table columns are dropped until the site label gets this many */
#define SIDE_BY_SIDE_COLS 72 /* HEAPS and SOURCES side by side from this width, else stacked */
#define BLOCK_COLS 24        /* narrower than this, no block */
#define KEY_LINE_ROWS 8      /* the key line from this height */
#define SPACIOUS_ROWS 30     /* blank lines between the parts from this height */
#define FIELD_MAX 512        /* a title's field or the status line: longer is cut */

int hti_top_screen_init(hti_top_screen *screen, int rows, int cols)
{
    rows = rows < 1 ? 1 : rows;
    cols = cols < 1 ? 1 : cols;
    size_t cells = (size_t)rows * (size_t)cols;
    screen->text = malloc(cells);
    screen->attr = malloc(cells);
    if (!screen->text || !screen->attr) {
        hti_top_screen_free(screen);
        return -ENOMEM;
    }
    screen->rows = rows;
    screen->cols = cols;
    hti_top_screen_clear(screen);
    return 0;
}

void hti_top_screen_clear(hti_top_screen *screen)
{
    size_t cells = (size_t)screen->rows * (size_t)screen->cols;
    memset(screen->text, ' ', cells);
    memset(screen->attr, 0, cells);
}

void hti_top_screen_free(hti_top_screen *screen)
{
    free(screen->text);
    free(screen->attr);
    screen->text = NULL;
    screen->attr = NULL;
    screen->rows = screen->cols = 0;
}

char *hti_top_screen_text(const hti_top_screen *screen)
{
    size_t cols = (size_t)screen->cols;
    char *out = malloc((size_t)screen->rows * (cols + 1) + 1);
    if (!out)
        return NULL;
    size_t length = 0, kept = 0;
    for (int row = 0; row < screen->rows; row++) {
        const char *line = screen->text + (size_t)row * cols;
        size_t width = cols;
        while (width > 0 && line[width - 1] == ' ')
            width--;
        memcpy(out + length, line, width);
        length += width;
        out[length++] = '\n';
        if (width > 0)
            kept = length;
    }
    out[kept] = '\0';
    return out;
}

/* ---- sites: order and selection ---- */

static double sort_key(const ht_top_site *site, ht_top_sort sort)
{
    double key = sort == HT_TOP_SORT_ALLOCATED ? site->alloc_bytes
                 : sort == HT_TOP_SORT_RATE    ? site->rate_bytes
                                               : site->live_bytes;
    return isnan(key) ? 0.0 : key; /* a NaN would make the order depend on qsort's path */
}

typedef struct sort_entry {
    double key;
    uint32_t id;
    size_t index;
} sort_entry;

static int compare_entries(const void *a, const void *b)
{
    const sort_entry *x = a, *y = b;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

int hti_top_sort_sites(const ht_top_frame *frame, ht_top_sort sort, size_t *order)
{
    size_t n = frame->site_count;
    if (n == 0)
        return 0;
    sort_entry *entries = n <= SIZE_MAX / sizeof *entries ? malloc(n * sizeof *entries) : NULL;
    if (!entries)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        entries[i] = (sort_entry){sort_key(&frame->sites[i], sort), frame->sites[i].id, i};
    qsort(entries, n, sizeof *entries, compare_entries);
    for (size_t i = 0; i < n; i++)
        order[i] = entries[i].index;
    free(entries);
    return 0;
}

size_t hti_top_selection(const hti_top_state *state, const ht_top_frame *frame, const size_t *order)
{
    size_t n = frame->site_count;
    if (n == 0)
        return 0;
    if (state->pinned)
        for (size_t i = 0; i < n; i++)
            if (frame->sites[order[i]].id == state->selected_id)
                return i;
    return state->selected_row < n ? state->selected_row : n - 1;
}

/* ---- cells ---- */

/* The next character of text as shown: printable ASCII as it is, anything else one '?' (a
 * UTF-8 sequence as a whole, so a name keeps its length in characters). 0 at the end. */
static char next_shown(const char **text)
{
    const unsigned char *p = (const unsigned char *)*text;
    unsigned char c = *p;
    if (!c)
        return 0;
    p++;
    if (c >= 0xC0)
        while (*p >= 0x80 && *p < 0xC0)
            p++;
    *text = (const char *)p;
    return c >= 0x20 && c < 0x7F ? (char)c : '?';
}

static int shown_width(const char *text)
{
    int width = 0;
    while (next_shown(&text))
        width++;
    return width;
}

/* Writes text at (row, col), at most max columns and never past the screen's edge; returns the
 * columns written. */
static int put(hti_top_screen *s, int row, int col, const char *text, int max, unsigned char attr)
{
    if (!text || row < 0 || row >= s->rows || col < 0 || col >= s->cols)
        return 0;
    if (max > s->cols - col)
        max = s->cols - col;
    char *cells = s->text + (size_t)row * (size_t)s->cols + (size_t)col;
    unsigned char *attrs = s->attr + (size_t)row * (size_t)s->cols + (size_t)col;
    int n = 0;
    char c;
    while (n < max && (c = next_shown(&text)) != 0) {
        cells[n] = c;
        attrs[n] = attr;
        n++;
    }
    return n;
}

/* text right-aligned in width columns from col (cut on the right if it is wider). */
static void put_right(hti_top_screen *s, int row, int col, int width, const char *text,
                      unsigned char attr)
{
    int w = shown_width(text);
    put(s, row, w < width ? col + width - w : col, text, width, attr);
}

static void paint(hti_top_screen *s, int row, int col, int width, unsigned char attr)
{
    if (row < 0 || row >= s->rows || col < 0 || col >= s->cols)
        return;
    if (width > s->cols - col)
        width = s->cols - col;
    if (width > 0)
        memset(s->attr + (size_t)row * (size_t)s->cols + (size_t)col, attr, (size_t)width);
}

/* ---- a line of fields ----
 * Fields two spaces apart, in order. One that does not fit is left out (a cuttable one that
 * comes first is cut instead: a name, never a number), except a required one: room is kept for
 * it first, so "[paused]" and "LOST" are seen at any width that can hold them. */
enum { FIELD_REQUIRED = 1, FIELD_CUTTABLE = 2 };
typedef struct field {
    char text[FIELD_MAX];
    unsigned char attr;
    unsigned char flags;
} field;

static void put_fields(hti_top_screen *s, int row, const field *fields, size_t n)
{
    int reserved = 0;
    for (size_t i = 0; i < n; i++)
        if (fields[i].flags & FIELD_REQUIRED)
            reserved += shown_width(fields[i].text) + 2;
    int col = 0;
    bool started = false;
    for (size_t i = 0; i < n; i++) {
        const field *f = &fields[i];
        int width = shown_width(f->text), gap = started ? 2 : 0;
        if (f->flags & FIELD_REQUIRED) {
            reserved -= width + 2;
            col += gap + put(s, row, col + gap, f->text, width, f->attr);
        } else if (col + gap + width + reserved <= s->cols) {
            col += gap + put(s, row, col + gap, f->text, width, f->attr);
        } else if (!started && (f->flags & FIELD_CUTTABLE)) {
            col += put(s, row, 0, f->text, s->cols - reserved, f->attr);
        } else {
            continue;
        }
        started = true;
    }
}

static field *add_field(field *fields, size_t *n, unsigned char attr, unsigned char flags)
{
    field *f = &fields[(*n)++];
    f->attr = attr;
    f->flags = flags;
    return f;
}

/* "42s", "1m02s", "3h07m09s": the session's age at a glance (units.h has no clock format). */
static void format_elapsed(char *buffer, size_t size, uint64_t ns)
{
    uint64_t seconds = ns / 1000000000u;
    if (seconds < 60)
        snprintf(buffer, size, "%" PRIu64 "s", seconds);
    else if (seconds < 3600)
        snprintf(buffer, size, "%" PRIu64 "m%02" PRIu64 "s", seconds / 60, seconds % 60);
    else
        snprintf(buffer, size, "%" PRIu64 "h%02" PRIu64 "m%02" PRIu64 "s", seconds / 3600,
                 seconds / 60 % 60, seconds % 60);
}

/* ---- the parts, top to bottom; each returns the next free row ---- */

static int render_title(const hti_top_state *state, const ht_top_frame *f, hti_top_screen *s,
                        int row, int end)
{
    char b1[HTI_NUMBER_MAX], b2[HTI_NUMBER_MAX];
    field fields[4];
    size_t n = 0;
    if (row >= end)
        return row;
    snprintf(add_field(fields, &n, HTI_TOP_BOLD, FIELD_CUTTABLE)->text, FIELD_MAX,
             "heaptrail top - %s (pid %ld)", f->program ? f->program : "?", f->pid);
    if (f->mode)
        snprintf(add_field(fields, &n, 0, 0)->text, FIELD_MAX, "%s", f->mode);
    format_elapsed(b1, sizeof b1, f->elapsed_ns);
    snprintf(add_field(fields, &n, 0, 0)->text, FIELD_MAX, "elapsed %s", b1);
    if (state->paused)
        snprintf(add_field(fields, &n, HTI_TOP_BOLD | HTI_TOP_REVERSE, FIELD_REQUIRED)->text,
                 FIELD_MAX, "[paused]");
    put_fields(s, row++, fields, n);
    if (row >= end)
        return row;

    n = 0;
    snprintf(add_field(fields, &n, 0, 0)->text, FIELD_MAX, "live %s",
             hti_format_bytes(b1, sizeof b1, f->live_bytes));
    snprintf(add_field(fields, &n, 0, 0)->text, FIELD_MAX, "blocks %s",
             hti_format_count(b1, sizeof b1, f->live_blocks));
    snprintf(add_field(fields, &n, 0, 0)->text, FIELD_MAX, "peak %s",
             hti_format_bytes(b1, sizeof b1, f->peak_bytes));
    snprintf(add_field(fields, &n, 0, 0)->text, FIELD_MAX, "events %s",
             hti_format_count(b1, sizeof b1, (double)f->events));
    put_fields(s, row++, fields, n);
    if (row >= end)
        return row;

    n = 0;
    snprintf(add_field(fields, &n, 0, 0)->text, FIELD_MAX, "alloc %s/s %s/s",
             hti_format_count(b1, sizeof b1, f->alloc_rate),
             hti_format_bytes(b2, sizeof b2, f->alloc_bytes_rate));
    snprintf(add_field(fields, &n, 0, 0)->text, FIELD_MAX, "free %s/s %s/s",
             hti_format_count(b1, sizeof b1, f->free_rate),
             hti_format_bytes(b2, sizeof b2, f->free_bytes_rate));
    if (f->lost_recent > 0)
        snprintf(add_field(fields, &n, HTI_TOP_BOLD | HTI_TOP_REVERSE, FIELD_REQUIRED)->text,
                 FIELD_MAX, "LOST %s (+%s)", hti_format_count(b1, sizeof b1, (double)f->lost),
                 hti_format_count(b2, sizeof b2, (double)f->lost_recent));
    else
        snprintf(add_field(fields, &n, 0, 0)->text, FIELD_MAX, "lost %s",
                 hti_format_count(b1, sizeof b1, (double)f->lost));
    put_fields(s, row++, fields, n);

    if (row < end && (f->target_gone || f->message)) {
        char status[FIELD_MAX];
        if (f->target_gone)
            snprintf(status, sizeof status, "process %ld exited - q to quit%s%s", f->pid,
                     f->message ? "  " : "", f->message ? f->message : "");
        else
            snprintf(status, sizeof status, "%s", f->message);
        put(s, row++, 0, status, s->cols, HTI_TOP_BOLD | HTI_TOP_REVERSE);
    }
    return row;
}

/* A heaps or Sources table: name, live bytes, allocations per second. */
typedef struct row_table {
    const char *title;
    const ht_top_row *rows;
    size_t which[SOURCE_ROWS];
    size_t count;
    char live[SOURCE_ROWS][HTI_NUMBER_MAX], rate[SOURCE_ROWS][HTI_NUMBER_MAX + 2];
    int name_width, live_width, rate_width;
} row_table;

static void row_table_init(row_table *t, const char *title, const ht_top_row *rows)
{
    char number[HTI_NUMBER_MAX];
    t->title = title;
    t->rows = rows;
    t->name_width = shown_width(title);
    t->live_width = (int)strlen("LIVE");
    t->rate_width = (int)strlen("ALLOC/S");
    for (size_t i = 0; i < t->count; i++) {
        const ht_top_row *r = &rows[t->which[i]];
        hti_format_bytes(t->live[i], sizeof t->live[i], r->live_bytes);
        snprintf(t->rate[i], sizeof t->rate[i], "%s/s",
                 hti_format_count(number, sizeof number, r->alloc_rate));
        int name = shown_width(r->name ? r->name : "?"), live = (int)strlen(t->live[i]),
            rate = (int)strlen(t->rate[i]);
        t->name_width = name > t->name_width ? name : t->name_width;
        t->live_width = live > t->live_width ? live : t->live_width;
        t->rate_width = rate > t->rate_width ? rate : t->rate_width;
    }
}

static int row_table_width(const row_table *t)
{
    return t->name_width + 2 + t->live_width + 2 + t->rate_width;
}

/* The table in width columns from col: the name gets what the numbers leave. */
static void put_row_table(hti_top_screen *s, int row, int col, int width, const row_table *t)
{
    int name = width - (t->live_width + 2) - (t->rate_width + 2);
    name = name < 1 ? 1 : name;
    int live_col = col + name + 2, rate_col = live_col + t->live_width + 2;
    int edge = col + width; /* nothing of this table past it */
    put(s, row, col, t->title, name, HTI_TOP_BOLD);
    if (live_col + t->live_width <= edge)
        put_right(s, row, live_col, t->live_width, "LIVE", HTI_TOP_BOLD);
    if (rate_col + t->rate_width <= edge)
        put_right(s, row, rate_col, t->rate_width, "ALLOC/S", HTI_TOP_BOLD);
    for (size_t i = 0; i < t->count; i++) {
        const ht_top_row *r = &t->rows[t->which[i]];
        int y = row + 1 + (int)i;
        put(s, y, col, r->name ? r->name : "?", name, 0);
        if (live_col + t->live_width <= edge)
            put_right(s, y, live_col, t->live_width, t->live[i], 0);
        if (rate_col + t->rate_width <= edge)
            put_right(s, y, rate_col, t->rate_width, t->rate[i], 0);
    }
}

static double row_live(const ht_top_row *r)
{
    return isnan(r->live_bytes) ? 0.0 : r->live_bytes;
}

/* True if heap a comes before heap b: more live bytes, then the frame's order. */
static bool heap_before(const ht_top_row *rows, size_t a, size_t b)
{
    double x = row_live(&rows[a]), y = row_live(&rows[b]);
    return x > y || (x == y && a < b);
}

/* The heaps with the most live bytes, largest first (a partial selection: there may be many). */
static size_t top_heaps(const ht_top_frame *f, size_t *which, size_t max)
{
    size_t n = 0;
    for (; n < max && n < f->heap_count; n++) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < f->heap_count; i++)
            if ((n == 0 || heap_before(f->heaps, which[n - 1], i)) &&
                (best == SIZE_MAX || heap_before(f->heaps, i, best)))
                best = i;
        which[n] = best;
    }
    return n;
}

static int render_block(const hti_top_state *state, const ht_top_frame *f, hti_top_screen *s,
                        int row, int end)
{
    if (state->expanded || s->cols < BLOCK_COLS || (!f->heap_count && !f->source_count))
        return row;
    row_table heaps, sources;
    heaps.count = top_heaps(f, heaps.which, HEAP_ROWS);
    row_table_init(&heaps, "HEAPS", f->heaps);
    sources.count = f->source_count < SOURCE_ROWS ? f->source_count : SOURCE_ROWS;
    for (size_t i = 0; i < sources.count; i++)
        sources.which[i] = i;
    row_table_init(&sources, "SOURCES", f->sources);

    bool side = s->cols >= SIDE_BY_SIDE_COLS && heaps.count && sources.count;
    int tallest = (int)(heaps.count > sources.count ? heaps.count : sources.count);
    int height = side ? 1 + tallest
                      : (heaps.count ? 1 + (int)heaps.count : 0) +
                            (sources.count ? 1 + (int)sources.count : 0);
    if (end - row - height < 1 + SITE_ROWS_MIN)
        return row;
    if (side) { /* each as wide as it needs, the heaps' names cut first */
        int right = row_table_width(&sources), half = (s->cols - 3) / 2;
        right = right < half ? right : half;
        int left = row_table_width(&heaps);
        left = left < s->cols - 3 - right ? left : s->cols - 3 - right;
        put_row_table(s, row, 0, left, &heaps);
        put_row_table(s, row, left + 3, right, &sources);
    } else {
        int at = row;
        if (heaps.count) {
            put_row_table(s, at, 0, s->cols, &heaps);
            at += 1 + (int)heaps.count;
        }
        if (sources.count)
            put_row_table(s, at, 0, s->cols, &sources);
    }
    return row + height + (s->rows >= SPACIOUS_ROWS);
}

/* ---- the sites table ---- */

enum { COLUMN_LIVE, COLUMN_BLOCKS, COLUMN_ALLOC, COLUMN_RATE, COLUMNS };
static const char *const column_titles[COLUMNS] = {"LIVE", "BLOCKS", "ALLOC", "RATE/s"};
/* Dropped in this order when the label would get less than LABEL_MIN (never the sort key). */
static const int column_drops[COLUMNS] = {COLUMN_BLOCKS, COLUMN_RATE, COLUMN_ALLOC, COLUMN_LIVE};

static int sort_column(ht_top_sort sort)
{
    return sort == HT_TOP_SORT_ALLOCATED ? COLUMN_ALLOC
           : sort == HT_TOP_SORT_RATE    ? COLUMN_RATE
                                         : COLUMN_LIVE;
}

static const char *column_value(char *buffer, size_t size, const ht_top_site *site, int column)
{
    switch (column) {
    case COLUMN_LIVE: return hti_format_bytes(buffer, size, site->live_bytes);
    case COLUMN_BLOCKS: return hti_format_count(buffer, size, site->live_blocks);
    case COLUMN_ALLOC: return hti_format_bytes(buffer, size, site->alloc_bytes);
    default: return hti_format_bytes(buffer, size, site->rate_bytes);
    }
}

/* Rows of the list and of the stack panel under it, out of area rows. */
static void split_area(const hti_top_state *state, const ht_top_site *selected, int area, int *list,
                       int *panel)
{
    *list = area;
    *panel = 0;
    if (!state->expanded || !selected || area < 4)
        return;
    size_t depth = selected->frames ? selected->depth : 0;
    int want = 1 + (depth == 0 ? 1 : depth > (size_t)area ? area : (int)depth);
    int list_min = area >= 10 ? 5 : (area + 1) / 2;
    *panel = want < area - list_min ? want : area - list_min;
    *list = area - *panel;
}

/* The selected site's stack: a title, then the frames, innermost first, as many as fit. */
static void render_stack(const ht_top_site *site, hti_top_screen *s, int row, int rows)
{
    char line[FIELD_MAX];
    size_t depth = site->frames ? site->depth : 0;
    snprintf(line, sizeof line, "STACK  %zu %s, innermost first", depth,
             depth == 1 ? "frame" : "frames");
    put(s, row, 0, line, s->cols, HTI_TOP_BOLD);
    int room = rows - 1;
    if (room <= 0)
        return;
    if (depth == 0) {
        put(s, row + 1, 0, "  (no stack)", s->cols, 0);
        return;
    }
    size_t shown = depth <= (size_t)room ? depth : (size_t)(room - 1);
    for (size_t i = 0; i < shown; i++) {
        int indent = snprintf(line, sizeof line, "  #%-3zu ", i);
        put(s, row + 1 + (int)i, 0, line, s->cols, 0);
        put(s, row + 1 + (int)i, indent, site->frames[i] ? site->frames[i] : "?", s->cols - indent,
            0);
    }
    if (shown < depth) {
        snprintf(line, sizeof line, "  ... %zu more frames", depth - shown);
        put(s, row + 1 + (int)shown, 0, line, s->cols, 0);
    }
}

static void render_sites(const hti_top_state *state, const ht_top_frame *f, const size_t *order,
                         hti_top_screen *s, int row, int end, hti_top_placement *place)
{
    size_t n = f->site_count, selected = hti_top_selection(state, f, order);
    const ht_top_site *chosen = n ? &f->sites[order[selected]] : NULL;
    int list, panel;
    split_area(state, chosen, end - row - 1, &list, &panel);

    size_t first = state->scroll;
    if (list > 0) {
        size_t rows = (size_t)list;
        first = selected < first ? selected : first;
        first = selected >= first + rows ? selected - rows + 1 : first;
        first = n <= rows ? 0 : first > n - rows ? n - rows : first; /* no blank rows at the end */
    }
    *place = (hti_top_placement){selected, first, list > 0 ? (size_t)list : 1};
    size_t shown = n > first && list > 0 ? n - first : 0;
    if (shown > (size_t)list)
        shown = (size_t)list;

    /* Column widths: the widest of the title and the values shown. */
    char value[HTI_NUMBER_MAX];
    int key = sort_column(state->sort), width[COLUMNS];
    bool on[COLUMNS];
    for (int c = 0; c < COLUMNS; c++) {
        on[c] = true;
        width[c] = (int)strlen(column_titles[c]) + (c == key);
        for (size_t i = 0; i < shown; i++) {
            int w = (int)strlen(column_value(value, sizeof value, &f->sites[order[first + i]], c));
            width[c] = w > width[c] ? w : width[c];
        }
    }
    int label_col = 1;
    for (int c = 0; c < COLUMNS; c++)
        label_col += width[c] + 2;
    for (int d = 0; d < COLUMNS && s->cols - label_col < LABEL_MIN; d++)
        if (column_drops[d] != key) {
            on[column_drops[d]] = false;
            label_col -= width[column_drops[d]] + 2;
        }

    char title[FIELD_MAX];
    paint(s, row, 0, s->cols, HTI_TOP_BOLD);
    int x = 1;
    for (int c = 0; c < COLUMNS; c++)
        if (on[c]) {
            snprintf(title, sizeof title, "%s%s", c == key ? "*" : "", column_titles[c]);
            put_right(s, row, x, width[c], title, HTI_TOP_BOLD);
            x += width[c] + 2;
        }
    if (n)
        snprintf(title, sizeof title, "SITE  %zu of %zu", selected + 1, n);
    else
        snprintf(title, sizeof title, "SITE");
    put(s, row, label_col, title, s->cols, HTI_TOP_BOLD);

    for (size_t i = 0; i < shown; i++) {
        const ht_top_site *site = &f->sites[order[first + i]];
        int y = row + 1 + (int)i;
        if (first + i == selected) {
            put(s, y, 0, ">", 1, 0);
            paint(s, y, 0, s->cols, HTI_TOP_REVERSE);
        }
        unsigned char attr = first + i == selected ? HTI_TOP_REVERSE : 0;
        x = 1;
        for (int c = 0; c < COLUMNS; c++)
            if (on[c]) {
                put_right(s, y, x, width[c], column_value(value, sizeof value, site, c), attr);
                x += width[c] + 2;
            }
        put(s, y, label_col, site->label ? site->label : "?", s->cols, attr);
    }
    if (n == 0 && list > 0)
        put(s, row + 1, 1, "(no allocation sites yet)", s->cols, 0);
    if (panel > 0 && chosen) /* right under the last site when they do not fill the list */
        render_stack(chosen, s, row + 1 + (int)shown, panel + list - (int)shown);
}

/* ---- the help box, over the rest ---- */

static const char *const help_lines[] = {
    "heaptrail top: keys",
    "",
    "q  Q  Ctrl-C    quit",
    "l  a  r         sort by live, allocated, rate",
    "s               the next sort key",
    "Up Down  k j    select a site",
    "PgUp PgDn       a page up, down",
    "Home End  g G   the first, the last site",
    "Enter  e        show or hide its stack",
    "p  Space        pause, resume",
    "Ctrl-L          redraw",
    "Ctrl-Z          suspend (fg to come back)",
    "",
    "any key closes this help",
};
#define HELP_LINES (sizeof help_lines / sizeof help_lines[0])

static void render_help(hti_top_screen *s)
{
    int inner = 0;
    for (size_t i = 0; i < HELP_LINES; i++) {
        int w = (int)strlen(help_lines[i]);
        inner = w > inner ? w : inner;
    }
    int width = inner + 4, height = (int)HELP_LINES + 2;
    int top = s->rows > height ? (s->rows - height) / 2 : 0;
    int left = s->cols > width ? (s->cols - width) / 2 : 0;
    char line[FIELD_MAX];
    for (int y = 0; y < height; y++) {
        bool edge = y == 0 || y == height - 1;
        memset(line, edge ? '-' : ' ', (size_t)width);
        line[0] = line[width - 1] = edge ? '+' : '|';
        line[width] = '\0';
        if (!edge)
            memcpy(line + 2, help_lines[y - 1], strlen(help_lines[y - 1]));
        put(s, top + y, left, line, width, y == 1 ? HTI_TOP_BOLD : 0);
    }
}

hti_top_placement hti_top_render(const hti_top_state *state, const ht_top_frame *frame,
                                 const size_t *order, hti_top_screen *s)
{
    static const char keys[] =
        "q quit  l/a/r sort live/alloc/rate  Up/Dn select  Enter expand  p pause  ? help";
    hti_top_placement place = {hti_top_selection(state, frame, order), state->scroll, 1};
    hti_top_screen_clear(s);
    bool key_line = s->rows >= KEY_LINE_ROWS;
    int end = s->rows - key_line;
    int row = render_title(state, frame, s, 0, end);
    row += row < end && s->rows >= SPACIOUS_ROWS;
    row = render_block(state, frame, s, row, end);
    if (row < end)
        render_sites(state, frame, order, s, row, end, &place);
    if (key_line)
        put(s, s->rows - 1, 0, (int)strlen(keys) <= s->cols ? keys : "q quit  ? help", s->cols, 0);
    if (state->help)
        render_help(s);
    return place;
}
