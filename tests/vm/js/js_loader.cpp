// SPDX-License-Identifier: MIT
/// @file js_loader.cpp
/// The JavaScript (Duktape) loader through a C++ runtime: every type category in and out, the
/// refusals and script errors, load failures, reloads with state, isolation, re-entrancy,
/// polyplug.call/log/bundle and VM teardown. Bundles: tests/vm/js/bundles (kitchen, calc) and
/// ones written into temporary directories.

// support.hpp's fixture() names the fixture-plugin directory, which these tests never use.
#define POLYPLUG_TEST_PLUGIN_DIR ""
#include "../vm_fixtures.hpp"

#include <polyplug/loaders/js.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using test_support::temp_dir;
using test_support::write_file;
using namespace vm_fixtures;
using js_runtime = polyplug::basic_runtime<polyplug::native_loader, polyplug::js_loader>;

const fs::path bundles_dir = POLYPLUG_JS_BUNDLES;

// ---- the C side of kitchen.api.toml beyond what vm_fixtures.hpp declares ----------------------

struct big_args {
    std::uint64_t d;
    std::int64_t e;
};

// ---- a host contract the kitchen script calls: host.test.js.Greeter@1 -----------------------

void greeter_greet(HostContractInstance, const void* args, void* out, AbiError* err) {
    StringView name{};
    std::memcpy(&name, args, sizeof name);
    thread_local std::string text;
    text = "Hello, " + str(name);
    *static_cast<StringView*>(out) = sv(text);
    *err = {AbiErrorCode_Ok, {nullptr, 0}};
}
void greeter_sum(HostContractInstance, const void* args, void* out, AbiError* err) {
    pair_args in{};
    std::memcpy(&in, args, sizeof in);
    *static_cast<std::int32_t*>(out) = in.a + in.b;
    *err = {AbiErrorCode_Ok, {nullptr, 0}};
}
void greeter_refuse(HostContractInstance, const void*, void*, AbiError* err) {
    *err = polyplug_call_error(AbiErrorCode_HostContractCallFailed, "the host refuses");
}
const void* const greeter_table[] = {reinterpret_cast<const void*>(&greeter_greet),
                                     reinterpret_cast<const void*>(&greeter_sum),
                                     reinterpret_cast<const void*>(&greeter_refuse)};
int greeter_state = 0;

/// Registered by reference, so it outlives every runtime of the tests.
const HostContractInterface greeter = [] {
    HostContractInterface iface{};
    iface.contract_id = polyplug::host_contract_id("host.test.js.Greeter", 1);
    iface.contract_version = {1, 0, 0};
    iface.singleton = true;
    iface.dispatch_type = DispatchType_Native;
    iface.create_instance = [](const HostContractInterface*, const void*,
                               HostContractInstance* out) { out->data = &greeter_state; };
    iface.destroy_instance = [](const HostContractInterface*, HostContractInstance) {};
    iface.dispatch.native.function_count = 3;
    iface.dispatch.native.functions = greeter_table;
    return iface;
}();

/// A runtime (hot reload on, every log record captured) with the kitchen bundle loaded.
struct kitchen_fixture {
    test_support::log_capture logs;
    std::unique_ptr<js_runtime> rt;
    polyplug::contract_file api;

    kitchen_fixture() {
        polyplug::runtime_options options;
        options.hot_reload_enabled = true;
        options.log = logs.callback();
        options.log_max_level = polyplug::log_level::trace;
        rt = std::make_unique<js_runtime>(options);
        rt->register_host_contract(greeter);
        rt->load_bundle(bundles_dir / "kitchen");
        api = polyplug::read_contract_file(bundles_dir / "kitchen" / "kitchen.api.toml");
    }
    const polyplug::contract_decl& kitchen() const { return api.guest_contracts[0]; }
};

// ---- bundles written into temporary directories --------------------------------------------

/// The contract of the temporary bundles: value() -> i32, bump() -> i32, text() -> StringView.
std::string counter_api(const std::string& contract) {
    return no_parameter_contract(contract,
                                 {{"value", "i32"}, {"bump", "i32"}, {"text", "StringView"}});
}

/// `<root>/<name>/` with manifest.toml, api.toml and `<name>.js` holding `script`.
fs::path write_bundle(const fs::path& root, const std::string& name, const std::string& contract,
                      const std::string& script) {
    return write_script_bundle(root, name, {"js", name + ".js", "api.toml"}, contract, 3,
                               counter_api(contract), script);
}

/// A counter script: value() gives `value`, bump() counts in a global, text() gives `text`.
std::string counter_script(const std::string& contract, int value, const std::string& text = "",
                           const std::string& extra = "") {
    return "var hits = 0;\n"
           "function Counter() {}\n"
           "Counter.prototype.value = function () { return " +
           std::to_string(value) +
           "; };\n"
           "Counter.prototype.bump = function () { hits += 1; return hits; };\n"
           "Counter.prototype.text = function () { return \"" +
           text + "\"; };\n" + extra + "contracts = { \"" + contract + "\": Counter };\n";
}

