/* SPDX-License-Identifier: MIT */
/**
 * @file runtime_contract.h
 * host.polyplug.Runtime@1: the built-in host contract every runtime registers, through which C
 * hosts (and plugins) reach what the frozen 184-byte HostApi lacks: discovery and ordered loading
 * of plugin directories, cascade unload, the unmap policy, bundle metadata, and watching plugin
 * directories for changes.
 *
 * Usage from C:
 * @code
 * const HostContractInterface* rt = host->resolve_host_contract_interface(
 *     host, POLYPLUG_RUNTIME_CONTRACT_ID, 0);
 * HostContractInstance self = host->get_host_contract(host, POLYPLUG_RUNTIME_CONTRACT_ID, 0);
 * StringView dirs[] = {polyplug_sv("plugins")};
 * PolyplugLoadDirsArgs args = {dirs, 1};
 * PolyplugLoadDirsResult result;
 * AbiError err = {0};
 * polyplug_runtime_fn(rt, PolyplugRuntimeFn_LoadDirs)(self, &args, &result, &err);
 * @endcode
 * The instance is a singleton owned by the runtime: do not destroy it. Every function reports
 * failures as an AbiError code with the detail in get_last_error. Buffers and arrays in results
 * are allocated with HostApi.alloc and belong to the caller.
 */
#ifndef POLYPLUG_RUNTIME_CONTRACT_H
#define POLYPLUG_RUNTIME_CONTRACT_H

#include <polyplug/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

#define POLYPLUG_RUNTIME_CONTRACT_NAME "host.polyplug.Runtime"
#define POLYPLUG_RUNTIME_CONTRACT_MAJOR 1u
#define POLYPLUG_RUNTIME_CONTRACT_MINOR 1u /* 1: DescribeContractFile */
/** host_contract_id("host.polyplug.Runtime", 1) */
#define POLYPLUG_RUNTIME_CONTRACT_ID 0xe847ef18831f2333ull

/** Function ids (declaration order; new functions are only ever appended). */
enum {
    PolyplugRuntimeFn_LoadDirs = 0,       /**< PolyplugLoadDirsArgs -> PolyplugLoadDirsResult */
    PolyplugRuntimeFn_UnloadCascade = 1,  /**< PolyplugUnloadArgs -> uint32_t bundles unloaded */
    PolyplugRuntimeFn_SetUnmapPolicy = 2, /**< PolyplugUnmapPolicyArgs -> nothing (out NULL) */
    PolyplugRuntimeFn_BundleInfo = 3,     /**< PolyplugBundleInfoArgs -> PolyplugBundleInfo */
    PolyplugRuntimeFn_Watch = 4,          /**< PolyplugWatchArgs -> nothing (out NULL) */
    PolyplugRuntimeFn_Unwatch = 5,        /**< args and out NULL */
    PolyplugRuntimeFn_PollWatch = 6,      /**< args NULL -> uint32_t bundles reloaded or loaded */
    PolyplugRuntimeFn_DescribeContractFile = 7, /**< PolyplugDescribeContractFileArgs -> Buffer */
    PolyplugRuntimeFn_Count = 8
};

/** Scan these plugin directories (immediate subdirectories holding manifest.toml), check the
 * dependency graph, and load every bundle providers-first. All or nothing: if any bundle fails to
 * load, those loaded by this call are unloaded again. */
typedef struct PolyplugLoadDirsArgs {
    const StringView* dirs;
    size_t count;
} PolyplugLoadDirsArgs;

typedef struct PolyplugLoadDirsResult {
    uint32_t loaded;    /**< bundles loaded by this call */
    uint32_t skipped;   /**< candidates skipped (malformed manifest, unreadable directory) */
    Buffer diagnostics; /**< UTF-8, one line per skipped candidate; free (ptr, cap, 1) */
} PolyplugLoadDirsResult;

/** Unloads the bundle and, first, every loaded bundle that depends on it (transitively). */
typedef struct PolyplugUnloadArgs {
    uint64_t bundle_id;
} PolyplugUnloadArgs;

