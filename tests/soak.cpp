// SPDX-License-Identifier: MIT
/// @file soak.cpp
/// Reliability: soak runs (100,000 load/call/unload cycles in one runtime, 50,000 runtimes
/// created and destroyed) that check memory, descriptors, mappings and threads stay flat, and
/// registry races (8 threads loading one bundle, loaders registered while looked up, lookups
/// and calls during concurrent loads, unloads and reloads of two bundles).
///
/// POLYPLUG_SOAK_CYCLES sets the number of load cycles (default 100000, 10000 under TSan); the
/// create/destroy soak runs half as many, and when it is set the race rounds scale with it. The
/// measured figures go to stdout, prefixed "soak:", so a test log shows them.
#include "support.hpp"

#include <polyplug/dispatch.hpp>

#include <unistd.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <latch>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

// Sanitizers change what can be measured: ASan's quarantine holds freed memory back (RSS grows
// by design); ThreadSanitizer makes every cycle many times slower and grows its own memory with
// every dlopen.
#if defined(__SANITIZE_ADDRESS__)
#define SOAK_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SOAK_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define SOAK_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SOAK_UNDER_TSAN 1
#endif
#endif

using namespace test_support;
namespace fs = std::filesystem;

namespace {

#ifdef SOAK_UNDER_ASAN
constexpr bool under_asan = true;
#else
constexpr bool under_asan = false;
#endif
#ifdef SOAK_UNDER_TSAN
constexpr bool under_tsan = true;
#else
constexpr bool under_tsan = false;
#endif

const std::uint64_t add_id = polyplug::guest_contract_id("test.add", 1);
const std::uint64_t version_id = polyplug::guest_contract_id("test.version", 1);
const std::uint64_t legacy_id = polyplug::guest_contract_id("test.legacy", 1);
const std::uint64_t extra_id = polyplug::guest_contract_id("test.extra", 1);

constexpr std::uint32_t untouched = 0xDEADBEEF;

struct add_args {
    std::uint32_t a, b;
};

/// Calls test.add@1's add(a, b); `out` stays `untouched` unless the plugin wrote it.
std::uint32_t call_add(const GuestContractInterface& iface, std::uint32_t a, std::uint32_t b,
                       AbiError& err) {
    const add_args args{a, b};
    std::uint32_t out = untouched;
    err = polyplug::call(iface, {nullptr, add_id}, 0, &args, &out);
    return out;
}

/// Calls fn0 of a versioned contract (returns 100 in v1, 200 in v2).
std::uint32_t call_value(const GuestContractInterface& iface, std::uint64_t id, AbiError& err) {
    std::uint32_t out = untouched;
    err = polyplug::call(iface, {nullptr, id}, 0, nullptr, &out);
    return out;
}

// Under ThreadSanitizer a load cycle costs ~2 ms instead of ~80-140 us, and TSan's own memory
// grows ~8 KiB with every dlopen call, RTLD_NOLOAD probes included (measured with a bare
// dlopen/dlclose loop, no polyplug; a load/unload cycle makes three such calls): 100,000 cycles
// would take ~5 minutes and ~2.5 GiB. 10,000 still run the unmap worker thousands
// of times under the race detector, which is what that build is for.
constexpr std::uint64_t tsan_default_cycles = 10000;

/// POLYPLUG_SOAK_CYCLES if set (at least 100), else nothing.
std::optional<std::uint64_t> requested_cycles() {
    const char* text = std::getenv("POLYPLUG_SOAK_CYCLES");
    if (text == nullptr || *text == '\0') return std::nullopt;
    char* end = nullptr;
    const unsigned long long value = std::strtoull(text, &end, 10);
    INFO("POLYPLUG_SOAK_CYCLES=" << text);
    REQUIRE(*end == '\0');
    REQUIRE(value >= 100);
    return value;
}

/// Load cycles of the first soak: POLYPLUG_SOAK_CYCLES, default 100,000 (10,000 under TSan).
/// The create/destroy soak runs half as many.
std::uint64_t soak_cycles() {
    return requested_cycles().value_or(under_tsan ? tsan_default_cycles : 100000);
}

/// A race suite's `full` round count, scaled by POLYPLUG_SOAK_CYCLES / 100,000 when that is set
/// (at least `floor`). Not reduced under TSan: the races are what that build is for.
std::uint64_t scaled(std::uint64_t full, std::uint64_t floor) {
    const auto requested = requested_cycles();
    return requested ? std::max(floor, full * *requested / 100000) : full;
}

void say(const std::string& line) {
    std::cout << "soak: " << line << std::endl;
}

// ---- what the process holds, from /proc/self ---------------------------------------------------

std::size_t count_entries(const char* dir) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++n;
    return n;
}

