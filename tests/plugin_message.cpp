// SPDX-License-Identifier: MIT
/// @file plugin_message.cpp
/// A plugin's error message is a claim (issue 16, class 1): a wild pointer, a length of SIZE_MAX
/// or a PROT_NONE page fail the load with init_failed and a message saying so, without a fault,
/// and the runtime loads the next bundle.
#include "support.hpp"

#include <polyplug/detail/plugin_message.hpp>

#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <string>

using namespace test_support;
namespace fs = std::filesystem;

namespace {

const std::uint64_t add_id = polyplug::guest_contract_id("test.add", 1);

std::string copy(const void* ptr, std::size_t len, std::size_t max = 4096) {
    return polyplug::detail::copy_plugin_message(static_cast<const std::uint8_t*>(ptr), len, max);
}

/// Two pages: the first readable, the second PROT_NONE.
struct guarded_pages {
    std::uint8_t* base = nullptr;
    guarded_pages() {
        void* p = ::mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        REQUIRE(p != MAP_FAILED);
        base = static_cast<std::uint8_t*>(p);
        REQUIRE(::mprotect(base + 4096, 4096, PROT_NONE) == 0);
    }
    ~guarded_pages() { ::munmap(base, 8192); }
    guarded_pages(const guarded_pages&) = delete;
    guarded_pages& operator=(const guarded_pages&) = delete;
    std::uint8_t* guard() const { return base + 4096; }
};

/// The runtime still loads and serves a good bundle.
void check_usable(polyplug::runtime& rt, const fs::path& root) {
    const polyplug::status st = try_load(rt, make_bundle(root, "adder", "adder", adder_provides));
    CHECK(st.ok());
    const GuestContractInterface* iface = rt.resolve(rt.find(add_id));
    REQUIRE(iface != nullptr);
    struct {
        std::uint32_t a, b;
    } args{40, 2};
    std::uint32_t out = 0;
    AbiError err{};
    polyplug::function_cast<GuestContractFn>(iface->dispatch.native.functions[0])(
        {nullptr, add_id}, &args, &out, &err);
    CHECK(err.code == AbiErrorCode_Ok);
    CHECK(out == 42);
}

}  // namespace

TEST_CASE("plugin_message - a well-formed message is copied as it is", "[plugin_message]") {
    CHECK(copy("it broke", 8) == "it broke");
    CHECK(copy("caf\xC3\xA9", 5) == "caf\xC3\xA9");
    CHECK(copy("bad \xC3\x28 byte", 11) == "bad \xEF\xBF\xBD( byte");  // lossy, not refused
    CHECK(copy(nullptr, 10).empty());
    CHECK(copy("unused", 0).empty());
}

TEST_CASE("plugin_message - an unreadable pointer is named, never read", "[plugin_message]") {
    const std::string not_readable = "(the plugin's error message pointer is not readable)";
    SECTION("a wild pointer") {
        CHECK(copy(reinterpret_cast<const void*>(16), 10) == not_readable);
    }
    SECTION("a PROT_NONE page") {
        guarded_pages pages;
        CHECK(copy(pages.guard(), 32) == not_readable);
    }
    SECTION("a text running into a PROT_NONE page: the readable part, and why it stops") {
        guarded_pages pages;
        std::memcpy(pages.guard() - 5, "abcde", 5);
        CHECK(copy(pages.guard() - 5, 100) ==
              "abcde (message cut at 5 of 100 bytes: the rest is not readable)");
    }
}

TEST_CASE("plugin_message - a length over the cap is cut, and the cut is noted",
          "[plugin_message]") {
    SECTION("a long message") {
        const std::string text(10000, 'a');
        const std::string got = copy(text.data(), text.size());
        CHECK(got == std::string(4096, 'a') + " (message cut at 4096 of 10000 bytes)");
    }
    SECTION("SIZE_MAX on a short text: the copy ends at its terminator") {
        const char text[] = "short";
        CHECK(copy(text, SIZE_MAX) ==
              "short (message cut at 4096 of " + std::to_string(SIZE_MAX) + " bytes)");
    }
    SECTION("SIZE_MAX on a text just before a PROT_NONE page: no byte past it is touched") {
        guarded_pages pages;
        std::memcpy(pages.guard() - 3, "end", 3);
        CHECK(copy(pages.guard() - 3, SIZE_MAX) ==
              "end (message cut at 4096 of " + std::to_string(SIZE_MAX) + " bytes)");
    }
    SECTION("a cut never splits a character") {
        CHECK(copy("abcd\xE2\x82\xAC", 7, 5) == "abcd (message cut at 5 of 7 bytes)");
        CHECK(copy("abcd\xE2\x82\xAC", 7, 7) == "abcd\xE2\x82\xAC");
    }
}

TEST_CASE("plugin_message - a native init's lying message fails the load, nothing else",
          "[plugin_message][load]") {
    temp_dir dir;
    polyplug::runtime rt;
    std::string fixture_name;
    std::string expected;
    SECTION("(a) a wild pointer") {
        fixture_name = "bad_message_wild";
        expected = "(the plugin's error message pointer is not readable)";
    }
    SECTION("(b) a real text with the length SIZE_MAX") {
        fixture_name = "bad_message_huge";
        expected = "the length of this text is a lie (message cut at 4096 of " +
                   std::to_string(SIZE_MAX) + " bytes)";
    }
    SECTION("(c) a pointer to a PROT_NONE page") {
        fixture_name = "bad_message_guard";
        expected = "(the plugin's error message pointer is not readable)";
    }
    const polyplug::status st = try_load(rt, make_bundle(dir.path(), "liar", fixture_name));
    CHECK(st.code() == polyplug::errc::init_failed);
    CHECK_THAT(st.message(), Catch::Contains("bundle 'liar'"));
    CHECK_THAT(st.message(), Catch::EndsWith("polyplug_init failed with code 7: " + expected));
    CHECK(rt.bundles().empty());
    check_usable(rt, dir.path());
}

TEST_CASE("plugin_message - a C loader's lying message fails the load, nothing else",
          "[plugin_message][load]") {
    temp_dir dir;
    polyplug::runtime rt;
    scripted_loader* loader = add_scripted_loader(rt.host_api());
    guarded_pages pages;
    std::string expected;
    SECTION("a wild pointer") {
        loader->on_load = [](const HostApi*, const LoaderBundleInfo*, AbiError* err) {
            *err = {3, {reinterpret_cast<const std::uint8_t*>(16), 10}};
        };
        expected = "(the plugin's error message pointer is not readable)";
    }
    SECTION("a PROT_NONE page") {
        loader->on_load = [&](const HostApi*, const LoaderBundleInfo*, AbiError* err) {
            *err = {3, {pages.guard(), 32}};
        };
        expected = "(the plugin's error message pointer is not readable)";
    }
    SECTION("the length SIZE_MAX") {
        loader->on_load = [](const HostApi*, const LoaderBundleInfo*, AbiError* err) {
            *err = {3, {reinterpret_cast<const std::uint8_t*>("no such luck"), SIZE_MAX}};
        };
        expected = "no such luck (message cut at 4096 of " + std::to_string(SIZE_MAX) + " bytes)";
    }
    const polyplug::status st = try_load(rt, make_scripted_bundle(dir.path(), "scripted"));
    CHECK(st.code() == polyplug::errc::init_failed);
    CHECK_THAT(st.message(), Catch::EndsWith("failed with code 3: " + expected));
    CHECK(rt.bundles().empty());
    check_usable(rt, dir.path());
}
