// SPDX-License-Identifier: MIT
/// @file vm_fixtures.hpp
/// What the script loaders' suites (lua/, python/, js/) share, written once: the C side of the
/// types their kitchen contract files have in common, string views, one guest instance called
/// by function name, script bundles written into temporary directories, and the checks every
/// engine makes the same way (the contract file's layouts, what describe() does to a record,
/// the log record a script wrote, reloads seen through a cached interface pointer, one VM per
/// bundle). Each engine's file keeps what only its language does.
#pragma once

#include "../support.hpp"

#include <polyplug/call.h>
#include <polyplug/call_arena.h>
#include <polyplug/contract_file.hpp>
#include <polyplug/runtime.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <fstream>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace vm_fixtures {

namespace fs = std::filesystem;

// ---- the C side of the kitchen contract files -------------------------------------------------
// The Python and JavaScript kitchens declare the same Point, Inner, Mixed and Record; the Lua
// kitchen shares Point, Inner and the `mix` arguments and has its own Mixed and Record. Each
// suite checks these against the layouts its contract file computes (check_kitchen_layouts).

template <class T>
struct array_of {
    const T* items;
    std::size_t len;
};
/// The argument struct of a one-parameter function.
template <class T>
struct one {
    T v;
};
struct point {
    std::int32_t x;
    std::int32_t y;
};
struct inner {
    std::uint8_t a;
    std::uint32_t b;
    std::uint8_t c;
};
/// Mixed of the Python and JavaScript kitchens: padding after tag and at the end.
struct mixed {
    std::uint8_t tag;
    double value;
    std::uint16_t small;
};
/// Record of the Python and JavaScript kitchens.
struct record {
    bool flag;
    inner in;
    StringView label;
    array_of<point> points;
    std::uint16_t color;
    Buffer payload;
    void* opaque;
    std::int16_t half;
};
/// `mix(a: i8, b: u16, c: i32, d: u64, e: f32, f: f64, g: bool, h: Color)` of every kitchen:
/// padding between nearly every pair of parameters.
struct mix_args {
    std::int8_t a;
    std::uint16_t b;
    std::int32_t c;
    std::uint64_t d;
    float e;
    double f;
    bool g;
    std::uint16_t h;
};
/// `scale(m: Mixed, by: u8)` of the Python and JavaScript kitchens.
struct scale_args {
    mixed m;
    std::uint8_t by;
};
/// Two i32 parameters: `add(a, b)`, `divide(a, b)`, a host contract's `sum(a, b)`.
struct pair_args {
    std::int32_t a;
    std::int32_t b;
};
/// `log(level: u32, message: StringView)` of the Python and JavaScript kitchens.
struct log_args {
    std::uint32_t level;
    StringView message;
};

static_assert(sizeof(mixed) == 24 && sizeof(record) == 96, "the C layout the contract files have");

/// The layouts the `mix` function's arguments have in a kitchen contract (`kitchen`).
inline void check_mix_layout(const polyplug::contract_decl& kitchen) {
    const polyplug::function_decl* mix = kitchen.find_function("mix");
    REQUIRE(mix != nullptr);
    CHECK(mix->args.size == sizeof(mix_args));
    CHECK(mix->args.fields[3].offset == offsetof(mix_args, d));
    CHECK(mix->args.fields[4].offset == offsetof(mix_args, e));
    CHECK(mix->args.fields[7].offset == offsetof(mix_args, h));
}

/// The Python and JavaScript kitchens' structs are the ones above, field for field.
inline void check_kitchen_layouts(const polyplug::contract_file& api) {
    const auto layout = [&](std::string_view name) { return api.find_struct(name)->layout; };
    CHECK(layout("Mixed").size == sizeof(mixed));
    CHECK(layout("Mixed").fields[1].offset == offsetof(mixed, value));
    CHECK(layout("Mixed").fields[2].offset == offsetof(mixed, small));
    CHECK(layout("Inner").size == sizeof(inner));
    CHECK(layout("Inner").fields[2].offset == offsetof(inner, c));
    const polyplug::record_layout r = layout("Record");
    CHECK(r.size == sizeof(record));
    CHECK(r.fields[1].offset == offsetof(record, in));
    CHECK(r.fields[2].offset == offsetof(record, label));
    CHECK(r.fields[3].offset == offsetof(record, points));
    CHECK(r.fields[4].offset == offsetof(record, color));
    CHECK(r.fields[5].offset == offsetof(record, payload));
    CHECK(r.fields[6].offset == offsetof(record, opaque));
    CHECK(r.fields[7].offset == offsetof(record, half));
    const polyplug::contract_decl& kitchen = api.guest_contracts.at(0);
    check_mix_layout(kitchen);
    CHECK(kitchen.find_function("scale")->args.fields[1].offset == offsetof(scale_args, by));
}

