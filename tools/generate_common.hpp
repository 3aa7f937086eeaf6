// SPDX-License-Identifier: MIT
/// @file generate_common.hpp
/// What the C and the C++ generators share: the contract file walked in the order a compiler
/// needs (structs after the structs they hold by value), every `Array<T>` used, names of
/// element types, and comment text that cannot end a comment early.
#pragma once

#include <polyplug/contract_file.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace polyplug::tools {

/// A contract file the generators cannot express in the target language; the message says why.
struct generate_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Which language a type is spelled for: C (`uint32_t`) or C++ (`std::uint32_t`).
enum class spelling : bool { c, cpp };

/// A primitive's type: `uint32_t`, `float`, `bool` (`std::uint32_t` for C++).
[[nodiscard]] inline std::string primitive_type_name(primitive_type p, spelling lang) {
    const std::string_view name = primitive_name(p);  // "u32", "i8", "f64", "bool"
    if (name == "f32") return "float";
    if (name == "f64") return "double";
    if (name == "bool") return "bool";
    const std::string c_name =
        (name[0] == 'u' ? "uint" : "int") + std::string(name.substr(1)) + "_t";
    return lang == spelling::cpp ? "std::" + c_name : c_name;
}

/// A plain type as stored in memory (fields, arrays, C parameters): the ABI's C structs for
/// StringView and Buffer, `void*` for Ptr, a declared struct or enum by its name.
[[nodiscard]] inline std::string stored_type_name(const contract_file& file, const plain_type& t,
                                                  spelling lang) {
    switch (t.kind) {
        case type_kind::primitive:
            return primitive_type_name(t.primitive, lang);
        case type_kind::ptr:
            return "void*";
        case type_kind::string_view:
        case type_kind::buffer:
        case type_kind::struct_ref:
        case type_kind::enum_ref:
            return type_name(file, t);
        case type_kind::void_:
        case type_kind::array:
            break;
    }
    return "void";
}

/// Every type a contract file uses somewhere: struct fields, parameters and results.
template <class Visit>
void for_each_type_use(const contract_file& file, Visit&& visit) {
    for (const struct_decl& s : file.structs) {
        for (const field_decl& f : s.layout.fields) visit(f.type);
    }
    for (const auto* list : {&file.guest_contracts, &file.host_contracts}) {
        for (const contract_decl& c : *list) {
            for (const function_decl& fn : c.functions) {
                for (const field_decl& p : fn.args.fields) visit(p.type);
                visit(fn.result);
            }
        }
    }
}

/// The element types of every `Array<T>` the file uses, once each, keyed by element name.
[[nodiscard]] inline std::map<std::string, plain_type> array_elements(const contract_file& file) {
    std::map<std::string, plain_type> elements;
    for_each_type_use(file, [&](const type_ref& t) {
        if (t.is_array()) elements.emplace(type_name(file, t.element), t.element);
    });
    return elements;
}

/// Struct indices in an order where every struct comes after the structs it holds by value
/// (arrays hold pointers, so they impose no order). The parser has refused cycles already.
[[nodiscard]] inline std::vector<std::uint32_t> structs_in_dependency_order(
    const contract_file& file) {
    std::vector<std::uint32_t> order;
    std::vector<bool> placed(file.structs.size(), false);
    // Depth is bounded by the number of structs, which the parser bounds by the file size.
    std::function<void(std::uint32_t)> place = [&](std::uint32_t index) {
        if (placed[index]) return;
        placed[index] = true;
        for (const field_decl& f : file.structs[index].layout.fields) {
            if (f.type.kind == type_kind::struct_ref) place(f.type.index);
        }
        order.push_back(index);
    };
    for (std::uint32_t i = 0; i < file.structs.size(); ++i) place(i);
    return order;
}

/// Text safe inside a `/* */` or `//` comment: no "*/", no line breaks.
[[nodiscard]] inline std::string comment_text(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\n' || c == '\r') {
            out += ' ';
        } else if (c == '*' && i + 1 < text.size() && text[i + 1] == '/') {
            out += "* ";
        } else {
            out += c;
        }
    }
    return out;
}

/// "0x1c2310712da78b06": an id as a hex literal body.
[[nodiscard]] inline std::string hex_literal(std::uint64_t value) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    do {
        out.insert(out.begin(), digits[value & 0xF]);
        value >>= 4;
    } while (value != 0);
    return "0x" + out;
}

/// "1.2.3".
[[nodiscard]] inline std::string version_text(const polyplug::version& v) {
    return std::to_string(v.major) + "." + std::to_string(v.minor) + "." + std::to_string(v.patch);
}

/// All contracts of the file, guest contracts first, each in file order.
[[nodiscard]] inline std::vector<const contract_decl*> all_contracts(const contract_file& file) {
    std::vector<const contract_decl*> out;
    for (const contract_decl& c : file.guest_contracts) out.push_back(&c);
    for (const contract_decl& c : file.host_contracts) out.push_back(&c);
    return out;
}

}  // namespace polyplug::tools
