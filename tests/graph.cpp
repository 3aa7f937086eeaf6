// SPDX-License-Identifier: MIT
/// @file graph.cpp
/// Tests for graph.hpp: discovery in plugin directories, load ordering, cycles, cascade closure.
#include <polyplug/graph.hpp>

#include "catch.hpp"
#include "support.hpp"

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using polyplug::errc;

using test_support::make_bundle;
using test_support::temp_dir;
using test_support::write_file;

namespace {

/// `provides = [...]` (and matching function counts) for a manifest's top-level keys.
std::string provides(std::initializer_list<std::string_view> contracts) {
    std::string list;
    std::string counts;
    for (const std::string_view contract : contracts) {
        list += (list.empty() ? "\"" : ", \"") + std::string(contract) + "\"";
        counts += (counts.empty() ? "\"" : ", \"") + std::string(contract) + "\" = 1";
    }
    return "provides = [" + list + "]\nfunction_count = { " + counts + " }\n";
}

/// A [[dependency]] table on `contract` ("name@major"), from bundle `from` when it is not empty.
std::string dependency(std::string_view contract, std::string_view from = {}) {
    std::string table = "[[dependency]]\ncontract = \"" + std::string(contract) + "\"\n";
    if (!from.empty()) table += "kind = \"bundle\"\nbundle = \"" + std::string(from) + "\"\n";
    return table + "\n";
}

/// A manifest for bundle `name`, parsed from the same text make_bundle writes.
polyplug::manifest bundle(const std::string& name, const std::string& extra = {},
                          const std::string& tables = {}) {
    const std::string text = "id = \"" + polyplug::format_id(polyplug::bundle_id(name)) +
                             "\"\nname = \"" + name +
                             "\"\nversion = \"1.0.0\"\nloader = \"native\"\nfile = \"lib" + name +
                             ".so\"\n" + extra + "\n" + tables;
    polyplug::manifest m;
    const polyplug::status parsed = polyplug::parse_manifest(text, name, m);
    INFO(parsed.message());
    REQUIRE(parsed.ok());
    return m;
}

std::vector<std::string> names_of(const std::vector<polyplug::manifest>& bundles) {
    std::vector<std::string> names;
    for (const polyplug::manifest& m : bundles) names.push_back(m.name);
    return names;
}

/// The names of `bundles` in the order `indices` gives.
std::vector<std::string> names_in(const std::vector<polyplug::manifest>& bundles,
                                  const std::vector<std::size_t>& indices) {
    std::vector<std::string> names;
    for (const std::size_t i : indices) names.push_back(bundles.at(i).name);
    return names;
}

polyplug::discovery_result discover_in(std::initializer_list<fs::path> dirs) {
    const std::vector<fs::path> list(dirs);
    return polyplug::discover(list);
}

struct plan_outcome {
    polyplug::status result;
    polyplug::load_plan plan;
};

plan_outcome plan(const std::vector<polyplug::manifest>& bundles,
                  const std::vector<polyplug::manifest>& loaded = {}) {
    plan_outcome outcome;
    // Stale content must not survive a call: the plan is filled from scratch.
    outcome.plan.order = {99};
    outcome.plan.problems = {"stale"};
    outcome.result = polyplug::plan_load_order(bundles, loaded, outcome.plan);
    return outcome;
}

/// Where `name` is in `order`.
std::size_t position(const std::vector<std::string>& order, std::string_view name) {
    const auto found = std::find(order.begin(), order.end(), name);
    REQUIRE(found != order.end());
    return static_cast<std::size_t>(found - order.begin());
}

}  // namespace

// --- discovery ----------------------------------------------------------------------------------

TEST_CASE("graph - a discovered chain is ordered providers first", "[graph]") {
    // app needs middle needs zlib: name order is the reverse of load order, so only the graph
    // can get the order right. Created on disk in yet another order.
    temp_dir root;
    make_bundle(root.path(), "middle", "", provides({"chain.middle@1"}),
                dependency("chain.zlib@1"));
    make_bundle(root.path(), "app", "", {}, dependency("chain.middle@1"));
    make_bundle(root.path(), "zlib", "", provides({"chain.zlib@1"}));

    const polyplug::discovery_result found = discover_in({root.path()});
    CHECK(found.diagnostics.empty());
    REQUIRE(names_of(found.bundles) == std::vector<std::string>{"app", "middle", "zlib"});
    CHECK(found.bundles[0].dir == root.path() / "app");
    CHECK(found.bundles[0].path == root.path() / "app" / "manifest.toml");

    const plan_outcome planned = plan(found.bundles);
    INFO(planned.result.message());
    REQUIRE(planned.result.ok());
    CHECK(planned.plan.problems.empty());
    CHECK(names_in(found.bundles, planned.plan.order) ==
          std::vector<std::string>{"zlib", "middle", "app"});
}

