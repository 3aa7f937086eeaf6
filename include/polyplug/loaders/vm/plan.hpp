// SPDX-License-Identifier: MIT
/// @file loaders/vm/plan.hpp
/// The marshalling plan every script engine runs on: each function of a contract compiled once,
/// when a version is staged, into a flat list of steps ("an i32 at offset 8", "a StringView at
/// 16", "a Point at 24: its fields are steps 7 to 8", "an Array<Point> at 32: its element is step
/// 9"), and the executor that walks those steps per call. The executor holds every check that
/// does not depend on the script language (null pointers with lengths, integer ranges, f32
/// range, enum values and flag sets, array sizes, missing struct fields) and asks the engine's
/// codec only to push and pull single values. A call does no lookup, no allocation of its own and
/// no walk of the contract file's type tree.
///
/// A codec (one per engine; see `vm_codec` below for the list) is a small class whose members
/// the executor calls with the step at hand; `value` is the engine's handle of a script value (a
/// Lua stack index, a Duktape stack index, a borrowed PyObject*). Every member that can fail
/// returns false after recording its message: the executor stops and returns false too, so an
/// engine decides itself whether a failure becomes a script error (raised) or a returned message.
#pragma once

#include <polyplug/abi.h>
#include <polyplug/config.hpp>
#include <polyplug/contract_file.hpp>

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE

namespace vm {

/// What a step converts. Integers and enums keep their width in `step::primitive`.
enum class op : std::uint8_t {
    integer,      ///< u8 ... i64
    enumeration,  ///< an enum, carried as its repr; `index` is the enum
    real,         ///< f32 or f64
    boolean,      ///< bool (one byte)
    string_view,  ///< StringView {ptr, len}
    buffer,       ///< Buffer {ptr, len, cap}
    pointer,      ///< Ptr
    record,       ///< a struct: fields are steps [first, first + count)
    array,        ///< Array<T> {items, len}: the element is step `first`
    nothing,      ///< Void (results only)
};

/// One value of the plan, where it sits, and how it is named in messages.
struct step {
    op code = op::nothing;
    primitive_type primitive = primitive_type::u8;  ///< integer, enumeration, real
    bool allocates = false;      ///< converting it into C memory allocates (strings, arrays inside)
    std::uint32_t offset = 0;    ///< in the enclosing struct (0 for results and array elements)
    std::uint32_t size = 0;      ///< sizeof in C
    std::uint32_t align = 1;     ///< alignof in C
    std::uint32_t first = 0;     ///< record: first field step; array: the element step
    std::uint32_t count = 0;     ///< record: how many fields
    std::uint32_t index = 0;     ///< record: struct index in the contract file; enumeration: enum
    std::uint32_t field = 0;     ///< a struct field: its index in the struct (engines' key caches)
    const char* name = nullptr;  ///< a parameter's or field's name; nullptr for results, elements
    std::string_view type_name;  ///< "u8", "Point", "Array<Point>" (elements: "Point")
};

/// One function: its parameters are steps [first_param, first_param + params), its result is
/// step `result`.
struct function_plan {
    const function_decl* decl = nullptr;
    std::uint32_t first_param = 0;
    std::uint32_t params = 0;
    std::uint32_t result = 0;
    bool has_result = false;
    bool two_pass = false;      ///< check the whole result before writing (it allocates mid-way)
    bool scalar_params = true;  ///< every parameter is a number, bool, enum or pointer
    bool scalar_result = true;  ///< the result is Void or one of those
};

/// The plan of one contract: every step of every function, and what enums allow.
struct contract_plan {
    const contract_file* file = nullptr;
    const contract_decl* decl = nullptr;
    std::vector<step> steps;
    std::vector<function_plan> functions;   ///< by function id
    std::vector<std::uint64_t> enum_masks;  ///< every flag of each enum (bit-flag checks)