/// What describe(r) of the Python and JavaScript kitchens both do to a record `in`: the flag
/// negated, inner's a and c swapped, each point's x and y swapped (into memory aligned for a
/// Point), the same opaque pointer, half negated; and both turn the colour the tests give them
/// into Blue (256). The rest (label, inner.b, extra points, payload) each script does its way.
inline void check_described_record(const record& in, const record& out) {
    CHECK(out.flag == !in.flag);
    CHECK(out.in.a == in.in.c);
    CHECK(out.in.c == in.in.a);
    REQUIRE(out.points.len >= in.points.len);
    for (std::size_t i = 0; i < in.points.len; ++i) {
        CHECK(out.points.items[i].x == in.points.items[i].y);
        CHECK(out.points.items[i].y == in.points.items[i].x);
    }
    CHECK(reinterpret_cast<std::uintptr_t>(out.points.items) % alignof(point) == 0);
    CHECK(out.color == 256);
    CHECK(out.opaque == in.opaque);
    CHECK(out.half == -in.half);
}

// ---- strings ------------------------------------------------------------------------------------

inline StringView sv(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}
/// A copy of the bytes (an empty view may have a null pointer).
inline std::string str(StringView view) {
    return view.len == 0 ? std::string()
                         : std::string(reinterpret_cast<const char*>(view.ptr), view.len);
}
inline std::string str(const Buffer& buffer) {
    return buffer.len == 0 ? std::string()
                           : std::string(reinterpret_cast<const char*>(buffer.ptr), buffer.len);
}
inline std::string message_of(const AbiError& err) {
    return str(err.message);
}

/// The 1-based number of the first line of `file` containing `needle`, so that an expected
/// "file:line" survives edits to the script above it.
inline int line_of(const fs::path& file, std::string_view needle) {
    std::ifstream in(file);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n)
        if (line.find(needle) != std::string::npos) return n;
    FAIL("no line with " << needle << " in " << file);
    return 0;
}

// ---- calling a guest contract -------------------------------------------------------------------

/// What a call returned: the code and a copy of the (borrowed) message.
struct outcome {
    std::uint32_t code = AbiErrorCode_Ok;
    std::string message;
    [[nodiscard]] bool ok() const { return code == AbiErrorCode_Ok; }
};

/// An argument struct given by reference; a pointer to one goes to guest::call's other overload
/// (deduced here, it would be taken for the struct itself).
template <class T>
concept argument_struct = !std::is_pointer_v<T> && !std::is_null_pointer_v<T>;

/// One instance of a guest contract a runtime serves, called by function name through the C ABI.
/// Results land in an arena reset before every call and stay valid until the next one.
class guest {
public:
    /// Small on purpose: bigger results take the arena's overflow blocks.
    static constexpr std::size_t arena_bytes = 512;

    template <class Runtime>
    guest(Runtime& rt, const polyplug::contract_decl& decl)
        : host_(rt.host_api()), decl_(&decl), storage_(arena_bytes) {
        start(rt.resolve(rt.find(decl.id)));
    }
    /// Reads the contract file `api_file` and takes its guest contract named `contract`.
    template <class Runtime>
    guest(Runtime& rt, const fs::path& api_file, std::string_view contract)
        : host_(rt.host_api()), storage_(arena_bytes) {
        REQUIRE(polyplug::read_contract_file(api_file, api_).ok());
        for (const auto& c : api_.guest_contracts)
            if (c.name == contract) decl_ = &c;
        REQUIRE(decl_ != nullptr);
        start(rt.resolve(rt.find(decl_->id)));
    }
    ~guest() {
        polyplug_arena_free(&arena_);
        if (instance_.data != nullptr) host_->destroy_guest_instance(host_, iface_, instance_);
    }
    guest(const guest&) = delete;
    guest& operator=(const guest&) = delete;

