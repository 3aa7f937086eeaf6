// SPDX-License-Identifier: MIT
/// @file host_api.cpp
/// The HostApi table itself: null tolerance of every function, last_error rules, logging,
/// alloc/free, host contracts (version packing, singletons), revision counter, list_bundles.
#include "support.hpp"

#include <algorithm>
#include <thread>

using namespace test_support;

TEST_CASE("host_api - every field is set, runtime points at the runtime, reserved is null",
          "[host_api]") {
    polyplug::runtime rt;
    const HostApi* host = rt.host_api();
    CHECK(polyplug::runtime_core::from_host_api(host) == &rt.core());
    CHECK(host->reserved == nullptr);
    const void* const* fields = reinterpret_cast<const void* const*>(host);
    for (std::size_t i = 1; i < 22; ++i) {
        INFO("field " << i);
        CHECK(fields[i] != nullptr);
    }
}

TEST_CASE("host_api - every function tolerates a null self", "[host_api]") {
    polyplug::runtime rt;
    const HostApi& t = *rt.host_api();  // the functions, called with self = NULL
    AbiError err{};
    const PluginDescriptor desc = descriptor_for("x");
    const GuestContractInterface iface = seven_interface("x");
    t.register_guest_contract(nullptr, &desc, &iface, &err);
    CHECK(err.code == AbiErrorCode_InvalidPointer);
    CHECK(polyplug_handle_is_null(t.find_guest_contract(nullptr, 1, 0)));
    const ArrayOf_GuestContractHandle all = t.find_all_guest_contracts(nullptr, 1, 0);
    CHECK((all.items == nullptr && all.len == 0));
    CHECK(t.resolve_guest_contract(nullptr, {0, 0}) == nullptr);
    CHECK(t.get_host_contract(nullptr, 1, 0).data == nullptr);
    CHECK(t.resolve_host_contract_interface(nullptr, 1, 0) == nullptr);
    CHECK(t.list_bundles(nullptr).len == 0);
    CHECK(t.get_dependencies(nullptr).len == 0);
    err = {};
    t.load_bundle(nullptr, reinterpret_cast<const std::uint8_t*>("/x"), 2, &err);
    CHECK(err.code == AbiErrorCode_InvalidPointer);
    err = {};
    t.reload_bundle(nullptr, reinterpret_cast<const std::uint8_t*>("/x"), 2, &err);
    CHECK(err.code == AbiErrorCode_InvalidPointer);
    err = {};
    HostContractInterface host_iface{};
    t.register_host_contract(nullptr, &host_iface, &err);
    CHECK(err.code == AbiErrorCode_InvalidPointer);
    err = {};
    t.register_loader(nullptr, nullptr, &err);
    CHECK(err.code == AbiErrorCode_InvalidPointer);
    std::uint8_t buf[8];
    CHECK(t.get_last_error(nullptr, buf, sizeof buf) == 0);
    CHECK(t.get_error_len(nullptr) == 20);  // strlen("null HostApi pointer")
    err = {};
    t.unload_bundle(nullptr, 1, &err);
    CHECK(err.code == AbiErrorCode_InvalidPointer);
    t.log(nullptr, LogLevel_Error, polyplug_sv("s"), polyplug_sv("m"));
    GuestContractInstance instance{reinterpret_cast<void*>(1), 1};
    t.create_guest_instance(nullptr, &iface, nullptr, &instance);
    CHECK(instance.data == nullptr);
    t.destroy_guest_instance(nullptr, &iface, instance);
    CHECK(t.revision_counter(nullptr) == nullptr);
    // NULL out_err is never written.
    t.load_bundle(rt.host_api(), nullptr, 0, nullptr);
    t.unload_bundle(rt.host_api(), 1, nullptr);
    t.register_guest_contract(rt.host_api(), nullptr, nullptr, nullptr);
}

TEST_CASE("host_api - alloc and free", "[host_api]") {
    polyplug::runtime rt;
    const HostApi* host = rt.host_api();
    CHECK(host->alloc(host, 0, 8) == nullptr);
    CHECK(host->alloc(host, 16, 3) == nullptr);
    CHECK(host->alloc(host, 16, 0) == nullptr);
    for (std::size_t align : {1u, 2u, 8u, 16u, 64u, 4096u}) {
        INFO("align " << align);
        std::uint8_t* p = host->alloc(host, 100, align);
        REQUIRE(p != nullptr);
        CHECK(reinterpret_cast<std::uintptr_t>(p) % align == 0);
        std::memset(p, 0xAB, 100);
        host->free(host, p, 100, align);
    }
    host->free(host, nullptr, 10, 8);  // no-op
    std::uint8_t* p = host->alloc(host, 8, 8);
    host->free(host, p, 0, 8);  // size 0: no-op (leaks by contract)
    host->free(host, p, 8, 8);
}

