// SPDX-License-Identifier: MIT
/// @file manifest.cpp
/// Tests for manifest.hpp: every spec 9.8 rule, id spellings, writing, and artifact resolution.
#include <polyplug/detail/manifest_cache.hpp>
#include <polyplug/manifest.hpp>

#include "catch.hpp"
#include "support.hpp"

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using polyplug::errc;

using test_support::temp_dir;
using test_support::write_file;

namespace {

constexpr std::string_view source_name = "test/manifest.toml";

/// A valid manifest for the bundle "my_plugin", one line per required key so that a test can
/// drop or replace one. `extra` holds more top-level keys, `tables` what must come after them.
struct manifest_source {
    std::string id = "id = \"" + polyplug::format_id(polyplug::bundle_id("my_plugin")) + "\"";
    std::string name = "name = \"my_plugin\"";
    std::string loader = "loader = \"native\"";
    std::string file = "file = \"libmy_plugin.so\"";
    std::string extra;
    std::string tables;

    [[nodiscard]] std::string text() const {
        std::string out;
        for (const std::string* line : {&id, &name, &loader, &file, &extra, &tables}) {
            if (!line->empty()) out += *line + "\n";
        }
        return out;
    }
};

struct parse_outcome {
    polyplug::status result;
    polyplug::manifest m;
};

parse_outcome parse(const std::string& text) {
    parse_outcome outcome;
    outcome.result = polyplug::parse_manifest(text, source_name, outcome.m);
    return outcome;
}

parse_outcome parse(const manifest_source& source) {
    return parse(source.text());
}

/// The bundle-level prefix every message carries once the name has been read.
const std::string bundle_prefix = "bundle 'my_plugin': ";

std::string platform() {
    return std::string(polyplug::current_platform_os()) + "." +
           std::string(polyplug::current_platform_arch());
}

/// A fresh, uniquely named directory under the system temp directory, removed with its content.
/// `text` padded with a trailing comment to exactly `size` bytes (still a valid manifest).
std::string padded_to(std::string text, std::size_t size) {
    REQUIRE(text.size() + 2 <= size);
    text += "#" + std::string(size - text.size() - 2, 'x') + "\n";
    REQUIRE(text.size() == size);
    return text;
}

}  // namespace

// --- the valid case -----------------------------------------------------------------------------

TEST_CASE("manifest - the generated example of spec 9.8 parses with every field", "[manifest]") {
    // The spec's example verbatim, with the three platforms it leaves out added to [file].
    const std::string text = R"(
id = 6083502456968126439            # fnv1a64("my_plugin") = 0x546CF140B9CD1FE7
name = "my_plugin"
version = "1.0.0"
loader = "native"
provides = ["pipeline.Decoder@1"]
function_count = { "pipeline.Decoder@1" = 1 }
needs_reinit_on_dep_reload = false
bundle_dependencies = []

[file]
linux.x86_64   = "libmy_plugin.so"
macos.aarch64  = "libmy_plugin.dylib"
windows.x86_64 = "my_plugin.dll"
linux.aarch64  = "aarch64/libmy_plugin.so"
macos.x86_64   = "x86_64/libmy_plugin.dylib"
windows.aarch64 = "arm64/my_plugin.dll"

[[dependency]]
kind = "contract"
contract = "pipeline.Validator"
min_version = "1.0"
contract_id = 4978512327372199877 # guest_contract_id("pipeline.Validator", 1) = 0x45173A959EEC57C5
)";
    const std::map<std::string, std::string> file_by_platform = {
        {"linux.x86_64", "libmy_plugin.so"},           {"macos.aarch64", "libmy_plugin.dylib"},
        {"windows.x86_64", "my_plugin.dll"},           {"linux.aarch64", "aarch64/libmy_plugin.so"},
        {"macos.x86_64", "x86_64/libmy_plugin.dylib"}, {"windows.aarch64", "arm64/my_plugin.dll"}};

    const parse_outcome parsed = parse(text);
    INFO(parsed.result.message());
    REQUIRE(parsed.result.ok());
    const polyplug::manifest& m = parsed.m;

    CHECK(m.id == 0x546CF140B9CD1FE7u);
    CHECK(m.name == "my_plugin");
    CHECK(m.version_text == "1.0.0");
    CHECK(m.version == polyplug::version{1, 0, 0});
    CHECK(m.loader == "native");
    CHECK(m.file == file_by_platform.at(platform()));

    REQUIRE(m.provides.size() == 1);
    CHECK(m.provides[0].name == "pipeline.Decoder");
    CHECK(m.provides[0].major == 1);
    CHECK_FALSE(m.provides[0].version.has_value());
    CHECK(m.provides[0].contract_id == 0xE1D7DE773BE6E7F7u);  // spec 2.4 test vector
    CHECK(m.provides[0].key() == "pipeline.Decoder@1");

    CHECK(m.function_count == std::map<std::string, std::uint32_t>{{"pipeline.Decoder@1", 1}});
    CHECK_FALSE(m.needs_reinit_on_dep_reload);
    CHECK(m.bundle_dependencies.empty());

    REQUIRE(m.dependencies.size() == 1);
    const polyplug::manifest_dependency& dep = m.dependencies[0];
    CHECK(dep.kind == polyplug::dependency_kind::contract);
    CHECK(dep.contract == "pipeline.Validator");
    CHECK(dep.min_version == "1.0");
    CHECK(dep.major == 1);
    CHECK(dep.contract_id == 0x45173A959EEC57C5u);
    CHECK(dep.bundle.empty());
    CHECK(dep.bundle_id == 0);

    CHECK(m.dir.empty());  // only read_manifest knows where the text came from
    CHECK(m.path.empty());
}

TEST_CASE("manifest - find_provided looks up a provided contract by bare name", "[manifest]") {
    manifest_source source;
    source.extra = R"(provides = ["a.first@1", "a.second@2"])";
    const parse_outcome parsed = parse(source);
    REQUIRE(parsed.result.ok());

    const polyplug::provided_contract* second = parsed.m.find_provided("a.second");
    REQUIRE(second != nullptr);
    CHECK(second->major == 2);
    CHECK(parsed.m.find_provided("a.second@2") == nullptr);  // bare names only
    CHECK(parsed.m.find_provided("a.third") == nullptr);
}

// --- id -----------------------------------------------------------------------------------------

TEST_CASE("manifest - id may be an integer, a hex string or a decimal string", "[manifest]") {
    manifest_source source;
    SECTION("TOML integer") {
        source.id = "id = 6083502456968126439";
    }
    SECTION("lowercase hex string") {
        source.id = R"(id = "0x546cf140b9cd1fe7")";
    }
    SECTION("uppercase hex string") {
        source.id = R"(id = "0X546CF140B9CD1FE7")";
    }
    SECTION("decimal string") {
        source.id = R"(id = "6083502456968126439")";
    }

    const parse_outcome parsed = parse(source);
    INFO(parsed.result.message());
    REQUIRE(parsed.result.ok());
    CHECK(parsed.m.id == polyplug::bundle_id("my_plugin"));
}

TEST_CASE("manifest - an id with bit 63 set loads as a negative integer or a string",
          "[manifest]") {
    // TOML integers stop at 2^63 - 1, so half of all bundle names need another spelling.
    // The number leads: FNV-1a carries a change in the last bytes only up to about bit 56, so
    // "bundle-0".."bundle-99" all have bit 63 clear, while about half of these have it set.
    std::string name;
    for (int i = 0; i < 100 && name.empty(); ++i) {
        const std::string candidate = std::to_string(i) + "-bundle";
        if (polyplug::bundle_id(candidate) >> 63u) name = candidate;
    }
    REQUIRE_FALSE(name.empty());
    const std::uint64_t id = polyplug::bundle_id(name);

    manifest_source source;
    source.name = "name = \"" + name + "\"";
    SECTION("negative integer: the u64's two's complement") {
        source.id = "id = " + std::to_string(static_cast<std::int64_t>(id));
        REQUIRE(source.id.find('-') != std::string::npos);
    }
    SECTION("hex string") {
        source.id = "id = \"" + polyplug::format_id(id) + "\"";
    }
    SECTION("decimal string above 2^63 - 1") {
        source.id = "id = \"" + std::to_string(id) + "\"";
    }

    const parse_outcome parsed = parse(source);
    INFO(parsed.result.message());
    REQUIRE(parsed.result.ok());
    CHECK(parsed.m.id == id);
    CHECK(parsed.m.name == name);
}

