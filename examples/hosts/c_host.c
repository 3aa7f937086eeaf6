/* SPDX-License-Identifier: MIT */
/* A C11 host on libpolyplug.so alone: the HostApi table, AbiError checks and last_error,
 * discovery through the built-in host.polyplug.Runtime@1 contract, and calls through the typed
 * helpers of the generated example_calc.h. */
#include "example_calc.h"

#include <polyplug/abi.h>
#include <polyplug/runtime_contract.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints and clears the runtime's last error; get_error_len sizes the buffer. */
static void print_last_error(const HostApi* host, const char* what) {
    size_t len = host->get_error_len(host);
    char* text = (char*)malloc(len + 1);
    if (text == NULL) return;
    len = host->get_last_error(host, (uint8_t*)text, len); /* copies and clears */
    fprintf(stderr, "%s: %.*s\n", what, (int)len, text);
    free(text);
}

/* Creates an instance, calls add and describe, prints one line; returns 0 if all went well. */
static int call_provider(const HostApi* host, GuestContractHandle handle) {
    const GuestContractInterface* iface = host->resolve_guest_contract(host, handle);
    if (iface == NULL) {
        print_last_error(host, "resolve_guest_contract");
        return 1;
    }
    GuestContractInstance instance = {NULL, 0};
    host->create_guest_instance(host, iface, NULL, &instance);
    if (instance.contract_id != example_calc_contract_id()) {
        print_last_error(host, "create_guest_instance");
        return 1;
    }
    /* Typed helpers from example_calc.h, which `polyplug generate --lang c` writes from
     * contracts/example_calc.api.toml: they fill the argument struct, check the table and call. */
    int32_t sum = 0;
    StringView text = {NULL, 0};
    const AbiError add_err = example_calc_add(iface, instance, 2, 40, &sum);
    const AbiError describe_err = example_calc_describe(iface, instance, &text);
    host->destroy_guest_instance(host, iface, instance);

    printf("provider #%u: add(2, 40) = %d, describe() = \"%.*s\"\n", (unsigned)handle.index,
           (int)sum, (int)text.len, text.ptr != NULL ? (const char*)text.ptr : "");
    if (add_err.code != AbiErrorCode_Ok || describe_err.code != AbiErrorCode_Ok) {
        fprintf(stderr, "call failed: add code %u, describe code %u\n", (unsigned)add_err.code,
                (unsigned)describe_err.code);
        return 1;
    }
    return sum == 42 && text.len > 0 ? 0 : 1;
}

/* How many loaded bundles registered example.calc (BundleInfo of each id from list_bundles). */
static size_t count_calc_bundles(const HostApi* host, const HostContractInterface* runtime_contract,
                                 HostContractInstance runtime_self) {
    size_t count = 0;
    ArrayOf_BundleId ids = host->list_bundles(host);
    for (size_t i = 0; i < ids.len; ++i) {
        const PolyplugBundleInfoArgs args = {ids.items[i]};
        PolyplugBundleInfo info;
        AbiError err = {AbiErrorCode_Ok, {NULL, 0}};
        polyplug_runtime_fn(runtime_contract, PolyplugRuntimeFn_BundleInfo)(runtime_self, &args,
                                                                            &info, &err);
        if (err.code != AbiErrorCode_Ok) continue;
        for (size_t c = 0; c < info.contracts.len; ++c)
            if (info.contracts.items[c] == example_calc_contract_id()) ++count;
        polyplug_bundle_info_free(host, &info);
    }
    if (ids.items != NULL)
        host->free(host, (uint8_t*)ids.items, ids.len * sizeof(BundleId), ids.align);
    return count;
}

