// SPDX-License-Identifier: MIT
/// @file generated_cpp_host.cpp
/// A C++ host calling the kitchen bundle through the header `polyplug generate --lang cpp` wrote
/// from kitchen.api.toml: the typed client for every type category, errors thrown in the plugin,
/// a host contract implemented as a class and called by the plugin, and cached clients that
/// follow a hot reload to the bundle's second version.
#include "../catch.hpp"
#include "../support.hpp"
#include "kitchen.hpp"

#include <polyplug/client.hpp>
#include <polyplug/guest.hpp>
#include <polyplug/polyplug.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace fs = std::filesystem;
using namespace cli_test;
using namespace std::string_view_literals;

namespace {

struct memory_log {
    std::string last;
    bool write(std::uint8_t level, std::string_view text) {
        last = std::to_string(level) + ":" + std::string(text);
        return true;
    }
};

/// The kitchen bundle in a scratch directory: the generated manifest and version 1's library.
struct kitchen_bundle {
    test_support::temp_dir dir;
    fs::path library = dir.path() / "libkitchen.so";

    kitchen_bundle() {
        fs::copy_file(POLYPLUG_KITCHEN_MANIFEST, dir.path() / "manifest.toml");
        install(POLYPLUG_KITCHEN_V1);
    }
    // A new file renamed over the old one, as deployments do: writing into the old file would
    // change the pages of the library that is mapped from it.
    void install(const char* built) {
        const fs::path staged = library.string() + ".new";
        fs::copy_file(built, staged, fs::copy_options::overwrite_existing);
        fs::rename(staged, library);
    }
};

}  // namespace

TEST_CASE("generated C++ header - typed calls, host contract and reload", "[generated]") {
    memory_log log;  // registered by reference: declared before the runtime, destroyed after
    const polyplug::host_contract<Log, memory_log, &memory_log::write> log_service(log);
    kitchen_bundle bundle;
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    polyplug::runtime rt(options);
    rt.register_host_contract(log_service.iface());
    rt.load_bundle(bundle.dir.path());

    polyplug::client<Kitchen, polyplug::resolve_policy::on_revision> cached(rt);
    polyplug::client<Kitchen> once(rt);
    REQUIRE(cached);

    SECTION("every type category") {
        CHECK(cached.call(Kitchen::mix, std::int8_t{127}, std::uint16_t{0}, INT32_MAX,
                          std::uint64_t{1}, 0.5f, 0.5, false,
                          Color::Green) == 127 + std::int64_t{INT32_MAX} + 1 + 1 + 2 + 2);

        const std::string_view text = "nul\0inside, gr\xc3\xbc\xc3\x9f \xe2\x9c\x93"sv;
        CHECK(cached.call(Kitchen::echo, text) == "v1:" + std::string(text));
        CHECK(log.last == "3:v1:" + std::string(text));  // the plugin called the host contract

        const std::array<std::uint8_t, 3> bytes{10, 20, 30};
        CHECK(cached.call(Kitchen::checksum, std::span<const std::uint8_t>(bytes)) == 140);

        const std::array<Point, 2> points{{{1, -1}, {2, -2}}};
        const Point total = cached.call(Kitchen::sum_points, std::span<const Point>(points));
        CHECK((total.x == 3 && total.y == -3));

        const Mixed scaled = cached.call(Kitchen::scale, Mixed{1, 0.5, 7}, std::uint8_t{4});
        CHECK((scaled.tag == 1 && scaled.value == 2.0 && scaled.small == 28));

        const std::array<Color, 3> colors{Color::Red, Color::Green, Color::Blue};
        const std::array<bool, 2> flags{true, true};
        const std::array<StringView, 1> words{{{reinterpret_cast<const std::uint8_t*>("xyz"), 3}}};
        CHECK(cached.call(Kitchen::lists, polyplug::abi_array<std::uint8_t>{bytes.data(), 3},
                          std::span<const StringView>(words), std::span<const Color>(colors),
                          polyplug::abi_array<void*>{nullptr, 0}, std::span<const bool>(flags),
                          std::span<const Buffer>()) == 3 + 3 + 259 + 2);

        int target = 0;
        CHECK(cached.call(Kitchen::grant, Access::Exec, &target) == (Access::Exec | Access::Read));
    }
    SECTION(
        "an exception thrown in the plugin: a status from try_call, polyplug::error from call") {
        Access granted{};
        const polyplug::status st = cached.try_call(Kitchen::grant, granted, Access::Read, nullptr);
        CHECK(st.code() == polyplug::errc::panic);
        CHECK_THAT(st.message(), Catch::Contains("grant: no target"));
        CHECK_THROWS_AS(cached.call(Kitchen::grant, Access::Read, nullptr), polyplug::error);
    }
    SECTION("cached clients follow a reload to the new code") {
        CHECK(cached.call(Kitchen::echo, "x") == "v1:x");
        bundle.install(POLYPLUG_KITCHEN_V2);
        rt.reload_bundle(bundle.dir.path());
        CHECK(cached.call(Kitchen::echo, "x") == "v2:x");
        CHECK(once.call(Kitchen::echo, "y") == "v2:y");  // the runtime's copy was rewritten
        Record r{};
        r.label = {reinterpret_cast<const std::uint8_t*>("L"), 1};
        const Record back = cached.call(Kitchen::describe, r);
        CHECK(std::string_view(reinterpret_cast<const char*>(back.label.ptr), back.label.len) ==
              "v2:L");
    }
}
