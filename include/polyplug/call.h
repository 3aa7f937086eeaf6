/* SPDX-License-Identifier: MIT */
/**
 * @file call.h
 * Calling a contract function from C with every check a caller should make: a null interface,
 * a function id past the table, a missing entry and an unknown dispatch type each come back as
 * an AbiError (static message) instead of a crash. Native and VM guest contracts alike; the
 * typed helpers that `polyplug generate --lang c` writes call these two functions.
 * Needs only abi.h. C11, also C++.
 *
 * The runtime rewrites the entries of its interface copies (function count, table pointer, table
 * entries, VM call function and loader data) with atomic release stores while other threads call
 * through them (hot reload, unload). Every such field is read here with an acquire load, never a
 * plain one: a plain read racing those stores is a data race (undefined behaviour, reported by
 * ThreadSanitizer). Code that reads an entry by hand should use polyplug_guest_fn /
 * polyplug_host_fn.
 */
#ifndef POLYPLUG_CALL_H
#define POLYPLUG_CALL_H

#include <polyplug/abi.h>

#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* C11's <stdatomic.h> works on _Atomic objects only, and the ABI's fields are plain: the
 * GCC/Clang builtins load plain objects atomically, in C and in C++ alike. */
#if defined(__GNUC__) || defined(__clang__)
#define POLYPLUG_LOAD_ACQUIRE(ptr) __atomic_load_n((ptr), __ATOMIC_ACQUIRE)
#else
#error "polyplug/call.h needs GCC or Clang (__atomic_load_n) to read function tables atomically"
#endif

/**
 * Entry `fn_id` of a native function table, read atomically (acquire), or NULL when the table
 * has no such function or the entry is empty. The count is read before the table: the runtime
 * publishes a bigger table before a bigger count. Guest and host contracts share it.
 */
static inline const void* polyplug_native_entry(const NativeDispatch* native, uint32_t fn_id) {
    const void* const* table;
    if (fn_id >= POLYPLUG_LOAD_ACQUIRE(&native->function_count)) return NULL;
    table = POLYPLUG_LOAD_ACQUIRE(&native->functions);
    if (table == NULL) return NULL;
    return POLYPLUG_LOAD_ACQUIRE(&table[fn_id]);
}

/**
 * Entry `fn_id` of a guest contract's native function table (see polyplug_native_entry), or NULL
 * when the interface is NULL, not native, has no such function or the entry is empty.
 */
static inline GuestContractFn polyplug_guest_fn(const GuestContractInterface* iface,
                                                uint32_t fn_id) {
    GuestContractFn fn = NULL;
    const void* entry;
    if (iface == NULL || iface->dispatch_type != DispatchType_Native) return NULL;
    entry = polyplug_native_entry(&iface->dispatch.native, fn_id);
    /* ISO C has no cast between object and function pointers: copy the entry's bytes. */
    memcpy(&fn, &entry, sizeof fn);
    return fn;
}

/** The same for a host contract's table (host contracts dispatch natively). */
static inline HostContractFn polyplug_host_fn(const HostContractInterface* iface, uint32_t fn_id) {
    HostContractFn fn = NULL;
    const void* entry;
    if (iface == NULL || iface->dispatch_type != DispatchType_Native) return NULL;
    entry = polyplug_native_entry(&iface->dispatch.native, fn_id);
    memcpy(&fn, &entry, sizeof fn);
    return fn;
}

/** An error with a static message (never freed, as every runtime message). */
static inline AbiError polyplug_call_error(uint32_t code, const char* message) {
    AbiError err;
    err.code = code;
    err.message = polyplug_sv(message);
    return err;
}

/**
 * Calls function `fn_id` of a resolved guest contract interface. `args` points to the function's
 * argument struct (NULL when it has no parameters), `out` to storage for its result (NULL when
 * it returns nothing). `arena` is used by VM guests for variable-size results; NULL makes them
 * allocate those through the host allocator instead (free them with HostApi.free).
 * Returns the callee's AbiError; FunctionNotAvailable when the interface is NULL, has no such
 * function or an unknown dispatch type.
 */
static inline AbiError polyplug_call_guest(const GuestContractInterface* iface,
                                           GuestContractInstance instance, uint32_t fn_id,
                                           const void* args, void* out, CallArena* arena) {
    AbiError err = polyplug_call_error(AbiErrorCode_Ok, NULL);
    if (iface == NULL) {
        return polyplug_call_error(AbiErrorCode_FunctionNotAvailable,
                                   "no interface: the contract was not resolved");
    }
    if (iface->dispatch_type == DispatchType_Native) {
        GuestContractFn fn;
        if (fn_id >= POLYPLUG_LOAD_ACQUIRE(&iface->dispatch.native.function_count)) {
            return polyplug_call_error(AbiErrorCode_FunctionNotAvailable,
                                       "the provider's table has no function with this id");
        }
        fn = polyplug_guest_fn(iface, fn_id);
        if (fn == NULL) {
            return polyplug_call_error(AbiErrorCode_FunctionNotAvailable,
                                       "the provider's table entry for this function is empty");
        }
        fn(instance, args, out, &err);
        return err;
    }
    if (iface->dispatch_type == DispatchType_VirtualMachine) {
        /* The runtime stores the loader data before the call function (both release): loading
         * the function first (acquire) makes the data at least as new. */
        VmCallFn call = POLYPLUG_LOAD_ACQUIRE(&iface->dispatch.vm.call);
        VmLoaderData data;
        if (call == NULL) {
            return polyplug_call_error(AbiErrorCode_FunctionNotAvailable,
                                       "the provider's VM dispatch function is empty");
        }
        data.data = POLYPLUG_LOAD_ACQUIRE(&iface->dispatch.vm.loader_data.data);
        call(data, instance, fn_id, args, out, arena, &err);
        return err;
    }
    return polyplug_call_error(AbiErrorCode_FunctionNotAvailable,
                               "the interface has an unknown dispatch type");
}

/**
 * Calls function `fn_id` of a host contract interface (what a plugin gets from
 * HostApi.get_host_contract), with the same checks. Host contracts dispatch natively.
 */
static inline AbiError polyplug_call_host(const HostContractInterface* iface,
                                          HostContractInstance instance, uint32_t fn_id,
                                          const void* args, void* out) {
    AbiError err = polyplug_call_error(AbiErrorCode_Ok, NULL);
    HostContractFn fn = NULL;
    if (iface == NULL) {
        return polyplug_call_error(AbiErrorCode_FunctionNotAvailable,
                                   "no interface: the host contract was not found");
    }
    if (iface->dispatch_type != DispatchType_Native) {
        return polyplug_call_error(AbiErrorCode_FunctionNotAvailable,
                                   "the host contract does not dispatch natively");
    }
    if (fn_id >= POLYPLUG_LOAD_ACQUIRE(&iface->dispatch.native.function_count)) {
        return polyplug_call_error(AbiErrorCode_FunctionNotAvailable,
                                   "the host contract's table has no function with this id");
    }
    fn = polyplug_host_fn(iface, fn_id);
    if (fn == NULL) {
        return polyplug_call_error(AbiErrorCode_FunctionNotAvailable,
                                   "the host contract's table entry for this function is empty");
    }
    fn(instance, args, out, &err);
    return err;
}

POLYPLUG_ABI_ASSERT(sizeof(GuestContractFn) == sizeof(const void*) &&
                        sizeof(HostContractFn) == sizeof(const void*),
                    "polyplug_guest_fn and polyplug_host_fn copy function-table entries bytewise");

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* POLYPLUG_CALL_H */