TEST_CASE("host_api - last_error: read clears, length does not, truncation, null buffer",
          "[host_api]") {
    polyplug::runtime rt;
    const HostApi* host = rt.host_api();
    CHECK(host->get_error_len(host) == 0);
    auto make_error = [&] {
        AbiError err{};
        const std::string bad = "/definitely/not/here";
        host->load_bundle(host, reinterpret_cast<const std::uint8_t*>(bad.data()), bad.size(),
                          &err);
        REQUIRE(err.code == AbiErrorCode_Generic);
        return host->get_error_len(host);
    };

    SECTION("length does not clear, a full read returns everything and clears") {
        const std::size_t len = make_error();
        REQUIRE(len > 0);
        CHECK(host->get_error_len(host) == len);
        std::string buf(len, '?');
        CHECK(host->get_last_error(host, reinterpret_cast<std::uint8_t*>(buf.data()), len) == len);
        CHECK_THAT(buf, Catch::Contains("/definitely/not/here"));
        CHECK(host->get_error_len(host) == 0);
    }
    SECTION("a too-small buffer gets a truncated copy and the error is cleared") {
        const std::size_t len = make_error();
        std::uint8_t buf[4];
        CHECK(host->get_last_error(host, buf, sizeof buf) == 4);
        CHECK(len > 4);
        CHECK(host->get_error_len(host) == 0);
    }
    SECTION("buf_len 0 clears and returns 0") {
        make_error();
        std::uint8_t buf[4] = {1, 2, 3, 4};
        CHECK(host->get_last_error(host, buf, 0) == 0);
        CHECK(buf[0] == 1);
        CHECK(host->get_error_len(host) == 0);
    }
    SECTION("a null buffer returns the length and clears") {
        const std::size_t len = make_error();
        CHECK(host->get_last_error(host, nullptr, 0) == len);
        CHECK(host->get_error_len(host) == 0);
    }
    SECTION("an empty read leaves the buffer untouched") {
        std::uint8_t buf[4] = {9, 9, 9, 9};
        CHECK(host->get_last_error(host, buf, sizeof buf) == 0);
        CHECK(buf[0] == 9);
    }
    SECTION("a long message (512-byte path) survives intact") {
        const std::string path = "/" + std::string(511, 'p');
        AbiError err{};
        host->load_bundle(host, reinterpret_cast<const std::uint8_t*>(path.data()), path.size(),
                          &err);
        CHECK_THAT(take_last_error(host), Catch::Contains(path));
    }
    SECTION("16 set/read cycles are independent") {
        for (int i = 0; i < 16; ++i) {
            const std::string path = "/missing-" + std::to_string(i);
            AbiError err{};
            host->load_bundle(host, reinterpret_cast<const std::uint8_t*>(path.data()), path.size(),
                              &err);
            const std::string text = take_last_error(host);
            CHECK_THAT(text, Catch::Contains(path));
            CHECK(host->get_error_len(host) == 0);
        }
    }
}

TEST_CASE("host_api - log: filtering, clamping, null views, many threads", "[host_api]") {
    log_capture logs;
    polyplug::runtime_options options;
    options.log = logs.callback();
    options.log_max_level = polyplug::log_level::info;
    polyplug::runtime rt(options);
    const HostApi* host = rt.host_api();

    host->log(host, LogLevel_Info, polyplug_sv("guest.test"), polyplug_sv("hello"));
    host->log(host, LogLevel_Debug, polyplug_sv("guest.test"), polyplug_sv("filtered out"));
    host->log(host, 999, polyplug_sv("guest.test"), polyplug_sv("clamped"));
    host->log(host, LogLevel_Warn, {nullptr, 0}, {nullptr, 0});
    REQUIRE(logs.records.size() == 3);
    CHECK(logs.records[0].level == polyplug::log_level::info);
    CHECK(logs.records[0].scope == "guest.test");
    CHECK(logs.records[0].message == "hello");
    CHECK(logs.records[1].level == polyplug::log_level::error);
    CHECK(logs.records[1].message == "clamped");
    CHECK(logs.records[2].scope.empty());
    CHECK(logs.records[2].message.empty());

    logs.records.clear();
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            const std::string tag = "thread-" + std::to_string(t);
            for (int i = 0; i < 500; ++i)
                host->log(host, LogLevel_Warn, polyplug_sv(tag.c_str()), polyplug_sv(tag.c_str()));
        });
    }
    for (auto& th : threads) th.join();
    REQUIRE(logs.records.size() == 4000);
    for (const auto& r : logs.records) CHECK(r.scope == r.message);  // never torn
}

