// SPDX-License-Identifier: MIT
/// @file bench/vm_bench.cpp
/// VM calls per loader, each against the raw embedding call of the same script function with
/// the same conversions (DESIGN.md: within 15%): the runtime's call (polyplug::call into the
/// loader: lock, marshal from the C struct, call, marshal back into the caller's arena) against a
/// hand-written lua_pcall / PyObject_VectorcallMethod (GIL taken per call, as a host thread must)
/// / duk_pcall_method on the same script in a VM of the benchmark's own. A loader not built is
/// listed as not built. Three functions per loader (bench_vm.hpp): add (two integers), echo (a
/// string both ways) and weigh (a struct and an Array<i32> in, an integer out).
#include "bench_bundle.hpp"
#include "bench_vm.hpp"
#include "suite.hpp"

#include <polyplug/call_arena.h>
#include <polyplug/dispatch.hpp>
#include <polyplug/polyplug.hpp>

#if POLYPLUG_BENCH_LUA
#include <polyplug/loaders/lua.hpp>
#endif
#if POLYPLUG_BENCH_PYTHON
#include <polyplug/loaders/python.hpp>
#endif
#if POLYPLUG_BENCH_JS
#include <polyplug/loaders/js.hpp>
#endif

#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace bench {
namespace {

/// Calls through the runtime: the interface and one instance, results in a reused arena.
struct runtime_caller {
    const GuestContractInterface* iface = nullptr;
    GuestContractInstance instance{};
    CallArena arena{};
    std::uint8_t storage[256];

    template <class Runtime>
    runtime_caller(Runtime& rt, const fs::path& bundle) {
        rt.load_bundle(bundle);
        iface = rt.resolve(rt.find(vm_contract));
        if (iface == nullptr) throw std::runtime_error("bench.Vm did not register");
        rt.host_api()->create_guest_instance(rt.host_api(), iface, nullptr, &instance);
        polyplug_arena_init(&arena, storage, sizeof storage, rt.host_api());
    }

    batch add() {
        return [this](std::uint64_t n) {
            return time_loop(n, [this](std::uint64_t count) {
                std::int32_t acc = 0;
                for (std::uint64_t i = 0; i < count; ++i) {
                    const vm_add_args args{acc, 1};
                    (void)polyplug::call(*iface, instance, vm_add_fn, &args, &acc, &arena);
                }
                if (acc != static_cast<std::int32_t>(count)) throw std::runtime_error("add");
            });
        };
    }
    batch echo() {
        return [this](std::uint64_t n) {
            return time_loop(n, [this](std::uint64_t count) {
                const StringView in{reinterpret_cast<const std::uint8_t*>(vm_echo_text.data()),
                                    vm_echo_text.size()};
                std::size_t total = 0;
                for (std::uint64_t i = 0; i < count; ++i) {
                    polyplug_arena_reset(&arena);
                    StringView out{};
                    (void)polyplug::call(*iface, instance, vm_echo_fn, &in, &out, &arena);
                    total += out.len;
                }
                if (total != count * vm_echo_text.size()) throw std::runtime_error("echo");
            });
        };
    }
    batch weigh() {
        return [this](std::uint64_t n) {
            return time_loop(n, [this](std::uint64_t count) {
                std::int32_t out = 0;
                bool right = true;
                for (std::uint64_t i = 0; i < count; ++i) {
                    const vm_weigh_args args{{out & 0xff, 3}, {vm_weigh_items, 8}};
                    (void)polyplug::call(*iface, instance, vm_weigh_fn, &args, &out, &arena);
                    right &= out == args.t.base + 3 * vm_weigh_sum;
                }
                if (!right) throw std::runtime_error("weigh");
            });
        };
    }
};

const budget within_15_percent{"<= 1.15x raw embedding call", 1.15, 0};

/// The baselines of one engine, each the raw embedding call of the same script function.
struct raw_calls {
    batch add, echo, weigh;
};

void add_rows(suite& s, const std::string& language, const std::string& raw_name,
              runtime_caller& through, const raw_calls& raw) {
    const std::string group = "VM calls";
    add_compared(s,
                 titled(group, language + ": add(i32, i32) -> i32 through the runtime", raw_name,
                        "", within_15_percent),
                 raw.add, through.add(), s.fast);
    add_compared(
        s,
        titled(group, language + ": echo(StringView) -> StringView through the runtime", raw_name,
               "32-byte string in, copied out into the caller's arena", within_15_percent),
        raw.echo, through.echo(), s.fast);
    add_compared(
        s,
        titled(group, language + ": weigh(Tally, Array<i32>) -> i32 through the runtime", raw_name,
               "a struct of two i32 and an 8-element Array<i32> in, an i32 out; the "
               "baseline builds the struct and the array by hand",
               within_15_percent),
        raw.weigh, through.weigh(), s.fast);
}

}  // namespace

