// SPDX-License-Identifier: MIT
/// @file parity.cpp
/// One contract (parity.api.toml), seven implementations: C++, C, Rust, Lua, Python, JavaScript,
/// C#.
/// Every implementation is called with the same table of inputs through the same C call
/// (polyplug::call with the generated argument structs) and must give the same results, byte for
/// byte: integers at their limits, floats, booleans, UTF-8 and embedded-NUL strings, buffers,
/// structs, arrays, enums, and a thrown error. A language whose bundle or VM is not built is
/// skipped with its reason printed.
#include "../catch.hpp"
#include "parity.h"

#include <polyplug/call_arena.h>
#include <polyplug/dispatch.hpp>
#include <polyplug/polyplug.hpp>
#if POLYPLUG_PARITY_LUA
#include <polyplug/loaders/lua.hpp>
#endif
#if POLYPLUG_PARITY_PYTHON
#include <polyplug/loaders/python.hpp>
#endif
#if POLYPLUG_PARITY_JS
#include <polyplug/loaders/js.hpp>
#endif
#if POLYPLUG_PARITY_DOTNET
#include <polyplug/loaders/dotnet.hpp>
#endif

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace fs = std::filesystem;

#ifndef POLYPLUG_PARITY_DOTNET_WHY
#define POLYPLUG_PARITY_DOTNET_WHY \
    "the .NET loader is not built (-Ddotnet; Debian: libmono-2.0-dev and mono-devel)"
#endif

namespace {

using runtime_type = polyplug::basic_runtime<polyplug::native_loader
#if POLYPLUG_PARITY_LUA
                                             ,
                                             polyplug::lua_loader
#endif
#if POLYPLUG_PARITY_PYTHON
                                             ,
                                             polyplug::python_loader
#endif
#if POLYPLUG_PARITY_JS
                                             ,
                                             polyplug::js_loader
#endif
#if POLYPLUG_PARITY_DOTNET
                                             ,
                                             polyplug::dotnet_loader
#endif
                                             >;

struct language {
    const char* name;
    const char* bundle;  // directory name under POLYPLUG_PARITY_DIR
    bool built;
    const char* why_not;
};

const language languages[] = {
    {"C++", "cpp", true, ""},
    {"C", "c", true, ""},
    {"Rust", "rust", POLYPLUG_PARITY_RUST != 0, "rustc was not found"},
    {"Lua", "lua", POLYPLUG_PARITY_LUA != 0, "the Lua loader is not built (-Dlua)"},
    {"Python", "python", POLYPLUG_PARITY_PYTHON != 0, "the Python loader is not built (-Dpython)"},
    {"JavaScript", "js", POLYPLUG_PARITY_JS != 0, "the JavaScript loader is not built (-Djs)"},
    {"C#", "dotnet", POLYPLUG_PARITY_DOTNET != 0, POLYPLUG_PARITY_DOTNET_WHY},
};

/// Printable bytes: ASCII as is, everything else as \xNN, so results compare and print exactly.
std::string escaped(const void* data, std::size_t len) {
    std::string out;
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < len; ++i) {
        char hex[8];
        if (bytes[i] >= 0x20 && bytes[i] < 0x7F && bytes[i] != '\\') {
            out += static_cast<char>(bytes[i]);
        } else {
            std::snprintf(hex, sizeof hex, "\\x%02x", bytes[i]);
            out += hex;
        }
    }
    return out;
}
std::string escaped(StringView s) {
    return escaped(s.ptr, s.ptr ? s.len : 0);
}

std::string render(const Ints& v) {
    char text[256];
    std::snprintf(text, sizeof text,
                  "Ints{%d,%u,%d,%u,%" PRId32 ",%" PRIu32 ",%" PRId64 ",%" PRIu64 "}", v.a, v.b,
                  v.c, v.d, v.e, v.f, v.g, v.h);
    return text;
}
std::string render(double d) {
    char text[64];
    std::snprintf(text, sizeof text, "%.17g", d);
    return text;
}
std::string render(const Shape& s) {
    return "Shape{" + std::to_string(s.tag) + "," + render(s.weight) + "," +
           std::to_string(s.color) + "," + escaped(s.label) + "}";
}

/// One implementation, loaded and with an instance, called through the generated structs.
class subject {
public:
    subject(runtime_type& rt, const GuestContractInterface* iface) : rt_(rt), iface_(iface) {
        rt.host_api()->create_guest_instance(rt.host_api(), iface, nullptr, &instance_);
        polyplug_arena_init(&arena_, storage_, sizeof storage_, rt.host_api());
    }
    ~subject() {
        polyplug_arena_free(&arena_);
        rt_.host_api()->destroy_guest_instance(rt_.host_api(), iface_, instance_);
    }
    subject(const subject&) = delete;
    subject& operator=(const subject&) = delete;

    [[nodiscard]] bool has_instance() const { return instance_.contract_id != 0; }

