// SPDX-License-Identifier: MIT
/// @file loaders/native.hpp
/// The native loader ("native"): shared libraries in C, C++, Rust or anything with a C ABI,
/// opened with Boost.DLL (RTLD_NOW | RTLD_LOCAL), ABI version checked before init runs.
#pragma once

#include <polyplug/detail/boost_dll.hpp>
#include <polyplug/detail/elf_check.hpp>
#include <polyplug/detail/preflight.hpp>
#include <polyplug/detail/plugin_message.hpp>
#include <polyplug/detail/utf8.hpp>
#include <polyplug/loader.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <sys/stat.h>

POLYPLUG_BEGIN_NAMESPACE

/// Loads native bundles. Satisfies `bundle_loader`; built into every runtime.
class native_loader {
public:
    [[nodiscard]] std::string_view name() const noexcept { return "native"; }
    /// The original reports native bundles as Rust; kept for bundle-metadata compatibility.
    [[nodiscard]] std::uint32_t language() const noexcept { return SupportedLanguage_Rust; }
    [[nodiscard]] bool supports_hot_reload() const noexcept { return true; }
    /// Each reloaded version comes from its own copy of the library (see bundle_loader).
    [[nodiscard]] bool wants_private_copies() const noexcept { return true; }

    /// The native loader's own checks, in order, then the load: the ELF check (before anything
    /// reads the file as a library), the pre-flight open in a child process when
    /// runtime_options::preflight_native_libraries is set, dlopen, `polyplug_abi_version() ==
    /// POLYPLUG_ABI_VERSION`, then `polyplug_init`. Every failure names the bundle, the library
    /// and the reason; on failure the library is closed again.
    [[nodiscard]] status load(const bundle_context& context) {
        auto library = std::make_unique<detail::shared_library>();
        const manifest& m = *context.bundle;
        const std::string where = "bundle '" + m.name + "': ";
        std::string reason;
        // Before dlopen: ld.so trusts a library's headers, and a truncated or corrupt file would
        // crash this process inside it (SIGBUS; see detail/elf_check.hpp).
        if (const status checked = check_elf_once(context.artifact, context.artifact_identity);
            !checked)
            return {errc::library_load_failed, where + "cannot load '" + context.artifact.string() +
                                                   "': " + checked.message()};
        // After the ELF check: the child would crash inside dlopen on a corrupt file too, but
        // the check's message says why, and costs no fork.
        if (context.options != nullptr && context.options->preflight_native_libraries) {
            if (status st = detail::preflight_open(context.artifact, where,
                                                   context.options->preflight_timeout);
                !st)
                return st;
        }
        if (!library->open(context.artifact, reason))
            return {errc::library_load_failed,
                    where + "cannot load '" + context.artifact.string() + "': " + reason};

        const auto abi_version =
            library->function<PolyplugAbiVersionFn>(POLYPLUG_ABI_VERSION_SYMBOL);
        if (abi_version == nullptr)
            return {errc::abi_version_mismatch,
                    where + "'" + context.artifact.string() +
                        "' does not export polyplug_abi_version (not a polyplug plugin?)"};
        const std::uint32_t reported = abi_version();
        if (reported != POLYPLUG_ABI_VERSION)
            return {errc::abi_version_mismatch,
                    where + "plugin reports ABI version " + std::to_string(reported) +
                        ", this runtime speaks " + std::to_string(POLYPLUG_ABI_VERSION)};

        const auto init = library->function<PolyplugInitFn>(POLYPLUG_INIT_SYMBOL);
        if (init == nullptr)
            return {errc::init_symbol_missing,
                    where + "'" + context.artifact.string() +
                        "' does not export the init symbol polyplug_init"};

        const std::string bundle_path = m.dir.string();
        const BundleInitContext init_context{context.bundle_id,
                                             detail::string_view_of(bundle_path)};
        // No exception guard on purpose: a plugin's glue converts its own failures (spec §5.3).
        const AbiError result = init(context.host, &init_context);
        if (result.code != AbiErrorCode_Ok) {
            const std::string message =
                detail::copy_plugin_message(result.message.ptr, result.message.len);
            return {errc::init_failed, where + "polyplug_init failed with code " +
                                           std::to_string(result.code) +
                                           (message.empty() ? std::string() : ": " + message)};
        }

        std::lock_guard lock(mutex_);
        libraries_[context.load_id] = std::move(library);
        return {};
    }

    /// A new version beside the current one: the runtime passes a private copy as the artifact.
    [[nodiscard]] status reload(const bundle_context& context) { return load(context); }

    /// Closes one loaded version's library (its static destructors run now, unless the runtime
    /// still holds the mapping for a grace period).
    void unload(const HostApi*, std::uint64_t load_id) {
        std::unique_ptr<detail::shared_library> library;
        {
            std::lock_guard lock(mutex_);
            const auto it = libraries_.find(load_id);
            if (it == libraries_.end()) return;
            library = std::move(it->second);
            libraries_.erase(it);
        }
        library.reset();  // outside the lock: destructors may call back into the runtime
    }

    /// Number of library versions currently open (for tests and diagnostics).
    [[nodiscard]] std::size_t open_libraries() const {
        std::lock_guard lock(mutex_);
        return libraries_.size();
    }

private:
    // The ELF check, skipped for a file whose identity (detail::file_identity) passed it before:
    // a warm load or a reload of an unchanged library then reads none of its headers. The
    // identity is the one the runtime's artifact check just took (no system call here), or one
    // stat when it has none. Which identities passed is kept once per process, not per loader:
    // a memo of a pure function of the file's bytes, so that a fresh runtime does not check
    // again what another runtime checked (nothing else is shared).
    [[nodiscard]] static status check_elf_once(const std::filesystem::path& file,
                                               detail::file_identity id) {
        if (!id.known) {
            struct stat info {};
            if (::stat(file.c_str(), &info) != 0) return detail::check_elf_library(file);
            id = detail::file_identity::of(info);
        }
        checked_store& checked = checked_files();
        {
            std::lock_guard lock(checked.mutex);
            if (checked.ids.contains(id)) return {};
        }
        status st = detail::check_elf_library(file);
        if (st) {
            std::lock_guard lock(checked.mutex);
            if (checked.ids.size() >= max_checked_files) checked.ids.clear();
            checked.ids.insert(id);
        }
        return st;
    }

    static constexpr std::size_t max_checked_files = 4096;
    struct checked_store {
        std::mutex mutex;
        std::set<detail::file_identity> ids;  // (mutex)
    };
    // Never destroyed: a runtime may load from a static destructor.
    static checked_store& checked_files() {
        static checked_store* const instance = new checked_store;
        return *instance;
    }
    mutable std::mutex mutex_;
    std::map<std::uint64_t, std::unique_ptr<detail::shared_library>> libraries_;
};

static_assert(bundle_loader<native_loader>);

POLYPLUG_END_NAMESPACE
