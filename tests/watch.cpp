// SPDX-License-Identifier: MIT
/// @file watch.cpp
/// Watching plugin directories: a replaced library is reloaded, a new bundle directory is loaded,
/// a file still being written is ignored until it is closed, a broken file keeps the old version,
/// bursts are debounced into one reload, and the C contract drives the same engine.
#include "support.hpp"

#include <polyplug/dispatch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <thread>

using namespace test_support;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const std::uint64_t version_id = polyplug::guest_contract_id("test.version", 1);
const std::uint64_t add_id = polyplug::guest_contract_id("test.add", 1);

std::string bytes_of(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Polls `condition` until it holds or `limit` passes (the watcher acts asynchronously).
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) return true;
        std::this_thread::sleep_for(10ms);
    }
    return condition();
}

struct watch_fixture {
    temp_dir dir;
    fs::path plugins = dir.path() / "plugins";
    log_capture logs;
    phase_log phases;
    std::unique_ptr<polyplug::runtime> rt;
    fs::path bundle;
    const GuestContractInterface* cached = nullptr;

    watch_fixture() {
        fs::create_directories(plugins);
        polyplug::runtime_options options;
        options.hot_reload_enabled = true;
        options.log = logs.callback();
        options.log_max_level = polyplug::log_level::debug;
        options.on_reload = phases.callback();
        options.unload_grace_period = 30s;  // cached pointers may race the watcher's reloads
        rt = std::make_unique<polyplug::runtime>(options);
        bundle = make_bundle(plugins, "versioned", "versioned_100", versioned_provides);
        rt->load_bundle(bundle);
        cached = rt->resolve(rt->find(version_id));
        REQUIRE(cached != nullptr);
    }

    std::uint32_t value() {
        std::uint32_t out = 0;
        const AbiError err = polyplug::call(*cached, {nullptr, version_id}, 0, nullptr, &out);
        return err.code == AbiErrorCode_Ok ? out : 0;
    }

    std::size_t count_phases(const std::string& entry) {
        std::lock_guard lock(phases.mutex);
        return static_cast<std::size_t>(
            std::count(phases.entries.begin(), phases.entries.end(), entry));
    }

    // Write beside, then rename over: the way to replace a library that is mapped.
    void replace_library(const std::string& fixture_name) {
        const fs::path staging = bundle / "libversioned.so.new";
        fs::copy_file(fixture(fixture_name), staging, fs::copy_options::overwrite_existing);
        fs::rename(staging, bundle / "libversioned.so");
    }

    // Manual mode: polls until `condition` holds or `limit` passes.
    template <class Condition>
    bool poll_until(Condition condition, std::chrono::milliseconds limit = 5s) {
        return eventually(
            [&] {
                rt->poll_watch();
                return condition();
            },
            limit);
    }
};

}  // namespace

TEST_CASE("watch - a replaced library is reloaded by the watcher thread", "[watch]") {
    watch_fixture f;
    f.rt->watch(f.plugins, {.debounce = 100ms});
    REQUIRE(f.rt->core().watcher().has_thread());
    REQUIRE(f.rt->core().watcher().bundle_dirs() == 1);

    f.replace_library("versioned_200");
    REQUIRE(eventually([&] { return f.value() == 200; }));
    REQUIRE(eventually([&] { return f.count_phases("1:versioned") == 1; }));  // Reloaded
    REQUIRE(f.logs.contains("watch"));

    f.replace_library("versioned_100");  // and back
    REQUIRE(eventually([&] { return f.value() == 100; }));
    f.rt->unwatch();
    REQUIRE_FALSE(f.rt->core().watcher().watching());
}

TEST_CASE("watch - a new bundle directory is loaded", "[watch]") {
    watch_fixture f;
    f.rt->watch(f.plugins, {.debounce = 100ms});
    // Built elsewhere, then moved in whole, as an installer would.
    const fs::path staging = f.dir.path() / "staging";
    fs::create_directories(staging);
    make_bundle(staging, "adder", "adder", adder_provides);
    fs::rename(staging / "adder", f.plugins / "adder");
    REQUIRE(eventually([&] { return f.rt->resolve(f.rt->find(add_id)) != nullptr; }));
    REQUIRE(f.rt->bundle(polyplug::bundle_id("adder")).has_value());

    // Created in place, file by file, the manifest last: loaded once complete.
    const fs::path second = f.plugins / "second";
    fs::create_directories(second);
    fs::copy_file(fixture("adder2"), second / "libsecond.so");
    make_bundle(f.plugins, "second", "", adder_provides);
    REQUIRE(eventually([&] { return f.rt->bundle(polyplug::bundle_id("second")).has_value(); }));
    REQUIRE(f.rt->find_all(add_id).size() == 2);
}

