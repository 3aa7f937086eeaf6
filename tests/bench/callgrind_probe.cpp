// SPDX-License-Identifier: MIT
/// @file bench/callgrind_probe.cpp
/// The program callgrind_check.py runs under valgrind to count instructions per call. Each
/// probe_* function (extern "C", never inlined) makes `n` calls of one path, in the same chained
/// loop as the timing benchmarks; callgrind collects inside probe_* functions only and dumps after
/// each one returns, so each dump holds exactly one probe's instructions. The script engines'
/// probes (probe_vm_*) are in callgrind_vm_probe.cpp.
///
///   callgrind_probe [--plugin bench_plugin.so] [--calls N]
#include "bench_bare_load.hpp"
#include "bench_bundle.hpp"
#include "bench_loaders.hpp"
#include "bench_runtime.hpp"
#include "callgrind_vm_probe.hpp"
#include "harness.hpp"

#include <polyplug/runtime.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#ifndef POLYPLUG_BENCH_PLUGIN
#define POLYPLUG_BENCH_PLUGIN "bench_plugin.so"
#endif

// noipa (GCC) also keeps interprocedural analysis from specialising a probe for its one caller.
#if defined(__clang__)
#define PROBE extern "C" [[gnu::noinline]]
#else
#define PROBE extern "C" [[gnu::noipa]]
#endif

namespace {

/// Everything the probes reach, resolved before any probe runs.
struct probe_target {
    const polyplug::runtime* rt = nullptr;
    const polyplug::runtime* filled = nullptr;  ///< 1,000 contracts registered
    const HostApi* host = nullptr;
    const GuestContractInterface* iface = nullptr;
    GuestContractInstance instance{};
    GuestContractFn raw = nullptr;
    std::uint64_t contract_id = 0;
    std::uint64_t filled_id = 0;
    // The lifecycle probes: one runtime that loads and unloads the bundle again and again
    // (grace period 0: the library is released inside unload), and the same work by hand.
    polyplug::runtime* reloading = nullptr;
    std::filesystem::path load_dir;
    std::filesystem::path load_library;
    std::string load_manifest;
    std::string load_dir_text;
    const bench::minimal_host* bare_host = nullptr;
};

}  // namespace

/// The loop alone: what every probe below pays besides its call.
PROBE std::uint32_t probe_empty_loop(const probe_target& t, std::uint64_t n) {
    std::uint32_t counter = t.instance.contract_id == 0 ? 1 : 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        counter += 1;
        bench::opaque(counter);
    }
    return counter;
}

/// The baseline: the plugin's function through a pointer from dlsym.
PROBE std::uint32_t probe_raw_pointer(const probe_target& t, std::uint64_t n) {
    const GuestContractFn fn = t.raw;
    std::uint32_t counter = 0;
    AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
    for (std::uint64_t i = 0; i < n; ++i) {
        std::uint32_t in = counter;
        fn(t.instance, &in, &counter, &err);
    }
    return counter + err.code;
}

/// The runtime-mediated call: the same function through the runtime's interface copy.
PROBE std::uint32_t probe_table_call(const probe_target& t, std::uint64_t n) {
    const GuestContractInterface* iface = t.iface;
    std::uint32_t counter = 0;
    AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
    for (std::uint64_t i = 0; i < n; ++i) {
        std::uint32_t in = counter;
        polyplug::function_cast<GuestContractFn>(iface->dispatch.native.functions[bench::inc_fn])(
            t.instance, &in, &counter, &err);
    }
    return counter + err.code;
}

PROBE std::uint32_t probe_guest_function(const probe_target& t, std::uint64_t n) {
    const GuestContractInterface* iface = t.iface;
    std::uint32_t counter = 0;
    AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
    for (std::uint64_t i = 0; i < n; ++i) {
        std::uint32_t in = counter;
        if (const GuestContractFn fn = polyplug::guest_function(*iface, bench::inc_fn))
            fn(t.instance, &in, &counter, &err);
    }
    return counter + err.code;
}

