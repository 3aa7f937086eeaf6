// SPDX-License-Identifier: MIT
/// @file dotnet_loader.cpp
/// The .NET loader (loaders/dotnet.hpp) through a C++ runtime: C# bundles compiled by mcs while
/// the suite runs (POLYPLUG_MCS), each into a temporary bundle directory: every kind of value
/// both ways on both call paths (the register thunk and mono_runtime_invoke), results refused
/// with the reason, exceptions with their type and place, classes that do not match the
/// contract refused at load with both types named, reloads (a cached interface, a version that
/// is not an assembly, the state hand-over), threads that call and end, one domain per version.
#include "../../catch.hpp"
#include "../vm_fixtures.hpp"

#include <polyplug/loaders/dotnet.hpp>
#include <polyplug/polyplug.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace vm_fixtures;
using test_support::temp_dir;
using test_support::write_file;
using dotnet_runtime = polyplug::basic_runtime<polyplug::native_loader, polyplug::dotnet_loader>;

/// The assembly mcs makes of `source` (named `name`.dll), and its debug symbols (.dll.mdb);
/// fails the test with mcs's output.
struct assembly {
    std::string dll;
    std::string mdb;
};
assembly compile_with_symbols(const std::string& source, const std::string& name = "Bundle") {
    static temp_dir work;
    static int counter = 0;
    const fs::path dir = work.path() / std::to_string(++counter);
    fs::create_directories(dir);
    write_file(dir / (name + ".cs"), source);
    const std::string command =
        std::string(POLYPLUG_MCS) +
        " -nologo -debug -target:library -out:" + (dir / (name + ".dll")).string() + " " +
        (dir / (name + ".cs")).string() + " > " + (dir / "mcs.log").string() + " 2>&1";
    const int rc = std::system(command.c_str());
    std::ifstream log(dir / "mcs.log");
    const std::string output((std::istreambuf_iterator<char>(log)),
                             std::istreambuf_iterator<char>());
    INFO("mcs: " << output);
    REQUIRE(rc == 0);
    const auto read = [](const fs::path& path) {
        std::ifstream in(path, std::ios::binary);
        return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    };
    return {read(dir / (name + ".dll")), read(dir / (name + ".dll.mdb"))};
}

/// The assembly alone.
std::string compile(const std::string& source) {
    return compile_with_symbols(source).dll;
}

const script_bundle_shape shape{"dotnet", "Bundle.dll", "api.toml"};

/// A bundle `name` in `root` providing `contract` from `api`, its assembly compiled from `cs`
/// with its debug symbols beside it.
fs::path write_bundle(const fs::path& root, const std::string& name, const std::string& contract,
                      int functions, const std::string& api, const std::string& cs) {
    const assembly made = compile_with_symbols(cs);
    const fs::path dir = write_script_bundle(root, name, shape, contract, functions, api, made.dll);
    write_file(dir / "Bundle.dll.mdb", made.mdb);
    return dir;
}

// ---- the kitchen: every kind of value ---------------------------------------------------------

const std::string kitchen_api = R"(
[[enum]]
name = "Color"
repr = "u16"
variants = [{ name = "Red", value = 1 }, { name = "Green", value = 2 }, { name = "Blue", value = 256 }]

[[types]]
name = "Point"
fields = [{ name = "x", type = "i32" }, { name = "y", type = "i32" }]

[[types]]
name = "Inner"
fields = [{ name = "a", type = "u8" }, { name = "b", type = "u32" }, { name = "c", type = "u8" }]

[[types]]
name = "Record"
fields = [{ name = "flag", type = "bool" }, { name = "inner", type = "Inner" },
          { name = "label", type = "StringView" }, { name = "points", type = "Array<Point>" },
          { name = "color", type = "Color" }, { name = "payload", type = "Buffer" },
          { name = "opaque", type = "Ptr" }, { name = "half", type = "i16" }]