int main(int argc, char** argv) {
    const HostApi* host = polyplug_runtime_create(NULL); /* NULL config: defaults */
    if (host == NULL) {
        fprintf(stderr, "polyplug_runtime_create failed\n");
        return 1;
    }
    int failures = 0;

    /* The error path: a failed load returns a code; the message explaining it is in last_error. */
    const char* missing = "/nonexistent/polyplug-example-bundle";
    AbiError err = {AbiErrorCode_Ok, {NULL, 0}};
    host->load_bundle(host, (const uint8_t*)missing, strlen(missing), &err);
    if (err.code == AbiErrorCode_Ok) {
        fprintf(stderr, "loading %s unexpectedly succeeded\n", missing);
        ++failures;
    } else {
        printf("expected failure (code %u) loading %s; last_error follows on stderr\n",
               (unsigned)err.code, missing);
        print_last_error(host, "load_bundle");
    }

    /* Discovery: the frozen HostApi has no directory scan, so C hosts use the built-in
     * host.polyplug.Runtime@1 contract (a singleton the runtime owns: never destroy it). */
    const HostContractInterface* runtime_contract =
        host->resolve_host_contract_interface(host, POLYPLUG_RUNTIME_CONTRACT_ID, 0);
    const HostContractInstance runtime_self =
        host->get_host_contract(host, POLYPLUG_RUNTIME_CONTRACT_ID, 0);
    StringView dirs[16];
    size_t dir_count = 0;
    for (int i = 1; i < argc && dir_count < 16; ++i) dirs[dir_count++] = polyplug_sv(argv[i]);
    const PolyplugLoadDirsArgs load_args = {dirs, dir_count};
    PolyplugLoadDirsResult loaded = {0, 0, {NULL, 0, 0}};
    err = (AbiError){AbiErrorCode_Ok, {NULL, 0}};
    polyplug_runtime_fn(runtime_contract, PolyplugRuntimeFn_LoadDirs)(runtime_self, &load_args,
                                                                      &loaded, &err);
    if (err.code != AbiErrorCode_Ok) {
        print_last_error(host, "load_dirs");
        ++failures;
    }
    printf("discovered and loaded %u bundle(s), skipped %u\n", (unsigned)loaded.loaded,
           (unsigned)loaded.skipped);
    if (loaded.skipped != 0) {
        fprintf(stderr, "%.*s", (int)loaded.diagnostics.len, (const char*)loaded.diagnostics.ptr);
        ++failures;
    }
    host->free(host, loaded.diagnostics.ptr, loaded.diagnostics.cap, 1);

    /* Every provider, in registration order; the array is ours to free with host->free. */
    ArrayOf_GuestContractHandle providers = host->find_all_guest_contracts(
        host, example_calc_contract_id(), EXAMPLE_CALC_VERSION_MAJOR);
    for (size_t i = 0; i < providers.len; ++i) failures += call_provider(host, providers.items[i]);
    /* Every loaded bundle that registered example.calc must have been found (BundleInfo lists
     * what each bundle registered; cpp-counter, the stateful example, provides another one). */
    const size_t calc_bundles = count_calc_bundles(host, runtime_contract, runtime_self);
    if (providers.len == 0 || providers.len != calc_bundles) {
        fprintf(stderr, "expected %zu providers, found %zu\n", calc_bundles, providers.len);
        ++failures;
    }
    if (providers.items != NULL)
        host->free(host, (uint8_t*)providers.items, providers.len * sizeof(GuestContractHandle),
                   providers.align);

    /* Unload what is loaded (list_bundles returns another caller-frees array), then destroy. */
    ArrayOf_BundleId bundles = host->list_bundles(host);
    for (size_t i = 0; i < bundles.len; ++i) {
        err = (AbiError){AbiErrorCode_Ok, {NULL, 0}};
        host->unload_bundle(host, bundles.items[i], &err);
        if (err.code != AbiErrorCode_Ok) {
            print_last_error(host, "unload_bundle");
            ++failures;
        }
    }
    if (bundles.items != NULL)
        host->free(host, (uint8_t*)bundles.items, bundles.len * sizeof(BundleId), bundles.align);
    polyplug_runtime_destroy(host);

    printf("%zu providers called, %d failures\n", providers.len, failures);
    return failures == 0 ? 0 : 1;
}
