// SPDX-License-Identifier: MIT
/// @file version.cpp
/// Tests for polyplug::version: parsing "major.minor[.patch]" and the compatibility rule.
#include <polyplug/version.hpp>

#include "catch.hpp"

#include <optional>
#include <string>

using polyplug::version;

// Parsing is usable in constant expressions (ids and versions are constexpr by house rule).
static_assert(version::parse("1.2.3") == version{1, 2, 3});
static_assert(!version::parse("1").has_value());
static_assert(version{1, 4, 0}.is_compatible_with(version{1, 2, 9}));

TEST_CASE("version - parse reads major.minor and defaults the patch to 0", "[version]") {
    const std::optional<version> two_parts = version::parse("1.2");
    REQUIRE(two_parts.has_value());
    CHECK(*two_parts == version{1, 2, 0});

    const std::optional<version> three_parts = version::parse("10.20.30");
    REQUIRE(three_parts.has_value());
    CHECK(three_parts->major == 10);
    CHECK(three_parts->minor == 20);
    CHECK(three_parts->patch == 30);

    CHECK(version::parse("0.0") == version{0, 0, 0});
    CHECK(version::parse("007.01.2") == version{7, 1, 2});
}

TEST_CASE("version - parse ignores components after the third", "[version]") {
    CHECK(version::parse("1.2.3.4") == version{1, 2, 3});
    CHECK(version::parse("1.2.3.4.5") == version{1, 2, 3});
}

TEST_CASE("version - parse accepts every component up to 2^32 - 1", "[version]") {
    CHECK(version::parse("4294967295.4294967295.4294967295") ==
          version{4294967295u, 4294967295u, 4294967295u});
}

TEST_CASE("version - parse refuses anything but dot-separated ASCII digits", "[version]") {
    const char* const text = GENERATE("1",            // a major alone is not a version
                                      "",             // empty
                                      "1.0.0-alpha",  // pre-release tags are not understood
                                      "^1.2",         // neither are requirement operators
                                      "1.0.0+build",  // nor build metadata
                                      "v1.2",         // nor a leading v
                                      " 1.2",         // nor spaces
                                      "1.2 ",         //
                                      "1..2",         // empty middle component
                                      "1.",           // empty trailing component
                                      ".1",           // empty leading component
                                      "1.2.",         //
                                      "-1.2",         // no sign
                                      "1.x");
    CAPTURE(text);
    CHECK_FALSE(version::parse(text).has_value());
}

TEST_CASE("version - parse refuses a component above 2^32 - 1", "[version]") {
    CHECK_FALSE(version::parse("4294967296.0").has_value());
    CHECK_FALSE(version::parse("1.4294967296").has_value());
    CHECK_FALSE(version::parse("1.2.4294967296").has_value());
    CHECK_FALSE(version::parse("1.99999999999999999999999").has_value());  // would wrap a u64 too
    // An ignored fourth component is still checked: it must be digits within range.
    CHECK_FALSE(version::parse("1.2.3.4294967296").has_value());
}

TEST_CASE("version - is_compatible_with needs the same major and at least the minor", "[version]") {
    const version provided{1, 4, 2};

    SECTION("same major, same or lower minor: compatible") {
        CHECK(provided.is_compatible_with(version{1, 4, 2}));
        CHECK(provided.is_compatible_with(version{1, 0, 0}));
        CHECK(provided.is_compatible_with(version{1, 3, 99}));
    }
    SECTION("the patch takes no part") {
        CHECK(provided.is_compatible_with(version{1, 4, 0}));
        CHECK(provided.is_compatible_with(version{1, 4, 3}));
    }
    SECTION("a higher required minor: incompatible") {
        CHECK_FALSE(provided.is_compatible_with(version{1, 5, 0}));
    }
    SECTION("a different major, older or newer: incompatible") {
        CHECK_FALSE(provided.is_compatible_with(version{0, 4, 2}));
        CHECK_FALSE(provided.is_compatible_with(version{2, 0, 0}));
        CHECK_FALSE(version{2, 9, 0}.is_compatible_with(version{1, 0, 0}));
    }
}

TEST_CASE("version - to_string writes all three components", "[version]") {
    CHECK(version{1, 2, 0}.to_string() == "1.2.0");
    CHECK(version::parse("3.4")->to_string() == "3.4.0");
}

TEST_CASE("version - converts to and from the ABI's Version unchanged", "[version]") {
    const Version abi = version{7, 8, 9};
    CHECK(abi.major == 7);
    CHECK(abi.minor == 8);
    CHECK(abi.patch == 9);
    CHECK(version(abi) == version{7, 8, 9});
}

TEST_CASE("version - orders by major, then minor, then patch", "[version]") {
    CHECK(version{1, 2, 3} < version{1, 2, 4});
    CHECK(version{1, 2, 9} < version{1, 3, 0});
    CHECK(version{1, 9, 9} < version{2, 0, 0});
    CHECK(version{} == version{0, 0, 0});
}
