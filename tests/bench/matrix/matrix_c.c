/* SPDX-License-Identifier: MIT */
/* The C row of the host x guest matrix (scripts/bench.sh --matrix): a C host on libpolyplug.so
 * calls greet("world") of the parity contract in each guest language and copies the result
 * into its own buffer, against the same round trip through a plain call of a C function in a
 * shared library (matrix_floor.c). Prints one "matrix C <guest> <ns>" line per cell.
 *
 *   matrix_c <build dir> [--quick]
 *
 * VM guests need their loader module (<build>/shim/loaders/<lang>/), registered the way a C host
 * does it (HostApi.register_loader with the module's create function). */
/* clock_gettime under -std=c11 */
#define _POSIX_C_SOURCE 200809L

#include "matrix_timing.h"
#include "parity.h"

#include <polyplug/abi.h>
#include <polyplug/call.h>
#include <polyplug/call_arena.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t polyplug_matrix_greet(const char* name, size_t len, char* out, size_t cap);

static const char expected[] = "hello, world!";

typedef struct {
    char out[64]; /* the host's copy of the result */
    size_t len;
} floor_context;

static int floor_batch(void* context, uint64_t count) {
    floor_context* c = (floor_context*)context;
    const char* name = "world";
    for (uint64_t i = 0; i < count; ++i) {
        c->len = polyplug_matrix_greet(name, strlen(name), c->out, sizeof c->out);
        if (c->len > sizeof c->out) return 1;
    }
    return c->len == sizeof expected - 1 && memcmp(c->out, expected, c->len) == 0 ? 0 : 1;
}

typedef struct {
    const GuestContractInterface* iface;
    GuestContractInstance instance;
    CallArena arena;
    uint8_t storage[256];
    char out[64];
    size_t len;
    char error[256];
} guest_context;

static int guest_batch(void* context, uint64_t count) {
    guest_context* c = (guest_context*)context;
    const char* name = "world";
    for (uint64_t i = 0; i < count; ++i) {
        TestParityKitGreetArgs args;
        StringView result = {NULL, 0};
        args.name.ptr = (const uint8_t*)name;
        args.name.len = strlen(name);
        polyplug_arena_reset(&c->arena);
        const AbiError err = polyplug_call_guest(c->iface, c->instance, TEST_PARITY_KIT_FN_GREET,
                                                 &args, &result, &c->arena);
        if (err.code != AbiErrorCode_Ok || result.len > sizeof c->out) {
            snprintf(c->error, sizeof c->error, "greet failed: error %u: %.*s", err.code,
                     (int)err.message.len, (const char*)err.message.ptr);
            return 1;
        }
        memcpy(c->out, result.ptr, result.len);
        c->len = result.len;
    }
    if (c->len != sizeof expected - 1 || memcmp(c->out, expected, c->len) != 0) {
        snprintf(c->error, sizeof c->error, "greet gave '%.*s'", (int)c->len, c->out);
        return 1;
    }
    return 0;
}

static void last_error(const HostApi* host, char* text, size_t cap) {
    const size_t n = host->get_last_error(host, (uint8_t*)text, cap - 1);
    text[n < cap - 1 ? n : cap - 1] = '\0';
}

/* Registers the loader module of `lang` (lua, python or js); 0 on success, else a reason. */
static int register_vm_loader(const HostApi* host, const char* build, const char* lang, char* why,
                              size_t why_cap) {
    char path[4096], symbol[64];
    snprintf(path, sizeof path, "%s/shim/loaders/%s/libpolyplug-loader-%s.so", build, lang, lang);
    void* module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (module == NULL) {
        snprintf(why, why_cap, "the %s loader module is not built (%s)", lang, dlerror());
        return 1;
    }
    snprintf(symbol, sizeof symbol, "polyplug_loader_%s_create", lang);
    void* (*create)(void) = NULL;
    *(void**)&create = dlsym(module, symbol);
    if (create == NULL) {
        snprintf(why, why_cap, "%s has no %s", path, symbol);
        return 1;
    }
    AbiError err = {AbiErrorCode_Ok, {NULL, 0}};
    host->register_loader(host, create(), &err);
    if (err.code != AbiErrorCode_Ok) {
        last_error(host, why, why_cap);
        return 1;
    }
    return 0; /* the module stays loaded: the runtime runs its code until it is destroyed */
}

