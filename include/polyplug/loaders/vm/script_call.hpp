// SPDX-License-Identifier: MIT
/// @file loaders/vm/script_call.hpp
/// What every engine's `polyplug.call(contract, function, ...)` shares: finding the called
/// function and its marshalling plan by the names the script gives (compiled on the first call
/// to a contract, kept for the VM's life), the memory one call's argument and result structs
/// live in, and the call through vm_services with a C++ failure turned into an AbiError. An
/// engine keeps only what is its own: reading the script's arguments (vm::pull_arguments with
/// its codec), the words of its errors, and how it raises them.
#pragma once

#include <polyplug/abi.h>
#include <polyplug/call_arena.h>
#include <polyplug/config.hpp>
#include <polyplug/contract_file.hpp>
#include <polyplug/loaders/vm/plan.hpp>
#include <polyplug/loaders/vm/services.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>

POLYPLUG_BEGIN_NAMESPACE

namespace vm {

/// The functions a script has called through polyplug.call, by contract: plans compiled on
/// first use (a script calls few contracts, most of them never), kept for the VM's life.
class call_targets {
public:
    /// The plan of `contract`'s `function`, both named by the script; false with `error`
    /// ("contract 'x' is not in the bundle's contract file ...", "contract 'x' has no function
    /// 'y'"), which each engine words into its own error.
    [[nodiscard]] bool find(const vm_services& services, std::string_view contract,
                            std::string_view function, const contract_plan*& plan,
                            const function_plan*& f, std::string& error) {
        const contract_decl* decl = services.find_contract(contract, error);
        if (decl == nullptr) return false;
        const function_decl* fn = decl->find_function(function);
        if (fn == nullptr) {
            error = "contract '" + decl->name + "' has no function '" + std::string(function) + "'";
            return false;
        }
        auto it = plans_.find(decl);
        if (it == plans_.end()) it = plans_.emplace(decl, compile(services.api(), *decl)).first;
        plan = &it->second;
        f = &plan->functions[fn->id];
        return true;
    }

    /// Drops the plans (an engine tearing its VM down in an order of its own).
    void clear() noexcept { plans_.clear(); }

private:
    std::unordered_map<const contract_decl*, contract_plan> plans_;
};

/// The memory of one polyplug.call: its argument and result structs and what they point to,
/// in 2 KiB on the C stack, the host's allocator beyond that; `free` releases the latter.
/// Trivially destructible on purpose: an engine whose frame a script error leaves by longjmp
/// (Duktape) frees it before raising, and a longjmp must skip no destructor; an engine whose
/// frame a C++ exception may leave frees it from a guard of its own.
class call_scratch {
public:
    explicit call_scratch(const HostApi* host) noexcept {
        polyplug_arena_init(&arena_, storage_, sizeof storage_, host);
    }
    call_scratch(const call_scratch&) = delete;
    call_scratch& operator=(const call_scratch&) = delete;

    [[nodiscard]] CallArena* arena() noexcept { return &arena_; }

    /// `size` zeroed bytes at `align` (a struct whose padding the callee may read); nullptr for
    /// size 0 or when memory runs out.
    [[nodiscard]] std::uint8_t* zeroed(std::size_t size, std::size_t align) noexcept {
        auto* p = polyplug_arena_alloc(&arena_, size, align);
        if (p != nullptr) std::memset(p, 0, size);
        return p;
    }

    /// Frees what overflowed the C stack (a second call frees nothing).
    void free() noexcept { polyplug_arena_free(&arena_); }

private:
    alignas(16) std::uint8_t storage_[2048];
    CallArena arena_;
};
static_assert(std::is_trivially_destructible_v<call_scratch>, "a longjmp may skip it");

/// `fn` of `contract` through `services`, for polyplug.call: the callee's AbiError, or Generic
/// when the services ran out of memory (a message a script can show, not an exception that
/// would cross its VM).
[[nodiscard]] inline AbiError call_service(vm_services& services, const contract_decl& contract,
                                           const function_decl& fn, const void* args, void* out,
                                           CallArena* arena) noexcept {
    try {
        return services.call(contract, fn, args, out, arena);
    } catch (...) {
        return polyplug_call_error(AbiErrorCode_Generic, "out of memory in polyplug.call");
    }
}

}  // namespace vm

POLYPLUG_END_NAMESPACE