struct process_sample {
    std::uint64_t rss_kib = 0;
    std::size_t fds = 0;           // /proc/self/fd entries (the listing's own descriptor included)
    std::size_t threads = 0;       // /proc/self/task entries
    std::size_t maps = 0;          // /proc/self/maps lines
    std::size_t fixture_maps = 0;  // of those, lines containing one of `needles`
};

process_sample sample(const std::vector<std::string>& needles) {
    process_sample s;
    {
        std::ifstream statm("/proc/self/statm");
        std::uint64_t size = 0, resident = 0;
        statm >> size >> resident;
        s.rss_kib = resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) / 1024;
    }
    s.fds = count_entries("/proc/self/fd");
    s.threads = count_entries("/proc/self/task");
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
        ++s.maps;
        if (std::any_of(needles.begin(), needles.end(), [&](const std::string& needle) {
                return line.find(needle) != std::string::npos;
            }))
            ++s.fixture_maps;
    }
    return s;
}

std::string describe(const process_sample& s) {
    std::ostringstream out;
    out << "rss " << s.rss_kib << " KiB, fds " << s.fds << ", threads " << s.threads << ", maps "
        << s.maps << ", fixture maps " << s.fixture_maps;
    return out.str();
}

/// Prints first / last / growth and how long the cycles took.
void report(const std::string& what, std::uint64_t cycles, const process_sample& warm,
            const process_sample& end, std::chrono::steady_clock::duration elapsed) {
    const double seconds = std::chrono::duration<double>(elapsed).count();
    say(what + ": " + std::to_string(cycles) + " cycles in " + std::to_string(seconds) + " s (" +
        std::to_string(seconds * 1e6 / static_cast<double>(cycles)) + " us per cycle)");
    say("  after warm-up: " + describe(warm));
    say("  at the end:    " + describe(end));
    say("  rss growth " +
        std::to_string(static_cast<std::int64_t>(end.rss_kib) -
                       static_cast<std::int64_t>(warm.rss_kib)) +
        " KiB, maps growth " +
        std::to_string(static_cast<std::int64_t>(end.maps) - static_cast<std::int64_t>(warm.maps)));
}

// /proc/self/maps merges and splits anonymous regions as malloc arenas grow and shrink, so its
// line count wobbles by a few without anything leaking; a leaked mapping per cycle would add
// thousands.
constexpr std::size_t maps_slack = 16;

// Checks the bounds every soak shares; `rss_bound_kib` is the allowed RSS growth.
void check_flat(const process_sample& warm, const process_sample& end,
                std::uint64_t rss_bound_kib) {
    CHECK(end.fds == warm.fds);
    CHECK(end.threads == warm.threads);
    CHECK(end.fixture_maps == 0);
    if (under_tsan) {
        say("  total maps bound skipped: ThreadSanitizer maps regions for its own shadow and "
            "metadata as they grow");
    } else {
        CHECK(end.maps <= warm.maps + maps_slack);
    }
    if (under_asan) {
        say("  rss bound skipped: AddressSanitizer's quarantine keeps freed memory resident; "
            "LeakSanitizer checks for leaks at exit instead");
    } else if (under_tsan) {
        say("  rss bound skipped: ThreadSanitizer's own memory grows ~8 KiB with every dlopen "
            "call (a bare dlopen loop shows the same)");
    } else {
        INFO("allowed rss growth " << rss_bound_kib << " KiB");
        CHECK(end.rss_kib <= warm.rss_kib + rss_bound_kib);
    }
}

}  // namespace

