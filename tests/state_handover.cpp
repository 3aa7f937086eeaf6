// SPDX-License-Identifier: MIT
/// @file state_handover.cpp
/// host.polyplug.StateHandover@1: a counter survives reloads, a new schema migrates an old one,
/// a refusing restore or a failing save keeps the old version serving with its state, and Offer
/// is refused outside an init.
#include "support.hpp"

#include <polyplug/dispatch.hpp>
#include <polyplug/state_handover.hpp>

#include <span>

using namespace test_support;
namespace fs = std::filesystem;

namespace {

const std::uint64_t tally_id = polyplug::guest_contract_id("test.tally", 1);
const std::string tally_provides =
    "provides = [\"test.tally@1\"]\nfunction_count = { \"test.tally@1\" = 2 }\n";

void install(const fs::path& bundle, const std::string& fixture_name) {
    const fs::path staging = bundle / "libtally.so.new";
    fs::copy_file(fixture(fixture_name), staging, fs::copy_options::overwrite_existing);
    fs::rename(staging, bundle / "libtally.so");
}

struct tally_fixture {
    temp_dir dir;
    log_capture logs;
    phase_log phases;
    std::unique_ptr<polyplug::runtime> rt;
    fs::path bundle;
    const GuestContractInterface* cached = nullptr;

    explicit tally_fixture(const std::string& first_version) {
        polyplug::runtime_options options;
        options.hot_reload_enabled = true;
        options.log = logs.callback();
        options.log_max_level = polyplug::log_level::debug;
        options.on_reload = phases.callback();
        rt = std::make_unique<polyplug::runtime>(options);
        bundle = make_bundle(dir.path(), "tally", "tally_" + first_version, tally_provides);
        rt->load_bundle(bundle);
        cached = rt->resolve(rt->find(tally_id));
        REQUIRE(cached != nullptr);
    }

    std::uint64_t increment() {
        std::uint64_t out = 0;
        const AbiError err = polyplug::call(*cached, {nullptr, tally_id}, 0, nullptr, &out);
        REQUIRE(err.code == AbiErrorCode_Ok);
        return out;
    }

    std::uint32_t build() {  // which fixture variant serves now
        std::uint32_t out = 0;
        const AbiError err = polyplug::call(*cached, {nullptr, tally_id}, 1, nullptr, &out);
        REQUIRE(err.code == AbiErrorCode_Ok);
        return out;
    }

    polyplug::status reload_to(const std::string& version) {
        install(bundle, "tally_" + version);
        std::error_code ec;
        rt->reload_bundle(bundle, ec);
        return ec ? polyplug::status(static_cast<polyplug::errc>(ec.value()), rt->last_error())
                  : polyplug::status();
    }
};

}  // namespace

TEST_CASE("state hand-over - a counter survives reloads, old schemas migrate", "[handover]") {
    tally_fixture f("s1");
    for (int i = 1; i <= 3; ++i) REQUIRE(f.increment() == static_cast<std::uint64_t>(i));

    REQUIRE(f.reload_to("s1"));  // same schema: raw bytes
    REQUIRE(f.build() == 1);
    REQUIRE(f.increment() == 4);

    REQUIRE(f.reload_to("s2"));  // schema 1 -> 2: the new version migrates
    REQUIRE(f.build() == 2);
    REQUIRE(f.increment() == 5);
    REQUIRE(f.logs.contains("state handed over to the new version"));

    REQUIRE(f.reload_to("s2"));  // schema 2 -> 2: text
    REQUIRE(f.increment() == 6);
}

TEST_CASE("state hand-over - a refused state keeps the old version and its state", "[handover]") {
    SECTION("the new version refuses every state") {
        tally_fixture f("s1");
        f.increment();
        f.increment();
        const polyplug::status st = f.reload_to("refuse");
        REQUIRE(st.code() == polyplug::errc::state_handover_failed);
        CHECK_THAT(st.message(), Catch::Contains("the new version refused the state (schema 1)"));
        CHECK_THAT(st.message(), Catch::Contains("this version refuses every state"));
        REQUIRE(f.build() == 1);                                     // the old code still serves...
        REQUIRE(f.increment() == 3);                                 // ...with its state
        REQUIRE(f.phases.entries.back().rfind("2:tally:", 0) == 0);  // Failed
    }
    SECTION("an older version does not understand a newer schema") {
        tally_fixture f("s2");
        f.increment();
        const polyplug::status st = f.reload_to("s1");
        REQUIRE(st.code() == polyplug::errc::state_handover_failed);
        CHECK_THAT(st.message(), Catch::Contains("unknown state schema"));
        REQUIRE(f.build() == 2);
        REQUIRE(f.increment() == 2);
    }
    SECTION("the old version's save fails") {
        tally_fixture f("save_fails");
        f.increment();
        const polyplug::status st = f.reload_to("s1");
        REQUIRE(st.code() == polyplug::errc::state_handover_failed);
        CHECK_THAT(st.message(), Catch::Contains("the old version's save failed: tally cannot "
                                                 "save today"));
        REQUIRE(f.build() == 4);
        REQUIRE(f.increment() == 2);
    }
}