[[guest_contract]]
name = "test.dotnet.Kitchen"
version = "1.0"
functions = [
  { name = "add", params = [{ name = "a", type = "i32" }, { name = "b", type = "i32" }], return = "i32" },
  { name = "many", params = [{ name = "a", type = "i64" }, { name = "b", type = "i64" },
                             { name = "c", type = "i64" }, { name = "d", type = "i64" },
                             { name = "e", type = "i64" }, { name = "f", type = "f64" }], return = "i64" },
  { name = "mix", params = [{ name = "a", type = "i8" }, { name = "b", type = "u16" },
                            { name = "c", type = "i32" }, { name = "d", type = "u64" },
                            { name = "e", type = "f32" }, { name = "f", type = "f64" },
                            { name = "g", type = "bool" }, { name = "h", type = "Color" }], return = "f64" },
  { name = "half", params = [{ name = "v", type = "f32" }], return = "f32" },
  { name = "greet", params = [{ name = "name", type = "StringView" }], return = "StringView" },
  { name = "length", params = [{ name = "name", type = "StringView" }], return = "u32" },
  { name = "describe", params = [{ name = "r", type = "Record" }], return = "Record" },
  { name = "points", params = [{ name = "n", type = "u32" }], return = "Array<Point>" },
  { name = "bad_color", return = "Color" },
  { name = "null_text", return = "StringView" },
  { name = "surrogate", return = "StringView" },
  { name = "boom", params = [{ name = "a", type = "i32" }], return = "i32" },
  { name = "count", return = "i32" },
  { name = "u64_max", return = "u64" },
  { name = "hollow", return = "Record" },
  { name = "throws", params = [{ name = "a", type = "i32" }] },
]
)";

const std::string kitchen_cs = R"(using System;
namespace test.dotnet {
public enum Color : ushort { Red = 1, Green = 2, Blue = 256 }
public class Point { public int x; public int y; }
public class Inner { public byte a; public uint b; public byte c; }
public class Record {
    public bool flag; public Inner inner; public string label; public Point[] points;
    public Color color; public byte[] payload; public IntPtr opaque; public short half;
}
public class Kitchen {
    int calls;
    public int add(int a, int b) { return unchecked(a + b); }
    public long many(long a, long b, long c, long d, long e, double f) {
        return a + 10 * b + 100 * c + 1000 * d + 10000 * e + (long)(f * 100000);
    }
    public double mix(sbyte a, ushort b, int c, ulong d, float e, double f, bool g, Color h) {
        return a + b + c + (double)d + e + f + (g ? 1000 : 0) + (int)h;
    }
    public float half(float v) { return v / 2; }
    public string greet(string name) { return "hello, " + name + "!"; }
    public uint length(string name) { return (uint)name.Length; }
    public Record describe(Record r) {
        var points = new Point[r.points.Length];
        for (int i = 0; i < points.Length; ++i) points[i] = new Point { x = r.points[i].y, y = r.points[i].x };
        var payload = (byte[])r.payload.Clone();
        Array.Reverse(payload);
        return new Record { flag = !r.flag, inner = new Inner { a = r.inner.c, b = r.inner.b + 1, c = r.inner.a },
                            label = r.label + "?", points = points, color = Color.Blue,
                            payload = payload, opaque = r.opaque, half = (short)-r.half };
    }
    public Point[] points(uint n) {
        var all = new Point[n];
        for (int i = 0; i < n; ++i) all[i] = new Point { x = i, y = -i };
        return all;
    }
    public Color bad_color() { return (Color)7; }
    public string null_text() { return null; }
    public string surrogate() { return "a\uD800b"; }
    public int boom(int a) {
        int zero = a - a;
        return a / zero;  // boom: the line the message names
    }
    public int count() { return ++calls; }
    public ulong u64_max() { return ulong.MaxValue; }
    public Record hollow() { return new Record(); }
    public void throws(int a) {
        throw new InvalidOperationException("raised " + a);  // throws: the line the message names
    }
}
}
)";

/// The 1-based line of `text` that holds `needle`.
int line_in(const std::string& text, std::string_view needle) {
    const std::size_t at = text.find(needle);
    REQUIRE(at != std::string::npos);
    return 1 +
           static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
}