TEST_CASE("graph - independent bundles are discovered and ordered by name", "[graph]") {
    temp_dir root;
    for (const char* name : {"delta", "alpha", "charlie", "bravo"}) {
        make_bundle(root.path(), name, "");
    }
    const polyplug::discovery_result found = discover_in({root.path()});
    CHECK(found.diagnostics.empty());
    CHECK(names_of(found.bundles) ==
          std::vector<std::string>{"alpha", "bravo", "charlie", "delta"});
    CHECK(discover_in({root.path()}).bundles == found.bundles);

    const plan_outcome planned = plan(found.bundles);
    REQUIRE(planned.result.ok());
    CHECK(planned.plan.order == std::vector<std::size_t>{0, 1, 2, 3});
}

TEST_CASE("graph - bundles sort by manifest name, not by directory name", "[graph]") {
    temp_dir root;
    // The manifest says "zeta" in directory "a_dir", "alpha" in "z_dir".
    write_file(root.path() / "a_dir" / "manifest.toml",
               "id = \"" + polyplug::format_id(polyplug::bundle_id("zeta")) +
                   "\"\nname = \"zeta\"\nloader = \"native\"\nfile = \"libzeta.so\"\n");
    write_file(root.path() / "z_dir" / "manifest.toml",
               "id = \"" + polyplug::format_id(polyplug::bundle_id("alpha")) +
                   "\"\nname = \"alpha\"\nloader = \"native\"\nfile = \"libalpha.so\"\n");
    const polyplug::discovery_result found = discover_in({root.path()});
    CHECK(found.diagnostics.empty());
    REQUIRE(names_of(found.bundles) == std::vector<std::string>{"alpha", "zeta"});
    CHECK(found.bundles[0].dir == root.path() / "z_dir");
}

TEST_CASE("graph - flat files, directories without a manifest and nested bundles are ignored",
          "[graph]") {
    temp_dir root;
    make_bundle(root.path(), "real", "");
    write_file(root.path() / "README.txt", "not a bundle");
    // A manifest.toml directly in the plugin directory is a flat file, not a bundle.
    write_file(root.path() / "manifest.toml", "this would not even parse = = =");
    fs::create_directories(root.path() / "empty");
    // A grandchild bundle: only immediate subdirectories are candidates.
    make_bundle(root.path() / "group", "nested", "");

    const polyplug::discovery_result found = discover_in({root.path()});
    CHECK(found.diagnostics.empty());
    CHECK(names_of(found.bundles) == std::vector<std::string>{"real"});
}

TEST_CASE("graph - a malformed manifest is a diagnostic and the good bundles are still returned",
          "[graph]") {
    temp_dir root;
    make_bundle(root.path(), "good_one", "");
    write_file(root.path() / "broken" / "manifest.toml", "name = = \"broken\"\n");
    make_bundle(root.path(), "good_two", "");

    const polyplug::discovery_result found = discover_in({root.path()});
    CHECK(names_of(found.bundles) == std::vector<std::string>{"good_one", "good_two"});
    REQUIRE(found.diagnostics.size() == 1);
    const polyplug::discovery_diagnostic& d = found.diagnostics[0];
    CHECK(d.path == root.path() / "broken");
    CHECK(d.bundle == "broken");
    CHECK(d.problem.code() == errc::manifest_invalid);
    CHECK_THAT(d.problem.message(), Contains((root.path() / "broken").string()));
    CHECK_THAT(d.problem.message(), Contains("TOML syntax error"));
}

