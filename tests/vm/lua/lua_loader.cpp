// SPDX-License-Identifier: MIT
/// @file lua_loader.cpp
/// The Lua loader (polyplug/loaders/lua.hpp) through a real runtime: every type category in and
/// out, refused results, script errors with their location, polyplug.call to the host, to
/// another bundle and (re-entrant) to itself, polyplug.log, isolation between bundles, load
/// failures, reloads with and without state, and VM teardown.
#include "../vm_fixtures.hpp"

#include <polyplug/contract_file.hpp>
#include <polyplug/dispatch.hpp>
#include <polyplug/loaders/lua.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

using namespace test_support;
namespace fs = std::filesystem;

namespace {

using lua_runtime = polyplug::basic_runtime<polyplug::native_loader, polyplug::lua_loader>;

const fs::path bundles_dir = POLYPLUG_LUA_BUNDLES;
const std::uint64_t kitchen_id = polyplug::guest_contract_id("test.lua.Kitchen", 1);
const std::uint64_t calc_id = polyplug::guest_contract_id("example.calc", 1);

// ---- the C side of the kitchen's contract file ---------------------------------------------
// Point, Inner and the `mix` arguments are vm_fixtures.hpp's; Mixed and Record are the Lua
// kitchen's own (Mixed holds an Inner, a flag and a label; Record has no Inner).

using vm_fixtures::array_of;
using vm_fixtures::guest;
using vm_fixtures::inner;
using vm_fixtures::mix_args;
using vm_fixtures::one;
using vm_fixtures::outcome;
using vm_fixtures::pair_args;
using vm_fixtures::point;
using vm_fixtures::str;
using vm_fixtures::sv;

struct mixed {
    std::uint8_t tag;
    double value;
    std::uint16_t small;
    inner in;
    bool flag;
    StringView label;
};
struct record {
    StringView label;
    array_of<point> points;
    Buffer payload;
    void* opaque;
    std::uint16_t color;
    std::int16_t half;
};
struct scale_args {
    mixed m;
    std::uint8_t by;
};
struct grant_args {
    std::uint8_t a;
    std::uint8_t extra;
};
/// `log(level: u8, text: StringView)`: a narrower level than the other kitchens' log_args.
struct log_args {
    std::uint8_t level;
    StringView text;
};

// ---- host.test.lua.Math, the host contract the kitchen calls --------------------------------

struct math_scale_args {
    std::int32_t x;
    double factor;
};
void math_scale(HostContractInstance, const void* args, void* out, AbiError* err) {
    const auto& a = *static_cast<const math_scale_args*>(args);
    *static_cast<std::int64_t*>(out) = static_cast<std::int64_t>(std::llround(a.x * a.factor));
    err->code = AbiErrorCode_Ok;
}
void math_name(HostContractInstance, const void*, void* out, AbiError* err) {
    *static_cast<StringView*>(out) = sv("host math \xE2\x9C\x93");
    err->code = AbiErrorCode_Ok;
}
const void* const math_table[] = {reinterpret_cast<const void*>(&math_scale),
                                  reinterpret_cast<const void*>(&math_name)};
void math_create(const HostContractInterface*, const void*, HostContractInstance* out) {
    *out = {const_cast<void*>(static_cast<const void*>(math_table))};
}
void math_destroy(const HostContractInterface*, HostContractInstance) {}

HostContractInterface make_math_iface() {
    HostContractInterface iface{};
    iface.contract_id = polyplug::host_contract_id("host.test.lua.Math", 1);
    iface.contract_version = {1, 0, 0};
    iface.dispatch_type = DispatchType_Native;
    iface.create_instance = &math_create;
    iface.destroy_instance = &math_destroy;
    iface.dispatch.native = {2, math_table};
    return iface;
}
const HostContractInterface math_iface = make_math_iface();  // outlives every runtime

/// A runtime with the peer and kitchen bundles loaded.
struct kitchen_runtime {
    log_capture logs;
    std::unique_ptr<lua_runtime> rt;

