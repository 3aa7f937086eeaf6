/* SPDX-License-Identifier: MIT */
/**
 * @file abi.h
 * The frozen polyplug 0.1.1 C ABI: every struct, enum value and function-pointer type a host or a
 * plugin exchanges with the runtime, the two runtime exports, the plugin entry points and the
 * FNV-1a-64 id helpers.
 *
 * Binary-compatible with polyplug 0.1.1 on 64-bit little-endian targets (x86_64, aarch64). Every
 * size and field offset is asserted at the end of this file. Compiles as C11 and as C++20.
 *
 * Type, field and enum names follow the original. Enum constants are spelled `<Enum>_<Variant>`
 * (for example `AbiErrorCode_StaleHandle`), and every enum-typed field is a plain `uint32_t`:
 * receivers must read raw values and treat unknown ones as documented (see AbiErrorCode).
 */
#ifndef POLYPLUG_ABI_H
#define POLYPLUG_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** ABI version a native plugin's `polyplug_abi_version()` must return. */
#define POLYPLUG_ABI_VERSION 1u

/** Version of the C loader table accepted by `HostApi.register_loader` (our extension, §11). */
#define POLYPLUG_LOADER_ABI_VERSION 2u /* 2: LoaderBundleInfo.load_id, unload by load id */

/* ---------------------------------------------------------------------------------------------
 * Export and visibility helpers for plugin authors
 * ------------------------------------------------------------------------------------------- */

#if defined(_WIN32)
#define POLYPLUG_PLUGIN_EXPORT __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define POLYPLUG_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define POLYPLUG_PLUGIN_EXPORT
#endif

/* ---------------------------------------------------------------------------------------------
 * Primitive ABI types (spec §2)
 * ------------------------------------------------------------------------------------------- */

struct HostApi;

/** Non-owning UTF-8 view, never NUL-terminated. `{NULL, 0}` is the absent/empty string. */
typedef struct StringView {
    const uint8_t* ptr;
    size_t len;
} StringView;

/** Owning byte buffer allocated with `HostApi.alloc`; free with `free(host, ptr, cap, 1)`. */
typedef struct Buffer {
    uint8_t* ptr;
    size_t len; /**< bytes used */
    size_t cap; /**< bytes allocated */
} Buffer;

/**
 * Caller-frees array (`Array<T>` in the original). Allocated with `HostApi.alloc(len *
 * sizeof(T), alignof(T))`; the receiver frees `(items, len * sizeof(T), align)`. Empty arrays
 * are `{NULL, 0, alignof(T)}`. The typed aliases below share this exact layout.
 */
typedef struct Array {
    void* items;
    size_t len;
    size_t align;
} Array;

/** Semantic version; only `major` takes part in contract identity. */
typedef struct Version {
    uint32_t major;
    uint32_t minor;
    uint32_t patch;
} Version;

/** Error codes carried in `AbiError.code` (a raw `uint32_t`). */
typedef uint32_t AbiErrorCode;
enum {
    AbiErrorCode_Ok = 0,
    AbiErrorCode_Generic = 1, /**< unspecified failure; also what unknown codes map to */
    AbiErrorCode_BufferTooSmall = 2,
    AbiErrorCode_Panic = 3, /**< plugin glue caught its own panic/exception */
    AbiErrorCode_NotFound = 4,
    AbiErrorCode_StaleHandle = 5,
    AbiErrorCode_FunctionNotAvailable = 6,
    AbiErrorCode_DuplicateProvider = 7,
    AbiErrorCode_InvalidPointer = 8,
    AbiErrorCode_ReentrantCall = 9,
    AbiErrorCode_HostContractNotFound = 100,
    AbiErrorCode_HostContractVersionMismatch = 101,
    AbiErrorCode_HostContractCallFailed = 102,
    AbiErrorCode_FirstPluginDefined = 256 /**< codes >= 256 belong to plugins */
};

/**
 * Error out-parameter. Success is `{0, {NULL, 0}}`. Messages are borrowed: valid until the next
 * call into whoever produced them; never free a runtime-produced message.
 */
typedef struct AbiError {
    uint32_t code;
    StringView message;
} AbiError;

/* ---------------------------------------------------------------------------------------------
 * Enumerations (spec §3). Fields of these types are plain uint32_t.
 * ------------------------------------------------------------------------------------------- */

