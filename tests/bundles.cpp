// SPDX-License-Identifier: MIT
/// @file bundles.cpp
/// Bundles as a system, through the runtime: load_dirs (discovery, graph, providers first, all or
/// nothing), cascade unload, and the Strict / Relaxed / Yolo matrix on the load_dirs path.
#include "support.hpp"

#include <algorithm>

using namespace test_support;
namespace fs = std::filesystem;

namespace {

std::string dependency_on(const std::string& contract, const std::string& min_version = "1.0") {
    return "[[dependency]]\ncontract = \"" + contract + "\"\nmin_version = \"" + min_version +
           "\"\n";
}

std::string provides(const std::string& contract, std::uint32_t functions = 1) {
    return "provides = [\"" + contract + "\"]\nfunction_count = { \"" + contract +
           "\" = " + std::to_string(functions) + " }\n";
}

/// Names of the loaded bundles, in load order.
template <class Runtime>
std::vector<std::string> loaded_names(const Runtime& rt) {
    std::vector<std::string> names;
    for (const auto& b : rt.bundles()) names.push_back(b.name);
    return names;
}

struct system_fixture {
    temp_dir dir;
    log_capture logs;
    phase_log phase_entries;
    std::vector<std::string>& phases = phase_entries.entries;
    std::unique_ptr<polyplug::runtime> rt;
    scripted_loader* loader = nullptr;
    std::vector<std::string> load_order;

    explicit system_fixture(polyplug::compatibility compat = polyplug::compatibility::strict) {
        polyplug::runtime_options options;
        options.compat = compat;
        options.log = logs.callback();
        options.unload_grace_period = std::chrono::milliseconds(0);
        options.on_reload = phase_entries.callback();
        rt = std::make_unique<polyplug::runtime>(options);
        loader = add_scripted_loader(rt->host_api());
        loader->on_load = [this](const HostApi*, const LoaderBundleInfo* info, AbiError*) {
            load_order.emplace_back(polyplug::detail::view_of(info->name));
        };
    }

    fs::path plugins() const { return dir.path() / "plugins"; }
};

}  // namespace

TEST_CASE("bundles - discovered bundles load providers first", "[bundles]") {
    system_fixture f;
    // Names chosen so that alphabetical order is the wrong load order.
    make_bundle(f.plugins(), "a-top", "", "", dependency_on("test.depender@1"), "test");
    write_file(f.plugins() / "a-top" / "liba-top.so", "scripted");
    make_bundle(f.plugins(), "b-depender", "depender", provides("test.depender@1"),
                dependency_on("test.add@1"));
    make_bundle(f.plugins(), "c-adder", "adder", adder_provides);

    const polyplug::load_report report = f.rt->load_dir(f.plugins());
    CHECK(loaded_names(*f.rt) == std::vector<std::string>{"c-adder", "b-depender", "a-top"});
    CHECK(report.loaded.size() == 3);
    CHECK(report.skipped.empty());
    CHECK(f.load_order == std::vector<std::string>{"a-top"});

    SECTION("loading the same directory again loads nothing new") {
        const polyplug::load_report again = f.rt->load_dir(f.plugins());
        CHECK(again.loaded.empty());
        CHECK(again.already_loaded.size() == 3);
    }
    SECTION("cascade unload: dependents first, one Unloading phase each") {
        const std::vector<std::uint64_t> unloaded =
            f.rt->unload_cascade(polyplug::bundle_id("c-adder"));
        CHECK(unloaded == std::vector<std::uint64_t>{polyplug::bundle_id("a-top"),
                                                     polyplug::bundle_id("b-depender"),
                                                     polyplug::bundle_id("c-adder")});
        CHECK(f.phases == std::vector<std::string>{"3:a-top", "3:b-depender", "3:c-adder"});
        CHECK(f.rt->bundles().empty());
    }
    SECTION("the plain unload still refuses while dependents are loaded") {
        std::error_code ec;
        f.rt->unload_bundle(polyplug::bundle_id("c-adder"), ec);
        CHECK(ec == polyplug::errc::dependency_in_use);
        CHECK(f.rt->bundles().size() == 3);
    }
}

TEST_CASE("bundles - a missing provider is reported before anything loads", "[bundles]") {
    system_fixture f;
    make_bundle(f.plugins(), "adder", "adder", adder_provides);
    make_bundle(f.plugins(), "lonely", "depender", provides("test.depender@1"),
                dependency_on("test.missing@1"));
    std::error_code ec;
    (void)f.rt->load_dirs(std::vector<fs::path>{f.plugins()}, ec);
    CHECK(ec == polyplug::errc::unsatisfied_dependency);
    CHECK_THAT(f.rt->last_error(), Catch::Contains("lonely"));
    CHECK_THAT(f.rt->last_error(), Catch::Contains("test.missing"));
    CHECK(f.rt->bundles().empty());
}

TEST_CASE("bundles - dependency cycles name every participant", "[bundles]") {
    system_fixture f;
    std::vector<std::string> members;
    SECTION("two bundles") {
        members = {"ping", "pong"};
    }
    SECTION("three bundles") {
        members = {"one", "two", "three"};
    }
    for (std::size_t i = 0; i < members.size(); ++i) {
        const std::string& next = members[(i + 1) % members.size()];
        make_scripted_bundle(f.plugins(), members[i], provides("test." + members[i] + "@1"),
                             dependency_on("test." + next + "@1"));
    }
    std::error_code ec;
    (void)f.rt->load_dirs(std::vector<fs::path>{f.plugins()}, ec);
    CHECK(ec == polyplug::errc::dependency_cycle);
    for (const std::string& m : members)
        CHECK_THAT(f.rt->last_error(), Catch::Contains("'" + m + "'"));
    CHECK(f.rt->bundles().empty());
    CHECK(f.load_order.empty());
}

