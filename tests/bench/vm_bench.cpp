// SPDX-License-Identifier: MIT
/// @file bench/vm_bench.cpp
/// VM calls per loader, each against the raw embedding call of the same script function with
/// the same conversions (DESIGN.md: within 15%): the runtime's call (polyplug::call into the
/// loader: lock, marshal from the C struct, call, marshal back into the caller's arena) against a
/// hand-written lua_pcall / PyObject_VectorcallMethod (GIL taken per call, as a host thread must)
/// / duk_pcall_method on the same script in a VM of the benchmark's own. A loader not built is
/// listed as not built. Three functions per loader (bench_vm.hpp): add (two integers), echo (a
/// string both ways) and weigh (a struct and an Array<i32> in, an integer out).
///
/// Then one reload row per loader: reload_bundle of a script bundle whose script is rewritten
/// between reloads, against the same reload written by hand with the engine's embedding API
/// (a fresh VM runs the file, its functions are looked up, the state is handed over with the
/// script's own hooks, the old VM is destroyed).
#include "bench_bundle.hpp"
#include "bench_vm.hpp"
#include "suite.hpp"

#include <polyplug/call_arena.h>
#include <polyplug/dispatch.hpp>
#include <polyplug/polyplug.hpp>

#include "bench_engines.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

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

// ---- reloads -------------------------------------------------------------------------------

/// The whole file, read as the loaders read a script (and as a host would).
std::string read_text(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + file.string());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The script file of a reload row and its two versions, of the same length. Each side of the
/// row rewrites the file before each of its reloads with the version it did not run last, so
/// that every reload, by the runtime or by hand, runs a text that differs from the running one.
struct alternating_script {
    fs::path file;
    std::string versions[2];

    /// Writes version `turn % 2` over the file in place. Not truncated and rewritten: ext4 writes
    /// a file truncated to zero out to disk when it is closed (its guard for replace-by-truncate),
    /// milliseconds per rewrite on this machine's virtual disk, which made the untimed rewrites
    /// most of the rows' run time.
    void write(std::uint64_t turn) const {
        if (versions[0].size() != versions[1].size())
            throw std::logic_error("the two versions of a reload script differ in length");
        const std::string& text = versions[turn % 2];
        std::fstream out(file, std::ios::in | std::ios::out | std::ios::binary);
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        if (!out) throw std::runtime_error("cannot rewrite " + file.string());
    }
};

/// A batch of `n` reloads by `reload()`, timed one by one; the rewrite of the script before each
/// is not timed (`turn` is the side's own count of rewrites).
template <class Reload>
batch reloads_of(const alternating_script& script, std::uint64_t& turn, Reload reload) {
    return [&script, &turn, reload](std::uint64_t n) {
        double total = 0;
        for (std::uint64_t i = 0; i < n; ++i) {
            script.write(++turn);
            const clock::time_point start = clock::now();
            reload();
            total += nanoseconds(start, clock::now());
        }
        return total;
    };
}

/// A runtime with hot reload on and no grace period: the old version's VM is destroyed inside
/// reload_bundle, as the hand-written reload destroys its old VM.
polyplug::runtime_options reloading_options() {
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    options.unload_grace_period = std::chrono::milliseconds(0);
    return options;
}

/// Reloads take tens of microseconds to milliseconds: fewer repetitions than the other
/// microsecond rows, and a preempted batch is run again only a few times, so that the three rows
/// stay within a few seconds on a busy machine.
settings reload_timing(const suite& s) {
    settings timing = s.slow;
    timing.repetitions = std::min<std::size_t>(timing.repetitions, 11);
    timing.retries_when_preempted = std::min(timing.retries_when_preempted, 3u);
    return timing;
}

