/* indirect.c — build_list() makes a list head (16 bytes) pointing to a node pointing to another
 * node (40 bytes each); drop_list() drops the head. heaptrail check: the head definitely lost
 * (16 bytes in 1 block), the two nodes indirectly lost (80 bytes in 2 blocks: one stack, the
 * loop's). The program returns 0. */
#include <stdlib.h>
#include <string.h>

#include "scrub.h"

struct node {
    struct node *next;
    long value;
    char payload[24];
};

struct list {
    struct node *first;
    size_t length;
};

static struct list *build_list(void)
{
    struct list *head = malloc(sizeof *head);
    head->first = NULL;
    head->length = 0;
    for (int i = 0; i < 2; i++) {
        struct node *node = malloc(sizeof *node);
        memset(node, 0, sizeof *node);
        node->value = i;
        node->next = head->first;
        head->first = node;
        head->length++;
    }
    return head;
}

static void drop_list(void)
{
    struct list *volatile head = build_list();
    if (head->length != 2)
        abort();
    head = NULL;
}

int main(void)
{
    drop_list();
    scrub_stack();
    return 0;
}
