// SPDX-License-Identifier: MIT
/// @file reload.cpp
/// Hot reload: new code every time, handles and cached pointers follow, failures roll back,
/// opt-in cascades are one transaction, reloads are serialised, and calls during 1,000 reloads
/// only ever see the old or the new version.
#include "support.hpp"

#include <polyplug/dispatch.hpp>

#include <thread>

using namespace test_support;
namespace fs = std::filesystem;

namespace {

const std::uint64_t version_id = polyplug::guest_contract_id("test.version", 1);
const std::uint64_t legacy_id = polyplug::guest_contract_id("test.legacy", 1);
const std::uint64_t extra_id = polyplug::guest_contract_id("test.extra", 1);

/// Replaces the bundle's library with `fixture_<name>.so` the safe way (write, then rename): a
/// library that is mapped must never be rewritten in place.
void install(const fs::path& bundle, const std::string& file, const std::string& name) {
    const fs::path staging = bundle / (file + ".new");
    fs::copy_file(fixture(name), staging, fs::copy_options::overwrite_existing);
    fs::rename(staging, bundle / file);
}

std::uint32_t value_of(const GuestContractInterface* iface, AbiError& err) {
    std::uint32_t out = 0;
    err = polyplug::call(*iface, {nullptr, version_id}, 0, nullptr, &out);
    return out;
}

struct reload_fixture {
    temp_dir dir;
    log_capture logs;
    phase_log phase_entries;
    std::vector<std::string>& phases = phase_entries.entries;
    std::unique_ptr<polyplug::runtime> rt;
    fs::path bundle;

    explicit reload_fixture(bool hot_reload = true,
                            std::chrono::milliseconds grace = std::chrono::milliseconds(50)) {
        polyplug::runtime_options options;
        options.hot_reload_enabled = hot_reload;
        options.unload_grace_period = grace;
        options.log = logs.callback();
        options.on_reload = phase_entries.callback();
        rt = std::make_unique<polyplug::runtime>(options);
        bundle = make_bundle(dir.path(), "versioned", "versioned_100", versioned_provides);
        rt->load_bundle(bundle);
    }

    polyplug::status reload() {
        std::error_code ec;
        rt->reload_bundle(bundle, ec);
        return ec ? polyplug::status(static_cast<polyplug::errc>(ec.value()), rt->last_error())
                  : polyplug::status();
    }
};

}  // namespace

TEST_CASE("reload - v1, v2, v1...: new code each time; handles and cached pointers follow",
          "[reload]") {
    reload_fixture f;
    const GuestContractHandle handle = f.rt->find(version_id);
    const GuestContractInterface* cached = f.rt->resolve(handle);
    REQUIRE(cached != nullptr);
    AbiError err{};
    REQUIRE(value_of(cached, err) == 100);

    for (int round = 0; round < 6; ++round) {
        const bool to_v2 = round % 2 == 0;
        INFO("round " << round);
        install(f.bundle, "libversioned.so", to_v2 ? "versioned_200" : "versioned_100");
        const std::uint64_t revision = f.rt->revision();
        REQUIRE(f.reload().ok());
        CHECK(f.rt->revision() != revision);
        const std::uint32_t expected = to_v2 ? 200 : 100;
        CHECK(value_of(cached, err) == expected);                       // cached pointer
        CHECK(value_of(f.rt->resolve(handle), err) == expected);        // old handle
        CHECK(f.rt->resolve(handle) == cached);                         // same slot, same copy
        CHECK(f.rt->find(version_id).generation == handle.generation);  // no generation bump
    }
    CHECK(f.phases.size() == 12);
    CHECK(f.phases.front() == "0:versioned");
    CHECK(f.phases[1] == "1:versioned");
    CHECK(f.rt->bundles().size() == 1);
}

TEST_CASE("reload - contracts removed by the new version turn stale, new ones appear", "[reload]") {
    reload_fixture f;
    const GuestContractHandle legacy = f.rt->find(legacy_id);
    const GuestContractInterface* legacy_cached = f.rt->resolve(legacy);
    REQUIRE(legacy_cached != nullptr);
    CHECK(polyplug_handle_is_null(f.rt->find(extra_id)));

    install(f.bundle, "libversioned.so", "versioned_200");
    REQUIRE(f.reload().ok());
    CHECK(f.rt->resolve(legacy) == nullptr);
    CHECK(polyplug_handle_is_null(f.rt->find(legacy_id)));
    AbiError err{};
    value_of(legacy_cached, err);
    CHECK(err.code == AbiErrorCode_StaleHandle);
    const GuestContractInterface* extra = f.rt->resolve(f.rt->find(extra_id));
    REQUIRE(extra != nullptr);
    CHECK(value_of(extra, err) == 200);
}