typedef uint32_t DispatchType;
enum { DispatchType_Native = 0, DispatchType_VirtualMachine = 1 };

typedef uint32_t Compatibility;
enum { Compatibility_Strict = 0, Compatibility_Relaxed = 1, Compatibility_Yolo = 2 };

typedef uint32_t ReloadPhaseType;
enum {
    ReloadPhaseType_Preparing = 0,
    ReloadPhaseType_Reloaded = 1,
    ReloadPhaseType_Failed = 2,
    ReloadPhaseType_Unloading = 3
};

typedef uint32_t LogLevel;
enum {
    LogLevel_Error = 1,
    LogLevel_Warn = 2,
    LogLevel_Info = 3,
    LogLevel_Debug = 4,
    LogLevel_Trace = 5
};

typedef uint32_t SupportedLanguage;
enum {
    SupportedLanguage_Rust = 0,
    SupportedLanguage_Cpp = 1,
    SupportedLanguage_Dotnet = 2,
    SupportedLanguage_Python = 3,
    SupportedLanguage_Lua = 4,
    SupportedLanguage_JavaScript = 5
};

/** Reserved and unused in 0.1.1; kept for source compatibility. */
typedef uint32_t ContractType;
enum { ContractType_Host = 0, ContractType_Plugin = 1 };

/* ---------------------------------------------------------------------------------------------
 * Ids, handles, instances (spec §2.2, §4)
 * ------------------------------------------------------------------------------------------- */

typedef uint64_t BundleId;
typedef uint64_t GuestContractId;
typedef uint64_t HostContractId;

/** Registry handle: slot index + slot generation. Null is `{UINT32_MAX, 0}`. Align 4. */
typedef struct GuestContractHandle {
    uint32_t index;
    uint32_t generation;
} GuestContractHandle;

/** One guest-side instance. `data == NULL` with a valid id is a legal stateless instance. */
typedef struct GuestContractInstance {
    void* data;
    uint64_t contract_id;
} GuestContractInstance;

/** One host-side instance; `data == NULL` means creation failed. */
typedef struct HostContractInstance {
    void* data;
} HostContractInstance;

/** Opaque per-(bundle, contract) state of a VM loader; null for native contracts. */
typedef struct VmLoaderData {
    void* data;
} VmLoaderData;

/** `Array<GuestContractHandle>`: element size 8, align 4. */
typedef struct ArrayOf_GuestContractHandle {
    GuestContractHandle* items;
    size_t len;
    size_t align;
} ArrayOf_GuestContractHandle;

/** `Array<BundleId>`: element size 8, align 8. */
typedef struct ArrayOf_BundleId {
    BundleId* items;
    size_t len;
    size_t align;
} ArrayOf_BundleId;

struct DependencyInfo;
/** `Array<DependencyInfo>`: element size 24, align 8. */
typedef struct ArrayOf_DependencyInfo {
    struct DependencyInfo* items;
    size_t len;
    size_t align;
} ArrayOf_DependencyInfo;

/* ---------------------------------------------------------------------------------------------
 * Dispatch (spec §5)
 * ------------------------------------------------------------------------------------------- */

/** A native guest-contract function: `functions[fn_id](instance, args, out, out_err)`. */
typedef void (*GuestContractFn)(GuestContractInstance instance, const void* args, void* out,
                                AbiError* out_err);

/** A native host-contract function. */
typedef void (*HostContractFn)(HostContractInstance instance, const void* args, void* out,
                               AbiError* out_err);

struct CallArena;

/** The single entry point of a VM-dispatched contract. `arena` may be NULL. */
typedef void (*VmCallFn)(VmLoaderData loader_data, GuestContractInstance instance, uint32_t fn_id,
                         const void* args, void* out, struct CallArena* arena, AbiError* out_err);

/** Table of `function_count` function pointers indexed by function id. */
typedef struct NativeDispatch {
    uint32_t function_count;
    const void* const* functions;
} NativeDispatch;

typedef struct VmDispatch {
    VmCallFn call;
    VmLoaderData loader_data;
} VmDispatch;

/** Select the member by the owning interface's `dispatch_type`. */
typedef union DispatchMechanisms {
    NativeDispatch native;
    VmDispatch vm;
} DispatchMechanisms;

/** Overflow block header of a CallArena (spec §5.4, retain and rewind): `capacity` is the
 * block's size in bytes, this header included; `used` the offset of its next free byte from the
 * block's start (the header size after a reset). Blocks are kept across resets, freed at teardown.
 */
