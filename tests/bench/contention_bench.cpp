// SPDX-License-Identifier: MIT
/// @file bench/contention_bench.cpp
/// Several threads at once: dispatch on 1 and 2 threads, dispatch while another thread reloads
/// the bundle in a loop, find + resolve on 2 threads (each reader writes only its own reader slot:
/// budget 1.2x of 1 thread), and find + resolve while another thread's bundle init is running (the
/// init-window check).
/// Every figure is wall time per call per thread: a thread that loses its core shows up.
#include "bench_bundle.hpp"
#include "bench_loaders.hpp"
#include "bench_runtime.hpp"
#include "suite.hpp"

#include <polyplug/runtime.hpp>

#include <algorithm>
#include <atomic>
#include <latch>
#include <thread>
#include <vector>

namespace bench {
namespace {

const std::string group = "contention";

/// Runs `work(calls)` on `threads` threads released together; returns the nanoseconds from the
/// first thread's start to the last one's end (the harness divides by `calls`: time per call per
/// thread). Each thread reads the clock itself; one that waits for a core lengthens the span,
/// which is the point.
template <class Work>
double parallel(unsigned threads, std::uint64_t calls, const Work& work) {
    std::latch start(threads);
    std::vector<clock::time_point> begins(threads), ends(threads);
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            start.arrive_and_wait();
            begins[t] = clock::now();
            work(calls);
            ends[t] = clock::now();
        });
    for (std::thread& thread : pool) thread.join();
    return nanoseconds(*std::min_element(begins.begin(), begins.end()),
                       *std::max_element(ends.begin(), ends.end()));
}

/// Reloads `dir` in a loop on its own thread while alive; counts reloads and their time.
class reloader {
public:
    reloader(polyplug::runtime& rt, const fs::path& dir, std::uint64_t& count, double& seconds)
        : count_(count), seconds_(seconds), started_(clock::now()), thread_([this, &rt, dir] {
              while (!stop_.load(std::memory_order_relaxed)) {
                  reload_bundle(rt, dir);
                  ++reloads_;
              }
          }) {}
    ~reloader() {
        stop_.store(true);
        thread_.join();
        count_ += reloads_;
        seconds_ += nanoseconds(started_, clock::now()) / 1e9;
    }
    reloader(const reloader&) = delete;
    reloader& operator=(const reloader&) = delete;

private:
    std::atomic<bool> stop_{false};
    std::uint64_t reloads_ = 0;
    std::uint64_t& count_;
    double& seconds_;
    clock::time_point started_;
    std::thread thread_;
};

std::string rate_note(const char* what, std::uint64_t count, double seconds) {
    char text[128];
    std::snprintf(text, sizeof text, "%s: %.0f reloads/s during the measured batches", what,
                  seconds > 0 ? double(count) / seconds : 0.0);
    return text;
}

}  // namespace