    /// Calls `fn`; returns the result rendered by `show`, or "error <code>: <message>".
    template <class Out>
    std::string call(std::uint32_t fn, const void* args,
                     const std::function<std::string(const Out&)>& show) {
        polyplug_arena_reset(&arena_);
        Out out{};
        const AbiError err = polyplug::call(*iface_, instance_, fn, args, &out, &arena_);
        if (err.code != AbiErrorCode_Ok)
            return "error " + std::to_string(err.code) + ": " +
                   std::string(polyplug::detail::view_of(err.message));
        return show(out);
    }
    std::string call_void(std::uint32_t fn, const void* args) {
        const AbiError err = polyplug::call(*iface_, instance_, fn, args, nullptr, &arena_);
        if (err.code != AbiErrorCode_Ok)
            return "error " + std::to_string(err.code) + ": " +
                   std::string(polyplug::detail::view_of(err.message));
        return "ok";
    }

private:
    runtime_type& rt_;
    const GuestContractInterface* iface_;
    GuestContractInstance instance_{nullptr, 0};
    std::uint8_t storage_[256];
    CallArena arena_{};
};

StringView sv(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

/// A row of the table: the call, what every implementation must give, and the languages that
/// must refuse it instead, with Panic and a message, because their numbers cannot hold a value
/// exactly (docs/VM_BUNDLES.md): JavaScript beyond 2^53, Lua 5.4 a u64 beyond 2^63 - 1.
struct row {
    std::string what;
    std::function<std::string(subject&)> run;
    std::string expected;
    std::vector<std::string_view> refused_by = {};
};

std::vector<row> table() {
    std::vector<row> rows;
    auto i32 = [](const std::int32_t& v) { return "i32:" + std::to_string(v); };
    for (auto [a, b, sum] : {std::tuple{2, 40, 42},
                             {INT32_MAX, 1, INT32_MIN},
                             {INT32_MIN, -1, INT32_MAX},
                             {-7, 7, 0}}) {
        rows.push_back({"add_i32(" + std::to_string(a) + ", " + std::to_string(b) + ")",
                        [a = a, b = b, i32](subject& s) {  // clang 14: no capture of bindings
                            const TestParityKitAddI32Args args{a, b};
                            return s.call<std::int32_t>(TEST_PARITY_KIT_FN_ADD_I32, &args, i32);
                        },
                        "i32:" + std::to_string(sum)});
    }
    const Ints minimum{INT8_MIN, 0, INT16_MIN, 0, INT32_MIN, 0, INT64_MIN, 0};
    const Ints maximum{INT8_MAX,  UINT8_MAX,  INT16_MAX, UINT16_MAX,
                       INT32_MAX, UINT32_MAX, INT64_MAX, UINT64_MAX};
    const Ints safe{-1,
                    200,
                    -300,
                    60000,
                    -70000,
                    4000000000u,
                    -(std::int64_t{1} << 53),
                    std::uint64_t{1} << 53};
    using refusers = std::vector<std::string_view>;
    for (auto [name, v, refuses] : {std::tuple{"minimum", minimum, refusers{"JavaScript"}},
                                    {"maximum", maximum, refusers{"JavaScript", "Lua"}},
                                    {"2^53", safe, refusers{}}}) {
        rows.push_back({std::string("echo_ints(") + name + ")",
                        [v = v](subject& s) {
                            const TestParityKitEchoIntsArgs args{v};
                            return s.call<Ints>(TEST_PARITY_KIT_FN_ECHO_INTS, &args,
                                                [](const Ints& r) { return render(r); });
                        },
                        render(v), refuses});
    }
    for (auto [x, y] :
         {std::pair{1.5f, 0.25}, {-0.0f, -0.0}, {3.4028235e38f, 1e308}, {1e-45f, -2.5}}) {
        rows.push_back({"scale(" + render(x) + ", " + render(y) + ")",
                        [x = x, y = y](subject& s) {
                            const TestParityKitScaleArgs args{x, y};
                            return s.call<double>(TEST_PARITY_KIT_FN_SCALE, &args,
                                                  [](const double& d) { return render(d); });
                        },
                        render(static_cast<double>(x) * 2.0 + y)});
    }
    for (auto [a, b] : {std::pair{false, false}, {true, false}, {false, true}, {true, true}}) {
        rows.push_back(
            {std::string("differ(") + (a ? "true" : "false") + ", " + (b ? "true" : "false") + ")",
             [a = a, b = b](subject& s) {
                 const TestParityKitDifferArgs args{a, b};
                 return s.call<bool>(TEST_PARITY_KIT_FN_DIFFER, &args, [](const bool& r) {
                     return std::string(r ? "true" : "false");
                 });
             },
             a != b ? "true" : "false"});
    }
    for (std::string_view name :
         {std::string_view("world"), std::string_view(""), std::string_view("nul\0in", 6),
          std::string_view("gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x94\x8c")}) {
        const std::string text(name);
        rows.push_back({"greet(\"" + escaped(name.data(), name.size()) + "\")",
                        [text](subject& s) {
                            const TestParityKitGreetArgs args{sv(text)};
                            return s.call<StringView>(
                                TEST_PARITY_KIT_FN_GREET, &args,
                                [](const StringView& r) { return escaped(r); });
                        },
                        escaped(("hello, " + text + "!").data(), text.size() + 8)});
    }
    for (std::string bytes :
         {std::string(""), std::string("\x01\x00\xff", 3), std::string("abc")}) {
        std::string reversed(bytes.rbegin(), bytes.rend());
        rows.push_back({"reverse(" + escaped(bytes.data(), bytes.size()) + ")",
                        [bytes](subject& s) mutable {
                            auto* p = reinterpret_cast<std::uint8_t*>(bytes.data());
                            const TestParityKitReverseArgs args{{p, bytes.size(), bytes.size()}};
                            return s.call<Buffer>(
                                TEST_PARITY_KIT_FN_REVERSE, &args,
                                [](const Buffer& r) { return escaped(r.ptr, r.ptr ? r.len : 0); });
                        },
                        escaped(reversed.data(), reversed.size())});
    }
    rows.push_back({"total(3 points)",
                    [](subject& s) {
                        static const Point points[] = {{1, 2}, {INT32_MAX, -3}, {1, INT32_MIN}};
                        const TestParityKitTotalArgs args{{points, 3}};
                        return s.call<Point>(TEST_PARITY_KIT_FN_TOTAL, &args, [](const Point& p) {
                            return std::to_string(p.x) + "," + std::to_string(p.y);
                        });
                    },
                    std::to_string(INT32_MIN + 1) + "," + std::to_string(INT32_MAX)});
    rows.push_back({"total(no points)",
                    [](subject& s) {
                        const TestParityKitTotalArgs args{{nullptr, 0}};
                        return s.call<Point>(TEST_PARITY_KIT_FN_TOTAL, &args, [](const Point& p) {
                            return std::to_string(p.x) + "," + std::to_string(p.y);
                        });
                    },
                    "0,0"});
    rows.push_back(
        {"describe(Shape)",
         [](subject& s) {
             const TestParityKitDescribeArgs args{{255, 1.25, Color_Blue, sv("\xc3\xa9t\xc3\xa9")}};
             return s.call<Shape>(TEST_PARITY_KIT_FN_DESCRIBE, &args,
                                  [](const Shape& r) { return render(r); });
         },
         "Shape{0,2.5,1," + escaped("\xc3\xa9t\xc3\xa9!", 6) + "}"});
    for (std::uint32_t n : {0u, 2u, 3u}) {
        static const char* names[] = {"1", "2", "256"};
        std::string expected = "[";
        for (std::uint32_t i = 0; i < n; ++i) expected += (i ? "," : "") + std::string(names[i]);
        rows.push_back({"colors(" + std::to_string(n) + ")",
                        [n](subject& s) {
                            const TestParityKitColorsArgs args{n};
                            return s.call<ArrayOf_Color>(
                                TEST_PARITY_KIT_FN_COLORS, &args, [](const ArrayOf_Color& a) {
                                    std::string text = "[";
                                    for (std::size_t i = 0; i < a.len; ++i)
                                        text += (i ? "," : "") + std::to_string(a.items[i]);
                                    return text + "]";
                                });
                        },
                        expected + "]"});
    }
    return rows;
}

}  // namespace

