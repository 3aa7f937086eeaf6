// SPDX-License-Identifier: MIT
/// @file lua.hpp
/// The Lua script loader: `lua_engine` runs one version of one script bundle in its own
/// lua_State (Lua 5.4, or LuaJIT 2.1 with `-Dlua_impl=luajit`) and converts between the C layouts
/// of the bundle's contract file and Lua values; `lua_loader` is `vm_loader<lua_engine>`.
/// The conventions (values, instances, errors, the `polyplug` module) are docs/VM_BUNDLES.md.
///
/// @code
/// polyplug::basic_runtime<polyplug::native_loader, polyplug::lua_loader> rt;
/// rt.load_bundle("plugins/calc-lua");  // manifest.toml says loader = "lua", file = "calc.lua"
/// @endcode
///
/// Integers. Lua 5.4 integers are signed 64-bit: a `u64` argument above 2^63-1 reaches the
/// script as a float when a double holds it exactly and is refused otherwise (never wrapped or
/// rounded). LuaJIT has no integer subtype: every number is a double, integral doubles are
/// accepted for integer types, and a 64-bit argument that a double cannot hold exactly (beyond
/// 2^53, as JavaScript) is refused with a message.
///
/// Instances. Methods are looked up on the implementation table once, at bind, and called with
/// the instance first; a method stored on the instance itself does not override them. A null
/// instance pointer means the contract's default instance (made on first use). An instance that
/// an earlier version of the bundle created (a host kept it across a reload) is re-created in
/// this version on its first call: per-instance state crosses a reload only through the
/// bundle's state hand-over.
///
/// Locations. Errors raised by polyplug.call name the script line that called it; LuaJIT keeps
/// no frame for a tail call (`return polyplug.call(...)`), so there the line can be missing.
#pragma once

#include <polyplug/config.hpp>
#include <polyplug/loaders/vm.hpp>
#include <polyplug/loaders/vm/messages.hpp>
#include <polyplug/loaders/vm/plan.hpp>
#include <polyplug/loaders/vm/script_call.hpp>

#include <lua.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE

namespace detail::lua_support {

static_assert(sizeof(void*) == 8, "the Lua loader packs instance handles into 64-bit pointers");

// The Lua 5.1 API (LuaJIT) lacks a few 5.2+ calls; these cover both.
inline std::size_t raw_length(lua_State* L, int idx) noexcept {
#if LUA_VERSION_NUM >= 502
    return static_cast<std::size_t>(lua_rawlen(L, idx));
#else
    return lua_objlen(L, idx);
#endif
}

inline void raw_get_index(lua_State* L, int idx, std::size_t n) {
#if LUA_VERSION_NUM >= 503
    lua_rawgeti(L, idx, static_cast<lua_Integer>(n));
#else
    lua_rawgeti(L, idx, static_cast<int>(n));
#endif
}

inline void raw_set_index(lua_State* L, int idx, std::size_t n) {
#if LUA_VERSION_NUM >= 503
    lua_rawseti(L, idx, static_cast<lua_Integer>(n));
#else
    lua_rawseti(L, idx, static_cast<int>(n));
#endif
}

inline void* new_userdata(lua_State* L, std::size_t size) {
#if LUA_VERSION_NUM >= 504
    return lua_newuserdatauv(L, size, 0);
#else
    return lua_newuserdata(L, size);
#endif
}

/// Pushes `text` (may be empty with a null pointer, which LuaJIT would hand to memcpy).
inline void push_bytes(lua_State* L, const void* text, std::size_t len) {
    if (len == 0)
        lua_pushlstring(L, "", 0);
    else
        lua_pushlstring(L, static_cast<const char*>(text), len);
}

/// Callable as a method: a function, or an object with `__call`.
inline bool is_callable(lua_State* L, int idx) {
    const int type = lua_type(L, idx);
    if (type == LUA_TFUNCTION) return true;
    if (type != LUA_TTABLE && type != LUA_TUSERDATA) return false;
    if (luaL_getmetafield(L, idx, "__call") == 0) return false;  // pushes nothing then
    lua_pop(L, 1);
    return true;
}

/// A message built while a Lua error may be on its way: fixed storage, because an error unwinds
/// (longjmp in Lua 5.4) past the frames that build it and would skip a std::string destructor.
class message_text {
public:
    /// As std::string spells it, so that vm/messages.hpp writes into either.
    void append(std::string_view text) noexcept {
        const std::size_t n = std::min(text.size(), sizeof text_ - len_);
        if (n > 0) std::memcpy(text_ + len_, text.data(), n);
        len_ += n;
    }
    void append_signed(std::int64_t value) noexcept {
        char digits[24];
        const auto r = std::to_chars(digits, digits + sizeof digits, value);
        append(std::string_view(digits, static_cast<std::size_t>(r.ptr - digits)));
    }
    /// A Lua string as a quoted literal: at most 40 bytes, other than printable ASCII escaped.
    void add_quoted(const char* text, std::size_t len) noexcept {
        append("\"");
        for (std::size_t i = 0; i < len && i < 40; ++i) {
            const auto c = static_cast<unsigned char>(text[i]);
            if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
                const char one = static_cast<char>(c);
                append(std::string_view(&one, 1));
            } else {
                append("\\");
                vm::append_unsigned(*this, c);
            }
        }
        append(len > 40 ? "\"..." : "\"");
    }
    void clear() noexcept { len_ = 0; }
    [[nodiscard]] std::string_view view() const noexcept { return {text_, len_}; }

private:
    char text_[768];
    std::size_t len_ = 0;
};

/// Where variable-size data converted from Lua goes: a guest call's results into the caller's
/// allocator; polyplug.call's arguments into Lua-owned scratch memory anchored for the call.
struct sink {
    const result_allocator* alloc = nullptr;
    int anchor = 0;  ///< polyplug.call: stack index of the table keeping strings and scratch alive
    std::size_t anchored = 0;
};

}  // namespace detail::lua_support

/// One Lua VM running one version of one script bundle (satisfies `vm_engine`). Every member
/// is called with the VM's lock held (vm_loader), from any thread.
class lua_engine {
public:
    static constexpr std::string_view loader_name = "lua";
    static constexpr std::uint32_t language = SupportedLanguage_Lua;

    lua_engine(const lua_engine&) = delete;
    lua_engine& operator=(const lua_engine&) = delete;
    ~lua_engine() {
        if (L_ != nullptr) lua_close(L_);  // every object, reference and instance with it
    }

    /// A new VM with the standard libraries and the `polyplug` module, after running the script.
    /// nullptr with the script's message ("calc.lua:3: ...") when it does not load or run.
    [[nodiscard]] static std::unique_ptr<lua_engine> open(const vm_script& script,
                                                          std::string& error) {
        std::unique_ptr<lua_engine> engine(new lua_engine(script));
        if (!engine->start(script, error)) return nullptr;
        return engine;
    }

