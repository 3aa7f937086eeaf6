// SPDX-License-Identifier: MIT
/// @file loaders/native.hpp
/// The native loader ("native"): shared libraries in C, C++, Rust or anything with a C ABI,
/// opened with dlopen (RTLD_NOW | RTLD_LOCAL), ABI version checked before init runs. The
/// class is declared here; its work is in detail/native_loader_impl.hpp (config.hpp says when
/// that is included).
#pragma once

#include <polyplug/loader.hpp>

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

POLYPLUG_BEGIN_NAMESPACE

/// Loads native bundles. Satisfies `bundle_loader`; built into every runtime.
class native_loader {
public:
    // Out of line (detail/native_loader_impl.hpp): the destructor closes what is still open.
    native_loader();
    ~native_loader();
    native_loader(const native_loader&) = delete;
    native_loader& operator=(const native_loader&) = delete;

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
    [[nodiscard]] status load(const bundle_context& context);

    /// A new version beside the current one: the runtime passes a private copy as the artifact.
    [[nodiscard]] status reload(const bundle_context& context) { return load(context); }

    /// Closes one loaded version's library (its static destructors run now, unless the runtime
    /// still holds the mapping for a grace period).
    void unload(const HostApi*, std::uint64_t load_id);

    /// Forgets one loaded version and hands its dlopen handle to the caller, whose dlclose is
    /// then the last (see bundle_loader): the runtime keeps the code mapped with the loader's
    /// own reference instead of taking one more by name. nullptr for an unknown version.
    [[nodiscard]] void* release_library(std::uint64_t load_id);

    /// Number of library versions this loader holds open (for tests and diagnostics). A version
    /// the runtime unloaded is no longer counted even while its code stays mapped: the loader
    /// handed its handle to the runtime (release_library; see runtime pending_unmaps).
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
                                               detail::file_identity id);

    static constexpr std::size_t max_checked_files = 4096;
    struct checked_store {
        std::mutex mutex;
        std::set<detail::file_identity> ids;  // (mutex)
    };
    static checked_store& checked_files();
    // The open libraries by load id, sorted (load ids only grow, so a load appends): no node
    // allocated per load. Handles are dlopen's; the destructor closes those still here.
    mutable std::mutex mutex_;
    std::vector<std::pair<std::uint64_t, void*>> libraries_;
    [[nodiscard]] void* take(std::uint64_t load_id);
};

static_assert(bundle_loader<native_loader>);

POLYPLUG_END_NAMESPACE

#if POLYPLUG_HEADER_ONLY
#include <polyplug/detail/native_loader_impl.hpp>
#endif