struct many_args {
    std::int64_t a, b, c, d, e;
    double f;
};
struct half_args {
    float v;
};

/// One kitchen bundle loaded for the whole suite (compiling it takes mcs a second).
struct kitchen_fixture {
    temp_dir dir;
    dotnet_runtime rt;
    fs::path bundle;
    kitchen_fixture() {
        bundle =
            write_bundle(dir.path(), "kitchen", "test.dotnet.Kitchen", 16, kitchen_api, kitchen_cs);
        rt.load_bundle(bundle);
    }
};

kitchen_fixture& kitchen() {
    static kitchen_fixture k;
    return k;
}

}  // namespace

TEST_CASE("dotnet loader - integers floats and bools on the register path", "[dotnet]") {
    guest g(kitchen().rt, kitchen().bundle / "api.toml", "test.dotnet.Kitchen");
    CHECK(g.get<std::int32_t>("add", pair_args{2, 40}) == 42);
    CHECK(g.get<std::int32_t>("add", pair_args{INT32_MAX, 1}) == INT32_MIN);
    CHECK(g.get<float>("half", half_args{3.0f}) == 1.5f);
    CHECK(g.get<float>("half", half_args{-1e-44f}) == -1e-44f / 2);
    CHECK(g.get<std::uint64_t>("u64_max") == UINT64_MAX);
    std::int32_t first = g.get<std::int32_t>("count");
    CHECK(g.get<std::int32_t>("count") == first + 1);
}

TEST_CASE("dotnet loader - many parameters go through mono_runtime_invoke", "[dotnet]") {
    guest g(kitchen().rt, kitchen().bundle / "api.toml", "test.dotnet.Kitchen");
    CHECK(g.get<std::int64_t>("many", many_args{1, 2, 3, 4, 5, 0.5}) == 54321 + 50000);
    mix_args m{};
    m.a = -3;
    m.b = 60000;
    m.c = -70000;
    m.d = std::uint64_t{1} << 40;
    m.e = 0.5f;
    m.f = 0.25;
    m.g = true;
    m.h = 256;
    CHECK(g.get<double>("mix", m) == -3.0 + 60000 - 70000 +
                                         static_cast<double>(std::uint64_t{1} << 40) + 0.5 + 0.25 +
                                         1000 + 256);
}

TEST_CASE("dotnet loader - strings keep NULs and UTF-8; invalid bytes arrive as U+FFFD",
          "[dotnet]") {
    guest g(kitchen().rt, kitchen().bundle / "api.toml", "test.dotnet.Kitchen");
    const std::string plug = "gr\xc3\xbc\xc3\x9f \xf0\x9f\x94\x8c";
    CHECK(str(g.get<StringView>("greet", one<StringView>{sv(plug)})) == "hello, " + plug + "!");
    const std::string nul("a\0b", 3);
    CHECK(str(g.get<StringView>("greet", one<StringView>{sv(nul)})) == "hello, " + nul + "!");
    CHECK(str(g.get<StringView>("greet", one<StringView>{sv("")})) == "hello, !");
    // U+1F50C is one character in UTF-8 and two UTF-16 units in C#.
    CHECK(g.get<std::uint32_t>("length", one<StringView>{sv("\xf0\x9f\x94\x8c")}) == 2);
    CHECK(str(g.get<StringView>("greet", one<StringView>{sv("\xff")})) == "hello, \xef\xbf\xbd!");
    const one<StringView> broken{{nullptr, 3}};
    std::uint32_t len = 0;
    const outcome r = g.call("length", broken, len);
    CHECK(r.code == AbiErrorCode_Panic);
    CHECK(r.message.find("null pointer with a non-zero length") != std::string::npos);
}

