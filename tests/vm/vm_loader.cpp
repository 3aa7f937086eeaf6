// SPDX-License-Identifier: MIT
/// @file vm_loader.cpp
/// The machinery every script loader shares (loaders/vm.hpp), driven by a tiny engine whose
/// "script" is a text file of settings: VM dispatch, results in the caller's arena or the host
/// allocator, script errors, ReentrantCall, reload rewriting cached interfaces in place, a
/// failing reload, the state hand-over, VM teardown, bundle errors, and the loader as a C table
/// (loader_table.hpp). Also CallArena (call_arena.h).
#include "../catch.hpp"
#include "../support.hpp"

#include <polyplug/call_arena.h>
#include <polyplug/dispatch.hpp>
#include <polyplug/loader_table.hpp>
#include <polyplug/loaders/vm.hpp>
#include <polyplug/polyplug.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace test_support;
using polyplug::errc;

namespace {

/// A "script" of lines `key=value`: value=N (what value() returns), schema=S (offer the state
/// hand-over), fail_open=1 (the script fails to load), missing=fn (bind reports fn missing).
class number_engine {
public:
    static constexpr std::string_view loader_name = "number";
    static constexpr std::uint32_t language = SupportedLanguage_Lua;

    static std::unique_ptr<number_engine> open(const polyplug::vm_script& script,
                                               std::string& error) {
        std::ifstream in(script.script);
        auto engine = std::make_unique<number_engine>();
        engine->services_ = script.services;
        std::string line;
        while (std::getline(in, line)) {
            const auto eq = line.find('=');
            if (eq == std::string::npos) continue;
            engine->settings_[line.substr(0, eq)] = line.substr(eq + 1);
        }
        if (engine->settings_.contains("fail_open")) {
            error = script.script.filename().string() + ":1: the script failed to load";
            return nullptr;
        }
        ++opened;
        return engine;
    }
    ~number_engine() {
        if (services_ != nullptr) --opened;
    }

    bool bind(const polyplug::contract_decl& decl, std::uint32_t& impl, std::string& error) {
        if (const auto it = settings_.find("missing"); it != settings_.end()) {
            error = "contracts['" + decl.name + "'] has no function '" + it->second + "'";
            return false;
        }
        impl = 7;
        return true;
    }
    void* create_instance(std::uint32_t impl, std::string&) {
        CHECK(impl == 7);
        ++live;
        return &live;  // any non-null token
    }
    void destroy_instance(std::uint32_t, void* instance) noexcept {
        if (instance == &live) --live;
    }
    bool call(std::uint32_t, void*, const polyplug::function_decl& fn, const void* args, void* out,
              const polyplug::result_allocator& alloc, std::string& error) {
        ++calls_;
        const std::int32_t value = std::stoi(settings_["value"]);
        if (fn.name == "value") {
            *static_cast<std::int32_t*>(out) = value + count_;
            return true;
        }
        if (fn.name == "text") {
            const auto& in = *static_cast<const StringView*>(args);
            const std::string text = std::to_string(value) + ":" +
                                     std::string(reinterpret_cast<const char*>(in.ptr), in.len);
            auto* bytes = static_cast<std::uint8_t*>(alloc.allocate(text.size(), 1));
            std::memcpy(bytes, text.data(), text.size());
            *static_cast<StringView*>(out) = {bytes, text.size()};
            return true;
        }
        if (fn.name == "nested") {  // calls its own contract: the loader answers ReentrantCall
            std::string lookup_error;
            const polyplug::contract_decl* self =
                services_->find_contract("test.vm.Number", lookup_error);
            std::int32_t ignored = 0;
            const AbiError err =
                services_->call(*self, self->functions[0], nullptr, &ignored, nullptr);
            *static_cast<std::int32_t*>(out) = static_cast<std::int32_t>(err.code);
            return true;
        }
        if (fn.name == "bump") {
            ++count_;
            return true;
        }
        error = "number.txt:3: fail was called";
        return false;
    }
    bool state_schema(std::uint32_t& schema) {
        const auto it = settings_.find("schema");
        if (it == settings_.end()) return false;
        schema = static_cast<std::uint32_t>(std::stoul(it->second));
        return true;
    }
    bool save_state(std::string& bytes, std::string&) {
        bytes = std::to_string(count_);
        return true;
    }
    bool restore_state(std::uint32_t schema, std::string_view bytes, std::string& error) {
        if (settings_.contains("refuse")) {
            error = "schema " + std::to_string(schema) + " refused";
            return false;
        }
        count_ = std::stoi(std::string(bytes));
        return true;
    }

