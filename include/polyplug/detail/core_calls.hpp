// SPDX-License-Identifier: MIT
/// @file detail/core_calls.hpp
/// What `basic_runtime` asks of its `runtime_core`, as free functions over a core it names but
/// need not see. Declared here, defined in detail/core_calls_impl.hpp: inline in header-only mode,
/// once per program in compiled-once mode (config.hpp). This is the seam that keeps the engine
/// (manifest reading, staging, the registry, the watcher, toml++) out of a compiled-once host's
/// translation units; each function only forwards, the core holds the behaviour.
#pragma once

#include <polyplug/abi.h>
#include <polyplug/bundle_info.hpp>
#include <polyplug/config.hpp>
#include <polyplug/error.hpp>
#include <polyplug/loader.hpp>
#include <polyplug/runtime_options.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE

class runtime_core;

namespace detail {

/// A new core with its HostApi, its built-in contracts and `owner` (the front end) installed.
POLYPLUG_COMPILED_ONCE_FN runtime_core* core_create(runtime_options options, void* owner);
/// Unloads everything and frees the core (runtime_core's destructor).
POLYPLUG_COMPILED_ONCE_FN void core_destroy(runtime_core* core) noexcept;

POLYPLUG_COMPILED_ONCE_FN status core_add_loader(runtime_core& core, loader_handle handle);
POLYPLUG_COMPILED_ONCE_FN const HostApi* core_host_api(const runtime_core& core) noexcept;

POLYPLUG_COMPILED_ONCE_FN status core_load_bundle(runtime_core& core,
                                                  const std::filesystem::path& path);
POLYPLUG_COMPILED_ONCE_FN status core_unload_bundle(runtime_core& core, std::uint64_t bundle_id);
POLYPLUG_COMPILED_ONCE_FN status core_load_dirs(runtime_core& core,
                                                std::span<const std::filesystem::path> dirs,
                                                load_report& report);
POLYPLUG_COMPILED_ONCE_FN status core_unload_cascade(runtime_core& core, std::uint64_t bundle_id,
                                                     std::vector<std::uint64_t>* unloaded);
POLYPLUG_COMPILED_ONCE_FN void core_set_unmap_policy(runtime_core& core, unmap_policy policy,
                                                     std::chrono::milliseconds grace);
POLYPLUG_COMPILED_ONCE_FN status core_reload_bundle(runtime_core& core,
                                                    const std::filesystem::path& path);

POLYPLUG_COMPILED_ONCE_FN status core_watch(runtime_core& core,
                                            std::span<const std::filesystem::path> dirs,
                                            const watch_options& options);
POLYPLUG_COMPILED_ONCE_FN void core_unwatch(runtime_core& core);
POLYPLUG_COMPILED_ONCE_FN std::size_t core_poll_watch(runtime_core& core);

POLYPLUG_COMPILED_ONCE_FN std::vector<bundle_info> core_bundles(const runtime_core& core);
POLYPLUG_COMPILED_ONCE_FN std::optional<bundle_info> core_bundle(const runtime_core& core,
                                                                 std::uint64_t bundle_id);

/// The lookups: inlined into the caller in header-only mode, one call in compiled-once mode.
POLYPLUG_COMPILED_ONCE_FN GuestContractHandle core_find(const runtime_core& core,
                                                        std::uint64_t contract_id,
                                                        std::uint32_t min_major);
POLYPLUG_COMPILED_ONCE_FN std::vector<GuestContractHandle> core_find_all(const runtime_core& core,
                                                                         std::uint64_t contract_id,
                                                                         std::uint32_t min_major);
POLYPLUG_COMPILED_ONCE_FN const GuestContractInterface* core_resolve(
    const runtime_core& core, GuestContractHandle handle) noexcept;

POLYPLUG_COMPILED_ONCE_FN status core_register_host_contract(runtime_core& core,
                                                             const HostContractInterface* iface);
POLYPLUG_COMPILED_ONCE_FN std::string core_last_error(const runtime_core& core);
POLYPLUG_COMPILED_ONCE_FN std::uint64_t core_revision(const runtime_core& core) noexcept;

/// Owns the core of one `basic_runtime`. The front end holds the core through this pointer, in
/// both modes, so that its layout does not depend on the mode.
class core_owner {
public:
    explicit core_owner(runtime_core* core) noexcept : core_(core) {}
    core_owner(const core_owner&) = delete;
    core_owner& operator=(const core_owner&) = delete;
    ~core_owner() { core_destroy(core_); }

    [[nodiscard]] runtime_core& operator*() const noexcept { return *core_; }

private:
    runtime_core* core_;
};

}  // namespace detail

POLYPLUG_END_NAMESPACE
