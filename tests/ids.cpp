// SPDX-License-Identifier: MIT
/// @file ids.cpp
/// FNV-1a-64 and the id schemes against every test vector of spec §2.4, in C++ (constexpr) and
/// through the C helpers of abi.h.
#include "catch.hpp"

#include <polyplug/ids.hpp>

#include <cstring>

using polyplug::fnv1a64;

static_assert(polyplug::guest_contract_id("test.add", 1) == 0x40244DF59FCBECB6ull,
              "ids are computed at compile time");

TEST_CASE("ids - raw FNV-1a-64 vectors", "[ids]") {
    CHECK(fnv1a64("") == 0xCBF29CE484222325ull);
    CHECK(fnv1a64("image.decode@1") == 0xA1BA05DD7DA18569ull);
    CHECK(fnv1a64("audio.encode@2") == 0x7A7958404B1D72A5ull);
    CHECK(fnv1a64("test.add@1") == 0xCC4232FAB0410D2Bull);
}

TEST_CASE("ids - bundle ids hash the bare name", "[ids]") {
    CHECK(polyplug::bundle_id("my-bundle") == 0xFE6226876E3A35B2ull);
    CHECK(polyplug::bundle_id("polyplug-core") == 0x6EF4AEE714F5F991ull);
    CHECK(polyplug_bundle_id("my-bundle", 9) == 0xFE6226876E3A35B2ull);
}

TEST_CASE("ids - guest contract ids use the guest_contract: prefix", "[ids]") {
    struct vector {
        const char* name;
        std::uint32_t major;
        std::uint64_t id;
    };
    const vector vectors[] = {
        {"my.contract", 1, 0x3AFC01CA348E3F0Dull},      {"test.add", 1, 0x40244DF59FCBECB6ull},
        {"image.decode", 1, 0xFBF31BF02E2AB1DCull},     {"logger", 1, 0xA1ADF81FD5134C83ull},
        {"pipeline.Decoder", 1, 0xE1D7DE773BE6E7F7ull},
    };
    for (const vector& v : vectors) {
        INFO(v.name);
        CHECK(polyplug::guest_contract_id(v.name, v.major) == v.id);
        CHECK(polyplug_guest_contract_id(v.name, std::strlen(v.name), v.major) == v.id);
        CHECK(fnv1a64(std::string("guest_contract:") + v.name + "@" + std::to_string(v.major)) ==
              v.id);
    }
}

TEST_CASE("ids - host contract ids use the host_contract: prefix", "[ids]") {
    CHECK(polyplug::host_contract_id("logger", 1) == 0xEE2F1DB90B2B5EFFull);
    CHECK(polyplug::host_contract_id("host.logger", 1) == 0xF53EB5F2845853BBull);
    CHECK(polyplug_host_contract_id("host.logger", 11, 1) == 0xF53EB5F2845853BBull);
    CHECK(polyplug::host_contract_id("logger", 1) != polyplug::guest_contract_id("logger", 1));
}

TEST_CASE("ids - only the major takes part; large majors hash their decimal digits", "[ids]") {
    CHECK(polyplug::guest_contract_id("a", 1) != polyplug::guest_contract_id("a", 2));
    CHECK(polyplug::guest_contract_id("a", 1) != polyplug::guest_contract_id("b", 1));
    CHECK(polyplug::guest_contract_id("x", 4294967295u) == fnv1a64("guest_contract:x@4294967295"));
    CHECK(polyplug_guest_contract_id("x", 1, 4294967295u) ==
          fnv1a64("guest_contract:x@4294967295"));
    CHECK(polyplug::guest_contract_id("x", 0) == fnv1a64("guest_contract:x@0"));
}

TEST_CASE("ids - format_id and host version packing", "[ids]") {
    CHECK(polyplug::format_id(0x3AFC01CA348E3F0Dull) == "0x3afc01ca348e3f0d");
    CHECK(polyplug::format_id(1) == "0x0000000000000001");
    CHECK(polyplug::pack_host_version(1, 2) == 0x00010002u);
}
