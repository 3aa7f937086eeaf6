/* SPDX-License-Identifier: MIT */
/* The C host side of the benchmarks (see c_host_bench.h). */
#include "c_host_bench.h"

#include <polyplug/abi.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct CHostBench {
    const HostApi* host;
    uint64_t contract_id;
    const GuestContractInterface* iface;
    GuestContractInstance instance;
    void* library;
    GuestContractFn raw;
    uint32_t (*plain)(uint32_t);
};

static void report_last_error(const HostApi* host, const char* what) {
    char message[512];
    const size_t n = host->get_last_error(host, (uint8_t*)message, sizeof message);
    fprintf(stderr, "c_host_bench: %s: %.*s\n", what, (int)n, message);
}

CHostBench* c_host_bench_open(const char* bundle_dir, const char* library_path) {
    CHostBench* bench = (CHostBench*)calloc(1, sizeof *bench);
    if (bench == NULL) return NULL;
    bench->host = polyplug_runtime_create(NULL);
    if (bench->host == NULL) {
        fprintf(stderr, "c_host_bench: polyplug_runtime_create failed\n");
        free(bench);
        return NULL;
    }
    const HostApi* host = bench->host;
    AbiError err = {AbiErrorCode_Ok, {NULL, 0}};
    host->load_bundle(host, (const uint8_t*)bundle_dir, strlen(bundle_dir), &err);
    if (err.code != AbiErrorCode_Ok) {
        report_last_error(host, "load_bundle");
        c_host_bench_close(bench);
        return NULL;
    }
    bench->contract_id = polyplug_guest_contract_id("bench.inc", 9, 1);
    bench->iface =
        host->resolve_guest_contract(host, host->find_guest_contract(host, bench->contract_id, 0));
    if (bench->iface == NULL) {
        report_last_error(host, "resolve_guest_contract");
        c_host_bench_close(bench);
        return NULL;
    }
    host->create_guest_instance(host, bench->iface, NULL, &bench->instance);

    bench->library = dlopen(library_path, RTLD_NOW | RTLD_LOCAL);
    if (bench->library == NULL) {
        fprintf(stderr, "c_host_bench: dlopen %s: %s\n", library_path, dlerror());
        c_host_bench_close(bench);
        return NULL;
    }
    /* ISO C has no cast from object to function pointers; memcpy is the portable spelling. */
    void* raw = dlsym(bench->library, "bench_inc");
    void* plain = dlsym(bench->library, "bench_inc_by_value");
    if (raw == NULL || plain == NULL) {
        fprintf(stderr, "c_host_bench: %s lacks bench_inc or bench_inc_by_value\n", library_path);
        c_host_bench_close(bench);
        return NULL;
    }
    memcpy(&bench->raw, &raw, sizeof raw);
    memcpy(&bench->plain, &plain, sizeof plain);
    return bench;
}

void c_host_bench_close(CHostBench* bench) {
    if (bench == NULL) return;
    if (bench->iface != NULL)
        bench->host->destroy_guest_instance(bench->host, bench->iface, bench->instance);
    if (bench->library != NULL) dlclose(bench->library);
    if (bench->host != NULL) polyplug_runtime_destroy(bench->host);
    free(bench);
}

/* The loops chain each result into the next call (counter = f(counter)), as the original's
 * counter_inc bench does: each call waits for the previous one, so this is per-call latency. */

uint32_t c_host_bench_table_calls(CHostBench* bench, uint64_t n) {
    const GuestContractInterface* iface = bench->iface;
    const GuestContractInstance instance = bench->instance;
    AbiError err = {AbiErrorCode_Ok, {NULL, 0}};
    uint32_t counter = 0;
    for (uint64_t i = 0; i < n; ++i) {
        const uint32_t in = counter;
        GuestContractFn fn;
        const void* entry = iface->dispatch.native.functions[0];
        memcpy(&fn, &entry, sizeof fn);
        fn(instance, &in, &counter, &err);
    }
    return counter + err.code;
}

uint32_t c_host_bench_raw_calls(CHostBench* bench, uint64_t n) {
    const GuestContractFn fn = bench->raw;
    const GuestContractInstance instance = bench->instance;
    AbiError err = {AbiErrorCode_Ok, {NULL, 0}};
    uint32_t counter = 0;
    for (uint64_t i = 0; i < n; ++i) {
        const uint32_t in = counter;
        fn(instance, &in, &counter, &err);
    }
    return counter + err.code;
}

uint32_t c_host_bench_plain_calls(CHostBench* bench, uint64_t n) {
    uint32_t (*const fn)(uint32_t) = bench->plain;
    uint32_t counter = 0;
    for (uint64_t i = 0; i < n; ++i) counter = fn(counter);
    return counter;
}

uint64_t c_host_bench_finds(CHostBench* bench, uint64_t n) {
    const HostApi* host = bench->host;
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; ++i)
        sum += host->find_guest_contract(host, bench->contract_id, 0).generation;
    return sum;
}

uint64_t c_host_bench_find_resolves(CHostBench* bench, uint64_t n) {
    const HostApi* host = bench->host;
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; ++i) {
        const GuestContractHandle handle = host->find_guest_contract(host, bench->contract_id, 0);
        sum += (uint64_t)(uintptr_t)host->resolve_guest_contract(host, handle);
    }
    return sum;
}

uint64_t c_host_bench_find_alls(CHostBench* bench, uint64_t n) {
    const HostApi* host = bench->host;
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; ++i) {
        ArrayOf_GuestContractHandle all =
            host->find_all_guest_contracts(host, bench->contract_id, 0);
        sum += all.len;
        host->free(host, (uint8_t*)all.items, all.len * sizeof(GuestContractHandle), all.align);
    }
    return sum;
}