typedef struct ArenaOverflowBlock {
    struct ArenaOverflowBlock* next;
    size_t capacity;
    size_t used;
} ArenaOverflowBlock;

/** Per-call bump allocator for variable-size VM results (spec §5.4). */
typedef struct CallArena {
    uint8_t* cur;
    uint8_t* end;
    uint8_t* base;
    const struct HostApi* host;
    ArenaOverflowBlock* first_overflow;
} CallArena;

/* ---------------------------------------------------------------------------------------------
 * Interfaces and data structs (spec §6)
 * ------------------------------------------------------------------------------------------- */

typedef void (*GuestCreateInstanceFn)(VmLoaderData loader_data, const struct HostApi* host,
                                      const void* args, GuestContractInstance* out_instance);
typedef void (*GuestDestroyInstanceFn)(VmLoaderData loader_data, const struct HostApi* host,
                                       GuestContractInstance instance);

/** A guest contract as registered by a plugin. The runtime stores its own copy. */
typedef struct GuestContractInterface {
    uint64_t contract_id;
    Version contract_version;
    uint32_t dispatch_type; /**< DispatchType, read as raw u32 */
    GuestCreateInstanceFn create_instance;
    GuestDestroyInstanceFn destroy_instance;
    DispatchMechanisms dispatch;
} GuestContractInterface;

struct HostContractInterface;
typedef void (*HostCreateInstanceFn)(const struct HostContractInterface* self, const void* args,
                                     HostContractInstance* out_instance);
typedef void (*HostDestroyInstanceFn)(const struct HostContractInterface* self,
                                      HostContractInstance instance);

/** A host contract. Stored by reference: it must outlive the runtime. */
typedef struct HostContractInterface {
    uint64_t contract_id;
    Version contract_version;
    bool singleton;
    uint32_t dispatch_type;
    void* runtime;   /**< opaque; never free */
    void* user_data; /**< registrant context, stored verbatim */
    HostCreateInstanceFn create_instance;
    HostDestroyInstanceFn destroy_instance;
    DispatchMechanisms dispatch;
} HostContractInterface;

/** Describes one registration; borrowed for the duration of `register_guest_contract`. */
typedef struct PluginDescriptor {
    StringView name;          /**< human-readable plugin name */
    StringView contract_name; /**< full contract name, e.g. "test.add"; must be non-empty */
    Version version;
} PluginDescriptor;

/** Passed to `polyplug_init`; valid only during the call. */
typedef struct BundleInitContext {
    uint64_t bundle_id;     /**< fnv1a64(manifest name) */
    StringView bundle_path; /**< UTF-8 path of the bundle directory */
} BundleInitContext;

/** One declared `[[dependency]]` of the bundle whose init is running. */
typedef struct DependencyInfo {
    uint64_t contract_id;
    uint32_t min_version; /**< required major (docs/BEHAVIOUR.md: the original parsed "1.0" as 0) */
    uint64_t bundle_id;   /**< 0 = any provider */
} DependencyInfo;

/** Delivered by const pointer to `RuntimeConfig.on_reload`; valid only during the callback. */
typedef struct ReloadPhase {
    uint32_t phase_type; /**< ReloadPhaseType */
    uint64_t bundle_id;
    StringView bundle_name;
    StringView reason; /**< null view unless Failed */
} ReloadPhase;

typedef void (*ReloadCallbackFn)(void* user_data, const ReloadPhase* phase);
typedef void (*LogCallbackFn)(void* user_data, uint32_t level, StringView scope,
                              StringView message);

/** Runtime configuration; borrowed during `polyplug_runtime_create` only. NULL = defaults. */
typedef struct RuntimeConfig {
    uint32_t compatibility; /**< Compatibility; default Strict */
    bool hot_reload_enabled;
    ReloadCallbackFn on_reload; /**< nullable */
    void* on_reload_user_data;
    LogCallbackFn log; /**< nullable; without it Error and Warn go to stderr */
    void* log_user_data;
    uint32_t log_max_level; /**< LogLevel; default Warn */
} RuntimeConfig;

/* ---------------------------------------------------------------------------------------------
 * HostApi (spec §8): the runtime's function table, 184 bytes. First parameter is always self.
 * ------------------------------------------------------------------------------------------- */

