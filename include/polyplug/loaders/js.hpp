// SPDX-License-Identifier: MIT
/// @file loaders/js.hpp
/// The JavaScript script loader: `js_engine` runs one version of one script bundle in its own
/// Duktape 2.7 heap (ECMAScript 5.1 plus typed arrays), and `js_loader` is the bundle loader
/// for manifests with `loader = "js"` (docs/VM_BUNDLES.md).
///
/// @code
/// polyplug::basic_runtime<polyplug::native_loader, polyplug::js_loader> rt;
/// rt.load_bundle("plugins/calc-js");  // manifest.toml, calc.api.toml, calc.js
/// @endcode
///
/// Values: integers and floats are numbers (64-bit integers beyond ±2^53 are refused, never
/// rounded), `StringView` is a string (UTF-8 outside, the script's own strings inside),
/// `Buffer` a Uint8Array (ArrayBuffer and plain buffers are also taken as results), `Ptr` a
/// pointer or null, enums numbers (a result must be one of the enum's values, or a combination
/// of its flags), structs objects and arrays arrays.
///
/// Implementations: `contracts[name]` is a constructor function whose prototype has the
/// contract's functions (`new Impl()` per instance) or an object that has them
/// (`Object.create(Impl)` per instance). An instance's methods are taken once, when it is
/// created. State hand-over: `save_state()` returns a string or bytes; `restore_state(schema,
/// data)` gets a string when the saved bytes are UTF-8, else a Uint8Array.
#pragma once

#include <polyplug/loaders/vm.hpp>
#include <polyplug/loaders/vm/instance_table.hpp>
#include <polyplug/loaders/vm/messages.hpp>
#include <polyplug/loaders/vm/plan.hpp>
#include <polyplug/loaders/vm/script_call.hpp>

#include <duktape.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE

namespace detail::js {

// Duktape keeps strings as bytes in CESU-8: script literals and String.fromCharCode give a
// character above U+FFFF as a surrogate pair of 3-byte sequences, where a host's UTF-8 has one
// 4-byte sequence. Converting at the boundary makes a host string equal to the same literal in
// the script (same .length, same ===) and gives the host valid UTF-8 back. Bytes that are not
// UTF-8 become U+FFFD going in (a string starting with 0x80-0x82 or 0xFF would otherwise be a
// Symbol inside Duktape); lone surrogates the script makes become U+FFFD coming out. Embedded
// NULs pass both ways.

/// The size of host text `s` as Duktape text: 4-byte sequences as surrogate pairs (6 bytes),
/// each byte of an invalid sequence as U+FFFD (3 bytes). Equal to `n` only when nothing changes.
inline std::size_t cesu8_size(const unsigned char* s, std::size_t n) noexcept {
    std::size_t size = n;
    for (std::size_t i = 0; i < n;) {
        if (s[i] < 0x80) {
            ++i;
            continue;
        }
        const std::size_t len = utf8_sequence_length(s, n, i);
        if (len == 0 || len == 4) size += 2;
        i += len == 0 ? 1 : len;
    }
    return size;
}

inline unsigned char* put3(unsigned char* out, std::uint32_t unit) noexcept {
    out[0] = static_cast<unsigned char>(0xE0 | (unit >> 12));
    out[1] = static_cast<unsigned char>(0x80 | ((unit >> 6) & 0x3F));
    out[2] = static_cast<unsigned char>(0x80 | (unit & 0x3F));
    return out + 3;
}

/// Writes host text `s` as Duktape text; `out` has cesu8_size(s, n) bytes.
inline void to_cesu8(const unsigned char* s, std::size_t n, unsigned char* out) noexcept {
    for (std::size_t i = 0; i < n;) {
        const std::size_t len = s[i] < 0x80 ? 1 : utf8_sequence_length(s, n, i);
        if (len == 0) {
            out = put3(out, 0xFFFD);
            ++i;
        } else if (len == 4) {
            const std::uint32_t cp = ((s[i] & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) |
                                     ((s[i + 2] & 0x3Fu) << 6) | (s[i + 3] & 0x3Fu);
            const std::uint32_t v = cp - 0x10000;
            out = put3(out, 0xD800 + (v >> 10));
            out = put3(out, 0xDC00 + (v & 0x3FF));
            i += 4;
        } else {
            std::memcpy(out, s + i, len);
            out += len;
            i += len;
        }
    }
}

/// True when a 3-byte encoded surrogate (U+D800..U+DFFF) starts at `s[i]`.
inline bool surrogate_at(const unsigned char* s, std::size_t n, std::size_t i) noexcept {
    return s[i] == 0xED && n - i >= 3 && s[i + 1] >= 0xA0 && s[i + 1] <= 0xBF &&
           (s[i + 2] & 0xC0) == 0x80;
}

/// True when a high and a low surrogate, both 3-byte encoded, start at `s[i]`.
inline bool pair_at(const unsigned char* s, std::size_t n, std::size_t i) noexcept {
    return surrogate_at(s, n, i) && s[i + 1] <= 0xAF && n - i >= 6 && surrogate_at(s, n, i + 3) &&
           s[i + 4] >= 0xB0;
}

/// The size of Duktape text `s` as UTF-8: every surrogate pair one 4-byte sequence.
inline std::size_t utf8_size(const unsigned char* s, std::size_t n) noexcept {
    std::size_t size = n;
    for (std::size_t i = 0; i < n;) {
        if (s[i] != 0xED) {
            ++i;
        } else if (pair_at(s, n, i)) {
            size -= 2;
            i += 6;
        } else {
            i += surrogate_at(s, n, i) ? 3 : 1;
        }
    }
    return size;
}

/// Writes Duktape text `s` as UTF-8; `out` has utf8_size(s, n) bytes.
inline void to_utf8(const unsigned char* s, std::size_t n, unsigned char* out) noexcept {
    for (std::size_t i = 0; i < n;) {
        if (s[i] != 0xED || !surrogate_at(s, n, i)) {
            *out++ = s[i++];
        } else if (pair_at(s, n, i)) {
            const std::uint32_t hi = ((s[i + 1] & 0x0Fu) << 6) | (s[i + 2] & 0x3Fu);
            const std::uint32_t lo = ((s[i + 4] & 0x0Fu) << 6) | (s[i + 5] & 0x3Fu);
            const std::uint32_t cp = 0x10000 + (hi << 10) + lo;
            out[0] = static_cast<unsigned char>(0xF0 | (cp >> 18));
            out[1] = static_cast<unsigned char>(0x80 | ((cp >> 12) & 0x3F));
            out[2] = static_cast<unsigned char>(0x80 | ((cp >> 6) & 0x3F));
            out[3] = static_cast<unsigned char>(0x80 | (cp & 0x3F));
            out += 4;
            i += 6;
        } else {
            out = put3(out, 0xFFFD);  // a lone surrogate
            i += 3;
        }
    }
}

/// Appends a Duktape string to `out` as UTF-8.
inline void append_utf8(std::string& out, const char* text, std::size_t n) {
    if (text == nullptr || n == 0) return;
    const auto* s = reinterpret_cast<const unsigned char*>(text);
    const std::size_t at = out.size();
    out.resize(at + utf8_size(s, n));
    to_utf8(s, n, reinterpret_cast<unsigned char*>(out.data() + at));
}

/// 2^53: the largest magnitude up to which every integer is a JavaScript number.
inline constexpr double max_exact = 9007199254740992.0;

/// "u8 (an integer from 0 to 255)" and friends: what a result of `type` must be.
inline std::string expected_primitive(primitive_type type) {
    const std::string name(primitive_name(type));
    switch (type) {
        case primitive_type::f32:
            return name + " (a number within ±3.4028234663852886e+38)";
        case primitive_type::f64:
            return name + " (a number)";
        case primitive_type::bool_:
            return name + " (a boolean)";
        case primitive_type::u64:
            return name + " (an integer from 0 to 2^53, the exact range of a JavaScript number)";
        case primitive_type::i64:
            return name +
                   " (an integer from -2^53 to 2^53, the exact range of a JavaScript number)";
        default: {  // up to 32 bits: every value is a JavaScript number
            std::string text = name + " (an integer from ";
            vm::append_integer_range(text, type);
            return text + ")";
        }
    }
}

}  // namespace detail::js

/// One Duktape heap running one version of one script bundle (a `vm_engine`, see vm.hpp).
///
/// Every entry into the heap is a protected call (duk_safe_call; duk_pcall_method for calls of
/// numbers, booleans and pointers only, whose values cannot fail to push), so a script error
/// never reaches Duktape's fatal path; the frames a Duktape error may unwind (it uses longjmp)
/// hold only trivially destructible objects, and every message is composed outside them. Instances,
/// implementations, interned names and method functions are kept alive in the heap stash under
/// integer keys and used through heap pointers, so a call looks nothing up by name.
class js_engine {
public:
    static constexpr std::string_view loader_name = "js";
    static constexpr std::uint32_t language = SupportedLanguage_JavaScript;

