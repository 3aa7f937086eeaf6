// SPDX-License-Identifier: MIT
/// @file generate_c.hpp
/// `polyplug generate --lang c`: one C11 header per contract file. For each contract: its name,
/// version and id as constants, function ids, one argument struct per function with parameters,
/// layout asserts that make the C compiler check every size and offset the runtime computed, and
/// typed call helpers over polyplug/call.h. Also the file's enums, structs and `ArrayOf_T`s.
#pragma once

#include "generate_common.hpp"
#include "names.hpp"

#include <polyplug/contract_file.hpp>

#include <set>
#include <string>
#include <string_view>

namespace polyplug::tools {

namespace detail_c {

[[nodiscard]] inline std::string primitive(primitive_type p) {
    return primitive_type_name(p, spelling::c);
}

/// The C type of a plain type (an enum is its own typedef of the repr).
[[nodiscard]] inline std::string plain(const contract_file& file, const plain_type& t) {
    return stored_type_name(file, t, spelling::c);
}

[[nodiscard]] inline std::string array_name(const contract_file& file, const plain_type& element) {
    return "ArrayOf_" + type_name(file, element);
}

[[nodiscard]] inline std::string type(const contract_file& file, const type_ref& t) {
    return t.is_array() ? array_name(file, t.element) : plain(file, t);
}

/// A parameter's name in a helper, kept clear of the helper's own parameters.
[[nodiscard]] inline std::string param_name(std::string_view name) {
    static const std::set<std::string_view> taken = {"iface", "instance", "out", "args"};
    return taken.contains(name) ? std::string(name) + "_" : std::string(name);
}

inline void layout_asserts(std::string& out, std::string_view type_name, const record_layout& r) {
    const std::string t(type_name);
    out += "POLYPLUG_ABI_ASSERT(sizeof(" + t + ") == " + std::to_string(r.size) +
           " && POLYPLUG_ABI_ALIGNOF(" + t + ") == " + std::to_string(r.align) + ", \"" + t +
           ": size and alignment\");\n";
    for (const field_decl& f : r.fields) {
        out += "POLYPLUG_ABI_ASSERT(offsetof(" + t + ", " + f.name +
               ") == " + std::to_string(f.offset) + ", \"" + t + "." + f.name + ": offset\");\n";
    }
}

inline void doc_comment(std::string& out, std::string_view docs, std::string_view indent = "") {
    if (!docs.empty()) out += std::string(indent) + "/** " + comment_text(docs) + " */\n";
}

inline void emit_enum(std::string& out, const enum_decl& e) {
    doc_comment(out, e.docs);
    out += "typedef " + primitive(e.repr) + " " + e.name + ";" +
           (e.bitflag ? " /* bit flags: combine with | */" : "") + "\n";
    for (const enum_variant& v : e.variants) {
        out += "#define " + e.name + "_" + v.name + " ((" + e.name + ")UINT64_C(" +
               hex_literal(v.value) + "))";
        out += v.docs.empty() ? "\n" : " /**< " + comment_text(v.docs) + " */\n";
    }
    out += "POLYPLUG_ABI_ASSERT(sizeof(" + e.name +
           ") == " + std::to_string(primitive_size(e.repr)) + ", \"" + e.name + ": size\");\n\n";
}

inline void emit_array(std::string& out, const contract_file& file, const plain_type& element) {
    const std::string name = array_name(file, element);
    // Several generated headers may use the same Array<T>: the first one defines it.
    out += "#ifndef POLYPLUG_DEFINED_" + name + "\n#define POLYPLUG_DEFINED_" + name + "\n";
    out += "/** Array<" + type_name(file, element) + ">: `len` items at `items`. */\n";
    // `const T*`, spelled `T const*` so that it also reads right for T = void*.
    out += "typedef struct " + name + " {\n    " + plain(file, element) +
           " const* items;\n    size_t len;\n} " + name + ";\n";
    out += "POLYPLUG_ABI_ASSERT(sizeof(" + name + ") == 2 * sizeof(void*), \"" + name +
           ": size\");\n#endif\n\n";
}

inline void emit_struct(std::string& out, const contract_file& file, const struct_decl& s) {
    doc_comment(out, s.docs);
    out += "struct " + s.name + " {\n";
    for (const field_decl& f : s.layout.fields) {
        out += "    " + type(file, f.type) + " " + f.name + ";";
        out += f.docs.empty() ? "\n" : " /**< " + comment_text(f.docs) + " */\n";
    }
    out += "};\n";
    layout_asserts(out, s.name, s.layout);
    out += "\n";
}

/// How one contract is named in C: EXAMPLE_CALC_*, example_calc_*, ExampleCalc*.
struct contract_names {
    std::string upper;
    std::string lower;
    std::string pascal;

