/* SPDX-License-Identifier: MIT */
/* The floor of the host x guest matrix (docs/PERFORMANCE.md, "Host x guest round trips"): the
 * same round trip as the guests' greet, done by a plain C function that a host language calls
 * through its own FFI. It writes "hello, " + name + "!" into the caller's buffer and returns the
 * length it needs (the result is cut at cap, like snprintf, so a short buffer never overflows).
 * Each host measures this call, with its argument built and its result read back as a string
 * of that language, beside the same round trip through the runtime. */
#include <stddef.h>
#include <stdint.h>
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

/* The floor of a lookup: a C function with HostApi.find_guest_contract's signature (a pointer, a
 * u64 and a u32 in, an 8-byte struct back) that does no work. A host language's FFI call of it
 * costs what that language charges for the signature alone; the binding's lookup is judged
 * against it as well as against a trivial call (docs/PERFORMANCE.md). */
typedef struct {
    uint32_t index;
    uint32_t generation;
} matrix_handle;

MATRIX_EXPORT matrix_handle polyplug_matrix_find_shape(const void* self, uint64_t contract_id,
                                                       uint32_t min_version) {
    matrix_handle h = {(uint32_t)(contract_id & 1u), min_version + (self != NULL)};
    return h;
}