// The original's manifests write ids as bare decimal integers, above TOML's 2^63 - 1 for half of
// all names (issue 21): `id = 11175554700064995833`.
namespace {

/// A real bundle name whose id has bit 63 set, so it is written above 2^63 - 1.
std::string top_bit_name(const std::string& name) {
    INFO(name);
    REQUIRE(polyplug::bundle_id(name) >> 63u);
    return name;
}

/// `name`'s manifest with `id` written as the bare decimal integer `id_text`.
manifest_source wide_id_source(const std::string& name, const std::string& id_text) {
    manifest_source source;
    source.name = "name = \"" + name + "\"";
    source.id = "id = " + id_text;
    return source;
}

}  // namespace

TEST_CASE("manifest - an id above 2^63 - 1 written as a bare decimal integer reads as that u64",
          "[manifest]") {
    // Two names of this repository: the C example bundle and the test fixture.
    const std::string name = GENERATE(as<std::string>{}, "c-calc", "fixture_adder");
    const std::uint64_t id = polyplug::bundle_id(top_bit_name(name));
    const std::string comment = GENERATE(as<std::string>{}, "", "  # fnv1a64(name)", "\t");

    const parse_outcome parsed = parse(wide_id_source(name, std::to_string(id) + comment));
    INFO(parsed.result.message());
    REQUIRE(parsed.result.ok());
    CHECK(parsed.m.id == id);
    CHECK(parsed.m.name == name);
    // Written back as a "0x..." string, it reads back the same.
    polyplug::manifest again;
    REQUIRE(polyplug::parse_manifest(polyplug::write_manifest(parsed.m), source_name, again).ok());
    CHECK(again == parsed.m);
}

TEST_CASE("manifest - a wide decimal id that is not the name's hash is tampering", "[manifest]") {
    const std::string name = top_bit_name("c-calc");
    const std::uint64_t id = polyplug::bundle_id(name);
    SECTION("one off") {
        const parse_outcome parsed = parse(wide_id_source(name, std::to_string(id - 1)));
        CHECK(parsed.result.code() == errc::bundle_tampered);
        CHECK(parsed.result.message() ==
              "bundle 'c-calc': id does not match the bundle name (expected " +
                  polyplug::format_id(id) + " = bundle_id(\"c-calc\"), found " +
                  polyplug::format_id(id - 1) + ")");
    }
    SECTION("the original's own literal, read as the u64 it spells") {
        const parse_outcome parsed = parse(wide_id_source(name, "11175554700064995833"));
        CHECK(parsed.result.code() == errc::bundle_tampered);
        CHECK_THAT(parsed.result.message(), Contains("found 0x9b178bca015239f9"));
    }
    SECTION("2^64 - 1") {
        const parse_outcome parsed = parse(wide_id_source(name, "18446744073709551615"));
        CHECK(parsed.result.code() == errc::bundle_tampered);
        CHECK_THAT(parsed.result.message(), Contains("found 0xffffffffffffffff"));
    }
}

TEST_CASE("manifest - only bare decimal ids up to 2^64 - 1 are widened; the rest stays refused",
          "[manifest]") {
    const std::string name = top_bit_name("c-calc");
    const std::string id = std::to_string(polyplug::bundle_id(name));
    manifest_source source = wide_id_source(name, id);
    std::string expected;  // the start of the message after "manifest '...': " or the bundle's
    SECTION("2^64 is above every id") {
        source.id = "id = 18446744073709551616";
        expected =
            "bundle 'c-calc': key 'id' is 18446744073709551616, above 18446744073709551615 "
            "(2^64 - 1), the largest 64-bit id";
    }
    SECTION("far above, cut in the message") {
        source.id = "id = " + std::string(100, '9');
        expected = "bundle 'c-calc': key 'id' is " + std::string(40, '9') + "..., above";
    }
    SECTION("negative, beyond -2^63") {
        source.id = "id = -" + id;
        expected =
            "manifest 'test/manifest.toml': TOML syntax error at line 1, column 27: Error "
            "while parsing decimal integer: '" +
            id + "' is not representable in 64 bits";
    }
    SECTION("with a plus sign") {
        source.id = "id = +" + id;
        expected = "manifest 'test/manifest.toml': TOML syntax error at line 1, column 27";
    }
    SECTION("with underscores") {
        source.id = "id = 17_091_147_713_653_863_884";
        expected = "manifest 'test/manifest.toml': TOML syntax error at line 1";
    }
    SECTION("any other key") {
        source.extra = "big = " + id;
        expected = "manifest 'test/manifest.toml': TOML syntax error at line 5, column 27";
    }
    SECTION("a function count") {
        source.extra = "function_count = { \"a@1\" = " + id + " }";
        expected = "manifest 'test/manifest.toml': TOML syntax error at line 5";
    }
    SECTION("an id key in a table that is not [[dependency]]") {
        source.tables = "[extra]\nid = " + id;
        expected = "manifest 'test/manifest.toml': TOML syntax error at line 6, column 26";
    }
    SECTION("an id in an inline table") {
        source.extra = "dependency = [{ contract = \"a@1\", bundle_id = " + id + " }]";
        expected = "manifest 'test/manifest.toml': TOML syntax error at line 5";
    }
    SECTION("followed by more than a comment: columns stay those of the text") {
        source.id = "id = " + id + " x";
        expected = "manifest 'test/manifest.toml': TOML syntax error at line 1, column 27";
    }
    SECTION("a float written in the manifest stays a wrong type") {
        source.id = "id = nan";
        expected =
            "bundle 'c-calc': key 'id' must be an integer or a \"0x...\" / decimal string, "
            "found a float";
    }
    const parse_outcome parsed = parse(source);
    CHECK_FALSE(parsed.result.ok());
    CHECK(parsed.result.code() == errc::manifest_invalid);
    CHECK_THAT(parsed.result.message(), StartsWith(expected));
}

TEST_CASE("manifest - dependency ids above 2^63 - 1 as bare decimal integers", "[manifest]") {
    const std::string provider = top_bit_name("fixture_adder");
    const std::uint64_t provider_id = polyplug::bundle_id(provider);
    // A contract whose id has bit 63 set.
    std::string contract;
    for (int i = 0; i < 100 && contract.empty(); ++i) {
        const std::string candidate = "svc.wide" + std::to_string(i);
        if (polyplug::guest_contract_id(candidate, 1) >> 63u) contract = candidate;
    }
    REQUIRE_FALSE(contract.empty());
    const std::uint64_t contract_id = polyplug::guest_contract_id(contract, 1);

    manifest_source source;
    source.tables = "[[dependency]]\nkind = \"bundle\"\ncontract = \"" + contract +
                    "@1\"\nbundle = \"" + provider + "\"\n";
    SECTION("both match") {
        source.tables += "contract_id = " + std::to_string(contract_id) +
                         "\nbundle_id = " + std::to_string(provider_id) +
                         "  # bundle_id(\"fixture_adder\")\n";
        const parse_outcome parsed = parse(source);
        INFO(parsed.result.message());
        REQUIRE(parsed.result.ok());
        REQUIRE(parsed.m.dependencies.size() == 1);
        CHECK(parsed.m.dependencies[0].contract_id == contract_id);
        CHECK(parsed.m.dependencies[0].bundle_id == provider_id);
    }
    SECTION("a bundle_id that does not match") {
        source.tables += "bundle_id = " + std::to_string(provider_id + 1) + "\n";
        const parse_outcome parsed = parse(source);
        CHECK(parsed.result.code() == errc::manifest_invalid);
        CHECK_THAT(parsed.result.message(),
                   Contains("key 'dependency[0].bundle_id' does not match bundle_id(\"" + provider +
                            "\")"));
    }
    SECTION("a contract_id that does not match") {
        source.tables += "contract_id = " + std::to_string(contract_id ^ 1u) + "\n";
        const parse_outcome parsed = parse(source);
        CHECK(parsed.result.code() == errc::manifest_invalid);
        CHECK_THAT(parsed.result.message(), Contains("key 'dependency[0].contract_id' does not"));
    }
    SECTION("above 2^64 - 1") {
        source.tables += "contract_id = 18446744073709551616\n";
        const parse_outcome parsed = parse(source);
        CHECK(parsed.result.code() == errc::manifest_invalid);
        CHECK_THAT(parsed.result.message(),
                   Contains("key 'dependency[0].contract_id' is 18446744073709551616, above"));
    }
}

