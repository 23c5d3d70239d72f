/* env_target.c — the program option_values.py runs under the preload library: it allocates and
 * frees a few blocks, then either exits with the status given (`env_target exit N`) or prints
 * "ready" and waits for its standard input to close (`env_target wait`), so that its control
 * socket can be looked at and talked to. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    void *blocks[64];
    for (int i = 0; i < 64; i++)
        blocks[i] = malloc((size_t)(16 + i * 24));
    for (int i = 0; i < 64; i++)
        free(blocks[i]);
    if (argc == 3 && !strcmp(argv[1], "exit"))
        return atoi(argv[2]);
    if (argc == 2 && !strcmp(argv[1], "wait")) {
        printf("ready\n");
        fflush(stdout);
        char buffer[64];
        while (read(STDIN_FILENO, buffer, sizeof buffer) > 0)
            continue;
        return 0;
    }
    fprintf(stderr, "usage: env_target exit N | wait\n");
    return 2;
}