typedef struct HostApi {
    void* runtime;
    void (*register_guest_contract)(const struct HostApi* self, const PluginDescriptor* descriptor,
                                    const GuestContractInterface* interface, AbiError* out_err);
    uint8_t* (*alloc)(const struct HostApi* self, size_t size, size_t align);
    void (*free)(const struct HostApi* self, uint8_t* ptr, size_t size, size_t align);
    GuestContractHandle (*find_guest_contract)(const struct HostApi* self, uint64_t contract_id,
                                               uint32_t min_version);
    ArrayOf_GuestContractHandle (*find_all_guest_contracts)(const struct HostApi* self,
                                                            uint64_t contract_id,
                                                            uint32_t min_version);
    const GuestContractInterface* (*resolve_guest_contract)(const struct HostApi* self,
                                                            GuestContractHandle handle);
    HostContractInstance (*get_host_contract)(const struct HostApi* self, uint64_t contract_id,
                                              uint32_t min_version);
    const HostContractInterface* (*resolve_host_contract_interface)(const struct HostApi* self,
                                                                    uint64_t contract_id,
                                                                    uint32_t min_version);
    ArrayOf_BundleId (*list_bundles)(const struct HostApi* self);
    ArrayOf_DependencyInfo (*get_dependencies)(const struct HostApi* self);
    void (*load_bundle)(const struct HostApi* self, const uint8_t* path, size_t path_len,
                        AbiError* out_err);
    void (*reload_bundle)(const struct HostApi* self, const uint8_t* path, size_t path_len,
                          AbiError* out_err);
    void (*register_host_contract)(const struct HostApi* self,
                                   const HostContractInterface* interface, AbiError* out_err);
    void (*register_loader)(const struct HostApi* self, void* loader_ptr, AbiError* out_err);
    size_t (*get_last_error)(const struct HostApi* self, uint8_t* buf, size_t buf_len);
    size_t (*get_error_len)(const struct HostApi* self);
    void (*unload_bundle)(const struct HostApi* self, uint64_t bundle_id, AbiError* out_err);
    void (*log)(const struct HostApi* self, uint32_t level, StringView scope, StringView message);
    void (*create_guest_instance)(const struct HostApi* self,
                                  const GuestContractInterface* interface, const void* args,
                                  GuestContractInstance* out_instance);
    void (*destroy_guest_instance)(const struct HostApi* self,
                                   const GuestContractInterface* interface,
                                   GuestContractInstance instance);
    const uint64_t* (*revision_counter)(const struct HostApi* self);
    const void* reserved; /**< always NULL; do not read */
} HostApi;

/* ---------------------------------------------------------------------------------------------
 * Loaders through the C ABI (our definition; the original's register_loader took a Rust box).
 * ------------------------------------------------------------------------------------------- */

/** What a loader is told about the bundle it loads. Valid only during the callback. */
typedef struct LoaderBundleInfo {
    uint64_t bundle_id;
    StringView name;          /**< manifest name */
    Version version;          /**< manifest version (0.0.0 when absent) */
    StringView bundle_dir;    /**< UTF-8 bundle directory */
    StringView artifact_path; /**< UTF-8 path of the platform's `file`, inside bundle_dir */
    StringView manifest_path; /**< UTF-8 path of manifest.toml */
    uint64_t load_id;         /**< unique per load or reload: key the loaded resources by it */
} LoaderBundleInfo;

/**
 * A bundle loader living in its own module, handed to `HostApi.register_loader`.
 *
 * The runtime opens the bundle's init window around `load` and `reload`: every
 * `register_guest_contract` made during those callbacks is attributed to the bundle. A loader keys
 * what it loaded by `LoaderBundleInfo.load_id`: during a reload the new version is loaded beside
 * the old one, and the runtime later releases whichever is no longer needed with `unload(load_id)`
 * (the old one after a successful swap, the new one after a failed reload). Ownership of the table
 * transfers to the runtime on registration, even when registration fails: the runtime
 * calls `destroy(self)` exactly once (on rejection, or when the runtime is destroyed).
 */
