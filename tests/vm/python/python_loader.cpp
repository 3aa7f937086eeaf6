// SPDX-License-Identifier: MIT
/// @file python_loader.cpp
/// The Python loader: every type category in and out of a script, refused results, script
/// errors, reloads with and without state, isolation of bundles, polyplug.call into the host,
/// another bundle and the same bundle, logging, teardown and calls from several threads.
#include <polyplug/loaders/python.hpp>

#include "../vm_fixtures.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

using namespace test_support;
using namespace vm_fixtures;
namespace fs = std::filesystem;

namespace {

using py_runtime = polyplug::basic_runtime<polyplug::native_loader, polyplug::python_loader>;

const fs::path bundles_dir = POLYPLUG_PYTHON_BUNDLES;

/// `text(t)` and friends take one StringView of Python source, which the script `eval`s.
template <class T>
outcome from_text(guest& g, std::string_view fn, std::string_view text, T& out) {
    const StringView args = sv(text);
    return g.call(fn, &args, &out);
}

polyplug::runtime_options logging_options(log_capture& logs) {
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    options.log = logs.callback();
    options.log_max_level = polyplug::log_level::trace;
    return options;
}

/// A one-contract Python bundle in `root/name`: contract `test.py.Value` with `value() -> i32`
/// and `next() -> i32`, implemented by `script` (value.py).
fs::path value_bundle(const fs::path& root, const std::string& name, const std::string& script) {
    return write_script_bundle(
        root, name, {"python", "value.py", "value.api.toml"}, "test.py.Value", 2,
        no_parameter_contract("test.py.Value", {{"value", "i32"}, {"next", "i32"}}), script);
}

std::string value_script(int value) {
    return "class Value:\n"
           "    def value(self):\n"
           "        return " +
           std::to_string(value) +
           "\n"
           "    def next(self):\n"
           "        return 0\n"
           "contracts = {'test.py.Value': Value}\n";
}

const std::uint64_t value_id = polyplug::guest_contract_id("test.py.Value", 1);

std::int32_t call_i32(const HostApi* host, const GuestContractInterface* iface, std::uint32_t fn,
                      std::string* message = nullptr) {
    std::int32_t out = -1;
    const outcome r = call_on_new_instance(host, iface, fn, out);
    if (message != nullptr) *message = r.message;
    return r.ok() ? out : -1000 - static_cast<std::int32_t>(r.code);
}

// ---- the host contract host.test.py.Math, for test.py.Caller ---------------------------------

struct math_scale_args {
    point p;
    std::int32_t by;
};

void math_add(HostContractInstance, const void* args, void* out, AbiError* err) {
    const auto* a = static_cast<const pair_args*>(args);
    *static_cast<std::int32_t*>(out) = a->a + a->b;
    err->code = AbiErrorCode_Ok;
}
void math_scale(HostContractInstance, const void* args, void* out, AbiError* err) {
    const auto* a = static_cast<const math_scale_args*>(args);
    *static_cast<point*>(out) = {a->p.x * a->by, a->p.y * a->by};
    err->code = AbiErrorCode_Ok;
}
void math_join(HostContractInstance, const void* args, void* out, AbiError* err) {
    thread_local std::string joined;
    const auto* words = static_cast<const array_of<StringView>*>(args);
    joined.clear();
    for (std::size_t i = 0; i < words->len; ++i) joined += (i ? "+" : "") + str(words->items[i]);
    *static_cast<StringView*>(out) = sv(joined);
    err->code = AbiErrorCode_Ok;
}
void math_fail(HostContractInstance, const void*, void*, AbiError* err) {
    *err = polyplug_call_error(AbiErrorCode_HostContractCallFailed, "the host refuses");
}
const void* const math_table[] = {
    reinterpret_cast<const void*>(&math_add), reinterpret_cast<const void*>(&math_scale),
    reinterpret_cast<const void*>(&math_join), reinterpret_cast<const void*>(&math_fail)};

HostContractInterface math_interface() {
    HostContractInterface iface{};
    iface.contract_id = polyplug::host_contract_id("host.test.py.Math", 1);
    iface.contract_version = {1, 0, 0};
    iface.dispatch_type = DispatchType_Native;
    iface.create_instance = [](const HostContractInterface*, const void*,
                               HostContractInstance* out) { *out = {nullptr}; };
    iface.destroy_instance = [](const HostContractInterface*, HostContractInstance) {};
    iface.dispatch.native = {4, math_table};
    return iface;
}

}  // namespace

