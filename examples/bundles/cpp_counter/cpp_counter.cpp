// SPDX-License-Identifier: MIT
// A stateful native plugin in C++: example.counter@1, whose count survives hot reloads. Each
// version offers its state through host.polyplug.StateHandover@1 (polyplug/state_handover.hpp):
// on reload the old version saves the count, the new one restores it before it goes live.
//
// Built twice from this file: version 1, and version 2 (-DCOUNTER_V2), which the demo swaps in.
// Version 1 saves schema 1 (the count as 8 little-endian bytes); version 2 saves schema 2 (the
// count as decimal text) and still restores schema 1, so it migrates a version 1's state.
#include "example_counter.h"

#include <polyplug/ids.hpp>  // constexpr ids only
#include <polyplug/state_handover.hpp>

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

static_assert(EXAMPLE_COUNTER_CONTRACT_ID ==
              polyplug::guest_contract_id(EXAMPLE_COUNTER_NAME, EXAMPLE_COUNTER_VERSION_MAJOR));

#ifdef COUNTER_V2
constexpr std::uint32_t schema = 2;
constexpr std::string_view description = "C++ counter, version 2";
#else
constexpr std::uint32_t schema = 1;
constexpr std::string_view description = "C++ counter, version 1";
#endif

// The whole state of the plugin, with how it is saved and restored.
struct counter_state {
    std::uint64_t count = 0;

#ifdef COUNTER_V2
    std::string save() const {
        return std::to_string(count);
    }
#else
    std::vector<std::uint8_t> save() const {
        std::vector<std::uint8_t> bytes(8);
        for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::uint8_t>(count >> (8 * i));
        return bytes;
    }
#endif

    // Called on the new version, before it serves, with what the old version saved. Throwing
    // refuses: the reload fails and the old version keeps serving with its count.
    void restore(std::uint32_t saved_schema, std::span<const std::uint8_t> bytes) {
        if (saved_schema == 1 && bytes.size() == 8) {
            count = 0;
            for (int i = 0; i < 8; ++i) count |= std::uint64_t{bytes[i]} << (8 * i);
            return;
        }
#ifdef COUNTER_V2
        if (saved_schema == 2 && !bytes.empty() && bytes.size() <= 20) {
            count = std::stoull(std::string(bytes.begin(), bytes.end()));
            return;
        }
#endif
        throw std::runtime_error("cpp-counter: cannot restore state of schema " +
                                 std::to_string(saved_schema));
    }
};

counter_state state;
polyplug::state_handover<counter_state> handover(state, schema);

void set_ok(AbiError* out_err) noexcept {
    *out_err = {AbiErrorCode_Ok, {nullptr, 0}};
}

void counter_create(VmLoaderData, const HostApi*, const void*,
                    GuestContractInstance* out) noexcept {
    *out = {nullptr, EXAMPLE_COUNTER_CONTRACT_ID};  // one counter per bundle: no per-instance data
}
void counter_destroy(VmLoaderData, const HostApi*, GuestContractInstance) noexcept {}

void counter_increment(GuestContractInstance, const void*, void* out, AbiError* out_err) noexcept {
    if (out == nullptr) {
        *out_err = {AbiErrorCode_InvalidPointer, polyplug_sv("cpp-counter: out must be set")};
        return;
    }
    *static_cast<std::uint64_t*>(out) = ++state.count;
    set_ok(out_err);
}

void counter_describe(GuestContractInstance, const void*, void* out, AbiError* out_err) noexcept {
    if (out == nullptr) {
        *out_err = {AbiErrorCode_InvalidPointer, polyplug_sv("cpp-counter: out must be set")};
        return;
    }
    *static_cast<StringView*>(out) = {reinterpret_cast<const std::uint8_t*>(description.data()),
                                      description.size()};
    set_ok(out_err);
}

const void* const functions[EXAMPLE_COUNTER_FUNCTION_COUNT] = {
    reinterpret_cast<const void*>(&counter_increment),
    reinterpret_cast<const void*>(&counter_describe),
};

const GuestContractInterface counter_interface = [] {
    GuestContractInterface iface{};
    iface.contract_id = EXAMPLE_COUNTER_CONTRACT_ID;
    iface.contract_version = {EXAMPLE_COUNTER_VERSION_MAJOR, 0, 0};
    iface.dispatch_type = DispatchType_Native;
    iface.create_instance = &counter_create;
    iface.destroy_instance = &counter_destroy;
    iface.dispatch.native = {EXAMPLE_COUNTER_FUNCTION_COUNT, functions};
    return iface;
}();

}  // namespace

extern "C" POLYPLUG_PLUGIN_EXPORT std::uint32_t polyplug_abi_version() {
    return POLYPLUG_ABI_VERSION;
}

extern "C" POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi* host,
                                                         const BundleInitContext*) {
    AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
    const PluginDescriptor descriptor{
        polyplug_sv("cpp-counter"), polyplug_sv(EXAMPLE_COUNTER_NAME), {1, 0, 0}};
    host->register_guest_contract(host, &descriptor, &counter_interface, &err);
    if (err.code != AbiErrorCode_Ok) return err;
    return handover.offer(host);  // save and restore, for the next reload
}
