// SPDX-License-Identifier: MIT
// A native plugin in C++: example.calc@1, with every exception turned into AbiError{Panic}.
#include "example_calc.h"

#include <polyplug/abi.h>
#include <polyplug/ids.hpp>  // constexpr ids only: no Boost, no toml++, nothing to link

#include <cstdint>
#include <string_view>

namespace {

// The header's constant must be the real id; checked at compile time.
static_assert(EXAMPLE_CALC_CONTRACT_ID ==
                  polyplug::guest_contract_id(EXAMPLE_CALC_NAME, EXAMPLE_CALC_VERSION_MAJOR),
              "EXAMPLE_CALC_CONTRACT_ID does not match guest_contract_id(\"example.calc\", 1)");

constexpr std::string_view description = "C++ calc";

void set_error(AbiError* out_err, std::uint32_t code, std::string_view static_message) noexcept {
    out_err->code = code;
    out_err->message = {reinterpret_cast<const std::uint8_t*>(static_message.data()),
                        static_message.size()};
}

// The pattern: run the body, turn any exception into a Panic error. Messages must outlive the
// call, so they are static strings (an exception's what() dies with the exception). `noexcept`
// makes an escape impossible: anything that got past the catch would terminate, not unwind.
template <class Body>
void guarded(AbiError* out_err, std::string_view panic_message, Body&& body) noexcept {
    try {
        body();
        set_error(out_err, AbiErrorCode_Ok, {});
    } catch (...) {
        set_error(out_err, AbiErrorCode_Panic, panic_message);
    }
}

void calc_create(VmLoaderData, const HostApi*, const void*,
                 GuestContractInstance* out_instance) noexcept {
    *out_instance = {nullptr, EXAMPLE_CALC_CONTRACT_ID};  // stateless
}

void calc_destroy(VmLoaderData, const HostApi*, GuestContractInstance) noexcept {}

void calc_add(GuestContractInstance, const void* args, void* out, AbiError* out_err) noexcept {
    if (args == nullptr || out == nullptr) {
        set_error(out_err, AbiErrorCode_InvalidPointer, "cpp-calc add: args and out must be set");
        return;
    }
    guarded(out_err, "cpp-calc add: exception caught", [&] {
        const auto& in = *static_cast<const ExampleCalcAddArgs*>(args);
        // Wrapping add: unsigned arithmetic wraps; converting back is modular since C++20.
        *static_cast<std::int32_t*>(out) = static_cast<std::int32_t>(
            static_cast<std::uint32_t>(in.a) + static_cast<std::uint32_t>(in.b));
    });
}

void calc_describe(GuestContractInstance, const void*, void* out, AbiError* out_err) noexcept {
    if (out == nullptr) {
        set_error(out_err, AbiErrorCode_InvalidPointer, "cpp-calc describe: out must be set");
        return;
    }
    guarded(out_err, "cpp-calc describe: exception caught", [&] {
        *static_cast<StringView*>(out) = {reinterpret_cast<const std::uint8_t*>(description.data()),
                                          description.size()};
    });
}

// Indexed by function id. Function-to-object pointer casts are conditionally supported in C++
// and fine on every platform polyplug targets.
const void* const functions[EXAMPLE_CALC_FUNCTION_COUNT] = {
    reinterpret_cast<const void*>(&calc_add),
    reinterpret_cast<const void*>(&calc_describe),
};

const GuestContractInterface calc_interface = [] {
    GuestContractInterface iface{};
    iface.contract_id = EXAMPLE_CALC_CONTRACT_ID;
    iface.contract_version = {EXAMPLE_CALC_VERSION_MAJOR, EXAMPLE_CALC_VERSION_MINOR,
                              EXAMPLE_CALC_VERSION_PATCH};
    iface.dispatch_type = DispatchType_Native;
    iface.create_instance = &calc_create;
    iface.destroy_instance = &calc_destroy;
    iface.dispatch.native = {EXAMPLE_CALC_FUNCTION_COUNT, functions};
    return iface;
}();

}  // namespace

// The entry points match abi.h's declarations exactly (C linkage, no noexcept); neither throws.
extern "C" POLYPLUG_PLUGIN_EXPORT std::uint32_t polyplug_abi_version() {
    return POLYPLUG_ABI_VERSION;
}

extern "C" POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi* host,
                                                         const BundleInitContext*) {
    AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
    const PluginDescriptor descriptor{
        polyplug_sv("cpp-calc"), polyplug_sv(EXAMPLE_CALC_NAME), {1, 0, 0}};
    host->register_guest_contract(host, &descriptor, &calc_interface, &err);
    return err;
}
