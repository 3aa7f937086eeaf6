/* SPDX-License-Identifier: MIT */
/* The native half of the Node.js host binding: Node-API primitives over libpolyplug.so. */
/*
 * Everything that needs judgement (contract layouts, marshalling, errors, lifetimes) is in
 * polyplug.js; this file only does what JavaScript cannot: open the libraries, call the HostApi
 * entries and contract function pointers, read and write memory at addresses, and turn C
 * callbacks (host contract functions, log, on_reload) into JavaScript calls on the JavaScript
 * thread. Addresses travel as JavaScript numbers: x86-64 user-space addresses are below 2^47,
 * and every conversion checks that the value is an exact integer below 2^53.
 *
 * Node-API version 8 (Node 12.22+, Debian 12's nodejs 18 and Node 20 alike).
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <dlfcn.h>
#include <link.h>
#include <node_api.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <polyplug/abi.h>

/* A plugin's string or byte claim larger than this is refused instead of copied. */
#define PP_MAX_READ ((size_t)1 << 30)
/* A string read (readString) longer than this is refused: V8's strings end at about 2^29
 * UTF-16 units, so napi_create_string_utf8 would fail for longer ones. */
#define PP_MAX_STRING ((size_t)1 << 28)
/* Error messages longer than this are reported by their length, not copied. */
#define PP_MAX_MESSAGE ((size_t)1 << 20)
/* Host contracts implemented in JavaScript: at most this many functions each (one C
 * trampoline per function index, since a HostContractFn is not told which function it is). */
#define PP_MAX_HOST_FNS 64
#define PP_SAFE_INTEGER 9007199254740992.0 /* 2^53 */

static const napi_type_tag pp_library_tag = {0x706f6c79706c7567ULL, 0x6e6f64656c696201ULL};

typedef const HostApi* (*pp_create_fn)(const RuntimeConfig*);
typedef void (*pp_destroy_fn)(const HostApi*);

typedef struct pp_library {
    pp_create_fn create;
    pp_destroy_fn destroy;
} pp_library;

struct pp_registration;

typedef struct pp_runtime {
    const HostApi* api;
    pp_destroy_fn destroy;
    napi_env env;
    napi_ref on_reload;
    napi_ref log;
    pthread_t js_thread;
    const volatile uint64_t* revision;
    int closed;
    int js_allowed; /* 0 while being destroyed by the garbage collector: no JavaScript then */
    uint64_t dropped;
    /* Calls into the runtime in progress (HostApi entries, guest and host contract calls):
     * destroyRuntime refuses while this is not 0, since a callback into JavaScript made by such
     * a call would otherwise free the runtime under the call's feet. */
    unsigned depth;
    struct pp_registration* registrations;
    struct pp_runtime* next_live; /* pp_live's list */
} pp_runtime;

typedef struct pp_registration {
    HostContractInterface iface;
    const void* table[PP_MAX_HOST_FNS];
    char*
        messages[PP_MAX_HOST_FNS]; /* the last error text of each function (until its next call) */
    pp_runtime* rt;
    napi_ref dispatcher;
    struct pp_registration* next;
} pp_registration;

/* ---- helpers ---- */
static napi_value pp_throw(napi_env env, const char* code, const char* fmt, ...) {
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    napi_throw_error(env, code, text);
    return NULL;
}

/* 1 when status is napi_ok; else throws EPPNAPI (unless an exception is already pending, which
 * then stays the one thrown) and returns 0. */
static int pp_ok(napi_env env, napi_status status, const char* what) {
    if (status == napi_ok) return 1;
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return 0;
    const napi_extended_error_info* info = NULL;
    napi_get_last_error_info(env, &info);
    pp_throw(env, "EPPNAPI", "polyplug native: %s failed (%s)", what,
             info != NULL && info->error_message != NULL ? info->error_message : "Node-API error");
    return 0;
}

#define PP_ENTER(rt) (++(rt)->depth)
#define PP_LEAVE(rt) (--(rt)->depth)

#define PP_ARGS(n)                                                                             \
    size_t argc = (n);                                                                         \
    napi_value argv[(n) > 0 ? (n) : 1];                                                        \
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < (size_t)(n)) \
        return pp_throw(env, "EPPARGS", "polyplug native: expected %d arguments", (int)(n));

static int pp_get_addr(napi_env env, napi_value v, uintptr_t* out) {
    double d;
    if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0.0) || d >= PP_SAFE_INTEGER ||
        d != (double)(uint64_t)d) {
        pp_throw(env, "EPPADDR", "polyplug native: not an address (an integer in [0, 2^53))");
        return 0;
    }
    *out = (uintptr_t)(uint64_t)d;
    return 1;
}

static napi_value pp_addr(napi_env env, const void* p) {
    napi_value v;
    uint64_t a = (uint64_t)(uintptr_t)p;
    if ((double)a >= PP_SAFE_INTEGER)
        return pp_throw(env, "EPPADDR", "polyplug native: address %p is beyond 2^53", p);
    return pp_ok(env, napi_create_double(env, (double)a, &v), "napi_create_double") ? v : NULL;
}

static int pp_get_u32(napi_env env, napi_value v, uint32_t* out) {
    double d;
    if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0.0) || d > 4294967295.0 ||
        d != (double)(uint32_t)d) {
        pp_throw(env, "EPPARGS", "polyplug native: not a u32");
        return 0;
    }
    *out = (uint32_t)d;
    return 1;
}

static int pp_get_u64(napi_env env, napi_value v, uint64_t* out) {
    bool lossless = false;
    if (napi_get_value_bigint_uint64(env, v, out, &lossless) != napi_ok || !lossless) {
        pp_throw(env, "EPPARGS", "polyplug native: not a u64 BigInt");
        return 0;
    }
    return 1;
}

static napi_value pp_u64(napi_env env, uint64_t x) {
    napi_value v;
    return pp_ok(env, napi_create_bigint_uint64(env, x, &v), "napi_create_bigint_uint64") ? v
                                                                                          : NULL;
}

static napi_value pp_number(napi_env env, double x) {
    napi_value v;
    return pp_ok(env, napi_create_double(env, x, &v), "napi_create_double") ? v : NULL;
}

static napi_value pp_undefined(napi_env env) {
    napi_value v;
    return pp_ok(env, napi_get_undefined(env, &v), "napi_get_undefined") ? v : NULL;
}

/* A string from a view whose pointer and length are claims (a plugin's or the runtime's). */
static napi_value pp_view_string(napi_env env, const void* ptr, size_t len, const char* what) {
    napi_value v;
    char text[160];
    if (len == 0)
        return pp_ok(env, napi_create_string_utf8(env, "", 0, &v), "napi_create_string_utf8")
                   ? v
                   : NULL;
    if (ptr == NULL) {
        snprintf(text, sizeof text, "(invalid %s: a null pointer with length %zu)", what, len);
    } else if (len > PP_MAX_MESSAGE) {
        snprintf(text, sizeof text, "(invalid %s: it claims %zu bytes, over the %zu-byte limit)",
                 what, len, PP_MAX_MESSAGE);
    } else {
        return pp_ok(env, napi_create_string_utf8(env, (const char*)ptr, len, &v),
                     "napi_create_string_utf8")
                   ? v
                   : NULL;
    }
    return pp_ok(env, napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &v),
                 "napi_create_string_utf8")
               ? v
               : NULL;
}

/* undefined when err reports success, else [code, message]. */
static napi_value pp_err_result(napi_env env, const AbiError* err) {
    napi_value arr;
    if (err->code == 0) return pp_undefined(env);
    if (!pp_ok(env, napi_create_array_with_length(env, 2, &arr), "napi_create_array_with_length"))
        return NULL;
    napi_value code = pp_number(env, (double)err->code);
    if (code == NULL || !pp_ok(env, napi_set_element(env, arr, 0, code), "napi_set_element"))
        return NULL;
    napi_value text = pp_view_string(env, err->message.ptr, err->message.len, "error message");
    if (text == NULL || !pp_ok(env, napi_set_element(env, arr, 1, text), "napi_set_element"))
        return NULL;
    return arr;
}

/* The runtimes created on this thread and not yet collected. A handle is checked against this
 * list rather than by its type tag: napi_check_object_type_tag is a property lookup that cost
 * about 40 ns per call (a third of a find), the list is one or two pointer compares. Thread-local
 * because each Node.js environment (the main thread, every worker) runs on its own thread and a
 * handle cannot leave its environment; nothing is shared between runtimes through it. */