typedef struct BundleLoader {
    uint32_t abi_version; /**< POLYPLUG_LOADER_ABI_VERSION */
    uint32_t language;    /**< SupportedLanguage, for bundle metadata */
    StringView name;      /**< matched exactly against manifest `loader`; must stay valid */
    bool supports_hot_reload;
    void* user_data; /**< the loader's own state */
    void (*load)(struct BundleLoader* self, const HostApi* host, const LoaderBundleInfo* bundle,
                 AbiError* out_err);
    void (*reload)(struct BundleLoader* self, const HostApi* host, const LoaderBundleInfo* bundle,
                   AbiError* out_err); /**< nullable when !supports_hot_reload */
    void (*unload)(struct BundleLoader* self, const HostApi* host,
                   uint64_t load_id);           /**< releases one loaded version; nullable */
    void (*destroy)(struct BundleLoader* self); /**< nullable */
} BundleLoader;

/* ---------------------------------------------------------------------------------------------
 * Entry points (spec §7)
 * ------------------------------------------------------------------------------------------- */

/** Creates an isolated runtime. NULL config = defaults. Returns NULL on failure. */
const HostApi* polyplug_runtime_create(const RuntimeConfig* config);
/** Destroys a runtime; NULL is ignored. Call exactly once per non-NULL handle. */
void polyplug_runtime_destroy(const HostApi* host);

/*
 * The plugin entry points. Declared here so a plugin's definitions get default visibility even
 * under -fvisibility=hidden, and so a wrong signature fails to compile. Define them exactly as
 * declared (in C++: inside extern "C", without noexcept). Code written against another header
 * that declares them differently can define POLYPLUG_NO_ENTRY_POINT_PROTOTYPES first.
 */
#ifndef POLYPLUG_NO_ENTRY_POINT_PROTOTYPES
/** Exported by every native plugin: must return POLYPLUG_ABI_VERSION. Checked before init runs. */
POLYPLUG_PLUGIN_EXPORT uint32_t polyplug_abi_version(void);
/**
 * Exported by every native plugin: registers its contracts through
 * `host->register_guest_contract`. A non-zero code fails the load, and nothing the plugin
 * registered stays visible. `ctx` is valid only during the call. No shutdown export exists.
 */
POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi* host, const BundleInitContext* ctx);
#endif

/** Pointer types of the two plugin entry points, for loaders. */
typedef uint32_t (*PolyplugAbiVersionFn)(void);
/** Exported by every native plugin; registers its contracts. Non-zero code fails the load. */
typedef AbiError (*PolyplugInitFn)(const HostApi* host, const BundleInitContext* ctx);

#define POLYPLUG_ABI_VERSION_SYMBOL "polyplug_abi_version"
#define POLYPLUG_INIT_SYMBOL "polyplug_init"

/* ---------------------------------------------------------------------------------------------
 * Small inline helpers (all static inline: nothing to link)
 * ------------------------------------------------------------------------------------------- */

#define POLYPLUG_FNV1A64_OFFSET_BASIS 0xcbf29ce484222325ull
#define POLYPLUG_FNV1A64_PRIME 0x00000100000001b3ull

/** Continues an FNV-1a-64 hash over `len` bytes. */
static inline uint64_t polyplug_fnv1a64_update(uint64_t hash, const void* data, size_t len) {
    const uint8_t* bytes = (const uint8_t*)data;
    for (size_t i = 0; i < len; ++i) {
        hash ^= bytes[i];
        hash *= POLYPLUG_FNV1A64_PRIME;
    }
    return hash;
}

/** FNV-1a-64 of `len` bytes. */
static inline uint64_t polyplug_fnv1a64(const void* data, size_t len) {
    return polyplug_fnv1a64_update(POLYPLUG_FNV1A64_OFFSET_BASIS, data, len);
}

static inline uint64_t polyplug_detail_hash_cstr(uint64_t hash, const char* s) {
    size_t n = 0;
    while (s[n] != '\0') ++n;
    return polyplug_fnv1a64_update(hash, s, n);
}

static inline uint64_t polyplug_detail_hash_decimal(uint64_t hash, uint32_t value) {
    char digits[10];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    while (n > 0) hash = polyplug_fnv1a64_update(hash, &digits[--n], 1);
    return hash;
}

static inline uint64_t polyplug_detail_prefixed_id(const char* prefix, const char* name,
                                                   size_t name_len, uint32_t major) {
    uint64_t hash = polyplug_detail_hash_cstr(POLYPLUG_FNV1A64_OFFSET_BASIS, prefix);
    hash = polyplug_fnv1a64_update(hash, name, name_len);
    hash = polyplug_fnv1a64_update(hash, "@", 1);
    return polyplug_detail_hash_decimal(hash, major);
}