TEST_CASE("reload - a failing new version leaves the old one serving and fires Failed",
          "[reload]") {
    reload_fixture f;
    const GuestContractInterface* cached = f.rt->resolve(f.rt->find(version_id));
    install(f.bundle, "libversioned.so", "init_fails");  // registers one contract, then fails
    const polyplug::status st = f.reload();
    CHECK(st.code() == polyplug::errc::init_failed);
    CHECK_THAT(st.message(), Catch::Contains("deliberate failure"));
    REQUIRE(f.phases.size() == 2);
    CHECK(f.phases[0] == "0:versioned");
    CHECK_THAT(f.phases[1], Catch::StartsWith("2:versioned:") && Catch::Contains("code 42"));
    AbiError err{};
    CHECK(value_of(cached, err) == 100);
    CHECK(polyplug_handle_is_null(f.rt->find(polyplug::guest_contract_id("test.partial", 1))));
    CHECK(f.rt->core().contracts().contracts().size() == 2);  // version + legacy, nothing staged

    SECTION("three failures in a row, then a good reload") {
        CHECK(!f.reload().ok());
        CHECK(!f.reload().ok());
        install(f.bundle, "libversioned.so", "versioned_200");
        REQUIRE(f.reload().ok());
        CHECK(value_of(cached, err) == 200);
        CHECK(f.rt->core().contracts().contracts().size() == 2);  // version + extra
    }
}

TEST_CASE("reload - refused: disabled, not loaded, nested in on_reload", "[reload]") {
    SECTION("hot reload disabled") {
        reload_fixture f(/*hot_reload=*/false);
        CHECK(f.reload().code() == polyplug::errc::hot_reload_disabled);
        CHECK(f.phases.empty());
    }
    SECTION("a bundle that is not loaded") {
        reload_fixture f;
        const fs::path other = make_bundle(f.dir.path(), "stranger", "adder", adder_provides);
        std::error_code ec;
        f.rt->reload_bundle(other, ec);
        CHECK(ec == polyplug::errc::bundle_not_loaded);
        CHECK_THAT(f.rt->last_error(), Catch::Contains("not loaded"));
    }
    SECTION("reload_bundle from inside on_reload gets an error, not a deadlock") {
        temp_dir dir;
        polyplug::runtime* self = nullptr;
        fs::path bundle;
        std::error_code nested;
        polyplug::runtime_options options;
        options.hot_reload_enabled = true;
        options.on_reload = [&](const ReloadPhase& phase) {
            if (phase.phase_type == ReloadPhaseType_Preparing) self->reload_bundle(bundle, nested);
        };
        polyplug::runtime rt(options);
        self = &rt;
        bundle = make_bundle(dir.path(), "versioned", "versioned_100", versioned_provides);
        rt.load_bundle(bundle);
        rt.reload_bundle(bundle);
        CHECK(nested == polyplug::errc::reload_in_progress);
    }
}

TEST_CASE("reload - opted-in dependents reload with it, as one transaction", "[reload]") {
    reload_fixture f;
    const std::string dependency =
        "[[dependency]]\ncontract = \"test.version@1\"\nmin_version = \"1.0\"\n";
    const fs::path depender = make_bundle(
        f.dir.path(), "depender", "depender",
        // test.partial@1: what init_fails registers when it replaces the depender below.
        "provides = [\"test.depender@1\", \"test.partial@1\"]\n"
        "function_count = { \"test.depender@1\" = 1, \"test.partial@1\" = 1 }\n"
        "needs_reinit_on_dep_reload = true\n",
        dependency);
    f.rt->load_bundle(depender);
    const GuestContractInterface* cached = f.rt->resolve(f.rt->find(version_id));

    SECTION("both reload; phases per member, providers first") {
        install(f.bundle, "libversioned.so", "versioned_200");
        REQUIRE(f.reload().ok());
        CHECK(f.phases ==
              std::vector<std::string>{"0:versioned", "0:depender", "1:versioned", "1:depender"});
        AbiError err{};
        CHECK(value_of(cached, err) == 200);
    }
    SECTION("a failing dependent rolls both back, with one Failed naming it") {
        install(f.bundle, "libversioned.so", "versioned_200");
        install(depender, "libdepender.so", "init_fails");
        const polyplug::status st = f.reload();
        CHECK(st.code() == polyplug::errc::init_failed);
        CHECK_THAT(st.message(), Catch::Contains("dependent bundle 'depender'"));
        const auto failed =
            std::count_if(f.phases.begin(), f.phases.end(),
                          [](const std::string& p) { return p.rfind("2:", 0) == 0; });
        CHECK(failed == 1);
        AbiError err{};
        CHECK(value_of(cached, err) == 100);  // the provider kept its old version too
        CHECK(f.rt->resolve(f.rt->find(polyplug::guest_contract_id("test.depender", 1))) !=
              nullptr);
        CHECK(f.rt->bundles().size() == 2);
    }
    SECTION("a dependent that did not opt in is left alone") {
        const fs::path plain = make_bundle(
            f.dir.path(), "plain", "depender",
            "provides = [\"test.depender@1\"]\nfunction_count = { \"test.depender@1\" = 1 }\n",
            dependency);
        (void)plain;  // same contract from another bundle: loading it is enough for the check
        install(f.bundle, "libversioned.so", "versioned_200");
        REQUIRE(f.reload().ok());
        CHECK(std::count(f.phases.begin(), f.phases.end(), "1:plain") == 0);
    }
}

