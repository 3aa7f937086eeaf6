/* SPDX-License-Identifier: MIT */
/* The Node.js floor of the host x guest matrix: greet(name) as a plain Node-API function, the
 * way a Node.js program calls C. The string argument is copied out of V8, the C function of
 * matrix_floor.c builds the result, and a new JS string carries it back: the same steps as a
 * runtime round trip from polyplug.js, without the runtime. */
#include <node_api.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

size_t polyplug_matrix_greet(const char* name, size_t len, char* out, size_t cap);

static napi_value greet(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value arg;
    if (napi_get_cb_info(env, info, &argc, &arg, NULL, NULL) != napi_ok || argc < 1) {
        napi_throw_type_error(env, NULL, "greet(name): one string argument");
        return NULL;
    }
    char name[256];
    size_t len = 0;
    if (napi_get_value_string_utf8(env, arg, name, sizeof name, &len) != napi_ok) {
        napi_throw_type_error(env, NULL, "greet(name): name must be a string");
        return NULL;
    }
    char out[300];
    const size_t n = polyplug_matrix_greet(name, len, out, sizeof out);
    if (n > sizeof out) {
        napi_throw_range_error(env, NULL, "greet(name): name too long for the floor's buffer");
        return NULL;
    }
    napi_value result;
    if (napi_create_string_utf8(env, out, n, &result) != napi_ok) return NULL;
    return result;
}

/* findShape(external, id, min): the Node-API conversions of the binding's find (an external
 * runtime handle, a u64 BigInt and a u32 in, a number out) around no work: the floor of a lookup
 * from JavaScript (docs/PERFORMANCE.md). */
static napi_value find_shape(napi_env env, napi_callback_info info) {
    size_t argc = 3;
    napi_value argv[3];
    void* self = NULL;
    uint64_t id = 0;
    uint32_t min = 0;
    bool lossless = false;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
        napi_get_value_external(env, argv[0], &self) != napi_ok ||
        napi_get_value_bigint_uint64(env, argv[1], &id, &lossless) != napi_ok || !lossless ||
        napi_get_value_uint32(env, argv[2], &min) != napi_ok) {
        napi_throw_type_error(env, NULL, "findShape(external, bigint, number)");
        return NULL;
    }
    napi_value result;
    if (napi_create_double(env, (double)(id & 1u) * 4294967296.0 + (double)min, &result) != napi_ok)
        return NULL;
    return result;
}

/* external(): a fresh external value for findShape's first argument. */
static napi_value make_external(napi_env env, napi_callback_info info) {
    static int anchor;
    (void)info;
    napi_value result;
    if (napi_create_external(env, &anchor, NULL, NULL, &result) != napi_ok) return NULL;
    return result;
}

NAPI_MODULE_INIT() {
    static const struct {
        const char* name;
        napi_callback fn;
    } functions[] = {{"greet", greet}, {"findShape", find_shape}, {"external", make_external}};
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; ++i) {
        napi_value fn;
        if (napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].fn, NULL,
                                 &fn) != napi_ok ||
            napi_set_named_property(env, exports, functions[i].name, fn) != napi_ok)
            return NULL;
    }
    return exports;
}