    js_engine(const js_engine&) = delete;
    js_engine& operator=(const js_engine&) = delete;
    ~js_engine() {
        if (ctx_ != nullptr) duk_destroy_heap(ctx_);  // every instance and value with it
    }

    /// A fresh heap with the `polyplug` global, after running the script; nullptr with the
    /// script's error ("SyntaxError: ... (calc.js:3)") when it does not load.
    [[nodiscard]] static std::unique_ptr<js_engine> open(const vm_script& script,
                                                         std::string& error) {
        std::unique_ptr<js_engine> engine(new js_engine(script));
        std::string source;
        if (!script.read(source)) {
            error = engine->file_ + ": cannot read the script " + script.script.string();
            return nullptr;
        }
        engine->ctx_ = duk_create_heap(nullptr, nullptr, nullptr, engine.get(), &fatal);
        if (engine->ctx_ == nullptr) {
            error = engine->file_ + ": cannot create a Duktape heap (out of memory)";
            return nullptr;
        }
        if (!engine->install(error) || !engine->run(source, error)) return nullptr;
        return engine;
    }

    /// Finds `contracts[decl.name]` and checks it has every function of the contract.
    [[nodiscard]] bool bind(const contract_decl& decl, std::uint32_t& impl, std::string& error) {
        impl_record record;
        record.decl = &decl;
        record.names.resize(decl.functions.size());
        record.plan = vm::compile(*api_, decl);  // once per version: calls only run it
        std::vector<std::size_t> lacking;        // reserved: no C++ allocation inside the safe call
        lacking.reserve(decl.functions.size());
        enum class found { ok, absent, wrong_type, missing } outcome = found::ok;
        duk_int_t type = DUK_TYPE_NONE;
        auto body = [&](duk_context* ctx) -> duk_ret_t {
            duk_require_stack(ctx, 8);
            duk_push_heapptr(ctx, contracts_);
            duk_push_lstring(ctx, decl.name.data(), decl.name.size());
            if (!duk_get_prop(ctx, -2)) {
                outcome = found::absent;
                return 0;
            }
            const duk_idx_t object = duk_get_top_index(ctx);
            type = duk_get_type(ctx, object);
            record.constructor = duk_is_function(ctx, object) != 0;
            if (record.constructor) {
                duk_get_prop_string(ctx, object, "prototype");
            } else if (duk_is_object(ctx, object) && !duk_is_array(ctx, object)) {
                duk_dup(ctx, object);
            } else {
                outcome = found::wrong_type;
                return 0;
            }
            const duk_idx_t methods = duk_get_top_index(ctx);
            record.object = duk_get_heapptr(ctx, object);
            keep(ctx, object);
            for (std::size_t i = 0; i < decl.functions.size(); ++i) {
                const std::string& name = decl.functions[i].name;
                duk_push_lstring(ctx, name.data(), name.size());
                record.names[i] = duk_get_heapptr(ctx, -1);
                keep(ctx, duk_get_top_index(ctx));
                const bool callable = duk_is_object(ctx, methods) != 0 &&
                                      duk_get_prop_heapptr(ctx, methods, record.names[i]) &&
                                      duk_is_callable(ctx, -1);
                if (!callable) {
                    lacking.push_back(i);
                    outcome = found::missing;
                }
                duk_set_top(ctx, methods + 1);
            }
            return 0;
        };
        if (!protect(body, error)) return false;
        const std::string where = file_ + ": contracts['" + decl.name + "']";
        switch (outcome) {
            case found::ok:
                break;
            case found::absent:
                error = file_ + ": contracts has no entry '" + decl.name +
                        "' (the script's global 'contracts' maps each provided contract's name "
                        "to its implementation)";
                return false;
            case found::wrong_type:
                error = where + " is " + std::string(type_name(type)) +
                        ", not a constructor function or an object";
                return false;
            case found::missing:
                error = where + " " + vm::lacking_functions(decl, lacking) +
                        (record.constructor ? " (on its prototype)" : "");
                return false;
        }
        impl = static_cast<std::uint32_t>(impls_.size());
        impls_.push_back(std::move(record));
        return true;
    }

