// SPDX-License-Identifier: MIT
/// @file python_loader_module.cpp
/// libpolyplug-loader-python.so through the C ABI only: a runtime from libpolyplug.so, the
/// Python loader registered at run time from polyplug_loader_python_create, a script bundle
/// loaded and called, unloaded, the runtime destroyed. Exit code 0 on success.
#include <polyplug/abi.h>
#include <polyplug/call.h>
#include <polyplug/ids.hpp>
#include <polyplug/loaders/python_module.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "FAILED: %s\n", what);
        ++failures;
    }
}

std::string last_error(const HostApi* host) {
    std::string text(host->get_error_len(host), '\0');
    text.resize(
        host->get_last_error(host, reinterpret_cast<std::uint8_t*>(text.data()), text.size()));
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s ISO_A_BUNDLE_DIR\n", argv[0]);
        return 2;
    }
    const HostApi* host = polyplug_runtime_create(nullptr);
    check(host != nullptr, "polyplug_runtime_create");
    if (host == nullptr) return 1;

    AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
    host->register_loader(host, polyplug_loader_python_create(), &err);
    check(err.code == AbiErrorCode_Ok, "register_loader(polyplug_loader_python_create())");

    const std::string dir = argv[1];
    host->load_bundle(host, reinterpret_cast<const std::uint8_t*>(dir.data()), dir.size(), &err);
    if (err.code != AbiErrorCode_Ok) std::fprintf(stderr, "%s\n", last_error(host).c_str());
    check(err.code == AbiErrorCode_Ok, "load_bundle(iso-a)");

    const std::uint64_t contract = polyplug::guest_contract_id("test.py.IsoA", 1);
    const GuestContractInterface* iface =
        host->resolve_guest_contract(host, host->find_guest_contract(host, contract, 1));
    check(iface != nullptr, "test.py.IsoA is registered");
    if (iface != nullptr) {
        check(iface->dispatch_type == DispatchType_VirtualMachine, "VM dispatch");
        GuestContractInstance instance{nullptr, 0};
        host->create_guest_instance(host, iface, nullptr, &instance);
        check(instance.data != nullptr, "create_guest_instance");
        std::uint32_t count = 0;
        for (int i = 0; i < 3; ++i)
            err = polyplug_call_guest(iface, instance, 1, nullptr, &count, nullptr);
        check(err.code == AbiErrorCode_Ok && count == 3, "bump() three times gives 3");
        StringView name{nullptr, 0};
        err = polyplug_call_guest(iface, instance, 0, nullptr, &name, nullptr);
        const std::string text(reinterpret_cast<const char*>(name.ptr), name.len);
        check(err.code == AbiErrorCode_Ok && text == "helper a in iso-a, counter 3",
              "name() through the module");
        // Without a CallArena, variable-size results come from HostApi.alloc.
        if (name.ptr != nullptr) host->free(host, const_cast<std::uint8_t*>(name.ptr), name.len, 1);
        host->destroy_guest_instance(host, iface, instance);
    }
    host->unload_bundle(host, polyplug::bundle_id("py-iso-a"), &err);
    check(err.code == AbiErrorCode_Ok, "unload_bundle");
    polyplug_runtime_destroy(host);
    if (failures == 0) std::printf("python loader module: ok\n");
    return failures == 0 ? 0 : 1;
}
