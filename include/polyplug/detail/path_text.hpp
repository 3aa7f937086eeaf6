// SPDX-License-Identifier: MIT
/// @file detail/path_text.hpp
/// The check every path gets where it enters the runtime (C++ entry points and HostApi thunks).
#pragma once

#include <polyplug/config.hpp>
#include <polyplug/detail/escape.hpp>
#include <polyplug/error.hpp>

#include <filesystem>
#include <span>
#include <string>
#include <string_view>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// errc::invalid_path when `path` holds a NUL byte: every system call would see only the text
/// before it and quietly act on that prefix ("dir\0junk" would load "dir"). The message shows
/// the NUL escaped: `load_bundle: path 'dir\0junk' contains a NUL byte`.
[[nodiscard]] inline status check_path_text(const std::filesystem::path& path,
                                            std::string_view operation) {
    // The native text, not a copy of it: this runs on every load.
    const auto& native = path.native();
    using native_char = std::filesystem::path::value_type;
    if (native.find(native_char{}) == native.npos) return {};
    return {errc::invalid_path, std::string(operation) + ": path '" +
                                    escape_control_bytes(path.string()) + "' contains a NUL byte"};
}

/// The first of `paths` check_path_text refuses, or success.
[[nodiscard]] inline status check_path_text(std::span<const std::filesystem::path> paths,
                                            std::string_view operation) {
    for (const std::filesystem::path& path : paths) {
        if (status refused = check_path_text(path, operation); !refused) return refused;
    }
    return {};
}

}  // namespace detail
POLYPLUG_END_NAMESPACE