TEST_CASE("python loader - the test's C structs match the contract file's layouts", "[python]") {
    check_kitchen_layouts(
        polyplug::read_contract_file(bundles_dir / "kitchen" / "kitchen.api.toml"));
}

TEST_CASE("python loader - every primitive at its limits, in and out", "[python]") {
    py_runtime rt;
    rt.load_bundle(bundles_dir / "kitchen");
    guest g(rt, bundles_dir / "kitchen" / "kitchen.api.toml", "test.py.Kitchen");
    using lim8 = std::numeric_limits<std::int8_t>;
    using lim16 = std::numeric_limits<std::int16_t>;
    using lim32 = std::numeric_limits<std::int32_t>;
    using lim64 = std::numeric_limits<std::int64_t>;
    for (std::uint8_t v : {std::uint8_t{0}, std::uint8_t{1}, std::uint8_t{255}})
        CHECK(g.echo("u8", v) == v);
    for (std::uint16_t v : {std::uint16_t{0}, std::uint16_t{65535}}) CHECK(g.echo("u16", v) == v);
    for (std::uint32_t v : {0u, 4294967295u}) CHECK(g.echo("u32", v) == v);
    for (std::uint64_t v : {std::uint64_t{0}, std::uint64_t{1} << 63, ~std::uint64_t{0}})
        CHECK(g.echo("u64", v) == v);
    for (std::int8_t v : {lim8::min(), std::int8_t{-1}, lim8::max()}) CHECK(g.echo("i8", v) == v);
    for (std::int16_t v : {lim16::min(), lim16::max()}) CHECK(g.echo("i16", v) == v);
    for (std::int32_t v : {lim32::min(), 0, lim32::max()}) CHECK(g.echo("i32", v) == v);
    for (std::int64_t v : {lim64::min(), std::int64_t{-1}, lim64::max()})
        CHECK(g.echo("i64", v) == v);
    CHECK(g.echo("f32", 1.5f) == 1.5f);
    CHECK(g.echo("f32", std::numeric_limits<float>::max()) == std::numeric_limits<float>::max());
    CHECK(g.echo("f32", -std::numeric_limits<float>::infinity()) ==
          -std::numeric_limits<float>::infinity());
    CHECK(g.echo("f64", 0.1) == 0.1);
    CHECK(g.echo("f64", std::numeric_limits<double>::denorm_min()) ==
          std::numeric_limits<double>::denorm_min());
    CHECK(std::isnan(g.echo("f64", std::nan(""))));
    CHECK(g.echo("flag", true) == true);
    CHECK(g.echo("flag", false) == false);

    const mix_args mix{-100, 60000, -70000, 1u << 20, 0.25f, 0.5, true, 256};
    double total = 0;
    REQUIRE(g.call("mix", &mix, &total).code == AbiErrorCode_Ok);
    CHECK(total == -100 + 60000 - 70000 + (1 << 20) + 0.25 + 0.5 + 1000 + 256);
}