/// Calls `fn` (no parameters) of `contract` through a fresh instance of the runtime's current
/// provider, or of `iface` when given (a pointer cached before a reload).
template <class R>
R call_fresh(js_runtime& rt, const polyplug::contract_decl& decl, std::string_view fn,
             const GuestContractInterface* iface = nullptr) {
    if (iface == nullptr) iface = rt.resolve(rt.find(decl.id));
    REQUIRE(iface != nullptr);
    R out{};
    const outcome r = call_on_new_instance(rt.host_api(), iface, decl.find_function(fn)->id, out);
    INFO(r.message);
    REQUIRE(r.ok());
    return out;
}

std::string text_fresh(js_runtime& rt, const polyplug::contract_decl& decl,
                       const GuestContractInterface* iface = nullptr) {
    const StringView v = call_fresh<StringView>(rt, decl, "text", iface);
    std::string text = str(v);
    // No arena: the result came from HostApi.alloc.
    if (v.ptr != nullptr)
        rt.host_api()->free(rt.host_api(), const_cast<std::uint8_t*>(v.ptr), v.len, 1);
    return text;
}

polyplug::contract_decl counter_decl(const std::string& contract) {
    return polyplug::parse_contract_file(counter_api(contract), "api.toml").guest_contracts[0];
}

}  // namespace

TEST_CASE("js loader - the test's C structs match the contract file's layouts", "[js]") {
    const polyplug::contract_file api =
        polyplug::read_contract_file(bundles_dir / "kitchen" / "kitchen.api.toml");
    check_kitchen_layouts(api);
    const polyplug::contract_decl& k = api.guest_contracts[0];
    CHECK(k.find_function("say")->args.fields[1].offset == offsetof(log_args, message));
    CHECK(k.find_function("big")->args.size == sizeof(big_args));
}