TEST_CASE("soak - 100,000 load, call, unload cycles keep memory, descriptors and mappings flat",
          "[soak]") {
    const std::uint64_t cycles = soak_cycles();
    if (under_tsan && !requested_cycles())
        say("ThreadSanitizer: " + std::to_string(cycles) +
            " cycles instead of 100,000 (~2 ms and ~24 KiB of TSan memory a cycle would make "
            "it ~5 minutes and ~2.5 GiB); POLYPLUG_SOAK_CYCLES overrides");
    const std::uint64_t warm_up = std::min<std::uint64_t>(1000, cycles / 10);
    temp_dir dir;
    const fs::path bundle = make_bundle(dir.path(), "adder", "adder", adder_provides);
    const std::vector<std::string> needles{(bundle / "libadder.so").string()};
    polyplug::runtime_options options;
    options.unload_grace_period = std::chrono::milliseconds(0);  // every unload unmaps at once
    polyplug::runtime rt(options);

    std::uint64_t wrong = 0, still_mapped = 0;
    const auto cycle = [&](std::uint64_t i) {
        rt.load_bundle(bundle);
        const GuestContractInterface* iface = rt.resolve(rt.find(add_id));
        if (iface == nullptr) {
            ++wrong;
        } else {
            AbiError err{};
            const auto a = static_cast<std::uint32_t>(i);
            if (call_add(*iface, a, 7, err) != a + 7 || err.code != AbiErrorCode_Ok) ++wrong;
        }
        rt.unload_bundle(polyplug::bundle_id("adder"));
    };

    for (std::uint64_t i = 0; i < warm_up; ++i) cycle(i);
    const process_sample warm = sample(needles);
    const auto start = std::chrono::steady_clock::now();
    for (std::uint64_t i = warm_up; i < cycles; ++i) {
        cycle(i);
        // Now and then, check the unload really unmapped (cheap enough at this rate).
        if (i % 10000 == 0 && sample(needles).fixture_maps != 0) ++still_mapped;
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    const process_sample end = sample(needles);
    report("load/call/unload", cycles - warm_up, warm, end, elapsed);

    CHECK(wrong == 0);
    CHECK(still_mapped == 0);
    CHECK(rt.bundles().empty());
    CHECK(rt.core().pending_unmaps() == 0);
    CHECK(rt.loader<polyplug::native_loader>().open_libraries() == 0);
    // Flat: an unloaded contract's interface copy is kept (a host may still hold a pointer to
    // it), but the next load of the same bundle reuses it (registry.hpp, adopt_retired_copy), so
    // cycles add nothing. 4 MiB covers allocator noise; a copy kept per cycle (~200 bytes per
    // contract) would be 38 MiB here, a leaked string per cycle several MiB.
    say("  rss growth per cycle: " +
        std::to_string((end.rss_kib - std::min(end.rss_kib, warm.rss_kib)) * 1024 /
                       (cycles - warm_up)) +
        " bytes");
    check_flat(warm, end, 4096);
}

TEST_CASE("soak - 50,000 runtime create/destroy cycles keep memory, descriptors and threads flat",
          "[soak]") {
    const std::uint64_t cycles = soak_cycles() / 2;
    const std::uint64_t warm_up = std::min<std::uint64_t>(1000, cycles / 10);
    temp_dir dir;
    const fs::path bundle = make_bundle(dir.path(), "adder", "adder", adder_provides);
    const std::vector<std::string> needles{(bundle / "libadder.so").string()};

    // Four shapes, in turn:
    //   0: load, call, destroy with the bundle loaded (teardown unloads it);
    //   1: nothing loaded at all;
    //   2: load, call, unload with a 10 s grace period, destroy while the unmap is pending: the
    //      unmap worker thread has started and must be joined, the library closed;
    //   3: load, call, unload with no grace period (unmapped at once), destroy.
    std::uint64_t wrong[4] = {};
    const auto cycle = [&](std::uint64_t i) {
        const std::uint64_t shape = i % 4;
        polyplug::runtime_options options;
        options.unload_grace_period = std::chrono::milliseconds(shape == 2 ? 10000 : 0);
        polyplug::runtime rt(options);
        if (shape == 1) {
            if (!polyplug_handle_is_null(rt.find(add_id))) ++wrong[shape];
            return;
        }
        rt.load_bundle(bundle);
        const GuestContractInterface* iface = rt.resolve(rt.find(add_id));
        AbiError err{};
        if (iface == nullptr || call_add(*iface, 40, 2, err) != 42) ++wrong[shape];
        if (shape == 2 || shape == 3) rt.unload_bundle(polyplug::bundle_id("adder"));
        if (rt.core().pending_unmaps() != (shape == 2 ? 1u : 0u)) ++wrong[shape];
    };

    for (std::uint64_t i = 0; i < warm_up; ++i) cycle(i);
    const process_sample warm = sample(needles);
    const auto start = std::chrono::steady_clock::now();
    for (std::uint64_t i = warm_up; i < cycles; ++i) cycle(i);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    const process_sample end = sample(needles);
    report("runtime create/destroy", cycles - warm_up, warm, end, elapsed);

    INFO("wrong per shape: " << wrong[0] << ", " << wrong[1] << ", " << wrong[2] << ", "
                             << wrong[3]);
    CHECK(wrong[0] + wrong[1] + wrong[2] + wrong[3] == 0);
    check_flat(warm, end, 4096);
}

// ---- registry races -----------------------------------------------------------------------------

TEST_CASE("soak - 8 threads loading one bundle at once: one wins, seven are refused as loaded",
          "[race]") {
    constexpr std::size_t racers = 8;
    const std::uint64_t rounds = scaled(200, 20);
    temp_dir dir;
    const fs::path bundle = make_bundle(dir.path(), "adder", "adder", adder_provides);
    polyplug::runtime_options options;
    options.unload_grace_period = std::chrono::milliseconds(0);  // each round maps it afresh
    polyplug::runtime rt(options);

    // The racers wait at the barrier, load together, and meet the main thread there again; the
    // main thread checks the round and unloads before releasing the next one.
    std::vector<std::error_code> results(racers);
    std::barrier sync(static_cast<std::ptrdiff_t>(racers + 1));
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < racers; ++t) {
        threads.emplace_back([&, t] {
            for (;;) {
                sync.arrive_and_wait();
                if (stop.load()) return;
                rt.load_bundle(bundle, results[t]);
                sync.arrive_and_wait();
            }
        });
    }

    std::uint64_t one_winner = 0, refused_as_loaded = 0, refused_while_loading = 0;
    std::uint64_t listed_once = 0, callable = 0, named_in_last_error = 0;
    std::vector<std::string> other_failures;
    for (std::uint64_t round = 0; round < rounds; ++round) {
        sync.arrive_and_wait();  // go
        sync.arrive_and_wait();  // all eight have returned
        std::size_t winners = 0;
        for (const std::error_code& ec : results) {
            if (!ec) {
                ++winners;
            } else if (ec != polyplug::errc::bundle_already_loaded) {
                other_failures.push_back("round " + std::to_string(round) + ": " + ec.message());
            }
        }
        if (winners == 1) ++one_winner;
        // last_error holds one loser's message: "already loaded", or "already being loaded" if
        // it got there while the winner's init was still running.
        const std::string last = rt.last_error();
        if (last.find("bundle 'adder' is already loaded") != std::string::npos)
            ++refused_as_loaded;
        else if (last.find("bundle 'adder' is already being loaded") != std::string::npos)
            ++refused_while_loading;
        if (last.find(bundle.string()) != std::string::npos) ++named_in_last_error;
        const auto listed = rt.bundles();
        if (listed.size() == 1 && listed[0].name == "adder" && listed[0].contracts.size() == 2)
            ++listed_once;
        if (const GuestContractInterface* iface = rt.resolve(rt.find(add_id))) {
            AbiError err{};
            const auto a = static_cast<std::uint32_t>(round);
            if (call_add(*iface, a, 1, err) == a + 1 && err.code == AbiErrorCode_Ok) ++callable;
        }
        std::error_code ec;
        rt.unload_bundle(polyplug::bundle_id("adder"), ec);
        CHECK_FALSE(ec);
    }
    stop = true;
    sync.arrive_and_wait();
    for (auto& t : threads) t.join();
    say("load race: " + std::to_string(rounds) + " rounds of 8; losers saw 'already loaded' in " +
        std::to_string(refused_as_loaded) + ", 'already being loaded' in " +
        std::to_string(refused_while_loading) + " rounds");

    INFO((other_failures.empty() ? std::string() : other_failures.front()));
    CHECK(other_failures.empty());
    CHECK(one_winner == rounds);
    CHECK(refused_as_loaded + refused_while_loading == rounds);
    CHECK(named_in_last_error == rounds);  // the message says where the loaded one came from
    CHECK(listed_once == rounds);
    CHECK(callable == rounds);
    CHECK(rt.bundles().empty());
    CHECK(sample({bundle.string()}).fixture_maps == 0);
}