    /// `new Impl()` for a constructor function, else `Object.create(Impl)`; the object's
    /// methods are taken once, here.
    [[nodiscard]] void* create_instance(std::uint32_t impl, std::string& error) {
        if (impl >= impls_.size()) {
            error = file_ + ": no implementation " + std::to_string(impl);
            return nullptr;
        }
        const impl_record& record = impls_[impl];
        auto instance = std::make_unique<instance_record>();
        instance->impl = impl;
        instance->slot = next_slot_++;
        instance->methods.resize(record.names.size());
        std::size_t missing = record.names.size();
        bool not_object = false;
        auto body = [&](duk_context* ctx) -> duk_ret_t {
            duk_require_stack(ctx, 8);
            const duk_idx_t stash = duk_push_heapptr(ctx, stash_);
            const duk_idx_t holder = duk_push_array(ctx);
            duk_push_heapptr(ctx, record.object);
            if (record.constructor) {
                duk_new(ctx, 0);
            } else {
                duk_push_object(ctx);
                duk_swap_top(ctx, -2);
                duk_set_prototype(ctx, -2);
            }
            const duk_idx_t object = duk_get_top_index(ctx);
            if (!duk_is_object(ctx, object)) {
                not_object = true;
                return 0;
            }
            instance->object = duk_get_heapptr(ctx, object);
            duk_dup(ctx, object);
            duk_put_prop_index(ctx, holder, 0);
            for (std::size_t i = 0; i < record.names.size(); ++i) {
                if (!duk_get_prop_heapptr(ctx, object, record.names[i]) ||
                    !duk_is_callable(ctx, -1)) {
                    missing = i;
                    return 0;
                }
                instance->methods[i] = duk_get_heapptr(ctx, -1);
                duk_put_prop_index(ctx, holder, static_cast<duk_uarridx_t>(i + 1));
            }
            duk_dup(ctx, holder);
            duk_put_prop_index(ctx, stash, instance->slot);
            return 0;
        };
        if (!protect(body, error)) return nullptr;
        if (not_object) {
            error = file_ + ": new contracts['" + record.decl->name + "']() gave no object";
            return nullptr;
        }
        if (missing < record.names.size()) {
            error = file_ + ": the instance of contracts['" + record.decl->name +
                    "'] has no function '" + record.decl->functions[missing].name + "'";
            return nullptr;
        }
        return instances_.add(std::move(instance));
    }

    void destroy_instance(std::uint32_t, void* instance) noexcept {
        const instance_record* record = instances_.find(instance);
        if (record == nullptr) return;  // not one of this heap's (another version's?)
        const std::uint32_t slot = record->slot;
        auto body = [&](duk_context* ctx) -> duk_ret_t {
            duk_push_heapptr(ctx, stash_);
            duk_del_prop_index(ctx, -1, slot);
            return 0;
        };
        (void)duk_safe_call(ctx_, &trampoline<decltype(body)>, &body, 0, 1);
        duk_pop(ctx_);
        instances_.erase(instance);
    }

    /// Calls `fn` on `instance` by its plan: the parameters from the C struct at `args` into
    /// values, the method's result back into C memory at `out`.
    [[nodiscard]] bool call(std::uint32_t impl, void* instance, const function_decl& fn,
                            const void* args, void* out, const result_allocator& alloc,
                            std::string& error) {
        // Looked up rather than trusted: an instance of a version that a reload replaced must
        // fail the call, not reach freed memory.
        const instance_record* target = instances_.find(instance);
        if (target == nullptr || target->impl != impl || fn.id >= target->methods.size())
            [[unlikely]] {
            error = file_ + ": " + fn.name +
                    " called on an instance this version of the bundle did not create";
            return false;
        }
        const impl_record& record = impls_[impl];
        const vm::function_plan& f = record.plan.functions[fn.id];
        if ((args == nullptr && fn.args.size != 0) || (out == nullptr && f.has_result))
            [[unlikely]] {
            error = file_ + ": " + fn.name + " called with a null " +
                    (args == nullptr && fn.args.size != 0 ? "argument struct" : "result pointer");
            return false;
        }
        const auto* base = static_cast<const std::uint8_t*>(args);
        auto* dst = static_cast<std::uint8_t*>(out);
        vm::trail where;
        where.contract = record.decl->name.c_str();
        where.function = fn.name.c_str();
        codec c{*this, ctx_, alloc, &where, false};
        if (f.scalar_params && f.scalar_result &&
            duk_check_stack(ctx_, static_cast<duk_idx_t>(f.params) + 4)) {
            return call_scalar(c, *target, record.plan, f, base, dst, error);
        }
        bool converted = true;
        auto body = [&](duk_context* ctx) -> duk_ret_t {
            duk_require_stack(ctx, static_cast<duk_idx_t>(f.params) + 4);
            duk_push_heapptr(ctx, target->methods[fn.id]);
            duk_push_heapptr(ctx, target->object);
            if (!vm::push_params(c, record.plan, f, base, where)) {
                converted = false;
                return 0;
            }
            duk_call_method(ctx, static_cast<duk_idx_t>(f.params));
            if (f.has_result &&
                !vm::pull_result(c, record.plan, f, duk_get_top_index(ctx), dst, where))
                converted = false;
            return 0;
        };
        if (!protect(body, error)) return false;
        if (!converted) return conversion_error(where, error);
        return true;
    }

    /// True when the script defines an integer `state_schema` and functions `save_state` and
    /// `restore_state`.
    [[nodiscard]] bool state_schema(std::uint32_t& schema) {
        enum class offer { none, ok, bad_schema, no_functions } outcome = offer::none;
        double value = 0;
        auto body = [&](duk_context* ctx) -> duk_ret_t {
            duk_require_stack(ctx, 4);
            if (!duk_get_global_string(ctx, "state_schema") || duk_is_undefined(ctx, -1)) {
                return 0;
            }
            value = duk_get_number_default(ctx, -1, -1.0);
            if (!duk_is_number(ctx, -1) || value != std::trunc(value) || value < 0 ||
                value > 4294967295.0) {
                outcome = offer::bad_schema;
                return 0;
            }
            duk_get_global_string(ctx, "save_state");
            duk_get_global_string(ctx, "restore_state");
            outcome = duk_is_callable(ctx, -1) && duk_is_callable(ctx, -2) ? offer::ok
                                                                           : offer::no_functions;
            return 0;
        };
        std::string error;
        if (!protect(body, error)) outcome = offer::none;
        if (outcome == offer::bad_schema) {
            services_->log(LogLevel_Warn, file_ +
                                              ": state_schema is not an integer from 0 to "
                                              "4294967295; the state is not handed over");
        } else if (outcome == offer::no_functions) {
            services_->log(LogLevel_Warn, file_ +
                                              ": state_schema is set but save_state or "
                                              "restore_state is not a function; the state is "
                                              "not handed over");
        }
        if (outcome != offer::ok) return false;
        schema = static_cast<std::uint32_t>(value);
        return true;
    }

