// SPDX-License-Identifier: MIT
/// @file bench/lookup_bench.cpp
/// Lookups: find + resolve with 10, 1,000 and 10,000 registered contracts (the same contract
/// again and again, as a host resolving one dependency does, and cycling through all of them, the
/// cache-unfriendly case), find and resolve alone, find_all, and the same through the C shim.
/// The plain baseline is what a hand-rolled host would write: a std::unordered_map lookup.
#include "bench_bundle.hpp"
#include "bench_loaders.hpp"
#include "bench_runtime.hpp"
#include "c_host_bench.h"
#include "suite.hpp"

#include <polyplug/runtime.hpp>

#include <algorithm>
#include <memory>
#include <random>
#include <unordered_map>
#include <vector>

namespace bench {
namespace {

const std::string group = "lookups";

/// A runtime whose registry holds `count` contracts, all registered by one bundle's init.
struct filled_runtime {
    runtime_ptr rt = make_runtime();
    std::vector<std::uint64_t> ids;  ///< every registered id, shuffled
    std::unordered_map<std::uint64_t, const GuestContractInterface*> map;  ///< the baseline

    filled_runtime(suite& s, std::uint32_t count) {
        install_bulk_loader(host_api(*rt), count);
        load_bundle(*rt, make_bulk_bundle(s.work, "bulk" + std::to_string(count), count));
        for (std::uint32_t i = 0; i < count; ++i) {
            const std::uint64_t id = bulk_contract_id(i);
            ids.push_back(id);
            map.emplace(id, rt->resolve(rt->find(id)));
        }
        std::shuffle(ids.begin(), ids.end(), std::mt19937_64(42));
    }
};

/// `lookup(id)` for `n` ids taken in turn from `ids` (one id: the same lookup every time).
template <class Lookup>
batch lookups(const std::vector<std::uint64_t>& ids, Lookup lookup) {
    return [&ids, lookup](std::uint64_t n) {
        const std::uint64_t* first = ids.data();
        const std::size_t size = ids.size();
        return time_loop(n, [&](std::uint64_t count) {
            std::size_t next = 0;
            for (std::uint64_t i = 0; i < count; ++i) {
                std::uint64_t id = first[next];
                opaque(id);  // the lookup must be done again for every id, even a repeated one
                consume(lookup(id));
                next = next + 1 == size ? 0 : next + 1;
            }
        });
    };
}

template <class Loop>
batch c_loop(CHostBench* host, Loop loop) {
    return [host, loop](std::uint64_t n) {
        return time_loop(n, [&](std::uint64_t count) { consume(loop(host, count)); });
    };
}

}  // namespace

void run_lookups(suite& s) {
    const filled_runtime small(s, 10), medium(s, 1000), large(s, 10000);
    const std::vector<std::uint64_t> one_small{small.ids.front()};
    const std::vector<std::uint64_t> one_medium{medium.ids.front()};
    const std::vector<std::uint64_t> one_large{large.ids.front()};

    auto find_resolve = [](const filled_runtime& f, const std::vector<std::uint64_t>& ids) {
        const polyplug::runtime* rt = f.rt.get();
        return lookups(ids, [rt](std::uint64_t id) { return rt->resolve(rt->find(id)); });
    };
    auto map_find = [](const filled_runtime& f, const std::vector<std::uint64_t>& ids) {
        const auto* map = &f.map;
        return lookups(ids, [map](std::uint64_t id) { return map->find(id)->second; });
    };

    const budget under_15ns{"< 15 ns", 0, 15.0};
    const budget flat{"flat from 10 to 10,000 (<= 1.25x)", 1.25, 0};
    add_compared(
        s,
        titled(group, "find + resolve, 10 contracts", "std::unordered_map find, 10 entries",
               "the same contract every time", under_15ns),
        map_find(small, one_small), find_resolve(small, one_small), s.fast);
    add_compared(
        s,
        titled(group, "find + resolve, 1,000 contracts", "find + resolve, 10 contracts", "", flat),
        find_resolve(small, one_small), find_resolve(medium, one_medium), s.fast);
    add_compared(
        s,
        titled(group, "find + resolve, 10,000 contracts", "find + resolve, 10 contracts", "", flat),
        find_resolve(small, one_small), find_resolve(large, one_large), s.fast);
    add_compared(s,
                 titled(group, "find + resolve, 10,000 contracts, all in turn",
                        "std::unordered_map find, the same 10,000",
                        "every lookup a different contract, shuffled: caches miss"),
                 map_find(large, large.ids), find_resolve(large, large.ids), s.fast);

    const polyplug::runtime* rt = small.rt.get();
    const GuestContractHandle handle = rt->find(small.ids.front());
    const std::vector<GuestContractHandle> handles{handle};
    add_compared(
        s,
        titled(group, "find alone, 10 contracts", "std::unordered_map find, 10 entries",
               "announces itself in its own thread's reader slot: plain stores, no atomic RMW"),
        map_find(small, one_small),
        lookups(one_small, [rt](std::uint64_t id) { return rt->find(id); }), s.fast);
    add_compared(s,
                 titled(group, "resolve alone (handle kept)", "std::unordered_map find, 10 entries",
                        "generation check, no lock, no read-modify-write"),
                 map_find(small, one_small),
                 lookups(one_small, [rt, handle](std::uint64_t) { return rt->resolve(handle); }),
                 s.fast);
    add_compared(s,
                 titled(group, "find_all (C++, returns a std::vector)", "find, 10 contracts",
                        "one match; the vector's allocation included"),
                 lookups(one_small, [rt](std::uint64_t id) { return rt->find(id); }),
                 lookups(one_small, [rt](std::uint64_t id) { return rt->find_all(id).size(); }),
                 s.fast);

    const fs::path dir = make_plugin_bundle(s.work, s.plugin, "lookup");
    CHostBench* c_host = c_host_bench_open(dir.c_str(), plugin_library(dir, "lookup").c_str());
    if (c_host == nullptr) throw std::runtime_error("the C host could not start");
    add_compared(
        s,
        titled(group, "C host: find + resolve through libpolyplug.so",
               "C++: find + resolve, 10 contracts", "two HostApi calls from C", under_15ns),
        find_resolve(small, one_small), c_loop(c_host, c_host_bench_find_resolves), s.fast);
    add_compared(
        s,
        titled(group, "C host: find_all_guest_contracts + free", "C host: find_guest_contract",
               "one match: count, host allocation, fill, then HostApi.free"),
        c_loop(c_host, c_host_bench_finds), c_loop(c_host, c_host_bench_find_alls), s.fast);
    c_host_bench_close(c_host);
}

}  // namespace bench