TEST_CASE("graph - a tampered manifest keeps its own error code", "[graph]") {
    temp_dir root;
    write_file(root.path() / "liar" / "manifest.toml",
               "id = \"" + polyplug::format_id(polyplug::bundle_id("someone_else")) +
                   "\"\nname = \"liar\"\nloader = \"native\"\nfile = \"libliar.so\"\n");
    const polyplug::discovery_result found = discover_in({root.path()});
    CHECK(found.bundles.empty());
    REQUIRE(found.diagnostics.size() == 1);
    CHECK(found.diagnostics[0].problem.code() == errc::bundle_tampered);
    CHECK_THAT(found.diagnostics[0].problem.message(),
               Contains((root.path() / "liar").string()) && Contains("id does not match"));
}

TEST_CASE("graph - a plugin directory that cannot be scanned is a diagnostic", "[graph]") {
    temp_dir root;
    make_bundle(root.path(), "present", "");
    fs::path bad;
    std::string problem;
    SECTION("missing") {
        bad = root.path() / "no_such_dir";
        problem = "does not exist";
    }
    SECTION("a file") {
        bad = root.path() / "plain_file";
        write_file(bad, "x");
        problem = "is not a directory";
    }

    const polyplug::discovery_result found = discover_in({bad, root.path()});
    CHECK(names_of(found.bundles) == std::vector<std::string>{"present"});
    REQUIRE(found.diagnostics.size() == 1);
    const polyplug::discovery_diagnostic& d = found.diagnostics[0];
    CHECK(d.path == bad);
    CHECK(d.bundle.empty());
    CHECK(d.problem.code() == errc::manifest_invalid);
    CHECK_THAT(d.problem.message(), Contains("'" + bad.string() + "'") && Contains(problem));
}

TEST_CASE("graph - the same bundle directory reached twice appears once", "[graph]") {
    temp_dir root;
    temp_dir other;
    make_bundle(root.path(), "once", "");
    make_bundle(root.path(), "twice", "");
    std::vector<fs::path> dirs;

    SECTION("directory listed twice") {
        dirs = {root.path(), root.path()};
    }
    SECTION("same directory spelled differently") {
        dirs = {root.path(), root.path() / "once" / ".."};
    }
    SECTION("a symlink in another plugin directory") {
        fs::create_directory_symlink(root.path() / "once", other.path() / "alias");
        dirs = {root.path(), other.path()};
    }
    SECTION("a symlink beside its target") {
        fs::create_directory_symlink(root.path() / "once", root.path() / "z_alias");
        dirs = {root.path()};
    }
    const polyplug::discovery_result found = polyplug::discover(dirs);
    CHECK(found.diagnostics.empty());
    CHECK(names_of(found.bundles) == std::vector<std::string>{"once", "twice"});
    CHECK(found.bundles[0].dir == root.path() / "once");
}

TEST_CASE("graph - symlinked bundle directories are followed", "[graph]") {
    temp_dir root;
    temp_dir elsewhere;
    const fs::path target = make_bundle(elsewhere.path(), "linked", "");
    fs::create_directory_symlink(target, root.path() / "linked");
    const polyplug::discovery_result found = discover_in({root.path()});
    CHECK(found.diagnostics.empty());
    REQUIRE(names_of(found.bundles) == std::vector<std::string>{"linked"});
    CHECK(found.bundles[0].dir == root.path() / "linked");
}

TEST_CASE("graph - a bundle name found twice keeps the first and reports the second", "[graph]") {
    temp_dir first;
    temp_dir second;
    make_bundle(first.path(), "shared", "");
    make_bundle(second.path(), "shared", "");
    make_bundle(second.path(), "unique", "");

    const polyplug::discovery_result found = discover_in({first.path(), second.path()});
    REQUIRE(names_of(found.bundles) == std::vector<std::string>{"shared", "unique"});
    CHECK(found.bundles[0].dir == first.path() / "shared");
    REQUIRE(found.diagnostics.size() == 1);
    const polyplug::discovery_diagnostic& d = found.diagnostics[0];
    CHECK(d.path == second.path() / "shared");
    CHECK(d.bundle == "shared");
    CHECK(d.problem.code() == errc::manifest_invalid);
    CHECK(d.problem.message() == "bundle 'shared' in '" + (second.path() / "shared").string() +
                                     "' has the same name as '" +
                                     (first.path() / "shared").string() + "'");
}

// --- load order ---------------------------------------------------------------------------------

