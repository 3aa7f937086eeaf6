// SPDX-License-Identifier: MIT
/// @file bench/suite.hpp
/// What every group of benchmark rows shares (timing settings, the plugin, a work directory, the
/// report), the groups themselves, and the helpers that turn a pair of batches into a row. To add
/// a row: write a batch for the path and one for its baseline in the group's file and call
/// `add_compared`; a row whose feature is not built yet is one `add_not_built` line.
#pragma once

#include "harness.hpp"
#include "report.hpp"

#include <filesystem>
#include <string>
#include <utility>

// A real call, even to a function in the same program: GCC's noipa also stops interprocedural
// analysis from learning anything about the callee; clang has no noipa, noinline is its nearest.
#if defined(__clang__)
#define BENCH_NOINLINE [[gnu::noinline]]
#else
#define BENCH_NOINLINE [[gnu::noipa]]
#endif

namespace bench {

struct suite {
    settings fast;                 ///< rows of nanoseconds
    settings slow;                 ///< rows of microseconds and more (loads, reloads, threads)
    std::filesystem::path plugin;  ///< bench_plugin.so
    std::filesystem::path work;    ///< scratch directory for bundles
    report& out;
};

/// A row for the path `name` measured against `baseline_name`, with an optional note (shown
/// under the row) and budget.
[[nodiscard]] inline row titled(std::string group, std::string name, std::string baseline_name,
                                std::string note = {}, budget limit = {}) {
    row r;
    r.group = std::move(group);
    r.name = std::move(name);
    r.baseline_name = std::move(baseline_name);
    r.note = std::move(note);
    r.limit = std::move(limit);
    return r;
}

/// Measures `measured` against `baseline` (interleaved) and adds the row.
inline void add_compared(suite& s, row r, const batch& baseline, const batch& measured,
                         const settings& timing) {
    r.take(compare(baseline, measured, timing));
    s.out.add(std::move(r));
}

/// Lists a row whose feature is not built yet (`issue`: "issue N").
inline void add_not_built(suite& s, const std::string& group, const std::string& name,
                          const std::string& issue) {
    row r;
    r.group = group;
    r.name = name;
    r.not_built = issue;
    s.out.add(std::move(r));
}

// The groups, in the order they run; each file holds one.
void run_dispatch(suite& s);        // dispatch_bench.cpp
void run_lookups(suite& s);         // lookup_bench.cpp
void run_lifecycle(suite& s);       // lifecycle_bench.cpp
void run_payload(suite& s);         // payload_bench.cpp
void run_contention(suite& s);      // contention_bench.cpp
void run_vm_calls(suite& s);        // vm_bench.cpp
void run_host_languages(suite& s);  // host_language_bench.cpp

}  // namespace bench
