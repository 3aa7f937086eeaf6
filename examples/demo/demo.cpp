// SPDX-License-Identifier: MIT
// The tour run by scripts/demo.sh: load the example bundles, show what they registered, call them.
#include "example_calc.h"
#include "example_counter.h"

#include <polyplug/call_arena.h>
#include <polyplug/dispatch.hpp>
#include <polyplug/runtime.hpp>
// Script loaders, each when its VM library was found at configure time.
#if POLYPLUG_DEMO_LUA
#include <polyplug/loaders/lua.hpp>
#endif
#if POLYPLUG_DEMO_PYTHON
#include <polyplug/loaders/python.hpp>
#endif
#if POLYPLUG_DEMO_JS
#include <polyplug/loaders/js.hpp>
#endif
#if POLYPLUG_DEMO_DOTNET
#include <polyplug/loaders/dotnet.hpp>
#endif

#include <algorithm>
#include <climits>
#include <chrono>
#include <optional>
#include <mutex>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

// The native loader, and a loader for every script language this build has.
using demo_runtime = polyplug::basic_runtime<polyplug::native_loader
#if POLYPLUG_DEMO_LUA
                                             ,
                                             polyplug::lua_loader
#endif
#if POLYPLUG_DEMO_PYTHON
                                             ,
                                             polyplug::python_loader
#endif
#if POLYPLUG_DEMO_JS
                                             ,
                                             polyplug::js_loader
#endif
#if POLYPLUG_DEMO_DOTNET
                                             ,
                                             polyplug::dotnet_loader
#endif
                                             >;

namespace {

// Script bundles write variable-size results (describe's text) into the caller's arena.
const HostApi* demo_host = nullptr;
struct call_arena {
    std::uint8_t storage[512];
    CallArena arena{};
    call_arena() { polyplug_arena_init(&arena, storage, sizeof storage, demo_host); }
    ~call_arena() { polyplug_arena_free(&arena); }
};

constexpr std::uint64_t calc_id =
    polyplug::guest_contract_id(EXAMPLE_CALC_NAME, EXAMPLE_CALC_VERSION_MAJOR);
constexpr std::uint64_t counter_id =
    polyplug::guest_contract_id(EXAMPLE_COUNTER_NAME, EXAMPLE_COUNTER_VERSION_MAJOR);

std::string_view view(StringView text) {
    return text.ptr == nullptr
               ? std::string_view{}
               : std::string_view(reinterpret_cast<const char*>(text.ptr), text.len);
}

// One call through the provider's table; prints it and reports whether it did what was expected.
bool call_add(const GuestContractInterface* iface, GuestContractInstance instance, std::int32_t a,
              std::int32_t b, std::int32_t expected) {
    const ExampleCalcAddArgs args{a, b};
    std::int32_t sum = 0;
    // polyplug::call: through the native table, or the VM dispatch of a script bundle.
    const AbiError err = polyplug::call(*iface, instance, EXAMPLE_CALC_FN_ADD, &args, &sum);
    const bool ok = err.code == AbiErrorCode_Ok && sum == expected;
    std::printf("    add(%d, %d) = %d%s\n", a, b, sum, ok ? "" : "   <-- FAILED");
    return ok;
}

bool call_describe(const GuestContractInterface* iface, GuestContractInstance instance) {
    StringView text{};
    call_arena arena;
    const AbiError err =
        polyplug::call(*iface, instance, EXAMPLE_CALC_FN_DESCRIBE, nullptr, &text, &arena.arena);
    const bool ok = err.code == AbiErrorCode_Ok && text.len > 0;
    std::printf("    describe() = \"%.*s\"%s\n", static_cast<int>(view(text).size()),
                view(text).data(), ok ? "" : "   <-- FAILED");
    return ok;
}

}  // namespace

// describe() through an interface pointer resolved once (any contract whose `fn_id` returns a
// StringView: example.calc's and example.counter's describe).
std::string describe(const GuestContractInterface* iface, std::uint64_t contract_id,
                     std::uint32_t fn_id) {
    StringView text{};
    call_arena arena;
    const AbiError err =
        polyplug::call(*iface, {nullptr, contract_id}, fn_id, nullptr, &text, &arena.arena);
    if (err.code != AbiErrorCode_Ok) return "<error " + std::to_string(err.code) + ">";
    return std::string(reinterpret_cast<const char*>(text.ptr), text.len);
}

