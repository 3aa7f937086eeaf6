// SPDX-License-Identifier: MIT
/// @file typed.cpp
/// The typed C++ API: contracts declared in C++ (contract.hpp), called through polyplug::client
/// (client.hpp) and implemented as plain classes (guest.hpp), against a real runtime; and the
/// agreement of a C++ declaration with the api.toml of the same contract.
#include "catch.hpp"
#include "support.hpp"

#include <polyplug/client.hpp>
#include <polyplug/contract.hpp>
#include <polyplug/contract_file.hpp>
#include <polyplug/guest.hpp>

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

using namespace test_support;
using polyplug::errc;
using polyplug::function;

namespace {

// ---- a contract using every type category ----------------------------------------------------

enum class color : std::uint16_t { red = 1, green = 2, blue = 0x100 };
struct point {
    std::int32_t x;
    std::int32_t y;
};
struct mixed {  // mixed alignments: padding after tag and after small
    std::uint8_t tag;
    double value;
    std::uint16_t small;
};

struct kitchen {
    static constexpr polyplug::guest_contract_name name{"test.typed.kitchen", 2, 3, 4};
    static constexpr function<0, std::int64_t(std::int8_t, std::uint16_t, std::int32_t,
                                              std::uint64_t, float, double, bool, color)>
        mix{"mix"};
    static constexpr function<1, std::string_view(std::string_view)> echo{"echo"};
    static constexpr function<2, std::uint64_t(std::span<const std::uint8_t>)> checksum{"checksum"};
    static constexpr function<3, point(std::span<const point>)> sum_points{"sum_points"};
    static constexpr function<4, mixed(mixed, color)> scale{"scale"};
    static constexpr function<5, void(void*)> poke{"poke"};
    static constexpr function<6, void(std::int32_t)> fail{"fail"};
    static constexpr function<7, std::span<const std::uint8_t>()> bytes{"bytes"};
    static constexpr function<8, std::uint32_t()> calls{"calls"};
    static constexpr std::tuple functions{mix,  echo, checksum, sum_points, scale,
                                          poke, fail, bytes,    calls};
};

// The same contract as an api.toml.
constexpr std::string_view kitchen_toml = R"(
[[types]]
name = "Point"
fields = [{ name = "x", type = "i32" }, { name = "y", type = "i32" }]

[[types]]
name = "Mixed"
fields = [{ name = "tag", type = "u8" }, { name = "value", type = "f64" },
          { name = "small", type = "u16" }]

[[enum]]
name = "Color"
repr = "u16"
variants = [{ name = "Red", value = 1 }, { name = "Green", value = 2 },
            { name = "Blue", value = "1 << 8" }]

[[guest_contract]]
name = "test.typed.kitchen"
version = "2.3.4"

[[guest_contract.functions]]
name = "mix"
params = [{ name = "a", type = "i8" }, { name = "b", type = "u16" }, { name = "c", type = "i32" },
          { name = "d", type = "u64" }, { name = "e", type = "f32" }, { name = "f", type = "f64" },
          { name = "g", type = "bool" }, { name = "h", type = "Color" }]
return = "i64"

[[guest_contract.functions]]
name = "echo"
params = [{ name = "text", type = "StringView" }]
return = "StringView"

[[guest_contract.functions]]
name = "checksum"
params = [{ name = "data", type = "Buffer" }]
return = "u64"

[[guest_contract.functions]]
name = "sum_points"
params = [{ name = "points", type = "Array<Point>" }]
return = "Point"

[[guest_contract.functions]]
name = "scale"
params = [{ name = "m", type = "Mixed" }, { name = "c", type = "Color" }]
return = "Mixed"

[[guest_contract.functions]]
name = "poke"
params = [{ name = "target", type = "Ptr" }]

[[guest_contract.functions]]
name = "fail"
params = [{ name = "how", type = "i32" }]

[[guest_contract.functions]]
name = "bytes"
return = "Buffer"

[[guest_contract.functions]]
name = "calls"
return = "u32"

[[host_contract]]
name = "host.test.typed.log"
version = "1.2"
singleton = true

[[host_contract.functions]]
name = "write"
params = [{ name = "level", type = "u32" }, { name = "text", type = "StringView" }]
return = "u64"
)";

