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

#include <lua.hpp>

#include <cfloat>
#include <charconv>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE

namespace detail::lua_support {

static_assert(sizeof(void*) == 8, "the Lua loader packs instance handles into 64-bit pointers");

// The Lua 5.1 API (LuaJIT) lacks a few 5.2+ calls; these cover both.
inline int absolute(lua_State* L, int idx) noexcept {
    return idx > 0 || idx <= LUA_REGISTRYINDEX ? idx : lua_gettop(L) + idx + 1;
}

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

/// A message built while a Lua error is on its way: fixed storage, because the error unwinds
/// (longjmp in Lua 5.4) past the frames that build it and would skip a std::string destructor.
class message_text {
public:
    void add(std::string_view text) noexcept {
        const std::size_t n = std::min(text.size(), sizeof text_ - len_);
        if (n > 0) std::memcpy(text_ + len_, text.data(), n);
        len_ += n;
    }
    void add_unsigned(std::uint64_t value) noexcept {
        char digits[24];
        const auto r = std::to_chars(digits, digits + sizeof digits, value);
        add(std::string_view(digits, static_cast<std::size_t>(r.ptr - digits)));
    }
    void add_signed(std::int64_t value) noexcept {
        char digits[24];
        const auto r = std::to_chars(digits, digits + sizeof digits, value);
        add(std::string_view(digits, static_cast<std::size_t>(r.ptr - digits)));
    }
    /// A Lua string as a quoted literal: at most 40 bytes, other than printable ASCII escaped.
    void add_quoted(const char* text, std::size_t len) noexcept {
        add("\"");
        for (std::size_t i = 0; i < len && i < 40; ++i) {
            const auto c = static_cast<unsigned char>(text[i]);
            if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
                const char one = static_cast<char>(c);
                add(std::string_view(&one, 1));
            } else {
                add("\\");
                add_unsigned(c);
            }
        }
        add(len > 40 ? "\"..." : "\"");
    }
    [[nodiscard]] std::string_view view() const noexcept { return {text_, len_}; }

private:
    char text_[768];
    std::size_t len_ = 0;
};

/// Where a conversion is (function, parameter or result, fields and elements), for messages.
struct trail {
    static constexpr unsigned max_steps = 16;
    struct step {
        const char* field;  ///< nullptr: an array element
        std::size_t index;
    };
    const char* contract = "";
    const char* function = "";
    const char* root = "result";      ///< "parameter", "argument" or "result"
    const char* root_name = nullptr;  ///< the parameter's name
    std::size_t root_number = 0;      ///< polyplug.call: the argument's position (from 1)
    bool from_script = false;         ///< polyplug.call: messages start at the script's line
    step steps[max_steps];            ///< only the first `depth` are set: not cleared per call
    unsigned depth = 0;

    // User-provided, so that `steps` is left uninitialised: a call sets only what it uses.
    trail() noexcept {}  // NOLINT(modernize-use-equals-default)

    void enter(const char* field, std::size_t index) noexcept {
        if (depth < max_steps) steps[depth] = {field, index};
        ++depth;
    }
    void leave() noexcept { --depth; }
};

/// Where variable-size data converted from Lua goes: a guest call's results into the caller's
/// allocator; polyplug.call's arguments into Lua-owned scratch memory anchored for the call.
struct sink {
    const result_allocator* alloc = nullptr;
    int anchor = 0;  ///< polyplug.call: stack index of the table keeping strings and scratch alive
    std::size_t anchored = 0;
};

/// The value of `n` bits of memory read as T.
template <class T>
inline T load(const std::uint8_t* p) noexcept {
    T value;
    std::memcpy(&value, p, sizeof value);
    return value;
}
template <class T>
inline void store(std::uint8_t* p, const T& value) noexcept {
    std::memcpy(p, &value, sizeof value);
}

inline bool exact_double(std::uint64_t v) noexcept {
    const auto d = static_cast<double>(v);
    return d < 18446744073709551616.0 && static_cast<std::uint64_t>(d) == v;
}
inline bool exact_double(std::int64_t v) noexcept {
    const auto d = static_cast<double>(v);
    return d < 9223372036854775808.0 && static_cast<std::int64_t>(d) == v;
}

inline bool is_signed(primitive_type type) noexcept {
    return type == primitive_type::i8 || type == primitive_type::i16 ||
           type == primitive_type::i32 || type == primitive_type::i64;
}

/// "Point" out of "Array<Point>".
inline std::string_view element_name(std::string_view array_name) noexcept {
    constexpr std::string_view open = "Array<";
    if (array_name.size() > open.size() + 1 && array_name.starts_with(open))
        return array_name.substr(open.size(), array_name.size() - open.size() - 1);
    return array_name;
}

}  // namespace detail::lua_support

