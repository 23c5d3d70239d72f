/* top_view.c — the terminal of `heaptrail top` (contract in top_view.h): raw mode, the keys,
 * the view's state (sort, selection, stack, pause, help), and writing the screens top_render.c
 * lays out.
 *
 * Plain ANSI escapes, the VT100 / xterm subset: CSI H (cursor position), CSI J / K (erase),
 * SGR bold and reverse, the alternate screen (?1049) and the cursor's visibility (?25). Every
 * terminal an SSH user has (xterm and its kin, tmux, screen, the Linux console, Windows
 * Terminal) speaks this subset, so no terminfo lookup is needed; a frame is composed in memory
 * and written with one write(), so there is no flicker; and heaptrail brings no library to the
 * traced host: ncurses would be a dependency for what is a dozen escapes.
 *
 * The terminal is always given back as it was found: close restores it; so do the handlers of
 * SIGINT, SIGTERM, SIGHUP and SIGQUIT (with tcsetattr and write only, both async-signal-safe),
 * which then record the signal for ht_top_view_wait and put the signal's previous handling
 * back; SIGTSTP restores it, stops, and SIGCONT takes it again and redraws; an atexit handler is
 * the last resort. The handlers are process-wide, so one terminal view is open at a time. */
#include "cli/top_view.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/top_render.h"

#define ESC "\033"
/* The alternate screen (the shell's screen comes back intact), cursor hidden, cleared. */
static const char enter_sequence[] = ESC "[?1049h" ESC "[?25l" ESC "[0m" ESC "[H" ESC "[2J";
/* Attributes reset and the screen cleared first, so that a terminal without an alternate screen
 * (the Linux console) is left blank rather than with the last frame; then the cursor, the main
 * screen. */
static const char leave_sequence[] = ESC "[0m" ESC "[H" ESC "[2J" ESC "[?25h" ESC "[?1049l";

#define PENDING_MAX 32 /* an escape sequence longer than this is read through and ignored */
#define ROWS_MAX 1000  /* a terminal claiming more is drawn at this size */
#define COLS_MAX 1000
#define DEFAULT_PAGE 10

struct ht_top_view {
    bool terminal; /* from ht_top_view_open, not ht_top_view_create */
    int in_fd, out_fd;
    hti_top_state state;
    ht_top_frame current; /* shown: the caller's last frame, or the copy in frozen */
    void *frozen;         /* the copy made when the pause began (one block), or NULL */
    size_t *order;        /* current's sites by the sort key (hti_top_sort_sites) */
    size_t order_capacity;
    unsigned char pending[PENDING_MAX]; /* an escape sequence not yet complete */
    size_t pending_length;
    hti_top_screen screen, shown; /* being composed; on the terminal */
    bool full_redraw;             /* shown is not to be trusted: rewrite every line */
    char *out;                    /* the bytes of one screen update */
    size_t out_length, out_capacity;
    bool out_failed;
};

/* ---- the terminal, as the signal handlers see it ---- */

static const int handled_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGCONT, SIGWINCH};
#define HANDLED_SIGNALS (sizeof handled_signals / sizeof handled_signals[0])
static struct sigaction previous_actions[HANDLED_SIGNALS], stop_action;
static struct termios saved_termios, raw_termios;
static int terminal_in = -1, terminal_out = -1;
static int wake_pipe[2] = {-1, -1};
static volatile sig_atomic_t view_open, terminal_entered, ended_by, redraw_needed;
static bool exit_handler_registered;

/* write(2) until done; async-signal-safe. On a descriptor in non-blocking mode, a terminal that
 * takes nothing for a second is given up on rather than spun on. */
static void write_all(int fd, const char *data, size_t length)
{
    while (length > 0) {
        ssize_t n = write(fd, data, length);
        if (n > 0) {
            data += n;
            length -= (size_t)n;
        } else if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (poll(&p, 1, 1000) <= 0)
                return;
        } else if (n == 0 || errno != EINTR) {
            return;
        }
    }
}

