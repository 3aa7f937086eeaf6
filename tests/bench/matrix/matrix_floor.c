/* SPDX-License-Identifier: MIT */
/* The floor of the host x guest matrix (docs/PERFORMANCE.md, "Host x guest round trips"): the
 * same round trip as the guests' greet, done by a plain C function that a host language calls
 * through its own FFI. It writes "hello, " + name + "!" into the caller's buffer and returns the
 * length it needs (the result is cut at cap, like snprintf, so a short buffer never overflows).
 * Each host measures this call, with its argument built and its result read back as a string
 * of that language, beside the same round trip through the runtime. */
#include <stddef.h>
#include <string.h>

#if defined(__GNUC__)
#define MATRIX_EXPORT __attribute__((visibility("default")))
#else
#define MATRIX_EXPORT
#endif

MATRIX_EXPORT size_t polyplug_matrix_greet(const char* name, size_t len, char* out, size_t cap) {
    static const char prefix[] = "hello, ";
    const size_t prefix_len = sizeof prefix - 1;
    const size_t total = prefix_len + len + 1;
    if (out == NULL || cap < total) return total;
    memcpy(out, prefix, prefix_len);
    if (len > 0) memcpy(out + prefix_len, name, len);
    out[prefix_len + len] = '!';
    return total;
}
