// SPDX-License-Identifier: MIT
/// @file detail/unmap_scheduler.hpp
/// Keeps the code of unloaded bundles mapped for a grace period (or for the runtime's life), so a
/// host thread still inside a plugin function when its bundle is unloaded finishes in mapped code.
#pragma once

#include <polyplug/config.hpp>

#include <dlfcn.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// How it works: before a loader releases an unloaded bundle's library, the scheduler takes its
/// own reference to it (dlopen with RTLD_NOLOAD maps nothing new and runs no constructor). The
/// loader's dlclose then only drops a count; the mapping goes away when the scheduler drops the
/// last reference: after the grace period, never while the runtime lives, or at teardown. The
/// delay is keyed by a library handle, not by bundle id, so loading the same bundle again during
/// the grace period cannot close the wrong library.
class unmap_scheduler {
public:
    using clock = std::chrono::steady_clock;

    /// `may_close` is asked before every close: false postpones it (a runtime-mediated call is
    /// inside plugin code).
    explicit unmap_scheduler(std::function<bool()> may_close) : may_close_(std::move(may_close)) {}

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

    /// Closes `handle` once `grace` has passed (a negative grace: only at teardown).
    void schedule(void* handle, std::chrono::milliseconds grace) {
        if (handle == nullptr) return;
        if (grace.count() == 0 && may_close_()) {  // no grace: close now, on this thread
            ::dlclose(handle);
            return;
        }
        std::unique_lock lock(mutex_);
        const bool forever = grace.count() < 0;
        pending_.push_back({handle, forever ? clock::time_point::max() : clock::now() + grace});
        if (forever) return;
        if (!worker_.joinable()) worker_ = std::thread([this] { run(); });
        wake_.notify_all();
    }

    /// Number of libraries still pinned (for tests and diagnostics).
    [[nodiscard]] std::size_t pending() const {
        std::lock_guard lock(mutex_);
        return pending_.size();
    }

    /// Stops the worker and closes everything now (runtime teardown).
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
        for (const entry& e : rest) ::dlclose(e.handle);
    }

private:
    struct entry {
        void* handle;
        clock::time_point due;
    };

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
            std::vector<void*> due;
            const clock::time_point now = clock::now();
            std::erase_if(pending_, [&](const entry& e) {
                if (e.due > now) return false;
                due.push_back(e.handle);
                return true;
            });
            lock.unlock();
            for (void* handle : due) ::dlclose(handle);
            lock.lock();
        }
    }

    std::function<bool()> may_close_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<entry> pending_;
    bool stopping_ = false;
    std::thread worker_;
};

}  // namespace detail
POLYPLUG_END_NAMESPACE