TEST_CASE("manifest - an id that is not the name's hash is tampering", "[manifest]") {
    manifest_source source;
    source.id = R"(id = "0x0000000000000001")";
    SECTION("alone") {}
    SECTION("reported before any other problem") {
        source.loader.clear();
    }

    const parse_outcome parsed = parse(source);
    CHECK(parsed.result.code() == errc::bundle_tampered);
    CHECK_THAT(parsed.result.message(), StartsWith(bundle_prefix));
    CHECK_THAT(parsed.result.message(),
               Contains("expected " + polyplug::format_id(polyplug::bundle_id("my_plugin"))));
    CHECK_THAT(parsed.result.message(), Contains("found 0x0000000000000001"));
}

TEST_CASE("manifest - id is required and must not be 0", "[manifest]") {
    manifest_source source;
    SECTION("missing") {
        source.id.clear();
    }
    SECTION("integer 0") {
        source.id = "id = 0";
    }
    SECTION("hex 0") {
        source.id = R"(id = "0x0")";
    }

    const parse_outcome parsed = parse(source);
    CHECK(parsed.result.code() == errc::manifest_invalid);  // not bundle_tampered
    CHECK_THAT(parsed.result.message(), StartsWith(bundle_prefix));
    CHECK_THAT(parsed.result.message(), Contains("'id'"));
}

TEST_CASE("manifest - an id that cannot be read as a u64 is refused naming the key", "[manifest]") {
    const char* const spelling = GENERATE(R"(1.5)",                     // float
                                          R"(true)",                    // boolean
                                          R"([1])",                     // array
                                          R"("")",                      // empty string
                                          R"("0x")",                    // no digits
                                          R"("0xZZ")",                  // not hex
                                          R"("0x1ffffffffffffffff")",   // 17 digits
                                          R"("0x0546cf140b9cd1fe7")",   // 17, even if it fits
                                          R"("18446744073709551616")",  // 2^64
                                          R"("-5")",                    // no sign in strings
                                          R"(" 6083502456968126439")",  // no spaces
                                          R"("6083502456968126439u")");
    CAPTURE(spelling);
    manifest_source source;
    source.id = std::string("id = ") + spelling;
    const parse_outcome parsed = parse(source);
    CHECK(parsed.result.code() == errc::manifest_invalid);
    CHECK_THAT(parsed.result.message(), Contains("'id'"));
}

// --- name, loader, file -------------------------------------------------------------------------

TEST_CASE("manifest - name, loader and file are required non-empty strings", "[manifest]") {
    manifest_source source;
    std::string key;
    SECTION("name missing") {
        key = "name";
        source.name.clear();
    }
    SECTION("name empty") {
        key = "name";
        source.name = R"(name = "")";
    }
    SECTION("name not a string") {
        key = "name";
        source.name = "name = 5";
    }
    SECTION("loader missing") {
        key = "loader";
        source.loader.clear();
    }
    SECTION("loader empty") {
        key = "loader";
        source.loader = R"(loader = "")";
    }
    SECTION("loader not a string") {
        key = "loader";
        source.loader = "loader = true";
    }
    SECTION("file missing") {
        key = "file";
        source.file.clear();
    }
    SECTION("file empty") {
        key = "file";
        source.file = R"(file = "")";
    }
    SECTION("file neither string nor table") {
        key = "file";
        source.file = "file = 3";
    }

    const parse_outcome parsed = parse(source);
    CHECK(parsed.result.code() == errc::manifest_invalid);
    CHECK_THAT(parsed.result.message(), Contains("'" + key + "'"));
    // Until the name is read the file is all a message can point at.
    CHECK_THAT(parsed.result.message(),
               StartsWith(key == "name" ? "manifest 'test/manifest.toml': " : bundle_prefix));
}

TEST_CASE("manifest - a wrong type names the key and the type expected", "[manifest]") {
    manifest_source source;
    source.loader = "loader = 5";
    const parse_outcome parsed = parse(source);
    CHECK(parsed.result.code() == errc::manifest_invalid);
    CHECK(parsed.result.message() ==
          bundle_prefix + "key 'loader' must be a string, found an integer");
}

TEST_CASE("manifest - the legacy runtime key names the loader", "[manifest]") {
    manifest_source source;
    SECTION("runtime alone") {
        source.loader = R"(runtime = "lua")";
        const parse_outcome parsed = parse(source);
        REQUIRE(parsed.result.ok());
        CHECK(parsed.m.loader == "lua");
    }
    SECTION("loader wins over runtime") {
        source.extra = R"(runtime = "lua")";
        const parse_outcome parsed = parse(source);
        REQUIRE(parsed.result.ok());
        CHECK(parsed.m.loader == "native");
    }
    SECTION("an empty runtime is refused like an empty loader") {
        source.loader = R"(runtime = "")";
        const parse_outcome parsed = parse(source);
        CHECK(parsed.result.code() == errc::manifest_invalid);
        CHECK_THAT(parsed.result.message(), Contains("'runtime'"));
    }
}

TEST_CASE("manifest - a file table selects the running platform's artifact", "[manifest]") {
    std::string dotted;    // file.linux.x86_64 = "linux-x86_64.bin", at the top level
    std::string relative;  // linux.x86_64 = "linux-x86_64.bin", inside [file]
    for (const std::string os : {"linux", "windows", "macos"}) {
        for (const std::string arch : {"x86_64", "aarch64"}) {
            const std::string entry = os + "." + arch + " = \"" + os + "-" + arch + ".bin\"\n";
            dotted += "file." + entry;
            relative += entry;
        }
    }
    manifest_source source;
    SECTION("dotted keys") {
        source.file = dotted;
    }
    SECTION("a [file] table, unknown platforms ignored") {
        source.file.clear();
        source.tables =
            "[file]\nfreebsd.x86_64 = \"bsd.so\"\nlinux.riscv64 = \"rv.so\"\n" + relative;
    }

    const parse_outcome parsed = parse(source);
    INFO(parsed.result.message());
    REQUIRE(parsed.result.ok());
    CHECK(parsed.m.file == std::string(polyplug::current_platform_os()) + "-" +
                               std::string(polyplug::current_platform_arch()) + ".bin");
}

TEST_CASE("manifest - a file table without the running platform is refused", "[manifest]") {
    const std::string_view os = polyplug::current_platform_os();
    const std::string other_os = os == "windows" ? "linux" : "windows";
    const std::string other_arch =
        polyplug::current_platform_arch() == "x86_64" ? "aarch64" : "x86_64";
    manifest_source source;
    SECTION("only another OS") {
        source.file = "file." + other_os + ".x86_64 = \"lib.so\"";
    }
    SECTION("this OS, another architecture") {
        source.file = "file." + std::string(os) + "." + other_arch + " = \"lib.so\"";
    }
    SECTION("an empty table") {
        source.file = "file = {}";
    }

    const parse_outcome parsed = parse(source);
    CHECK(parsed.result.code() == errc::manifest_invalid);
    CHECK(parsed.result.message() == bundle_prefix + "no file entry for platform " + platform());
}