/** What happens to the code of bundles unloaded from now on. */
typedef struct PolyplugUnmapPolicyArgs {
    uint32_t policy;   /**< 0: unmap after the grace period; 1: never while the runtime lives */
    uint32_t grace_ms; /**< grace period for policy 0 */
} PolyplugUnmapPolicyArgs;

typedef struct PolyplugBundleInfoArgs {
    uint64_t bundle_id;
} PolyplugBundleInfoArgs;

/** `Array<u64>` of contract ids. */
typedef struct ArrayOf_u64 {
    uint64_t* items;
    size_t len;
    size_t align;
} ArrayOf_u64;

/** Metadata of a loaded bundle. Every Buffer and the array are host-allocated: release them with
 * polyplug_bundle_info_free. */
typedef struct PolyplugBundleInfo {
    uint64_t id;
    Version version;
    uint32_t language; /**< SupportedLanguage */
    Buffer name;
    Buffer path;           /**< bundle directory */
    Buffer loader;         /**< loader name, e.g. "native" */
    ArrayOf_u64 contracts; /**< ids of the guest contracts it registered */
} PolyplugBundleInfo;

/** Watch: no thread of the runtime's; changes are acted on when the host calls PollWatch. */
#define POLYPLUG_WATCH_MANUAL 1u

/** Watch these plugin directories (inotify, Linux): a bundle whose manifest.toml or artifact is
 * replaced is reloaded, a bundle directory that appears is loaded, once `debounce_ms` passed
 * without further change. Only files closed after writing or renamed into place count. Replaces
 * an earlier watch; needs RuntimeConfig.hot_reload_enabled. Without POLYPLUG_WATCH_MANUAL, a
 * runtime thread acts, and on_reload and log callbacks run on it. */
typedef struct PolyplugWatchArgs {
    const StringView* dirs;
    size_t count;
    uint32_t debounce_ms; /**< quiet time before acting; 250 is a good default */
    uint32_t flags;       /**< 0 or POLYPLUG_WATCH_MANUAL */
} PolyplugWatchArgs;

/** Reads a contract file (`*.api.toml`) with the runtime's own parser and returns its computed
 * layouts as text (polyplug/contract_description.hpp gives the format, "polyplug-contracts 1"):
 * every enum, struct with its field offsets, contract with its id, and function with its
 * argument struct's size and parameter offsets. For hosts that call contracts without a C
 * compiler (Python ctypes, LuaJIT FFI). `out` is a Buffer allocated with HostApi.alloc: free
 * (ptr, cap, 1). A file that does not parse or breaks a rule fails with the message
 * "file:line:column: ..." in get_last_error. Since minor version 1. */
typedef struct PolyplugDescribeContractFileArgs {
    StringView path; /**< UTF-8 path of the contract file */
} PolyplugDescribeContractFileArgs;

/** Function `fn_id` of the runtime contract as a callable pointer (NULL if out of range). */
static inline HostContractFn polyplug_runtime_fn(const HostContractInterface* iface,
                                                 uint32_t fn_id) {
    if (iface == NULL || fn_id >= iface->dispatch.native.function_count) return NULL;
    return (HostContractFn)(uintptr_t)iface->dispatch.native.functions[fn_id];
}

/** Releases what PolyplugRuntimeFn_BundleInfo allocated. */
static inline void polyplug_bundle_info_free(const HostApi* host, PolyplugBundleInfo* info) {
    host->free(host, info->name.ptr, info->name.cap, 1);
    host->free(host, info->path.ptr, info->path.cap, 1);
    host->free(host, info->loader.ptr, info->loader.cap, 1);
    host->free(host, (uint8_t*)info->contracts.items, info->contracts.len * sizeof(uint64_t),
               info->contracts.align);
    info->name.ptr = info->path.ptr = info->loader.ptr = NULL;
    info->contracts.items = NULL;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* POLYPLUG_RUNTIME_CONTRACT_H */