static _Thread_local pp_runtime* pp_live;

/* The live runtime at p (a handle's, or a call block's runtime field), else throws. */
static pp_runtime* pp_live_rt(napi_env env, const void* p) {
    pp_runtime* rt = NULL;
    if (p != NULL)
        for (rt = pp_live; rt != NULL && rt != p; rt = rt->next_live) {
        }
    if (rt == NULL) {
        pp_throw(env, "EPPARGS", "polyplug native: not a runtime handle");
        return NULL;
    }
    if (rt->closed) {
        pp_throw(env, "EPPCLOSED", "the runtime is closed");
        return NULL;
    }
    return rt;
}

static pp_runtime* pp_get_rt(napi_env env, napi_value v) {
    void* p = NULL;
    if (napi_get_value_external(env, v, &p) != napi_ok) p = NULL;
    return pp_live_rt(env, p);
}

/* A JavaScript string as a NUL-terminated malloc'd UTF-8 copy. */
static char* pp_get_string(napi_env env, napi_value v, size_t* len_out) {
    size_t len = 0;
    if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
        pp_throw(env, "EPPARGS", "polyplug native: expected a string");
        return NULL;
    }
    char* s = malloc(len + 1);
    if (s == NULL) {
        pp_throw(env, "EPPNOMEM", "polyplug native: out of memory");
        return NULL;
    }
    if (!pp_ok(env, napi_get_value_string_utf8(env, v, s, len + 1, &len),
               "napi_get_value_string_utf8")) {
        free(s);
        return NULL;
    }
    if (len_out) *len_out = len;
    return s;
}

static int pp_on_js_thread(const pp_runtime* rt) {
    return rt->js_allowed && pthread_equal(pthread_self(), rt->js_thread);
}

/* ---- libraries ---- */
static napi_value pp_loaded_path(napi_env env, void* handle, const char* fallback) {
    struct link_map* map = NULL;
    napi_value v;
    const char* name = fallback;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != NULL && map->l_name != NULL &&
        map->l_name[0] != '\0')
        name = map->l_name;
    return pp_ok(env, napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v),
                 "napi_create_string_utf8")
               ? v
               : NULL;
}

/* openLibrary(target) -> {library, path}; throws (code EPPLIB) with dlerror's text. */
static napi_value pp_open_library(napi_env env, napi_callback_info info) {
    PP_ARGS(1)
    char* target = pp_get_string(env, argv[0], NULL);
    if (target == NULL) return NULL;
    void* h = dlopen(target, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char* why = dlerror();
        pp_throw(env, "EPPLIB", "%s", why ? why : "dlopen failed");
        free(target);
        return NULL;
    }
    pp_library* lib = calloc(1, sizeof *lib);
    if (lib == NULL) {
        free(target);
        return pp_throw(env, "EPPNOMEM", "polyplug native: out of memory");
    }
    /* POSIX allows converting dlsym's object pointer to a function pointer. */
    *(void**)&lib->create = dlsym(h, "polyplug_runtime_create");
    *(void**)&lib->destroy = dlsym(h, "polyplug_runtime_destroy");
    if (lib->create == NULL || lib->destroy == NULL) {
        const char* missing =
            lib->create == NULL ? "polyplug_runtime_create" : "polyplug_runtime_destroy";
        free(lib);
        pp_throw(env, "EPPNOTPP", "does not export %s", missing);
        free(target);
        return NULL; /* the handle stays open: dlclose of a library we may share is not worth it */
    }
    napi_value result = NULL, ext, path;
    /* The library is never closed: runtimes created from it may outlive any JavaScript object.
     * On a failure below lib stays allocated: an external may already point to it. */
    if (!pp_ok(env, napi_create_object(env, &result), "napi_create_object") ||
        !pp_ok(env, napi_create_external(env, lib, NULL, NULL, &ext), "napi_create_external") ||
        !pp_ok(env, napi_type_tag_object(env, ext, &pp_library_tag), "napi_type_tag_object") ||
        !pp_ok(env, napi_set_named_property(env, result, "library", ext),
               "napi_set_named_property") ||
        (path = pp_loaded_path(env, h, target)) == NULL ||
        !pp_ok(env, napi_set_named_property(env, result, "path", path), "napi_set_named_property"))
        result = NULL;
    free(target);
    return result;
}

/* openLoader(path, symbol) -> {loader: address, path}; throws EPPLIB / EPPNOTPP. */
static napi_value pp_open_loader(napi_env env, napi_callback_info info) {
    PP_ARGS(2)
    char* path = pp_get_string(env, argv[0], NULL);
    if (path == NULL) return NULL;
    char* symbol = pp_get_string(env, argv[1], NULL);
    if (symbol == NULL) {
        free(path);
        return NULL;
    }
    napi_value result = NULL;
    void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char* why = dlerror();
        pp_throw(env, "EPPLIB", "%s", why ? why : "dlopen failed");
    } else {
        void* (*create)(void) = NULL;
        *(void**)&create = dlsym(h, symbol);
        if (create == NULL) {
            pp_throw(env, "EPPNOTPP", "does not export %s", symbol);
        } else {
            void* loader = create();
            if (loader == NULL) {
                pp_throw(env, "EPPNULL", "%s returned NULL", symbol);
            } else {
                napi_value addr, loaded;
                if (!pp_ok(env, napi_create_object(env, &result), "napi_create_object") ||
                    (addr = pp_addr(env, loader)) == NULL ||
                    !pp_ok(env, napi_set_named_property(env, result, "loader", addr),
                           "napi_set_named_property") ||
                    (loaded = pp_loaded_path(env, h, path)) == NULL ||
                    !pp_ok(env, napi_set_named_property(env, result, "path", loaded),
                           "napi_set_named_property"))
                    result = NULL;
            }
        }
    }
    free(path);
    free(symbol);
    return result;
}

/* ---- runtime callbacks ---- */
static void pp_call_js(pp_runtime* rt, napi_ref ref, size_t argc, napi_value* argv_out,
                       int (*fill)(napi_env, napi_value*, const void*), const void* data) {
    napi_env env = rt->env;
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value fn = NULL, recv = NULL, result;
    /* fn is NULL when the callback was collected (the references are weak: the Runtime object
     * holds the functions, so it can be collected with them; see pp_create_runtime). */
    if (napi_get_reference_value(env, ref, &fn) != napi_ok || fn == NULL) {
        __atomic_fetch_add(&rt->dropped, 1, __ATOMIC_RELAXED);
    } else {
        int filled = fill(env, argv_out, data);
        if (!filled || napi_get_undefined(env, &recv) != napi_ok ||
            napi_call_function(env, recv, fn, argc, argv_out, &result) != napi_ok) {
            /* polyplug.js wraps every callback in try/catch; an exception here is a bug there. */
            bool pending = false;
            napi_is_exception_pending(env, &pending);
            if (pending) {
                napi_value ignored;
                napi_get_and_clear_last_exception(env, &ignored);
            }
            __atomic_fetch_add(&rt->dropped, 1, __ATOMIC_RELAXED);
        }
    }
    napi_close_handle_scope(env, scope);
}

static int pp_fill_reload(napi_env env, napi_value* argv, const void* data) {
    const ReloadPhase* p = data;
    return (argv[0] = pp_number(env, (double)p->phase_type)) != NULL &&
           (argv[1] = pp_u64(env, p->bundle_id)) != NULL &&
           (argv[2] = pp_view_string(env, p->bundle_name.ptr, p->bundle_name.len, "bundle name")) !=
               NULL &&
           (argv[3] = pp_view_string(env, p->reason.ptr, p->reason.len, "reason")) != NULL;
}