// A plain class implementing it: no raw pointers, no AbiError.
class kitchen_impl {
public:
    std::int64_t mix(std::int8_t a, std::uint16_t b, std::int32_t c, std::uint64_t d, float e,
                     double f, bool g, color h) {
        ++calls_;
        return a + b + c + static_cast<std::int64_t>(d) + static_cast<std::int64_t>(e) +
               static_cast<std::int64_t>(f) + (g ? 1000 : 0) + static_cast<std::int64_t>(h);
    }
    std::string_view echo(std::string_view text) {
        ++calls_;
        last_ = "<" + std::string(text) + ">";  // the result must outlive the call: keep it here
        return last_;
    }
    std::uint64_t checksum(std::span<const std::uint8_t> data) const {
        std::uint64_t sum = 0;
        for (const std::uint8_t b : data) sum = sum * 31 + b;
        return sum;
    }
    point sum_points(std::span<const point> points) const {
        point total{0, 0};
        for (const point& p : points) total = {total.x + p.x, total.y + p.y};
        return total;
    }
    mixed scale(const mixed& m, color c) const noexcept {
        return {static_cast<std::uint8_t>(m.tag + 1), m.value * 2,
                static_cast<std::uint16_t>(m.small + static_cast<std::uint16_t>(c))};
    }
    void poke(void* target) { *static_cast<std::int32_t*>(target) = 42; }
    void fail(std::int32_t how) {
        if (how == 1) throw std::runtime_error("kitchen: on fire \xe2\x9c\x93");
        if (how == 2) throw 7;
        if (how == 3) throw std::runtime_error(std::string(300, 'x') + "\xe2\x9c\x93");
    }
    std::span<const std::uint8_t> bytes() const { return bytes_; }
    std::uint32_t calls() const { return calls_; }

private:
    std::uint32_t calls_ = 0;
    std::string last_;
    static constexpr std::uint8_t bytes_[] = {1, 0, 2, 0xFF};
};

using kitchen_plugin =
    polyplug::implementation<kitchen, kitchen_impl, &kitchen_impl::mix, &kitchen_impl::echo,
                             &kitchen_impl::checksum, &kitchen_impl::sum_points,
                             &kitchen_impl::scale, &kitchen_impl::poke, &kitchen_impl::fail,
                             &kitchen_impl::bytes, &kitchen_impl::calls>;

// ---- a host contract, and a guest contract that calls it --------------------------------------

struct log_contract {
    static constexpr polyplug::host_contract_name name{"host.test.typed.log", 1, 2, 0, true};
    static constexpr function<0, std::uint64_t(std::uint32_t, std::string_view)> write{"write"};
    static constexpr std::tuple functions{write};
};

struct memory_log {
    std::string text;
    std::uint64_t write(std::uint32_t level, std::string_view line) {
        if (level > 9) throw std::invalid_argument("log level out of range");
        text += std::to_string(level) + ":" + std::string(line) + ";";
        return text.size();
    }
};

struct greeter {
    static constexpr polyplug::guest_contract_name name{"test.typed.greeter", 1};
    static constexpr function<0, std::uint64_t(std::string_view)> greet{"greet"};
    static constexpr std::tuple functions{greet};
};

// A guest implementation calling the host contract typed: the client lives in the instance.
class greeter_impl {
public:
    explicit greeter_impl(const HostApi* host) : log_(host) {}
    std::uint64_t greet(std::string_view who) {
        return log_.call(log_contract::write, 3, "hello " + std::string(who));
    }

private:
    polyplug::client<log_contract> log_;
};
using greeter_plugin = polyplug::implementation<greeter, greeter_impl, &greeter_impl::greet>;