    /// Finds `contracts[decl.name]` and a function for each of the contract's functions, and
    /// keeps references to them for the calls.
    [[nodiscard]] bool bind(const contract_decl& decl, std::uint32_t& impl, std::string& error) {
        bound_contract bound;
        bound.decl = &decl;
        bound.plan = vm::compile(*api_, decl);  // once per version: calls only run it
        bound.functions.resize(decl.functions.size());
        for (std::size_t i = 0; i < decl.functions.size(); ++i) {
            const vm::function_plan& f = bound.plan.functions[i];
            bound_function& b = bound.functions[i];
            b.direct = direct_call(bound.plan, f);
            b.result = fast_of(bound.plan.steps[f.result], false);
            b.params.resize(f.params);
            for (std::uint32_t p = 0; p < f.params; ++p) {
                const vm::step& param = bound.plan.steps[f.first_param + p];
                b.params[p] = {fast_of(param, true), param.offset};
            }
        }
        std::vector<std::size_t> missing;
        missing.reserve(decl.functions.size());
        enum class problem { none, no_contracts, no_entry, not_object } found = problem::none;
        int found_type = LUA_TNIL;

        // Lua only in here, and no C++ allocation: a Lua error unwinds past it.
        auto look = [&](lua_State* L) {
            lua_getglobal(L, "contracts");
            if (lua_type(L, -1) != LUA_TTABLE) {
                found = problem::no_contracts;
                found_type = lua_type(L, -1);
                return 0;
            }
            lua_pushlstring(L, decl.name.data(), decl.name.size());
            lua_gettable(L, -2);
            found_type = lua_type(L, -1);
            if (found_type == LUA_TNIL) {
                found = problem::no_entry;
                return 0;
            }
            if (found_type != LUA_TTABLE && found_type != LUA_TUSERDATA) {
                found = problem::not_object;
                return 0;
            }
            const int table = lua_gettop(L);
            for (std::size_t i = 0; i < decl.functions.size(); ++i) {
                const std::string& name = decl.functions[i].name;
                lua_pushlstring(L, name.data(), name.size());
                lua_gettable(L, table);
                if (!detail::lua_support::is_callable(L, -1)) {
                    missing.push_back(i);
                    lua_pop(L, 1);
                    continue;
                }
                bound.functions[i].function_ref = luaL_ref(L, LUA_REGISTRYINDEX);
                bound.functions[i].plan = &bound.plan.functions[i];
            }
            lua_getfield(L, table, "new");
            if (detail::lua_support::is_callable(L, -1))
                bound.new_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            else
                lua_pop(L, 1);
            lua_createtable(L, 0, 1);  // the metatable of instances made without `new`
            lua_pushvalue(L, table);
            lua_setfield(L, -2, "__index");
            bound.metatable_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            return 0;
        };
        if (!protect(look, error)) return false;
        // The stack the direct calls need, reserved once: Lua 5.4's base frame keeps what
        // lua_checkstack reserves (a collection shrinks the stack only to what frames reserve).
        // LuaJIT keeps no such mark, so there call_direct checks per call and ignores this.
        std::uint32_t most = 0;
        for (const vm::function_plan& f : bound.plan.functions) most = std::max(most, f.params);
        if (most + 4 > reserved_ && lua_checkstack(L_, static_cast<int>(most) + 4) != 0)
            reserved_ = most + 4;

        const std::string entry = "contracts['" + decl.name + "']";
        switch (found) {
            case problem::no_contracts:
                error = chunk_ + ": the script defines no global 'contracts' table (it maps " +
                        "contract names to implementations)";
                if (found_type != LUA_TNIL)
                    error += "; 'contracts' is a " + std::string(lua_typename(L_, found_type));
                return false;
            case problem::no_entry:
                error = chunk_ + ": " + entry + " is missing: the script does not implement " +
                        decl.name;
                return false;
            case problem::not_object:
                error = chunk_ + ": " + entry + " is a " +
                        std::string(lua_typename(L_, found_type)) + ", not a table of functions";
                return false;
            case problem::none:
                break;
        }
        if (!missing.empty()) {
            error = chunk_ + ": " + entry + " " + vm::lacking_functions(decl, missing);
            return false;
        }
        impl = static_cast<std::uint32_t>(contracts_.size());
        contracts_.push_back(std::move(bound));
        return true;
    }

    /// `Impl.new()` when the implementation has one, else a table whose metatable's `__index`
    /// is the implementation. The handle keeps it alive (a registry reference).
    [[nodiscard]] void* create_instance(std::uint32_t impl, std::string& error) {
        if (impl >= contracts_.size()) {
            error = chunk_ + ": no such implementation";
            return nullptr;
        }
        int ref = LUA_NOREF;
        if (!new_instance(contracts_[impl], ref, error)) return nullptr;
        return handle_of(ref);
    }

    void destroy_instance(std::uint32_t, void* instance) noexcept {
        if (instance == nullptr) return;
        const auto bits = reinterpret_cast<std::uintptr_t>(instance);
        if ((bits >> 32) == tag_) {
            luaL_unref(L_, LUA_REGISTRYINDEX, static_cast<int>(bits & 0xffffffffu));
            return;
        }
        const auto it = foreign_.find(bits);
        if (it == foreign_.end()) return;
        luaL_unref(L_, LUA_REGISTRYINDEX, it->second);
        foreign_.erase(it);
    }

    /// Calls function `fn` on the instance by its plan: the C argument struct at `args` as Lua
    /// values, the result back into `out` (variable-size parts through `alloc`). false with the
    /// script's message, or with what did not fit, naming the function, the value and the type.
    [[nodiscard]] bool call(std::uint32_t impl, void* instance, const function_decl& fn,
                            const void* args, void* out, const result_allocator& alloc,
                            std::string& error) {
        if (!within(contracts_, impl) || !within(contracts_[impl].functions, fn.id)) [[unlikely]]
            return not_bound(fn, error);
        bound_contract& bound = contracts_[impl];
        const bound_function& function = bound.functions[fn.id];
        if ((args == nullptr && function.plan->params != 0) ||
            (out == nullptr && function.plan->has_result)) [[unlikely]]
            return null_pointers(bound, fn, error);
        const auto bits = reinterpret_cast<std::uintptr_t>(instance);
        int ref = static_cast<int>(bits & 0xffffffffu);
        if ((bits >> 32) != tag_) [[unlikely]] {
            if (!instance_ref(bound, instance, ref, error)) return false;
        }
        call_frame frame{this,
                         &bound.plan,
                         &function,
                         ref,
                         static_cast<const std::uint8_t*>(args),
                         static_cast<std::uint8_t*>(out),
                         &alloc};
        if (function.direct) return call_direct(frame, error);
        lua_pushvalue(L_, slot_call);
        lua_pushlightuserdata(L_, &frame);
        if (lua_pcall(L_, 1, 0, slot_handler) != 0) [[unlikely]] {
            error = take_message();
            return false;
        }
        return true;
    }

    /// True when the script defines an integer `state_schema` and functions `save_state` and
    /// `restore_state`. A partial definition is logged as a warning and offers nothing.
    [[nodiscard]] bool state_schema(std::uint32_t& schema) {
        int type = LUA_TNIL;
        lua_Number value = 0;
        bool save = false;
        bool restore = false;
        auto look = [&](lua_State* L) {
            lua_getglobal(L, "state_schema");
            type = lua_type(L, -1);
            if (type == LUA_TNUMBER) value = lua_tonumber(L, -1);
            lua_getglobal(L, "save_state");
            save = detail::lua_support::is_callable(L, -1);
            lua_getglobal(L, "restore_state");
            restore = detail::lua_support::is_callable(L, -1);
            return 0;
        };
        std::string error;
        if (!protect(look, error)) {
            log(LogLevel_Warn, "reading state_schema: " + error + "; no state hand-over");
            return false;
        }
        if (type == LUA_TNIL) return false;
        if (type != LUA_TNUMBER || !(value >= 0 && value <= 4294967295.0) ||
            value != std::floor(value)) {
            log(LogLevel_Warn, chunk_ + ": state_schema must be an integer from 0 to 4294967295;" +
                                   " no state hand-over");
            return false;
        }
        if (!save || !restore) {
            log(LogLevel_Warn, chunk_ +
                                   ": state_schema is defined but save_state or restore_state is "
                                   "not a function; no state hand-over");
            return false;
        }
        schema = static_cast<std::uint32_t>(value);
        return true;
    }

