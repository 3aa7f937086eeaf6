// SPDX-License-Identifier: MIT
/// @file bench/harness.hpp
/// The timing harness: a batch of operations timed with steady_clock, calibrated to a target
/// duration, repeated, and interleaved with its baseline so both see the same machine state.
/// Results are per operation: median and spread (p10, p90, min, max) over the repetitions. A batch
/// during which the thread lost its core to another process is run again (see `settings`).
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

namespace bench {

using clock = std::chrono::steady_clock;

/// Makes `value` opaque to the optimiser: the compiler must assume the empty asm reads and
/// rewrites it, so it can neither fold a computation into a constant nor hoist one that uses it
/// out of a loop. For scalars and pointers.
template <class T>
inline void opaque(T& value) noexcept {
    static_assert(std::is_scalar_v<T>, "bench::opaque takes a scalar or a pointer");
    asm volatile("" : "+r"(value));
}

/// Consumes `value` and clobbers memory: whatever produced it must really run, and memory read
/// after this point must be read again.
template <class T>
inline void consume(const T& value) noexcept {
    if constexpr (std::is_scalar_v<T>)
        asm volatile("" : : "r"(value) : "memory");
    else
        asm volatile("" : : "m"(value) : "memory");
}

/// Nanoseconds between two clock readings.
[[nodiscard]] inline double nanoseconds(clock::time_point start, clock::time_point stop) {
    return std::chrono::duration<double, std::nano>(stop - start).count();
}

/// A timed batch: runs `n` operations and returns the nanoseconds to charge to them. Most
/// batches time their whole loop (`time_loop`); a batch whose operations need untimed setup (a
/// fresh runtime per load) adds up the timed parts only.
using batch = std::function<double(std::uint64_t n)>;

/// Times `body(n)` as a whole.
template <class Body>
[[nodiscard]] double time_loop(std::uint64_t n, Body&& body) {
    const clock::time_point start = clock::now();
    std::forward<Body>(body)(n);
    return nanoseconds(start, clock::now());
}

/// How long and how often to measure.
struct settings {
    /// Each repetition's batch runs for about this long (timed part), so clock reads and loop
    /// overhead vanish into it.
    double batch_ms = 4.0;
    /// Repetitions per measured path (odd, so the median is a sample).
    std::size_t repetitions = 15;
    /// Cap on operations per batch, for costly operations with untimed setup.
    std::uint64_t max_ops = std::uint64_t{1} << 32;
    /// Floor on operations per batch, for batches with a fixed cost of their own (starting
    /// threads) that a small batch would mistake for the operations' cost.
    std::uint64_t min_ops = 1;
    /// A batch during which the measuring thread was preempted (an involuntary context switch:
    /// another process took the core) timed that process's time slice, not the operations; it is
    /// run again, up to this many times, and then kept as it is. Short batches make a clean run
    /// likely even on a busy machine. 0 for batches whose threads compete among themselves on
    /// purpose (contention rows): there, losing the core is part of what is measured.
    unsigned retries_when_preempted = 20;
};

/// Involuntary context switches of the calling thread so far.
[[nodiscard]] inline long preemptions() noexcept {
    rusage usage{};
    ::getrusage(RUSAGE_THREAD, &usage);
    return usage.ru_nivcsw;
}

/// Per-operation statistics over the repetitions of one path, in nanoseconds.
struct summary {
    double median = 0;
    double p10 = 0;
    double p90 = 0;
    double min = 0;
    double max = 0;
    std::size_t repetitions = 0;
    std::uint64_t ops_per_repetition = 0;
    std::size_t reruns = 0;     ///< batches run again because the thread was preempted
    std::size_t disturbed = 0;  ///< repetitions kept although still preempted (retries ran out)

