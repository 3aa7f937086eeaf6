/* SPDX-License-Identifier: MIT */
/* Fixture for hot reload: test.version@1 fn0 returns VERSION_VALUE (100 in v1, 200 in v2).
 * v1 also provides test.legacy@1 (gone in v2); v2 provides test.extra@1 (new in v2). */
#include <polyplug/abi.h>

#include <pthread.h>

#ifndef VERSION_VALUE
#error "build with -DVERSION_VALUE=100 or 200"
#endif

static void create(VmLoaderData d, const HostApi* h, const void* a, GuestContractInstance* out) {
    (void)d, (void)h, (void)a;
    out->data = NULL;
    out->contract_id = polyplug_guest_contract_id("test.version", 12, 1);
}
static void destroy(VmLoaderData d, const HostApi* h, GuestContractInstance i) {
    (void)d, (void)h, (void)i;
}
static void value(GuestContractInstance s, const void* a, void* out, AbiError* e) {
    (void)s, (void)a;
    *(uint32_t*)out = VERSION_VALUE;
    e->code = AbiErrorCode_Ok;
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static const void* table[1]; /* filled once (POLYPLUG_FN_ENTRY) */
static void fill(void) {
    table[0] = POLYPLUG_FN_ENTRY(&value);
}

static AbiError register_one(const HostApi* host, const char* name, size_t len) {
    GuestContractInterface iface = {0};
    iface.contract_id = polyplug_guest_contract_id(name, len, 1);
    iface.contract_version = (Version){1, VERSION_VALUE / 100, 0};
    iface.dispatch_type = DispatchType_Native;
    iface.create_instance = create;
    iface.destroy_instance = destroy;
    iface.dispatch.native.function_count = 1;
    iface.dispatch.native.functions = table;
    PluginDescriptor desc = {polyplug_sv("versioned"), {(const uint8_t*)name, len}, {1, 0, 0}};
    AbiError err = {0, {NULL, 0}};
    host->register_guest_contract(host, &desc, &iface, &err);
    return err;
}

POLYPLUG_PLUGIN_EXPORT uint32_t polyplug_abi_version(void) {
    return POLYPLUG_ABI_VERSION;
}

POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi* host, const BundleInitContext* ctx) {
    (void)ctx;
    pthread_once(&g_once, fill);
    AbiError err = register_one(host, "test.version", 12);
    if (err.code != AbiErrorCode_Ok) return err;
#if VERSION_VALUE == 100
    return register_one(host, "test.legacy", 11);
#else
    return register_one(host, "test.extra", 10);
#endif
}