    kitchen_runtime() {
        polyplug::runtime_options options;
        options.log = logs.callback();
        options.log_max_level = polyplug::log_level::trace;
        rt = std::make_unique<lua_runtime>(options);
        rt->register_host_contract(math_iface);
        rt->load_bundle(bundles_dir / "peer");
        rt->load_bundle(bundles_dir / "kitchen");
    }
};

/// ... and one kitchen instance, called by function name.
struct kitchen_fixture : kitchen_runtime, guest {
    kitchen_fixture()
        : guest(*rt, bundles_dir / "kitchen" / "kitchen.api.toml", "test.lua.Kitchen") {
        REQUIRE(iface()->dispatch_type == DispatchType_VirtualMachine);
    }
};

/// A copy of a source bundle in a temporary directory, to edit.
fs::path copy_bundle(const fs::path& root, const std::string& name) {
    const fs::path dir = root / name;
    fs::create_directories(dir);
    for (const auto& entry : fs::directory_iterator(bundles_dir / name))
        fs::copy_file(entry.path(), dir / entry.path().filename(),
                      fs::copy_options::overwrite_existing);
    return dir;
}

/// A calc bundle in `root`, with `script` as calc.lua.
fs::path make_calc(const fs::path& root, std::string_view script) {
    const fs::path dir = copy_bundle(root, "calc");
    write_file(dir / "calc.lua", script);
    return dir;
}

std::string calc_script(std::string_view description) {
    return "local Calc = {}\n"
           "function Calc:add(a, b) return a + b end\n"
           "function Calc:describe() return \"" +
           std::string(description) +
           "\" end\n"
           "contracts = { [\"example.calc\"] = Calc }\n";
}

std::string describe(const GuestContractInterface& iface, GuestContractInstance instance = {}) {
    StringView out{};
    std::uint8_t storage[256];
    CallArena arena;
    polyplug_arena_init(&arena, storage, sizeof storage, nullptr);
    const AbiError err = polyplug::call(iface, instance, 1, nullptr, &out, &arena);
    REQUIRE(err.code == AbiErrorCode_Ok);
    return str(out);
}

std::int32_t add(const GuestContractInterface& iface, std::int32_t a, std::int32_t b,
                 GuestContractInstance instance = {}) {
    const pair_args args{a, b};
    std::int32_t out = 0;
    const AbiError err = polyplug::call(iface, instance, 0, &args, &out);
    INFO(polyplug::detail::utf8_lossy(err.message.ptr, err.message.len));
    REQUIRE(err.code == AbiErrorCode_Ok);
    return out;
}

}  // namespace

TEST_CASE("lua loader - the contract file's layouts are the C compiler's", "[lua]") {
    const auto api = polyplug::read_contract_file(bundles_dir / "kitchen" / "kitchen.api.toml");
    const auto& mixed_layout = api.find_struct("Mixed")->layout;
    CHECK(mixed_layout.size == sizeof(mixed));
    CHECK(mixed_layout.find("value")->offset == offsetof(mixed, value));
    CHECK(mixed_layout.find("small")->offset == offsetof(mixed, small));
    CHECK(mixed_layout.find("inner")->offset == offsetof(mixed, in));
    CHECK(mixed_layout.find("flag")->offset == offsetof(mixed, flag));
    CHECK(mixed_layout.find("label")->offset == offsetof(mixed, label));
    const auto& record_layout = api.find_struct("Record")->layout;
    CHECK(record_layout.size == sizeof(record));
    CHECK(record_layout.find("color")->offset == offsetof(record, color));
    CHECK(record_layout.find("half")->offset == offsetof(record, half));
    vm_fixtures::check_mix_layout(api.guest_contracts.at(0));
    CHECK(api.guest_contracts.at(0).find_function("scale")->args.fields[1].offset ==
          offsetof(scale_args, by));
}

TEST_CASE("lua loader - integers at every width's limits, floats and bools round-trip", "[lua]") {
    kitchen_fixture k;
    CHECK(k.echo<std::uint8_t>("echo_u8", 0) == 0);
    CHECK(k.echo<std::uint8_t>("echo_u8", 255) == 255);
    CHECK(k.echo<std::uint16_t>("echo_u16", 65535) == 65535);
    CHECK(k.echo<std::uint32_t>("echo_u32", 4294967295u) == 4294967295u);
    CHECK(k.echo<std::int8_t>("echo_i8", -128) == -128);
    CHECK(k.echo<std::int8_t>("echo_i8", 127) == 127);
    CHECK(k.echo<std::int16_t>("echo_i16", -32768) == -32768);
    CHECK(k.echo<std::int16_t>("echo_i16", 32767) == 32767);
    CHECK(k.echo<std::int32_t>("echo_i32", INT32_MIN) == INT32_MIN);
    CHECK(k.echo<std::int32_t>("echo_i32", INT32_MAX) == INT32_MAX);
    CHECK(k.echo<std::uint64_t>("echo_u64", 0) == 0);
    CHECK(k.echo<std::uint64_t>("echo_u64", std::uint64_t{1} << 53) == std::uint64_t{1} << 53);
    CHECK(k.echo<std::int64_t>("echo_i64", INT64_MIN) == INT64_MIN);  // -2^63: exact as a double

    CHECK(k.echo<float>("echo_f32", 1.5f) == 1.5f);
    CHECK(k.echo<float>("echo_f32", std::numeric_limits<float>::max()) ==
          std::numeric_limits<float>::max());
    CHECK(k.echo<float>("echo_f32", -std::numeric_limits<float>::infinity()) ==
          -std::numeric_limits<float>::infinity());
    CHECK(k.echo<double>("echo_f64", 0.1) == 0.1);
    CHECK(k.echo<double>("echo_f64", std::numeric_limits<double>::lowest()) ==
          std::numeric_limits<double>::lowest());
    CHECK(k.echo<double>("echo_f64", std::numeric_limits<double>::denorm_min()) ==
          std::numeric_limits<double>::denorm_min());
    CHECK(std::isnan(k.echo<double>("echo_f64", std::nan(""))));

    bool out = true;
    REQUIRE(k.call("negate", one<bool>{true}, out).ok());
    CHECK(out == false);
    REQUIRE(k.call("negate", one<bool>{false}, out).ok());
    CHECK(out == true);
}

