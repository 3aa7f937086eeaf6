// SPDX-License-Identifier: MIT
/// @file lua_module.cpp
/// libpolyplug-loader-lua.so through libpolyplug.so only, as a C host uses them: a runtime from
/// polyplug_runtime_create, the Lua loader added with register_loader, a Lua bundle loaded,
/// called and unloaded.
#include "../../catch.hpp"

#include <polyplug/abi.h>
#include <polyplug/call.h>
#include <polyplug/call_arena.h>
#include <polyplug/loaders/lua_module.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace {

const std::string calc_dir = std::string(POLYPLUG_LUA_BUNDLES) + "/calc";

std::string text(StringView view) {
    return view.len == 0 ? std::string()
                         : std::string(reinterpret_cast<const char*>(view.ptr), view.len);
}

}  // namespace

TEST_CASE("lua loader module - a C host registers it and calls a Lua bundle", "[lua]") {
    const HostApi* host = polyplug_runtime_create(nullptr);
    REQUIRE(host != nullptr);
    AbiError err{};
    BundleLoader* loader = polyplug_loader_lua_create();
    REQUIRE(loader != nullptr);
    CHECK(loader->language == SupportedLanguage_Lua);
    CHECK(text(loader->name) == "lua");
    host->register_loader(host, loader, &err);
    REQUIRE(err.code == AbiErrorCode_Ok);

    err = {};
    host->load_bundle(host, reinterpret_cast<const std::uint8_t*>(calc_dir.data()), calc_dir.size(),
                      &err);
    INFO(text(err.message));
    REQUIRE(err.code == AbiErrorCode_Ok);

    const char name[] = "example.calc";
    const std::uint64_t id = polyplug_guest_contract_id(name, std::strlen(name), 1);
    const GuestContractInterface* iface =
        host->resolve_guest_contract(host, host->find_guest_contract(host, id, 1));
    REQUIRE(iface != nullptr);
    GuestContractInstance instance{nullptr, 0};
    host->create_guest_instance(host, iface, nullptr, &instance);
    REQUIRE(instance.data != nullptr);

    const std::int32_t args[2] = {40, 2};
    std::int32_t sum = 0;
    err = polyplug_call_guest(iface, instance, 0, args, &sum, nullptr);
    REQUIRE(err.code == AbiErrorCode_Ok);
    CHECK(sum == 42);

    std::uint8_t storage[64];
    CallArena arena;
    polyplug_arena_init(&arena, storage, sizeof storage, host);
    StringView description{};
    err = polyplug_call_guest(iface, instance, 1, nullptr, &description, &arena);
    REQUIRE(err.code == AbiErrorCode_Ok);
    CHECK(text(description) == "Lua calc");
    polyplug_arena_free(&arena);

    host->destroy_guest_instance(host, iface, instance);
    const char bundle[] = "calc-lua";
    err = {};
    host->unload_bundle(host, polyplug_bundle_id(bundle, std::strlen(bundle)), &err);
    CHECK(err.code == AbiErrorCode_Ok);
    polyplug_runtime_destroy(host);
}