TEST_CASE("dotnet loader - structs as classes nested with arrays buffers and pointers",
          "[dotnet]") {
    guest g(kitchen().rt, kitchen().bundle / "api.toml", "test.dotnet.Kitchen");
    const point pts[] = {{1, 2}, {3, 4}};
    std::uint8_t bytes[] = {1, 0, 255};
    int marker = 0;
    const record in{true, {7, 70000, 9}, sv("label"), {pts, 2}, 1, {bytes, 3, 3}, &marker, 12};
    const auto out = g.get<record>("describe", one<record>{in});
    CHECK_FALSE(out.flag);
    CHECK(out.in.a == 9);
    CHECK(out.in.b == 70001);
    CHECK(out.in.c == 7);
    CHECK(str(out.label) == "label?");
    REQUIRE(out.points.len == 2);
    CHECK(out.points.items[1].x == 4);
    CHECK(out.points.items[1].y == 3);
    CHECK(out.color == 256);
    CHECK(str(out.payload) == std::string("\xff\x00\x01", 3));
    CHECK(out.opaque == &marker);
    CHECK(out.half == -12);
    const auto many = g.get<array_of<point>>("points", one<std::uint32_t>{40});
    REQUIRE(many.len == 40);
    CHECK(many.items[39].x == 39);
    CHECK(many.items[39].y == -39);
    CHECK(g.get<array_of<point>>("points", one<std::uint32_t>{0}).len == 0);
}

TEST_CASE("dotnet loader - results that do not fit their type are refused", "[dotnet]") {
    guest g(kitchen().rt, kitchen().bundle / "api.toml", "test.dotnet.Kitchen");
    CHECK(g.panic("bad_color") ==
          "test.dotnet.Kitchen.bad_color: result: expected Color (u16), got 7 (not one of its "
          "values)");
    CHECK(g.panic("null_text") ==
          "test.dotnet.Kitchen.null_text: result: expected StringView, got null");
    CHECK(g.panic("surrogate") ==
          "test.dotnet.Kitchen.surrogate: result: expected StringView, got a string with a lone "
          "surrogate (not valid UTF-16)");
    CHECK(g.panic("hollow") ==
          "test.dotnet.Kitchen.hollow: result.inner: expected struct Inner, got null");
}

TEST_CASE("dotnet loader - an exception is Panic with its type message and place", "[dotnet]") {
    guest g(kitchen().rt, kitchen().bundle / "api.toml", "test.dotnet.Kitchen");
    const one<std::int32_t> five{5};
    CHECK(g.panic("throws", &five) ==
          "System.InvalidOperationException: raised 5 (at test.dotnet.Kitchen.throws (System.Int32 "
          "a), Bundle.cs:" +
              std::to_string(line_in(kitchen_cs, "// throws")) + ")");
    // A method the JIT inlined into the thunk has no frame: the message names the function.
    const std::string message = g.panic("boom", &five);
    INFO(message);
    CHECK(message.rfind("System.DivideByZeroException: Attempted to divide by zero. (", 0) == 0);
    CHECK(
        (message.find("(at test.dotnet.Kitchen.boom (System.Int32 a), Bundle.cs:" +
                      std::to_string(line_in(kitchen_cs, "// boom")) + ")") != std::string::npos ||
         message.find("(in test.dotnet.Kitchen.boom)") != std::string::npos));
    CHECK(g.get<std::int32_t>("add", pair_args{1, 1}) == 2);  // the instance still serves
}

namespace {

const std::string counter_api = R"(
[[guest_contract]]
name = "test.dotnet.Counter"
version = "1.0"
functions = [
  { name = "value", return = "i32" },
  { name = "bump", return = "i32" },
  { name = "text", return = "StringView" },
]
)";

/// The counter in C#: value() returns `value`, bump() counts in a static (the state a reload
/// hands over when `state` adds a BundleState class), text() returns `text`.
std::string counter_cs(int value, const std::string& text = "", const std::string& state = "") {
    return "namespace test.dotnet {\n"
           "public class Counter {\n"
           "    public static int hits;\n"
           "    public int value() { return " +
           std::to_string(value) +
           "; }\n"
           "    public int bump() { return ++hits; }\n"
           "    public string text() { return \"" +
           text + "\"; }\n}\n}\n" + state;
}

polyplug::contract_decl counter_decl() {
    return polyplug::parse_contract_file(counter_api, "api.toml").guest_contracts[0];
}