TEST_CASE("python loader - results that do not fit their type are refused with a message",
          "[python]") {
    py_runtime rt;
    rt.load_bundle(bundles_dir / "kitchen");
    guest g(rt, bundles_dir / "kitchen" / "kitchen.api.toml", "test.py.Kitchen");
    std::uint64_t u64 = 0;
    REQUIRE(from_text(g, "int_as", "2**64 - 1", u64).code == AbiErrorCode_Ok);
    CHECK(u64 == ~std::uint64_t{0});
    CHECK(from_text(g, "int_as", "2**64", u64).code == AbiErrorCode_Panic);
    CHECK(g.message ==
          "test.py.Kitchen.int_as: result: expected u64, got int 18446744073709551616 (out of "
          "range 0 to 18446744073709551615)");
    CHECK(from_text(g, "int_as", "-1", u64).code == AbiErrorCode_Panic);
    CHECK(g.message.find("expected u64, got int -1 (out of range") != std::string::npos);

    std::int8_t i8 = 0;
    REQUIRE(from_text(g, "narrow_i8", "-128", i8).code == AbiErrorCode_Ok);
    CHECK(i8 == -128);
    CHECK(from_text(g, "narrow_i8", "128", i8).code == AbiErrorCode_Panic);
    CHECK(g.message ==
          "test.py.Kitchen.narrow_i8: result: expected i8, got int 128 (out of range -128 to "
          "127)");
    CHECK(from_text(g, "narrow_i8", "-129", i8).code == AbiErrorCode_Panic);
    CHECK(from_text(g, "narrow_i8", "True", i8).code == AbiErrorCode_Panic);
    CHECK(g.message == "test.py.Kitchen.narrow_i8: result: expected i8 (an int), got bool True");

    std::uint32_t u32 = 0;
    CHECK(from_text(g, "narrow_u32", "2**32", u32).code == AbiErrorCode_Panic);
    CHECK(g.message.find("expected u32, got int 4294967296 (out of range 0 to 4294967295)") !=
          std::string::npos);
    CHECK(from_text(g, "narrow_u32", "4.0", u32).code == AbiErrorCode_Panic);
    CHECK(g.message == "test.py.Kitchen.narrow_u32: result: expected u32 (an int), got float 4.0");

    std::int32_t i32 = 0;
    CHECK(g.call("wrong_type", nullptr, &i32).code == AbiErrorCode_Panic);
    CHECK(g.message ==
          "test.py.Kitchen.wrong_type: result: expected i32 (an int), got str 'seven'");
    CHECK(g.call("float_for_int", nullptr, &i32).code == AbiErrorCode_Panic);
    CHECK(g.message ==
          "test.py.Kitchen.float_for_int: result: expected i32 (an int), got float 2.5");
    bool flag = false;
    CHECK(g.call("int_for_bool", nullptr, &flag).code == AbiErrorCode_Panic);
    CHECK(g.message == "test.py.Kitchen.int_for_bool: result: expected bool, got int 1");

    point p{};
    CHECK(g.call("broken_point", nullptr, &p).code == AbiErrorCode_Panic);
    CHECK(g.message ==
          "test.py.Kitchen.broken_point: result: expected struct Point, got a dict without "
          "field 'y'");
    record r{};
    CHECK(g.call("bad_nested", nullptr, &r).code == AbiErrorCode_Panic);
    CHECK(g.message ==
          "test.py.Kitchen.bad_nested: result.points[1].y: expected i32, got int 2147483648 (out "
          "of range -2147483648 to 2147483647)");
    array_of<point> points{};
    CHECK(g.call("bad_element", nullptr, &points).code == AbiErrorCode_Panic);
    CHECK(g.message ==
          "test.py.Kitchen.bad_element: result[1]: expected struct Point (a dict), got str 'not a "
          "point'");
    // The instance still works after refused results.
    CHECK(g.echo("u8", std::uint8_t{9}) == 9);
}