/// The reloads the running version of the bundle counted: `add(0, 0)` through the runtime (the
/// reload scripts add their count in).
template <class Runtime>
std::uint64_t reloads_counted(Runtime& rt) {
    const GuestContractInterface* iface = rt.resolve(rt.find(vm_contract));
    if (iface == nullptr) throw std::runtime_error("bench.Vm is gone after the reloads");
    const HostApi* api = rt.host_api();
    GuestContractInstance instance{};
    api->create_guest_instance(api, iface, nullptr, &instance);
    std::uint8_t storage[64];
    CallArena arena{};
    polyplug_arena_init(&arena, storage, sizeof storage, api);
    const vm_add_args args{0, 0};
    std::int32_t counted = -1;
    const AbiError err = polyplug::call(*iface, instance, vm_add_fn, &args, &counted, &arena);
    api->destroy_guest_instance(api, iface, instance);
    if (err.code != AbiErrorCode_Ok) throw std::runtime_error("add(0, 0) failed after the reloads");
    return static_cast<std::uint64_t>(counted);
}

/// Adds the reload row of `language`: `rt` (holding the bundle at `dir`, loaded from
/// `script.versions[0]`) reloading it, against `by_hand.reload()` on the same file.
template <class Runtime, class ByHand>
void add_reload_row(suite& s, const std::string& language, Runtime& rt, const fs::path& dir,
                    const alternating_script& script, ByHand& by_hand,
                    const std::string& by_hand_name, const std::string& original) {
    std::uint64_t runtime_turn = 0, by_hand_turn = 0;
    const batch runtime_reload = reloads_of(script, runtime_turn, [&] { rt.reload_bundle(dir); });
    const batch hand_reload = reloads_of(script, by_hand_turn, [&] { by_hand.reload(); });
    add_compared(
        s,
        titled("VM calls",
               language + ": reload of a script bundle (reload_bundle, new version staged, state "
                          "handed over)",
               by_hand_name,
               "the script's state hand-over hooks run on both sides; the script file is "
               "rewritten (untimed) before each reload, alternating two versions; grace period "
               "0, so the old VM is destroyed inside the call; " +
                   original),
        hand_reload, runtime_reload, reload_timing(s));
    // The hand-over really ran on both sides: the running version counts every reload.
    by_hand.check_reloads(by_hand_turn);
    if (reloads_counted(rt) != runtime_turn)
        throw std::runtime_error(language + ": reload_bundle did not hand the state over");
}

#if POLYPLUG_BENCH_LUA
/// A reload written by hand with Lua's C API: a new state runs the file, the functions are kept
/// in its registry, `restore_state(save_state())` carries the state over, the old state closes.
class lua_by_hand {
public:
    explicit lua_by_hand(fs::path script) : script_(std::move(script)) { reload(); }
    ~lua_by_hand() { lua_close(L_); }
    lua_by_hand(const lua_by_hand&) = delete;
    lua_by_hand& operator=(const lua_by_hand&) = delete;

    void reload() {
        const std::string source = read_text(script_);
        std::unique_ptr<lua_State, decltype(&lua_close)> fresh(luaL_newstate(), &lua_close);
        lua_State* L = fresh.get();
        if (L == nullptr) throw std::bad_alloc();
        luaL_openlibs(L);
        if (luaL_loadbufferx(L, source.data(), source.size(), "@vm.lua", "t") != LUA_OK ||
            lua_pcall(L, 0, 0, 0) != LUA_OK)
            throw std::runtime_error(lua_tostring(L, -1));
        lua_getglobal(L, "contracts");
        lua_getfield(L, -1, "bench.Vm");
        for (const char* name : {"add", "echo", "weigh"}) {
            if (lua_getfield(L, -1, name) != LUA_TFUNCTION)
                throw std::runtime_error(std::string("vm.lua has no ") + name);
            (void)luaL_ref(L, LUA_REGISTRYINDEX);
        }
        lua_pop(L, 2);
        if (L_ != nullptr) {
            lua_getglobal(L, "restore_state");
            lua_pushinteger(L, 1);
            lua_getglobal(L_, "save_state");
            if (lua_pcall(L_, 0, 1, 0) != LUA_OK) throw std::runtime_error(lua_tostring(L_, -1));
            std::size_t len = 0;
            const char* saved = lua_tolstring(L_, -1, &len);
            lua_pushlstring(L, saved, len);
            if (lua_pcall(L, 2, 0, 0) != LUA_OK) throw std::runtime_error(lua_tostring(L, -1));
            lua_close(L_);
        }
        L_ = fresh.release();
    }

