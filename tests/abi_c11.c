/* SPDX-License-Identifier: MIT */
/* abi.h compiled as C11 (with -pedantic): its _Static_asserts run, and its inline helpers agree
 * with the spec's test vectors when called from C. The call arena (call_arena.h) retains and
 * rewinds its overflow blocks: reused across many overflowing calls, it allocates only once. */
#include <polyplug/abi.h>
#include <polyplug/call_arena.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int allocations = 0;
static int frees = 0;

static uint8_t* counting_alloc(const HostApi* self, size_t size, size_t align) {
    (void)self, (void)align;
    ++allocations;
    return (uint8_t*)malloc(size);
}

static void counting_free(const HostApi* self, uint8_t* ptr, size_t size, size_t align) {
    (void)self, (void)size, (void)align;
    ++frees;
    free(ptr);
}

/* 100 calls that each overflow the primary region twice; the blocks of the first are reused. */
static int arena_retains_and_rewinds(void) {
    int failures = 0;
    HostApi host;
    uint8_t storage[64];
    CallArena arena;
    memset(&host, 0, sizeof host);
    host.alloc = counting_alloc;
    host.free = counting_free;
    polyplug_arena_init(&arena, storage, sizeof storage, &host);
    for (int call = 0; call < 100; ++call) {
        uint8_t* small = polyplug_arena_alloc(&arena, 48, 8);
        uint8_t* big = polyplug_arena_alloc(&arena, 3000, 16);
        uint8_t* bigger = polyplug_arena_alloc(&arena, 3000, 8);
        failures += small != storage;
        failures += big == NULL || ((uintptr_t)big & 15) != 0;
        failures += bigger == NULL;
        if (big == NULL || bigger == NULL) return failures + 1;
        memset(big, 0xAB, 3000); /* the whole value is writable (ASan checks the bounds) */
        memset(bigger, 0xCD, 3000);
        /* Payload starts after the 24-byte header, in a block the arena knows. */
        failures += arena.first_overflow == NULL;
        failures += arena.first_overflow->used < sizeof(ArenaOverflowBlock) + 3000;
        polyplug_arena_reset(&arena);
        failures += arena.cur != storage;
        failures += arena.first_overflow == NULL; /* kept */
        for (ArenaOverflowBlock* b = arena.first_overflow; b != NULL; b = b->next)
            failures += b->used != sizeof(ArenaOverflowBlock); /* rewound */
    }
    failures += allocations != 2; /* two blocks, on the first call only */
    polyplug_arena_free(&arena);
    failures += frees != 2;
    failures += arena.first_overflow != NULL;
    if (failures != 0)
        fprintf(stderr, "abi_c11: arena: %d allocations, %d frees\n", allocations, frees);
    return failures;
}

int main(void) {
    int failures = 0;
    failures += polyplug_guest_contract_id("test.add", 8, 1) != 0x40244DF59FCBECB6ull;
    failures += polyplug_host_contract_id("host.logger", 11, 1) != 0xF53EB5F2845853BBull;
    failures += polyplug_bundle_id("polyplug-core", 13) != 0x6EF4AEE714F5F991ull;
    failures += sizeof(HostApi) != 184;
    failures += polyplug_handle_pack(polyplug_null_handle()) != UINT64_MAX;
    failures += sizeof(ArenaOverflowBlock) != 24;
    failures += offsetof(ArenaOverflowBlock, next) != 0;
    failures += offsetof(ArenaOverflowBlock, capacity) != 8;
    failures += offsetof(ArenaOverflowBlock, used) != 16;
    failures += sizeof(CallArena) != 40;
    failures += offsetof(CallArena, first_overflow) != 32;
    failures += arena_retains_and_rewinds();
    printf("abi_c11: %s\n", failures == 0 ? "ok" : "FAILED");
    return failures;
}