TEST_CASE("python loader - strings, buffers and pointers", "[python]") {
    py_runtime rt;
    rt.load_bundle(bundles_dir / "kitchen");
    guest g(rt, bundles_dir / "kitchen" / "kitchen.api.toml", "test.py.Kitchen");

    SECTION("StringView: embedded NUL, non-ASCII UTF-8, invalid UTF-8 bytes, empty") {
        const std::string with_nul("a\0b \xC3\xA9\xE2\x82\xAC", 9);  // "a\0b é€": 6 code points
        CHECK(str(g.echo("text", sv(with_nul))) == with_nul + "|6");
        const std::string invalid("\xFF\xFEok\xC3", 5);  // round-trips byte for byte
        CHECK(str(g.echo("text", sv(invalid))) == invalid + "|5");
        CHECK(str(g.echo("text", StringView{nullptr, 0})) == "|0");
        const std::string long_text(3000, 'x');  // past the arena's primary region
        CHECK(str(g.echo("text", sv(long_text))) == long_text + "|3000");
    }
    SECTION("Buffer: bytes, bytearray and memoryview results, cap == len") {
        std::uint8_t data[] = {1, 2, 0, 255};
        for (std::uint8_t kind = 0; kind < 3; ++kind) {
            struct {
                std::uint8_t kind;
                Buffer data;
            } args{kind, {data, sizeof data, sizeof data}};
            Buffer out{};
            REQUIRE(g.call("reverse", &args, &out).code == AbiErrorCode_Ok);
            REQUIRE(out.len == 4);
            CHECK(out.cap == 4);
            CHECK(std::vector<std::uint8_t>(out.ptr, out.ptr + out.len) ==
                  std::vector<std::uint8_t>{255, 0, 2, 1});
        }
        struct {
            std::uint8_t kind;
            Buffer data;
        } empty{0, {nullptr, 0, 0}};
        Buffer out{data, 9, 9};
        REQUIRE(g.call("reverse", &empty, &out).code == AbiErrorCode_Ok);
        CHECK(out.ptr == nullptr);
        CHECK(out.len == 0);
    }
    SECTION("Ptr: NULL is None, an address is an int") {
        int target[4] = {};
        struct {
            void* p;
            std::uint64_t n;
        } args{nullptr, 8};
        void* out = target;
        REQUIRE(g.call("ptr_add", &args, &out).code == AbiErrorCode_Ok);
        CHECK(out == nullptr);
        args.p = &target[0];
        REQUIRE(g.call("ptr_add", &args, &out).code == AbiErrorCode_Ok);
        CHECK(out == &target[2]);
    }
}