void run_vm_calls(suite& s) {
    const std::string group = "VM calls";
#if POLYPLUG_BENCH_LUA
    {
        const std::string& script = vm_lua_script;
        polyplug::basic_runtime<polyplug::native_loader, polyplug::lua_loader> rt;
        runtime_caller through(rt, make_script_bundle(s.work, "vm-lua", "lua", "vm.lua", script));

        // The raw embedding: the same script in a state of our own, the method and the
        // instance held in the registry, one lua_pcall per call.
        std::unique_ptr<lua_State, decltype(&lua_close)> state(luaL_newstate(), &lua_close);
        lua_State* L = state.get();
        luaL_openlibs(L);
        if (luaL_dostring(L,
                          (script + "inst = setmetatable({}, {__index = contracts[\"bench.Vm\"]})")
                              .c_str()) != LUA_OK)
            throw std::runtime_error(lua_tostring(L, -1));
        lua_getglobal(L, "inst");
        const int inst = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_getglobal(L, "contracts");
        lua_getfield(L, -1, "bench.Vm");
        lua_getfield(L, -1, "add");
        const int add = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_getfield(L, -1, "echo");
        const int echo = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_getfield(L, -1, "weigh");
        const int weigh = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_pop(L, 2);
        const batch raw_add = [L, inst, add](std::uint64_t n) {
            return time_loop(n, [&](std::uint64_t count) {
                lua_Integer acc = 0;
                for (std::uint64_t i = 0; i < count; ++i) {
                    lua_rawgeti(L, LUA_REGISTRYINDEX, add);
                    lua_rawgeti(L, LUA_REGISTRYINDEX, inst);
                    lua_pushinteger(L, acc);
                    lua_pushinteger(L, 1);
                    lua_pcall(L, 3, 1, 0);
                    acc = lua_tointeger(L, -1);
                    lua_pop(L, 1);
                }
                if (acc != static_cast<lua_Integer>(count)) throw std::runtime_error("raw add");
            });
        };
        const batch raw_echo = [L, inst, echo](std::uint64_t n) {
            return time_loop(n, [&](std::uint64_t count) {
                char copy[64];
                std::size_t total = 0;
                for (std::uint64_t i = 0; i < count; ++i) {
                    lua_rawgeti(L, LUA_REGISTRYINDEX, echo);
                    lua_rawgeti(L, LUA_REGISTRYINDEX, inst);
                    lua_pushlstring(L, vm_echo_text.data(), vm_echo_text.size());
                    lua_pcall(L, 2, 1, 0);
                    std::size_t len = 0;
                    const char* text = lua_tolstring(L, -1, &len);
                    std::memcpy(copy, text, len < sizeof copy ? len : sizeof copy);
                    total += len;
                    lua_pop(L, 1);
                }
                if (total != count * vm_echo_text.size()) throw std::runtime_error("raw echo");
            });
        };
        // weigh: the struct a table with its two fields set by name, the array a sequence.
        const batch raw_weigh = [L, inst, weigh](std::uint64_t n) {
            return time_loop(n, [&](std::uint64_t count) {
                lua_Integer out = 0;
                bool right = true;
                for (std::uint64_t i = 0; i < count; ++i) {
                    const lua_Integer base = out & 0xff;
                    lua_rawgeti(L, LUA_REGISTRYINDEX, weigh);
                    lua_rawgeti(L, LUA_REGISTRYINDEX, inst);
                    lua_createtable(L, 0, 2);
                    lua_pushinteger(L, base);
                    lua_setfield(L, -2, "base");
                    lua_pushinteger(L, 3);
                    lua_setfield(L, -2, "scale");
                    lua_createtable(L, 8, 0);
                    for (int k = 0; k < 8; ++k) {
                        lua_pushinteger(L, vm_weigh_items[k]);
                        lua_rawseti(L, -2, k + 1);
                    }
                    lua_pcall(L, 3, 1, 0);
                    out = lua_tointeger(L, -1);
                    lua_pop(L, 1);
                    right &= out == base + 3 * vm_weigh_sum;
                }
                if (!right) throw std::runtime_error("raw weigh");
            });
        };
        add_rows(s, "Lua", "lua_pcall", through, {raw_add, raw_echo, raw_weigh});
    }
#else
    add_not_built(s, group, "Lua: add, echo and weigh vs lua_pcall", "the Lua loader (-Dlua)");
#endif

#if POLYPLUG_BENCH_PYTHON
    {
        const std::string& script = vm_python_script;
        polyplug::basic_runtime<polyplug::native_loader, polyplug::python_loader> rt;
        runtime_caller through(rt,
                               make_script_bundle(s.work, "vm-python", "python", "vm.py", script));

        // The raw embedding, in the main interpreter the loader started: the GIL taken and
        // given back around every call, as any host thread must.
        PyGILState_STATE gil = PyGILState_Ensure();
        PyObject* globals = PyDict_New();
        PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins());
        PyObject* ran = PyRun_String(script.c_str(), Py_file_input, globals, globals);
        if (ran == nullptr) throw std::runtime_error("the raw Python script failed");
        Py_DECREF(ran);
        PyObject* cls =
            PyDict_GetItemString(PyDict_GetItemString(globals, "contracts"), "bench.Vm");
        PyObject* inst = PyObject_CallNoArgs(cls);
        PyObject* add = PyUnicode_InternFromString("add");
        PyObject* echo = PyUnicode_InternFromString("echo");
        PyObject* weigh = PyUnicode_InternFromString("weigh");
        PyObject* key_base = PyUnicode_InternFromString("base");
        PyObject* key_scale = PyUnicode_InternFromString("scale");
        PyGILState_Release(gil);
        const batch raw_add = [inst, add](std::uint64_t n) {
            return time_loop(n, [&](std::uint64_t count) {
                long acc = 0;
                for (std::uint64_t i = 0; i < count; ++i) {
                    const PyGILState_STATE g = PyGILState_Ensure();
                    PyObject* a = PyLong_FromLong(acc);
                    PyObject* b = PyLong_FromLong(1);
                    PyObject* args[] = {inst, a, b};
                    PyObject* result = PyObject_VectorcallMethod(add, args, 3, nullptr);
                    acc = PyLong_AsLong(result);
                    Py_DECREF(result);
                    Py_DECREF(a);
                    Py_DECREF(b);
                    PyGILState_Release(g);
                }
                if (acc != static_cast<long>(count)) throw std::runtime_error("raw add");
            });
        };
        const batch raw_echo = [inst, echo](std::uint64_t n) {
            return time_loop(n, [&](std::uint64_t count) {
                char copy[64];
                std::size_t total = 0;
                for (std::uint64_t i = 0; i < count; ++i) {
                    const PyGILState_STATE g = PyGILState_Ensure();
                    PyObject* text = PyUnicode_DecodeUTF8(
                        vm_echo_text.data(), static_cast<Py_ssize_t>(vm_echo_text.size()), nullptr);
                    PyObject* args[] = {inst, text};
                    PyObject* result = PyObject_VectorcallMethod(echo, args, 2, nullptr);
                    Py_ssize_t len = 0;
                    const char* bytes = PyUnicode_AsUTF8AndSize(result, &len);
                    std::memcpy(copy, bytes,
                                static_cast<std::size_t>(len) < sizeof copy
                                    ? static_cast<std::size_t>(len)
                                    : sizeof copy);
                    total += static_cast<std::size_t>(len);
                    Py_DECREF(result);
                    Py_DECREF(text);
                    PyGILState_Release(g);
                }
                if (total != count * vm_echo_text.size()) throw std::runtime_error("raw echo");
            });
        };
        // weigh: the struct a dict keyed by interned names (the loader keeps its keys too), the
        // array a list.
        const batch raw_weigh = [inst, weigh, key_base, key_scale](std::uint64_t n) {
            return time_loop(n, [&](std::uint64_t count) {
                long out = 0;
                bool right = true;
                for (std::uint64_t i = 0; i < count; ++i) {
                    const long base = out & 0xff;
                    const PyGILState_STATE g = PyGILState_Ensure();
                    PyObject* t = PyDict_New();
                    PyObject* b = PyLong_FromLong(base);
                    PyObject* scale = PyLong_FromLong(3);
                    PyDict_SetItem(t, key_base, b);
                    PyDict_SetItem(t, key_scale, scale);
                    Py_DECREF(b);
                    Py_DECREF(scale);
                    PyObject* xs = PyList_New(8);
                    for (Py_ssize_t k = 0; k < 8; ++k)
                        PyList_SET_ITEM(xs, k, PyLong_FromLong(vm_weigh_items[k]));
                    PyObject* args[] = {inst, t, xs};
                    PyObject* result = PyObject_VectorcallMethod(weigh, args, 3, nullptr);
                    out = PyLong_AsLong(result);
                    Py_DECREF(result);
                    Py_DECREF(t);
                    Py_DECREF(xs);
                    PyGILState_Release(g);
                    right &= out == base + 3 * vm_weigh_sum;
                }
                if (!right) throw std::runtime_error("raw weigh");
            });
        };
        add_rows(s, "Python", "PyObject_VectorcallMethod", through, {raw_add, raw_echo, raw_weigh});
        gil = PyGILState_Ensure();
        Py_DECREF(add);
        Py_DECREF(echo);
        Py_DECREF(weigh);
        Py_DECREF(key_base);
        Py_DECREF(key_scale);
        Py_DECREF(inst);
        Py_DECREF(globals);
        PyGILState_Release(gil);
    }