    explicit contract_names(std::string_view contract_name)
        : upper(upper_snake(contract_name)),
          lower(lower_snake(contract_name)),
          pascal(pascal_case(contract_name)) {}

    [[nodiscard]] std::string args_struct(const function_decl& fn) const {
        return pascal + pascal_case(fn.name) + "Args";
    }
};

inline void emit_contract(std::string& out, const contract_file& file, const contract_decl& c) {
    const contract_names n(c.name);
    const bool host = c.side == contract_side::host;
    const std::string side = host ? "host" : "guest";
    out += "/* ---- " + c.name + "@" + std::to_string(c.version.major) + ": " + side +
           " contract, version " + version_text(c.version) + " " +
           std::string(60 > c.name.size() ? 60 - c.name.size() : 0, '-') + " */\n";
    doc_comment(out, c.docs);
    out += "#define " + n.upper + "_NAME \"" + c.name + "\"\n";
    out += "#define " + n.upper + "_VERSION_MAJOR " + std::to_string(c.version.major) + "u\n";
    out += "#define " + n.upper + "_VERSION_MINOR " + std::to_string(c.version.minor) + "u\n";
    out += "#define " + n.upper + "_VERSION_PATCH " + std::to_string(c.version.patch) + "u\n";
    if (host) out += "#define " + n.upper + "_SINGLETON " + (c.singleton ? "1" : "0") + "\n";
    out += "/** " + side + "_contract_id(\"" + c.name + "\", " + std::to_string(c.version.major) +
           "); equals " + n.lower + "_contract_id(). */\n";
    out += "#define " + n.upper + "_CONTRACT_ID UINT64_C(" + hex_literal(c.id) + ")\n\n";

    out += "/** Function ids: zero-based, in declaration order. */\nenum {\n";
    for (const function_decl& fn : c.functions) {
        out +=
            "    " + n.upper + "_FN_" + upper_snake(fn.name) + " = " + std::to_string(fn.id) + ",";
        out += fn.docs.empty() ? "\n" : " /**< " + comment_text(fn.docs) + " */\n";
    }
    out +=
        "    " + n.upper + "_FUNCTION_COUNT = " + std::to_string(c.functions.size()) + "\n};\n\n";

    for (const function_decl& fn : c.functions) {
        if (fn.args.fields.empty()) continue;
        const std::string args = n.args_struct(fn);
        out +=
            "/** Arguments of `" + fn.name + "`, in declaration order, laid out by C rules. */\n";
        out += "typedef struct " + args + " {\n";
        for (const field_decl& p : fn.args.fields) {
            out += "    " + type(file, p.type) + " " + p.name + ";\n";
        }
        out += "} " + args + ";\n";
        layout_asserts(out, args, fn.args);
        out += "\n";
    }

    out += "static inline uint64_t " + n.lower + "_contract_id(void) {\n    return polyplug_" +
           side + "_contract_id(" + n.upper + "_NAME, sizeof(" + n.upper + "_NAME) - 1, " +
           n.upper + "_VERSION_MAJOR);\n}\n\n";

    const std::string iface =
        host ? "const HostContractInterface*" : "const GuestContractInterface*";
    const std::string instance = host ? "HostContractInstance" : "GuestContractInstance";
    for (const function_decl& fn : c.functions) {
        doc_comment(out, fn.docs);
        out += "static inline AbiError " + n.lower + "_" + lower_snake(fn.name) + "(" + iface +
               " iface, " + instance + " instance";
        for (const field_decl& p : fn.args.fields) {
            out += ", " + type(file, p.type) + " " + param_name(p.name);
        }
        if (!fn.result.is_void()) out += ", " + type(file, fn.result) + "* out";
        out += ") {\n";
        std::string args_ptr = "NULL";
        if (!fn.args.fields.empty()) {
            out += "    " + n.args_struct(fn) + " args;\n";
            for (const field_decl& p : fn.args.fields) {
                out += "    args." + p.name + " = " + param_name(p.name) + ";\n";
            }
            args_ptr = "&args";
        }
        const std::string out_ptr = fn.result.is_void() ? "NULL" : "out";
        const std::string fn_id = n.upper + "_FN_" + upper_snake(fn.name);
        if (host) {
            out += "    return polyplug_call_host(iface, instance, " + fn_id + ", " + args_ptr +
                   ", " + out_ptr + ");\n}\n\n";
        } else {
            out += "    return polyplug_call_guest(iface, instance, " + fn_id + ", " + args_ptr +
                   ", " + out_ptr + ", NULL);\n}\n\n";
        }
    }
    if (!host) {
        out +=
            "/** Entry `fn_id` of a resolved native interface; NULL when the interface is not\n"
            " * native or has no such function. Read atomically (polyplug_guest_fn): the runtime\n"
            " * rewrites entries while other threads call. */\n";
        out += "static inline GuestContractFn " + n.lower +
               "_function(const GuestContractInterface* iface, uint32_t fn_id) {\n"
               "    return polyplug_guest_fn(iface, fn_id);\n}\n\n";
    }
}

/// Refuses two contracts, or a contract and a type, that would get the same C names.
inline void check_c_names(const contract_file& file) {
    std::map<std::string, std::string> owners;  // C name -> what in the file it comes from
    auto claim = [&](const std::string& c_name, const std::string& what) {
        auto [it, fresh] = owners.emplace(c_name, what);
        if (!fresh) {
            throw generate_error(file.source + ": " + what + " and " + it->second +
                                 " would both be named '" + c_name + "' in C; rename one of them");
        }
    };
    for (const struct_decl& s : file.structs) claim(s.name, "struct '" + s.name + "'");
    for (const enum_decl& e : file.enums) claim(e.name, "enum '" + e.name + "'");
    for (const contract_decl* c : all_contracts(file)) {
        const contract_names n(c->name);
        claim(n.upper + "_NAME", "contract '" + c->name + "'");
        for (const function_decl& fn : c->functions) {
            const std::string what = "function '" + fn.name + "' of '" + c->name + "'";
            claim(n.upper + "_FN_" + upper_snake(fn.name), what);
            if (!fn.args.fields.empty()) claim(n.args_struct(fn), "arguments of " + what);
        }
    }
}

}  // namespace detail_c

/// The C header for a contract file; `guard` is the include-guard macro.
/// @throws generate_error when two names of the file would collide in C.
[[nodiscard]] inline std::string generate_c_header(const contract_file& file,
                                                   std::string_view guard) {
    detail_c::check_c_names(file);
    std::string out;
    out += "/* Generated by `polyplug generate --lang c` from " + comment_text(file.source) +
           ".\n * Do not edit: change the contract file and generate again. */\n";
    out += "#ifndef " + std::string(guard) + "\n#define " + std::string(guard) + "\n\n";
    out += "#include <polyplug/abi.h>\n#include <polyplug/call.h>\n\n";
    out +=
        "#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n\n";
    out += "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n";

    for (const enum_decl& e : file.enums) detail_c::emit_enum(out, e);
    for (const struct_decl& s : file.structs) {
        out += "typedef struct " + s.name + " " + s.name + ";\n";
    }
    if (!file.structs.empty()) out += "\n";
    for (const auto& [name, element] : array_elements(file))
        detail_c::emit_array(out, file, element);
    for (std::uint32_t index : structs_in_dependency_order(file)) {
        detail_c::emit_struct(out, file, file.structs[index]);
    }
    for (const contract_decl* c : all_contracts(file)) detail_c::emit_contract(out, file, *c);

    out += "#ifdef __cplusplus\n} /* extern \"C\" */\n#endif\n\n#endif /* " + std::string(guard) +
           " */\n";
    return out;
}

}  // namespace polyplug::tools
