// SPDX-License-Identifier: MIT
/// @file detail/unmap_scheduler.hpp
/// Keeps the code of unloaded bundles mapped for a grace period (or for the runtime's life), so a
/// host thread still inside a plugin function when its bundle is unloaded finishes in mapped code.
#pragma once

#include <polyplug/config.hpp>
#include <polyplug/detail/logger.hpp>
#include <polyplug/detail/unload_hazards.hpp>

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// How it works: the scheduler holds a reference to an unloaded bundle's library: the loader's
/// own dlopen handle when the loader hands it over (the native loader, loader.hpp's
/// release_library), else one it takes before the loader releases the library (pin: dlopen with
/// RTLD_NOLOAD maps nothing new and runs no constructor), so that the loader's dlclose only
/// drops a count. The mapping goes away when the scheduler drops the last reference: after the
/// grace period, never while the runtime lives, or at teardown. The
/// delay is keyed by a library handle, not by bundle id, so loading the same bundle again during
/// the grace period cannot close the wrong library.
///
/// Before that last dlclose it looks for unload hazards (detail/unload_hazards.hpp):
/// - a thread still running the library's code (one the bundle started, or a host thread inside
///   a cached function pointer): the close is deferred and retried every `hazard_retry`; at
///   teardown it looks again for up to `teardown_patience`, then leaves the library mapped for
///   the rest of the process. Each is logged once.
/// - thread_local destructors: glibc itself keeps such a library mapped after the last dlclose
///   until the threads owning them have exited. That is logged, and teardown closes the library
///   once more so glibc can finish unmapping it when those threads are gone.
/// An atexit handler registered by the library needs nothing: glibc runs it at its last dlclose
/// (__cxa_finalize on the library's __dso_handle), before the code goes away.
class unmap_scheduler {
public:
    using clock = std::chrono::steady_clock;
    static constexpr std::chrono::milliseconds hazard_retry{100};
    /// How long the thread probe waits for every thread to answer.
    static constexpr std::chrono::milliseconds probe_patience{200};
    /// How long teardown keeps looking for a library's threads to leave before it leaves the
    /// library mapped for the rest of the process.
    static constexpr std::chrono::milliseconds teardown_patience{1000};

    /// `may_close` is asked before every close: false postpones it (a runtime-mediated call is
    /// inside plugin code). Hazards are reported through `log`.
    unmap_scheduler(std::function<bool()> may_close, const logger& log)
        : may_close_(std::move(may_close)), log_(log) {}

    unmap_scheduler(const unmap_scheduler&) = delete;
    unmap_scheduler& operator=(const unmap_scheduler&) = delete;

    ~unmap_scheduler() { close_all(); }

    /// Pins `artifact` if it is a library already mapped in this process (scripts and files
    /// that are not shared objects are ignored). Call before the loader releases it.
    [[nodiscard]] static void* pin(const std::filesystem::path& artifact) noexcept {
        void* handle = ::dlopen(artifact.c_str(), RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD);
        if (handle == nullptr) (void)::dlerror();  // not mapped: nothing to keep
        return handle;
    }

    /// Whether `artifact` is a library mapped in this process right now (for instance an
    /// unloaded version still in its grace period).
    [[nodiscard]] static bool is_mapped(const std::filesystem::path& artifact) noexcept {
        void* handle = pin(artifact);
        if (handle == nullptr) return false;
        ::dlclose(handle);
        return true;
    }

    /// Whether threads are probed for the library's code before it is unmapped (on by default;
    /// runtime_options::probe_threads_before_unmap).
    void set_thread_probe(bool enabled) noexcept { probe_threads_.store(enabled); }

    /// Closes `handle` once `grace` has passed (a negative grace: only at teardown). With no
    /// grace it tries at once, on this thread, whose stack it scans from `scan_from` (the frame
    /// where this thread's unload entered the runtime, hazards::runtime_entry_frame; 0: from
    /// here). A later attempt, by the worker or at teardown, scans from its own frame.
    void schedule(void* handle, std::chrono::milliseconds grace, std::uintptr_t scan_from = 0) {
        if (handle == nullptr) return;
        entry pinned;
        pinned.handle = handle;
        if (grace.count() == 0 && may_close_()) {  // no grace: close now, on this thread
            // Counted as being closed meanwhile (the probe can take probe_patience): a load of
            // the same library on another thread must still see it mapped and ours.
            {
                std::lock_guard lock(mutex_);
                closing_.push_back(handle);
            }
            const bool closed = try_close(pinned, scan_from);
            {
                std::lock_guard lock(mutex_);
                closing_.erase(std::find(closing_.begin(), closing_.end(), handle));
            }
            if (closed) return;
            grace = hazard_retry;
        }
        std::unique_lock lock(mutex_);
        const bool forever = grace.count() < 0;
        if (!forever) pinned.due = clock::now() + grace;
        pending_.push_back(std::move(pinned));
        if (forever) return;
        if (!worker_.joinable()) worker_ = std::thread([this] { run(); });
        wake_.notify_all();
    }

