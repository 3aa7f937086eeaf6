// SPDX-License-Identifier: MIT
/// @file matrix_cpp.cpp
/// The C++ row of the host x guest matrix (scripts/bench.sh --matrix): a C++ host on the
/// header-only runtime calls greet("world") of the parity contract in each guest language
/// through the typed client and keeps the result as a std::string, against the same round trip
/// through a plain call of a C function in a shared library (matrix_floor.c). Prints one
/// "matrix C++ <guest> <ns>" line per cell.
///
///   matrix_cpp <build dir> [--quick]
#include "../bench_engines.hpp"
#include "matrix_timing.h"
#include "parity.hpp"

#include <polyplug/client.hpp>
#include <polyplug/polyplug.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>

extern "C" std::size_t polyplug_matrix_greet(const char* name, std::size_t len, char* out,
                                             std::size_t cap);

namespace {

namespace fs = std::filesystem;

using runtime_type = polyplug::basic_runtime<polyplug::native_loader
#if POLYPLUG_BENCH_LUA
                                             ,
                                             polyplug::lua_loader
#endif
#if POLYPLUG_BENCH_PYTHON
                                             ,
                                             polyplug::python_loader
#endif
#if POLYPLUG_BENCH_JS
                                             ,
                                             polyplug::js_loader
#endif
                                             >;

constexpr std::string_view expected = "hello, world!";

struct floor_context {
    std::string result;
};

int floor_batch(void* context, std::uint64_t count) {
    auto& c = *static_cast<floor_context*>(context);
    const std::string name = "world";
    for (std::uint64_t i = 0; i < count; ++i) {
        char out[64];
        const std::size_t n = polyplug_matrix_greet(name.data(), name.size(), out, sizeof out);
        if (n > sizeof out) return 1;
        c.result.assign(out, n);
    }
    return c.result == expected ? 0 : 1;
}

struct guest_context {
    polyplug::client<parity::Kit>* kit;
    std::string result;
    std::string error;
};

int guest_batch(void* context, std::uint64_t count) {
    auto& c = *static_cast<guest_context*>(context);
    const std::string name = "world";
    try {
        for (std::uint64_t i = 0; i < count; ++i)
            c.result = c.kit->call(parity::Kit::greet, std::string_view(name));
    } catch (const std::exception& e) {
        c.error = e.what();
        return 1;
    }
    if (c.result != expected) {
        c.error = "greet gave '" + c.result + "'";
        return 1;
    }
    return 0;
}

bool engine_built(std::string_view guest) {
    if (guest == "lua") return POLYPLUG_BENCH_LUA != 0;
    if (guest == "python") return POLYPLUG_BENCH_PYTHON != 0;
    if (guest == "js") return POLYPLUG_BENCH_JS != 0;
    return true;
}

}  // namespace

int main(int argc, char** argv) try {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s <build dir> [--quick]\n", argv[0]);
        return 2;
    }
    const fs::path parity_dir = fs::path(argv[1]) / "tests" / "parity";
    const int quick = argc > 2 && std::strcmp(argv[2], "--quick") == 0;
    floor_context floor_ctx;
    const double floor_ns = matrix_best_ns(floor_batch, &floor_ctx, quick);
    if (floor_ns < 0) {
        std::fprintf(stderr, "matrix_cpp: the floor function gave a wrong result\n");
        return 1;
    }
    std::printf("matrix C++ floor %.1f\n", floor_ns);
    int failures = 0;
    for (const char* guest : {"c", "cpp", "rust", "lua", "python", "js"}) {
        std::fflush(stdout);
        if (!engine_built(guest)) {
            std::printf("matrix C++ %s skip the %s loader is not built\n", guest, guest);
            continue;
        }
        if (!fs::exists(parity_dir / guest / "manifest.toml")) {
            std::printf("matrix C++ %s skip the %s parity bundle is not built\n", guest, guest);
            continue;
        }
        try {
            runtime_type rt;  // one runtime per guest: all six provide test.parity.Kit@1
            rt.load_bundle(parity_dir / guest);
            polyplug::client<parity::Kit> kit(rt);
            guest_context c{&kit, {}, {}};
            const double ns = matrix_best_ns(guest_batch, &c, quick);
            if (ns < 0) {
                std::fprintf(stderr, "matrix_cpp: %s: %s\n", guest, c.error.c_str());
                ++failures;
                continue;
            }
            std::printf("matrix C++ %s %.1f\n", guest, ns);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "matrix_cpp: %s: %s\n", guest, e.what());
            ++failures;
        }
    }
    return failures == 0 ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "matrix_cpp: %s\n", e.what());
    return 1;
}