/// One Lua VM running one version of one script bundle (satisfies `vm_engine`). Every member
/// is called with the VM's lock held (vm_loader), from any thread.
class lua_engine {
    using trail = detail::lua_support::trail;
    using sink = detail::lua_support::sink;
    using message_text = detail::lua_support::message_text;

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
        if (!engine->start(script.script, error)) return nullptr;
        return engine;
    }

    /// Finds `contracts[decl.name]` and a function for each of the contract's functions, and
    /// keeps references to them for the calls.
    [[nodiscard]] bool bind(const contract_decl& decl, std::uint32_t& impl, std::string& error) {
        bound_contract bound;
        bound.decl = &decl;
        bound.functions.resize(decl.functions.size());
        for (std::size_t i = 0; i < decl.functions.size(); ++i) {
            bound.functions[i].validate_first = allocates(decl.functions[i].result);
            bound.functions[i].direct = direct_call(decl.functions[i]);
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
            error = chunk_ + ": " + entry + " has no function" + (missing.size() > 1 ? "s " : " ");
            for (std::size_t i = 0; i < missing.size(); ++i)
                error += (i > 0 ? ", '" : "'") + decl.functions[missing[i]].name + "'";
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

    /// Calls `fn` on the instance: the C argument struct at `args` as Lua values, the result
    /// back into `out` (variable-size parts through `alloc`). false with the script's message,
    /// or with what did not fit, naming the function, the value and the expected type.
    [[nodiscard]] bool call(std::uint32_t impl, void* instance, const function_decl& fn,
                            const void* args, void* out, const result_allocator& alloc,
                            std::string& error) {
        if (impl >= contracts_.size() || fn.id >= contracts_[impl].functions.size()) {
            error = chunk_ + ": " + fn.name + " is not bound";
            return false;
        }
        bound_contract& bound = contracts_[impl];
        if ((args == nullptr && !fn.args.fields.empty()) ||
            (out == nullptr && !fn.result.is_void())) {
            error = chunk_ + ": " + bound.decl->name + "." + fn.name +
                    ": null argument or result pointer";
            return false;
        }
        int ref = LUA_NOREF;
        if (!instance_ref(bound, instance, ref, error)) return false;
        const bound_function& function = bound.functions[fn.id];
        call_frame frame{this,
                         &function,
                         &fn,
                         ref,
                         static_cast<const std::uint8_t*>(args),
                         static_cast<std::uint8_t*>(out),
                         &alloc,
                         {}};
        frame.where.contract = bound.decl->name.c_str();
        frame.where.function = fn.name.c_str();
        const int params = static_cast<int>(fn.args.fields.size());
        if (function.direct && lua_checkstack(L_, params + 4) != 0)
            return call_direct(frame, params, error);
        lua_pushvalue(L_, slot_call);
        lua_pushlightuserdata(L_, &frame);
        if (lua_pcall(L_, 1, 0, slot_handler) != 0) {
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

    struct bound_function {
        int function_ref = LUA_NOREF;
        bool validate_first = false;  // the result allocates: check it all before writing any
        bool direct = false;          // scalars only: called without the protected call_entry frame
    };
    struct bound_contract {
        const contract_decl* decl = nullptr;
        std::vector<bound_function> functions;  // by function id
        int new_ref = LUA_NOREF;
        int metatable_ref = LUA_NOREF;
        int default_ref = LUA_NOREF;  // the instance for calls with a null instance pointer
    };
    struct call_frame {
        lua_engine* engine;
        const bound_function* function;
        const function_decl* fn;
        int instance;
        const std::uint8_t* args;
        std::uint8_t* out;
        const result_allocator* alloc;
        trail where;
    };

    explicit lua_engine(const vm_script& script)
        : api_(script.api), services_(script.services), L_(luaL_newstate()) {
        const bool named = script.bundle != nullptr && !script.bundle->file.empty();
        chunk_ = named ? script.bundle->file : script.script.filename().string();
        // Handles of this VM's instances carry this tag, so that one from another version is
        // recognised (and never read as a reference of this registry).
        std::uint64_t seed =
            static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        seed ^= reinterpret_cast<std::uintptr_t>(this);
        try {
            std::random_device device;
            seed ^= (static_cast<std::uint64_t>(device()) << 32) ^ device();
        } catch (...) {
        }
        seed ^= seed >> 29;
        seed *= 0xbf58476d1ce4e5b9ull;
        seed ^= seed >> 32;
        tag_ = static_cast<std::uint32_t>(seed) | 1u;  // never 0: handles are never null
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

    bool start(const std::filesystem::path& path, std::string& error) {
        if (L_ == nullptr) {
            error = chunk_ + ": cannot create a Lua state (out of memory)";
            return false;
        }
        std::string source;
        {
            std::ifstream in(path, std::ios::binary);
            if (!in) {
                error = chunk_ + ": cannot read the script " + path.string();
                return false;
            }
            source.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
            if (in.bad()) {
                error = chunk_ + ": cannot read the script " + path.string();
                return false;
            }
        }
        // A "#!" first line, as lua(1) skips it: commented out, so line numbers stay.
        if (!source.empty() && source[0] == '#') source.insert(0, "--");

        // C++ sizes first: the protected part must not allocate C++ memory.
        field_keys_.resize(api_->structs.size());
        for (std::size_t s = 0; s < api_->structs.size(); ++s)
            field_keys_[s].assign(api_->structs[s].layout.fields.size(), LUA_NOREF);
        enum_masks_.assign(api_->enums.size(), 0);
        for (std::size_t e = 0; e < api_->enums.size(); ++e) {
            for (const enum_variant& v : api_->enums[e].variants) enum_masks_[e] |= v.value;
        }
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

    /// The protected body of `call`: arguments in, the method, the result out.
    static int call_entry(lua_State* L) {
        auto& frame = *static_cast<call_frame*>(lua_touserdata(L, 1));
        lua_engine& self = *frame.engine;
        const function_decl& fn = *frame.fn;
        const auto& params = fn.args.fields;
        luaL_checkstack(L, static_cast<int>(params.size()) + 8, "too many parameters");
        lua_rawgeti(L, LUA_REGISTRYINDEX, frame.function->function_ref);
        lua_rawgeti(L, LUA_REGISTRYINDEX, frame.instance);
        trail& where = frame.where;
        where.root = "parameter";
        for (const field_decl& param : params) {
            where.root_name = param.name.c_str();
            self.push_value(L, where, param.type, frame.args + param.offset);
        }
        if (fn.result.is_void()) {
            lua_call(L, static_cast<int>(params.size()) + 1, 0);
            return 0;
        }
        lua_call(L, static_cast<int>(params.size()) + 1, 1);
        where.root = "result";
        where.root_name = nullptr;
        sink results;
        results.alloc = frame.alloc;
        const int top = lua_gettop(L);
        // Nothing is allocated for a result that will be refused (the caller could not free it
        // without an arena).
        if (frame.function->validate_first) self.to_c(L, where, results, fn.result, top, nullptr);
        self.to_c(L, where, results, fn.result, top, frame.out);
        return 0;
    }

    /// A parameter or result that converts without raising a Lua error (or allocating).
    [[nodiscard]] static bool plain_scalar(const plain_type& type) noexcept {
        switch (type.kind) {
            case type_kind::void_:
            case type_kind::ptr:
                return true;
            case type_kind::primitive:
            case type_kind::enum_ref:
                // 64-bit values may have no exact Lua number: those are refused with an error.
#if LUA_VERSION_NUM >= 503
                return type.primitive != primitive_type::u64;
#else
                return type.primitive != primitive_type::u64 &&
                       type.primitive != primitive_type::i64;
#endif
            default:
                return false;
        }
    }

    /// Calls whose parameters and result are all scalars skip the protected entry frame.
    [[nodiscard]] static bool direct_call(const function_decl& fn) noexcept {
        if (!plain_scalar(fn.result)) return false;
        for (const field_decl& param : fn.args.fields) {
            if (!plain_scalar(param.type)) return false;
        }
        return true;
    }

    /// The direct path: the method called straight from here (pushing these scalars cannot
    /// raise), the result stored without raising; only a result that does not fit goes through
    /// the raising conversion, for its message.
    bool call_direct(call_frame& frame, int params, std::string& error) {
        const function_decl& fn = *frame.fn;
        lua_rawgeti(L_, LUA_REGISTRYINDEX, frame.function->function_ref);
        lua_rawgeti(L_, LUA_REGISTRYINDEX, frame.instance);
        trail& where = frame.where;
        where.root = "parameter";
        for (const field_decl& param : fn.args.fields)
            push_plain(L_, where, param.type, param.type.name, frame.args + param.offset);
        const bool has_result = !fn.result.is_void();
        if (lua_pcall(L_, params + 1, has_result ? 1 : 0, slot_handler) != 0) {
            error = take_message();
            return false;
        }
        if (!has_result || scalar_to_c(L_, fn.result, -1, frame.out)) {
            lua_settop(L_, base_top);
            return true;
        }
        where.root = "result";
        const int value = lua_gettop(L_);
        auto explain = [&](lua_State* L) {
            sink none;
            to_c(L, where, none, fn.result, 1, nullptr);  // raises, saying why
            return 0;
        };
        lua_pushcfunction(L_, &protected_entry<decltype(explain)>);
        lua_pushlightuserdata(L_, &explain);
        lua_pushvalue(L_, value);
        if (lua_pcall(L_, 2, 0, slot_handler) != 0) {
            error = take_message();
            return false;
        }
        lua_settop(L_, base_top);
        error = chunk_ + ": " + fn.name + ": the result does not fit its type";
        return false;
    }

    /// Whether converting a value of this type allocates (strings, buffers, arrays inside).
    [[nodiscard]] bool allocates(const plain_type& type) const noexcept {
        switch (type.kind) {
            case type_kind::string_view:
            case type_kind::buffer:
            case type_kind::array:
                return true;
            case type_kind::struct_ref:
                for (const field_decl& f : api_->structs[type.index].layout.fields) {
                    if (allocates(f.type)) return true;
                }
                return false;
            default:
                return false;
        }
    }

    // ---- errors during a conversion ----------------------------------------------------------

    void begin_message(message_text& m, const trail& t) const noexcept {
        if (t.from_script) {
            m.add("polyplug.call('");
            m.add(t.contract);
            m.add("', '");
            m.add(t.function);
            m.add("'): ");
        } else {
            m.add(chunk_);
            m.add(": ");
            m.add(t.contract);
            m.add(".");
            m.add(t.function);
            m.add(": ");
        }
        m.add(t.root);
        if (t.root_number > 0) {
            m.add(" ");
            m.add_unsigned(t.root_number);
        }
        if (t.root_name != nullptr) {
            m.add(t.root_number > 0 ? " (" : " ");
            m.add(t.root_name);
            if (t.root_number > 0) m.add(")");
        }
        for (unsigned i = 0; i < t.depth && i < trail::max_steps; ++i) {
            if (t.steps[i].field != nullptr) {
                m.add(".");
                m.add(t.steps[i].field);
            } else {
                m.add("[");
                m.add_unsigned(t.steps[i].index + 1);  // as Lua counts
                m.add("]");
            }
        }
        m.add(": ");
    }

    [[noreturn]] static void raise(lua_State* L, const trail& t, const message_text& m) {
        lua_pushlstring(L, m.view().data(), m.view().size());
        if (t.from_script) {  // at the line of the script calling polyplug.call
            luaL_where(L, 1);
            lua_insert(L, -2);
            lua_concat(L, 2);
        }
        lua_error(L);
        __builtin_unreachable();
    }

    /// "expected u8, got 300 (out of range)".
    [[noreturn]] void refuse(lua_State* L, const trail& t, int idx, std::string_view expected,
                             const char* why) const {
        message_text m;
        begin_message(m, t);
        m.add("expected ");
        m.add(expected);
        m.add(", got ");
        switch (lua_type(L, idx)) {
            case LUA_TNIL:
                m.add("nil");
                break;
            case LUA_TBOOLEAN:
                m.add(lua_toboolean(L, idx) != 0 ? "true" : "false");
                break;
            case LUA_TNUMBER: {
                lua_pushvalue(L, idx);  // Lua's own spelling: 300, 3.5, 1e+300
                std::size_t len = 0;
                const char* text = lua_tolstring(L, -1, &len);
                m.add(std::string_view(text, len));
                break;
            }
            case LUA_TSTRING: {
                std::size_t len = 0;
                const char* text = lua_tolstring(L, idx, &len);
                m.add_quoted(text, len);
                break;
            }
            default:
                m.add("a ");
                m.add(luaL_typename(L, idx));
                break;
        }
        if (why != nullptr) {
            m.add(" (");
            m.add(why);
            m.add(")");
        }
        raise(L, t, m);
    }

    /// A C value that has no Lua value: "u64 value 18446744073709551615 ...".
    [[noreturn]] void refuse_c_value(lua_State* L, const trail& t, std::string_view type_name,
                                     std::uint64_t bits, bool negative) const {
        message_text m;
        begin_message(m, t);
        m.add(type_name);
        m.add(" value ");
        if (negative)
            m.add_signed(static_cast<std::int64_t>(bits));
        else
            m.add_unsigned(bits);
#if LUA_VERSION_NUM >= 503
        m.add(" has no exact Lua number (Lua integers are signed 64-bit; a float would round it)");
#else
        m.add(" has no exact LuaJIT number (numbers are doubles: integers beyond 2^53 round)");
#endif
        raise(L, t, m);
    }

    [[noreturn]] void refuse_text(lua_State* L, const trail& t, std::string_view text) const {
        message_text m;
        begin_message(m, t);
        m.add(text);
        raise(L, t, m);
    }

    // ---- C memory to Lua values ----------------------------------------------------------------

    void push_value(lua_State* L, trail& t, const type_ref& type, const std::uint8_t* p) const {
        if (type.kind == type_kind::array)
            push_array(L, t, type, p);
        else
            push_plain(L, t, type, type.name, p);
    }

    void push_plain(lua_State* L, trail& t, const plain_type& type, std::string_view name,
                    const std::uint8_t* p) const {
        using detail::lua_support::load;
        switch (type.kind) {
            case type_kind::primitive:
            case type_kind::enum_ref:
                push_primitive(L, t, type.primitive, name, p);
                return;
            case type_kind::string_view: {
                const auto view = load<StringView>(p);
                push_text(L, t, view.ptr, view.len);
                return;
            }
            case type_kind::buffer: {
                const auto buffer = load<Buffer>(p);
                push_text(L, t, buffer.ptr, buffer.len);
                return;
            }
            case type_kind::ptr: {
                void* const value = load<void*>(p);
                if (value == nullptr)
                    lua_pushnil(L);
                else
                    lua_pushlightuserdata(L, value);
                return;
            }
            case type_kind::struct_ref:
                push_struct(L, t, type.index, p);
                return;
            case type_kind::void_:
            case type_kind::array:  // never an element or a field's plain part
                lua_pushnil(L);
                return;
        }
    }

    void push_text(lua_State* L, const trail& t, const std::uint8_t* ptr, std::size_t len) const {
        if (len > 0 && ptr == nullptr) refuse_text(L, t, "a null pointer with a non-zero length");
        detail::lua_support::push_bytes(L, ptr, len);
    }

    void push_primitive(lua_State* L, const trail& t, primitive_type type, std::string_view name,
                        const std::uint8_t* p) const {
        using detail::lua_support::load;
        switch (type) {
            case primitive_type::u8:
                lua_pushinteger(L, static_cast<lua_Integer>(load<std::uint8_t>(p)));
                return;
            case primitive_type::u16:
                lua_pushinteger(L, static_cast<lua_Integer>(load<std::uint16_t>(p)));
                return;
            case primitive_type::u32:
                lua_pushinteger(L, static_cast<lua_Integer>(load<std::uint32_t>(p)));
                return;
            case primitive_type::i8:
                lua_pushinteger(L, static_cast<lua_Integer>(load<std::int8_t>(p)));
                return;
            case primitive_type::i16:
                lua_pushinteger(L, static_cast<lua_Integer>(load<std::int16_t>(p)));
                return;
            case primitive_type::i32:
                lua_pushinteger(L, static_cast<lua_Integer>(load<std::int32_t>(p)));
                return;
            case primitive_type::u64: {
                const auto v = load<std::uint64_t>(p);
#if LUA_VERSION_NUM >= 503
                if (v <= static_cast<std::uint64_t>(INT64_MAX)) {
                    lua_pushinteger(L, static_cast<lua_Integer>(v));
                    return;
                }
#endif
                if (!detail::lua_support::exact_double(v)) refuse_c_value(L, t, name, v, false);
                lua_pushnumber(L, static_cast<lua_Number>(v));
                return;
            }
            case primitive_type::i64: {
                const auto v = load<std::int64_t>(p);
#if LUA_VERSION_NUM >= 503
                lua_pushinteger(L, static_cast<lua_Integer>(v));
#else
                if (!detail::lua_support::exact_double(v))
                    refuse_c_value(L, t, name, static_cast<std::uint64_t>(v), v < 0);
                lua_pushnumber(L, static_cast<lua_Number>(v));
#endif
                return;
            }
            case primitive_type::f32:
                lua_pushnumber(L, static_cast<lua_Number>(load<float>(p)));
                return;
            case primitive_type::f64:
                lua_pushnumber(L, static_cast<lua_Number>(load<double>(p)));
                return;
            case primitive_type::bool_:
                lua_pushboolean(L, load<std::uint8_t>(p) != 0 ? 1 : 0);
                return;
        }
    }

    void push_struct(lua_State* L, trail& t, std::uint32_t index, const std::uint8_t* p) const {
        const record_layout& layout = api_->structs[index].layout;
        const std::vector<int>& keys = field_keys_[index];
        luaL_checkstack(L, 4, "structs nested too deeply");
        lua_createtable(L, 0, static_cast<int>(layout.fields.size()));
        for (std::size_t i = 0; i < layout.fields.size(); ++i) {
            const field_decl& field = layout.fields[i];
            lua_rawgeti(L, LUA_REGISTRYINDEX, keys[i]);
            t.enter(field.name.c_str(), 0);
            push_value(L, t, field.type, p + field.offset);
            t.leave();
            lua_rawset(L, -3);
        }
    }

    void push_array(lua_State* L, trail& t, const type_ref& type, const std::uint8_t* p) const {
        const auto array = detail::lua_support::load<detail::api_toml::array_of>(p);
        if (array.len > 0 && array.items == nullptr)
            refuse_text(L, t, "an array with a null items pointer and a non-zero length");
        if (array.len > static_cast<std::size_t>(INT_MAX))
            refuse_text(L, t, "an array too long for a Lua table");
        const auto* items = static_cast<const std::uint8_t*>(array.items);
        const std::string_view element = detail::lua_support::element_name(type.name);
        luaL_checkstack(L, 4, "arrays nested too deeply");
        lua_createtable(L, static_cast<int>(array.len), 0);
        for (std::size_t i = 0; i < array.len; ++i) {
            t.enter(nullptr, i);
            push_plain(L, t, type.element, element, items + i * type.element.size);
            t.leave();
            detail::lua_support::raw_set_index(L, -2, i + 1);
        }
    }

    // ---- Lua values to C memory (dst nullptr: check only) ---------------------------------------

    void to_c(lua_State* L, trail& t, sink& s, const type_ref& type, int idx,
              std::uint8_t* dst) const {
        if (type.kind == type_kind::array)
            array_to_c(L, t, s, type, idx, dst);
        else
            plain_to_c(L, t, s, type, type.name, idx, dst);
    }

    void plain_to_c(lua_State* L, trail& t, sink& s, const plain_type& type, std::string_view name,
                    int idx, std::uint8_t* dst) const {
        using detail::lua_support::store;
        switch (type.kind) {
            case type_kind::primitive:
                primitive_to_c(L, t, type.primitive, name, idx, dst);
                return;
            case type_kind::enum_ref: {
                const std::uint64_t v = read_integer(L, t, type.primitive, name, idx);
                if (const misfit why = enum_misfit(type.index, v)) refuse(L, t, idx, name, why);
                if (dst != nullptr) store_integer(dst, primitive_size(type.primitive), v);
                return;
            }
            case type_kind::string_view:
            case type_kind::buffer: {
                if (lua_type(L, idx) != LUA_TSTRING) {
                    const bool view = type.kind == type_kind::string_view;
                    refuse(L, t, idx, view ? "StringView (a string)" : "Buffer (a string)",
                           nullptr);
                }
                if (dst == nullptr) return;
                std::size_t len = 0;
                const char* text = lua_tolstring(L, idx, &len);
                if (type.kind == type_kind::string_view) {
                    const StringView view{copy_bytes(L, t, s, idx, text, len, false), len};
                    store(dst, view);
                } else {  // the callee owns a Buffer's bytes: always a copy
                    const Buffer buffer{copy_bytes(L, t, s, idx, text, len, true), len, len};
                    store(dst, buffer);
                }
                return;
            }
            case type_kind::ptr: {
                void* value = nullptr;
                const int lua_t = lua_type(L, idx);
                if (lua_t == LUA_TLIGHTUSERDATA)
                    value = lua_touserdata(L, idx);
                else if (lua_t != LUA_TNIL)
                    refuse(L, t, idx, "Ptr (light userdata or nil)", nullptr);
                if (dst != nullptr) store(dst, value);
                return;
            }
            case type_kind::struct_ref:
                struct_to_c(L, t, s, type.index, name, idx, dst);
                return;
            case type_kind::void_:
            case type_kind::array:
                refuse_text(L, t, "a type the Lua loader cannot convert");
        }
    }

    /// An integer of `type` (u8 ... i64, or an enum's repr) as its 64-bit two's complement.
    /// Why a value does not fit a type (nullptr: it fits; "": a wrong type).
    using misfit = const char*;

    /// An integer of `type` (u8 ... i64, or an enum's repr) as its 64-bit two's complement.
    static misfit integer_of(lua_State* L, primitive_type type, int idx,
                             std::uint64_t& out) noexcept {
        if (lua_type(L, idx) != LUA_TNUMBER) return "";
        const unsigned bits = primitive_size(type) * 8;
        const bool is_signed = detail::lua_support::is_signed(type);
#if LUA_VERSION_NUM >= 503
        if (lua_isinteger(L, idx) != 0) {
            const lua_Integer v = lua_tointeger(L, idx);
            if (is_signed) {
                if (bits < 64) {
                    const lua_Integer limit = lua_Integer{1} << (bits - 1);
                    if (v < -limit || v >= limit) return "out of range";
                }
            } else if (v < 0 || (bits < 64 && (static_cast<std::uint64_t>(v) >> bits) != 0)) {
                return "out of range";
            }
            out = static_cast<std::uint64_t>(v);
            return nullptr;
        }
#endif
        // A float in Lua 5.4; every number in LuaJIT. Integral values only, in range.
        const auto d = static_cast<double>(lua_tonumber(L, idx));
        if (!(d == std::floor(d)) || std::isinf(d)) return "not an integer";
        const double limit = std::ldexp(1.0, static_cast<int>(is_signed ? bits - 1 : bits));
        if (is_signed ? (d < -limit || d >= limit) : (d < 0 || d >= limit)) return "out of range";
        out = is_signed ? static_cast<std::uint64_t>(static_cast<std::int64_t>(d))
                        : static_cast<std::uint64_t>(d);
        return nullptr;
    }

    /// A value of an enum: one of its variants, or (bit flags) a combination of them.
    [[nodiscard]] misfit enum_misfit(std::uint32_t index, std::uint64_t v) const noexcept {
        const enum_decl& e = api_->enums[index];
        if (e.bitflag)
            return (v & ~enum_masks_[index]) != 0 ? "not a combination of its flags" : nullptr;
        for (const enum_variant& variant : e.variants) {
            if (variant.value == v) return nullptr;
        }
        return "not one of its values";
    }

    std::uint64_t read_integer(lua_State* L, const trail& t, primitive_type type,
                               std::string_view name, int idx) const {
        std::uint64_t v = 0;
        if (const misfit why = integer_of(L, type, idx, v))
            refuse(L, t, idx, name, *why != 0 ? why : nullptr);
        return v;
    }

    /// A scalar result (primitive, enum, Ptr) stored without raising anything: false when it
    /// does not fit, and the raising conversion then says why.
    bool scalar_to_c(lua_State* L, const plain_type& type, int idx,
                     std::uint8_t* dst) const noexcept {
        using detail::lua_support::store;
        std::uint64_t v = 0;
        switch (type.kind) {
            case type_kind::ptr: {
                const int lua_t = lua_type(L, idx);
                if (lua_t != LUA_TLIGHTUSERDATA && lua_t != LUA_TNIL) return false;
                store(dst, lua_t == LUA_TNIL ? nullptr : lua_touserdata(L, idx));
                return true;
            }
            case type_kind::enum_ref:
                if (integer_of(L, type.primitive, idx, v) != nullptr ||
                    enum_misfit(type.index, v) != nullptr)
                    return false;
                store_integer(dst, primitive_size(type.primitive), v);
                return true;
            case type_kind::primitive:
                break;
            default:
                return false;
        }
        switch (type.primitive) {
            case primitive_type::bool_:
                if (lua_type(L, idx) != LUA_TBOOLEAN) return false;
                store(dst, static_cast<std::uint8_t>(lua_toboolean(L, idx) != 0 ? 1 : 0));
                return true;
            case primitive_type::f32:
            case primitive_type::f64: {
                if (lua_type(L, idx) != LUA_TNUMBER) return false;
                const auto d = static_cast<double>(lua_tonumber(L, idx));
                if (type.primitive == primitive_type::f64) {
                    store(dst, d);
                    return true;
                }
                if (std::isfinite(d) && std::fabs(d) > static_cast<double>(FLT_MAX)) return false;
                store(dst, static_cast<float>(d));
                return true;
            }
            default:
                if (integer_of(L, type.primitive, idx, v) != nullptr) return false;
                store_integer(dst, primitive_size(type.primitive), v);
                return true;
        }
    }

    static void store_integer(std::uint8_t* dst, std::uint32_t size, std::uint64_t v) noexcept {
        using detail::lua_support::store;
        switch (size) {
            case 1:
                store(dst, static_cast<std::uint8_t>(v));
                return;
            case 2:
                store(dst, static_cast<std::uint16_t>(v));
                return;
            case 4:
                store(dst, static_cast<std::uint32_t>(v));
                return;
            default:
                store(dst, v);
                return;
        }
    }

    void primitive_to_c(lua_State* L, const trail& t, primitive_type type, std::string_view name,
                        int idx, std::uint8_t* dst) const {
        using detail::lua_support::store;
        switch (type) {
            case primitive_type::bool_:
                if (lua_type(L, idx) != LUA_TBOOLEAN)
                    refuse(L, t, idx, "bool (a boolean)", nullptr);
                if (dst != nullptr)
                    store(dst, static_cast<std::uint8_t>(lua_toboolean(L, idx) != 0 ? 1 : 0));
                return;
            case primitive_type::f32:
            case primitive_type::f64: {
                if (lua_type(L, idx) != LUA_TNUMBER) refuse(L, t, idx, name, nullptr);
                const auto d = static_cast<double>(lua_tonumber(L, idx));
                if (type == primitive_type::f64) {
                    if (dst != nullptr) store(dst, d);
                    return;
                }
                if (std::isfinite(d) && std::fabs(d) > static_cast<double>(FLT_MAX))
                    refuse(L, t, idx, name, "out of range");
                if (dst != nullptr) store(dst, static_cast<float>(d));
                return;
            }
            default: {
                const std::uint64_t v = read_integer(L, t, type, name, idx);
                if (dst != nullptr) store_integer(dst, primitive_size(type), v);
                return;
            }
        }
    }

    void struct_to_c(lua_State* L, trail& t, sink& s, std::uint32_t index, std::string_view name,
                     int idx, std::uint8_t* dst) const {
        if (lua_type(L, idx) != LUA_TTABLE) {
            message_text expected;
            expected.add(name);
            expected.add(" (a table)");
            refuse(L, t, idx, expected.view(), nullptr);
        }
        const record_layout& layout = api_->structs[index].layout;
        const std::vector<int>& keys = field_keys_[index];
        luaL_checkstack(L, 4, "structs nested too deeply");
        for (std::size_t i = 0; i < layout.fields.size(); ++i) {
            const field_decl& field = layout.fields[i];
            lua_rawgeti(L, LUA_REGISTRYINDEX, keys[i]);
            lua_gettable(L, idx);  // __index too: a field may come from a class
            t.enter(field.name.c_str(), 0);
            const int value = lua_gettop(L);
            if (lua_type(L, value) == LUA_TNIL && field.type.kind != type_kind::ptr)
                refuse(L, t, value, field.type.name, "missing field");
            to_c(L, t, s, field.type, value, dst != nullptr ? dst + field.offset : nullptr);
            t.leave();
            lua_settop(L, value - 1);
        }
    }

    void array_to_c(lua_State* L, trail& t, sink& s, const type_ref& type, int idx,
                    std::uint8_t* dst) const {
        if (lua_type(L, idx) != LUA_TTABLE) {
            message_text expected;
            expected.add(type.name);
            expected.add(" (a sequence table)");
            refuse(L, t, idx, expected.view(), nullptr);
        }
        const std::size_t len = detail::lua_support::raw_length(L, idx);
        const std::size_t size = type.element.size;
        std::uint8_t* items = nullptr;
        if (dst != nullptr && len > 0) {
            if (len > SIZE_MAX / size) refuse_text(L, t, "an array too large for memory");
            items = allocate(L, t, s, len * size, type.element.align);
        }
        const std::string_view element = detail::lua_support::element_name(type.name);
        luaL_checkstack(L, 4, "arrays nested too deeply");
        for (std::size_t i = 0; i < len; ++i) {
            detail::lua_support::raw_get_index(L, idx, i + 1);
            t.enter(nullptr, i);
            const int value = lua_gettop(L);
            plain_to_c(L, t, s, type.element, element, value,
                       items != nullptr ? items + i * size : nullptr);
            t.leave();
            lua_settop(L, value - 1);
        }
        if (dst != nullptr) {
            const detail::api_toml::array_of array{items, items != nullptr ? len : 0};
            detail::lua_support::store(dst, array);
        }
    }

    /// `size` bytes for a result (the caller's allocator) or a polyplug.call argument (Lua
    /// memory, kept alive by the call's anchor table).
    std::uint8_t* allocate(lua_State* L, const trail& t, sink& s, std::size_t size,
                           std::size_t align) const {
        if (s.alloc != nullptr) {
            auto* p = static_cast<std::uint8_t*>(s.alloc->allocate(size, align));
            if (p == nullptr) refuse_text(L, t, "out of memory for the result");
            return p;
        }
        void* block = detail::lua_support::new_userdata(L, size + align);
        detail::lua_support::raw_set_index(L, s.anchor, ++s.anchored);
        const auto start = (reinterpret_cast<std::uintptr_t>(block) + (align - 1)) &
                           ~static_cast<std::uintptr_t>(align - 1);
        return reinterpret_cast<std::uint8_t*>(start);
    }

    /// A string's bytes where C can keep them for the call: copied into the result, or (for
    /// polyplug.call) the Lua string itself, anchored; `writable` forces a copy. The Lua string
    /// is only ever handed out as a StringView, which C does not write through.
    std::uint8_t* copy_bytes(lua_State* L, const trail& t, sink& s, int idx, const char* text,
                             std::size_t len, bool writable) const {
        if (len == 0) return nullptr;
        if (s.alloc == nullptr && !writable) {
            lua_pushvalue(L, idx);
            detail::lua_support::raw_set_index(L, s.anchor, ++s.anchored);
            return reinterpret_cast<std::uint8_t*>(const_cast<char*>(text));
        }
        std::uint8_t* p = allocate(L, t, s, len, 1);
        std::memcpy(p, text, len);
        return p;
    }

    // ---- the polyplug module ------------------------------------------------------------------

    /// polyplug.log(level, message)
    static int lua_log(lua_State* L) {
        auto& self = *static_cast<lua_engine*>(lua_touserdata(L, lua_upvalueindex(1)));
        const lua_Integer level = luaL_checkinteger(L, 1);
        std::size_t len = 0;
        const char* text = luaL_checklstring(L, 2, &len);
        const bool known = level >= LogLevel_Error && level <= LogLevel_Trace;
        self.log(
            known ? static_cast<std::uint32_t>(level) : static_cast<std::uint32_t>(LogLevel_Info),
            {text, len});
        return 0;
    }

    /// The contract and function polyplug.call names; false with scratch_ set.
    bool find_target(std::string_view contract, std::string_view function,
                     const contract_decl*& decl, const function_decl*& fn) noexcept {
        try {
            std::string error;
            decl = services_->find_contract(contract, error);
            if (decl == nullptr) {
                scratch_ = "polyplug.call: " + error;
                return false;
            }
            fn = decl->find_function(function);
            if (fn == nullptr) {
                scratch_ = "polyplug.call: contract '" + decl->name + "' has no function '" +
                           std::string(function) + "'";
                return false;
            }
            return true;
        } catch (...) {
            scratch_.clear();  // no memory for a message: the Lua error says so
            return false;
        }
    }

    AbiError invoke(const contract_decl& decl, const function_decl& fn, const void* args, void* out,
                    CallArena* arena) noexcept {
        try {
            return services_->call(decl, fn, args, out, arena);
        } catch (...) {
            return polyplug_call_error(AbiErrorCode_Generic, "out of memory in polyplug.call");
        }
    }

    struct result_push {
        const lua_engine* engine;
        trail* where;
        const type_ref* type;
        const std::uint8_t* out;
    };

    static int push_result_entry(lua_State* L) {
        auto& r = *static_cast<result_push*>(lua_touserdata(L, 1));
        r.engine->push_value(L, *r.where, *r.type, r.out);
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
        const contract_decl* decl = nullptr;
        const function_decl* fn = nullptr;
        if (!self.find_target({contract, contract_len}, {function, function_len}, decl, fn)) {
            if (self.scratch_.empty()) return luaL_error(L, "polyplug.call: out of memory");
            luaL_where(L, 1);
            lua_pushlstring(L, self.scratch_.data(), self.scratch_.size());
            lua_concat(L, 2);
            return lua_error(L);
        }
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

        // Argument and result structs: on the C stack when small, else Lua memory.
        alignas(16) std::uint8_t local_args[256];
        alignas(16) std::uint8_t local_out[256];
        std::uint8_t* args = local_args;
        std::uint8_t* out = local_out;
        trail where;
        where.contract = decl->name.c_str();
        where.function = fn->name.c_str();
        where.from_script = true;
        if (fn->args.size > sizeof local_args)
            args = self.allocate(L, where, scratch, fn->args.size, fn->args.align);
        if (fn->result.size > sizeof local_out)
            out = self.allocate(L, where, scratch, fn->result.size, fn->result.align);
        std::memset(args, 0, fn->args.size);
        std::memset(out, 0, fn->result.size);
        where.root = "argument";
        for (std::size_t i = 0; i < params.size(); ++i) {
            where.root_number = i + 1;
            where.root_name = params[i].name.c_str();
            self.to_c(L, where, scratch, params[i].type, static_cast<int>(i) + 3,
                      args + params[i].offset);
        }

        CallArena arena;
        alignas(16) std::uint8_t arena_storage[1024];
        polyplug_arena_init(&arena, arena_storage, sizeof arena_storage, self.services_->host());
        const AbiError err = self.invoke(*decl, *fn, fn->args.fields.empty() ? nullptr : args,
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
        where.root = "result";
        where.root_number = 0;
        where.root_name = nullptr;
        result_push push{&self, &where, &fn->result, out};
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
    bool ready_ = false;                        // the base stack slots are in place
    std::vector<std::vector<int>> field_keys_;  // registry refs of each struct's field names
    std::vector<std::uint64_t> enum_masks_;     // every flag of each enum, for bitflag results
    std::vector<bound_contract> contracts_;     // by impl index
    std::unordered_map<std::uintptr_t, int> foreign_;  // instances of earlier versions
    std::string scratch_;                              // a message on its way into a Lua error
};

/// The Lua bundle loader: `loader = "lua"` in manifest.toml.
using lua_loader = vm_loader<lua_engine>;

POLYPLUG_END_NAMESPACE