    /// Runs `save_state()`: a string (as UTF-8) or bytes (Uint8Array, ArrayBuffer).
    [[nodiscard]] bool save_state(std::string& bytes, std::string& error) {
        bool wrong = false;
        auto body = [&](duk_context* ctx) -> duk_ret_t {
            duk_require_stack(ctx, 4);
            duk_get_global_string(ctx, "save_state");
            duk_call(ctx, 0);
            if ((!duk_is_string(ctx, -1) || duk_is_symbol(ctx, -1)) &&
                !duk_is_buffer_data(ctx, -1)) {
                wrong = true;
                describe(ctx, -1);
            }
            return 1;
        };
        if (!protect(body, error, true)) return false;
        duk_size_t size = 0;
        const char* text = duk_get_lstring(ctx_, -1, &size);
        if (wrong) {
            error = file_ + ": save_state returned ";
            detail::js::append_utf8(error, text, size);
            error += "; expected a string or a Uint8Array";
        } else if (text != nullptr) {
            bytes.clear();
            detail::js::append_utf8(bytes, text, size);
        } else {
            const void* data = duk_get_buffer_data(ctx_, -1, &size);
            bytes.assign(static_cast<const char*>(data), data == nullptr ? 0 : size);
        }
        duk_pop(ctx_);
        return !wrong;
    }

    /// Runs `restore_state(schema, data)`: `data` is a string when the saved bytes are UTF-8
    /// (what a saved string always is), else a Uint8Array.
    [[nodiscard]] bool restore_state(std::uint32_t schema, std::string_view bytes,
                                     std::string& error) {
        const bool text = detail::is_valid_utf8(bytes);
        const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
        auto body = [&](duk_context* ctx) -> duk_ret_t {
            duk_require_stack(ctx, 4);
            duk_get_global_string(ctx, "restore_state");
            duk_push_uint(ctx, schema);
            if (text) {
                push_text(ctx, data, bytes.size());
            } else {
                void* copy = duk_push_fixed_buffer(ctx, bytes.size());
                std::memcpy(copy, data, bytes.size());
                duk_push_buffer_object(ctx, -1, 0, bytes.size(), DUK_BUFOBJ_UINT8ARRAY);
                duk_remove(ctx, -2);
            }
            duk_call(ctx, 2);
            return 0;
        };
        return protect(body, error);
    }

private:
    struct impl_record {
        const contract_decl* decl = nullptr;
        void* object = nullptr;  // contracts[name], kept in the stash
        bool constructor = false;
        std::vector<void*> names;  // interned function names, by function id
        vm::contract_plan plan;    // compiled at bind
    };

    /// What create_instance returns: the object and its methods, kept in the stash at `slot`.
    struct instance_record {
        std::uint32_t impl = 0;
        std::uint32_t slot = 0;
        void* object = nullptr;
        std::vector<void*> methods;  // by function id
    };

    /// A conversion's failure: `path` grows outwards (".inner.b", "[2]") as it unwinds.
    struct failure {
        std::string path;
        std::string what;
    };

    /// What polyplug.call's inner protected call works on.
    struct script_call {
        js_engine* engine;
        const vm::contract_plan* plan;
        const vm::function_plan* f;
        vm::call_scratch* scratch;
        bool failed;
    };

    explicit js_engine(const vm_script& script)
        : api_(script.api), services_(script.services), file_(script.script.filename().string()) {}

    // ---- a guest call ------------------------------------------------------------------------

    /// How the plan executor reads and makes JavaScript values (vm::vm_codec): values are
    /// absolute stack indices. Failures are written into the engine's failure_ (a message and
    /// the path from the trail) and returned as false; Duktape may still throw (out of memory),
    /// which is why every call but the scalar one runs protected.
    struct codec {
        using value = duk_idx_t;

        js_engine& engine;
        duk_context* ctx;
        const result_allocator& alloc;
        const vm::trail* where;
        bool quiet;  // describe nothing (the unprotected scalar path): only say "no"

        bool push_integer(const vm::step& s, std::int64_t v) {
            constexpr std::int64_t limit = std::int64_t{1} << 53;
            if (s.primitive == primitive_type::i64 && (v > limit || v < -limit))
                return engine.fail_inexact(*where, std::to_string(v));
            duk_push_number(ctx, static_cast<double>(v));
            return true;
        }
        bool push_unsigned(const vm::step&, const vm::trail& t, std::uint64_t v) {
            if (v > (std::uint64_t{1} << 53)) return engine.fail_inexact(t, std::to_string(v));
            duk_push_number(ctx, static_cast<double>(v));
            return true;
        }
        bool push_real(double v) {
            duk_push_number(ctx, v);
            return true;
        }
        bool push_boolean(bool v) {
            duk_push_boolean(ctx, v ? 1 : 0);
            return true;
        }
        bool push_bytes(const vm::step& s, const std::uint8_t* p, std::size_t len) {
            if (s.code == vm::op::string_view) {
                push_text(ctx, p, len);
                return true;
            }
            void* bytes = duk_push_fixed_buffer(ctx, len);
            if (len != 0) std::memcpy(bytes, p, len);
            duk_push_buffer_object(ctx, -1, 0, len, DUK_BUFOBJ_UINT8ARRAY);
            duk_remove(ctx, -2);
            return true;
        }
        bool push_pointer(void* p) {
            if (p == nullptr)
                duk_push_null(ctx);
            else
                duk_push_pointer(ctx, p);
            return true;
        }
        bool begin_record(const vm::step&) {
            duk_require_stack(ctx, 4);
            duk_push_object(ctx);
            return true;
        }
        bool end_field(const vm::step& record, const vm::step& field) {
            duk_put_prop_heapptr(ctx, -2, engine.struct_keys_[record.index][field.field]);
            return true;
        }
        bool begin_array(const vm::step&, const vm::trail& t, std::size_t len) {
            if (len > 0xFFFFFFFEu) return fail(t, "an array too long for JavaScript");
            duk_require_stack(ctx, 4);
            duk_push_array(ctx);
            return true;
        }
        bool end_element(std::size_t i) {
            duk_put_prop_index(ctx, -2, static_cast<duk_uarridx_t>(i));
            return true;
        }
        bool fail(const vm::trail& t, std::string_view text) noexcept {
            return engine.fail_text(t, text, false);
        }