    [[nodiscard]] std::uint32_t id(std::string_view fn) const {
        const polyplug::function_decl* f = decl_->find_function(fn);
        REQUIRE(f != nullptr);
        return f->id;
    }

    /// Calls `fn` on `on` (another instance, or the default one: {nullptr, contract id}).
    outcome invoke(GuestContractInstance on, std::string_view fn, const void* args, void* out,
                   bool use_arena = true) {
        const std::uint32_t fn_id = id(fn);
        polyplug_arena_reset(&arena_);
        const AbiError err =
            polyplug_call_guest(iface_, on, fn_id, args, out, use_arena ? &arena_ : nullptr);
        message = message_of(err);
        return {err.code, message};
    }
    outcome call(std::string_view fn, const void* args, void* out, bool use_arena = true) {
        return invoke(instance_, fn, args, out, use_arena);
    }
    /// The argument struct and the result by reference.
    template <argument_struct Args, class Out>
    outcome call(std::string_view fn, const Args& args, Out& out) {
        return invoke(instance_, fn, &args, &out);
    }
    template <class Out>
    outcome call0(std::string_view fn, Out& out) {
        return invoke(instance_, fn, nullptr, &out);
    }

    /// The result of a call that must succeed.
    template <class R, class A>
    R get(std::string_view fn, const A& args) {
        R out{};
        const outcome r = invoke(instance_, fn, &args, &out);
        INFO(fn << ": " << r.message);
        REQUIRE(r.ok());
        return out;
    }
    template <class R>
    R get(std::string_view fn) {
        R out{};
        const outcome r = invoke(instance_, fn, nullptr, &out);
        INFO(fn << ": " << r.message);
        REQUIRE(r.ok());
        return out;
    }
    /// `fn(v)` of a one-parameter function returning its parameter's type; must succeed.
    template <class T>
    T echo(std::string_view fn, T v) {
        return get<T>(fn, one<T>{v});
    }
    /// `fn(v)` of a one-parameter function expected to fail.
    template <class T>
    outcome echo_fails(std::string_view fn, T v) {
        T out{};
        const one<T> args{v};
        return invoke(instance_, fn, &args, &out);
    }

    /// The message of a call that must fail with Panic.
    template <class A>
    std::string panic(std::string_view fn, const A* args) {
        alignas(16) unsigned char out[256] = {};
        const outcome r = invoke(instance_, fn, args, out);
        REQUIRE(r.code == AbiErrorCode_Panic);
        return r.message;
    }
    std::string panic(std::string_view fn) { return panic<int>(fn, nullptr); }

    /// Another instance of the same contract; the caller destroys it.
    GuestContractInstance new_instance() {
        GuestContractInstance made{nullptr, 0};
        host_->create_guest_instance(host_, iface_, nullptr, &made);
        REQUIRE(made.data != nullptr);
        return made;
    }

    [[nodiscard]] const HostApi* host() const noexcept { return host_; }
    [[nodiscard]] const GuestContractInterface* iface() const noexcept { return iface_; }
    [[nodiscard]] GuestContractInstance instance() const noexcept { return instance_; }

    /// The last call's message (empty when it succeeded).
    std::string message;

private:
    void start(const GuestContractInterface* iface) {
        iface_ = iface;
        REQUIRE(iface_ != nullptr);
        instance_ = new_instance();
        polyplug_arena_init(&arena_, storage_.data(), storage_.size(), host_);
    }

    const HostApi* host_;
    polyplug::contract_file api_;  // when the guest read the contract file itself
    const polyplug::contract_decl* decl_ = nullptr;
    const GuestContractInterface* iface_ = nullptr;
    GuestContractInstance instance_{nullptr, 0};
    std::vector<std::uint8_t> storage_;
    CallArena arena_{};
};

/// Calls `fn` (no parameters) on a new instance of `iface` without an arena, so that a result
/// needing memory comes from HostApi.alloc, and destroys the instance.
template <class R>
outcome call_on_new_instance(const HostApi* host, const GuestContractInterface* iface,
                             std::uint32_t fn, R& out) {
    GuestContractInstance instance{nullptr, 0};
    host->create_guest_instance(host, iface, nullptr, &instance);
    REQUIRE(instance.data != nullptr);
    const AbiError err = polyplug_call_guest(iface, instance, fn, nullptr, &out, nullptr);
    host->destroy_guest_instance(host, iface, instance);
    return {err.code, message_of(err)};
}

