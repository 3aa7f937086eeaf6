// SPDX-License-Identifier: MIT
/// @file detail/utf8.hpp
/// UTF-8 validation and lossy decoding of strings that arrive from plugins and hosts.
#pragma once

#include <polyplug/config.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// Length of the valid UTF-8 sequence starting at `s[i]`, or 0 if it is not one. Rejects
/// overlong forms, surrogates and code points above U+10FFFF (RFC 3629).
inline std::size_t utf8_sequence_length(const unsigned char* s, std::size_t n,
                                        std::size_t i) noexcept {
    const unsigned char c = s[i];
    if (c < 0x80) return 1;
    auto cont = [&](std::size_t k) { return i + k < n && (s[i + k] & 0xC0) == 0x80; };
    if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (!cont(1) || !cont(2)) return 0;
        const unsigned char c1 = s[i + 1];
        if (c == 0xE0 && c1 < 0xA0) return 0;  // overlong
        if (c == 0xED && c1 > 0x9F) return 0;  // surrogates
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (!cont(1) || !cont(2) || !cont(3)) return 0;
        const unsigned char c1 = s[i + 1];
        if (c == 0xF0 && c1 < 0x90) return 0;  // overlong
        if (c == 0xF4 && c1 > 0x8F) return 0;  // above U+10FFFF
        return 4;
    }
    return 0;
}

[[nodiscard]] inline bool is_valid_utf8(const void* data, std::size_t n) noexcept {
    const auto* s = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n;) {
        const std::size_t len = utf8_sequence_length(s, n, i);
        if (len == 0) return false;
        i += len;
    }
    return true;
}

[[nodiscard]] inline bool is_valid_utf8(std::string_view text) noexcept {
    return is_valid_utf8(text.data(), text.size());
}

/// Copies at most `max_bytes` of `data`, replacing every invalid sequence with U+FFFD, so a
/// plugin's message can always be shown.
[[nodiscard]] inline std::string utf8_lossy(const void* data, std::size_t n,
                                            std::size_t max_bytes = 4096) {
    std::string out;
    if (data == nullptr) return out;
    const auto* s = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n && out.size() < max_bytes;) {
        const std::size_t len = utf8_sequence_length(s, n, i);
        if (len == 0) {
            out += "\xEF\xBF\xBD";
            ++i;
        } else {
            out.append(reinterpret_cast<const char*>(s + i), len);
            i += len;
        }
    }
    return out;
}

/// The bytes of a StringView (null or empty gives "").
[[nodiscard]] inline std::string_view view_of(StringView sv) noexcept {
    if (sv.ptr == nullptr || sv.len == 0) return {};
    return {reinterpret_cast<const char*>(sv.ptr), sv.len};
}

/// A StringView over `text` (borrowed).
[[nodiscard]] inline StringView string_view_of(std::string_view text) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

}  // namespace detail
POLYPLUG_END_NAMESPACE