TEST_CASE("js loader - integers at the limits of every width, both ways", "[js]") {
    kitchen_fixture f;
    guest g(*f.rt, f.kitchen());
    constexpr std::int64_t exact = std::int64_t{1} << 53;

    SECTION("parameters in, the same values back") {
        for (std::uint8_t v : {std::uint8_t{0}, std::uint8_t{1}, std::uint8_t{255}}) {
            CHECK(g.get<std::uint8_t>("echo_u8", v) == v);
        }
        for (std::uint16_t v : {std::uint16_t{0}, std::uint16_t{65535}}) {
            CHECK(g.get<std::uint16_t>("echo_u16", v) == v);
        }
        for (std::uint32_t v : {0u, 4294967295u}) CHECK(g.get<std::uint32_t>("echo_u32", v) == v);
        for (std::uint64_t v : {std::uint64_t{0}, std::uint64_t(exact), std::uint64_t(exact - 1)}) {
            CHECK(g.get<std::uint64_t>("echo_u64", v) == v);
        }
        for (std::int8_t v : {std::int8_t{-128}, std::int8_t{0}, std::int8_t{127}}) {
            CHECK(g.get<std::int8_t>("echo_i8", v) == v);
        }
        for (std::int16_t v : {std::int16_t{-32768}, std::int16_t{32767}}) {
            CHECK(g.get<std::int16_t>("echo_i16", v) == v);
        }
        for (std::int32_t v : {std::numeric_limits<std::int32_t>::min(), -1,
                               std::numeric_limits<std::int32_t>::max()}) {
            CHECK(g.get<std::int32_t>("echo_i32", v) == v);
        }
        for (std::int64_t v : {-exact, std::int64_t{-1}, exact}) {
            CHECK(g.get<std::int64_t>("echo_i64", v) == v);
        }
    }

    SECTION("64-bit parameters beyond 2^53 are refused, not rounded") {
        const std::uint64_t u = std::uint64_t(exact) + 1;
        std::string m = g.panic("echo_u64", &u);
        CHECK(m ==
              "kitchen.js: test.js.Kitchen.echo_u64: parameter 'x': the value "
              "9007199254740993 is beyond ±2^53, which a JavaScript number cannot hold "
              "exactly");
        const std::int64_t i = std::numeric_limits<std::int64_t>::min();
        m = g.panic("echo_i64", &i);
        CHECK(m.find("parameter 'x': the value -9223372036854775808 is beyond ±2^53") !=
              std::string::npos);
        const big_args both{5, -exact - 1};
        m = g.panic("big", &both);
        CHECK(m.find("parameter 'e': the value -9007199254740993") != std::string::npos);
        const big_args fine{std::uint64_t(exact), -exact};
        CHECK(g.get<double>("big", fine) == 0.0);
    }

    SECTION("results at the limits of every width are taken") {
        CHECK(g.get<std::uint8_t>("to_u8", 255.0) == 255);
        CHECK(g.get<std::uint16_t>("to_u16", 65535.0) == 65535);
        CHECK(g.get<std::uint32_t>("to_u32", 4294967295.0) == 4294967295u);
        CHECK(g.get<std::uint64_t>("to_u64", 9007199254740992.0) == std::uint64_t(exact));
        CHECK(g.get<std::int8_t>("to_i8", -128.0) == -128);
        CHECK(g.get<std::int16_t>("to_i16", -32768.0) == -32768);
        CHECK(g.get<std::int32_t>("to_i32", -2147483648.0) ==
              std::numeric_limits<std::int32_t>::min());
        CHECK(g.get<std::int64_t>("to_i64", -9007199254740992.0) == -exact);
        CHECK(g.get<std::int32_t>("to_i32", -0.0) == 0);
    }

    SECTION("results out of range or not integral are refused with a message") {
        const auto refused = [&](std::string_view fn, double v) { return g.panic(fn, &v); };
        CHECK(refused("to_u8", 256) ==
              "kitchen.js: test.js.Kitchen.to_u8: result: expected u8 (an integer from 0 to "
              "255), got the number 256");
        CHECK(refused("to_u8", -1).find("got the number -1") != std::string::npos);
        CHECK(refused("to_u16", 65536).find("expected u16 (an integer from 0 to 65535)") !=
              std::string::npos);
        CHECK(refused("to_u32", 4294967296.0).find("got the number 4294967296") !=
              std::string::npos);
        CHECK(refused("to_i8", 128).find("expected i8 (an integer from -128 to 127)") !=
              std::string::npos);
        CHECK(refused("to_i16", -32769).find("got the number -32769") != std::string::npos);
        CHECK(refused("to_i32", 1.5) ==
              "kitchen.js: test.js.Kitchen.to_i32: result: expected i32 (an integer from "
              "-2147483648 to 2147483647), got the number 1.5");
        CHECK(refused("to_i32", std::nan("")).find("got the number NaN") != std::string::npos);
        CHECK(refused("to_u64", 9007199254740994.0)
                  .find("expected u64 (an integer from 0 to 2^53, the exact range of a "
                        "JavaScript number), got the number 9007199254740994") !=
              std::string::npos);
        CHECK(refused("to_i64", -9007199254740994.0).find("got the number -9007199254740994") !=
              std::string::npos);
        CHECK(refused("to_i64", INFINITY).find("got the number Infinity") != std::string::npos);
        CHECK(refused("to_f32", 1e39).find("expected f32") != std::string::npos);
    }
}

TEST_CASE("js loader - floats and bools", "[js]") {
    kitchen_fixture f;
    guest g(*f.rt, f.kitchen());
    CHECK(g.get<float>("echo_f32", 3.25f) == 3.25f);
    CHECK(g.get<float>("echo_f32", std::numeric_limits<float>::max()) ==
          std::numeric_limits<float>::max());
    CHECK(std::isinf(g.get<float>("echo_f32", -INFINITY)));
    CHECK(std::isnan(g.get<float>("echo_f32", std::nanf(""))));
    CHECK(g.get<float>("to_f32", 0.1) == 0.1f);
    CHECK(g.get<double>("echo_f64", std::numeric_limits<double>::max()) ==
          std::numeric_limits<double>::max());
    CHECK(g.get<double>("echo_f64", std::numeric_limits<double>::denorm_min()) ==
          std::numeric_limits<double>::denorm_min());
    CHECK(std::signbit(g.get<double>("echo_f64", -0.0)));
    CHECK(g.get<bool>("negate", true) == false);
    CHECK(g.get<bool>("negate", false) == true);

    // Every parameter at its offset in a struct with padding between all of them.
    const mix_args args{-5, 60000, -100000, std::uint64_t{1} << 40, 0.5f, 0.25, true, 256};
    CHECK(g.get<double>("mix", args) ==
          -5.0 + 60000 - 100000 + 1099511627776.0 + 0.5 + 0.25 + 1000 + 256);
}