static void wake(void)
{
    if (wake_pipe[1] >= 0) {
        ssize_t ignored = write(wake_pipe[1], "", 1);
        (void)ignored; /* full: a wake-up is pending anyway */
    }
}

/* Both async-signal-safe. */
static void terminal_enter(void)
{
    tcsetattr(terminal_in, TCSANOW, &raw_termios);
    write_all(terminal_out, enter_sequence, sizeof enter_sequence - 1);
    terminal_entered = 1;
}

static void terminal_restore(int when)
{
    if (!terminal_entered)
        return;
    terminal_entered = 0;
    write_all(terminal_out, leave_sequence, sizeof leave_sequence - 1);
    tcsetattr(terminal_in, when, &saved_termios);
}

/* After a stop: raw mode and the alternate screen again, and a whole new screen. */
static void take_terminal_again(void)
{
    if (ended_by)
        return;
    terminal_enter();
    redraw_needed = 1;
    wake();
}

static void on_terminate(int signal_number)
{
    int saved_errno = errno;
    terminal_restore(TCSANOW);
    ended_by = signal_number;
    /* A second one does what it would have done without the view. */
    for (size_t i = 0; i < HANDLED_SIGNALS; i++)
        if (handled_signals[i] == signal_number)
            sigaction(signal_number, &previous_actions[i], NULL);
    wake();
    errno = saved_errno;
}

static void on_stop(int signal_number)
{
    int saved_errno = errno;
    terminal_restore(TCSANOW);
    struct sigaction stop_now;
    memset(&stop_now, 0, sizeof stop_now);
    stop_now.sa_handler = SIG_DFL;
    sigemptyset(&stop_now.sa_mask);
    sigaction(signal_number, &stop_now, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signal_number);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    raise(signal_number);
    /* Continued, or never stopped (an orphaned process group discards the stop). */
    sigaction(signal_number, &stop_action, NULL);
    take_terminal_again();
    errno = saved_errno;
}

/* Also after SIGSTOP, which nobody can catch: the shell had the terminal meanwhile. */
static void on_continue(int signal_number)
{
    (void)signal_number;
    int saved_errno = errno;
    take_terminal_again();
    errno = saved_errno;
}

static void on_resize(int signal_number)
{
    (void)signal_number;
    int saved_errno = errno;
    redraw_needed = 1;
    wake();
    errno = saved_errno;
}

static void restore_at_exit(void)
{
    if (view_open)
        terminal_restore(TCSANOW);
}

/* The handled signals blocked while a screen is written, so that no restore lands inside it. */
static void block_handled(sigset_t *previous)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < HANDLED_SIGNALS; i++)
        sigaddset(&set, handled_signals[i]);
    pthread_sigmask(SIG_BLOCK, &set, previous);
}

static void install_handlers(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < HANDLED_SIGNALS; i++)
        sigaddset(&action.sa_mask, handled_signals[i]);
    action.sa_flags = SA_RESTART;
    for (size_t i = 0; i < HANDLED_SIGNALS; i++) {
        int number = handled_signals[i];
        action.sa_handler = number == SIGTSTP    ? on_stop
                            : number == SIGCONT  ? on_continue
                            : number == SIGWINCH ? on_resize
                                                 : on_terminate;
        if (number == SIGTSTP)
            stop_action = action;
        sigaction(number, &action, &previous_actions[i]);
    }
}

/* No echo, no line editing, no signals from keys (Ctrl-C and Ctrl-Z arrive as keys), no flow
 * control; a read returns as soon as one byte is there. Output processing stays as it was. */
static struct termios raw_mode(struct termios t)
{
    t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    return t;
}

/* ---- the view ---- */

ht_top_view *ht_top_view_create(void)
{
    ht_top_view *view = calloc(1, sizeof *view);
    if (!view)
        return NULL;
    view->in_fd = view->out_fd = -1;
    view->state.page = DEFAULT_PAGE;
    return view;
}