    static inline int opened = 0;
    static inline int live = 0;

private:
    polyplug::vm_services* services_ = nullptr;
    std::map<std::string, std::string> settings_;
    int calls_ = 0;
    std::int32_t count_ = 0;
};

using number_loader = polyplug::vm_loader<number_engine>;
static_assert(polyplug::bundle_loader<number_loader>);

constexpr std::string_view number_api = R"(
[[guest_contract]]
name = "test.vm.Number"
version = "1.2"

[[guest_contract.functions]]
name = "value"
return = "i32"

[[guest_contract.functions]]
name = "text"
params = [{ name = "s", type = "StringView" }]
return = "StringView"

[[guest_contract.functions]]
name = "nested"
return = "i32"

[[guest_contract.functions]]
name = "bump"

[[guest_contract.functions]]
name = "fail"
)";

const std::uint64_t number_id = polyplug::guest_contract_id("test.vm.Number", 1);

/// A bundle directory for the number loader: manifest, contract file and script.
fs::path make_number_bundle(const fs::path& root, const std::string& name,
                            const std::string& script, const std::string& api_key = "",
                            const std::string& provides = "test.vm.Number@1") {
    const fs::path dir = root / name;
    fs::create_directories(dir);
    write_file(dir / "api.toml", std::string(number_api));
    write_file(dir / "number.txt", script);
    std::string manifest =
        "id = \"" + polyplug::format_id(polyplug::bundle_id(name)) + "\"\nname = \"" + name +
        "\"\nversion = \"1.0.0\"\nloader = \"number\"\n" + "file = \"number.txt\"\nprovides = [\"" +
        provides + "\"]\n" + "function_count = { \"" + provides + "\" = 5 }\n" + api_key;
    write_file(dir / "manifest.toml", manifest);
    return dir;
}

struct vm_fixture {
    temp_dir dir;
    polyplug::basic_runtime<polyplug::native_loader, number_loader> rt{[] {
        polyplug::runtime_options o;
        o.hot_reload_enabled = true;
        o.unload_grace_period = std::chrono::milliseconds(0);
        return o;
    }()};

    const GuestContractInterface* resolve() const { return rt.resolve(rt.find(number_id)); }

    /// Waits until the loader has torn down all but `count` VMs (teardown follows the grace).
    bool open_vms_reach(std::size_t count) {
        for (int i = 0; i < 200; ++i) {
            if (rt.loader<number_loader>().open_vms() == count) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return false;
    }
};

std::int32_t call_i32(const GuestContractInterface& iface, std::uint32_t fn,
                      GuestContractInstance instance = {nullptr, 0}) {
    std::int32_t out = -1;
    const AbiError err = polyplug::call(iface, instance, fn, nullptr, &out);
    REQUIRE(err.code == AbiErrorCode_Ok);
    return out;
}

}  // namespace