    [[nodiscard]] const step& at(std::uint32_t i) const noexcept { return steps[i]; }
};

/// Why a value does not fit the type a step wants.
enum class misfit : std::uint8_t {
    wrong_type,      ///< not a value of that kind at all
    out_of_range,    ///< a number outside the type's range
    not_integer,     ///< a number with a fraction for an integer type
    not_enum_value,  ///< an integer that is none of the enum's values
    not_flags,       ///< an integer with bits that are none of the enum's flags
};

/// A number as the script holds it, for the executor's range checks.
struct number {
    enum class kind : std::uint8_t { integer, unsigned_integer, real, huge } tag = kind::integer;
    std::int64_t i = 0;   ///< integer
    std::uint64_t u = 0;  ///< unsigned_integer (engines whose integers exceed int64: Python)
    double d = 0;         ///< real
};

/// Where a conversion is (function, parameter or result, fields and elements), for messages.
/// Set per call: no memory of its own.
struct trail {
    static constexpr unsigned max_steps = 16;
    struct place {
        const char* field;  ///< nullptr: an array element
        std::size_t index;
    };
    const char* contract = "";
    const char* function = "";
    const char* root = "result";      ///< "parameter", "argument" or "result"
    const char* root_name = nullptr;  ///< the parameter's name
    std::size_t root_number = 0;      ///< polyplug.call: the argument's position (from 1)
    bool from_script = false;         ///< polyplug.call: messages start at the script's line
    place places[max_steps];          ///< only the first `depth` are set
    unsigned depth = 0;

    // User-provided, so that `places` is left uninitialised: a call sets only what it uses.
    trail() noexcept {}  // NOLINT(modernize-use-equals-default)

