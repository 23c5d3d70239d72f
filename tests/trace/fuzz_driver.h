/* fuzz_driver.h — what a fuzz target gives the standalone driver (fuzz_driver.c): the libFuzzer
 * entry point, and text fragments worth splicing into inputs (keys, numbers, suffixes). Built with
 * -fsanitize=fuzzer a target is a libFuzzer target and fuzz_driver.c is left out. */
#ifndef HEAPTRAIL_TESTS_FUZZ_DRIVER_H
#define HEAPTRAIL_TESTS_FUZZ_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/* Runs one input; aborts on a failed check. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* NULL-terminated; { NULL } for a binary format. */
extern const char *const fuzz_tokens[];

#endif
