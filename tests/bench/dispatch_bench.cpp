// SPDX-License-Identifier: MIT
/// @file bench/dispatch_bench.cpp
/// Native dispatch: one call of bench.inc@1 fn 0 (a u32 increment) by every route a host has,
/// each beside the route it should cost no more than. Calls are chained (counter = f(counter)),
/// as in the original's counter_inc bench, so each row is the latency of one call.
#include "bench_bundle.hpp"
#include "bench_runtime.hpp"
#include "c_host_bench.h"
#include "suite.hpp"

#include <polyplug/client.hpp>
#include <polyplug/contract.hpp>
#include <polyplug/dispatch.hpp>

namespace bench {
namespace {

const std::string group = "native dispatch";

// bench.inc@1 declared for the typed C++ API (contract.hpp).
struct inc_contract {
    static constexpr polyplug::guest_contract_name name{"bench.inc", 1, 0, 0};
    static constexpr polyplug::function<0, std::uint32_t(std::uint32_t)> inc{"inc"};
    static constexpr std::tuple functions{inc};
};
static_assert(polyplug::contract_id_of<inc_contract>() == inc_contract_id);

BENCH_NOINLINE std::uint32_t direct_inc(std::uint32_t value) {
    return value + 1;
}

/// A batch of `n` chained calls; `call(value, err)` makes one call and returns its result.
template <class Call>
batch counter_chain(Call call) {
    return [call](std::uint64_t n) {
        std::uint32_t counter = 0;
        AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
        const double ns = time_loop(n, [&](std::uint64_t count) {
            for (std::uint64_t i = 0; i < count; ++i) counter = call(counter, err);
        });
        consume(counter);
        consume(err.code);
        return ns;
    };
}

/// A batch that hands the whole loop to C (c_host_bench.c).
template <class Loop>
batch c_loop(CHostBench* host, Loop loop) {
    return [host, loop](std::uint64_t n) {
        return time_loop(n, [&](std::uint64_t count) { consume(loop(host, count)); });
    };
}

}  // namespace

void run_dispatch(suite& s) {
    const fs::path dir = make_plugin_bundle(s.work, s.plugin, "dispatch");
    const fs::path file = plugin_library(dir, "dispatch");
    const runtime_ptr rt = make_runtime();
    load_bundle(*rt, dir);
    const GuestContractInterface* iface = resolve(*rt, inc_contract_id);
    const GuestContractInstance instance{nullptr, inc_contract_id};  // bench.inc is stateless

    const library lib(file);
    const auto raw = lib.symbol<GuestContractFn>("bench_inc");
    const auto by_value = lib.symbol<std::uint32_t (*)(std::uint32_t)>("bench_inc_by_value");

    const batch direct = counter_chain([](std::uint32_t v, AbiError&) { return direct_inc(v); });
    const batch raw_by_value =
        counter_chain([by_value](std::uint32_t v, AbiError&) { return by_value(v); });
    const batch raw_abi = counter_chain([raw, instance](std::uint32_t v, AbiError& err) {
        std::uint32_t out;
        raw(instance, &v, &out, &err);
        return out;
    });
    // The interface pointer is all the loop keeps: after every (opaque) call the compiler must
    // load the table pointer and the entry again, exactly as a host's loop does.
    const batch table = counter_chain([iface, instance](std::uint32_t v, AbiError& err) {
        std::uint32_t out;
        polyplug::function_cast<GuestContractFn>(iface->dispatch.native.functions[inc_fn])(
            instance, &v, &out, &err);
        return out;
    });
    const batch guest_function = counter_chain([iface, instance](std::uint32_t v, AbiError& err) {
        std::uint32_t out = 0;
        if (const GuestContractFn fn = polyplug::guest_function(*iface, inc_fn))
            fn(instance, &v, &out, &err);
        return out;
    });
    const batch call = counter_chain([iface, instance](std::uint32_t v, AbiError& err) {
        std::uint32_t out;
        err = polyplug::call(*iface, instance, inc_fn, &v, &out);
        return out;
    });

    const budget within_10_percent{"<= 1.10x raw dlsym pointer", 1.10, 0};
    add_compared(s,
                 titled(group, "raw dlsym pointer, by value inc(u32)",
                        "direct call, by value (same program)", "crossing into a shared library"),
                 direct, raw_by_value, s.fast);
    add_compared(s,
                 titled(group, "raw dlsym pointer, ABI signature", "raw dlsym pointer, by value",
                        "the calling convention: pointers in and out, an AbiError"),
                 raw_by_value, raw_abi, s.fast);
    add_compared(
        s,
        titled(group, "runtime table call iface->functions[i]", "raw dlsym pointer, ABI signature",
               "find + resolve once, then two loads per call", within_10_percent),
        raw_abi, table, s.fast);
    add_compared(s,
                 titled(group, "runtime table call (the original's comparison)",
                        "raw dlsym pointer, by value",
                        "how the original compares: its 2.40 ns vs 1.95 ns = 1.23x"),
                 raw_by_value, table, s.fast);
    add_compared(
        s,
        titled(group, "polyplug::guest_function per call", "raw dlsym pointer, ABI signature",
               "range check and acquire loads every call; hot loops keep the pointer"),
        raw_abi, guest_function, s.fast);
    add_compared(s,
                 titled(group, "polyplug::call", "raw dlsym pointer, ABI signature",
                        "native or VM, range-checked, returns the AbiError"),
                 raw_abi, call, s.fast);

    CHostBench* c_host = c_host_bench_open(dir.c_str(), file.c_str());
    if (c_host == nullptr) throw std::runtime_error("the C host could not start");
    add_compared(s,
                 titled(group, "C host: table call through libpolyplug.so",
                        "C: raw dlsym pointer, ABI signature",
                        "a C11 translation unit driving the shim's HostApi", within_10_percent),
                 c_loop(c_host, c_host_bench_raw_calls), c_loop(c_host, c_host_bench_table_calls),
                 s.fast);
    c_host_bench_close(c_host);

    polyplug::client<inc_contract> typed_client(host_api(*rt));
    polyplug::client<inc_contract>* typed_ptr = &typed_client;
    const batch typed = counter_chain([typed_ptr](std::uint32_t v, AbiError& err) {
        std::uint32_t out = 0;
        err = typed_ptr->invoke(inc_contract::inc, &out, v);
        return out;
    });
    add_compared(
        s,
        titled(group, "typed C++ call client.invoke(inc, v)", "raw dlsym pointer, ABI signature",
               "contract declared in C++; arguments packed in their C layout", within_10_percent),
        raw_abi, typed, s.fast);
}

}  // namespace bench