TEST_CASE("host_api - C config: log callback, max level, on_reload user data", "[host_api]") {
    struct sink {
        int count = 0;
        std::uint32_t last_level = 0;
    } s;
    RuntimeConfig config{};
    config.log = [](void* user, std::uint32_t level, StringView, StringView) {
        auto* me = static_cast<sink*>(user);
        ++me->count;
        me->last_level = level;
    };
    config.log_user_data = &s;
    config.log_max_level = LogLevel_Error;
    polyplug::runtime rt(&config);
    const HostApi* host = rt.host_api();
    host->log(host, LogLevel_Warn, polyplug_sv("s"), polyplug_sv("filtered"));
    CHECK(s.count == 0);
    host->log(host, LogLevel_Error, polyplug_sv("s"), polyplug_sv("kept"));
    CHECK(s.count == 1);
    CHECK(s.last_level == LogLevel_Error);
}

namespace {

struct greeter_state {
    int creations = 0;
    int destructions = 0;
    bool fail_next = false;
    const HostApi* register_from_create = nullptr;
    const HostContractInterface* nested = nullptr;
};

void greeter_create(const HostContractInterface* self, const void*, HostContractInstance* out) {
    auto* state = static_cast<greeter_state*>(self->user_data);
    if (state->register_from_create != nullptr) {
        // Re-entrant registration from inside create_instance must not deadlock.
        AbiError err{};
        state->register_from_create->register_host_contract(state->register_from_create,
                                                            state->nested, &err);
    }
    if (state->fail_next) {
        state->fail_next = false;
        out->data = nullptr;
        return;
    }
    ++state->creations;
    out->data = state;
}
void greeter_destroy(const HostContractInterface* self, HostContractInstance) {
    ++static_cast<greeter_state*>(self->user_data)->destructions;
}
void greeter_hello(HostContractInstance, const void*, void* out, AbiError* err) {
    *static_cast<std::uint32_t*>(out) = 1234;
    err->code = 0;
}
const void* const greeter_table[] = {reinterpret_cast<const void*>(&greeter_hello)};

HostContractInterface greeter(greeter_state& state, bool singleton, std::uint32_t major = 1,
                              std::uint32_t minor = 2, std::string_view name = "host.greeter") {
    HostContractInterface iface{};
    iface.contract_id = polyplug::host_contract_id(name, major);
    iface.contract_version = {major, minor, 0};
    iface.singleton = singleton;
    iface.dispatch_type = DispatchType_Native;
    iface.user_data = &state;
    iface.create_instance = &greeter_create;
    iface.destroy_instance = &greeter_destroy;
    iface.dispatch.native.function_count = 1;
    iface.dispatch.native.functions = greeter_table;
    return iface;
}

}  // namespace