ht_top_view *ht_top_view_open(int in_fd, int out_fd)
{
    if (view_open) {
        errno = EBUSY;
        return NULL;
    }
    if (!isatty(in_fd) || !isatty(out_fd)) {
        errno = ENOTTY;
        return NULL;
    }
    const char *term = getenv("TERM");
    if (term && strcmp(term, "dumb") == 0) {
        errno = ENOTSUP;
        return NULL;
    }
    struct termios saved;
    if (tcgetattr(in_fd, &saved) != 0)
        return NULL;
    ht_top_view *view = ht_top_view_create();
    if (!view)
        return NULL;
    if (pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        int error = errno;
        free(view);
        errno = error;
        return NULL;
    }
    view->terminal = true;
    view->in_fd = in_fd;
    view->out_fd = out_fd;
    view->full_redraw = true;

    /* Everything a handler reads is in place before the first handler is. */
    saved_termios = saved;
    raw_termios = raw_mode(saved);
    terminal_in = in_fd;
    terminal_out = out_fd;
    ended_by = 0;
    redraw_needed = 0;
    view_open = 1;
    sigset_t previous;
    block_handled(&previous);
    install_handlers();
    if (!exit_handler_registered)
        exit_handler_registered = atexit(restore_at_exit) == 0;
    terminal_enter();
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    return view;
}

void ht_top_view_close(ht_top_view *view)
{
    if (!view)
        return;
    if (view->terminal) {
        sigset_t previous;
        block_handled(&previous);
        terminal_restore(TCSAFLUSH); /* keys typed and not read are not the shell's */
        for (size_t i = 0; i < HANDLED_SIGNALS; i++)
            sigaction(handled_signals[i], &previous_actions[i], NULL);
        view_open = 0;
        close(wake_pipe[0]);
        close(wake_pipe[1]);
        wake_pipe[0] = wake_pipe[1] = -1;
        pthread_sigmask(SIG_SETMASK, &previous, NULL); /* pending ones go to those handlers */
    }
    free(view->frozen);
    free(view->order);
    hti_top_screen_free(&view->screen);
    hti_top_screen_free(&view->shown);
    free(view->out);
    free(view);
}

int ht_top_view_signalled(const ht_top_view *view)
{
    return view && view->terminal ? (int)ended_by : 0;
}

bool ht_top_view_paused(const ht_top_view *view)
{
    return view && view->state.paused;
}

/* current's order for the sort key; without memory, no sites rather than a wrong order. */
static void sort_current(ht_top_view *view)
{
    size_t n = view->current.site_count;
    if (n > view->order_capacity) {
        size_t *order = n <= SIZE_MAX / sizeof *order ? realloc(view->order, n * sizeof *order)
                                                      : NULL;
        if (!order) {
            view->current.site_count = 0;
            return;
        }
        view->order = order;
        view->order_capacity = n;
    }
    if (hti_top_sort_sites(&view->current, view->state.sort, view->order) != 0)
        view->current.site_count = 0;
}

/* The selection onto current: its site's row, or the same row when the site is gone. */
static void settle_selection(ht_top_view *view, size_t row)
{
    hti_top_state *state = &view->state;
    state->selected_row = row;
    if (state->pinned && view->current.site_count)
        state->selected_id = view->current.sites[view->order[row]].id;
}

static size_t string_size(const char *text)
{
    return text ? strlen(text) + 1 : 0;
}

static const char *keep_string(char **strings, const char *text)
{
    if (!text)
        return NULL;
    size_t size = strlen(text) + 1;
    char *kept = memcpy(*strings, text, size);
    *strings += size;
    return kept;
}

/* A deep copy of frame in one block: the frame, its rows and sites, the frames' pointer arrays
 * (every one of these a multiple of 8 bytes, so all stay aligned), then the strings. */
