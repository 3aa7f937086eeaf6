// SPDX-License-Identifier: MIT
/// @file detail/reader_slots.hpp
/// Per-thread reader slots: lets a writer know when no reader can still be inside a retired
/// snapshot, while readers write only to a cache line of their own (no atomic read-modify-write).
#pragma once

#include <polyplug/config.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

// membarrier(2) is Linux-only; elsewhere (or with headers too old to have it) every reader fences.
#if defined(__linux__) && __has_include(<linux/membarrier.h>)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#define POLYPLUG_HAS_MEMBARRIER 1
#else
#define POLYPLUG_HAS_MEMBARRIER 0
#endif

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// How readers order their slot store before their load of the published pointer.
enum class reader_fence : std::uint8_t {
    /// membarrier(PRIVATE_EXPEDITED) if the kernel offers it, else `seq_cst`.
    automatic,
    /// Every reader issues a sequentially consistent store (one fenced instruction per lookup).
    /// What `automatic` falls back to; tests select it to cover that path.
    seq_cst,
};

/// One thread's reader state. Padded to two cache lines so that no two readers (and no
/// adjacent-line prefetch) share a line: a reader's stores never invalidate another core's cache.
struct alignas(128) reader_slot {
    /// 0 while the thread is outside; otherwise the epoch it saw on entering.
    std::atomic<std::uint64_t> epoch{0};
    /// The thread that uses this slot (see reader_thread_token), null while unclaimed.
    std::atomic<const void*> owner{nullptr};
};

/// Per-thread, one-entry cache: which slot this thread uses in the reader_slots it entered last.
/// Keyed by that object's serial, never by its address: a reader_slots object destroyed while a
/// thread's cache still names it is never touched again (no later object has the same serial),
/// and one at a recycled address is not mistaken for it. Trivially constructible and
/// destructible, so accessing it needs no initialisation guard and no exit-time registration.
struct reader_cache {
    std::uint64_t serial = 0;
    reader_slot* slot = nullptr;
};
inline thread_local reader_cache this_thread_reader_cache;

/// Unique per live thread (a thread's own TLS address); a thread started after another ended may
/// get the same token and then reuses that thread's slots, which is safe because a thread never
/// exits while inside a read.
inline const void* reader_thread_token() noexcept {
    return &this_thread_reader_cache;
}