    /// Whether `handle` (a dlopen handle: glibc hands out one per loaded library) is one this
    /// scheduler still holds, i.e. a version released by this runtime whose code is still mapped.
    /// A library the worker is trying to close right now counts: it may yet stay mapped.
    [[nodiscard]] bool holds(void* handle) const {
        std::lock_guard lock(mutex_);
        return std::any_of(pending_.begin(), pending_.end(),
                           [&](const entry& e) { return e.handle == handle; }) ||
               std::find(closing_.begin(), closing_.end(), handle) != closing_.end();
    }

    /// Number of libraries still pinned, those being closed right now included (for tests,
    /// diagnostics, and the load path's "is an old version still mapped?").
    [[nodiscard]] std::size_t pending() const {
        std::lock_guard lock(mutex_);
        return pending_.size() + closing_.size();
    }

    /// Stops the worker and closes everything now (runtime teardown), except libraries a thread
    /// is still running: those stay mapped for the rest of the process.
    void close_all() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
            wake_.notify_all();
        }
        if (worker_.joinable()) worker_.join();
        std::vector<entry> rest;
        {
            std::lock_guard lock(mutex_);
            rest.swap(pending_);
        }
        // A thread inside is often only passing through (a call of another runtime that maps
        // the same file): look again for a while before giving up on the unmap.
        const auto give_up = clock::now() + teardown_patience;
        while (!rest.empty()) {
            std::erase_if(rest, [this](entry& e) { return try_close(e); });
            if (rest.empty() || clock::now() >= give_up) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        left_mapped_ += rest.size();
        for (const entry& e : rest)
            log_.warn("unload",
                      "'" + e.image.name +
                          "' stays mapped for the rest of the process: " + threads_text(e.census));
        // Libraries glibc kept for their thread_local destructors: closing them once more lets
        // glibc unmap those whose threads have exited since (the others it keeps, safely).
        std::vector<std::string> kept;
        {
            std::lock_guard lock(mutex_);
            kept.swap(kept_by_libc_);
        }
        for (const std::string& name : kept) {
            if (void* handle = ::dlopen(name.c_str(), RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD)) {
                ::dlclose(handle);
                // glibc may keep it until its threads exit, and their destructors run its code.
                ++left_mapped_;
            } else {
                (void)::dlerror();
            }
        }
    }

    /// How many libraries close_all left mapped (a thread still runs them, or glibc keeps them
    /// for thread_local destructors): their code may still call into the runtime.
    [[nodiscard]] std::size_t left_mapped() const noexcept { return left_mapped_; }