TEST_CASE("vm - a script bundle registers VM dispatch and serves calls", "[vm]") {
    vm_fixture f;
    f.rt.load_bundle(make_number_bundle(f.dir.path(), "numbers", "value=41\n"));
    const GuestContractInterface* iface = f.resolve();
    REQUIRE(iface != nullptr);
    CHECK(iface->dispatch_type == DispatchType_VirtualMachine);
    CHECK(iface->contract_version.minor == 2);
    CHECK(f.rt.bundles().at(0).contracts.at(0).contract_name == "test.vm.Number");
    CHECK(call_i32(*iface, 0) == 41);

    SECTION("a call without an instance goes to the contract's default instance") {
        // call_i32 passes {NULL, 0}: the first call above made the default instance...
        CHECK(number_engine::live == 1);
        CHECK(call_i32(*iface, 0) == 41);
        CHECK(call_i32(*iface, 0) == 41);
        CHECK(number_engine::live == 1);  // ...and later calls reuse it, until the VM goes
    }
    SECTION("instances are the engine's objects") {
        const int before = number_engine::live;
        GuestContractInstance instance{};
        f.rt.host_api()->create_guest_instance(f.rt.host_api(), iface, nullptr, &instance);
        CHECK(instance.contract_id == number_id);
        CHECK(number_engine::live == before + 1);
        f.rt.host_api()->destroy_guest_instance(f.rt.host_api(), iface, instance);
        CHECK(number_engine::live == before);
    }
    SECTION("variable-size results: in the caller's arena, else from the host allocator") {
        std::uint8_t storage[64];
        CallArena arena;
        polyplug_arena_init(&arena, storage, sizeof storage, f.rt.host_api());
        const StringView in{reinterpret_cast<const std::uint8_t*>("a\0b"), 3};
        StringView out{};
        AbiError err = polyplug::call(*iface, {}, 1, &in, &out, &arena);
        REQUIRE(err.code == AbiErrorCode_Ok);
        CHECK(std::string_view(reinterpret_cast<const char*>(out.ptr), out.len) ==
              std::string_view("41:a\0b", 6));
        CHECK((out.ptr >= storage && out.ptr < storage + sizeof storage));
        polyplug_arena_free(&arena);

        err = polyplug::call(*iface, {}, 1, &in, &out, nullptr);
        REQUIRE(err.code == AbiErrorCode_Ok);
        CHECK(out.len == 6);
        f.rt.host_api()->free(f.rt.host_api(), const_cast<std::uint8_t*>(out.ptr), out.len, 1);
    }
    SECTION("a script error is a Panic with the script's message; no such function") {
        AbiError err = polyplug::call(*iface, {}, 4, nullptr, nullptr);
        CHECK(err.code == AbiErrorCode_Panic);
        CHECK(polyplug::detail::view_of(err.message) == "number.txt:3: fail was called");
        err = polyplug::call(*iface, {}, 5, nullptr, nullptr);
        CHECK(err.code == AbiErrorCode_FunctionNotAvailable);
    }
    SECTION("a nested call into the same VM on the same thread gets ReentrantCall") {
        CHECK(call_i32(*iface, 2) == AbiErrorCode_ReentrantCall);
        CHECK(call_i32(*iface, 0) == 41);  // and the VM still serves
    }
}

TEST_CASE("vm - reload: cached interfaces reach the new VM; a failing reload changes nothing",
          "[vm]") {
    vm_fixture f;
    const fs::path bundle = make_number_bundle(f.dir.path(), "numbers", "value=1\n");
    f.rt.load_bundle(bundle);
    const GuestContractInterface* cached = f.resolve();
    REQUIRE(cached != nullptr);
    CHECK(call_i32(*cached, 0) == 1);

    write_file(bundle / "number.txt", "value=2\n");
    f.rt.reload_bundle(bundle);
    CHECK(call_i32(*cached, 0) == 2);  // the same pointer, the new VM
    CHECK(f.resolve() == cached);
    CHECK(f.open_vms_reach(1));  // the old VM is torn down

    write_file(bundle / "number.txt", "value=3\nfail_open=1\n");
    std::error_code ec;
    f.rt.reload_bundle(bundle, ec);
    CHECK(ec == errc::init_failed);
    CHECK_THAT(f.rt.last_error(), Catch::Contains("number.txt:1: the script failed to load"));
    CHECK(call_i32(*cached, 0) == 2);  // the old version keeps serving
    CHECK(f.rt.loader<number_loader>().open_vms() == 1);

    write_file(bundle / "number.txt", "value=1\n");
    f.rt.reload_bundle(bundle);
    CHECK(call_i32(*cached, 0) == 1);
}

TEST_CASE("vm - the state hand-over carries a script's state across a reload", "[vm]") {
    vm_fixture f;
    const fs::path bundle = make_number_bundle(f.dir.path(), "numbers", "value=10\nschema=1\n");
    f.rt.load_bundle(bundle);
    const GuestContractInterface* iface = f.resolve();
    (void)polyplug::call(*iface, {}, 3, nullptr, nullptr);  // bump: count 1
    (void)polyplug::call(*iface, {}, 3, nullptr, nullptr);  // count 2
    CHECK(call_i32(*iface, 0) == 12);

    write_file(bundle / "number.txt", "value=20\nschema=2\n");
    f.rt.reload_bundle(bundle);
    CHECK(call_i32(*iface, 0) == 22);  // new code, old count

    write_file(bundle / "number.txt", "value=30\nschema=3\nrefuse=1\n");
    std::error_code ec;
    f.rt.reload_bundle(bundle, ec);
    CHECK(ec == errc::state_handover_failed);
    CHECK(call_i32(*iface, 0) == 22);  // refused: version 2 serves with its state
}

