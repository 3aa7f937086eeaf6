// SPDX-License-Identifier: MIT
/// @file contract_file.hpp
/// Contract files (api.toml): the model of structs, enums and contracts, parsing and validation
/// (toml++), contract and function ids, and the C layout of every function's arguments and result.
#pragma once

#include <polyplug/config.hpp>
#include <polyplug/detail/toml_names.hpp>
#include <polyplug/detail/toml_prescan.hpp>
#include <polyplug/error.hpp>
#include <polyplug/ids.hpp>
#include <polyplug/version.hpp>

#include <toml++/toml.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

// Syntax errors arrive as toml::parse_error exceptions; a no-exceptions toml++ returns a different
// type from toml::parse and would not link against the Debian library anyway.
static_assert(TOML_EXCEPTIONS,
              "polyplug/contract_file.hpp needs toml++ with exceptions (TOML_EXCEPTIONS=1)");

POLYPLUG_BEGIN_NAMESPACE

/// The fixed-size scalar types of a contract file.
enum class primitive_type : std::uint8_t {
    u8,
    u16,
    u32,
    u64,
    i8,
    i16,
    i32,
    i64,
    f32,
    f64,
    bool_,  ///< `bool`: one byte, 0 or 1
};

/// What a type of a contract file is; the marshalling plan of a VM loader switches on this.
enum class type_kind : std::uint8_t {
    void_,        ///< `Void` (or `void`, or no `return`): no value; only as a return type
    primitive,    ///< a primitive_type, by value
    string_view,  ///< `StringView`: the ABI's `StringView {const uint8_t* ptr; size_t len}`
    buffer,       ///< `Buffer`: the ABI's `Buffer {uint8_t* ptr; size_t len; size_t cap}`
    ptr,          ///< `Ptr`: an opaque `void*`
    struct_ref,   ///< a `[[types]]` struct, by value
    enum_ref,     ///< an `[[enum]]`, carried as its `repr`
    array,        ///< `Array<T>`: `ArrayOf_T {const T* items; size_t len}`
};

/// A line and column in a contract file, both from 1 (0 when unknown).
struct source_position {
    std::uint32_t line = 0;
    std::uint32_t column = 0;

    friend bool operator==(const source_position&, const source_position&) = default;
};

/// One type that is not an array: the whole of most types, and the element of an `Array<T>`.
struct plain_type {
    type_kind kind = type_kind::void_;
    primitive_type primitive = primitive_type::u8;  ///< primitive: which; enum_ref: its repr
    std::uint32_t index = 0;  ///< struct_ref: index in contract_file::structs; enum_ref: in enums
    std::uint32_t size = 0;   ///< sizeof in C (0 for void)
    std::uint32_t align = 1;  ///< alignof in C (1 for void)
};

/// A type as a field, parameter or result uses it, with its C size and alignment.
struct type_ref : plain_type {
    plain_type element;  ///< kind array: the element type (never void, never an array)
    std::string name;  ///< canonical spelling: "u8", "StringView", "Point", "Array<Point>", "Void"

    [[nodiscard]] bool is_void() const noexcept { return kind == type_kind::void_; }
    [[nodiscard]] bool is_array() const noexcept { return kind == type_kind::array; }
};

/// A struct field or a function parameter, with its offset in the enclosing C struct.
struct field_decl {
    std::string name;
    type_ref type;
    std::uint32_t offset = 0;  ///< offsetof in the enclosing struct
    std::string docs;          ///< the optional `docs` string ("" when absent)
    source_position position;  ///< where the field's table starts
};

/// A C struct: fields in declaration order with their offsets, and its size and alignment.
/// Without fields: size 0, align 1 (a function without parameters; callers may pass NULL).
struct record_layout {
    std::vector<field_decl> fields;
    std::uint32_t size = 0;
    std::uint32_t align = 1;

    /// The field with this name, or nullptr.
    [[nodiscard]] const field_decl* find(std::string_view field_name) const noexcept {
        for (const field_decl& f : fields) {
            if (f.name == field_name) return &f;
        }
        return nullptr;
    }
};

/// A `[[types]]` entry: a struct passed by value.
struct struct_decl {
    std::string name;
    record_layout layout;  ///< fields, offsets, size and alignment
    std::string docs;
    source_position position;
};

/// One `[[enum.variants]]` entry.
struct enum_variant {
    std::string name;
    std::uint64_t value = 0;  ///< the evaluated `value`, within the enum's repr
    std::string docs;
    source_position position;
};

/// An `[[enum]]` entry: an unsigned integer type with named values.
struct enum_decl {
    std::string name;
    primitive_type repr = primitive_type::u32;  ///< u8, u16, u32 or u64
    bool bitflag = false;                       ///< a set of flags: values may repeat
    std::vector<enum_variant> variants;         ///< in declaration order, at least one
    std::string docs;
    source_position position;

    /// The variant with this name, or nullptr.
    [[nodiscard]] const enum_variant* find(std::string_view variant_name) const noexcept {
        for (const enum_variant& v : variants) {
            if (v.name == variant_name) return &v;
        }
        return nullptr;
    }
};

/// A function of a contract.
struct function_decl {
    std::string name;
    std::uint32_t id = 0;  ///< the declaration index in its contract
    record_layout args;    ///< the argument struct: the parameters in order, by C rules
    type_ref result;       ///< what `out` points to; kind void_ when there is no result
    std::string docs;
    source_position position;
};

/// Which side implements a contract.
enum class contract_side : std::uint8_t {
    guest,  ///< `[[guest_contract]]`: plugins implement it, the host calls it
    host,   ///< `[[host_contract]]`: the host implements it, plugins call it
};

/// A `[[guest_contract]]` or `[[host_contract]]` entry.
struct contract_decl {
    contract_side side = contract_side::guest;
    std::string name;           ///< dotted ("pipeline.Decoder"); host contracts: "host.*"
    polyplug::version version;  ///< from "major[.minor[.patch]]"
    bool singleton = false;     ///< host contracts only: one shared instance
    std::uint64_t id = 0;       ///< guest_contract_id / host_contract_id(name, major)
    std::vector<function_decl> functions;  ///< function id = index
    std::string docs;
    source_position position;

    /// The function with this name, or nullptr.
    [[nodiscard]] const function_decl* find_function(
        std::string_view function_name) const noexcept {
        for (const function_decl& f : functions) {
            if (f.name == function_name) return &f;
        }
        return nullptr;
    }
};

/// A validated contract file, every id and layout computed. Produced by parse_contract_file and
/// read_contract_file; a plain value, cheap to query (nothing is computed on lookup).
struct contract_file {
    std::string source;                          ///< the name used in messages (usually a path)
    std::vector<struct_decl> structs;            ///< the `[[types]]`, in file order
    std::vector<enum_decl> enums;                ///< the `[[enum]]`s, in file order
    std::vector<contract_decl> guest_contracts;  ///< in file order
    std::vector<contract_decl> host_contracts;   ///< in file order

    [[nodiscard]] const struct_decl* find_struct(std::string_view name) const noexcept {
        for (const struct_decl& s : structs) {
            if (s.name == name) return &s;
        }
        return nullptr;
    }
    [[nodiscard]] const enum_decl* find_enum(std::string_view name) const noexcept {
        for (const enum_decl& e : enums) {
            if (e.name == name) return &e;
        }
        return nullptr;
    }
    /// The guest or host contract with this id, or nullptr.
    [[nodiscard]] const contract_decl* find_contract(std::uint64_t id) const noexcept {
        for (const auto* list : {&guest_contracts, &host_contracts}) {
            for (const contract_decl& c : *list) {
                if (c.id == id) return &c;
            }
        }
        return nullptr;
    }
    /// The struct a struct_ref type names (its layout), or nullptr for any other kind.
    [[nodiscard]] const struct_decl* struct_of(const plain_type& type) const noexcept {
        return type.kind == type_kind::struct_ref && type.index < structs.size()
                   ? &structs[type.index]
                   : nullptr;
    }
    /// The enum an enum_ref type names, or nullptr for any other kind.
    [[nodiscard]] const enum_decl* enum_of(const plain_type& type) const noexcept {
        return type.kind == type_kind::enum_ref && type.index < enums.size() ? &enums[type.index]
                                                                             : nullptr;
    }
};

/// Contract files larger than this are refused (errc::contract_file_invalid) before parsing.
inline constexpr std::size_t max_contract_file_bytes = std::size_t{4} << 20;

/// "u8", "i64", "f32", "bool", ...: how a contract file spells a primitive.
[[nodiscard]] constexpr std::string_view primitive_name(primitive_type type) noexcept {
    switch (type) {
        case primitive_type::u8:
            return "u8";
        case primitive_type::u16:
            return "u16";
        case primitive_type::u32:
            return "u32";
        case primitive_type::u64:
            return "u64";
        case primitive_type::i8:
            return "i8";
        case primitive_type::i16:
            return "i16";
        case primitive_type::i32:
            return "i32";
        case primitive_type::i64:
            return "i64";
        case primitive_type::f32:
            return "f32";
        case primitive_type::f64:
            return "f64";
        case primitive_type::bool_:
            return "bool";
    }
    return "?";
}

