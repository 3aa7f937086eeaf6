// SPDX-License-Identifier: MIT
/// @file loaders/vm/services.hpp
/// What the runtime gives a script engine besides the script: `vm_services` (logging, and the
/// calls a script makes through its `polyplug` module into host contracts and other bundles),
/// `result_allocator` (where a guest call's variable-size results go) and the names of
/// AbiError codes that engines put into the errors they raise in scripts. Apart from vm.hpp's
/// loader so that the pieces engines share for `polyplug.call` (vm/script_call.hpp) can use it.
#pragma once

#include <polyplug/abi.h>
#include <polyplug/call.h>
#include <polyplug/call_arena.h>
#include <polyplug/config.hpp>
#include <polyplug/contract_file.hpp>
#include <polyplug/detail/utf8.hpp>
#include <polyplug/ids.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE

/// An AbiErrorCode's name ("ReentrantCall"), for the errors engines raise inside scripts when a
/// call the script made through `polyplug.call` fails; "Error" for codes without one.
[[nodiscard]] constexpr const char* abi_error_code_name(std::uint32_t code) noexcept {
    switch (code) {
        case AbiErrorCode_Generic:
            return "Generic";
        case AbiErrorCode_BufferTooSmall:
            return "BufferTooSmall";
        case AbiErrorCode_Panic:
            return "Panic";
        case AbiErrorCode_NotFound:
            return "NotFound";
        case AbiErrorCode_StaleHandle:
            return "StaleHandle";
        case AbiErrorCode_FunctionNotAvailable:
            return "FunctionNotAvailable";
        case AbiErrorCode_DuplicateProvider:
            return "DuplicateProvider";
        case AbiErrorCode_InvalidPointer:
            return "InvalidPointer";
        case AbiErrorCode_ReentrantCall:
            return "ReentrantCall";
        case AbiErrorCode_HostContractNotFound:
            return "HostContractNotFound";
        case AbiErrorCode_HostContractVersionMismatch:
            return "HostContractVersionMismatch";
        case AbiErrorCode_HostContractCallFailed:
            return "HostContractCallFailed";
        default:
            return "Error";
    }
}

/// Where variable-size results go: the caller's CallArena, or HostApi.alloc without one (the
/// caller then frees with HostApi.free, size and alignment as allocated).
class result_allocator {
public:
    result_allocator(CallArena* arena, const HostApi* host) noexcept : arena_(arena), host_(host) {}

    /// `size` bytes at `align`; nullptr for size 0 or when memory runs out.
    [[nodiscard]] void* allocate(std::size_t size, std::size_t align) const noexcept {
        if (size == 0) return nullptr;
        if (arena_ != nullptr) return polyplug_arena_alloc(arena_, size, align);
        return host_ != nullptr ? host_->alloc(host_, size, align) : nullptr;
    }

private:
    CallArena* arena_;
    const HostApi* host_;
};

/// What a script may do with the runtime: log, and call host contracts and other bundles'
/// guest contracts that its contract file declares. Engines expose this to scripts as their
/// `polyplug` module; marshalling stays the engine's (it has the values).
class vm_services {
public:
    vm_services(const HostApi* host, const contract_file& api, std::string bundle_name)
        : host_(host), api_(api), bundle_name_(std::move(bundle_name)) {}
    vm_services(const vm_services&) = delete;
    vm_services& operator=(const vm_services&) = delete;
    ~vm_services() {
        for (auto& [id, target] : host_targets_) {
            if (target.iface != nullptr && !target.iface->singleton &&
                target.instance.data != nullptr)
                target.iface->destroy_instance(target.iface, target.instance);
        }
        for (auto& [id, target] : guest_targets_) {
            if (target.iface != nullptr && target.instance.contract_id != 0)
                host_->destroy_guest_instance(host_, target.iface, target.instance);
        }
    }

    [[nodiscard]] const HostApi* host() const noexcept { return host_; }
    [[nodiscard]] const contract_file& api() const noexcept { return api_; }
    [[nodiscard]] const std::string& bundle_name() const noexcept { return bundle_name_; }