TEST_CASE("js loader - strings keep NULs and UTF-8, 4-byte sequences included", "[js]") {
    kitchen_fixture f;
    guest g(*f.rt, f.kitchen());
    const auto wrap = [&](std::string_view s) { return str(g.get<StringView>("wrap", sv(s))); };
    CHECK(wrap(std::string_view("a\0b", 3)) == std::string("<a\0b>", 5));
    CHECK(wrap("") == "<>");
    CHECK(str(g.get<StringView>("wrap", StringView{nullptr, 0})) == "<>");
    // é (2 bytes), € (3 bytes), U+1F50C (4 bytes): byte-identical after concatenation.
    const std::string plug = "\xF0\x9F\x94\x8C";
    CHECK(wrap("caf\xC3\xA9 \xE2\x82\xAC " + plug) == "<caf\xC3\xA9 \xE2\x82\xAC " + plug + ">");
    CHECK(wrap(plug + plug) == "<" + plug + plug + ">");
    // Inside the script the character is one surrogate pair, equal to the literal "\uD83D\uDD0C".
    CHECK(g.get<std::uint32_t>("utf16_length", sv(plug)) == 2);
    CHECK(g.get<bool>("is_plug", sv(plug)));
    // A literal in the script's source comes back as UTF-8, not as surrogate pairs.
    CHECK(str(g.get<StringView>("literal")) == "caf\xC3\xA9 " + plug);
    // Bytes that are not UTF-8 arrive as U+FFFD (a leading 0xFF would make a Duktape Symbol).
    CHECK(wrap("\xFF\xFE") == "<\xEF\xBF\xBD\xEF\xBF\xBD>");
    CHECK(wrap("caf\xE9") == "<caf\xEF\xBF\xBD>");
    // A lone surrogate the script makes comes back as U+FFFD: results are always UTF-8.
    CHECK(str(g.get<StringView>("lone")) ==
          "a\xEF\xBF\xBD"
          "b");
    // A Symbol is not a string (Duktape keeps symbols as strings with a marker byte).
    CHECK(g.panic("symbol") ==
          "kitchen.js: test.js.Kitchen.symbol: result: expected StringView "
          "(a string), got a symbol");
}

TEST_CASE("js loader - buffers in as Uint8Array, out from Uint8Array and ArrayBuffer", "[js]") {
    kitchen_fixture f;
    guest g(*f.rt, f.kitchen());
    std::uint8_t bytes[] = {1, 2, 3, 0, 255};
    const Buffer in{bytes, sizeof bytes, sizeof bytes};
    const Buffer out = g.get<Buffer>("reverse", in);
    REQUIRE(out.len == 5);
    CHECK(out.cap == 5);
    CHECK(std::vector<std::uint8_t>(out.ptr, out.ptr + out.len) ==
          std::vector<std::uint8_t>{255, 0, 3, 2, 1});
    CHECK(bytes[0] == 1);  // the script got a copy

    const Buffer empty = g.get<Buffer>("reverse", Buffer{nullptr, 0, 0});
    CHECK(empty.len == 0);
    CHECK(empty.ptr == nullptr);

    const Buffer made = g.get<Buffer>("bytes_of", std::uint32_t{5});
    REQUIRE(made.len == 5);
    CHECK(std::vector<std::uint8_t>(made.ptr, made.ptr + made.len) ==
          std::vector<std::uint8_t>{0, 3, 6, 9, 12});

    SECTION("without an arena the result comes from HostApi.alloc") {
        Buffer heap{};
        const std::uint32_t n = 3000;
        REQUIRE(g.call("bytes_of", &n, &heap, /*use_arena=*/false).code == AbiErrorCode_Ok);
        REQUIRE(heap.len == n);
        CHECK(heap.ptr[2999] == (2999 * 3) % 256);
        g.host()->free(g.host(), heap.ptr, heap.cap, 1);
    }
}

TEST_CASE("js loader - pointers and null", "[js]") {
    kitchen_fixture f;
    guest g(*f.rt, f.kitchen());
    int target = 0;
    void* p = &target;
    CHECK(g.get<void*>("echo_ptr", p) == p);
    CHECK(g.get<void*>("echo_ptr", static_cast<void*>(nullptr)) == nullptr);
    CHECK(g.get<bool>("is_null", static_cast<void*>(nullptr)));
    CHECK_FALSE(g.get<bool>("is_null", p));
}

TEST_CASE("js loader - structs with mixed alignment, nested structs", "[js]") {
    kitchen_fixture f;
    guest g(*f.rt, f.kitchen());
    const mixed m = g.get<mixed>("scale", scale_args{{7, 1.5, 300}, 3});
    CHECK(m.tag == 8);
    CHECK(m.value == 4.5);
    CHECK(m.small == 900);

    const point pts[] = {{1, 2}, {3, 4}};
    std::uint8_t payload[] = {9, 8};
    int marker = 0;
    const record r{true, {1, 70000, 3}, sv("label"), {pts, 2}, 1, {payload, 2, 2}, &marker, -1234};
    const record back = g.get<record>("describe", r);
    CHECK(back.in.b == 70001);
    CHECK(str(back.label) == "label/2");
    REQUIRE(back.points.len == 2);
    REQUIRE(back.payload.len == 3);  // JavaScript's describe appends 0xFF
    CHECK(back.payload.ptr[0] == 9);
    CHECK(back.payload.ptr[2] == 0xFF);
    check_described_record(r, back);
}