/// sizeof (= alignof) of a primitive in C.
[[nodiscard]] constexpr std::uint32_t primitive_size(primitive_type type) noexcept {
    switch (type) {
        case primitive_type::u8:
        case primitive_type::i8:
        case primitive_type::bool_:
            return 1;
        case primitive_type::u16:
        case primitive_type::i16:
            return 2;
        case primitive_type::u32:
        case primitive_type::i32:
        case primitive_type::f32:
            return 4;
        case primitive_type::u64:
        case primitive_type::i64:
        case primitive_type::f64:
            return 8;
    }
    return 0;
}

/// "void", "primitive", "string_view", ...: a type_kind's name, for messages.
[[nodiscard]] constexpr std::string_view type_kind_name(type_kind kind) noexcept {
    switch (kind) {
        case type_kind::void_:
            return "void";
        case type_kind::primitive:
            return "primitive";
        case type_kind::string_view:
            return "string_view";
        case type_kind::buffer:
            return "buffer";
        case type_kind::ptr:
            return "ptr";
        case type_kind::struct_ref:
            return "struct";
        case type_kind::enum_ref:
            return "enum";
        case type_kind::array:
            return "array";
    }
    return "?";
}

/// How `file` spells a type that is not an array: "u32", "StringView", "Buffer", "Ptr", a
/// struct's or an enum's name ("Void" for void), for generated code and messages.
[[nodiscard]] inline std::string type_name(const contract_file& file, const plain_type& type) {
    switch (type.kind) {
        case type_kind::primitive:
            return std::string(primitive_name(type.primitive));
        case type_kind::string_view:
            return "StringView";
        case type_kind::buffer:
            return "Buffer";
        case type_kind::ptr:
            return "Ptr";
        case type_kind::struct_ref:
            return type.index < file.structs.size() ? file.structs[type.index].name : "?";
        case type_kind::enum_ref:
            return type.index < file.enums.size() ? file.enums[type.index].name : "?";
        case type_kind::void_:
        case type_kind::array:
            break;
    }
    return "Void";
}

/// True when `text` matches `[A-Za-z_][A-Za-z0-9_]*` (reserved words not considered).
[[nodiscard]] constexpr bool is_identifier_syntax(std::string_view text) noexcept {
    if (text.empty()) return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        const bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        const bool digit = c >= '0' && c <= '9';
        if (!letter && !(digit && i > 0)) return false;
    }
    return true;
}

namespace detail::api_toml {

// Reserved words per target language, each list as its language reference gives it (C: C23
// included; C++: C++20 keywords and alternative tokens; Rust: strict and reserved keywords; Python:
// hard keywords; Lua 5.4; JavaScript: reserved words including strict-mode ones). A name in any
// of them cannot be a field, parameter, function, type or variant name in generated code.
inline constexpr std::string_view c_words[] = {
    "auto",       "break",      "case",           "char",
    "const",      "continue",   "default",        "do",
    "double",     "else",       "enum",           "extern",
    "float",      "for",        "goto",           "if",
    "inline",     "int",        "long",           "register",
    "restrict",   "return",     "short",          "signed",
    "sizeof",     "static",     "struct",         "switch",
    "typedef",    "union",      "unsigned",       "void",
    "volatile",   "while",      "_Alignas",       "_Alignof",
    "_Atomic",    "_Bool",      "_Complex",       "_Generic",
    "_Imaginary", "_Noreturn",  "_Static_assert", "_Thread_local",
    "alignas",    "alignof",    "bool",           "constexpr",
    "false",      "nullptr",    "static_assert",  "thread_local",
    "true",       "typeof",     "typeof_unqual",  "_BitInt",
    "_Decimal32", "_Decimal64", "_Decimal128",
};
inline constexpr std::string_view cpp_words[] = {
    "alignas",       "alignof",     "and",
    "and_eq",        "asm",         "auto",
    "bitand",        "bitor",       "bool",
    "break",         "case",        "catch",
    "char",          "char8_t",     "char16_t",
    "char32_t",      "class",       "compl",
    "concept",       "const",       "consteval",
    "constexpr",     "constinit",   "const_cast",
    "continue",      "co_await",    "co_return",
    "co_yield",      "decltype",    "default",
    "delete",        "do",          "double",
    "dynamic_cast",  "else",        "enum",
    "explicit",      "export",      "extern",
    "false",         "float",       "for",
    "friend",        "goto",        "if",
    "inline",        "int",         "long",
    "mutable",       "namespace",   "new",
    "noexcept",      "not",         "not_eq",
    "nullptr",       "operator",    "or",
    "or_eq",         "private",     "protected",
    "public",        "register",    "reinterpret_cast",
    "requires",      "return",      "short",
    "signed",        "sizeof",      "static",
    "static_assert", "static_cast", "struct",
    "switch",        "template",    "this",
    "thread_local",  "throw",       "true",
    "try",           "typedef",     "typeid",
    "typename",      "union",       "unsigned",
    "using",         "virtual",     "void",
    "volatile",      "wchar_t",     "while",
    "xor",           "xor_eq",
};
inline constexpr std::string_view rust_words[] = {
    "_",        "abstract", "as",      "async",  "await",    "become", "box",    "break", "const",
    "continue", "crate",    "do",      "dyn",    "else",     "enum",   "extern", "false", "final",
    "fn",       "for",      "gen",     "if",     "impl",     "in",     "let",    "loop",  "macro",
    "match",    "mod",      "move",    "mut",    "override", "priv",   "pub",    "ref",   "return",
    "self",     "Self",     "static",  "struct", "super",    "trait",  "true",   "try",   "type",
    "typeof",   "unsafe",   "unsized", "use",    "virtual",  "where",  "while",  "yield",
};
inline constexpr std::string_view python_words[] = {
    "False", "None",     "True",  "and",    "as",   "assert", "async",  "await",    "break",
    "class", "continue", "def",   "del",    "elif", "else",   "except", "finally",  "for",
    "from",  "global",   "if",    "import", "in",   "is",     "lambda", "nonlocal", "not",
    "or",    "pass",     "raise", "return", "try",  "while",  "with",   "yield",
};
inline constexpr std::string_view lua_words[] = {
    "and",      "break",  "do",   "else", "elseif", "end",   "false", "for",
    "function", "goto",   "if",   "in",   "local",  "nil",   "not",   "or",
    "repeat",   "return", "then", "true", "until",  "while",
};
inline constexpr std::string_view js_words[] = {
    "await",     "break",  "case",     "catch",  "class",      "const",   "continue",  "debugger",
    "default",   "delete", "do",       "else",   "enum",       "export",  "extends",   "false",
    "finally",   "for",    "function", "if",     "implements", "import",  "in",        "instanceof",
    "interface", "let",    "new",      "null",   "package",    "private", "protected", "public",
    "return",    "static", "super",    "switch", "this",       "throw",   "true",      "try",
    "typeof",    "var",    "void",     "while",  "with",       "yield",
};

struct reserved_list {
    std::string_view language;
    const std::string_view* begin;
    const std::string_view* end;
};

inline constexpr reserved_list reserved_lists[] = {
    {"C", std::begin(c_words), std::end(c_words)},
    {"C++", std::begin(cpp_words), std::end(cpp_words)},
    {"Rust", std::begin(rust_words), std::end(rust_words)},
    {"Python", std::begin(python_words), std::end(python_words)},
    {"Lua", std::begin(lua_words), std::end(lua_words)},
    {"JavaScript", std::begin(js_words), std::end(js_words)},
};

/// "C, C++ and Rust": the languages that reserve `word`; "" when none does.
[[nodiscard]] inline std::string reserving_languages(std::string_view word) {
    std::vector<std::string_view> languages;
    for (const reserved_list& list : reserved_lists) {
        if (std::find(list.begin, list.end, word) != list.end) languages.push_back(list.language);
    }
    std::string out;
    for (std::size_t i = 0; i < languages.size(); ++i) {
        if (i > 0) out += i + 1 == languages.size() ? " and " : ", ";
        out += languages[i];
    }
    return out;
}

}  // namespace detail::api_toml

/// True when `word` is a reserved word of C, C++, Rust, Python, Lua or JavaScript.
[[nodiscard]] constexpr bool is_reserved_word(std::string_view word) noexcept {
    for (const detail::api_toml::reserved_list& list : detail::api_toml::reserved_lists) {
        for (const std::string_view* w = list.begin; w != list.end; ++w) {
            if (*w == word) return true;
        }
    }
    return false;
}

namespace detail::api_toml {

// ---- suggestions ------------------------------------------------------------------------------

[[nodiscard]] constexpr bool is_word_char(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

[[nodiscard]] constexpr char lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

/// Optimal-string-alignment distance, ignoring ASCII case: a swapped pair counts as one edit.
[[nodiscard]] inline std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> before(b.size() + 1), previous(b.size() + 1), current(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        current[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
            current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1])) {
                current[j] = std::min(current[j], before[j - 2] + 1);
            }
        }
        before.swap(previous);
        previous.swap(current);
    }
    return previous[b.size()];
}

