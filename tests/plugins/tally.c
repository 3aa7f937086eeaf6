/* SPDX-License-Identifier: MIT */
/* Fixture for the state hand-over: test.tally@1 fn0 increments a counter and returns it (u64),
 * fn1 returns TALLY_VALUE (u32, which build this is). The counter crosses reloads through
 * host.polyplug.StateHandover@1. Variants (-D):
 *   TALLY_SCHEMA=1  saves 8 raw bytes; restores schema 1 only.
 *   TALLY_SCHEMA=2  saves the text "count=N"; restores schema 2 and migrates schema 1.
 *   TALLY_REFUSE    restores nothing: refuses every state with a message.
 *   TALLY_SAVE_FAILS  save reports an error.
 *   TALLY_NO_OFFER  never offers a hand-over (a version that predates it). */
#include <polyplug/state_handover.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#ifndef TALLY_VALUE
#error "build with -DTALLY_VALUE=N"
#endif
#ifndef TALLY_SCHEMA
#define TALLY_SCHEMA 1
#endif

static uint64_t g_count;

static void create(VmLoaderData d, const HostApi* h, const void* a, GuestContractInstance* out) {
    (void)d, (void)h, (void)a;
    out->data = NULL;
    out->contract_id = polyplug_guest_contract_id("test.tally", 10, 1);
}
static void destroy(VmLoaderData d, const HostApi* h, GuestContractInstance i) {
    (void)d, (void)h, (void)i;
}
static void increment(GuestContractInstance s, const void* a, void* out, AbiError* e) {
    (void)s, (void)a;
    *(uint64_t*)out = ++g_count;
    e->code = AbiErrorCode_Ok;
}
static void value(GuestContractInstance s, const void* a, void* out, AbiError* e) {
    (void)s, (void)a;
    *(uint32_t*)out = TALLY_VALUE;
    e->code = AbiErrorCode_Ok;
}

static void fail(AbiError* err, const char* message) {
    err->code = AbiErrorCode_FirstPluginDefined;
    err->message.ptr = (const uint8_t*)message;
    err->message.len = strlen(message);
}

static void save(void* user, const HostApi* host, Buffer* out, AbiError* err) {
    (void)user;
#ifdef TALLY_SAVE_FAILS
    (void)host, (void)out;
    fail(err, "tally cannot save today");
#elif TALLY_SCHEMA == 1
    out->ptr = host->alloc(host, sizeof g_count, 1);
    if (out->ptr == NULL) {
        fail(err, "out of memory");
        return;
    }
    memcpy(out->ptr, &g_count, sizeof g_count);
    out->len = out->cap = sizeof g_count;
#else
    char text[32];
    const int len = snprintf(text, sizeof text, "count=%llu", (unsigned long long)g_count);
    out->ptr = host->alloc(host, (size_t)len, 1);
    if (out->ptr == NULL) {
        fail(err, "out of memory");
        return;
    }
    memcpy(out->ptr, text, (size_t)len);
    out->len = out->cap = (size_t)len;
#endif
}

static void restore(void* user, const HostApi* host, uint32_t schema, const uint8_t* data,
                    size_t len, AbiError* err) {
    (void)user, (void)host;
#ifdef TALLY_REFUSE
    (void)schema, (void)data, (void)len;
    fail(err, "this version refuses every state");
#else
    if (schema == 1 && len == sizeof g_count) {
        memcpy(&g_count, data, sizeof g_count); /* schema 1: raw bytes (schema 2 migrates it) */
        return;
    }
#if TALLY_SCHEMA == 2
    if (schema == 2 && len > 6 && len < 32 && memcmp(data, "count=", 6) == 0) {
        char text[32];
        memcpy(text, data, len);
        text[len] = '\0';
        unsigned long long parsed = 0;
        if (sscanf(text + 6, "%llu", &parsed) == 1) {
            g_count = parsed;
            return;
        }
    }
#endif
    fail(err, "unknown state schema");
#endif
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static const void* table[2]; /* filled once (POLYPLUG_FN_ENTRY) */
static void fill(void) {
    table[0] = POLYPLUG_FN_ENTRY(&increment);
    table[1] = POLYPLUG_FN_ENTRY(&value);
}

POLYPLUG_PLUGIN_EXPORT uint32_t polyplug_abi_version(void) {
    return POLYPLUG_ABI_VERSION;
}

POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi* host, const BundleInitContext* ctx) {
    (void)ctx;
    pthread_once(&g_once, fill);
    GuestContractInterface iface = {0};
    iface.contract_id = polyplug_guest_contract_id("test.tally", 10, 1);
    iface.contract_version = (Version){1, 0, 0};
    iface.dispatch_type = DispatchType_Native;
    iface.create_instance = create;
    iface.destroy_instance = destroy;
    iface.dispatch.native.function_count = 2;
    iface.dispatch.native.functions = table;
    PluginDescriptor desc = {polyplug_sv("tally"), polyplug_sv("test.tally"), {1, 0, 0}};
    AbiError err = {0, {NULL, 0}};
    host->register_guest_contract(host, &desc, &iface, &err);
    if (err.code != AbiErrorCode_Ok) return err;
#ifdef TALLY_NO_OFFER
    (void)&save, (void)&restore;
    return err;
#else
    const PolyplugStateOffer offer = {TALLY_SCHEMA, 0, &save, &restore, NULL};
    return polyplug_offer_state(host, &offer);
#endif
}