TEST_CASE("manifest - every platform entry of a file table is type-checked", "[manifest]") {
    manifest_source source;
    std::string key;
    // Other platforms' entries too: a manifest is valid or invalid the same way everywhere.
    SECTION("an OS that is not a table") {
        key = "'file.macos'";
        source.file = "file.macos = \"lib.dylib\"\nfile." + platform() + " = \"lib.so\"";
    }
    SECTION("an entry that is not a string") {
        key = "'file.windows.aarch64'";
        source.file = "file.windows.aarch64 = 1\nfile." + platform() + " = \"lib.so\"";
    }
    SECTION("an empty entry") {
        key = "'file.macos.x86_64'";
        source.file = "file.macos.x86_64 = \"\"\nfile." + platform() + " = \"lib.so\"";
    }

    const parse_outcome parsed = parse(source);
    CHECK(parsed.result.code() == errc::manifest_invalid);
    CHECK_THAT(parsed.result.message(), Contains(key));
}

// --- version, provides, function_count and the other optional keys ------------------------------

TEST_CASE("manifest - version is optional and must parse when given", "[manifest]") {
    manifest_source source;
    SECTION("absent: 0.0.0") {
        const parse_outcome parsed = parse(source);
        REQUIRE(parsed.result.ok());
        CHECK(parsed.m.version_text.empty());
        CHECK(parsed.m.version == polyplug::version{0, 0, 0});
    }
    SECTION("empty: 0.0.0") {
        source.extra = R"(version = "")";
        const parse_outcome parsed = parse(source);
        REQUIRE(parsed.result.ok());
        CHECK(parsed.m.version == polyplug::version{0, 0, 0});
    }
    SECTION("major.minor: patch 0, text kept as written") {
        source.extra = R"(version = "2.5")";
        const parse_outcome parsed = parse(source);
        REQUIRE(parsed.result.ok());
        CHECK(parsed.m.version_text == "2.5");
        CHECK(parsed.m.version == polyplug::version{2, 5, 0});
    }
    SECTION("unparseable") {
        source.extra = R"(version = "1.0.0-alpha")";
        const parse_outcome parsed = parse(source);
        CHECK(parsed.result.code() == errc::manifest_invalid);
        CHECK_THAT(parsed.result.message(), Contains("'version'"));
    }
    SECTION("not a string") {
        source.extra = "version = 1.0";
        const parse_outcome parsed = parse(source);
        CHECK(parsed.result.code() == errc::manifest_invalid);
        CHECK_THAT(parsed.result.message(), Contains("'version' must be a string"));
    }
}

TEST_CASE("manifest - provides accepts name, name@major and name@version", "[manifest]") {
    manifest_source source;
    source.extra =
        "version = \"3.1.0\"\n"
        R"(provides = ["a.bare", "b.major@2", "c.full@1.4.2", "d.short@5.1"])";
    const parse_outcome parsed = parse(source);
    INFO(parsed.result.message());
    REQUIRE(parsed.result.ok());
    const auto& provides = parsed.m.provides;
    REQUIRE(provides.size() == 4);

    CHECK(provides[0].name == "a.bare");
    CHECK(provides[0].major == 3);  // a bare name takes the bundle version's major
    CHECK_FALSE(provides[0].version.has_value());
    CHECK(provides[1].name == "b.major");
    CHECK(provides[1].major == 2);
    CHECK_FALSE(provides[1].version.has_value());
    CHECK(provides[2].name == "c.full");
    CHECK(provides[2].major == 1);
    CHECK(provides[2].version == polyplug::version{1, 4, 2});
    CHECK(provides[3].name == "d.short");
    CHECK(provides[3].major == 5);
    CHECK(provides[3].version == polyplug::version{5, 1, 0});

    for (const polyplug::provided_contract& p : provides) {
        CAPTURE(p.name);
        CHECK(p.contract_id == polyplug::guest_contract_id(p.name, p.major));
    }
    CHECK(provides[2].key() == "c.full@1");
}

TEST_CASE("manifest - malformed provides entries are refused", "[manifest]") {
    manifest_source source;
    SECTION("bad entry strings") {
        const char* const entry =
            GENERATE("", "@1", "x@", "x@abc", "x@1.0-beta", "x@^1.2", "x@4294967296");
        CAPTURE(entry);
        source.extra = std::string("provides = [\"") + entry + "\"]";
    }
    SECTION("an entry that is not a string") {
        source.extra = R"(provides = ["x@1", 5])";
    }
    SECTION("not an array") {
        source.extra = R"(provides = "x@1")";
    }

    const parse_outcome parsed = parse(source);
    CHECK(parsed.result.code() == errc::manifest_invalid);
    CHECK_THAT(parsed.result.message(), Contains("provides"));
}

TEST_CASE("manifest - function_count maps contract keys to 32-bit counts", "[manifest]") {
    manifest_source source;
    SECTION("accepted bounds") {
        source.extra = R"(function_count = { "a@1" = 0, "b@2" = 4294967295 })";
        const parse_outcome parsed = parse(source);
        REQUIRE(parsed.result.ok());
        CHECK(parsed.m.function_count ==
              std::map<std::string, std::uint32_t>{{"a@1", 0}, {"b@2", 4294967295u}});
    }
    SECTION("as a [function_count] table") {
        source.tables = "[function_count]\n\"a@1\" = 3";
        const parse_outcome parsed = parse(source);
        REQUIRE(parsed.result.ok());
        CHECK(parsed.m.function_count.at("a@1") == 3);
    }
    SECTION("bad values") {
        const char* const value = GENERATE("\"1\"", "-1", "4294967296", "1.5", "true");
        CAPTURE(value);
        source.extra = std::string(R"(function_count = { "a@1" = )") + value + " }";
        const parse_outcome parsed = parse(source);
        CHECK(parsed.result.code() == errc::manifest_invalid);
        CHECK_THAT(parsed.result.message(), Contains("'function_count.\"a@1\"'"));
    }
    SECTION("not a table") {
        source.extra = "function_count = 5";
        const parse_outcome parsed = parse(source);
        CHECK(parsed.result.code() == errc::manifest_invalid);
        CHECK_THAT(parsed.result.message(), Contains("'function_count' must be a table"));
    }
}

TEST_CASE("manifest - needs_reinit_on_dep_reload and bundle_dependencies", "[manifest]") {
    manifest_source source;
    SECTION("read when present") {
        source.extra =
            "needs_reinit_on_dep_reload = true\n"
            R"(bundle_dependencies = ["core", "util@1.2"])";
        const parse_outcome parsed = parse(source);
        REQUIRE(parsed.result.ok());
        CHECK(parsed.m.needs_reinit_on_dep_reload);
        CHECK(parsed.m.bundle_dependencies == std::vector<std::string>{"core", "util@1.2"});
    }
    SECTION("needs_reinit_on_dep_reload must be a boolean") {
        source.extra = R"(needs_reinit_on_dep_reload = "yes")";
        const parse_outcome parsed = parse(source);
        CHECK(parsed.result.code() == errc::manifest_invalid);
        CHECK_THAT(parsed.result.message(),
                   Contains("'needs_reinit_on_dep_reload' must be a boolean"));
    }
    SECTION("bundle_dependencies must be an array") {
        source.extra = R"(bundle_dependencies = "core")";
        const parse_outcome parsed = parse(source);
        CHECK(parsed.result.code() == errc::manifest_invalid);
        CHECK_THAT(parsed.result.message(), Contains("'bundle_dependencies' must be an array"));
    }
    SECTION("of strings") {
        source.extra = R"(bundle_dependencies = ["core", 2])";
        const parse_outcome parsed = parse(source);
        CHECK(parsed.result.code() == errc::manifest_invalid);
        CHECK_THAT(parsed.result.message(), Contains("'bundle_dependencies[1]' must be a string"));
    }
}

TEST_CASE("manifest - unknown keys are ignored", "[manifest]") {
    manifest_source source;
    source.extra = R"(author = "someone"
homepage = 42)";
    source.tables = R"([metadata]
anything = [1, 2]