/// How far `typed` is from `candidate`: the edit distance, or from a prefix of `candidate` about
/// as long as `typed` (so "Strng" comes close to "StringView").
[[nodiscard]] inline std::size_t closeness(std::string_view typed, std::string_view candidate) {
    std::size_t best = edit_distance(typed, candidate);
    if (typed.size() >= 3 && candidate.size() > typed.size()) {
        for (std::size_t length = typed.size() - 1; length <= typed.size() + 1; ++length) {
            if (length > candidate.size()) break;
            best = std::min(best, edit_distance(typed, candidate.substr(0, length)));
        }
    }
    return best;
}

/// The candidate closest to `typed` if it is close enough to be a likely typo, else "".
template <class Range>
[[nodiscard]] std::string closest(std::string_view typed, const Range& candidates) {
    constexpr std::size_t longest_compared = 64;  // garbage keys get no suggestion, and no O(n^2)
    if (typed.empty() || typed.size() > longest_compared) return {};
    const std::size_t limit = std::max<std::size_t>(1, (typed.size() + 2) / 3);
    std::string best;
    std::size_t best_score = limit + 1;
    for (const auto& candidate : candidates) {
        const std::string_view c(candidate);
        if (c.size() > longest_compared || c == typed) continue;
        const std::size_t score = closeness(typed, c);
        if (score < best_score) {
            best_score = score;
            best = std::string(c);
        }
    }
    return best;
}

[[nodiscard]] inline std::string did_you_mean(std::string_view suggestion) {
    return suggestion.empty() ? std::string()
                              : " (did you mean '" + std::string(suggestion) + "'?)";
}

// ---- built-in types ---------------------------------------------------------------------------

/// `Array<T>` as contract functions carry it (spec 5.3): a pointer to the first element and a
/// count. This is not the ABI's 24-byte `Array` (which adds `align` for HostApi results).
struct array_of {
    const void* items;
    std::size_t len;
};

/// A type name the contract file language knows without a declaration. `polyplug types` lists
/// this table, so the description is what a user reads.
struct builtin {
    std::string_view name;
    plain_type type;
    std::string_view description;
};

template <class T>
[[nodiscard]] constexpr plain_type sized(type_kind kind) noexcept {
    return {kind, primitive_type::u8, 0, static_cast<std::uint32_t>(sizeof(T)),
            static_cast<std::uint32_t>(alignof(T))};
}

[[nodiscard]] constexpr plain_type primitive_of(primitive_type p) noexcept {
    return {type_kind::primitive, p, 0, primitive_size(p), primitive_size(p)};
}

inline constexpr builtin builtins[] = {
    {"u8", primitive_of(primitive_type::u8), "unsigned 8-bit integer (uint8_t)"},
    {"u16", primitive_of(primitive_type::u16), "unsigned 16-bit integer (uint16_t)"},
    {"u32", primitive_of(primitive_type::u32), "unsigned 32-bit integer (uint32_t)"},
    {"u64", primitive_of(primitive_type::u64), "unsigned 64-bit integer (uint64_t)"},
    {"i8", primitive_of(primitive_type::i8), "signed 8-bit integer (int8_t)"},
    {"i16", primitive_of(primitive_type::i16), "signed 16-bit integer (int16_t)"},
    {"i32", primitive_of(primitive_type::i32), "signed 32-bit integer (int32_t)"},
    {"i64", primitive_of(primitive_type::i64), "signed 64-bit integer (int64_t)"},
    {"f32", primitive_of(primitive_type::f32), "IEEE 754 single-precision float (float)"},
    {"f64", primitive_of(primitive_type::f64), "IEEE 754 double-precision float (double)"},
    {"bool", primitive_of(primitive_type::bool_), "one byte, 0 or 1 (bool)"},
    {"StringView", sized<StringView>(type_kind::string_view),
     "UTF-8 text the callee borrows: StringView {const uint8_t* ptr; size_t len}"},
    {"Buffer", sized<Buffer>(type_kind::buffer),
     "bytes with a capacity: Buffer {uint8_t* ptr; size_t len; size_t cap}"},
    {"Ptr", sized<void*>(type_kind::ptr), "an opaque pointer (void*), never dereferenced"},
};

/// The type words that are not types of their own: `Void` (and `void`) and `Array<T>`. Listed
/// with the built-ins by `polyplug types`; `size` and `align` are 0 where there is no value.
struct type_form {
    std::string_view name;
    std::uint32_t size;
    std::uint32_t align;
    std::string_view description;
};

inline constexpr type_form type_forms[] = {
    {"Void", 0, 0, "no value; only as a return type (also spelled void, or no return)"},
    {"Array<T>", static_cast<std::uint32_t>(sizeof(array_of)),
     static_cast<std::uint32_t>(alignof(array_of)),
     "ArrayOf_T {const T* items; size_t len}; T is any type but Void and Array"},
};

/// Names a declared type may not take: the built-ins and the words of the type syntax.
[[nodiscard]] inline bool is_builtin_type_name(std::string_view name) noexcept {
    for (const builtin& b : builtins) {
        if (b.name == name) return true;
    }
    return name == "Void" || name == "void" || name == "Array";
}

/// Spellings from other languages that people reach for, and what the contract file calls them.
inline constexpr std::pair<std::string_view, std::string_view> type_aliases[] = {
    {"string", "StringView"},
    {"str", "StringView"},
    {"&str", "StringView"},
    {"char*", "StringView"},
    {"const char*", "StringView"},
    {"std::string", "StringView"},
    {"std::string_view", "StringView"},
    {"uint8_t", "u8"},
    {"uint16_t", "u16"},
    {"uint32_t", "u32"},
    {"uint64_t", "u64"},
    {"int8_t", "i8"},
    {"int16_t", "i16"},
    {"int32_t", "i32"},
    {"int64_t", "i64"},
    {"int", "i32"},
    {"float", "f32"},
    {"double", "f64"},
    {"boolean", "bool"},
    {"_Bool", "bool"},
    {"void*", "Ptr"},
    {"pointer", "Ptr"},
    {"bytes", "Buffer"},
    {"Vec", "Array"},
};

// ---- messages ---------------------------------------------------------------------------------

[[nodiscard]] inline source_position position_of(const toml::source_region& region) noexcept {
    return {static_cast<std::uint32_t>(region.begin.line),
            static_cast<std::uint32_t>(region.begin.column)};
}

[[nodiscard]] inline std::string squoted(std::string_view text) {
    return "'" + std::string(text) + "'";
}

[[nodiscard]] inline bool earlier(const toml::source_region& a,
                                  const toml::source_region& b) noexcept {
    return a.begin.line != b.begin.line ? a.begin.line < b.begin.line
                                        : a.begin.column < b.begin.column;
}

/// Formats every message as "<source>:<line>:<column>: <problem>".
class reporter {
public:
    explicit reporter(std::string_view source) : source_(source) {}

    [[nodiscard]] status at(source_position where, std::string_view problem) const {
        std::string text = source_;
        if (where.line != 0) {
            text += ":" + std::to_string(where.line) + ":" + std::to_string(where.column);
        }
        return {errc::contract_file_invalid, text + ": " + std::string(problem)};
    }
    [[nodiscard]] status at(const toml::node& node, std::string_view problem) const {
        return at(position_of(node.source()), problem);
    }
    [[nodiscard]] status whole_file(std::string_view problem) const {
        return {errc::contract_file_invalid, source_ + ": " + std::string(problem)};
    }

private:
    std::string source_;
};

/// One table of the file (a struct, a field, a function...), named for messages as `what`:
/// "function 'greet'", "a [[types]] entry", and so on.
class entry {
public:
    entry(const reporter& report, const toml::table& table, std::string what)
        : report_(report), table_(table), what_(std::move(what)) {}

    [[nodiscard]] const toml::table& table() const noexcept { return table_; }
    [[nodiscard]] const std::string& what() const noexcept { return what_; }
    [[nodiscard]] const reporter& report() const noexcept { return report_; }
    [[nodiscard]] source_position position() const noexcept { return position_of(table_.source()); }
    [[nodiscard]] const toml::node* find(std::string_view key) const { return table_.get(key); }

    [[nodiscard]] status fail(std::string_view problem) const {
        return report_.at(position(), problem);
    }
    [[nodiscard]] status fail_at(const toml::node& node, std::string_view problem) const {
        return report_.at(node, problem);
    }

    /// Every key must be in `allowed` (plus `docs` and `langs`, accepted everywhere and checked
    /// for shape only). The unknown key nearest the top of the file is reported.
    [[nodiscard]] status check_keys(std::initializer_list<std::string_view> allowed) const {
        std::vector<std::string_view> known(allowed);
        known.push_back("docs");
        known.push_back("langs");
        const toml::key* unknown = nullptr;
        for (const auto& [key, node] : table_) {
            if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
            if (unknown == nullptr || earlier(key.source(), unknown->source())) unknown = &key;
        }
        if (unknown != nullptr) {
            const std::string text = "unknown key " + squoted(unknown->str()) + " in " + what_;
            std::string hint;
            if (unknown->str() == "singleton")
                hint = " ('singleton' applies to host contracts only)";
            if (hint.empty()) hint = did_you_mean(closest(unknown->str(), known));
            return report_.at(position_of(unknown->source()), text + hint);
        }
        if (status s = check_docs(); !s) return s;
        return check_langs();
    }

    [[nodiscard]] status wrong_type(std::string_view key, std::string_view expected,
                                    const toml::node& found) const {
        return fail_at(found, "key " + squoted(key) + " of " + what_ + " must be " +
                                  std::string(expected) + ", found " +
                                  std::string(toml_type_name(found.type())));
    }