/* Measures one guest; prints its line. Returns 1 on an unexpected failure. */
static int measure_guest(const char* build, const char* guest, int quick) {
    char dir[4096], why[8192];
    snprintf(dir, sizeof dir, "%s/tests/parity/%s/manifest.toml", build, guest);
    FILE* manifest = fopen(dir, "r");
    if (manifest == NULL) {
        printf("matrix C %s skip the %s parity bundle is not built\n", guest, guest);
        return 0;
    }
    fclose(manifest);
    snprintf(dir, sizeof dir, "%s/tests/parity/%s", build, guest);
    const HostApi* host = polyplug_runtime_create(NULL);
    if (host == NULL) {
        fprintf(stderr, "matrix_c: polyplug_runtime_create failed\n");
        return 1;
    }
    int failed = 0;
    const int vm =
        strcmp(guest, "lua") == 0 || strcmp(guest, "python") == 0 || strcmp(guest, "js") == 0;
    if (vm && register_vm_loader(host, build, guest, why, sizeof why) != 0) {
        printf("matrix C %s skip %s\n", guest, why);
        polyplug_runtime_destroy(host);
        return 0;
    }
    AbiError err = {AbiErrorCode_Ok, {NULL, 0}};
    host->load_bundle(host, (const uint8_t*)dir, strlen(dir), &err);
    guest_context* c = (guest_context*)calloc(1, sizeof *c);
    if (err.code != AbiErrorCode_Ok || c == NULL) {
        last_error(host, why, sizeof why);
        fprintf(stderr, "matrix_c: loading %s: %s\n", dir, why);
        free(c);
        polyplug_runtime_destroy(host);
        return 1;
    }
    c->iface = host->resolve_guest_contract(
        host, host->find_guest_contract(host, TEST_PARITY_KIT_CONTRACT_ID, 1));
    if (c->iface != NULL) host->create_guest_instance(host, c->iface, NULL, &c->instance);
    if (c->iface == NULL || c->instance.contract_id == 0) {
        fprintf(stderr, "matrix_c: %s: no test.parity.Kit@1 instance\n", guest);
        failed = 1;
    } else {
        polyplug_arena_init(&c->arena, c->storage, sizeof c->storage, host);
        const double ns = matrix_best_ns(guest_batch, c, quick);
        if (ns < 0) {
            fprintf(stderr, "matrix_c: %s: %s\n", guest, c->error);
            failed = 1;
        } else {
            printf("matrix C %s %.1f\n", guest, ns);
        }
        polyplug_arena_free(&c->arena);
        host->destroy_guest_instance(host, c->iface, c->instance);
    }
    free(c);
    polyplug_runtime_destroy(host);
    return failed;
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s <build dir> [--quick]\n", argv[0]);
        return 2;
    }
    const char* build = argv[1];
    const int quick = argc > 2 && strcmp(argv[2], "--quick") == 0;
    floor_context floor_ctx;
    const double floor_ns = matrix_best_ns(floor_batch, &floor_ctx, quick);
    if (floor_ns < 0) {
        fprintf(stderr, "matrix_c: the floor function gave a wrong result\n");
        return 1;
    }
    printf("matrix C floor %.1f\n", floor_ns);
    fflush(stdout);
    static const char* const guests[] = {"c", "cpp", "rust", "lua", "python", "js"};
    int failures = 0;
    for (size_t i = 0; i < sizeof guests / sizeof guests[0]; ++i) {
        failures += measure_guest(build, guests[i], quick);
        fflush(stdout);
    }
    return failures == 0 ? 0 : 1;
}
