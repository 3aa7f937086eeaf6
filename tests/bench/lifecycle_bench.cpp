// SPDX-License-Identifier: MIT
/// @file bench/lifecycle_bench.cpp
/// One-time costs: warm load of a bundle, reload swap, runtime create and destroy, a full
/// create-load-call-destroy cycle, and registering many contracts in one init. Each is compared
/// with what a host would write by hand with dlopen, dlsym and the plugin's init.
#include "bench_bare_load.hpp"
#include "bench_bundle.hpp"
#include "bench_loaders.hpp"
#include "bench_runtime.hpp"
#include "suite.hpp"

#include <polyplug/dispatch.hpp>
#include <polyplug/ids.hpp>

#include <stdexcept>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace bench {
namespace {

const std::string group = "lifecycle";

/// One call of bench.inc@1 fn 0 through `iface`.
std::uint32_t call_inc(const GuestContractInterface& iface) {
    std::uint32_t in = 41, out = 0;
    AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
    polyplug::function_cast<GuestContractFn>(iface.dispatch.native.functions[inc_fn])(
        {nullptr, inc_contract_id}, &in, &out, &err);
    return out;
}

/// Sums the timed part of `n` operations: `setup()` (untimed) returns a state that
/// `operation(state)` (timed) uses; the state is destroyed untimed.
template <class Setup, class Operation>
batch with_setup(Setup setup, Operation operation) {
    return [setup, operation](std::uint64_t n) {
        double total = 0;
        for (std::uint64_t i = 0; i < n; ++i) {
            auto state = setup();
            const clock::time_point start = clock::now();
            operation(state);
            total += nanoseconds(start, clock::now());
        }
        return total;
    };
}

}  // namespace

