/* seccomp.c — a program whose seccomp filter refuses process_vm_readv (EPERM), as some sandboxes
 * do. It keeps a 123-byte block in a global of its .data (a mapping of its own file, which the
 * scan reads through that call when it can) and loses 55 bytes in lose(). heaptrail check: the
 * scan falls back to reading private mappings directly, so the 123 bytes are still reachable
 * and the 55 are the one finding. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "scrub.h"

char *kept_in_data = (char *)1; /* initialised: in .data, not .bss */

static void deny_process_vm_readv(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {sizeof filter / sizeof filter[0], filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0)
        exit(2);
}

static void lose(void)
{
    char *volatile block = malloc(55);
    memset(block, 0x44, 55);
    block = NULL;
}

int main(void)
{
    kept_in_data = malloc(123);
    memset(kept_in_data, 0x55, 123);
    deny_process_vm_readv();
    lose();
    scrub_stack();
    return 0;
}
