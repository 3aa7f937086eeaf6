// SPDX-License-Identifier: MIT
/// @file bench/host_language_bench.cpp
/// One runtime call from each host language (find_guest_contract through HostApi) against a
/// plain FFI call of a C function from the same language: what the runtime adds on top of the
/// language's own FFI cost. The Python (ctypes) and LuaJIT (FFI) rows are measured by those
/// languages themselves: scripts/bench.sh runs tests/bench/host_python_bench.py and
/// host_luajit_bench.lua after this binary (docs/PERFORMANCE.md).
#include "bench_bundle.hpp"
#include "c_host_bench.h"
#include "suite.hpp"

namespace bench {

void run_host_languages(suite& s) {
    const std::string group = "host languages";
    const fs::path dir = make_plugin_bundle(s.work, s.plugin, "hosts");
    CHostBench* c_host = c_host_bench_open(dir.c_str(), plugin_library(dir, "hosts").c_str());
    if (c_host == nullptr) throw std::runtime_error("the C host could not start");
    const batch plain = [c_host](std::uint64_t n) {
        return time_loop(
            n, [&](std::uint64_t count) { consume(c_host_bench_plain_calls(c_host, count)); });
    };
    const batch find = [c_host](std::uint64_t n) {
        return time_loop(n,
                         [&](std::uint64_t count) { consume(c_host_bench_finds(c_host, count)); });
    };
    add_compared(
        s,
        titled(group, "C: HostApi.find_guest_contract", "C: plain call of a C function in a .so",
               "the original: C++ host ~24 ns per find (Rust 19 ns)"),
        plain, find, s.fast);
    c_host_bench_close(c_host);
}

}  // namespace bench