    /// The string at `key`; `node` is where it was (nullptr when absent and not required).
    [[nodiscard]] status string(std::string_view key, bool required, std::string& out,
                                const toml::node** node = nullptr) const {
        const toml::node* found = find(key);
        if (node != nullptr) *node = found;
        if (found == nullptr) {
            return required ? fail(what_ + " has no " + squoted(key)) : status{};
        }
        const toml::value<std::string>* value = found->as_string();
        if (value == nullptr) return wrong_type(key, "a string", *found);
        out = value->get();
        return {};
    }

    [[nodiscard]] status boolean(std::string_view key, bool& out) const {
        const toml::node* found = find(key);
        if (found == nullptr) return {};
        const toml::value<bool>* value = found->as_boolean();
        if (value == nullptr) return wrong_type(key, "a boolean (true or false)", *found);
        out = value->get();
        return {};
    }

    /// The array of tables at `key` (nullptr when absent and not required). `header` is how the
    /// file spells it, for messages: "[[guest_contract.functions]]".
    [[nodiscard]] status tables(std::string_view key, bool required, std::string_view header,
                                const toml::array*& out) const {
        out = nullptr;
        const toml::node* found = find(key);
        if (found == nullptr) {
            return required ? fail(what_ + " has no " + squoted(key)) : status{};
        }
        const toml::array* list = found->as_array();
        if (list == nullptr) {
            return wrong_type(key, "an array of tables (" + std::string(header) + ")", *found);
        }
        for (const toml::node& element : *list) {
            if (!element.is_table()) {
                return fail_at(element, "each entry of " + squoted(key) + " in " + what_ +
                                            " must be a table, found " +
                                            std::string(toml_type_name(element.type())));
            }
        }
        out = list;
        return {};
    }

    [[nodiscard]] status docs(std::string& out) const { return string("docs", false, out); }

private:
    [[nodiscard]] status check_docs() const {
        std::string ignored;
        return docs(ignored);
    }

    /// `langs.<lang>.attributes`: per-language metadata, ignored here but shaped as documented.
    [[nodiscard]] status check_langs() const {
        const toml::node* found = find("langs");
        if (found == nullptr) return {};
        const toml::table* langs = found->as_table();
        if (langs == nullptr) return wrong_type("langs", "a table of languages", *found);
        for (const auto& [language, settings] : *langs) {
            const toml::table* per_language = settings.as_table();
            const std::string key = "langs." + std::string(language.str());
            if (per_language == nullptr) return wrong_type(key, "a table", settings);
            for (const auto& [name, value] : *per_language) {
                if (name.str() != "attributes") {
                    constexpr std::string_view only[] = {"attributes"};
                    return report_.at(position_of(name.source()),
                                      "unknown key " + squoted(name.str()) + " in " + key + " of " +
                                          what_ + did_you_mean(closest(name.str(), only)));
                }
                if (!value.is_table() && !value.is_array()) {
                    return wrong_type(key + ".attributes", "a table or an array", value);
                }
            }
        }
        return {};
    }

    const reporter& report_;
    const toml::table& table_;
    std::string what_;
};

// ---- identifiers and names --------------------------------------------------------------------

/// `name` must be an identifier that no target language reserves. `role`: "field", "function"...
[[nodiscard]] inline status check_identifier(const entry& at, const toml::node& node,
                                             std::string_view role, std::string_view name) {
    if (!is_identifier_syntax(name)) {
        return at.fail_at(node, std::string(role) + " name " + squoted(name) +
                                    " is not an identifier ([A-Za-z_][A-Za-z0-9_]*)");
    }
    const std::string languages = reserving_languages(name);
    if (!languages.empty()) {
        return at.fail_at(node, std::string(role) + " name " + squoted(name) +
                                    " is a reserved word in " + languages);
    }
    return {};
}

/// Reads `name` (required) and checks it as an identifier.
[[nodiscard]] inline status read_identifier(const entry& at, std::string_view role,
                                            std::string& out) {
    const toml::node* node = nullptr;
    if (status s = at.string("name", true, out, &node); !s) return s;
    return check_identifier(at, *node, role, out);
}

/// A contract name: dot-separated identifiers ("pipeline.Decoder").
[[nodiscard]] inline bool is_dotted_name(std::string_view name) noexcept {
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = name.find('.', start);
        const std::string_view part =
            name.substr(start, dot == name.npos ? name.npos : dot - start);
        if (!is_identifier_syntax(part)) return false;
        if (dot == name.npos) return true;
        start = dot + 1;
    }
}

/// "name" of a table if it is a string (for messages before validation), else "".
[[nodiscard]] inline std::string name_hint(const toml::table& table) {
    const toml::node* node = table.get("name");
    const toml::value<std::string>* value = node == nullptr ? nullptr : node->as_string();
    return value == nullptr ? std::string() : value->get();
}

[[nodiscard]] inline std::string described(std::string_view role, std::string_view name,
                                           std::string_view fallback) {
    return name.empty() ? std::string(fallback) : std::string(role) + " " + squoted(name);
}

[[nodiscard]] inline std::string line_of(source_position where) {
    return "line " + std::to_string(where.line);
}

// ---- versions ---------------------------------------------------------------------------------

/// "major[.minor[.patch]]": ASCII digits, major up to 2^32 - 1, minor and patch up to 65535.
/// (version::parse requires a minor and allows 32-bit minors, so it does not fit here.)
[[nodiscard]] inline std::optional<polyplug::version> parse_contract_version(std::string_view text,
                                                                             std::string& why) {
    std::uint64_t parts[3]{};
    std::size_t count = 0;
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = text.find('.', start);
        const std::string_view part =
            text.substr(start, dot == text.npos ? text.npos : dot - start);
        if (count == 3) {
            why = "more than three components";
            return std::nullopt;
        }
        if (part.empty()) {
            why = "an empty component";
            return std::nullopt;
        }
        std::uint64_t value = 0;
        for (const char c : part) {
            if (c < '0' || c > '9') {
                why = "write \"major[.minor[.patch]]\" with decimal digits";
                return std::nullopt;
            }
            value = value * 10u + static_cast<std::uint64_t>(c - '0');
            if (value > UINT32_MAX) {
                why = "a component above 4294967295";
                return std::nullopt;
            }
        }
        parts[count++] = value;
        if (dot == text.npos) break;
        start = dot + 1;
    }
    if (parts[1] > 0xFFFFu || parts[2] > 0xFFFFu) {
        why = std::string(parts[1] > 0xFFFFu ? "minor" : "patch") + " version " +
              std::to_string(std::max(parts[1], parts[2])) + " is above 65535";
        return std::nullopt;
    }
    return polyplug::version{static_cast<std::uint32_t>(parts[0]),
                             static_cast<std::uint32_t>(parts[1]),
                             static_cast<std::uint32_t>(parts[2])};
}

// ---- enum value expressions -------------------------------------------------------------------

/// Recursive descent over `value` expressions of one variant:
///   or    := shift ('|' shift)*
///   shift := unary ('<<' unary)*
///   unary := '~' unary | primary
///   primary := number | earlier-variant-name | '(' or ')'
/// number: decimal (no leading zeros), 0x hex, 0b binary. Every intermediate value must fit the
/// repr; `~` complements within the repr's width.
class expression {
public:
    expression(std::string_view text, const enum_decl& owner, std::string_view current,
               const std::vector<std::string>& all_names)
        : text_(text),
          owner_(owner),
          current_(current),
          all_names_(all_names),
          bits_(primitive_size(owner.repr) * 8u),
          max_(bits_ == 64 ? UINT64_MAX : (std::uint64_t{1} << bits_) - 1) {}

    /// The value, or nullopt with error() and error_offset() set.
    [[nodiscard]] std::optional<std::uint64_t> evaluate() {
        std::uint64_t value = 0;
        skip_spaces();
        if (pos_ == text_.size()) {
            fail(pos_, "empty expression");
            return std::nullopt;
        }
        if (!parse_or(value)) return std::nullopt;
        skip_spaces();
        if (pos_ != text_.size()) {
            unexpected();
            return std::nullopt;
        }
        return value;
    }

    /// What went wrong ("unknown name 'Reed'"); the caller says where ("in the value of ...").
    [[nodiscard]] const std::string& error() const noexcept { return error_; }
    /// A parenthesised hint for the end of the message (" (did you mean 'Read'?)"), or "".
    [[nodiscard]] const std::string& hint() const noexcept { return hint_; }
    [[nodiscard]] std::size_t error_offset() const noexcept { return error_at_; }

private:
    static constexpr int max_depth = 64;

    bool fail(std::size_t at, std::string message, std::string hint = {}) {
        if (error_.empty()) {
            error_ = std::move(message);
            hint_ = std::move(hint);
            error_at_ = at;
        }
        return false;
    }

    [[nodiscard]] std::string repr() const { return std::string(primitive_name(owner_.repr)); }

    bool unexpected() {
        if (pos_ >= text_.size()) return fail(pos_, "unexpected end of expression");
        return fail(pos_, "unexpected " + squoted(text_.substr(pos_, 1)),
                    " (the operators are |, << and ~)");
    }

    void skip_spaces() noexcept {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
    }

