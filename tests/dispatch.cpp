// SPDX-License-Identifier: MIT
/// @file dispatch.cpp
/// Calling through tables from C++: function_cast, guest_function, call (native and VM).
#include "catch.hpp"
#include "support.hpp"

#include <polyplug/dispatch.hpp>

using namespace test_support;

namespace {

struct vm_probe {
    std::uint32_t fn_id = 99;
    CallArena* arena = nullptr;
};

void fake_vm_call(VmLoaderData data, GuestContractInstance, std::uint32_t fn_id, const void*,
                  void* out, CallArena* arena, AbiError* err) {
    auto* probe = static_cast<vm_probe*>(data.data);
    probe->fn_id = fn_id;
    probe->arena = arena;
    *static_cast<std::uint32_t*>(out) = 100 + fn_id;
    err->code = fn_id == 3 ? 300u : std::uint32_t{AbiErrorCode_Ok};
}

}  // namespace

TEST_CASE("dispatch - native: guest_function and call with range check", "[dispatch]") {
    const GuestContractInterface iface = seven_interface("test.dispatch");
    REQUIRE(polyplug::guest_function(iface, 0) == &return_seven);
    CHECK(polyplug::guest_function(iface, 1) == nullptr);

    std::uint32_t out = 0;
    AbiError err = polyplug::call(iface, {nullptr, 0}, 0, nullptr, &out);
    CHECK(err.code == AbiErrorCode_Ok);
    CHECK(out == 7);

    out = 0;
    err = polyplug::call(iface, {nullptr, 0}, 1, nullptr, &out);
    CHECK(err.code == AbiErrorCode_FunctionNotAvailable);
    CHECK(out == 0);
}

TEST_CASE("dispatch - VM: call forwards loader data, fn id and arena", "[dispatch]") {
    vm_probe probe;
    GuestContractInterface iface = seven_interface("test.vm");
    iface.dispatch_type = DispatchType_VirtualMachine;
    iface.dispatch.vm = {&fake_vm_call, {&probe}};
    CHECK(polyplug::guest_function(iface, 0) == nullptr);

    CallArena arena{};
    std::uint32_t out = 0;
    AbiError err = polyplug::call(iface, {nullptr, 0}, 2, nullptr, &out, &arena);
    CHECK(err.code == AbiErrorCode_Ok);
    CHECK(out == 102);
    CHECK(probe.fn_id == 2);
    CHECK(probe.arena == &arena);

    err = polyplug::call(iface, {nullptr, 0}, 3, nullptr, &out);
    CHECK(err.code == 300u);  // plugin-defined codes pass through untouched
    CHECK(probe.arena == nullptr);
}