[[dependency]]
contract = "pipeline.Validator@1"
note = "unknown here too")";
    const parse_outcome parsed = parse(source);
    INFO(parsed.result.message());
    REQUIRE(parsed.result.ok());
    REQUIRE(parsed.m.dependencies.size() == 1);
    CHECK(parsed.m.dependencies[0].contract == "pipeline.Validator");
}

// --- [[dependency]] -----------------------------------------------------------------------------

TEST_CASE("manifest - a dependency contract_id must be the canonical one", "[manifest]") {
    manifest_source source;
    source.tables = R"([[dependency]]
contract = "pipeline.Validator@1"
contract_id = "0x0000000000000001")";
    const parse_outcome parsed = parse(source);
    CHECK(parsed.result.code() == errc::manifest_invalid);
    CHECK_THAT(parsed.result.message(), StartsWith(bundle_prefix));
    CHECK_THAT(parsed.result.message(), Contains("'dependency[0].contract_id'"));
    CHECK_THAT(parsed.result.message(),
               Contains("expected " + polyplug::format_id(0x45173A959EEC57C5u)));
    CHECK_THAT(parsed.result.message(), Contains("found 0x0000000000000001"));
}

TEST_CASE("manifest - a dependency without contract_id gets the canonical one", "[manifest]") {
    manifest_source source;
    std::uint32_t major = 0;
    SECTION("major from name@N") {
        source.tables = "[[dependency]]\ncontract = \"pipeline.Validator@2\"";
        major = 2;
    }
    SECTION("major from name@N.m.p") {
        source.tables = "[[dependency]]\ncontract = \"pipeline.Validator@3.1.4\"";
        major = 3;
    }
    SECTION("major from min_version") {
        source.tables = "[[dependency]]\ncontract = \"pipeline.Validator\"\nmin_version = \"1.3\"";
        major = 1;
    }
    SECTION("major from a bare-integer min_version") {
        source.tables = "[[dependency]]\ncontract = \"pipeline.Validator\"\nmin_version = \"4\"";
        major = 4;
    }
    SECTION("name@N wins over min_version") {
        source.tables =
            "[[dependency]]\ncontract = \"pipeline.Validator@5\"\nmin_version = \"1.0\"";
        major = 5;
    }
    SECTION("a written 0 counts as absent") {
        source.tables = "[[dependency]]\ncontract = \"pipeline.Validator@6\"\ncontract_id = 0";
        major = 6;
    }

    const parse_outcome parsed = parse(source);
    INFO(parsed.result.message());
    REQUIRE(parsed.result.ok());
    REQUIRE(parsed.m.dependencies.size() == 1);
    CHECK(parsed.m.dependencies[0].contract == "pipeline.Validator");
    CHECK(parsed.m.dependencies[0].major == major);
    CHECK(parsed.m.dependencies[0].contract_id ==
          polyplug::guest_contract_id("pipeline.Validator", major));
}

TEST_CASE("manifest - a dependency must name its major somehow", "[manifest]") {
    manifest_source source;
    SECTION("no major and no id: refused") {
        source.tables = "[[dependency]]\ncontract = \"pipeline.Validator\"";
        const parse_outcome parsed = parse(source);
        CHECK(parsed.result.code() == errc::manifest_invalid);
        CHECK_THAT(parsed.result.message(), Contains("no major version"));
    }
    SECTION("no major but an id: the id is kept verbatim") {
        source.tables = "[[dependency]]\ncontract = \"pipeline.Validator\"\ncontract_id = 12345";
        const parse_outcome parsed = parse(source);
        REQUIRE(parsed.result.ok());
        CHECK(parsed.m.dependencies[0].contract_id == 12345);
        CHECK(parsed.m.dependencies[0].major == 0);
    }
}

TEST_CASE("manifest - dependency kind is contract or bundle", "[manifest]") {
    manifest_source source;
    const std::string contract = "[[dependency]]\ncontract = \"c@1\"\n";
    SECTION("default: contract") {
        source.tables = contract;
        const parse_outcome parsed = parse(source);
        REQUIRE(parsed.result.ok());
        CHECK(parsed.m.dependencies[0].kind == polyplug::dependency_kind::contract);
    }
    SECTION("bundle") {
        source.tables = contract + "kind = \"bundle\"";
        const parse_outcome parsed = parse(source);
        REQUIRE(parsed.result.ok());
        CHECK(parsed.m.dependencies[0].kind == polyplug::dependency_kind::bundle);
    }
    SECTION("anything else: refused") {
        source.tables = contract + "kind = \"service\"";
        const parse_outcome parsed = parse(source);
        CHECK(parsed.result.code() == errc::manifest_invalid);
        CHECK_THAT(parsed.result.message(), Contains("'dependency[0].kind'"));
        CHECK_THAT(parsed.result.message(), Contains("\"service\""));
    }
    SECTION("case matters") {
        source.tables = contract + "kind = \"Contract\"";
        CHECK(parse(source).result.code() == errc::manifest_invalid);
    }
}

TEST_CASE("manifest - a ByBundle dependency gets its bundle_id from the bundle name",
          "[manifest]") {
    manifest_source source;
    const std::string dependency = "[[dependency]]\nkind = \"bundle\"\ncontract = \"c@1\"\n";
    const std::string core_id = polyplug::format_id(polyplug::bundle_id("core"));
    SECTION("computed when absent") {
        source.tables = dependency + "bundle = \"core\"";
        const parse_outcome parsed = parse(source);
        REQUIRE(parsed.result.ok());
        CHECK(parsed.m.dependencies[0].bundle == "core");
        CHECK(parsed.m.dependencies[0].bundle_id == polyplug::bundle_id("core"));
    }
    SECTION("accepted when it agrees") {
        source.tables = dependency + "bundle = \"core\"\nbundle_id = \"" + core_id + "\"";
        const parse_outcome parsed = parse(source);
        REQUIRE(parsed.result.ok());
        CHECK(parsed.m.dependencies[0].bundle_id == polyplug::bundle_id("core"));
    }
    SECTION("refused when it disagrees") {
        source.tables = dependency + "bundle = \"core\"\nbundle_id = \"0x00000000000000ff\"";
        const parse_outcome parsed = parse(source);
        CHECK(parsed.result.code() == errc::manifest_invalid);
        CHECK_THAT(parsed.result.message(), Contains("'dependency[0].bundle_id'"));
        CHECK_THAT(parsed.result.message(), Contains("expected " + core_id));
        CHECK_THAT(parsed.result.message(), Contains("found 0x00000000000000ff"));
    }
    SECTION("kept as written without a bundle name") {
        source.tables = dependency + "bundle_id = \"0x00000000000000ff\"";
        const parse_outcome parsed = parse(source);
        REQUIRE(parsed.result.ok());
        CHECK(parsed.m.dependencies[0].bundle.empty());
        CHECK(parsed.m.dependencies[0].bundle_id == 0xFF);
    }
}

