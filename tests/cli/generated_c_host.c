/* SPDX-License-Identifier: MIT */
/* A C11 host calling the kitchen bundle through the header `polyplug generate --lang c` wrote
 * from kitchen.api.toml: typed helpers for every type category, the plugin's thrown error, the
 * helpers' own error paths, and a host contract (host.test.cli.Log) implemented here in C and
 * called by the plugin. Only libpolyplug.so and the generated header. */
#include "kitchen.h"

#include <stdio.h>
#include <string.h>

static int checks = 0;
static int failures = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        ++checks;                                                                    \
        if (!(cond)) {                                                               \
            ++failures;                                                              \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

static StringView view(const char* bytes, size_t len) {
    StringView v;
    v.ptr = (const uint8_t*)bytes;
    v.len = len;
    return v;
}

static int view_equals(StringView v, const char* bytes, size_t len) {
    return v.len == len && (len == 0 || memcmp(v.ptr, bytes, len) == 0);
}

/* ---- host.test.cli.Log@1, implemented by this host ------------------------------------------ */

static char log_text[256];
static size_t log_len = 0;

static void log_write(HostContractInstance instance, const void* args, void* out, AbiError* err) {
    const HostTestCliLogWriteArgs* a = (const HostTestCliLogWriteArgs*)args;
    (void)instance;
    (void)err;
    if (a->level <= 9 && a->message.len < sizeof log_text) {
        memcpy(log_text, a->message.ptr, a->message.len);
        log_len = a->message.len;
        *(bool*)out = true;
    } else {
        *(bool*)out = false;
    }
}

static void log_create(const HostContractInterface* self, const void* args,
                       HostContractInstance* out) {
    (void)self;
    (void)args;
    out->data = log_text; /* never NULL: get_host_contract's NULL data means "not found" */
}

static void log_destroy(const HostContractInterface* self, HostContractInstance instance) {
    (void)self;
    (void)instance;
}

static const void* log_functions[HOST_TEST_CLI_LOG_FUNCTION_COUNT];

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s KITCHEN_BUNDLE_DIR\n", argv[0]);
        return 2;
    }
    const HostApi* host = polyplug_runtime_create(NULL);
    if (host == NULL) return 1;

    HostContractInterface log_iface;
    memset(&log_iface, 0, sizeof log_iface);
    log_functions[HOST_TEST_CLI_LOG_FN_WRITE] = POLYPLUG_FN_ENTRY(log_write);
    log_iface.contract_id = HOST_TEST_CLI_LOG_CONTRACT_ID;
    log_iface.contract_version.major = HOST_TEST_CLI_LOG_VERSION_MAJOR;
    log_iface.contract_version.minor = HOST_TEST_CLI_LOG_VERSION_MINOR;
    log_iface.singleton = HOST_TEST_CLI_LOG_SINGLETON;
    log_iface.dispatch_type = DispatchType_Native;
    log_iface.create_instance = log_create;
    log_iface.destroy_instance = log_destroy;
    log_iface.dispatch.native.function_count = HOST_TEST_CLI_LOG_FUNCTION_COUNT;
    log_iface.dispatch.native.functions = log_functions;
    AbiError err = {0, {NULL, 0}};
    host->register_host_contract(host, &log_iface, &err);
    CHECK(err.code == AbiErrorCode_Ok);

    host->load_bundle(host, (const uint8_t*)argv[1], strlen(argv[1]), &err);
    if (err.code != AbiErrorCode_Ok) {
        fprintf(stderr, "load_bundle: %.*s\n", (int)err.message.len, (const char*)err.message.ptr);
        polyplug_runtime_destroy(host);
        return 1;
    }
    CHECK(test_cli_kitchen_contract_id() == TEST_CLI_KITCHEN_CONTRACT_ID);
    const GuestContractHandle handle = host->find_guest_contract(host, TEST_CLI_KITCHEN_CONTRACT_ID,
                                                                 TEST_CLI_KITCHEN_VERSION_MAJOR);
    const GuestContractInterface* iface = host->resolve_guest_contract(host, handle);
    CHECK(iface != NULL);
    GuestContractInstance instance = {NULL, 0};
    host->create_guest_instance(host, iface, NULL, &instance);
    CHECK(instance.contract_id == TEST_CLI_KITCHEN_CONTRACT_ID);

    /* Integers at their limits, floats, bool and an enum in one argument struct. */
    int64_t mixed_sum = 0;
    err = test_cli_kitchen_mix(iface, instance, INT8_MIN, UINT16_MAX, INT32_MIN, 5u, 1.5f, 0.25,
                               true, Color_Blue, &mixed_sum);
    CHECK(err.code == AbiErrorCode_Ok);
    CHECK(mixed_sum == -128 + 65535 + (int64_t)INT32_MIN + 5 + 3 + 1 + 1000 + 256);

    /* A string with an embedded NUL and non-ASCII UTF-8; the plugin also logs it to the host. */
    static const char text[] = "a\0b \xc3\xa9\xe2\x82\xac \xf0\x9f\x94\x8c";
    StringView echoed = {NULL, 0};
    err = test_cli_kitchen_echo(iface, instance, view(text, sizeof text - 1), &echoed);
    CHECK(err.code == AbiErrorCode_Ok);
    CHECK(view_equals(echoed, "v1:a\0b \xc3\xa9\xe2\x82\xac \xf0\x9f\x94\x8c", sizeof text + 2));
    CHECK(log_len == sizeof text + 2 && memcmp(log_text, echoed.ptr, log_len) == 0);

    /* A buffer. */
    uint8_t bytes[] = {1, 0, 2, 255};
    Buffer buffer = {bytes, sizeof bytes, sizeof bytes};
    uint64_t sum = 0;
    err = test_cli_kitchen_checksum(iface, instance, buffer, &sum);
    CHECK(err.code == AbiErrorCode_Ok && sum == 1 * 1 + 0 * 2 + 2 * 3 + 255 * 4);

    /* An array of structs, and a struct result. */
    const Point points[] = {{1, 2}, {30, 40}, {-500, 600}};
    ArrayOf_Point point_array = {points, 3};
    Point total = {0, 0};
    err = test_cli_kitchen_sum_points(iface, instance, point_array, &total);
    CHECK(err.code == AbiErrorCode_Ok && total.x == -469 && total.y == 642);

    /* A struct with padding in the middle and at the end. */
    Mixed m;
    memset(&m, 0xAB, sizeof m); /* padding bytes must not matter */
    m.tag = 7;
    m.value = 2.5;
    m.small = 300;
    Mixed scaled;
    err = test_cli_kitchen_scale(iface, instance, m, 3, &scaled);
    CHECK(err.code == AbiErrorCode_Ok);
    CHECK(scaled.tag == 7 && scaled.value == 7.5 && scaled.small == 900);

    /* A struct holding every kind of field. */
    Record r;
    memset(&r, 0, sizeof r);
    r.flag = false;
    r.inner.a = 1;
    r.inner.b = 0xFFFFFFFEu;
    r.inner.c = 254;
    r.label = view("label", 5);
    r.points = point_array;
    r.color = Color_Red;
    r.payload = buffer;
    r.opaque = &r;
    r.half = -32767;
    Record described;
    err = test_cli_kitchen_describe(iface, instance, r, &described);
    CHECK(err.code == AbiErrorCode_Ok);
    CHECK(described.flag == true && described.inner.a == 2 && described.inner.b == 0xFFFFFFFFu &&
          described.inner.c == 255);
    CHECK(view_equals(described.label, "v1:label", 8));
    CHECK(described.points.items == points && described.points.len == 3);
    CHECK(described.color == Color_Blue && described.payload.ptr == bytes);
    CHECK(described.opaque == &r && described.half == 32767);

    /* Arrays of every other element kind. */
    static const uint8_t small[] = {9, 9};
    const StringView words[] = {view("ab", 2), view("c\0d", 3)};
    const Color colors[] = {Color_Green, Color_Blue};
    void* const ptrs[] = {&r, NULL, &m};
    const bool flags[] = {true, false, true};
    const Buffer bufs[] = {buffer, {NULL, 0, 0}};
    ArrayOf_u8 a_bytes = {small, 2};
    ArrayOf_StringView a_words = {words, 2};
    ArrayOf_Color a_colors = {colors, 2};
    ArrayOf_Ptr a_ptrs = {ptrs, 3};
    ArrayOf_bool a_flags = {flags, 3};
    ArrayOf_Buffer a_bufs = {bufs, 2};
    uint32_t counted = 0;
    err = test_cli_kitchen_lists(iface, instance, a_bytes, a_words, a_colors, a_ptrs, a_flags,
                                 a_bufs, &counted);
    CHECK(err.code == AbiErrorCode_Ok);
    CHECK(counted == 2 + 5 + (2 + 256) + 2 + 2 + 4);

    /* Bit flags, and parameters named like the helper's own ("out", "instance"). */
    Access granted = 0;
    err = test_cli_kitchen_grant(iface, instance, Access_Write | Access_Exec, &r, &granted);
    CHECK(err.code == AbiErrorCode_Ok && granted == Access_All);

    /* An exception thrown inside the plugin arrives as Panic with its message. */
    err = test_cli_kitchen_grant(iface, instance, Access_Read, NULL, &granted);
    CHECK(err.code == AbiErrorCode_Panic);
    CHECK(err.message.len > 0 && strstr((const char*)err.message.ptr, "grant: no target") != NULL);

    err = test_cli_kitchen_reset(iface, instance);
    CHECK(err.code == AbiErrorCode_Ok);

    /* The helpers' own checks: no interface, no such function. */
    err = test_cli_kitchen_reset(NULL, instance);
    CHECK(err.code == AbiErrorCode_FunctionNotAvailable);
    err = polyplug_call_guest(iface, instance, TEST_CLI_KITCHEN_FUNCTION_COUNT, NULL, NULL, NULL);
    CHECK(err.code == AbiErrorCode_FunctionNotAvailable);
    CHECK(test_cli_kitchen_function(iface, TEST_CLI_KITCHEN_FN_ECHO) != NULL);
    CHECK(test_cli_kitchen_function(iface, 99) == NULL);
    bool logged = false;
    err = host_test_cli_log_write(NULL, (HostContractInstance){NULL}, 1, view("x", 1), &logged);
    CHECK(err.code == AbiErrorCode_FunctionNotAvailable);
    err =
        host_test_cli_log_write(&log_iface, (HostContractInstance){NULL}, 1, view("x", 1), &logged);
    CHECK(err.code == AbiErrorCode_Ok && logged);

    host->destroy_guest_instance(host, iface, instance);
    polyplug_runtime_destroy(host);
    printf("generated C host: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
