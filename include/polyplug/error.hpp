// SPDX-License-Identifier: MIT
/// @file error.hpp
/// The error model: polyplug::errc <-> AbiErrorCode, the `polyplug` std::error_category,
/// polyplug::error (thrown by the C++ API) and polyplug::status (what fallible operations return).
#pragma once

#include <polyplug/config.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

POLYPLUG_BEGIN_NAMESPACE

/// Every failure polyplug reports. Values below 1000 are the C ABI's `AbiErrorCode`s; values from
/// 1000 up name runtime conditions that cross the C ABI as `Generic` (with the detail in
/// `last_error`), and that C++ callers can tell apart.
enum class errc : int {
    ok = AbiErrorCode_Ok,
    generic = AbiErrorCode_Generic,
    buffer_too_small = AbiErrorCode_BufferTooSmall,
    panic = AbiErrorCode_Panic,
    not_found = AbiErrorCode_NotFound,
    stale_handle = AbiErrorCode_StaleHandle,
    function_not_available = AbiErrorCode_FunctionNotAvailable,
    duplicate_provider = AbiErrorCode_DuplicateProvider,
    invalid_pointer = AbiErrorCode_InvalidPointer,
    reentrant_call = AbiErrorCode_ReentrantCall,
    host_contract_not_found = AbiErrorCode_HostContractNotFound,
    host_contract_version_mismatch = AbiErrorCode_HostContractVersionMismatch,
    host_contract_call_failed = AbiErrorCode_HostContractCallFailed,

    manifest_invalid = 1000,    ///< manifest.toml missing, unreadable, malformed or breaking a rule
    bundle_tampered,            ///< manifest `id` != fnv1a64(name)
    path_escapes_bundle,        ///< `file` leaves the bundle directory
    invalid_utf8,               ///< a path or name is not valid UTF-8
    artifact_not_found,         ///< the platform's `file` does not exist
    library_load_failed,        ///< the dynamic loader refused the library
    abi_version_mismatch,       ///< polyplug_abi_version missing or != POLYPLUG_ABI_VERSION
    init_symbol_missing,        ///< polyplug_init not exported
    init_failed,                ///< polyplug_init returned an error
    no_loader,                  ///< no loader has the manifest's `loader` name
    duplicate_loader,           ///< a loader with that name is already registered
    bundle_already_loaded,      ///< a bundle with that name is loaded or loading
    bundle_not_loaded,          ///< no loaded bundle has that id
    dependency_in_use,          ///< another loaded bundle depends on this one
    contract_id_collision,      ///< two contract names hash to the same id
    registration_outside_init,  ///< register_guest_contract with no init window open
    duplicate_host_contract,    ///< a host contract with that id is registered
    hot_reload_disabled,        ///< reload asked but disabled by config or loader
    version_mismatch,           ///< compatibility check: provider version too old
    function_count_mismatch,    ///< compatibility check: declared vs real function count
    runtime_destroyed,          ///< the runtime behind a HostApi is gone
    unsatisfied_dependency,     ///< a required contract or bundle has no provider
    dependency_cycle,           ///< bundles depend on each other in a cycle
    reload_in_progress,         ///< reload_bundle called from inside a reload (on_reload)
    state_handover_failed,      ///< a reload's state hand-over: save failed or restore refused
    contract_file_invalid,      ///< api.toml malformed, unreadable or breaking a rule
    invalid_path,               ///< a path holds a NUL byte (the system would cut it there)
};

POLYPLUG_END_NAMESPACE

template <>
struct std::is_error_code_enum<polyplug::errc> : std::true_type {};

POLYPLUG_BEGIN_NAMESPACE

namespace detail {
class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "polyplug"; }
    std::string message(int value) const override;
};