template <class R>
R call_fresh(dotnet_runtime& rt, std::string_view fn) {
    const polyplug::contract_decl decl = counter_decl();
    const GuestContractInterface* iface = rt.resolve(rt.find(decl.id));
    REQUIRE(iface != nullptr);
    R out{};
    const outcome r = call_on_new_instance(rt.host_api(), iface, decl.find_function(fn)->id, out);
    INFO(r.message);
    REQUIRE(r.ok());
    return out;
}

/// text() through a fresh instance; the result (from HostApi.alloc: no arena) freed.
std::string text_fresh(dotnet_runtime& rt) {
    const StringView v = call_fresh<StringView>(rt, "text");
    std::string text = str(v);
    if (v.ptr != nullptr)
        rt.host_api()->free(rt.host_api(), const_cast<std::uint8_t*>(v.ptr), v.len, 1);
    return text;
}

/// load_bundle of an assembly compiled from `cs` against `api` fails; the message.
std::string load_failure(const std::string& api, const std::string& contract, int functions,
                         const std::string& cs) {
    temp_dir dir;
    dotnet_runtime rt;
    const fs::path b = write_bundle(dir.path(), "broken", contract, functions, api, cs);
    std::error_code ec;
    rt.load_bundle(b, ec);
    CHECK(ec);
    CHECK(rt.loader<polyplug::dotnet_loader>().open_vms() == 0);
    CHECK(rt.resolve(rt.find(
              polyplug::parse_contract_file(api, "api.toml").guest_contracts[0].id)) == nullptr);
    return rt.last_error();
}

}  // namespace

