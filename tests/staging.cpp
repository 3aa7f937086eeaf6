// SPDX-License-Identifier: MIT
/// @file staging.cpp
/// The one staging pipeline (detail/staged_version.hpp, runtime_core::stage_version): a reload
/// goes through every check a load makes, a failed load undoes what its init did, the manifest
/// is checked before a plugin's table is read, and no host callback runs under a runtime lock.
#include "support.hpp"

#include <polyplug/dispatch.hpp>

#include <cstdio>
#include <cstdlib>
#include <future>

using namespace test_support;
namespace fs = std::filesystem;

namespace {

polyplug::runtime_options reloadable() {
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    return options;
}

const std::uint64_t add_id = polyplug::guest_contract_id("test.add", 1);

std::uint32_t call_add(polyplug::runtime& rt, std::uint32_t a, std::uint32_t b) {
    const GuestContractInterface* iface = rt.resolve(rt.find(add_id));
    REQUIRE(iface != nullptr);
    const std::uint32_t args[2] = {a, b};
    std::uint32_t out = 0;
    AbiError err{};
    polyplug::function_cast<GuestContractFn>(iface->dispatch.native.functions[0])({nullptr, add_id},
                                                                                  args, &out, &err);
    REQUIRE(err.code == AbiErrorCode_Ok);
    return out;
}

/// A scripted loader that can reload (the support one cannot): its reload runs `on_load` too.
scripted_loader* add_reloading_loader(const HostApi* host, const char* name) {
    scripted_loader* loader = nullptr;
    BundleLoader* table = scripted_loader::create(loader, name);
    table->supports_hot_reload = true;
    table->reload = table->load;
    AbiError err{};
    host->register_loader(host, table, &err);
    REQUIRE(err.code == AbiErrorCode_Ok);
    return loader;
}

void register_or_report(const HostApi* host, const char* contract, GuestContractInterface iface,
                        AbiError* err) {
    const PluginDescriptor descriptor = descriptor_for(contract);
    host->register_guest_contract(host, &descriptor, &iface, err);
}

}  // namespace

TEST_CASE("staging - a reload whose manifest names another loader is served by that loader",
          "[staging]") {
    temp_dir dir;
    polyplug::runtime rt(reloadable());
    const fs::path bundle = make_bundle(dir.path(), "switcher", "adder", adder_provides);
    rt.load_bundle(bundle);
    CHECK(call_add(rt, 2, 3) == 5);
    CHECK(rt.bundle(polyplug::bundle_id("switcher"))->loader == "native");

    scripted_loader* scripted = add_reloading_loader(rt.host_api(), "scripted");
    scripted->on_load = [](const HostApi* host, const LoaderBundleInfo*, AbiError* err) {
        register_or_report(host, "test.add", seven_interface("test.add"), err);
        if (err->code == AbiErrorCode_Ok)
            register_or_report(host, "test.counter", seven_interface("test.counter"), err);
    };
    make_bundle(dir.path(), "switcher", "", adder_provides, {}, "scripted");
    rt.reload_bundle(bundle);
    CHECK(rt.bundle(polyplug::bundle_id("switcher"))->loader == "scripted");
    CHECK(call_add(rt, 2, 3) == 7);  // the scripted version's function

    // Unloading releases each version through the loader that loaded it.
    rt.unload_bundle(polyplug::bundle_id("switcher"));
    CHECK(scripted->unloaded.size() == 1);
}

TEST_CASE("staging - a reload naming a loader that does not exist keeps the old version",
          "[staging]") {
    temp_dir dir;
    polyplug::runtime rt(reloadable());
    const fs::path bundle = make_bundle(dir.path(), "switcher", "adder", adder_provides);
    rt.load_bundle(bundle);
    make_bundle(dir.path(), "switcher", "", adder_provides, {}, "nonesuch");
    const polyplug::status st = try_reload(rt, bundle);
    CHECK(st.code() == polyplug::errc::no_loader);
    CHECK_THAT(st.message(), Catch::Contains("no loader named 'nonesuch'"));
    CHECK(call_add(rt, 2, 3) == 5);
    CHECK(rt.bundle(polyplug::bundle_id("switcher"))->loader == "native");
}