    /// Runs `save_state()`, which returns the state as a string.
    [[nodiscard]] bool save_state(std::string& bytes, std::string& error) {
        int type = LUA_TNIL;
        auto run = [&](lua_State* L) {
            lua_getglobal(L, "save_state");
            lua_call(L, 0, 1);
            type = lua_type(L, -1);
            return 1;
        };
        if (!protect(run, error, 1)) return false;
        if (type != LUA_TSTRING) {
            lua_settop(L_, base_top);
            error = chunk_ + ": save_state returned a " + std::string(lua_typename(L_, type)) +
                    ", not a string";
            return false;
        }
        std::size_t len = 0;
        const char* data = lua_tolstring(L_, -1, &len);
        try {
            bytes.assign(data, len);
        } catch (...) {
            lua_settop(L_, base_top);
            throw;
        }
        lua_settop(L_, base_top);
        return true;
    }

    /// Runs `restore_state(schema, data)`; an error, or a result of `false`, refuses the state.
    [[nodiscard]] bool restore_state(std::uint32_t schema, std::string_view bytes,
                                     std::string& error) {
        bool refused = false;
        auto run = [&](lua_State* L) {
            lua_getglobal(L, "restore_state");
            lua_pushinteger(L, static_cast<lua_Integer>(schema));
            detail::lua_support::push_bytes(L, bytes.data(), bytes.size());
            lua_call(L, 2, 1);
            refused = lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1) == 0;
            return 0;
        };
        if (!protect(run, error)) return false;
        if (refused) {
            error =
                chunk_ + ": restore_state refused the state of schema " + std::to_string(schema);
            return false;
        }
        return true;
    }

    /// The Lua state, for tests and tools (the VM's lock must be held to use it).
    [[nodiscard]] lua_State* state() const noexcept { return L_; }