// The kitchen with one function more than its providers have.
struct kitchen_plus {
    static constexpr polyplug::guest_contract_name name = kitchen::name;
    static constexpr function<0, std::int64_t(std::int8_t, std::uint16_t, std::int32_t,
                                              std::uint64_t, float, double, bool, color)>
        mix{"mix"};
    static constexpr function<1, std::string_view(std::string_view)> echo{"echo"};
    static constexpr function<2, std::uint64_t(std::span<const std::uint8_t>)> checksum{"checksum"};
    static constexpr function<3, point(std::span<const point>)> sum_points{"sum_points"};
    static constexpr function<4, mixed(mixed, color)> scale{"scale"};
    static constexpr function<5, void(void*)> poke{"poke"};
    static constexpr function<6, void(std::int32_t)> fail{"fail"};
    static constexpr function<7, std::span<const std::uint8_t>()> bytes{"bytes"};
    static constexpr function<8, std::uint32_t()> calls{"calls"};
    static constexpr function<9, void()> added_later{"added_later"};
    static constexpr std::tuple functions{mix,  echo, checksum, sum_points, scale,
                                          poke, fail, bytes,    calls,      added_later};
};

// The log contract at a minor version the host does not offer.
struct log_v1_5 {
    static constexpr polyplug::host_contract_name name{"host.test.typed.log", 1, 5};
    static constexpr function<0, std::uint64_t(std::uint32_t, std::string_view)> write{"write"};
    static constexpr std::tuple functions{write};
};

// ---- compile-time facts -----------------------------------------------------------------------

static_assert(polyplug::contract_id_of<kitchen>() ==
              polyplug::guest_contract_id("test.typed.kitchen", 2));
static_assert(polyplug::contract_id_of<log_contract>() ==
              polyplug::host_contract_id("host.test.typed.log", 1));
static_assert(polyplug::function_count_of<kitchen>() == 9);
static_assert(polyplug::function_ids_in_order<kitchen>());
static_assert(std::is_same_v<decltype(kitchen::echo)::args_type, polyplug::c_args<StringView>>);
static_assert(std::is_same_v<decltype(kitchen::checksum)::args_type, polyplug::c_args<Buffer>>);
static_assert(
    std::is_same_v<decltype(kitchen::scale)::args_type, polyplug::c_args<mixed, std::uint16_t>>);
static_assert(std::is_same_v<decltype(kitchen::poke)::out_type, void>);
static_assert(sizeof(polyplug::abi_array<point>) == 16 && alignof(polyplug::abi_array<point>) == 8);
static_assert(sizeof(decltype(kitchen::mix)::args_type) == 40);

struct kitchen_fixture {
    temp_dir dir;
    polyplug::runtime rt;
    const HostApi* host = rt.host_api();
    scripted_loader* loader = add_scripted_loader(host);

    /// Loads a scripted bundle `bundle` whose init registers `Implementations`.
    template <class... Implementations>
    void load(const std::string& bundle, const std::string& provides) {
        loader->on_load = [&](const HostApi* h, const LoaderBundleInfo*, AbiError* err) {
            *err = polyplug::register_contracts<Implementations...>(h, bundle);
        };
        AbiError err{};
        load_or_fail(host, make_scripted_bundle(dir.path(), bundle, provides), err);
        loader->on_load = nullptr;
        REQUIRE(err.code == AbiErrorCode_Ok);
    }
};

// Instances still alive when their bundle is unloaded are never destroyed by the runtime (it
// warns; their destroy_instance is a stub by then). The tests that unload under a live client
// free those objects themselves so that leak checkers stay quiet.
struct instance_reaper {
    std::vector<void*> objects;
    ~instance_reaper() {
        for (void* object : objects) delete static_cast<kitchen_impl*>(object);
    }
};

const std::string kitchen_provides =
    "provides = [\"test.typed.kitchen@2\"]\nfunction_count = { \"test.typed.kitchen@2\" = 9 }\n";

}  // namespace

