// SPDX-License-Identifier: MIT
/// @file detail/last_error.hpp
/// The per-runtime last-error string with the 0.1.1 read / clear / truncate rules (spec §9.11).
#pragma once

#include <polyplug/config.hpp>
#include <polyplug/detail/escape.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

class last_error {
public:
    /// Stores `message` with its control bytes escaped (detail/escape.hpp): many messages quote
    /// paths, names and plugin text, and a host reading a raw NUL would cut the message there.
    void set(std::string_view message) {
        std::string escaped = escape_control_bytes(message);
        std::lock_guard lock(mutex_);
        message_.swap(escaped);
    }

    /// Byte length; does not clear.
    [[nodiscard]] std::size_t length() const {
        std::lock_guard lock(mutex_);
        return message_.size();
    }

    /// NULL buffer: returns the length and clears. buf_len 0: clears, returns 0. Otherwise copies
    /// min(length, buf_len) bytes (no terminator), clears, and returns the count copied; a
    /// too-small buffer therefore gets a truncated message (size it with length() first).
    std::size_t take(std::uint8_t* buf, std::size_t buf_len) {
        std::lock_guard lock(mutex_);
        std::size_t result = 0;
        if (buf == nullptr) {
            result = message_.size();
        } else if (buf_len != 0) {
            result = std::min(buf_len, message_.size());
            if (result != 0) std::memcpy(buf, message_.data(), result);
        }
        message_.clear();
        return result;
    }

    /// A copy, without clearing (for the C++ API).
    [[nodiscard]] std::string peek() const {
        std::lock_guard lock(mutex_);
        return message_;
    }

private:
    mutable std::mutex mutex_;
    std::string message_;
};

}  // namespace detail
POLYPLUG_END_NAMESPACE
