// SPDX-License-Identifier: MIT
/// @file fuzz/contract_file_fuzz.cpp
/// libFuzzer target: api.toml text through parse_contract_file, then the accepted model through
/// describe_contracts (what FFI hosts read). Any input must give a model or a status with a
/// message; an accepted model must be self-consistent: every field inside its struct, every
/// function id its index, every contract id its name's.
#include <polyplug/contract_description.hpp>
#include <polyplug/contract_file.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

void check_layout(const polyplug::record_layout& layout) {
    for (const polyplug::field_decl& f : layout.fields) {
        if (f.type.align == 0 || f.offset % f.type.align != 0) std::abort();
        if (std::uint64_t{f.offset} + f.type.size > layout.size) std::abort();
    }
    if (layout.align == 0 || layout.size % layout.align != 0) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    polyplug::contract_file file;
    const polyplug::status st = polyplug::parse_contract_file(text, "fuzz.api.toml", file);
    if (!st) {
        if (st.message().empty()) std::abort();
        return 0;
    }
    for (const polyplug::struct_decl& s : file.structs) check_layout(s.layout);
    for (const auto* list : {&file.guest_contracts, &file.host_contracts}) {
        for (const polyplug::contract_decl& c : *list) {
            const bool guest = c.side == polyplug::contract_side::guest;
            const std::uint64_t id = guest ? polyplug::guest_contract_id(c.name, c.version.major)
                                           : polyplug::host_contract_id(c.name, c.version.major);
            if (id != c.id) std::abort();
            for (std::size_t i = 0; i < c.functions.size(); ++i) {
                if (c.functions[i].id != i) std::abort();
                check_layout(c.functions[i].args);
            }
        }
    }
    const std::string description = polyplug::describe_contracts(file);
    if (description.rfind(polyplug::contract_description_header, 0) != 0) std::abort();
    return 0;
}