TEST_CASE("graph - a requirement without a provider is unsatisfied", "[graph]") {
    const std::string missing_id = polyplug::format_id(polyplug::guest_contract_id("svc.gone", 1));
    const std::vector<polyplug::manifest> bundles{
        bundle("provider", provides({"svc.here@1"})),
        bundle("consumer", {}, dependency("svc.here@1") + dependency("svc.gone@1")),
    };
    const plan_outcome planned = plan(bundles);
    CHECK(planned.result.code() == errc::unsatisfied_dependency);
    CHECK(planned.plan.order.empty());
    const std::string line = "bundle 'consumer' requires contract 'svc.gone@1' (" + missing_id +
                             ") but no bundle provides it";
    CHECK(planned.plan.problems == std::vector<std::string>{line});
    CHECK_THAT(planned.result.message(), Contains("\n" + line));
}

TEST_CASE("graph - every unsatisfied requirement is reported at once", "[graph]") {
    const std::vector<polyplug::manifest> bundles{
        bundle("first", {}, dependency("svc.a@1") + dependency("svc.a@1")),  // listed twice
        bundle("second", {}, dependency("svc.b@2")),
        // A cycle as well: unsatisfied requirements are reported before cycles.
        bundle("ping", provides({"svc.ping@1"}), dependency("svc.pong@1")),
        bundle("pong", provides({"svc.pong@1"}), dependency("svc.ping@1")),
    };
    const plan_outcome planned = plan(bundles);
    CHECK(planned.result.code() == errc::unsatisfied_dependency);
    CHECK(planned.plan.order.empty());
    REQUIRE(planned.plan.problems.size() == 2);
    CHECK_THAT(planned.plan.problems[0], StartsWith("bundle 'first' requires contract 'svc.a@1'"));
    CHECK_THAT(planned.plan.problems[1], StartsWith("bundle 'second' requires contract 'svc.b@2'"));
    CHECK(planned.result.message() ==
          "cannot order the bundles: 2 requirements have no provider\n" + planned.plan.problems[0] +
              "\n" + planned.plan.problems[1]);
}

TEST_CASE("graph - a dependency naming a bundle needs that bundle to provide the contract",
          "[graph]") {
    SECTION("satisfied by the named bundle, which loads first") {
        const std::vector<polyplug::manifest> bundles{
            bundle("consumer", {}, dependency("svc.log@1", "chosen")),
            bundle("other", provides({"svc.log@1"})),
            bundle("chosen", provides({"svc.log@1"})),
        };
        const plan_outcome planned = plan(bundles);
        INFO(planned.result.message());
        REQUIRE(planned.result.ok());
        // Only "chosen" is waited for; "other" provides the contract but was not asked for.
        CHECK(planned.plan.order == std::vector<std::size_t>{1, 2, 0});
    }
    SECTION("the named bundle does not provide it") {
        const std::vector<polyplug::manifest> bundles{
            bundle("consumer", {}, dependency("svc.log@1", "chosen")),
            bundle("other", provides({"svc.log@1"})),
            bundle("chosen", provides({"svc.log@2"})),
        };
        const plan_outcome planned = plan(bundles);
        CHECK(planned.result.code() == errc::unsatisfied_dependency);
        CHECK(planned.plan.order.empty());
        CHECK_THAT(planned.result.message(),
                   Contains("bundle 'consumer' requires contract 'svc.log@1'") &&
                       Contains("from bundle 'chosen', which does not provide it"));
    }
    SECTION("the named bundle is not there") {
        const std::vector<polyplug::manifest> bundles{
            bundle("consumer", {}, dependency("svc.log@1", "chosen")),
            bundle("other", provides({"svc.log@1"})),
        };
        const plan_outcome planned = plan(bundles);
        CHECK(planned.result.code() == errc::unsatisfied_dependency);
        CHECK_THAT(planned.result.message(),
                   Contains("from bundle 'chosen', which is not among the bundles"));
    }
}