TEST_CASE("python loader - structs, nested structs, enums and arrays", "[python]") {
    py_runtime rt;
    rt.load_bundle(bundles_dir / "kitchen");
    guest g(rt, bundles_dir / "kitchen" / "kitchen.api.toml", "test.py.Kitchen");

    SECTION("a struct with padding") {
        const scale_args args{{7, 1.25, 300}, 3};
        mixed out{};
        REQUIRE(g.call("scale", &args, &out).code == AbiErrorCode_Ok);
        CHECK(out.tag == 8);
        CHECK(out.value == 3.75);
        CHECK(out.small == 900);
    }
    SECTION("nested structs with strings, arrays, enums, buffers, pointers") {
        const point pts[] = {{1, 2}, {3, 4}};
        std::uint8_t payload[] = {'p', 0};
        int anchor = 0;
        const record in{true, {1, 70000, 3},   sv("label"), {pts, 2},
                        2,    {payload, 2, 2}, &anchor,     -300};
        record out{};
        REQUIRE(g.call("describe", &in, &out).code == AbiErrorCode_Ok);
        CHECK(out.in.b == 140000);
        CHECK(str(out.label) == "LABEL!");
        REQUIRE(out.points.len == 3);  // Python's describe appends a point (0, 0)
        CHECK(out.points.items[2].y == 0);
        REQUIRE(out.payload.len == 6);
        CHECK(std::memcmp(out.payload.ptr, "p\0\0end", 6) == 0);
        CHECK(out.payload.cap == 6);
        check_described_record(in, out);
    }
    SECTION("enums are their repr") {
        CHECK(g.echo("next_color", std::uint16_t{1}) == 2);
        CHECK(g.echo("next_color", std::uint16_t{2}) == 256);
        CHECK(g.echo("next_color", std::uint16_t{256}) == 1);
    }
    SECTION("arrays of structs, strings and primitives; tuples; empty arrays") {
        const point pts[] = {{1, -1}, {10, 20}, {100, 200}};
        point sum{};
        const array_of<point> three{pts, 3};
        REQUIRE(g.call("sum_points", &three, &sum).code == AbiErrorCode_Ok);
        CHECK(sum.x == 111);
        CHECK(sum.y == 219);
        const array_of<point> none{nullptr, 0};
        REQUIRE(g.call("sum_points", &none, &sum).code == AbiErrorCode_Ok);
        CHECK(sum.x == 0);

        const StringView words[] = {sv("abc"), sv(""), sv("\xC3\xA9t\xC3\xA9")};
        const array_of<StringView> in{words, 3};
        array_of<StringView> upper{};
        REQUIRE(g.call("upper", &in, &upper).code == AbiErrorCode_Ok);
        REQUIRE(upper.len == 3);
        CHECK(str(upper.items[0]) == "ABC");
        CHECK(str(upper.items[1]).empty());
        CHECK(str(upper.items[2]) == "\xC3\x89T\xC3\x89");

        const std::uint8_t bytes[] = {0, 3, 255};
        const array_of<std::uint8_t> b{bytes, 3};
        array_of<std::uint16_t> squares{};
        REQUIRE(g.call("squares", &b, &squares).code == AbiErrorCode_Ok);
        REQUIRE(squares.len == 3);
        CHECK(squares.items[1] == 9);
        CHECK(squares.items[2] == 65025);

        array_of<point> grid{};
        const std::uint32_t n = 200;  // 1.6 KB of points: overflows the arena's primary region
        REQUIRE(g.call("grid", &n, &grid).code == AbiErrorCode_Ok);
        REQUIRE(grid.len == 200);
        CHECK(grid.items[199].x == 199);
        CHECK(grid.items[199].y == -199);
        const std::uint32_t zero = 0;
        REQUIRE(g.call("grid", &zero, &grid).code == AbiErrorCode_Ok);
        CHECK(grid.items == nullptr);
        CHECK(grid.len == 0);
    }
}

TEST_CASE("python loader - void results and per-instance state", "[python]") {
    py_runtime rt;
    rt.load_bundle(bundles_dir / "kitchen");
    const fs::path api = bundles_dir / "kitchen" / "kitchen.api.toml";
    guest a(rt, api, "test.py.Kitchen");
    guest b(rt, api, "test.py.Kitchen");
    const std::uint32_t five = 5, two = 2;
    REQUIRE(a.call("bump", &five, nullptr).code == AbiErrorCode_Ok);
    REQUIRE(a.call("bump", &two, nullptr).code == AbiErrorCode_Ok);
    REQUIRE(b.call("bump", &two, nullptr).code == AbiErrorCode_Ok);
    std::uint32_t count = 0;
    REQUIRE(a.call("count", nullptr, &count).code == AbiErrorCode_Ok);
    CHECK(count == 7);
    REQUIRE(b.call("count", nullptr, &count).code == AbiErrorCode_Ok);
    CHECK(count == 2);
}

TEST_CASE("python loader - a script error reaches the host as Panic with file and line",
          "[python]") {
    py_runtime rt;
    rt.load_bundle(bundles_dir / "kitchen");
    guest g(rt, bundles_dir / "kitchen" / "kitchen.api.toml", "test.py.Kitchen");
    const pair_args args{1, 0};
    std::int32_t out = 0;
    CHECK(g.call("div", &args, &out).code == AbiErrorCode_Panic);
    const int line = line_of(bundles_dir / "kitchen" / "kitchen.py", "return a // b");
    REQUIRE(line > 0);
    CHECK(g.message == "ZeroDivisionError: integer division or modulo by zero (kitchen.py, line " +
                           std::to_string(line) + ", in div)");
}

