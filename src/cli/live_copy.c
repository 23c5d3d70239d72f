/* live_copy.c — the live collector's copy thread (live_copy.h): every byte of the streamed trace
 * to the tee and to the follower's pipe, holding back each chunk header until it is whole so
 * that a new trace (a program that exec'd) starts the file and the follower's pipe afresh. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "live_copy.h"

#define COPY_BYTES (256u << 10)
#define PIPE_BYTES (1u << 20) /* the follower's pipe, when the system allows it */

/* FORMAT.md §1: the preamble (magic, 16 bytes) and a chunk's header (16 bytes: meta length in
 * bytes 2-3, stored body length in 4-7, little-endian). The copy thread follows the framing to
 * find where a new trace starts: a program that execs starts its trace again in the same stream
 * (its new image opens the output anew), as it would overwrite a file. */
#define MAGIC "\x89HTRACE\n"
#define FRAME_HEAD HT_LIVE_FRAME_HEAD

static bool write_whole(int fd, const uint8_t *data, size_t n, int *error)
{
    while (n) {
        ssize_t w = write(fd, data, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            *error = w < 0 ? errno : EIO;
            return false;
        }
        data += w;
        n -= (size_t)w;
    }
    return true;
}

static void copy_out(ht_live_copy *c, const uint8_t *data, size_t n)
{
    int error = 0;
    if (!n)
        return;
    if (c->tee >= 0 && !c->tee_error && !write_whole(c->tee, data, n, &error))
        c->tee_error = error;
    if (c->pipe_out >= 0 && !atomic_load(&c->quiet) && !write_whole(c->pipe_out, data, n, &error)) {
        close(c->pipe_out); /* the follower is gone */
        c->pipe_out = -1;
    }
}

/* A second preamble: the file starts again, the follower gets a pipe of its own for it. */
static void copy_restart(ht_live_copy *c)
{
    if (c->tee >= 0 && c->tee_seekable && !c->tee_error &&
        (lseek(c->tee, 0, SEEK_SET) != 0 || ftruncate(c->tee, 0) != 0))
        c->tee_error = errno;
    int old = c->pipe_out, p[2];
    c->pipe_out = -1;
    if (!atomic_load(&c->quiet) && pipe2(p, O_CLOEXEC) == 0) {
        fcntl(p[1], F_SETPIPE_SZ, PIPE_BYTES);
        pthread_mutex_lock(&c->lock);
        if (c->next_fd >= 0)
            close(c->next_fd); /* an image that exec'd again before it was read: the newest */
        c->next_fd = p[0];
        pthread_mutex_unlock(&c->lock);
        c->pipe_out = p[1];
    }
    /* After the next pipe is there: the follower that meets this end finds it. */
    if (old >= 0)
        close(old);
}

/* Copies one read, holding back the header at each chunk boundary until it is whole. */
static void copy_framed(ht_live_copy *c, const uint8_t *data, size_t n)
{
    size_t i = 0, from = 0;
    while (i < n) {
        if (c->skip) {
            size_t take = c->skip < n - i ? (size_t)c->skip : n - i;
            i += take;
            c->skip -= take;
            continue;
        }
        copy_out(c, data + from, i - from); /* up to the boundary */
        size_t take = FRAME_HEAD - c->have < n - i ? FRAME_HEAD - c->have : n - i;
        memcpy(c->head + c->have, data + i, take);
        c->have += take;
        i += take;
        from = i;
        if (c->have < FRAME_HEAD)
            break;
        if (memcmp(c->head, MAGIC, 8) == 0) {
            if (c->traces++)
                copy_restart(c);
        } else {
            c->skip = (uint64_t)(c->head[2] | c->head[3] << 8) +
                      ((uint64_t)c->head[4] | (uint64_t)c->head[5] << 8 |
                       (uint64_t)c->head[6] << 16 | (uint64_t)c->head[7] << 24);
        }
        copy_out(c, c->head, FRAME_HEAD);
        c->have = 0;
    }
    copy_out(c, data + from, n - from);
}

static void *copier_main(void *argument)
{
    ht_live_copy *c = argument;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the main thread's */
    uint8_t *buffer = malloc(COPY_BYTES);
    for (;;) {
        ssize_t n = buffer ? read(c->in, buffer, COPY_BYTES) : -1;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        c->bytes += (uint64_t)n;
        copy_framed(c, buffer, (size_t)n);
    }
    copy_out(c, c->head, c->have); /* a trace cut inside a header: as it came */
    free(buffer);
    if (c->pipe_out >= 0)
        close(c->pipe_out);
    c->pipe_out = -1;
    return NULL;
}

int ht_live_copy_next(ht_live_copy *c)
{
    pthread_mutex_lock(&c->lock);
    int fd = c->next_fd;
    c->next_fd = -1;
    pthread_mutex_unlock(&c->lock);
    return fd;
}

static int follower_pipe(ht_live_copy *c, int *follow_fd)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return errno;
    fcntl(p[1], F_SETPIPE_SZ, PIPE_BYTES); /* a bigger pipe if allowed; fine without */
    *follow_fd = p[0];
    c->pipe_out = p[1];
    return 0;
}

int ht_live_copy_start(ht_live_copy *c, int in, int tee, int *follow_fd)
{
    memset(c, 0, sizeof *c);
    c->in = in;
    c->tee = tee;
    c->pipe_out = c->next_fd = -1;
    struct stat st;
    c->tee_seekable = tee >= 0 && fstat(tee, &st) == 0 && S_ISREG(st.st_mode);
    pthread_mutex_init(&c->lock, NULL);
    int error = follow_fd ? follower_pipe(c, follow_fd) : 0;
    if (!error && (error = pthread_create(&c->thread, NULL, copier_main, c)) != 0 && follow_fd) {
        close(*follow_fd);
        close(c->pipe_out);
        c->pipe_out = -1;
    }
    c->started = error == 0;
    return error;
}

void ht_live_copy_quiet(ht_live_copy *c)
{
    atomic_store(&c->quiet, 1);
}

bool ht_live_copy_done(ht_live_copy *c)
{
    if (c->started && pthread_tryjoin_np(c->thread, NULL) == 0)
        c->started = false;
    return !c->started;
}

void ht_live_copy_finish(ht_live_copy *c, int wait_s)
{
    if (c->started) {
        /* The stream ends when the process closes it; one that does not (stopped, wedged) is
         * not waited for long. */
        struct timespec limit;
        clock_gettime(CLOCK_REALTIME, &limit);
        limit.tv_sec += wait_s;
        if (pthread_timedjoin_np(c->thread, NULL, &limit) != 0) {
            pthread_cancel(c->thread);
            pthread_join(c->thread, NULL);
        }
        c->started = false;
    }
    if (c->pipe_out >= 0)
        close(c->pipe_out);
    c->pipe_out = -1;
    int next = ht_live_copy_next(c);
    if (next >= 0)
        close(next);
    pthread_mutex_destroy(&c->lock);
    if (c->in >= 0)
        close(c->in);
    c->in = -1;
}
