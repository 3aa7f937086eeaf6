/* SPDX-License-Identifier: MIT */
/* A native plugin in C11: the example.calc@1 contract, the two entry points, and a call to the
 * host's host.example.Log@1 contract when the host registered one. */
#include "example_calc.h"

#include <polyplug/abi.h>

#include <stdio.h>
#include <string.h>

/* The demo hot-reloads this bundle: examples/reload/ builds it again with C_CALC_V2 defined. */
#ifdef C_CALC_V2
static const char k_name[] = "c-calc v2";
static const char k_description[] = "C calc, version 2 (hot-reloaded)";
#else
static const char k_name[] = "c-calc";
static const char k_description[] = "C calc";
#endif

/* Per instance: the host's optional host.example.Log@1, looked up once at creation (lookups
 * belong outside init; a host that did not register it leaves `log` NULL). */
typedef struct calc_instance {
    const HostContractInterface* log;
    HostContractInstance log_self;
} calc_instance;

static void calc_create(VmLoaderData loader_data, const HostApi* host, const void* args,
                        GuestContractInstance* out_instance) {
    (void)loader_data, (void)args;
    calc_instance* self =
        (calc_instance*)host->alloc(host, sizeof(calc_instance), _Alignof(calc_instance));
    out_instance->data = self;
    out_instance->contract_id = self != NULL ? EXAMPLE_CALC_CONTRACT_ID : 0; /* 0: failed */
    if (self == NULL) return;
    /* Host-contract versions are asked for packed, (major << 16) | minor: exactly major 1. */
    const uint32_t wanted = HOST_EXAMPLE_LOG_VERSION_MAJOR << 16;
    self->log = host->resolve_host_contract_interface(host, HOST_EXAMPLE_LOG_CONTRACT_ID, wanted);
    self->log_self = host->get_host_contract(host, HOST_EXAMPLE_LOG_CONTRACT_ID, wanted);
    if (self->log_self.data == NULL) self->log = NULL;
}

static void calc_destroy(VmLoaderData loader_data, const HostApi* host,
                         GuestContractInstance instance) {
    (void)loader_data;
    /* A singleton host contract's instance belongs to the host: nothing to release for it. */
    host->free(host, (uint8_t*)instance.data, sizeof(calc_instance), _Alignof(calc_instance));
}

static void set_error(AbiError* out_err, uint32_t code, const char* static_message) {
    out_err->code = code;
    out_err->message = polyplug_sv(static_message);
}

/* fn 0: wrapping add. Signed overflow is undefined in C, so add as unsigned and convert back. */
static void calc_add(GuestContractInstance instance, const void* args, void* out,
                     AbiError* out_err) {
    /* A NULL instance is a legal stateless one: it adds all the same, without the log. */
    const calc_instance* self = (const calc_instance*)instance.data;
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
    if (self != NULL && self->log != NULL) {
        /* Through the generated helper: a host whose table lacks `write` gets no call. The log
         * is best effort; its failure does not fail the addition. */
        char line[96];
        const int len = snprintf(line, sizeof line, "%s: add(%d, %d) = %d", k_name, (int)in->a,
                                 (int)in->b, (int)result);
        const StringView view = {(const uint8_t*)line, len > 0 ? (size_t)len : 0};
        (void)host_example_log_write(self->log, self->log_self, view);
    }
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