TEST_CASE("typed - every type category round-trips through a real runtime", "[typed]") {
    kitchen_fixture f;
    f.load<kitchen_plugin>("kitchen", kitchen_provides);
    polyplug::client<kitchen> c(f.rt);
    REQUIRE(c);
    CHECK(c.instance().contract_id == polyplug::contract_id_of<kitchen>());
    CHECK(c.instance().data != nullptr);  // the kitchen_impl object

    SECTION("integers, floats, bool and an enum: 8 parameters") {
        CHECK(c.call(kitchen::mix, -1, 2, 3, 4, 5.5f, 6.5, true, color::blue) ==
              -1 + 2 + 3 + 4 + 5 + 6 + 1000 + 0x100);
    }
    SECTION("strings: embedded NUL and non-ASCII UTF-8 survive, the result is a view") {
        using namespace std::string_view_literals;
        const std::string_view text = "a\0b \xc3\xa9t\xc3\xa9 \xf0\x9f\x90\x8d"sv;
        const std::string_view echoed = c.call(kitchen::echo, text);
        CHECK(echoed == "<" + std::string(text) + ">");
        CHECK(echoed.size() == text.size() + 2);
        CHECK(c.call(kitchen::echo, {}) == "<>");
    }
    SECTION("buffers: a span of bytes in, a span out") {
        const std::uint8_t data[] = {1, 2, 3, 0, 255};
        CHECK(c.call(kitchen::checksum, data) == (((1u * 31 + 2) * 31 + 3) * 31 + 0) * 31 + 255);
        CHECK(c.call(kitchen::checksum, {}) == 0);
        const std::span<const std::uint8_t> bytes = c.call(kitchen::bytes);
        CHECK(std::vector<std::uint8_t>(bytes.begin(), bytes.end()) ==
              std::vector<std::uint8_t>{1, 0, 2, 0xFF});
    }
    SECTION("arrays of structs and structs by value") {
        const point points[] = {{1, 2}, {10, 20}, {100, 200}};
        const point total = c.call(kitchen::sum_points, points);
        CHECK(total.x == 111);
        CHECK(total.y == 222);
        const mixed m = c.call(kitchen::scale, mixed{7, 1.25, 10}, color::green);
        CHECK(m.tag == 8);
        CHECK(m.value == 2.5);
        CHECK(m.small == 12);
    }
    SECTION("Ptr parameters and void results") {
        std::int32_t target = 0;
        c.call(kitchen::poke, &target);
        CHECK(target == 42);
        CHECK(c.try_call(kitchen::poke, &target).ok());
    }
    SECTION("the instance is one object per client") {
        (void)c.call(kitchen::echo, "x");
        (void)c.call(kitchen::echo, "y");
        CHECK(c.call(kitchen::calls) == 2);
        polyplug::client<kitchen> other(f.rt);
        CHECK(other.call(kitchen::calls) == 0);
        CHECK(other.instance().data != c.instance().data);
    }
}

TEST_CASE("typed - exceptions in the plugin become errors with their message", "[typed]") {
    kitchen_fixture f;
    f.load<kitchen_plugin>("kitchen", kitchen_provides);
    polyplug::client<kitchen> c(f.rt);

    SECTION("call throws polyplug::error carrying the code and the callee's message") {
        try {
            c.call(kitchen::fail, 1);
            FAIL("no exception");
        } catch (const polyplug::error& e) {
            CHECK(e.code() == errc::panic);
            CHECK_THAT(e.what(), Catch::Contains("test.typed.kitchen@2 fail: kitchen: on fire "
                                                 "\xe2\x9c\x93"));
        }
    }
    SECTION("try_call returns the failure; a non-std exception is a Panic too") {
        const polyplug::status st = c.try_call(kitchen::fail, 2);
        CHECK(st.code() == errc::panic);
        CHECK_THAT(st.message(), Catch::Contains("unknown exception"));
        CHECK(c.try_call(kitchen::fail, 0).ok());
    }
    SECTION("a long message is truncated at a UTF-8 character boundary") {
        const polyplug::status st = c.try_call(kitchen::fail, 3);
        CHECK(st.code() == errc::panic);
        const std::string tail = st.message().substr(st.message().find("fail: ") + 6);
        CHECK(tail == std::string(255, 'x'));  // the 3-byte character did not fit whole
    }
    SECTION("invoke gives the raw AbiError and ABI result") {
        std::int64_t raw = 0;
        const AbiError err = c.invoke(kitchen::mix, &raw, 1, 1, 1, 1, 1, 1, false, color::red);
        CHECK(err.code == AbiErrorCode_Ok);
        CHECK(raw == 7);
        const AbiError failed = c.invoke(kitchen::fail, nullptr, 1);
        CHECK(failed.code == AbiErrorCode_Panic);
        CHECK(polyplug::abi_mapping<std::string_view>::from_abi(failed.message) ==
              "kitchen: on fire \xe2\x9c\x93");
    }
    SECTION("try_call with a result leaves out untouched on failure") {
        std::uint32_t out = 77;
        CHECK(c.try_call(kitchen::calls, out).ok());
        CHECK(out == 0);
    }
}

