// SPDX-License-Identifier: MIT
/// @file detail/escape.hpp
/// Control bytes made visible, so no message handed to a host (last_error, the log) carries a
/// raw NUL or terminal escape taken from untrusted bytes.
#pragma once

#include <polyplug/config.hpp>

#include <string>
#include <string_view>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// Whether `c` is a byte escape_control_bytes rewrites: C0 controls and DEL, except newline and
/// tab, which multi-line messages (the dependency graph's report) use on purpose.
[[nodiscard]] constexpr bool is_escaped_control(char c) noexcept {
    const auto byte = static_cast<unsigned char>(c);
    return (byte < 0x20u && c != '\n' && c != '\t') || byte == 0x7Fu;
}

/// `text` with NUL as `\0` and every other escaped control byte as `\xNN`; everything else,
/// including non-ASCII UTF-8, as it was. Returns `text` unchanged when there is nothing to do.
[[nodiscard]] inline std::string escape_control_bytes(std::string_view text) {
    constexpr std::string_view hex = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        if (!is_escaped_control(c)) {
            out += c;
        } else if (c == '\0') {
            out += "\\0";
        } else {
            const auto byte = static_cast<unsigned char>(c);
            out += "\\x";
            out += hex[byte >> 4u];
            out += hex[byte & 0xFu];
        }
    }
    return out;
}

}  // namespace detail
POLYPLUG_END_NAMESPACE