TEST_CASE("bundles - a malformed manifest beside good ones is skipped and reported", "[bundles]") {
    system_fixture f;
    make_bundle(f.plugins(), "adder", "adder", adder_provides);
    write_file(f.plugins() / "broken" / "manifest.toml", "name = \"broken\"\nthis is not toml\n");
    const polyplug::load_report report = f.rt->load_dir(f.plugins());
    CHECK(loaded_names(*f.rt) == std::vector<std::string>{"adder"});
    REQUIRE(report.skipped.size() == 1);
    CHECK(report.skipped[0].bundle == "broken");
    CHECK(report.skipped[0].problem.code() == polyplug::errc::manifest_invalid);
    CHECK(f.logs.contains("scan:"));
}

TEST_CASE("bundles - load_dirs is all or nothing", "[bundles]") {
    system_fixture f;
    make_bundle(f.plugins(), "adder", "adder", adder_provides);
    make_bundle(f.plugins(), "partial", "init_fails", partial_provides,
                dependency_on("test.add@1"));  // loads after adder, then fails
    std::error_code ec;
    (void)f.rt->load_dirs(std::vector<fs::path>{f.plugins()}, ec);
    CHECK(ec == polyplug::errc::init_failed);
    CHECK_THAT(f.rt->last_error(), Catch::Contains("bundle 'partial'"));
    CHECK_THAT(f.rt->last_error(), Catch::Contains("unloaded again"));
    CHECK(f.rt->bundles().empty());
    CHECK(polyplug_handle_is_null(f.rt->find(polyplug::guest_contract_id("test.add", 1))));
}

TEST_CASE("bundles - Strict, Relaxed and Yolo on every mismatch", "[bundles][compat]") {
    struct scenario {
        const char* name;
        std::string provider_version;
        std::string required;  // the consumer's min_version
        bool mismatch;
        const char* warning;  // what Relaxed logs
    };
    const std::vector<scenario> scenarios = {
        {"exact", "1.2.0", "1.2", false, ""},
        {"newer minor", "1.5.0", "1.2", false, ""},
        {"older minor", "1.0.0", "1.2", true, "requires 'test.provided' 1.2.0"},
        {"older major", "1.0.0", "2.0", true, "requires 'test.provided' 2.0.0"},
    };
    for (const auto compat : {polyplug::compatibility::strict, polyplug::compatibility::relaxed,
                              polyplug::compatibility::yolo}) {
        for (const scenario& s : scenarios) {
            INFO("mode " << static_cast<int>(compat) << ", " << s.name);
            system_fixture f(compat);
            const fs::path provider =
                make_scripted_bundle(f.plugins(), "provider", provides("test.provided@1"));
            // The scripted manifest says 1.0.0: rewrite the version line.
            std::ifstream in(provider / "manifest.toml");
            std::string text((std::istreambuf_iterator<char>(in)), {});
            text.replace(text.find("version = \"1.0.0\""), 17,
                         "version = \"" + s.provider_version + "\"");
            write_file(provider / "manifest.toml", text);
            make_scripted_bundle(f.plugins(), "consumer", "",
                                 dependency_on("test.provided@1", s.required));

            std::error_code ec;
            (void)f.rt->load_dirs(std::vector<fs::path>{f.plugins()}, ec);
            const bool strict_refuses = s.mismatch && compat == polyplug::compatibility::strict;
            CHECK((ec == polyplug::errc::version_mismatch) == strict_refuses);
            CHECK(f.rt->bundles().size() == (strict_refuses ? 0u : 2u));
            const bool warned = f.logs.contains("version mismatch");
            CHECK(warned == (s.mismatch && compat == polyplug::compatibility::relaxed));
            if (warned) {
                CHECK(f.logs.contains(s.warning));
                CHECK(f.logs.contains("provides version " + s.provider_version));
            }
        }
    }
}

TEST_CASE("bundles - cascade follows registered contracts even without `provides`", "[bundles]") {
    system_fixture f;
    // The adder's manifest has no `provides` (its function_count entries declare what it
    // registers); the depender needs test.add@1.
    make_bundle(f.plugins(), "adder", "adder",
                "function_count = { \"test.add@1\" = 1, \"test.counter@1\" = 1 }\n");
    make_bundle(f.plugins(), "depender", "depender", provides("test.depender@1"),
                dependency_on("test.add@1"));
    f.rt->load_bundle(f.plugins() / "adder");
    f.rt->load_bundle(f.plugins() / "depender");
    std::error_code ec;
    f.rt->unload_bundle(polyplug::bundle_id("adder"), ec);
    CHECK(ec == polyplug::errc::dependency_in_use);  // the plain unload sees the dependent...
    const auto unloaded = f.rt->unload_cascade(polyplug::bundle_id("adder"));
    CHECK(unloaded == std::vector<std::uint64_t>{polyplug::bundle_id("depender"),
                                                 polyplug::bundle_id("adder")});  // ...so does this
    CHECK(f.rt->bundles().empty());
}
