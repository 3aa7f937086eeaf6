/* SPDX-License-Identifier: MIT */
/* The C host side of the benchmarks: a C11 translation unit that drives libpolyplug.so through
 * HostApi only, beside the same calls through raw dlsym pointers (its baselines). Each function
 * runs its operation `n` times and returns something derived from the results, so that nothing
 * can be optimised away. */
#ifndef POLYPLUG_BENCH_C_HOST_BENCH_H
#define POLYPLUG_BENCH_C_HOST_BENCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CHostBench CHostBench;

/** Creates a runtime through polyplug_runtime_create, loads the benchmark bundle in `bundle_dir`,
 * resolves bench.inc@1 and creates an instance; opens `library_path` (the same plugin file) with
 * dlopen for the baselines. NULL on failure, with the reason on stderr. */
CHostBench* c_host_bench_open(const char* bundle_dir, const char* library_path);
void c_host_bench_close(CHostBench* bench);

/** bench.inc@1 fn 0 through the runtime's interface: `iface->dispatch.native.functions[0]`. */
uint32_t c_host_bench_table_calls(CHostBench* bench, uint64_t n);
/** The same plugin function through a raw dlsym pointer. */
uint32_t c_host_bench_raw_calls(CHostBench* bench, uint64_t n);
/** A plain C function of the plugin (`bench_inc_by_value`) through a raw dlsym pointer. */
uint32_t c_host_bench_plain_calls(CHostBench* bench, uint64_t n);
/** HostApi.find_guest_contract for bench.inc@1. */
uint64_t c_host_bench_finds(CHostBench* bench, uint64_t n);
/** HostApi.find_guest_contract then resolve_guest_contract. */
uint64_t c_host_bench_find_resolves(CHostBench* bench, uint64_t n);
/** HostApi.find_all_guest_contracts, then HostApi.free of the array it returns. */
uint64_t c_host_bench_find_alls(CHostBench* bench, uint64_t n);

#ifdef __cplusplus
}
#endif

#endif
