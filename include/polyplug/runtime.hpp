// SPDX-License-Identifier: MIT
/// @file runtime.hpp
/// `basic_runtime<Loaders...>`: the runtime for C++ hosts, parameterised by its compile-time
/// loaders, with throwing and std::error_code overloads; `polyplug::runtime` is the native-only
/// one. It only translates (exceptions, error codes, containers): every call goes to its
/// `runtime_core` through detail/core_calls.hpp, so that in compiled-once mode (config.hpp) a host
/// including this header compiles none of the engine.
#pragma once

#include <polyplug/bundle_info.hpp>
#include <polyplug/detail/core_calls.hpp>
#include <polyplug/dispatch.hpp>
#include <polyplug/ids.hpp>
#include <polyplug/loaders/native.hpp>
#include <polyplug/runtime_options.hpp>

#include <chrono>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE

/// A plugin runtime. Each `Loaders` type is a `bundle_loader` owned by the runtime; further
/// loaders can be added at run time through `HostApi.register_loader`. Several runtimes in one
/// process share nothing. Not copyable or movable: the HostApi handed to plugins points into it.
///
/// @code
/// polyplug::runtime rt;
/// rt.load_bundle("plugins/adder");
/// auto* iface = rt.resolve(rt.find(polyplug::guest_contract_id("example.math", 1)));
/// @endcode
template <class... Loaders>
class basic_runtime {
    static_assert(
        (bundle_loader<Loaders> && ...),
        "every template argument of polyplug::basic_runtime must satisfy polyplug::bundle_loader "
        "(name(), language(), supports_hot_reload(), load(), reload(), unload(); see loader.hpp)");

public:
    explicit basic_runtime(runtime_options options = {})
        : core_(detail::core_create(std::move(options), this)) {
        std::apply(
            [this](auto&... loader) {
                (detail::core_add_loader(*core_, loader_handle::borrow(loader)).throw_if_failed(),
                 ...);
            },
            loaders_);
    }

    /// From a C configuration (NULL = defaults), as `polyplug_runtime_create` does.
    explicit basic_runtime(const RuntimeConfig* config)
        : basic_runtime(runtime_options::from_c(config)) {}

    basic_runtime(const basic_runtime&) = delete;
    basic_runtime& operator=(const basic_runtime&) = delete;

    /// The function table for plugins and C code; valid for the runtime's life.
    [[nodiscard]] const HostApi* host_api() const noexcept { return detail::core_host_api(*core_); }

    /// The compile-time loader of type `Loader`.
    template <class Loader>
    [[nodiscard]] Loader& loader() noexcept {
        return std::get<Loader>(loaders_);
    }

    // ---- bundles ------------------------------------------------------------------------------

    /// Loads the bundle in `path` (a bundle directory or a file inside it).
    /// @throws polyplug::error naming the bundle and the problem; the runtime is left as it was.
    void load_bundle(const std::filesystem::path& path) {
        detail::core_load_bundle(*core_, path).throw_if_failed();
    }
    /// Same; reports failure through `ec` (details in last_error()).
    void load_bundle(const std::filesystem::path& path, std::error_code& ec) {
        ec = detail::core_load_bundle(*core_, path).error_code();
    }

    /// Unloads a bundle; refused with errc::dependency_in_use while another bundle depends on it.
    void unload_bundle(std::uint64_t bundle_id) {
        detail::core_unload_bundle(*core_, bundle_id).throw_if_failed();
    }
    void unload_bundle(std::uint64_t bundle_id, std::error_code& ec) {
        ec = detail::core_unload_bundle(*core_, bundle_id).error_code();
    }

    /// Discovers and loads every bundle in `dirs`, providers first (all or nothing).
    /// @throws polyplug::error for an unsatisfied dependency, a cycle (every participant named) or
    /// a bundle that fails to load; malformed candidates are skipped and listed in the report.
    load_report load_dirs(std::span<const std::filesystem::path> dirs) {
        load_report report;
        detail::core_load_dirs(*core_, dirs, report).throw_if_failed();
        return report;
    }
    load_report load_dirs(std::span<const std::filesystem::path> dirs, std::error_code& ec) {
        load_report report;
        ec = detail::core_load_dirs(*core_, dirs, report).error_code();
        return report;
    }
    /// One directory.
    load_report load_dir(const std::filesystem::path& dir) { return load_dirs(std::span(&dir, 1)); }

