/* SPDX-License-Identifier: MIT */
/* Fixture: declares a dependency on test.add@1 (manifest) and probes lookups during init:
 * a declared contract, an undeclared one, find_all of both, and get_dependencies. */
#include <polyplug/abi.h>

static int g_declared_found = -1, g_undeclared_found = -1;
static size_t g_declared_all = 99, g_undeclared_all = 99, g_dependency_count = 99;
static uint64_t g_dependency_contract;
static uint32_t g_dependency_min;

static void create(VmLoaderData d, const HostApi* h, const void* a, GuestContractInstance* out) {
    (void)d, (void)h, (void)a;
    out->data = NULL;
    out->contract_id = polyplug_guest_contract_id("test.depender", 13, 1);
}
static void destroy(VmLoaderData d, const HostApi* h, GuestContractInstance i) {
    (void)d, (void)h, (void)i;
}
static void answer(GuestContractInstance s, const void* a, void* o, AbiError* e) {
    (void)s, (void)a;
    *(uint32_t*)o = 7;
    e->code = 0;
}
static const void* table[1]; /* filled by polyplug_init (POLYPLUG_FN_ENTRY) */

POLYPLUG_PLUGIN_EXPORT uint32_t polyplug_abi_version(void) {
    return POLYPLUG_ABI_VERSION;
}

POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi* host, const BundleInitContext* ctx) {
    table[0] = POLYPLUG_FN_ENTRY(&answer);
    (void)ctx;
    const uint64_t add = polyplug_guest_contract_id("test.add", 8, 1);
    const uint64_t counter = polyplug_guest_contract_id("test.counter", 12, 1);
    g_declared_found = !polyplug_handle_is_null(host->find_guest_contract(host, add, 0));
    g_undeclared_found = !polyplug_handle_is_null(host->find_guest_contract(host, counter, 0));
    ArrayOf_GuestContractHandle all = host->find_all_guest_contracts(host, add, 0);
    g_declared_all = all.len;
    host->free(host, (uint8_t*)all.items, all.len * sizeof(GuestContractHandle), all.align);
    all = host->find_all_guest_contracts(host, counter, 0);
    g_undeclared_all = all.len;
    host->free(host, (uint8_t*)all.items, all.len * sizeof(GuestContractHandle), all.align);
    ArrayOf_DependencyInfo deps = host->get_dependencies(host);
    g_dependency_count = deps.len;
    if (deps.len > 0) {
        g_dependency_contract = deps.items[0].contract_id;
        g_dependency_min = deps.items[0].min_version;
    }
    host->free(host, (uint8_t*)deps.items, deps.len * sizeof(DependencyInfo), deps.align);

    GuestContractInterface iface = {0};
    iface.contract_id = polyplug_guest_contract_id("test.depender", 13, 1);
    iface.contract_version = (Version){1, 0, 0};
    iface.dispatch_type = DispatchType_Native;
    iface.create_instance = create;
    iface.destroy_instance = destroy;
    iface.dispatch.native.function_count = 1;
    iface.dispatch.native.functions = table;
    PluginDescriptor desc = {polyplug_sv("depender"), polyplug_sv("test.depender"), {1, 0, 0}};
    AbiError err = {0, {NULL, 0}};
    host->register_guest_contract(host, &desc, &iface, &err);
    return err;
}

/* For tests: what the init-time probes saw. */
POLYPLUG_PLUGIN_EXPORT void fixture_probes(int* declared, int* undeclared, size_t* declared_all,
                                           size_t* undeclared_all, size_t* dependency_count,
                                           uint64_t* dependency_contract,
                                           uint32_t* dependency_min) {
    *declared = g_declared_found;
    *undeclared = g_undeclared_found;
    *declared_all = g_declared_all;
    *undeclared_all = g_undeclared_all;
    *dependency_count = g_dependency_count;
    *dependency_contract = g_dependency_contract;
    *dependency_min = g_dependency_min;
}