TEST_CASE("dotnet loader - a class that does not match its contract fails the load", "[dotnet]") {
    const std::string shapes_api = R"(
[[types]]
name = "Point"
fields = [{ name = "x", type = "i32" }, { name = "y", type = "i32" }]
[[guest_contract]]
name = "test.dotnet.Shapes"
version = "1.0"
functions = [{ name = "origin", return = "Point" }]
)";
    SECTION("no class named like the contract") {
        const std::string e = load_failure(counter_api, "test.dotnet.Counter", 3,
                                           "namespace other { public class Counter {} }");
        CHECK(e.find("has no public class 'test.dotnet.Counter' (namespace 'test.dotnet', class "
                     "'Counter')") != std::string::npos);
    }
    SECTION("missing functions are named") {
        const std::string e = load_failure(
            counter_api, "test.dotnet.Counter", 3,
            "namespace test.dotnet { public class Counter { public int value() { return 1; } "
            "int bump() { return 2; } } }");
        CHECK(e.find("class 'test.dotnet.Counter' has no functions 'bump', 'text'") !=
              std::string::npos);
    }
    SECTION("a parameter of another C# type") {
        const std::string e = load_failure(kitchen_api, "test.dotnet.Kitchen", 16,
                                           "namespace test.dotnet { public class Kitchen { public "
                                           "int add(int a, long b) { return 0; } } }");
        CHECK(e.find("test.dotnet.Kitchen.add: parameter 'b' is System.Int64, but the contract's "
                     "i32 is int in C#") != std::string::npos);
    }
    SECTION("an enum parameter of another underlying type") {
        const std::string api = R"(
[[enum]]
name = "Color"
repr = "u16"
variants = [{ name = "Red", value = 1 }]
[[guest_contract]]
name = "test.dotnet.Paint"
version = "1.0"
functions = [{ name = "paint", params = [{ name = "c", type = "Color" }] }]
)";
        const std::string e =
            load_failure(api, "test.dotnet.Paint", 1,
                         "namespace test.dotnet { public enum Color : int { Red = 1 }\n"
                         "public class Paint { public void paint(Color c) {} } }");
        CHECK(e.find("test.dotnet.Paint.paint: parameter 'c' is test.dotnet.Color, but the "
                     "contract's Color is ushort or an enum whose underlying type is ushort in "
                     "C#") != std::string::npos);
    }
    SECTION("a result of another C# type") {
        const std::string e = load_failure(
            counter_api, "test.dotnet.Counter", 3,
            "namespace test.dotnet { public class Counter { public long value() { return 1; } "
            "public int bump() { return 2; } public string text() { return \"\"; } } }");
        CHECK(e.find("test.dotnet.Counter.value: the result is System.Int64, but the contract's "
                     "i32 is int in C#") != std::string::npos);
    }
    SECTION("a contract struct declared as a C# struct") {
        const std::string e = load_failure(
            shapes_api, "test.dotnet.Shapes", 1,
            "namespace test.dotnet { public struct Point { public int x; public int y; }\n"
            "public class Shapes { public Point origin() { return new Point(); } } }");
        CHECK(e.find("test.dotnet.Shapes.origin: the result is test.dotnet.Point, but the "
                     "contract's Point is a class with its fields (a C# struct would be passed by "
                     "value) in C#") != std::string::npos);
    }
    SECTION("a struct class without one of the fields") {
        const std::string e = load_failure(
            shapes_api, "test.dotnet.Shapes", 1,
            "namespace test.dotnet { public class Point { public int x; public long y; }\n"
            "public class Shapes { public Point origin() { return new Point(); } } }");
        CHECK(e.find("the result is test.dotnet.Point, whose field 'y' is System.Int64, but the "
                     "contract's i32 is int in C#") != std::string::npos);
    }
    SECTION("a file that is not an assembly") {
        temp_dir dir;
        dotnet_runtime rt;
        const fs::path b = write_script_bundle(dir.path(), "broken", shape, "test.dotnet.Counter",
                                               3, counter_api, "MZ not really");
        std::error_code ec;
        rt.load_bundle(b, ec);
        CHECK(ec);
        CHECK(rt.last_error().find("Bundle.dll: not a .NET assembly") != std::string::npos);
        CHECK(rt.loader<polyplug::dotnet_loader>().open_vms() == 0);
    }
    SECTION("a constructor that throws fails the instance, the log says why") {
        temp_dir dir;
        test_support::log_capture logs;
        polyplug::runtime_options options;
        options.log = logs.callback();
        dotnet_runtime rt(options);
        const fs::path b = write_bundle(
            dir.path(), "ctor", "test.dotnet.Counter", 3, counter_api,
            "namespace test.dotnet { public class Counter {\n"
            "    public Counter() { throw new System.InvalidOperationException(\"no counter\"); }\n"
            "    public int value() { return 1; } public int bump() { return 2; }\n"
            "    public string text() { return \"\"; } } }");
        rt.load_bundle(b);
        const GuestContractInterface* iface = rt.resolve(rt.find(counter_decl().id));
        REQUIRE(iface != nullptr);
        GuestContractInstance made{nullptr, 0};
        rt.host_api()->create_guest_instance(rt.host_api(), iface, nullptr, &made);
        CHECK(made.data == nullptr);
        CHECK(logs.contains("System.InvalidOperationException: no counter"));
    }
}

TEST_CASE("dotnet loader - reload v1 v2 v1: a cached interface pointer calls the new code",
          "[dotnet]") {
    value_bundle_engine cs;
    cs.bundle_name = "counter";
    cs.script_file = "Bundle.dll";
    cs.contract_id = counter_decl().id;
    cs.write = [&](const fs::path& root, const std::string& assembly) {
        return write_script_bundle(root, "counter", shape, "test.dotnet.Counter", 3, counter_api,
                                   assembly);
    };
    cs.script = [&](int value) { return compile(counter_cs(value)); };
    cs.script_that_does_not_compile = "not an assembly";
    cs.compile_error_fragments = {"Bundle.dll: not a .NET assembly"};
    cs.stale_instance_error = "not an instance of this bundle version";
    check_reload_through_cached_interface<dotnet_runtime, polyplug::dotnet_loader>(cs);
}