TEST_CASE("graph - already loaded bundles count as providers", "[graph]") {
    const std::vector<polyplug::manifest> loaded{
        // Its own requirement is nobody's business any more: it is loaded.
        bundle("base", provides({"svc.base@1"}), dependency("svc.nowhere@1")),
    };
    SECTION("by contract") {
        const std::vector<polyplug::manifest> bundles{
            bundle("consumer", {}, dependency("svc.base@1")),
        };
        const plan_outcome planned = plan(bundles, loaded);
        INFO(planned.result.message());
        REQUIRE(planned.result.ok());
        CHECK(planned.plan.order == std::vector<std::size_t>{0});
        CHECK(plan(bundles).result.code() == errc::unsatisfied_dependency);
    }
    SECTION("by bundle") {
        const std::vector<polyplug::manifest> bundles{
            bundle("consumer", {}, dependency("svc.base@1", "base")),
        };
        const plan_outcome planned = plan(bundles, loaded);
        INFO(planned.result.message());
        REQUIRE(planned.result.ok());
        CHECK(planned.plan.order == std::vector<std::size_t>{0});
    }
}

TEST_CASE("graph - a two-bundle cycle names both bundles", "[graph]") {
    const std::vector<polyplug::manifest> bundles{
        bundle("b", provides({"svc.b@1"}), dependency("svc.a@1")),
        bundle("a", provides({"svc.a@1"}), dependency("svc.b@1")),
    };
    const plan_outcome planned = plan(bundles);
    CHECK(planned.result.code() == errc::dependency_cycle);
    CHECK(planned.plan.order.empty());
    CHECK(planned.plan.problems == std::vector<std::string>{"dependency cycle between 'a', 'b'"});
    CHECK(planned.result.message() ==
          "cannot order the bundles: 1 dependency cycle\ndependency cycle between 'a', 'b'");
}

TEST_CASE("graph - a three-bundle cycle names every participant", "[graph]") {
    const std::vector<polyplug::manifest> bundles{
        bundle("outsider", {}, dependency("svc.c@1")),  // needs the cycle but is not part of it
        bundle("c", provides({"svc.c@1"}), dependency("svc.a@1")),
        bundle("free", provides({"svc.free@1"})),
        bundle("a", provides({"svc.a@1"}), dependency("svc.b@1")),
        bundle("b", provides({"svc.b@1"}), dependency("svc.c@1")),
    };
    const plan_outcome planned = plan(bundles);
    CHECK(planned.result.code() == errc::dependency_cycle);
    CHECK(planned.plan.order.empty());
    CHECK(planned.plan.problems ==
          std::vector<std::string>{"dependency cycle between 'a', 'b', 'c'"});
    CHECK_THAT(planned.result.message(), Contains("dependency cycle between 'a', 'b', 'c'"));
}

TEST_CASE("graph - separate cycles are all reported", "[graph]") {
    const std::vector<polyplug::manifest> bundles{
        bundle("y", provides({"svc.y@1"}), dependency("svc.x@1")),
        bundle("x", provides({"svc.x@1"}), dependency("svc.y@1")),
        bundle("q", provides({"svc.q@1"}), dependency("svc.p@1")),
        bundle("p", provides({"svc.p@1"}), dependency("svc.q@1")),
    };
    const plan_outcome planned = plan(bundles);
    CHECK(planned.result.code() == errc::dependency_cycle);
    CHECK(planned.plan.problems == std::vector<std::string>{"dependency cycle between 'p', 'q'",
                                                            "dependency cycle between 'x', 'y'"});
    CHECK_THAT(planned.result.message(),
               StartsWith("cannot order the bundles: 2 dependency cycles"));
}

TEST_CASE("graph - a bundle depending on its own contract is not a cycle", "[graph]") {
    const std::vector<polyplug::manifest> bundles{
        bundle("user", {}, dependency("svc.self@1")),
        bundle("selfish", provides({"svc.self@1"}),
               dependency("svc.self@1") + dependency("svc.self@1", "selfish")),
    };
    const plan_outcome planned = plan(bundles);
    INFO(planned.result.message());
    REQUIRE(planned.result.ok());
    CHECK(planned.plan.order == std::vector<std::size_t>{1, 0});
}

