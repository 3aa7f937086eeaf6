/* SPDX-License-Identifier: MIT */
/* A C11 host calling through polyplug_call_guest (call.h) on three threads while the main thread
 * hot-reloads the bundle 300 times, alternating two builds of one library (v1 answers 100, v2
 * 200). The runtime rewrites its interface copy's table with atomic stores during each reload;
 * call.h must read it with atomic loads, or ThreadSanitizer reports a data race and fails the run.
 * Every call must answer Ok with 100 or 200, or a defined error. argv[1] = the fixture directory.
 */
#define _POSIX_C_SOURCE 200809L
#include <polyplug/abi.h>
#include <polyplug/call.h>
#include <polyplug/runtime_contract.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { callers = 3, reloads = 300 };

static int failures = 0;
#define EXPECT(cond)                                                               \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "c_call_race: line %d: FAILED %s\n", __LINE__, #cond); \
            ++failures;                                                            \
        }                                                                          \
    } while (0)

static int copy_file(const char* from, const char* to) {
    FILE* in = fopen(from, "rb");
    FILE* out = fopen(to, "wb");
    int ok = in != NULL && out != NULL;
    char chunk[65536];
    size_t n;
    while (ok && (n = fread(chunk, 1, sizeof chunk, in)) > 0) ok = fwrite(chunk, 1, n, out) == n;
    if (in) fclose(in);
    if (out) fclose(out);
    return ok;
}

/* Replaces the bundle's library the safe way (write a new file, then rename it over the old
 * one): a mapped library must never be rewritten in place. */
static int install(const char* bundle, const char* fixtures, const char* library) {
    char from[4096], staging[4096], target[4096];
    snprintf(from, sizeof from, "%s/fixture_%s.so", fixtures, library);
    snprintf(staging, sizeof staging, "%s/libversioned.so.new", bundle);
    snprintf(target, sizeof target, "%s/libversioned.so", bundle);
    return copy_file(from, staging) && rename(staging, target) == 0;
}

typedef struct Shared {
    const HostApi* host;
    GuestContractHandle handle;
    const GuestContractInterface* cached;
    GuestContractInstance instance;
    atomic_int stop;
    atomic_long calls;
    atomic_long stale;
    atomic_long wrong;
} Shared;

typedef struct Caller {
    Shared* shared;
    int resolve_each_time; /* half of the callers resolve per call, half keep the pointer */
} Caller;