TEST_CASE("js loader - arrays of primitives, structs, strings and enums", "[js]") {
    kitchen_fixture f;
    guest g(*f.rt, f.kitchen());
    const point pts[] = {{1, 2}, {3, 4}, {-10, 5}};
    const point sum = g.get<point>("sum_points", array_of<point>{pts, 3});
    CHECK(sum.x == -6);
    CHECK(sum.y == 11);
    const point none = g.get<point>("sum_points", array_of<point>{nullptr, 0});
    CHECK(none.x == 0);

    const StringView words[] = {sv("ab"), sv(std::string_view("x\0y", 3)), sv("")};
    const auto loud = g.get<array_of<StringView>>("shout", array_of<StringView>{words, 3});
    REQUIRE(loud.len == 3);
    CHECK(str(loud.items[0]) == "AB!");
    CHECK(str(loud.items[1]) == std::string("X\0Y!", 4));
    CHECK(str(loud.items[2]) == "!");

    const auto sq = g.get<array_of<std::uint32_t>>("squares", std::uint32_t{5});
    CHECK(std::vector<std::uint32_t>(sq.items, sq.items + sq.len) ==
          std::vector<std::uint32_t>{0, 1, 4, 9, 16});
    const auto empty = g.get<array_of<std::uint32_t>>("squares", std::uint32_t{0});
    CHECK(empty.len == 0);
    CHECK(empty.items == nullptr);

    const auto colors = g.get<array_of<std::uint16_t>>("rainbow");
    CHECK(std::vector<std::uint16_t>(colors.items, colors.items + colors.len) ==
          std::vector<std::uint16_t>{1, 2, 256});
}

TEST_CASE("js loader - enums, plain and bit flags", "[js]") {
    kitchen_fixture f;
    guest g(*f.rt, f.kitchen());
    CHECK(g.get<std::uint16_t>("next_color", std::uint16_t{1}) == 2);
    CHECK(g.get<std::uint16_t>("next_color", std::uint16_t{2}) == 256);
    CHECK(g.get<std::uint8_t>("grant", std::uint8_t{1}) == 3);
    CHECK(g.get<std::uint8_t>("grant", std::uint8_t{4}) == 6);
    const double three = 3;
    CHECK(g.panic("bad_color", &three) ==
          "kitchen.js: test.js.Kitchen.bad_color: result: expected enum Color (one of Red = 1, "
          "Green = 2, Blue = 256), got the number 3");
    const std::uint8_t eight = 8;  // a | 2 = 10: bit 8 is no flag of Access
    CHECK(g.panic("grant", &eight)
              .find("expected enum Access (a combination of Read = 1, "
                    "Write = 2, Exec = 4), got the number 10") != std::string::npos);
}

TEST_CASE("js loader - void results; each instance is its own object", "[js]") {
    kitchen_fixture f;
    guest a(*f.rt, f.kitchen());
    guest b(*f.rt, f.kitchen());
    for (int i = 0; i < 3; ++i) REQUIRE(a.call("bump", nullptr, nullptr).code == AbiErrorCode_Ok);
    CHECK(a.get<std::uint32_t>("count") == 3);
    CHECK(b.get<std::uint32_t>("count") == 0);
    // Calls may come from any thread (vm_loader serialises them per VM); the main thread only
    // waits, so no two threads assert at once.
    std::uint32_t bumped = 99;
    std::uint32_t seen = 0;
    std::thread other([&] {
        bumped = a.call("bump", nullptr, nullptr).code;
        if (bumped == AbiErrorCode_Ok) (void)a.call("count", nullptr, &seen);
    });
    other.join();
    CHECK(bumped == AbiErrorCode_Ok);
    CHECK(seen == 4);
}

TEST_CASE("js loader - results that do not fit their type are refused", "[js]") {
    kitchen_fixture f;
    guest g(*f.rt, f.kitchen());
    const auto bad_point = [&](std::uint32_t kind) { return g.panic("bad_point", &kind); };
    CHECK(bad_point(0) ==
          "kitchen.js: test.js.Kitchen.bad_point: result: missing field 'y' of struct Point");
    CHECK(bad_point(1) ==
          "kitchen.js: test.js.Kitchen.bad_point: result: expected struct Point "
          "(an object), got the string 'nope'");
    CHECK(bad_point(2).find("result.y: expected i32 (an integer from -2147483648 to 2147483647), "
                            "got the number 1.5") != std::string::npos);
    CHECK(g.get<point>("bad_point", std::uint32_t{3}).y == 2);
    CHECK(g.panic("bad_text") ==
          "kitchen.js: test.js.Kitchen.bad_text: result: expected "
          "StringView (a string), got the number 42");
    CHECK(g.panic("bad_list") ==
          "kitchen.js: test.js.Kitchen.bad_list: result[1].x: expected "
          "i32 (an integer from -2147483648 to 2147483647), got the "
          "string 'a'");
    // The instance still works after refusals.
    CHECK(g.get<std::int32_t>("echo_i32", 7) == 7);
}