private:
    // The bottom of the stack, kept for the VM's life: the message handler, the call entry.
    static constexpr int slot_handler = 1;
    static constexpr int slot_call = 2;
    static constexpr int base_top = 2;

    /// What a step's fast path converts, decided at bind (`none`: the plan executor does).
    enum class fast : std::uint8_t {
        none,
        i8,
        u8,
        i16,
        u16,
        i32,
        u32,
        i64,
        u64,
        f32,
        f64,
        boolean,
        pointer,
        string_view,
        buffer,
    };
    struct fast_step {
        fast kind = fast::none;
        std::uint32_t offset = 0;
    };
    struct bound_function {
        int function_ref = LUA_NOREF;
        const vm::function_plan* plan = nullptr;
        bool direct = false;  // no Lua error possible: called without the protected entry frame
        fast result = fast::none;
        std::vector<fast_step> params;  // by parameter
    };
    struct bound_contract {
        const contract_decl* decl = nullptr;
        vm::contract_plan plan;                 // compiled at bind
        std::vector<bound_function> functions;  // by function id
        int new_ref = LUA_NOREF;
        int metatable_ref = LUA_NOREF;
        int default_ref = LUA_NOREF;  // the instance for calls with a null instance pointer
    };
    struct call_frame {
        lua_engine* engine;
        const vm::contract_plan* plan;
        const bound_function* function;
        int instance;
        const std::uint8_t* args;
        std::uint8_t* out;
        const result_allocator* alloc;
    };

    explicit lua_engine(const vm_script& script)
        : api_(script.api),
          services_(script.services),
          L_(luaL_newstate()),
          chunk_(script.shown_name()) {
        // Handles of this VM's instances carry this tag, so that one from another version is
        // recognised (and never read as a reference of this registry): odd, and different for
        // each of the next 2^31 VMs this copy of the header makes (an odd multiple of the count
        // is a bijection). The start, from the clock and an address, sets copies of the header
        // in different shared objects apart. No std::random_device: on a hypervisor that traps
        // `cpuid` it cost 40 µs of every Lua reload.
        static const std::uint32_t first_tag = [] {
            std::uint64_t seed = static_cast<std::uint64_t>(
                std::chrono::steady_clock::now().time_since_epoch().count());
            seed ^= reinterpret_cast<std::uintptr_t>(&vms_made);
            seed ^= seed >> 29;
            seed *= 0xbf58476d1ce4e5b9ull;
            return static_cast<std::uint32_t>(seed ^ (seed >> 32));
        }();
        const auto count =
            static_cast<std::uint32_t>(vms_made.fetch_add(1, std::memory_order_relaxed));
        tag_ = ((first_tag + count * 0x9e3779b9u) << 1) | 1u;  // never 0: handles are never null
    }

    // ---- running Lua ------------------------------------------------------------------------

    template <class F>
    static int protected_entry(lua_State* L) {
        F& f = *static_cast<F*>(lua_touserdata(L, 1));
        lua_remove(L, 1);
        return f(L);
    }

    /// Runs `f(L)` in protected mode; f's stack starts empty and its `results` results stay on
    /// the stack for the caller. On error, the message (with its location) and the stack reset.
    template <class F>
    [[nodiscard]] bool protect(F& f, std::string& error, int results = 0) {
        lua_pushcfunction(L_, &protected_entry<F>);
        lua_pushlightuserdata(L_, &f);
        if (lua_pcall(L_, 1, results, ready_ ? slot_handler : 0) != 0) {
            error = take_message();
            return false;
        }
        return true;
    }

    /// The error at the top of the stack as text; the stack back to its base.
    std::string take_message() {
        std::string text;
        if (lua_type(L_, -1) == LUA_TSTRING) {
            std::size_t len = 0;
            const char* data = lua_tolstring(L_, -1, &len);
            text.assign(data, len);
        } else {
            text = chunk_ + ": (an error without a message)";
        }
        lua_settop(L_, ready_ ? base_top : 0);
        return text;
    }

    /// Turns any error object into a string: its `__tostring`, a number's text, or its type.
    static int message_handler(lua_State* L) {
        const int type = lua_type(L, 1);
        if (type == LUA_TSTRING) return 1;
        if (type == LUA_TNUMBER) {
            lua_pushvalue(L, 1);
            lua_tolstring(L, -1, nullptr);
            return 1;
        }
        if (luaL_callmeta(L, 1, "__tostring") != 0 && lua_type(L, -1) == LUA_TSTRING) return 1;
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
        return 1;
    }

    bool start(const vm_script& script, std::string& error) {
        if (L_ == nullptr) {
            error = chunk_ + ": cannot create a Lua state (out of memory)";
            return false;
        }
        std::string source;
        if (!script.read(source)) {
            error = chunk_ + ": cannot read the script " + script.script.string();
            return false;
        }
        // A "#!" first line, as lua(1) skips it: commented out, so line numbers stay.
        if (!source.empty() && source[0] == '#') source.insert(0, "--");

        // C++ sizes first: the protected part must not allocate C++ memory.
        field_keys_.resize(api_->structs.size());
        for (std::size_t s = 0; s < api_->structs.size(); ++s)
            field_keys_[s].assign(api_->structs[s].layout.fields.size(), LUA_NOREF);
        int handler_ref = LUA_NOREF;
        int call_ref = LUA_NOREF;
        auto setup = [&](lua_State* L) {
            luaL_openlibs(L);
            install_module(L);
            // Struct field names, interned once: calls push them by reference.
            for (std::size_t s = 0; s < api_->structs.size(); ++s) {
                const auto& fields = api_->structs[s].layout.fields;
                for (std::size_t f = 0; f < fields.size(); ++f) {
                    lua_pushlstring(L, fields[f].name.data(), fields[f].name.size());
                    field_keys_[s][f] = luaL_ref(L, LUA_REGISTRYINDEX);
                }
            }
            lua_pushcfunction(L, &message_handler);
            handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            lua_pushcfunction(L, &call_entry);
            call_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            return 0;
        };
        if (!protect(setup, error)) return false;
        lua_settop(L_, 0);
        lua_rawgeti(L_, LUA_REGISTRYINDEX, handler_ref);  // slot_handler
        lua_rawgeti(L_, LUA_REGISTRYINDEX, call_ref);     // slot_call
        ready_ = true;

        const std::string chunkname = "@" + chunk_;  // messages read "calc.lua:3: ..."
        if (luaL_loadbufferx(L_, source.data(), source.size(), chunkname.c_str(), "t") != 0) {
            error = take_message();
            return false;
        }
        if (lua_pcall(L_, 0, 0, slot_handler) != 0) {
            error = take_message();
            return false;
        }
        lua_settop(L_, base_top);
        return true;
    }

    /// The `polyplug` table: log, call, bundle, and the log levels; a global, and
    /// `require("polyplug")` finds it too.
    void install_module(lua_State* L) {
        lua_createtable(L, 0, 8);
        lua_pushlightuserdata(L, this);
        lua_pushcclosure(L, &lua_log, 1);
        lua_setfield(L, -2, "log");
        lua_pushlightuserdata(L, this);
        lua_pushcclosure(L, &lua_call_contract, 1);
        lua_setfield(L, -2, "call");
        const std::string& name = services_->bundle_name();
        lua_pushlstring(L, name.data(), name.size());
        lua_setfield(L, -2, "bundle");
        const std::pair<const char*, int> levels[] = {
            {"ERROR", LogLevel_Error}, {"WARN", LogLevel_Warn},   {"INFO", LogLevel_Info},
            {"DEBUG", LogLevel_Debug}, {"TRACE", LogLevel_Trace},
        };
        for (const auto& [level_name, level] : levels) {
            lua_pushinteger(L, level);
            lua_setfield(L, -2, level_name);
        }
        lua_pushvalue(L, -1);
        lua_setglobal(L, "polyplug");
        lua_getglobal(L, "package");
        if (lua_type(L, -1) == LUA_TTABLE) {
            lua_getfield(L, -1, "loaded");
            if (lua_type(L, -1) == LUA_TTABLE) {
                lua_pushvalue(L, -3);
                lua_setfield(L, -2, "polyplug");
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 2);
    }

    void log(std::uint32_t level, std::string_view text) noexcept {
        try {
            services_->log(level, text);
        } catch (...) {
        }
    }

    // ---- instances --------------------------------------------------------------------------

    [[nodiscard]] void* handle_of(int ref) const noexcept {
        return reinterpret_cast<void*>((static_cast<std::uintptr_t>(tag_) << 32) |
                                       static_cast<std::uint32_t>(ref));
    }

    bool new_instance(const bound_contract& bound, int& ref, std::string& error) {
        int made = LUA_TNIL;
        auto make = [&](lua_State* L) {
            if (bound.new_ref != LUA_NOREF) {
                lua_rawgeti(L, LUA_REGISTRYINDEX, bound.new_ref);
                lua_call(L, 0, 1);
                made = lua_type(L, -1);
                if (made != LUA_TTABLE && made != LUA_TUSERDATA) return 0;
            } else {
                lua_createtable(L, 0, 0);
                lua_rawgeti(L, LUA_REGISTRYINDEX, bound.metatable_ref);
                lua_setmetatable(L, -2);
                made = LUA_TTABLE;
            }
            ref = luaL_ref(L, LUA_REGISTRYINDEX);
            return 0;
        };
        if (!protect(make, error)) return false;
        if (ref == LUA_NOREF || ref == LUA_REFNIL) {
            error = chunk_ + ": contracts['" + bound.decl->name + "'].new() returned a " +
                    std::string(lua_typename(L_, made)) + ", not an instance (a table)";
            return false;
        }
        return true;
    }

    /// The registry reference of the instance a handle names in this VM.
    bool instance_ref(bound_contract& bound, void* instance, int& ref, std::string& error) {
        const auto bits = reinterpret_cast<std::uintptr_t>(instance);
        if (instance != nullptr && (bits >> 32) == tag_) {
            ref = static_cast<int>(bits & 0xffffffffu);
            return true;
        }
        if (instance == nullptr) {
            if (bound.default_ref == LUA_NOREF && !new_instance(bound, bound.default_ref, error))
                return false;
            ref = bound.default_ref;
            return true;
        }
        // Made by an earlier version of this bundle: a new instance here, kept for the handle.
        const auto it = foreign_.find(bits);
        if (it != foreign_.end()) {
            ref = it->second;
            return true;
        }
        if (!new_instance(bound, ref, error)) return false;
        try {
            foreign_.emplace(bits, ref);
        } catch (...) {
            luaL_unref(L_, LUA_REGISTRYINDEX, ref);
            throw;
        }
        return true;
    }

    // ---- a guest call -----------------------------------------------------------------------

    using message_text = detail::lua_support::message_text;
    using sink = detail::lua_support::sink;

    /// How the plan executor reads and makes Lua values (vm::vm_codec): values are stack
    /// indices. Nothing here raises a Lua error for a value that does not fit: the message goes
    /// into `message` and the member returns false. Lua itself may raise (out of memory, a
    /// struct field's __index), which is why only calls that cannot meet those run unprotected.
    struct codec {
        using value = int;

        const lua_engine& engine;
        lua_State* L;
        sink& out;
        message_text& message;

        // C memory to Lua values.
        bool push_integer(const vm::step& s, std::int64_t v) noexcept {
#if LUA_VERSION_NUM >= 503
            (void)s;
            lua_pushinteger(L, static_cast<lua_Integer>(v));
#else
            if (s.primitive == primitive_type::i64 && !vm::exact_double(v))
                return no_number(s, static_cast<std::uint64_t>(v), v < 0);
            lua_pushnumber(L, static_cast<lua_Number>(v));
#endif
            return true;
        }
        bool push_unsigned(const vm::step& s, const vm::trail& t, std::uint64_t v) noexcept {
#if LUA_VERSION_NUM >= 503
            if (v <= static_cast<std::uint64_t>(INT64_MAX)) {
                lua_pushinteger(L, static_cast<lua_Integer>(v));
                return true;
            }
#endif
            if (!vm::exact_double(v)) {
                where = &t;
                return no_number(s, v, false);
            }
            lua_pushnumber(L, static_cast<lua_Number>(v));
            return true;
        }
        bool push_real(double v) noexcept {
            lua_pushnumber(L, static_cast<lua_Number>(v));
            return true;
        }
        bool push_boolean(bool v) noexcept {
            lua_pushboolean(L, v ? 1 : 0);
            return true;
        }
        bool push_bytes(const vm::step&, const std::uint8_t* p, std::size_t len) {
            detail::lua_support::push_bytes(L, p, len);
            return true;
        }
        bool push_pointer(void* p) noexcept {
            if (p == nullptr)
                lua_pushnil(L);
            else
                lua_pushlightuserdata(L, p);
            return true;
        }
        bool begin_record(const vm::step& s) {
            luaL_checkstack(L, 4, "structs nested too deeply");
            lua_createtable(L, 0, static_cast<int>(s.count));
            return true;
        }
        bool end_field(const vm::step& record, const vm::step& field) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, engine.field_keys_[record.index][field.field]);
            lua_insert(L, -2);
            lua_rawset(L, -3);
            return true;
        }
        bool begin_array(const vm::step&, const vm::trail& t, std::size_t len) {
            if (len > static_cast<std::size_t>(INT_MAX))
                return fail(t, "an array too long for a Lua table");
            luaL_checkstack(L, 4, "arrays nested too deeply");
            lua_createtable(L, static_cast<int>(len), 0);
            return true;
        }
        bool end_element(std::size_t i) {
            detail::lua_support::raw_set_index(L, -2, i + 1);
            return true;
        }
        bool fail(const vm::trail& t, std::string_view text) noexcept {
            engine.begin_message(message, t);
            message.append(text);
            return false;
        }

        // Lua values to C memory.
        bool to_number(const vm::step&, int idx, vm::number& n) noexcept {
            if (lua_type(L, idx) != LUA_TNUMBER) return false;
#if LUA_VERSION_NUM >= 503
            if (lua_isinteger(L, idx) != 0) {
                n.tag = vm::number::kind::integer;
                n.i = static_cast<std::int64_t>(lua_tointeger(L, idx));
                return true;
            }
#endif
            n.tag = vm::number::kind::real;
            n.d = static_cast<double>(lua_tonumber(L, idx));
            return true;
        }
        bool to_boolean(const vm::step&, int idx, bool& b) noexcept {
            if (lua_type(L, idx) != LUA_TBOOLEAN) return false;
            b = lua_toboolean(L, idx) != 0;
            return true;
        }
        bool to_bytes(const vm::step&, int idx, const std::uint8_t*& p, std::size_t& len) noexcept {
            if (lua_type(L, idx) != LUA_TSTRING) return false;
            p = reinterpret_cast<const std::uint8_t*>(lua_tolstring(L, idx, &len));
            return true;
        }
        bool to_pointer(const vm::step&, int idx, void*& p) noexcept {
            const int type = lua_type(L, idx);
            if (type == LUA_TLIGHTUSERDATA) {
                p = lua_touserdata(L, idx);
                return true;
            }
            p = nullptr;
            return type == LUA_TNIL;
        }
        bool is_record(const vm::step&, int idx) noexcept {
            return lua_type(L, idx) == LUA_TTABLE;
        }
        bool get_field(const vm::step& record, const vm::step& field, int idx, int& out_idx) {
            luaL_checkstack(L, 4, "structs nested too deeply");
            lua_rawgeti(L, LUA_REGISTRYINDEX, engine.field_keys_[record.index][field.field]);
            lua_gettable(L, idx);  // __index too: a field may come from a class
            out_idx = lua_gettop(L);
            return true;
        }
        bool is_missing(const vm::step& field, int idx) noexcept {
            return field.code != vm::op::pointer && lua_type(L, idx) == LUA_TNIL;  // nil is NULL
        }
        bool missing(const vm::trail& t, const vm::step&, const vm::step& field, int) noexcept {
            engine.begin_message(message, t);
            message.append("expected ");
            message.append(field.type_name);
            message.append(", got nil (missing field)");
            return false;
        }
        bool sequence(const vm::step&, int idx, std::size_t& len) noexcept {
            if (lua_type(L, idx) != LUA_TTABLE) return false;
            len = detail::lua_support::raw_length(L, idx);
            return true;
        }
        bool get_element(int idx, std::size_t i, int& out_idx) {
            luaL_checkstack(L, 4, "arrays nested too deeply");
            detail::lua_support::raw_get_index(L, idx, i + 1);
            out_idx = lua_gettop(L);
            return true;
        }
        void release(int idx) noexcept {
            lua_settop(L, idx - 1);
        }
        std::uint8_t* allocate(std::size_t size, std::size_t align) {
            if (out.alloc != nullptr)
                return static_cast<std::uint8_t*>(out.alloc->allocate(size, align));
            // polyplug.call: Lua memory, kept alive by the call's anchor table.
            void* block = detail::lua_support::new_userdata(L, size + align);
            detail::lua_support::raw_set_index(L, out.anchor, ++out.anchored);
            const auto start = (reinterpret_cast<std::uintptr_t>(block) + (align - 1)) &
                               ~static_cast<std::uintptr_t>(align - 1);
            return reinterpret_cast<std::uint8_t*>(start);
        }
        /// A string's bytes where C can keep them for the call: copied into the result, or (for
        /// polyplug.call) the Lua string itself, anchored; a Buffer is always a copy (the callee
        /// owns it; a StringView is never written through).
        std::uint8_t* keep_bytes(const vm::step& s, int idx, const std::uint8_t* text,
                                 std::size_t& len, bool&) {
            if (out.alloc == nullptr && s.code == vm::op::string_view) {
                lua_pushvalue(L, idx);
                detail::lua_support::raw_set_index(L, out.anchor, ++out.anchored);
                return const_cast<std::uint8_t*>(text);
            }
            std::uint8_t* p = allocate(len, 1);
            if (p != nullptr) std::memcpy(p, text, len);
            return p;
        }
        bool refuse(const vm::trail& t, const vm::step& s, int idx, vm::misfit why) noexcept {
            engine.begin_message(message, t);
            message.append("expected ");
            switch (why == vm::misfit::wrong_type ? s.code : vm::op::nothing) {
                case vm::op::boolean:
                    message.append("bool (a boolean)");
                    break;
                case vm::op::string_view:
                    message.append("StringView (a string)");
                    break;
                case vm::op::buffer:
                    message.append("Buffer (a string)");
                    break;
                case vm::op::pointer:
                    message.append("Ptr (light userdata or nil)");
                    break;
                case vm::op::record:
                    message.append(s.type_name);
                    message.append(" (a table)");
                    break;
                case vm::op::array:
                    message.append(s.type_name);
                    message.append(" (a sequence table)");
                    break;
                default:
                    message.append(s.type_name);
                    break;
            }
            message.append(", got ");
            add_value(idx);
            if (const char* because = vm::misfit_reason(why)) {
                message.append(" (");
                message.append(because);
                message.append(")");
            }
            return false;
        }

        const vm::trail* where = nullptr;  // for push_unsigned's message

    private:
        void add_value(int idx) noexcept {
            switch (lua_type(L, idx)) {
                case LUA_TNIL:
                    message.append("nil");
                    break;
                case LUA_TBOOLEAN:
                    message.append(lua_toboolean(L, idx) != 0 ? "true" : "false");
                    break;
                case LUA_TNUMBER:
                    add_number(idx);
                    break;
                case LUA_TSTRING: {
                    std::size_t len = 0;
                    const char* text = lua_tolstring(L, idx, &len);
                    message.add_quoted(text, len);
                    break;
                }
                default:
                    message.append("a ");
                    message.append(luaL_typename(L, idx));
                    break;
            }
        }
        /// Lua's own spelling of a number (300, 3.5, 3.0, 1e+300), made without Lua memory: a
        /// refusal on the unprotected path must not raise.
        void add_number(int idx) noexcept {
#if LUA_VERSION_NUM >= 503
            if (lua_isinteger(L, idx) != 0) {
                message.append_signed(static_cast<std::int64_t>(lua_tointeger(L, idx)));
                return;
            }
#endif
            char text[64];
            const int n = std::snprintf(text, sizeof text, "%.14g",
                                        static_cast<double>(lua_tonumber(L, idx)));
            const std::string_view written(text, n > 0 ? static_cast<std::size_t>(n) : 0);
            message.append(written);
#if LUA_VERSION_NUM >= 503
            // As lua_tostring: a float that looks like an integer gets ".0".
            if (written.find_first_not_of("-0123456789") == std::string_view::npos)
                message.append(".0");
#endif
        }
        /// A C value that has no Lua value: "u64 value 18446744073709551615 ...".
        bool no_number(const vm::step& s, std::uint64_t bits, bool negative) noexcept {
            if (where != nullptr) engine.begin_message(message, *where);
            message.append(s.type_name);
            message.append(" value ");
            if (negative)
                message.append_signed(static_cast<std::int64_t>(bits));
            else
                vm::append_unsigned(message, bits);
#if LUA_VERSION_NUM >= 503
            message.append(
                " has no exact Lua number (Lua integers are signed 64-bit; a float would round "
                "it)");
#else
            message.append(
                " has no exact LuaJIT number (numbers are doubles: integers beyond 2^53 round)");
#endif
            return false;
        }
    };

    /// Whether a function can run without the protected entry frame: pushing its parameters and
    /// reading its result raise no Lua error (numbers, booleans, pointers in; those or a string
    /// out; strings in would allocate Lua memory outside protection).
    [[nodiscard]] static bool direct_call(const vm::contract_plan& plan,
                                          const vm::function_plan& f) noexcept {
        const vm::op result = plan.steps[f.result].code;
        return f.scalar_params &&
               (f.scalar_result || result == vm::op::string_view || result == vm::op::buffer);
    }

    /// `i < v.size()` without the division by sizeof(T) that size() costs.
    template <class T>
    [[nodiscard]] static bool within(const std::vector<T>& v, std::size_t i) noexcept {
        const auto bytes = reinterpret_cast<const char*>(std::to_address(v.end())) -
                           reinterpret_cast<const char*>(v.data());
        return i * sizeof(T) < static_cast<std::size_t>(bytes);
    }

    /// The direct path: the method called with lua_pcall straight from here. The common steps
    /// take the fast paths below; any other step, and every value a fast path does not accept,
    /// goes through the plan executor, which converts it or words the refusal.
    [[gnu::always_inline]] bool call_direct(const call_frame& frame, std::string& error) {
        lua_State* const L = L_;
        const vm::function_plan& f = *frame.function->plan;
        const auto params = static_cast<int>(f.params);
#if LUA_VERSION_NUM >= 503
        // Reserved once at bind for the contract's functions (the base frame keeps it).
        const bool reserved = f.params + 4 <= reserved_;
#else
        const bool reserved = false;  // LuaJIT may shrink the stack at a collection
#endif
        if (!reserved && lua_checkstack(L, params + 4) == 0) [[unlikely]]
            return too_many_parameters(error);
        lua_rawgeti(L, LUA_REGISTRYINDEX, frame.function->function_ref);
        lua_rawgeti(L, LUA_REGISTRYINDEX, frame.instance);
        const fast_step* const steps = frame.function->params.data();
        for (std::uint32_t i = 0; i < f.params; ++i) {
            if (!push_fast(L, steps[i], frame.args) && !planned_or_fail(frame, i, error))
                [[unlikely]]
                return false;
        }
        if (lua_pcall(L, params + 1, f.has_result ? 1 : 0, slot_handler) != 0) [[unlikely]]
            return failed(error);
        if (f.has_result && !pull_fast(L, frame.function->result, frame.out, frame.alloc) &&
            !planned_or_fail(frame, planned_result, error)) [[unlikely]]
            return false;
        lua_settop(L, base_top);
        return true;
    }

    // The direct path's rare turns, out of line so that its frame stays small.
    [[gnu::cold, gnu::noinline]] bool not_bound(const function_decl& fn, std::string& error) {
        error = chunk_ + ": " + fn.name + " is not bound";
        return false;
    }
    [[gnu::cold, gnu::noinline]] bool null_pointers(const bound_contract& bound,
                                                    const function_decl& fn, std::string& error) {
        error =
            chunk_ + ": " + bound.decl->name + "." + fn.name + ": null argument or result pointer";
        return false;
    }
    [[gnu::cold, gnu::noinline]] bool too_many_parameters(std::string& error) {
        error = chunk_ + ": too many parameters";
        return false;
    }
    [[gnu::cold, gnu::noinline]] bool failed(std::string& error) {
        error = take_message();
        return false;
    }
    /// Parameter `i`, or the result (`i` == planned_result), through the plan executor on the
    /// direct path: a refusal is returned as the call's message.
    [[gnu::noinline]] bool planned_or_fail(const call_frame& frame, std::uint32_t i,
                                           std::string& error) {
        message_text message;
        vm::trail where;
        if (planned(L_, frame, i, message, where)) return true;
        lua_settop(L_, base_top);
        error.assign(message.view());
        return false;
    }

    /// The protected body of `call`: arguments in, the method, the result out.
    static int call_entry(lua_State* L) {
        auto& frame = *static_cast<call_frame*>(lua_touserdata(L, 1));
        const vm::function_plan& f = *frame.function->plan;
        // A C function starts with LUA_MINSTACK free slots: enough for most functions.
        if (f.params + 2 > LUA_MINSTACK)
            luaL_checkstack(L, static_cast<int>(f.params) + 8, "too many parameters");
        lua_rawgeti(L, LUA_REGISTRYINDEX, frame.function->function_ref);
        lua_rawgeti(L, LUA_REGISTRYINDEX, frame.instance);
        const fast_step* const steps = frame.function->params.data();
        for (std::uint32_t i = 0; i < f.params; ++i) {
            if (!push_fast(L, steps[i], frame.args) && !push_bytes_fast(L, steps[i], frame.args))
                planned_or_raise(L, frame, i);
        }
        lua_call(L, static_cast<int>(f.params) + 1, f.has_result ? 1 : 0);
        // Nothing is allocated for a result that will be refused (the caller could not free it
        // without an arena): pull_result checks a struct or an array whole first.
        if (f.has_result && !pull_fast(L, frame.function->result, frame.out, frame.alloc))
            planned_or_raise(L, frame, planned_result);
        return 0;
    }

    /// The same on the protected path: a refusal raises its message as a Lua error.
    [[gnu::noinline]] static void planned_or_raise(lua_State* L, const call_frame& frame,
                                                   std::uint32_t i) {
        message_text message;
        vm::trail where;
        if (!frame.engine->planned(L, frame, i, message, where)) raise(L, where, message);
    }

    static constexpr std::uint32_t planned_result = UINT32_MAX;

    /// Parameter `i` of the frame's function, or the result at the top of the stack (`i` ==
    /// planned_result: checked whole first when a part of it would be allocated before another
    /// part is refused), through the plan executor. false with the message in `message` (and
    /// `where` set for raising it).
    [[gnu::noinline]] bool planned(lua_State* L, const call_frame& frame, std::uint32_t i,
                                   message_text& message, vm::trail& where) const {
        const vm::function_plan& f = *frame.function->plan;
        sink results{frame.alloc, 0, 0};
        codec c{*this, L, results, message};
        where.contract = frame.plan->decl->name.c_str();
        where.function = f.decl->name.c_str();
        c.where = &where;
        if (i == planned_result)
            return vm::pull_result(c, *frame.plan, f, lua_gettop(L), frame.out, where);
        const vm::step& param = frame.plan->steps[f.first_param + i];
        where.root = "parameter";
        where.root_name = param.name;
        return vm::push(c, *frame.plan, param, frame.args + param.offset, where);
    }

    // ---- the fast paths of a call --------------------------------------------------------------
    // The common steps converted straight between C and Lua. Each returns false, having pushed or
    // written nothing, for a step or a value outside the common case; the plan executor then
    // converts it or words the refusal, so the two cannot disagree on what is accepted.

    /// An integer as codec::push_integer pushes it.
    static void push_int(lua_State* L, std::int64_t v) noexcept {
#if LUA_VERSION_NUM >= 503
        lua_pushinteger(L, static_cast<lua_Integer>(v));
#else
        lua_pushnumber(L, static_cast<lua_Number>(v));
#endif
    }

    /// The fast path of a step: a parameter's (`param`) or the result's.
    static fast fast_of(const vm::step& s, bool param) noexcept {
        switch (s.code) {
            case vm::op::enumeration:  // pushed as its integer; a result must be one of its values
                if (!param) return fast::none;
                [[fallthrough]];
            case vm::op::integer:
                switch (s.primitive) {
                    case primitive_type::i8:
                        return fast::i8;
                    case primitive_type::u8:
                        return fast::u8;
                    case primitive_type::i16:
                        return fast::i16;
                    case primitive_type::u16:
                        return fast::u16;
                    case primitive_type::i32:
                        return fast::i32;
                    case primitive_type::u32:
                        return fast::u32;
                    case primitive_type::i64:
                        // LuaJIT: an argument beyond 2^53 has no exact number (the executor says)
                        return LUA_VERSION_NUM >= 503 || !param ? fast::i64 : fast::none;
                    case primitive_type::u64:
                        return param ? fast::none : fast::u64;  // above 2^63-1: the executor
                    default:
                        return fast::none;
                }
            case vm::op::real:
                return s.primitive == primitive_type::f32 ? fast::f32 : fast::f64;
            case vm::op::boolean:
                return fast::boolean;
            case vm::op::pointer:
                return fast::pointer;
            case vm::op::string_view:
                return fast::string_view;
            case vm::op::buffer:
                return fast::buffer;
            default:
                return fast::none;
        }
    }

    /// A number, bool or pointer parameter from the argument struct at `args`.
    static bool push_fast(lua_State* L, fast_step s, const std::uint8_t* args) noexcept {
        const std::uint8_t* const src = args + s.offset;
        switch (s.kind) {
            case fast::i32:
                push_int(L, vm::load<std::int32_t>(src));
                return true;
            case fast::u32:
                push_int(L, vm::load<std::uint32_t>(src));
                return true;
            case fast::i64:
                push_int(L, vm::load<std::int64_t>(src));
                return true;
            case fast::u8:
                push_int(L, vm::load<std::uint8_t>(src));
                return true;
            case fast::u16:
                push_int(L, vm::load<std::uint16_t>(src));
                return true;
            case fast::i8:
                push_int(L, vm::load<std::int8_t>(src));
                return true;
            case fast::i16:
                push_int(L, vm::load<std::int16_t>(src));
                return true;
            case fast::f64:
                lua_pushnumber(L, static_cast<lua_Number>(vm::load<double>(src)));
                return true;
            case fast::f32:
                lua_pushnumber(L, static_cast<lua_Number>(vm::load<float>(src)));
                return true;
            case fast::boolean:
                lua_pushboolean(L, vm::load<std::uint8_t>(src) != 0 ? 1 : 0);
                return true;
            case fast::pointer: {
                void* const p = vm::load<void*>(src);
                if (p == nullptr)
                    lua_pushnil(L);
                else
                    lua_pushlightuserdata(L, p);
                return true;
            }
            default:
                return false;
        }
    }

    /// A StringView or Buffer parameter (protected calls only: the string is Lua memory; direct
    /// calls have none, see direct_call).
    static bool push_bytes_fast(lua_State* L, fast_step s, const std::uint8_t* args) {
        if (s.kind != fast::string_view && s.kind != fast::buffer) return false;
        const auto view = vm::load<StringView>(args + s.offset);  // Buffer starts {ptr, len} too
        if (view.len > 0 && view.ptr == nullptr) return false;
        detail::lua_support::push_bytes(L, view.ptr, view.len);
        return true;
    }

    /// `v` if it is an integer of `type`'s range (Lua 5.4: an integer value; LuaJIT: an integral
    /// double), as vm::integer_fit accepts it.
    static bool integer_of(lua_State* L, int idx, std::int64_t& v) noexcept {
#if LUA_VERSION_NUM >= 503
        if (lua_isinteger(L, idx) == 0) return false;
        v = static_cast<std::int64_t>(lua_tointeger(L, idx));
        return true;
#else
        if (lua_type(L, idx) != LUA_TNUMBER) return false;
        const auto d = static_cast<double>(lua_tonumber(L, idx));
        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return false;
        v = static_cast<std::int64_t>(d);
        return static_cast<double>(v) == d;
#endif
    }

    /// An integer result in [lo, hi] into `dst` as T.
    template <class T>
    static bool pull_integer(lua_State* L, std::int64_t lo, std::int64_t hi,
                             std::uint8_t* dst) noexcept {
        std::int64_t v = 0;
        if (!integer_of(L, -1, v) || v < lo || v > hi) return false;
        vm::store(dst, static_cast<T>(v));
        return true;
    }

    /// The result at the top of the stack into `dst` (strings into memory from `alloc`).
    [[gnu::always_inline]] static bool pull_fast(lua_State* L, fast kind, std::uint8_t* dst,
                                                 const result_allocator* alloc) noexcept {
        switch (kind) {
            case fast::i32:
                return pull_integer<std::int32_t>(L, INT32_MIN, INT32_MAX, dst);
            case fast::u32:
                return pull_integer<std::uint32_t>(L, 0, UINT32_MAX, dst);
            case fast::i64:
                return pull_integer<std::int64_t>(L, INT64_MIN, INT64_MAX, dst);
            case fast::u64:
                return pull_integer<std::uint64_t>(L, 0, INT64_MAX, dst);
            case fast::u8:
                return pull_integer<std::uint8_t>(L, 0, UINT8_MAX, dst);
            case fast::u16:
                return pull_integer<std::uint16_t>(L, 0, UINT16_MAX, dst);
            case fast::i8:
                return pull_integer<std::int8_t>(L, INT8_MIN, INT8_MAX, dst);
            case fast::i16:
                return pull_integer<std::int16_t>(L, INT16_MIN, INT16_MAX, dst);
            case fast::f64:
            case fast::f32: {
                if (lua_type(L, -1) != LUA_TNUMBER) return false;
                const auto d = static_cast<double>(lua_tonumber(L, -1));
                if (kind == fast::f64) {
                    vm::store(dst, d);
                    return true;
                }
                if (std::isfinite(d) && std::fabs(d) > static_cast<double>(FLT_MAX)) return false;
                vm::store(dst, static_cast<float>(d));
                return true;
            }
            case fast::boolean:
                if (lua_type(L, -1) != LUA_TBOOLEAN) return false;
                vm::store(dst, static_cast<std::uint8_t>(lua_toboolean(L, -1) != 0 ? 1 : 0));
                return true;
            case fast::pointer: {
                const int type = lua_type(L, -1);
                if (type != LUA_TLIGHTUSERDATA && type != LUA_TNIL) return false;
                vm::store(dst, type == LUA_TNIL ? nullptr : lua_touserdata(L, -1));
                return true;
            }
            case fast::string_view:
            case fast::buffer: {
                if (lua_type(L, -1) != LUA_TSTRING) return false;
                std::size_t len = 0;
                const char* text = lua_tolstring(L, -1, &len);
                std::uint8_t* kept = nullptr;
                if (len > 0) {
                    kept = static_cast<std::uint8_t*>(alloc->allocate(len, 1));
                    if (kept == nullptr) return false;  // the executor says it ran out
                    std::memcpy(kept, text, len);
                }
                if (kind == fast::buffer)
                    vm::store(dst, Buffer{kept, len, len});
                else
                    vm::store(dst, StringView{kept, len});
                return true;
            }
            default:
                return false;
        }
    }

    // ---- errors during a conversion ----------------------------------------------------------

    /// Arguments by position and name, elements as Lua counts them.
    static constexpr vm::trail_words words{true, 1};

    void begin_message(message_text& m, const vm::trail& t) const noexcept {
        if (t.from_script) {
            m.append("polyplug.call('");
            m.append(t.contract);
            m.append("', '");
            m.append(t.function);
            m.append("'): ");
        } else {
            m.append(chunk_);
            m.append(": ");
            m.append(t.contract);
            m.append(".");
            m.append(t.function);
            m.append(": ");
        }
        vm::append_root(m, t, words);
        vm::append_places(m, t, words);
        m.append(": ");
    }

    /// The message as a Lua error (at the line of the script calling polyplug.call for those).
    [[noreturn]] static void raise(lua_State* L, const vm::trail& t, const message_text& m) {
        lua_pushlstring(L, m.view().data(), m.view().size());
        if (t.from_script) {
            luaL_where(L, 1);
            lua_insert(L, -2);
            lua_concat(L, 2);
        }
        lua_error(L);
        __builtin_unreachable();
    }

    // ---- the polyplug module ------------------------------------------------------------------

    /// polyplug.log(level, message)
    static int lua_log(lua_State* L) {
        auto& self = *static_cast<lua_engine*>(lua_touserdata(L, lua_upvalueindex(1)));
        const lua_Integer level = luaL_checkinteger(L, 1);
        std::size_t len = 0;
        const char* text = luaL_checklstring(L, 2, &len);
        self.log(vm_services::log_level(static_cast<double>(level)), {text, len});
        return 0;
    }

    /// The contract and function polyplug.call names; false with scratch_ set.
    bool find_target(std::string_view contract, std::string_view function,
                     const vm::contract_plan*& plan, const vm::function_plan*& f) noexcept {
        try {
            if (targets_.find(*services_, contract, function, plan, f, scratch_)) return true;
            scratch_.insert(0, "polyplug.call: ");
            return false;
        } catch (...) {
            scratch_.clear();  // no memory for a message: the Lua error says so
            return false;
        }
    }

    struct result_push {
        const lua_engine* engine;
        vm::trail* where;
        const vm::contract_plan* plan;
        const vm::step* result;
        const std::uint8_t* out;
    };

    static int push_result_entry(lua_State* L) {
        auto& r = *static_cast<result_push*>(lua_touserdata(L, 1));
        message_text message;
        sink none;
        codec c{*r.engine, L, none, message};
        c.where = r.where;
        if (!vm::push(c, *r.plan, *r.result, r.out, *r.where)) {
            lua_pushlstring(L, message.view().data(), message.view().size());
            return lua_error(L);
        }
        return 1;
    }

    /// polyplug.call(contract, function, ...): the arguments into the C struct, the call through
    /// the runtime, the result back as a Lua value; the callee's error as a Lua error.
    static int lua_call_contract(lua_State* L) {
        auto& self = *static_cast<lua_engine*>(lua_touserdata(L, lua_upvalueindex(1)));
        std::size_t contract_len = 0;
        std::size_t function_len = 0;
        const char* contract = luaL_checklstring(L, 1, &contract_len);
        const char* function = luaL_checklstring(L, 2, &function_len);
        const vm::contract_plan* plan = nullptr;
        const vm::function_plan* f = nullptr;
        if (!self.find_target({contract, contract_len}, {function, function_len}, plan, f)) {
            if (self.scratch_.empty()) return luaL_error(L, "polyplug.call: out of memory");
            luaL_where(L, 1);
            lua_pushlstring(L, self.scratch_.data(), self.scratch_.size());
            lua_concat(L, 2);
            return lua_error(L);
        }
        const contract_decl* decl = plan->decl;
        const function_decl* fn = f->decl;
        const auto& params = fn->args.fields;
        const int given = lua_gettop(L) - 2;
        if (given != static_cast<int>(params.size())) {
            return luaL_error(L, "polyplug.call('%s', '%s'): %d arguments given, it takes %d",
                              decl->name.c_str(), fn->name.c_str(), given,
                              static_cast<int>(params.size()));
        }
        luaL_checkstack(L, 8, "polyplug.call");
        lua_createtable(L, 0, 0);  // the anchor: strings and scratch memory for the call
        sink scratch;
        scratch.anchor = lua_gettop(L);
        message_text message;
        codec c{self, L, scratch, message};

        // Argument and result structs: on the C stack when small, else Lua memory.
        alignas(16) std::uint8_t local_args[256];
        alignas(16) std::uint8_t local_out[256];
        std::uint8_t* args = local_args;
        std::uint8_t* out = local_out;
        vm::trail where;
        where.contract = decl->name.c_str();
        where.function = fn->name.c_str();
        where.from_script = true;
        c.where = &where;
        if (fn->args.size > sizeof local_args) args = c.allocate(fn->args.size, fn->args.align);
        if (fn->result.size > sizeof local_out) out = c.allocate(fn->result.size, fn->result.align);
        std::memset(args, 0, fn->args.size);
        std::memset(out, 0, fn->result.size);
        const auto argument = [](std::uint32_t i) { return static_cast<int>(i) + 3; };
        if (!vm::pull_arguments(c, *plan, *f, argument, args, where)) raise(L, where, message);

        CallArena arena;
        alignas(16) std::uint8_t arena_storage[1024];
        polyplug_arena_init(&arena, arena_storage, sizeof arena_storage, self.services_->host());
        const AbiError err =
            vm::call_service(*self.services_, *decl, *fn, fn->args.fields.empty() ? nullptr : args,
                             fn->result.is_void() ? nullptr : out, &arena);
        if (err.code != AbiErrorCode_Ok) {
            polyplug_arena_free(&arena);  // the message is not in the arena
            luaL_where(L, 1);
            lua_pushfstring(L, "polyplug.call('%s', '%s') failed (%s): ", decl->name.c_str(),
                            fn->name.c_str(), abi_error_code_name(err.code));
            if (err.message.ptr != nullptr && err.message.len > 0)
                lua_pushlstring(L, reinterpret_cast<const char*>(err.message.ptr), err.message.len);
            else
                lua_pushliteral(L, "no message");
            lua_concat(L, 3);
            return lua_error(L);
        }
        if (fn->result.is_void()) {
            polyplug_arena_free(&arena);
            return 0;
        }
        // Pushed under protection, so that the arena is freed whatever happens.
        result_push push{&self, &where, plan, &plan->steps[f->result], out};
        lua_pushcfunction(L, &push_result_entry);
        lua_pushlightuserdata(L, &push);
        const int status = lua_pcall(L, 1, 1, 0);
        polyplug_arena_free(&arena);
        if (status != 0) {  // at the line of the script calling polyplug.call
            luaL_where(L, 1);
            lua_insert(L, -2);
            lua_concat(L, 2);
            return lua_error(L);
        }
        return 1;
    }

    const contract_file* api_;
    vm_services* services_;
    lua_State* L_;
    std::string chunk_;  // the script's name in messages: "calc.lua"
    std::uint32_t tag_ = 1;
    static inline std::atomic<std::uint64_t> vms_made{0};  // lua_engine objects made (tags)
    bool ready_ = false;                                   // the base stack slots are in place
    std::uint32_t reserved_ = 0;  // stack slots above base_top reserved for direct calls
    std::vector<std::vector<int>> field_keys_;         // registry refs of each struct's field names
    std::vector<bound_contract> contracts_;            // by impl index
    vm::call_targets targets_;                         // polyplug.call
    std::unordered_map<std::uintptr_t, int> foreign_;  // instances of earlier versions
    std::string scratch_;                              // a message on its way into a Lua error
};

/// The Lua bundle loader: `loader = "lua"` in manifest.toml.
using lua_loader = vm_loader<lua_engine>;

POLYPLUG_END_NAMESPACE
