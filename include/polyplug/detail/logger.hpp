// SPDX-License-Identifier: MIT
/// @file detail/logger.hpp
/// The runtime's log sink: level filter first (disabled levels cost one compare), then the
/// host's callback, or stderr for Error and Warn when there is none (spec §9.12).
#pragma once

#include <polyplug/detail/escape.hpp>
#include <polyplug/runtime_options.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

class logger {
public:
    logger(log_callback callback, log_level max_level)
        : callback_(std::move(callback)), max_level_(max_level) {}

    [[nodiscard]] bool enabled(log_level level) const noexcept {
        if (!callback_) return level <= log_level::warn;
        return level <= max_level_;
    }

    void log(log_level level, std::string_view scope, std::string_view message) const noexcept {
        if (!enabled(level)) return;
        // Messages quote untrusted bytes (paths, names, plugin text): control bytes are escaped
        // so a NUL cannot cut a host's copy short and an escape sequence cannot reach a terminal.
        std::string escaped;
        if (std::any_of(message.begin(), message.end(), is_escaped_control)) {
            try {
                escaped = escape_control_bytes(message);
            } catch (...) {
                return;  // out of memory: better no line than a raw one
            }
            message = escaped;
        }
        if (callback_) {
            // A throwing host callback must not unwind through the runtime (or a C caller).
            try {
                callback_(level, scope, message);
            } catch (...) {
            }
            return;
        }
        std::fprintf(stderr, "polyplug [%s] %.*s: %.*s\n",
                     level == log_level::error ? "error" : "warn", static_cast<int>(scope.size()),
                     scope.data(), static_cast<int>(message.size()), message.data());
    }

    void error(std::string_view scope, std::string_view message) const noexcept {
        log(log_level::error, scope, message);
    }
    void warn(std::string_view scope, std::string_view message) const noexcept {
        log(log_level::warn, scope, message);
    }
    void info(std::string_view scope, std::string_view message) const noexcept {
        log(log_level::info, scope, message);
    }
    void debug(std::string_view scope, std::string_view message) const noexcept {
        log(log_level::debug, scope, message);
    }

private:
    log_callback callback_;
    log_level max_level_;
};

/// Maps a raw level from a guest: unknown values clamp to Error (spec §8.1).
[[nodiscard]] constexpr log_level clamp_log_level(std::uint32_t raw) noexcept {
    return raw >= LogLevel_Error && raw <= LogLevel_Trace ? static_cast<log_level>(raw)
                                                          : log_level::error;
}

}  // namespace detail
POLYPLUG_END_NAMESPACE
