/* fuzz_reader.c — fuzz target for the trace reader: any input must open and read to an error
 * or the end without crashing, hanging or over-allocating.
 *
 * Built with -fsanitize=fuzzer it is a libFuzzer target; otherwise fuzz_driver.c gives it a
 * main() that replays the corpus (tests/trace/corpus) and mutates it for a fixed time. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_driver.h"
#include "heaptrail/reader.h"

const char *const fuzz_tokens[] = {NULL}; /* a binary format: byte mutations only */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ht_reader *reader = ht_reader_open_memory(data, size, NULL, 0);
    if (!reader)
        return 0;
    static ht_event events[256];
    long n;
    unsigned long rounds = 0;
    while ((n = ht_reader_read(reader, events, 256)) > 0) {
        for (long i = 0; i < n; i++) {
            const uint64_t *frames;
            uint32_t depth;
            if (events[i].stack_id &&
                ht_reader_stack(reader, events[i].stack_id, &frames, &depth) && depth)
                ht_reader_module_find(reader, frames[0]);
        }
        if (++rounds > 10000000ul)
            abort(); /* cannot happen: every event consumes input bytes */
    }
    for (size_t i = 0; i < ht_reader_module_count(reader); i++)
        (void)ht_reader_module(reader, i)->Path;
    ht_reader_rewind(reader);
    ht_reader_read(reader, events, 16);
    ht_reader_close(reader);
    return 0;
}
