// SPDX-License-Identifier: MIT
/// @file detail/reader_tracker.hpp
/// Counts readers inside a published snapshot (or calls inside plugin code) so that writers can
/// tell when nothing retired can still be in use, without readers ever taking a lock.
#pragma once

#include <polyplug/config.hpp>

#include <atomic>
#include <cstdint>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// Why this is enough: a reader increments the counter *before* loading the published pointer;
/// a writer unlinks (replaces the published pointer) *before* reading the counter. With both in
/// the single sequentially consistent order, a writer that reads zero knows every reader that
/// could have loaded an unlinked object has left, and every later reader loads the new one. A
/// writer that reads non-zero keeps its retired objects and tries again at its next write; so
/// readers are never blocked, and reclamation is only postponed under constant read traffic.
class reader_tracker {
public:
    class guard {
    public:
        explicit guard(const reader_tracker& tracker) noexcept : tracker_(&tracker) {
            tracker_->count_.fetch_add(1, std::memory_order_seq_cst);
        }
        ~guard() { tracker_->count_.fetch_sub(1, std::memory_order_seq_cst); }
        guard(const guard&) = delete;
        guard& operator=(const guard&) = delete;

    private:
        const reader_tracker* tracker_;
    };

    [[nodiscard]] guard enter() const noexcept { return guard(*this); }

    /// True when no reader is inside at this instant (see the class comment for why a writer may
    /// then free what it unlinked earlier).
    [[nodiscard]] bool quiescent() const noexcept {
        return count_.load(std::memory_order_seq_cst) == 0;
    }

private:
    mutable std::atomic<std::uint64_t> count_{0};
};

}  // namespace detail
POLYPLUG_END_NAMESPACE
