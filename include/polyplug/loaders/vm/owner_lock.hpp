// SPDX-License-Identifier: MIT
/// @file loaders/vm/owner_lock.hpp
/// The per-VM lock of the script loaders: one 32-bit word holding the owning thread's id, so
/// that entering is one compare-and-swap, leaving is one exchange, a nested entry from the owning
/// thread is recognised (and refused) from the same word, and a thread waits in the kernel only
/// when another thread holds the VM.
#pragma once

#include <polyplug/config.hpp>

#include <atomic>
#include <climits>
#include <cstdint>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

POLYPLUG_BEGIN_NAMESPACE

namespace vm {

/// The calling thread's kernel id: unique among live threads of the process, the same value in
/// every shared object (a counter of our own would not be: each DSO would have its own).
[[nodiscard]] inline std::uint32_t this_thread_token() noexcept {
    thread_local const auto token = static_cast<std::uint32_t>(::syscall(SYS_gettid));
    return token;
}

/// An owner-word lock (see the file comment). Not recursive: `enter` tells a nested entry
/// apart and leaves the lock alone.
class owner_lock {
public:
    enum class entry : std::uint8_t { entered, nested };

    owner_lock() = default;
    owner_lock(const owner_lock&) = delete;
    owner_lock& operator=(const owner_lock&) = delete;

    /// Takes the lock, or says `nested` when this thread holds it already.
    [[nodiscard]] entry enter() noexcept {
        const std::uint32_t me = this_thread_token();
        std::uint32_t seen = 0;
        if (word_.compare_exchange_strong(seen, me, std::memory_order_acquire,
                                          std::memory_order_relaxed)) [[likely]]
            return entry::entered;
        // Only this thread ever writes its own id into the word, so seeing it means a nested
        // entry; no other thread can make it appear or vanish under us.
        if ((seen & ~waiters) == me) return entry::nested;
        wait_for(me);
        return entry::entered;
    }

    /// Releases the lock taken by `enter` (entry::entered only).
    ///
    /// The VM (and this lock in it) may be destroyed by another thread as soon as the word is
    /// released: an unload waiting here takes the lock, tears the VM down and frees it, possibly
    /// before this function returns. So after the exchange nothing here reads or writes the
    /// object: `waiters` is known from the value the exchange returned (set before the release,
    /// by a thread that was going to sleep), and the wake-up is a FUTEX_WAKE_PRIVATE on the
    /// word's address, which the kernel uses as a key only (for a private futex it never reads
    /// the memory; an address no longer mapped gives EFAULT, which is ignored). If the memory
    /// was reused meanwhile, a thread waiting on the new object at that address gets one
    /// spurious wake-up, which every futex waiter (this one included: wait_for loops) tolerates.
    void leave() noexcept {
        std::atomic<std::uint32_t>* const word = &word_;
        if (word->exchange(0, std::memory_order_release) & waiters) [[unlikely]]
            wake_one(word);
    }

    /// Whether a thread holds the lock (for assertions and tests; racy by nature).
    [[nodiscard]] bool held() const noexcept { return word_.load(std::memory_order_relaxed) != 0; }

private:
    static constexpr std::uint32_t waiters = 0x80000000u;  // thread ids stay below 2^22

    // Contended: mark the word as having waiters and sleep until it is free; take it with the
    // mark kept, since other threads may still be asleep (they are woken one per release).
    void wait_for(std::uint32_t me) noexcept {
        for (;;) {
            std::uint32_t seen = word_.load(std::memory_order_relaxed);
            if (seen == 0) {
                if (word_.compare_exchange_weak(seen, me | waiters, std::memory_order_acquire,
                                                std::memory_order_relaxed))
                    return;
                continue;
            }
            if ((seen & waiters) == 0 &&
                !word_.compare_exchange_weak(seen, seen | waiters, std::memory_order_relaxed,
                                             std::memory_order_relaxed))
                continue;
            ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word_), FUTEX_WAIT_PRIVATE,
                      seen | waiters, nullptr, nullptr, 0);
        }
    }

    static void wake_one(std::atomic<std::uint32_t>* word) noexcept {
        ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr,
                  nullptr, 0);
    }

    static_assert(sizeof(std::atomic<std::uint32_t>) == 4 &&
                      std::atomic<std::uint32_t>::is_always_lock_free,
                  "the futex word must be a plain 32-bit word");
    std::atomic<std::uint32_t> word_{0};
};

}  // namespace vm

POLYPLUG_END_NAMESPACE