PROBE std::uint32_t probe_polyplug_call(const probe_target& t, std::uint64_t n) {
    const GuestContractInterface* iface = t.iface;
    std::uint32_t counter = 0;
    std::uint32_t codes = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        std::uint32_t in = counter;
        codes |= polyplug::call(*iface, t.instance, bench::inc_fn, &in, &counter).code;
    }
    return counter + codes;
}

PROBE std::uint64_t probe_find_resolve(const probe_target& t, std::uint64_t n) {
    const polyplug::runtime* rt = t.rt;
    std::uint64_t id = t.contract_id;
    std::uint64_t sum = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        bench::opaque(id);
        sum += reinterpret_cast<std::uintptr_t>(rt->resolve(rt->find(id)));
    }
    return sum;
}

PROBE std::uint64_t probe_find_resolve_1000(const probe_target& t, std::uint64_t n) {
    const polyplug::runtime* rt = t.filled;
    std::uint64_t id = t.filled_id;
    std::uint64_t sum = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        bench::opaque(id);
        sum += reinterpret_cast<std::uintptr_t>(rt->resolve(rt->find(id)));
    }
    return sum;
}

/// Through the HostApi thunks, as a C host calls them.
PROBE std::uint64_t probe_host_api_find_resolve(const probe_target& t, std::uint64_t n) {
    const HostApi* host = t.host;
    std::uint64_t id = t.contract_id;
    std::uint64_t sum = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        bench::opaque(id);
        const GuestContractHandle handle = host->find_guest_contract(host, id, 0);
        sum += reinterpret_cast<std::uintptr_t>(host->resolve_guest_contract(host, handle));
    }
    return sum;
}

/// load_bundle + unload_bundle of the same bundle on one runtime, the library held open
/// elsewhere (warm dlopen), as lifecycle_bench.cpp's "the same runtime again" row.
PROBE std::uint64_t probe_load_unload(const probe_target& t, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
        bench::load_bundle(*t.reloading, t.load_dir);
        bench::unload_bundle(*t.reloading, polyplug::bundle_id("probe-load"));
    }
    return n;
}

/// A runtime made and destroyed, and the same with one load + unload in between (fresh runtime
/// per load): the difference is what a load costs in a runtime that never loaded anything.
PROBE std::uint64_t probe_runtime_create_destroy(const probe_target& t, std::uint64_t n) {
    bench::runtime_setup no_grace;
    no_grace.grace_period_ms = 0;
    for (std::uint64_t i = 0; i < n; ++i) bench::consume(bench::make_runtime(no_grace).get());
    return t.load_dir.empty() ? 0 : n;
}

PROBE std::uint64_t probe_fresh_load_unload(const probe_target& t, std::uint64_t n) {
    bench::runtime_setup no_grace;
    no_grace.grace_period_ms = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        const bench::runtime_ptr fresh = bench::make_runtime(no_grace);
        bench::load_bundle(*fresh, t.load_dir);
        bench::unload_bundle(*fresh, polyplug::bundle_id("probe-load"));
    }
    return n;
}

/// Its baseline: read the manifest, stat the library, dlopen + dlsym + ABI check + init, dlclose.
PROBE std::uint64_t probe_load_by_hand(const probe_target& t, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
        bench::read_manifest_by_hand(t.load_manifest, t.load_library);
        ::dlclose(bench::bare_load(t.load_library, *t.bare_host, t.load_dir_text));
    }
    return n;
}