    /// Unloads a bundle and, first, every bundle depending on it; returns the ids in unload order.
    std::vector<std::uint64_t> unload_cascade(std::uint64_t bundle_id) {
        std::vector<std::uint64_t> unloaded;
        detail::core_unload_cascade(*core_, bundle_id, &unloaded).throw_if_failed();
        return unloaded;
    }
    std::vector<std::uint64_t> unload_cascade(std::uint64_t bundle_id, std::error_code& ec) {
        std::vector<std::uint64_t> unloaded;
        ec = detail::core_unload_cascade(*core_, bundle_id, &unloaded).error_code();
        return unloaded;
    }

    /// What happens to the code of bundles unloaded from now on (see runtime_options).
    void set_unmap_policy(unmap_policy policy, std::chrono::milliseconds grace) {
        detail::core_set_unmap_policy(*core_, policy, grace);
    }

    void reload_bundle(const std::filesystem::path& path) {
        detail::core_reload_bundle(*core_, path).throw_if_failed();
    }
    void reload_bundle(const std::filesystem::path& path, std::error_code& ec) {
        ec = detail::core_reload_bundle(*core_, path).error_code();
    }

    /// Watches plugin directories (inotify): reloads a bundle whose manifest or artifact changed
    /// and loads bundle directories that appear, after `options.debounce` of quiet. Replaces
    /// any earlier watch; needs hot_reload_enabled. See watcher.hpp and docs/HOT_RELOAD.md.
    void watch(std::span<const std::filesystem::path> dirs, const watch_options& options = {}) {
        detail::core_watch(*core_, dirs, options).throw_if_failed();
    }
    void watch(std::span<const std::filesystem::path> dirs, const watch_options& options,
               std::error_code& ec) {
        ec = detail::core_watch(*core_, dirs, options).error_code();
    }
    /// One directory.
    void watch(const std::filesystem::path& dir, const watch_options& options = {}) {
        watch(std::span(&dir, 1), options);
    }
    /// Stops watching.
    void unwatch() { detail::core_unwatch(*core_); }
    /// With `watch_options::background_thread = false`: acts on settled changes now, on this
    /// thread; returns how many bundles were reloaded or loaded.
    std::size_t poll_watch() { return detail::core_poll_watch(*core_); }

    [[nodiscard]] std::vector<bundle_info> bundles() const { return detail::core_bundles(*core_); }
    [[nodiscard]] std::optional<bundle_info> bundle(std::uint64_t bundle_id) const {
        return detail::core_bundle(*core_, bundle_id);
    }

    // ---- contracts ----------------------------------------------------------------------------

    /// First registered provider with major >= `min_major`; the null handle if none.
    [[nodiscard]] GuestContractHandle find(std::uint64_t contract_id,
                                           std::uint32_t min_major = 0) const {
        return detail::core_find(*core_, contract_id, min_major);
    }

    /// Every provider, in registration order.
    [[nodiscard]] std::vector<GuestContractHandle> find_all(std::uint64_t contract_id,
                                                            std::uint32_t min_major = 0) const {
        return detail::core_find_all(*core_, contract_id, min_major);
    }

    /// The runtime's copy of the interface; NULL for a null, unknown or stale handle.
    [[nodiscard]] const GuestContractInterface* resolve(GuestContractHandle handle) const noexcept {
        return detail::core_resolve(*core_, handle);
    }

    /// Registers a host contract (stored by reference: it must outlive the runtime).
    void register_host_contract(const HostContractInterface& iface) {
        detail::core_register_host_contract(*core_, &iface).throw_if_failed();
    }
    void register_host_contract(const HostContractInterface& iface, std::error_code& ec) {
        ec = detail::core_register_host_contract(*core_, &iface).error_code();
    }

    // ---- state --------------------------------------------------------------------------------

    /// The latest failure's message (not cleared; the C API's get_last_error clears).
    [[nodiscard]] std::string last_error() const { return detail::core_last_error(*core_); }

    /// Changes on every load, unload and reload; cache invalidation for resolved interfaces.
    [[nodiscard]] std::uint64_t revision() const noexcept { return detail::core_revision(*core_); }

    /// The engine, for advanced use (host_api.hpp thunks, tests).
    [[nodiscard]] runtime_core& core() noexcept { return *core_; }
    [[nodiscard]] const runtime_core& core() const noexcept { return *core_; }

private:
    // Declared before core_ so they outlive it: the core's destructor unloads bundles through them.
    std::tuple<Loaders...> loaders_;
    detail::core_owner core_;
};

/// The runtime with the native loader, as `polyplug_runtime_create` builds it.
using runtime = basic_runtime<native_loader>;

POLYPLUG_END_NAMESPACE

#if POLYPLUG_HEADER_ONLY
#include <polyplug/detail/core_calls_impl.hpp>
#endif
