// SPDX-License-Identifier: MIT
/// @file js_loader_module.cpp
/// libpolyplug-loader-js.so as a C host uses it: a runtime from the C shim
/// (polyplug_runtime_create), the loader registered with HostApi.register_loader, then a script
/// bundle loaded and called through the C ABI only.
#include "../../catch.hpp"

#include <polyplug/abi.h>
#include <polyplug/call.h>
#include <polyplug/call_arena.h>
#include <polyplug/ids.hpp>
#include <polyplug/loaders/js_module.h>

#include <cstdint>
#include <string>

namespace {

const std::string bundles_dir = POLYPLUG_JS_BUNDLES;

std::string text_of(StringView v) {
    return std::string(reinterpret_cast<const char*>(v.ptr), v.len);
}

struct two_i32 {
    std::int32_t a;
    std::int32_t b;
};

}  // namespace

TEST_CASE("js loader module - registered into a C shim runtime, loads and calls a bundle", "[js]") {
    const HostApi* host = polyplug_runtime_create(nullptr);
    REQUIRE(host != nullptr);

    BundleLoader* loader = polyplug_loader_js_create();
    REQUIRE(loader != nullptr);
    CHECK(text_of(loader->name) == "js");
    CHECK(loader->language == SupportedLanguage_JavaScript);
    AbiError err{};
    host->register_loader(host, loader, &err);
    REQUIRE(err.code == AbiErrorCode_Ok);

    const std::string calc = bundles_dir + "/calc";
    host->load_bundle(host, reinterpret_cast<const std::uint8_t*>(calc.data()), calc.size(), &err);
    INFO(text_of(err.message));
    REQUIRE(err.code == AbiErrorCode_Ok);

    const std::uint64_t id = polyplug::guest_contract_id("test.js.Calc", 1);
    const GuestContractInterface* iface =
        host->resolve_guest_contract(host, host->find_guest_contract(host, id, 1));
    REQUIRE(iface != nullptr);
    CHECK(iface->dispatch_type == DispatchType_VirtualMachine);
    GuestContractInstance instance{nullptr, 0};
    host->create_guest_instance(host, iface, nullptr, &instance);
    REQUIRE(instance.data != nullptr);

    std::uint8_t storage[256];
    CallArena arena;
    polyplug_arena_init(&arena, storage, sizeof storage, host);
    const two_i32 args{40, 2};
    std::int32_t sum = 0;
    err = polyplug_call_guest(iface, instance, 0, &args, &sum, &arena);
    CHECK(err.code == AbiErrorCode_Ok);
    CHECK(sum == 42);
    StringView text{};
    err = polyplug_call_guest(iface, instance, 1, nullptr, &text, &arena);
    CHECK(err.code == AbiErrorCode_Ok);
    CHECK(text_of(text) == "JS calc (calc)");
    polyplug_arena_free(&arena);

    host->destroy_guest_instance(host, iface, instance);
    host->unload_bundle(host, polyplug::bundle_id("js-calc"), &err);
    CHECK(err.code == AbiErrorCode_Ok);
    polyplug_runtime_destroy(host);
}