TEST_CASE("vm - unload tears the VM down; cached interfaces report StaleHandle", "[vm]") {
    vm_fixture f;
    f.rt.load_bundle(make_number_bundle(f.dir.path(), "numbers", "value=5\n"));
    const GuestContractInterface* iface = f.resolve();
    const int before = number_engine::opened;
    CHECK(f.rt.loader<number_loader>().open_vms() == 1);
    f.rt.unload_bundle(polyplug::bundle_id("numbers"));
    CHECK(f.open_vms_reach(0));
    CHECK(number_engine::opened == before - 1);
    CHECK(number_engine::live == 0);  // the default instance went with the VM
    std::int32_t out = 0;
    CHECK(polyplug::call(*iface, {}, 0, nullptr, &out).code == AbiErrorCode_StaleHandle);
}

TEST_CASE("vm - bundles the loader refuses, each with its reason", "[vm]") {
    vm_fixture f;
    std::error_code ec;
    SECTION("the contract file path leaves the bundle") {
        f.rt.load_bundle(
            make_number_bundle(f.dir.path(), "b1", "value=1\n", "api = \"../api.toml\"\n"), ec);
        CHECK(ec == errc::path_escapes_bundle);
        CHECK_THAT(f.rt.last_error(), Catch::Contains("api path '../api.toml' escapes"));
    }
    SECTION("no contract file") {
        f.rt.load_bundle(
            make_number_bundle(f.dir.path(), "b2", "value=1\n", "api = \"absent.toml\"\n"), ec);
        CHECK(ec == errc::init_failed);
        CHECK_THAT(f.rt.last_error(), Catch::Contains("absent.toml: no such file"));
    }
    SECTION("a provided contract the contract file does not declare") {
        f.rt.load_bundle(make_number_bundle(f.dir.path(), "b3", "value=1\n", "", "test.vm.Other@1"),
                         ec);
        CHECK(ec == errc::init_failed);
        CHECK_THAT(f.rt.last_error(),
                   Catch::Contains("provides test.vm.Other@1, which its contract file"));
    }
    SECTION("the script lacks a function") {
        f.rt.load_bundle(make_number_bundle(f.dir.path(), "b4", "value=1\nmissing=text\n"), ec);
        CHECK(ec == errc::init_failed);
        CHECK_THAT(f.rt.last_error(), Catch::Contains("has no function 'text'"));
    }
    CHECK(f.rt.bundles().empty());
    CHECK(f.rt.loader<number_loader>().open_vms() == 0);
}

TEST_CASE("vm - the loader as a C table, registered at run time", "[vm]") {
    temp_dir dir;
    polyplug::runtime rt;  // native only: the number loader arrives through register_loader
    const HostApi* host = rt.host_api();
    AbiError err{};
    host->register_loader(host, polyplug::make_loader_table<number_loader>(), &err);
    REQUIRE(err.code == AbiErrorCode_Ok);
    rt.load_bundle(make_number_bundle(dir.path(), "numbers", "value=9\n"));
    const GuestContractInterface* iface = rt.resolve(rt.find(number_id));
    REQUIRE(iface != nullptr);
    CHECK(call_i32(*iface, 0) == 9);
    std::error_code ec;
    rt.load_bundle(make_number_bundle(dir.path(), "broken", "fail_open=1\n"), ec);
    CHECK(ec == errc::init_failed);
    CHECK_THAT(rt.last_error(), Catch::Contains("number.txt:1: the script failed to load"));
}

TEST_CASE("vm - CallArena: aligned bump allocation, overflow blocks, reset", "[vm]") {
    polyplug::runtime rt;
    const HostApi* host = rt.host_api();
    alignas(16) std::uint8_t storage[32];
    CallArena arena;
    polyplug_arena_init(&arena, storage, sizeof storage, host);
    CHECK(polyplug_arena_alloc(&arena, 0, 1) == nullptr);  // size 0
    CHECK(polyplug_arena_alloc(&arena, 4, 3) == nullptr);  // not a power of two
    std::uint8_t* a = polyplug_arena_alloc(&arena, 3, 1);
    std::uint8_t* b = polyplug_arena_alloc(&arena, 8, 8);
    CHECK(a == storage);
    CHECK(b == storage + 8);                                    // aligned past a
    std::uint8_t* big = polyplug_arena_alloc(&arena, 100, 16);  // does not fit: overflow block
    REQUIRE(big != nullptr);
    CHECK(reinterpret_cast<std::uintptr_t>(big) % 16 == 0);
    std::memset(big, 0xAB, 100);  // ASan: the block really holds 100 bytes
    ArenaOverflowBlock* block = arena.first_overflow;
    REQUIRE(block != nullptr);
    CHECK(block->capacity >= 4096);
    CHECK(block->used >= sizeof(ArenaOverflowBlock) + 100);
    polyplug_arena_reset(&arena);  // rewinds the block and keeps it
    CHECK(arena.first_overflow == block);
    CHECK(block->used == sizeof(ArenaOverflowBlock));
    CHECK(polyplug_arena_alloc(&arena, 3, 1) == storage);
    CHECK(polyplug_arena_alloc(&arena, 100, 16) == big);  // the same bytes again
    polyplug_arena_free(&arena);                          // frees it (LeakSanitizer checks)
    CHECK(arena.first_overflow == nullptr);

    CallArena empty;  // no primary region: every allocation overflows
    polyplug_arena_init(&empty, nullptr, 0, host);
    CHECK(polyplug_arena_alloc(&empty, 1, 1) != nullptr);
    polyplug_arena_free(&empty);
}