TEST_CASE("staging - a reload whose new dependencies are not satisfied is refused like a load",
          "[staging]") {
    temp_dir dir;
    polyplug::runtime rt(reloadable());
    rt.load_bundle(make_bundle(dir.path(), "adder", "adder", adder_provides));  // version 1.0.0
    const std::string own =
        "provides = [\"test.depender@1\"]\nfunction_count = { \"test.depender@1\" = 1 }\n";
    const auto depending_on = [](const char* min_version) {
        return std::string("[[dependency]]\ncontract = \"test.add@1\"\nmin_version = \"") +
               min_version + "\"\n";
    };
    const fs::path depender =
        make_bundle(dir.path(), "depender", "depender", own, depending_on("1.0"));
    rt.load_bundle(depender);

    // The manifest only: a mapped library must never be rewritten in place.
    make_bundle(dir.path(), "depender", "", own, depending_on("1.2"));
    const polyplug::status st = try_reload(rt, depender);
    CHECK(st.code() == polyplug::errc::version_mismatch);
    CHECK_THAT(st.message(), Catch::Contains("requires 'test.add' 1.2.0"));
    const auto info = rt.bundle(polyplug::bundle_id("depender"));
    REQUIRE(info);
    REQUIRE(info->dependencies.size() == 1);
    CHECK(info->dependencies[0].min_version == "1.0");  // the old version serves on
}

TEST_CASE("staging - a failed load unloads the bundles its init loaded", "[staging]") {
    temp_dir dir;
    polyplug::runtime rt;
    scripted_loader* scripted = add_scripted_loader(rt.host_api());
    const fs::path nested = make_bundle(dir.path(), "nested", "adder", adder_provides);
    const fs::path outer = make_scripted_bundle(dir.path(), "outer");
    bool nested_loaded = false;
    scripted->on_load = [&](const HostApi* host, const LoaderBundleInfo*, AbiError* err) {
        AbiError inner{};
        load_or_fail(host, nested, inner);
        nested_loaded = inner.code == AbiErrorCode_Ok;
        *err = {AbiErrorCode_Generic, polyplug_sv("outer init fails after loading 'nested'")};
    };
    const polyplug::status st = try_load(rt, outer);
    CHECK(st.code() == polyplug::errc::init_failed);
    CHECK(nested_loaded);         // the nested load itself succeeded...
    CHECK(rt.bundles().empty());  // ...and was undone with the init that made it
    CHECK(polyplug_handle_is_null(rt.find(add_id)));

    // The same init succeeding keeps both.
    scripted->on_load = [&](const HostApi* host, const LoaderBundleInfo*, AbiError* err) {
        load_or_fail(host, nested, *err);
    };
    rt.load_bundle(outer);
    CHECK(rt.bundles().size() == 2);
    CHECK(call_add(rt, 1, 1) == 2);
}

TEST_CASE("staging - a contract the manifest does not declare is the function-count mismatch",
          "[staging]") {
    temp_dir dir;
    for (const auto mode : {polyplug::compatibility::strict, polyplug::compatibility::relaxed,
                            polyplug::compatibility::yolo}) {
        INFO("mode " << static_cast<int>(mode));
        log_capture logs;
        polyplug::runtime_options options;
        options.compat = mode;
        options.log = logs.callback();
        polyplug::runtime rt(options);
        scripted_loader* scripted = add_scripted_loader(rt.host_api());
        bool init_saw_refusal = false;
        scripted->on_load = [&](const HostApi* host, const LoaderBundleInfo*, AbiError* err) {
            register_or_report(host, "test.add", seven_interface("test.add"), err);
            AbiError undeclared{};
            register_or_report(host, "test.sneaky", seven_interface("test.sneaky"), &undeclared);
            // An init that ignores the refusal does not get the load through either.
            init_saw_refusal = undeclared.code != AbiErrorCode_Ok;
        };
        const polyplug::status st =
            try_load(rt, make_scripted_bundle(dir.path(), "declares_add",
                                              "provides = [\"test.add@1\"]\n"
                                              "function_count = { \"test.add@1\" = 1 }\n"));
        const bool strict = mode == polyplug::compatibility::strict;
        CHECK(init_saw_refusal == strict);
        if (strict) {
            CHECK(st.code() == polyplug::errc::function_count_mismatch);
            CHECK_THAT(st.message(),
                       Catch::Contains("registers contract 'test.sneaky@1', which its manifest "
                                       "does not declare"));
            CHECK(rt.bundles().empty());
        } else {
            CHECK(st.ok());
            CHECK_FALSE(
                polyplug_handle_is_null(rt.find(polyplug::guest_contract_id("test.sneaky", 1))));
        }
        // Strict logs the refused registration, Relaxed the warning, Yolo nothing.
        CHECK(logs.contains("which its manifest does not declare") ==
              (mode != polyplug::compatibility::yolo));
        fs::remove_all(dir.path() / "declares_add");
    }
}

