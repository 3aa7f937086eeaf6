// SPDX-License-Identifier: MIT
/// @file preflight.cpp
/// A library whose static constructor throws: without runtime_options::preflight_native_libraries
/// it ends the host inside dlopen (std::terminate; the plugin's fault, as in the original); with
/// it, the constructor runs first in a child process and the load or reload is refused.
#include "child_process.hpp"
#include "support.hpp"

#include <string>

namespace {

using namespace test_support;

const std::uint64_t add_id = polyplug::guest_contract_id("test.add", 1);

polyplug::runtime_options preflight_options() {
    polyplug::runtime_options options;
    options.preflight_native_libraries = true;
    options.hot_reload_enabled = true;
    return options;
}

}  // namespace

TEST_CASE("preflight - without it, a throwing static constructor ends the host", "[preflight]") {
    const child_result child = run_child("preflight child - load without pre-flight");
    INFO("child output:\n" << child.output);
    CHECK_FALSE((child.exited && child.code == 0));
    CHECK(child.output.find("terminate called") != std::string::npos);
    CHECK(child.output.find("All tests passed") == std::string::npos);
}

TEST_CASE("preflight child - load without pre-flight", "[.child]") {
    temp_dir dir;
    polyplug::runtime rt;
    (void)try_load(rt, make_bundle(dir.path(), "throws", "ctor_throws"));
    FAIL("the load returned");  // not reached: std::terminate inside dlopen
                                // (detail/dynamic_library.hpp)
}

TEST_CASE("preflight - a throwing static constructor is refused; the runtime is unchanged",
          "[preflight]") {
    temp_dir dir;
    polyplug::runtime rt(preflight_options());
    const polyplug::status st = try_load(rt, make_bundle(dir.path(), "throws", "ctor_throws"));
    CHECK(st.code() == polyplug::errc::library_load_failed);
    // Whether the exception gets out of dlopen before std::terminate depends on the compiler
    // that built the runtime: GCC aborts the child (SIGABRT), Clang lets it reach the child's
    // handler. Either way the child names it and the host goes on.
    CHECK_THAT(st.message(),
               Catch::StartsWith("bundle 'throws': pre-flight of '") &&
                   Catch::Contains("libthrows.so': its static initialisation ") &&
                   (Catch::Contains("ended a child process with SIGABRT (it said: "
                                    "\"std::terminate called after throwing: ") ||
                    Catch::Contains("threw an exception out of dlopen (it said: \"")) &&
                   Catch::Contains("static constructor failed on purpose\")"));
    CHECK(rt.bundles().empty());
    CHECK(rt.core().contracts().contracts().empty());

    SECTION("a good library passes the pre-flight and loads") {
        rt.load_bundle(make_bundle(dir.path(), "adder", "adder", adder_provides));
        CHECK(rt.resolve(rt.find(add_id)) != nullptr);
    }
}

TEST_CASE("preflight - a reload to a throwing constructor fails; the old version serves on",
          "[preflight]") {
    temp_dir dir;
    polyplug::runtime rt(preflight_options());
    const fs::path bundle = make_bundle(dir.path(), "adder", "adder", adder_provides);
    rt.load_bundle(bundle);
    // Replaced by rename, as a deployment should: the old file stays intact under its mapping.
    fs::copy_file(fixture("ctor_throws"), bundle / "libadder.so.new");
    fs::rename(bundle / "libadder.so.new", bundle / "libadder.so");
    std::error_code ec;
    rt.reload_bundle(bundle, ec);
    CHECK(ec.value() == static_cast<int>(polyplug::errc::library_load_failed));
    CHECK_THAT(rt.last_error(), Catch::Contains("pre-flight of '") &&
                                    Catch::Contains("static constructor failed on purpose"));
    const GuestContractInterface* add = rt.resolve(rt.find(add_id));
    REQUIRE(add != nullptr);
    struct {
        std::uint32_t a, b;
    } args{20, 22};
    std::uint32_t out = 0;
    AbiError err{};
    polyplug::function_cast<GuestContractFn>(add->dispatch.native.functions[0])({nullptr, add_id},
                                                                                &args, &out, &err);
    CHECK(err.code == AbiErrorCode_Ok);
    CHECK(out == 42);
}
