/* control_threads.c — control as the preload library starts it (ht_control_start from its
 * constructor), driven while the program's threads allocate: clients on several threads signal
 * the process and ask for the status while another starts and stops sessions through the socket
 * (the signal often lands on a busy allocating thread, which must hand it on). Every reply is
 * well formed, every session's trace reads back whole, and nothing races (this test is one of
 * those `make test-tsan` runs under ThreadSanitizer).
 * Linked with the static library (no preload): the process heap is used through its API. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "heaptrail/heaptrail.h"
#include "heaptrail/reader.h"

#define ALLOCATORS 3
#define CLIENTS 2
#define STATUS_ROUNDS 40
#define SESSIONS 3

static atomic_int failures;
static atomic_bool stop_allocating;
static char control_dir[64];

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            atomic_fetch_add(&failures, 1);                                                        \
            fprintf(stderr, "control_threads.c:%d: check failed: %s: ", __LINE__, #cond);          \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* One request over a fresh connection; the reply (NUL-terminated) in reply. 0 or -errno. */
static int request(const char *text, char *reply, size_t size)
{
    struct sockaddr_un address;
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    int n = ht_control_socket_path(address.sun_path, sizeof address.sun_path, (uint32_t)geteuid(),
                                   (uint32_t)getpid(), control_dir, NULL);
    if (n < 0)
        return n;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int error = 0;
    /* The socket exists only once the control signal asked for it (and for a second after the
     * last request): signal, then try again, as `heaptrail status` does. */
    for (int attempt = 0; connect(fd, (struct sockaddr *)&address, sizeof address) != 0;
         attempt++) {
        if ((errno != ENOENT && errno != ECONNREFUSED) || attempt == 500) {
            close(fd);
            return -errno;
        }
        if (attempt % 50 == 0)
            CHECK(ht_control_request(getpid(), ht_control_signal()) == 0, "signal");
        sleep_ms(10);
    }
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text) || shutdown(fd, SHUT_WR) != 0)
        error = -errno;
    size_t used = 0;
    ssize_t got;
    while (!error && used + 1 < size && (got = read(fd, reply + used, size - 1 - used)) > 0)
        used += (size_t)got;
    reply[used] = '\0';
    close(fd);
    return error;
}

static void *allocator_main(void *argument)
{
    unsigned seed = (unsigned)(uintptr_t)argument;
    ht_heap *heap = ht_process_heap();
    void *kept[64] = {0};
    while (!atomic_load(&stop_allocating)) {
        seed = seed * 1103515245u + 12345u;
        unsigned i = (seed >> 8) % 64;
        if (kept[i]) {
            CHECK(ht_heap_free(heap, 0, kept[i]), "free");
            kept[i] = NULL;
        } else {
            kept[i] = ht_heap_alloc(heap, 0, 16 + (seed >> 16) % 3000);
            CHECK(kept[i] != NULL, "alloc");
        }
    }
    for (unsigned i = 0; i < 64; i++)
        ht_heap_free(heap, 0, kept[i]);
    return NULL;
}

static void *client_main(void *argument)
{
    (void)argument;
    char reply[4096];
    for (int i = 0; i < STATUS_ROUNDS; i++) {
        int error = request("status\n\n", reply, sizeof reply);
        CHECK(error == 0, "status request: %s", strerror(-error));
        CHECK(strncmp(reply, "ok\n", 3) == 0 && strstr(reply, "\nactive=") != NULL,
              "status reply: %.200s", reply);
    }
    return NULL;
}

/* Events in a trace, or -1 if it does not read back whole. */
static long trace_events(const char *path)
{
    char error[256];
    ht_reader *reader = ht_reader_open(path, error, sizeof error);
    if (!reader) {
        fprintf(stderr, "%s: %s\n", path, error);
        return -1;
    }
    static ht_event events[1024];
    long total = 0, n;
    while ((n = ht_reader_read(reader, events, 1024)) > 0)
        total += n;
    bool complete = ht_reader_info(reader)->complete;
    ht_reader_close(reader);
    return n < 0 || !complete ? -1 : total;
}

int main(void)
{
    snprintf(control_dir, sizeof control_dir, "/tmp/ht-control-XXXXXX");
    if (!mkdtemp(control_dir)) {
        perror("mkdtemp");
        return 1;
    }
    setenv("HEAPTRAIL_CONTROL_DIR", control_dir, 1);
    int error = ht_control_start();
    CHECK(error == 0, "ht_control_start: %s", strerror(-error));

    pthread_t allocators[ALLOCATORS], clients[CLIENTS];
    for (uintptr_t i = 0; i < ALLOCATORS; i++)
        pthread_create(&allocators[i], NULL, allocator_main, (void *)(i + 1));
    for (int i = 0; i < CLIENTS; i++)
        pthread_create(&clients[i], NULL, client_main, NULL);

    char path[SESSIONS][128], text[512], reply[4096];
    for (int s = 0; s < SESSIONS; s++) {
        snprintf(path[s], sizeof path[s], "%s/session%d.trace", control_dir, s);
        snprintf(text, sizeof text, "start\noutput=%s\nmode=%s\n\n", path[s],
                 s == 1 ? "discard" : "block");
        error = request(text, reply, sizeof reply);
        CHECK(error == 0 && strncmp(reply, "ok\n", 3) == 0, "start: %s %.200s", strerror(-error),
              reply);
        sleep_ms(60);
        error = request("stop\n\n", reply, sizeof reply);
        CHECK(error == 0 && strncmp(reply, "ok\n", 3) == 0, "stop: %s %.200s", strerror(-error),
              reply);
    }
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(clients[i], NULL);
    atomic_store(&stop_allocating, true);
    for (int i = 0; i < ALLOCATORS; i++)
        pthread_join(allocators[i], NULL);
    ht_control_stop();

    for (int s = 0; s < SESSIONS; s++) {
        long events = trace_events(path[s]);
        CHECK(events > 0, "%s: %ld events", path[s], events);
        unlink(path[s]);
    }
    rmdir(control_dir);
    if (atomic_load(&failures))
        return 1;
    printf("ok: %d sessions started and stopped through the socket\n", SESSIONS);
    return 0;
}