TEST_CASE("watch - a file still being written is ignored; a broken one keeps the old version",
          "[watch]") {
    watch_fixture f;
    f.rt->watch(f.plugins, {.debounce = 50ms, .background_thread = false});
    REQUIRE_FALSE(f.rt->core().watcher().has_thread());
    const std::string v2 = bytes_of(fixture("versioned_200"));
    const fs::path library = f.bundle / "libversioned.so";

    // A new file under the library's name (the old inode stays mapped), written halfway and
    // left open much longer than the debounce period: nothing happens.
    fs::remove(library);
    const int fd = ::open(library.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    const std::size_t half = v2.size() / 2;
    REQUIRE(::write(fd, v2.data(), half) == static_cast<ssize_t>(half));
    const auto until = std::chrono::steady_clock::now() + 400ms;
    while (std::chrono::steady_clock::now() < until) {
        REQUIRE(f.rt->poll_watch() == 0);
        std::this_thread::sleep_for(20ms);
    }
    REQUIRE(f.count_phases("0:versioned") == 0);  // not even Preparing
    REQUIRE(f.value() == 100);

    // Finished and closed: reloaded.
    REQUIRE(::write(fd, v2.data() + half, v2.size() - half) ==
            static_cast<ssize_t>(v2.size() - half));
    REQUIRE(::close(fd) == 0);
    REQUIRE(f.poll_until([&] { return f.value() == 200; }));

    // A truncated library, closed: the reload fails, version 2 keeps serving.
    {
        const fs::path staging = f.bundle / "broken.tmp";
        std::ofstream(staging, std::ios::binary) << v2.substr(0, 100);
        fs::rename(staging, library);
    }
    REQUIRE(f.poll_until([&] {
        std::lock_guard lock(f.phases.mutex);
        return !f.phases.entries.empty() && f.phases.entries.back().rfind("2:versioned", 0) == 0;
    }));
    REQUIRE(f.value() == 200);
    REQUIRE(f.logs.contains("failed; the old version keeps serving"));
}

TEST_CASE("watch - a burst of changes is one reload; unchanged files are no reload", "[watch]") {
    watch_fixture f;
    f.rt->watch(f.plugins, {.debounce = 300ms, .background_thread = false});
    f.replace_library("versioned_200");
    std::this_thread::sleep_for(20ms);
    f.replace_library("versioned_100");
    std::this_thread::sleep_for(20ms);
    f.replace_library("versioned_200");
    REQUIRE(f.poll_until([&] { return f.value() == 200; }));
    std::this_thread::sleep_for(400ms);
    f.rt->poll_watch();
    REQUIRE(f.count_phases("0:versioned") == 1);  // one Preparing for the whole burst

    // A temporary file closed in the bundle directory changes neither manifest nor library.
    std::ofstream(f.bundle / "notes.txt") << "not part of the bundle";
    std::this_thread::sleep_for(400ms);
    REQUIRE(f.rt->poll_watch() == 0);
    REQUIRE(f.count_phases("0:versioned") == 1);
}

TEST_CASE("watch - refused without hot reload, for a missing directory, from a callback",
          "[watch]") {
    temp_dir dir;
    {
        polyplug::runtime rt;  // hot_reload_enabled = false
        std::error_code ec;
        rt.watch(std::span<const fs::path>(&dir.path(), 1), {}, ec);
        REQUIRE(ec == polyplug::errc::hot_reload_disabled);
        REQUIRE_FALSE(rt.core().watcher().watching());
    }
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    polyplug::runtime rt(options);
    std::error_code ec;
    const fs::path missing = dir.path() / "missing";
    rt.watch(std::span<const fs::path>(&missing, 1), {}, ec);
    REQUIRE(ec);
    REQUIRE_THAT(rt.last_error(), Catch::Contains("is not a directory"));
    REQUIRE_FALSE(rt.core().watcher().watching());
    rt.watch(std::span<const fs::path>(&dir.path(), 1), {.debounce = -1ms}, ec);
    REQUIRE(ec);
    REQUIRE_THAT(rt.last_error(), Catch::Contains("must not be negative"));
}

TEST_CASE("watch - unwatch from on_reload on the watcher thread, and destruction while watching",
          "[watch]") {
    temp_dir dir;
    const fs::path plugins = dir.path() / "plugins";
    fs::create_directories(plugins);
    const fs::path bundle = make_bundle(plugins, "versioned", "versioned_100", versioned_provides);
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    options.unload_grace_period = 30s;
    std::atomic<int> reloaded{0};
    polyplug::runtime* self = nullptr;
    options.on_reload = [&](const ReloadPhase& phase) {
        if (phase.phase_type != ReloadPhaseType_Reloaded) return;
        self->unwatch();  // on the watcher's own thread: must not deadlock
        ++reloaded;
    };
    auto rt = std::make_unique<polyplug::runtime>(options);
    self = rt.get();
    rt->load_bundle(bundle);
    rt->watch(plugins, {.debounce = 50ms});
    const fs::path staging = bundle / "libversioned.so.new";
    fs::copy_file(fixture("versioned_200"), staging);
    fs::rename(staging, bundle / "libversioned.so");
    REQUIRE(eventually([&] { return reloaded.load() == 1; }));
    rt->watch(plugins, {.debounce = 50ms});  // restarting from the host joins the old thread
    rt.reset();                              // destroyed while watching: stops the thread first
    SUCCEED("no deadlock, no crash");
}

TEST_CASE("watch - through host.polyplug.Runtime@1 (Watch, PollWatch, Unwatch)", "[watch]") {
    watch_fixture f;
    const HostApi* host = f.rt->host_api();
    const HostContractInterface* iface =
        host->resolve_host_contract_interface(host, POLYPLUG_RUNTIME_CONTRACT_ID, 0);
    const HostContractInstance self =
        host->get_host_contract(host, POLYPLUG_RUNTIME_CONTRACT_ID, 0);
    REQUIRE(iface->dispatch.native.function_count == PolyplugRuntimeFn_Count);
    const std::string plugins = f.plugins.string();
    const StringView dirs[] = {
        {reinterpret_cast<const std::uint8_t*>(plugins.data()), plugins.size()}};
    AbiError err{};

    PolyplugWatchArgs bad_flags{dirs, 1, 50, 0x80};
    polyplug_runtime_fn(iface, PolyplugRuntimeFn_Watch)(self, &bad_flags, nullptr, &err);
    REQUIRE(err.code == AbiErrorCode_Generic);
    REQUIRE_THAT(take_last_error(host), Catch::Contains("unknown flags"));

    PolyplugWatchArgs args{dirs, 1, 50, POLYPLUG_WATCH_MANUAL};
    err = {};
    polyplug_runtime_fn(iface, PolyplugRuntimeFn_Watch)(self, &args, nullptr, &err);
    REQUIRE(err.code == AbiErrorCode_Ok);
    REQUIRE_FALSE(f.rt->core().watcher().has_thread());

    f.replace_library("versioned_200");
    std::uint32_t acted = 0;
    REQUIRE(eventually([&] {
        err = {};
        polyplug_runtime_fn(iface, PolyplugRuntimeFn_PollWatch)(self, nullptr, &acted, &err);
        return err.code == AbiErrorCode_Ok && acted == 1;
    }));
    REQUIRE(f.value() == 200);

    err = {};
    polyplug_runtime_fn(iface, PolyplugRuntimeFn_Unwatch)(self, nullptr, nullptr, &err);
    REQUIRE(err.code == AbiErrorCode_Ok);
    REQUIRE_FALSE(f.rt->core().watcher().watching());
    err = {};
    polyplug_runtime_fn(iface, PolyplugRuntimeFn_PollWatch)(self, nullptr, nullptr, &err);
    REQUIRE(err.code == AbiErrorCode_InvalidPointer);  // out is required
}

TEST_CASE("watch - poll_watch from an on_reload callback in manual mode does nothing", "[watch]") {
    temp_dir dir;
    const fs::path plugins = dir.path() / "plugins";
    fs::create_directories(plugins);
    const fs::path bundle = make_bundle(plugins, "versioned", "versioned_100", versioned_provides);
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    options.unload_grace_period = 30s;
    polyplug::runtime* self = nullptr;
    std::vector<std::size_t> nested;
    options.on_reload = [&](const ReloadPhase& phase) {
        if (phase.phase_type == ReloadPhaseType_Preparing) nested.push_back(self->poll_watch());
    };
    polyplug::runtime rt(options);
    self = &rt;
    rt.load_bundle(bundle);
    rt.watch(plugins, {.debounce = 20ms, .background_thread = false});
    const fs::path staging = bundle / "libversioned.so.new";
    fs::copy_file(fixture("versioned_200"), staging);
    fs::rename(staging, bundle / "libversioned.so");
    REQUIRE(eventually([&] { return rt.poll_watch() == 1; }));
    REQUIRE(nested == std::vector<std::size_t>{0});  // the nested poll was refused, harmlessly
}