        bool to_number(const vm::step& s, duk_idx_t v, vm::number& n) {
            if (!duk_is_number(ctx, v)) return false;
            n.tag = vm::number::kind::real;
            n.d = duk_get_number(ctx, v);
            // 64-bit integers: only as far as a JavaScript number holds them exactly.
            if ((s.primitive == primitive_type::u64 || s.primitive == primitive_type::i64) &&
                s.code != vm::op::real && std::fabs(n.d) > detail::js::max_exact)
                n.tag = vm::number::kind::huge;
            return true;
        }
        bool to_boolean(const vm::step&, duk_idx_t v, bool& b) {
            if (!duk_is_boolean(ctx, v)) return false;
            b = duk_get_boolean(ctx, v) != 0;
            return true;
        }
        bool to_bytes(const vm::step& s, duk_idx_t v, const std::uint8_t*& p, std::size_t& len) {
            duk_size_t size = 0;
            if (s.code == vm::op::string_view) {
                if (!duk_is_string(ctx, v) || duk_is_symbol(ctx, v)) return false;
                p = reinterpret_cast<const std::uint8_t*>(duk_get_lstring(ctx, v, &size));
            } else {
                if (!duk_is_buffer_data(ctx, v)) return false;
                p = static_cast<const std::uint8_t*>(duk_get_buffer_data(ctx, v, &size));
                if (p == nullptr) size = 0;
            }
            len = size;
            return true;
        }
        bool to_pointer(const vm::step&, duk_idx_t v, void*& p) {
            p = nullptr;
            if (duk_is_pointer(ctx, v)) {
                p = duk_get_pointer(ctx, v);
                return true;
            }
            return duk_is_null_or_undefined(ctx, v) != 0;
        }
        bool is_record(const vm::step&, duk_idx_t v) { return duk_is_object(ctx, v) != 0; }
        bool get_field(const vm::step& record, const vm::step& field, duk_idx_t v, duk_idx_t& out) {
            duk_require_stack(ctx, 4);
            duk_get_prop_heapptr(ctx, v, engine.struct_keys_[record.index][field.field]);
            out = duk_get_top_index(ctx);
            return true;
        }
        bool is_missing(const vm::step&, duk_idx_t v) { return duk_is_undefined(ctx, v) != 0; }
        bool missing(const vm::trail& t, const vm::step& record, const vm::step& field,
                     duk_idx_t) noexcept {
            return engine.fail_missing(t, record, field);
        }
        bool sequence(const vm::step&, duk_idx_t v, std::size_t& len) {
            if (!duk_is_array(ctx, v)) return false;
            len = duk_get_length(ctx, v);
            return true;
        }
        bool get_element(duk_idx_t v, std::size_t i, duk_idx_t& out) {
            duk_require_stack(ctx, 4);
            duk_get_prop_index(ctx, v, static_cast<duk_uarridx_t>(i));
            out = duk_get_top_index(ctx);
            return true;
        }
        void release(duk_idx_t v) { duk_set_top(ctx, v); }
        std::uint8_t* allocate(std::size_t size, std::size_t align) {
            return static_cast<std::uint8_t*>(alloc.allocate(size, align));
        }
        /// A copy into C memory: a string from Duktape's CESU-8 into UTF-8 (its length may
        /// change), a buffer as it is.
        std::uint8_t* keep_bytes(const vm::step& s, duk_idx_t, const std::uint8_t* text,
                                 std::size_t& len, bool&) {
            const std::size_t size =
                s.code == vm::op::string_view ? detail::js::utf8_size(text, len) : len;
            auto* p = allocate(size, 1);
            if (p == nullptr) return nullptr;
            if (s.code == vm::op::string_view)
                detail::js::to_utf8(text, len, p);
            else
                std::memcpy(p, text, len);
            len = size;
            return p;
        }
        bool refuse(const vm::trail& t, const vm::step& s, duk_idx_t v, vm::misfit) {
            if (quiet) return false;  // call_scalar describes it again, protected
            return engine.fail_expected(ctx, t, s, v);
        }
    };

    /// A call whose parameters and result are numbers, booleans or pointers: with the value
    /// stack reserved nothing pushed or read can allocate or throw, so only the call itself is
    /// protected (duk_pcall_method), which saves the cost of a safe call around it.
    [[nodiscard]] bool call_scalar(codec& c, const instance_record& target,
                                   const vm::contract_plan& plan, const vm::function_plan& f,
                                   const std::uint8_t* args, std::uint8_t* out,
                                   std::string& error) {
        vm::trail& where = const_cast<vm::trail&>(*c.where);
        const duk_idx_t bottom = duk_get_top(ctx_);
        duk_push_heapptr(ctx_, target.methods[f.decl->id]);
        duk_push_heapptr(ctx_, target.object);
        if (!vm::push_params(c, plan, f, args, where)) {
            duk_set_top(ctx_, bottom);
            return conversion_error(where, error);
        }
        if (duk_pcall_method(ctx_, static_cast<duk_idx_t>(f.params)) != DUK_EXEC_SUCCESS) {
            take_error(error);
            return false;
        }
        if (!f.has_result) {
            duk_pop(ctx_);
            return true;
        }
        c.quiet = true;
        const bool taken = vm::pull_result(c, plan, f, duk_get_top_index(ctx_), out, where);
        c.quiet = false;
        if (taken) {
            duk_pop(ctx_);
            return true;
        }
        // Refused: describing the value pushes strings, so that part runs protected.
        auto body = [&](duk_context* ctx) -> duk_ret_t {
            (void)vm::pull_result(c, plan, f, duk_get_top_index(ctx), nullptr, where);
            return 0;
        };
        (void)duk_safe_call(ctx_, &trampoline<decltype(body)>, &body, 1, 1);
        duk_pop(ctx_);
        return conversion_error(where, error);
    }

    /// "kitchen.js: test.js.Kitchen.to_u8: result: expected u8 (...), got the number 256".
    bool conversion_error(const vm::trail& t, std::string& error) const {
        error = file_ + ": " + t.contract + "." + t.function + ": " + root_text(t) + failure_.path +
                ": " + failure_.what;
        return false;
    }

    /// Arguments and parameters by name, elements as JavaScript counts them.
    static constexpr vm::trail_words words{false, 0};

    /// "parameter 'x'", "argument 'b'", "result".
    static std::string root_text(const vm::trail& t) {
        std::string text;
        vm::append_root(text, t, words);
        return text;
    }

    // ---- protected calls ------------------------------------------------------------------

    template <class Body>
    static duk_ret_t trampoline(duk_context* ctx, void* udata) {
        return (*static_cast<Body*>(udata))(ctx);
    }

    /// Runs `body` as a protected call with one result; a thrown error becomes `error` (the
    /// script's message and location). `keep_result` leaves the result on the stack.
    template <class Body>
    [[nodiscard]] bool protect(Body& body, std::string& error, bool keep_result = false) {
        if (duk_safe_call(ctx_, &trampoline<Body>, &body, 0, 1) != DUK_EXEC_SUCCESS) {
            take_error(error);
            return false;
        }
        if (!keep_result) duk_pop(ctx_);
        return true;
    }