namespace {
int arena_allocations = 0;
int arena_frees = 0;
}  // namespace

TEST_CASE("vm - CallArena: reused across calls, overflow blocks are rewound, not reallocated",
          "[vm]") {
    // The runtime's HostApi with a counting allocator in place of its own.
    polyplug::runtime rt;
    HostApi counting = *rt.host_api();
    counting.alloc = [](const HostApi*, std::size_t size, std::size_t) -> std::uint8_t* {
        ++arena_allocations;
        return static_cast<std::uint8_t*>(std::malloc(size));
    };
    counting.free = [](const HostApi*, std::uint8_t* ptr, std::size_t, std::size_t) {
        ++arena_frees;
        std::free(ptr);
    };
    arena_allocations = arena_frees = 0;
    alignas(16) std::uint8_t storage[64];
    CallArena arena;
    polyplug_arena_init(&arena, storage, sizeof storage, &counting);
    std::vector<std::uint8_t*> first;
    for (int call = 0; call < 1000; ++call) {
        // Each call: a value in the primary region, then three that overflow it.
        CHECK(polyplug_arena_alloc(&arena, 40, 8) == storage);
        std::vector<std::uint8_t*> got;
        for (std::size_t size : {3000u, 3000u, 200u}) {
            std::uint8_t* p = polyplug_arena_alloc(&arena, size, 8);
            REQUIRE(p != nullptr);
            std::memset(p, call & 0xFF, size);
            got.push_back(p);
        }
        std::sort(got.begin(), got.end());  // newest block first: the order may differ
        if (call == 0) first = got;
        CHECK(got == first);  // the same bytes every call
        polyplug_arena_reset(&arena);
    }
    CHECK(arena_allocations == 2);  // both blocks on the first call, none after
    CHECK(arena_frees == 0);
    polyplug_arena_free(&arena);
    CHECK(arena_frees == 2);
}

namespace {
// test.vm.Number@1 for the typed C++ API.
struct number_contract {
    static constexpr polyplug::guest_contract_name name{"test.vm.Number", 1, 2, 0};
    static constexpr polyplug::function<0, std::int32_t()> value{"value"};
    static constexpr polyplug::function<1, std::string_view(std::string_view)> text{"text"};
    static constexpr polyplug::function<2, std::int32_t()> nested{"nested"};
    static constexpr polyplug::function<3, void()> bump{"bump"};
    static constexpr polyplug::function<4, void()> fail{"fail"};
    static constexpr std::tuple functions{value, text, nested, bump, fail};
};
}  // namespace

TEST_CASE("vm - the typed client calls a VM provider; results live in its own arena", "[vm]") {
    vm_fixture f;
    const fs::path bundle = make_number_bundle(f.dir.path(), "numbers", "value=3\n");
    f.rt.load_bundle(bundle);
    const int instances = number_engine::live;
    {
        polyplug::client<number_contract> c(f.rt);
        REQUIRE(c);
        CHECK(number_engine::live == instances + 1);
        CHECK(c.call(number_contract::value) == 3);
        const std::string long_text(1000, 'x');  // past the client's inline arena: overflows
        CHECK(c.call(number_contract::text, long_text) == "3:" + long_text);
        CHECK(c.call(number_contract::text, "a") == "3:a");
        CHECK_THROWS_WITH(c.call(number_contract::fail),
                          Catch::Contains("test.vm.Number@1 fail: number.txt:3: fail was called"));
        write_file(bundle / "number.txt", "value=4\n");
        f.rt.reload_bundle(bundle);
        CHECK(c.call(number_contract::value) == 4);  // the client follows the reload

        polyplug::client<number_contract> moved = std::move(c);
        CHECK(moved.call(number_contract::text, "b") == "4:b");
    }
    CHECK(number_engine::live == instances);  // the client destroyed its VM instance
}
