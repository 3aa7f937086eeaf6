/* SPDX-License-Identifier: MIT */
/* A C11 host on libpolyplug.so alone: a RuntimeConfig with reload and log callbacks, a host
 * contract implemented here in C (host.example.Log@1, which the C bundle calls), discovery
 * through the built-in host.polyplug.Runtime@1 contract, calls through the typed helpers of the
 * generated example_calc.h, a hot reload with its phases, and the error paths (AbiError codes,
 * last_error). */
#include "example_calc.h"

#include <polyplug/abi.h>
#include <polyplug/runtime_contract.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- host.example.Log@1, implemented by this host -------------------------------------------- */

/* What the plugins wrote, counted; the line itself is printed. */
typedef struct log_sink {
    unsigned lines;
} log_sink;

static void log_write(HostContractInstance instance, const void* args, void* out, AbiError* err) {
    (void)out;
    log_sink* sink = (log_sink*)instance.data;
    const HostExampleLogWriteArgs* in = (const HostExampleLogWriteArgs*)args;
    if (sink == NULL || in == NULL) {
        err->code = AbiErrorCode_InvalidPointer;
        err->message = polyplug_sv("host.example.Log.write: instance and args must be set");
        return;
    }
    printf("  [plugin log] %.*s\n", (int)in->line.len, (const char*)in->line.ptr);
    ++sink->lines;
}

static log_sink g_sink = {0};

/* A singleton: every get_host_contract returns this one instance. NULL data would mean "not
 * found" to the caller, so the instance is the sink itself. */
static void log_create(const HostContractInterface* self, const void* args,
                       HostContractInstance* out_instance) {
    (void)args;
    out_instance->data = self->user_data;
}

static void log_destroy(const HostContractInterface* self, HostContractInstance instance) {
    (void)self, (void)instance;
}

/* The runtime stores the interface by reference: it must outlive the runtime (static here). */
static const void* g_log_functions[HOST_EXAMPLE_LOG_FUNCTION_COUNT];
static HostContractInterface g_log_interface;

static void register_log_contract(const HostApi* host, int* failures) {
    g_log_functions[HOST_EXAMPLE_LOG_FN_WRITE] = POLYPLUG_FN_ENTRY(log_write);
    g_log_interface.contract_id = HOST_EXAMPLE_LOG_CONTRACT_ID;
    g_log_interface.contract_version.major = HOST_EXAMPLE_LOG_VERSION_MAJOR;
    g_log_interface.contract_version.minor = HOST_EXAMPLE_LOG_VERSION_MINOR;
    g_log_interface.singleton = HOST_EXAMPLE_LOG_SINGLETON;
    g_log_interface.dispatch_type = DispatchType_Native;
    g_log_interface.user_data = &g_sink;
    g_log_interface.create_instance = log_create;
    g_log_interface.destroy_instance = log_destroy;
    g_log_interface.dispatch.native.function_count = HOST_EXAMPLE_LOG_FUNCTION_COUNT;
    g_log_interface.dispatch.native.functions = g_log_functions;
    AbiError err = {AbiErrorCode_Ok, {NULL, 0}};
    host->register_host_contract(host, &g_log_interface, &err);
    if (err.code != AbiErrorCode_Ok) {
        fprintf(stderr, "register_host_contract failed with code %u\n", (unsigned)err.code);
        ++*failures;
    }
}

/* ---- RuntimeConfig callbacks ---------------------------------------------------------------- */

static const char* phase_name(uint32_t phase) {
    switch (phase) {
        case ReloadPhaseType_Preparing:
            return "Preparing";
        case ReloadPhaseType_Reloaded:
            return "Reloaded";
        case ReloadPhaseType_Failed:
            return "Failed";
        case ReloadPhaseType_Unloading:
            return "Unloading";
        default:
            return "unknown"; /* a newer runtime's phase: read raw values */
    }
}

/* The phases seen, in order, as one letter each (P, R, F, U), for the checks below. */
typedef struct reload_log {
    char phases[64];
    size_t count;
} reload_log;