TEST_CASE("js loader - a script error reaches the host as Panic with file and line", "[js]") {
    kitchen_fixture f;
    guest g(*f.rt, f.kitchen());
    const int line = line_of(bundles_dir / "kitchen" / "kitchen.js", "throw new RangeError");
    const std::int32_t n = 3;
    CHECK(g.panic("fail", &n) == "RangeError: bad n 3 (kitchen.js:" + std::to_string(line) + ")");
    CHECK(g.get<std::int32_t>("fail", std::int32_t{2}) == 2);
    CHECK(g.panic("throw_string") == "kitchen.js: the script threw boom");
    // A caller that passes no argument struct to a function with parameters is refused.
    CHECK(g.panic("negate", static_cast<const int*>(nullptr)) ==
          "kitchen.js: negate called with a null argument struct");
}

TEST_CASE("js loader - a script that fails to load fails load_bundle with its message", "[js]") {
    temp_dir dir;
    js_runtime rt;
    const std::string contract = "test.js.Broken";
    std::error_code ec;

    SECTION("a syntax error") {
        const fs::path b = write_bundle(dir.path(), "broken", contract,
                                        "function Counter() {}\nvar x = ;\ncontracts = {};\n");
        rt.load_bundle(b, ec);
        REQUIRE(ec);
        CHECK(rt.last_error().find("SyntaxError: ") != std::string::npos);
        CHECK(rt.last_error().find("(broken.js:2)") != std::string::npos);
    }
    SECTION("an error at top level") {
        const fs::path b = write_bundle(dir.path(), "broken", contract,
                                        "\n\nthrow new Error('top-level failure');\n");
        rt.load_bundle(b, ec);
        REQUIRE(ec);
        CHECK(rt.last_error().find("Error: top-level failure (broken.js:3)") != std::string::npos);
    }
    SECTION("a missing function") {
        const fs::path b =
            write_bundle(dir.path(), "broken", contract,
                         "function C() {}\nC.prototype.value = function () { return 1; };\n"
                         "contracts = { 'test.js.Broken': C };\n");
        rt.load_bundle(b, ec);
        REQUIRE(ec);
        CHECK(rt.last_error().find("broken.js: contracts['test.js.Broken'] has no functions "
                                   "'bump', 'text' (on its prototype)") != std::string::npos);
    }
    SECTION("no implementation of the provided contract") {
        const fs::path b = write_bundle(dir.path(), "broken", contract, "contracts = {};\n");
        rt.load_bundle(b, ec);
        REQUIRE(ec);
        CHECK(rt.last_error().find("broken.js: contracts has no entry 'test.js.Broken'") !=
              std::string::npos);
    }
    SECTION("no contracts global") {
        const fs::path b = write_bundle(dir.path(), "broken", contract, "var contracts2 = 1;\n");
        rt.load_bundle(b, ec);
        REQUIRE(ec);
        CHECK(rt.last_error().find("broken.js: the script defines no global 'contracts' object "
                                   "(it is undefined)") != std::string::npos);
    }
    CHECK(rt.loader<polyplug::js_loader>().open_vms() == 0);
    CHECK(rt.bundles().empty());
}

TEST_CASE("js loader - reload v1, v2, v1: a cached interface pointer calls the new code", "[js]") {
    const std::string contract = "test.js.Counter";
    value_bundle_engine js;
    js.bundle_name = "counter";
    js.script_file = "counter.js";
    js.contract_id = counter_decl(contract).id;
    js.write = [&](const fs::path& root, const std::string& script) {
        return write_bundle(root, "counter", contract, script);
    };
    js.script = [&](int value) { return counter_script(contract, value); };
    js.script_that_does_not_compile = "function (\n";
    js.compile_error_fragments = {"SyntaxError", "(counter.js:1)"};
    js.stale_instance_error = "did not create";
    check_reload_through_cached_interface<js_runtime, polyplug::js_loader>(js);
}