static void pp_reload_trampoline(void* user, const ReloadPhase* phase) {
    pp_runtime* rt = user;
    if (rt == NULL || phase == NULL || rt->on_reload == NULL) return;
    if (!pp_on_js_thread(rt)) {
        __atomic_fetch_add(&rt->dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    napi_value argv[4];
    pp_call_js(rt, rt->on_reload, 4, argv, pp_fill_reload, phase);
}

typedef struct pp_log_record {
    uint32_t level;
    StringView scope, message;
} pp_log_record;

static int pp_fill_log(napi_env env, napi_value* argv, const void* data) {
    const pp_log_record* r = data;
    return (argv[0] = pp_number(env, (double)r->level)) != NULL &&
           (argv[1] = pp_view_string(env, r->scope.ptr, r->scope.len, "log scope")) != NULL &&
           (argv[2] = pp_view_string(env, r->message.ptr, r->message.len, "log message")) != NULL;
}

static void pp_log_trampoline(void* user, uint32_t level, StringView scope, StringView message) {
    pp_runtime* rt = user;
    if (rt == NULL || rt->log == NULL) return;
    if (!pp_on_js_thread(rt)) {
        __atomic_fetch_add(&rt->dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    pp_log_record r = {level, scope, message};
    napi_value argv[3];
    pp_call_js(rt, rt->log, 3, argv, pp_fill_log, &r);
}

/* ---- host contracts implemented in JavaScript ---- */
static const char pp_wrong_thread[] =
    "a host contract implemented in JavaScript was called from a thread that is not the "
    "JavaScript thread; Node.js allows JavaScript on its own thread only, so the call was "
    "refused (call it from the thread that runs the host's JavaScript)";
static const char pp_no_instance[] = "host contract called with a null instance";
static const char pp_escaped[] = "a JavaScript exception escaped the host contract dispatcher";
static const char pp_collected[] =
    "the JavaScript implementation of this host contract was garbage-collected with its "
    "Runtime object";

static void pp_set_error(AbiError* err, uint32_t code, const char* text, size_t len) {
    err->code = code;
    err->message.ptr = (const uint8_t*)text;
    err->message.len = len;
}

static void pp_host_dispatch(uint32_t index, HostContractInstance instance, const void* args,
                             void* out, AbiError* err) {
    if (err == NULL) return;
    pp_registration* reg = instance.data;
    if (reg == NULL) {
        pp_set_error(err, 8 /* InvalidPointer */, pp_no_instance, sizeof pp_no_instance - 1);
        return;
    }
    pp_runtime* rt = reg->rt;
    if (!pp_on_js_thread(rt)) {
        pp_set_error(err, 102 /* HostContractCallFailed */, pp_wrong_thread,
                     sizeof pp_wrong_thread - 1);
        return;
    }
    napi_env env = rt->env;
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) {
        pp_set_error(err, 102, pp_escaped, sizeof pp_escaped - 1);
        return;
    }
    napi_value fn = NULL, recv = NULL, result, argv[3];
    pp_set_error(err, 0, NULL, 0);
    if (napi_get_reference_value(env, reg->dispatcher, &fn) != napi_ok || fn == NULL) {
        /* Weak: collected with its Runtime object while a plugin still holds the table. */
        pp_set_error(err, 102, pp_collected, sizeof pp_collected - 1);
    } else if (napi_get_undefined(env, &recv) != napi_ok ||
               (argv[0] = pp_number(env, (double)index)) == NULL ||
               (argv[1] = pp_addr(env, args)) == NULL || (argv[2] = pp_addr(env, out)) == NULL ||
               napi_call_function(env, recv, fn, 3, argv, &result) != napi_ok) {
        napi_value ignored;
        bool pending = false;
        if (napi_is_exception_pending(env, &pending) == napi_ok && pending)
            napi_get_and_clear_last_exception(env, &ignored);
        pp_set_error(err, 3 /* Panic */, pp_escaped, sizeof pp_escaped - 1);
    } else {
        bool is_array = false;
        napi_is_array(env, result, &is_array);
        if (is_array) { /* [code, message]: the implementation failed */
            napi_value code_v = NULL, text_v = NULL;
            uint32_t code = 3;
            double d = 0.0;
            /* polyplug.js sends a code in [1, 2^32); anything else is a Panic, never wrapped. */
            if (napi_get_element(env, result, 0, &code_v) != napi_ok ||
                napi_get_value_double(env, code_v, &d) != napi_ok || !(d >= 1.0) ||
                d > 4294967295.0 || d != (double)(uint32_t)d)
                code = 3;
            else
                code = (uint32_t)d;
            if (napi_get_element(env, result, 1, &text_v) != napi_ok) text_v = NULL;
            size_t len = 0;
            free(reg->messages[index]);
            reg->messages[index] = NULL;
            if (text_v != NULL &&
                napi_get_value_string_utf8(env, text_v, NULL, 0, &len) == napi_ok &&
                (reg->messages[index] = malloc(len + 1)) != NULL)
                napi_get_value_string_utf8(env, text_v, reg->messages[index], len + 1, &len);
            else
                len = 0;
            pp_set_error(err, code, reg->messages[index], len);
        }
    }
    napi_close_handle_scope(env, scope);
}

/* 64 trampolines, pp_host_fn_<b>_<k> passing index b * 8 + k, and their table. */
#define PP_T1(b, k)                                                                   \
    static void pp_host_fn_##b##_##k(HostContractInstance in, const void* a, void* o, \
                                     AbiError* e) {                                   \
        pp_host_dispatch((b)*8 + (k), in, a, o, e);                                   \
    }
#define PP_T8(b) \
    PP_T1(b, 0) PP_T1(b, 1) PP_T1(b, 2) PP_T1(b, 3) PP_T1(b, 4) PP_T1(b, 5) PP_T1(b, 6) PP_T1(b, 7)
PP_T8(0)
PP_T8(1)
PP_T8(2)
PP_T8(3)
PP_T8(4)
PP_T8(5)
PP_T8(6)
PP_T8(7)

#define PP_E8(b)                                                                    \
    pp_host_fn_##b##_0, pp_host_fn_##b##_1, pp_host_fn_##b##_2, pp_host_fn_##b##_3, \
        pp_host_fn_##b##_4, pp_host_fn_##b##_5, pp_host_fn_##b##_6, pp_host_fn_##b##_7
static void (*const pp_host_fns[PP_MAX_HOST_FNS])(HostContractInstance, const void*, void*,
                                                  AbiError*) = {
    PP_E8(0), PP_E8(1), PP_E8(2), PP_E8(3), PP_E8(4), PP_E8(5), PP_E8(6), PP_E8(7)};

static void pp_host_create(const HostContractInterface* self, const void* args,
                           HostContractInstance* out) {
    (void)args;
    if (out != NULL) out->data = self != NULL ? self->user_data : NULL;
}

static void pp_host_destroy(const HostContractInterface* self, HostContractInstance instance) {
    (void)self;
    (void)instance;
}

static void pp_free_registrations(pp_runtime* rt, int delete_refs) {
    pp_registration* reg = rt->registrations;
    while (reg != NULL) {
        pp_registration* next = reg->next;
        for (int i = 0; i < PP_MAX_HOST_FNS; ++i) free(reg->messages[i]);
        if (delete_refs) napi_delete_reference(rt->env, reg->dispatcher);
        free(reg);
        reg = next;
    }
    rt->registrations = NULL;
}

/* registerHostContract(rt, id, major, minor, patch, singleton, count, dispatcher)
 *   -> undefined | [code, message]. dispatcher(index, argsAddress, outAddress) returns undefined
 *   on success or [code, message]. */
static napi_value pp_register_host_contract(napi_env env, napi_callback_info info) {
    PP_ARGS(8)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    uint64_t id;
    uint32_t major, minor, patch, count;
    bool singleton = false;
    if (rt == NULL || !pp_get_u64(env, argv[1], &id) || !pp_get_u32(env, argv[2], &major) ||
        !pp_get_u32(env, argv[3], &minor) || !pp_get_u32(env, argv[4], &patch) ||
        !pp_get_u32(env, argv[6], &count))
        return NULL;
    if (napi_get_value_bool(env, argv[5], &singleton) != napi_ok)
        return pp_throw(env, "EPPARGS", "polyplug native: singleton must be a boolean");
    if (count > PP_MAX_HOST_FNS)
        return pp_throw(env, "EPPARGS",
                        "a host contract implemented in JavaScript has at most %d functions, "
                        "this one has %u",
                        PP_MAX_HOST_FNS, count);
    pp_registration* reg = calloc(1, sizeof *reg);
    if (reg == NULL) return pp_throw(env, "EPPNOMEM", "polyplug native: out of memory");
    reg->rt = rt;
    for (uint32_t i = 0; i < count; ++i)
        memcpy((void*)&reg->table[i], &pp_host_fns[i], sizeof(void*)); /* fn -> slot, as dlsym */
    reg->iface.contract_id = id;
    reg->iface.contract_version.major = major;
    reg->iface.contract_version.minor = minor;
    reg->iface.contract_version.patch = patch;
    reg->iface.singleton = singleton;
    reg->iface.dispatch_type = 0; /* Native */
    reg->iface.user_data = reg;
    reg->iface.create_instance = pp_host_create;
    reg->iface.destroy_instance = pp_host_destroy;
    reg->iface.dispatch.native.function_count = count;
    reg->iface.dispatch.native.functions = reg->table;
    napi_valuetype t = napi_undefined;
    /* Weak (count 0): polyplug.js keeps the dispatcher alive on the Runtime object; a strong
     * reference would make the Runtime a garbage-collector root through its closures. */
    if (napi_typeof(env, argv[7], &t) != napi_ok || t != napi_function ||
        napi_create_reference(env, argv[7], 0, &reg->dispatcher) != napi_ok) {
        free(reg);
        return pp_throw(env, "EPPARGS", "polyplug native: the dispatcher is not a function");
    }
    AbiError err = {0, {NULL, 0}};
    PP_ENTER(rt);
    rt->api->register_host_contract(rt->api, &reg->iface, &err);
    PP_LEAVE(rt);
    napi_value result = pp_err_result(env, &err);
    if (err.code != 0) {
        napi_delete_reference(env, reg->dispatcher);
        free(reg);
    } else {
        reg->next = rt->registrations;
        rt->registrations = reg;
    }
    return result;
}

/* ---- runtime ---- */
static void pp_runtime_teardown(pp_runtime* rt, int delete_refs) {
    if (rt->closed) return;
    /* Closed first: a log callback run by the destruction cannot reach this runtime again. */
    rt->closed = 1;
    rt->destroy(rt->api);
    rt->api = NULL;
    rt->revision = NULL;
    pp_free_registrations(rt, delete_refs);
    if (delete_refs) {
        if (rt->on_reload) napi_delete_reference(rt->env, rt->on_reload);
        if (rt->log) napi_delete_reference(rt->env, rt->log);
        rt->on_reload = rt->log = NULL;
    }
}

static void pp_runtime_finalize(napi_env env, void* data, void* hint) {
    (void)env;
    (void)hint;
    pp_runtime* rt = data;
    for (pp_runtime** link = &pp_live; *link != NULL; link = &(*link)->next_live) {
        if (*link == rt) {
            *link = rt->next_live;
            break;
        }
    }
    /* Collected without close(): destroy it without calling into JavaScript (not allowed in a
     * finalizer), then delete the (weak) references, which no longer keep anything alive. */
    rt->js_allowed = 0;
    pp_runtime_teardown(rt, 1);
    free(rt);
}

/* createRuntime(library, compatibility, hotReload, logLevel, onReload|null, log|null) -> handle */
static napi_value pp_create_runtime(napi_env env, napi_callback_info info) {
    PP_ARGS(6)
    bool ok = false;
    void* p = NULL;
    if (napi_check_object_type_tag(env, argv[0], &pp_library_tag, &ok) != napi_ok || !ok ||
        napi_get_value_external(env, argv[0], &p) != napi_ok)
        return pp_throw(env, "EPPARGS", "polyplug native: not a library handle");
    pp_library* lib = p;
    uint32_t compatibility, level;
    bool hot = false;
    if (!pp_get_u32(env, argv[1], &compatibility) || !pp_get_u32(env, argv[3], &level)) return NULL;
    if (napi_get_value_bool(env, argv[2], &hot) != napi_ok)
        return pp_throw(env, "EPPARGS", "polyplug native: hotReload must be a boolean");
    pp_runtime* rt = calloc(1, sizeof *rt);
    if (rt == NULL) return pp_throw(env, "EPPNOMEM", "polyplug native: out of memory");
    rt->env = env;
    rt->js_thread = pthread_self();
    rt->js_allowed = 1;
    rt->destroy = lib->destroy;
    RuntimeConfig config;
    memset(&config, 0, sizeof config);
    config.compatibility = compatibility;
    config.hot_reload_enabled = hot;
    config.log_max_level = level;
    /* Weak references (count 0): polyplug.js keeps both functions on the Runtime object, so they
     * live as long as it does, and closures over the Runtime do not make it a root. */
    napi_valuetype t1 = napi_undefined, t2 = napi_undefined;
    if (!pp_ok(env, napi_typeof(env, argv[4], &t1), "napi_typeof") ||
        !pp_ok(env, napi_typeof(env, argv[5], &t2), "napi_typeof") ||
        (t1 == napi_function && !pp_ok(env, napi_create_reference(env, argv[4], 0, &rt->on_reload),
                                       "napi_create_reference")) ||
        (t2 == napi_function &&
         !pp_ok(env, napi_create_reference(env, argv[5], 0, &rt->log), "napi_create_reference"))) {
        if (rt->on_reload) napi_delete_reference(env, rt->on_reload);
        free(rt);
        return NULL;
    }
    if (t1 == napi_function) {
        config.on_reload = pp_reload_trampoline;
        config.on_reload_user_data = rt;
    }
    if (t2 == napi_function) {
        config.log = pp_log_trampoline;
        config.log_user_data = rt;
    }
    rt->api = lib->create(&config);
    if (rt->api == NULL) {
        if (rt->on_reload) napi_delete_reference(env, rt->on_reload);
        if (rt->log) napi_delete_reference(env, rt->log);
        free(rt);
        return pp_throw(env, "EPPCREATE", "polyplug_runtime_create failed (returned NULL)");
    }
    const HostApi* a = rt->api;
    if (!a->alloc || !a->free || !a->find_guest_contract || !a->find_all_guest_contracts ||
        !a->resolve_guest_contract || !a->get_host_contract ||
        !a->resolve_host_contract_interface || !a->list_bundles || !a->load_bundle ||
        !a->reload_bundle || !a->register_host_contract || !a->register_loader ||
        !a->get_last_error || !a->get_error_len || !a->unload_bundle || !a->log ||
        !a->create_guest_instance || !a->destroy_guest_instance) {
        rt->destroy(rt->api);
        if (rt->on_reload) napi_delete_reference(env, rt->on_reload);
        if (rt->log) napi_delete_reference(env, rt->log);
        free(rt);
        return pp_throw(env, "EPPCREATE", "the runtime's HostApi has an empty entry");
    }
    rt->revision = a->revision_counter ? a->revision_counter(a) : NULL;
    napi_value ext;
    if (!pp_ok(env, napi_create_external(env, rt, pp_runtime_finalize, NULL, &ext),
               "napi_create_external")) {
        pp_runtime_teardown(rt, 1);
        free(rt);
        return NULL;
    }
    rt->next_live = pp_live;
    pp_live = rt;
    return ext;
}

static napi_value pp_destroy_runtime(napi_env env, napi_callback_info info) {
    PP_ARGS(1)
    void* p = NULL;
    pp_runtime* rt = NULL;
    if (napi_get_value_external(env, argv[0], &p) == napi_ok)
        for (rt = pp_live; rt != NULL && rt != p; rt = rt->next_live) {
        }
    if (rt == NULL) return pp_throw(env, "EPPARGS", "polyplug native: not a runtime handle");
    if (rt->depth > 0)
        return pp_throw(env, "EPPBUSY",
                        "the runtime is busy: a call into it is in progress (close it after the "
                        "call returns)");
    pp_runtime_teardown(rt, 1);
    return pp_undefined(env);
}

/* busy(rt) -> how many calls into the runtime are in progress (0 once closed). */
static napi_value pp_busy(napi_env env, napi_callback_info info) {
    PP_ARGS(1)
    void* p = NULL;
    pp_runtime* rt = NULL;
    if (napi_get_value_external(env, argv[0], &p) == napi_ok)
        for (rt = pp_live; rt != NULL && rt != p; rt = rt->next_live) {
        }
    if (rt == NULL) return pp_throw(env, "EPPARGS", "polyplug native: not a runtime handle");
    return pp_number(env, (double)rt->depth);
}

/* liveRuntimes() -> how many runtimes of this thread are neither closed nor collected (for
 * the tests: a runtime dropped without close() leaves this count when it is collected). */
static napi_value pp_live_runtimes(napi_env env, napi_callback_info info) {
    (void)info;
    double n = 0;
    for (pp_runtime* rt = pp_live; rt != NULL; rt = rt->next_live) n += !rt->closed;
    return pp_number(env, n);
}

static napi_value pp_host_api(napi_env env, napi_callback_info info) {
    PP_ARGS(1)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    return rt ? pp_addr(env, rt->api) : NULL;
}

static napi_value pp_revision(napi_env env, napi_callback_info info) {
    PP_ARGS(1)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    if (rt == NULL) return NULL;
    return pp_number(env, rt->revision ? (double)*rt->revision : 0.0);
}

static napi_value pp_dropped(napi_env env, napi_callback_info info) {
    PP_ARGS(1)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    if (rt == NULL) return NULL;
    return pp_number(env, (double)__atomic_load_n(&rt->dropped, __ATOMIC_RELAXED));
}

/* lastError(rt) -> the runtime's last_error text ('' when none), which is cleared. */
static napi_value pp_last_error(napi_env env, napi_callback_info info) {
    PP_ARGS(1)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    if (rt == NULL) return NULL;
    size_t n = rt->api->get_error_len(rt->api);
    napi_value v;
    if (n == 0)
        return pp_ok(env, napi_create_string_utf8(env, "", 0, &v), "napi_create_string_utf8")
                   ? v
                   : NULL;
    if (n > PP_MAX_MESSAGE)
        n = PP_MAX_MESSAGE; /* get_last_error truncates to the buffer and clears */
    uint8_t* buf = malloc(n);
    if (buf == NULL) return pp_throw(env, "EPPNOMEM", "polyplug native: out of memory");
    size_t got = rt->api->get_last_error(rt->api, buf, n);
    napi_status status = napi_create_string_utf8(env, (const char*)buf, got < n ? got : n, &v);
    free(buf);
    return pp_ok(env, status, "napi_create_string_utf8") ? v : NULL;
}

static napi_value pp_clear_last_error(napi_env env, napi_callback_info info) {
    PP_ARGS(1)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    if (rt == NULL) return NULL;
    if (rt->api->get_error_len(rt->api)) rt->api->get_last_error(rt->api, NULL, 0);
    return pp_undefined(env);
}

static napi_value pp_path_op(napi_env env, napi_callback_info info, int reload) {
    PP_ARGS(2)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    if (rt == NULL) return NULL;
    size_t len = 0;
    char* path = pp_get_string(env, argv[1], &len);
    if (path == NULL) return NULL;
    AbiError err = {0, {NULL, 0}};
    PP_ENTER(rt);
    if (reload)
        rt->api->reload_bundle(rt->api, (const uint8_t*)path, len, &err);
    else
        rt->api->load_bundle(rt->api, (const uint8_t*)path, len, &err);
    PP_LEAVE(rt);
    free(path);
    return pp_err_result(env, &err);
}

static napi_value pp_load_bundle(napi_env env, napi_callback_info info) {
    return pp_path_op(env, info, 0);
}

static napi_value pp_reload_bundle(napi_env env, napi_callback_info info) {
    return pp_path_op(env, info, 1);
}

static napi_value pp_unload_bundle(napi_env env, napi_callback_info info) {
    PP_ARGS(2)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    uint64_t id;
    if (rt == NULL || !pp_get_u64(env, argv[1], &id)) return NULL;
    AbiError err = {0, {NULL, 0}};
    PP_ENTER(rt);
    rt->api->unload_bundle(rt->api, id, &err);
    PP_LEAVE(rt);
    return pp_err_result(env, &err);
}

static napi_value pp_register_loader(napi_env env, napi_callback_info info) {
    PP_ARGS(2)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    uintptr_t loader;
    if (rt == NULL || !pp_get_addr(env, argv[1], &loader)) return NULL;
    AbiError err = {0, {NULL, 0}};
    PP_ENTER(rt);
    rt->api->register_loader(rt->api, (void*)loader, &err);
    PP_LEAVE(rt);
    return pp_err_result(env, &err);
}

/* A JS array of `count` elements, each converted by `element` from `items` (`size` bytes
 * apart); NULL, with the exception pending, when a conversion fails. */
static napi_value pp_array(napi_env env, const void* items, size_t count, size_t size,
                           napi_value (*element)(napi_env, const void*)) {
    napi_value arr = NULL;
    if (!pp_ok(env, napi_create_array_with_length(env, items ? count : 0, &arr),
               "napi_create_array_with_length"))
        return NULL;
    for (size_t i = 0; items != NULL && i < count; ++i) {
        napi_value v = element(env, (const uint8_t*)items + i * size);
        if (v == NULL ||
            !pp_ok(env, napi_set_element(env, arr, (uint32_t)i, v), "napi_set_element"))
            return NULL;
    }
    return arr;
}

static napi_value pp_bundle_id_value(napi_env env, const void* id) {
    return pp_u64(env, *(const BundleId*)id);
}

/* A handle as one number: index * 2^32 + generation (exact below 2^53 for the indices a runtime
 * hands out). */
static napi_value pp_handle_value(napi_env env, const void* handle) {
    const GuestContractHandle* h = (const GuestContractHandle*)handle;
    return pp_number(env, (double)h->index * 4294967296.0 + (double)h->generation);
}

static napi_value pp_list_bundles(napi_env env, napi_callback_info info) {
    PP_ARGS(1)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    if (rt == NULL) return NULL;
    PP_ENTER(rt);
    ArrayOf_BundleId ids = rt->api->list_bundles(rt->api);
    PP_LEAVE(rt);
    napi_value arr = pp_array(env, ids.items, ids.len, sizeof(BundleId), pp_bundle_id_value);
    if (ids.items != NULL)
        rt->api->free(rt->api, (uint8_t*)ids.items, ids.len * sizeof(BundleId), ids.align);
    return arr;
}

/* find(rt, id, minMajor) -> index * 2^32 + generation, or -1 when nothing provides it. */
static napi_value pp_find(napi_env env, napi_callback_info info) {
    PP_ARGS(3)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    uint64_t id;
    uint32_t min;
    if (rt == NULL || !pp_get_u64(env, argv[1], &id) || !pp_get_u32(env, argv[2], &min))
        return NULL;
    PP_ENTER(rt);
    GuestContractHandle h = rt->api->find_guest_contract(rt->api, id, min);
    PP_LEAVE(rt);
    if (h.index == UINT32_MAX) return pp_number(env, -1.0);
    return pp_handle_value(env, &h);
}

static napi_value pp_find_all(napi_env env, napi_callback_info info) {
    PP_ARGS(3)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    uint64_t id;
    uint32_t min;
    if (rt == NULL || !pp_get_u64(env, argv[1], &id) || !pp_get_u32(env, argv[2], &min))
        return NULL;
    PP_ENTER(rt);
    ArrayOf_GuestContractHandle hs = rt->api->find_all_guest_contracts(rt->api, id, min);
    PP_LEAVE(rt);
    napi_value arr = pp_array(env, hs.items, hs.len, sizeof(GuestContractHandle), pp_handle_value);
    if (hs.items != NULL)
        rt->api->free(rt->api, (uint8_t*)hs.items, hs.len * sizeof(GuestContractHandle), hs.align);
    return arr;
}

static napi_value pp_resolve(napi_env env, napi_callback_info info) {
    PP_ARGS(2)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    double packed;
    if (rt == NULL || napi_get_value_double(env, argv[1], &packed) != napi_ok) return NULL;
    if (!(packed >= 0.0) || packed >= 18446744073709551616.0)
        return pp_throw(env, "EPPARGS", "polyplug native: not a contract handle");
    uint64_t v = (uint64_t)packed;
    GuestContractHandle h = {(uint32_t)(v >> 32), (uint32_t)v};
    PP_ENTER(rt);
    const void* iface = rt->api->resolve_guest_contract(rt->api, h);
    PP_LEAVE(rt);
    return pp_addr(env, iface);
}

/* createInstance(rt, iface, instanceAddress) -> bool (false: create_guest_instance failed). */
static napi_value pp_create_instance(napi_env env, napi_callback_info info) {
    PP_ARGS(3)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    uintptr_t iface, inst;
    if (rt == NULL || !pp_get_addr(env, argv[1], &iface) || !pp_get_addr(env, argv[2], &inst))
        return NULL;
    if (iface == 0 || inst == 0)
        return pp_throw(env, "EPPADDR", "polyplug native: null interface or instance");
    GuestContractInstance* out = (GuestContractInstance*)inst;
    memset(out, 0, sizeof *out);
    PP_ENTER(rt);
    rt->api->create_guest_instance(rt->api, (const GuestContractInterface*)iface, NULL, out);
    PP_LEAVE(rt);
    napi_value v;
    return pp_ok(env, napi_get_boolean(env, out->data != NULL || out->contract_id != 0, &v),
                 "napi_get_boolean")
               ? v
               : NULL;
}

static napi_value pp_destroy_instance(napi_env env, napi_callback_info info) {
    PP_ARGS(3)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    uintptr_t iface, inst;
    if (rt == NULL || !pp_get_addr(env, argv[1], &iface) || !pp_get_addr(env, argv[2], &inst))
        return NULL;
    if (iface != 0 && inst != 0) {
        PP_ENTER(rt);
        rt->api->destroy_guest_instance(rt->api, (const GuestContractInterface*)iface,
                                        *(const GuestContractInstance*)inst);
        PP_LEAVE(rt);
    }
    return pp_undefined(env);
}

/* getHostContract(rt, id, packedMinVersion) -> [iface, instanceData] or null. */
static napi_value pp_get_host_contract(napi_env env, napi_callback_info info) {
    PP_ARGS(3)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    uint64_t id;
    uint32_t min;
    if (rt == NULL || !pp_get_u64(env, argv[1], &id) || !pp_get_u32(env, argv[2], &min))
        return NULL;
    PP_ENTER(rt);
    const HostContractInterface* iface = rt->api->resolve_host_contract_interface(rt->api, id, min);
    HostContractInstance inst = rt->api->get_host_contract(rt->api, id, min);
    PP_LEAVE(rt);
    napi_value v, a, b;
    if (iface == NULL || inst.data == NULL)
        return pp_ok(env, napi_get_null(env, &v), "napi_get_null") ? v : NULL;
    if (!pp_ok(env, napi_create_array_with_length(env, 2, &v), "napi_create_array_with_length") ||
        (a = pp_addr(env, iface)) == NULL ||
        !pp_ok(env, napi_set_element(env, v, 0, a), "napi_set_element") ||
        (b = pp_addr(env, inst.data)) == NULL ||
        !pp_ok(env, napi_set_element(env, v, 1, b), "napi_set_element"))
        return NULL;
    return v;
}

static napi_value pp_free(napi_env env, napi_callback_info info) {
    PP_ARGS(4)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    uintptr_t ptr, size, align;
    if (rt == NULL || !pp_get_addr(env, argv[1], &ptr) || !pp_get_addr(env, argv[2], &size) ||
        !pp_get_addr(env, argv[3], &align))
        return NULL;
    if (ptr != 0) rt->api->free(rt->api, (uint8_t*)ptr, size, align);
    return pp_undefined(env);
}

static napi_value pp_log(napi_env env, napi_callback_info info) {
    PP_ARGS(4)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    uint32_t level;
    if (rt == NULL || !pp_get_u32(env, argv[1], &level)) return NULL;
    size_t slen = 0, mlen = 0;
    char* scope = pp_get_string(env, argv[2], &slen);
    if (scope == NULL) return NULL;
    char* message = pp_get_string(env, argv[3], &mlen);
    if (message != NULL) {
        StringView s = {(const uint8_t*)scope, slen}, m = {(const uint8_t*)message, mlen};
        PP_ENTER(rt);
        rt->api->log(rt->api, level, s, m);
        PP_LEAVE(rt);
    }
    free(scope);
    free(message);
    return message ? pp_undefined(env) : NULL;
}

/* ---- calls ---- */
/* Retain and rewind (spec 5.4): overflow blocks stay, each marked empty (header only). */
static void pp_arena_rewind(CallArena* arena) {
    for (ArenaOverflowBlock* b = arena->first_overflow; b != NULL; b = b->next)
        b->used = sizeof(ArenaOverflowBlock);
    arena->cur = arena->base;
}

/* One guest contract call, as polyplug.js describes it. callSlot reads it from memory that
 * polyplug.js writes once per contract object and function (and again after a reload), so that
 * a call crosses into the addon with two arguments (and its string arguments) instead of six to
 * nine; callGuest builds it from its arguments. The layout is polyplug.js's (CALL_BLOCK there). */
enum {
    PP_CALL_VM = 1u,         /* a VM provider: fn is its VmCallFn, data its VmLoaderData */
    PP_CALL_STRING_OUT = 2u, /* the result is a StringView at out: return it as a string */
};
/* callSlot converts at most this many string arguments itself (polyplug.js's DIRECT_MAX). */
#define PP_DIRECT_MAX 4
typedef struct pp_call_block {
    double seen; /* the revision polyplug.js last saw; nothing is called when it moved */
    uint64_t fn;
    uint64_t data;
    uint64_t instance; /* the address of the GuestContractInstance */
    uint64_t args;
    uint64_t out;
    uint64_t arena; /* VM calls: the CallArena, rewound before the call */
    uint32_t fn_id;
    uint32_t flags;
    uint32_t out_size;  /* the bytes at out, zeroed before the call */
    uint32_t args_size; /* the bytes at args (the direct strings' StringViews must fit) */
    uint64_t scratch;   /* where callSlot encodes the direct strings */
    uint32_t scratch_size;
    uint32_t direct; /* how many StringView parameters callSlot may be passed strings for */
    uint32_t direct_offset[PP_DIRECT_MAX]; /* their StringViews' offsets in the argument area */
    /* The pp_runtime (runtimeAddress), checked against the live list like a handle: callSlot
     * takes no handle argument, whose conversion (napi_get_value_external) is a tenth of it. */
    uint64_t runtime;
} pp_call_block;
_Static_assert(sizeof(pp_call_block) == 112, "polyplug.js's CALL_BLOCK layout");

/* 1 when a pointer and length that are claims (a plugin's or the runtime's) may be read; else
 * throws EPPNULL (a null pointer with a length) or EPPTOOBIG (over 1 GiB), which polyplug.js
 * turns into InvalidPointerError naming what was read, and returns 0. */
static int pp_claim_ok(napi_env env, const void* ptr, size_t len) {
    if (ptr == NULL && len != 0) {
        pp_throw(env, "EPPNULL", "a null pointer with length %zu", len);
        return 0;
    }
    if (len > PP_MAX_READ) {
        pp_throw(env, "EPPTOOBIG", "a length of %zu bytes, over the %zu-byte limit", len,
                 PP_MAX_READ);
        return 0;
    }
    return 1;
}

/* A string from a pointer and length that are claims (a plugin's or the runtime's): a null
 * pointer with a length and a length over the limits throw EPPNULL / EPPTOOBIG (pp_claim_ok).
 * readString and a StringView result of callSlot both come here. It differs from pp_view_string
 * on purpose: that one makes the text of an error message, a log record or a reload event,
 * where a bad claim must not throw (it would replace the error being reported, or throw from a
 * callback), so it returns a description of the bad claim instead; here the string is a value
 * the caller asked for, and a bad claim is an error (InvalidPointerError in polyplug.js). */
static napi_value pp_claimed_string(napi_env env, const char* ptr, size_t len) {
    if (!pp_claim_ok(env, ptr, len)) return NULL;
    if (len > PP_MAX_STRING)
        return pp_throw(env, "EPPTOOBIG",
                        "a string of %zu bytes, over the %zu-byte limit for strings (V8's strings "
                        "are shorter than 2^29 characters)",
                        len, PP_MAX_STRING);
    napi_value v;
    return pp_ok(env, napi_create_string_utf8(env, len ? ptr : "", len, &v),
                 "napi_create_string_utf8")
               ? v
               : NULL;
}

/* Encodes callSlot's string arguments (strs[i] for the StringView at direct_offset[i]) as UTF-8
 * into the block's scratch memory, V8 copying straight out of its string (lone surrogates become
 * U+FFFD, as Buffer.from does), and writes their StringViews. Converting here instead of in
 * JavaScript saves polyplug.js's per-character loop (or, for other than short ASCII text, its
 * call into C++ through Buffer#write): the floor of a call converts its string the same way,
 * inside its one Node-API call. A value that
 * is not a string (a Uint8Array) was encoded by polyplug.js and is left alone. A string that does
 * not fit the rest of the scratch memory gets a buffer of its own in owned[i], which the caller
 * frees after the call. 1 on success; else throws and returns 0 (owned[] may hold buffers). */
static int pp_direct_strings(napi_env env, const pp_call_block* c, size_t n, napi_value* strs,
                             char** owned) {
    if (n > c->direct) n = c->direct;
    char* scratch = (char*)(uintptr_t)c->scratch;
    size_t used = 0;
    for (size_t i = 0; i < n; ++i) {
        const uint32_t off = c->direct_offset[i];
        if (c->args == 0 || c->args_size < sizeof(StringView) ||
            off > c->args_size - sizeof(StringView)) {
            pp_throw(env, "EPPADDR",
                     "polyplug native: a string argument at offset %u outside the "
                     "%u-byte argument area",
                     (unsigned)off, (unsigned)c->args_size);
            return 0;
        }
        const size_t room = scratch != NULL && used < c->scratch_size ? c->scratch_size - used : 0;
        char* at = scratch + used;
        size_t len = 0;
        /* napi_get_value_string_utf8 writes at most room - 1 bytes (it adds a NUL) and only
         * whole characters (at most 4 bytes each), so a result shorter than room - 4 is the whole
         * string; a longer one may be cut and is measured. */
        napi_status st = room > 5 ? napi_get_value_string_utf8(env, strs[i], at, room, &len)
                                  : napi_get_value_string_utf8(env, strs[i], NULL, 0, &len);
        if (st == napi_string_expected) continue;
        if (!pp_ok(env, st, "napi_get_value_string_utf8")) return 0;
        if (room <= 5 || len + 5 > room) {
            size_t whole = len;
            if (room > 5 && !pp_ok(env, napi_get_value_string_utf8(env, strs[i], NULL, 0, &whole),
                                   "napi_get_value_string_utf8"))
                return 0;
            if (room <= 5 || whole != len) {
                owned[i] = malloc(whole + 1);
                if (owned[i] == NULL) {
                    pp_throw(env, "EPPNOMEM", "polyplug native: cannot allocate %zu bytes",
                             whole + 1);
                    return 0;
                }
                at = owned[i];
                if (!pp_ok(env, napi_get_value_string_utf8(env, strs[i], at, whole + 1, &len),
                           "napi_get_value_string_utf8"))
                    return 0;
            }
        }
        if (owned[i] == NULL) used += len;
        /* An empty string is {NULL, 0}, as polyplug.js writes it. */
        StringView sv = {len ? (const uint8_t*)at : NULL, len};
        memcpy((char*)(uintptr_t)c->args + off, &sv, sizeof sv);
    }
    return 1;
}

/* Calls c -> undefined (done; or the StringView result as a string with PP_CALL_STRING_OUT),
 * -1 (the revision moved: nothing was called) or [code, message]. c is the caller's copy: the
 * block itself is JavaScript-writable memory that a callback during the call could change. The
 * result area is zeroed first, so a provider that reports success without writing its result
 * leaves zeros (an empty StringView), never the previous call's pointer and length. strs are
 * callSlot's string arguments (see pp_direct_strings), converted only once nothing stands in the
 * way of the call. */
static napi_value pp_call(napi_env env, pp_runtime* rt, const pp_call_block* c, size_t nstrs,
                          napi_value* strs) {
    if (rt->revision != NULL && (double)*rt->revision != c->seen) return pp_number(env, -1.0);
    const int vm = (c->flags & PP_CALL_VM) != 0;
    if (c->fn == 0 || c->instance == 0 || (vm && c->arena == 0))
        return pp_throw(env, "EPPADDR", "polyplug native: null function, instance or arena");
    if ((c->out == 0 && c->out_size != 0) ||
        ((c->flags & PP_CALL_STRING_OUT) && (c->out == 0 || c->out_size < sizeof(StringView))))
        return pp_throw(env, "EPPADDR",
                        "polyplug native: a result of %u bytes at a null or too small result area",
                        (unsigned)c->out_size);
    char* owned[PP_DIRECT_MAX] = {NULL, NULL, NULL, NULL};
    if (nstrs != 0 && !pp_direct_strings(env, c, nstrs, strs, owned)) {
        for (size_t i = 0; i < PP_DIRECT_MAX; ++i) {
            if (owned[i] == NULL) continue;
            /* As after a call: an earlier string's StringView already points into owned[i],
             * and the argument area outlives this call (pp_direct_strings checked the offset
             * before it allocated). */
            memset((char*)(uintptr_t)c->args + c->direct_offset[i], 0, sizeof(StringView));
            free(owned[i]);
        }
        return NULL;
    }
    const int any_owned =
        (owned[0] != NULL) | (owned[1] != NULL) | (owned[2] != NULL) | (owned[3] != NULL);
    if (c->out_size == sizeof(StringView)) /* the usual result: inlined, not a memset call */
        memset((void*)(uintptr_t)c->out, 0, sizeof(StringView));
    else if (c->out_size != 0)
        memset((void*)(uintptr_t)c->out, 0, c->out_size);
    const GuestContractInstance inst = *(const GuestContractInstance*)(uintptr_t)c->instance;
    AbiError err = {0, {NULL, 0}};
    PP_ENTER(rt);
    if (vm) {
        VmCallFn f;
        *(void**)&f = (void*)(uintptr_t)c->fn;
        VmLoaderData loader_data = {(void*)(uintptr_t)c->data};
        pp_arena_rewind((CallArena*)(uintptr_t)c->arena);
        f(loader_data, inst, c->fn_id, (const void*)(uintptr_t)c->args, (void*)(uintptr_t)c->out,
          (CallArena*)(uintptr_t)c->arena, &err);
    } else {
        GuestContractFn f;
        *(void**)&f = (void*)(uintptr_t)c->fn;
        f(inst, (const void*)(uintptr_t)c->args, (void*)(uintptr_t)c->out, &err);
    }
    PP_LEAVE(rt);
    for (size_t i = 0; any_owned && i < PP_DIRECT_MAX; ++i) {
        if (owned[i] == NULL) continue;
        /* No pointer to freed memory stays in the argument area. */
        memset((char*)(uintptr_t)c->args + c->direct_offset[i], 0, sizeof(StringView));
        free(owned[i]);
    }
    if (err.code != 0 || !(c->flags & PP_CALL_STRING_OUT)) return pp_err_result(env, &err);
    const StringView* sv = (const StringView*)(uintptr_t)c->out;
    return pp_claimed_string(env, (const char*)sv->ptr, sv->len);
}

/* callSlot(blockAddress, ...strings): the call a pp_call_block describes (see pp_call) on the
 * runtime the block names, with up to PP_DIRECT_MAX string arguments for its direct StringView
 * parameters. */
static napi_value pp_call_slot(napi_env env, napi_callback_info info) {
    /* Asked for two first (the block and one string, the usual call): napi_get_cb_info fills
     * every slot it is given that the call did not pass, which costs as much as a conversion. */
    size_t argc = 2;
    napi_value argv[1 + PP_DIRECT_MAX];
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1)
        return pp_throw(env, "EPPARGS", "polyplug native: expected at least 1 argument");
    if (argc > 2) {
        argc = 1 + PP_DIRECT_MAX;
        if (!pp_ok(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), "napi_get_cb_info"))
            return NULL;
        if (argc > 1 + PP_DIRECT_MAX) argc = 1 + PP_DIRECT_MAX;
    }
    uintptr_t block;
    if (!pp_get_addr(env, argv[0], &block)) return NULL;
    if (block == 0) return pp_throw(env, "EPPADDR", "polyplug native: null call block");
    pp_call_block c;
    memcpy(&c, (const void*)block, sizeof c);
    pp_runtime* rt = pp_live_rt(env, (const void*)(uintptr_t)c.runtime);
    if (rt == NULL) return NULL;
    if (c.direct > PP_DIRECT_MAX)
        return pp_throw(env, "EPPADDR", "polyplug native: %u direct strings, over %d",
                        (unsigned)c.direct, PP_DIRECT_MAX);
    return pp_call(env, rt, &c, argc - 1, argv + 1);
}

