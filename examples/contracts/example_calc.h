/* SPDX-License-Identifier: MIT */
/* The example.calc@1 contract shared by the example bundles and hosts (C11, also C++). */
/* Ids, argument structs and a checked function lookup; needs only <polyplug/abi.h>. */
#ifndef POLYPLUG_EXAMPLE_CALC_H
#define POLYPLUG_EXAMPLE_CALC_H

#include <polyplug/abi.h>

#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Contract name and version: identity is (name, major); minor and patch are informational. */
#define EXAMPLE_CALC_NAME "example.calc"
#define EXAMPLE_CALC_VERSION_MAJOR 1u
#define EXAMPLE_CALC_VERSION_MINOR 0u
#define EXAMPLE_CALC_VERSION_PATCH 0u

/** The id as a constant, for static initialisers; equals example_calc_contract_id(). Every host
 * looks providers up with the computed id, so a wrong constant here fails the example tests. */
#define EXAMPLE_CALC_CONTRACT_ID UINT64_C(0x1c2310712da78b06)

/** Function ids: zero-based, in declaration order. */
enum {
    EXAMPLE_CALC_FN_ADD = 0,      /**< args: ExampleCalcAddArgs; out: int32_t (wrapping a + b) */
    EXAMPLE_CALC_FN_DESCRIBE = 1, /**< args: NULL; out: StringView (static UTF-8 text) */
    EXAMPLE_CALC_FUNCTION_COUNT = 2
};

/** Arguments of `add`: the parameters in declaration order, laid out by C rules. */
typedef struct ExampleCalcAddArgs {
    int32_t a;
    int32_t b;
} ExampleCalcAddArgs;

/** guest_contract_id("example.calc", 1) = fnv1a64("guest_contract:example.calc@1"). */
static inline uint64_t example_calc_contract_id(void) {
    return polyplug_guest_contract_id(EXAMPLE_CALC_NAME, sizeof(EXAMPLE_CALC_NAME) - 1,
                                      EXAMPLE_CALC_VERSION_MAJOR);
}

POLYPLUG_ABI_ASSERT(sizeof(GuestContractFn) == sizeof(const void*),
                    "example_calc_function copies function-table entries bytewise");

/** Function `fn_id` of a resolved example.calc interface, or NULL when the interface is not
 * native or has no such function. The table holds `const void*` entries; ISO C has no cast
 * between object and function pointers, so the entry is copied bytewise (same size on every
 * platform polyplug supports). */
static inline GuestContractFn example_calc_function(const GuestContractInterface* iface,
                                                    uint32_t fn_id) {
    GuestContractFn fn = NULL;
    if (iface == NULL || iface->dispatch_type != DispatchType_Native) return NULL;
    if (fn_id >= iface->dispatch.native.function_count) return NULL;
    memcpy(&fn, &iface->dispatch.native.functions[fn_id], sizeof fn);
    return fn;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* POLYPLUG_EXAMPLE_CALC_H */