static void* call_loop(void* arg) {
    Caller* self = (Caller*)arg;
    Shared* s = self->shared;
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        const GuestContractInterface* iface =
            self->resolve_each_time ? s->host->resolve_guest_contract(s->host, s->handle)
                                    : s->cached;
        uint32_t out = 0;
        AbiError err = polyplug_call_guest(iface, s->instance, 0, NULL, &out, NULL);
        if (err.code == AbiErrorCode_Ok) {
            if (out != 100 && out != 200) atomic_fetch_add(&s->wrong, 1);
        } else if (err.code == AbiErrorCode_StaleHandle ||
                   err.code == AbiErrorCode_FunctionNotAvailable) {
            atomic_fetch_add(&s->stale,
                             1); /* defined errors; not expected with in-place rewrites */
        } else {
            atomic_fetch_add(&s->wrong, 1);
        }
        atomic_fetch_add_explicit(&s->calls, 1, memory_order_relaxed);
    }
    return NULL;
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: c_call_race FIXTURE_DIR\n");
        return 2;
    }
    char root[] = "/tmp/polyplug-c-call-race-XXXXXX";
    if (mkdtemp(root) == NULL) return 2;
    char bundle[4096], path[sizeof bundle + 64];
    snprintf(bundle, sizeof bundle, "%s/versioned", root);
    mkdir(bundle, 0700);
    EXPECT(install(bundle, argv[1], "versioned_100"));
    snprintf(path, sizeof path, "%s/manifest.toml", bundle);
    FILE* manifest = fopen(path, "w");
    EXPECT(manifest != NULL);
    if (manifest == NULL) return 1;
    fprintf(manifest,
            "id = \"0x%016llx\"\nname = \"versioned\"\nversion = \"1.0.0\"\nloader = \"native\"\n"
            "file = \"libversioned.so\"\n"
            "provides = [\"test.version@1\", \"test.legacy@1\", \"test.extra@1\"]\n"
            "function_count = { \"test.version@1\" = 1, \"test.legacy@1\" = 1, "
            "\"test.extra@1\" = 1 }\n",
            (unsigned long long)polyplug_bundle_id("versioned", 9));
    fclose(manifest);

    RuntimeConfig config;
    memset(&config, 0, sizeof config);
    config.compatibility = Compatibility_Strict;
    config.hot_reload_enabled = true;
    config.log_max_level = LogLevel_Warn;
    const HostApi* host = polyplug_runtime_create(&config);
    EXPECT(host != NULL);
    if (host == NULL) return 1;

    /* A caller that read an entry just before a reload may call it after: keep every version's
     * code mapped while the runtime lives, so that no scheduler delay reaches unmapped code. */
    const HostContractInterface* rt = host->resolve_host_contract_interface(
        host, POLYPLUG_RUNTIME_CONTRACT_ID, (POLYPLUG_RUNTIME_CONTRACT_MAJOR << 16));
    HostContractInstance rt_self = host->get_host_contract(host, POLYPLUG_RUNTIME_CONTRACT_ID, 0);
    PolyplugUnmapPolicyArgs never = {1, 0};
    AbiError err = {0, {NULL, 0}};
    EXPECT(polyplug_call_host(rt, rt_self, PolyplugRuntimeFn_SetUnmapPolicy, &never, NULL).code ==
           AbiErrorCode_Ok);

    host->load_bundle(host, (const uint8_t*)bundle, strlen(bundle), &err);
    EXPECT(err.code == AbiErrorCode_Ok);
    Shared shared;
    memset(&shared, 0, sizeof shared);
    shared.host = host;
    shared.handle =
        host->find_guest_contract(host, polyplug_guest_contract_id("test.version", 12, 1), 0);
    shared.cached = host->resolve_guest_contract(host, shared.handle);
    EXPECT(shared.cached != NULL);
    if (shared.cached == NULL) return 1;
    host->create_guest_instance(host, shared.cached, NULL, &shared.instance);
    atomic_init(&shared.stop, 0);
    atomic_init(&shared.calls, 0);
    atomic_init(&shared.stale, 0);
    atomic_init(&shared.wrong, 0);

    pthread_t threads[callers];
    Caller roles[callers];
    for (int t = 0; t < callers; ++t) {
        roles[t].shared = &shared;
        roles[t].resolve_each_time = t % 2;
        EXPECT(pthread_create(&threads[t], NULL, call_loop, &roles[t]) == 0);
    }
    int failed_reloads = 0;
    for (int i = 0; i < reloads; ++i) {
        EXPECT(install(bundle, argv[1], i % 2 == 0 ? "versioned_200" : "versioned_100"));
        host->reload_bundle(host, (const uint8_t*)bundle, strlen(bundle), &err);
        if (err.code != AbiErrorCode_Ok) ++failed_reloads;
    }
    atomic_store(&shared.stop, 1);
    for (int t = 0; t < callers; ++t) pthread_join(threads[t], NULL);

    EXPECT(failed_reloads == 0);
    EXPECT(atomic_load(&shared.wrong) == 0);
    EXPECT(atomic_load(&shared.calls) > 0);
    uint32_t out = 0;
    err = polyplug_call_guest(shared.cached, shared.instance, 0, NULL, &out, NULL);
    EXPECT(err.code == AbiErrorCode_Ok);
    EXPECT(out == 100); /* an even number of reloads ends on v1 */
    printf("c_call_race: %ld calls (%ld defined errors) during %d reloads\n",
           atomic_load(&shared.calls), atomic_load(&shared.stale), reloads);

    host->destroy_guest_instance(host, shared.cached, shared.instance);
    ArrayOf_BundleId ids = host->list_bundles(host);
    for (size_t i = 0; i < ids.len; ++i) host->unload_bundle(host, ids.items[i], &err);
    host->free(host, (uint8_t*)ids.items, ids.len * sizeof(BundleId), ids.align);
    polyplug_runtime_destroy(host);

    snprintf(path, sizeof path, "%s/manifest.toml", bundle);
    unlink(path);
    snprintf(path, sizeof path, "%s/libversioned.so", bundle);
    unlink(path);
    rmdir(bundle);
    rmdir(root);
    printf("c_call_race: %s\n", failures == 0 ? "all checks passed" : "FAILED");
    return failures == 0 ? 0 : 1;
}