TEST_CASE("graph - every provider of a contract loads before its consumer", "[graph]") {
    const std::vector<polyplug::manifest> bundles{
        bundle("consumer", {}, dependency("svc.codec@1")),
        bundle("codec_png", provides({"svc.codec@1"})),
        bundle("unrelated"),
        bundle("codec_jpg", provides({"svc.codec@1"}), dependency("svc.base@1")),
        bundle("base", provides({"svc.base@1"})),
    };
    const plan_outcome planned = plan(bundles);
    INFO(planned.result.message());
    REQUIRE(planned.result.ok());
    const std::vector<std::string> order = names_in(bundles, planned.plan.order);
    // Ties go by input order: ready bundles load in the order they were given.
    CHECK(order ==
          std::vector<std::string>{"codec_png", "unrelated", "base", "codec_jpg", "consumer"});
    CHECK(position(order, "codec_jpg") < position(order, "consumer"));
    CHECK(position(order, "codec_png") < position(order, "consumer"));
}

TEST_CASE("graph - an empty set of bundles has an empty order", "[graph]") {
    const plan_outcome planned = plan({});
    CHECK(planned.result.ok());
    CHECK(planned.plan.order.empty());
    CHECK(planned.plan.problems.empty());
}

// --- dependents closure -------------------------------------------------------------------------

TEST_CASE("graph - dependents_closure lists dependents before what they depend on", "[graph]") {
    // top needs mid needs base; side needs base directly; loner needs nothing.
    const std::vector<polyplug::manifest> bundles{
        bundle("base", provides({"svc.base@1"})),
        bundle("loner", provides({"svc.loner@1"})),
        bundle("top", {}, dependency("svc.mid@1")),
        bundle("mid", provides({"svc.mid@1"}), dependency("svc.base@1")),
        bundle("side", {}, dependency("svc.base@1")),
    };
    const std::vector<std::string> from_base =
        names_in(bundles, polyplug::dependents_closure(bundles, 0));
    REQUIRE(from_base.size() == 3);
    CHECK(position(from_base, "top") < position(from_base, "mid"));
    CHECK(position(from_base, "side") < from_base.size());
    CHECK(names_in(bundles, polyplug::dependents_closure(bundles, 3)) ==
          std::vector<std::string>{"top"});
    CHECK(polyplug::dependents_closure(bundles, 2).empty());
    CHECK(polyplug::dependents_closure(bundles, 1).empty());
    CHECK(polyplug::dependents_closure(bundles, bundles.size()).empty());
}

TEST_CASE("graph - dependents_closure follows a diamond in a safe order", "[graph]") {
    // app needs both left and base, left needs base: app must go before left.
    const std::vector<polyplug::manifest> bundles{
        bundle("base", provides({"svc.base@1"})),
        bundle("left", provides({"svc.left@1"}), dependency("svc.base@1")),
        bundle("app", {}, dependency("svc.base@1") + dependency("svc.left@1")),
    };
    CHECK(names_in(bundles, polyplug::dependents_closure(bundles, 0)) ==
          std::vector<std::string>{"app", "left"});
}

TEST_CASE("graph - dependents_closure terminates on a cycle and excludes the target", "[graph]") {
    const std::vector<polyplug::manifest> bundles{
        bundle("a", provides({"svc.a@1"}), dependency("svc.b@1")),
        bundle("b", provides({"svc.b@1"}), dependency("svc.a@1")),
        bundle("c", {}, dependency("svc.b@1")),
    };
    std::vector<std::string> from_a = names_in(bundles, polyplug::dependents_closure(bundles, 0));
    REQUIRE(from_a.size() == 2);
    CHECK(position(from_a, "c") < position(from_a, "b"));  // c needs b
    CHECK(names_in(bundles, polyplug::dependents_closure(bundles, 1)) ==
          std::vector<std::string>{"a", "c"});
}

TEST_CASE("graph - dependents_closure ignores a dependency that names another bundle", "[graph]") {
    const std::vector<polyplug::manifest> bundles{
        bundle("first", provides({"svc.log@1"})),
        bundle("second", provides({"svc.log@1"})),
        bundle("picky", {}, dependency("svc.log@1", "second")),
        bundle("any", {}, dependency("svc.log@1")),
    };
    CHECK(names_in(bundles, polyplug::dependents_closure(bundles, 0)) ==
          std::vector<std::string>{"any"});
    const std::vector<std::string> from_second =
        names_in(bundles, polyplug::dependents_closure(bundles, 1));
    CHECK(from_second == std::vector<std::string>{"picky", "any"});
}