void run_contention(suite& s) {
    const fs::path dir = make_plugin_bundle(s.work, s.plugin, "contention");
    // Replaced code stays mapped for 2 s, not the default 50 ms: on a busy two-core machine a
    // calling thread can be descheduled for longer than 50 ms between loading the old function
    // pointer and returning from it, and could then resume in unmapped code (the limit
    // docs/BEHAVIOUR.md, "Cached pointers never crash", and docs/RELIABILITY.md, "Unload hazards",
    // describe: the probe sees a thread inside the code, not one between loading the pointer and
    // the call).
    runtime_setup setup;
    setup.hot_reload = true;
    setup.grace_period_ms = 2000;
    const runtime_ptr owner = make_runtime(setup);
    polyplug::runtime& rt = *owner;
    load_bundle(rt, dir);
    const GuestContractInterface* iface = resolve(rt, inc_contract_id);
    const GuestContractInstance instance{nullptr, inc_contract_id};

    // polyplug::call, the documented race-free way to call while reloads rewrite the table.
    const auto calls = [iface, instance](std::uint64_t count) {
        std::uint32_t counter = 0;
        for (std::uint64_t i = 0; i < count; ++i) {
            const std::uint32_t in = counter;
            const AbiError err = polyplug::call(*iface, instance, inc_fn, &in, &counter);
            consume(err.code);
        }
        consume(counter);
    };
    // Threads start a few tens of microseconds apart: batches of at least a million calls make
    // that negligible.
    settings threaded = s.slow;
    threaded.min_ops = std::max<std::uint64_t>(threaded.min_ops, 1'000'000);
    // No reruns: the measuring thread only waits for the others, so its own preemption count says
    // nothing, and here threads losing their core is part of what is measured.
    threaded.retries_when_preempted = 0;

    const batch one = [&](std::uint64_t n) { return parallel(1, n, calls); };
    const batch two = [&](std::uint64_t n) { return parallel(2, n, calls); };

    std::uint64_t reloads = 0;
    double reload_seconds = 0;
    const batch one_reloading = [&](std::uint64_t n) {
        const reloader background(rt, dir, reloads, reload_seconds);
        return parallel(1, n, calls);
    };
    const batch two_reloading = [&](std::uint64_t n) {
        const reloader background(rt, dir, reloads, reload_seconds);
        return parallel(2, n, calls);
    };

    add_compared(s,
                 titled(group, "polyplug::call on 2 threads, per thread",
                        "polyplug::call on 1 thread", "nothing shared is written: ideally 1.00x"),
                 one, two, threaded);

    row r = titled(group, "1 thread calling while another reloads", "polyplug::call on 1 thread");
    r.take(compare(one, one_reloading, threaded));
    r.note = rate_note("table entries rewritten on every reload", reloads, reload_seconds);
    s.out.add(r);

    reloads = 0;
    reload_seconds = 0;
    r = titled(group, "2 threads calling while a third reloads", "polyplug::call on 2 threads");
    r.take(compare(two, two_reloading, threaded));
    r.note = rate_note("3 busy threads on this machine's cores", reloads, reload_seconds);
    s.out.add(r);

    const polyplug::runtime* reader = &rt;
    const auto find_resolves = [reader](std::uint64_t count) {
        std::uint64_t id = inc_contract_id;
        for (std::uint64_t i = 0; i < count; ++i) {
            opaque(id);
            consume(reader->resolve(reader->find(id)));
        }
    };
    add_compared(
        s,
        titled(group, "find + resolve on 2 threads, per thread", "find + resolve on 1 thread",
               "each find writes only its own thread's reader slot; against the resolve control",
               budget{"<= 1.2x find + resolve on 1 thread", 1.2, 0}),
        [&](std::uint64_t n) { return parallel(1, n, find_resolves); },
        [&](std::uint64_t n) { return parallel(2, n, find_resolves); }, threaded);
    const GuestContractHandle handle = rt.find(inc_contract_id);
    const auto resolves = [reader, handle](std::uint64_t count) {
        GuestContractHandle h = handle;
        for (std::uint64_t i = 0; i < count; ++i) {
            opaque(h.index);
            consume(reader->resolve(h));
        }
    };
    add_compared(
        s,
        titled(group, "resolve on 2 threads, per thread (control)", "resolve on 1 thread",
               "resolve only reads: how 2 threads scale here without shared writes"),
        [&](std::uint64_t n) { return parallel(1, n, resolves); },
        [&](std::uint64_t n) { return parallel(2, n, resolves); }, threaded);

    // A second runtime with the same contract, in which another thread's bundle init is running
    // the whole time.
    const runtime_ptr busy = make_runtime();
    load_bundle(*busy, make_plugin_bundle(s.work, s.plugin, "contention-busy"));
    init_gate* gate = install_gated_loader(host_api(*busy));
    const fs::path gated = make_loader_bundle(s.work, "gated", "bench-gate");
    std::thread initialising([&] { load_bundle(*busy, gated); });
    while (!gate->inside.load()) std::this_thread::yield();
    const polyplug::runtime* quiet = &rt;
    const polyplug::runtime* during_init = busy.get();
    add_compared(
        s,
        titled(group, "find + resolve while another thread's init runs",
               "find + resolve, no init running",
               "the init-window check takes a mutex while any init runs"),
        [quiet](std::uint64_t n) {
            return time_loop(n, [&](std::uint64_t count) {
                std::uint64_t id = inc_contract_id;
                for (std::uint64_t i = 0; i < count; ++i) {
                    opaque(id);
                    consume(quiet->resolve(quiet->find(id)));
                }
            });
        },
        [during_init](std::uint64_t n) {
            return time_loop(n, [&](std::uint64_t count) {
                std::uint64_t id = inc_contract_id;
                for (std::uint64_t i = 0; i < count; ++i) {
                    opaque(id);
                    consume(during_init->resolve(during_init->find(id)));
                }
            });
        },
        s.fast);
    gate->release.store(true);
    initialising.join();
}

}  // namespace bench
