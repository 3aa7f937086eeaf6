// SPDX-License-Identifier: MIT
/// @file loaders/vm/messages.hpp
/// The wording every script engine shares in its messages: where a conversion failed (a
/// trail's root and places: "argument 2 (b).points[3]", "parameter 'p'.inner.x"), why a value
/// did not fit after the value itself ("out of range"), and which functions a script's
/// implementation lacks. Written once so that the engines cannot drift apart; an engine keeps
/// its own words for its value kinds and how it shows a script value.
///
/// The writers are templates over the text they append to: a std::string, or a fixed buffer for
/// an engine that composes messages where an error may unwind by longjmp (Lua), anything with
/// `append(std::string_view)`.
#pragma once

#include <polyplug/config.hpp>
#include <polyplug/contract_file.hpp>
#include <polyplug/loaders/vm/plan.hpp>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE

namespace vm {

/// How an engine names a trail's places.
struct trail_words {
    bool numbered;         ///< "argument 2 (b)", "parameter a" (Lua); else "argument 'b'"
    unsigned first_index;  ///< what the first element is called: [1] in Lua, [0] elsewhere
};

template <class Text>
void append_unsigned(Text& out, std::uint64_t value) {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, value);
    out.append(std::string_view(digits, static_cast<std::size_t>(r.ptr - digits)));
}

/// The trail's root: "result", "parameter 'x'" or "argument 'b'" (quoted), "parameter x" or
/// "argument 2 (b)" (numbered: polyplug.call's arguments by position).
template <class Text>
void append_root(Text& out, const trail& t, trail_words words) {
    out.append(std::string_view(t.root));
    const bool number = words.numbered && t.root_number > 0;
    if (number) {
        out.append(std::string_view(" "));
        append_unsigned(out, t.root_number);
    }
    if (t.root_name == nullptr) return;
    out.append(std::string_view(number ? " (" : words.numbered ? " " : " '"));
    out.append(std::string_view(t.root_name));
    if (number || !words.numbered) out.append(std::string_view(number ? ")" : "'"));
}

/// The trail's fields and elements: ".inner.b[2]"; without the last one when the failure is
/// said at its parent (a missing field is the struct's).
template <class Text>
void append_places(Text& out, const trail& t, trail_words words, bool drop_last = false) {
    const unsigned depth = std::min(t.depth, trail::max_steps) - (drop_last ? 1u : 0u);
    for (unsigned i = 0; i < depth; ++i) {
        if (t.places[i].field != nullptr) {
            out.append(std::string_view("."));
            out.append(std::string_view(t.places[i].field));
        } else {
            out.append(std::string_view("["));
            append_unsigned(out, t.places[i].index + words.first_index);
            out.append(std::string_view("]"));
        }
    }
}

/// The values of integer type `type`: "-128 to 127", "0 to 18446744073709551615".
template <class Text>
void append_integer_range(Text& out, primitive_type type) {
    const unsigned bits = primitive_size(type) * 8;
    if (is_signed(type)) {
        const std::uint64_t limit = std::uint64_t{1} << (bits - 1);
        out.append(std::string_view("-"));
        append_unsigned(out, limit);
        out.append(std::string_view(" to "));
        append_unsigned(out, limit - 1);
        return;
    }
    out.append(std::string_view("0 to "));
    append_unsigned(out, bits == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1);
}

/// Why a value was refused, as messages say it after the value ("got 300 (out of range)");
/// nullptr for a value of the wrong kind, which the expected type says already.
[[nodiscard]] constexpr const char* misfit_reason(misfit why) noexcept {
    switch (why) {
        case misfit::wrong_type:
            return nullptr;
        case misfit::out_of_range:
            return "out of range";
        case misfit::not_integer:
            return "not an integer";
        case misfit::not_enum_value:
            return "not one of its values";
        case misfit::not_flags:
            return "not a combination of its flags";
    }
    return nullptr;
}

/// "has no function 'a'", "has no functions 'a', 'b'": what a script's implementation of
/// `decl` lacks, `missing` being function indices (at least one).
[[nodiscard]] inline std::string lacking_functions(const contract_decl& decl,
                                                   const std::vector<std::size_t>& missing) {
    std::string text = missing.size() > 1 ? "has no functions " : "has no function ";
    for (std::size_t i = 0; i < missing.size(); ++i)
        text += (i > 0 ? ", '" : "'") + decl.functions[missing[i]].name + "'";
    return text;
}

}  // namespace vm

POLYPLUG_END_NAMESPACE