TEST_CASE("lua loader - 64-bit integers beyond what the Lua number type holds", "[lua]") {
    kitchen_fixture k;
#if LUA_VERSION_NUM >= 503
    CHECK(k.echo<std::int64_t>("echo_i64", INT64_MAX) == INT64_MAX);
    CHECK(k.echo<std::uint64_t>("echo_u64", INT64_MAX) == static_cast<std::uint64_t>(INT64_MAX));
    // Above 2^63 - 1 Lua has floats only: exact ones pass, the others are refused, not rounded.
    CHECK(k.echo<std::uint64_t>("echo_u64", std::uint64_t{1} << 63) == std::uint64_t{1} << 63);
    const outcome r = k.echo_fails<std::uint64_t>("echo_u64", UINT64_MAX);
    CHECK(r.code == AbiErrorCode_Panic);
    CHECK(r.message ==
          "kitchen.lua: test.lua.Kitchen.echo_u64: parameter v: u64 value 18446744073709551615 "
          "has no exact Lua number (Lua integers are signed 64-bit; a float would round it)");
#else
    WARN("LuaJIT numbers are doubles: i64/u64 limits beyond 2^53 are refused, not round-tripped");
    const outcome r = k.echo_fails<std::int64_t>("echo_i64", INT64_MAX);
    CHECK(r.code == AbiErrorCode_Panic);
    CHECK(r.message ==
          "kitchen.lua: test.lua.Kitchen.echo_i64: parameter v: i64 value 9223372036854775807 "
          "has no exact LuaJIT number (numbers are doubles: integers beyond 2^53 round)");
    CHECK(k.echo_fails<std::uint64_t>("echo_u64", UINT64_MAX).code == AbiErrorCode_Panic);
    CHECK(k.echo_fails<std::uint64_t>("echo_u64", (std::uint64_t{1} << 53) + 1).code ==
          AbiErrorCode_Panic);
    CHECK(k.echo<std::uint64_t>("echo_u64", std::uint64_t{1} << 63) == std::uint64_t{1} << 63);
#endif
}

TEST_CASE("lua loader - every parameter arrives from its offset", "[lua]") {
    kitchen_fixture k;
    const mix_args args{-7, 65000, -123456, 1234567890123ull, 2.25f, -0.125, true, 256};
    StringView out{};
    const outcome r = k.call("mix", args, out);
    INFO(r.message);
    REQUIRE(r.ok());
    CHECK(str(out) == "-7|65000|-123456|1234567890123|2.25|-0.125|true|256");
}

TEST_CASE("lua loader - strings, buffers and pointers", "[lua]") {
    kitchen_fixture k;
    SECTION("StringView keeps embedded NULs and UTF-8 both ways") {
        const std::string text("a\0b\xC3\xA9\xE2\x82\xAC", 8);
        StringView out{};
        REQUIRE(k.call("echo", one<StringView>{sv(text)}, out).ok());
        CHECK(str(out) == text + "!");
        std::uint64_t len = 0;
        REQUIRE(k.call("length", one<StringView>{sv(text)}, len).ok());
        CHECK(len == 8);
        REQUIRE(k.call("echo", one<StringView>{{nullptr, 0}}, out).ok());
        CHECK(str(out) == "!");
    }
    SECTION("Buffer in and out, cap = len") {
        std::uint8_t bytes[] = {1, 0, 2, 255};
        const Buffer in{bytes, 4, 16};
        Buffer out{};
        REQUIRE(k.call("reverse", one<Buffer>{in}, out).ok());
        REQUIRE(out.len == 4);
        CHECK(out.cap == 4);
        CHECK(out.ptr[0] == 255);
        CHECK(out.ptr[1] == 2);
        CHECK(out.ptr[2] == 0);
        CHECK(out.ptr[3] == 1);
        REQUIRE(k.call("reverse", one<Buffer>{{nullptr, 0, 0}}, out).ok());
        CHECK(out.len == 0);
        CHECK(out.ptr == nullptr);
    }
    SECTION("Ptr is light userdata, NULL is nil") {
        int anchor = 0;
        void* out = nullptr;
        REQUIRE(k.call("same_ptr", one<void*>{&anchor}, out).ok());
        CHECK(out == &anchor);
        bool null = false;
        REQUIRE(k.call("is_null", one<void*>{nullptr}, null).ok());
        CHECK(null);
        REQUIRE(k.call("is_null", one<void*>{&anchor}, null).ok());
        CHECK_FALSE(null);
        out = &anchor;
        REQUIRE(k.call("same_ptr", one<void*>{nullptr}, out).ok());
        CHECK(out == nullptr);
    }
}