/* runtimeAddress(rt) -> the pp_runtime's address, for a call block's runtime field. */
static napi_value pp_runtime_address(napi_env env, napi_callback_info info) {
    PP_ARGS(1)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    return rt == NULL ? NULL : pp_addr(env, rt);
}

/* callGuest(rt, seenRevision, fn, instanceAddress, args, out)
 *   -> undefined (done), -1 (the revision moved: nothing was called) or [code, message].
 * polyplug.js calls through callSlot; this is kept for tests/bench/host_node_bench.js, whose
 * "raw add" row calls a native entry through the binding without polyplug.js. It does not zero
 * the result area (out_size 0). */
static napi_value pp_call_guest(napi_env env, napi_callback_info info) {
    PP_ARGS(6)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    pp_call_block c = {0};
    uintptr_t fn, inst, args, out;
    if (rt == NULL || napi_get_value_double(env, argv[1], &c.seen) != napi_ok ||
        !pp_get_addr(env, argv[2], &fn) || !pp_get_addr(env, argv[3], &inst) ||
        !pp_get_addr(env, argv[4], &args) || !pp_get_addr(env, argv[5], &out))
        return NULL;
    c.fn = fn;
    c.instance = inst;
    c.args = args;
    c.out = out;
    return pp_call(env, rt, &c, 0, NULL);
}