/// Serials start at 1 (0 is the empty cache). Process-wide only so that serials are never reused;
/// nothing else is shared between registries or runtimes.
inline std::uint64_t next_reader_slots_serial() noexcept {
    static std::atomic<std::uint64_t> last{0};
    return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

/// Readers announce themselves in a slot of their own; a writer that has replaced the published
/// pointer calls synchronize() to learn whether what it replaced (and anything replaced before)
/// may be freed.
///
/// The protocol. A reader stores the current epoch into its slot, then loads the published
/// pointer, reads, and stores 0 (release). A writer publishes the new pointer, advances the epoch,
/// makes every reader's earlier slot store visible (below), then reads every slot (acquire): if
/// each is 0 or the new epoch, no reader can hold a pointer it replaced. A slot read as 0 belongs
/// to a reader that has left (its release store orders its reads before the free) or whose slot
/// store was not yet visible, in which case its load comes after the publication and returns the
/// new pointer; a slot holding the new epoch belongs to a reader that saw the advanced epoch
/// (acquire) and so loads the new pointer or a later one. Otherwise the writer keeps what it
/// retired and tries again at its next write: readers are never blocked, reclamation is only
/// postponed under constant read traffic.
///
/// Why the reader's slot store is visible before its load: that is a store followed by a load of
/// another location, which x86 and others may reorder (store buffering). Either the reader
/// fences (a seq_cst store: one fenced instruction per lookup), or the writer does it for every
/// reader at once with membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which runs a full barrier on
/// every CPU currently running a thread of this process (a thread that is not running has passed
/// one at its context switch); the reader then only needs a compiler barrier. The choice is made
/// once per object, at construction (the process registers for membarrier then; registering again
/// is harmless): readers test it with one load of a member that never changes. Where the kernel
/// lacks membarrier (ENOSYS), the command (EINVAL) or registration, readers use the seq_cst
/// store. If the barrier fails later (it should not once registered), the writer simply does not
/// free this time.
///
/// A thread nested inside a read (a visit callback that looks up again) leaves its slot as the
/// outer read set it: the outer epoch keeps protecting both reads.
///
/// ThreadSanitizer does not model membarrier, and needs none of it: a writer frees only what a
/// reader may have read after loading that reader's 0 (acquire) that the reader stored (release)
/// after reading, which is the happens-before TSan checks. valgrind 3.19 passes membarrier through.
class reader_slots {
public:
    explicit reader_slots(reader_fence fence = reader_fence::automatic)
        : serial_(next_reader_slots_serial()),
          expedited_(fence == reader_fence::automatic && register_membarrier()),
          first_(new (std::nothrow) block) {}

    ~reader_slots() {
        block* b = first_.release();
        while (b != nullptr) {
            block* next = b->next.load(std::memory_order_relaxed);
            delete b;
            b = next;
        }
    }

    reader_slots(const reader_slots&) = delete;
    reader_slots& operator=(const reader_slots&) = delete;

    class guard {
    public:
        // Out of line on purpose: inlined, it makes find too big for the compiler to inline
        // into its callers, which costs more than this call (the callgrind check counts both).
        // The cache miss and running out of memory are a tail call, so this saves no registers.
        POLYPLUG_NOINLINE explicit guard(const reader_slots& slots) noexcept {
            const reader_cache& cache = this_thread_reader_cache;
            if (cache.serial != slots.serial_) [[unlikely]] {
                slots.enter_uncached(*this);
                return;
            }
            enter(slots, cache.slot);
        }
        POLYPLUG_ALWAYS_INLINE ~guard() {
            if (slot_ != nullptr) {
                slot_->epoch.store(0, std::memory_order_release);
            } else if (counted_ != nullptr) [[unlikely]] {
                leave_overflow(*counted_);
            }
        }
        guard(const guard&) = delete;
        guard& operator=(const guard&) = delete;

    private:
        friend class reader_slots;

        POLYPLUG_ALWAYS_INLINE void enter(const reader_slots& slots, reader_slot* slot) noexcept {
            if (slot->epoch.load(std::memory_order_relaxed) != 0) return;  // nested: outer holds
            slot_ = slot;
            const std::uint64_t epoch = slots.epoch_.load(std::memory_order_acquire);
            if (slots.expedited_) {
                slot->epoch.store(epoch, std::memory_order_relaxed);
                // The writer's membarrier stands in for the hardware fence; this keeps the
                // compiler from moving the caller's load of the published pointer above the store.
                std::atomic_signal_fence(std::memory_order_seq_cst);
            } else {
                slot->epoch.store(epoch, std::memory_order_seq_cst);
            }
        }

        reader_slot* slot_ = nullptr;
        std::atomic<std::uint64_t>* counted_ = nullptr;  // overflow_ when no slot was available
    };

    /// Enter before loading the published pointer; the guard leaves at the end of its scope.
    [[nodiscard]] POLYPLUG_ALWAYS_INLINE guard enter() const noexcept { return guard(*this); }

    /// Call with writers serialised, after replacing the published pointer (seq_cst). True when
    /// nothing replaced so far can still be in use by a reader (see the class comment).
    [[nodiscard]] bool synchronize() noexcept {
        const std::uint64_t epoch = epoch_.load(std::memory_order_relaxed) + 1;
        epoch_.store(epoch, std::memory_order_release);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (expedited_ && others_claimed() && !expedited_barrier()) return false;
        if (overflow_.load(std::memory_order_seq_cst) != 0) return false;
        for (const block* b = first_.get(); b != nullptr;
             b = b->next.load(std::memory_order_acquire)) {
            for (const reader_slot& slot : b->slots) {
                const std::uint64_t seen = slot.epoch.load(std::memory_order_acquire);
                if (seen != 0 && seen != epoch) return false;
            }
        }
        return true;
    }

    /// Whether synchronize() skipped the barrier last time: no thread but the caller had ever
    /// read (for tests: the skip is invisible otherwise).
    [[nodiscard]] bool last_barrier_skipped() const noexcept { return skipped_; }

    /// Whether readers rely on membarrier (true) or fence themselves (false).
    [[nodiscard]] bool expedited() const noexcept { return expedited_; }

private:
    struct block {
        static constexpr std::size_t size = 16;
        reader_slot slots[size];
        std::atomic<block*> next{nullptr};
    };

    static bool register_membarrier() noexcept {
#if POLYPLUG_HAS_MEMBARRIER
        const long commands = ::syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
        if (commands < 0 || (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0 ||
            (commands & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0)
            return false;
        return ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#else
        return false;
#endif
    }

    // Whether a thread other than the caller has ever claimed a slot or counted itself in
    // overflow_ (slots are never given back, so the answer only goes from false to true). Called
    // by synchronize() after its seq_cst fence. False means the barrier is not needed: every
    // thread that reads later claims its slot (or counts itself) with a seq_cst
    // read-modify-write that this scan did not see, so the writer's fence precedes it in the
    // single total order, and the reader's seq_cst fence right after it (enter_uncached) orders
    // its every later load of the published pointer after the writer's publication. The caller's
    // own reads are ordered with its writes by program order. A thread that started with the
    // token of one that ended (reader_thread_token) owns that thread's slots, and the ended
    // thread reads nothing more. Costs a scan of the slots' owners (one block unless more than
    // 16 threads ever read) instead of a system call that interrupts every CPU running a thread
    // of this process: what a single-threaded host's every load and unload paid.
    [[nodiscard]] bool others_claimed() noexcept {
        skipped_ = false;
        if (overflow_.load(std::memory_order_seq_cst) != 0) return true;
        const void* self = reader_thread_token();
        for (const block* b = first_.get(); b != nullptr;
             b = b->next.load(std::memory_order_seq_cst)) {
            for (const reader_slot& slot : b->slots) {
                const void* owner = slot.owner.load(std::memory_order_seq_cst);
                if (owner != nullptr && owner != self) return true;
            }
        }
        skipped_ = true;
        return false;
    }

    static bool expedited_barrier() noexcept {
#if POLYPLUG_HAS_MEMBARRIER
        return ::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
#else
        return false;
#endif
    }

    // A reader whose cache names another object: the slot this thread already owns here, else a
    // free one it claims (the only read-modify-write, once per thread and object), else one in a
    // new block. If no block can be allocated, the reader counts itself in and out of overflow_,
    // as every reader once did with one shared counter: sequentially consistent RMWs, which the
    // writer's seq_cst load in synchronize() pairs with. Correct, only slower; nothing is cached,
    // so the next read tries to get a slot again.
    POLYPLUG_NOINLINE void enter_uncached(guard& g) const noexcept {
        reader_slot* slot = find_or_claim();
        // Orders the claim (or the overflow count) before every later load of the published
        // pointer by this thread: a writer that did not see the claim skips the barrier
        // (others_claimed), and this fence then makes the reader see what that writer published.
        if (slot == nullptr) {
            overflow_.fetch_add(1, std::memory_order_seq_cst);
            std::atomic_thread_fence(std::memory_order_seq_cst);
            g.counted_ = &overflow_;
            return;
        }
        std::atomic_thread_fence(std::memory_order_seq_cst);
        this_thread_reader_cache = {serial_, slot};
        g.enter(*this, slot);
    }

    POLYPLUG_NOINLINE static void leave_overflow(std::atomic<std::uint64_t>& count) noexcept {
        count.fetch_sub(1, std::memory_order_seq_cst);
    }

    [[nodiscard]] reader_slot* find_or_claim() const noexcept {
        const void* token = reader_thread_token();
        for (block* b = first_.get(); b != nullptr; b = b->next.load(std::memory_order_acquire))
            for (reader_slot& slot : b->slots)
                if (slot.owner.load(std::memory_order_relaxed) == token) return &slot;
        block* b = first_.get();
        while (b != nullptr) {
            for (reader_slot& slot : b->slots) {
                const void* expected = nullptr;
                if (slot.owner.load(std::memory_order_relaxed) == nullptr &&
                    slot.owner.compare_exchange_strong(expected, token, std::memory_order_seq_cst))
                    return &slot;
            }
            block* next = b->next.load(std::memory_order_acquire);
            if (next == nullptr) {
                auto* fresh = new (std::nothrow) block;
                if (fresh == nullptr) return nullptr;
                if (b->next.compare_exchange_strong(next, fresh, std::memory_order_seq_cst)) {
                    next = fresh;
                } else {
                    delete fresh;  // another thread appended first; `next` now holds its block
                }
            }
            b = next;
        }
        return nullptr;
    }

    const std::uint64_t serial_;
    const bool expedited_;
    std::unique_ptr<block> first_;
    std::atomic<std::uint64_t> epoch_{1};
    mutable std::atomic<std::uint64_t> overflow_{0};  // readers without a slot (enter_overflow)
    bool skipped_ = false;  // synchronize() skipped the barrier last time (writers serialised)
};

}  // namespace detail
POLYPLUG_END_NAMESPACE
