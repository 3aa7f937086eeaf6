// SPDX-License-Identifier: MIT
/// @file ids.hpp
/// Compile-time FNV-1a-64 and the bundle / guest-contract / host-contract id schemes.
#pragma once

#include <polyplug/config.hpp>

#include <cstdint>
#include <string>
#include <string_view>

POLYPLUG_BEGIN_NAMESPACE

/// FNV-1a-64 of the bytes of `text` (no terminator).
[[nodiscard]] constexpr std::uint64_t fnv1a64(
    std::string_view text, std::uint64_t hash = POLYPLUG_FNV1A64_OFFSET_BASIS) noexcept {
    for (const char c : text) {
        hash ^= static_cast<std::uint8_t>(c);
        hash *= POLYPLUG_FNV1A64_PRIME;
    }
    return hash;
}

namespace detail {
constexpr std::uint64_t fnv1a64_decimal(std::uint32_t value, std::uint64_t hash) noexcept {
    char digits[10]{};
    int n = 0;
    do {
        digits[n++] = static_cast<char>('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    while (n > 0) hash = fnv1a64(std::string_view(&digits[--n], 1), hash);
    return hash;
}

constexpr std::uint64_t prefixed_id(std::string_view prefix, std::string_view name,
                                    std::uint32_t major) noexcept {
    return fnv1a64_decimal(major, fnv1a64("@", fnv1a64(name, fnv1a64(prefix))));
}
}  // namespace detail

/// Bundle id: fnv1a64(name). Bundle id 0 is reserved for the host.
[[nodiscard]] constexpr std::uint64_t bundle_id(std::string_view name) noexcept {
    return fnv1a64(name);
}

/// Guest contract id: fnv1a64("guest_contract:" + name + "@" + major).
[[nodiscard]] constexpr std::uint64_t guest_contract_id(std::string_view name,
                                                        std::uint32_t major) noexcept {
    return detail::prefixed_id("guest_contract:", name, major);
}

/// Host contract id: fnv1a64("host_contract:" + name + "@" + major).
[[nodiscard]] constexpr std::uint64_t host_contract_id(std::string_view name,
                                                       std::uint32_t major) noexcept {
    return detail::prefixed_id("host_contract:", name, major);
}

/// Packs a host-contract version request: `(major << 16) | minor`; 0 is the wildcard.
[[nodiscard]] constexpr std::uint32_t pack_host_version(std::uint32_t major,
                                                        std::uint32_t minor) noexcept {
    return (major << 16) | (minor & 0xFFFFu);
}

POLYPLUG_END_NAMESPACE

POLYPLUG_BEGIN_NAMESPACE

/// An id as people read it: "0x" followed by 16 lowercase hex digits.
[[nodiscard]] inline std::string format_id(std::uint64_t id) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out = "0x0000000000000000";
    for (std::size_t i = 0; i < 16; ++i) out[17 - i] = digits[(id >> (4 * i)) & 0xF];
    return out;
}

POLYPLUG_END_NAMESPACE
