/* SPDX-License-Identifier: MIT */
/* Fixture: test.add@1 (stateless, add(u32,u32)->u32 wrapping) and test.counter@1 (stateful). */
#include <polyplug/abi.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifndef FIXTURE_PLUGIN_NAME
#define FIXTURE_PLUGIN_NAME "test_adder"
#endif

typedef struct AddArgs {
    uint32_t a;
    uint32_t b;
} AddArgs;

/* One mapping of this library serves every runtime that loads it (glibc maps a path once), so
 * init may run on several threads at once: statics are filled once, and the per-load record is
 * written under a lock. */
static pthread_once_t g_tables_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static char g_bundle_path[1024];
static size_t g_bundle_path_len;
static uint64_t g_bundle_id;

static uint64_t add_id(void) {
    return polyplug_guest_contract_id("test.add", 8, 1);
}
static uint64_t counter_id(void) {
    return polyplug_guest_contract_id("test.counter", 12, 1);
}

static void add_create(VmLoaderData data, const HostApi* host, const void* args,
                       GuestContractInstance* out) {
    (void)data, (void)host, (void)args;
    out->data = NULL;
    out->contract_id = add_id();
}
static void add_destroy(VmLoaderData data, const HostApi* host, GuestContractInstance instance) {
    (void)data, (void)host, (void)instance;
}
static void add_fn(GuestContractInstance self, const void* args, void* out, AbiError* err) {
    (void)self;
    const AddArgs* in = (const AddArgs*)args;
    *(uint32_t*)out = in->a + in->b;
    err->code = AbiErrorCode_Ok;
}

static void counter_create(VmLoaderData data, const HostApi* host, const void* args,
                           GuestContractInstance* out) {
    (void)data, (void)host;
    uint64_t* value = (uint64_t*)malloc(sizeof(uint64_t));
    *value = args != NULL ? *(const uint64_t*)args : 0;
    out->data = value;
    out->contract_id = counter_id();
}
static void counter_destroy(VmLoaderData data, const HostApi* host,
                            GuestContractInstance instance) {
    (void)data, (void)host;
    free(instance.data);
}
static void counter_increment(GuestContractInstance self, const void* args, void* out,
                              AbiError* err) {
    (void)args;
    uint64_t* value = (uint64_t*)self.data;
    *(uint64_t*)out = ++*value;
    err->code = AbiErrorCode_Ok;
}

static const void* add_table[1];     /* filled by polyplug_init (POLYPLUG_FN_ENTRY) */
static const void* counter_table[1]; /* filled by polyplug_init (POLYPLUG_FN_ENTRY) */

POLYPLUG_PLUGIN_EXPORT uint32_t polyplug_abi_version(void) {
    return POLYPLUG_ABI_VERSION;
}

static void fill_tables(void) {
    add_table[0] = POLYPLUG_FN_ENTRY(&add_fn);
    counter_table[0] = POLYPLUG_FN_ENTRY(&counter_increment);
}

POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi* host, const BundleInitContext* ctx) {
    pthread_once(&g_tables_once, fill_tables);
    AbiError err = {AbiErrorCode_Ok, {NULL, 0}};
    pthread_mutex_lock(&g_mutex);
    g_bundle_id = ctx->bundle_id;
    g_bundle_path_len = ctx->bundle_path.len < sizeof g_bundle_path ? ctx->bundle_path.len : 0;
    memcpy(g_bundle_path, ctx->bundle_path.ptr, g_bundle_path_len);
    pthread_mutex_unlock(&g_mutex);

    GuestContractInterface add = {0};
    add.contract_id = add_id();
    add.contract_version = (Version){1, 0, 0};
    add.dispatch_type = DispatchType_Native;
    add.create_instance = add_create;
    add.destroy_instance = add_destroy;
    add.dispatch.native.function_count = 1;
    add.dispatch.native.functions = add_table;
    PluginDescriptor add_desc = {
        polyplug_sv(FIXTURE_PLUGIN_NAME), polyplug_sv("test.add"), {1, 0, 0}};
    host->register_guest_contract(host, &add_desc, &add, &err);
    if (err.code != AbiErrorCode_Ok) return err;

    GuestContractInterface counter = add;
    counter.contract_id = counter_id();
    counter.create_instance = counter_create;
    counter.destroy_instance = counter_destroy;
    counter.dispatch.native.functions = counter_table;
    PluginDescriptor counter_desc = {
        polyplug_sv(FIXTURE_PLUGIN_NAME), polyplug_sv("test.counter"), {1, 0, 0}};
    host->register_guest_contract(host, &counter_desc, &counter, &err);
    return err;
}

/* For tests: what init was given. */
POLYPLUG_PLUGIN_EXPORT size_t fixture_bundle_path(char* buf, size_t len) {
    pthread_mutex_lock(&g_mutex);
    if (len > g_bundle_path_len) len = g_bundle_path_len;
    memcpy(buf, g_bundle_path, len);
    const size_t full = g_bundle_path_len;
    pthread_mutex_unlock(&g_mutex);
    return full;
}
POLYPLUG_PLUGIN_EXPORT uint64_t fixture_bundle_id(void) {
    pthread_mutex_lock(&g_mutex);
    const uint64_t id = g_bundle_id;
    pthread_mutex_unlock(&g_mutex);
    return id;
}
