// SPDX-License-Identifier: MIT
/// @file dispatch.hpp
/// Calling through contract tables from C++: the cast from a table entry (`const void*`) to a
/// function pointer, and `call`, which dispatches native and VM contracts alike.
#pragma once

#include <polyplug/config.hpp>

#include <atomic>
#include <cstdint>

POLYPLUG_BEGIN_NAMESPACE

/// A function-table entry as the function pointer type `Fn` (`GuestContractFn`,
/// `HostContractFn`). The ABI stores entries as `const void*`; this is the one place that
/// converts them back.
template <class Fn>
[[nodiscard]] inline Fn function_cast(const void* entry) noexcept {
    return reinterpret_cast<Fn>(const_cast<void*>(entry));
}

namespace detail {
// The runtime rewrites its interface copies in place during a reload while other threads call
// through them. Reading with acquire loads keeps those reads race-free; on x86-64 and AArch64 an
// acquire load of an aligned word is an ordinary load, so this costs nothing.
template <class T>
[[nodiscard]] inline T load_acquire(const T& field) noexcept {
    return std::atomic_ref<T>(const_cast<T&>(field)).load(std::memory_order_acquire);
}
}  // namespace detail

/// The native function `fn_id` of a guest contract, or nullptr if the contract is VM-dispatched
/// or `fn_id >= function_count`.
[[nodiscard]] inline GuestContractFn guest_function(const GuestContractInterface& iface,
                                                    std::uint32_t fn_id) noexcept {
    if (iface.dispatch_type != DispatchType_Native ||
        fn_id >= detail::load_acquire(iface.dispatch.native.function_count))
        return nullptr;
    const void* const* table = detail::load_acquire(iface.dispatch.native.functions);
    return function_cast<GuestContractFn>(detail::load_acquire(table[fn_id]));
}

/// Calls function `fn_id` of a guest contract, native or VM, and returns its error.
/// `FunctionNotAvailable` when `fn_id` is out of range. This costs one bounds check and one
/// branch over the raw table call; hot loops can keep `guest_function`'s pointer instead.
[[nodiscard]] inline AbiError call(const GuestContractInterface& iface,
                                   GuestContractInstance instance, std::uint32_t fn_id,
                                   const void* args, void* out,
                                   CallArena* arena = nullptr) noexcept {
    AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
    if (iface.dispatch_type == DispatchType_VirtualMachine) {
        // The function first: a reload publishes the new data before the new function.
        const VmCallFn vm_call = detail::load_acquire(iface.dispatch.vm.call);
        const VmLoaderData data{detail::load_acquire(iface.dispatch.vm.loader_data.data)};
        vm_call(data, instance, fn_id, args, out, arena, &err);
    } else if (const GuestContractFn fn = guest_function(iface, fn_id)) {
        fn(instance, args, out, &err);
    } else {
        err.code = AbiErrorCode_FunctionNotAvailable;
    }
    return err;
}

/// The native function `fn_id` of a host contract, or nullptr (VM-dispatched or out of range).
[[nodiscard]] inline HostContractFn host_function(const HostContractInterface& iface,
                                                  std::uint32_t fn_id) noexcept {
    if (iface.dispatch_type != DispatchType_Native || fn_id >= iface.dispatch.native.function_count)
        return nullptr;
    return function_cast<HostContractFn>(iface.dispatch.native.functions[fn_id]);
}

POLYPLUG_END_NAMESPACE