TEST_CASE("python loader - scripts that fail to load fail load_bundle with their message",
          "[python]") {
    temp_dir dir;
    py_runtime rt;
    auto refused = [&](const std::string& script) {
        const fs::path bundle = value_bundle(dir.path(), "py-broken", script);
        std::error_code ec;
        rt.load_bundle(bundle, ec);
        CHECK(ec);
        CHECK(rt.loader<polyplug::python_loader>().open_vms() == 0);
        return rt.last_error();
    };
    CHECK(refused("class Value:\n    def value(self:\n        return 1\n")
              .find("SyntaxError: '(' was never closed (value.py, line 2)") != std::string::npos);
    CHECK(refused("import helper_that_is_not_there\n")
              .find("ModuleNotFoundError: No module named 'helper_that_is_not_there' (value.py, "
                    "line 1, in <module>)") != std::string::npos);
    CHECK(refused("x = 1\n").find("value.py: the script defines no global 'contracts'") !=
          std::string::npos);
    CHECK(refused("contracts = {}\n").find("value.py: contracts has no entry 'test.py.Value'") !=
          std::string::npos);
    CHECK(refused("class V:\n    def other(self): pass\ncontracts = {'test.py.Value': V}\n")
              .find("value.py: contracts['test.py.Value'] has no functions 'value', 'next'") !=
          std::string::npos);
    CHECK(refused("class V:\n    def value(self): pass\ncontracts = {'test.py.Value': V}\n")
              .find("value.py: contracts['test.py.Value'] has no function 'next'") !=
          std::string::npos);
}

TEST_CASE("python loader - reload v1, v2, v1: the cached interface calls the new code",
          "[python]") {
    vm_fixtures::value_bundle_engine python;
    python.bundle_name = "py-value";
    python.script_file = "value.py";
    python.contract_id = value_id;
    python.write = [](const fs::path& root, const std::string& script) {
        return value_bundle(root, "py-value", script);
    };
    python.script = value_script;
    python.script_that_does_not_compile = "def broken(:\n";
    python.compile_error_fragments = {"SyntaxError", "(value.py, line 1)"};
    python.stale_instance_error = "not an instance of this bundle version";
    check_reload_through_cached_interface<py_runtime, polyplug::python_loader>(python);
}

TEST_CASE("python loader - state hand-over across a reload: a counter continues", "[python]") {
    temp_dir dir;
    log_capture logs;
    py_runtime rt(logging_options(logs));
    const std::string script =
        "count = 0\n"
        "state_schema = 4\n"
        "def save_state():\n"
        "    return 'count=%d' % count\n"
        "def restore_state(schema, data):\n"
        "    global count\n"
        "    assert schema == 4 and isinstance(data, bytes), (schema, data)\n"
        "    count = int(data.decode().split('=')[1]) + STEP\n"
        "class Value:\n"
        "    def value(self):\n"
        "        return STEP\n"
        "    def next(self):\n"
        "        global count\n"
        "        count += STEP\n"
        "        return count\n"
        "contracts = {'test.py.Value': Value}\n";
    const fs::path bundle = value_bundle(dir.path(), "py-state", "STEP = 1\n" + script);
    rt.load_bundle(bundle);
    const GuestContractInterface* iface = rt.resolve(rt.find(value_id));
    REQUIRE(iface != nullptr);
    CHECK(call_i32(rt.host_api(), iface, 1) == 1);
    CHECK(call_i32(rt.host_api(), iface, 1) == 2);
    write_file(bundle / "value.py", "STEP = 10\n" + script);
    rt.reload_bundle(bundle);
    CHECK(call_i32(rt.host_api(), iface, 0) == 10);
    CHECK(call_i32(rt.host_api(), iface, 1) == 22);  // 2, +10 on restore, +10

    SECTION("a restore_state that raises fails the reload; the old state keeps serving") {
        write_file(bundle / "value.py", "STEP = 100\n" + script +
                                            "def restore_state(schema, data):\n"
                                            "    raise ValueError('cannot read ' + repr(data))\n");
        std::error_code ec;
        rt.reload_bundle(bundle, ec);
        CHECK(ec);
        CHECK(rt.last_error().find("ValueError: cannot read b'count=22'") != std::string::npos);
        CHECK(call_i32(rt.host_api(), iface, 1) == 32);
    }
}