TEST_CASE("soak - 8 threads registering different loaders while others look loaders up", "[race]") {
    constexpr std::size_t registrars = 8;
    const std::uint64_t rounds = scaled(50, 5);
    temp_dir dir;
    std::vector<std::string> names;
    for (std::size_t i = 0; i < registrars; ++i) names.push_back("racer-" + std::to_string(i));
    // A bundle for the last loader: loading it fails with no_loader until that loader is in.
    const fs::path bundle = make_bundle(dir.path(), "late", "", "", "", names.back());
    write_file(bundle / "liblate.so", "scripted");

    std::uint64_t registered = 0, bad_lists = 0, bad_loads = 0, loaded_during_race = 0;
    std::string first_problem;
    for (std::uint64_t round = 0; round < rounds; ++round) {
        polyplug::runtime rt;
        const HostApi* host = rt.host_api();
        std::vector<std::uint32_t> codes(registrars, AbiErrorCode_Generic);
        std::latch start(static_cast<std::ptrdiff_t>(registrars + 2));
        std::atomic<std::size_t> done{0};
        std::vector<std::thread> threads;
        for (std::size_t t = 0; t < registrars; ++t) {
            threads.emplace_back([&, t] {
                start.arrive_and_wait();
                scripted_loader* loader = nullptr;
                AbiError err{};
                host->register_loader(host, scripted_loader::create(loader, names[t].c_str()),
                                      &err);
                codes[t] = err.code;
                ++done;
            });
        }
        // Lists are snapshots: "native" first, then racers, none twice, and a name once seen
        // never disappears.
        std::string list_problem;
        threads.emplace_back([&] {
            start.arrive_and_wait();
            std::set<std::string> seen;
            for (bool last = false; !last;) {
                last = done.load() == registrars;
                const std::vector<std::string> list = rt.core().loader_names();
                const std::set<std::string> unique(list.begin(), list.end());
                const bool known = std::all_of(list.begin(), list.end(), [&](const auto& n) {
                    return n == "native" || std::find(names.begin(), names.end(), n) != names.end();
                });
                const bool kept =
                    std::includes(unique.begin(), unique.end(), seen.begin(), seen.end());
                if (list.empty() || list.front() != "native" || unique.size() != list.size() ||
                    !known || !kept || (last && list.size() != registrars + 1)) {
                    list_problem = "loader list of " + std::to_string(list.size()) + " names";
                    return;
                }
                seen = unique;
            }
        });
        std::string load_problem;
        bool loaded = false;
        threads.emplace_back([&] {
            start.arrive_and_wait();
            while (!loaded) {
                const bool last = done.load() == registrars;
                std::error_code ec;
                rt.load_bundle(bundle, ec);
                if (!ec) {
                    loaded = true;
                } else if (ec != polyplug::errc::no_loader || last) {
                    load_problem = ec.message() + ": " + rt.last_error();
                    return;
                }
            }
        });
        for (auto& t : threads) t.join();

        registered += static_cast<std::uint64_t>(
            std::count(codes.begin(), codes.end(), std::uint32_t{AbiErrorCode_Ok}));
        if (!list_problem.empty()) ++bad_lists;
        if (!load_problem.empty()) ++bad_loads;
        if (first_problem.empty()) first_problem = list_problem + load_problem;
        if (loaded) ++loaded_during_race;
        std::vector<std::string> expected{"native"};
        expected.insert(expected.end(), names.begin(), names.end());
        std::vector<std::string> final_names = rt.core().loader_names();
        std::sort(final_names.begin() + 1, final_names.end());
        CHECK(final_names == expected);
    }
    INFO(first_problem);
    CHECK(registered == rounds * registrars);
    CHECK(bad_lists == 0);
    CHECK(bad_loads == 0);
    CHECK(loaded_during_race == rounds);
}