TEST_CASE("typed - opening a client that cannot work", "[typed]") {
    kitchen_fixture f;
    SECTION("no provider: errc::not_found, as exception and as error_code") {
        CHECK_THROWS_AS(polyplug::client<kitchen>(f.rt), polyplug::error);
        std::error_code ec;
        polyplug::client<kitchen> c(f.host, ec);
        CHECK(ec == errc::not_found);
        CHECK_FALSE(c);
    }
    SECTION("a provider with fewer functions than the declaration") {
        f.load<kitchen_plugin>("kitchen", kitchen_provides);
        std::error_code ec;
        polyplug::client<kitchen_plus> c(f.host, ec);
        CHECK(ec == errc::function_not_available);
    }
    SECTION("a null HostApi") {
        std::error_code ec;
        polyplug::client<kitchen> c(static_cast<const HostApi*>(nullptr), ec);
        CHECK(ec == errc::invalid_pointer);
    }
}

TEST_CASE("typed - clients by handle, RAII and the revision cache", "[typed]") {
    kitchen_fixture f;
    f.load<kitchen_plugin>("kitchen_a", kitchen_provides);
    f.load<kitchen_plugin>("kitchen_b", kitchen_provides);
    const auto providers = f.rt.find_all(polyplug::contract_id_of<kitchen>());
    REQUIRE(providers.size() == 2);

    SECTION("one client per provider; moving a client moves its instance") {
        polyplug::client<kitchen> a(f.rt, providers[0]);
        polyplug::client<kitchen> b(f.host, providers[1]);
        CHECK(a.iface() != b.iface());
        (void)a.call(kitchen::echo, "a");
        polyplug::client<kitchen> moved = std::move(a);
        CHECK_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from client is empty
        CHECK(moved.call(kitchen::calls) == 1);
    }
    SECTION("resolve once: after the provider is unloaded, calls report StaleHandle") {
        polyplug::client<kitchen> c(f.rt);
        const instance_reaper reap{{c.instance().data}};
        f.rt.unload_bundle(polyplug::bundle_id("kitchen_a"));
        const polyplug::status st = c.try_call(kitchen::fail, 0);
        CHECK(st.code() == errc::stale_handle);
    }
    SECTION("on_revision: the client moves to the provider registered now") {
        polyplug::client<kitchen, polyplug::resolve_policy::on_revision> c(f.rt);
        instance_reaper reap{{c.instance().data}};
        (void)c.call(kitchen::echo, "first");
        CHECK(c.call(kitchen::calls) == 1);
        const GuestContractInterface* before = c.iface();
        f.load<greeter_plugin>("unrelated",
                               "provides = [\"test.typed.greeter@1\"]\n"
                               "function_count = { \"test.typed.greeter@1\" = 1 }\n");
        CHECK(c.call(kitchen::calls) == 1);  // same provider: same instance, state kept
        f.rt.unload_bundle(polyplug::bundle_id("kitchen_a"));
        CHECK(c.call(kitchen::calls) == 0);  // kitchen_b, with a new instance
        CHECK(c.iface() != before);
        reap.objects.push_back(c.instance().data);
        f.rt.unload_bundle(polyplug::bundle_id("kitchen_b"));
        CHECK(c.try_call(kitchen::fail, 0).code() == errc::stale_handle);
        f.load<kitchen_plugin>("kitchen_c", kitchen_provides);
        CHECK(c.try_call(kitchen::fail, 0).ok());  // and back once a provider returns
    }
}