    [[nodiscard]] bool at(std::string_view token) const noexcept {
        return text_.substr(pos_, token.size()) == token;
    }

    bool parse_or(std::uint64_t& out) {
        if (!parse_shift(out)) return false;
        while (true) {
            skip_spaces();
            if (!at("|")) return true;
            ++pos_;
            std::uint64_t rhs = 0;
            if (!parse_shift(rhs)) return false;
            out |= rhs;
        }
    }

    bool parse_shift(std::uint64_t& out) {
        if (!parse_unary(out)) return false;
        while (true) {
            skip_spaces();
            if (!at("<<")) return true;
            const std::size_t op = pos_;
            pos_ += 2;
            std::uint64_t count = 0;
            if (!parse_unary(count)) return false;
            if (count >= bits_) {
                return fail(op, "shift by " + std::to_string(count) + " out of range for " + repr(),
                            " (at most " + std::to_string(bits_ - 1) + ")");
            }
            const std::uint64_t shifted = out << count;
            if ((shifted >> count) != out || shifted > max_) {
                return fail(op,
                            std::to_string(out) + " << " + std::to_string(count) +
                                " does not fit " + repr(),
                            " (largest value " + std::to_string(max_) + ")");
            }
            out = shifted;
        }
    }

    bool parse_unary(std::uint64_t& out) {
        skip_spaces();
        if (!at("~")) return parse_primary(out);
        ++pos_;
        if (++depth_ > max_depth) return fail(pos_, "expression nested too deeply");
        std::uint64_t operand = 0;
        if (!parse_unary(operand)) return false;
        --depth_;
        out = ~operand & max_;
        return true;
    }

    bool parse_primary(std::uint64_t& out) {
        skip_spaces();
        if (pos_ >= text_.size()) return unexpected();
        const char c = text_[pos_];
        if (c == '(') {
            const std::size_t open = pos_++;
            if (++depth_ > max_depth) return fail(open, "expression nested too deeply");
            if (!parse_or(out)) return false;
            skip_spaces();
            if (!at(")")) {
                return pos_ < text_.size() ? unexpected()
                                           : fail(open, "'(' without a matching ')'");
            }
            ++pos_;
            --depth_;
            return true;
        }
        if (c >= '0' && c <= '9') return parse_number(out);
        if (is_identifier_syntax(text_.substr(pos_, 1))) return parse_name(out);
        return unexpected();
    }

    bool parse_number(std::uint64_t& out) {
        const std::size_t start = pos_;
        std::uint64_t base = 10;
        if (at("0x") || at("0X")) base = 16;
        if (at("0b") || at("0B")) base = 2;
        if (base != 10) pos_ += 2;
        const std::size_t digits_start = pos_;
        std::uint64_t value = 0;
        bool overflow = false;
        while (pos_ < text_.size()) {
            const char c = text_[pos_];
            std::uint64_t digit = 99;
            if (c >= '0' && c <= '9') digit = static_cast<std::uint64_t>(c - '0');
            if (c >= 'a' && c <= 'f') digit = static_cast<std::uint64_t>(c - 'a' + 10);
            if (c >= 'A' && c <= 'F') digit = static_cast<std::uint64_t>(c - 'A' + 10);
            if (digit >= base) break;
            if (value > (UINT64_MAX - digit) / base) overflow = true;
            value = value * base + digit;
            ++pos_;
        }
        const std::string_view literal = text_.substr(start, pos_ - start);
        // Letters or digits glued on ("0x", "12ab", "0b102", "1u") make no number.
        if (pos_ == digits_start || (pos_ < text_.size() && is_word_char(text_[pos_]))) {
            std::size_t end = pos_;
            while (end < text_.size() && is_word_char(text_[end])) ++end;
            return fail(start, "malformed number " + squoted(text_.substr(start, end - start)));
        }
        if (base == 10 && literal.size() > 1 && literal[0] == '0') {
            return fail(start, "number " + squoted(literal) + " with a leading zero",
                        " (write 0x for hex, 0b for binary)");
        }
        if (overflow || value > max_) {
            return fail(start, "number " + std::string(literal) + " does not fit " + repr(),
                        " (largest value " + std::to_string(max_) + ")");
        }
        out = value;
        return true;
    }

    bool parse_name(std::uint64_t& out) {
        const std::size_t start = pos_;
        while (pos_ < text_.size() && is_word_char(text_[pos_])) ++pos_;
        const std::string_view name = text_.substr(start, pos_ - start);
        if (const enum_variant* earlier = owner_.find(name)) {
            out = earlier->value;
            return true;
        }
        if (name == current_) {
            return fail(start, squoted(name) + " refers to itself");
        }
        if (std::find(all_names_.begin(), all_names_.end(), name) != all_names_.end()) {
            return fail(start, squoted(name) + " refers to a later variant",
                        " (only variants declared before can be used)");
        }
        std::vector<std::string_view> earlier_names;
        for (const enum_variant& v : owner_.variants) earlier_names.push_back(v.name);
        return fail(start, "unknown name " + squoted(name),
                    did_you_mean(closest(name, earlier_names)));
    }

    std::string_view text_;
    const enum_decl& owner_;  // holds the variants evaluated so far
    std::string_view current_;
    const std::vector<std::string>& all_names_;
    std::uint32_t bits_;
    std::uint64_t max_;
    std::size_t pos_ = 0;
    int depth_ = 0;
    std::string error_;
    std::string hint_;
    std::size_t error_at_ = 0;
};

/// Where character `offset` of a string value is, when the string is written on one line
/// without escapes (then the source shows it verbatim after one quote); else the string's start.
[[nodiscard]] inline source_position position_in_string(const toml::node& node,
                                                        std::string_view text, std::size_t offset) {
    const toml::source_region& region = node.source();
    source_position where = position_of(region);
    const bool verbatim = region.begin.line == region.end.line &&
                          region.end.column - region.begin.column == text.size() + 2;
    if (verbatim) where.column += static_cast<std::uint32_t>(offset + 1);
    return where;
}

// ---- the parser -------------------------------------------------------------------------------

/// What a declared type name stands for.
struct declared_type {
    type_kind kind = type_kind::struct_ref;
    std::uint32_t index = 0;
    source_position position;
};

/// Reads a parsed document into a contract_file, keeping every problem in `problems` in file
/// reading order. A problem ends only the entry it is in (a field, a variant, a function...):
/// the next one is read all the same, so that one run reports the independent problems of a
/// file. The first problem is the one a reader that stops at the first would give.
class parser {
public:
    parser(const reporter& report, contract_file& out, std::vector<status>& problems)
        : report_(report), file_(out), problems_(problems) {}

    /// The first problem, or success when there is none.
    [[nodiscard]] status run(const toml::table& document) {
        (void)keep(check_top_level(document));
        const entry top(report_, document, "the contract file");
        const toml::array* types = nullptr;
        const toml::array* enums = nullptr;
        const toml::array* guests = nullptr;
        const toml::array* hosts = nullptr;
        // A list that is not an array of tables is reported and read as absent.
        (void)keep(top.tables("types", false, "[[types]]", types));
        (void)keep(top.tables("enum", false, "[[enum]]", enums));
        (void)keep(top.tables("guest_contract", false, "[[guest_contract]]", guests));
        (void)keep(top.tables("host_contract", false, "[[host_contract]]", hosts));
        // Names first, so that structs and functions may use types declared further down.
        declare_names(types, enums);
        if (enums != nullptr) {
            for (std::size_t i = 0; i < enums->size(); ++i) {
                (void)keep(read_enum(*enums->get(i)->as_table(), file_.enums[i]));
            }
        }
        if (types != nullptr) {
            for (std::size_t i = 0; i < types->size(); ++i) {
                (void)keep(read_struct(*types->get(i)->as_table(), file_.structs[i]));
            }
        }
        (void)keep(lay_out_structs());
        for (const auto& [list, side] :
             {std::pair{guests, contract_side::guest}, std::pair{hosts, contract_side::host}}) {
            if (list == nullptr) continue;
            for (const toml::node& node : *list) {
                (void)keep(read_contract(*node.as_table(), side));
            }
        }
        for (struct_decl& s : file_.structs) {
            for (field_decl& f : s.layout.fields) finish_element(f.type);
        }
        return problems_.empty() ? status{} : problems_.front();
    }

private:
    /// Records `s` when it is a problem; true when it is not.
    bool keep(status s) {
        if (s) return true;
        problems_.push_back(std::move(s));
        return false;
    }

    // -- top level --

    [[nodiscard]] status check_top_level(const toml::table& document) const {
        static constexpr std::string_view known[] = {"types", "enum", "guest_contract",
                                                     "host_contract"};
        const toml::key* unknown = nullptr;  // the one nearest the top of the file
        for (const auto& [key, node] : document) {
            if (std::find(std::begin(known), std::end(known), key.str()) != std::end(known)) {
                continue;
            }
            if (unknown == nullptr || earlier(key.source(), unknown->source())) unknown = &key;
        }
        if (unknown != nullptr) {
            const std::string_view name = unknown->str();
            const source_position where = position_of(unknown->source());
            if (name == "contract" || name == "plugin_contract") {
                return report_.at(where, "[[" + std::string(name) +
                                             "]] is not a contract file table: declare contracts "
                                             "that plugins implement with [[guest_contract]] and "
                                             "contracts that the host implements with "
                                             "[[host_contract]]");
            }
            return report_.at(where, "unknown top-level key " + squoted(name) +
                                         " (a contract file has [[types]], [[enum]], "
                                         "[[guest_contract]] and [[host_contract]])" +
                                         did_you_mean(closest(name, known)));
        }
        return {};
    }