TEST_CASE("manifest - dependency fields are checked", "[manifest]") {
    manifest_source source;
    std::string fragment;
    SECTION("contract missing") {
        source.tables = "[[dependency]]\nmin_version = \"1.0\"";
        fragment = "missing required key 'dependency[0].contract'";
    }
    SECTION("contract empty") {
        source.tables = "[[dependency]]\ncontract = \"\"";
        fragment = "'dependency[0].contract' must not be empty";
    }
    SECTION("contract without a name") {
        source.tables = "[[dependency]]\ncontract = \"@1\"";
        fragment = "'dependency[0].contract'";
    }
    SECTION("contract with a bad version part") {
        source.tables = "[[dependency]]\ncontract = \"c@one\"";
        fragment = "'dependency[0].contract'";
    }
    SECTION("contract not a string") {
        source.tables = "[[dependency]]\ncontract = 1";
        fragment = "'dependency[0].contract' must be a string";
    }
    SECTION("min_version unparseable") {
        source.tables = "[[dependency]]\ncontract = \"c@1\"\nmin_version = \"^1.0\"";
        fragment = "'dependency[0].min_version'";
    }
    SECTION("contract_id not an id") {
        source.tables = "[[dependency]]\ncontract = \"c@1\"\ncontract_id = 1.5";
        fragment = "'dependency[0].contract_id'";
    }
    SECTION("bundle_id not an id") {
        source.tables = "[[dependency]]\ncontract = \"c@1\"\nbundle_id = \"0xZZ\"";
        fragment = "'dependency[0].bundle_id'";
    }
    SECTION("the second entry is named by its index") {
        source.tables = "[[dependency]]\ncontract = \"c@1\"\n[[dependency]]\ncontract = 2";
        fragment = "'dependency[1].contract'";
    }
    SECTION("dependency not an array") {
        source.extra = "dependency = 3";
        fragment = "'dependency' must be an array of tables";
    }
    SECTION("dependency entries not tables") {
        source.extra = "dependency = [1]";
        fragment = "'dependency[0]' must be a table";
    }

    const parse_outcome parsed = parse(source);
    CHECK(parsed.result.code() == errc::manifest_invalid);
    CHECK_THAT(parsed.result.message(), Contains(fragment));
}

// --- text-level behaviour -----------------------------------------------------------------------

TEST_CASE("manifest - a TOML syntax error names the line and column", "[manifest]") {
    const parse_outcome parsed =
        parse(std::string("name = \"my_plugin\"\nloader = \"native\"\nid = \n"));
    CHECK(parsed.result.code() == errc::manifest_invalid);
    CHECK_THAT(parsed.result.message(), StartsWith("manifest 'test/manifest.toml': "));
    CHECK_THAT(parsed.result.message(), Contains("line 3"));
    CHECK_THAT(parsed.result.message(), Contains("column"));
}

TEST_CASE("manifest - a manifest over the size limit is refused before parsing", "[manifest]") {
    const std::string valid = manifest_source{}.text();
    SECTION("exactly at the limit: accepted") {
        CHECK(parse(padded_to(valid, polyplug::max_manifest_bytes)).result.ok());
    }
    SECTION("one byte over: refused, though the same content would parse") {
        const parse_outcome parsed = parse(padded_to(valid, polyplug::max_manifest_bytes + 1));
        CHECK(parsed.result.code() == errc::manifest_invalid);
        CHECK_THAT(parsed.result.message(), Contains("limit"));
    }
}

TEST_CASE("manifest - deeply nested values are refused, not recursed into", "[manifest]") {
    // Under the size limit, but 100,000 levels deep: a recursive parser would overflow its stack.
    const std::size_t depth = 100'000;
    std::string nested;
    SECTION("arrays") {
        nested = "x = " + std::string(depth, '[') + std::string(depth, ']');
    }
    SECTION("inline tables") {
        nested = "x = ";
        for (std::size_t i = 0; i < depth; ++i) nested += "{a = ";
        nested += "1" + std::string(depth, '}');
    }
    REQUIRE(nested.size() < polyplug::max_manifest_bytes);
    const parse_outcome parsed = parse(manifest_source{}.text() + nested + "\n");
    CHECK(parsed.result.code() == errc::manifest_invalid);
    CHECK_THAT(parsed.result.message(), StartsWith("manifest 'test/manifest.toml': "));
    CHECK_THAT(parsed.result.message(), Contains("nest"));
}

TEST_CASE("manifest - dotted keys and table headers nested too deeply are refused at their column",
          "[manifest]") {
    // toml++ bounds only brackets; the tables of `a.a.a...` and `[a.a.a...]` it walks and frees
    // recursively, so 100,000 segments (200 kB) overflowed the stack before the pre-scan.
    const auto chain = [](std::size_t segments) {
        std::string out = "a";
        for (std::size_t i = 1; i < segments; ++i) out += ".a";
        return out;
    };
    const std::string head = manifest_source{}.text();  // 4 lines
    // The 65th level starts at the 64th dot: 64 segments and 63 dots before it, plus `open`.
    const auto column_of_65th = [](std::size_t open) { return std::to_string(open + 128); };
    std::string text;
    std::string column;
    std::string line = "5";
    for (const std::size_t segments : {std::size_t{65}, std::size_t{100'000}}) {
        SECTION("a dotted key of " + std::to_string(segments) + " segments") {
            text = head + chain(segments) + " = 1\n";
            column = column_of_65th(0);
        }
        SECTION("a table header of " + std::to_string(segments) + " segments") {
            text = head + "[" + chain(segments) + "]\n";
            column = column_of_65th(1);
        }
        SECTION("an array-of-tables header of " + std::to_string(segments) + " segments") {
            text = head + "[[" + chain(segments) + "]]\nx = 1\n";
            column = column_of_65th(2);
        }
        SECTION("a header followed by a syntax error, " + std::to_string(segments) + " segments") {
            // The error path frees the partial tree, recursively too.
            text = head + "[" + chain(segments) + "]\n= oops\n";
            column = column_of_65th(1);
        }
    }
    SECTION("levels add up: a header, a dotted key and brackets") {
        text = head + "[" + chain(60) + "]\n" + "b.b = [{ c = 1 }]\n";
        line = "6";
        column = "10";  // 60 + `b.b` + '[' + '{' = 64: `c` is the 65th
    }
    REQUIRE(text.size() < polyplug::max_manifest_bytes);
    const parse_outcome parsed = parse(text);
    CHECK(parsed.result.code() == errc::manifest_invalid);
    CHECK(parsed.result.message() == "manifest 'test/manifest.toml': nested too deeply at line " +
                                         line + ", column " + column +
                                         ": keys, tables and arrays nested deeper than 64 levels "
                                         "(each segment of a dotted key or table header and each "
                                         "'[' or '{' counts one)");
}

TEST_CASE("manifest - 64 levels of keys and tables are accepted", "[manifest]") {
    std::string chain = "a";
    for (int i = 1; i < 64; ++i) chain += ".a";
    manifest_source source;
    SECTION("a dotted key") {
        source.extra = chain + " = 1";  // unknown keys are ignored
    }
    SECTION("a table header") {
        source.tables = "[" + chain + "]";
    }
    SECTION("a header and a dotted key") {
        source.tables = "[x.y]\nz." + chain.substr(8) + " = [1]";  // 2 + 61 + '[' = 64
    }
    const parse_outcome parsed = parse(source);
    INFO(parsed.result.message());
    CHECK(parsed.result.ok());
}

TEST_CASE("manifest - out is untouched when parsing fails", "[manifest]") {
    polyplug::manifest m;
    m.name = "sentinel";
    m.provides.push_back({});
    manifest_source source;
    source.extra = R"(provides = ["ok@1"])";
    source.tables = "[[dependency]]\nkind = \"neither\"\ncontract = \"c@1\"";  // fails late
    CHECK_FALSE(polyplug::parse_manifest(source.text(), source_name, m).ok());
    CHECK(m.name == "sentinel");
    CHECK(m.provides.size() == 1);
    CHECK(m.dependencies.empty());
}

// --- write_manifest -----------------------------------------------------------------------------

namespace {

/// Field by field, so that a failure names the field; then the whole, so no field is forgotten.
void check_same_manifest(const polyplug::manifest& actual, const polyplug::manifest& expected) {
    CHECK(actual.id == expected.id);
    CHECK(actual.name == expected.name);
    CHECK(actual.version_text == expected.version_text);
    CHECK(actual.version == expected.version);
    CHECK(actual.loader == expected.loader);
    CHECK(actual.file == expected.file);
    CHECK(actual.provides == expected.provides);
    CHECK(actual.function_count == expected.function_count);
    CHECK(actual.needs_reinit_on_dep_reload == expected.needs_reinit_on_dep_reload);
    CHECK(actual.bundle_dependencies == expected.bundle_dependencies);
    REQUIRE(actual.dependencies.size() == expected.dependencies.size());
    for (std::size_t i = 0; i < actual.dependencies.size(); ++i) {
        CAPTURE(i);
        const polyplug::manifest_dependency& a = actual.dependencies[i];
        const polyplug::manifest_dependency& e = expected.dependencies[i];
        CHECK(a.kind == e.kind);
        CHECK(a.contract == e.contract);
        CHECK(a.min_version == e.min_version);
        CHECK(a.major == e.major);
        CHECK(a.bundle == e.bundle);
        CHECK(a.contract_id == e.contract_id);
        CHECK(a.bundle_id == e.bundle_id);
    }
    CHECK(actual.dir == expected.dir);
    CHECK(actual.path == expected.path);
    CHECK(actual == expected);
}

}  // namespace

TEST_CASE("manifest - write_manifest round-trips through parse_manifest", "[manifest]") {
    // A name with every character class the writer has to escape.
    const std::string name = "we\"ird \\ name\twith \xC3\xBC and \x01";
    const std::string text = "id = \"" + polyplug::format_id(polyplug::bundle_id(name)) + "\"\n" +
                             R"(name = "we\"ird \\ name\twith ü and \u0001"
version = "2.1"
loader = "native"
file = "lib dir/lib\"x\".so"
provides = ["a.bare", "c@3", "d@4.5", "e@6.7.8"]
function_count = { "a.bare@2" = 1, "c@3" = 0, "d@4" = 4294967295 }
needs_reinit_on_dep_reload = true
bundle_dependencies = ["core", "util@1.2"]

[[dependency]]
contract = "pipeline.Validator"
min_version = "1.0"

[[dependency]]
kind = "bundle"
contract = "x@2"
bundle = "core"

[[dependency]]
contract = "verbatim"
contract_id = "0x0000000000001234"

[[dependency]]
contract = "z@0"
bundle_id = "0x0000000000000099"

[[dependency]]
contract = "w@3"
min_version = "7"
)";
    const parse_outcome original = parse(text);
    INFO(original.result.message());
    REQUIRE(original.result.ok());
    REQUIRE(original.m.name == name);

    const std::string written = polyplug::write_manifest(original.m);
    INFO(written);
    const parse_outcome reread = parse(written);
    INFO(reread.result.message());
    REQUIRE(reread.result.ok());
    check_same_manifest(reread.m, original.m);

    // Ids as hex strings: TOML integers cannot hold the upper half of the u64 range.
    CHECK_THAT(written, StartsWith("id = \"" + polyplug::format_id(original.m.id) + "\"\n"));
    CHECK_THAT(written, Contains("contract_id = \"0x0000000000001234\""));
    // Top-level keys come before the first table, or TOML would scope them into it.
    const std::size_t first_table = written.find("\n[");
    REQUIRE(first_table != std::string::npos);
    CHECK(written.find("bundle_dependencies =") < first_table);
    CHECK(written.find("needs_reinit_on_dep_reload =") < first_table);
}

TEST_CASE("manifest - write_manifest writes the spec example back as an equal manifest",
          "[manifest]") {
    manifest_source source;
    source.id = "id = 6083502456968126439";
    source.extra = R"(version = "1.0.0"
provides = ["pipeline.Decoder@1"]
function_count = { "pipeline.Decoder@1" = 1 })";
    source.tables = R"([[dependency]]
kind = "contract"
contract = "pipeline.Validator"
min_version = "1.0"
contract_id = 4978512327372199877)";
    const parse_outcome original = parse(source);
    REQUIRE(original.result.ok());
    const parse_outcome reread = parse(polyplug::write_manifest(original.m));
    INFO(reread.result.message());
    REQUIRE(reread.result.ok());
    check_same_manifest(reread.m, original.m);
}