static ht_top_frame *copy_frame(const ht_top_frame *f)
{
    size_t objects = sizeof *f + (f->heap_count + f->source_count) * sizeof(ht_top_row) +
                     f->site_count * sizeof(ht_top_site);
    size_t strings = string_size(f->program) + string_size(f->mode) + string_size(f->message);
    for (size_t i = 0; i < f->heap_count; i++)
        strings += string_size(f->heaps[i].name);
    for (size_t i = 0; i < f->source_count; i++)
        strings += string_size(f->sources[i].name);
    for (size_t i = 0; i < f->site_count; i++) {
        const ht_top_site *site = &f->sites[i];
        strings += string_size(site->label);
        if (site->frames) {
            objects += site->depth * sizeof(char *);
            for (size_t k = 0; k < site->depth; k++)
                strings += string_size(site->frames[k]);
        }
    }
    char *block = malloc(objects + strings);
    if (!block)
        return NULL;
    char *next = block, *text = block + objects;
    ht_top_frame *copy = (ht_top_frame *)(void *)next;
    *copy = *f;
    next += sizeof *copy;
    copy->program = keep_string(&text, f->program);
    copy->mode = keep_string(&text, f->mode);
    copy->message = keep_string(&text, f->message);
    const ht_top_row *from[2] = {f->heaps, f->sources};
    size_t counts[2] = {f->heap_count, f->source_count};
    for (int part = 0; part < 2; part++) {
        ht_top_row *rows = (ht_top_row *)(void *)next;
        next += counts[part] * sizeof *rows;
        for (size_t i = 0; i < counts[part]; i++) {
            rows[i] = from[part][i];
            rows[i].name = keep_string(&text, rows[i].name);
        }
        if (part == 0)
            copy->heaps = rows;
        else
            copy->sources = rows;
    }
    ht_top_site *sites = (ht_top_site *)(void *)next;
    next += f->site_count * sizeof *sites;
    for (size_t i = 0; i < f->site_count; i++) {
        sites[i] = f->sites[i];
        sites[i].label = keep_string(&text, sites[i].label);
        if (sites[i].frames) {
            const char **frames = (const char **)(void *)next;
            next += sites[i].depth * sizeof *frames;
            for (size_t k = 0; k < sites[i].depth; k++)
                frames[k] = keep_string(&text, f->sites[i].frames[k]);
            sites[i].frames = frames;
        }
    }
    copy->sites = sites;
    return copy;
}

/* ---- writing a screen ---- */

static void out_append(ht_top_view *view, const char *data, size_t length)
{
    if (view->out_failed)
        return;
    if (view->out_length + length > view->out_capacity) {
        size_t capacity = (view->out_length + length) * 2 + 4096;
        char *out = realloc(view->out, capacity);
        if (!out) {
            view->out_failed = true;
            return;
        }
        view->out = out;
        view->out_capacity = capacity;
    }
    memcpy(view->out + view->out_length, data, length);
    view->out_length += length;
}

static void out_string(ht_top_view *view, const char *text)
{
    out_append(view, text, strlen(text));
}

/* The lines of screen that differ from what the terminal shows, each placed with CSI row;1H and
 * ended with CSI K when it ends in blanks (not written out). */
static void compose(ht_top_view *view)
{
    const hti_top_screen *s = &view->screen, *old = &view->shown;
    size_t cols = (size_t)s->cols;
    view->out_length = 0;
    view->out_failed = false;
    if (view->full_redraw)
        out_string(view, ESC "[0m" ESC "[H" ESC "[2J");
    for (int row = 0; row < s->rows; row++) {
        const char *text = s->text + (size_t)row * cols;
        const unsigned char *attr = s->attr + (size_t)row * cols;
        if (!view->full_redraw && memcmp(text, old->text + (size_t)row * cols, cols) == 0 &&
            memcmp(attr, old->attr + (size_t)row * cols, cols) == 0)
            continue;
        /* Never the bottom-right cell: a terminal without a pending wrap scrolls on it. Blanks
         * at the end are erased rather than written, unless in reverse video. */
        size_t used = cols - (row == s->rows - 1);
        while (used > 0 && text[used - 1] == ' ' && !(attr[used - 1] & HTI_TOP_REVERSE))
            used--;
        char sequence[32];
        snprintf(sequence, sizeof sequence, ESC "[%d;1H", row + 1);
        out_string(view, sequence);
        unsigned char current = 0;
        for (size_t c = 0; c < used; c++) {
            if (attr[c] != current) {
                current = attr[c];
                snprintf(sequence, sizeof sequence, ESC "[0%s%sm",
                         current & HTI_TOP_BOLD ? ";1" : "", current & HTI_TOP_REVERSE ? ";7" : "");
                out_string(view, sequence);
            }
            out_append(view, &text[c], 1);
        }
        if (current)
            out_string(view, ESC "[0m");
        if (used < cols)
            out_string(view, ESC "[K");
    }
}