    [[nodiscard]] status declare_one(const entry& at, type_kind kind, std::uint32_t index,
                                     std::string& name) {
        const toml::node* node = nullptr;
        const std::string_view role = kind == type_kind::enum_ref ? "enum" : "type";
        if (status s = at.string("name", true, name, &node); !s) return s;
        // Declared even when the name is refused below, so that its uses are not reported
        // again as unknown types.
        const bool builtin = is_builtin_type_name(name);
        bool inserted = true;
        source_position first;
        if (!builtin) {
            const declared_type here{kind, index, position_of(node->source())};
            const auto [it, fresh] = declared_.try_emplace(name, here);
            inserted = fresh;
            first = it->second.position;
        }
        if (status s = check_identifier(at, *node, role, name); !s) return s;
        if (builtin) {
            return at.fail_at(*node,
                              std::string(role) + " name " + squoted(name) + " is a built-in type");
        }
        if (!inserted) {
            return at.fail_at(*node, std::string(role) + " name " + squoted(name) +
                                         " is already declared at " + line_of(first));
        }
        return {};
    }

    void declare_names(const toml::array* types, const toml::array* enums) {
        if (types != nullptr) {
            file_.structs.resize(types->size());
            for (std::size_t i = 0; i < types->size(); ++i) {
                const toml::table& table = *types->get(i)->as_table();
                const entry at(report_, table, described("type", name_hint(table), "[[types]]"));
                (void)keep(at.check_keys({"name", "fields"}));
                (void)keep(declare_one(at, type_kind::struct_ref, static_cast<std::uint32_t>(i),
                                       file_.structs[i].name));
            }
        }
        if (enums != nullptr) {
            file_.enums.resize(enums->size());
            for (std::size_t i = 0; i < enums->size(); ++i) {
                const toml::table& table = *enums->get(i)->as_table();
                const entry at(report_, table, described("enum", name_hint(table), "[[enum]]"));
                (void)keep(at.check_keys({"name", "repr", "bitflag", "variants"}));
                (void)keep(declare_one(at, type_kind::enum_ref, static_cast<std::uint32_t>(i),
                                       file_.enums[i].name));
            }
        }
    }

    // -- types --

    /// `text` as a type. `context` completes messages: "in field 'x' of type 'Point'".
    [[nodiscard]] status resolve(const entry& at, const toml::node& node, std::string_view text,
                                 std::string_view context, bool allow_void, type_ref& out) const {
        if (text == "Void" || text == "void") {
            if (!allow_void) {
                return at.fail_at(node, squoted(text) + " is only allowed as a return type (" +
                                            std::string(context) + ")");
            }
            out = type_ref{};
            out.name = "Void";
            return {};
        }
        constexpr std::string_view array_open = "Array<";
        if (text.starts_with(array_open) || text == "Array" || text.starts_with("Array ")) {
            if (!text.starts_with(array_open) || !text.ends_with(">")) {
                return at.fail_at(node, "malformed array type " + squoted(text) + " " +
                                            std::string(context) + " (write Array<T>)");
            }
            std::string_view inner = text.substr(array_open.size());
            inner.remove_suffix(1);
            while (!inner.empty() && inner.front() == ' ') inner.remove_prefix(1);
            while (!inner.empty() && inner.back() == ' ') inner.remove_suffix(1);
            if (inner.starts_with("Array")) {
                return at.fail_at(node, "nested array type " + squoted(text) + " " +
                                            std::string(context) +
                                            " (arrays cannot hold arrays; wrap the inner array in "
                                            "a [[types]] struct)");
            }
            if (inner == "Void" || inner == "void") {
                return at.fail_at(node, "array of " + squoted(inner) + " " + std::string(context) +
                                            " (an element must have a type)");
            }
            plain_type element;
            if (status s = resolve_plain(at, node, inner, context, element); !s) return s;
            out = type_ref{};
            out.kind = type_kind::array;
            out.size = static_cast<std::uint32_t>(sizeof(array_of));
            out.align = static_cast<std::uint32_t>(alignof(array_of));
            out.element = element;
            out.name = "Array<" + std::string(inner) + ">";
            return {};
        }
        plain_type plain;
        if (status s = resolve_plain(at, node, text, context, plain); !s) return s;
        out = type_ref{};
        static_cast<plain_type&>(out) = plain;
        out.name = std::string(text);
        return {};
    }

    [[nodiscard]] status resolve_plain(const entry& at, const toml::node& node,
                                       std::string_view text, std::string_view context,
                                       plain_type& out) const {
        for (const builtin& b : builtins) {
            if (b.name == text) {
                out = b.type;
                return {};
            }
        }
        if (const auto found = declared_.find(text); found != declared_.end()) {
            out = plain_type{};
            out.kind = found->second.kind;
            out.index = found->second.index;
            if (out.kind == type_kind::enum_ref) {
                // Enum reprs are known before any type is resolved (declare_names sets names,
                // and read_enum runs before structs and contracts).
                const primitive_type repr = file_.enums[out.index].repr;
                out.primitive = repr;
                out.size = out.align = primitive_size(repr);
            }
            return {};  // a struct's size and alignment come with its layout
        }
        std::string suggestion;
        for (const auto& [alias, meant] : type_aliases) {
            if (alias == text) suggestion = std::string(meant) + (meant == "Array" ? "<T>" : "");
        }
        if (suggestion.empty()) {
            std::vector<std::string_view> candidates;
            for (const builtin& b : builtins) candidates.push_back(b.name);
            for (const auto& [name, declared] : declared_) candidates.push_back(name);
            suggestion = closest(text, candidates);
        }
        return at.fail_at(node, "unknown type " + squoted(text) + " " + std::string(context) +
                                    did_you_mean(suggestion));
    }

    /// Sets a struct_ref's size and alignment from its (already laid out) struct.
    void finish_outer(plain_type& type) const {
        if (type.kind != type_kind::struct_ref) return;
        const record_layout& layout = file_.structs[type.index].layout;
        type.size = layout.size;
        type.align = layout.align;
    }

    /// Also an array's struct element, once every struct is laid out.
    void finish_element(type_ref& type) const {
        finish_outer(type);
        if (type.kind == type_kind::array) finish_outer(type.element);
    }

    /// C rules: each field at the next multiple of its alignment; the size rounded up to the
    /// largest alignment. No field: size 0, align 1.
    [[nodiscard]] status lay_out(record_layout& layout, std::string_view what,
                                 source_position where) const {
        constexpr std::uint64_t largest = 0x7FFFFFFFu;
        std::uint64_t offset = 0;
        std::uint32_t align = 1;
        for (field_decl& f : layout.fields) {
            const std::uint64_t a = f.type.align;
            offset = (offset + a - 1) / a * a;
            f.offset = static_cast<std::uint32_t>(std::min(offset, largest));
            offset += f.type.size;
            align = std::max(align, f.type.align);
            if (offset > largest) {
                return report_.at(where, std::string(what) + " is larger than 2 GiB");
            }
        }
        offset = (offset + align - 1) / align * align;
        if (offset > largest) return report_.at(where, std::string(what) + " is larger than 2 GiB");
        layout.size = static_cast<std::uint32_t>(offset);
        layout.align = align;
        return {};
    }

    [[nodiscard]] status read_field(const entry& owner, const toml::table& table,
                                    std::string_view role, std::string_view owner_what,
                                    std::vector<field_decl>& siblings) {
        const std::string hint = name_hint(table);
        const entry at(
            owner.report(), table,
            described(role, hint, "a " + std::string(role) + " of " + std::string(owner_what)));
        bool good = keep(at.check_keys({"name", "type"}));
        field_decl f;
        f.position = at.position();
        if (keep(read_identifier(at, role, f.name))) {
            for (const field_decl& other : siblings) {
                if (other.name == f.name) {
                    good = keep(at.fail_at(*table.get("name"),
                                           "duplicate " + std::string(role) + " name " +
                                               squoted(f.name) + " in " + std::string(owner_what) +
                                               " (first at " + line_of(other.position) + ")"));
                    break;
                }
            }
        } else {
            good = false;
        }
        std::string type_text;
        const toml::node* type_node = nullptr;
        if (status s = at.string("type", true, type_text, &type_node); !s) return s;
        const std::string context =
            "in " + std::string(role) + " " + squoted(f.name) + " of " + std::string(owner_what);
        if (status s = resolve(at, *type_node, type_text, context, false, f.type); !s) {
            return s;
        }
        if (status s = at.docs(f.docs); !s) return s;
        // A field with a problem is left out; the problem is reported already.
        if (good) siblings.push_back(std::move(f));
        return {};
    }