inline std::string error_category_impl::message(int value) const {
    switch (static_cast<errc>(value)) {
        case errc::ok:
            return "success";
        case errc::generic:
            return "generic failure";
        case errc::buffer_too_small:
            return "buffer too small";
        case errc::panic:
            return "plugin panicked";
        case errc::not_found:
            return "not found";
        case errc::stale_handle:
            return "stale handle";
        case errc::function_not_available:
            return "function not available";
        case errc::duplicate_provider:
            return "duplicate provider";
        case errc::invalid_pointer:
            return "invalid pointer";
        case errc::reentrant_call:
            return "re-entrant call";
        case errc::host_contract_not_found:
            return "host contract not found";
        case errc::host_contract_version_mismatch:
            return "host contract version mismatch";
        case errc::host_contract_call_failed:
            return "host contract call failed";
        case errc::manifest_invalid:
            return "invalid manifest";
        case errc::bundle_tampered:
            return "bundle id does not match its name";
        case errc::path_escapes_bundle:
            return "path escapes the bundle directory";
        case errc::invalid_utf8:
            return "invalid UTF-8";
        case errc::artifact_not_found:
            return "artifact not found";
        case errc::library_load_failed:
            return "library load failed";
        case errc::abi_version_mismatch:
            return "ABI version mismatch";
        case errc::init_symbol_missing:
            return "polyplug_init missing";
        case errc::init_failed:
            return "plugin init failed";
        case errc::no_loader:
            return "no loader for bundle";
        case errc::duplicate_loader:
            return "duplicate loader";
        case errc::bundle_already_loaded:
            return "bundle already loaded";
        case errc::bundle_not_loaded:
            return "bundle not loaded";
        case errc::dependency_in_use:
            return "bundle is a dependency of another bundle";
        case errc::contract_id_collision:
            return "contract id collision";
        case errc::registration_outside_init:
            return "registration outside an init window";
        case errc::duplicate_host_contract:
            return "duplicate host contract registration";
        case errc::hot_reload_disabled:
            return "hot reload disabled";
        case errc::version_mismatch:
            return "version mismatch";
        case errc::function_count_mismatch:
            return "function count mismatch";
        case errc::runtime_destroyed:
            return "runtime destroyed";
        case errc::unsatisfied_dependency:
            return "unsatisfied dependency";
        case errc::dependency_cycle:
            return "dependency cycle";
        case errc::reload_in_progress:
            return "reload already in progress on this thread";
        case errc::state_handover_failed:
            return "state hand-over between bundle versions failed";
        case errc::contract_file_invalid:
            return "invalid contract file";
        case errc::invalid_path:
            return "invalid path";
    }
    return "unknown polyplug error " + std::to_string(value);
}
}  // namespace detail

/// The `polyplug` error category.
[[nodiscard]] inline const std::error_category& error_category() noexcept {
    static const detail::error_category_impl instance;
    return instance;
}

[[nodiscard]] inline std::error_code make_error_code(errc code) noexcept {
    return {static_cast<int>(code), error_category()};
}

/// The `AbiErrorCode` a condition crosses the C ABI as: ABI codes map to themselves, runtime
/// conditions to `Generic`.
[[nodiscard]] constexpr std::uint32_t to_abi_code(errc code) noexcept {
    const int value = static_cast<int>(code);
    return value < 1000 ? static_cast<std::uint32_t>(value) : std::uint32_t{AbiErrorCode_Generic};
}

/// Total conversion of a raw `AbiError.code`: known codes map to themselves, everything else
/// (including plugin-defined codes >= 256) to `errc::generic`.
[[nodiscard]] constexpr errc from_abi_code(std::uint32_t raw) noexcept {
    switch (raw) {
        case AbiErrorCode_Ok:
        case AbiErrorCode_Generic:
        case AbiErrorCode_BufferTooSmall:
        case AbiErrorCode_Panic:
        case AbiErrorCode_NotFound:
        case AbiErrorCode_StaleHandle:
        case AbiErrorCode_FunctionNotAvailable:
        case AbiErrorCode_DuplicateProvider:
        case AbiErrorCode_InvalidPointer:
        case AbiErrorCode_ReentrantCall:
        case AbiErrorCode_HostContractNotFound:
        case AbiErrorCode_HostContractVersionMismatch:
        case AbiErrorCode_HostContractCallFailed:
            return static_cast<errc>(raw);
        default:
            return errc::generic;
    }
}

/// Thrown by the throwing overloads of the C++ API. `what()` carries the full message (naming the
/// bundle and the problem); `code()` is in polyplug::error_category().
class POLYPLUG_VISIBLE error : public std::system_error {
public:
    error(errc code, const std::string& message)
        : std::system_error(make_error_code(code), message) {}
    error(std::error_code code, const std::string& message) : std::system_error(code, message) {}
};

/// Outcome of a fallible operation: a code and, on failure, a message for people.
class [[nodiscard]] status {
public:
    status() = default;
    status(errc code, std::string message) : code_(code), message_(std::move(message)) {}

    [[nodiscard]] static status success() { return {}; }

    [[nodiscard]] bool ok() const noexcept { return code_ == errc::ok; }
    explicit operator bool() const noexcept { return ok(); }
    [[nodiscard]] errc code() const noexcept { return code_; }
    [[nodiscard]] const std::string& message() const noexcept { return message_; }
    [[nodiscard]] std::error_code error_code() const noexcept { return make_error_code(code_); }

    /// Throws polyplug::error when this is a failure.
    void throw_if_failed() const {
        if (!ok()) throw error(code_, message_);
    }

private:
    errc code_ = errc::ok;
    std::string message_;
};

POLYPLUG_END_NAMESPACE
