/* SPDX-License-Identifier: MIT */
/* A native plugin in C11: the stateless example.calc@1 contract and the two entry points. */
#include "example_calc.h"

#include <polyplug/abi.h>

#include <string.h>

/* The demo hot-reloads this bundle: examples/reload/ builds it again with C_CALC_V2 defined. */
#ifdef C_CALC_V2
static const char k_description[] = "C calc, version 2 (hot-reloaded)";
#else
static const char k_description[] = "C calc";
#endif

/* Stateless: the instance carries no data, only the contract id it was created for. */
static void calc_create(VmLoaderData loader_data, const HostApi* host, const void* args,
                        GuestContractInstance* out_instance) {
    (void)loader_data, (void)host, (void)args;
    out_instance->data = NULL;
    out_instance->contract_id = EXAMPLE_CALC_CONTRACT_ID;
}

static void calc_destroy(VmLoaderData loader_data, const HostApi* host,
                         GuestContractInstance instance) {
    (void)loader_data, (void)host, (void)instance;
}

static void set_error(AbiError* out_err, uint32_t code, const char* static_message) {
    out_err->code = code;
    out_err->message = polyplug_sv(static_message);
}

/* fn 0: wrapping add. Signed overflow is undefined in C, so add as unsigned and convert back. */
static void calc_add(GuestContractInstance instance, const void* args, void* out,
                     AbiError* out_err) {
    (void)instance;
    if (args == NULL || out == NULL) {
        set_error(out_err, AbiErrorCode_InvalidPointer, "c-calc add: args and out must be set");
        return;
    }
    const ExampleCalcAddArgs* in = (const ExampleCalcAddArgs*)args;
    const uint32_t sum = (uint32_t)in->a + (uint32_t)in->b;
    int32_t result;
    memcpy(&result, &sum, sizeof result); /* two's-complement reinterpretation, no UB */
    *(int32_t*)out = result;
    set_error(out_err, AbiErrorCode_Ok, NULL);
}

/* fn 1: a view of static text, so nothing needs freeing and it stays valid while loaded. */
static void calc_describe(GuestContractInstance instance, const void* args, void* out,
                          AbiError* out_err) {
    (void)instance, (void)args;
    if (out == NULL) {
        set_error(out_err, AbiErrorCode_InvalidPointer, "c-calc describe: out must be set");
        return;
    }
    StringView* view = (StringView*)out;
    view->ptr = (const uint8_t*)k_description;
    view->len = sizeof k_description - 1;
    set_error(out_err, AbiErrorCode_Ok, NULL);
}

/* The dispatch table, indexed by function id. It is declared with its real element type and
 * handed over as `const void* const*`, which avoids ISO C's missing function/object pointer
 * cast; the runtime only copies the entries. */
static const GuestContractFn k_functions[EXAMPLE_CALC_FUNCTION_COUNT] = {
    [EXAMPLE_CALC_FN_ADD] = calc_add,
    [EXAMPLE_CALC_FN_DESCRIBE] = calc_describe,
};

static const GuestContractInterface k_interface = {
    .contract_id = EXAMPLE_CALC_CONTRACT_ID,
    .contract_version = {EXAMPLE_CALC_VERSION_MAJOR, EXAMPLE_CALC_VERSION_MINOR,
                         EXAMPLE_CALC_VERSION_PATCH},
    .dispatch_type = DispatchType_Native,
    .create_instance = calc_create,
    .destroy_instance = calc_destroy,
    .dispatch = {.native = {.function_count = EXAMPLE_CALC_FUNCTION_COUNT,
                            .functions = (const void* const*)k_functions}},
};

POLYPLUG_PLUGIN_EXPORT uint32_t polyplug_abi_version(void) {
    return POLYPLUG_ABI_VERSION;
}

POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi* host, const BundleInitContext* ctx) {
    (void)ctx;
    AbiError err = {AbiErrorCode_Ok, {NULL, 0}};
    /* The static initialisers above need a constant; make sure it is the real id. */
    if (example_calc_contract_id() != EXAMPLE_CALC_CONTRACT_ID) {
        set_error(&err, AbiErrorCode_Generic, "c-calc: EXAMPLE_CALC_CONTRACT_ID is wrong");
        return err;
    }
    const PluginDescriptor descriptor = {
        .name = polyplug_sv("c-calc"),
        .contract_name = polyplug_sv(EXAMPLE_CALC_NAME),
        .version = {1, 0, 0},
    };
    host->register_guest_contract(host, &descriptor, &k_interface, &err);
    return err;
}