private:
    struct entry {
        void* handle = nullptr;
        clock::time_point due = clock::time_point::max();
        library_image image;         ///< described at the first attempt to close
        bool hazard_logged = false;  ///< the deferral was reported
        thread_census census;        ///< the last probe's answer
    };

    static std::string ids_text(const std::vector<long>& ids) {
        std::string text = ids.size() == 1 ? "thread " : "threads ";
        for (std::size_t i = 0; i < ids.size(); ++i)
            text += (i == 0 ? "" : ", ") + std::to_string(ids[i]);
        return text;
    }
    // Why the library stays mapped: "thread 12 is still running its code", and/or the threads
    // whose answer is unknown (they block the probe signal and never waited while looked at).
    static std::string threads_text(const thread_census& census) {
        std::string text;
        if (!census.inside.empty())
            text = ids_text(census.inside) + (census.inside.size() == 1 ? " is" : " are") +
                   " still running its code";
        if (!census.unknown.empty())
            text += (text.empty() ? "" : "; ") + ids_text(census.unknown) +
                    (census.unknown.size() == 1 ? " blocks" : " block") +
                    " the probe signal SIGURG and never waited in the kernel while looked at, "
                    "so whether it runs its code is unknown";
        return text;
    }

    // The last dlclose of `e`, unless a thread still runs the library's code (then false, and
    // the reason is logged once). Afterwards notes whether glibc kept the library mapped.
    bool try_close(entry& e, std::uintptr_t scan_from = 0) {
        if (e.image.name.empty() && !describe_library(e.handle, e.image)) {
            ::dlclose(e.handle);  // unknown to the dynamic loader: nothing to look at
            return true;
        }
        if (probe_threads_.load()) {
            e.census = threads_inside(e.image, probe_patience, scan_from);
            if (!e.census.inside.empty() || !e.census.unknown.empty()) {
                if (!e.hazard_logged)
                    log_.warn("unload", "unmapping '" + e.image.name + "' is deferred: " +
                                            threads_text(e.census) + " (checked again every " +
                                            std::to_string(hazard_retry.count()) + " ms)");
                e.hazard_logged = true;
                return false;
            }
            if (e.census.looked_at_from_outside != 0 && log_.enabled(log_level::debug))
                log_.debug("unload", std::to_string(e.census.looked_at_from_outside) +
                                         " thread(s) blocking SIGURG or not answering the "
                                         "probe were looked at from outside, waiting in the "
                                         "kernel, before unmapping '" +
                                         e.image.name + "'");
        }
        ::dlclose(e.handle);
        if (e.hazard_logged) log_.info("unload", "unmapped '" + e.image.name + "' now");
        // Whether glibc kept it matters for thread_local destructors (teardown closes such a
        // library again) and for the debug line; otherwise the walk of the link map is skipped.
        const bool worth_asking =
            e.image.registers_thread_local_destructors || log_.enabled(log_level::debug);
        if (worth_asking && is_still_mapped(e.image)) {
            if (e.image.registers_thread_local_destructors) {
                log_.info("unload", "'" + e.image.name +
                                        "' stays mapped until the threads that used its "
                                        "thread_local objects have exited (glibc runs their "
                                        "destructors first)");
                std::lock_guard lock(mutex_);
                if (kept_by_libc_.size() < max_kept) kept_by_libc_.push_back(e.image.name);
            } else if (log_.enabled(log_level::debug)) {
                log_.debug("unload", "'" + e.image.name +
                                         "' is still mapped after its last close (opened "
                                         "elsewhere in the process, or glibc marked it "
                                         "non-unloadable)");
            }
        }
        return true;
    }

    // Sleeps until the earliest deadline, then closes what is due, outside the lock: a library's
    // destructors may call back into the runtime.
    void run() {
        std::unique_lock lock(mutex_);
        while (!stopping_) {
            clock::time_point next = clock::time_point::max();
            for (const entry& e : pending_) next = std::min(next, e.due);
            if (next == clock::time_point::max()) {
                wake_.wait(lock);
                continue;
            }
            if (clock::now() < next) {
                wake_.wait_until(lock, next);
                continue;
            }
            if (!may_close_()) {  // a mediated call is inside plugin code: look again shortly
                wake_.wait_for(lock, std::chrono::milliseconds(1));
                continue;
            }
            std::vector<entry> due;
            const clock::time_point now = clock::now();
            for (auto it = pending_.begin(); it != pending_.end();) {
                if (it->due > now) {
                    ++it;
                    continue;
                }
                closing_.push_back(it->handle);
                due.push_back(std::move(*it));
                it = pending_.erase(it);
            }
            // Each stays counted (closing_) until its attempt is over: a probe takes up to
            // probe_patience, and a load meanwhile must still see the old version as mapped.
            for (entry& e : due) {
                lock.unlock();
                const bool closed = try_close(e);
                lock.lock();
                std::erase(closing_, e.handle);
                if (closed) continue;
                e.due = clock::now() + hazard_retry;
                pending_.push_back(std::move(e));
            }
        }
    }

    static constexpr std::size_t max_kept = 1024;

    std::function<bool()> may_close_;
    const logger& log_;
    std::atomic<bool> probe_threads_{true};
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<entry> pending_;
    std::vector<void*> closing_;   ///< taken from pending_ by the worker, being closed now
    std::size_t left_mapped_ = 0;  ///< by close_all
    std::vector<std::string> kept_by_libc_;  ///< closed, but kept mapped by glibc (TLS dtors)
    bool stopping_ = false;
    std::thread worker_;
};

}  // namespace detail
POLYPLUG_END_NAMESPACE
