// SPDX-License-Identifier: MIT
/// @file bench/main.cpp
/// polyplug_bench: runs every benchmark group, prints the table, writes JSON and Markdown.
///
///   polyplug_bench [--json FILE] [--markdown FILE] [--plugin bench_plugin.so] [--only TEXT]
///                  [--quick]
///
/// --only runs the groups whose name contains TEXT (several: TEXT,TEXT,...); --quick makes fewer,
/// shorter repetitions
/// (a smoke test of the harness, not numbers to quote).
#include "bench_bundle.hpp"
#include "suite.hpp"

#include <cstdio>
#include <algorithm>
#include <exception>
#include <string>

#ifndef POLYPLUG_BENCH_PLUGIN
#define POLYPLUG_BENCH_PLUGIN "bench_plugin.so"
#endif

namespace {

/// Whether `group` contains one of the comma-separated texts in `only` (an empty `only`: all).
bool selected(const std::string& group, const std::string& only) {
    if (only.empty()) return true;
    for (std::size_t start = 0; start <= only.size();) {
        const std::size_t comma = std::min(only.find(',', start), only.size());
        const std::string text = only.substr(start, comma - start);
        if (!text.empty() && group.find(text) != std::string::npos) return true;
        start = comma + 1;
    }
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    std::string json_path = "bench.json";
    std::string markdown_path;
    std::string plugin = POLYPLUG_BENCH_PLUGIN;
    std::string only;
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--json" && has_value) {
            json_path = argv[++i];
        } else if (arg == "--markdown" && has_value) {
            markdown_path = argv[++i];
        } else if (arg == "--plugin" && has_value) {
            plugin = argv[++i];
        } else if (arg == "--only" && has_value) {
            only = argv[++i];
        } else if (arg == "--quick") {
            quick = true;
        } else {
            std::fprintf(stderr,
                         "usage: %s [--json FILE] [--markdown FILE] [--plugin PATH] [--only TEXT] "
                         "[--quick]\n",
                         argv[0]);
            return 2;
        }
    }

    // Short batches, many repetitions: on a shared machine a short batch is likely to run
    // without losing its core, and the median of many ignores the ones that did not.
    bench::settings fast;  // nanosecond rows: 41 repetitions of ~1 ms batches
    fast.batch_ms = 1;
    fast.repetitions = 41;
    bench::settings slow;  // microsecond rows: 21 repetitions of ~5 ms batches
    slow.batch_ms = 5;
    slow.repetitions = 21;
    if (quick) {
        fast.batch_ms = slow.batch_ms = 0.5;
        fast.repetitions = slow.repetitions = 3;
    }

    const bench::machine machine = bench::describe_machine();
    bench::report::print_machine(machine);
    bench::report report;
    try {
        const bench::temp_dir work;
        bench::suite s{fast, slow, plugin, work.path(), report};
        const std::pair<const char*, void (*)(bench::suite&)> groups[] = {
            {"native dispatch", bench::run_dispatch},      {"lookups", bench::run_lookups},
            {"lifecycle", bench::run_lifecycle},           {"payload scaling", bench::run_payload},
            {"contention", bench::run_contention},         {"VM calls", bench::run_vm_calls},
            {"host languages", bench::run_host_languages},
        };
        for (const auto& [name, run] : groups)
            if (selected(name, only)) run(s);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "polyplug_bench: %s\n", e.what());
        return 1;
    }

    std::size_t reruns = 0, disturbed = 0;
    for (const bench::row& r : report.rows()) {
        reruns += r.measured.reruns + r.baseline.reruns;
        disturbed += r.measured.disturbed + r.baseline.disturbed;
    }
    std::printf(
        "\n%zu batches were run again because another process took the core; %zu kept "
        "disturbed after %u retries\n",
        reruns, disturbed, fast.retries_when_preempted);
    if (!report.write_json(json_path, machine, fast, slow)) {
        std::fprintf(stderr, "polyplug_bench: cannot write %s\n", json_path.c_str());
        return 1;
    }
    std::printf("wrote %s\n", json_path.c_str());
    if (!markdown_path.empty()) {
        if (!report.write_markdown(markdown_path)) {
            std::fprintf(stderr, "polyplug_bench: cannot write %s\n", markdown_path.c_str());
            return 1;
        }
        std::printf("wrote %s\n", markdown_path.c_str());
    }
    return 0;
}