TEST_CASE("reload - 4 threads calling while 1,000 reloads alternate v1 and v2",
          "[reload][concurrency]") {
    // Calls through cached pointers are not tracked (that is what keeps them free): what keeps
    // a caller that read an old function pointer from calling into unmapped code is the grace
    // period. On a loaded 2-core CI machine (and under sanitizers) a caller can be descheduled
    // for longer than the default 50 ms between reading the pointer and calling it, so this test
    // uses a period no scheduler delay reaches. The 50 ms default is covered by [unmap] tests.
    reload_fixture f(true, std::chrono::seconds(30));
    const fs::path v1 = f.dir.path() / "v1.so";
    const fs::path v2 = f.dir.path() / "v2.so";
    fs::copy_file(fixture("versioned_100"), v1);
    fs::copy_file(fixture("versioned_200"), v2);
    const GuestContractHandle handle = f.rt->find(version_id);
    const GuestContractInterface* cached = f.rt->resolve(handle);
    std::atomic<bool> stop{false};
    std::atomic<long> calls{0}, wrong{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < 4; ++t) {
        callers.emplace_back([&, t] {
            while (!stop.load(std::memory_order_relaxed)) {
                const GuestContractInterface* iface = t % 2 == 0 ? cached : f.rt->resolve(handle);
                AbiError err{};
                const std::uint32_t value = iface == nullptr ? 0 : value_of(iface, err);
                if (err.code != AbiErrorCode_Ok || (value != 100 && value != 200)) ++wrong;
                ++calls;
            }
        });
    }
    int failed_reloads = 0;
    for (int i = 0; i < 1000; ++i) {
        const fs::path staging = f.bundle / "libversioned.so.new";
        fs::copy_file(i % 2 == 0 ? v2 : v1, staging, fs::copy_options::overwrite_existing);
        fs::rename(staging, f.bundle / "libversioned.so");
        if (!f.reload().ok()) ++failed_reloads;
    }
    stop = true;
    for (auto& t : callers) t.join();
    CHECK(failed_reloads == 0);
    CHECK(wrong == 0);
    CHECK(calls > 0);
    AbiError err{};
    CHECK(value_of(cached, err) == 100);  // 1,000 reloads: ends on v1
}

TEST_CASE("reload - unload, replace, load again within the grace period: the new code runs",
          "[reload][unmap]") {
    temp_dir dir;
    polyplug::runtime_options options;
    options.unload_grace_period = std::chrono::seconds(5);  // the old mapping is still there
    polyplug::runtime rt(options);
    const fs::path bundle =
        make_bundle(dir.path(), "versioned", "versioned_100", versioned_provides);
    rt.load_bundle(bundle);
    AbiError err{};
    CHECK(value_of(rt.resolve(rt.find(version_id)), err) == 100);
    rt.unload_bundle(polyplug::bundle_id("versioned"));
    install(bundle, "libversioned.so", "versioned_200");
    rt.load_bundle(bundle);  // same path, old version still mapped: loaded from a private copy
    CHECK(value_of(rt.resolve(rt.find(version_id)), err) == 200);
    rt.unload_bundle(polyplug::bundle_id("versioned"));
    install(bundle, "libversioned.so", "versioned_100");
    rt.load_bundle(bundle);
    CHECK(value_of(rt.resolve(rt.find(version_id)), err) == 100);
}