#else
    add_not_built(s, group, "Python: add, echo and weigh vs PyObject_VectorcallMethod",
                  "the Python loader (-Dpython)");
#endif

#if POLYPLUG_BENCH_JS
    {
        const std::string& script = vm_js_script;
        polyplug::basic_runtime<polyplug::native_loader, polyplug::js_loader> rt;
        runtime_caller through(rt, make_script_bundle(s.work, "vm-js", "js", "vm.js", script));

        // The raw embedding: the same script in a heap of our own; the instance on the value
        // stack at index 0, its method looked up by name and called with duk_pcall_method.
        std::unique_ptr<duk_context, decltype(&duk_destroy_heap)> heap(duk_create_heap_default(),
                                                                       &duk_destroy_heap);
        duk_context* ctx = heap.get();
        if (duk_peval_string(ctx, (script + "new contracts['bench.Vm']()").c_str()) != 0)
            throw std::runtime_error(duk_safe_to_string(ctx, -1));
        const batch raw_add = [ctx](std::uint64_t n) {
            return time_loop(n, [&](std::uint64_t count) {
                duk_int_t acc = 0;
                for (std::uint64_t i = 0; i < count; ++i) {
                    duk_get_prop_string(ctx, 0, "add");
                    duk_dup(ctx, 0);
                    duk_push_int(ctx, acc);
                    duk_push_int(ctx, 1);
                    duk_pcall_method(ctx, 2);
                    acc = duk_get_int(ctx, -1);
                    duk_pop(ctx);
                }
                if (acc != static_cast<duk_int_t>(count)) throw std::runtime_error("raw add");
            });
        };
        const batch raw_echo = [ctx](std::uint64_t n) {
            return time_loop(n, [&](std::uint64_t count) {
                char copy[64];
                std::size_t total = 0;
                for (std::uint64_t i = 0; i < count; ++i) {
                    duk_get_prop_string(ctx, 0, "echo");
                    duk_dup(ctx, 0);
                    duk_push_lstring(ctx, vm_echo_text.data(), vm_echo_text.size());
                    duk_pcall_method(ctx, 1);
                    duk_size_t len = 0;
                    const char* text = duk_get_lstring(ctx, -1, &len);
                    std::memcpy(copy, text, len < sizeof copy ? len : sizeof copy);
                    total += len;
                    duk_pop(ctx);
                }
                if (total != count * vm_echo_text.size()) throw std::runtime_error("raw echo");
            });
        };
        // weigh: the struct an object with its two properties set by name, the array an Array.
        const batch raw_weigh = [ctx](std::uint64_t n) {
            return time_loop(n, [&](std::uint64_t count) {
                duk_int_t out = 0;
                bool right = true;
                for (std::uint64_t i = 0; i < count; ++i) {
                    const duk_int_t base = out & 0xff;
                    duk_get_prop_string(ctx, 0, "weigh");
                    duk_dup(ctx, 0);
                    duk_push_object(ctx);
                    duk_push_int(ctx, base);
                    duk_put_prop_string(ctx, -2, "base");
                    duk_push_int(ctx, 3);
                    duk_put_prop_string(ctx, -2, "scale");
                    duk_push_array(ctx);
                    for (duk_uarridx_t k = 0; k < 8; ++k) {
                        duk_push_int(ctx, vm_weigh_items[k]);
                        duk_put_prop_index(ctx, -2, k);
                    }
                    duk_pcall_method(ctx, 2);
                    out = duk_get_int(ctx, -1);
                    duk_pop(ctx);
                    right &= out == base + 3 * vm_weigh_sum;
                }
                if (!right) throw std::runtime_error("raw weigh");
            });
        };
        add_rows(s, "JavaScript", "duk_pcall_method", through, {raw_add, raw_echo, raw_weigh});
    }
#else
    add_not_built(s, group, "JavaScript: add, echo and weigh vs duk_pcall_method",
                  "the JavaScript loader (-Djs)");
#endif
}

}  // namespace bench
