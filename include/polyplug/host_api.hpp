// SPDX-License-Identifier: MIT
/// @file host_api.hpp
/// Builds the HostApi function table for a runtime_core: one static thunk per field. Every thunk
/// tolerates a null `self` (spec §8.1), checks `out_err` before writing it, and never lets an
/// exception out: failures become an AbiError code plus the detail in last_error.
#pragma once

#include <polyplug/detail/path_text.hpp>
#include <polyplug/runtime_core.hpp>

#include <cstring>
#include <new>
#include <string_view>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

inline constexpr std::string_view null_host_message = "null HostApi pointer";

struct host_api_thunks {
    static runtime_core* core_of(const HostApi* self) noexcept {
        return runtime_core::from_host_api(self);
    }

    static void set(AbiError* out_err, std::uint32_t code, std::string_view message = {}) noexcept {
        if (out_err == nullptr) return;
        out_err->code = code;
        out_err->message = message.empty() ? StringView{nullptr, 0} : string_view_of(message);
    }

    // Spec §8.1: load/reload/unload failures report Generic (or their ABI code) with a null
    // message; the detail is in last_error.
    static void report(AbiError* out_err, const status& st) noexcept {
        set(out_err, to_abi_code(st.code()));
    }

    // Runs `body`, turning an escaping exception (allocation failure, a bug) into Generic and a
    // last_error entry rather than unwinding into C.
    template <class Body>
    static void guarded(runtime_core* core, AbiError* out_err, Body&& body) noexcept {
        try {
            body();
        } catch (const std::exception& e) {
            set(out_err, AbiErrorCode_Generic);
            try {
                core->last_error().set(std::string("internal error: ") + e.what());
            } catch (...) {
            }
        } catch (...) {
            set(out_err, AbiErrorCode_Generic);
        }
    }

    // Paths arrive as UTF-8 bytes: null, non-UTF-8 and embedded NUL are refused before anything
    // is touched.
    static bool path_from_bytes(runtime_core* core, const std::uint8_t* path, std::size_t len,
                                std::string_view operation, AbiError* out_err,
                                std::filesystem::path& out) {
        if (path == nullptr) {
            core->record_failure({errc::invalid_pointer, std::string(operation) + ": null path"});
            set(out_err, AbiErrorCode_InvalidPointer, "null path");
            return false;
        }
        if (!is_valid_utf8(path, len)) {
            core->record_failure(
                {errc::invalid_utf8, std::string(operation) + ": path is not valid UTF-8"});
            set(out_err, AbiErrorCode_Generic);
            return false;
        }
        std::filesystem::path candidate(std::string(reinterpret_cast<const char*>(path), len));
        if (const status refused = check_path_text(candidate, operation); !refused) {
            core->record_failure(refused);
            set(out_err, to_abi_code(refused.code()));
            return false;
        }
        out = std::move(candidate);
        return true;
    }

    static void register_guest_contract(const HostApi* self, const PluginDescriptor* descriptor,
                                        const GuestContractInterface* iface,
                                        AbiError* out_err) noexcept {
        runtime_core* core = core_of(self);
        if (core == nullptr) return set(out_err, AbiErrorCode_InvalidPointer, null_host_message);
        guarded(core, out_err, [&] {
            const registration_failure failure = core->register_guest_contract(descriptor, iface);
            set(out_err, to_abi_code(failure.code), failure.abi_message);
        });
    }

    static std::uint8_t* alloc(const HostApi*, std::size_t size, std::size_t align) noexcept {
        return host_alloc(size, align);
    }

    static void free(const HostApi*, std::uint8_t* ptr, std::size_t size,
                     std::size_t align) noexcept {
        host_free(ptr, size, align);
    }

    static GuestContractHandle find_guest_contract(const HostApi* self, std::uint64_t contract_id,
                                                   std::uint32_t min_version) noexcept {
        runtime_core* core = core_of(self);
        if (core == nullptr) return polyplug_null_handle();
        try {
            return core->find(contract_id, min_version);
        } catch (...) {
            return polyplug_null_handle();
        }
    }

    static ArrayOf_GuestContractHandle find_all_guest_contracts(
        const HostApi* self, std::uint64_t contract_id, std::uint32_t min_version) noexcept {
        ArrayOf_GuestContractHandle result{nullptr, 0, alignof(GuestContractHandle)};
        runtime_core* core = core_of(self);
        if (core == nullptr) return result;
        try {
            core->find_all(
                contract_id, min_version,
                [&](std::size_t count) {
                    if (count == 0) return false;
                    result.items = reinterpret_cast<GuestContractHandle*>(host_alloc(
                        count * sizeof(GuestContractHandle), alignof(GuestContractHandle)));
                    return result.items != nullptr;
                },
                [&](GuestContractHandle handle) { result.items[result.len++] = handle; });
        } catch (...) {
        }
        return result;
    }