TEST_CASE("lua loader - structs with mixed alignment, nested, in and out", "[lua]") {
    kitchen_fixture k;
    const scale_args args{{7, 1.5, 1000, {9, 2000000000u, 200}, false, sv("mixed \xC3\xA9")}, 3};
    mixed out{};
    const outcome r = k.call("scale", args, out);
    INFO(r.message);
    REQUIRE(r.ok());
    CHECK(out.tag == 10);
    CHECK(out.value == 4.5);
    CHECK(out.small == 1003);
    CHECK(out.in.a == 10);
    CHECK(out.in.b == 4000000000u);
    CHECK(out.in.c == 203);
    CHECK(out.flag == true);
    CHECK(str(out.label) == "MIXED \xC3\xA9");  // string.upper leaves non-ASCII bytes alone
}

TEST_CASE("lua loader - arrays of primitives, structs and strings; records holding arrays",
          "[lua]") {
    kitchen_fixture k;
    SECTION("Array<Point> in, Point out") {
        const point points[] = {{1, 2}, {30, 40}, {-5, -6}};
        point out{};
        REQUIRE(k.call("sum_points", one<array_of<point>>{{points, 3}}, out).ok());
        CHECK(out.x == 26);
        CHECK(out.y == 36);
        REQUIRE(k.call("sum_points", one<array_of<point>>{{nullptr, 0}}, out).ok());
        CHECK(out.x == 0);
    }
    SECTION("Array<Point> out, with more than the arena's primary region") {
        array_of<point> out{};
        REQUIRE(k.call("make_points", one<std::uint32_t>{100}, out).ok());
        REQUIRE(out.len == 100);
        CHECK(reinterpret_cast<std::uintptr_t>(out.items) % alignof(point) == 0);
        CHECK(out.items[0].x == 1);
        CHECK(out.items[0].y == -1);
        CHECK(out.items[99].x == 100);
        CHECK(out.items[99].y == -100);
        REQUIRE(k.call("make_points", one<std::uint32_t>{0}, out).ok());
        CHECK(out.len == 0);
        CHECK(out.items == nullptr);
    }
    SECTION("Array<StringView> both ways") {
        const StringView words[] = {sv("one"), sv(std::string_view("t\0o", 3)), sv("three")};
        array_of<StringView> out{};
        REQUIRE(k.call("shout", one<array_of<StringView>>{{words, 3}}, out).ok());
        REQUIRE(out.len == 3);
        CHECK(str(out.items[0]) == "THREE");
        CHECK(str(out.items[1]) == std::string("T\0O", 3));
        CHECK(str(out.items[2]) == "ONE");
    }
    SECTION("Array<u8> both ways") {
        const std::uint8_t bytes[] = {0, 41, 255};
        array_of<std::uint8_t> out{};
        REQUIRE(k.call("bump", one<array_of<std::uint8_t>>{{bytes, 3}}, out).ok());
        REQUIRE(out.len == 3);
        CHECK(out.items[0] == 1);
        CHECK(out.items[1] == 42);
        CHECK(out.items[2] == 0);
    }
    SECTION("a Record: string, array, buffer, pointer, enum and i16 fields") {
        const point points[] = {{1, 2}, {3, 4}};
        std::uint8_t payload[] = {'p', 0, 'q'};
        int anchor = 0;
        const record in{sv("rec"), {points, 2}, {payload, 3, 3}, &anchor, 1, -32767};
        record out{};
        const outcome r = k.call("describe", one<record>{in}, out);
        INFO(r.message);
        REQUIRE(r.ok());
        CHECK(str(out.label) == "rec (2 points)");
        REQUIRE(out.points.len == 2);
        CHECK(out.points.items[0].x == 2);
        CHECK(out.points.items[0].y == 1);
        CHECK(out.points.items[1].x == 4);
        CHECK(str(out.payload) == std::string("p\0q\0tail", 8));
        CHECK(out.payload.cap == 8);
        CHECK(out.opaque == &anchor);
        CHECK(out.color == 256);
        CHECK(out.half == 32767);
    }
}

TEST_CASE("lua loader - enums and bit flags, refused when not a value", "[lua]") {
    kitchen_fixture k;
    std::uint16_t color = 0;
    REQUIRE(k.call("next_color", one<std::uint16_t>{1}, color).ok());
    CHECK(color == 2);
    REQUIRE(k.call("next_color", one<std::uint16_t>{2}, color).ok());
    CHECK(color == 256);
    const outcome bad = k.call("next_color", one<std::uint16_t>{256}, color);
    CHECK(bad.code == AbiErrorCode_Panic);
    CHECK(bad.message ==
          "kitchen.lua: test.lua.Kitchen.next_color: result: expected Color, got 3 (not one of "
          "its values)");

    std::uint8_t access = 0;
    REQUIRE(k.call("grant", grant_args{1, 4}, access).ok());
    CHECK(access == 5);
    const outcome flags = k.call("grant", grant_args{1, 8}, access);
    CHECK(flags.code == AbiErrorCode_Panic);
    CHECK(flags.message ==
          "kitchen.lua: test.lua.Kitchen.grant: result: expected Access, got 9 (not a "
          "combination of its flags)");
}

