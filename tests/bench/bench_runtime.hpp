// SPDX-License-Identifier: MIT
/// @file bench/bench_runtime.hpp
/// Runtime operations for the benchmarks, compiled once in bench_runtime.cpp. Constructing a
/// runtime, loading and reloading a bundle instantiate most of the library, which is slow to
/// compile; compiling them once keeps ./scripts/bench.sh within its time budget. These operations
/// take microseconds, so calling them out of line changes nothing measurable (lifecycle_bench.cpp
/// times them). Every hot path (table calls, find, resolve, find_all) stays inline in the file
/// that measures it, as in a host.
#pragma once

#include <polyplug/abi.h>
#include <polyplug/fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>

namespace bench {

struct runtime_deleter {
    void operator()(polyplug::runtime* rt) const noexcept;
};
using runtime_ptr = std::unique_ptr<polyplug::runtime, runtime_deleter>;

/// How the benchmarks configure a runtime; everything else is the default.
struct runtime_setup {
    bool hot_reload = false;
    /// How long unloaded and replaced code stays mapped (runtime_options::unload_grace_period);
    /// negative: the default, 50 ms.
    int grace_period_ms = -1;
};

/// A native-only runtime (polyplug::runtime).
[[nodiscard]] runtime_ptr make_runtime(runtime_setup setup = {});

/// load_bundle / unload_bundle / reload_bundle / load_dirs; each throws polyplug::error on
/// failure. load_dirs returns how many bundles it loaded.
void load_bundle(polyplug::runtime& rt, const std::filesystem::path& dir);
void unload_bundle(polyplug::runtime& rt, std::uint64_t bundle_id);
void reload_bundle(polyplug::runtime& rt, const std::filesystem::path& dir);
std::size_t load_dirs(polyplug::runtime& rt, const std::filesystem::path& dir);

/// The runtime's interface for `contract_id`; throws if it does not resolve.
[[nodiscard]] const GuestContractInterface* resolve(const polyplug::runtime& rt,
                                                    std::uint64_t contract_id);

/// What load_bundle does before it opens the library: read manifest.toml (parsed by toml++ the
/// first time, then reused while its bytes are the same, as a runtime does), then check the
/// artifact path (detail::manifest_cache, polyplug::resolve_artifact). Throws on failure.
void read_manifest_and_artifact(const std::filesystem::path& dir);

/// The HostApi of `rt`.
[[nodiscard]] const HostApi* host_api(const polyplug::runtime& rt);

}  // namespace bench
