/* directory.c — reading a directory with raw getdents64 into a stack buffer, and a small file
 * whole: no heap, no stdio, no lock, so the control signal's handler, the listener (which
 * never uses the heap) and the writer can all read /proc/self/task or the socket directory. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "trace_internal.h"

ssize_t hti_read_text(const char *path, char *buffer, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buffer, size - 1);
    close(fd);
    if (n < 0)
        return -1;
    buffer[n] = '\0';
    return n;
}

int hti_directory_each(const char *path, bool (*visit)(int dir, const char *name, void *context),
                       void *context)
{
    int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -1;
    _Alignas(8) char buffer[2048];
    long n;
    bool more = true;
    while (more && (n = syscall(SYS_getdents64, dir, buffer, sizeof buffer)) > 0) {
        for (long at = 0; at < n && more;) {
            struct {
                uint64_t inode;
                int64_t next;
                unsigned short length;
                unsigned char type;
                char name[];
            } *entry = (void *)(buffer + at);
            at += entry->length;
            if (entry->name[0] != '.')
                more = visit(dir, entry->name, context);
        }
    }
    close(dir);
    return 0;
}