/* arenaFree(rt, arena): frees the overflow blocks (teardown). */
static napi_value pp_arena_free(napi_env env, napi_callback_info info) {
    PP_ARGS(2)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    uintptr_t a;
    if (rt == NULL || !pp_get_addr(env, argv[1], &a)) return NULL;
    CallArena* arena = (CallArena*)a;
    if (arena != NULL) {
        ArenaOverflowBlock* b = arena->first_overflow;
        while (b != NULL) {
            ArenaOverflowBlock* next = b->next;
            rt->api->free(rt->api, (uint8_t*)b, b->capacity, 8);
            b = next;
        }
        arena->first_overflow = NULL;
        arena->cur = arena->base;
    }
    return pp_undefined(env);
}

/* callHost(rt, fn, instanceData, args, out) -> undefined | [code, message]. */
static napi_value pp_call_host(napi_env env, napi_callback_info info) {
    PP_ARGS(5)
    pp_runtime* rt = pp_get_rt(env, argv[0]);
    uintptr_t fn, data, args, out;
    if (rt == NULL || !pp_get_addr(env, argv[1], &fn) || !pp_get_addr(env, argv[2], &data) ||
        !pp_get_addr(env, argv[3], &args) || !pp_get_addr(env, argv[4], &out))
        return NULL;
    if (fn == 0) return pp_throw(env, "EPPADDR", "polyplug native: null function");
    HostContractFn f;
    *(void**)&f = (void*)fn;
    HostContractInstance inst = {(void*)data};
    AbiError err = {0, {NULL, 0}};
    PP_ENTER(rt);
    f(inst, (const void*)args, (void*)out, &err);
    PP_LEAVE(rt);
    return pp_err_result(env, &err);
}

