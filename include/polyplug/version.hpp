// SPDX-License-Identifier: MIT
/// @file version.hpp
/// Semantic versions as the ABI carries them (`Version`): parsing "a.b[.c]" and compatibility.
#pragma once

#include <polyplug/config.hpp>

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

POLYPLUG_BEGIN_NAMESPACE

/// A `major.minor.patch` version, layout-identical to the ABI's `Version`.
struct version {
    std::uint32_t major = 0;
    std::uint32_t minor = 0;
    std::uint32_t patch = 0;

    constexpr version() = default;
    constexpr version(std::uint32_t maj, std::uint32_t min, std::uint32_t pat = 0) noexcept
        : major(maj), minor(min), patch(pat) {}
    constexpr version(const Version& v) noexcept : major(v.major), minor(v.minor), patch(v.patch) {}

    [[nodiscard]] constexpr operator Version() const noexcept { return {major, minor, patch}; }

    /// Parses "major.minor[.patch]" like the original: major and minor are required, patch
    /// defaults to 0, components after the third are ignored, anything but ASCII digits (for
    /// example "1.0.0-alpha" or "^1.2") is an error, and so is a component above 2^32 - 1.
    [[nodiscard]] static constexpr std::optional<version> parse(std::string_view text) noexcept {
        std::uint32_t parts[3]{};
        int count = 0;
        std::size_t pos = 0;
        while (true) {
            const std::size_t dot = text.find('.', pos);
            const std::string_view part =
                text.substr(pos, dot == std::string_view::npos ? text.npos : dot - pos);
            if (part.empty()) return std::nullopt;
            std::uint64_t value = 0;
            for (const char c : part) {
                if (c < '0' || c > '9') return std::nullopt;
                value = value * 10 + static_cast<std::uint64_t>(c - '0');
                if (value > UINT32_MAX) return std::nullopt;
            }
            if (count < 3) parts[count] = static_cast<std::uint32_t>(value);
            ++count;
            if (dot == std::string_view::npos) break;
            pos = dot + 1;
        }
        if (count < 2) return std::nullopt;
        return version{parts[0], parts[1], parts[2]};
    }

    /// Same major and at least the required minor (the original's `is_compatible_with`).
    [[nodiscard]] constexpr bool is_compatible_with(const version& required) const noexcept {
        return major == required.major && minor >= required.minor;
    }

    [[nodiscard]] std::string to_string() const {
        return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
    }

    friend constexpr auto operator<=>(const version&, const version&) = default;
};

POLYPLUG_END_NAMESPACE
