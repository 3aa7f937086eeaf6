/* SPDX-License-Identifier: MIT */
/**
 * @file call_arena.h
 * `CallArena` (spec 5.4), the per-call bump allocator VM guests write variable-size results
 * (strings, buffers, arrays) into: a caller-owned primary region, then overflow blocks from
 * HostApi.alloc. Results stay valid until the caller's next polyplug_arena_reset. Needs only
 * abi.h. C11, also C++.
 *
 * @code
 * uint8_t storage[1024];
 * CallArena arena;
 * polyplug_arena_init(&arena, storage, sizeof storage, host);
 * polyplug_call_guest(iface, instance, fn, &args, &out, &arena);  // out's views point into arena
 * polyplug_arena_reset(&arena);   // before the next call, and once at the end
 * @endcode
 */
#ifndef POLYPLUG_CALL_ARENA_H
#define POLYPLUG_CALL_ARENA_H

#include <polyplug/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An arena over `size` bytes at `storage` (both may be 0/NULL: everything then overflows). */
static inline void polyplug_arena_init(CallArena* arena, uint8_t* storage, size_t size,
                                       const HostApi* host) {
    arena->cur = storage;
    arena->base = storage;
    arena->end = storage == NULL ? NULL : storage + size;
    arena->host = host;
    arena->first_overflow = NULL;
}

/** `size` bytes aligned to `align` (a power of two), or NULL when size is 0, align is not a
 * power of two, or the host allocator fails. Never freed one by one: reset frees them all. */
static inline uint8_t* polyplug_arena_alloc(CallArena* arena, size_t size, size_t align) {
    uintptr_t start;
    size_t capacity;
    ArenaOverflowBlock* block;
    if (arena == NULL || size == 0 || align == 0 || (align & (align - 1)) != 0) return NULL;
    if (arena->cur != NULL) {
        start = ((uintptr_t)arena->cur + (align - 1)) & ~(uintptr_t)(align - 1);
        if (start >= (uintptr_t)arena->cur && start <= (uintptr_t)arena->end &&
            size <= (size_t)((uintptr_t)arena->end - start)) {
            arena->cur = (uint8_t*)start + size;
            return (uint8_t*)start;
        }
    }
    if (arena->host == NULL || size > SIZE_MAX - sizeof(ArenaOverflowBlock) - align) return NULL;
    /* An overflow block: its header, then the value at the requested alignment. */
    capacity = sizeof(ArenaOverflowBlock) + align + size;
    if (capacity < 4096) capacity = 4096;
    block = (ArenaOverflowBlock*)arena->host->alloc(arena->host, capacity, 8);
    if (block == NULL) return NULL;
    block->next = arena->first_overflow;
    block->capacity = capacity;
    arena->first_overflow = block;
    start = ((uintptr_t)(block + 1) + (align - 1)) & ~(uintptr_t)(align - 1);
    return (uint8_t*)start;
}

/** Frees every overflow block and rewinds to the start of the primary region. */
static inline void polyplug_arena_reset(CallArena* arena) {
    ArenaOverflowBlock* block;
    if (arena == NULL) return;
    block = arena->first_overflow;
    while (block != NULL) {
        ArenaOverflowBlock* next = block->next;
        arena->host->free(arena->host, (uint8_t*)block, block->capacity, 8);
        block = next;
    }
    arena->first_overflow = NULL;
    arena->cur = arena->base;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* POLYPLUG_CALL_ARENA_H */