// ---- what a script wrote to the log -------------------------------------------------------------

/// A record `message` from the bundle `scope` reached the runtime's logger, at warn (the level
/// 2 every kitchen's log function is given).
inline void check_logged_warning(test_support::log_capture& logs, std::string_view message,
                                 std::string_view scope) {
    const std::lock_guard lock(logs.mutex);
    bool found = false;
    for (const auto& r : logs.records) {
        if (r.message != message) continue;
        found = true;
        CHECK(r.scope == scope);
        CHECK(r.level == polyplug::log_level::warn);
    }
    CHECK(found);
}

// ---- script bundles written into temporary directories ----------------------------------------

/// A contract file with one guest contract whose functions take nothing and return a type:
/// {name, return type} pairs, in id order.
inline std::string no_parameter_contract(
    const std::string& contract,
    std::initializer_list<std::pair<std::string_view, std::string_view>> functions) {
    std::string text = "[[guest_contract]]\nname = \"" + contract + "\"\nversion = \"1.0.0\"\n";
    for (const auto& [name, result] : functions) {
        text += "[[guest_contract.functions]]\nname = \"";
        text += name;
        text += "\"\nreturn = \"";
        text += result;
        text += "\"\n";
    }
    return text;
}

/// How an engine's temporary bundle is laid out.
struct script_bundle_shape {
    std::string loader;       // the manifest's loader
    std::string script_file;  // the manifest's file
    std::string api_file;     // the manifest's api
};

/// `<root>/<name>/`: manifest.toml (the id computed from `name`) providing `contract` version 1
/// with `function_count` functions, the contract file `api`, and the script.
inline fs::path write_script_bundle(const fs::path& root, const std::string& name,
                                    const script_bundle_shape& shape, const std::string& contract,
                                    int function_count, const std::string& api,
                                    const std::string& script) {
    const fs::path dir = root / name;
    test_support::write_file(dir / "manifest.toml",
                             "id = \"" + polyplug::format_id(polyplug::bundle_id(name)) +
                                 "\"\nname = \"" + name + "\"\nversion = \"1.0.0\"\nloader = \"" +
                                 shape.loader + "\"\nfile = \"" + shape.script_file +
                                 "\"\napi = \"" + shape.api_file + "\"\nprovides = [\"" + contract +
                                 "@1\"]\nfunction_count = { \"" + contract +
                                 "@1\" = " + std::to_string(function_count) + " }\n");
    test_support::write_file(dir / shape.api_file, api);
    test_support::write_file(dir / shape.script_file, script);
    return dir;
}

// ---- reloads, the same in every engine
// -----------------------------------------------------------

/// What check_reload_through_cached_interface needs from an engine's suite: a bundle of one
/// guest contract whose function 0, value() -> i32, returns a number chosen per version.
struct value_bundle_engine {
    std::string bundle_name;  // the manifest's name (the bundle's id is computed from it)
    std::string script_file;  // the script, relative to the bundle's directory
    std::uint64_t contract_id;
    /// Writes the bundle into `root` with `script`; returns its directory.
    std::function<fs::path(const fs::path& root, const std::string& script)> write;
    /// A script whose value() returns `value`.
    std::function<std::string(int value)> script;
    std::string script_that_does_not_compile;
    std::vector<std::string> compile_error_fragments;
    /// What a call on an instance of a replaced version fails with; empty for an engine that
    /// re-creates such an instance in the new version instead.
    std::string stale_instance_error;
};

/// value() on a new instance of `iface`, which must succeed; -1000 - the error code when not.
inline std::int32_t value_of(const HostApi* host, const GuestContractInterface* iface) {
    REQUIRE(iface != nullptr);
    std::int32_t out = -1;
    const outcome r = call_on_new_instance(host, iface, 0, out);
    INFO(r.message);
    CHECK(r.ok());
    return r.ok() ? out : -1000 - static_cast<std::int32_t>(r.code);
}