    /// Never reached through protected calls; Duktape must not return from here.
    static void fatal(void*, const char* message) {
        std::fprintf(stderr, "polyplug js loader: fatal Duktape error: %s\n",
                     message != nullptr ? message : "(no message)");
        std::fflush(stderr);
        std::abort();
    }

    static js_engine& engine_of(duk_context* ctx) {
        duk_memory_functions functions{};
        duk_get_memory_functions(ctx, &functions);
        return *static_cast<js_engine*>(functions.udata);
    }

    /// Stores the value at `idx` in the stash under a fresh slot, so heap pointers to it stay
    /// valid for the heap's life.
    void keep(duk_context* ctx, duk_idx_t idx) {
        const duk_idx_t at = duk_normalize_index(ctx, idx);
        duk_push_heapptr(ctx, stash_);
        duk_dup(ctx, at);
        duk_put_prop_index(ctx, -2, next_slot_++);
        duk_pop(ctx);
    }

    /// Formats the error value on top of the stack as "<name>: <message> (<file>:<line>)"
    /// and pops it.
    void take_error(std::string& out) {
        auto parts = [](duk_context* ctx, void*) -> duk_ret_t {
            duk_require_stack(ctx, 8);
            const duk_idx_t error = duk_get_top_index(ctx);  // a safe call sees the whole frame
            if (duk_is_object(ctx, error)) {
                duk_get_prop_string(ctx, error, "name");
                duk_get_prop_string(ctx, error, "message");
                duk_get_prop_string(ctx, error, "fileName");
                duk_get_prop_string(ctx, error, "lineNumber");
                if (!duk_is_undefined(ctx, error + 1)) duk_safe_to_string(ctx, error + 1);
                if (!duk_is_undefined(ctx, error + 2)) duk_safe_to_string(ctx, error + 2);
            } else {
                duk_push_undefined(ctx);
                duk_dup(ctx, error);
                duk_safe_to_string(ctx, -1);
                duk_push_undefined(ctx);
                duk_push_undefined(ctx);
            }
            return 4;
        };
        const bool described = duk_safe_call(ctx_, parts, nullptr, 1, 4) == DUK_EXEC_SUCCESS;
        duk_size_t name_len = 0, message_len = 0, file_len = 0;
        const char* name = duk_get_lstring(ctx_, -4, &name_len);
        const char* message = duk_get_lstring(ctx_, -3, &message_len);
        const char* file = duk_get_lstring(ctx_, -2, &file_len);
        const double line = duk_get_number_default(ctx_, -1, 0.0);
        out.clear();
        if (!described) {
            out = file_ + ": the script raised an error that cannot be described";
        } else if (name == nullptr && file == nullptr) {
            out = file_ + ": the script threw ";
            detail::js::append_utf8(out, message, message_len);
        } else {
            detail::js::append_utf8(out, name != nullptr ? name : "Error",
                                    name != nullptr ? name_len : 5);
            out += ": ";
            std::string text;
            detail::js::append_utf8(text, message, message_len);
            const bool located = file != nullptr && line >= 1 && line < 4294967296.0;
            const std::string line_text =
                located ? std::to_string(static_cast<std::uint64_t>(line)) : std::string();
            // Duktape puts " (line N)" into SyntaxError messages; the location says it already.
            const std::string suffix = " (line " + line_text + ")";
            if (located && text.ends_with(suffix)) text.resize(text.size() - suffix.size());
            out += text;
            if (located) {
                out += " (";
                detail::js::append_utf8(out, file, file_len);
                out += ":" + line_text + ")";
            }
        }
        duk_pop_n(ctx_, 4);
    }

    // ---- opening the heap -------------------------------------------------------------------

    /// The stash, the Error constructor, interned struct field names and the `polyplug` global.
    [[nodiscard]] bool install(std::string& error) {
        struct_keys_.resize(api_->structs.size());
        for (std::size_t s = 0; s < api_->structs.size(); ++s) {
            struct_keys_[s].resize(api_->structs[s].layout.fields.size());
        }
        const std::string& bundle = services_->bundle_name();
        auto body = [&](duk_context* ctx) -> duk_ret_t {
            duk_require_stack(ctx, 8);
            duk_push_heap_stash(ctx);
            stash_ = duk_get_heapptr(ctx, -1);
            duk_get_global_string(ctx, "Error");
            error_ctor_ = duk_get_heapptr(ctx, -1);
            keep(ctx, -1);
            duk_pop(ctx);
            for (std::size_t s = 0; s < api_->structs.size(); ++s) {
                const auto& fields = api_->structs[s].layout.fields;
                for (std::size_t f = 0; f < fields.size(); ++f) {
                    duk_push_lstring(ctx, fields[f].name.data(), fields[f].name.size());
                    struct_keys_[s][f] = duk_get_heapptr(ctx, -1);
                    keep(ctx, -1);
                    duk_pop(ctx);
                }
            }
            duk_push_object(ctx);
            duk_push_c_function(ctx, &script_log, 2);
            duk_put_prop_string(ctx, -2, "log");
            duk_push_c_function(ctx, &script_call_entry, DUK_VARARGS);
            duk_put_prop_string(ctx, -2, "call");
            push_text(ctx, reinterpret_cast<const unsigned char*>(bundle.data()), bundle.size());
            duk_put_prop_string(ctx, -2, "bundle");
            duk_put_global_string(ctx, "polyplug");
            return 0;
        };
        if (!protect(body, error)) {
            error = file_ + ": setting up the heap: " + error;
            return false;
        }
        return true;
    }

    /// Compiles and runs the script with its file name in locations; keeps `contracts`.
    [[nodiscard]] bool run(const std::string& source, std::string& error) {
        bool no_contracts = false;
        duk_int_t type = DUK_TYPE_NONE;
        auto body = [&](duk_context* ctx) -> duk_ret_t {
            duk_require_stack(ctx, 4);
            duk_push_lstring(ctx, file_.data(), file_.size());
            if (duk_pcompile_lstring_filename(ctx, 0, source.data(), source.size()) != 0) {
                return duk_throw(ctx);
            }
            if (duk_pcall(ctx, 0) != DUK_EXEC_SUCCESS) return duk_throw(ctx);
            duk_pop(ctx);
            duk_get_global_string(ctx, "contracts");
            type = duk_get_type(ctx, -1);
            if (!duk_is_object(ctx, -1) || duk_is_function(ctx, -1) || duk_is_array(ctx, -1)) {
                no_contracts = true;
                return 0;
            }
            contracts_ = duk_get_heapptr(ctx, -1);
            keep(ctx, -1);
            return 0;
        };
        if (!protect(body, error)) return false;
        if (no_contracts) {
            error = file_ + ": the script defines no global 'contracts' object (it is " +
                    std::string(type_name(type)) +
                    "); it maps each provided contract's name to its implementation";
            return false;
        }
        return true;
    }