TEST_CASE("state hand-over - versions that do not take part start fresh or drop the state",
          "[handover]") {
    SECTION("the old version offers nothing: the new one starts from its own init") {
        tally_fixture f("no_offer");
        f.increment();
        f.increment();
        REQUIRE(f.reload_to("s1"));
        REQUIRE(f.build() == 1);
        REQUIRE(f.increment() == 1);
    }
    SECTION("the new version restores nothing: the state is dropped, with a warning") {
        tally_fixture f("s1");
        f.increment();
        REQUIRE(f.reload_to("no_offer"));
        REQUIRE(f.build() == 5);
        REQUIRE(f.increment() == 1);
        REQUIRE(f.logs.contains("the state is dropped"));
    }
    SECTION("the runtime forgets a replaced version's offer: no stale callback is called") {
        tally_fixture f("s1");
        f.increment();
        REQUIRE(f.reload_to("no_offer"));
        f.increment();
        // v1's save is gone with v1; no_offer offers nothing, so s1 starts fresh.
        REQUIRE(f.reload_to("s1"));
        REQUIRE(f.increment() == 1);
    }
}

TEST_CASE("state hand-over - Offer is refused outside an init and with bad input", "[handover]") {
    polyplug::runtime rt;
    const HostApi* host = rt.host_api();
    const PolyplugStateOffer offer{1, 0, nullptr, nullptr, nullptr};

    AbiError err = polyplug_offer_state(host, &offer);
    REQUIRE(err.code == AbiErrorCode_Generic);
    REQUIRE_THAT(take_last_error(host), Catch::Contains("refused outside a bundle's init"));

    temp_dir dir;
    scripted_loader* loader = add_scripted_loader(host);
    std::vector<std::uint32_t> codes;
    std::vector<std::string> errors;
    loader->on_load = [&](const HostApi* h, const LoaderBundleInfo*, AbiError*) {
        PolyplugStateOffer reserved_set{1, 7, nullptr, nullptr, nullptr};
        codes.push_back(polyplug_offer_state(h, &reserved_set).code);
        errors.push_back(take_last_error(h));
        codes.push_back(polyplug_offer_state(h, nullptr).code);
        codes.push_back(polyplug_offer_state(h, &offer).code);  // inside init: accepted
    };
    rt.load_bundle(make_scripted_bundle(dir.path(), "scripted"));
    REQUIRE(codes == std::vector<std::uint32_t>{AbiErrorCode_Generic, AbiErrorCode_InvalidPointer,
                                                AbiErrorCode_Ok});
    REQUIRE_THAT(errors[0], Catch::Contains("`reserved` must be 0"));
    REQUIRE(polyplug_offer_state(nullptr, &offer).code == AbiErrorCode_InvalidPointer);
}

namespace {

struct counter_state {
    std::uint64_t count = 0;
    bool refuse = false;
    std::string save() const { return std::to_string(count); }
    void restore(std::uint32_t schema, std::span<const std::uint8_t> bytes) {
        if (refuse || schema != 3) throw std::runtime_error("counter_state: will not restore");
        count = std::stoull(std::string(bytes.begin(), bytes.end()));
    }
};

}  // namespace

TEST_CASE("state hand-over - the C++ helper saves, restores and turns exceptions into errors",
          "[handover]") {
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    polyplug::runtime rt(options);
    const HostApi* host = rt.host_api();
    scripted_loader* loader = nullptr;
    BundleLoader* table = scripted_loader::create(loader, "reloadable");
    table->supports_hot_reload = true;
    table->reload = table->load;
    AbiError err{};
    host->register_loader(host, table, &err);
    REQUIRE(err.code == AbiErrorCode_Ok);

    counter_state v1{41};
    counter_state v2{0};
    counter_state v3{0, /*refuse=*/true};
    polyplug::state_handover<counter_state> offer_v1(v1, 3);
    polyplug::state_handover<counter_state> offer_v2(v2, 3);
    polyplug::state_handover<counter_state> offer_v3(v3, 3);
    polyplug::state_handover<counter_state>* next = &offer_v1;
    loader->on_load = [&](const HostApi* h, const LoaderBundleInfo*, AbiError* out) {
        *out = next->offer(h);
    };
    temp_dir dir;
    const fs::path bundle = make_bundle(dir.path(), "helper", "", {}, {}, "reloadable");
    write_file(bundle / "libhelper.so", "scripted");
    rt.load_bundle(bundle);

    next = &offer_v2;
    rt.reload_bundle(bundle);
    REQUIRE(v2.count == 41);  // "41" saved by v1's save(), parsed by v2's restore()

    next = &offer_v3;
    std::error_code ec;
    rt.reload_bundle(bundle, ec);
    REQUIRE(ec == polyplug::errc::state_handover_failed);
    CHECK_THAT(rt.last_error(), Catch::Contains("counter_state: will not restore (code 3)"));
    REQUIRE(v3.count == 0);
}