TEST_CASE("lua loader - void results; each instance is its own object", "[lua]") {
    kitchen_fixture k;
    const GuestContractInstance second = k.new_instance();
    CHECK(second.data != k.instance().data);
    std::uint32_t out = 0;
    REQUIRE(k.invoke(k.instance(), "touch", nullptr, nullptr).ok());
    REQUIRE(k.invoke(k.instance(), "touch", nullptr, nullptr).ok());
    REQUIRE(k.invoke(second, "touch", nullptr, nullptr).ok());
    REQUIRE(k.invoke(k.instance(), "touches", nullptr, &out).ok());
    CHECK(out == 2003);  // two touches on this instance, three on the script's global
    REQUIRE(k.invoke(second, "touches", nullptr, &out).ok());
    CHECK(out == 1003);
    // A null instance is the contract's default instance.
    REQUIRE(k.invoke({nullptr, kitchen_id}, "touch", nullptr, nullptr).ok());
    REQUIRE(k.invoke({nullptr, kitchen_id}, "touches", nullptr, &out).ok());
    CHECK(out == 1004);
    k.rt->host_api()->destroy_guest_instance(k.rt->host_api(), k.iface(), second);
}

TEST_CASE("lua loader - results that do not fit are refused, naming function, value and type",
          "[lua]") {
    kitchen_fixture k;
    std::uint8_t u8 = 0;
    REQUIRE(k.call("narrow", one<std::int64_t>{255}, u8).ok());
    CHECK(u8 == 255);
    outcome r = k.call("narrow", one<std::int64_t>{256}, u8);
    CHECK(r.code == AbiErrorCode_Panic);
    CHECK(r.message ==
          "kitchen.lua: test.lua.Kitchen.narrow: result: expected u8, got 256 (out of range)");
    r = k.call("narrow", one<std::int64_t>{-1}, u8);
    CHECK(r.message ==
          "kitchen.lua: test.lua.Kitchen.narrow: result: expected u8, got -1 (out of range)");

    std::int32_t i32 = 0;
    REQUIRE(k.call("truncate", one<double>{-3.0}, i32).ok());
    CHECK(i32 == -3);
    r = k.call("truncate", one<double>{3.5}, i32);
    CHECK(r.message ==
          "kitchen.lua: test.lua.Kitchen.truncate: result: expected i32, got 3.5 (not an "
          "integer)");
    r = k.call("truncate", one<double>{4294967296.0}, i32);
    CHECK(r.message.find("expected i32, got ") != std::string::npos);
    CHECK(r.message.find("(out of range)") != std::string::npos);

    float f32 = 0;
    r = k.call("to_f32", one<double>{1e300}, f32);
    CHECK(r.message ==
          "kitchen.lua: test.lua.Kitchen.to_f32: result: expected f32, got 1e+300 (out of range)");

    r = k.call("wrong", one<std::uint8_t>{1}, i32);
    CHECK(r.message == "kitchen.lua: test.lua.Kitchen.wrong: result: expected i32, got \"seven\"");
    r = k.call("wrong", one<std::uint8_t>{2}, i32);
    CHECK(r.message == "kitchen.lua: test.lua.Kitchen.wrong: result: expected i32, got a table");
    r = k.call("wrong", one<std::uint8_t>{3}, i32);
    CHECK(r.message == "kitchen.lua: test.lua.Kitchen.wrong: result: expected i32, got nil");
    r = k.call("wrong", one<std::uint8_t>{4}, i32);
    CHECK(r.message == "kitchen.lua: test.lua.Kitchen.wrong: result: expected i32, got true");

    point p{};
    r = k.call0("missing_field", p);
    CHECK(r.message ==
          "kitchen.lua: test.lua.Kitchen.missing_field: result.y: expected i32, got nil (missing "
          "field)");
    array_of<point> points{};
    r = k.call0("bad_point_in_array", points);
    CHECK(r.message ==
          "kitchen.lua: test.lua.Kitchen.bad_point_in_array: result[2].y: expected i32, got 4.5 "
          "(not an integer)");
}

TEST_CASE("lua loader - a script error reaches the host as Panic with file and line", "[lua]") {
    kitchen_fixture k;
    std::int32_t out = 0;
    REQUIRE(k.call("divide", pair_args{7, 2}, out).ok());
    CHECK(out == 3);
    const outcome r = k.call("divide", pair_args{1, 0}, out);
    CHECK(r.code == AbiErrorCode_Panic);
    CHECK(r.message == "kitchen.lua:14: division by zero");
    REQUIRE(k.call("divide", pair_args{-9, 2}, out).ok());  // the VM still serves
    CHECK(out == -5);
}