static void on_reload(void* user_data, const ReloadPhase* phase) {
    reload_log* log = (reload_log*)user_data;
    if (log->count + 1 < sizeof log->phases)
        log->phases[log->count++] = phase_name(phase->phase_type)[0];
    printf("  [reload] %s %.*s%s%.*s\n", phase_name(phase->phase_type), (int)phase->bundle_name.len,
           (const char*)phase->bundle_name.ptr, phase->reason.len > 0 ? ": " : "",
           (int)phase->reason.len, (const char*)phase->reason.ptr);
}

static void on_log(void* user_data, uint32_t level, StringView scope, StringView message) {
    (void)user_data;
    static const char* const names[] = {"?", "error", "warn", "info", "debug", "trace"};
    fprintf(stderr, "  [runtime %s] %.*s: %.*s\n", level <= 5 ? names[level] : "?", (int)scope.len,
            (const char*)scope.ptr, (int)message.len, (const char*)message.ptr);
}

/* Prints and clears the runtime's last error; get_error_len sizes the buffer. */
static void print_last_error(const HostApi* host, const char* what) {
    size_t len = host->get_error_len(host);
    char* text = (char*)malloc(len + 1);
    if (text == NULL) return;
    len = host->get_last_error(host, (uint8_t*)text, len); /* copies and clears */
    fprintf(stderr, "%s: %.*s\n", what, (int)len, text);
    free(text);
}

/* Creates an instance, calls add and describe, prints one line; returns 0 if all went well. */
static int call_provider(const HostApi* host, GuestContractHandle handle) {
    const GuestContractInterface* iface = host->resolve_guest_contract(host, handle);
    if (iface == NULL) {
        print_last_error(host, "resolve_guest_contract");
        return 1;
    }
    GuestContractInstance instance = {NULL, 0};
    host->create_guest_instance(host, iface, NULL, &instance);
    if (instance.contract_id != example_calc_contract_id()) {
        print_last_error(host, "create_guest_instance");
        return 1;
    }
    /* Typed helpers from example_calc.h, which `polyplug generate --lang c` writes from
     * contracts/example_calc.api.toml: they fill the argument struct, check the table and call. */
    int32_t sum = 0;
    StringView text = {NULL, 0};
    const AbiError add_err = example_calc_add(iface, instance, 2, 40, &sum);
    const AbiError describe_err = example_calc_describe(iface, instance, &text);
    host->destroy_guest_instance(host, iface, instance);

    printf("provider #%u: add(2, 40) = %d, describe() = \"%.*s\"\n", (unsigned)handle.index,
           (int)sum, (int)text.len, text.ptr != NULL ? (const char*)text.ptr : "");
    if (add_err.code != AbiErrorCode_Ok || describe_err.code != AbiErrorCode_Ok) {
        fprintf(stderr, "call failed: add code %u, describe code %u\n", (unsigned)add_err.code,
                (unsigned)describe_err.code);
        return 1;
    }
    return sum == 42 && text.len > 0 ? 0 : 1;
}

/* How many loaded bundles registered example.calc (BundleInfo of each id from list_bundles). */
static size_t count_calc_bundles(const HostApi* host, const HostContractInterface* runtime_contract,
                                 HostContractInstance runtime_self) {
    size_t count = 0;
    ArrayOf_BundleId ids = host->list_bundles(host);
    for (size_t i = 0; i < ids.len; ++i) {
        const PolyplugBundleInfoArgs args = {ids.items[i]};
        PolyplugBundleInfo info;
        AbiError err = {AbiErrorCode_Ok, {NULL, 0}};
        polyplug_runtime_fn(runtime_contract, PolyplugRuntimeFn_BundleInfo)(runtime_self, &args,
                                                                            &info, &err);
        if (err.code != AbiErrorCode_Ok) continue;
        for (size_t c = 0; c < info.contracts.len; ++c)
            if (info.contracts.items[c] == example_calc_contract_id()) ++count;
        polyplug_bundle_info_free(host, &info);
    }
    if (ids.items != NULL)
        host->free(host, (uint8_t*)ids.items, ids.len * sizeof(BundleId), ids.align);
    return count;
}