/* ---- memory ---- */
static int pp_get_span(napi_env env, napi_value* argv, uintptr_t* addr, size_t* len) {
    uintptr_t l;
    if (!pp_get_addr(env, argv[0], addr) || !pp_get_addr(env, argv[1], &l) ||
        !pp_claim_ok(env, (const void*)*addr, l))
        return 0;
    *len = l;
    return 1;
}

/* readBytes(address, length) -> a Buffer holding a copy. */
static napi_value pp_read_bytes(napi_env env, napi_callback_info info) {
    PP_ARGS(2)
    uintptr_t addr;
    size_t len;
    if (!pp_get_span(env, argv, &addr, &len)) return NULL;
    napi_value buf;
    void* data = NULL;
    if (napi_create_buffer_copy(env, len, len ? (const void*)addr : "", &data, &buf) != napi_ok)
        return pp_throw(env, "EPPNOMEM", "polyplug native: cannot allocate %zu bytes", len);
    return buf;
}

/* readString(address, length) -> the UTF-8 text (invalid sequences become U+FFFD). */
static napi_value pp_read_string(napi_env env, napi_callback_info info) {
    PP_ARGS(2)
    uintptr_t addr, len;
    if (!pp_get_addr(env, argv[0], &addr) || !pp_get_addr(env, argv[1], &len)) return NULL;
    return pp_claimed_string(env, (const char*)addr, len);
}

