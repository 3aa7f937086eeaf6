// SPDX-License-Identifier: MIT
/// @file runtime_options.hpp
/// How a runtime is configured from C++ (runtime_options) and from C (RuntimeConfig).
#pragma once

#include <polyplug/config.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>

POLYPLUG_BEGIN_NAMESPACE

/// What a version or function-count mismatch between manifests and code does (spec §9.4).
enum class compatibility : std::uint32_t {
    strict = Compatibility_Strict,    ///< the load fails
    relaxed = Compatibility_Relaxed,  ///< a warning is logged and the load goes on
    yolo = Compatibility_Yolo,        ///< ignored
};

/// Severity of a log record; Error = 1 ... Trace = 5 as in the C ABI.
enum class log_level : std::uint32_t {
    error = LogLevel_Error,
    warn = LogLevel_Warn,
    info = LogLevel_Info,
    debug = LogLevel_Debug,
    trace = LogLevel_Trace,
};

/// Receives every reload/unload phase, synchronously, on the thread doing the work. The phase is
/// valid only during the call. Must not reload from inside the callback.
using reload_callback = std::function<void(const ReloadPhase& phase)>;

/// Receives log records at or below `log_max_level`. Views are valid only during the call; the
/// callback may run on any thread and must not call back into the runtime.
using log_callback =
    std::function<void(log_level level, std::string_view scope, std::string_view message)>;

/// When the code of an unloaded bundle is unmapped. Either way its contracts are invalidated at
/// once (cached interface pointers report StaleHandle); this only decides how long a host thread
/// that was already inside the plugin's code may safely finish there.
enum class unmap_policy : std::uint32_t {
    after_grace_period = 0,  ///< unmapped `unload_grace_period` after the unload
    never = 1,               ///< kept mapped while the runtime lives; unmapped at its destruction
};

/// Runtime configuration for C++ hosts. Defaults match a NULL RuntimeConfig.
struct runtime_options {
    compatibility compat = compatibility::strict;
    bool hot_reload_enabled = false;
    reload_callback on_reload;
    /// Without a callback, Error and Warn records go to stderr and the rest is dropped.
    log_callback log;
    log_level log_max_level = log_level::warn;
    /// What happens to an unloaded bundle's code (C hosts: the built-in host.polyplug.Runtime
    /// contract). The library is never unmapped while a runtime-mediated call is inside it.
    unmap_policy unmap = unmap_policy::after_grace_period;
    std::chrono::milliseconds unload_grace_period{50};
    /// Before the code of an unloaded bundle is unmapped, every thread of the process is asked
    /// (by a SIGURG to each; ignored by default, the host's handler is chained) whether it is
    /// still running that code; if one is, the unmap is deferred and retried, and at teardown the
    /// code stays mapped, each with a logged reason. A thread blocked in a system call sees it
    /// interrupted (restarted where the kernel can). A thread that blocks SIGURG is looked at
    /// from outside while it waits in the kernel (its stack read through /proc and
    /// process_vm_readv); one that never waits while looked at defers the unmap like a thread
    /// inside. Turn off for hosts that cannot tolerate the signal; then a thread left running in
    /// unloaded code crashes the process.
    bool probe_threads_before_unmap = true;
    /// A bundle's artifact must lie inside its directory. A symlink taking it elsewhere is
    /// refused with errc::path_escapes_bundle unless this is true (for example a bundle tree whose
    /// libraries are symlinks into a build directory). `file` itself may never be absolute or
    /// climb out with "..", whatever this says.
    bool allow_symlinks_outside_bundle = false;
    /// Opens every native library once in a forked child process before the real dlopen, so a
    /// static constructor that throws (std::terminate inside dlopen: glibc's loader frames cannot
    /// be unwound) or aborts ends the child, and the load fails with errc::library_load_failed
    /// and the child's last words. Costs a fork per load, and the library's constructors run once
    /// more, in the child. Off by default.
    bool preflight_native_libraries = false;
    /// How long a pre-flight child may take before the load is refused.
    std::chrono::milliseconds preflight_timeout{10000};

    /// Converts a C configuration (NULL gives the defaults). Unknown compatibility values are
    /// treated as Strict, the safe choice.
    [[nodiscard]] static runtime_options from_c(const RuntimeConfig* config) {
        runtime_options options;
        if (config == nullptr) return options;
        options.compat = config->compatibility <= Compatibility_Yolo
                             ? static_cast<compatibility>(config->compatibility)
                             : compatibility::strict;
        options.hot_reload_enabled = config->hot_reload_enabled;
        if (config->on_reload != nullptr) {
            options.on_reload = [fn = config->on_reload, user = config->on_reload_user_data](
                                    const ReloadPhase& phase) { fn(user, &phase); };
        }
        if (config->log != nullptr) {
            options.log = [fn = config->log, user = config->log_user_data](
                              log_level level, std::string_view scope, std::string_view message) {
                fn(user, static_cast<std::uint32_t>(level),
                   {reinterpret_cast<const std::uint8_t*>(scope.data()), scope.size()},
                   {reinterpret_cast<const std::uint8_t*>(message.data()), message.size()});
            };
        }
        options.log_max_level = static_cast<log_level>(config->log_max_level);
        return options;
    }
};

/// How `runtime::watch` behaves.
struct watch_options {
    /// Quiet time after the last change to a bundle directory before it is acted on: a copy
    /// that closes several files, or a rename after a write, is one reload, not several.
    std::chrono::milliseconds debounce{250};
    /// true: a thread of the runtime's waits for changes and acts on them (on_reload and the log
    /// are then called on that thread). false: nothing happens until the host calls
    /// `runtime::poll_watch()`, which acts on the calling thread (for hosts with their own loop).
    bool background_thread = true;
};

POLYPLUG_END_NAMESPACE
