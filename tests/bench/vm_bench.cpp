// SPDX-License-Identifier: MIT
/// @file bench/vm_bench.cpp
/// VM calls per loader, each against the raw embedding call of the same script function with
/// the same conversions (DESIGN.md: within 15%): the runtime's call (polyplug::call into the
/// loader: lock, marshal from the C struct, call, marshal back into the caller's arena) against a
/// hand-written lua_pcall / PyObject_VectorcallMethod (GIL taken per call, as a host thread must)
/// / duk_pcall_method on the same script in a VM of the benchmark's own. A loader not built is
/// listed as not built.
#include "bench_bundle.hpp"
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

constexpr std::string_view vm_api = R"(
[[guest_contract]]
name = "bench.Vm"
version = "1"
[[guest_contract.functions]]
name = "add"
params = [{ name = "a", type = "i32" }, { name = "b", type = "i32" }]
return = "i32"
[[guest_contract.functions]]
name = "echo"
params = [{ name = "s", type = "StringView" }]
return = "StringView"
)";

constexpr std::uint64_t vm_contract = polyplug::guest_contract_id("bench.Vm", 1);
constexpr std::string_view echo_text = "a string of thirty-two bytes...!";

struct add_args {
    std::int32_t a, b;
};

/// A script bundle `<root>/<name>` implementing bench.Vm in `script`.
fs::path make_script_bundle(const fs::path& root, const std::string& name,
                            const std::string& loader, const std::string& file,
                            const std::string& script) {
    const fs::path dir = root / name;
    fs::create_directories(dir);
    write_text(dir / "bench.api.toml", std::string(vm_api));
    write_text(dir / file, script);
    write_text(dir / "manifest.toml",
               "id = \"" + polyplug::format_id(polyplug::bundle_id(name)) + "\"\nname = \"" + name +
                   "\"\nversion = \"1.0.0\"\nloader = \"" + loader + "\"\nfile = \"" + file +
                   "\"\napi = \"bench.api.toml\"\nprovides = [\"bench.Vm@1\"]\n"
                   "function_count = { \"bench.Vm@1\" = 2 }\n");
    return dir;
}

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
                    const add_args args{acc, 1};
                    (void)polyplug::call(*iface, instance, 0, &args, &acc, &arena);
                }
                if (acc != static_cast<std::int32_t>(count)) throw std::runtime_error("add");
            });
        };
    }
    batch echo() {
        return [this](std::uint64_t n) {
            return time_loop(n, [this](std::uint64_t count) {
                const StringView in{reinterpret_cast<const std::uint8_t*>(echo_text.data()),
                                    echo_text.size()};
                std::size_t total = 0;
                for (std::uint64_t i = 0; i < count; ++i) {
                    polyplug_arena_reset(&arena);
                    StringView out{};
                    (void)polyplug::call(*iface, instance, 1, &in, &out, &arena);
                    total += out.len;
                }
                if (total != count * echo_text.size()) throw std::runtime_error("echo");
            });
        };
    }
};

const budget within_15_percent{"<= 1.15x raw embedding call", 1.15, 0};

void add_rows(suite& s, const std::string& language, const std::string& raw_name,
              runtime_caller& through, const batch& raw_add, const batch& raw_echo) {
    const std::string group = "VM calls";
    add_compared(s,
                 titled(group, language + ": add(i32, i32) -> i32 through the runtime", raw_name,
                        "", within_15_percent),
                 raw_add, through.add(), s.fast);
    add_compared(
        s,
        titled(group, language + ": echo(StringView) -> StringView through the runtime", raw_name,
               "32-byte string in, copied out into the caller's arena", within_15_percent),
        raw_echo, through.echo(), s.fast);
}

}  // namespace

void run_vm_calls(suite& s) {
    const std::string group = "VM calls";
#if POLYPLUG_BENCH_LUA
    {
        const std::string script =
            "local Vm = {}\n"
            "function Vm:add(a, b) return a + b end\n"
            "function Vm:echo(s) return s end\n"
            "contracts = { [\"bench.Vm\"] = Vm }\n";
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
                    lua_pushlstring(L, echo_text.data(), echo_text.size());
                    lua_pcall(L, 2, 1, 0);
                    std::size_t len = 0;
                    const char* text = lua_tolstring(L, -1, &len);
                    std::memcpy(copy, text, len < sizeof copy ? len : sizeof copy);
                    total += len;
                    lua_pop(L, 1);
                }
                if (total != count * echo_text.size()) throw std::runtime_error("raw echo");
            });
        };
        add_rows(s, "Lua", "lua_pcall", through, raw_add, raw_echo);
    }
#else
    add_not_built(s, group, "Lua: add and echo vs lua_pcall", "the Lua loader (-Dlua)");
#endif

#if POLYPLUG_BENCH_PYTHON
    {
        const std::string script =
            "class Vm:\n"
            "    def add(self, a, b):\n"
            "        return a + b\n"
            "    def echo(self, s):\n"
            "        return s\n"
            "contracts = {\"bench.Vm\": Vm}\n";
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
                        echo_text.data(), static_cast<Py_ssize_t>(echo_text.size()), nullptr);
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
                if (total != count * echo_text.size()) throw std::runtime_error("raw echo");
            });
        };
        add_rows(s, "Python", "PyObject_VectorcallMethod", through, raw_add, raw_echo);
        gil = PyGILState_Ensure();
        Py_DECREF(add);
        Py_DECREF(echo);
        Py_DECREF(inst);
        Py_DECREF(globals);
        PyGILState_Release(gil);
    }
#else
    add_not_built(s, group, "Python: add and echo vs PyObject_VectorcallMethod",
                  "the Python loader (-Dpython)");
#endif

#if POLYPLUG_BENCH_JS
    {
        const std::string script =
            "function Vm() {}\n"
            "Vm.prototype.add = function (a, b) { return a + b; };\n"
            "Vm.prototype.echo = function (s) { return s; };\n"
            "contracts = { \"bench.Vm\": Vm };\n";
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
                    duk_push_lstring(ctx, echo_text.data(), echo_text.size());
                    duk_pcall_method(ctx, 1);
                    duk_size_t len = 0;
                    const char* text = duk_get_lstring(ctx, -1, &len);
                    std::memcpy(copy, text, len < sizeof copy ? len : sizeof copy);
                    total += len;
                    duk_pop(ctx);
                }
                if (total != count * echo_text.size()) throw std::runtime_error("raw echo");
            });
        };
        add_rows(s, "JavaScript", "duk_pcall_method", through, raw_add, raw_echo);
    }
#else
    add_not_built(s, group, "JavaScript: add and echo vs duk_pcall_method",
                  "the JavaScript loader (-Djs)");
#endif
}

}  // namespace bench