TEST_CASE("host_api - host contracts: packed version matching", "[host_api][host_contract]") {
    greeter_state state;
    const HostContractInterface iface = greeter(state, false);  // version 1.2
    polyplug::runtime rt;
    const HostApi* host = rt.host_api();
    AbiError err{};
    host->register_host_contract(host, &iface, &err);
    REQUIRE(err.code == AbiErrorCode_Ok);

    const auto matches = [&](std::uint32_t packed) {
        return host->resolve_host_contract_interface(host, iface.contract_id, packed) != nullptr;
    };
    CHECK(matches(0));                                        // wildcard
    CHECK(matches(polyplug::pack_host_version(1, 0)));        // lower minor
    CHECK(matches(polyplug::pack_host_version(1, 2)));        // exact
    CHECK_FALSE(matches(polyplug::pack_host_version(1, 3)));  // higher minor
    CHECK_FALSE(matches(polyplug::pack_host_version(2, 0)));  // higher major
    CHECK_THAT(take_last_error(host), Catch::Contains("requested 2.0"));
    CHECK(host->resolve_host_contract_interface(host, 42, 0) == nullptr);
    CHECK_THAT(take_last_error(host), Catch::Contains("no host contract"));

    SECTION("duplicate ids are refused with the documented message") {
        host->register_host_contract(host, &iface, &err);
        CHECK(err.code == AbiErrorCode_Generic);
        CHECK(polyplug::detail::view_of(err.message) == "duplicate host contract registration");
    }
    SECTION("null create_instance is refused") {
        HostContractInterface bad = greeter(state, false, 1, 0, "host.bad");
        bad.create_instance = nullptr;
        host->register_host_contract(host, &bad, &err);
        CHECK(err.code == AbiErrorCode_InvalidPointer);
    }
    SECTION("non-singletons give a new instance per call; a guest can call through the table") {
        const HostContractInstance a = host->get_host_contract(host, iface.contract_id, 0);
        const HostContractInstance b = host->get_host_contract(host, iface.contract_id, 0);
        CHECK(state.creations == 2);
        const HostContractInterface* resolved =
            host->resolve_host_contract_interface(host, iface.contract_id, 0);
        std::uint32_t out = 0;
        AbiError call_err{};
        polyplug::function_cast<HostContractFn>(resolved->dispatch.native.functions[0])(
            a, nullptr, &out, &call_err);
        CHECK(out == 1234);
        resolved->destroy_instance(resolved, a);
        resolved->destroy_instance(resolved, b);
        CHECK(state.destructions == 2);
    }
}

TEST_CASE("host_api - host contracts: singletons cached, null never cached, no lock held",
          "[host_api][host_contract]") {
    greeter_state state;
    greeter_state nested_state;
    const HostContractInterface iface = greeter(state, true);
    const HostContractInterface nested = greeter(nested_state, false, 1, 0, "host.nested");
    {
        polyplug::runtime rt;
        const HostApi* host = rt.host_api();
        AbiError err{};
        host->register_host_contract(host, &iface, &err);

        state.fail_next = true;
        CHECK(host->get_host_contract(host, iface.contract_id, 0).data == nullptr);
        CHECK_THAT(take_last_error(host), Catch::Contains("null instance"));
        state.register_from_create = host;  // re-enters the runtime from create_instance
        state.nested = &nested;
        const HostContractInstance first = host->get_host_contract(host, iface.contract_id, 0);
        const HostContractInstance second = host->get_host_contract(host, iface.contract_id, 0);
        CHECK(first.data != nullptr);
        CHECK(first.data == second.data);
        CHECK(state.creations == 1);
        CHECK(host->resolve_host_contract_interface(host, nested.contract_id, 0) != nullptr);
    }
    CHECK(state.destructions == 1);  // the runtime destroys the singleton it created
}

TEST_CASE("host_api - revision counter: stable address, changes on load and unload", "[host_api]") {
    temp_dir dir;
    polyplug::runtime rt;
    const HostApi* host = rt.host_api();
    const std::uint64_t* counter = host->revision_counter(host);
    REQUIRE(counter != nullptr);
    CHECK(host->revision_counter(host) == counter);
    const std::uint64_t before = *counter;
    rt.load_bundle(make_bundle(dir.path(), "adder", "adder", adder_provides));
    const std::uint64_t loaded = *counter;
    CHECK(loaded != before);

    ArrayOf_BundleId ids = host->list_bundles(host);
    REQUIRE(ids.len == 1);
    CHECK(ids.items[0] == polyplug::bundle_id("adder"));
    CHECK(ids.align == 8);
    host->free(host, reinterpret_cast<std::uint8_t*>(ids.items), ids.len * sizeof(BundleId),
               ids.align);

    AbiError err{};
    host->unload_bundle(host, polyplug::bundle_id("adder"), &err);
    CHECK(err.code == AbiErrorCode_Ok);
    CHECK(*counter != loaded);
    CHECK(host->list_bundles(host).len == 0);
    host->unload_bundle(host, polyplug::bundle_id("adder"), &err);
    CHECK(err.code == AbiErrorCode_Generic);
    CHECK_THAT(take_last_error(host), Catch::Contains("no loaded bundle"));
}