/// Reloads v1 -> v2 -> v1 -> v2: an interface pointer cached before them calls the new code each
/// time, with one VM open. A version that does not compile leaves the old one serving; an
/// instance of a replaced version is never run as the old object.
template <class Runtime, class Loader>
void check_reload_through_cached_interface(const value_bundle_engine& engine) {
    test_support::temp_dir dir;
    test_support::log_capture logs;
    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    options.log = logs.callback();
    options.log_max_level = polyplug::log_level::trace;
    Runtime rt(options);
    auto& loader = rt.template loader<Loader>();
    const HostApi* host = rt.host_api();
    const fs::path bundle = engine.write(dir.path(), engine.script(1));
    const auto rewrite = [&](const std::string& script) {
        test_support::write_file(bundle / engine.script_file, script);
    };
    rt.load_bundle(bundle);
    const GuestContractInterface* cached = rt.resolve(rt.find(engine.contract_id));
    REQUIRE(cached != nullptr);
    CHECK(value_of(host, cached) == 1);
    for (const int value : {2, 1, 2}) {
        rewrite(engine.script(value));
        rt.reload_bundle(bundle);
        CHECK(value_of(host, cached) == value);
        CHECK(value_of(host, rt.resolve(rt.find(engine.contract_id))) == value);
        CHECK(loader.open_vms() == 1);
    }

    SECTION("a new version that does not compile leaves the old one serving") {
        rewrite(engine.script_that_does_not_compile);
        std::error_code ec;
        rt.reload_bundle(bundle, ec);
        REQUIRE(ec);
        INFO(rt.last_error());
        for (const std::string& fragment : engine.compile_error_fragments)
            CHECK(rt.last_error().find(fragment) != std::string::npos);
        CHECK(value_of(host, cached) == 2);
        CHECK(loader.open_vms() == 1);
        rewrite(engine.script(3));
        rt.reload_bundle(bundle);
        CHECK(value_of(host, cached) == 3);
    }
    SECTION("an instance kept across the reload is not run as the old object") {
        GuestContractInstance old{nullptr, 0};
        host->create_guest_instance(host, cached, nullptr, &old);
        REQUIRE(old.data != nullptr);
        rewrite(engine.script(3));
        rt.reload_bundle(bundle);
        std::int32_t out = 0;
        const AbiError err = polyplug_call_guest(cached, old, 0, nullptr, &out, nullptr);
        if (engine.stale_instance_error.empty()) {
            CHECK(err.code == AbiErrorCode_Ok);
            CHECK(out == 3);
        } else {
            CHECK(err.code == AbiErrorCode_Panic);
            CHECK(message_of(err).find(engine.stale_instance_error) != std::string::npos);
        }
        CHECK(value_of(host, cached) == 3);
        host->destroy_guest_instance(host, cached, old);  // a refusing version ignores it
    }
    rt.unload_bundle(polyplug::bundle_id(engine.bundle_name));
    CHECK(loader.open_vms() == 0);
}

// ---- one VM per bundle
// ---------------------------------------------------------------------------

/// Each bundle loaded opens one VM of `Loader`, a reload replaces one (the count stays), and
/// each unload, last loaded first, closes one. `names` are the bundles' manifest names, in the
/// order of `bundles`; `rt` has hot reload on and none of its bundles loaded. `after_unload`,
/// when given, runs after each unload with the number of bundles still loaded, for a suite's
/// own checks on what is left.
template <class Loader, class Runtime>
void check_one_vm_per_bundle(Runtime& rt, const std::vector<fs::path>& bundles,
                             const std::vector<std::string>& names,
                             const std::function<void(std::size_t loaded)>& after_unload = {}) {
    REQUIRE(bundles.size() == names.size());
    auto& loader = rt.template loader<Loader>();
    CHECK(loader.open_vms() == 0);
    for (std::size_t i = 0; i < bundles.size(); ++i) {
        rt.load_bundle(bundles[i]);
        CHECK(loader.open_vms() == i + 1);
    }
    rt.reload_bundle(bundles.front());
    CHECK(loader.open_vms() == bundles.size());
    for (std::size_t i = bundles.size(); i-- > 0;) {
        rt.unload_bundle(polyplug::bundle_id(names[i]));
        CHECK(loader.open_vms() == i);
        if (after_unload) after_unload(i);
    }
}

}  // namespace vm_fixtures