/* writeBytes(address, buffer): copies the buffer's bytes to address. */
static napi_value pp_write_bytes(napi_env env, napi_callback_info info) {
    PP_ARGS(2)
    uintptr_t addr;
    void* data = NULL;
    size_t len = 0;
    if (!pp_get_addr(env, argv[0], &addr)) return NULL;
    if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok)
        return pp_throw(env, "EPPARGS", "polyplug native: expected a Buffer");
    if (addr == 0 && len != 0)
        return pp_throw(env, "EPPNULL", "write of %zu bytes to a null pointer", len);
    if (len) memcpy((void*)addr, data, len);
    return pp_undefined(env);
}

/* addressOf(buffer) -> the address of its first byte (stable: Node never moves a Buffer's
 * backing store). */
static napi_value pp_address_of(napi_env env, napi_callback_info info) {
    PP_ARGS(1)
    void* data = NULL;
    size_t len = 0;
    if (napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok)
        return pp_throw(env, "EPPARGS", "polyplug native: expected a Buffer");
    return pp_addr(env, data);
}

/* baseline(x) -> x: the cost of a plain Node-API call, for the benchmark. */
static napi_value pp_baseline(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1];
    if (!pp_ok(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), "napi_get_cb_info"))
        return NULL;
    return argc ? argv[0] : pp_undefined(env);
}