TEST_CASE("manifest - write_manifest fills in what a manifest built in code leaves out",
          "[manifest]") {
    polyplug::manifest m;
    m.name = "coded";
    m.id = polyplug::bundle_id("coded");
    m.version = polyplug::version{1, 2, 3};  // version_text left empty
    m.loader = "native";
    m.file = "libcoded.so";
    m.provides.push_back({"p", 2, std::nullopt, 0});  // contract_id left 0
    polyplug::manifest_dependency dep;
    dep.contract = "q";
    dep.major = 4;  // contract_id left 0
    m.dependencies.push_back(dep);

    const parse_outcome reread = parse(polyplug::write_manifest(m));
    INFO(reread.result.message());
    REQUIRE(reread.result.ok());
    CHECK(reread.m.version_text == "1.2.3");
    CHECK(reread.m.version == polyplug::version{1, 2, 3});
    REQUIRE(reread.m.provides.size() == 1);
    CHECK(reread.m.provides[0].major == 2);
    CHECK(reread.m.provides[0].contract_id == polyplug::guest_contract_id("p", 2));
    REQUIRE(reread.m.dependencies.size() == 1);
    CHECK(reread.m.dependencies[0].major == 4);
    CHECK(reread.m.dependencies[0].contract_id == polyplug::guest_contract_id("q", 4));
}

TEST_CASE("manifest - format_id writes 0x and 16 lowercase hex digits", "[manifest]") {
    CHECK(polyplug::format_id(0) == "0x0000000000000000");
    CHECK(polyplug::format_id(0x546CF140B9CD1FE7u) == "0x546cf140b9cd1fe7");
    CHECK(polyplug::format_id(UINT64_MAX) == "0xffffffffffffffff");
}

// --- read_manifest ------------------------------------------------------------------------------

TEST_CASE("manifest - read_manifest reads manifest.toml and records where it was", "[manifest]") {
    const temp_dir bundle;
    write_file(bundle.path() / "manifest.toml", manifest_source{}.text());

    polyplug::manifest m;
    const polyplug::status result = polyplug::read_manifest(bundle.path(), m);
    INFO(result.message());
    REQUIRE(result.ok());
    CHECK(m.name == "my_plugin");
    CHECK(m.dir == bundle.path());
    CHECK(m.path == bundle.path() / "manifest.toml");
}

TEST_CASE("manifest - read_manifest refuses a missing, odd or oversize manifest.toml",
          "[manifest]") {
    const temp_dir bundle;
    const fs::path file = bundle.path() / "manifest.toml";
    std::string fragment;
    SECTION("missing") {
        // The path once: "manifest '<dir>/manifest.toml': no such file".
        fragment = "manifest '" + file.string() + "': no such file";
    }
    SECTION("a directory") {
        fs::create_directory(file);
        fragment = "not a regular file";
    }
    SECTION("a FIFO (no writer: nothing to read)") {
        REQUIRE(::mkfifo(file.c_str(), 0600) == 0);
        fragment = "not a regular file";
    }
    SECTION("a device that never ends") {
        fs::create_symlink("/dev/zero", file);
        fragment = "not a regular file";
    }
    SECTION("over the size limit") {
        write_file(file, padded_to(manifest_source{}.text(), polyplug::max_manifest_bytes + 1));
        fragment = "limit";
    }
    SECTION("empty") {
        write_file(file, "");
        fragment = "missing required key 'name'";
    }
    SECTION("invalid content names the file") {
        write_file(file, "name = 5\n");
        fragment = "'name' must be a string";
    }

    polyplug::manifest m;
    const polyplug::status result = polyplug::read_manifest(bundle.path(), m);
    CHECK(result.code() == errc::manifest_invalid);
    CHECK_THAT(result.message(), StartsWith("manifest '" + file.string() + "': "));
    CHECK_THAT(result.message(), Contains(fragment));
    CHECK(m.name.empty());
}

TEST_CASE("manifest - read_manifest reads a manifest of any size up to the limit", "[manifest]") {
    // The first read goes to a 4 KiB buffer; a file that fills it is read on to its end.
    for (const std::size_t size : {std::size_t{4095}, std::size_t{4096}, std::size_t{4097},
                                   std::size_t{70000}, polyplug::max_manifest_bytes}) {
        const temp_dir bundle;
        write_file(bundle.path() / "manifest.toml", padded_to(manifest_source{}.text(), size));
        polyplug::manifest m;
        const polyplug::status result = polyplug::read_manifest(bundle.path(), m);
        INFO("size " << size << ": " << result.message());
        CHECK(result.ok());
        CHECK(m.name == "my_plugin");
    }
}