    /// The level a script asked for as a LogLevel: 1 (error) to 5 (trace), anything else
    /// (0, 7, 2^32 + 1, NaN) info. Taken as a double so that no script integer wraps into range.
    [[nodiscard]] static std::uint32_t log_level(double requested) noexcept {
        return requested >= double{LogLevel_Error} && requested <= double{LogLevel_Trace}
                   ? static_cast<std::uint32_t>(requested)
                   : static_cast<std::uint32_t>(LogLevel_Info);
    }

    /// A log record through the runtime, scoped by the bundle's name. Level 1 (error) to 5.
    void log(std::uint32_t level, std::string_view message) const {
        if (level < LogLevel_Error || level > LogLevel_Trace) level = LogLevel_Info;
        host_->log(host_, level, detail::string_view_of(bundle_name_),
                   detail::string_view_of(message));
    }

    /// The contract named `name` in the bundle's contract file (guest or host), or nullptr with
    /// a message naming what is there.
    [[nodiscard]] const contract_decl* find_contract(std::string_view name,
                                                     std::string& error) const {
        std::vector<std::string> names;
        for (const auto* list : {&api_.guest_contracts, &api_.host_contracts}) {
            for (const contract_decl& c : *list) {
                if (c.name == name) return &c;
            }
        }
        // Not found: the names, for the suggestion (not built on the path that finds one).
        for (const auto* list : {&api_.guest_contracts, &api_.host_contracts}) {
            for (const contract_decl& c : *list) names.push_back(c.name);
        }
        error = "contract '" + std::string(name) + "' is not in the bundle's contract file " +
                api_.source +
                detail::api_toml::did_you_mean(detail::api_toml::closest(name, names));
        return nullptr;
    }

    /// Calls `fn` of `contract` (a host contract, or another bundle's guest contract) with
    /// marshalled `args`; variable-size results land in `arena`. The AbiError is the callee's.
    [[nodiscard]] AbiError call(const contract_decl& contract, const function_decl& fn,
                                const void* args, void* out, CallArena* arena) {
        if (contract.side == contract_side::host) {
            // One instance per host contract for the VM's life (a non-singleton host contract
            // makes a new one per get_host_contract; it is destroyed with the services).
            host_target& target = host_targets_[contract.id];
            if (target.iface == nullptr) {
                const std::uint32_t want = pack_host_version(contract.version.major, 0);
                const HostContractInterface* iface =
                    host_->resolve_host_contract_interface(host_, contract.id, want);
                if (iface == nullptr) {
                    return polyplug_call_error(AbiErrorCode_HostContractNotFound,
                                               "the host does not offer this host contract");
                }
                target.instance = host_->get_host_contract(host_, contract.id, want);
                target.iface = iface;
            }
            return polyplug_call_host(target.iface, target.instance, fn.id, args, out);
        }
        guest_target& target = guest_targets_[contract.id];
        if (target.iface == nullptr) {
            const GuestContractHandle handle =
                host_->find_guest_contract(host_, contract.id, contract.version.major);
            target.iface = host_->resolve_guest_contract(host_, handle);
            if (target.iface == nullptr) {
                return polyplug_call_error(AbiErrorCode_NotFound,
                                           "no loaded bundle provides this contract");
            }
            host_->create_guest_instance(host_, target.iface, nullptr, &target.instance);
        }
        return polyplug_call_guest(target.iface, target.instance, fn.id, args, out, arena);
    }

private:
    struct guest_target {
        const GuestContractInterface* iface = nullptr;
        GuestContractInstance instance{nullptr, 0};
    };
    struct host_target {
        const HostContractInterface* iface = nullptr;
        HostContractInstance instance{nullptr};
    };

    const HostApi* host_;
    const contract_file& api_;
    std::string bundle_name_;
    std::map<std::uint64_t, guest_target> guest_targets_;  // one instance per called contract
    std::map<std::uint64_t, host_target> host_targets_;
};

POLYPLUG_END_NAMESPACE
