/* SPDX-License-Identifier: MIT */
/* test.parity.Kit@1 in C11 over the header `polyplug generate --lang c` wrote from
 * parity.api.toml. Each instance owns the memory its views point to (valid until its next call). */
#include "parity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct kit_instance {
    char text[512];     /* greet's result, fail's message */
    uint8_t bytes[512]; /* reverse's result */
    char label[512];    /* describe's label */
} kit_instance;

static const Color all_colors[3] = {Color_Red, Color_Green, Color_Blue};

static void set_error(AbiError* err, uint32_t code, const char* message) {
    err->code = code;
    err->message = polyplug_sv(message);
}

static kit_instance* self_of(GuestContractInstance instance, AbiError* err) {
    if (instance.data == NULL) set_error(err, AbiErrorCode_InvalidPointer, "parity-c: no instance");
    return (kit_instance*)instance.data;
}

static void add_i32(GuestContractInstance instance, const void* args, void* out, AbiError* err) {
    const TestParityKitAddI32Args* a = (const TestParityKitAddI32Args*)args;
    (void)instance;
    (void)err;
    /* Unsigned arithmetic wraps; the conversion back is the two's complement one. */
    uint32_t sum = (uint32_t)a->a + (uint32_t)a->b;
    *(int32_t*)out = sum <= INT32_MAX ? (int32_t)sum : (int32_t)(sum - 0x80000000u) + INT32_MIN;
}

static void echo_ints(GuestContractInstance instance, const void* args, void* out, AbiError* err) {
    (void)instance;
    (void)err;
    *(Ints*)out = ((const TestParityKitEchoIntsArgs*)args)->v;
}

static void scale(GuestContractInstance instance, const void* args, void* out, AbiError* err) {
    const TestParityKitScaleArgs* a = (const TestParityKitScaleArgs*)args;
    (void)instance;
    (void)err;
    *(double*)out = (double)a->x * 2.0 + a->y;
}

static void differ(GuestContractInstance instance, const void* args, void* out, AbiError* err) {
    const TestParityKitDifferArgs* a = (const TestParityKitDifferArgs*)args;
    (void)instance;
    (void)err;
    *(bool*)out = a->a != a->b;
}

static void greet(GuestContractInstance instance, const void* args, void* out, AbiError* err) {
    const StringView name = ((const TestParityKitGreetArgs*)args)->name;
    kit_instance* self = self_of(instance, err);
    if (self == NULL) return;
    if (name.len > sizeof self->text - 8) {
        set_error(err, AbiErrorCode_Panic, "parity-c: name too long");
        return;
    }
    memcpy(self->text, "hello, ", 7);
    if (name.len > 0) memcpy(self->text + 7, name.ptr, name.len);
    self->text[7 + name.len] = '!';
    ((StringView*)out)->ptr = (const uint8_t*)self->text;
    ((StringView*)out)->len = name.len + 8;
}

static void reverse(GuestContractInstance instance, const void* args, void* out, AbiError* err) {
    const Buffer data = ((const TestParityKitReverseArgs*)args)->data;
    kit_instance* self = self_of(instance, err);
    size_t i;
    if (self == NULL) return;
    if (data.len > sizeof self->bytes) {
        set_error(err, AbiErrorCode_Panic, "parity-c: buffer too long");
        return;
    }
    for (i = 0; i < data.len; ++i) self->bytes[i] = data.ptr[data.len - 1 - i];
    ((Buffer*)out)->ptr = self->bytes;
    ((Buffer*)out)->len = data.len;
    ((Buffer*)out)->cap = data.len;
}

static void total(GuestContractInstance instance, const void* args, void* out, AbiError* err) {
    const ArrayOf_Point points = ((const TestParityKitTotalArgs*)args)->points;
    uint32_t x = 0, y = 0;
    size_t i;
    Point sum;
    (void)instance;
    (void)err;
    for (i = 0; i < points.len; ++i) {
        x += (uint32_t)points.items[i].x;
        y += (uint32_t)points.items[i].y;
    }
    sum.x = x <= INT32_MAX ? (int32_t)x : (int32_t)(x - 0x80000000u) + INT32_MIN;
    sum.y = y <= INT32_MAX ? (int32_t)y : (int32_t)(y - 0x80000000u) + INT32_MIN;
    *(Point*)out = sum;
}

