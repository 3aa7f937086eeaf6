// SPDX-License-Identifier: MIT
/// @file bench/callgrind_vm_probe.cpp
/// The VM probes of callgrind_probe: per script engine built, `add(i32, i32) -> i32` of
/// bench_vm.hpp's bundle through the runtime (polyplug::call into the loader, as vm_bench.cpp's
/// row) and the same script function called by hand with the engine's C API in a VM of the
/// probe's own (vm_bench.cpp's baseline). callgrind_check.py bounds the difference.
#include "callgrind_vm_probe.hpp"

#include "bench_vm.hpp"

#include <polyplug/call_arena.h>
#include <polyplug/dispatch.hpp>
#include <polyplug/polyplug.hpp>

#include "bench_engines.hpp"

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

// As in callgrind_probe.cpp: a real call that callgrind can toggle on, never specialised.
#if defined(__clang__)
#define PROBE extern "C" [[gnu::noinline]]
#else
#define PROBE extern "C" [[gnu::noipa]]
#endif

namespace {

namespace fs = std::filesystem;

/// One engine's bench.Vm through the runtime: the interface, an instance, a reused arena.
struct vm_through {
    const HostApi* host = nullptr;
    const GuestContractInterface* iface = nullptr;
    GuestContractInstance instance{};
    CallArena arena{};
    std::uint8_t storage[256];

    template <class Runtime>
    vm_through(Runtime& rt, const fs::path& bundle) : host(rt.host_api()) {
        rt.load_bundle(bundle);
        iface = rt.resolve(rt.find(bench::vm_contract));
        if (iface == nullptr) throw std::runtime_error("bench.Vm did not register");
        host->create_guest_instance(host, iface, nullptr, &instance);
        if (instance.data == nullptr) throw std::runtime_error("bench.Vm: no instance");
        polyplug_arena_init(&arena, storage, sizeof storage, host);
    }
    ~vm_through() { host->destroy_guest_instance(host, iface, instance); }
    vm_through(const vm_through&) = delete;
    vm_through& operator=(const vm_through&) = delete;
};

/// `n` chained add calls through the runtime (the loop of vm_bench.cpp's row); returns the sum.
[[maybe_unused]] std::uint64_t add_through(vm_through& t, std::uint64_t n) {
    std::int32_t acc = 0;
    std::uint32_t codes = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        const bench::vm_add_args args{acc, 1};
        codes |= polyplug::call(*t.iface, t.instance, bench::vm_add_fn, &args, &acc, &t.arena).code;
    }
    return codes == AbiErrorCode_Ok ? static_cast<std::uint64_t>(acc) : 0;
}

/// Runs `probe` 1, N and 2N times; throws unless every run summed to its number of calls.
template <class Target>
[[maybe_unused]] void run_three(const char* name, std::uint64_t (*probe)(Target&, std::uint64_t),
                                Target& target, std::uint64_t calls) {
    const std::uint64_t sum = probe(target, 1) + probe(target, calls) + probe(target, 2 * calls);
    if (sum != 1 + 3 * calls) throw std::runtime_error(std::string(name) + ": wrong result");
}

[[maybe_unused]] void not_built(const char* engine, const char* why) {
    std::printf("vm %s: not built (%s)\n", engine, why);
}

#if POLYPLUG_BENCH_LUA
struct lua_raw {
    lua_State* L;
    int inst;
    int add;
};
#endif
#if POLYPLUG_BENCH_PYTHON
struct python_raw {
    PyObject* inst;
    PyObject* add;
};
#endif
#if POLYPLUG_BENCH_JS
struct js_raw {
    duk_context* ctx;  ///< the instance at index 0
};
#endif

}  // namespace

#if POLYPLUG_BENCH_LUA
PROBE std::uint64_t probe_vm_lua_add(vm_through& t, std::uint64_t n) {
    return add_through(t, n);
}

/// The baseline: lua_pcall of the method with the instance and two integers.
PROBE std::uint64_t probe_vm_lua_add_raw(lua_raw& r, std::uint64_t n) {
    lua_State* L = r.L;
    lua_Integer acc = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, r.add);
        lua_rawgeti(L, LUA_REGISTRYINDEX, r.inst);
        lua_pushinteger(L, acc);
        lua_pushinteger(L, 1);
        lua_pcall(L, 3, 1, 0);
        acc = lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    return static_cast<std::uint64_t>(acc);
}
#endif

#if POLYPLUG_BENCH_PYTHON
PROBE std::uint64_t probe_vm_python_add(vm_through& t, std::uint64_t n) {
    return add_through(t, n);
}

/// The baseline: the GIL taken and given back around each PyObject_VectorcallMethod, as any
/// host thread must.
PROBE std::uint64_t probe_vm_python_add_raw(python_raw& r, std::uint64_t n) {
    long acc = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        const PyGILState_STATE g = PyGILState_Ensure();
        PyObject* a = PyLong_FromLong(acc);
        PyObject* b = PyLong_FromLong(1);
        PyObject* args[] = {r.inst, a, b};
        PyObject* result = PyObject_VectorcallMethod(r.add, args, 3, nullptr);
        acc = result != nullptr ? PyLong_AsLong(result) : -1;
        Py_XDECREF(result);
        Py_DECREF(a);
        Py_DECREF(b);
        PyGILState_Release(g);
    }
    return static_cast<std::uint64_t>(acc);
}
#endif