namespace {

/// What one reader saw; written by its thread only, read after it was joined.
struct reader_tally {
    std::uint64_t iterations = 0, add_ok = 0, v100 = 0, v200 = 0, stale = 0, absent = 0;
    std::uint64_t metadata_checks = 0, bad = 0;
    std::string first_bad;

    void fail(std::string what) {
        if (bad++ == 0) first_bad = std::move(what);
    }
};

enum class outcome { ok, stale, bad };

/// A call's result is the right value, or StaleHandle with the output untouched: nothing else.
outcome judge(reader_tally& tally, const char* what, const AbiError& err, std::uint32_t out,
              std::initializer_list<std::uint32_t> valid) {
    if (err.code == AbiErrorCode_Ok && std::find(valid.begin(), valid.end(), out) != valid.end())
        return outcome::ok;
    if (err.code == AbiErrorCode_StaleHandle && out == untouched &&
        polyplug::detail::view_of(err.message).find("unloaded") != std::string_view::npos) {
        ++tally.stale;
        return outcome::stale;
    }
    tally.fail(std::string(what) + ": code " + std::to_string(err.code) + ", value " +
               std::to_string(out));
    return outcome::bad;
}

/// Every listed bundle is one of the two, whole: its name, directory, loader, version and the
/// names of its contracts all belong together.
void check_metadata(reader_tally& tally, const polyplug::runtime& rt, const fs::path& adder,
                    const fs::path& versioned) {
    ++tally.metadata_checks;
    for (const polyplug::bundle_info& b : rt.bundles()) {
        const bool is_adder = b.name == "adder";
        if (!is_adder && b.name != "versioned") {
            tally.fail("bundle named '" + b.name + "'");
            continue;
        }
        const std::string plugin = is_adder ? "test_adder" : "versioned";
        bool whole = b.id == polyplug::bundle_id(b.name) &&
                     b.dir == (is_adder ? adder : versioned) && b.loader == "native" &&
                     b.version == polyplug::version(1, 0, 0) && b.contracts.size() == 2;
        std::set<std::string> contract_names;
        for (const polyplug::contract_info& c : b.contracts) {
            contract_names.insert(c.contract_name);
            whole = whole && c.bundle_id == b.id && c.plugin_name == plugin &&
                    c.contract_id == polyplug::guest_contract_id(c.contract_name, 1) &&
                    c.function_count == 1;
        }
        const std::set<std::string> adder_names{"test.add", "test.counter"};
        const std::set<std::string> v1_names{"test.legacy", "test.version"};
        const std::set<std::string> v2_names{"test.extra", "test.version"};
        whole = whole && (is_adder ? contract_names == adder_names
                                   : contract_names == v1_names || contract_names == v2_names);
        if (!whole) tally.fail("torn metadata for bundle '" + b.name + "'");
    }
    for (const polyplug::contract_info& c : rt.core().contracts().contracts())
        if (c.contract_id != polyplug::guest_contract_id(c.contract_name, 1))
            tally.fail("contract '" + c.contract_name + "' listed with a foreign id");
}

/// Copies `from` over the bundle's library the safe way (write beside it, then rename).
void install(const fs::path& bundle, const std::string& file, const fs::path& from) {
    const fs::path staging = bundle / (file + ".new");
    fs::copy_file(from, staging, fs::copy_options::overwrite_existing);
    fs::rename(staging, bundle / file);
}

}  // namespace