static void terminal_size(int fd, int *rows, int *cols)
{
    struct winsize size;
    if (ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_row > 0 && size.ws_col > 0) {
        *rows = size.ws_row < ROWS_MAX ? size.ws_row : ROWS_MAX;
        *cols = size.ws_col < COLS_MAX ? size.ws_col : COLS_MAX;
    } else {
        *rows = 24;
        *cols = 80;
    }
}

/* Lays current out at the terminal's size and writes what changed, in one write(). */
static void repaint(ht_top_view *view)
{
    if (ended_by || !terminal_entered)
        return;
    int rows, cols;
    terminal_size(view->out_fd, &rows, &cols);
    if (rows != view->screen.rows || cols != view->screen.cols) {
        hti_top_screen_free(&view->screen);
        hti_top_screen_free(&view->shown);
        if (hti_top_screen_init(&view->screen, rows, cols) != 0 ||
            hti_top_screen_init(&view->shown, rows, cols) != 0) {
            hti_top_screen_free(&view->screen);
            return;
        }
        view->full_redraw = true;
    }
    if (redraw_needed) {
        redraw_needed = 0;
        view->full_redraw = true;
    }
    hti_top_placement place = hti_top_render(&view->state, &view->current, view->order,
                                             &view->screen);
    settle_selection(view, place.selected);
    view->state.scroll = place.scroll;
    view->state.page = place.page;
    compose(view);
    if (view->out_failed) {
        view->full_redraw = true;
        return;
    }
    sigset_t previous;
    block_handled(&previous);
    if (!ended_by && terminal_entered)
        write_all(view->out_fd, view->out, view->out_length);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    size_t cells = (size_t)rows * (size_t)cols;
    memcpy(view->shown.text, view->screen.text, cells);
    memcpy(view->shown.attr, view->screen.attr, cells);
    view->full_redraw = false;
}

void ht_top_view_draw(ht_top_view *view, const ht_top_frame *frame)
{
    if (!view || !frame)
        return;
    if (view->state.paused && view->frozen) {
        view->current.target_gone = frame->target_gone;
        view->current.message = frame->message;
    } else {
        free(view->frozen);
        view->frozen = NULL;
        view->current = *frame;
        sort_current(view);
        settle_selection(view, hti_top_selection(&view->state, &view->current, view->order));
    }
    if (view->terminal)
        repaint(view);
}

/* ---- keys ---- */

typedef enum action {
    ACTION_NONE,
    ACTION_QUIT,
    ACTION_SORT_LIVE,
    ACTION_SORT_ALLOCATED,
    ACTION_SORT_RATE,
    ACTION_SORT_NEXT,
    ACTION_UP,
    ACTION_DOWN,
    ACTION_PAGE_UP,
    ACTION_PAGE_DOWN,
    ACTION_HOME,
    ACTION_END,
    ACTION_EXPAND,
    ACTION_PAUSE,
    ACTION_HELP,
    ACTION_REDRAW,
    ACTION_SUSPEND,
} action;

static action key_action(unsigned char key)
{
    switch (key) {
    case 'q':
    case 'Q':
    case 0x03: /* Ctrl-C */
    case 0x1c: /* Ctrl-\ */ return ACTION_QUIT;
    case 'l': return ACTION_SORT_LIVE;
    case 'a': return ACTION_SORT_ALLOCATED;
    case 'r': return ACTION_SORT_RATE;
    case 's': return ACTION_SORT_NEXT;
    case 'k': return ACTION_UP;
    case 'j': return ACTION_DOWN;
    case 'g': return ACTION_HOME;
    case 'G': return ACTION_END;
    case '\r':
    case '\n':
    case 'e': return ACTION_EXPAND;
    case 'p':
    case ' ': return ACTION_PAUSE;
    case '?': return ACTION_HELP;
    case 0x0c: return ACTION_REDRAW;  /* Ctrl-L */
    case 0x1a: return ACTION_SUSPEND; /* Ctrl-Z */
    default: return ACTION_NONE;
    }
}