std::uint64_t increment(const GuestContractInterface* iface) {
    std::uint64_t count = 0;
    const AbiError err = polyplug::call(*iface, {nullptr, counter_id}, EXAMPLE_COUNTER_FN_INCREMENT,
                                        nullptr, &count);
    return err.code == AbiErrorCode_Ok ? count : 0;
}

// What the demo shows of a bundle around its reload, through the interface pointer it cached
// before: describe() for a calc; for a counter, describe() and one increment(), whose result
// must carry on from the old version's count (the state hand-over). Returns the count shown
// (0 for a calc).
std::uint64_t show(const char* when, const GuestContractInterface* iface, std::uint64_t contract) {
    if (contract == counter_id) {
        const std::string text = describe(iface, counter_id, EXAMPLE_COUNTER_FN_DESCRIBE);
        const std::uint64_t count = increment(iface);
        std::printf("  %s describe() = \"%s\", increment() = %llu\n", when, text.c_str(),
                    static_cast<unsigned long long>(count));
        return count;
    }
    std::printf("  %s describe() = \"%s\"\n", when,
                describe(iface, calc_id, EXAMPLE_CALC_FN_DESCRIBE).c_str());
    return 0;
}

// How reloads ended (Reloaded or Failed), as on_reload reports them from the runtime's watcher
// thread; the demo waits here for the watcher to act on a file it swapped.
struct reload_outcomes {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<std::pair<std::string, std::uint32_t>> seen;  // bundle name, phase

    void record(const ReloadPhase& phase) {
        if (phase.phase_type != ReloadPhaseType_Reloaded &&
            phase.phase_type != ReloadPhaseType_Failed)
            return;
        std::lock_guard lock(mutex);
        seen.emplace_back(std::string(reinterpret_cast<const char*>(phase.bundle_name.ptr),
                                      phase.bundle_name.len),
                          phase.phase_type);
        changed.notify_all();
    }

    [[nodiscard]] std::size_t count() {
        std::lock_guard lock(mutex);
        return seen.size();
    }

    // The outcome of the first reload of `name` after the first `skip` outcomes; nullopt if the
    // watcher did not act within the time limit.
    std::optional<std::uint32_t> await(const std::string& name, std::size_t skip) {
        std::unique_lock lock(mutex);
        std::optional<std::uint32_t> outcome;
        changed.wait_for(lock, std::chrono::seconds(10), [&] {
            for (std::size_t i = skip; i < seen.size(); ++i)
                if (seen[i].first == name) outcome = seen[i].second;
            return outcome.has_value();
        });
        return outcome;
    }
};
reload_outcomes outcomes;

// Puts `file` in place of the bundle's library (write beside, then rename: a mapped library must
// never be rewritten in place) and waits for the watcher to reload it.
std::optional<std::uint32_t> swap_and_await(const std::string& name, const fs::path& file,
                                            const fs::path& installed) {
    const std::size_t before = outcomes.count();
    fs::copy_file(file, installed.string() + ".new", fs::copy_options::overwrite_existing);
    fs::rename(installed.string() + ".new", installed);
    return outcomes.await(name, before);
}