/* Reloads the C bundle in place (same files): the phases arrive in order and calls work after. */
static int reload_c_calc(const HostApi* host, const char* plugins_dir, reload_log* log) {
    char path[4096];
    snprintf(path, sizeof path, "%s/c_calc", plugins_dir);
    AbiError err = {AbiErrorCode_Ok, {NULL, 0}};
    log->count = 0;
    host->reload_bundle(host, (const uint8_t*)path, strlen(path), &err);
    log->phases[log->count] = '\0';
    if (err.code != AbiErrorCode_Ok) {
        print_last_error(host, "reload_bundle");
        return 1;
    }
    if (strcmp(log->phases, "PR") != 0) {
        fprintf(stderr, "reload phases: expected Preparing, Reloaded; got \"%s\"\n", log->phases);
        return 1;
    }
    /* The handle found before the reload still resolves: contract handles follow reloads. */
    return 0;
}

int main(int argc, char** argv) {
    reload_log reloads = {{0}, 0};
    const RuntimeConfig config = {
        .compatibility = Compatibility_Strict,
        .hot_reload_enabled = true,
        .on_reload = on_reload,
        .on_reload_user_data = &reloads,
        .log = on_log,
        .log_user_data = NULL,
        .log_max_level = LogLevel_Warn,
    };
    const HostApi* host = polyplug_runtime_create(&config); /* the config is copied */
    if (host == NULL) {
        fprintf(stderr, "polyplug_runtime_create failed\n");
        return 1;
    }
    int failures = 0;
    register_log_contract(host, &failures);

    /* The error path: a failed load returns a code; the message explaining it is in last_error. */
    const char* missing = "/nonexistent/polyplug-example-bundle";
    AbiError err = {AbiErrorCode_Ok, {NULL, 0}};
    host->load_bundle(host, (const uint8_t*)missing, strlen(missing), &err);
    if (err.code == AbiErrorCode_Ok) {
        fprintf(stderr, "loading %s unexpectedly succeeded\n", missing);
        ++failures;
    } else {
        printf("expected failure (code %u) loading %s; last_error follows on stderr\n",
               (unsigned)err.code, missing);
        print_last_error(host, "load_bundle");
    }

    /* Discovery: the frozen HostApi has no directory scan, so C hosts use the built-in
     * host.polyplug.Runtime@1 contract (a singleton the runtime owns: never destroy it). */
    const HostContractInterface* runtime_contract =
        host->resolve_host_contract_interface(host, POLYPLUG_RUNTIME_CONTRACT_ID, 0);
    const HostContractInstance runtime_self =
        host->get_host_contract(host, POLYPLUG_RUNTIME_CONTRACT_ID, 0);
    StringView dirs[16];
    size_t dir_count = 0;
    for (int i = 1; i < argc && dir_count < 16; ++i) dirs[dir_count++] = polyplug_sv(argv[i]);
    const PolyplugLoadDirsArgs load_args = {dirs, dir_count};
    PolyplugLoadDirsResult loaded = {0, 0, {NULL, 0, 0}};
    err = (AbiError){AbiErrorCode_Ok, {NULL, 0}};
    polyplug_runtime_fn(runtime_contract, PolyplugRuntimeFn_LoadDirs)(runtime_self, &load_args,
                                                                      &loaded, &err);
    if (err.code != AbiErrorCode_Ok) {
        print_last_error(host, "load_dirs");
        ++failures;
    }
    printf("discovered and loaded %u bundle(s), skipped %u\n", (unsigned)loaded.loaded,
           (unsigned)loaded.skipped);
    if (loaded.skipped != 0) {
        fprintf(stderr, "%.*s", (int)loaded.diagnostics.len, (const char*)loaded.diagnostics.ptr);
        ++failures;
    }
    host->free(host, loaded.diagnostics.ptr, loaded.diagnostics.cap, 1);

    /* Every provider, in registration order; the array is ours to free with host->free. */
    ArrayOf_GuestContractHandle providers = host->find_all_guest_contracts(
        host, example_calc_contract_id(), EXAMPLE_CALC_VERSION_MAJOR);
    for (size_t i = 0; i < providers.len; ++i) failures += call_provider(host, providers.items[i]);
    /* Every loaded bundle that registered example.calc must have been found (BundleInfo lists
     * what each bundle registered; cpp-counter, the stateful example, provides another one). */
    const size_t calc_bundles = count_calc_bundles(host, runtime_contract, runtime_self);
    if (providers.len == 0 || providers.len != calc_bundles) {
        fprintf(stderr, "expected %zu providers, found %zu\n", calc_bundles, providers.len);
        ++failures;
    }
    if (providers.items != NULL)
        host->free(host, (uint8_t*)providers.items, providers.len * sizeof(GuestContractHandle),
                   providers.align);

    /* Host contract: c-calc wrote one line per add through host.example.Log (called above). */
    if (g_sink.lines == 0) {
        fprintf(stderr, "c-calc never called the host.example.Log contract\n");
        ++failures;
    }

    /* Hot reload, then the same calls again through a fresh lookup. */
    if (argc > 1) {
        failures += reload_c_calc(host, argv[1], &reloads);
        GuestContractHandle again =
            host->find_guest_contract(host, example_calc_contract_id(), EXAMPLE_CALC_VERSION_MAJOR);
        failures += call_provider(host, again);
    }

    /* More error paths, each a code plus a last_error message, the runtime left as it was. */
    const char* not_loaded = "/nonexistent/polyplug-not-loaded";
    err = (AbiError){AbiErrorCode_Ok, {NULL, 0}};
    host->reload_bundle(host, (const uint8_t*)not_loaded, strlen(not_loaded), &err);
    if (err.code == AbiErrorCode_Ok) ++failures;
    print_last_error(host, "expected: reload_bundle of a bundle that is not loaded");
    err = (AbiError){AbiErrorCode_Ok, {NULL, 0}};
    host->unload_bundle(host, 42, &err);
    if (err.code == AbiErrorCode_Ok) ++failures;
    print_last_error(host, "expected: unload_bundle of an unknown id");
    err = (AbiError){AbiErrorCode_Ok, {NULL, 0}};
    host->register_host_contract(host, &g_log_interface, &err); /* twice: a duplicate */
    if (err.code == AbiErrorCode_Ok) ++failures;
    print_last_error(host, "expected: registering host.example.Log twice");
    /* A function id past the provider's table: polyplug_call_guest refuses it, no call made. */
    const GuestContractInterface* any = host->resolve_guest_contract(
        host, host->find_guest_contract(host, example_calc_contract_id(), 0));
    const AbiError past_end = polyplug_call_guest(any, (GuestContractInstance){NULL, 0},
                                                  EXAMPLE_CALC_FUNCTION_COUNT, NULL, NULL, NULL);
    if (past_end.code != AbiErrorCode_FunctionNotAvailable) ++failures;
    printf("expected: function %u of example.calc: code %u, %.*s\n",
           (unsigned)EXAMPLE_CALC_FUNCTION_COUNT, (unsigned)past_end.code,
           (int)past_end.message.len, (const char*)past_end.message.ptr);

    /* Unload what is loaded (list_bundles returns another caller-frees array), then destroy. */
    ArrayOf_BundleId bundles = host->list_bundles(host);
    for (size_t i = 0; i < bundles.len; ++i) {
        err = (AbiError){AbiErrorCode_Ok, {NULL, 0}};
        host->unload_bundle(host, bundles.items[i], &err);
        if (err.code != AbiErrorCode_Ok) {
            print_last_error(host, "unload_bundle");
            ++failures;
        }
    }
    if (bundles.items != NULL)
        host->free(host, (uint8_t*)bundles.items, bundles.len * sizeof(BundleId), bundles.align);
    polyplug_runtime_destroy(host);

    printf("%zu providers called, %d failures\n", providers.len, failures);
    return failures == 0 ? 0 : 1;
}