    static std::string_view type_name(duk_int_t type) noexcept {
        switch (type) {
            case DUK_TYPE_UNDEFINED:
                return "undefined";
            case DUK_TYPE_NULL:
                return "null";
            case DUK_TYPE_BOOLEAN:
                return "a boolean";
            case DUK_TYPE_NUMBER:
                return "a number";
            case DUK_TYPE_STRING:
                return "a string";
            case DUK_TYPE_OBJECT:
                return "an object";
            case DUK_TYPE_BUFFER:
                return "a buffer";
            case DUK_TYPE_POINTER:
                return "a pointer";
            case DUK_TYPE_LIGHTFUNC:
                return "a function";
            default:
                return "no value";
        }
    }

    // ---- C memory to script values ----------------------------------------------------------

    /// Pushes bytes as a string, 4-byte UTF-8 sequences as surrogate pairs.
    static void push_text(duk_context* ctx, const unsigned char* text, std::size_t len) {
        const std::size_t size = detail::js::cesu8_size(text, len);
        if (size == len) {
            duk_push_lstring(ctx, reinterpret_cast<const char*>(text), len);
            return;
        }
        auto* scratch = static_cast<unsigned char*>(duk_push_fixed_buffer(ctx, size));
        detail::js::to_cesu8(text, len, scratch);
        duk_buffer_to_string(ctx, -1);
    }

    // ---- failure messages (composed only when something fails) ------------------------------

    /// Pushes a short description of the value at `idx` ("the number 300", "the string 'ab'",
    /// "an object") and returns it; valid while it stays on the stack.
    static std::string_view describe(duk_context* ctx, duk_idx_t idx) noexcept {
        const duk_idx_t at = duk_normalize_index(ctx, idx);
        const duk_int_t type = duk_get_type(ctx, at);
        duk_require_stack(ctx, 4);
        switch (type) {
            case DUK_TYPE_BOOLEAN:
                duk_push_string(
                    ctx, duk_get_boolean(ctx, at) ? "the boolean true" : "the boolean false");
                break;
            case DUK_TYPE_NUMBER:
                duk_push_string(ctx, "the number ");
                duk_dup(ctx, at);
                duk_safe_to_string(ctx, -1);
                duk_concat(ctx, 2);
                break;
            case DUK_TYPE_STRING:
                if (duk_is_symbol(ctx, at)) {
                    duk_push_string(ctx, "a symbol");
                    break;
                }
                duk_push_string(ctx, "the string '");
                duk_dup(ctx, at);
                duk_push_string(ctx, "'");
                duk_concat(ctx, 3);
                break;
            case DUK_TYPE_OBJECT:
                duk_push_string(ctx, duk_is_array(ctx, at)         ? "an array"
                                     : duk_is_function(ctx, at)    ? "a function"
                                     : duk_is_buffer_data(ctx, at) ? "a buffer object"
                                                                   : "an object");
                break;
            default: {
                const std::string_view name = type_name(type);
                duk_push_lstring(ctx, name.data(), name.size());
                break;
            }
        }
        duk_size_t len = 0;
        const char* text = duk_get_lstring(ctx, -1, &len);
        return {text, len};
    }

    /// What a value of step `s` must be: "u8 (an integer from 0 to 255)", "struct Point (an
    /// object)", "enum Color (one of Red = 1, ...)".
    std::string expected_text(const vm::step& s) const {
        switch (s.code) {
            case vm::op::integer:
            case vm::op::real:
                return detail::js::expected_primitive(s.primitive);
            case vm::op::boolean:
                return detail::js::expected_primitive(primitive_type::bool_);
            case vm::op::string_view:
                return "StringView (a string)";
            case vm::op::buffer:
                return "Buffer (a Uint8Array or an ArrayBuffer)";
            case vm::op::pointer:
                return "Ptr (a pointer or null)";
            case vm::op::record:
                return "struct " + std::string(s.type_name) + " (an object)";
            case vm::op::array:
                return std::string(s.type_name) + " (an array)";
            case vm::op::enumeration: {
                const enum_decl& decl = api_->enums[s.index];
                std::string text =
                    "enum " + decl.name + " (" + (decl.bitflag ? "a combination of " : "one of ");
                for (std::size_t i = 0; i < decl.variants.size(); ++i) {
                    text += (i == 0 ? "" : ", ") + decl.variants[i].name + " = " +
                            std::to_string(decl.variants[i].value);
                }
                return text + ")";
            }
            case vm::op::nothing:
                break;
        }
        return std::string(s.type_name);
    }

    /// The trail's fields and elements: ".inner.b", "[2]" (as JavaScript counts).
    void set_path(const vm::trail& t, bool drop_last) {
        failure_.path.clear();
        vm::append_places(failure_.path, t, words, drop_last);
    }

    bool fail_expected(duk_context* ctx, const vm::trail& t, const vm::step& s,
                       duk_idx_t v) noexcept {
        const std::string_view got = describe(ctx, v);
        try {
            set_path(t, false);
            failure_.what = "expected " + expected_text(s) + ", got ";
            detail::js::append_utf8(failure_.what, got.data(), got.size());
        } catch (...) {
        }
        return false;
    }

    bool fail_missing(const vm::trail& t, const vm::step& record, const vm::step& field) noexcept {
        try {
            set_path(t, true);  // said at the struct
            failure_.what = std::string("missing field '") + field.name + "' of struct " +
                            std::string(record.type_name);
        } catch (...) {
        }
        return false;
    }

    bool fail_inexact(const vm::trail& t, const std::string& value) noexcept {
        try {
            set_path(t, false);
            failure_.what = "the value " + value +
                            " is beyond ±2^53, which a JavaScript number cannot hold exactly";
        } catch (...) {
        }
        return false;
    }

    bool fail_text(const vm::trail& t, std::string_view text, bool drop_last) noexcept {
        try {
            set_path(t, drop_last);
            failure_.what = text;
        } catch (...) {
        }
        return false;
    }

    // ---- the polyplug global ----------------------------------------------------------------

    /// polyplug.log(level, message)
    static duk_ret_t script_log(duk_context* ctx) {
        js_engine& self = engine_of(ctx);
        const double level = duk_require_number(ctx, 0);
        duk_size_t len = 0;
        const char* text = duk_safe_to_lstring(ctx, 1, &len);
        self.log_from_script(level, text, len);
        return 0;
    }