int main(int argc, char** argv) {
    std::string plugin = POLYPLUG_BENCH_PLUGIN;
    std::uint64_t calls = 1000;
    std::uint64_t loads = 100;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--plugin" && i + 1 < argc) {
            plugin = argv[++i];
        } else if (arg == "--calls" && i + 1 < argc) {
            calls = std::strtoull(argv[++i], nullptr, 10);
        } else if (arg == "--loads" && i + 1 < argc) {
            loads = std::strtoull(argv[++i], nullptr, 10);
        } else {
            std::fprintf(stderr, "usage: %s [--plugin PATH] [--calls N] [--loads N]\n", argv[0]);
            return 2;
        }
    }
    try {
        const bench::temp_dir work;
        const bench::fs::path dir = bench::make_plugin_bundle(work.path(), plugin, "probe");
        const bench::runtime_ptr rt = bench::make_runtime();
        bench::load_bundle(*rt, dir);
        const bench::runtime_ptr filled = bench::make_runtime();
        bench::install_bulk_loader(bench::host_api(*filled), 1000);
        bench::load_bundle(*filled, bench::make_bulk_bundle(work.path(), "probe-bulk", 1000));
        const bench::library lib(bench::plugin_library(dir, "probe"));

        probe_target t;
        t.rt = rt.get();
        t.filled = filled.get();
        t.host = bench::host_api(*rt);
        t.contract_id = bench::inc_contract_id;
        t.filled_id = bench::bulk_contract_id(500);
        t.iface = bench::resolve(*rt, t.contract_id);
        (void)bench::resolve(*filled, t.filled_id);  // throws if the registry is not as expected
        t.raw = lib.symbol<GuestContractFn>("bench_inc");
        t.host->create_guest_instance(t.host, t.iface, nullptr, &t.instance);

        bench::runtime_setup no_grace;
        no_grace.grace_period_ms = 0;
        const bench::runtime_ptr reloading = bench::make_runtime(no_grace);
        const bench::minimal_host bare_host;
        t.reloading = reloading.get();
        t.load_dir = bench::make_plugin_bundle(work.path(), plugin, "probe-load");
        t.load_library = bench::plugin_library(t.load_dir, "probe-load");
        t.load_manifest = (t.load_dir / "manifest.toml").string();
        t.load_dir_text = t.load_dir.string();
        t.bare_host = &bare_host;
        const bench::library pin(t.load_library);  // every dlopen below is warm

        // Each probe runs three times: 1 call (one-time costs such as lazy binding land there;
        // ignored), then N and 2N calls. Per call = (Ir(2N) - Ir(N)) / N, which cancels the
        // probe's own entry and exit exactly.
        using probe = std::uint64_t (*)(const probe_target&, std::uint64_t);
        const probe probes[] = {
            [](const probe_target& x, std::uint64_t k) -> std::uint64_t {
                return probe_empty_loop(x, k);
            },
            [](const probe_target& x, std::uint64_t k) -> std::uint64_t {
                return probe_raw_pointer(x, k);
            },
            [](const probe_target& x, std::uint64_t k) -> std::uint64_t {
                return probe_table_call(x, k);
            },
            [](const probe_target& x, std::uint64_t k) -> std::uint64_t {
                return probe_guest_function(x, k);
            },
            [](const probe_target& x, std::uint64_t k) -> std::uint64_t {
                return probe_polyplug_call(x, k);
            },
            probe_find_resolve,
            probe_find_resolve_1000,
            probe_host_api_find_resolve,
        };
        using lifecycle_probe = std::uint64_t (*)(const probe_target&, std::uint64_t);
        const lifecycle_probe lifecycle_probes[] = {probe_load_unload, probe_load_by_hand,
                                                    probe_runtime_create_destroy,
                                                    probe_fresh_load_unload};
        std::uint64_t sum = 0;
        for (const probe run : probes) {
            sum += run(t, 1);
            sum += run(t, calls);
            sum += run(t, 2 * calls);
        }
        // The first run of each pays one-time costs (the manifest's first parse, lazy binding).
        for (const lifecycle_probe run : lifecycle_probes) {
            sum += run(t, 1);
            sum += run(t, loads);
            sum += run(t, 2 * loads);
        }
        bench::consume(sum);
        t.host->destroy_guest_instance(t.host, t.iface, t.instance);
        // The script engines' add, through the runtime and raw (those built; see the file).
        bench::run_vm_probes(work.path(), calls);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "callgrind_probe: %s\n", e.what());
        return 1;
    }
    return 0;
}