TEST_CASE("lua loader - without an arena, results come from HostApi.alloc", "[lua]") {
    kitchen_fixture k;
    const HostApi* host = k.rt->host_api();
    array_of<point> out{};
    const one<std::uint32_t> none{0};
    REQUIRE(k.invoke(k.instance(), "make_points", &none, &out, false).ok());
    CHECK(out.len == 0);
    const one<std::uint32_t> three{3};
    REQUIRE(k.invoke(k.instance(), "make_points", &three, &out, false).ok());
    REQUIRE(out.len == 3);
    CHECK(out.items[2].x == 3);
    host->free(host, reinterpret_cast<std::uint8_t*>(const_cast<point*>(out.items)),
               3 * sizeof(point), alignof(point));
    // A refused result allocates nothing that the caller would have to free.
    array_of<point> bad{};
    CHECK(k.invoke(k.instance(), "bad_point_in_array", nullptr, &bad, false).code ==
          AbiErrorCode_Panic);
    CHECK(bad.items == nullptr);
}

TEST_CASE("lua loader - polyplug.call reaches the host and another bundle", "[lua]") {
    kitchen_fixture k;
    SECTION("a host contract") {
        std::int64_t scaled = 0;
        REQUIRE(k.call("host_scale", one<std::int32_t>{-21}, scaled).ok());
        CHECK(scaled == -53);  // llround(-52.5)
        StringView name{};
        REQUIRE(k.call0("host_name", name).ok());
        CHECK(str(name) == "host math \xE2\x9C\x93");
    }
    SECTION("another bundle's guest contract, strings and arrays of structs both ways") {
        StringView out{};
        const outcome r = k.call("greet_via_peer", one<StringView>{sv("k\xC3\xBC")}, out);
        INFO(r.message);
        REQUIRE(r.ok());
        CHECK(str(out) == "hello, k\xC3\xBC from peer-lua #1001 (clean)");
        const point points[] = {{1, 2}, {3, 4}};
        point sum{};
        REQUIRE(k.call("peer_sum", one<array_of<point>>{{points, 2}}, sum).ok());
        CHECK(sum.x == 40);
        CHECK(sum.y == 60);
    }
    SECTION("what polyplug.call refuses is a Lua error at the script's line") {
        StringView out{};
        const outcome r = k.call0("call_errors", out);
        INFO(r.message);
        REQUIRE(r.ok());
        const std::string text = str(out);
        INFO(text);
        CHECK(text.find("kitchen.lua:131: polyplug.call: contract 'no.such' is not in the "
                        "bundle's contract file") == 0);
        CHECK(text.find("\nkitchen.lua:132: polyplug.call: contract 'test.lua.Peer' has no "
                        "function 'nope'\n") != std::string::npos);
        CHECK(text.find("\nkitchen.lua:133: polyplug.call('test.lua.Peer', 'greet'): 0 "
                        "arguments given, it takes 1\n") != std::string::npos);
        CHECK(text.find("\nkitchen.lua:134: polyplug.call('test.lua.Peer', 'greet'): argument 1 "
                        "(name): expected StringView (a string), got 12\n") != std::string::npos);
        CHECK(text.find("\nkitchen.lua:135: polyplug.call('test.lua.Peer', 'sum'): argument 1 "
                        "(points)[1].y: expected i32, got nil (missing field)") !=
              std::string::npos);
    }
}

TEST_CASE("lua loader - a call into its own VM is ReentrantCall, raised in the script", "[lua]") {
    kitchen_fixture k;
    std::uint8_t out = 0;
    const outcome r = k.call0("myself", out);
    CHECK(r.code == AbiErrorCode_Panic);
    INFO(r.message);
    CHECK(r.message.find("kitchen.lua:121: polyplug.call('test.lua.Kitchen', 'touches') failed "
                         "(ReentrantCall): bundle 'kitchen-lua': test.lua.Kitchen.touches called "
                         "from inside the same VM") == 0);
}

TEST_CASE("lua loader - polyplug.log reaches the runtime's logger; polyplug.bundle", "[lua]") {
    kitchen_fixture k;
    const log_args args{2, sv(std::string_view("care\0ful", 8))};
    REQUIRE(k.invoke(k.instance(), "log", &args, nullptr).ok());
    // The NUL arrives escaped: the logger escapes control bytes in every message.
    vm_fixtures::check_logged_warning(k.logs, "care\\0ful", "kitchen-lua");
    StringView name{};
    REQUIRE(k.call0("bundle", name).ok());
    CHECK(str(name) == "kitchen-lua");
}

