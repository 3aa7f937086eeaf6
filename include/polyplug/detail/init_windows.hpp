// SPDX-License-Identifier: MIT
/// @file detail/init_windows.hpp
/// Per-runtime, per-thread stacks of "init windows": while a bundle's init runs on a thread, that
/// thread's lookups are limited to the bundle's declared dependencies and its registrations are
/// attributed to it (spec §9.7).
#pragma once

#include <polyplug/config.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

class init_windows {
public:
    /// The contracts a bundle may look up while its init runs (shared, immutable once made).
    using allowed_set = std::shared_ptr<const std::vector<std::uint64_t>>;

    struct window {
        std::uint64_t bundle_id = 0;
        allowed_set allowed;
        std::vector<std::uint64_t>* nested_loads = nullptr;  // bundles this init loaded
    };

    /// RAII: the window is closed on every exit path, including exceptions. Bundles loaded by
    /// the init meanwhile (HostApi.load_bundle from inside it) are appended to `nested_loads`,
    /// so that a failing init can be undone with them.
    class scope {
    public:
        scope(init_windows& owner, std::uint64_t bundle_id, allowed_set allowed,
              std::vector<std::uint64_t>* nested_loads = nullptr)
            : owner_(owner) {
            owner_.push(bundle_id, std::move(allowed), nested_loads);
        }
        ~scope() { owner_.pop(); }
        scope(const scope&) = delete;
        scope& operator=(const scope&) = delete;

    private:
        init_windows& owner_;
    };

    /// Bundle id of the innermost window open on this thread; 0 (the host) if none.
    [[nodiscard]] std::uint64_t current_bundle() const {
        if (open_.load(std::memory_order_acquire) == 0) return 0;
        std::lock_guard lock(mutex_);
        const open_window* top = innermost();
        return top == nullptr ? 0 : top->bundle_id;
    }

    /// Whether this thread may look up `contract_id` now: always outside init windows (the fast
    /// path is one atomic load), otherwise only a declared dependency.
    [[nodiscard]] bool may_look_up(std::uint64_t contract_id) const {
        if (open_.load(std::memory_order_acquire) == 0) return true;
        std::lock_guard lock(mutex_);
        const open_window* top = innermost();
        if (top == nullptr) return true;
        return top->allowed && std::find(top->allowed->begin(), top->allowed->end(), contract_id) !=
                                   top->allowed->end();
    }

    /// Called after a load published: if an init runs on this thread, the bundle was loaded by
    /// it, and belongs to what undoing that init must undo.
    void note_nested_load(std::uint64_t loaded_bundle) {
        if (open_.load(std::memory_order_acquire) == 0) return;
        std::lock_guard lock(mutex_);
        const open_window* top = innermost();
        if (top != nullptr && top->nested_loads != nullptr)
            top->nested_loads->push_back(loaded_bundle);
    }

private:
    struct open_window : window {
        std::thread::id thread;
    };

    // The last window this thread opened (mutex_ held). Windows of every thread share one list
    // in the order they opened; a thread's own are in its nesting order, so its innermost is its
    // last. The list holds as many windows as inits are running: a few at most.
    [[nodiscard]] const open_window* innermost() const {
        const std::thread::id self = std::this_thread::get_id();
        for (auto it = windows_.rbegin(); it != windows_.rend(); ++it)
            if (it->thread == self) return &*it;
        return nullptr;
    }

    void push(std::uint64_t bundle_id, allowed_set allowed,
              std::vector<std::uint64_t>* nested_loads) {
        std::lock_guard lock(mutex_);
        windows_.push_back(
            {{bundle_id, std::move(allowed), nested_loads}, std::this_thread::get_id()});
        open_.fetch_add(1, std::memory_order_release);
    }

    void pop() noexcept {
        std::lock_guard lock(mutex_);
        const open_window* top = innermost();
        if (top == nullptr) return;
        windows_.erase(windows_.begin() + (top - windows_.data()));
        open_.fetch_sub(1, std::memory_order_release);
    }

    mutable std::mutex mutex_;
    // Every open window (mutex_): a flat list keeps its capacity, so opening and closing a
    // window on each load allocates nothing after the first.
    std::vector<open_window> windows_;
    std::atomic<std::uint64_t> open_{0};
};

}  // namespace detail
POLYPLUG_END_NAMESPACE