// --- manifest_cache (what every load reads its manifest through) -------------------------------

TEST_CASE("manifest - the manifest cache shares one parsed manifest while the bytes stay the same",
          "[manifest]") {
    const temp_dir bundle;
    const fs::path file = bundle.path() / "manifest.toml";
    write_file(file, manifest_source{}.text());
    polyplug::detail::manifest_cache cache;

    polyplug::shared_manifest first;
    REQUIRE(cache.read(bundle.path(), first).ok());
    REQUIRE(first != nullptr);
    CHECK(first->name == "my_plugin");
    CHECK(first->dir == bundle.path());
    CHECK(first->path == file);
    polyplug::shared_manifest again;
    REQUIRE(cache.read(bundle.path(), again).ok());
    CHECK(again == first);  // the same immutable object: no copy, no second parse

    // Other bytes of the same length: parsed again, never served from the cache.
    manifest_source edited;
    edited.file = "file = \"libmy_plugXn.so\"";
    REQUIRE(edited.text().size() == manifest_source{}.text().size());
    write_file(file, edited.text());
    polyplug::shared_manifest changed;
    REQUIRE(cache.read(bundle.path(), changed).ok());
    CHECK(changed != first);
    CHECK(changed->file == "libmy_plugXn.so");
    CHECK(first->file == "libmy_plugin.so");  // what a running version holds is left alone
}

TEST_CASE("manifest - the manifest cache keeps each spelling of a directory as given",
          "[manifest]") {
    const temp_dir bundle;
    write_file(bundle.path() / "manifest.toml", manifest_source{}.text());
    polyplug::detail::manifest_cache cache;
    const fs::path slashed = bundle.path().string() + "/";

    polyplug::shared_manifest plain;
    polyplug::shared_manifest with_slash;
    REQUIRE(cache.read(bundle.path(), plain).ok());
    REQUIRE(cache.read(slashed, with_slash).ok());
    CHECK(plain->dir == bundle.path());
    CHECK(with_slash->dir == slashed);  // as read_manifest sets it: the caller's spelling
    CHECK(plain->path == bundle.path() / "manifest.toml");
    CHECK(with_slash->path == slashed / "manifest.toml");
    CHECK(with_slash->path.native() == bundle.path().native() + "/manifest.toml");
}

TEST_CASE("manifest - the manifest cache reports a missing or invalid manifest like read_manifest",
          "[manifest]") {
    const temp_dir bundle;
    const fs::path file = bundle.path() / "manifest.toml";
    polyplug::detail::manifest_cache cache;
    polyplug::shared_manifest out;

    polyplug::status result = cache.read(bundle.path(), out);
    CHECK(result.code() == errc::manifest_invalid);
    CHECK(result.message() == "manifest '" + file.string() + "': no such file");
    CHECK(out == nullptr);

    write_file(file, "name = 5\n");
    result = cache.read(bundle.path(), out);
    CHECK(result.code() == errc::manifest_invalid);
    CHECK_THAT(result.message(), StartsWith("manifest '" + file.string() + "': "));
    CHECK_THAT(result.message(), Contains("'name' must be a string"));
    CHECK(out == nullptr);

    // A valid one read before stays what the caller holds when the file turns bad.
    write_file(file, manifest_source{}.text());
    REQUIRE(cache.read(bundle.path(), out).ok());
    const polyplug::shared_manifest held = out;
    write_file(file, "name = 5\n");
    CHECK_FALSE(cache.read(bundle.path(), out).ok());
    CHECK(out == held);
}

// --- resolve_artifact ---------------------------------------------------------------------------

namespace {

/// root/bundle holds lib.so; root/outside.so and root/elsewhere/lib.so lie outside the bundle.
struct bundle_layout {
    temp_dir root;
    fs::path dir = root.path() / "bundle";

    bundle_layout() {
        fs::create_directories(dir / "sub");
        fs::create_directory(root.path() / "elsewhere");
        write_file(dir / "lib.so", "inside");
        write_file(root.path() / "outside.so", "outside");
        write_file(root.path() / "elsewhere" / "lib.so", "elsewhere");
    }

    [[nodiscard]] polyplug::manifest manifest_for(std::string file) const {
        polyplug::manifest m;
        m.name = "my_plugin";
        m.dir = dir;
        m.file = std::move(file);
        return m;
    }

    void symlink(const fs::path& target, const fs::path& link) const {
        std::error_code ec;
        fs::create_symlink(target, link, ec);
        INFO(ec.message());
        REQUIRE_FALSE(ec);
    }
};

}  // namespace

TEST_CASE("manifest - resolve_artifact returns the artifact inside the bundle", "[manifest]") {
    const bundle_layout layout;
    std::string file;
    fs::path expected = layout.dir / "lib.so";
    SECTION("a plain file") {
        file = "lib.so";
    }
    SECTION("a path that wanders but stays inside, normalised") {
        file = "sub/./../lib.so";
    }
    SECTION("a symlink to a file inside the bundle, not replaced by its target") {
        layout.symlink("lib.so", layout.dir / "alias.so");
        file = "alias.so";
        expected = layout.dir / "alias.so";
    }

    fs::path out;
    const polyplug::status result =
        polyplug::resolve_artifact(layout.manifest_for(file), false, out);
    INFO(result.message());
    REQUIRE(result.ok());
    CHECK(out == expected);
}

TEST_CASE("manifest - resolve_artifact refuses paths that leave the bundle lexically",
          "[manifest]") {
    const bundle_layout layout;
    // Each of these exists, so only the path check can refuse it.
    std::string file;
    SECTION("climbing with ..") {
        file = "../outside.so";
    }
    SECTION("climbing after descending") {
        file = "sub/../../outside.so";
    }
    SECTION("an absolute path") {
        file = "/etc/passwd";
    }
    SECTION("an absolute path, even into the bundle") {
        file = (layout.dir / "lib.so").string();
    }

    fs::path out = "unchanged";
    const polyplug::status result =
        polyplug::resolve_artifact(layout.manifest_for(file), true, out);
    CHECK(result.code() == errc::path_escapes_bundle);
    CHECK_THAT(result.message(), StartsWith(bundle_prefix));
    CHECK_THAT(result.message(), Contains("'" + file + "'"));
    CHECK(out == "unchanged");
}

TEST_CASE("manifest - resolve_artifact reports a missing artifact", "[manifest]") {
    const bundle_layout layout;
    std::string file = "missing.so";
    SECTION("no file") {}
    SECTION("a dangling symlink") {
        layout.symlink(layout.dir / "gone.so", layout.dir / "dangling.so");
        file = "dangling.so";
    }
    fs::path out;
    const polyplug::status result =
        polyplug::resolve_artifact(layout.manifest_for(file), false, out);
    CHECK(result.code() == errc::artifact_not_found);
    CHECK(result.message() ==
          bundle_prefix + "artifact '" + (layout.dir / file).string() + "' not found");
}

TEST_CASE("manifest - resolve_artifact refuses symlinks out of the bundle unless allowed",
          "[manifest]") {
    const bundle_layout layout;
    std::string file;
    SECTION("a symlinked file") {
        layout.symlink(layout.root.path() / "outside.so", layout.dir / "link.so");
        file = "link.so";
    }
    SECTION("a symlinked directory on the way") {
        layout.symlink(layout.root.path() / "elsewhere", layout.dir / "libs");
        file = "libs/lib.so";
    }

    fs::path out;
    const polyplug::status refused =
        polyplug::resolve_artifact(layout.manifest_for(file), false, out);
    CHECK(refused.code() == errc::path_escapes_bundle);
    CHECK_THAT(refused.message(), Contains("symlink"));
    CHECK(out.empty());

    const polyplug::status allowed =
        polyplug::resolve_artifact(layout.manifest_for(file), true, out);
    INFO(allowed.message());
    REQUIRE(allowed.ok());
    CHECK(out == layout.dir / file);  // the path inside the bundle, not where the link points
}
