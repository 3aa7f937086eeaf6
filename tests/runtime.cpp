// SPDX-License-Identifier: MIT
/// @file runtime.cpp
/// The runtime with real native bundles: loading (and each way it fails), init windows and
/// dependency enforcement, unload refusal, stale handles and cached pointers, instances,
/// compatibility checks, isolation of runtimes.
#include "support.hpp"

#include <polyplug/detail/init_windows.hpp>

#include <dlfcn.h>

#include <chrono>
#include <future>
#include <optional>
#include <thread>

using namespace test_support;
namespace fs = std::filesystem;

namespace {

const std::uint64_t add_id = polyplug::guest_contract_id("test.add", 1);
const std::uint64_t counter_id = polyplug::guest_contract_id("test.counter", 1);

struct add_args {
    std::uint32_t a, b;
};

std::uint32_t call_add(const GuestContractInterface* iface, std::uint32_t a, std::uint32_t b,
                       AbiError& err) {
    add_args args{a, b};
    std::uint32_t out = 0xDEADBEEF;
    err = {};
    polyplug::function_cast<GuestContractFn>(iface->dispatch.native.functions[0])(
        {nullptr, add_id}, &args, &out, &err);
    return out;
}

}  // namespace

TEST_CASE("runtime - loads a native bundle and dispatches through the table", "[runtime]") {
    temp_dir dir;
    polyplug::runtime rt;
    const fs::path bundle = make_bundle(dir.path(), "adder", "adder", adder_provides);
    rt.load_bundle(bundle);

    const GuestContractInterface* iface = rt.resolve(rt.find(add_id));
    REQUIRE(iface != nullptr);
    AbiError err{};
    CHECK(call_add(iface, 3, 5, err) == 8);
    CHECK(err.code == AbiErrorCode_Ok);
    CHECK(call_add(iface, 0, 0, err) == 0);
    CHECK(call_add(iface, UINT32_MAX, 1, err) == 0);  // wraps

    SECTION("the plugin got its bundle id and the bundle directory as UTF-8") {
        using path_fn_t = std::size_t (*)(char*, std::size_t);
        auto path_fn = reinterpret_cast<path_fn_t>(::dlsym(RTLD_DEFAULT, "fixture_bundle_path"));
        // RTLD_LOCAL: the plugin's symbols must NOT be visible globally.
        CHECK(path_fn == nullptr);
        void* handle =
            ::dlopen((bundle / "libadder.so").c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
        REQUIRE(handle != nullptr);
        path_fn = reinterpret_cast<path_fn_t>(::dlsym(handle, "fixture_bundle_path"));
        const auto id_fn =
            reinterpret_cast<std::uint64_t (*)()>(::dlsym(handle, "fixture_bundle_id"));
        REQUIRE(path_fn != nullptr);
        char buf[1024];
        const std::size_t len = path_fn(buf, sizeof buf);
        CHECK(std::string(buf, len) == bundle.string());
        CHECK(id_fn() == polyplug::bundle_id("adder"));
        ::dlclose(handle);
    }
    SECTION("bundle metadata") {
        const auto bundles = rt.bundles();
        REQUIRE(bundles.size() == 1);
        CHECK(bundles[0].name == "adder");
        CHECK(bundles[0].loader == "native");
        CHECK(bundles[0].version == polyplug::version(1, 0, 0));
        CHECK(bundles[0].contracts.size() == 2);
        CHECK(bundles[0].dir == bundle);
    }
    SECTION("a file path inside the bundle loads its directory") {
        polyplug::runtime other;
        other.load_bundle(bundle / "libadder.so");
        CHECK(other.resolve(other.find(add_id)) != nullptr);
    }
    SECTION("loading the same bundle twice is refused") {
        const polyplug::status st = try_load(rt, bundle);
        CHECK(st.code() == polyplug::errc::bundle_already_loaded);
        CHECK(rt.resolve(rt.find(add_id)) != nullptr);
    }
}

TEST_CASE("runtime - load failures: each has its own error and the runtime stays usable",
          "[runtime]") {
    temp_dir dir;
    polyplug::runtime rt;
    polyplug::errc expected{};
    std::string needle;
    fs::path bundle;

    SECTION("missing directory") {
        bundle = dir.path() / "nowhere";
        expected = polyplug::errc::manifest_invalid, needle = "does not exist";
    }
    SECTION("directory without manifest") {
        fs::create_directories(dir.path() / "empty");
        bundle = dir.path() / "empty";
        expected = polyplug::errc::manifest_invalid, needle = "manifest.toml";
    }
    SECTION("missing artifact") {
        bundle = make_bundle(dir.path(), "ghost", "", adder_provides);
        expected = polyplug::errc::artifact_not_found, needle = "not found";
    }
    SECTION("truncated library") {
        bundle = make_bundle(dir.path(), "truncated", "", adder_provides);
        write_file(bundle / "libtruncated.so", std::string("\x7f"
                                                           "ELF",
                                                           4) +
                                                   std::string(60, '\0'));
        expected = polyplug::errc::library_load_failed, needle = "cannot load";
    }
    SECTION("garbage library") {
        bundle = make_bundle(dir.path(), "garbage", "", adder_provides);
        write_file(bundle / "libgarbage.so", "this is not a shared object at all");
        expected = polyplug::errc::library_load_failed, needle = "cannot load";
    }
    SECTION("wrong ABI version: init never runs") {
        bundle = make_bundle(dir.path(), "abi2", "abi_v2");
        expected = polyplug::errc::abi_version_mismatch, needle = "reports ABI version 2";
    }
    SECTION("a shared library that is not a plugin") {
        bundle = make_bundle(dir.path(), "plain", "not_a_plugin");
        expected = polyplug::errc::abi_version_mismatch,
        needle = "does not export polyplug_abi_version";
    }
    SECTION("missing init") {
        bundle = make_bundle(dir.path(), "noinit", "no_init");
        expected = polyplug::errc::init_symbol_missing, needle = "polyplug_init";
    }
    SECTION("unknown loader") {
        bundle = make_bundle(dir.path(), "cobol", "adder", adder_provides, "", "cobol");
        expected = polyplug::errc::no_loader, needle = "no loader named 'cobol'";
    }
    SECTION("tampered id") {
        bundle = make_bundle(dir.path(), "tampered", "adder");
        write_file(bundle / "manifest.toml",
                   "id = \"0x0000000000000001\"\nname = \"tampered\"\nloader = \"native\"\nfile = "
                   "\"libtampered.so\"\n");
        expected = polyplug::errc::bundle_tampered, needle = "tampered";
    }
    SECTION("artifact path escaping the bundle") {
        bundle = make_bundle(dir.path(), "escape", "");
        write_file(bundle / "manifest.toml",
                   "id = \"" + polyplug::format_id(polyplug::bundle_id("escape")) +
                       "\"\nname = \"escape\"\nloader = \"native\"\nfile = \"../x.so\"\n");
        expected = polyplug::errc::path_escapes_bundle, needle = "escape";
    }

    const polyplug::status st = try_load(rt, bundle);
    CHECK(st.code() == expected);
    CHECK_THAT(st.message(), Catch::Contains(needle));
    CHECK(rt.bundles().empty());
    CHECK(rt.core().contracts().contracts().empty());

    // Still usable: a good bundle loads afterwards.
    rt.load_bundle(make_bundle(dir.path(), "adder", "adder", adder_provides));
    CHECK(rt.resolve(rt.find(add_id)) != nullptr);
}

TEST_CASE("runtime - an artifact symlinked out of its bundle: refused unless allowed",
          "[runtime]") {
    temp_dir dir;
    // The library lives outside the bundle; the bundle's file is a symlink to it.
    const fs::path outside = dir.path() / "elsewhere" / "libadder.so";
    fs::create_directories(outside.parent_path());
    fs::copy_file(fixture("adder"), outside);
    const fs::path bundle = make_bundle(dir.path(), "linked", "", adder_provides);
    fs::create_symlink(outside, bundle / "liblinked.so");

    SECTION("by default: errc::path_escapes_bundle, nothing loaded") {
        polyplug::runtime rt;
        const polyplug::status st = try_load(rt, bundle);
        CHECK(st.code() == polyplug::errc::path_escapes_bundle);
        CHECK_THAT(st.message(), Catch::Contains("bundle 'linked'") &&
                                     Catch::Contains("goes through a symlink to '" +
                                                     fs::canonical(outside).string() +
                                                     "', outside the bundle directory"));
        CHECK(rt.bundles().empty());
        CHECK(rt.resolve(rt.find(add_id)) == nullptr);
    }
    SECTION("runtime_options::allow_symlinks_outside_bundle: loads and serves") {
        polyplug::runtime_options options;
        options.allow_symlinks_outside_bundle = true;
        polyplug::runtime rt(options);
        rt.load_bundle(bundle);
        AbiError err{};
        CHECK(call_add(rt.resolve(rt.find(add_id)), 40, 2, err) == 42);
    }
    SECTION("the option never admits a `file` that is absolute or climbs out") {
        polyplug::runtime_options options;
        options.allow_symlinks_outside_bundle = true;
        polyplug::runtime rt(options);
        write_file(bundle / "manifest.toml",
                   "id = \"" + polyplug::format_id(polyplug::bundle_id("linked")) +
                       "\"\nname = \"linked\"\nloader = \"native\"\nfile = \"" + outside.string() +
                       "\"\n");
        CHECK(try_load(rt, bundle).code() == polyplug::errc::path_escapes_bundle);
        write_file(bundle / "manifest.toml",
                   "id = \"" + polyplug::format_id(polyplug::bundle_id("linked")) +
                       "\"\nname = \"linked\"\nloader = \"native\"\nfile = "
                       "\"../elsewhere/libadder.so\"\n");
        CHECK(try_load(rt, bundle).code() == polyplug::errc::path_escapes_bundle);
        CHECK(rt.bundles().empty());
    }
}

TEST_CASE("runtime - two bundles exporting the same symbols stay apart (RTLD_LOCAL)", "[runtime]") {
    // fixture_adder and fixture_adder2 are one source: both export polyplug_init,
    // fixture_bundle_id and the rest under the same names, and keep the same-named statics.
    temp_dir dir;
    polyplug::runtime rt;
    const fs::path one = make_bundle(dir.path(), "adder", "adder", adder_provides);
    const fs::path two = make_bundle(dir.path(), "adder_two", "adder2", adder_provides);
    rt.load_bundle(one);
    rt.load_bundle(two);

    // Each library's own exports answer with what its own init was given: neither bound to the
    // other's symbols or statics.
    const auto bundle_id_of = [](const fs::path& library) {
        void* handle = ::dlopen(library.c_str(), RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD);
        REQUIRE(handle != nullptr);
        const auto fn = reinterpret_cast<std::uint64_t (*)()>(::dlsym(handle, "fixture_bundle_id"));
        REQUIRE(fn != nullptr);
        const std::uint64_t id = fn();
        ::dlclose(handle);
        return id;
    };
    CHECK(bundle_id_of(one / "libadder.so") == polyplug::bundle_id("adder"));
    CHECK(bundle_id_of(two / "libadder_two.so") == polyplug::bundle_id("adder_two"));
    // Nothing leaked into the global namespace for later libraries to bind to.
    CHECK(::dlsym(RTLD_DEFAULT, "fixture_bundle_id") == nullptr);

    const auto providers = rt.find_all(add_id);
    REQUIRE(providers.size() == 2);
    AbiError err{};
    for (const GuestContractHandle handle : providers)
        CHECK(call_add(rt.resolve(handle), 40, 2, err) == 42);
    rt.unload_bundle(polyplug::bundle_id("adder"));
    CHECK(call_add(rt.resolve(rt.find(add_id)), 1, 2, err) == 3);  // the other serves on
}

TEST_CASE("runtime - init that fails after registering leaves nothing behind", "[runtime]") {
    temp_dir dir;
    polyplug::runtime rt;
    const fs::path bundle = make_bundle(dir.path(), "partial", "init_fails", partial_provides);
    const std::uint64_t revision = rt.revision();
    const polyplug::status st = try_load(rt, bundle);
    CHECK(st.code() == polyplug::errc::init_failed);
    CHECK_THAT(st.message(), Catch::Contains("code 42"));
    CHECK_THAT(st.message(), Catch::Contains("deliberate failure after registering test.partial"));
    CHECK(polyplug_handle_is_null(rt.find(polyplug::guest_contract_id("test.partial", 1))));
    CHECK(rt.core().contracts().contracts().empty());
    CHECK(rt.bundles().empty());
    CHECK(rt.revision() == revision);
    CHECK_FALSE(is_mapped(bundle / "libpartial.so"));
    CHECK(rt.loader<polyplug::native_loader>().open_libraries() == 0);
}

TEST_CASE("runtime - non-UTF-8 and null paths through the C API", "[runtime]") {
    polyplug::runtime rt;
    const HostApi* host = rt.host_api();
    const std::uint8_t bad[] = {'/', 't', 'm', 'p', '/', 0xC3, 0x28};
    AbiError err{};
    host->load_bundle(host, bad, sizeof bad, &err);
    CHECK(err.code == AbiErrorCode_Generic);
    CHECK_THAT(take_last_error(host), Catch::Contains("not valid UTF-8"));
    host->load_bundle(host, nullptr, 0, &err);
    CHECK(err.code == AbiErrorCode_InvalidPointer);
    CHECK(host->get_error_len(host) > 0);
    host->reload_bundle(host, bad, sizeof bad, &err);
    CHECK(err.code == AbiErrorCode_Generic);
    // And the runtime still answers.
    CHECK(polyplug_handle_is_null(host->find_guest_contract(host, add_id, 0)));
}

TEST_CASE("runtime - a path with an embedded NUL is refused, not cut at the NUL", "[runtime]") {
    // The system sees the text before the NUL: before the check, "<bundle>/manifest.toml\0junk"
    // loaded the bundle, and "<bundle>\0junk" failed with a last_error holding the raw NUL.
    temp_dir dir;
    const fs::path bundle = make_bundle(dir.path(), "adder", "adder", adder_provides);
    fs::path with_nul(bundle.string() + std::string("\0junk", 5));
    std::string shown = bundle.string() + "\\0junk";
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    polyplug::runtime rt(options);

    std::string operation;
    std::error_code ec;
    SECTION("load_bundle") {
        operation = "load_bundle";
        try {
            rt.load_bundle(with_nul);
            FAIL("loaded");
        } catch (const polyplug::error& e) {
            CHECK(e.code() == polyplug::errc::invalid_path);
        }
        rt.load_bundle(with_nul, ec);
    }
    SECTION("load_bundle, naming the manifest inside the bundle") {
        // Before the check this one loaded the bundle: the system saw ".../manifest.toml".
        with_nul = fs::path((bundle / "manifest.toml").string() + std::string("\0junk", 5));
        shown = (bundle / "manifest.toml").string() + "\\0junk";
        operation = "load_bundle";
        rt.load_bundle(with_nul, ec);
    }
    SECTION("reload_bundle") {
        operation = "reload_bundle";
        rt.reload_bundle(with_nul, ec);
    }
    SECTION("load_dirs, one path among good ones") {
        operation = "load_dirs";
        const std::vector<fs::path> dirs{dir.path(), fs::path(dir.path().string() + '\0')};
        rt.load_dirs(dirs, ec);
        CHECK(rt.last_error() ==
              "load_dirs: path '" + dir.path().string() + "\\0' contains a NUL byte");
    }
    SECTION("watch") {
        operation = "watch";
        rt.watch(std::span(&with_nul, 1), {}, ec);
    }
    CHECK(ec == polyplug::errc::invalid_path);
    if (operation != "load_dirs") {
        CHECK(rt.last_error() == operation + ": path '" + shown + "' contains a NUL byte");
    }
    CHECK(rt.last_error().find('\0') == std::string::npos);
    CHECK(rt.bundles().empty());
    rt.load_bundle(bundle);  // unchanged: the bundle itself loads
    CHECK(rt.bundles().size() == 1);
}

TEST_CASE("runtime - a manifest with a bare decimal id above 2^63 - 1 loads (issue 21)",
          "[runtime]") {
    // As the original's manifests write it; "fixture_adder" hashes above 2^63 - 1.
    const std::uint64_t id = polyplug::bundle_id("fixture_adder");
    REQUIRE(id >> 63u);
    temp_dir dir;
    const fs::path bundle = make_bundle(dir.path(), "fixture_adder", "adder", adder_provides);
    const auto write_manifest_with_id = [&](std::uint64_t written) {
        write_file(bundle / "manifest.toml",
                   "id = " + std::to_string(written) +
                       "\nname = \"fixture_adder\"\nversion = \"1.0.0\"\nloader = \"native\"\n"
                       "file = \"libfixture_adder.so\"\n" +
                       adder_provides);
    };
    polyplug::runtime rt;
    std::error_code ec;
    write_manifest_with_id(id + 1);
    rt.load_bundle(bundle, ec);
    CHECK(ec == polyplug::errc::bundle_tampered);
    CHECK(rt.bundles().empty());

    write_manifest_with_id(id);
    rt.load_bundle(bundle);
    REQUIRE(rt.bundles().size() == 1);
    CHECK(rt.bundles()[0].id == id);
    CHECK(rt.resolve(rt.find(add_id)) != nullptr);
}

TEST_CASE("runtime - dependency enforcement inside and outside init windows", "[runtime]") {
    temp_dir dir;
    polyplug::runtime rt;
    rt.load_bundle(make_bundle(dir.path(), "adder", "adder", adder_provides));
    const std::string dependency =
        "[[dependency]]\nkind = \"contract\"\ncontract = \"test.add@1\"\nmin_version = \"1.0\"\n";
    const fs::path depender = make_bundle(
        dir.path(), "depender", "depender",
        "provides = [\"test.depender@1\"]\nfunction_count = { \"test.depender@1\" = 1 }\n",
        dependency);
    rt.load_bundle(depender);

    void* handle =
        ::dlopen((depender / "libdepender.so").c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    REQUIRE(handle != nullptr);
    using probes_fn = void (*)(int*, int*, std::size_t*, std::size_t*, std::size_t*, std::uint64_t*,
                               std::uint32_t*);
    const auto probes = reinterpret_cast<probes_fn>(::dlsym(handle, "fixture_probes"));
    REQUIRE(probes != nullptr);
    int declared = -1, undeclared = -1;
    std::size_t declared_all = 0, undeclared_all = 0, dependency_count = 0;
    std::uint64_t dependency_contract = 0;
    std::uint32_t dependency_min = 0;
    probes(&declared, &undeclared, &declared_all, &undeclared_all, &dependency_count,
           &dependency_contract, &dependency_min);
    ::dlclose(handle);

    CHECK(declared == 1);    // declared dependency found during init
    CHECK(undeclared == 0);  // undeclared one hidden, though a provider exists
    CHECK(declared_all == 1);
    CHECK(undeclared_all == 0);
    CHECK(dependency_count == 1);  // get_dependencies inside the window
    CHECK(dependency_contract == add_id);
    CHECK(dependency_min == 1);

    // Outside the window (the host), both are found, and get_dependencies is empty.
    CHECK_FALSE(polyplug_handle_is_null(rt.find(add_id)));
    CHECK_FALSE(polyplug_handle_is_null(rt.find(counter_id)));
    const HostApi* host = rt.host_api();
    ArrayOf_DependencyInfo none = host->get_dependencies(host);
    CHECK(none.len == 0);
    CHECK(none.items == nullptr);

    SECTION("unload of a provider is refused while a dependent is loaded") {
        std::error_code ec;
        rt.unload_bundle(polyplug::bundle_id("adder"), ec);
        CHECK(ec == polyplug::errc::dependency_in_use);
        CHECK_THAT(rt.last_error(), Catch::Contains("'depender'"));
        CHECK(rt.resolve(rt.find(add_id)) != nullptr);
        rt.unload_bundle(polyplug::bundle_id("depender"));
        rt.unload_bundle(polyplug::bundle_id("adder"));
        CHECK(rt.bundles().empty());
    }
}

TEST_CASE("runtime - unload: stale handles, stubbed cached pointers, code unmapped", "[runtime]") {
    temp_dir dir;
    std::vector<std::uint32_t> phases;
    polyplug::runtime_options options;
    options.unload_grace_period = std::chrono::milliseconds(0);  // unmap at once
    options.on_reload = [&](const ReloadPhase& phase) {
        phases.push_back(phase.phase_type);
        CHECK(polyplug::detail::view_of(phase.bundle_name) == "adder");
        CHECK(phase.reason.ptr == nullptr);
    };
    polyplug::runtime rt(options);
    const fs::path bundle = make_bundle(dir.path(), "adder", "adder", adder_provides);
    rt.load_bundle(bundle);
    const GuestContractHandle handle = rt.find(add_id);
    const GuestContractInterface* cached = rt.resolve(handle);
    REQUIRE(cached != nullptr);
    const std::uint64_t revision = rt.revision();
    CHECK(is_mapped(bundle / "libadder.so"));

    rt.unload_bundle(polyplug::bundle_id("adder"));

    CHECK(phases == std::vector<std::uint32_t>{ReloadPhaseType_Unloading});
    CHECK(rt.revision() != revision);
    CHECK(rt.resolve(handle) == nullptr);
    CHECK(polyplug_handle_is_null(rt.find(add_id)));
    CHECK(rt.bundles().empty());
    CHECK_FALSE(is_mapped(bundle / "libadder.so"));

    // The host kept a raw pointer: calling through it reports StaleHandle instead of crashing.
    AbiError err{};
    std::uint32_t out = call_add(cached, 1, 2, err);
    CHECK(err.code == AbiErrorCode_StaleHandle);
    CHECK(out == 0xDEADBEEF);  // untouched
    CHECK_THAT(std::string(polyplug::detail::view_of(err.message)), Catch::Contains("unloaded"));
    GuestContractInstance instance{reinterpret_cast<void*>(1), 1};
    rt.host_api()->create_guest_instance(rt.host_api(), cached, nullptr, &instance);
    CHECK(instance.data == nullptr);

    SECTION("unloading again is an error naming the id") {
        std::error_code ec;
        rt.unload_bundle(polyplug::bundle_id("adder"), ec);
        CHECK(ec == polyplug::errc::bundle_not_loaded);
    }
    SECTION("the bundle loads again, with a new generation") {
        rt.load_bundle(bundle);
        const GuestContractHandle fresh = rt.find(add_id);
        CHECK(fresh.generation != handle.generation);
        CHECK(rt.resolve(handle) == nullptr);  // the old handle stays stale
        // The unloaded contract's copy is reused for the same bundle's same contract (memory
        // stays flat over load/unload cycles), so the old pointer reaches the new code, as
        // across a reload.
        CHECK(rt.resolve(fresh) == cached);
        CHECK(call_add(cached, 40, 2, err) == 42);
        CHECK(err.code == AbiErrorCode_Ok);
        rt.unload_bundle(polyplug::bundle_id("adder"));
        call_add(cached, 1, 2, err);
        CHECK(err.code == AbiErrorCode_StaleHandle);  // and it is stubbed again at the next unload
    }
}

TEST_CASE("runtime - instances are created through the host and counted", "[runtime]") {
    temp_dir dir;
    polyplug::runtime_options options;
    log_capture logs;
    options.log = logs.callback();
    polyplug::runtime rt(options);
    rt.load_bundle(make_bundle(dir.path(), "adder", "adder", adder_provides));
    const HostApi* host = rt.host_api();
    const GuestContractInterface* counter = rt.resolve(rt.find(counter_id));
    REQUIRE(counter != nullptr);

    const std::uint64_t start = 40;
    GuestContractInstance instance{};
    host->create_guest_instance(host, counter, &start, &instance);
    REQUIRE(instance.data != nullptr);
    CHECK(instance.contract_id == counter_id);
    const auto live = [&] {
        return rt.bundle(polyplug::bundle_id("adder"))->contracts[1].live_instances;
    };
    CHECK(live() == 1);

    std::uint64_t value = 0;
    AbiError err{};
    polyplug::function_cast<GuestContractFn>(counter->dispatch.native.functions[0])(
        instance, nullptr, &value, &err);
    CHECK(value == 41);

    SECTION("destroy decrements") {
        host->destroy_guest_instance(host, counter, instance);
        CHECK(live() == 0);
    }
    SECTION("unloading with a live instance warns and proceeds") {
        rt.unload_bundle(polyplug::bundle_id("adder"));
        CHECK(logs.contains("1 live instance(s) of 'test.counter'"));
        // destroy_instance is a stub now, so the plugin's state cannot be released through the
        // contract any more: the leak the warning announced. The fixture allocated it with
        // malloc, so the test releases it itself.
        host->destroy_guest_instance(host, counter, instance);
        std::free(instance.data);
    }
    SECTION("stateless instances (null data) are valid and not counted") {
        const GuestContractInterface* add = rt.resolve(rt.find(add_id));
        GuestContractInstance stateless{reinterpret_cast<void*>(1), 0};
        host->create_guest_instance(host, add, nullptr, &stateless);
        CHECK(stateless.data == nullptr);
        CHECK(stateless.contract_id == add_id);
        CHECK(rt.bundle(polyplug::bundle_id("adder"))->contracts[0].live_instances == 0);
        host->destroy_guest_instance(host, counter, instance);
    }
}

TEST_CASE("runtime - compatibility modes gate function_count and version mismatches", "[runtime]") {
    temp_dir dir;
    log_capture logs;
    polyplug::runtime_options options;
    options.log = logs.callback();
    std::string bundle_extra;
    std::string needle;

    SECTION("declared function_count differs from the interface") {
        bundle_extra =
            "provides = [\"test.add@1\", \"test.counter@1\"]\n"
            "function_count = { \"test.add@1\" = 2, \"test.counter@1\" = 1 }\n";
        needle = "declared function_count 2 but interface exports 1";
    }
    SECTION("function_count entry missing") {
        bundle_extra =
            "provides = [\"test.add@1\", \"test.counter@1\"]\nfunction_count = { \"test.add@1\" = "
            "1 }\n";
        needle = "no function_count entry";
    }

    for (const auto mode : {polyplug::compatibility::strict, polyplug::compatibility::relaxed,
                            polyplug::compatibility::yolo}) {
        options.compat = mode;
        polyplug::runtime rt(options);
        logs.records.clear();
        const polyplug::status st =
            try_load(rt, make_bundle(dir.path(), "adder", "adder", bundle_extra));
        INFO("mode " << static_cast<int>(mode));
        if (mode == polyplug::compatibility::strict) {
            CHECK(st.code() == polyplug::errc::function_count_mismatch);
            CHECK_THAT(st.message(), Catch::Contains(needle));
            CHECK(rt.bundles().empty());
        } else {
            CHECK(st.ok());
            CHECK(rt.bundles().size() == 1);
            CHECK(logs.contains(needle) == (mode == polyplug::compatibility::relaxed));
        }
        fs::remove_all(dir.path() / "adder");
    }
}

TEST_CASE("runtime - provider version too old for a dependency, per mode", "[runtime]") {
    temp_dir dir;
    for (const auto mode : {polyplug::compatibility::strict, polyplug::compatibility::relaxed,
                            polyplug::compatibility::yolo}) {
        INFO("mode " << static_cast<int>(mode));
        log_capture logs;
        polyplug::runtime_options options;
        options.compat = mode;
        options.log = logs.callback();
        polyplug::runtime rt(options);
        rt.load_bundle(make_bundle(dir.path(), "adder", "adder", adder_provides));  // version 1.0.0
        const std::string dependency =
            "[[dependency]]\ncontract = \"test.add@1\"\nmin_version = \"1.2\"\n";
        const polyplug::status st = try_load(
            rt,
            make_bundle(
                dir.path(), "depender", "depender",
                "provides = [\"test.depender@1\"]\nfunction_count = { \"test.depender@1\" = 1 }\n",
                dependency));
        if (mode == polyplug::compatibility::strict) {
            CHECK(st.code() == polyplug::errc::version_mismatch);
        } else {
            CHECK(st.ok());
        }
        CHECK(logs.contains("version mismatch") == (mode == polyplug::compatibility::relaxed));
        fs::remove_all(dir.path());
        fs::create_directories(dir.path());
    }
}

TEST_CASE("runtime - two runtimes share nothing", "[runtime]") {
    temp_dir dir;
    polyplug::runtime a;
    polyplug::runtime b;
    CHECK(a.host_api() != b.host_api());
    a.load_bundle(make_bundle(dir.path(), "adder", "adder", adder_provides));
    CHECK(a.resolve(a.find(add_id)) != nullptr);
    CHECK(polyplug_handle_is_null(b.find(add_id)));
    CHECK(b.bundles().empty());
    std::error_code ec;
    b.load_bundle(dir.path() / "missing", ec);
    CHECK(ec);
    CHECK_FALSE(b.last_error().empty());
    CHECK(a.last_error().empty());
    // The same bundle can be loaded in both; unloading it from one leaves the other intact.
    b.load_bundle(dir.path() / "adder");
    a.unload_bundle(polyplug::bundle_id("adder"));
    AbiError err{};
    CHECK(call_add(b.resolve(b.find(add_id)), 20, 22, err) == 42);
}

TEST_CASE("runtime - loaders: duplicate names refused, C loader tables owned",
          "[runtime][loader]") {
    polyplug::runtime rt;
    const HostApi* host = rt.host_api();
    CHECK(rt.core().loader_names() == std::vector<std::string>{"native"});
    bool destroyed = false;
    scripted_loader* loader = nullptr;
    BundleLoader* table = scripted_loader::create(loader, "native");
    loader->destroyed = &destroyed;
    AbiError err{};
    host->register_loader(host, table, &err);
    CHECK(err.code == AbiErrorCode_Generic);
    CHECK(destroyed);  // ownership transferred even on refusal
    CHECK_THAT(take_last_error(host), Catch::Contains("already registered"));

    SECTION("a malformed table is refused and destroyed") {
        destroyed = false;
        table = scripted_loader::create(loader, "other");
        loader->destroyed = &destroyed;
        table->abi_version = 99;
        host->register_loader(host, table, &err);
        CHECK(err.code == AbiErrorCode_Generic);
        CHECK(destroyed);
    }
    SECTION("null is refused") {
        host->register_loader(host, nullptr, &err);
        CHECK(err.code == AbiErrorCode_InvalidPointer);
    }
    SECTION("8 threads racing one name: exactly one wins") {
        std::atomic<int> ok{0}, refused{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < 8; ++i) {
            threads.emplace_back([&] {
                scripted_loader* l = nullptr;
                AbiError e{};
                host->register_loader(host, scripted_loader::create(l, "racer"), &e);
                (e.code == AbiErrorCode_Ok ? ok : refused)++;
            });
        }
        for (auto& t : threads) t.join();
        CHECK(ok == 1);
        CHECK(refused == 7);
    }
}

TEST_CASE("runtime - scripted C loader gets the bundle and its reclaim hook", "[runtime][loader]") {
    temp_dir dir;
    polyplug::runtime rt;
    scripted_loader* loader = add_scripted_loader(rt.host_api());
    std::string seen_name, seen_artifact;
    std::uint64_t seen_id = 0;
    std::uint64_t seen_load_id = 0;
    loader->on_load = [&](const HostApi*, const LoaderBundleInfo* info, AbiError*) {
        seen_load_id = info->load_id;
        seen_name = polyplug::detail::view_of(info->name);
        seen_artifact = polyplug::detail::view_of(info->artifact_path);
        seen_id = info->bundle_id;
    };
    const fs::path bundle = make_scripted_bundle(dir.path(), "scripted");
    rt.load_bundle(bundle);
    CHECK(seen_name == "scripted");
    CHECK(seen_artifact == (bundle / "libscripted.so").string());
    CHECK(seen_id == polyplug::bundle_id("scripted"));
    CHECK(rt.bundles()[0].language == SupportedLanguage_Cpp);
    rt.unload_bundle(seen_id);
    CHECK(seen_load_id != 0);
    CHECK(loader->unloaded == std::vector<std::uint64_t>{seen_load_id});  // released by load id

    SECTION("a loader failure becomes the load's error with the loader's message") {
        loader->on_load = [](const HostApi*, const LoaderBundleInfo*, AbiError* err) {
            *err = {AbiErrorCode_Generic, polyplug_sv("script did not parse")};
        };
        const polyplug::status st = try_load(rt, bundle);
        CHECK(st.code() == polyplug::errc::init_failed);
        CHECK_THAT(st.message(), Catch::Contains("script did not parse"));
    }
}

TEST_CASE("runtime - 8 threads creating, loading and destroying runtimes",
          "[runtime][concurrency]") {
    temp_dir dir;
    const fs::path bundle = make_bundle(dir.path(), "adder", "adder", adder_provides);
    // Keeps the library mapped throughout: otherwise the last runtime to unload it unmaps it and
    // the next load maps it again at the same address, and ThreadSanitizer (which does not reset
    // its shadow memory on dlclose) reports the new mapping's first writes as races with the old
    // mapping's accesses.
    polyplug::runtime anchor;
    anchor.load_bundle(bundle);
    std::atomic<int> good{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 10; ++i) {
                polyplug::runtime rt;
                if (t % 2 == 0) {
                    std::error_code ec;
                    rt.load_bundle(bundle, ec);
                    AbiError err{};
                    if (!ec && call_add(rt.resolve(rt.find(add_id)), 40, 2, err) == 42) ++good;
                } else if (polyplug_handle_is_null(rt.find(add_id))) {
                    ++good;
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(good == 80);
}

namespace {

/// A compile-time loader for basic_runtime<...>: "loads" a bundle by registering test.seven@1
/// from inside the init window the runtime opened, or throws when told to.
class scripted_cpp_loader {
public:
    [[nodiscard]] std::string_view name() const noexcept { return "cpp-test"; }
    [[nodiscard]] std::uint32_t language() const noexcept { return SupportedLanguage_Cpp; }
    [[nodiscard]] bool supports_hot_reload() const noexcept { return false; }

    polyplug::status load(const polyplug::bundle_context& context) {
        if (throw_next) throw std::runtime_error("loader exploded");
        static const GuestContractInterface iface = seven_interface("test.seven");
        static const PluginDescriptor desc = descriptor_for("test.seven");
        AbiError err{};
        context.host->register_guest_contract(context.host, &desc, &iface, &err);
        ++loads;
        return err.code == AbiErrorCode_Ok ? polyplug::status{}
                                           : polyplug::status{polyplug::errc::generic, "refused"};
    }
    polyplug::status reload(const polyplug::bundle_context&) {
        return {polyplug::errc::hot_reload_disabled, "no"};
    }
    void unload(const HostApi*, std::uint64_t) { ++unloads; }

    bool throw_next = false;
    int loads = 0;
    int unloads = 0;
};

}  // namespace

TEST_CASE("runtime - basic_runtime with a compile-time C++ loader", "[runtime][loader]") {
    temp_dir dir;
    polyplug::basic_runtime<polyplug::native_loader, scripted_cpp_loader> rt;
    CHECK(rt.core().loader_names() == std::vector<std::string>{"native", "cpp-test"});
    const fs::path bundle =
        make_bundle(dir.path(), "seven", "",
                    "provides = [\"test.seven@1\"]\nfunction_count = { \"test.seven@1\" = 1 }\n",
                    "", "cpp-test");
    write_file(bundle / "libseven.so", "not a library: this loader never opens it");

    rt.load_bundle(bundle);
    CHECK(rt.loader<scripted_cpp_loader>().loads == 1);
    CHECK(rt.resolve(rt.find(polyplug::guest_contract_id("test.seven", 1))) != nullptr);
    CHECK(rt.bundles().at(0).language == SupportedLanguage_Cpp);
    rt.unload_bundle(polyplug::bundle_id("seven"));
    CHECK(rt.loader<scripted_cpp_loader>().unloads == 1);

    SECTION("a loader that throws: error, nothing registered, init window closed") {
        rt.loader<scripted_cpp_loader>().throw_next = true;
        const polyplug::status st = try_load(rt, bundle);
        CHECK(st.code() == polyplug::errc::init_failed);
        CHECK_THAT(st.message(), Catch::Contains("loader exploded"));
        CHECK(rt.bundles().empty());
        // The window closed: a registration now is refused as outside any init window.
        const GuestContractInterface iface = seven_interface("test.after");
        const PluginDescriptor desc = descriptor_for("test.after");
        AbiError err{};
        rt.host_api()->register_guest_contract(rt.host_api(), &desc, &iface, &err);
        CHECK(err.code == AbiErrorCode_Generic);
        // And the bundle can be loaded once the loader behaves.
        rt.loader<scripted_cpp_loader>().throw_next = false;
        rt.load_bundle(bundle);
        CHECK(rt.bundles().size() == 1);
    }
}

TEST_CASE("runtime - init windows nest: a load from inside init restores the outer window",
          "[runtime]") {
    temp_dir dir;
    polyplug::runtime rt;
    scripted_loader* loader = add_scripted_loader(rt.host_api());
    const fs::path inner = make_bundle(dir.path(), "adder", "adder", adder_provides);
    const fs::path outer = make_scripted_bundle(
        dir.path(), "outer",
        "provides = [\"test.outer@1\"]\nfunction_count = { \"test.outer@1\" = 1 }\n",
        "[[dependency]]\ncontract = \"test.add@1\"\nmin_version = \"1.0\"\n");
    const GuestContractInterface iface = seven_interface("test.outer");
    const PluginDescriptor desc = descriptor_for("test.outer");

    bool add_hidden_before = false, add_visible_after = false, counter_hidden_after = false;
    AbiError nested{}, registered{};
    loader->on_load = [&](const HostApi* host, const LoaderBundleInfo*, AbiError*) {
        const std::uint64_t add = polyplug::guest_contract_id("test.add", 1);
        add_hidden_before = polyplug_handle_is_null(host->find_guest_contract(host, add, 0));
        load_or_fail(host, inner, nested);  // re-entrant: the adder's init runs in its own window
        add_visible_after = !polyplug_handle_is_null(host->find_guest_contract(host, add, 0));
        counter_hidden_after = polyplug_handle_is_null(
            host->find_guest_contract(host, polyplug::guest_contract_id("test.counter", 1), 0));
        host->register_guest_contract(host, &desc, &iface, &registered);
    };
    rt.load_bundle(outer);
    CHECK(add_hidden_before);  // declared, but no provider loaded yet
    CHECK(nested.code == AbiErrorCode_Ok);
    CHECK(add_visible_after);     // declared, provider now loaded
    CHECK(counter_hidden_after);  // outer window restored: undeclared stays hidden
    CHECK(registered.code == AbiErrorCode_Ok);
    const auto outer_info = rt.bundle(polyplug::bundle_id("outer"));
    REQUIRE(outer_info);
    REQUIRE(outer_info->contracts.size() == 1);  // attributed to the outer bundle
    CHECK(outer_info->contracts[0].contract_name == "test.outer");
    CHECK(rt.bundle(polyplug::bundle_id("adder"))->contracts.size() == 2);
}

namespace {

/// Polls until `path` is no longer mapped; returns how long that took (or nullopt on timeout).
std::optional<std::chrono::milliseconds> wait_until_unmapped(const fs::path& path,
                                                             std::chrono::milliseconds limit) {
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < limit) {
        if (!is_mapped(path))
            return std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - start);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return std::nullopt;
}

}  // namespace

TEST_CASE("runtime - unload keeps the code mapped for the grace period, then unmaps it",
          "[runtime][unmap]") {
    temp_dir dir;
    polyplug::runtime_options options;
    options.unload_grace_period = std::chrono::milliseconds(300);
    polyplug::runtime rt(options);
    const fs::path bundle = make_bundle(dir.path(), "adder", "adder", adder_provides);
    const fs::path library = bundle / "libadder.so";
    rt.load_bundle(bundle);
    const GuestContractInterface* cached = rt.resolve(rt.find(add_id));
    REQUIRE(cached != nullptr);

    const auto unloaded_at = std::chrono::steady_clock::now();
    rt.unload_bundle(polyplug::bundle_id("adder"));
    CHECK(is_mapped(library));  // not before the grace period...
    CHECK(rt.core().pending_unmaps() == 1);
    AbiError err{};
    call_add(cached, 1, 2, err);
    CHECK(err.code == AbiErrorCode_StaleHandle);  // ...though the contract is already gone

    const auto gone = wait_until_unmapped(library, std::chrono::seconds(10));
    REQUIRE(gone.has_value());  // ...and unmapped after it
    CHECK(std::chrono::steady_clock::now() - unloaded_at >= std::chrono::milliseconds(300));
    CHECK(rt.core().pending_unmaps() == 0);

    // The code is really gone; the cached pointer still cannot crash the host (run this under
    // AddressSanitizer: scripts/test.sh does).
    call_add(cached, 1, 2, err);
    CHECK(err.code == AbiErrorCode_StaleHandle);

    SECTION("loading the bundle again during a grace period is safe") {
        rt.load_bundle(bundle);
        rt.unload_bundle(polyplug::bundle_id("adder"));
        rt.load_bundle(bundle);  // the previous version's pin is still pending
        const GuestContractInterface* fresh = rt.resolve(rt.find(add_id));
        REQUIRE(fresh != nullptr);
        std::this_thread::sleep_for(std::chrono::milliseconds(400));  // the pin is released...
        CHECK(call_add(fresh, 20, 22, err) == 42);  // ...the live version is untouched:
        // it was loaded from a private copy (the old version was still mapped), so the original
        // file's mapping went away with the pin.
        CHECK_FALSE(is_mapped(library));
    }
}

TEST_CASE("runtime - unmap policy 'never' keeps unloaded code until the runtime dies",
          "[runtime][unmap]") {
    temp_dir dir;
    const fs::path bundle = make_bundle(dir.path(), "adder", "adder", adder_provides);
    const fs::path library = bundle / "libadder.so";
    {
        polyplug::runtime_options options;
        options.unmap = polyplug::unmap_policy::never;
        options.unload_grace_period = std::chrono::milliseconds(0);
        polyplug::runtime rt(options);
        rt.load_bundle(bundle);
        rt.unload_bundle(polyplug::bundle_id("adder"));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        CHECK(is_mapped(library));
        CHECK(rt.core().pending_unmaps() == 1);

        SECTION("switching the policy applies to later unloads") {
            rt.core().set_unmap_policy(polyplug::unmap_policy::after_grace_period,
                                       std::chrono::milliseconds(0));
            rt.load_bundle(bundle);
            rt.unload_bundle(polyplug::bundle_id("adder"));
            CHECK(rt.core().pending_unmaps() == 1);  // the first one stays pinned
        }
    }
    CHECK_FALSE(is_mapped(library));  // runtime destroyed: everything closed
}

TEST_CASE("runtime - a plugin cannot register host contracts or loaders from its init",
          "[runtime][loader]") {
    temp_dir dir;
    polyplug::runtime rt;
    scripted_loader* loader = add_scripted_loader(rt.host_api());
    static HostContractInterface host_iface{};  // never registered: refused before use
    AbiError contract_err{}, loader_err{};
    bool destroyed = false;
    loader->on_load = [&](const HostApi* host, const LoaderBundleInfo*, AbiError*) {
        host->register_host_contract(host, &host_iface, &contract_err);
        scripted_loader* nested = nullptr;
        BundleLoader* table = scripted_loader::create(nested, "from-a-plugin");
        nested->destroyed = &destroyed;
        host->register_loader(host, table, &loader_err);
    };
    rt.load_bundle(make_scripted_bundle(dir.path(), "sneaky"));
    CHECK(contract_err.code == AbiErrorCode_Generic);
    CHECK(loader_err.code == AbiErrorCode_Generic);
    CHECK(destroyed);  // ownership transferred, so the refused table was destroyed
    CHECK_THAT(rt.last_error(), Catch::Contains("during the init of bundle 'sneaky'"));
    CHECK(rt.core().loader_names() == std::vector<std::string>{"native", "test"});
}

TEST_CASE("init_windows - windows of two threads interleave: each thread sees only its own",
          "[runtime]") {
    // One flat list holds the windows of every thread in the order they opened; a thread's
    // innermost is its last entry, and closing one thread's window leaves the other's alone,
    // wherever it sits in the list.
    polyplug::detail::init_windows windows;
    std::promise<void> first_open, second_open, first_closed;
    std::uint64_t seen_by_second = 99, seen_after_close = 99;
    std::thread second([&] {
        first_open.get_future().wait();
        const polyplug::detail::init_windows::scope window(windows, 2, nullptr);
        second_open.set_value();
        first_closed.get_future().wait();
        seen_by_second = windows.current_bundle();
    });
    {
        const polyplug::detail::init_windows::scope window(windows, 1, nullptr);
        first_open.set_value();
        second_open.get_future().wait();
        CHECK(windows.current_bundle() == 1);  // the other thread's later window is not ours
    }
    seen_after_close = windows.current_bundle();
    first_closed.set_value();
    second.join();
    CHECK(seen_after_close == 0);
    CHECK(seen_by_second == 2);
    CHECK(windows.current_bundle() == 0);
    CHECK(windows.may_look_up(42));  // no window open anywhere: every lookup allowed
}