// Hot reload, live: swap `library` in as the bundle's new code; the runtime's watcher sees the
// new file and reloads the bundle, and the demo calls through the interface pointer it resolved
// before. Then it puts the original back, which the watcher reloads again, so the build tree is
// as it was. Returns the number of failures.
int hot_reload(demo_runtime& rt, const std::string& name, const fs::path& library) {
    const auto bundle = rt.bundle(polyplug::bundle_id(name));
    if (!bundle || bundle->contracts.empty()) {
        std::printf("\nhot reload: bundle '%s' is not loaded\n", name.c_str());
        return 1;
    }
    const std::uint64_t contract = bundle->contracts.front().contract_id;
    const GuestContractInterface* cached = rt.resolve(bundle->contracts.front().handle);
    polyplug::manifest m;  // the manifest names the library file the bundle loads
    if (const polyplug::status st = polyplug::read_manifest(bundle->dir, m); !st) {
        std::printf("\nhot reload: %s\n", st.message().c_str());
        return 1;
    }
    const fs::path installed = bundle->dir / m.file;
    const fs::path original = fs::temp_directory_path() / ("polyplug-demo-" + m.file + ".v1");
    std::printf(
        "\nhot reload of bundle '%s' while the host runs (the watcher picks up the new "
        "file):\n",
        name.c_str());
    if (contract == counter_id)
        for (int i = 0; i < 2; ++i) increment(cached);  // some state worth keeping
    const std::uint64_t before = show("before:  ", cached, contract);
    int failures = 0;
    try {
        fs::copy_file(installed, original, fs::copy_options::overwrite_existing);
        const std::optional<std::uint32_t> outcome = swap_and_await(name, library, installed);
        if (outcome != ReloadPhaseType_Reloaded) {
            std::printf("  the watcher did not reload '%s' (%s)\n", name.c_str(),
                        outcome ? rt.last_error().c_str() : "timed out");
            ++failures;
        }
        const std::uint64_t after = show("after:   ", cached, contract);
        const std::string text =
            describe(cached, contract,
                     contract == counter_id ? std::uint32_t{EXAMPLE_COUNTER_FN_DESCRIBE}
                                            : std::uint32_t{EXAMPLE_CALC_FN_DESCRIBE});
        std::printf("           (same interface pointer, new code%s)\n",
                    contract == counter_id ? ", count handed over" : "");
        if (text.find("version 2") == std::string::npos) ++failures;
        if (contract == counter_id && after != before + 1) ++failures;
    } catch (const std::exception& e) {
        std::printf("  reload failed: %s\n", e.what());
        ++failures;
    }
    // Back to version 1 (the watcher reloads it again). The counter's version 1 cannot read
    // version 2's state: that reload is meant to be refused, and the demo says so first.
    if (contract == counter_id)
        std::printf(
            "  putting version 1 back; its state schema is older, so the runtime should refuse "
            "the hand-over (intended: the [warn] and Failed lines below are the expected "
            "outcome):\n");
    std::optional<std::uint32_t> outcome;
    try {
        outcome = swap_and_await(name, original, installed);
        fs::remove(original);
    } catch (const std::exception& e) {
        std::printf("  could not put version 1 back: %s\n", e.what());
        return failures + 1;
    }
    if (contract == counter_id && outcome == ReloadPhaseType_Failed) {
        // Expected: version 1 cannot read version 2's schema, so it refuses the hand-over; the
        // reload fails and version 2 serves on with its count rather than losing it.
        std::printf(
            "  refused as intended (version 1 cannot read schema 2): version 2 serves on\n");
    } else if (outcome != ReloadPhaseType_Reloaded) {
        ++failures;
    }
    show(contract == counter_id ? "now:     " : "restored:", cached, contract);
    return failures;
}

