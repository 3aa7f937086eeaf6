/* SPDX-License-Identifier: MIT */
/* The payload benchmark's direct-call baseline (see payload_fill.h). */
#include "payload_fill.h"

/* noinline: the baseline must be a real call, like the dispatched one. */
__attribute__((noinline)) uint8_t bench_payload_fill(uint8_t* buffer, size_t len, uint8_t seed) {
    return bench_fill_loop(buffer, len, seed);
}