TEST_CASE("host_api - a path with an embedded NUL is refused, not cut at the NUL", "[host_api]") {
    // "<bundle>\0junk": the system sees only the bundle's directory. Before the check this failed
    // as an invalid manifest whose last_error held the raw NUL (and tests/runtime.cpp shows a
    // path naming the manifest that loaded the bundle).
    temp_dir dir;
    const fs::path bundle = make_bundle(dir.path(), "adder", "adder", adder_provides);
    const std::string path = bundle.string() + std::string("\0junk", 5);
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(path.data());
    polyplug::runtime rt;
    const HostApi* host = rt.host_api();

    AbiError err{};
    SECTION("load_bundle") {
        host->load_bundle(host, bytes, path.size(), &err);
        CHECK(err.code == AbiErrorCode_Generic);
        CHECK(err.message.ptr == nullptr);  // spec 8.1: the detail is in last_error
        CHECK(take_last_error(host) ==
              "load_bundle: path '" + bundle.string() + "\\0junk' contains a NUL byte");
    }
    SECTION("reload_bundle") {
        host->reload_bundle(host, bytes, path.size(), &err);
        CHECK(err.code == AbiErrorCode_Generic);
        CHECK(take_last_error(host) ==
              "reload_bundle: path '" + bundle.string() + "\\0junk' contains a NUL byte");
    }
    SECTION("a NUL alone") {
        const std::uint8_t nul[] = {0};
        host->load_bundle(host, nul, 1, &err);
        CHECK(err.code == AbiErrorCode_Generic);
        CHECK(take_last_error(host) == "load_bundle: path '\\0' contains a NUL byte");
    }
    CHECK(rt.bundles().empty());
    // The runtime is as it was: the bundle itself loads next.
    load_or_fail(host, bundle, err);
    CHECK(err.code == AbiErrorCode_Ok);
    CHECK(rt.bundles().size() == 1);
}

TEST_CASE("host_api - no last_error or log message carries a raw NUL or control byte",
          "[host_api]") {
    // Bytes from a plugin or a host reach messages: a name, a path, an init's error text.
    log_capture log;
    polyplug::runtime_options options;
    options.log = log.callback();
    options.log_max_level = polyplug::log_level::trace;
    polyplug::runtime rt(options);
    const HostApi* host = rt.host_api();
    temp_dir dir;

    AbiError err{};
    SECTION("a path with a NUL and an escape sequence") {
        const std::string path = (dir.path() / "a").string() + std::string("\0\x1b[2J", 5);
        host->load_bundle(host, reinterpret_cast<const std::uint8_t*>(path.data()), path.size(),
                          &err);
    }
    SECTION("a manifest whose name holds a NUL and a carriage return") {
        // TOML escapes let a name carry any control byte; the messages quote the name.
        const fs::path bundle = dir.path() / "named";
        fs::create_directories(bundle);
        write_file(bundle / "manifest.toml",
                   "name = \"evil\\u0000name\\r\"\nid = 1\nloader = \"native\"\nfile = \"x.so\"\n");
        load_or_fail(host, bundle, err);
    }
    SECTION("a plugin's log message") {
        const std::string text = std::string("from\0plugin\x07", 12);
        host->log(host, LogLevel_Error, polyplug::detail::string_view_of("plugin"),
                  polyplug::detail::string_view_of(text));
    }
    const std::string message = rt.last_error();
    CHECK(message.find('\0') == std::string::npos);
    CHECK(message.find('\x1b') == std::string::npos);
    CHECK(message.find('\r') == std::string::npos);
    CHECK(take_last_error(host) == message);
    std::lock_guard lock(log.mutex);
    REQUIRE_FALSE(log.records.empty());
    for (const log_capture::record& record : log.records) {
        INFO(record.message);
        CHECK(std::none_of(record.message.begin(), record.message.end(),
                           [](char c) { return polyplug::detail::is_escaped_control(c); }));
    }
}

TEST_CASE("host_api - escape_control_bytes shows NUL and control bytes, keeps the rest",
          "[host_api]") {
    using polyplug::detail::escape_control_bytes;
    CHECK(escape_control_bytes(std::string("dir\0junk", 8)) == "dir\\0junk");
    CHECK(escape_control_bytes("\x1b[2J\r\x7f") == "\\x1b[2J\\x0d\\x7f");
    CHECK(escape_control_bytes("two\nlines\tand ✓ \\0") == "two\nlines\tand ✓ \\0");
    CHECK(escape_control_bytes("") == "");
}