TEST_CASE("parity - seven languages, one contract, the same results", "[parity]") {
    runtime_type rt;
    const fs::path root = POLYPLUG_PARITY_DIR;
    const std::vector<row> rows = table();
    int compared = 0;
    for (const language& lang : languages) {
        if (!lang.built) {
            WARN("skipped " << lang.name << ": " << lang.why_not);
            continue;
        }
        INFO("language: " << lang.name);
        const fs::path bundle = root / lang.bundle;
        rt.load_bundle(bundle);
        const auto handles = rt.find_all(TEST_PARITY_KIT_CONTRACT_ID);
        const GuestContractInterface* iface = rt.resolve(handles.back());
        REQUIRE(iface != nullptr);
        subject s(rt, iface);
        REQUIRE(s.has_instance());
        for (const row& r : rows) {
            INFO("call: " << r.what);
            const std::string got = r.run(s);
            if (std::find(r.refused_by.begin(), r.refused_by.end(), lang.name) !=
                r.refused_by.end()) {
                CHECK(got.rfind("error " + std::to_string(AbiErrorCode_Panic) + ": ", 0) == 0);
                continue;
            }
            CHECK(got == r.expected);
            ++compared;
        }
        // Errors: n out of range, and the thrown error, with the message of each language.
        const TestParityKitColorsArgs four{4};
        const std::string too_many =
            s.call<ArrayOf_Color>(TEST_PARITY_KIT_FN_COLORS, &four,
                                  [](const ArrayOf_Color&) { return std::string("no error"); });
        CHECK_THAT(too_many, Catch::StartsWith("error 3: ") && Catch::Contains("n too large"));
        const TestParityKitFailArgs code{-7};
        const std::string failed = s.call_void(TEST_PARITY_KIT_FN_FAIL, &code);
        CHECK_THAT(failed, Catch::StartsWith("error 3: ") && Catch::Contains("parity failure -7"));
    }
    CHECK(compared > 0);
}