    [[nodiscard]] status read_struct(const toml::table& table, struct_decl& out) {
        const entry at(report_, table, "type " + squoted(out.name));  // keys checked when declared
        out.position = at.position();
        (void)keep(at.docs(out.docs));
        const toml::array* fields = nullptr;
        if (status s = at.tables("fields", true, "fields = [{name, type}, ...]", fields); !s) {
            return s;
        }
        if (fields->empty()) return at.fail("type " + squoted(out.name) + " has no fields");
        for (const toml::node& node : *fields) {
            (void)keep(read_field(at, *node.as_table(), "field", at.what(), out.layout.fields));
        }
        return {};
    }

    /// Orders structs so that each is laid out after the structs it holds by value, refusing a
    /// struct that holds itself (which C cannot lay out). Iterative: input decides the depth.
    [[nodiscard]] status lay_out_structs() {
        enum class mark : std::uint8_t { fresh, open, done };
        std::vector<mark> marks(file_.structs.size(), mark::fresh);
        std::vector<std::pair<std::uint32_t, std::size_t>> stack;  // struct, next field
        for (std::uint32_t root = 0; root < file_.structs.size(); ++root) {
            if (marks[root] != mark::fresh) continue;
            marks[root] = mark::open;
            stack.emplace_back(root, 0);
            while (!stack.empty()) {
                auto& [current, next] = stack.back();
                struct_decl& s = file_.structs[current];
                if (next == s.layout.fields.size()) {
                    for (field_decl& f : s.layout.fields) finish_outer(f.type);
                    if (status st = lay_out(s.layout, "type " + squoted(s.name), s.position); !st) {
                        return st;
                    }
                    marks[current] = mark::done;
                    stack.pop_back();
                    continue;
                }
                const field_decl& f = s.layout.fields[next++];
                if (f.type.kind != type_kind::struct_ref) continue;
                const std::uint32_t held = f.type.index;
                if (marks[held] == mark::open) return cycle(stack, held, f);
                if (marks[held] == mark::fresh) {
                    marks[held] = mark::open;
                    stack.emplace_back(held, 0);
                }
            }
        }
        return {};
    }

    [[nodiscard]] status cycle(const std::vector<std::pair<std::uint32_t, std::size_t>>& stack,
                               std::uint32_t held, const field_decl& closing) const {
        std::string path;
        bool in_cycle = false;
        for (const auto& [index, next] : stack) {
            in_cycle = in_cycle || index == held;
            if (in_cycle) path += file_.structs[index].name + " -> ";
        }
        path += file_.structs[held].name;
        return report_.at(closing.position, "type " + squoted(file_.structs[held].name) +
                                                " contains itself by value (" + path +
                                                "); hold it through Array<T> or Ptr instead");
    }

    // -- enums --

    [[nodiscard]] status read_enum(const toml::table& table, enum_decl& out) {
        const entry at(report_, table, "enum " + squoted(out.name));  // keys checked when declared
        out.position = at.position();
        (void)keep(at.docs(out.docs));
        std::string repr;
        const toml::node* repr_node = nullptr;
        if (!keep(at.string("repr", true, repr, &repr_node))) repr = "u32";
        static constexpr std::pair<std::string_view, primitive_type> reprs[] = {
            {"u8", primitive_type::u8},
            {"u16", primitive_type::u16},
            {"u32", primitive_type::u32},
            {"u64", primitive_type::u64}};
        const auto found = std::find_if(std::begin(reprs), std::end(reprs),
                                        [&](const auto& r) { return r.first == repr; });
        if (found == std::end(reprs)) {
            std::vector<std::string_view> names;
            for (const auto& r : reprs) names.push_back(r.first);
            // The variants are still read, against the default repr u32.
            (void)keep(at.fail_at(*repr_node, "repr " + squoted(repr) + " of enum " +
                                                  squoted(out.name) +
                                                  " must be u8, u16, u32 or u64" +
                                                  did_you_mean(closest(repr, names))));
        } else {
            out.repr = found->second;
        }
        (void)keep(at.boolean("bitflag", out.bitflag));
        const toml::array* variants = nullptr;
        if (status s = at.tables("variants", true, "[[enum.variants]]", variants); !s) return s;
        if (variants->empty()) return at.fail("enum " + squoted(out.name) + " has no variants");
        std::vector<std::string> all_names;
        for (const toml::node& node : *variants) all_names.push_back(name_hint(*node.as_table()));
        for (const toml::node& node : *variants) {
            (void)keep(read_variant(at, *node.as_table(), all_names, out));
        }
        return {};
    }

    [[nodiscard]] status read_variant(const entry& owner, const toml::table& table,
                                      const std::vector<std::string>& all_names, enum_decl& e) {
        const std::string hint = name_hint(table);
        const entry at(report_, table, described("variant", hint, "a variant of " + owner.what()));
        (void)keep(at.check_keys({"name", "value"}));
        enum_variant v;
        v.position = at.position();
        if (status s = read_identifier(at, "variant", v.name); !s) return s;
        if (const enum_variant* other = e.find(v.name)) {
            return at.fail_at(*table.get("name"), "duplicate variant name " + squoted(v.name) +
                                                      " in " + owner.what() + " (first at " +
                                                      line_of(other->position) + ")");
        }
        const toml::node* value = at.find("value");
        if (value == nullptr) return at.fail(at.what() + " has no 'value'");
        if (const toml::value<std::int64_t>* integer = value->as_integer()) {
            const std::uint32_t bits = primitive_size(e.repr) * 8u;
            const std::uint64_t max = bits == 64 ? UINT64_MAX : (std::uint64_t{1} << bits) - 1;
            if (integer->get() < 0 || static_cast<std::uint64_t>(integer->get()) > max) {
                return at.fail_at(*value, "value " + std::to_string(integer->get()) +
                                              " of variant " + squoted(v.name) + " does not fit " +
                                              std::string(primitive_name(e.repr)) + " (0 to " +
                                              std::to_string(max) + ")");
            }
            v.value = static_cast<std::uint64_t>(integer->get());
        } else if (const toml::value<std::string>* text = value->as_string()) {
            expression expr(text->get(), e, v.name, all_names);
            const std::optional<std::uint64_t> result = expr.evaluate();
            if (!result) {
                return report_.at(position_in_string(*value, text->get(), expr.error_offset()),
                                  expr.error() + " in the value of variant " + squoted(v.name) +
                                      " of " + owner.what() + expr.hint());
            }
            v.value = *result;
        } else {
            return at.wrong_type("value", "an integer or an expression string", *value);
        }
        if (!e.bitflag) {
            for (const enum_variant& other : e.variants) {
                if (other.value == v.value) {
                    return at.fail_at(*value, "variant " + squoted(v.name) + " has the value " +
                                                  std::to_string(v.value) + " of variant " +
                                                  squoted(other.name) +
                                                  " (values repeat only in a bitflag enum)");
                }
            }
        }
        if (status s = at.docs(v.docs); !s) return s;
        e.variants.push_back(std::move(v));
        return {};
    }

    // -- contracts --

    [[nodiscard]] status read_contract(const toml::table& table, contract_side side) {
        const bool host = side == contract_side::host;
        const std::string_view kind = host ? "host contract" : "guest contract";
        const std::string hint = name_hint(table);
        const entry at(report_, table,
                       described(kind, hint, host ? "[[host_contract]]" : "[[guest_contract]]"));
        // The name, the version and each function are independent: each problem is kept and
        // the rest of the contract read. The id (and so the duplicate check) needs both.
        (void)keep(host ? at.check_keys({"name", "version", "functions", "singleton"})
                        : at.check_keys({"name", "version", "functions"}));
        contract_decl c;
        c.side = side;
        c.position = at.position();
        const toml::node* name_node = nullptr;
        bool identified = keep(at.string("name", true, c.name, &name_node));
        if (identified && !is_dotted_name(c.name)) {
            identified =
                keep(at.fail_at(*name_node, std::string(kind) + " name " + squoted(c.name) +
                                                " is not dot-separated identifiers (like "
                                                "'pipeline.Decoder')"));
        } else if (identified && host && (!c.name.starts_with("host.") || c.name.size() == 5)) {
            identified = keep(at.fail_at(
                *name_node, "host contract name " + squoted(c.name) +
                                " must start with 'host.' (like 'host." +
                                (c.name.starts_with("host.") ? "logger" : c.name) + "')"));
        }
        std::string version_text;
        const toml::node* version_node = nullptr;
        if (keep(at.string("version", true, version_text, &version_node))) {
            std::string why;
            const std::optional<polyplug::version> parsed =
                parse_contract_version(version_text, why);
            if (parsed) {
                c.version = *parsed;
            } else {
                identified = keep(at.fail_at(*version_node, "bad version " + squoted(version_text) +
                                                                " of " + at.what() + ": " + why));
            }
        } else {
            identified = false;
        }
        (void)keep(at.boolean("singleton", c.singleton));
        (void)keep(at.docs(c.docs));
        c.id = host ? host_contract_id(c.name, c.version.major)
                    : guest_contract_id(c.name, c.version.major);
        std::vector<contract_decl>& list = host ? file_.host_contracts : file_.guest_contracts;
        for (const contract_decl& other : list) {
            if (identified && other.id == c.id) {
                identified = keep(at.fail_at(
                    *name_node, std::string(kind) + " " + squoted(c.name) + " with major version " +
                                    std::to_string(c.version.major) + " is already declared at " +
                                    line_of(other.position)));
                break;
            }
        }
        const toml::array* functions = nullptr;
        const std::string header =
            host ? "[[host_contract.functions]]" : "[[guest_contract.functions]]";
        (void)keep(at.tables("functions", false, header, functions));
        if (functions != nullptr) {
            for (const toml::node& node : *functions) {
                (void)keep(read_function(at, *node.as_table(), c));
            }
        }
        if (identified) list.push_back(std::move(c));
        return {};
    }

