// SPDX-License-Identifier: MIT
/// @file bench/bench_runtime.cpp
/// Runtime setup for the benchmark groups (see bench_runtime.hpp).
#include "bench_runtime.hpp"

#include <polyplug/runtime.hpp>

#include <chrono>
#include <stdexcept>

namespace bench {

void runtime_deleter::operator()(polyplug::runtime* rt) const noexcept {
    delete rt;
}

runtime_ptr make_runtime(runtime_setup setup) {
    polyplug::runtime_options options;
    options.hot_reload_enabled = setup.hot_reload;
    if (setup.grace_period_ms >= 0)
        options.unload_grace_period = std::chrono::milliseconds(setup.grace_period_ms);
    return runtime_ptr(new polyplug::runtime(options));
}

void load_bundle(polyplug::runtime& rt, const std::filesystem::path& dir) {
    rt.load_bundle(dir);
}

void unload_bundle(polyplug::runtime& rt, std::uint64_t bundle_id) {
    rt.unload_bundle(bundle_id);
}

void reload_bundle(polyplug::runtime& rt, const std::filesystem::path& dir) {
    rt.reload_bundle(dir);
}

std::size_t load_dirs(polyplug::runtime& rt, const std::filesystem::path& dir) {
    return rt.load_dir(dir).loaded.size();
}

const GuestContractInterface* resolve(const polyplug::runtime& rt, std::uint64_t contract_id) {
    const GuestContractInterface* iface = rt.resolve(rt.find(contract_id));
    if (iface == nullptr)
        throw std::runtime_error("contract " + polyplug::format_id(contract_id) +
                                 " did not resolve");
    return iface;
}

void read_manifest_and_artifact(const std::filesystem::path& dir) {
    static polyplug::detail::manifest_cache manifests;
    polyplug::manifest m;
    if (const polyplug::status st = manifests.read(dir, m); !st)
        throw std::runtime_error(st.message());
    std::filesystem::path artifact;
    if (const polyplug::status st = polyplug::resolve_artifact(m, false, artifact); !st)
        throw std::runtime_error(st.message());
}

const HostApi* host_api(const polyplug::runtime& rt) {
    return rt.host_api();
}

}  // namespace bench