TEST_CASE(
    "soak - 8 readers find, resolve and call while two writers load, unload and reload two "
    "bundles",
    "[race]") {
    constexpr std::size_t reader_count = 8;
    const std::uint64_t rounds = scaled(500, 50);
    temp_dir dir;
    const fs::path adder = make_bundle(dir.path(), "adder", "adder", adder_provides);
    const fs::path versioned =
        make_bundle(dir.path(), "versioned", "versioned_100", versioned_provides);
    const fs::path v1 = dir.path() / "v1.so";
    const fs::path v2 = dir.path() / "v2.so";
    fs::copy_file(fixture("versioned_100"), v1);
    fs::copy_file(fixture("versioned_200"), v2);

    polyplug::runtime_options options;
    options.hot_reload_enabled = true;
    // Calls through cached pointers are not tracked (reload.cpp explains why), so a reader that
    // read an old function pointer is kept safe only by the old code staying mapped: no
    // scheduler delay outlasts "never". It also keeps ThreadSanitizer honest: a library unmapped
    // and another mapped at its address would look like a race between their inits.
    options.unmap = polyplug::unmap_policy::never;
    auto rt = std::make_unique<polyplug::runtime>(options);
    rt->load_bundle(adder);
    rt->load_bundle(versioned);

    std::atomic<bool> stop{false};
    std::vector<reader_tally> tallies(reader_count);
    std::vector<std::thread> readers;
    for (std::size_t t = 0; t < reader_count; ++t) {
        readers.emplace_back([&, t] {
            reader_tally& tally = tallies[t];
            const GuestContractInterface* cached_add = nullptr;
            const GuestContractInterface* cached_version = nullptr;
            while (!stop.load(std::memory_order_relaxed)) {
                const auto n = static_cast<std::uint32_t>(++tally.iterations);
                const std::uint32_t a = static_cast<std::uint32_t>(t) * 1000003u + n;
                AbiError err{};
                // A fresh lookup resolves to the contract asked for, or to nothing.
                if (const GuestContractInterface* iface = rt->resolve(rt->find(add_id))) {
                    if (iface->contract_id != add_id)
                        tally.fail("test.add resolved to " +
                                   polyplug::format_id(iface->contract_id));
                    else if (judge(tally, "add", err, call_add(*iface, a, 5, err), {a + 5}) ==
                             outcome::ok)
                        ++tally.add_ok;
                } else {
                    ++tally.absent;
                }
                // A cached pointer keeps working until its bundle is unloaded, then says stale.
                if (cached_add == nullptr) cached_add = rt->resolve(rt->find(add_id));
                if (cached_add != nullptr &&
                    judge(tally, "cached add", err, call_add(*cached_add, a, 9, err), {a + 9}) ==
                        outcome::stale)
                    cached_add = nullptr;
                // Reloads rewrite the cached copy in place: 100 or 200, never anything else.
                if (cached_version == nullptr) cached_version = rt->resolve(rt->find(version_id));
                if (cached_version != nullptr) {
                    const std::uint32_t value = call_value(*cached_version, version_id, err);
                    if (judge(tally, "cached version", err, value, {100, 200}) == outcome::stale)
                        cached_version = nullptr;
                    else if (err.code == AbiErrorCode_Ok)
                        ++(value == 100 ? tally.v100 : tally.v200);
                }
                // test.legacy exists only in v1 and test.extra only in v2: neither may ever
                // answer with the other version's code.
                if (const GuestContractInterface* iface = rt->resolve(rt->find(legacy_id)))
                    (void)judge(tally, "legacy", err, call_value(*iface, legacy_id, err), {100});
                if (const GuestContractInterface* iface = rt->resolve(rt->find(extra_id)))
                    (void)judge(tally, "extra", err, call_value(*iface, extra_id, err), {200});
                if (n % 32 == 0) {
                    for (const GuestContractHandle h : rt->find_all(version_id)) {
                        const GuestContractInterface* iface = rt->resolve(h);
                        if (iface != nullptr && iface->contract_id != version_id)
                            tally.fail("find_all(test.version) gave a foreign contract");
                    }
                    check_metadata(tally, *rt, adder, versioned);
                }
            }
        });
    }

    // Each writer owns one bundle, so it knows what a call must return after each step.
    struct writer_tally {
        std::uint64_t loads = 0, unloads = 0, reloads = 0, refused = 0, bad = 0;
        std::string first_bad;
        void check(bool ok, const std::string& what) {
            if (!ok && bad++ == 0) first_bad = what;
        }
    };
    writer_tally adder_writer, versioned_writer;
    std::thread adder_thread([&] {
        std::mt19937 rng(1);
        bool loaded = true;
        for (std::uint64_t i = 0; i < rounds; ++i) {
            std::error_code ec;
            const std::string step = "adder step " + std::to_string(i);
            if (rng() % 3 != 0) {
                if (loaded) {
                    rt->unload_bundle(polyplug::bundle_id("adder"), ec);
                    ++adder_writer.unloads;
                } else {
                    rt->load_bundle(adder, ec);
                    ++adder_writer.loads;
                }
                loaded = !loaded;
                adder_writer.check(!ec, step + ": " + ec.message());
            } else {
                rt->reload_bundle(adder, ec);  // same code again, through a private copy
                if (loaded) {
                    ++adder_writer.reloads;
                    adder_writer.check(!ec, step + " reload: " + ec.message());
                } else {
                    ++adder_writer.refused;
                    adder_writer.check(ec == polyplug::errc::bundle_not_loaded,
                                       step + " reload while unloaded: " + ec.message());
                }
            }
            const GuestContractInterface* iface = rt->resolve(rt->find(add_id));
            AbiError err{};
            adder_writer.check(
                loaded ? iface != nullptr && call_add(*iface, 2, 3, err) == 5 : iface == nullptr,
                step + ": lookup after the step");
        }
    });
    std::thread versioned_thread([&] {
        std::mt19937 rng(2);
        bool loaded = true;
        std::uint32_t installed = 100;
        for (std::uint64_t i = 0; i < rounds; ++i) {
            std::error_code ec;
            const std::string step = "versioned step " + std::to_string(i);
            if (rng() % 3 == 0) {
                if (loaded) {
                    rt->unload_bundle(polyplug::bundle_id("versioned"), ec);
                    ++versioned_writer.unloads;
                } else {
                    rt->load_bundle(versioned, ec);
                    ++versioned_writer.loads;
                }
                loaded = !loaded;
                versioned_writer.check(!ec, step + ": " + ec.message());
            } else {
                installed = installed == 100 ? 200 : 100;
                install(versioned, "libversioned.so", installed == 100 ? v1 : v2);
                rt->reload_bundle(versioned, ec);
                if (loaded) {
                    ++versioned_writer.reloads;
                    versioned_writer.check(!ec, step + " reload: " + ec.message());
                } else {
                    ++versioned_writer.refused;
                    versioned_writer.check(ec == polyplug::errc::bundle_not_loaded,
                                           step + " reload while unloaded: " + ec.message());
                }
            }
            const GuestContractInterface* iface = rt->resolve(rt->find(version_id));
            AbiError err{};
            versioned_writer.check(
                loaded ? iface != nullptr && call_value(*iface, version_id, err) == installed
                       : iface == nullptr,
                step + ": lookup after the step");
        }
    });
    adder_thread.join();
    versioned_thread.join();
    stop = true;
    for (auto& t : readers) t.join();

    reader_tally total;
    for (const reader_tally& r : tallies) {
        total.iterations += r.iterations, total.add_ok += r.add_ok, total.v100 += r.v100;
        total.v200 += r.v200, total.stale += r.stale, total.absent += r.absent;
        total.metadata_checks += r.metadata_checks, total.bad += r.bad;
        if (total.first_bad.empty()) total.first_bad = r.first_bad;
    }
    say("lookup race: writers did " + std::to_string(adder_writer.loads + versioned_writer.loads) +
        " loads, " + std::to_string(adder_writer.unloads + versioned_writer.unloads) +
        " unloads, " + std::to_string(adder_writer.reloads + versioned_writer.reloads) +
        " reloads; readers made " + std::to_string(total.iterations) +
        " passes: " + std::to_string(total.add_ok) + " adds, " + std::to_string(total.v100) +
        " v1 and " + std::to_string(total.v200) + " v2 answers, " + std::to_string(total.stale) +
        " stale, " + std::to_string(total.absent) + " not found, " +
        std::to_string(total.metadata_checks) + " metadata checks");

    INFO(total.first_bad << adder_writer.first_bad << versioned_writer.first_bad);
    CHECK(total.bad == 0);
    CHECK(adder_writer.bad == 0);
    CHECK(versioned_writer.bad == 0);
    // Every path was taken, or the test proved nothing.
    CHECK(total.add_ok > 0);
    CHECK(total.v100 > 0);
    CHECK(total.v200 > 0);
    CHECK(total.stale > 0);
    CHECK(total.metadata_checks > 0);
    CHECK(adder_writer.reloads > 0);
    CHECK(versioned_writer.unloads > 0);

    rt.reset();  // "never" ends with the runtime: every version is closed now
    const std::string private_copies = "/polyplug-" + std::to_string(::getpid()) + "-";
    CHECK(sample({dir.path().string(), private_copies}).fixture_maps == 0);
}