TEST_CASE("js loader - state hand-over across reloads", "[js]") {
    temp_dir dir;
    test_support::log_capture logs;
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    options.log = logs.callback();
    js_runtime rt(options);
    const std::string contract = "test.js.Counter";
    const polyplug::contract_decl decl = counter_decl(contract);
    const std::string state =
        "state_schema = 1;\n"
        "function save_state() { return JSON.stringify({ hits: hits, mark: '\\uD83D\\uDD0C' }); }\n"
        "function restore_state(schema, data) {\n"
        "    if (schema !== 1) throw new Error('unknown schema ' + schema);\n"
        "    var s = JSON.parse(data);\n"
        "    if (s.mark !== '\\uD83D\\uDD0C') throw new Error('mark lost');\n"
        "    hits = s.hits;\n"
        "}\n";
    const fs::path b =
        write_bundle(dir.path(), "counter", contract, counter_script(contract, 1, "v1", state));
    rt.load_bundle(b);
    for (int i = 1; i <= 3; ++i) CHECK(call_fresh<std::int32_t>(rt, decl, "bump") == i);

    write_file(b / "counter.js", counter_script(contract, 2, "v2", state));
    rt.reload_bundle(b);
    CHECK(text_fresh(rt, decl) == "v2");
    CHECK(call_fresh<std::int32_t>(rt, decl, "bump") == 4);

    SECTION("a new version refusing the state fails the reload; the old keeps its count") {
        const std::string picky =
            "state_schema = 2;\n"
            "function save_state() { return ''; }\n"
            "function restore_state(schema, data) {\n"
            "    throw new Error('unknown schema ' + schema);\n"
            "}\n";
        write_file(b / "counter.js", counter_script(contract, 3, "v3", picky));
        std::error_code ec;
        rt.reload_bundle(b, ec);
        REQUIRE(ec);
        CHECK(rt.last_error().find("Error: unknown schema 1 (counter.js:") != std::string::npos);
        CHECK(text_fresh(rt, decl) == "v2");
        CHECK(call_fresh<std::int32_t>(rt, decl, "bump") == 5);
    }
    SECTION("save_state returning bytes hands them over verbatim") {
        // restore_state gets a string when the bytes are UTF-8, else a Uint8Array.
        const std::string binary =
            "state_schema = 7;\n"
            "function save_state() { var b = new Uint8Array(3); b[0] = hits; b[1] = 0;"
            " b[2] = 0xff; return b; }\n"
            "function restore_state(schema, data) {\n"
            "    if (schema === 1) { hits = JSON.parse(data).hits; return; }\n"
            "    if (!(data instanceof Uint8Array)) throw new Error('not bytes');\n"
            "    hits = data[0] + data[2] * 1000 + data.length * 100;\n"
            "}\n";
        write_file(b / "counter.js", counter_script(contract, 3, "v3", binary));
        rt.reload_bundle(b);  // from the JSON version: schema 1
        CHECK(call_fresh<std::int32_t>(rt, decl, "bump") == 5);
        write_file(b / "counter.js", counter_script(contract, 4, "v4", binary));
        rt.reload_bundle(b);  // from the bytes version: [5, 0, 255]
        CHECK(call_fresh<std::int32_t>(rt, decl, "bump") == 5 + 255000 + 300 + 1);
    }
}

TEST_CASE("js loader - two bundles with the same globals do not see each other", "[js]") {
    temp_dir dir;
    js_runtime rt;
    const std::string twin =
        "if (typeof marker !== 'undefined') throw new Error('saw another heap: ' + marker);\n"
        "var marker = 'NAME';\n"
        "String.prototype.tag = 'NAME';\n";
    const auto script = [&](const std::string& contract, const std::string& name) {
        std::string s = twin;
        for (std::size_t at; (at = s.find("NAME")) != std::string::npos;) s.replace(at, 4, name);
        return counter_script(contract, 0, "",
                              s + "Counter.prototype.text = function () {"
                                  " return marker + '/' + ''.tag + '/' + hits; };\n");
    };
    rt.load_bundle(
        write_bundle(dir.path(), "twin-a", "test.js.TwinA", script("test.js.TwinA", "a")));
    rt.load_bundle(
        write_bundle(dir.path(), "twin-b", "test.js.TwinB", script("test.js.TwinB", "b")));
    const polyplug::contract_decl a = counter_decl("test.js.TwinA");
    const polyplug::contract_decl b = counter_decl("test.js.TwinB");
    CHECK(call_fresh<std::int32_t>(rt, a, "bump") == 1);
    CHECK(call_fresh<std::int32_t>(rt, a, "bump") == 2);
    CHECK(call_fresh<std::int32_t>(rt, b, "bump") == 1);
    CHECK(text_fresh(rt, a) == "a/a/2");
    CHECK(text_fresh(rt, b) == "b/b/1");
    CHECK(rt.loader<polyplug::js_loader>().open_vms() == 2);
}

