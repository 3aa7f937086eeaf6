// SPDX-License-Identifier: MIT
/// @file detail/logger.hpp
/// The runtime's log sink: level filter first (disabled levels cost one compare), then the
/// host's callback, or stderr for Error and Warn when there is none (spec §9.12). Records made
/// while the runtime holds a lock are queued and delivered once it is released (`deferral`).
#pragma once

#include <polyplug/detail/escape.hpp>
#include <polyplug/runtime_options.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

class logger {
public:
    logger(log_callback callback, log_level max_level)
        : callback_(std::move(callback)), max_level_(max_level) {}

    /// While one is alive on a thread, that thread's records for this logger are queued instead
    /// of delivered; its destructor delivers them. The runtime makes one before it takes a lock
    /// and lets it go after the unlock, so the host's callback (which may call back into the
    /// runtime through HostApi) never runs while a runtime lock is held. Nests; per thread.
    class deferral {
    public:
        explicit deferral(const logger& owner) noexcept : owner_(&owner), outer_(innermost()) {
            innermost() = this;
        }
        ~deferral() {
            innermost() = outer_;
            for (const record& r : queued_) owner_->log(r.level, r.scope, r.message);
        }
        deferral(const deferral&) = delete;
        deferral& operator=(const deferral&) = delete;

    private:
        friend class logger;
        struct record {
            log_level level;
            std::string scope;
            std::string message;
        };
        const logger* owner_;
        deferral* outer_;
        std::vector<record> queued_;
    };

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
        for (deferral* d = innermost(); d != nullptr; d = d->outer_) {
            if (d->owner_ != this) continue;
            try {
                d->queued_.push_back({level, std::string(scope), std::string(message)});
            } catch (...) {  // out of memory: the record is lost, the lock is not risked
            }
            return;
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
    // The innermost deferral open on this thread (any logger's: a host callback may drive a
    // second runtime while the first holds a lock; each record is matched to its own logger).
    static deferral*& innermost() noexcept {
        static thread_local deferral* top = nullptr;
        return top;
    }

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