TEST_CASE("dotnet loader - state hand-over across reloads", "[dotnet]") {
    temp_dir dir;
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    dotnet_runtime rt(options);
    const std::string state =
        "public static class BundleState {\n"
        "    public const int state_schema = 1;\n"
        "    public static byte[] save_state() {\n"
        "        return System.BitConverter.GetBytes(test.dotnet.Counter.hits);\n"
        "    }\n"
        "    public static void restore_state(int schema, byte[] data) {\n"
        "        if (schema != 1) throw new System.ArgumentException(\"unknown schema \" + "
        "schema);\n"
        "        test.dotnet.Counter.hits = System.BitConverter.ToInt32(data, 0);\n"
        "    }\n"
        "}\n";
    const fs::path b = write_script_bundle(dir.path(), "counter", shape, "test.dotnet.Counter", 3,
                                           counter_api, compile(counter_cs(1, "v1", state)));
    rt.load_bundle(b);
    for (int i = 1; i <= 3; ++i) CHECK(call_fresh<std::int32_t>(rt, "bump") == i);
    write_file(b / "Bundle.dll", compile(counter_cs(2, "v2", state)));
    rt.reload_bundle(b);
    CHECK(text_fresh(rt) == "v2");
    CHECK(call_fresh<std::int32_t>(rt, "bump") == 4);

    SECTION("a new version refusing the state fails the reload; the old keeps its count") {
        const std::string picky =
            "public static class BundleState {\n"
            "    public const int state_schema = 2;\n"
            "    public static byte[] save_state() { return new byte[0]; }\n"
            "    public static void restore_state(int schema, byte[] data) {\n"
            "        throw new System.ArgumentException(\"unknown schema \" + schema);\n"
            "    }\n"
            "}\n";
        write_file(b / "Bundle.dll", compile(counter_cs(3, "v3", picky)));
        std::error_code ec;
        rt.reload_bundle(b, ec);
        REQUIRE(ec);
        INFO(rt.last_error());
        CHECK(rt.last_error().find("System.ArgumentException: unknown schema 1") !=
              std::string::npos);
        CHECK(text_fresh(rt) == "v2");
        CHECK(call_fresh<std::int32_t>(rt, "bump") == 5);
        CHECK(rt.loader<polyplug::dotnet_loader>().open_vms() == 1);
    }
    SECTION("a BundleState with other types fails the load: they would be read as int and byte[]") {
        const std::string wrong =
            "public static class BundleState {\n"
            "    public const int state_schema = 1;\n"
            "    public static byte[] save_state() { return new byte[0]; }\n"
            "    public static void restore_state(long schema, string data) {}\n"
            "}\n";
        write_file(b / "Bundle.dll", compile(counter_cs(3, "v3", wrong)));
        std::error_code ec;
        rt.reload_bundle(b, ec);
        REQUIRE(ec);
        CHECK(rt.last_error().find("Bundle.dll: class BundleState must have a static int "
                                   "state_schema (0 or more), static byte[] save_state() and "
                                   "static void restore_state(int schema, byte[] data)") !=
              std::string::npos);
        CHECK(text_fresh(rt) == "v2");
        CHECK(rt.loader<polyplug::dotnet_loader>().open_vms() == 1);
    }
    SECTION("a version without BundleState starts from zero") {
        write_file(b / "Bundle.dll", compile(counter_cs(3, "v3")));
        rt.reload_bundle(b);
        CHECK(call_fresh<std::int32_t>(rt, "bump") == 1);
    }
}