/** Bundle id: fnv1a64(name), no prefix. */
static inline uint64_t polyplug_bundle_id(const char* name, size_t name_len) {
    return polyplug_fnv1a64(name, name_len);
}

/** Guest contract id: fnv1a64("guest_contract:" name "@" major). */
static inline uint64_t polyplug_guest_contract_id(const char* name, size_t name_len,
                                                  uint32_t major) {
    return polyplug_detail_prefixed_id("guest_contract:", name, name_len, major);
}

/** Host contract id: fnv1a64("host_contract:" name "@" major). */
static inline uint64_t polyplug_host_contract_id(const char* name, size_t name_len,
                                                 uint32_t major) {
    return polyplug_detail_prefixed_id("host_contract:", name, name_len, major);
}

/** A StringView over a NUL-terminated C string (NULL gives the null view). */
static inline StringView polyplug_sv(const char* s) {
    StringView view = {(const uint8_t*)s, 0};
    if (s != NULL)
        while (s[view.len] != '\0') ++view.len;
    return view;
}

/**
 * A native table entry for function `fn`. ISO C has no conversion from function to object
 * pointers (the table's element type is `const void*`); going through uintptr_t is exact on every
 * platform polyplug supports and keeps `-pedantic` builds quiet. Not a constant expression in C:
 * fill C tables at init. C++ can use reinterpret_cast<const void*>(&fn) in constant tables.
 */
#define POLYPLUG_FN_ENTRY(fn) ((const void*)(uintptr_t)(fn))

/** The null handle `{UINT32_MAX, 0}`. */
static inline GuestContractHandle polyplug_null_handle(void) {
    GuestContractHandle handle = {UINT32_MAX, 0u};
    return handle;
}

static inline bool polyplug_handle_is_null(GuestContractHandle handle) {
    return handle.index == UINT32_MAX;
}

/** `(generation << 32) | index`; the null handle packs to UINT64_MAX. */
static inline uint64_t polyplug_handle_pack(GuestContractHandle handle) {
    if (polyplug_handle_is_null(handle)) return UINT64_MAX;
    return ((uint64_t)handle.generation << 32) | handle.index;
}

/* ---------------------------------------------------------------------------------------------
 * Layout assertions: every size and offset given by the 0.1.1 specification.
 * ------------------------------------------------------------------------------------------- */