    /// Throws unless the running state counts `reloads` hand-overs.
    void check_reloads(std::uint64_t reloads) const {
        lua_getglobal(L_, "reloads");
        const lua_Integer counted = lua_tointeger(L_, -1);
        lua_pop(L_, 1);
        if (counted != static_cast<lua_Integer>(reloads))
            throw std::runtime_error("Lua by hand: the state was not handed over");
    }

private:
    fs::path script_;
    lua_State* L_ = nullptr;
};
#endif

#if POLYPLUG_BENCH_PYTHON
/// A reload written by hand with CPython's API, as the Python loader isolates versions: a new
/// sub-interpreter runs the file in its `__main__`, the class and its methods are kept,
/// `restore_state(1, save_state())` carries the state over, the old sub-interpreter ends. The
/// GIL is taken for the reload and given back, as a host thread must.
class python_by_hand {
public:
    explicit python_by_hand(fs::path script) : script_(std::move(script)) { reload(); }
    ~python_by_hand() {
        const PyGILState_STATE gil = PyGILState_Ensure();
        PyThreadState* host = PyThreadState_Get();
        end(current_);
        (void)PyThreadState_Swap(host);
        PyGILState_Release(gil);
    }
    python_by_hand(const python_by_hand&) = delete;
    python_by_hand& operator=(const python_by_hand&) = delete;

    void reload() {
        const std::string source = read_text(script_);
        const PyGILState_STATE gil = PyGILState_Ensure();
        PyThreadState* host = PyThreadState_Get();
        version fresh;
        fresh.thread = Py_NewInterpreter();
        const bool ran = fresh.thread != nullptr && run(source, fresh);
        if (!ran && fresh.thread != nullptr && PyErr_Occurred() != nullptr) PyErr_Print();
        if (ran && current_.thread != nullptr) hand_over(current_, fresh);
        end(ran ? current_ : fresh);
        if (ran) current_ = fresh;
        (void)PyThreadState_Swap(host);
        PyGILState_Release(gil);
        if (!ran) throw std::runtime_error("Python by hand: vm.py did not run");
    }

    void check_reloads(std::uint64_t reloads) const {
        const PyGILState_STATE gil = PyGILState_Ensure();
        PyThreadState* host = PyThreadState_Swap(current_.thread);
        const long counted = PyLong_AsLong(PyDict_GetItemString(current_.globals, "reloads"));
        (void)PyThreadState_Swap(host);
        PyGILState_Release(gil);
        if (counted != static_cast<long>(reloads))
            throw std::runtime_error("Python by hand: the state was not handed over");
    }

private:
    /// One version: its sub-interpreter's thread state, `__main__`'s dict (borrowed), and the
    /// references kept to the class and its methods.
    struct version {
        PyThreadState* thread = nullptr;
        PyObject* globals = nullptr;
        PyObject* kept[4] = {};
    };

    /// In `v`'s interpreter (current): compiles and runs the script, looks the functions up.
    bool run(const std::string& source, version& v) {
        v.globals = PyModule_GetDict(PyImport_AddModule("__main__"));
        PyObject* code = Py_CompileString(source.c_str(), "vm.py", Py_file_input);
        if (code == nullptr) return false;
        PyObject* done = PyEval_EvalCode(code, v.globals, v.globals);
        Py_DECREF(code);
        if (done == nullptr) return false;
        Py_DECREF(done);
        PyObject* contracts = PyDict_GetItemString(v.globals, "contracts");
        if (contracts == nullptr) return false;
        v.kept[0] = PyMapping_GetItemString(contracts, "bench.Vm");
        if (v.kept[0] == nullptr) return false;
        int i = 1;
        for (const char* name : {"add", "echo", "weigh"}) {
            v.kept[i] = PyObject_GetAttrString(v.kept[0], name);
            if (v.kept[i++] == nullptr) return false;
        }
        return true;
    }

