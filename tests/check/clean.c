/* clean.c — allocates with every call of the malloc family and frees it all, then returns 3 (or
 * the status given as its first argument). With a second argument it first creates that file, so
 * that a test can tell whether it ran. heaptrail check: no finding; check's exit status is the
 * program's. No stdio: its buffers would be blocks of their own.
 *
 * Usage: clean [STATUS [MARKER]] */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void churn(void)
{
    char *blocks[64];
    for (int i = 0; i < 64; i++) {
        blocks[i] = malloc((size_t)(16 + i * 40));
        memset(blocks[i], i, 16);
    }
    char *grown = realloc(blocks[0], 100000);
    if (grown)
        blocks[0] = grown;
    for (int i = 63; i >= 0; i--)
        free(blocks[i]);
    int *zeroed = calloc(100, sizeof *zeroed);
    free(zeroed);
    void *aligned = NULL;
    if (posix_memalign(&aligned, 4096, 5000) == 0)
        free(aligned);
    free(aligned_alloc(64, 640));
}

int main(int argc, char **argv)
{
    if (argc > 2) {
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0)
            close(fd);
    }
    churn();
    return argc > 1 ? atoi(argv[1]) : 3;
}
