/* SPDX-License-Identifier: MIT */
/* Timing for the C and C++ rows of the host x guest matrix: best of 5 runs of a batch of round
 * trips, the batch sized by a calibration run to take about 0.15 s. C11, also C++. */
#ifndef POLYPLUG_MATRIX_TIMING_H
#define POLYPLUG_MATRIX_TIMING_H

#include <stdint.h>
#include <time.h>

/* One batch: `count` round trips; returns 0 when each gave the expected result. */
typedef int (*matrix_batch_fn)(void* context, uint64_t count);

static inline double matrix_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* ns per round trip, best of 5 runs; negative when a batch failed. `quick` shortens the runs
 * (a smoke test of the harness, not numbers). */
static inline double matrix_best_ns(matrix_batch_fn batch, void* context, int quick) {
    const double target_ns = quick ? 5e6 : 1.5e8;
    uint64_t count = 64;
    double best = -1.0;
    int run;
    for (;;) { /* calibrate: double the batch until it takes a tenth of the target */
        const double start = matrix_now_ns();
        if (batch(context, count) != 0) return -1.0;
        const double elapsed = matrix_now_ns() - start;
        if (elapsed >= target_ns / 10 || count >= ((uint64_t)1 << 40)) {
            count = (uint64_t)((double)count * target_ns / (elapsed > 1 ? elapsed : 1)) + 1;
            break;
        }
        count *= 2;
    }
    for (run = 0; run < 5; ++run) {
        const double start = matrix_now_ns();
        if (batch(context, count) != 0) return -1.0;
        const double ns = (matrix_now_ns() - start) / (double)count;
        if (best < 0 || ns < best) best = ns;
    }
    return best;
}

#endif