    /// `restore_state(1, save_state())`, the saved text passed as bytes as the loader does. A
    /// failure is only cleared here: check_reloads then finds the count short and fails the row.
    static void hand_over(const version& old, const version& fresh) {
        (void)PyThreadState_Swap(old.thread);
        PyObject* save = PyDict_GetItemString(old.globals, "save_state");
        PyObject* saved = save != nullptr ? PyObject_CallNoArgs(save) : nullptr;
        Py_ssize_t len = 0;
        const char* text = saved != nullptr ? PyUnicode_AsUTF8AndSize(saved, &len) : nullptr;
        if (text == nullptr) PyErr_Clear();
        (void)PyThreadState_Swap(fresh.thread);
        PyObject* restore = PyDict_GetItemString(fresh.globals, "restore_state");
        if (text != nullptr && restore != nullptr) {
            PyObject* schema = PyLong_FromLong(1);
            PyObject* data = PyBytes_FromStringAndSize(text, len);
            PyObject* restored = PyObject_CallFunctionObjArgs(restore, schema, data, nullptr);
            if (restored == nullptr) PyErr_Clear();
            Py_XDECREF(restored);
            Py_DECREF(schema);
            Py_DECREF(data);
        }
        (void)PyThreadState_Swap(old.thread);
        Py_XDECREF(saved);
    }

    /// Drops `v`'s references and ends its sub-interpreter (GIL held; leaves no thread state
    /// current).
    static void end(version& v) {
        if (v.thread == nullptr) return;
        (void)PyThreadState_Swap(v.thread);
        PyErr_Clear();
        for (PyObject*& kept : v.kept) Py_CLEAR(kept);
        Py_EndInterpreter(v.thread);
        v = {};
    }

    fs::path script_;
    version current_;
};
#endif

#if POLYPLUG_BENCH_JS
/// A reload written by hand with Duktape's API: a new heap compiles and runs the file, the
/// prototype and its functions stay on the value stack, `restore_state(1, save_state())` carries
/// the state over, the old heap is destroyed.
class js_by_hand {
public:
    explicit js_by_hand(fs::path script) : script_(std::move(script)) { reload(); }
    ~js_by_hand() { duk_destroy_heap(ctx_); }
    js_by_hand(const js_by_hand&) = delete;
    js_by_hand& operator=(const js_by_hand&) = delete;

    void reload() {
        const std::string source = read_text(script_);
        std::unique_ptr<duk_context, decltype(&duk_destroy_heap)> fresh(duk_create_heap_default(),
                                                                        &duk_destroy_heap);
        duk_context* ctx = fresh.get();
        if (ctx == nullptr) throw std::bad_alloc();
        duk_push_string(ctx, "vm.js");
        if (duk_pcompile_lstring_filename(ctx, 0, source.data(), source.size()) != 0 ||
            duk_pcall(ctx, 0) != DUK_EXEC_SUCCESS)
            throw std::runtime_error(duk_safe_to_string(ctx, -1));
        duk_pop(ctx);
        duk_get_global_string(ctx, "contracts");
        duk_get_prop_string(ctx, -1, "bench.Vm");
        duk_get_prop_string(ctx, -1, "prototype");
        const duk_idx_t prototype = duk_get_top_index(ctx);
        for (const char* name : {"add", "echo", "weigh"}) {
            duk_get_prop_string(ctx, prototype, name);
            if (!duk_is_callable(ctx, -1))
                throw std::runtime_error(std::string("vm.js has no ") + name);
        }
        if (ctx_ != nullptr) {
            duk_get_global_string(ctx, "restore_state");
            duk_push_uint(ctx, 1);
            duk_get_global_string(ctx_, "save_state");
            if (duk_pcall(ctx_, 0) != DUK_EXEC_SUCCESS)
                throw std::runtime_error(duk_safe_to_string(ctx_, -1));
            duk_size_t len = 0;
            const char* saved = duk_safe_to_lstring(ctx_, -1, &len);
            duk_push_lstring(ctx, saved, len);
            if (duk_pcall(ctx, 2) != DUK_EXEC_SUCCESS)
                throw std::runtime_error(duk_safe_to_string(ctx, -1));
            duk_pop(ctx);
            duk_destroy_heap(ctx_);
        }
        ctx_ = fresh.release();
    }