#ifdef __cplusplus
#define POLYPLUG_ABI_ASSERT(cond, msg) static_assert(cond, msg)
#define POLYPLUG_ABI_ALIGNOF(type) alignof(type)
#else
#define POLYPLUG_ABI_ASSERT(cond, msg) _Static_assert(cond, msg)
#define POLYPLUG_ABI_ALIGNOF(type) _Alignof(type)
#endif
#define POLYPLUG_ABI_OFFSET(type, field, off)                                \
    POLYPLUG_ABI_ASSERT(offsetof(type, field) == (off), #type "." #field     \
                                                              " must be at " \
                                                              "offset " #off)
#define POLYPLUG_ABI_SIZE(type, size) \
    POLYPLUG_ABI_ASSERT(sizeof(type) == (size), "sizeof(" #type ") must be " #size)

POLYPLUG_ABI_ASSERT(sizeof(void*) == 8 && sizeof(size_t) == 8,
                    "polyplug's 0.1.1 ABI is defined for 64-bit targets");
POLYPLUG_ABI_ASSERT(sizeof(bool) == 1, "the ABI's bool is one byte");

POLYPLUG_ABI_SIZE(StringView, 16);
POLYPLUG_ABI_OFFSET(StringView, ptr, 0);
POLYPLUG_ABI_OFFSET(StringView, len, 8);
POLYPLUG_ABI_SIZE(Buffer, 24);
POLYPLUG_ABI_OFFSET(Buffer, ptr, 0);
POLYPLUG_ABI_OFFSET(Buffer, len, 8);
POLYPLUG_ABI_OFFSET(Buffer, cap, 16);
POLYPLUG_ABI_SIZE(Array, 24);
POLYPLUG_ABI_OFFSET(Array, items, 0);
POLYPLUG_ABI_OFFSET(Array, len, 8);
POLYPLUG_ABI_OFFSET(Array, align, 16);
POLYPLUG_ABI_SIZE(ArrayOf_GuestContractHandle, 24);
POLYPLUG_ABI_SIZE(ArrayOf_BundleId, 24);
POLYPLUG_ABI_SIZE(ArrayOf_DependencyInfo, 24);
POLYPLUG_ABI_SIZE(Version, 12);
POLYPLUG_ABI_OFFSET(Version, major, 0);
POLYPLUG_ABI_OFFSET(Version, minor, 4);
POLYPLUG_ABI_OFFSET(Version, patch, 8);
POLYPLUG_ABI_SIZE(AbiError, 24);
POLYPLUG_ABI_OFFSET(AbiError, code, 0);
POLYPLUG_ABI_OFFSET(AbiError, message, 8);
POLYPLUG_ABI_SIZE(GuestContractHandle, 8);
POLYPLUG_ABI_ASSERT(POLYPLUG_ABI_ALIGNOF(GuestContractHandle) == 4,
                    "GuestContractHandle has align 4");
POLYPLUG_ABI_OFFSET(GuestContractHandle, index, 0);
POLYPLUG_ABI_OFFSET(GuestContractHandle, generation, 4);
POLYPLUG_ABI_SIZE(GuestContractInstance, 16);
POLYPLUG_ABI_OFFSET(GuestContractInstance, data, 0);
POLYPLUG_ABI_OFFSET(GuestContractInstance, contract_id, 8);
POLYPLUG_ABI_SIZE(HostContractInstance, 8);
POLYPLUG_ABI_SIZE(VmLoaderData, 8);
POLYPLUG_ABI_SIZE(NativeDispatch, 16);
POLYPLUG_ABI_OFFSET(NativeDispatch, function_count, 0);
POLYPLUG_ABI_OFFSET(NativeDispatch, functions, 8);
POLYPLUG_ABI_SIZE(VmDispatch, 16);
POLYPLUG_ABI_OFFSET(VmDispatch, call, 0);
POLYPLUG_ABI_OFFSET(VmDispatch, loader_data, 8);
POLYPLUG_ABI_SIZE(DispatchMechanisms, 16);
POLYPLUG_ABI_ASSERT(POLYPLUG_ABI_ALIGNOF(DispatchMechanisms) == 8,
                    "DispatchMechanisms has align 8");
POLYPLUG_ABI_SIZE(ArenaOverflowBlock, 24);
POLYPLUG_ABI_OFFSET(ArenaOverflowBlock, next, 0);
POLYPLUG_ABI_OFFSET(ArenaOverflowBlock, capacity, 8);
POLYPLUG_ABI_OFFSET(ArenaOverflowBlock, used, 16);
POLYPLUG_ABI_SIZE(CallArena, 40);
POLYPLUG_ABI_OFFSET(CallArena, cur, 0);
POLYPLUG_ABI_OFFSET(CallArena, end, 8);
POLYPLUG_ABI_OFFSET(CallArena, base, 16);
POLYPLUG_ABI_OFFSET(CallArena, host, 24);
POLYPLUG_ABI_OFFSET(CallArena, first_overflow, 32);
POLYPLUG_ABI_SIZE(GuestContractInterface, 56);
POLYPLUG_ABI_OFFSET(GuestContractInterface, contract_id, 0);
POLYPLUG_ABI_OFFSET(GuestContractInterface, contract_version, 8);
POLYPLUG_ABI_OFFSET(GuestContractInterface, dispatch_type, 20);
POLYPLUG_ABI_OFFSET(GuestContractInterface, create_instance, 24);
POLYPLUG_ABI_OFFSET(GuestContractInterface, destroy_instance, 32);
POLYPLUG_ABI_OFFSET(GuestContractInterface, dispatch, 40);
POLYPLUG_ABI_SIZE(HostContractInterface, 80);
POLYPLUG_ABI_OFFSET(HostContractInterface, contract_id, 0);
POLYPLUG_ABI_OFFSET(HostContractInterface, contract_version, 8);
POLYPLUG_ABI_OFFSET(HostContractInterface, singleton, 20);
POLYPLUG_ABI_OFFSET(HostContractInterface, dispatch_type, 24);
POLYPLUG_ABI_OFFSET(HostContractInterface, runtime, 32);
POLYPLUG_ABI_OFFSET(HostContractInterface, user_data, 40);
POLYPLUG_ABI_OFFSET(HostContractInterface, create_instance, 48);
POLYPLUG_ABI_OFFSET(HostContractInterface, destroy_instance, 56);
POLYPLUG_ABI_OFFSET(HostContractInterface, dispatch, 64);
POLYPLUG_ABI_SIZE(PluginDescriptor, 48);
POLYPLUG_ABI_OFFSET(PluginDescriptor, name, 0);
POLYPLUG_ABI_OFFSET(PluginDescriptor, contract_name, 16);
POLYPLUG_ABI_OFFSET(PluginDescriptor, version, 32);
POLYPLUG_ABI_SIZE(BundleInitContext, 24);
POLYPLUG_ABI_OFFSET(BundleInitContext, bundle_id, 0);
POLYPLUG_ABI_OFFSET(BundleInitContext, bundle_path, 8);
POLYPLUG_ABI_SIZE(DependencyInfo, 24);
POLYPLUG_ABI_OFFSET(DependencyInfo, contract_id, 0);
POLYPLUG_ABI_OFFSET(DependencyInfo, min_version, 8);
POLYPLUG_ABI_OFFSET(DependencyInfo, bundle_id, 16);
POLYPLUG_ABI_SIZE(ReloadPhase, 48);
POLYPLUG_ABI_OFFSET(ReloadPhase, phase_type, 0);
POLYPLUG_ABI_OFFSET(ReloadPhase, bundle_id, 8);
POLYPLUG_ABI_OFFSET(ReloadPhase, bundle_name, 16);
POLYPLUG_ABI_OFFSET(ReloadPhase, reason, 32);
POLYPLUG_ABI_SIZE(RuntimeConfig, 48);
POLYPLUG_ABI_OFFSET(RuntimeConfig, compatibility, 0x00);
POLYPLUG_ABI_OFFSET(RuntimeConfig, hot_reload_enabled, 0x04);
POLYPLUG_ABI_OFFSET(RuntimeConfig, on_reload, 0x08);
POLYPLUG_ABI_OFFSET(RuntimeConfig, on_reload_user_data, 0x10);
POLYPLUG_ABI_OFFSET(RuntimeConfig, log, 0x18);
POLYPLUG_ABI_OFFSET(RuntimeConfig, log_user_data, 0x20);
POLYPLUG_ABI_OFFSET(RuntimeConfig, log_max_level, 0x28);
POLYPLUG_ABI_SIZE(HostApi, 184);
POLYPLUG_ABI_OFFSET(HostApi, runtime, 0);
POLYPLUG_ABI_OFFSET(HostApi, register_guest_contract, 8);
POLYPLUG_ABI_OFFSET(HostApi, alloc, 16);
POLYPLUG_ABI_OFFSET(HostApi, free, 24);
POLYPLUG_ABI_OFFSET(HostApi, find_guest_contract, 32);
POLYPLUG_ABI_OFFSET(HostApi, find_all_guest_contracts, 40);
POLYPLUG_ABI_OFFSET(HostApi, resolve_guest_contract, 48);
POLYPLUG_ABI_OFFSET(HostApi, get_host_contract, 56);
POLYPLUG_ABI_OFFSET(HostApi, resolve_host_contract_interface, 64);
POLYPLUG_ABI_OFFSET(HostApi, list_bundles, 72);
POLYPLUG_ABI_OFFSET(HostApi, get_dependencies, 80);
POLYPLUG_ABI_OFFSET(HostApi, load_bundle, 88);
POLYPLUG_ABI_OFFSET(HostApi, reload_bundle, 96);
POLYPLUG_ABI_OFFSET(HostApi, register_host_contract, 104);
POLYPLUG_ABI_OFFSET(HostApi, register_loader, 112);
POLYPLUG_ABI_OFFSET(HostApi, get_last_error, 120);
POLYPLUG_ABI_OFFSET(HostApi, get_error_len, 128);
POLYPLUG_ABI_OFFSET(HostApi, unload_bundle, 136);
POLYPLUG_ABI_OFFSET(HostApi, log, 144);
POLYPLUG_ABI_OFFSET(HostApi, create_guest_instance, 152);
POLYPLUG_ABI_OFFSET(HostApi, destroy_guest_instance, 160);
POLYPLUG_ABI_OFFSET(HostApi, revision_counter, 168);
POLYPLUG_ABI_OFFSET(HostApi, reserved, 176);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* POLYPLUG_ABI_H */
