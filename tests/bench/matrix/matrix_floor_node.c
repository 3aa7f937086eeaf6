/* SPDX-License-Identifier: MIT */
/* The Node.js floor of the host x guest matrix: greet(name) as a plain Node-API function, the
 * way a Node.js program calls C. The string argument is copied out of V8, the C function of
 * matrix_floor.c builds the result, and a new JS string carries it back: the same steps as a
 * runtime round trip from polyplug.js, without the runtime. */
#include <node_api.h>

#include <stddef.h>

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

NAPI_MODULE_INIT() {
    napi_value fn;
    if (napi_create_function(env, "greet", NAPI_AUTO_LENGTH, greet, NULL, &fn) != napi_ok ||
        napi_set_named_property(env, exports, "greet", fn) != napi_ok) {
        return NULL;
    }
    return exports;
}