#if POLYPLUG_BENCH_JS
PROBE std::uint64_t probe_vm_js_add(vm_through& t, std::uint64_t n) {
    return add_through(t, n);
}

/// The baseline: the method looked up by name on the instance, duk_pcall_method.
PROBE std::uint64_t probe_vm_js_add_raw(js_raw& r, std::uint64_t n) {
    duk_context* ctx = r.ctx;
    duk_int_t acc = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        duk_get_prop_string(ctx, 0, "add");
        duk_dup(ctx, 0);
        duk_push_int(ctx, acc);
        duk_push_int(ctx, 1);
        duk_pcall_method(ctx, 2);
        acc = duk_get_int(ctx, -1);
        duk_pop(ctx);
    }
    return static_cast<std::uint64_t>(acc);
}
#endif

namespace bench {

void run_vm_probes(const fs::path& work, std::uint64_t calls) {
#if POLYPLUG_BENCH_LUA
    {
        std::printf("vm lua: built\n");
        polyplug::basic_runtime<polyplug::native_loader, polyplug::lua_loader> rt;
        vm_through through(rt, make_script_bundle(work, "vm-lua", "lua", "vm.lua", vm_lua_script));
        run_three("probe_vm_lua_add", probe_vm_lua_add, through, calls);

        std::unique_ptr<lua_State, decltype(&lua_close)> state(luaL_newstate(), &lua_close);
        lua_State* L = state.get();
        luaL_openlibs(L);
        if (luaL_dostring(
                L, (vm_lua_script + "inst = setmetatable({}, {__index = contracts[\"bench.Vm\"]})")
                       .c_str()) != LUA_OK)
            throw std::runtime_error(lua_tostring(L, -1));
        lua_raw raw{L, 0, 0};
        lua_getglobal(L, "inst");
        raw.inst = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_getglobal(L, "contracts");
        lua_getfield(L, -1, "bench.Vm");
        lua_getfield(L, -1, "add");
        raw.add = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_pop(L, 2);
        run_three("probe_vm_lua_add_raw", probe_vm_lua_add_raw, raw, calls);
    }
#else
    not_built("lua", "the Lua loader, -Dlua");
#endif

#if POLYPLUG_BENCH_PYTHON
    {
        std::printf("vm python: built\n");
        polyplug::basic_runtime<polyplug::native_loader, polyplug::python_loader> rt;
        vm_through through(
            rt, make_script_bundle(work, "vm-python", "python", "vm.py", vm_python_script));
        run_three("probe_vm_python_add", probe_vm_python_add, through, calls);

        // In the main interpreter the loader started, as vm_bench.cpp's baseline.
        PyGILState_STATE gil = PyGILState_Ensure();
        PyObject* globals = PyDict_New();
        PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins());
        PyObject* ran = PyRun_String(vm_python_script.c_str(), Py_file_input, globals, globals);
        if (ran == nullptr) throw std::runtime_error("the raw Python script failed");
        Py_DECREF(ran);
        PyObject* cls =
            PyDict_GetItemString(PyDict_GetItemString(globals, "contracts"), "bench.Vm");
        python_raw raw{PyObject_CallNoArgs(cls), PyUnicode_InternFromString("add")};
        PyGILState_Release(gil);
        run_three("probe_vm_python_add_raw", probe_vm_python_add_raw, raw, calls);
        gil = PyGILState_Ensure();
        Py_DECREF(raw.add);
        Py_DECREF(raw.inst);
        Py_DECREF(globals);
        PyGILState_Release(gil);
    }
#else
    not_built("python", "the Python loader, -Dpython");
#endif

#if POLYPLUG_BENCH_JS
    {
        std::printf("vm js: built\n");
        polyplug::basic_runtime<polyplug::native_loader, polyplug::js_loader> rt;
        vm_through through(rt, make_script_bundle(work, "vm-js", "js", "vm.js", vm_js_script));
        run_three("probe_vm_js_add", probe_vm_js_add, through, calls);

        std::unique_ptr<duk_context, decltype(&duk_destroy_heap)> heap(duk_create_heap_default(),
                                                                       &duk_destroy_heap);
        js_raw raw{heap.get()};
        if (duk_peval_string(raw.ctx, (vm_js_script + "new contracts['bench.Vm']()").c_str()) != 0)
            throw std::runtime_error(duk_safe_to_string(raw.ctx, -1));
        run_three("probe_vm_js_add_raw", probe_vm_js_add_raw, raw, calls);
    }
#else
    not_built("js", "the JavaScript loader, -Djs");
#endif
    std::fflush(stdout);
}

}  // namespace bench