TEST_CASE("lua loader - bundles run in separate VMs", "[lua]") {
    kitchen_fixture k;
    CHECK(k.rt->loader<polyplug::lua_loader>().open_vms() == 2);
    // The kitchen set globals `counter`, `kitchen_only` and `string.kitchen_mark`; the peer has
    // its own `counter` and sees neither of the others.
    StringView out{};
    REQUIRE(k.call("greet_via_peer", one<StringView>{sv("a")}, out).ok());
    CHECK(str(out) == "hello, a from peer-lua #1001 (clean)");
    REQUIRE(k.call("greet_via_peer", one<StringView>{sv("b")}, out).ok());
    CHECK(str(out) == "hello, b from peer-lua #1002 (clean)");
    std::uint32_t touches = 0;
    REQUIRE(k.call0("touches", touches).ok());
    CHECK(touches == 0);  // the kitchen's own counter is untouched
}

TEST_CASE("lua loader - a script that does not load fails load_bundle with its message", "[lua]") {
    temp_dir dir;
    lua_runtime rt;
    auto fails = [&](std::string_view script) {
        const fs::path bundle = make_calc(dir.path(), script);
        std::error_code ec;
        rt.load_bundle(bundle, ec);
        CHECK(ec);
        CHECK(rt.loader<polyplug::lua_loader>().open_vms() == 0);
        CHECK_FALSE(rt.resolve(rt.find(calc_id)));
        return rt.last_error();
    };
    SECTION("a syntax error") {
        const std::string e = fails("local Calc = {}\nfunction Calc:add(a, b) return a + end\n");
        INFO(e);
        CHECK(e.find("bundle 'calc-lua': calc.lua:2: unexpected symbol near 'end'") !=
              std::string::npos);
    }
    SECTION("an error at top level") {
        const std::string e = fails("\n\nerror('no configuration')\n");
        INFO(e);
        CHECK(e.find("bundle 'calc-lua': calc.lua:3: no configuration") != std::string::npos);
    }
    SECTION("a missing function") {
        const std::string e = fails(
            "local Calc = {}\nfunction Calc:add(a, b) return a + b end\n"
            "contracts = { [\"example.calc\"] = Calc }\n");
        INFO(e);
        CHECK(e.find("calc.lua: contracts['example.calc'] has no function 'describe'") !=
              std::string::npos);
    }
    SECTION("no contracts table") {
        const std::string e = fails("local Calc = {}\n");
        INFO(e);
        CHECK(e.find("calc.lua: the script defines no global 'contracts' table") !=
              std::string::npos);
    }
    SECTION("no entry for a provided contract") {
        const std::string e = fails("contracts = { ['example.calculator'] = {} }\n");
        INFO(e);
        CHECK(e.find("calc.lua: contracts['example.calc'] is missing") != std::string::npos);
    }
}

TEST_CASE("lua loader - reload swaps the code; a failing reload keeps the old version", "[lua]") {
    temp_dir dir;
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    lua_runtime rt(options);
    auto& loader = rt.loader<polyplug::lua_loader>();
    const fs::path bundle = make_calc(dir.path(), calc_script("v1"));
    rt.load_bundle(bundle);
    const GuestContractInterface* cached = rt.resolve(rt.find(calc_id));
    REQUIRE(cached != nullptr);
    CHECK(describe(*cached) == "v1");
    CHECK(loader.open_vms() == 1);

    write_file(bundle / "calc.lua", calc_script("v2"));
    rt.reload_bundle(bundle);
    CHECK(describe(*cached) == "v2");  // the interface from before the reload: the new code
    CHECK(loader.open_vms() == 1);

    write_file(bundle / "calc.lua", calc_script("v1"));
    rt.reload_bundle(bundle);
    CHECK(describe(*cached) == "v1");
    CHECK(add(*cached, 20, 22) == 42);

    write_file(bundle / "calc.lua", "local Calc = {\nfunction Calc:add() end\n");
    std::error_code ec;
    rt.reload_bundle(bundle, ec);
    CHECK(ec);
    INFO(rt.last_error());
    CHECK(rt.last_error().find("calc.lua:2:") != std::string::npos);
    CHECK(describe(*cached) == "v1");  // the old version keeps serving
    CHECK(loader.open_vms() == 1);

    rt.unload_bundle(polyplug::bundle_id("calc-lua"));
    CHECK(loader.open_vms() == 0);
}