    void log_from_script(double level, const char* text, std::size_t len) noexcept {
        try {
            std::string message;
            detail::js::append_utf8(message, text, len);
            services_->log(vm_services::log_level(level), message);
        } catch (...) {
        }
    }

    /// polyplug.call(contract, function, ...args): marshals the arguments into the function's
    /// C struct, calls through vm_services, returns the result or throws the callee's error.
    static duk_ret_t script_call_entry(duk_context* ctx) {
        js_engine& self = engine_of(ctx);
        const duk_idx_t argc = duk_get_top(ctx);
        duk_size_t contract_len = 0, function_len = 0;
        const char* contract = duk_require_lstring(ctx, 0, &contract_len);
        const char* function = duk_require_lstring(ctx, 1, &function_len);
        const vm::contract_plan* plan = nullptr;
        const vm::function_plan* f = nullptr;
        if (!self.resolve(contract, contract_len, function, function_len,
                          static_cast<std::size_t>(argc - 2), plan, f)) {
            return self.throw_call_error(ctx, 0);
        }
        // Variable-size arguments and results live here for the call; freed on every way out
        // of the inner protected call, before anything can be thrown.
        vm::call_scratch scratch(self.services_->host());
        script_call call{&self, plan, f, &scratch, false};
        const duk_int_t rc = duk_safe_call(ctx, &script_call_inner, &call, argc - 2, 1);
        scratch.free();
        if (rc != DUK_EXEC_SUCCESS) return duk_throw(ctx);
        if (call.failed) return self.throw_call_error(ctx, self.call_error_code_);
        return 1;
    }

    static duk_ret_t script_call_inner(duk_context* ctx, void* udata) {
        script_call& call = *static_cast<script_call*>(udata);
        js_engine& self = *call.engine;
        const vm::function_plan& f = *call.f;
        const function_decl& fn = *f.decl;
        // A safe call sees the caller's whole frame: the arguments are the topmost values.
        const duk_idx_t first = duk_get_top(ctx) - static_cast<duk_idx_t>(f.params);
        std::uint8_t* args = call.scratch->zeroed(fn.args.size, fn.args.align);
        std::uint8_t* out = call.scratch->zeroed(fn.result.size, fn.result.align);
        if ((fn.args.size != 0 && args == nullptr) || (fn.result.size != 0 && out == nullptr)) {
            self.set_call_error(call, nullptr, "out of memory for the argument struct", 0);
            return 0;
        }
        const result_allocator alloc(call.scratch->arena(), self.services_->host());
        vm::trail where;
        where.contract = call.plan->decl->name.c_str();
        where.function = fn.name.c_str();
        codec c{self, ctx, alloc, &where, false};
        const auto argument = [first](std::uint32_t i) {
            return first + static_cast<duk_idx_t>(i);
        };
        if (!vm::pull_arguments(c, *call.plan, f, argument, args, where)) {
            self.set_call_error(call, &where, nullptr, 0);
            return 0;
        }
        const AbiError err = vm::call_service(*self.services_, *call.plan->decl, fn, args, out,
                                              call.scratch->arena());
        if (err.code != AbiErrorCode_Ok) {
            self.set_call_error(call, nullptr, nullptr, err.code, err.message);
            return 0;
        }
        if (!f.has_result) return 0;
        if (!vm::push(c, *call.plan, call.plan->steps[f.result],
                      static_cast<const std::uint8_t*>(out), where)) {
            self.set_call_error(call, &where, nullptr, 0);
            return 0;
        }
        return 1;
    }

    /// The contract and function a script names; false with call_error_ set.
    bool resolve(const char* contract, std::size_t contract_len, const char* function,
                 std::size_t function_len, std::size_t argc, const vm::contract_plan*& plan,
                 const vm::function_plan*& f) noexcept {
        call_error_code_ = 0;
        try {
            if (!targets_.find(*services_, {contract, contract_len}, {function, function_len}, plan,
                               f, call_error_)) {
                call_error_.insert(0, "polyplug.call: ");
                return false;
            }
            const function_decl* fn = f->decl;
            const contract_decl* decl = plan->decl;
            if (argc != fn->args.fields.size()) {
                call_error_ = "polyplug.call(" + decl->name + "." + fn->name + "): expects " +
                              std::to_string(fn->args.fields.size()) + " argument" +
                              (fn->args.fields.size() == 1 ? "" : "s") + ", got " +
                              std::to_string(argc);
                return false;
            }
        } catch (...) {
            call_error_.clear();
            return false;
        }
        return true;
    }

    /// call_error_ = "polyplug.call(c.f): <what>": an argument's or the result's conversion
    /// (failure_), or the callee's error.
    void set_call_error(script_call& call, const vm::trail* where, const char* what,
                        std::uint32_t code, StringView callee = {nullptr, 0}) noexcept {
        try {
            call.failed = true;
            call_error_code_ = code;
            call_error_ =
                "polyplug.call(" + call.plan->decl->name + "." + call.f->decl->name + "): ";
            if (code != 0) {
                call_error_ += std::string(abi_error_code_name(code)) + ": " +
                               detail::utf8_lossy(callee.ptr, callee.len);
            } else if (where != nullptr) {
                call_error_ += root_text(*where) + failure_.path + ": " + failure_.what;
            } else {
                call_error_ += what;
            }
        } catch (...) {
        }
    }

    /// Throws `new Error(call_error_)` (with `code` when the callee failed), located at the
    /// script's call.
    duk_ret_t throw_call_error(duk_context* ctx, std::uint32_t code) {
        duk_require_stack(ctx, 4);
        duk_push_heapptr(ctx, error_ctor_);
        push_text(ctx, reinterpret_cast<const unsigned char*>(call_error_.data()),
                  call_error_.size());
        duk_new(ctx, 1);
        if (code != 0) {
            duk_push_uint(ctx, code);
            duk_put_prop_string(ctx, -2, "code");
        }
        return duk_throw(ctx);
    }

    duk_context* ctx_ = nullptr;
    const contract_file* api_;
    vm_services* services_;
    std::string file_;  // the script's file name, as locations show it
    void* stash_ = nullptr;
    void* error_ctor_ = nullptr;
    void* contracts_ = nullptr;
    std::uint32_t next_slot_ = 0;
    std::vector<std::vector<void*>> struct_keys_;  // [struct][field]: interned field names
    std::vector<impl_record> impls_;
    vm::instance_table<instance_record> instances_;
    failure failure_;
    vm::call_targets targets_;  // polyplug.call
    std::string call_error_;
    std::uint32_t call_error_code_ = 0;
};

static_assert(vm_engine<js_engine>);

/// The JavaScript (Duktape) script loader: `loader = "js"` bundles.
using js_loader = vm_loader<js_engine>;

POLYPLUG_END_NAMESPACE