namespace {
void forty_two(GuestContractInstance, const void*, void* out, AbiError* err) {
    *static_cast<std::uint32_t*>(out) = 42;
    err->code = AbiErrorCode_Ok;
}
}  // namespace

TEST_CASE("staging - the declared function count is compared before the table is read",
          "[staging]") {
    temp_dir dir;
    polyplug::runtime rt;
    scripted_loader* scripted = add_scripted_loader(rt.host_api());
    // A one-entry table that claims 1000 entries: reading past the first is out of bounds
    // (AddressSanitizer would report it), so the claim must be refused before any entry is read.
    static const void* const one_entry[1] = {reinterpret_cast<const void*>(&forty_two)};
    scripted->on_load = [](const HostApi* host, const LoaderBundleInfo*, AbiError* err) {
        GuestContractInterface iface = seven_interface("test.add");
        iface.dispatch.native.function_count = 1000;
        iface.dispatch.native.functions = one_entry;
        register_or_report(host, "test.add", iface, err);
    };
    const polyplug::status st =
        try_load(rt, make_scripted_bundle(dir.path(), "liar",
                                          "provides = [\"test.add@1\"]\n"
                                          "function_count = { \"test.add@1\" = 1 }\n"));
    CHECK(st.code() == polyplug::errc::function_count_mismatch);
    CHECK_THAT(st.message(),
               Catch::Contains("declared function_count 1 but interface exports 1000"));
    CHECK(rt.bundles().empty());
}

TEST_CASE("staging - a log callback that calls back into the runtime does not deadlock",
          "[staging]") {
    // The callback runs on the thread that made the record; every runtime operation it calls
    // takes the runtime's state lock. Records made while that lock is held (a refused load,
    // a version warning in Relaxed mode) must reach it only after the lock is released.
    temp_dir dir;
    const HostApi* host = nullptr;
    std::atomic<int> reentered{0};
    polyplug::runtime_options options;
    options.compat = polyplug::compatibility::relaxed;
    options.log_max_level = polyplug::log_level::debug;
    options.log = [&](polyplug::log_level, std::string_view, std::string_view) {
        if (host == nullptr) return;
        const ArrayOf_BundleId ids = host->list_bundles(host);  // takes the state lock
        host->free(host, reinterpret_cast<std::uint8_t*>(ids.items), ids.len * sizeof(BundleId),
                   alignof(BundleId));
        ++reentered;
    };
    polyplug::runtime rt(options);
    host = rt.host_api();
    const fs::path adder = make_bundle(dir.path(), "adder", "adder", adder_provides);

    // Run where a deadlock cannot hang the suite: a worker, waited for with a deadline.
    auto work = std::async(std::launch::async, [&] {
        rt.load_bundle(adder);
        std::error_code ec;
        rt.load_bundle(adder, ec);  // refused under the lock: "already loaded" is logged there
        const std::string dependency =
            "[[dependency]]\ncontract = \"test.add@1\"\nmin_version = \"1.2\"\n";
        rt.load_bundle(make_bundle(dir.path(), "depender", "depender",
                                   "provides = [\"test.depender@1\"]\n"
                                   "function_count = { \"test.depender@1\" = 1 }\n",
                                   dependency));  // Relaxed: a warning made under the lock
        return ec;
    });
    if (work.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
        // The worker is stuck on the runtime's lock for good: nothing can join it.
        std::fprintf(stderr, "staging: the log callback deadlocked the runtime\n");
        std::abort();
    }
    CHECK(work.get() == polyplug::errc::bundle_already_loaded);
    CHECK(reentered > 0);
    CHECK(rt.bundles().size() == 2);
}