/* CSI parameters final (parameters may carry modifiers: "1;5A" is Ctrl-Up) or SS3 final. */
static action sequence_action(const char *parameters, unsigned char final)
{
    switch (final) {
    case 'A': return ACTION_UP;
    case 'B': return ACTION_DOWN;
    case 'H': return ACTION_HOME;
    case 'F': return ACTION_END;
    case '~':
        switch (atoi(parameters)) {
        case 1:
        case 7: return ACTION_HOME;
        case 4:
        case 8: return ACTION_END;
        case 5: return ACTION_PAGE_UP;
        case 6: return ACTION_PAGE_DOWN;
        default: return ACTION_NONE;
        }
    default: return ACTION_NONE;
    }
}

static void move_selection(ht_top_view *view, action how)
{
    size_t n = view->current.site_count;
    if (n == 0)
        return;
    size_t at = hti_top_selection(&view->state, &view->current, view->order);
    size_t page = view->state.page ? view->state.page : 1;
    switch (how) {
    case ACTION_UP: at = at ? at - 1 : 0; break;
    case ACTION_DOWN: at = at + 1 < n ? at + 1 : n - 1; break;
    case ACTION_PAGE_UP: at = at > page ? at - page : 0; break;
    case ACTION_PAGE_DOWN: at = n - 1 - at > page ? at + page : n - 1; break;
    case ACTION_HOME: at = 0; break;
    default: at = n - 1; break;
    }
    view->state.pinned = true;
    settle_selection(view, at);
}

static void set_sort(ht_top_view *view, ht_top_sort sort)
{
    if (view->state.sort == sort)
        return;
    view->state.sort = sort;
    sort_current(view);
    settle_selection(view, hti_top_selection(&view->state, &view->current, view->order));
}

static void toggle_pause(ht_top_view *view)
{
    if (view->state.paused) {
        view->state.paused = false; /* the copy stays on screen until the next draw */
        return;
    }
    ht_top_frame *copy = copy_frame(&view->current);
    if (!copy)
        return; /* without memory, no pause */
    free(view->frozen);
    view->frozen = copy;
    view->current = *copy; /* the same sites in the same order: the order stays right */
    view->state.paused = true;
}

/* 1 to quit, else 0. */
static int perform(ht_top_view *view, action what)
{
    hti_top_state *state = &view->state;
    if (what == ACTION_QUIT)
        return 1;
    if (state->help && what != ACTION_REDRAW && what != ACTION_SUSPEND) {
        state->help = false; /* any key closes the help, and does only that */
        return 0;
    }
    switch (what) {
    case ACTION_SORT_LIVE: set_sort(view, HT_TOP_SORT_LIVE); break;
    case ACTION_SORT_ALLOCATED: set_sort(view, HT_TOP_SORT_ALLOCATED); break;
    case ACTION_SORT_RATE: set_sort(view, HT_TOP_SORT_RATE); break;
    case ACTION_SORT_NEXT: set_sort(view, (ht_top_sort)((state->sort + 1) % 3)); break;
    case ACTION_EXPAND:
        state->expanded = !state->expanded;
        /* The stack shown is that of this site, not of whichever comes first next time. */
        if (view->current.site_count) {
            state->pinned = true;
            settle_selection(view, hti_top_selection(state, &view->current, view->order));
        }
        break;
    case ACTION_PAUSE: toggle_pause(view); break;
    case ACTION_HELP: state->help = true; break;
    case ACTION_REDRAW: view->full_redraw = true; break;
    case ACTION_SUSPEND:
        if (view->terminal)
            raise(SIGTSTP); /* ISIG is off: Ctrl-Z is ours to act on */
        break;
    case ACTION_NONE: break;
    default: move_selection(view, what); break;
    }
    return 0;
}