    void enter(const char* field, std::size_t index) noexcept {
        if (depth < max_steps) places[depth] = {field, index};
        ++depth;
    }
    void leave() noexcept { --depth; }
};

// ---- compiling ---------------------------------------------------------------------------------

namespace plan_detail {

[[nodiscard]] inline std::string_view element_name(std::string_view array_name) noexcept {
    constexpr std::string_view open = "Array<";
    if (array_name.size() > open.size() + 1 && array_name.starts_with(open))
        return array_name.substr(open.size(), array_name.size() - open.size() - 1);
    return array_name;
}

[[nodiscard]] inline bool is_scalar(op code) noexcept {
    return code == op::integer || code == op::enumeration || code == op::real ||
           code == op::boolean || code == op::pointer || code == op::nothing;
}

/// Fills steps[at] for `type` (not an array), expanding a struct's fields after the end.
inline void fill_plain(contract_plan& plan, std::uint32_t at, const plain_type& type,
                       std::string_view type_name, unsigned depth);

inline void fill(contract_plan& plan, std::uint32_t at, const type_ref& type, unsigned depth) {
    if (type.kind != type_kind::array) {
        fill_plain(plan, at, type, type.name, depth);
        return;
    }
    const auto element = static_cast<std::uint32_t>(plan.steps.size());
    plan.steps.emplace_back();
    fill_plain(plan, element, type.element, element_name(type.name), depth);
    step& s = plan.steps[at];
    s.code = op::array;
    s.size = type.size;
    s.align = type.align;
    s.first = element;
    s.allocates = true;
    s.type_name = type.name;
}

inline void fill_plain(contract_plan& plan, std::uint32_t at, const plain_type& type,
                       std::string_view type_name, unsigned depth) {
    step s = plan.steps[at];  // keeps offset, name, field set by the caller
    s.size = type.size;
    s.align = type.align;
    s.primitive = type.primitive;
    s.index = type.index;
    s.type_name = type_name;
    switch (type.kind) {
        case type_kind::primitive:
            s.code = type.primitive == primitive_type::f32 || type.primitive == primitive_type::f64
                         ? op::real
                     : type.primitive == primitive_type::bool_ ? op::boolean
                                                               : op::integer;
            break;
        case type_kind::enum_ref:
            s.code = op::enumeration;
            break;
        case type_kind::string_view:
            s.code = op::string_view;
            s.allocates = true;
            break;
        case type_kind::buffer:
            s.code = op::buffer;
            s.allocates = true;
            break;
        case type_kind::ptr:
            s.code = op::pointer;
            break;
        case type_kind::struct_ref: {
            // Structs hold structs by value only: the nesting is finite, the guard is for a
            // contract file that escaped validation.
            s.code = op::record;
            const record_layout& layout = plan.file->structs[type.index].layout;
            s.first = static_cast<std::uint32_t>(plan.steps.size());
            s.count = static_cast<std::uint32_t>(layout.fields.size());
            if (depth > 64) s.count = 0;
            plan.steps.resize(plan.steps.size() + s.count);
            for (std::uint32_t f = 0; f < s.count; ++f) {
                step& field = plan.steps[s.first + f];
                field.offset = layout.fields[f].offset;
                field.name = layout.fields[f].name.c_str();
                field.field = f;
                fill(plan, s.first + f, layout.fields[f].type, depth + 1);
                if (plan.steps[s.first + f].allocates) s.allocates = true;
            }
            break;
        }
        case type_kind::void_:
        case type_kind::array:  // never a plain part
            s.code = op::nothing;
            break;
    }
    plan.steps[at] = s;
}

}  // namespace plan_detail

/// The plan of `decl`, a contract of `file` (both outlive the plan: the names are borrowed).
[[nodiscard]] inline contract_plan compile(const contract_file& file, const contract_decl& decl) {
    contract_plan plan;
    plan.file = &file;
    plan.decl = &decl;
    plan.enum_masks.assign(file.enums.size(), 0);
    for (std::size_t e = 0; e < file.enums.size(); ++e) {
        for (const enum_variant& v : file.enums[e].variants) plan.enum_masks[e] |= v.value;
    }
    plan.functions.resize(decl.functions.size());
    for (std::size_t i = 0; i < decl.functions.size(); ++i) {
        const function_decl& fn = decl.functions[i];
        function_plan& f = plan.functions[i];
        f.decl = &fn;
        f.params = static_cast<std::uint32_t>(fn.args.fields.size());
        f.first_param = static_cast<std::uint32_t>(plan.steps.size());
        plan.steps.resize(plan.steps.size() + f.params + 1);
        f.result = f.first_param + f.params;
        for (std::uint32_t p = 0; p < f.params; ++p) {
            step& param = plan.steps[f.first_param + p];
            param.offset = fn.args.fields[p].offset;
            param.name = fn.args.fields[p].name.c_str();
            plan_detail::fill(plan, f.first_param + p, fn.args.fields[p].type, 0);
            if (!plan_detail::is_scalar(plan.steps[f.first_param + p].code))
                f.scalar_params = false;
        }
        plan_detail::fill(plan, f.result, fn.result, 0);
        const step& result = plan.steps[f.result];
        f.has_result = result.code != op::nothing;
        f.scalar_result = plan_detail::is_scalar(result.code);
        // A string alone is checked before it is copied; a struct or an array may allocate for
        // one part and then refuse another, which the caller could not free without an arena.
        f.two_pass = result.allocates && (result.code == op::record || result.code == op::array);
    }
    return plan;
}

// ---- the checks every engine shares ---------------------------------------------------------

[[nodiscard]] constexpr bool is_signed(primitive_type type) noexcept {
    return type == primitive_type::i8 || type == primitive_type::i16 ||
           type == primitive_type::i32 || type == primitive_type::i64;
}

/// True when a double holds `v` exactly (for engines whose numbers are doubles).
[[nodiscard]] inline bool exact_double(std::uint64_t v) noexcept {
    const auto d = static_cast<double>(v);
    return d < 18446744073709551616.0 && static_cast<std::uint64_t>(d) == v;
}
[[nodiscard]] inline bool exact_double(std::int64_t v) noexcept {
    const auto d = static_cast<double>(v);
    return d < 9223372036854775808.0 && static_cast<std::int64_t>(d) == v;
}

/// `n` as an integer of `type` (its 64-bit two's complement in `out`), or why it does not fit.
[[nodiscard]] inline bool integer_fit(primitive_type type, const number& n, std::uint64_t& out,
                                      misfit& why) noexcept {
    const unsigned bits = primitive_size(type) * 8;
    const bool sign = is_signed(type);
    switch (n.tag) {
        case number::kind::integer: {
            const std::int64_t v = n.i;
            if (sign) {
                if (bits < 64) {
                    const std::int64_t limit = std::int64_t{1} << (bits - 1);
                    if (v < -limit || v >= limit) return why = misfit::out_of_range, false;
                }
            } else if (v < 0 || (bits < 64 && (static_cast<std::uint64_t>(v) >> bits) != 0)) {
                return why = misfit::out_of_range, false;
            }
            out = static_cast<std::uint64_t>(v);
            return true;
        }
        case number::kind::unsigned_integer: {
            const std::uint64_t v = n.u;
            const unsigned value_bits = sign ? bits - 1 : bits;
            if (value_bits < 64 && (v >> value_bits) != 0) return why = misfit::out_of_range, false;
            out = v;
            return true;
        }
        case number::kind::real: {
            const double d = n.d;
            if (!(d == std::floor(d)) || std::isinf(d)) return why = misfit::not_integer, false;
            const double limit = std::ldexp(1.0, static_cast<int>(sign ? bits - 1 : bits));
            if (sign ? (d < -limit || d >= limit) : (d < 0 || d >= limit))
                return why = misfit::out_of_range, false;
            out = sign ? static_cast<std::uint64_t>(static_cast<std::int64_t>(d))
                       : static_cast<std::uint64_t>(d);
            return true;
        }
        case number::kind::huge:
            break;
    }
    why = misfit::out_of_range;
    return false;
}

/// A value of an enum: one of its variants, or (bit flags) a combination of them.
[[nodiscard]] inline bool enum_fit(const contract_plan& plan, std::uint32_t index, std::uint64_t v,
                                   misfit& why) noexcept {
    const enum_decl& e = plan.file->enums[index];
    if (e.bitflag) {
        if ((v & ~plan.enum_masks[index]) == 0) return true;
        return why = misfit::not_flags, false;
    }
    for (const enum_variant& variant : e.variants) {
        if (variant.value == v) return true;
    }
    return why = misfit::not_enum_value, false;
}

/// `v` (an integer of `size` bytes) into C memory.
inline void store_integer(std::uint8_t* dst, std::uint32_t size, std::uint64_t v) noexcept {
    switch (size) {
        case 1: {
            const auto x = static_cast<std::uint8_t>(v);
            std::memcpy(dst, &x, 1);
            return;
        }
        case 2: {
            const auto x = static_cast<std::uint16_t>(v);
            std::memcpy(dst, &x, 2);
            return;
        }
        case 4: {
            const auto x = static_cast<std::uint32_t>(v);
            std::memcpy(dst, &x, 4);
            return;
        }
        default:
            std::memcpy(dst, &v, 8);
            return;
    }
}

template <class T>
[[nodiscard]] inline T load(const std::uint8_t* p) noexcept {
    T value;
    std::memcpy(&value, p, sizeof value);
    return value;
}

template <class T>
inline void store(std::uint8_t* p, const T& value) noexcept {
    std::memcpy(p, &value, sizeof value);
}

// ---- the codec an engine writes ------------------------------------------------------------

/// What the executor needs from an engine. `value` is the engine's handle of a script value.
///
/// C memory to script values (each leaves one new value where the engine keeps them):
/// `push_integer(step, int64)` for u8 ... i64 and enums (u64 through `push_unsigned`),
/// `push_real`, `push_boolean`, `push_bytes(step, ptr, len)` (string_view or buffer),
/// `push_pointer`, `begin_record(step)` + `end_field(record, field)` after each field,
/// `begin_array(step, len)` + `end_element(index)` after each element, and `fail(trail, text)`.
///
/// Script values to C memory: `to_number(step, value, number&)`, `to_boolean`, `to_bytes(step,
/// value, ptr&, len&)`, `to_pointer`, `is_record(step, value)`, `get_field(record, field, value,
/// value& out)` (out must be released with `release`), `is_missing(field, value)` and
/// `missing(trail, record, field, record_value)` for an absent field, `sequence(step,
/// value, len&)`, `get_element(value, index, value& out)`, `release(value)`, `allocate(size,
/// align)` (nullptr: no memory), `keep_bytes(step, value, ptr, len&, failed&)` (where C may keep
/// a string's bytes for the call: a copy, possibly re-encoded with its new length, or the
/// script's string when the engine anchors it), and
/// `refuse(trail, step, value, misfit)`.
template <class C>
concept vm_codec = requires(C& c, const step& s, const trail& t, typename C::value v,
                            typename C::value& out, number& n, bool& b, const std::uint8_t*& p,
                            std::size_t& len, void*& ptr) {
    { c.push_integer(s, std::int64_t{}) } -> std::same_as<bool>;
    { c.push_unsigned(s, t, std::uint64_t{}) } -> std::same_as<bool>;
    { c.push_real(0.0) } -> std::same_as<bool>;
    { c.push_boolean(false) } -> std::same_as<bool>;
    { c.push_bytes(s, p, len) } -> std::same_as<bool>;
    { c.push_pointer(nullptr) } -> std::same_as<bool>;
    { c.begin_record(s) } -> std::same_as<bool>;
    { c.end_field(s, s) } -> std::same_as<bool>;
    { c.begin_array(s, t, len) } -> std::same_as<bool>;
    { c.end_element(len) } -> std::same_as<bool>;
    { c.fail(t, "") } -> std::same_as<bool>;
    { c.to_number(s, v, n) } -> std::same_as<bool>;
    { c.to_boolean(s, v, b) } -> std::same_as<bool>;
    { c.to_bytes(s, v, p, len) } -> std::same_as<bool>;
    { c.to_pointer(s, v, ptr) } -> std::same_as<bool>;
    { c.is_record(s, v) } -> std::same_as<bool>;
    { c.get_field(s, s, v, out) } -> std::same_as<bool>;
    { c.is_missing(s, v) } -> std::same_as<bool>;
    { c.missing(t, s, s, v) } -> std::same_as<bool>;
    { c.sequence(s, v, len) } -> std::same_as<bool>;
    { c.get_element(v, len, out) } -> std::same_as<bool>;
    {c.release(v)};
    { c.allocate(len, len) } -> std::same_as<std::uint8_t*>;
    { c.keep_bytes(s, v, p, len, b) } -> std::same_as<std::uint8_t*>;
    { c.refuse(t, s, v, misfit::wrong_type) } -> std::same_as<bool>;
};

// ---- the executor --------------------------------------------------------------------------

/// Pushes the value of step `s` read from `src`.
template <class C>
bool push(C& c, const contract_plan& plan, const step& s, const std::uint8_t* src, trail& t) {
    switch (s.code) {
        case op::integer:
        case op::enumeration:
            switch (s.primitive) {
                case primitive_type::u8:
                    return c.push_integer(s, load<std::uint8_t>(src));
                case primitive_type::u16:
                    return c.push_integer(s, load<std::uint16_t>(src));
                case primitive_type::u32:
                    return c.push_integer(s, load<std::uint32_t>(src));
                case primitive_type::u64:
                    return c.push_unsigned(s, t, load<std::uint64_t>(src));
                case primitive_type::i8:
                    return c.push_integer(s, load<std::int8_t>(src));
                case primitive_type::i16:
                    return c.push_integer(s, load<std::int16_t>(src));
                case primitive_type::i32:
                    return c.push_integer(s, load<std::int32_t>(src));
                default:
                    return c.push_integer(s, load<std::int64_t>(src));
            }
        case op::real:
            return c.push_real(s.primitive == primitive_type::f32
                                   ? static_cast<double>(load<float>(src))
                                   : load<double>(src));
        case op::boolean:
            return c.push_boolean(load<std::uint8_t>(src) != 0);
        case op::string_view:
        case op::buffer: {
            // StringView and Buffer both start {ptr, len}.
            const auto view = load<StringView>(src);
            if (view.len > 0 && view.ptr == nullptr)
                return c.fail(t, "a null pointer with a non-zero length");
            return c.push_bytes(s, view.ptr, view.len);
        }
        case op::pointer:
            return c.push_pointer(load<void*>(src));
        case op::record: {
            if (!c.begin_record(s)) return false;
            for (std::uint32_t f = 0; f < s.count; ++f) {
                const step& field = plan.steps[s.first + f];
                t.enter(field.name, 0);
                if (!push(c, plan, field, src + field.offset, t)) return false;
                t.leave();
                if (!c.end_field(s, field)) return false;
            }
            return true;
        }
        case op::array: {
            const auto array = load<detail::api_toml::array_of>(src);
            if (array.len > 0 && array.items == nullptr)
                return c.fail(t, "an array with a null items pointer and a non-zero length");
            if (!c.begin_array(s, t, array.len)) return false;
            const step& element = plan.steps[s.first];
            const auto* items = static_cast<const std::uint8_t*>(array.items);
            for (std::size_t i = 0; i < array.len; ++i) {
                t.enter(nullptr, i);
                if (!push(c, plan, element, items + i * element.size, t)) return false;
                t.leave();
                if (!c.end_element(i)) return false;
            }
            return true;
        }
        case op::nothing:
            return c.fail(t, "a type the loader cannot convert");
    }
    return false;
}

/// Pushes every parameter of `f` from the argument struct at `args`.
template <class C>
bool push_params(C& c, const contract_plan& plan, const function_plan& f, const std::uint8_t* args,
                 trail& t) {
    t.root = "parameter";
    for (std::uint32_t i = 0; i < f.params; ++i) {
        const step& param = plan.steps[f.first_param + i];
        t.root_name = param.name;
        if (!push(c, plan, param, args + param.offset, t)) return false;
    }
    t.root = "result";
    t.root_name = nullptr;
    return true;
}

/// Converts `v` into the C value of step `s` at `dst` (nullptr: check only, allocate nothing).
template <class C>
bool pull(C& c, const contract_plan& plan, const step& s, typename C::value v, std::uint8_t* dst,
          trail& t) {
    misfit why = misfit::wrong_type;
    switch (s.code) {
        case op::integer:
        case op::enumeration: {
            number n;
            std::uint64_t bits = 0;
            if (!c.to_number(s, v, n)) return c.refuse(t, s, v, misfit::wrong_type);
            if (!integer_fit(s.primitive, n, bits, why)) return c.refuse(t, s, v, why);
            if (s.code == op::enumeration && !enum_fit(plan, s.index, bits, why))
                return c.refuse(t, s, v, why);
            if (dst != nullptr) store_integer(dst, s.size, bits);
            return true;
        }
        case op::real: {
            number n;
            if (!c.to_number(s, v, n)) return c.refuse(t, s, v, misfit::wrong_type);
            const double d = n.tag == number::kind::real      ? n.d
                             : n.tag == number::kind::integer ? static_cast<double>(n.i)
                                                              : static_cast<double>(n.u);
            if (s.primitive == primitive_type::f64) {
                if (dst != nullptr) store(dst, d);
                return true;
            }
            if (std::isfinite(d) && std::fabs(d) > static_cast<double>(FLT_MAX))
                return c.refuse(t, s, v, misfit::out_of_range);
            if (dst != nullptr) store(dst, static_cast<float>(d));
            return true;
        }
        case op::boolean: {
            bool b = false;
            if (!c.to_boolean(s, v, b)) return c.refuse(t, s, v, misfit::wrong_type);
            if (dst != nullptr) store(dst, static_cast<std::uint8_t>(b ? 1 : 0));
            return true;
        }
        case op::string_view:
        case op::buffer: {
            const std::uint8_t* text = nullptr;
            std::size_t len = 0;
            if (!c.to_bytes(s, v, text, len)) return c.refuse(t, s, v, misfit::wrong_type);
            if (dst == nullptr) return true;
            const bool writable = s.code == op::buffer;  // the callee owns a Buffer's bytes
            std::uint8_t* kept = nullptr;
            if (len > 0) {
                bool failed = false;
                kept = c.keep_bytes(s, v, text, len, failed);
                if (failed) return false;
                if (kept == nullptr) return c.fail(t, "out of memory for the result");
            }
            if (writable)
                store(dst, Buffer{kept, len, len});
            else
                store(dst, StringView{kept, len});
            return true;
        }
        case op::pointer: {
            void* p = nullptr;
            if (!c.to_pointer(s, v, p)) return c.refuse(t, s, v, misfit::wrong_type);
            if (dst != nullptr) store(dst, p);
            return true;
        }
        case op::record: {
            if (!c.is_record(s, v)) return c.refuse(t, s, v, misfit::wrong_type);
            if (dst != nullptr) std::memset(dst, 0, s.size);  // padding too: no stale bytes
            for (std::uint32_t f = 0; f < s.count; ++f) {
                const step& field = plan.steps[s.first + f];
                typename C::value fv{};
                if (!c.get_field(s, field, v, fv)) return false;
                t.enter(field.name, 0);
                bool ok = true;
                if (c.is_missing(field, fv))
                    ok = c.missing(t, s, field, v);
                else
                    ok = pull(c, plan, field, fv, dst != nullptr ? dst + field.offset : nullptr, t);
                c.release(fv);
                if (!ok) return false;
                t.leave();
            }
            return true;
        }
        case op::array: {
            std::size_t len = 0;
            if (!c.sequence(s, v, len)) return c.refuse(t, s, v, misfit::wrong_type);
            const step& element = plan.steps[s.first];
            std::uint8_t* items = nullptr;
            if (dst != nullptr && len > 0) {
                if (len > SIZE_MAX / element.size)
                    return c.fail(t, "an array too large for memory");
                items = c.allocate(len * element.size, element.align);
                if (items == nullptr) return c.fail(t, "out of memory for the result");
            }
            for (std::size_t i = 0; i < len; ++i) {
                typename C::value ev{};
                if (!c.get_element(v, i, ev)) return false;
                t.enter(nullptr, i);
                const bool ok = pull(c, plan, element, ev,
                                     items != nullptr ? items + i * element.size : nullptr, t);
                c.release(ev);
                if (!ok) return false;
                t.leave();
            }
            if (dst != nullptr)
                store(dst, detail::api_toml::array_of{items, items != nullptr ? len : 0});
            return true;
        }
        case op::nothing:
            return c.fail(t, "a type the loader cannot convert");
    }
    return false;
}

/// Converts a script's arguments to polyplug.call into the argument struct at `args` by `f`'s
/// plan, `value_of(i)` being the script value of parameter i. The trail names each argument by
/// its position and name; false at the first that does not fit, the trail left there.
template <class C, class ValueOf>
bool pull_arguments(C& c, const contract_plan& plan, const function_plan& f, ValueOf value_of,
                    std::uint8_t* args, trail& t) {
    t.root = "argument";
    for (std::uint32_t i = 0; i < f.params; ++i) {
        const step& param = plan.steps[f.first_param + i];
        t.root_number = i + 1;
        t.root_name = param.name;
        if (!pull(c, plan, param, value_of(i), args + param.offset, t)) return false;
    }
    t.root = "result";
    t.root_number = 0;
    t.root_name = nullptr;
    return true;
}

/// Converts the script's result `v` of `f` into `out`: checked whole first when a part of it
/// would be allocated before another part is refused.
template <class C>
bool pull_result(C& c, const contract_plan& plan, const function_plan& f, typename C::value v,
                 std::uint8_t* out, trail& t) {
    const step& result = plan.steps[f.result];
    t.root = "result";
    t.root_name = nullptr;
    if (f.two_pass && !pull(c, plan, result, v, nullptr, t)) return false;
    return pull(c, plan, result, v, out, t);
}

}  // namespace vm

POLYPLUG_END_NAMESPACE