    static const GuestContractInterface* resolve_guest_contract(
        const HostApi* self, GuestContractHandle handle) noexcept {
        runtime_core* core = core_of(self);
        if (core == nullptr) return nullptr;
        const GuestContractInterface* iface = core->resolve(handle);
        // The null handle is "nothing asked": no error. Anything else that fails is explained.
        if (iface == nullptr && !polyplug_handle_is_null(handle)) {
            try {
                core->last_error().set("resolve_guest_contract: " +
                                       std::string(core->contracts().diagnose(handle)));
            } catch (...) {
            }
        }
        return iface;
    }

    static HostContractInstance get_host_contract(const HostApi* self, std::uint64_t contract_id,
                                                  std::uint32_t min_version) noexcept {
        runtime_core* core = core_of(self);
        if (core == nullptr) return {nullptr};
        try {
            status why;
            const HostContractInstance instance =
                core->host_contracts().instance(contract_id, min_version, why);
            core->record_failure(why);
            return instance;
        } catch (...) {
            return {nullptr};
        }
    }

    static const HostContractInterface* resolve_host_contract_interface(
        const HostApi* self, std::uint64_t contract_id, std::uint32_t min_version) noexcept {
        runtime_core* core = core_of(self);
        if (core == nullptr) return nullptr;
        try {
            status why;
            const HostContractInterface* iface =
                core->host_contracts().match(contract_id, min_version, why);
            if (iface == nullptr) core->record_failure(why);
            return iface;
        } catch (...) {
            return nullptr;
        }
    }

    template <class ArrayType, class Element>
    static ArrayType to_host_array(const std::vector<Element>& values) noexcept {
        ArrayType result{nullptr, 0, alignof(Element)};
        if (values.empty()) return result;
        result.items = reinterpret_cast<Element*>(
            host_alloc(values.size() * sizeof(Element), alignof(Element)));
        if (result.items == nullptr) return result;
        std::memcpy(static_cast<void*>(result.items), values.data(),
                    values.size() * sizeof(Element));
        result.len = values.size();
        return result;
    }

    static ArrayOf_BundleId list_bundles(const HostApi* self) noexcept {
        runtime_core* core = core_of(self);
        if (core == nullptr) return {nullptr, 0, alignof(BundleId)};
        try {
            return to_host_array<ArrayOf_BundleId>(core->bundle_ids());
        } catch (...) {
            return {nullptr, 0, alignof(BundleId)};
        }
    }

    static ArrayOf_DependencyInfo get_dependencies(const HostApi* self) noexcept {
        runtime_core* core = core_of(self);
        if (core == nullptr) return {nullptr, 0, alignof(DependencyInfo)};
        try {
            return to_host_array<ArrayOf_DependencyInfo>(core->current_dependencies());
        } catch (...) {
            return {nullptr, 0, alignof(DependencyInfo)};
        }
    }

    static void load_bundle(const HostApi* self, const std::uint8_t* path, std::size_t len,
                            AbiError* out_err) noexcept {
        runtime_core* core = core_of(self);
        if (core == nullptr) return set(out_err, AbiErrorCode_InvalidPointer, null_host_message);
        guarded(core, out_err, [&] {
            std::filesystem::path bundle_path;
            if (!path_from_bytes(core, path, len, "load_bundle", out_err, bundle_path)) return;
            report(out_err, core->load_bundle(bundle_path));
        });
    }

    static void reload_bundle(const HostApi* self, const std::uint8_t* path, std::size_t len,
                              AbiError* out_err) noexcept {
        runtime_core* core = core_of(self);
        if (core == nullptr) return set(out_err, AbiErrorCode_InvalidPointer, null_host_message);
        guarded(core, out_err, [&] {
            std::filesystem::path bundle_path;
            if (!path_from_bytes(core, path, len, "reload_bundle", out_err, bundle_path)) return;
            report(out_err, core->reload_bundle(bundle_path));
        });
    }

    static void register_host_contract(const HostApi* self, const HostContractInterface* iface,
                                       AbiError* out_err) noexcept {
        runtime_core* core = core_of(self);
        if (core == nullptr) return set(out_err, AbiErrorCode_InvalidPointer, null_host_message);
        guarded(core, out_err, [&] {
            const status st = core->register_host_contract(iface);
            if (st.code() == errc::duplicate_host_contract)
                set(out_err, AbiErrorCode_Generic, "duplicate host contract registration");
            else if (st.code() == errc::invalid_pointer)
                set(out_err, AbiErrorCode_InvalidPointer, "invalid host contract interface");
            else
                report(out_err, st);
        });
    }

