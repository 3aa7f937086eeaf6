// SPDX-License-Identifier: MIT
/// @file bench/payload_bench.cpp
/// Payload scaling, as the original's payload_scaling: the same per-byte fill loop (payload_fill.h)
/// in a function of this program called directly, and in the plugin's bench.inc@1 fn 1 called
/// through the runtime's table, for 0 B to 16 KiB. The runtime's share should stay a constant.
#include "bench_bundle.hpp"
#include "bench_runtime.hpp"
#include "payload_fill.h"
#include "suite.hpp"

#include <polyplug/dispatch.hpp>

#include <vector>

namespace bench {

void run_payload(suite& s) {
    const fs::path dir = make_plugin_bundle(s.work, s.plugin, "payload");
    const runtime_ptr rt = make_runtime();
    load_bundle(*rt, dir);
    const GuestContractInterface* iface = resolve(*rt, inc_contract_id);
    const GuestContractInstance instance{nullptr, inc_contract_id};
    std::vector<std::uint8_t> buffer(16 * 1024);

    for (const std::size_t size : {0, 16, 256, 1024, 4096, 16384}) {
        std::uint8_t* data = buffer.data();
        const batch direct = [data, size](std::uint64_t n) {
            return time_loop(n, [&](std::uint64_t count) {
                for (std::uint64_t i = 0; i < count; ++i)
                    consume(bench_payload_fill(data, size, static_cast<std::uint8_t>(i)));
            });
        };
        const batch dispatched = [data, size, iface, instance](std::uint64_t n) {
            return time_loop(n, [&](std::uint64_t count) {
                AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
                for (std::uint64_t i = 0; i < count; ++i) {
                    const BenchFillArgs args{data, size, static_cast<std::uint8_t>(i)};
                    std::uint8_t last = 0;
                    polyplug::function_cast<GuestContractFn>(
                        iface->dispatch.native.functions[fill_fn])(instance, &args, &last, &err);
                    consume(last);
                }
            });
        };
        const std::string bytes =
            size < 1024 ? std::to_string(size) + " B" : std::to_string(size / 1024) + " KiB";
        add_compared(s,
                     titled("payload scaling", "fill " + bytes + ": runtime table call",
                            "fill " + bytes + ": direct call (same program)"),
                     direct, dispatched, s.fast);
    }
}

}  // namespace bench
