/* SPDX-License-Identifier: MIT */
/**
 * @file call_arena.h
 * `CallArena` (spec 5.4), the per-call bump allocator VM guests write variable-size results
 * (strings, buffers, arrays) into: a caller-owned primary region, then overflow blocks from
 * HostApi.alloc. Retain and rewind: a reset rewinds the primary region and every overflow block
 * and keeps the blocks, so an arena reused call after call stops allocating once it has grown to
 * its largest call; polyplug_arena_free releases them at the end. Results stay valid until the
 * caller's next reset. Needs only abi.h. C11, also C++.
 *
 * @code
 * uint8_t storage[1024];
 * CallArena arena;
 * polyplug_arena_init(&arena, storage, sizeof storage, host);
 * polyplug_call_guest(iface, instance, fn, &args, &out, &arena);  // out's views point into arena
 * polyplug_arena_reset(&arena);   // before the next call: keeps the overflow blocks
 * polyplug_arena_free(&arena);    // once at the end: frees them
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

/* Bumps `size` bytes at `align` inside [*cur, end), or returns NULL when they do not fit. */
static inline uint8_t* polyplug_arena_bump(uintptr_t cur, uintptr_t end, size_t size,
                                           size_t align) {
    const uintptr_t start = (cur + (align - 1)) & ~(uintptr_t)(align - 1);
    if (start < cur || start > end || size > (size_t)(end - start)) return NULL;
    return (uint8_t*)start;
}

/** `size` bytes aligned to `align` (a power of two), or NULL when size is 0, align is not a
 * power of two, or the host allocator fails. Served from the primary region, then from the
 * overflow blocks the arena keeps (rewound ones included), and only when none has room from a
 * new block. Never freed one by one: polyplug_arena_free frees the blocks. */
static inline uint8_t* polyplug_arena_alloc(CallArena* arena, size_t size, size_t align) {
    uint8_t* got;
    size_t capacity;
    ArenaOverflowBlock* block;
    if (arena == NULL || size == 0 || align == 0 || (align & (align - 1)) != 0) return NULL;
    if (arena->cur != NULL) {
        got = polyplug_arena_bump((uintptr_t)arena->cur, (uintptr_t)arena->end, size, align);
        if (got != NULL) {
            arena->cur = got + size;
            return got;
        }
    }
    for (block = arena->first_overflow; block != NULL; block = block->next) {
        got = polyplug_arena_bump((uintptr_t)block + block->used,
                                  (uintptr_t)block + block->capacity, size, align);
        if (got != NULL) {
            block->used = (size_t)((uintptr_t)(got + size) - (uintptr_t)block);
            return got;
        }
    }
    if (arena->host == NULL || size > SIZE_MAX - sizeof(ArenaOverflowBlock) - align) return NULL;
    /* A new overflow block: its header, then the value at the requested alignment. */
    capacity = sizeof(ArenaOverflowBlock) + align + size;
    if (capacity < 4096) capacity = 4096;
    block = (ArenaOverflowBlock*)arena->host->alloc(arena->host, capacity, 8);
    if (block == NULL) return NULL;
    block->next = arena->first_overflow;
    block->capacity = capacity;
    block->used = sizeof(ArenaOverflowBlock);
    arena->first_overflow = block;
    got = polyplug_arena_bump((uintptr_t)block + block->used, (uintptr_t)block + capacity, size,
                              align);
    block->used = (size_t)((uintptr_t)(got + size) - (uintptr_t)block);
    return got;
}

/** Rewinds the primary region and every overflow block (`used` back to the header size),
 * keeping the blocks for the next call. Everything allocated before is invalid afterwards. */
static inline void polyplug_arena_reset(CallArena* arena) {
    ArenaOverflowBlock* block;
    if (arena == NULL) return;
    for (block = arena->first_overflow; block != NULL; block = block->next) {
        block->used = sizeof(ArenaOverflowBlock);
    }
    arena->cur = arena->base;
}

/** Teardown: frees every overflow block (HostApi.free with the block, its capacity, align 8)
 * and rewinds the primary region. The arena may be used again afterwards. */
static inline void polyplug_arena_free(CallArena* arena) {
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