    [[nodiscard]] bool empty() const noexcept { return repetitions == 0; }
};

/// The nearest-rank percentile `q` (0..1) of sorted `values`.
[[nodiscard]] inline double percentile(const std::vector<double>& sorted, double q) {
    if (sorted.empty()) return 0;
    const auto index = static_cast<std::size_t>(std::lround(q * double(sorted.size() - 1)));
    return sorted[std::min(index, sorted.size() - 1)];
}

[[nodiscard]] inline summary summarise(std::vector<double> per_op, std::uint64_t ops) {
    summary s;
    if (per_op.empty()) return s;
    std::sort(per_op.begin(), per_op.end());
    s.median = percentile(per_op, 0.5);
    s.p10 = percentile(per_op, 0.1);
    s.p90 = percentile(per_op, 0.9);
    s.min = per_op.front();
    s.max = per_op.back();
    s.repetitions = per_op.size();
    s.ops_per_repetition = ops;
    return s;
}

/// Operations per batch so that one batch's timed part lasts about `s.batch_ms`.
[[nodiscard]] inline std::uint64_t calibrate(const batch& run, const settings& s) {
    const double target = s.batch_ms * 1e6;
    std::uint64_t n = s.min_ops;
    for (;;) {
        const double took = std::max(run(n), 1.0);
        if (took >= target / 2 || n >= s.max_ops) {
            const double scaled = double(n) * target / took;
            return std::clamp<std::uint64_t>(static_cast<std::uint64_t>(scaled), s.min_ops,
                                             s.max_ops);
        }
        // Grow fast while far from the target, but never by more than 10x per step: a cold first
        // batch must not make the estimate overshoot.
        const double factor = std::clamp(target / took, 2.0, 10.0);
        n = std::min<std::uint64_t>(static_cast<std::uint64_t>(double(n) * factor), s.max_ops);
    }
}

/// The repetitions of one path: per-operation times in the order taken, and how many batches had
/// to be run again.
class samples {
public:
    samples(const batch& run, const settings& s) : run_(run), s_(s), n_(calibrate(run, s)) {}

    /// One repetition: a batch of n operations, run again while the thread was preempted.
    void take() {
        for (unsigned attempt = 0;; ++attempt) {
            const long before = preemptions();
            const double ns = run_(n_);
            const bool clean = preemptions() == before;
            if (clean || attempt >= s_.retries_when_preempted) {
                per_op_.push_back(ns / double(n_));
                disturbed_ += clean ? 0 : 1;
                return;
            }
            ++reruns_;
        }
    }

    [[nodiscard]] const std::vector<double>& per_op() const noexcept { return per_op_; }

    [[nodiscard]] summary result() const {
        summary out = summarise(per_op_, n_);
        out.reruns = reruns_;
        out.disturbed = disturbed_;
        return out;
    }

private:
    const batch& run_;
    const settings& s_;
    std::uint64_t n_;
    std::vector<double> per_op_;
    std::size_t reruns_ = 0;
    std::size_t disturbed_ = 0;
};

/// Runs `body` with the stack `bytes` deeper than it would be. At two nanoseconds a call, where
/// the loop's stack slots fall within a 4 KiB page can cost a cycle per call (the CPU may take a
/// load for one that depends on an earlier store at the same offset of another page), and address
/// space randomisation draws that position afresh for every process. Moving the stack between
/// repetitions measures many positions in one run, and the median reports the typical one.
template <class Body>
[[gnu::noinline]] void at_stack_offset(std::size_t bytes, Body&& body) {
    void* pad = __builtin_alloca(bytes + 16);
    asm volatile("" : : "r"(pad) : "memory");  // the allocation must happen
    std::forward<Body>(body)();
}

/// A path measured against its baseline.
struct comparison {
    summary baseline;
    summary measured;
    /// measured / baseline for each repetition, the two batches of a pair run back to back.
    /// Slow drifts of the machine (under a virtual machine the same loop can change speed by a
    /// third from one millisecond to the next) cancel within a pair; a ratio of two medians taken
    /// over the whole row does not cancel them when the drift happens halfway through.
    summary ratio;
};

/// Measures a path and its baseline in alternating repetitions (baseline first on even
/// repetitions, measured first on odd ones), so that frequency changes, other processes and
/// cache state weigh on both alike.
[[nodiscard]] inline comparison compare(const batch& baseline, const batch& measured,
                                        const settings& s) {
    samples base(baseline, s), meas(measured, s);
    for (std::size_t r = 0; r < s.repetitions; ++r) {
        // 13 is odd: over 256 repetitions every 16-byte position in a page comes up once.
        const std::size_t offset = (r * 13 % 256) * 16;
        at_stack_offset(offset, [&] {
            if (r % 2 == 0) {
                base.take();
                meas.take();
            } else {
                meas.take();
                base.take();
            }
        });
    }
    std::vector<double> ratios;
    for (std::size_t r = 0; r < s.repetitions; ++r)
        ratios.push_back(meas.per_op()[r] / base.per_op()[r]);
    return {base.result(), meas.result(), summarise(std::move(ratios), s.repetitions)};
}

}  // namespace bench
