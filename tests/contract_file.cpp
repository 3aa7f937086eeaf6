// SPDX-License-Identifier: MIT
/// @file contract_file.cpp
/// Tests for contract_file.hpp: every api.toml construct, ids, layouts against the C compiler's
/// own, enum expressions, and each validation error with its line, column and suggestion.
#include <polyplug/contract_description.hpp>
#include <polyplug/contract_file.hpp>
#include <polyplug/detail/contract_file_cache.hpp>

#include "catch.hpp"
#include "support.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using polyplug::contract_decl;
using polyplug::contract_file;
using polyplug::errc;
using polyplug::primitive_type;
using polyplug::type_kind;

namespace {

/// `text` without the newline that follows `R"(`, so the first line of the literal is line 1.
std::string lines(std::string_view text) {
    if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
    return std::string(text);
}

contract_file parsed(const std::string& text) {
    contract_file file;
    const polyplug::status result = polyplug::parse_contract_file(text, "api.toml", file);
    INFO(result.message());
    REQUIRE(result.ok());
    return file;
}

/// The message of a parse that must fail with errc::contract_file_invalid.
std::string error_of(const std::string& text) {
    contract_file file;
    const polyplug::status result = polyplug::parse_contract_file(text, "api.toml", file);
    REQUIRE_FALSE(result.ok());
    CHECK(result.code() == errc::contract_file_invalid);
    // The form that lists every problem puts this one first.
    std::vector<polyplug::status> problems;
    contract_file unused;
    (void)polyplug::parse_contract_file(text, "api.toml", unused, problems);
    REQUIRE_FALSE(problems.empty());
    CHECK(problems.front().message() == result.message());
    return result.message();
}

/// A guest contract "test.c@1" whose functions are `functions` (text from line 4 on).
std::string guest(std::string_view functions) {
    return "[[guest_contract]]\nname = \"test.c\"\nversion = \"1\"\n" + std::string(functions);
}

/// An enum "E" of `repr` whose variants are `variants` (an inline array, on line 4).
std::string enum_of(std::string_view repr, std::string_view variants, bool bitflag = false) {
    return "[[enum]]\nname = \"E\"\nrepr = \"" + std::string(repr) +
           "\"\nvariants = " + std::string(variants) + "\n" + (bitflag ? "bitflag = true\n" : "");
}

/// The values of enum "E" of a file that must parse.
std::vector<std::uint64_t> values_of(const std::string& text) {
    const contract_file file = parsed(text);
    REQUIRE(file.enums.size() == 1);
    std::vector<std::uint64_t> values;
    for (const polyplug::enum_variant& v : file.enums[0].variants) values.push_back(v.value);
    return values;
}

// ---- the example every layout is checked against ----------------------------------------------

const std::string example = lines(R"(
# Every construct of a contract file.
[[types]]
name = "Point"
docs = "A point on the plane."
fields = [
    { name = "x", type = "f64" },
    { name = "y", type = "f64", docs = "up" },
]

[[types]]
name = "Record"
langs.cpp.attributes = { final = true }
fields = [
    { name = "a", type = "u8" },
    { name = "b", type = "u64" },
    { name = "s", type = "StringView" },
    { name = "f", type = "bool" },
    { name = "mode", type = "Mode" },
    { name = "origin", type = "Point" },
    { name = "tags", type = "Array<StringView>" },
    { name = "data", type = "Buffer" },
    { name = "user", type = "Ptr" },
    { name = "small", type = "i16" },
    { name = "ratio", type = "f32" },
    { name = "access", type = "Access" },
]

[[enum]]
name = "Mode"
repr = "u16"
docs = "How to decode."
[[enum.variants]]
name = "Fast"
value = 1
[[enum.variants]]
name = "Exact"
value = "0x10"

[[enum]]
name = "Access"
repr = "u8"
bitflag = true
variants = [
    { name = "Read", value = "1 << 0" },
    { name = "Write", value = "1 << 1" },
    { name = "All", value = "Read | Write", docs = "both" },
]

[[guest_contract]]
name = "pipeline.Decoder"
version = "1.2.3"
docs = "Decodes things."

[[guest_contract.functions]]
name = "decode"
params = [{ name = "input", type = "Buffer" }, { name = "hint", type = "Mode" }]
return = { type = "Record" }

[[guest_contract.functions]]
name = "reset"

[[guest_contract.functions]]
name = "points"
params = [{ name = "count", type = "u32" }, { name = "access", type = "Array<Access>" }]
return = "Array<Point>"

[[guest_contract.functions]]
name = "scalars"
params = [
    { name = "a", type = "i8" },
    { name = "b", type = "i64" },
    { name = "c", type = "u16" },
    { name = "d", type = "f64" },
    { name = "e", type = "i32" },
]
return = "bool"

[[host_contract]]
name = "host.logger"
version = "1"
singleton = true

[[host_contract.functions]]
name = "log"
params = [{ name = "level", type = "u32" }, { name = "message", type = "StringView" }]
return = "void"

[[host_contract.functions]]
name = "flush"
return = "Void"

[[host_contract]]
name = "host.clock"
version = "2.1"
functions = [{ name = "now", return = "u64", langs = { python = { attributes = [] } } }]
)");

// The same types as the C compiler lays them out (spec 5.3: ordinary C rules).
struct Point {
    double x;
    double y;
};
struct ArrayOf_StringView {
    const StringView* items;
    std::size_t len;
};
struct ArrayOf_Point {
    const Point* items;
    std::size_t len;
};
struct ArrayOf_Access {
    const std::uint8_t* items;
    std::size_t len;
};
struct Record {
    std::uint8_t a;
    std::uint64_t b;
    StringView s;
    bool f;
    std::uint16_t mode;  // enum Mode: repr u16
    Point origin;
    ArrayOf_StringView tags;
    Buffer data;
    void* user;
    std::int16_t small;
    float ratio;
    std::uint8_t access;  // enum Access: repr u8
};
struct DecodeArgs {
    Buffer input;
    std::uint16_t hint;
};
struct PointsArgs {
    std::uint32_t count;
    ArrayOf_Access access;
};
struct ScalarsArgs {
    std::int8_t a;
    std::int64_t b;
    std::uint16_t c;
    double d;
    std::int32_t e;
};
struct LogArgs {
    std::uint32_t level;
    StringView message;
};

/// A record laid out by the parser has the C struct's size and alignment.
#define CHECK_RECORD(record, CType)              \
    do {                                         \
        CHECK((record).size == sizeof(CType));   \
        CHECK((record).align == alignof(CType)); \
        CHECK((record).fields.size() > 0);       \
    } while (false)

/// The field `name` of a parsed record sits where the C compiler puts CType::name, with the
/// member's size and alignment.
#define CHECK_FIELD(record, CType, name)                             \
    do {                                                             \
        const polyplug::field_decl* field_ = (record).find(#name);   \
        REQUIRE(field_ != nullptr);                                  \
        CHECK(field_->offset == offsetof(CType, name));              \
        CHECK(field_->type.size == sizeof(CType::name));             \
        CHECK(field_->type.align == alignof(decltype(CType::name))); \
    } while (false)

}  // namespace

TEST_CASE("contract_file - a file with every construct parses into the model", "[contract_file]") {
    const contract_file file = parsed(example);
    CHECK(file.source == "api.toml");

    REQUIRE(file.structs.size() == 2);
    const polyplug::struct_decl& point = file.structs[0];
    CHECK(point.name == "Point");
    CHECK(point.docs == "A point on the plane.");
    CHECK(point.position == polyplug::source_position{2, 1});
    REQUIRE(point.layout.fields.size() == 2);
    CHECK(point.layout.fields[1].name == "y");
    CHECK(point.layout.fields[1].docs == "up");
    CHECK(point.layout.fields[1].type.kind == type_kind::primitive);
    CHECK(point.layout.fields[1].type.primitive == primitive_type::f64);

    const polyplug::struct_decl& record = file.structs[1];
    REQUIRE(record.layout.fields.size() == 12);
    const auto kind_of = [&](std::string_view name) { return record.layout.find(name)->type.kind; };
    CHECK(kind_of("a") == type_kind::primitive);
    CHECK(kind_of("s") == type_kind::string_view);
    CHECK(kind_of("mode") == type_kind::enum_ref);
    CHECK(kind_of("origin") == type_kind::struct_ref);
    CHECK(kind_of("tags") == type_kind::array);
    CHECK(kind_of("data") == type_kind::buffer);
    CHECK(kind_of("user") == type_kind::ptr);
    CHECK(record.layout.find("f")->type.primitive == primitive_type::bool_);
    CHECK(record.layout.find("small")->type.primitive == primitive_type::i16);

    const polyplug::type_ref& mode = record.layout.find("mode")->type;
    CHECK(mode.primitive == primitive_type::u16);  // an enum carries its repr
    REQUIRE(file.enum_of(mode) != nullptr);
    CHECK(file.enum_of(mode)->name == "Mode");
    CHECK(file.struct_of(mode) == nullptr);

    const polyplug::type_ref& origin = record.layout.find("origin")->type;
    REQUIRE(file.struct_of(origin) != nullptr);
    CHECK(file.struct_of(origin)->name == "Point");
    CHECK(origin.name == "Point");

    const polyplug::type_ref& tags = record.layout.find("tags")->type;
    CHECK(tags.is_array());
    CHECK(tags.name == "Array<StringView>");
    CHECK(tags.element.kind == type_kind::string_view);
    CHECK(tags.element.size == sizeof(StringView));

    REQUIRE(file.enums.size() == 2);
    const polyplug::enum_decl& mode_enum = file.enums[0];
    CHECK(mode_enum.name == "Mode");
    CHECK(mode_enum.repr == primitive_type::u16);
    CHECK_FALSE(mode_enum.bitflag);
    CHECK(mode_enum.docs == "How to decode.");
    REQUIRE(mode_enum.variants.size() == 2);
    CHECK(mode_enum.variants[1].name == "Exact");
    CHECK(mode_enum.variants[1].value == 0x10);
    const polyplug::enum_decl& access = file.enums[1];
    CHECK(access.bitflag);
    REQUIRE(access.find("All") != nullptr);
    CHECK(access.find("All")->value == 3);
    CHECK(access.find("All")->docs == "both");
    CHECK(access.find("None") == nullptr);

    REQUIRE(file.guest_contracts.size() == 1);
    const contract_decl& decoder = file.guest_contracts[0];
    CHECK(decoder.side == polyplug::contract_side::guest);
    CHECK(decoder.name == "pipeline.Decoder");
    CHECK(decoder.version == polyplug::version{1, 2, 3});
    CHECK(decoder.docs == "Decodes things.");
    CHECK_FALSE(decoder.singleton);
    REQUIRE(decoder.functions.size() == 4);

    const polyplug::function_decl& decode = decoder.functions[0];
    CHECK(decode.result.kind == type_kind::struct_ref);
    CHECK(decode.result.name == "Record");
    CHECK(decode.args.find("input")->type.kind == type_kind::buffer);

    const polyplug::function_decl& reset = decoder.functions[1];
    CHECK(reset.args.fields.empty());
    CHECK(reset.result.is_void());

    const polyplug::function_decl& points = decoder.functions[2];
    CHECK(points.result.is_array());
    CHECK(points.result.element.kind == type_kind::struct_ref);
    CHECK(file.struct_of(points.result.element) == &file.structs[0]);
    const polyplug::type_ref& flags = points.args.find("access")->type;
    CHECK(flags.element.kind == type_kind::enum_ref);
    CHECK(flags.element.primitive == primitive_type::u8);
    CHECK(file.enum_of(flags.element) == &file.enums[1]);

    CHECK(decoder.functions[3].result.primitive == primitive_type::bool_);

    REQUIRE(file.host_contracts.size() == 2);
    const contract_decl& logger = file.host_contracts[0];
    CHECK(logger.side == polyplug::contract_side::host);
    CHECK(logger.singleton);
    CHECK(logger.version == polyplug::version{1, 0, 0});
    REQUIRE(logger.functions.size() == 2);
    CHECK(logger.functions[0].result.is_void());  // "void"
    CHECK(logger.functions[1].result.is_void());  // "Void"
    CHECK(logger.functions[1].result.name == "Void");
    const contract_decl& clock = file.host_contracts[1];
    CHECK_FALSE(clock.singleton);  // the default
    CHECK(clock.version == polyplug::version{2, 1, 0});
    REQUIRE(clock.functions.size() == 1);
    CHECK(clock.functions[0].result.primitive == primitive_type::u64);
}

TEST_CASE("contract_file - contract ids hash the name and major only", "[contract_file]") {
    const contract_file file = parsed(example);
    const contract_decl& decoder = file.guest_contracts[0];
    CHECK(decoder.id == polyplug::guest_contract_id("pipeline.Decoder", 1));
    CHECK(decoder.id == 0xE1D7DE773BE6E7F7u);  // spec 2.4 test vector
    const contract_decl& logger = file.host_contracts[0];
    CHECK(logger.id == polyplug::host_contract_id("host.logger", 1));
    CHECK(logger.id == 0xF53EB5F2845853BBu);  // spec 2.4 test vector
    CHECK(file.host_contracts[1].id == polyplug::host_contract_id("host.clock", 2));

    CHECK(file.find_contract(decoder.id) == &decoder);
    CHECK(file.find_contract(logger.id) == &logger);
    CHECK(file.find_contract(polyplug::guest_contract_id("pipeline.Decoder", 2)) == nullptr);

    // Minor and patch are not identity; the same name at another major is another contract.
    const contract_file two = parsed(lines(R"(
[[guest_contract]]
name = "calc"
version = "1.9.7"
[[guest_contract]]
name = "calc"
version = "2"
)"));
    REQUIRE(two.guest_contracts.size() == 2);
    CHECK(two.guest_contracts[0].id == polyplug::guest_contract_id("calc", 1));
    CHECK(two.guest_contracts[1].id == polyplug::guest_contract_id("calc", 2));
    CHECK(two.guest_contracts[0].functions.empty());
}

TEST_CASE("contract_file - function ids are declaration indices", "[contract_file]") {
    const contract_file file = parsed(example);
    const contract_decl& decoder = file.guest_contracts[0];
    const char* const names[] = {"decode", "reset", "points", "scalars"};
    for (std::uint32_t i = 0; i < 4; ++i) {
        CAPTURE(i);
        CHECK(decoder.functions[i].id == i);
        CHECK(decoder.functions[i].name == names[i]);
        REQUIRE(decoder.find_function(names[i]) != nullptr);
        CHECK(decoder.find_function(names[i])->id == i);
    }
    CHECK(decoder.find_function("missing") == nullptr);
    CHECK(file.host_contracts[0].find_function("flush")->id == 1);
}

TEST_CASE("contract_file - layouts are the C compiler's", "[contract_file]") {
    const contract_file file = parsed(example);

    SECTION("a struct of every category") {
        const polyplug::record_layout& record = file.structs[1].layout;
        CHECK_RECORD(record, Record);
        CHECK_FIELD(record, Record, a);
        CHECK_FIELD(record, Record, b);
        CHECK_FIELD(record, Record, s);
        CHECK_FIELD(record, Record, f);
        CHECK_FIELD(record, Record, mode);
        CHECK_FIELD(record, Record, origin);
        CHECK_FIELD(record, Record, tags);
        CHECK_FIELD(record, Record, data);
        CHECK_FIELD(record, Record, user);
        CHECK_FIELD(record, Record, small);
        CHECK_FIELD(record, Record, ratio);
        CHECK_FIELD(record, Record, access);
        CHECK_RECORD(file.structs[0].layout, Point);
    }
    SECTION("argument structs") {
        const contract_decl& decoder = file.guest_contracts[0];
        CHECK_RECORD(decoder.functions[0].args, DecodeArgs);
        CHECK_FIELD(decoder.functions[0].args, DecodeArgs, input);
        CHECK_FIELD(decoder.functions[0].args, DecodeArgs, hint);
        CHECK_RECORD(decoder.functions[2].args, PointsArgs);
        CHECK_FIELD(decoder.functions[2].args, PointsArgs, count);
        CHECK_FIELD(decoder.functions[2].args, PointsArgs, access);
        const polyplug::record_layout& scalars = decoder.functions[3].args;
        CHECK_RECORD(scalars, ScalarsArgs);
        CHECK_FIELD(scalars, ScalarsArgs, a);
        CHECK_FIELD(scalars, ScalarsArgs, b);
        CHECK_FIELD(scalars, ScalarsArgs, c);
        CHECK_FIELD(scalars, ScalarsArgs, d);
        CHECK_FIELD(scalars, ScalarsArgs, e);
        const polyplug::record_layout& log = file.host_contracts[0].functions[0].args;
        CHECK_RECORD(log, LogArgs);
        CHECK_FIELD(log, LogArgs, level);
        CHECK_FIELD(log, LogArgs, message);
    }
    SECTION("results") {
        const contract_decl& decoder = file.guest_contracts[0];
        CHECK(decoder.functions[0].result.size == sizeof(Record));
        CHECK(decoder.functions[0].result.align == alignof(Record));
        CHECK(decoder.functions[2].result.size == sizeof(ArrayOf_Point));
        CHECK(decoder.functions[2].result.align == alignof(ArrayOf_Point));
        CHECK(decoder.functions[2].result.element.size == sizeof(Point));
        CHECK(decoder.functions[2].result.element.align == alignof(Point));
        CHECK(decoder.functions[3].result.size == sizeof(bool));
        CHECK(file.host_contracts[0].functions[0].result.size == 0);
    }
    SECTION("a function without parameters has an empty argument struct") {
        const polyplug::function_decl& reset = file.guest_contracts[0].functions[1];
        CHECK(reset.args.size == 0);
        CHECK(reset.args.align == 1);
        CHECK(reset.args.fields.empty());
    }
}

namespace {
struct Small {
    std::uint8_t tag;
    std::uint16_t code;
};
struct Padded {
    std::uint8_t a;
    std::uint16_t b;
    std::uint8_t c;
    std::uint32_t d;
    std::uint8_t e;
    Small inner;
    std::uint8_t g;
    std::uint64_t h;
    std::uint8_t i;
};
struct Outer {
    Padded padded;
    std::uint8_t last;
};
struct Tree {
    std::uint32_t value;
    const void* children_items;  // Array<Tree>
    std::size_t children_len;
};
}  // namespace

TEST_CASE("contract_file - mixed alignments pad as in C, nested structs in any order",
          "[contract_file]") {
    // Outer comes first and uses Padded, which uses Small: declaration order does not matter.
    const contract_file file = parsed(lines(R"(
[[types]]
name = "Outer"
fields = [{ name = "padded", type = "Padded" }, { name = "last", type = "u8" }]
[[types]]
name = "Padded"
fields = [
    { name = "a", type = "u8" }, { name = "b", type = "u16" }, { name = "c", type = "u8" },
    { name = "d", type = "u32" }, { name = "e", type = "u8" }, { name = "inner", type = "Small" },
    { name = "g", type = "u8" }, { name = "h", type = "u64" }, { name = "i", type = "u8" },
]
[[types]]
name = "Small"
fields = [{ name = "tag", type = "u8" }, { name = "code", type = "u16" }]
[[types]]
name = "Tree"
fields = [{ name = "value", type = "u32" }, { name = "children", type = "Array<Tree>" }]
)"));
    const polyplug::record_layout& padded = file.find_struct("Padded")->layout;
    CHECK_RECORD(padded, Padded);
    CHECK_FIELD(padded, Padded, a);
    CHECK_FIELD(padded, Padded, b);
    CHECK_FIELD(padded, Padded, c);
    CHECK_FIELD(padded, Padded, d);
    CHECK_FIELD(padded, Padded, e);
    CHECK_FIELD(padded, Padded, inner);
    CHECK_FIELD(padded, Padded, g);
    CHECK_FIELD(padded, Padded, h);
    CHECK_FIELD(padded, Padded, i);
    const polyplug::record_layout& outer = file.find_struct("Outer")->layout;
    CHECK_RECORD(outer, Outer);
    CHECK_FIELD(outer, Outer, padded);
    CHECK_FIELD(outer, Outer, last);
    CHECK_RECORD(file.find_struct("Small")->layout, Small);

    // A struct may hold itself through an array: the array is a pointer and a count.
    const polyplug::struct_decl& tree = *file.find_struct("Tree");
    CHECK(tree.layout.size == sizeof(Tree));
    CHECK(tree.layout.find("children")->offset == offsetof(Tree, children_items));
    CHECK(tree.layout.find("children")->type.element.size == sizeof(Tree));
    CHECK(file.find_struct("Missing") == nullptr);
    CHECK(file.find_enum("Missing") == nullptr);
}

TEST_CASE("contract_file - enum values are integer expressions", "[contract_file]") {
    SECTION("literals: TOML integers, decimal, hex and binary strings") {
        CHECK(values_of(enum_of("u32", R"([{name = "A", value = 7}, {name = "B", value = "42"},
            {name = "C", value = "0xFF"}, {name = "D", value = "0X1a"},
            {name = "E", value = "0b101"}, {name = "F", value = "0"}])")) ==
              std::vector<std::uint64_t>{7, 42, 255, 26, 5, 0});
    }
    SECTION("| , << and parentheses, with C precedence") {
        CHECK(values_of(enum_of("u16", R"x([{name = "A", value = "1 | 2 << 3"},
            {name = "B", value = "(1 | 2) << 3"}, {name = "C", value = "1<<2<<3"},
            {name = "D", value = "((((4))))"}])x")) == std::vector<std::uint64_t>{17, 24, 32, 4});
    }
    SECTION("earlier variants by name") {
        CHECK(values_of(enum_of("u8", R"([{name = "Read", value = "1 << 0"},
            {name = "Write", value = "1 << 1"}, {name = "Exec", value = "1 << 2"},
            {name = "ReadWrite", value = "Read | Write"},
            {name = "All", value = "ReadWrite | Exec"}])",
                                true)) == std::vector<std::uint64_t>{1, 2, 4, 3, 7});
    }
    SECTION("~ complements within the repr") {
        CHECK(values_of(enum_of("u8", R"([{name = "A", value = "~0"}, {name = "B", value = "~1"},
            {name = "C", value = "~~5"}])")) == std::vector<std::uint64_t>{0xFF, 0xFE, 5});
        CHECK(values_of(enum_of("u16", R"([{name = "A", value = "~0"}])")) ==
              std::vector<std::uint64_t>{0xFFFF});
        CHECK(values_of(enum_of("u32", R"x([{name = "A", value = "~(1 << 31)"}])x")) ==
              std::vector<std::uint64_t>{0x7FFFFFFF});
        CHECK(values_of(enum_of("u64", R"([{name = "A", value = "~0"}])")) ==
              std::vector<std::uint64_t>{UINT64_MAX});
        CHECK(values_of(enum_of("u8", R"x([{name = "R", value = 1}, {name = "W", value = 2},
            {name = "NotRW", value = "~(R | W)"}])x",
                                true)) == std::vector<std::uint64_t>{1, 2, 0xFC});
    }
    SECTION("the largest values of each repr") {
        CHECK(values_of(enum_of(
                  "u8", R"([{name = "A", value = 255}, {name = "B", value = "1 << 7"}])")) ==
              std::vector<std::uint64_t>{255, 128});
        CHECK(values_of(enum_of("u16", R"([{name = "A", value = "0xFFFF"}])")) ==
              std::vector<std::uint64_t>{0xFFFF});
        CHECK(values_of(enum_of("u32", R"([{name = "A", value = 4294967295}])")) ==
              std::vector<std::uint64_t>{0xFFFFFFFF});
        CHECK(values_of(enum_of("u64", R"([{name = "A", value = "0xFFFFFFFFFFFFFFFF"},
            {name = "B", value = "1 << 63"}])")) ==
              std::vector<std::uint64_t>{UINT64_MAX, std::uint64_t{1} << 63});
    }
    SECTION("a bitflag enum may repeat values; another may not") {
        const std::string variants = R"([{name = "A", value = 1}, {name = "B", value = "A"}])";
        CHECK(values_of(enum_of("u8", variants, true)) == std::vector<std::uint64_t>{1, 1});
        CHECK(error_of(enum_of("u8", variants)) ==
              "api.toml:4:59: variant 'B' has the value 1 of variant 'A' (values repeat only in "
              "a bitflag enum)");
    }
}

TEST_CASE("contract_file - enum values out of range or malformed are refused at their column",
          "[contract_file]") {
    // Line 4 is `variants = [{name = "A", value = 1}, {name = "B", value = <value>}]`; the value
    // starts at column 59, its text (inside the quotes) at 60.
    const auto error = [](std::string_view repr, std::string_view value) {
        return error_of(enum_of(repr, R"([{name = "A", value = 1}, {name = "B", value = )" +
                                          std::string(value) + "}]"));
    };
    const std::string where = " in the value of variant 'B' of enum 'E'";
    CHECK(error("u8", "256") ==
          "api.toml:4:59: value 256 of variant 'B' does not fit u8 (0 to 255)");
    CHECK(error("u8", "-1") == "api.toml:4:59: value -1 of variant 'B' does not fit u8 (0 to 255)");
    CHECK(error("u8", R"("0x100")") ==
          "api.toml:4:60: number 0x100 does not fit u8" + where + " (largest value 255)");
    CHECK(error("u16", R"("65536")") ==
          "api.toml:4:60: number 65536 does not fit u16" + where + " (largest value 65535)");
    CHECK(error("u64", R"("0x10000000000000000")") ==
          "api.toml:4:60: number 0x10000000000000000 does not fit u64" + where +
              " (largest value 18446744073709551615)");
    CHECK(error("u8", R"("1 << 8")") ==
          "api.toml:4:62: shift by 8 out of range for u8" + where + " (at most 7)");
    CHECK(error("u8", R"("3 << 7")") ==
          "api.toml:4:62: 3 << 7 does not fit u8" + where + " (largest value 255)");
    CHECK(error("u64", R"("1 << 64")") ==
          "api.toml:4:62: shift by 64 out of range for u64" + where + " (at most 63)");
    CHECK(error("u8", R"("B | 1")") == "api.toml:4:60: 'B' refers to itself" + where);
    CHECK(error("u8", R"("A | Rad")") == "api.toml:4:64: unknown name 'Rad'" + where);
    CHECK(error("u8", R"("a")") ==
          "api.toml:4:60: unknown name 'a'" + where + " (did you mean 'A'?)");
    CHECK(error("u8", R"("0b102")") == "api.toml:4:60: malformed number '0b102'" + where);
    CHECK(error("u8", R"("0x")") == "api.toml:4:60: malformed number '0x'" + where);
    CHECK(error("u8", R"("12ab")") == "api.toml:4:60: malformed number '12ab'" + where);
    CHECK(error("u8", R"("010")") == "api.toml:4:60: number '010' with a leading zero" + where +
                                         " (write 0x for hex, 0b for binary)");
    CHECK(error("u8", R"("1 + 2")") ==
          "api.toml:4:62: unexpected '+'" + where + " (the operators are |, << and ~)");
    CHECK(error("u8", R"("1 >> 2")") ==
          "api.toml:4:62: unexpected '>'" + where + " (the operators are |, << and ~)");
    CHECK(error("u8", R"("(1 | 2")") == "api.toml:4:60: '(' without a matching ')'" + where);
    CHECK(error("u8", R"("1 |")") == "api.toml:4:63: unexpected end of expression" + where);
    CHECK(error("u8", R"("")") == "api.toml:4:60: empty expression" + where);
    CHECK(error("u8", R"("  ")") == "api.toml:4:62: empty expression" + where);
    CHECK(error("u8", "1.5") ==
          "api.toml:4:59: key 'value' of variant 'B' must be an integer or an expression string, "
          "found a float");
    CHECK_THAT(error("u8", R"(")" + std::string(100, '(') + "1" + std::string(100, ')') + "\""),
               Contains("expression nested too deeply"));

    // Later variants cannot be used, even if they would be in range.
    CHECK(error_of(enum_of("u8", R"([{name = "A", value = "B"}, {name = "B", value = 2}])")) ==
          "api.toml:4:35: 'B' refers to a later variant in the value of variant 'A' of enum 'E' "
          "(only variants declared before can be used)");
    // An escaped string cannot be mapped column by column: the string's start is reported.
    CHECK(error_of(enum_of("u8", R"([{name = "A", value = "\u0031 + 1"}])")) ==
          "api.toml:4:34: unexpected '+' in the value of variant 'A' of enum 'E' (the operators "
          "are |, << and ~)");
}

TEST_CASE("contract_file - enum declarations are checked", "[contract_file]") {
    CHECK(error_of(enum_of("i32", R"([{name = "A", value = 1}])")) ==
          "api.toml:3:8: repr 'i32' of enum 'E' must be u8, u16, u32 or u64 (did you mean "
          "'u32'?)");
    CHECK(error_of(enum_of("u8", "[]")) == "api.toml:1:1: enum 'E' has no variants");
    CHECK(error_of("[[enum]]\nname = \"E\"\nvariants = [{name = \"A\", value = 1}]\n") ==
          "api.toml:1:1: enum 'E' has no 'repr'");
    CHECK(error_of(enum_of("u8", R"([{name = "A"}])")) ==
          "api.toml:4:13: variant 'A' has no 'value'");
    CHECK(error_of(enum_of("u8", R"([{name = "A", value = 1}, {name = "A", value = 2}])")) ==
          "api.toml:4:46: duplicate variant name 'A' in enum 'E' (first at line 4)");
    CHECK(error_of(enum_of("u8", R"([{name = "A", valu = 1}])")) ==
          "api.toml:4:26: unknown key 'valu' in variant 'A' (did you mean 'value'?)");
    CHECK(error_of(enum_of("u8", R"([{name = "None", value = 1}])")) ==
          "api.toml:4:21: variant name 'None' is a reserved word in Python");
    CHECK(error_of("[[enum]]\nname = \"E\"\nrepr = \"u8\"\nbitflags = true\n"
                   "variants = [{name = \"A\", value = 1}]\n") ==
          "api.toml:4:1: unknown key 'bitflags' in enum 'E' (did you mean 'bitflag'?)");
    CHECK(error_of("[[enum]]\nname = \"E\"\nrepr = \"u8\"\nbitflag = \"yes\"\n"
                   "variants = [{name = \"A\", value = 1}]\n") ==
          "api.toml:4:11: key 'bitflag' of enum 'E' must be a boolean (true or false), found a "
          "string");
}

TEST_CASE("contract_file - unknown types name the place and suggest the nearest type",
          "[contract_file]") {
    SECTION("a parameter") {
        CHECK(error_of(guest(R"([[guest_contract.functions]]
name = "greet"
params = [{ name = "name", type = "Strng" }]
)")) == "api.toml:6:35: unknown type 'Strng' in parameter 'name' of function 'greet' (did you "
        "mean 'StringView'?)");
    }
    SECTION("a field, suggesting a declared type") {
        CHECK(error_of(lines(R"(
[[types]]
name = "Point"
fields = [{ name = "x", type = "f64" }]
[[types]]
name = "Line"
fields = [{ name = "start", type = "Pont" }]
)")) == "api.toml:6:36: unknown type 'Pont' in field 'start' of type 'Line' (did you mean "
        "'Point'?)");
    }
    SECTION("a return type, in any case") {
        CHECK(
            error_of(guest("[[guest_contract.functions]]\nname = \"f\"\nreturn = \"buffer\"\n")) ==
            "api.toml:6:10: unknown type 'buffer' in the return type of function 'f' (did you "
            "mean 'Buffer'?)");
        CHECK(error_of(guest("[[guest_contract.functions]]\nname = \"f\"\n"
                             "return = { type = \"u33\" }\n")) ==
              "api.toml:6:19: unknown type 'u33' in the return type of function 'f' (did you "
              "mean 'u32'?)");
    }
    SECTION("spellings from other languages") {
        const auto suggestion = [](std::string_view type) {
            return error_of(guest("[[guest_contract.functions]]\nname = \"f\"\nreturn = \"" +
                                  std::string(type) + "\"\n"));
        };
        CHECK_THAT(suggestion("string"), Contains("(did you mean 'StringView'?)"));
        CHECK_THAT(suggestion("uint64_t"), Contains("(did you mean 'u64'?)"));
        CHECK_THAT(suggestion("double"), Contains("(did you mean 'f64'?)"));
        CHECK_THAT(suggestion("void*"), Contains("(did you mean 'Ptr'?)"));
        CHECK_THAT(suggestion("Vec"), Contains("(did you mean 'Array<T>'?)"));
    }
    SECTION("nothing close: no suggestion") {
        CHECK(error_of(guest("[[guest_contract.functions]]\nname = \"f\"\n"
                             "return = \"Quaternion\"\n")) ==
              "api.toml:6:10: unknown type 'Quaternion' in the return type of function 'f'");
    }
    SECTION("an array of an unknown type") {
        CHECK(error_of(guest("[[guest_contract.functions]]\nname = \"f\"\n"
                             "return = \"Array<i23>\"\n")) ==
              "api.toml:6:10: unknown type 'i23' in the return type of function 'f' (did you "
              "mean 'i32'?)");
    }
}

TEST_CASE("contract_file - Void, arrays and type syntax are checked", "[contract_file]") {
    CHECK(error_of(guest(R"([[guest_contract.functions]]
name = "f"
params = [{ name = "nothing", type = "Void" }]
)")) == "api.toml:6:38: 'Void' is only allowed as a return type (in parameter 'nothing' of "
        "function 'f')");
    CHECK(error_of("[[types]]\nname = \"T\"\nfields = [{ name = \"v\", type = \"void\" }]\n") ==
          "api.toml:3:32: 'void' is only allowed as a return type (in field 'v' of type 'T')");
    CHECK(error_of(
              "[[types]]\nname = \"T\"\nfields = [{ name = \"v\", type = \"Array<Void>\" }]\n") ==
          "api.toml:3:32: array of 'Void' in field 'v' of type 'T' (an element must have a type)");
    CHECK(error_of("[[types]]\nname = \"T\"\nfields = [{ name = \"v\", type = \"Array<Array<u8>>\" "
                   "}]\n") ==
          "api.toml:3:32: nested array type 'Array<Array<u8>>' in field 'v' of type 'T' (arrays "
          "cannot hold arrays; wrap the inner array in a [[types]] struct)");
    CHECK(error_of("[[types]]\nname = \"T\"\nfields = [{ name = \"v\", type = \"Array<u8\" }]\n") ==
          "api.toml:3:32: malformed array type 'Array<u8' in field 'v' of type 'T' (write "
          "Array<T>)");
    CHECK(error_of("[[types]]\nname = \"T\"\nfields = [{ name = \"v\", type = \"Array\" }]\n") ==
          "api.toml:3:32: malformed array type 'Array' in field 'v' of type 'T' (write Array<T>)");
    // Spaces inside the brackets are fine; the canonical name has none.
    const contract_file file =
        parsed("[[types]]\nname = \"T\"\nfields = [{ name = \"v\", type = \"Array< u8 >\" }]\n");
    CHECK(file.structs[0].layout.fields[0].type.name == "Array<u8>");
    CHECK(file.structs[0].layout.fields[0].type.element.primitive == primitive_type::u8);
}

TEST_CASE("contract_file - unknown keys are refused with the nearest known key",
          "[contract_file]") {
    CHECK(error_of(guest(R"([[guest_contract.functions]]
name = "greet"
parms = [{ name = "who", type = "StringView" }]
)")) == "api.toml:6:1: unknown key 'parms' in function 'greet' (did you mean 'params'?)");
    CHECK(error_of(guest(R"([[guest_contract.functions]]
name = "greet"
retrun = "u8"
)")) == "api.toml:6:1: unknown key 'retrun' in function 'greet' (did you mean 'return'?)");
    CHECK(error_of(guest(R"([[guest_contract.functions]]
name = "greet"
params = [{ name = "who", tpye = "StringView" }]
)")) == "api.toml:6:27: unknown key 'tpye' in parameter 'who' (did you mean 'type'?)");
    CHECK(error_of(guest("[[guest_contract.functions]]\nname = \"f\"\n"
                         "return = { type = \"u8\", kind = 1 }\n")) ==
          "api.toml:6:25: unknown key 'kind' in the return of function 'f'");
    CHECK(error_of("[[guest_contract]]\nname = \"test.c\"\nversion = \"1\"\nsingleton = true\n") ==
          "api.toml:4:1: unknown key 'singleton' in guest contract 'test.c' ('singleton' applies "
          "to host contracts only)");
    CHECK(error_of("[[types]]\nname = \"T\"\nfeilds = []\n") ==
          "api.toml:3:1: unknown key 'feilds' in type 'T' (did you mean 'fields'?)");
    // The first unknown key in the file is reported, whatever the table's own order.
    CHECK(error_of("[[types]]\nname = \"T\"\nzzz = 1\naaa = 2\nfields = []\n") ==
          "api.toml:3:1: unknown key 'zzz' in type 'T'");
}

TEST_CASE("contract_file - top-level keys: only the four tables", "[contract_file]") {
    CHECK(error_of("typs = 1\n") ==
          "api.toml:1:1: unknown top-level key 'typs' (a contract file has [[types]], [[enum]], "
          "[[guest_contract]] and [[host_contract]]) (did you mean 'types'?)");
    CHECK(error_of("[[enum]]\nname = \"E\"\nrepr = \"u8\"\nvariants = []\n[[host_contracts]]\n") ==
          "api.toml:5:3: unknown top-level key 'host_contracts' (a contract file has [[types]], "
          "[[enum]], [[guest_contract]] and [[host_contract]]) (did you mean 'host_contract'?)");
    // The first one in the file, though 'b' sorts before 'z'.
    CHECK_THAT(error_of("z = 1\nb = 2\n"), StartsWith("api.toml:1:1: unknown top-level key 'z'"));
    CHECK(error_of("[[contract]]\nname = \"calc\"\nversion = \"1\"\n") ==
          "api.toml:1:3: [[contract]] is not a contract file table: declare contracts that "
          "plugins implement with [[guest_contract]] and contracts that the host implements "
          "with [[host_contract]]");
    CHECK_THAT(error_of("[[plugin_contract]]\nname = \"calc\"\n"),
               StartsWith("api.toml:1:3: [[plugin_contract]] is not a contract file table: "
                          "declare contracts that plugins implement with [[guest_contract]]"));
    CHECK(error_of("[types]\nname = \"T\"\n") ==
          "api.toml:1:1: key 'types' of the contract file must be an array of tables "
          "([[types]]), found a table");
    CHECK(error_of("types = [1]\n") ==
          "api.toml:1:10: each entry of 'types' in the contract file must be a table, found an "
          "integer");
    // An empty file is a valid (empty) contract file.
    const contract_file empty = parsed("# nothing yet\n");
    CHECK(empty.structs.empty());
    CHECK(empty.guest_contracts.empty());
}

TEST_CASE("contract_file - names must be identifiers no target language reserves",
          "[contract_file]") {
    SECTION("reserved words, naming the languages") {
        CHECK(
            error_of("[[types]]\nname = \"type\"\nfields = [{ name = \"x\", type = \"u8\" }]\n") ==
            "api.toml:2:8: type name 'type' is a reserved word in Rust");
        CHECK(
            error_of("[[types]]\nname = \"T\"\nfields = [{ name = \"class\", type = \"u8\" }]\n") ==
            "api.toml:3:20: field name 'class' is a reserved word in C++, Python and JavaScript");
        CHECK(error_of(guest("[[guest_contract.functions]]\nname = \"end\"\n")) ==
              "api.toml:5:8: function name 'end' is a reserved word in Lua");
        CHECK(error_of(guest("[[guest_contract.functions]]\nname = \"f\"\n"
                             "params = [{ name = \"int\", type = \"i32\" }]\n")) ==
              "api.toml:6:20: parameter name 'int' is a reserved word in C and C++");
        CHECK(error_of(guest("[[guest_contract.functions]]\nname = \"f\"\n"
                             "params = [{ name = \"function\", type = \"i32\" }]\n")) ==
              "api.toml:6:20: parameter name 'function' is a reserved word in Lua and JavaScript");
        CHECK(error_of(guest("[[guest_contract.functions]]\nname = \"while\"\n")) ==
              "api.toml:5:8: function name 'while' is a reserved word in C, C++, Rust, Python, "
              "Lua and JavaScript");
    }
    SECTION("identifier syntax") {
        CHECK(error_of("[[types]]\nname = \"T\"\nfields = [{ name = \"2d\", type = \"u8\" }]\n") ==
              "api.toml:3:20: field name '2d' is not an identifier ([A-Za-z_][A-Za-z0-9_]*)");
        CHECK(error_of(guest("[[guest_contract.functions]]\nname = \"get-value\"\n")) ==
              "api.toml:5:8: function name 'get-value' is not an identifier "
              "([A-Za-z_][A-Za-z0-9_]*)");
        CHECK(error_of(guest("[[guest_contract.functions]]\nname = \"\"\n")) ==
              "api.toml:5:8: function name '' is not an identifier ([A-Za-z_][A-Za-z0-9_]*)");
    }
    SECTION("type names cannot take a built-in's name") {
        CHECK(error_of(
                  "[[types]]\nname = \"Buffer\"\nfields = [{ name = \"x\", type = \"u8\" }]\n") ==
              "api.toml:2:8: type name 'Buffer' is a built-in type");
        CHECK(error_of("[[enum]]\nname = \"u8\"\nrepr = \"u8\"\nvariants = []\n") ==
              "api.toml:2:8: enum name 'u8' is a built-in type");
    }
    SECTION("the predicates") {
        STATIC_REQUIRE(polyplug::is_identifier_syntax("_x9"));
        STATIC_REQUIRE_FALSE(polyplug::is_identifier_syntax("9x"));
        STATIC_REQUIRE_FALSE(polyplug::is_identifier_syntax("a.b"));
        STATIC_REQUIRE(polyplug::is_reserved_word("self"));      // Rust
        STATIC_REQUIRE(polyplug::is_reserved_word("nil"));       // Lua
        STATIC_REQUIRE(polyplug::is_reserved_word("co_await"));  // C++
        STATIC_REQUIRE_FALSE(polyplug::is_reserved_word("count"));
        STATIC_REQUIRE_FALSE(polyplug::is_reserved_word("Class"));  // case matters
    }
}

TEST_CASE("contract_file - duplicates are refused where the second one is declared",
          "[contract_file]") {
    CHECK(error_of(guest(R"([[guest_contract.functions]]
name = "add"
[[guest_contract.functions]]
name = "sub"
[[guest_contract.functions]]
name = "add"
)")) == "api.toml:9:8: duplicate function name 'add' in guest contract 'test.c' (first at line 4)");
    CHECK(error_of(guest(
              "[[guest_contract.functions]]\nname = \"f\"\n"
              "params = [{ name = \"a\", type = \"u8\" }, { name = \"a\", type = \"u16\" }]\n")) ==
          "api.toml:6:49: duplicate parameter name 'a' in function 'f' (first at line 6)");
    CHECK(error_of("[[types]]\nname = \"T\"\nfields = [\n  { name = \"x\", type = \"u8\" },\n"
                   "  { name = \"x\", type = \"u8\" },\n]\n") ==
          "api.toml:5:12: duplicate field name 'x' in type 'T' (first at line 4)");
    CHECK(
        error_of(
            "[[types]]\nname = \"Mode\"\nfields = [{ name = \"x\", type = \"u8\" }]\n"
            "[[enum]]\nname = \"Mode\"\nrepr = \"u8\"\nvariants = [{name = \"A\", value = 1}]\n") ==
        "api.toml:5:8: enum name 'Mode' is already declared at line 2");
    CHECK(error_of("[[guest_contract]]\nname = \"calc\"\nversion = \"1.0\"\n"
                   "[[guest_contract]]\nname = \"calc\"\nversion = \"1.5\"\n") ==
          "api.toml:5:8: guest contract 'calc' with major version 1 is already declared at line 1");
    // A guest and a host contract never share an id, even with the same name.
    const contract_file both = parsed(
        "[[guest_contract]]\nname = \"host.x\"\nversion = \"1\"\n"
        "[[host_contract]]\nname = \"host.x\"\nversion = \"1\"\n");
    CHECK(both.guest_contracts[0].id != both.host_contracts[0].id);
}

TEST_CASE("contract_file - contract names and versions are checked", "[contract_file]") {
    CHECK(error_of("[[host_contract]]\nname = \"logger\"\nversion = \"1\"\n") ==
          "api.toml:2:8: host contract name 'logger' must start with 'host.' (like "
          "'host.logger')");
    CHECK(error_of("[[host_contract]]\nname = \"host.\"\nversion = \"1\"\n") ==
          "api.toml:2:8: host contract name 'host.' is not dot-separated identifiers (like "
          "'pipeline.Decoder')");
    CHECK(error_of("[[host_contract]]\nname = \"host\"\nversion = \"1\"\n") ==
          "api.toml:2:8: host contract name 'host' must start with 'host.' (like 'host.host')");
    CHECK(error_of("[[guest_contract]]\nname = \"image..decode\"\nversion = \"1\"\n") ==
          "api.toml:2:8: guest contract name 'image..decode' is not dot-separated identifiers "
          "(like 'pipeline.Decoder')");
    CHECK(error_of("[[guest_contract]]\nversion = \"1\"\n") ==
          "api.toml:1:1: [[guest_contract]] has no 'name'");
    CHECK(error_of("[[guest_contract]]\nname = \"calc\"\n") ==
          "api.toml:1:1: guest contract 'calc' has no 'version'");
    CHECK(error_of("[[guest_contract]]\nname = \"calc\"\nversion = 1\n") ==
          "api.toml:3:11: key 'version' of guest contract 'calc' must be a string, found an "
          "integer");

    const auto version_error = [](std::string_view version) {
        return error_of("[[guest_contract]]\nname = \"calc\"\nversion = \"" + std::string(version) +
                        "\"\n");
    };
    const std::string prefix = "api.toml:3:11: bad version '";
    CHECK(version_error("1.65536") ==
          prefix + "1.65536' of guest contract 'calc': minor version 65536 is above 65535");
    CHECK(version_error("1.0.65536") ==
          prefix + "1.0.65536' of guest contract 'calc': patch version 65536 is above 65535");
    CHECK(version_error("1.2.3.4") ==
          prefix + "1.2.3.4' of guest contract 'calc': more than three components");
    CHECK(version_error("1..2") == prefix + "1..2' of guest contract 'calc': an empty component");
    CHECK(version_error("") == prefix + "' of guest contract 'calc': an empty component");
    CHECK(version_error("^1.2") == prefix +
                                       "^1.2' of guest contract 'calc': write "
                                       "\"major[.minor[.patch]]\" with decimal digits");
    CHECK(version_error("4294967296") ==
          prefix + "4294967296' of guest contract 'calc': a component above 4294967295");

    const contract_file file =
        parsed("[[guest_contract]]\nname = \"calc\"\nversion = \"3.65535.65535\"\n");
    CHECK(file.guest_contracts[0].version == polyplug::version{3, 65535, 65535});
}

TEST_CASE("contract_file - structs are checked", "[contract_file]") {
    CHECK(error_of(lines(R"(
[[types]]
name = "A"
fields = [{ name = "b", type = "B" }]
[[types]]
name = "B"
fields = [{ name = "c", type = "C" }]
[[types]]
name = "C"
fields = [{ name = "a", type = "A" }]
)")) == "api.toml:9:11: type 'A' contains itself by value (A -> B -> C -> A); hold it "
        "through Array<T> or Ptr instead");
    CHECK(
        error_of("[[types]]\nname = \"Node\"\nfields = [{ name = \"next\", type = \"Node\" }]\n") ==
        "api.toml:3:11: type 'Node' contains itself by value (Node -> Node); hold it through "
        "Array<T> or Ptr instead");
    CHECK(error_of("[[types]]\nname = \"T\"\nfields = []\n") ==
          "api.toml:1:1: type 'T' has no fields");
    CHECK(error_of("[[types]]\nname = \"T\"\n") == "api.toml:1:1: type 'T' has no 'fields'");
    CHECK(error_of("[[types]]\nname = \"T\"\nfields = [{ name = \"x\" }]\n") ==
          "api.toml:3:11: field 'x' has no 'type'");
    CHECK(error_of("[[types]]\nname = \"T\"\nfields = [{ type = \"u8\" }]\n") ==
          "api.toml:3:11: a field of type 'T' has no 'name'");
    CHECK(error_of("[[types]]\nname = 5\nfields = []\n") ==
          "api.toml:2:8: key 'name' of [[types]] must be a string, found an integer");
}

TEST_CASE("contract_file - huge or deeply nested structs are handled", "[contract_file]") {
    // Each struct holds the previous one 16 times: S0 is 8 bytes, S8 is 2^35.
    std::string nested = "[[types]]\nname = \"S0\"\nfields = [{ name = \"v\", type = \"u64\" }]\n";
    for (int i = 1; i <= 8; ++i) {
        nested += "[[types]]\nname = \"S" + std::to_string(i) + "\"\nfields = [";
        for (int j = 0; j < 16; ++j) {
            nested += "{ name = \"f" + std::to_string(j) + "\", type = \"S" +
                      std::to_string(i - 1) + "\" },";
        }
        nested += "]\n";
    }
    // S7 is 2^31 bytes: the first one over the limit; 3 lines per struct.
    CHECK(error_of(nested) == "api.toml:22:1: type 'S7' is larger than 2 GiB");

    // A chain of thousands of structs, each holding the next: laid out without deep recursion.
    std::string chain;
    constexpr int length = 5000;
    for (int i = 0; i < length; ++i) {
        chain += "[[types]]\nname = \"C" + std::to_string(i) +
                 "\"\nfields = [{ name = \"v\", type = \"" +
                 (i + 1 < length ? "C" + std::to_string(i + 1) : std::string("u16")) + "\" }]\n";
    }
    const contract_file file = parsed(chain);
    CHECK(file.structs.front().layout.size == 2);
    CHECK(file.structs.front().layout.align == 2);
}

TEST_CASE("contract_file - keys, tables and brackets nested too deeply are refused",
          "[contract_file]") {
    // toml++ walks and frees the tables of dotted keys and headers recursively: 100,000
    // segments overflowed the stack before the pre-scan (the contract file limit is 4 MiB).
    const auto chain = [](std::size_t segments) {
        std::string out = "a";
        for (std::size_t i = 1; i < segments; ++i) out += ".a";
        return out;
    };
    const std::string problem =
        ": keys, tables and arrays nested deeper than 64 levels (each segment of a dotted key or "
        "table header and each '[' or '{' counts one)";
    for (const std::size_t segments : {std::size_t{65}, std::size_t{100'000}}) {
        CAPTURE(segments);
        // The 65th level starts at the 64th dot.
        CHECK(error_of(chain(segments) + " = 1\n") == "api.toml:1:128" + problem);
        CHECK(error_of("[" + chain(segments) + "]\n") == "api.toml:1:129" + problem);
        CHECK(error_of("[[" + chain(segments) + "]]\n") == "api.toml:1:130" + problem);
        CHECK(error_of("x = 1\n[" + chain(segments) + "]\n= oops\n") == "api.toml:2:129" + problem);
    }
    // Brackets count too, well before toml++'s own bound of 256.
    CHECK(error_of("x = " + std::string(100'000, '[') + std::string(100'000, ']') + "\n") ==
          "api.toml:1:68" + problem);
    // Levels add up across a header, a dotted key and an inline table; strings and comments
    // hold no levels.
    const std::string deep_header = "[[guest_contract." + chain(60) + "]]\n";
    CHECK(error_of(deep_header + "x.y = { z = 1 }\n") == "api.toml:2:9" + problem);
    const contract_file quiet =
        parsed(guest("docs = \"" + chain(100) + "\"  # [" + chain(100) + "]\n"));
    CHECK(quiet.guest_contracts.at(0).docs == chain(100));
    // 64 levels reach toml++ and the usual checks.
    CHECK_THAT(error_of(chain(64) + " = 1\n"),
               StartsWith("api.toml:1:1: unknown top-level key 'a'"));
}

TEST_CASE("contract_file - docs and langs are accepted but must be well-formed",
          "[contract_file]") {
    const contract_file file = parsed(guest(R"(docs = "calc"
langs.rust.attributes = { derive = ["Debug"] }
[[guest_contract.functions]]
name = "f"
docs = "does f"
langs.cpp.attributes = ["nodiscard"]
params = [{ name = "x", type = "u8", docs = "the x", langs = { lua = { attributes = {} } } }]
return = { type = "u8", docs = "the result" }
)"));
    CHECK(file.guest_contracts[0].docs == "calc");
    CHECK(file.guest_contracts[0].functions[0].docs == "does f");
    CHECK(file.guest_contracts[0].functions[0].args.fields[0].docs == "the x");
    CHECK(error_of(guest("docs = 3\n")) ==
          "api.toml:4:8: key 'docs' of guest contract 'test.c' must be a string, found an integer");
    CHECK(error_of(guest("langs = \"cpp\"\n")) ==
          "api.toml:4:9: key 'langs' of guest contract 'test.c' must be a table of languages, "
          "found a string");
    CHECK(error_of(guest("langs.cpp = 1\n")) ==
          "api.toml:4:13: key 'langs.cpp' of guest contract 'test.c' must be a table, found an "
          "integer");
    CHECK(error_of(guest("langs.cpp.atributes = {}\n")) ==
          "api.toml:4:11: unknown key 'atributes' in langs.cpp of guest contract 'test.c' (did "
          "you mean 'attributes'?)");
}

TEST_CASE("contract_file - syntax errors carry their position", "[contract_file]") {
    const std::string message = error_of("[[types]]\nname = \"T\"\nfields = [\n");
    CHECK_THAT(message, StartsWith("api.toml:3:"));
    CHECK_THAT(message, Contains("TOML syntax error"));
    CHECK_THAT(error_of("a = 1\na = 2\n"), StartsWith("api.toml:2:"));
}

TEST_CASE("contract_file - the output is left untouched on failure", "[contract_file]") {
    contract_file file = parsed(example);
    const polyplug::status result = polyplug::parse_contract_file(
        guest("[[guest_contract.functions]]\nname = \"for\"\n"), "api.toml", file);
    REQUIRE_FALSE(result.ok());
    CHECK(file.guest_contracts.size() == 1);
    CHECK(file.guest_contracts[0].name == "pipeline.Decoder");
    CHECK(file.structs.size() == 2);
}

TEST_CASE("contract_file - throwing forms throw polyplug::error with the message",
          "[contract_file]") {
    CHECK(polyplug::parse_contract_file(example, "api.toml").guest_contracts.size() == 1);
    try {
        (void)polyplug::parse_contract_file("typs = 1\n", "x/api.toml");
        FAIL("parse_contract_file did not throw");
    } catch (const polyplug::error& e) {
        CHECK(e.code() == errc::contract_file_invalid);
        CHECK_THAT(e.what(), StartsWith("x/api.toml:1:1: unknown top-level key 'typs'"));
    }
}

TEST_CASE("contract_file - read_contract_file reads a path and names it in messages",
          "[contract_file]") {
    const test_support::temp_dir dir;
    const std::filesystem::path good = dir.path() / "api.toml";
    test_support::write_file(good, example);
    contract_file file;
    const polyplug::status read = polyplug::read_contract_file(good, file);
    INFO(read.message());
    REQUIRE(read.ok());
    CHECK(file.source == good.string());
    CHECK(file.guest_contracts[0].functions.size() == 4);
    CHECK(polyplug::read_contract_file(good).host_contracts.size() == 2);

    const std::filesystem::path bad = dir.path() / "bad.toml";
    test_support::write_file(
        bad, "[[types]]\nname = \"T\"\nfields = [{ name = \"s\", type = \"Strng\" }]\n");
    const polyplug::status unknown = polyplug::read_contract_file(bad, file);
    CHECK(unknown.message() == bad.string() +
                                   ":3:32: unknown type 'Strng' in field 's' of type 'T' (did you "
                                   "mean 'StringView'?)");
    CHECK(file.source == good.string());  // untouched

    const polyplug::status missing = polyplug::read_contract_file(dir.path() / "none.toml", file);
    CHECK(missing.code() == errc::contract_file_invalid);
    CHECK(missing.message() == (dir.path() / "none.toml").string() + ": no such file");
    CHECK(polyplug::read_contract_file(dir.path(), file).message() ==
          dir.path().string() + ": not a regular file");
    CHECK_THROWS_AS(polyplug::read_contract_file(dir.path() / "none.toml"), polyplug::error);

    const std::filesystem::path huge = dir.path() / "huge.toml";
    test_support::write_file(huge, std::string(polyplug::max_contract_file_bytes + 1, '#'));
    CHECK_THAT(polyplug::read_contract_file(huge, file).message(), Contains("-byte limit"));
    CHECK_THAT(polyplug::parse_contract_file(
                   std::string(polyplug::max_contract_file_bytes + 1, ' '), "big.toml", file)
                   .message(),
               StartsWith("big.toml: the contract file is"));
}

TEST_CASE("contract_file - the loaders' shared read parses one text once and an edit again",
          "[contract_file]") {
    const test_support::temp_dir dir;
    const std::filesystem::path path = dir.path() / "api.toml";
    test_support::write_file(path, example);
    std::shared_ptr<const contract_file> first;
    REQUIRE(polyplug::detail::read_shared_contract_file(path, first).ok());
    REQUIRE(first != nullptr);
    CHECK(first->source == path.string());
    CHECK(first->guest_contracts[0].functions.size() == 4);
    std::shared_ptr<const contract_file> again;
    REQUIRE(polyplug::detail::read_shared_contract_file(path, again).ok());
    CHECK(again == first);  // the same immutable object: no second parse

    // Other bytes of the same length: parsed again, never served from the memo; what an earlier
    // version holds is left alone.
    std::string edited(example);
    const std::size_t at = edited.find("Decoder");
    REQUIRE(at != std::string::npos);
    edited.replace(at, 7, "Decodex");
    test_support::write_file(path, edited);
    std::shared_ptr<const contract_file> changed;
    REQUIRE(polyplug::detail::read_shared_contract_file(path, changed).ok());
    CHECK(changed != first);
    CHECK(changed->guest_contracts[0].name != first->guest_contracts[0].name);

    // A file turned bad: the read's error, and the caller's result untouched.
    test_support::write_file(path, "typs = 1\n");
    std::shared_ptr<const contract_file> held = changed;
    const polyplug::status bad = polyplug::detail::read_shared_contract_file(path, held);
    CHECK(bad.code() == errc::contract_file_invalid);
    CHECK_THAT(bad.message(), StartsWith(path.string() + ":1:1: unknown top-level key 'typs'"));
    CHECK(held == changed);
    std::filesystem::remove(path);
    CHECK(polyplug::detail::read_shared_contract_file(path, held).message() ==
          path.string() + ": no such file");
    CHECK(held == changed);
}

TEST_CASE("contract_description - enums, structs in dependency order, both sides",
          "[contract_file]") {
    // Outer uses Inner before Inner is declared: the description puts Inner first, so a reader
    // can build each struct from structs it already has.
    const contract_file file = parsed(lines(R"(
[[types]]
name = "Outer"
fields = [{ name = "inner", type = "Inner" }, { name = "many", type = "Array<Inner>" }]

[[types]]
name = "Inner"
fields = [{ name = "mode", type = "Mode" }, { name = "text", type = "StringView" }]

[[enum]]
name = "Mode"
repr = "u16"
variants = [{ name = "Off", value = 0 }, { name = "On", value = 2 }]

[[enum]]
name = "Flags"
repr = "u64"
bitflag = true
variants = [{ name = "High", value = "1 << 63" }]

[[guest_contract]]
name = "test.outer"
version = "1"

[[guest_contract.functions]]
name = "get"

[[guest_contract.functions]]
name = "put"
params = [{ name = "value", type = "Outer" }, { name = "flags", type = "Flags" }]
return = "Buffer"

[[host_contract]]
name = "host.test.sink"
version = "3.1"
singleton = true

[[host_contract.functions]]
name = "push"
params = [{ name = "data", type = "Ptr" }]
)"));
    const std::string expected =
        "polyplug-contracts 1\n"
        "enum Mode u16 0 2\nvariant Off 0x0000000000000000\nvariant On 0x0000000000000002\n"
        "enum Flags u64 1 1\nvariant High 0x8000000000000000\n"
        "struct Inner 24 8 2\nfield mode Mode 0\nfield text StringView 8\n"
        "struct Outer 40 8 2\nfield inner Inner 0\nfield many Array<Inner> 24\n"
        "contract guest test.outer 1 0 0 " +
        polyplug::detail::description_writer::hex(polyplug::guest_contract_id("test.outer", 1)) +
        " 0 2\n"
        "function get 0 0 1 Void 0\n"
        "function put 1 48 8 Buffer 2\nparam value Outer 0\nparam flags Flags 40\n"
        "contract host host.test.sink 3 1 0 " +
        polyplug::detail::description_writer::hex(polyplug::host_contract_id("host.test.sink", 3)) +
        " 1 1\n"
        "function push 0 8 8 Void 1\nparam data Ptr 0\n";
    CHECK(polyplug::describe_contracts(file) == expected);
}

TEST_CASE("contract_file - every independent problem in one list, the first as the result",
          "[contract_file]") {
    const std::string text = lines(R"(
[[types]]
name = "Point"
fields = [{ name = "x", type = "f32" }, { name = "y", type = "Flaot" }]

[[guest_contract]]
name = "demo.Calc"
version = "1.x"

[[guest_contract.functions]]
name = "add"
params = [{ name = "a", type = "i32" }, { name = "b", type = "Strng" }]
return = "Point"

[[guest_contract.functions]]
name = "add"
)");
    contract_file file;
    file.source = "untouched";
    std::vector<polyplug::status> problems{polyplug::status{errc::contract_file_invalid, "stale"}};
    const polyplug::status first = polyplug::parse_contract_file(text, "api.toml", file, problems);
    REQUIRE(problems.size() == 4);
    CHECK_THAT(problems[0].message(),
               StartsWith("api.toml:3:") && Contains("unknown type 'Flaot'"));
    CHECK_THAT(problems[1].message(), StartsWith("api.toml:7:11: bad version '1.x'"));
    CHECK_THAT(problems[2].message(), StartsWith("api.toml:11:") && Contains("'Strng'"));
    CHECK_THAT(problems[3].message(), StartsWith("api.toml:15:8: duplicate function name 'add'") &&
                                          Contains("(first at line 9)"));
    for (const polyplug::status& p : problems) CHECK(p.code() == errc::contract_file_invalid);
    CHECK(first.message() == problems[0].message());
    CHECK(error_of(text) == problems[0].message());
    CHECK(file.source == "untouched");

    SECTION("a refused type name is declared all the same: its uses are not unknown types") {
        const std::string reserved =
            "[[types]]\nname = \"int\"\nfields = [{ name = \"v\", "
            "type = \"i32\" }]\n" +
            guest(
                "[[guest_contract.functions]]\nname = \"f\"\n"
                "params = [{ name = \"a\", type = \"int\" }]\n");
        (void)polyplug::parse_contract_file(reserved, "api.toml", file, problems);
        REQUIRE(problems.size() == 1);
        CHECK_THAT(problems[0].message(), Contains("type name 'int' is a reserved word"));
    }
    SECTION("a TOML syntax error is the only problem") {
        (void)polyplug::parse_contract_file(text + "[[guest_contract]\n", "api.toml", file,
                                            problems);
        REQUIRE(problems.size() == 1);
        CHECK_THAT(problems[0].message(), StartsWith("api.toml:16:") && Contains("TOML syntax"));
    }
    SECTION("a good file leaves the list empty") {
        CHECK(polyplug::parse_contract_file(guest(""), "api.toml", file, problems).ok());
        CHECK(problems.empty());
        CHECK(file.guest_contracts.size() == 1);
    }
    SECTION("read_contract_file lists them too, and a missing file as one problem") {
        const std::filesystem::path missing =
            std::filesystem::temp_directory_path() / "polyplug-no-such.api.toml";
        CHECK_FALSE(polyplug::read_contract_file(missing, file, problems).ok());
        REQUIRE(problems.size() == 1);
        CHECK_THAT(problems[0].message(), Contains("no such file"));
    }
}
