// SPDX-License-Identifier: MIT
/// @file contract_description.hpp
/// A contract file's computed layouts as plain text, for hosts in languages that have no C
/// compiler at hand (Python's ctypes, LuaJIT's FFI): they ask the runtime for this text through
/// host.polyplug.Runtime@1's DescribeContractFile and never re-implement the C layout rules, so
/// their offsets are the ones the runtime and the generated headers use.
///
/// The format, version 1 (one record per line, fields separated by one space; no field holds a
/// space, every line ends with '\n'):
///
///     polyplug-contracts 1
///     enum <name> <repr> <bitflag 0|1> <variant_count>
///     variant <name> <value as 0x%016x>                       variant_count of these follow
///     struct <name> <size> <align> <field_count>              in dependency order
///     field <name> <type> <offset>
///     contract <guest|host> <name> <major> <minor> <patch> <id as 0x%016x> <singleton 0|1>
///              <function_count>                               (one line)
///     function <name> <fn_id> <args_size> <args_align> <result_type> <param_count>
///     param <name> <type> <offset>
///
/// Enums come first, then structs (each after the structs its fields use), then the guest and
/// the host contracts in file order. Types are spelled as in contract files: u8 ... f64, bool,
/// StringView, Buffer, Ptr, Void (results only), an enum or struct name, Array<T>.
#pragma once

#include <polyplug/contract_file.hpp>

#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE

/// The first line of every description; a reader refuses any other.
inline constexpr std::string_view contract_description_header = "polyplug-contracts 1";

namespace detail {

struct description_writer {
    const contract_file& file;
    std::string text;

    void line(std::initializer_list<std::string_view> fields) {
        bool first = true;
        for (std::string_view f : fields) {
            if (!first) text += ' ';
            text += f;
            first = false;
        }
        text += '\n';
    }

    static std::string number(std::uint64_t value) { return std::to_string(value); }

    static std::string hex(std::uint64_t value) {
        char digits[24];
        std::snprintf(digits, sizeof digits, "0x%016" PRIx64, value);
        return digits;
    }

    void write_enum(const enum_decl& e) {
        line({"enum", e.name, primitive_name(e.repr), e.bitflag ? "1" : "0",
              number(e.variants.size())});
        for (const enum_variant& v : e.variants) line({"variant", v.name, hex(v.value)});
    }

    // Writes struct `index` after every struct its fields hold by value or in arrays. Contract
    // files refuse cycles, so the recursion ends; `done` keeps each struct to one record.
    void write_struct(std::uint32_t index, std::vector<bool>& done) {
        if (done[index]) return;
        done[index] = true;
        const struct_decl& s = file.structs[index];
        for (const field_decl& f : s.layout.fields) {
            const plain_type& held = f.type.is_array() ? f.type.element : f.type;
            if (held.kind == type_kind::struct_ref && held.index < file.structs.size())
                write_struct(held.index, done);
        }
        line({"struct", s.name, number(s.layout.size), number(s.layout.align),
              number(s.layout.fields.size())});
        for (const field_decl& f : s.layout.fields)
            line({"field", f.name, f.type.name, number(f.offset)});
    }

    void write_contract(const contract_decl& c) {
        line({"contract", c.side == contract_side::guest ? "guest" : "host", c.name,
              number(c.version.major), number(c.version.minor), number(c.version.patch), hex(c.id),
              c.singleton ? "1" : "0", number(c.functions.size())});
        for (const function_decl& fn : c.functions) {
            line({"function", fn.name, number(fn.id), number(fn.args.size), number(fn.args.align),
                  fn.result.is_void() ? std::string_view("Void") : std::string_view(fn.result.name),
                  number(fn.args.fields.size())});
            for (const field_decl& p : fn.args.fields)
                line({"param", p.name, p.type.name, number(p.offset)});
        }
    }
};

}  // namespace detail

/// The description of a validated contract file (the format above).
[[nodiscard]] inline std::string describe_contracts(const contract_file& file) {
    detail::description_writer out{file, {}};
    out.text += contract_description_header;
    out.text += '\n';
    for (const enum_decl& e : file.enums) out.write_enum(e);
    std::vector<bool> done(file.structs.size(), false);
    for (std::uint32_t i = 0; i < file.structs.size(); ++i) out.write_struct(i, done);
    for (const contract_decl& c : file.guest_contracts) out.write_contract(c);
    for (const contract_decl& c : file.host_contracts) out.write_contract(c);
    return std::move(out.text);
}

POLYPLUG_END_NAMESPACE