TEST_CASE("js loader - a re-entrant call into the same VM gets ReentrantCall", "[js]") {
    kitchen_fixture f;
    guest g(*f.rt, f.kitchen());
    const int line = line_of(bundles_dir / "kitchen" / "kitchen.js",
                             "return polyplug.call(\"test.js.Kitchen\", \"echo_i32\", 5);");
    const std::string m = g.panic("reenter");
    CHECK(m.find("Error: polyplug.call(test.js.Kitchen.echo_i32): ReentrantCall: bundle "
                 "'js-kitchen': test.js.Kitchen.echo_i32 called from inside the same VM") !=
          std::string::npos);
    CHECK(m.find("(kitchen.js:" + std::to_string(line) + ")") != std::string::npos);
    const std::string caught = str(g.get<StringView>("reenter_message"));
    CHECK(caught.find("ReentrantCall: ") != std::string::npos);
    CHECK(caught.find("[code 9]") != std::string::npos);
    // The VM serves on.
    CHECK(g.get<std::int32_t>("echo_i32", 11) == 11);
}

TEST_CASE("js loader - polyplug.call reaches a host contract and another bundle", "[js]") {
    kitchen_fixture f;
    guest g(*f.rt, f.kitchen());
    const std::string plug = "\xF0\x9F\x94\x8C";
    CHECK(str(g.get<StringView>("greet", sv("Ada " + plug))) == "Hello, Ada " + plug + "!");
    CHECK(g.get<std::int32_t>("host_sum", pair_args{40, 2}) == 42);
    const std::string refused = g.panic("host_refuses");
    CHECK(refused.find("polyplug.call(host.test.js.Greeter.refuse): HostContractCallFailed: the "
                       "host refuses (kitchen.js:") != std::string::npos);

    SECTION("another bundle's guest contract") {
        const pair_args early{1, 2};
        CHECK(g.panic("calc_add", &early)
                  .find("NotFound: no loaded bundle provides this "
                        "contract") != std::string::npos);
        f.rt->load_bundle(bundles_dir / "calc");
        CHECK(g.get<std::int32_t>("calc_add", pair_args{20, 22}) == 42);
        CHECK(f.rt->loader<polyplug::js_loader>().open_vms() == 2);
        const std::string lines = str(g.get<StringView>("call_unknown"));
        CHECK(lines.find("polyplug.call: contract 'test.js.Nope' is not in the bundle's contract "
                         "file") != std::string::npos);
        CHECK(lines.find("polyplug.call: contract 'test.js.Calc' has no function 'subtract'") !=
              std::string::npos);
        CHECK(lines.find("polyplug.call(test.js.Calc.add): expects 2 arguments, got 1") !=
              std::string::npos);
        CHECK(lines.find("polyplug.call(test.js.Calc.add): argument 'b': expected i32 (an "
                         "integer from -2147483648 to 2147483647), got the string 'two'") !=
              std::string::npos);
    }
}

TEST_CASE("js loader - polyplug.log and polyplug.bundle", "[js]") {
    kitchen_fixture f;
    guest g(*f.rt, f.kitchen());
    const std::string plug = "\xF0\x9F\x94\x8C";
    const std::string hello = "hello " + plug;
    const log_args args{2, sv(hello)};
    REQUIRE(g.call("say", &args, nullptr).code == AbiErrorCode_Ok);
    check_logged_warning(f.logs, "hello " + plug, "js-kitchen");
    CHECK(str(g.get<StringView>("bundle")) == "js-kitchen");
}

TEST_CASE("js loader - the VM is torn down on unload and replaced on reload", "[js]") {
    temp_dir dir;
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    js_runtime rt(options);
    const std::string contract = "test.js.Counter";
    check_one_vm_per_bundle<polyplug::js_loader>(
        rt, {write_bundle(dir.path(), "counter", contract, counter_script(contract, 1))},
        {"counter"});
    check_one_vm_per_bundle<polyplug::js_loader>(
        rt, {bundles_dir / "kitchen", bundles_dir / "calc"}, {"js-kitchen", "js-calc"});
}

TEST_CASE("js loader - a constructor that throws gives no instance, and the log says why", "[js]") {
    temp_dir dir;
    test_support::log_capture logs;
    polyplug::runtime_options options;
    options.log = logs.callback();
    js_runtime rt(options);
    const std::string contract = "test.js.Counter";
    const polyplug::contract_decl decl = counter_decl(contract);
    const std::string script = counter_script(contract, 1) +
                               "var made = 0;\n"
                               "function Picky() { if (++made > 1) throw new Error('only one'); }\n"
                               "Picky.prototype = Counter.prototype;\n"
                               "contracts['" +
                               contract + "'] = Picky;\n";
    rt.load_bundle(write_bundle(dir.path(), "picky", contract, script));
    CHECK(call_fresh<std::int32_t>(rt, decl, "value") == 1);
    const HostApi* host = rt.host_api();
    const GuestContractInterface* iface = rt.resolve(rt.find(decl.id));
    GuestContractInstance second{nullptr, 0};
    host->create_guest_instance(host, iface, nullptr, &second);
    CHECK(second.data == nullptr);
    CHECK(logs.contains("creating an instance of test.js.Counter: Error: only one (picky.js:"));
}