int main(int argc, char** argv) try {
    std::printf("polyplug demo: one contract (%s@1), plugins in several languages\n",
                EXAMPLE_CALC_NAME);
    std::printf("=====================================================================\n\n");

    // Arguments: plugin directories, and any number of `--reload NAME=LIBRARY`: after the
    // calls, swap LIBRARY in as bundle NAME's new code and hot-reload it while the demo runs.
    std::vector<fs::path> plugin_dirs;
    std::vector<std::pair<std::string, fs::path>> reloads;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--reload" && i + 1 < argc &&
            std::string(argv[i + 1]).find('=') != std::string::npos) {
            const std::string spec = argv[++i];
            reloads.emplace_back(spec.substr(0, spec.find('=')), spec.substr(spec.find('=') + 1));
        } else {
            plugin_dirs.emplace_back(arg);
        }
    }
    polyplug::runtime_options options;
    options.hot_reload_enabled = !reloads.empty();
    // Printed before it is recorded: the main thread waits for the record, so the watcher's
    // lines always come before the main thread's "after:" line.
    options.on_reload = [](const ReloadPhase& phase) {
        static const char* const names[] = {"Preparing", "Reloaded", "Failed", "Unloading"};
        std::printf(
            "    [on_reload] %s %.*s%s%.*s\n", phase.phase_type < 4 ? names[phase.phase_type] : "?",
            static_cast<int>(phase.bundle_name.len),
            reinterpret_cast<const char*>(phase.bundle_name.ptr), phase.reason.len > 0 ? ": " : "",
            static_cast<int>(phase.reason.len), reinterpret_cast<const char*>(phase.reason.ptr));
        std::fflush(stdout);
        outcomes.record(phase);
    };
    // The runtime's warnings in the demo's own output, in order with it (by default they go to
    // stderr, which a terminal or a pipe interleaves differently).
    options.log = [](polyplug::log_level level, std::string_view scope, std::string_view message) {
        std::printf("    [%s %.*s] %.*s\n", level == polyplug::log_level::error ? "error" : "warn",
                    static_cast<int>(scope.size()), scope.data(), static_cast<int>(message.size()),
                    message.data());
        std::fflush(stdout);
    };
    demo_runtime rt(options);
    demo_host = rt.host_api();
    int failures = 0;
    // Discovery: each argument is a plugin directory whose subdirectories hold bundles; the
    // runtime checks their dependencies and loads them providers-first.
    std::error_code ec;
    const polyplug::load_report report = rt.load_dirs(plugin_dirs, ec);
    if (ec) {
        std::printf("could not load the plugin directories: %s\n", rt.last_error().c_str());
        ++failures;
    }
    for (const polyplug::discovery_diagnostic& skipped : report.skipped) {
        std::printf("skipped %s: %s\n", skipped.path.c_str(), skipped.problem.message().c_str());
        ++failures;
    }

    const auto bundles = rt.bundles();
    std::map<std::uint64_t, std::string> plugin_names;  // packed handle -> registered plugin name
    for (const polyplug::bundle_info& bundle : bundles) {
        std::printf("bundle %s %s (loader \"%s\", id %s)\n  from %s\n", bundle.name.c_str(),
                    bundle.version.to_string().c_str(), bundle.loader.c_str(),
                    polyplug::format_id(bundle.id).c_str(), bundle.dir.c_str());
        for (const polyplug::contract_info& contract : bundle.contracts) {
            plugin_names[polyplug_handle_pack(contract.handle)] = contract.plugin_name;
            const std::string dispatch =
                contract.dispatch_type == DispatchType_VirtualMachine
                    ? std::string("VM-dispatched")
                    : std::to_string(contract.function_count) + " functions";
            std::printf("  provides %s@%u as plugin \"%s\" (version %s, %s)\n",
                        contract.contract_name.c_str(), contract.version.major,
                        contract.plugin_name.c_str(), contract.version.to_string().c_str(),
                        dispatch.c_str());
        }
    }

    std::printf("\ncalling every provider of %s@1:\n", EXAMPLE_CALC_NAME);
    const HostApi* host = rt.host_api();
    int succeeded = 0;
    for (const GuestContractHandle handle : rt.find_all(calc_id, EXAMPLE_CALC_VERSION_MAJOR)) {
        const GuestContractInterface* iface = rt.resolve(handle);
        GuestContractInstance instance{};
        host->create_guest_instance(host, iface, nullptr, &instance);
        std::printf("  %s:\n", plugin_names[polyplug_handle_pack(handle)].c_str());
        const bool results[] = {
            call_add(iface, instance, 2, 40, 42),
            call_add(iface, instance, INT32_MAX, 1, INT32_MIN),  // the contract says: wrapping
            call_describe(iface, instance),
        };
        host->destroy_guest_instance(host, iface, instance);
        for (const bool ok : results) (ok ? succeeded : failures) += 1;
    }

    if (!reloads.empty()) {
        // Watch the plugin directories: replacing a bundle's library is all it takes to reload
        // it (after 100 ms without further change).
        rt.watch(plugin_dirs, {.debounce = std::chrono::milliseconds(100)});
        for (const auto& [name, library] : reloads) failures += hot_reload(rt, name, library);
        rt.unwatch();
    }

    for (const polyplug::bundle_info& bundle : rt.bundles()) rt.unload_bundle(bundle.id);
    std::printf("\n%zu bundles loaded, %d calls succeeded\n", bundles.size(), succeeded);
    if (failures != 0) std::printf("%d failures (see above)\n", failures);
    return failures == 0 && !bundles.empty() ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "demo: %s\n", e.what());
    return 1;
}