static void describe(GuestContractInstance instance, const void* args, void* out, AbiError* err) {
    Shape s = ((const TestParityKitDescribeArgs*)args)->s;
    kit_instance* self = self_of(instance, err);
    if (self == NULL) return;
    if (s.label.len > sizeof self->label - 1) {
        set_error(err, AbiErrorCode_Panic, "parity-c: label too long");
        return;
    }
    switch (s.color) {
        case Color_Red:
            s.color = Color_Green;
            break;
        case Color_Green:
            s.color = Color_Blue;
            break;
        case Color_Blue:
            s.color = Color_Red;
            break;
        default:
            set_error(err, AbiErrorCode_Panic, "parity-c: unknown color");
            return;
    }
    if (s.label.len > 0) memcpy(self->label, s.label.ptr, s.label.len);
    self->label[s.label.len] = '!';
    s.label.ptr = (const uint8_t*)self->label;
    s.label.len += 1;
    s.tag = (uint8_t)(s.tag + 1u);
    s.weight *= 2;
    *(Shape*)out = s;
}

static void colors(GuestContractInstance instance, const void* args, void* out, AbiError* err) {
    const uint32_t n = ((const TestParityKitColorsArgs*)args)->n;
    (void)instance;
    if (n > 3) {
        set_error(err, AbiErrorCode_Panic, "parity-c: n too large");
        return;
    }
    ((ArrayOf_Color*)out)->items = all_colors;
    ((ArrayOf_Color*)out)->len = n;
}

static void fail(GuestContractInstance instance, const void* args, void* out, AbiError* err) {
    kit_instance* self = self_of(instance, err);
    (void)out;
    if (self == NULL) return;
    snprintf(self->text, sizeof self->text, "parity failure %d",
             (int)((const TestParityKitFailArgs*)args)->code);
    set_error(err, AbiErrorCode_Panic, self->text);
}

static void create_instance(VmLoaderData data, const HostApi* host, const void* args,
                            GuestContractInstance* out) {
    (void)data;
    (void)host;
    (void)args;
    out->data = calloc(1, sizeof(kit_instance));
    out->contract_id = out->data != NULL ? TEST_PARITY_KIT_CONTRACT_ID : 0;
}

static void destroy_instance(VmLoaderData data, const HostApi* host,
                             GuestContractInstance instance) {
    (void)data;
    (void)host;
    free(instance.data);
}

static const void* functions[TEST_PARITY_KIT_FUNCTION_COUNT];

uint32_t polyplug_abi_version(void) {
    return POLYPLUG_ABI_VERSION;
}

AbiError polyplug_init(const HostApi* host, const BundleInitContext* ctx) {
    static GuestContractInterface iface;
    PluginDescriptor descriptor;
    AbiError err = {AbiErrorCode_Ok, {NULL, 0}};
    (void)ctx;
    functions[TEST_PARITY_KIT_FN_ADD_I32] = POLYPLUG_FN_ENTRY(add_i32);
    functions[TEST_PARITY_KIT_FN_ECHO_INTS] = POLYPLUG_FN_ENTRY(echo_ints);
    functions[TEST_PARITY_KIT_FN_SCALE] = POLYPLUG_FN_ENTRY(scale);
    functions[TEST_PARITY_KIT_FN_DIFFER] = POLYPLUG_FN_ENTRY(differ);
    functions[TEST_PARITY_KIT_FN_GREET] = POLYPLUG_FN_ENTRY(greet);
    functions[TEST_PARITY_KIT_FN_REVERSE] = POLYPLUG_FN_ENTRY(reverse);
    functions[TEST_PARITY_KIT_FN_TOTAL] = POLYPLUG_FN_ENTRY(total);
    functions[TEST_PARITY_KIT_FN_DESCRIBE] = POLYPLUG_FN_ENTRY(describe);
    functions[TEST_PARITY_KIT_FN_COLORS] = POLYPLUG_FN_ENTRY(colors);
    functions[TEST_PARITY_KIT_FN_FAIL] = POLYPLUG_FN_ENTRY(fail);
    iface.contract_id = TEST_PARITY_KIT_CONTRACT_ID;
    iface.contract_version.major = TEST_PARITY_KIT_VERSION_MAJOR;
    iface.contract_version.minor = TEST_PARITY_KIT_VERSION_MINOR;
    iface.contract_version.patch = TEST_PARITY_KIT_VERSION_PATCH;
    iface.dispatch_type = DispatchType_Native;
    iface.create_instance = create_instance;
    iface.destroy_instance = destroy_instance;
    iface.dispatch.native.function_count = TEST_PARITY_KIT_FUNCTION_COUNT;
    iface.dispatch.native.functions = functions;
    descriptor.name = polyplug_sv("parity-c");
    descriptor.contract_name = polyplug_sv(TEST_PARITY_KIT_NAME);
    descriptor.version = iface.contract_version;
    host->register_guest_contract(host, &descriptor, &iface, &err);
    return err;
}
