/* SPDX-License-Identifier: MIT */
/* Fixture: init registers test.partial@1, then fails with code 42 and a message. */
#include <polyplug/abi.h>

static void create(VmLoaderData d, const HostApi* h, const void* a, GuestContractInstance* out) {
    (void)d, (void)h, (void)a;
    out->data = NULL;
    out->contract_id = 0;
}
static void destroy(VmLoaderData d, const HostApi* h, GuestContractInstance i) {
    (void)d, (void)h, (void)i;
}
static void noop(GuestContractInstance s, const void* a, void* o, AbiError* e) {
    (void)s, (void)a, (void)o, (void)e;
}
static const void* table[1]; /* filled by polyplug_init (POLYPLUG_FN_ENTRY) */

POLYPLUG_PLUGIN_EXPORT uint32_t polyplug_abi_version(void) {
    return POLYPLUG_ABI_VERSION;
}

POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi* host, const BundleInitContext* ctx) {
    table[0] = POLYPLUG_FN_ENTRY(&noop);
    (void)ctx;
    GuestContractInterface iface = {0};
    iface.contract_id = polyplug_guest_contract_id("test.partial", 12, 1);
    iface.contract_version = (Version){1, 0, 0};
    iface.dispatch_type = DispatchType_Native;
    iface.create_instance = create;
    iface.destroy_instance = destroy;
    iface.dispatch.native.function_count = 1;
    iface.dispatch.native.functions = table;
    PluginDescriptor desc = {polyplug_sv("partial"), polyplug_sv("test.partial"), {1, 0, 0}};
    AbiError err = {0, {NULL, 0}};
    host->register_guest_contract(host, &desc, &iface, &err);
    AbiError failure = {42, polyplug_sv("deliberate failure after registering test.partial")};
    return err.code != AbiErrorCode_Ok ? err : failure;
}