    [[nodiscard]] status read_function(const entry& owner, const toml::table& table,
                                       contract_decl& c) {
        const std::string hint = name_hint(table);
        const entry at(report_, table,
                       described("function", hint, "a function of " + owner.what()));
        // The function keeps its place (its id) even with problems, so that the functions after
        // it are read with the ids they will have once it is fixed.
        (void)keep(at.check_keys({"name", "params", "return"}));
        function_decl f;
        f.position = at.position();
        f.id = static_cast<std::uint32_t>(c.functions.size());
        if (keep(read_identifier(at, "function", f.name))) {
            if (const function_decl* other = c.find_function(f.name)) {
                (void)keep(at.fail_at(*table.get("name"), "duplicate function name " +
                                                              squoted(f.name) + " in " +
                                                              owner.what() + " (first at " +
                                                              line_of(other->position) + ")"));
            }
        }
        const std::string what = "function " + squoted(f.name);
        const toml::array* params = nullptr;
        (void)keep(at.tables("params", false, "params = [{name, type}, ...]", params));
        if (params != nullptr) {
            for (const toml::node& node : *params) {
                (void)keep(read_field(at, *node.as_table(), "parameter", what, f.args.fields));
            }
        }
        (void)keep(read_return(at, what, f.result));
        (void)keep(at.docs(f.docs));
        for (field_decl& p : f.args.fields) finish_element(p.type);
        finish_element(f.result);
        (void)keep(lay_out(f.args, "the arguments of " + what, f.position));
        c.functions.push_back(std::move(f));
        return {};
    }

    [[nodiscard]] status read_return(const entry& at, const std::string& what,
                                     type_ref& out) const {
        out = type_ref{};
        out.name = "Void";
        const toml::node* node = at.find("return");
        if (node == nullptr) return {};
        const std::string context = "in the return type of " + what;
        if (const toml::value<std::string>* text = node->as_string()) {
            return resolve(at, *node, text->get(), context, true, out);
        }
        const toml::table* table = node->as_table();
        if (table == nullptr) {
            return at.wrong_type("return", "a type string or a table {type = ...}", *node);
        }
        const entry result(report_, *table, "the return of " + what);
        if (status s = result.check_keys({"type"}); !s) return s;
        std::string text;
        const toml::node* type_node = nullptr;
        if (status s = result.string("type", true, text, &type_node); !s) return s;
        return resolve(result, *type_node, text, context, true, out);
    }

    const reporter& report_;
    contract_file& file_;
    std::vector<status>& problems_;
    std::map<std::string, declared_type, std::less<>> declared_;
};

/// Runs `body`, turning any exception but std::bad_alloc into errc::contract_file_invalid:
/// parsing promises a status, and nothing in it should throw anything else.
template <class Body>
[[nodiscard]] status guard_exceptions(const reporter& report, Body&& body) {
    try {
        return body();
    } catch (const std::bad_alloc&) {
        throw;
    } catch (const std::exception& e) {
        return report.whole_file(std::string("unexpected error: ") + e.what());
    }
}

[[nodiscard]] inline std::string too_large(std::uintmax_t size) {
    return "the contract file is " + std::to_string(size) + " bytes, over the " +
           std::to_string(max_contract_file_bytes) + "-byte limit";
}

}  // namespace detail::api_toml

/// Parses and validates contract file text; `source_name` (usually the file's path) starts every
/// message, as in "api.toml:12:9: unknown type 'Strng' in parameter 'name' of function 'greet'
/// (did you mean 'StringView'?)". `out` is left untouched on failure.
///
/// Errors: errc::contract_file_invalid for TOML syntax errors, unknown keys or tables, mistyped
/// values, bad names, unknown or misused types, bad enum values, duplicates, structs holding
/// themselves, text over max_contract_file_bytes, and keys, tables and brackets nested deeper
/// than detail::max_toml_nesting levels.
///
/// `problems` receives every problem of the file, in reading order, not only the first (which is
/// also the result): a problem ends only the entry it is in (a field, a variant, a function,
/// a contract...), so independent mistakes are reported together. A TOML syntax error is the
/// only problem reported, since nothing after it can be read reliably.
[[nodiscard]] inline status parse_contract_file(std::string_view toml_text,
                                                std::string_view source_name, contract_file& out,
                                                std::vector<status>& problems) {
    problems.clear();
    const detail::api_toml::reporter report(source_name);
    if (toml_text.size() > max_contract_file_bytes) {
        problems.push_back(report.whole_file(detail::api_toml::too_large(toml_text.size())));
        return problems.front();
    }
    const status first = detail::api_toml::guard_exceptions(report, [&]() -> status {
        // Before toml++: it recurses over the tables that dotted keys and headers create.
        if (const auto excess = detail::find_toml_nesting_excess(toml_text)) {
            return report.at({excess->where.line, excess->where.column}, excess->problem());
        }
        toml::table document;
        try {
            document = toml::parse(toml_text, source_name);
        } catch (const toml::parse_error& e) {
            // Nothing after a syntax error can be read reliably: the only problem reported.
            return report.at(detail::api_toml::position_of(e.source()),
                             "TOML syntax error: " + std::string(e.description()));
        }
        contract_file parsed;
        parsed.source = std::string(source_name);
        detail::api_toml::parser reader(report, parsed, problems);
        if (status s = reader.run(document); !s) return s;
        out = std::move(parsed);
        return {};
    });
    // Problems found before the parser ran (or an unexpected exception inside it) are not in
    // the list yet.
    if (!first && std::none_of(problems.begin(), problems.end(),
                               [&](const status& p) { return p.message() == first.message(); })) {
        problems.push_back(first);
    }
    return problems.empty() ? status{} : problems.front();
}

/// parse_contract_file reporting only the first problem: what the runtime uses.
[[nodiscard]] inline status parse_contract_file(std::string_view toml_text,
                                                std::string_view source_name, contract_file& out) {
    std::vector<status> problems;
    return parse_contract_file(toml_text, source_name, out, problems);
}

/// Throwing form of parse_contract_file: polyplug::error with the same code and message.
[[nodiscard]] inline contract_file parse_contract_file(std::string_view toml_text,
                                                       std::string_view source_name) {
    contract_file out;
    parse_contract_file(toml_text, source_name, out).throw_if_failed();
    return out;
}

namespace detail::api_toml {

/// The whole text of the contract file at `path`, refused (through `report`) when it is missing,
/// not a regular file, unreadable or larger than max_contract_file_bytes.
[[nodiscard]] inline status read_contract_text(const std::filesystem::path& path,
                                               const reporter& report, std::string& text) {
    std::error_code ec;
    const std::filesystem::file_status info = std::filesystem::status(path, ec);
    if (info.type() == std::filesystem::file_type::not_found) {
        return report.whole_file("no such file");
    }
    if (ec) return report.whole_file("cannot inspect the file: " + ec.message());
    if (!std::filesystem::is_regular_file(info)) return report.whole_file("not a regular file");
    std::ifstream in(path, std::ios::binary);
    if (!in) return report.whole_file("cannot open the file for reading");
    text.clear();
    char chunk[4096];
    while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
        text.append(chunk, static_cast<std::size_t>(in.gcount()));
        // Checked while reading, so a file that grows meanwhile is refused all the same.
        if (text.size() > max_contract_file_bytes) {
            return report.whole_file(too_large(text.size()));
        }
    }
    if (in.bad()) return report.whole_file("cannot read the file");
    return {};
}

}  // namespace detail::api_toml

/// Reads, parses and validates the contract file at `path` (its path names it in messages).
///
/// Errors: those of parse_contract_file; errc::contract_file_invalid also when the file is
/// missing, not a regular file, unreadable or larger than max_contract_file_bytes. `problems`
/// receives every problem of the file, as for parse_contract_file.
[[nodiscard]] inline status read_contract_file(const std::filesystem::path& path,
                                               contract_file& out, std::vector<status>& problems) {
    problems.clear();
    const std::string name = path.string();
    const detail::api_toml::reporter report(name);
    const status first = detail::api_toml::guard_exceptions(report, [&]() -> status {
        std::string text;
        if (status s = detail::api_toml::read_contract_text(path, report, text); !s) return s;
        return parse_contract_file(text, name, out, problems);
    });
    if (!first && problems.empty()) problems.push_back(first);
    return first;
}

/// read_contract_file reporting only the first problem: what the runtime uses.
[[nodiscard]] inline status read_contract_file(const std::filesystem::path& path,
                                               contract_file& out) {
    std::vector<status> problems;
    return read_contract_file(path, out, problems);
}

/// Throwing form of read_contract_file: polyplug::error with the same code and message.
[[nodiscard]] inline contract_file read_contract_file(const std::filesystem::path& path) {
    contract_file out;
    read_contract_file(path, out).throw_if_failed();
    return out;
}

POLYPLUG_END_NAMESPACE