TEST_CASE("python loader - bundles with the same globals and helper module names are isolated",
          "[python]") {
    py_runtime rt;
    rt.load_bundle(bundles_dir / "iso-a");
    rt.load_bundle(bundles_dir / "iso-b");
    CHECK(rt.loader<polyplug::python_loader>().open_vms() == 2);
    guest a(rt, bundles_dir / "iso-a" / "iso.api.toml", "test.py.IsoA");
    guest b(rt, bundles_dir / "iso-b" / "iso.api.toml", "test.py.IsoB");
    std::uint32_t n = 0;
    REQUIRE(a.call("bump", nullptr, &n).code == AbiErrorCode_Ok);
    REQUIRE(a.call("bump", nullptr, &n).code == AbiErrorCode_Ok);
    CHECK(n == 2);
    REQUIRE(b.call("bump", nullptr, &n).code == AbiErrorCode_Ok);
    CHECK(n == 1);
    StringView name{};
    REQUIRE(a.call("name", nullptr, &name).code == AbiErrorCode_Ok);
    CHECK(str(name) == "helper a in iso-a, counter 2");
    REQUIRE(b.call("name", nullptr, &name).code == AbiErrorCode_Ok);
    CHECK(str(name) == "helper b in iso-b, counter 1");
}

TEST_CASE("python loader - polyplug.call: the host, another bundle, and the same bundle",
          "[python]") {
    static const HostContractInterface math = math_interface();
    py_runtime rt;
    rt.register_host_contract(math);
    rt.load_bundle(bundles_dir / "iso-a");
    rt.load_bundle(bundles_dir / "caller");
    guest g(rt, bundles_dir / "caller" / "caller.api.toml", "test.py.Caller");

    const pair_args add{40, 2};
    std::int32_t sum = 0;
    REQUIRE(g.call("host_add", &add, &sum).code == AbiErrorCode_Ok);
    CHECK(sum == 42);
    const math_scale_args scale{{3, -4}, 5};
    point scaled{};
    REQUIRE(g.call("host_scale", &scale, &scaled).code == AbiErrorCode_Ok);
    CHECK(scaled.x == 15);
    CHECK(scaled.y == -20);
    const StringView words[] = {sv("a"), sv("\xC3\xA9"), sv("c")};
    const array_of<StringView> list{words, 3};
    StringView joined{};
    REQUIRE(g.call("host_join", &list, &joined).code == AbiErrorCode_Ok);
    CHECK(str(joined) == "a+\xC3\xA9+c");

    std::uint32_t code = 0;
    REQUIRE(g.call("host_fail", nullptr, &code).code == AbiErrorCode_Ok);
    CHECK(code == AbiErrorCode_HostContractCallFailed);
    CHECK(g.call("host_fail_raw", nullptr, &sum).code == AbiErrorCode_Panic);
    CHECK(g.message.find("CallError: the host refuses (caller.py, line") != std::string::npos);

    StringView name{};
    REQUIRE(g.call("iso_name", nullptr, &name).code == AbiErrorCode_Ok);
    CHECK(str(name) == "via caller: helper a in iso-a, counter 0");

    std::uint32_t plain = 0;
    CHECK(g.call("reenter", nullptr, &plain).code == AbiErrorCode_Panic);
    CHECK(g.message.find("CallError: bundle 'py-caller': test.py.Caller.plain called from "
                         "inside the same VM") != std::string::npos);
    CHECK(g.message.find("in reenter)") != std::string::npos);
    REQUIRE(g.call("plain", nullptr, &plain).code == AbiErrorCode_Ok);
    CHECK(plain == 7);

    CHECK(g.call("bad_arg", nullptr, &sum).code == AbiErrorCode_Panic);
    CHECK(g.message.find("TypeError: host.test.py.Math.add: argument 'a': expected i32 (an int), "
                         "got str 'x' (caller.py, line") != std::string::npos);
    CHECK(g.call("unknown_contract", nullptr, &sum).code == AbiErrorCode_Panic);
    CHECK(g.message.find("LookupError: contract 'nope.Contract' is not in the bundle's contract "
                         "file") != std::string::npos);
}

