// SPDX-License-Identifier: MIT
/// @file generate_cpp.hpp
/// `polyplug generate --lang cpp`: one C++20 header per contract file, declaring each contract for
/// the typed API (polyplug/contract.hpp): enums as `enum class`, structs with C layout, and per
/// contract a struct with `name`, one `polyplug::function<id, R(P...)>` per function and the
/// `functions` tuple. static_asserts pin every id, size and offset the runtime computed, so the
/// header cannot drift from the contract file it came from.
#pragma once

#include "generate_common.hpp"
#include "names.hpp"

#include <polyplug/contract_file.hpp>

#include <map>
#include <set>
#include <string>
#include <string_view>

namespace polyplug::tools {

namespace detail_cpp {

[[nodiscard]] inline std::string primitive(primitive_type p) {
    return primitive_type_name(p, spelling::cpp);
}

/// A plain type as stored in memory (struct fields, array items): the ABI's C structs for
/// StringView and Buffer, since std::string_view and std::span have no fixed layout.
[[nodiscard]] inline std::string stored(const contract_file& file, const plain_type& t) {
    return stored_type_name(file, t, spelling::cpp);
}

/// A field's type.
[[nodiscard]] inline std::string field(const contract_file& file, const type_ref& t) {
    if (t.is_array()) return "polyplug::abi_array<" + stored(file, t.element) + ">";
    return stored(file, t);
}

/// A parameter's or result's type as the typed API takes it: std::string_view for StringView,
/// std::span<const std::uint8_t> for Buffer, std::span<const T> for Array<T> (abi_array for the
/// element types a span cannot carry: u8, whose span means Buffer, and Ptr).
[[nodiscard]] inline std::string value(const contract_file& file, const type_ref& t) {
    switch (t.kind) {
        case type_kind::void_:
            return "void";
        case type_kind::string_view:
            return "std::string_view";
        case type_kind::buffer:
            return "std::span<const std::uint8_t>";
        case type_kind::array: {
            const plain_type& e = t.element;
            const bool bytes = e.kind == type_kind::primitive && e.primitive == primitive_type::u8;
            if (bytes || e.kind == type_kind::ptr) {
                return "polyplug::abi_array<" + stored(file, e) + ">";
            }
            return "std::span<const " + stored(file, e) + ">";
        }
        default:
            return stored(file, t);
    }
}

/// A function's member name: `name` and `functions` are taken by the contract struct itself.
[[nodiscard]] inline std::string member_name(std::string_view function_name) {
    if (function_name == "name" || function_name == "functions") {
        return std::string(function_name) + "_";
    }
    return std::string(function_name);
}

inline void doc_comment(std::string& out, std::string_view docs, std::string_view indent = "") {
    if (!docs.empty()) out += std::string(indent) + "/// " + comment_text(docs) + "\n";
}

inline void emit_enum(std::string& out, const enum_decl& e) {
    doc_comment(out, e.docs);
    out += "enum class " + e.name + " : " + primitive(e.repr) + " {\n";
    for (const enum_variant& v : e.variants) {
        doc_comment(out, v.docs, "    ");
        out += "    " + v.name + " = " + hex_literal(v.value) + ",\n";
    }
    out += "};\n";
    if (e.bitflag) {
        const std::string u = "std::underlying_type_t<" + e.name + ">";
        for (const char* op : {"|", "&", "^"}) {
            out += "[[nodiscard]] constexpr " + e.name + " operator" + op + "(" + e.name + " a, " +
                   e.name + " b) noexcept {\n    return static_cast<" + e.name + ">(static_cast<" +
                   u + ">(a) " + op + " static_cast<" + u + ">(b));\n}\n";
        }
        out += "[[nodiscard]] constexpr " + e.name + " operator~(" + e.name +
               " a) noexcept {\n    return static_cast<" + e.name + ">(~static_cast<" + u +
               ">(a));\n}\n";
    }
    out += "\n";
}

inline void emit_struct(std::string& out, const contract_file& file, const struct_decl& s) {
    doc_comment(out, s.docs);
    out += "struct " + s.name + " {\n";
    for (const field_decl& f : s.layout.fields) {
        doc_comment(out, f.docs, "    ");
        out += "    " + field(file, f.type) + " " + f.name + ";\n";
    }
    out += "};\n";
    out += "static_assert(sizeof(" + s.name + ") == " + std::to_string(s.layout.size) +
           " && alignof(" + s.name + ") == " + std::to_string(s.layout.align) + ");\n";
    for (const field_decl& f : s.layout.fields) {
        out += "static_assert(offsetof(" + s.name + ", " + f.name +
               ") == " + std::to_string(f.offset) + ");\n";
    }
    out += "\n";
}

/// The C++ struct name of each contract: the last part of its dotted name ("example.calc" gives
/// `calc`), or the whole name with underscores ("host_app_Log") where the last part would clash
/// with another contract, a type, or a reserved word.
[[nodiscard]] inline std::map<const contract_decl*, std::string> contract_struct_names(
    const contract_file& file) {
    std::map<std::string, int> uses;
    for (const struct_decl& s : file.structs) uses[s.name] += 2;  // a type always wins
    for (const enum_decl& e : file.enums) uses[e.name] += 2;
    for (const contract_decl* c : all_contracts(file)) uses[std::string(last_segment(c->name))]++;
    std::map<const contract_decl*, std::string> names;
    std::set<std::string> taken;
    for (const struct_decl& s : file.structs) taken.insert(s.name);
    for (const enum_decl& e : file.enums) taken.insert(e.name);
    for (const contract_decl* c : all_contracts(file)) {
        std::string name(last_segment(c->name));
        if (uses[name] > 1 || is_reserved_word(name)) name = underscored(c->name);
        if (!taken.insert(name).second) {
            throw generate_error(file.source + ": contract '" + c->name + "' would be named '" +
                                 name + "' in C++, which another name of the file already is");
        }
        names.emplace(c, std::move(name));
    }
    return names;
}

inline void emit_contract(std::string& out, const contract_file& file, const contract_decl& c,
                          const std::string& struct_name) {
    const bool host = c.side == contract_side::host;
    out += "/// " + c.name + "@" + std::to_string(c.version.major) + ": " +
           (host ? "host" : "guest") + " contract, version " + version_text(c.version) +
           (c.docs.empty() ? "" : ". " + comment_text(c.docs)) + "\n";
    out += "struct " + struct_name + " {\n";
    if (host) {
        out += "    static constexpr polyplug::host_contract_name name{\"" + c.name + "\", " +
               std::to_string(c.version.major) + ", " + std::to_string(c.version.minor) + ", " +
               std::to_string(c.version.patch) + ", " + (c.singleton ? "true" : "false") + "};\n";
    } else {
        out += "    static constexpr polyplug::guest_contract_name name{\"" + c.name + "\", " +
               std::to_string(c.version.major) + ", " + std::to_string(c.version.minor) + ", " +
               std::to_string(c.version.patch) + "};\n";
    }
    std::string tuple;
    for (const function_decl& fn : c.functions) {
        if (fn.args.fields.size() > 8) {
            throw generate_error(file.source + ":" + std::to_string(fn.position.line) +
                                 ": function '" + fn.name + "' of '" + c.name + "' has " +
                                 std::to_string(fn.args.fields.size()) +
                                 " parameters; the typed C++ API takes at most 8 (pass a struct)");
        }
        doc_comment(out, fn.docs, "    ");
        std::string signature = value(file, fn.result) + "(";
        for (std::size_t i = 0; i < fn.args.fields.size(); ++i) {
            signature += (i ? ", " : "") + value(file, fn.args.fields[i].type);
        }
        signature += ")";
        const std::string member = member_name(fn.name);
        out += "    static constexpr polyplug::function<" + std::to_string(fn.id) + ", " +
               signature + "> " + member + "{\"" + fn.name + "\"};\n";
        tuple += (tuple.empty() ? "" : ", ") + member;
    }
    out += "    static constexpr std::tuple functions{" + tuple + "};\n};\n";

    // The runtime's computation of the contract file, restated for the compiler to check.
    out += "static_assert(polyplug::contract_id_of<" + struct_name + ">() == " + hex_literal(c.id) +
           "ull);\n";
    for (const function_decl& fn : c.functions) {
        if (fn.args.fields.empty()) continue;
        const std::string args =
            "decltype(" + struct_name + "::" + member_name(fn.name) + ")::args_type";
        out += "static_assert(sizeof(" + args + ") == " + std::to_string(fn.args.size) +
               " && alignof(" + args + ") == " + std::to_string(fn.args.align) + ");\n";
        for (std::size_t i = 0; i < fn.args.fields.size(); ++i) {
            out += "static_assert(polyplug::arg_offset<" + std::to_string(i) + ", " + args +
                   ">() == " + std::to_string(fn.args.fields[i].offset) + ");\n";
        }
    }
    out += "\n";
}

}  // namespace detail_cpp

/// The C++ header for a contract file, everything inside `namespace_name` (may be nested, as
/// "app::contracts").
/// @throws generate_error for a function with more than 8 parameters or clashing names.
[[nodiscard]] inline std::string generate_cpp_header(const contract_file& file,
                                                     std::string_view namespace_name) {
    const auto struct_names = detail_cpp::contract_struct_names(file);
    std::string out;
    out += "// Generated by `polyplug generate --lang cpp` from " + comment_text(file.source) +
           ".\n// Do not edit: change the contract file and generate again.\n";
    out += "#pragma once\n\n#include <polyplug/contract.hpp>\n\n";
    out +=
        "#include <cstddef>\n#include <cstdint>\n#include <span>\n#include <string_view>\n"
        "#include <tuple>\n#include <type_traits>\n\n";
    out += "namespace " + std::string(namespace_name) + " {\n\n";
    for (const enum_decl& e : file.enums) detail_cpp::emit_enum(out, e);
    for (const struct_decl& s : file.structs) out += "struct " + s.name + ";\n";
    if (!file.structs.empty()) out += "\n";
    for (std::uint32_t index : structs_in_dependency_order(file)) {
        detail_cpp::emit_struct(out, file, file.structs[index]);
    }
    for (const contract_decl* c : all_contracts(file)) {
        detail_cpp::emit_contract(out, file, *c, struct_names.at(c));
    }
    out += "}  // namespace " + std::string(namespace_name) + "\n";
    return out;
}

}  // namespace polyplug::tools