void run_lifecycle(suite& s) {
    const fs::path dir = make_plugin_bundle(s.work, s.plugin, "bench");
    const fs::path file = plugin_library(dir);
    const std::string dir_text = dir.string();
    // Holding the library open makes every load below warm (the original's loads are warm too):
    // what is measured is the runtime's work, not the kernel mapping a file.
    const library pin(file);
    minimal_host host;

    // The same work a runtime's load does, written by hand: read manifest.toml (open, read,
    // close), stat the library, then dlopen + dlsym + ABI check + init, and dlclose (the runtime
    // row unloads too).
    const std::string manifest_file = (dir / "manifest.toml").string();
    const auto read_manifest_by_hand = [&] { bench::read_manifest_by_hand(manifest_file, file); };
    const batch by_hand = with_setup([] { return 0; },
                                     [&](int) {
                                         read_manifest_by_hand();
                                         host.clear();
                                         ::dlclose(bare_load(file, host, dir_text));
                                     });
    runtime_setup no_grace;
    no_grace.grace_period_ms = 0;  // the library is released inside unload, as dlclose does
    const batch runtime_load = with_setup([no_grace] { return make_runtime(no_grace); },
                                          [&](runtime_ptr& rt) {
                                              load_bundle(*rt, dir);
                                              unload_bundle(*rt, polyplug::bundle_id("bench"));
                                          });
    add_compared(s,
                 titled(group, "warm load + unload of a bundle (load_bundle, unload_bundle)",
                        "by hand: read manifest, stat library, dlopen + dlsym + ABI check + "
                        "init, dlclose",
                        "fresh runtime per load (untimed); library kept mapped by a pin; the "
                        "manifest parse and ELF check are memoised per process, so only the "
                        "first load in the process pays them; the original's warm load: 13 us",
                        budget{"<= 2x by hand and < 13 us", 2.0, 13000}),
                 by_hand, runtime_load, s.slow);
    // The same, on one runtime that loaded this bundle before: how a host that reloads or
    // re-loads its bundles sees it (the manifest's text is read and compared, not parsed again).
    const runtime_ptr reused = make_runtime(no_grace);
    const batch runtime_reuse = with_setup([] { return 0; },
                                           [&](int) {
                                               load_bundle(*reused, dir);
                                               unload_bundle(*reused, polyplug::bundle_id("bench"));
                                           });
    add_compared(s,
                 titled(group, "warm load + unload, the same runtime again",
                        "by hand: read manifest, stat library, dlopen + dlsym + ABI check + "
                        "init, dlclose",
                        "one runtime for every load: its manifest cache has the text",
                        budget{"<= 2x by hand and < 13 us", 2.0, 13000}),
                 by_hand, runtime_reuse, s.slow);
    const batch manifest_by_hand =
        with_setup([] { return 0; }, [&](int) { read_manifest_by_hand(); });
    const batch manifest_only =
        with_setup([] { return 0; }, [&](int) { read_manifest_and_artifact(dir); });
    add_compared(s,
                 titled(group, "  of which: manifest read + artifact checks",
                        "by hand: open/read/close manifest.toml, stat the library",
                        "manifest parsed once per distinct text in the process "
                        "(detail/manifest_cache.hpp), then read and compared; resolve_artifact: "
                        "one lstat",
                        budget{"< 5 us", 0, 5000}),
                 manifest_by_hand, manifest_only, s.slow);
    const budget within_1_5x{"<= 1.5x its baseline", 1.5, 0};

    // Reload: the runtime copies the library to a private file each time (new code every time);
    // the hand-written equivalent has to do the same, since glibc hands back the old mapping for
    // a path it has open.
    runtime_setup reload_setup;
    reload_setup.hot_reload = true;
    // No grace period: the old version is closed inside the call, as the baseline closes it.
    reload_setup.grace_period_ms = 0;
    const runtime_ptr reloading = make_runtime(reload_setup);
    load_bundle(*reloading, dir);
    struct hand_swap_state {
        void* current = nullptr;
        fs::path current_file;
        std::uint64_t next = 0;
    } swap;
    const batch hand_swap = with_setup(
        [] { return 0; },
        [&](int) {
            const fs::path copy = s.work / ("swap-" + std::to_string(swap.next++) + ".so");
            fs::copy_file(file, copy, fs::copy_options::overwrite_existing);
            host.clear();
            void* fresh = bare_load(copy, host, dir_text);
            if (swap.current != nullptr) {
                ::dlclose(swap.current);
                fs::remove(swap.current_file);
            }
            swap.current = fresh;
            swap.current_file = copy;
        });
    const batch runtime_reload =
        with_setup([] { return 0; }, [&](int) { reload_bundle(*reloading, dir); });
    add_compared(
        s,
        titled(group, "reload swap (reload_bundle)",
               "by hand: copy, dlopen, dlsym, init, dlclose old",
               "private copy each time; grace period 0 so both close the old inline", within_1_5x),
        hand_swap, runtime_reload, s.slow);
    if (swap.current != nullptr) {
        ::dlclose(swap.current);
        fs::remove(swap.current_file);
    }

    const batch cpp_create =
        with_setup([] { return 0; }, [](int) { consume(host_api(*make_runtime())); });
    const batch c_create = with_setup(
        [] { return 0; }, [](int) { polyplug_runtime_destroy(polyplug_runtime_create(nullptr)); });
    add_compared(s,
                 titled(group, "runtime create + destroy, C (libpolyplug.so)",
                        "runtime create + destroy, C++ (header-only)"),
                 cpp_create, c_create, s.slow);

    const batch bare_cycle = with_setup([] { return 0; },
                                        [&](int) {
                                            host.clear();
                                            void* handle = bare_load(file, host, dir_text);
                                            consume(call_inc(host.registered().front()));
                                            ::dlclose(handle);
                                        });
    const batch runtime_cycle =
        with_setup([] { return 0; },
                   [&](int) {
                       const runtime_ptr rt = make_runtime();
                       load_bundle(*rt, dir);
                       const GuestContractInterface* iface = resolve(*rt, inc_contract_id);
                       const HostApi* api = host_api(*rt);
                       GuestContractInstance instance{};
                       api->create_guest_instance(api, iface, nullptr, &instance);
                       consume(call_inc(*iface));
                       api->destroy_guest_instance(api, iface, instance);
                   });
    add_compared(s,
                 titled(group, "full cycle: create, load, find, call, destroy",
                        "bare cycle: dlopen, dlsym, init, call, dlclose",
                        "the original's soak loop: ~55 us per cycle on its machine"),
                 bare_cycle, runtime_cycle, s.slow);

    // Registering N contracts in one init: a registry filled in one go. Linear cost would make
    // the ratio 10x.
    auto bulk_load = [&s](std::uint32_t count) {
        const fs::path bulk = make_bulk_bundle(s.work, "many" + std::to_string(count), count);
        return with_setup(
            [count] {
                runtime_ptr rt = make_runtime();
                install_bulk_loader(host_api(*rt), count);
                return rt;
            },
            [bulk](runtime_ptr& rt) { load_bundle(*rt, bulk); });
    };
    settings few = s.slow;
    few.repetitions = std::min<std::size_t>(few.repetitions, 5);
    few.batch_ms = 1;                // one load per batch: these take milliseconds
    few.retries_when_preempted = 2;  // a 100 ms batch is rarely left alone on a busy machine
    add_compared(
        s,
        titled(group, "load registering 10,000 contracts", "load registering 1,000 contracts",
               "manifests declaring every contract; linear cost would be 10x",
               budget{"<= 12x (linear)", 12.0, 0}),
        bulk_load(1000), bulk_load(10000), few);

    // 1,000 bundles in one directory, each its own copy of the plugin (1,000 real mappings), by
    // load_dirs (discovery, graph, 1,000 loads) against 1,000 bare dlopen + init.
    constexpr std::size_t many = 1000;
    const fs::path many_root = s.work / "many-bundles";
    std::vector<fs::path> many_files;
    for (std::size_t i = 0; i < many; ++i) {
        const std::string name = "b" + std::to_string(i);
        many_files.push_back(plugin_library(make_plugin_bundle(many_root, s.plugin, name), name));
    }
    const batch bare_many = [&](std::uint64_t n) {
        double total = 0;
        for (std::uint64_t r = 0; r < n; ++r) {
            std::vector<void*> handles;
            handles.reserve(many);
            const clock::time_point start = clock::now();
            for (const fs::path& library : many_files) {
                host.clear();
                handles.push_back(bare_load(library, host, dir_text));
            }
            total += nanoseconds(start, clock::now());
            for (void* handle : handles) ::dlclose(handle);
        }
        return total;
    };
    const batch runtime_many = with_setup([] { return make_runtime(); },
                                          [&](runtime_ptr& rt) {
                                              if (load_dirs(*rt, many_root) != many)
                                                  throw std::runtime_error("load_dirs: not all");
                                          });
    settings once = s.slow;
    once.repetitions = std::min<std::size_t>(once.repetitions, 3);
    once.batch_ms = 1;
    once.retries_when_preempted = 1;
    add_compared(
        s,
        titled(group, "1,000 bundles by load_dirs", "1,000 bare dlopen + init",
               "each bundle its own copy of the plugin; teardown untimed", budget{"<= 2x", 2.0, 0}),
        bare_many, runtime_many, once);
}

}  // namespace bench