TEST_CASE("python loader - polyplug.log reaches the runtime's log callback", "[python]") {
    log_capture logs;
    py_runtime rt(logging_options(logs));
    rt.load_bundle(bundles_dir / "kitchen");
    guest g(rt, bundles_dir / "kitchen" / "kitchen.api.toml", "test.py.Kitchen");
    const log_args args{2, sv("careful \xE2\x82\xAC")};
    REQUIRE(g.call("log", &args, nullptr).code == AbiErrorCode_Ok);
    REQUIRE(logs.contains("careful \xE2\x82\xAC from py-kitchen"));
    check_logged_warning(logs, "careful \xE2\x82\xAC from py-kitchen", "py-kitchen");
}

TEST_CASE("python loader - unload tears the VM down; a reload leaves one", "[python]") {
    log_capture logs;
    py_runtime rt(logging_options(logs));
    check_one_vm_per_bundle<polyplug::python_loader>(
        rt, {bundles_dir / "iso-a", bundles_dir / "iso-b"}, {"py-iso-a", "py-iso-b"});
    rt.load_bundle(bundles_dir / "iso-a");  // a fresh interpreter: the counter starts again
    guest a(rt, bundles_dir / "iso-a" / "iso.api.toml", "test.py.IsoA");
    std::uint32_t n = 0;
    REQUIRE(a.call("bump", nullptr, &n).code == AbiErrorCode_Ok);
    CHECK(n == 1);
}

TEST_CASE("python loader - calls from other threads, two bundles at once", "[python]") {
    py_runtime rt;
    rt.load_bundle(bundles_dir / "iso-a");
    rt.load_bundle(bundles_dir / "iso-b");
    const HostApi* host = rt.host_api();
    const GuestContractInterface* ia =
        rt.resolve(rt.find(polyplug::guest_contract_id("test.py.IsoA", 1)));
    const GuestContractInterface* ib =
        rt.resolve(rt.find(polyplug::guest_contract_id("test.py.IsoB", 1)));
    REQUIRE(ia != nullptr);
    REQUIRE(ib != nullptr);
    // No Catch2 assertions on the workers: they only count what went wrong.
    auto worker = [host](const GuestContractInterface* iface, int& failures) {
        GuestContractInstance instance{nullptr, 0};
        host->create_guest_instance(host, iface, nullptr, &instance);
        if (instance.data == nullptr) ++failures;
        for (int round = 0; round < 40; ++round) {
            const std::uint64_t n = 20000;
            std::uint64_t result = 0;
            const AbiError err = polyplug_call_guest(iface, instance, 2, &n, &result, nullptr);
            if (err.code != AbiErrorCode_Ok || result != n * (n - 1) / 2) ++failures;
        }
        host->destroy_guest_instance(host, iface, instance);
    };
    int fa = 0, fb = 0;
    std::thread ta(worker, ia, std::ref(fa));
    std::thread tb(worker, ib, std::ref(fb));
    ta.join();
    tb.join();
    CHECK(fa == 0);
    CHECK(fb == 0);
    // Back on the main thread, after both threads ended.
    guest g(rt, bundles_dir / "iso-a" / "iso.api.toml", "test.py.IsoA");
    std::uint32_t n = 0;
    REQUIRE(g.call("bump", nullptr, &n).code == AbiErrorCode_Ok);
    CHECK(n == 1);
}