/* sizes() -> the C sizes this addon was compiled with (polyplug.js checks them). */
static napi_value pp_sizes(napi_env env, napi_callback_info info) {
    (void)info;
    const struct {
        const char* name;
        double value;
    } sizes[] = {
        {"pointer", (double)sizeof(void*)},
        {"guestInstance", (double)sizeof(GuestContractInstance)},
        {"callArena", (double)sizeof(CallArena)},
        {"guestInterface", (double)sizeof(GuestContractInterface)},
        {"maxHostFunctions", PP_MAX_HOST_FNS},
        {"maxString", (double)PP_MAX_STRING},
    };
    napi_value o;
    if (!pp_ok(env, napi_create_object(env, &o), "napi_create_object")) return NULL;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
        napi_value v = pp_number(env, sizes[i].value);
        if (v == NULL || !pp_ok(env, napi_set_named_property(env, o, sizes[i].name, v),
                                "napi_set_named_property"))
            return NULL;
    }
    return o;
}

static napi_value pp_init(napi_env env, napi_value exports) {
    static const struct {
        const char* name;
        napi_callback cb;
    } fns[] = {
        {"openLibrary", pp_open_library},
        {"openLoader", pp_open_loader},
        {"createRuntime", pp_create_runtime},
        {"destroyRuntime", pp_destroy_runtime},
        {"busy", pp_busy},
        {"liveRuntimes", pp_live_runtimes},
        {"hostApi", pp_host_api},
        {"revision", pp_revision},
        {"droppedCallbacks", pp_dropped},
        {"lastError", pp_last_error},
        {"clearLastError", pp_clear_last_error},
        {"loadBundle", pp_load_bundle},
        {"reloadBundle", pp_reload_bundle},
        {"unloadBundle", pp_unload_bundle},
        {"registerLoader", pp_register_loader},
        {"registerHostContract", pp_register_host_contract},
        {"listBundles", pp_list_bundles},
        {"find", pp_find},
        {"findAll", pp_find_all},
        {"resolve", pp_resolve},
        {"createInstance", pp_create_instance},
        {"destroyInstance", pp_destroy_instance},
        {"getHostContract", pp_get_host_contract},
        {"free", pp_free},
        {"log", pp_log},
        {"callGuest", pp_call_guest},
        {"callSlot", pp_call_slot},
        {"runtimeAddress", pp_runtime_address},
        {"callHost", pp_call_host},
        {"arenaFree", pp_arena_free},
        {"readBytes", pp_read_bytes},
        {"readString", pp_read_string},
        {"writeBytes", pp_write_bytes},
        {"addressOf", pp_address_of},
        {"baseline", pp_baseline},
        {"sizes", pp_sizes},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; ++i) {
        napi_value fn;
        if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &fn) !=
                napi_ok ||
            napi_set_named_property(env, exports, fns[i].name, fn) != napi_ok)
            return NULL;
    }
    return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, pp_init)
