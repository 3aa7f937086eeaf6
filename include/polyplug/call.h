/* SPDX-License-Identifier: MIT */
/**
 * @file call.h
 * Calling a contract function from C with every check a caller should make: a null interface,
 * a function id past the table, a missing entry and an unknown dispatch type each come back as
 * an AbiError (static message) instead of a crash. Native and VM guest contracts alike; the
 * typed helpers that `polyplug generate --lang c` writes call these two functions.
 * Needs only abi.h. C11, also C++.
 */
#ifndef POLYPLUG_CALL_H
#define POLYPLUG_CALL_H

#include <polyplug/abi.h>

#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

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
        GuestContractFn fn = NULL;
        if (fn_id >= iface->dispatch.native.function_count) {
            return polyplug_call_error(AbiErrorCode_FunctionNotAvailable,
                                       "the provider's table has no function with this id");
        }
        /* ISO C has no cast between object and function pointers: copy the entry bytewise. */
        memcpy(&fn, &iface->dispatch.native.functions[fn_id], sizeof fn);
        if (fn == NULL) {
            return polyplug_call_error(AbiErrorCode_FunctionNotAvailable,
                                       "the provider's table entry for this function is empty");
        }
        fn(instance, args, out, &err);
        return err;
    }
    if (iface->dispatch_type == DispatchType_VirtualMachine) {
        if (iface->dispatch.vm.call == NULL) {
            return polyplug_call_error(AbiErrorCode_FunctionNotAvailable,
                                       "the provider's VM dispatch function is empty");
        }
        iface->dispatch.vm.call(iface->dispatch.vm.loader_data, instance, fn_id, args, out, arena,
                                &err);
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
    if (fn_id >= iface->dispatch.native.function_count) {
        return polyplug_call_error(AbiErrorCode_FunctionNotAvailable,
                                   "the host contract's table has no function with this id");
    }
    memcpy(&fn, &iface->dispatch.native.functions[fn_id], sizeof fn);
    if (fn == NULL) {
        return polyplug_call_error(AbiErrorCode_FunctionNotAvailable,
                                   "the host contract's table entry for this function is empty");
    }
    fn(instance, args, out, &err);
    return err;
}

POLYPLUG_ABI_ASSERT(sizeof(GuestContractFn) == sizeof(const void*) &&
                        sizeof(HostContractFn) == sizeof(const void*),
                    "polyplug_call_* copy function-table entries bytewise");

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* POLYPLUG_CALL_H */