TEST_CASE("dotnet loader - threads that call and end; instances are their own objects",
          "[dotnet]") {
    temp_dir dir;
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    dotnet_runtime rt(options);
    const std::string cs =
        "namespace test.dotnet {\n"
        "public class Counter {\n"
        "    int mine;\n"
        "    public int value() { return mine; }\n"
        "    public int bump() { System.GC.Collect(); return ++mine; }\n"
        "    public string text() { return new string('x', mine); }\n"
        "}\n}\n";
    const fs::path b = write_script_bundle(dir.path(), "counter", shape, "test.dotnet.Counter", 3,
                                           counter_api, compile(cs));
    rt.load_bundle(b);
    const polyplug::contract_decl decl = counter_decl();
    for (int round = 0; round < 2; ++round) {
        std::atomic<int> wrong{0};
        std::vector<std::thread> threads;
        const GuestContractInterface* iface = rt.resolve(rt.find(decl.id));
        REQUIRE(iface != nullptr);
        const HostApi* host = rt.host_api();
        for (int t = 0; t < 4; ++t) {
            // No Catch assertions on these threads (Catch is not thread-safe): counts only.
            threads.emplace_back([&] {
                GuestContractInstance mine{nullptr, 0};
                host->create_guest_instance(host, iface, nullptr, &mine);
                if (mine.data == nullptr) {
                    ++wrong;
                    return;
                }
                CallArena arena{};
                std::uint8_t storage[256];
                polyplug_arena_init(&arena, storage, sizeof storage, host);
                for (std::int32_t i = 1; i <= 50; ++i) {
                    std::int32_t count = 0;
                    StringView text{nullptr, 0};
                    polyplug_arena_reset(&arena);
                    if (polyplug_call_guest(iface, mine, 1, nullptr, &count, &arena).code !=
                            AbiErrorCode_Ok ||
                        count != i)
                        ++wrong;
                    if (polyplug_call_guest(iface, mine, 2, nullptr, &text, &arena).code !=
                            AbiErrorCode_Ok ||
                        str(text) != std::string(static_cast<std::size_t>(i), 'x'))
                        ++wrong;
                }
                polyplug_arena_free(&arena);
                host->destroy_guest_instance(host, iface, mine);
            });
        }
        for (std::thread& t : threads) t.join();  // each thread detaches from Mono as it ends
        CHECK(wrong == 0);
        rt.reload_bundle(b);  // the old domain unloads after threads that entered it are gone
        CHECK(rt.loader<polyplug::dotnet_loader>().open_vms() == 1);
    }
    guest g(rt, decl);
    CHECK(g.get<std::int32_t>("bump") == 1);
    GuestContractInstance other = g.new_instance();
    std::int32_t out = 0;
    CHECK(g.invoke(other, "value", nullptr, &out).ok());
    CHECK(out == 0);  // another object
    rt.host_api()->destroy_guest_instance(rt.host_api(), g.iface(), other);
    CHECK(g.invoke({nullptr, decl.id}, "bump", nullptr, &out).ok());  // the default instance
    CHECK(out == 1);
}

TEST_CASE("dotnet loader - one domain per bundle unloaded with it", "[dotnet]") {
    temp_dir dir;
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    dotnet_runtime rt(options);
    std::vector<fs::path> bundles;
    const std::vector<std::string> names = {"one", "two"};
    for (const std::string& name : names) {
        const std::string contract = "test.dotnet." + name;
        const std::string api =
            "[[guest_contract]]\nname = \"" + contract +
            "\"\nversion = \"1.0\"\nfunctions = [{ name = \"value\", return = \"i32\" }]\n";
        bundles.push_back(write_bundle(
            dir.path(), name, contract, 1, api,
            "namespace test.dotnet { public class " + name +
                " { public static int shared; public int value() { return ++shared; } } }"));
    }
    check_one_vm_per_bundle<polyplug::dotnet_loader>(rt, bundles, names);
}

TEST_CASE("dotnet loader - a version unloads on another thread than the one that called it",
          "[dotnet]") {
    // The calling thread then waits outside Mono with no reference left into the old domain;
    // one left there would make Mono try to abort it while the domain unloads.
    temp_dir dir;
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    dotnet_runtime rt(options);
    const fs::path b = write_script_bundle(dir.path(), "counter", shape, "test.dotnet.Counter", 3,
                                           counter_api, compile(counter_cs(1, "v1")));
    rt.load_bundle(b);
    CHECK(call_fresh<std::int32_t>(rt, "value") == 1);
    write_file(b / "Bundle.dll", compile(counter_cs(2, "v2")));
    std::error_code ec;
    std::thread reloader([&] { rt.reload_bundle(b, ec); });
    reloader.join();
    CHECK_FALSE(ec);
    CHECK(call_fresh<std::int32_t>(rt, "value") == 2);
    std::thread unloader([&] { rt.unload_bundle(polyplug::bundle_id("counter"), ec); });
    unloader.join();
    CHECK_FALSE(ec);
    CHECK(rt.loader<polyplug::dotnet_loader>().open_vms() == 0);
}