    void check_reloads(std::uint64_t reloads) const {
        duk_get_global_string(ctx_, "reloads");
        const duk_uint_t counted = duk_get_uint(ctx_, -1);
        duk_pop(ctx_);
        if (counted != reloads)
            throw std::runtime_error("JavaScript by hand: the state was not handed over");
    }

private:
    fs::path script_;
    duk_context* ctx_ = nullptr;
};
#endif

/// The reload rows: a bundle per loader, reloaded through a runtime of its own and by hand.
void run_vm_reloads(suite& s) {
#if POLYPLUG_BENCH_LUA
    {
        const alternating_script script{s.work / "reload-lua" / "vm.lua",
                                        {vm_lua_reload_script(1), vm_lua_reload_script(2)}};
        const fs::path dir =
            make_script_bundle(s.work, "reload-lua", "lua", "vm.lua", script.versions[0]);
        polyplug::basic_runtime<polyplug::native_loader, polyplug::lua_loader> rt(
            reloading_options());
        rt.load_bundle(dir);
        lua_by_hand by_hand(script.file);
        add_reload_row(s, "Lua", rt, dir, script, by_hand,
                       "by hand: luaL_newstate + openlibs, run the file, look up 3 functions, "
                       "hand the state over, lua_close old",
                       "the original's VM reload: 107 us");
    }
#else
    add_not_built(s, "VM calls", "Lua: reload of a script bundle", "the Lua loader (-Dlua)");
#endif
#if POLYPLUG_BENCH_PYTHON
    {
        const alternating_script script{s.work / "reload-python" / "vm.py",
                                        {vm_python_reload_script(1), vm_python_reload_script(2)}};
        const fs::path dir =
            make_script_bundle(s.work, "reload-python", "python", "vm.py", script.versions[0]);
        polyplug::basic_runtime<polyplug::native_loader, polyplug::python_loader> rt(
            reloading_options());
        rt.load_bundle(dir);
        python_by_hand by_hand(script.file);
        add_reload_row(s, "Python", rt, dir, script, by_hand,
                       "by hand: Py_NewInterpreter, run the file in __main__, look up the class "
                       "and 3 methods, hand the state over, Py_EndInterpreter old",
                       "the original has no Python reload figure");
    }
#else
    add_not_built(s, "VM calls", "Python: reload of a script bundle",
                  "the Python loader (-Dpython)");
#endif
#if POLYPLUG_BENCH_JS
    {
        const alternating_script script{s.work / "reload-js" / "vm.js",
                                        {vm_js_reload_script(1), vm_js_reload_script(2)}};
        const fs::path dir =
            make_script_bundle(s.work, "reload-js", "js", "vm.js", script.versions[0]);
        polyplug::basic_runtime<polyplug::native_loader, polyplug::js_loader> rt(
            reloading_options());
        rt.load_bundle(dir);
        js_by_hand by_hand(script.file);
        add_reload_row(s, "JavaScript", rt, dir, script, by_hand,
                       "by hand: duk_create_heap, compile and run the file, look up 3 functions, "
                       "hand the state over, duk_destroy_heap old",
                       "the original's VM reload (QuickJS, not Duktape): 158 us");
    }
#else
    add_not_built(s, "VM calls", "JavaScript: reload of a script bundle",
                  "the JavaScript loader (-Djs)");
#endif
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

    run_vm_reloads(s);
}

}  // namespace bench
