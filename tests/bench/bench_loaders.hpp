// SPDX-License-Identifier: MIT
/// @file bench/bench_loaders.hpp
/// C loaders (BundleLoader tables) for the benchmarks: "bench-bulk" registers any number of
/// contracts in one init (registries of 10, 1,000 and 10,000 contracts), and "bench-gate" holds a
/// bundle's init window open until released (lookups while another thread's init runs).
#pragma once

#include "bench_bundle.hpp"

#include <polyplug/abi.h>
#include <polyplug/ids.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>

namespace bench {

namespace detail {

inline void stateless_create(VmLoaderData, const HostApi*, const void*,
                             GuestContractInstance* out) {
    *out = {nullptr, 0};
}
inline void stateless_destroy(VmLoaderData, const HostApi*, GuestContractInstance) {}
inline void do_nothing(GuestContractInstance, const void*, void*, AbiError* err) {
    err->code = AbiErrorCode_Ok;
}
inline const void* const do_nothing_table[] = {reinterpret_cast<const void*>(&do_nothing)};

// A loader table whose `user_data` is a heap-allocated State, deleted with the table when the
// runtime destroys its loaders.
template <class State>
BundleLoader* new_loader_table(const char* name, State* state) {
    auto* table = new BundleLoader{};
    table->abi_version = POLYPLUG_LOADER_ABI_VERSION;
    table->language = SupportedLanguage_Cpp;
    table->name = polyplug_sv(name);
    table->supports_hot_reload = false;
    table->user_data = state;
    table->destroy = [](BundleLoader* self) {
        delete static_cast<State*>(self->user_data);
        delete self;
    };
    return table;
}

inline void register_loader(const HostApi* host, BundleLoader* table) {
    AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
    host->register_loader(host, table, &err);  // owns the table from here on, even on failure
    if (err.code != AbiErrorCode_Ok) throw std::runtime_error("register_loader refused");
}

}  // namespace detail

/// Name of the i-th contract the bulk loader registers, and its id.
[[nodiscard]] inline std::string bulk_contract_name(std::uint32_t i) {
    return "bench.bulk." + std::to_string(i);
}
[[nodiscard]] inline std::uint64_t bulk_contract_id(std::uint32_t i) {
    return polyplug::guest_contract_id(bulk_contract_name(i), 1);
}

/// A bundle `<root>/<name>` for the "bench-bulk" loader whose manifest declares the `count`
/// contracts it registers (`provides` and `function_count`), as a real manifest would: the
/// runtime refuses contracts a manifest does not declare.
inline fs::path make_bulk_bundle(const fs::path& root, const std::string& name,
                                 std::uint32_t count) {
    std::string provides = "provides = [";
    std::string counts = "function_count = { ";
    for (std::uint32_t i = 0; i < count; ++i) {
        const std::string key = "\"" + bulk_contract_name(i) + "@1\"";
        provides += (i == 0 ? "" : ", ") + key;
        counts += (i == 0 ? "" : ", ") + key + " = 1";
    }
    const fs::path dir = write_bundle(root, name, "bench-bulk", provides + "]\n" + counts + " }\n");
    write_text(dir / ("lib" + name + ".so"), "loaded by a C loader, never opened");
    return dir;
}

/// Registers the C loader "bench-bulk" in `host`: loading any bundle with `loader = "bench-bulk"`
/// registers `count` contracts bench.bulk.0@1 .. bench.bulk.<count-1>@1 during its one init.
inline void install_bulk_loader(const HostApi* host, std::uint32_t count) {
    struct state {
        std::uint32_t count;
    };
    BundleLoader* table = detail::new_loader_table("bench-bulk", new state{count});
    table->load = [](BundleLoader* self, const HostApi* h, const LoaderBundleInfo*,
                     AbiError* out_err) {
        const std::uint32_t registrations = static_cast<state*>(self->user_data)->count;
        for (std::uint32_t i = 0; i < registrations; ++i) {
            const std::string name = bulk_contract_name(i);
            GuestContractInterface iface{};
            iface.contract_id = polyplug::guest_contract_id(name, 1);
            iface.contract_version = {1, 0, 0};
            iface.dispatch_type = DispatchType_Native;
            iface.create_instance = &detail::stateless_create;
            iface.destroy_instance = &detail::stateless_destroy;
            iface.dispatch.native.function_count = 1;
            iface.dispatch.native.functions = detail::do_nothing_table;
            const PluginDescriptor descriptor{
                polyplug_sv("bench-bulk"),
                {reinterpret_cast<const std::uint8_t*>(name.data()), name.size()},
                {1, 0, 0}};
            h->register_guest_contract(h, &descriptor, &iface, out_err);
            if (out_err->code != AbiErrorCode_Ok) return;
        }
    };
    detail::register_loader(host, table);
}

/// Shared with the "bench-gate" loader: `inside` turns true once its init window is open; the
/// init returns once `release` is set.
struct init_gate {
    std::atomic<bool> inside{false};
    std::atomic<bool> release{false};
};

/// Registers the C loader "bench-gate" in `host` and returns its gate (owned by the runtime:
/// valid while the runtime lives). Loading a bundle with `loader = "bench-gate"` blocks in init
/// until `release` is set.
inline init_gate* install_gated_loader(const HostApi* host) {
    auto* gate = new init_gate;
    BundleLoader* table = detail::new_loader_table("bench-gate", gate);
    table->load = [](BundleLoader* self, const HostApi*, const LoaderBundleInfo*, AbiError*) {
        auto* g = static_cast<init_gate*>(self->user_data);
        g->inside.store(true);
        // Sleeping, not spinning: on a two-core machine a spinning loader would take the core
        // the measuring thread needs.
        while (!g->release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    };
    detail::register_loader(host, table);
    return gate;
}

}  // namespace bench