/* One byte of input through the escape sequence parser: ESC [ parameters final (CSI), ESC O
 * final (SS3); an ESC followed by anything else is a lone Escape (ignored) and the byte counts
 * on its own. */
static int take_byte(ht_top_view *view, unsigned char c)
{
    size_t length = view->pending_length;
    if (length == 0) {
        if (c != 0x1b)
            return perform(view, key_action(c));
        view->pending[view->pending_length++] = c;
        return 0;
    }
    if (length == 1) {
        if (c == '[' || c == 'O') {
            view->pending[view->pending_length++] = c;
            return 0;
        }
        view->pending_length = 0;
        return take_byte(view, c);
    }
    if (view->pending[1] == 'O') {
        view->pending_length = 0;
        return perform(view, sequence_action("", c));
    }
    if (c >= 0x40 && c <= 0x7e) { /* the final byte */
        view->pending_length = 0;
        if (length >= PENDING_MAX)
            return 0; /* too long to be a key */
        char parameters[PENDING_MAX];
        memcpy(parameters, view->pending + 2, length - 2);
        parameters[length - 2] = '\0';
        return perform(view, sequence_action(parameters, c));
    }
    if (c < 0x20 || c > 0x3f) { /* not a parameter nor an intermediate: not a sequence */
        view->pending_length = 0;
        return take_byte(view, c);
    }
    if (length < PENDING_MAX)
        view->pending[view->pending_length++] = c;
    return 0;
}

int ht_top_view_input(ht_top_view *view, const void *bytes, size_t length)
{
    const unsigned char *input = bytes;
    for (size_t i = 0; view && i < length; i++)
        if (take_byte(view, input[i]))
            return 1;
    return 0;
}

static long milliseconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000L + (now.tv_nsec - start->tv_nsec) / 1000000L;
}

int ht_top_view_wait(ht_top_view *view, int timeout_ms)
{
    if (!view || !view->terminal)
        return 0;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (ended_by)
            return -1;
        if (redraw_needed)
            repaint(view);
        long left = timeout_ms - milliseconds_since(&start);
        struct pollfd fds[2] = {{.fd = view->in_fd, .events = POLLIN},
                                {.fd = wake_pipe[0], .events = POLLIN}};
        int ready = poll(fds, 2, left > 0 ? (int)left : 0);
        if (ready < 0 && errno != EINTR)
            return 0;
        if (ready > 0 && fds[1].revents) {
            char drained[64];
            while (read(wake_pipe[0], drained, sizeof drained) > 0)
                ;
        }
        if (ready > 0 && fds[0].revents) {
            unsigned char input[256];
            ssize_t n = read(view->in_fd, input, sizeof input);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
                return ended_by ? -1 : 1; /* the terminal is gone */
            if (n > 0) {
                if (ht_top_view_input(view, input, (size_t)n))
                    return 1;
                repaint(view);
            }
        }
        if (ready == 0 && left <= 0)
            return ended_by ? -1 : 0;
    }
}

char *ht_top_render_text(const ht_top_view *view, const ht_top_frame *frame, int rows, int cols)
{
    static const ht_top_frame empty;
    hti_top_state defaults = {.page = DEFAULT_PAGE};
    if (rows < 1 || cols < 1)
        return calloc(1, 1); /* no room: no lines */
    const hti_top_state *state = view ? &view->state : &defaults;
    if (!frame)
        frame = view ? &view->current : &empty;
    size_t n = frame->site_count ? frame->site_count : 1;
    size_t *order = n <= SIZE_MAX / sizeof *order ? malloc(n * sizeof *order) : NULL;
    hti_top_screen screen = {0};
    char *text = NULL;
    if (order && hti_top_sort_sites(frame, state->sort, order) == 0 &&
        hti_top_screen_init(&screen, rows, cols) == 0) {
        hti_top_render(state, frame, order, &screen);
        text = hti_top_screen_text(&screen);
    }
    hti_top_screen_free(&screen);
    free(order);
    return text;
}