TEST_CASE("lua loader - reload v1, v2, v1: a cached interface pointer calls the new code",
          "[lua]") {
    const std::string contract = "test.lua.Value";
    vm_fixtures::value_bundle_engine lua;
    lua.bundle_name = "lua-value";
    lua.script_file = "value.lua";
    lua.contract_id = polyplug::guest_contract_id(contract, 1);
    lua.write = [&](const fs::path& root, const std::string& script) {
        return vm_fixtures::write_script_bundle(
            root, "lua-value", {"lua", "value.lua", "value.api.toml"}, contract, 2,
            vm_fixtures::no_parameter_contract(contract, {{"value", "i32"}, {"next", "i32"}}),
            script);
    };
    lua.script = [&](int value) {
        return "local Value = {}\nfunction Value:value() return " + std::to_string(value) +
               " end\nfunction Value:next() return 0 end\ncontracts = { [\"" + contract +
               "\"] = Value }\n";
    };
    lua.script_that_does_not_compile = "local Value = {\nfunction Value:value() end\n";
    lua.compile_error_fragments = {"value.lua:2:"};
    // No stale_instance_error: Lua re-creates a kept instance in the new version (see below).
    vm_fixtures::check_reload_through_cached_interface<lua_runtime, polyplug::lua_loader>(lua);
}

TEST_CASE("lua loader - state hands over across reloads", "[lua]") {
    temp_dir dir;
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    lua_runtime rt(options);
    auto script = [](std::string_view version, std::string_view restore) {
        return "count = 0\n"
               "local Calc = {}\n"
               "function Calc:add(a, b) count = count + a + b; return count end\n"
               "function Calc:describe() return '" +
               std::string(version) +
               "' end\n"
               "state_schema = 1\n"
               "function save_state() return tostring(count) end\n"
               "function restore_state(schema, data)\n" +
               std::string(restore) +
               "\nend\n"
               "contracts = { [\"example.calc\"] = Calc }\n";
    };
    const std::string restore = "if schema ~= 1 then return false end count = tonumber(data)";
    const fs::path bundle = make_calc(dir.path(), script("v1", restore));
    rt.load_bundle(bundle);
    const GuestContractInterface* cached = rt.resolve(rt.find(calc_id));
    REQUIRE(cached != nullptr);
    CHECK(add(*cached, 1, 0) == 1);
    CHECK(add(*cached, 1, 1) == 3);

    write_file(bundle / "calc.lua", script("v2", restore));
    rt.reload_bundle(bundle);
    CHECK(describe(*cached) == "v2");
    CHECK(add(*cached, 1, 0) == 4);  // the counter continues

    write_file(bundle / "calc.lua", script("v3", "error('cannot take ' .. data)"));
    std::error_code ec;
    rt.reload_bundle(bundle, ec);
    CHECK(ec);
    INFO(rt.last_error());
    CHECK(rt.last_error().find("calc.lua:8: cannot take 4") != std::string::npos);
    CHECK(describe(*cached) == "v2");
    CHECK(add(*cached, 0, 1) == 5);  // the old version, with its state
    CHECK(rt.loader<polyplug::lua_loader>().open_vms() == 1);
}

TEST_CASE("lua loader - an instance kept across a reload is re-created in the new version",
          "[lua]") {
    temp_dir dir;
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    lua_runtime rt(options);
    auto script = [](std::string_view version) {
        return "local Calc = {}\nCalc.__index = Calc\n"
               "function Calc.new() return setmetatable({ n = 0 }, Calc) end\n"
               "function Calc:add(a, b) self.n = self.n + 1; return self.n end\n"
               "function Calc:describe() return '" +
               std::string(version) + "' end\ncontracts = { [\"example.calc\"] = Calc }\n";
    };
    const fs::path bundle = make_calc(dir.path(), script("v1"));
    rt.load_bundle(bundle);
    const GuestContractInterface* cached = rt.resolve(rt.find(calc_id));
    REQUIRE(cached != nullptr);
    const HostApi* host = rt.host_api();
    GuestContractInstance kept{nullptr, 0};
    host->create_guest_instance(host, cached, nullptr, &kept);
    REQUIRE(kept.data != nullptr);
    CHECK(add(*cached, 0, 0, kept) == 1);
    CHECK(add(*cached, 0, 0, kept) == 2);

    write_file(bundle / "calc.lua", script("v2"));
    rt.reload_bundle(bundle);
    CHECK(describe(*cached, kept) == "v2");
    CHECK(add(*cached, 0, 0, kept) == 1);  // a new object in the new VM...
    CHECK(add(*cached, 0, 0, kept) == 2);  // ...that stays the one for this handle
    host->destroy_guest_instance(host, cached, kept);
    rt.unload_bundle(polyplug::bundle_id("calc-lua"));
    CHECK(rt.loader<polyplug::lua_loader>().open_vms() == 0);
}

TEST_CASE("lua loader - unloading tears the VMs down", "[lua]") {
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    lua_runtime rt(options);
    rt.register_host_contract(math_iface);
    // The kitchen goes first: with the peer still loaded, its contract no longer resolves.
    vm_fixtures::check_one_vm_per_bundle<polyplug::lua_loader>(
        rt, {bundles_dir / "peer", bundles_dir / "kitchen"}, {"peer-lua", "kitchen-lua"},
        [&](std::size_t loaded) {
            if (loaded == 1) CHECK_FALSE(rt.resolve(rt.find(kitchen_id)));
        });
}