TEST_CASE("typed - host contracts: the host implements a class, plugins call it typed", "[typed]") {
    // A host contract is registered by reference: it must outlive the runtime, so it is
    // declared first (destroyed last).
    memory_log log;
    const polyplug::host_contract<log_contract, memory_log, &memory_log::write> service(log);
    kitchen_fixture f;
    f.rt.register_host_contract(service.iface());
    CHECK(service.iface().singleton);
    CHECK(service.iface().contract_version.minor == 2);

    SECTION("a client on the HostApi") {
        polyplug::client<log_contract> c(f.host);
        CHECK(c.call(log_contract::write, 1, "up") == 5);
        CHECK(log.text == "1:up;");
        std::uint64_t size = 0;
        const polyplug::status st = c.try_call(log_contract::write, size, 10, "");
        CHECK(st.code() == errc::panic);
        CHECK_THAT(st.message(), Catch::Contains("log level out of range"));
    }
    SECTION("a plugin's class calls the host contract from its methods") {
        f.load<greeter_plugin>("greeter",
                               "provides = [\"test.typed.greeter@1\"]\n"
                               "function_count = { \"test.typed.greeter@1\" = 1 }\n");
        polyplug::client<greeter> g(f.rt);
        CHECK(g.call(greeter::greet, "world") == 14);
        CHECK(log.text == "3:hello world;");
    }
    SECTION("a newer minor than the host offers is refused") {
        std::error_code ec;
        polyplug::client<log_v1_5> c(f.host, ec);
        CHECK(ec == errc::host_contract_not_found);
    }
}

// ---- the C++ declaration agrees with the api.toml ---------------------------------------------

namespace {

template <class F, std::size_t... I>
void check_args(const polyplug::function_decl& decl, std::index_sequence<I...>) {
    using args = typename F::args_type;
    REQUIRE(decl.args.fields.size() == F::arity);
    if constexpr (F::arity > 0) {
        CHECK(decl.args.size == sizeof(args));
        CHECK(decl.args.align == alignof(args));
        (
            [&] {
                using member =
                    std::remove_cvref_t<decltype(polyplug::arg<I>(std::declval<args&>()))>;
                INFO("parameter " << decl.args.fields[I].name);
                CHECK(decl.args.fields[I].offset == polyplug::arg_offset<I, args>());
                CHECK(decl.args.fields[I].type.size == sizeof(member));
                CHECK(decl.args.fields[I].type.align == alignof(member));
            }(),
            ...);
    }
    if constexpr (std::is_void_v<typename F::out_type>) {
        CHECK(decl.result.is_void());
    } else {
        CHECK(decl.result.size == sizeof(typename F::out_type));
        CHECK(decl.result.align == alignof(typename F::out_type));
    }
}

template <class C, std::size_t... I>
void check_contract(const polyplug::contract_decl& decl, std::index_sequence<I...>) {
    CHECK(decl.id == polyplug::contract_id_of<C>());
    CHECK(decl.version.major == C::name.major);
    CHECK(decl.version.minor == C::name.minor);
    CHECK(decl.version.patch == C::name.patch);
    REQUIRE(decl.functions.size() == polyplug::function_count_of<C>());
    (
        [&] {
            using F = polyplug::function_at<C, I>;
            const polyplug::function_decl& fn = decl.functions[I];
            INFO("function " << fn.name);
            CHECK(fn.name == std::get<I>(C::functions).name);
            CHECK(fn.id == F::id);
            check_args<F>(fn, std::make_index_sequence<F::arity>{});
        }(),
        ...);
}

}  // namespace

TEST_CASE("typed - the C++ declaration and the api.toml agree on ids and layouts", "[typed]") {
    const polyplug::contract_file file =
        polyplug::parse_contract_file(kitchen_toml, "kitchen.api.toml");
    const polyplug::contract_decl* guest = file.find_contract(polyplug::contract_id_of<kitchen>());
    REQUIRE(guest != nullptr);
    check_contract<kitchen>(*guest, std::make_index_sequence<9>{});
    const polyplug::contract_decl* host =
        file.find_contract(polyplug::contract_id_of<log_contract>());
    REQUIRE(host != nullptr);
    CHECK(host->singleton == log_contract::name.singleton);
    check_contract<log_contract>(*host, std::make_index_sequence<1>{});

    // The by-value structs: field offsets as C lays them out.
    const polyplug::struct_decl* m = file.find_struct("Mixed");
    REQUIRE(m != nullptr);
    CHECK(m->layout.size == sizeof(mixed));
    CHECK(m->layout.align == alignof(mixed));
    CHECK(m->layout.fields[1].offset == offsetof(mixed, value));
    CHECK(m->layout.fields[2].offset == offsetof(mixed, small));
}
