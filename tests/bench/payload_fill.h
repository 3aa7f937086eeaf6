/* SPDX-License-Identifier: MIT */
/* The payload benchmark's unit of work: writing `len` bytes. The loop is defined here, inline, so
 * that the direct-call baseline (payload_fill.c, in the benchmark program) and the dispatched
 * function (bench_plugin.c) each contain the same loop in one function, compiled by the same
 * compiler with the same flags: the two sides differ only in how they are reached. */
#ifndef POLYPLUG_BENCH_PAYLOAD_FILL_H
#define POLYPLUG_BENCH_PAYLOAD_FILL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** What bench.inc@1 fn 1 receives. */
typedef struct BenchFillArgs {
    uint8_t* buffer;
    size_t len;
    uint8_t seed;
} BenchFillArgs;

/** Fills buffer[0..len) with seed, seed + 1, ... (wrapping); returns the last byte written. */
static inline uint8_t bench_fill_loop(uint8_t* buffer, size_t len, uint8_t seed) {
    uint8_t value = seed;
    for (size_t i = 0; i < len; ++i) buffer[i] = value++;
    return len > 0 ? buffer[len - 1] : seed;
}

/** bench_fill_loop as a function of its own: the direct-call baseline (payload_fill.c). */
uint8_t bench_payload_fill(uint8_t* buffer, size_t len, uint8_t seed);

#ifdef __cplusplus
}
#endif

#endif
