/* SPDX-License-Identifier: MIT */
/* A C11 program driving libpolyplug.so end to end: create, load a native bundle, find,
 * resolve, create an instance, call, read an error, unload, destroy. argv[1] = bundle dir. */
#include <polyplug/abi.h>

#include <stdio.h>
#include <string.h>

static int failures = 0;
#define EXPECT(cond)                                                                  \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "c_host: %s:%d: FAILED %s\n", __FILE__, __LINE__, #cond); \
            ++failures;                                                               \
        }                                                                             \
    } while (0)

typedef struct AddArgs {
    uint32_t a, b;
} AddArgs;

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: c_host BUNDLE_DIR\n");
        return 2;
    }
    const HostApi* host = polyplug_runtime_create(NULL);
    EXPECT(host != NULL);
    if (host == NULL) return 1;

    AbiError err = {0, {NULL, 0}};
    host->load_bundle(host, (const uint8_t*)argv[1], strlen(argv[1]), &err);
    EXPECT(err.code == AbiErrorCode_Ok);

    const uint64_t add_id = polyplug_guest_contract_id("test.add", 8, 1);
    GuestContractHandle handle = host->find_guest_contract(host, add_id, 0);
    EXPECT(!polyplug_handle_is_null(handle));
    const GuestContractInterface* iface = host->resolve_guest_contract(host, handle);
    EXPECT(iface != NULL);
    if (iface != NULL) {
        GuestContractInstance instance = {NULL, 0};
        host->create_guest_instance(host, iface, NULL, &instance);
        EXPECT(instance.contract_id == add_id);
        AddArgs args = {40, 2};
        uint32_t out = 0;
        err.code = AbiErrorCode_Ok;
        GuestContractFn add = (GuestContractFn)(uintptr_t)iface->dispatch.native.functions[0];
        add(instance, &args, &out, &err);
        EXPECT(err.code == AbiErrorCode_Ok);
        EXPECT(out == 42);
        host->destroy_guest_instance(host, iface, instance);
    }

    /* An error: a missing bundle gives Generic and a message in last_error. */
    host->load_bundle(host, (const uint8_t*)"/no/such/bundle", 15, &err);
    EXPECT(err.code == AbiErrorCode_Generic);
    char message[512];
    size_t len = host->get_error_len(host);
    EXPECT(len > 0 && len < sizeof message);
    size_t got = host->get_last_error(host, (uint8_t*)message, sizeof message);
    EXPECT(got == len);
    EXPECT(strstr(message, "/no/such/bundle") != NULL);
    EXPECT(host->get_error_len(host) == 0);

    ArrayOf_BundleId ids = host->list_bundles(host);
    EXPECT(ids.len == 1);
    if (ids.len == 1) {
        EXPECT(ids.items[0] == polyplug_bundle_id("adder", 5));
        host->unload_bundle(host, ids.items[0], &err);
        EXPECT(err.code == AbiErrorCode_Ok);
    }
    host->free(host, (uint8_t*)ids.items, ids.len * sizeof(BundleId), ids.align);
    EXPECT(host->resolve_guest_contract(host, handle) == NULL);

    polyplug_runtime_destroy(host);
    printf("c_host: %s\n", failures == 0 ? "all checks passed" : "FAILED");
    return failures == 0 ? 0 : 1;
}
