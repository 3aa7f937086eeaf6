// SPDX-License-Identifier: MIT
/// @file detail/core_calls_impl.hpp
/// The definitions behind detail/core_calls.hpp: each forwards to `runtime_core`. Included by
/// runtime.hpp in header-only mode and by implementation.hpp in compiled-once mode.
#pragma once

#include <polyplug/detail/core_calls.hpp>
#include <polyplug/detail/state_handover_contract.hpp>
#include <polyplug/host_api.hpp>
#include <polyplug/runtime_contract.hpp>
#include <polyplug/runtime_core.hpp>

#include <memory>

POLYPLUG_BEGIN_NAMESPACE

namespace detail {

POLYPLUG_COMPILED_ONCE_FN runtime_core* core_create(runtime_options options, void* owner) {
    auto core = std::make_unique<runtime_core>(std::move(options));
    core->install_host_api(make_host_api(*core));
    core->set_owner(owner);
    install_runtime_contract(*core);
    install_state_handover_contract(*core);
    return core.release();
}

POLYPLUG_COMPILED_ONCE_FN void core_destroy(runtime_core* core) noexcept {
    delete core;
}

POLYPLUG_COMPILED_ONCE_FN status core_add_loader(runtime_core& core, loader_handle handle) {
    return core.add_loader(std::move(handle));
}

POLYPLUG_COMPILED_ONCE_FN const HostApi* core_host_api(const runtime_core& core) noexcept {
    return core.host_api();
}

POLYPLUG_COMPILED_ONCE_FN status core_load_bundle(runtime_core& core,
                                                  const std::filesystem::path& path) {
    return core.load_bundle(path);
}

POLYPLUG_COMPILED_ONCE_FN status core_unload_bundle(runtime_core& core, std::uint64_t bundle_id) {
    return core.unload_bundle(bundle_id);
}

POLYPLUG_COMPILED_ONCE_FN status core_load_dirs(runtime_core& core,
                                                std::span<const std::filesystem::path> dirs,
                                                load_report& report) {
    return core.load_dirs(dirs, report);
}

POLYPLUG_COMPILED_ONCE_FN status core_unload_cascade(runtime_core& core, std::uint64_t bundle_id,
                                                     std::vector<std::uint64_t>* unloaded) {
    return core.unload_cascade(bundle_id, unloaded);
}

POLYPLUG_COMPILED_ONCE_FN void core_set_unmap_policy(runtime_core& core, unmap_policy policy,
                                                     std::chrono::milliseconds grace) {
    core.set_unmap_policy(policy, grace);
}

POLYPLUG_COMPILED_ONCE_FN status core_reload_bundle(runtime_core& core,
                                                    const std::filesystem::path& path) {
    return core.reload_bundle(path);
}

POLYPLUG_COMPILED_ONCE_FN status core_watch(runtime_core& core,
                                            std::span<const std::filesystem::path> dirs,
                                            const watch_options& options) {
    return core.watch(dirs, options);
}

POLYPLUG_COMPILED_ONCE_FN void core_unwatch(runtime_core& core) {
    core.unwatch();
}

POLYPLUG_COMPILED_ONCE_FN std::size_t core_poll_watch(runtime_core& core) {
    return core.poll_watch();
}

POLYPLUG_COMPILED_ONCE_FN std::vector<bundle_info> core_bundles(const runtime_core& core) {
    return core.bundles();
}

POLYPLUG_COMPILED_ONCE_FN std::optional<bundle_info> core_bundle(const runtime_core& core,
                                                                 std::uint64_t bundle_id) {
    return core.bundle(bundle_id);
}

POLYPLUG_COMPILED_ONCE_FN GuestContractHandle core_find(const runtime_core& core,
                                                        std::uint64_t contract_id,
                                                        std::uint32_t min_major) {
    return core.find(contract_id, min_major);
}

POLYPLUG_COMPILED_ONCE_FN std::vector<GuestContractHandle> core_find_all(const runtime_core& core,
                                                                         std::uint64_t contract_id,
                                                                         std::uint32_t min_major) {
    std::vector<GuestContractHandle> handles;
    core.find_all(
        contract_id, min_major,
        [&](std::size_t count) {
            handles.reserve(count);
            return true;
        },
        [&](GuestContractHandle handle) { handles.push_back(handle); });
    return handles;
}

POLYPLUG_COMPILED_ONCE_FN const GuestContractInterface* core_resolve(
    const runtime_core& core, GuestContractHandle handle) noexcept {
    return core.resolve(handle);
}

POLYPLUG_COMPILED_ONCE_FN status core_register_host_contract(runtime_core& core,
                                                             const HostContractInterface* iface) {
    return core.register_host_contract(iface);
}

POLYPLUG_COMPILED_ONCE_FN std::string core_last_error(const runtime_core& core) {
    return core.last_error().peek();
}

POLYPLUG_COMPILED_ONCE_FN std::uint64_t core_revision(const runtime_core& core) noexcept {
    return core.revision();
}

}  // namespace detail

POLYPLUG_END_NAMESPACE
