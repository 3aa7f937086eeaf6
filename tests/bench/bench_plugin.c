/* SPDX-License-Identifier: MIT */
/* The benchmark plugin: bench.inc@1 with fn 0 `inc` (u32 in -> u32 out) and fn 1 `fill` (a
 * payload of N bytes). The same functions are exported by name, so a raw dlsym pointer and the
 * runtime's table reach exactly the same code; `bench_inc_by_value` is the plain C signature the
 * original's raw-FFI arm used. */
#include "payload_fill.h"

#include <polyplug/abi.h>

#include <pthread.h>

static uint64_t inc_contract_id(void) {
    return polyplug_guest_contract_id("bench.inc", 9, 1);
}

POLYPLUG_PLUGIN_EXPORT void bench_inc(GuestContractInstance self, const void* args, void* out,
                                      AbiError* err) {
    (void)self;
    *(uint32_t*)out = *(const uint32_t*)args + 1u;
    err->code = AbiErrorCode_Ok;
}

POLYPLUG_PLUGIN_EXPORT uint32_t bench_inc_by_value(uint32_t value) {
    return value + 1u;
}

POLYPLUG_PLUGIN_EXPORT void bench_fill(GuestContractInstance self, const void* args, void* out,
                                       AbiError* err) {
    (void)self;
    const BenchFillArgs* fill = (const BenchFillArgs*)args;
    *(uint8_t*)out = bench_fill_loop(fill->buffer, fill->len, fill->seed);
    err->code = AbiErrorCode_Ok;
}

static void create(VmLoaderData data, const HostApi* host, const void* args,
                   GuestContractInstance* out) {
    (void)data, (void)host, (void)args;
    out->data = NULL;
    out->contract_id = inc_contract_id();
}

static void destroy(VmLoaderData data, const HostApi* host, GuestContractInstance instance) {
    (void)data, (void)host, (void)instance;
}

/* One mapping serves every runtime that loads this file, possibly on several threads at once:
 * the table is filled once. */
static pthread_once_t g_table_once = PTHREAD_ONCE_INIT;
static const void* g_table[2];
static void fill_table(void) {
    g_table[0] = POLYPLUG_FN_ENTRY(&bench_inc);
    g_table[1] = POLYPLUG_FN_ENTRY(&bench_fill);
}

POLYPLUG_PLUGIN_EXPORT uint32_t polyplug_abi_version(void) {
    return POLYPLUG_ABI_VERSION;
}

POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi* host, const BundleInitContext* ctx) {
    (void)ctx;
    pthread_once(&g_table_once, fill_table);
    GuestContractInterface iface = {0};
    iface.contract_id = inc_contract_id();
    iface.contract_version = (Version){1, 0, 0};
    iface.dispatch_type = DispatchType_Native;
    iface.create_instance = create;
    iface.destroy_instance = destroy;
    iface.dispatch.native.function_count = 2;
    iface.dispatch.native.functions = g_table;
    PluginDescriptor descriptor = {polyplug_sv("bench"), polyplug_sv("bench.inc"), {1, 0, 0}};
    AbiError err = {AbiErrorCode_Ok, {NULL, 0}};
    host->register_guest_contract(host, &descriptor, &iface, &err);
    return err;
}