    static void register_loader(const HostApi* self, void* loader_ptr, AbiError* out_err) noexcept {
        runtime_core* core = core_of(self);
        if (core == nullptr) return set(out_err, AbiErrorCode_InvalidPointer, null_host_message);
        guarded(core, out_err, [&] {
            report(out_err, core->register_loader(static_cast<BundleLoader*>(loader_ptr)));
        });
    }

    static std::size_t get_last_error(const HostApi* self, std::uint8_t* buf,
                                      std::size_t buf_len) noexcept {
        runtime_core* core = core_of(self);
        if (core == nullptr) return 0;
        return core->last_error().take(buf, buf_len);
    }

    static std::size_t get_error_len(const HostApi* self) noexcept {
        runtime_core* core = core_of(self);
        if (core == nullptr) return null_host_message.size();
        return core->last_error().length();
    }

    static void unload_bundle(const HostApi* self, std::uint64_t bundle_id,
                              AbiError* out_err) noexcept {
        runtime_core* core = core_of(self);
        if (core == nullptr) return set(out_err, AbiErrorCode_InvalidPointer, null_host_message);
        guarded(core, out_err, [&] { report(out_err, core->unload_bundle(bundle_id)); });
    }

    static void log(const HostApi* self, std::uint32_t level, StringView scope,
                    StringView message) noexcept {
        runtime_core* core = core_of(self);
        if (core == nullptr) return;
        const log_level clamped = clamp_log_level(level);
        if (!core->logger().enabled(clamped)) return;
        try {
            // Copied before the sink sees them: the guest's buffers are only borrowed.
            const std::string scope_text = utf8_lossy(scope.ptr, scope.len, 256);
            const std::string message_text = utf8_lossy(message.ptr, message.len, 64 * 1024);
            core->logger().log(clamped, scope_text, message_text);
        } catch (...) {
        }
    }

    static void create_guest_instance(const HostApi* self, const GuestContractInterface* iface,
                                      const void* args,
                                      GuestContractInstance* out_instance) noexcept {
        runtime_core* core = core_of(self);
        if (core == nullptr) {
            if (out_instance != nullptr) *out_instance = {nullptr, 0};
            return;
        }
        try {
            core->create_instance(iface, args, out_instance);
        } catch (...) {
            if (out_instance != nullptr) *out_instance = {nullptr, 0};
        }
    }

    static void destroy_guest_instance(const HostApi* self, const GuestContractInterface* iface,
                                       GuestContractInstance instance) noexcept {
        runtime_core* core = core_of(self);
        if (core == nullptr) return;
        try {
            core->destroy_instance(iface, instance);
        } catch (...) {
        }
    }

    static const std::uint64_t* revision_counter(const HostApi* self) noexcept {
        runtime_core* core = core_of(self);
        return core == nullptr ? nullptr : core->revision_counter();
    }
};

}  // namespace detail

/// The HostApi table of `core`: every function pointer set, `runtime` = core, `reserved` NULL.
[[nodiscard]] inline HostApi make_host_api(runtime_core& core) noexcept {
    using t = detail::host_api_thunks;
    HostApi api{};
    api.runtime = &core;
    api.register_guest_contract = &t::register_guest_contract;
    api.alloc = &t::alloc;
    api.free = &t::free;
    api.find_guest_contract = &t::find_guest_contract;
    api.find_all_guest_contracts = &t::find_all_guest_contracts;
    api.resolve_guest_contract = &t::resolve_guest_contract;
    api.get_host_contract = &t::get_host_contract;
    api.resolve_host_contract_interface = &t::resolve_host_contract_interface;
    api.list_bundles = &t::list_bundles;
    api.get_dependencies = &t::get_dependencies;
    api.load_bundle = &t::load_bundle;
    api.reload_bundle = &t::reload_bundle;
    api.register_host_contract = &t::register_host_contract;
    api.register_loader = &t::register_loader;
    api.get_last_error = &t::get_last_error;
    api.get_error_len = &t::get_error_len;
    api.unload_bundle = &t::unload_bundle;
    api.log = &t::log;
    api.create_guest_instance = &t::create_guest_instance;
    api.destroy_guest_instance = &t::destroy_guest_instance;
    api.revision_counter = &t::revision_counter;
    api.reserved = nullptr;
    return api;
}

POLYPLUG_END_NAMESPACE
