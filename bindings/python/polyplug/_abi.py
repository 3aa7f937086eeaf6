# SPDX-License-Identifier: MIT
"""ctypes mirrors of the structs of include/polyplug/abi.h and runtime_contract.h.

Every size and offset asserted at the end of abi.h is checked again at import time below, so a
mistake here fails at once instead of corrupting memory later. 64-bit little-endian only, as the
ABI itself.
"""
import ctypes as C

if C.sizeof(C.c_void_p) != 8 or C.sizeof(C.c_size_t) != 8:
    raise ImportError("polyplug's C ABI is defined for 64-bit targets only")

c_void_p = C.c_void_p
c_size_t = C.c_size_t
u8, u16, u32, u64 = C.c_uint8, C.c_uint16, C.c_uint32, C.c_uint64


class StringView(C.Structure):
    _fields_ = [("ptr", c_void_p), ("len", c_size_t)]


class Buffer(C.Structure):
    _fields_ = [("ptr", c_void_p), ("len", c_size_t), ("cap", c_size_t)]


class Array(C.Structure):
    """The ABI's caller-frees 24-byte Array (HostApi results), not a contract function's array."""
    _fields_ = [("items", c_void_p), ("len", c_size_t), ("align", c_size_t)]


class ContractArray(C.Structure):
    """`Array<T>` inside contract functions and structs: {const T* items; size_t len}."""
    _fields_ = [("items", c_void_p), ("len", c_size_t)]


class Version(C.Structure):
    _fields_ = [("major", u32), ("minor", u32), ("patch", u32)]


class AbiError(C.Structure):
    _fields_ = [("code", u32), ("message", StringView)]


class GuestContractHandle(C.Structure):
    _fields_ = [("index", u32), ("generation", u32)]


class GuestContractInstance(C.Structure):
    _fields_ = [("data", c_void_p), ("contract_id", u64)]


class HostContractInstance(C.Structure):
    _fields_ = [("data", c_void_p)]


class VmLoaderData(C.Structure):
    _fields_ = [("data", c_void_p)]


class NativeDispatch(C.Structure):
    _fields_ = [("function_count", u32), ("functions", C.POINTER(c_void_p))]


class VmDispatch(C.Structure):
    _fields_ = [("call", c_void_p), ("loader_data", VmLoaderData)]


class DispatchMechanisms(C.Union):
    _fields_ = [("native", NativeDispatch), ("vm", VmDispatch)]


class ArenaOverflowBlock(C.Structure):
    # Retain and rewind (spec 5.4): `used` counts from the block's start, header included.
    _fields_ = [("next", c_void_p), ("capacity", c_size_t), ("used", c_size_t)]


class CallArena(C.Structure):
    _fields_ = [("cur", c_void_p), ("end", c_void_p), ("base", c_void_p), ("host", c_void_p),
                ("first_overflow", c_void_p)]


class GuestContractInterface(C.Structure):
    _fields_ = [("contract_id", u64), ("contract_version", Version), ("dispatch_type", u32),
                ("create_instance", c_void_p), ("destroy_instance", c_void_p),
                ("dispatch", DispatchMechanisms)]


class HostContractInterface(C.Structure):
    _fields_ = [("contract_id", u64), ("contract_version", Version), ("singleton", C.c_bool),
                ("dispatch_type", u32), ("runtime", c_void_p), ("user_data", c_void_p),
                ("create_instance", c_void_p), ("destroy_instance", c_void_p),
                ("dispatch", DispatchMechanisms)]


class ReloadPhase(C.Structure):
    _fields_ = [("phase_type", u32), ("bundle_id", u64), ("bundle_name", StringView),
                ("reason", StringView)]


class DependencyInfo(C.Structure):
    _fields_ = [("contract_id", u64), ("min_version", u32), ("bundle_id", u64)]


ReloadCallbackFn = C.CFUNCTYPE(None, c_void_p, C.POINTER(ReloadPhase))
LogCallbackFn = C.CFUNCTYPE(None, c_void_p, u32, StringView, StringView)


class RuntimeConfig(C.Structure):
    _fields_ = [("compatibility", u32), ("hot_reload_enabled", C.c_bool),
                ("on_reload", ReloadCallbackFn), ("on_reload_user_data", c_void_p),
                ("log", LogCallbackFn), ("log_user_data", c_void_p), ("log_max_level", u32)]


HOST_API_FIELDS = [
    "runtime", "register_guest_contract", "alloc", "free", "find_guest_contract",
    "find_all_guest_contracts", "resolve_guest_contract", "get_host_contract",
    "resolve_host_contract_interface", "list_bundles", "get_dependencies", "load_bundle",
    "reload_bundle", "register_host_contract", "register_loader", "get_last_error",
    "get_error_len", "unload_bundle", "log", "create_guest_instance", "destroy_guest_instance",
    "revision_counter", "reserved",
]


class HostApi(C.Structure):
    _fields_ = [(name, c_void_p) for name in HOST_API_FIELDS]


P_ERR = C.POINTER(AbiError)
# Prototypes of the HostApi entries this package calls; `self` is passed as an address.
HOST_API_PROTOTYPES = {
    "alloc": C.CFUNCTYPE(c_void_p, c_void_p, c_size_t, c_size_t),
    "free": C.CFUNCTYPE(None, c_void_p, c_void_p, c_size_t, c_size_t),
    "find_guest_contract": C.CFUNCTYPE(GuestContractHandle, c_void_p, u64, u32),
    "find_all_guest_contracts": C.CFUNCTYPE(Array, c_void_p, u64, u32),
    "resolve_guest_contract": C.CFUNCTYPE(c_void_p, c_void_p, GuestContractHandle),
    "get_host_contract": C.CFUNCTYPE(HostContractInstance, c_void_p, u64, u32),
    "resolve_host_contract_interface": C.CFUNCTYPE(c_void_p, c_void_p, u64, u32),
    "list_bundles": C.CFUNCTYPE(Array, c_void_p),
    "get_dependencies": C.CFUNCTYPE(Array, c_void_p),
    "load_bundle": C.CFUNCTYPE(None, c_void_p, C.c_char_p, c_size_t, P_ERR),
    "reload_bundle": C.CFUNCTYPE(None, c_void_p, C.c_char_p, c_size_t, P_ERR),
    "register_host_contract": C.CFUNCTYPE(None, c_void_p, c_void_p, P_ERR),
    "register_loader": C.CFUNCTYPE(None, c_void_p, c_void_p, P_ERR),
    "get_last_error": C.CFUNCTYPE(c_size_t, c_void_p, c_void_p, c_size_t),
    "get_error_len": C.CFUNCTYPE(c_size_t, c_void_p),
    "unload_bundle": C.CFUNCTYPE(None, c_void_p, u64, P_ERR),
    "log": C.CFUNCTYPE(None, c_void_p, u32, StringView, StringView),
    "create_guest_instance": C.CFUNCTYPE(None, c_void_p, c_void_p, c_void_p,
                                         C.POINTER(GuestContractInstance)),
    "destroy_guest_instance": C.CFUNCTYPE(None, c_void_p, c_void_p, GuestContractInstance),
    "revision_counter": C.CFUNCTYPE(c_void_p, c_void_p),
}

# Prototypes the package calls through take every pointer as c_void_p: a plain int address
# passes through ctypes faster than a byref() object (and byref() is still accepted).
GuestContractFn = C.CFUNCTYPE(None, GuestContractInstance, c_void_p, c_void_p, c_void_p)
HostContractCallFn = C.CFUNCTYPE(None, HostContractInstance, c_void_p, c_void_p, c_void_p)
VmCallFn = C.CFUNCTYPE(None, VmLoaderData, GuestContractInstance, u32, c_void_p, c_void_p,
                       c_void_p, c_void_p)
# The prototype of host contract functions implemented in Python (C calls them).
HostContractFn = C.CFUNCTYPE(None, HostContractInstance, c_void_p, c_void_p, P_ERR)
HostCreateInstanceFn = C.CFUNCTYPE(None, c_void_p, c_void_p, C.POINTER(HostContractInstance))
HostDestroyInstanceFn = C.CFUNCTYPE(None, c_void_p, HostContractInstance)
LoaderCreateFn = C.CFUNCTYPE(c_void_p)

# ---- host.polyplug.Runtime@1 (runtime_contract.h) ---------------------------------------------
RUNTIME_CONTRACT_ID = 0xE847EF18831F2333
FN_LOAD_DIRS, FN_UNLOAD_CASCADE, FN_SET_UNMAP_POLICY, FN_BUNDLE_INFO = 0, 1, 2, 3
FN_WATCH, FN_UNWATCH, FN_POLL_WATCH, FN_DESCRIBE_CONTRACT_FILE = 4, 5, 6, 7


class LoadDirsArgs(C.Structure):
    _fields_ = [("dirs", C.POINTER(StringView)), ("count", c_size_t)]


class LoadDirsResult(C.Structure):
    _fields_ = [("loaded", u32), ("skipped", u32), ("diagnostics", Buffer)]


class U64Args(C.Structure):
    """PolyplugUnloadArgs and PolyplugBundleInfoArgs: one bundle id."""
    _fields_ = [("bundle_id", u64)]


class UnmapPolicyArgs(C.Structure):
    _fields_ = [("policy", u32), ("grace_ms", u32)]


class BundleInfo(C.Structure):
    _fields_ = [("id", u64), ("version", Version), ("language", u32), ("name", Buffer),
                ("path", Buffer), ("loader", Buffer), ("contracts", Array)]


class WatchArgs(C.Structure):
    _fields_ = [("dirs", C.POINTER(StringView)), ("count", c_size_t), ("debounce_ms", u32),
                ("flags", u32)]


class DescribeContractFileArgs(C.Structure):
    _fields_ = [("path", StringView)]


WATCH_MANUAL = 1

# ---- enumerations -------------------------------------------------------------------------------
ERROR_CODE_NAMES = {
    0: "Ok", 1: "Generic", 2: "BufferTooSmall", 3: "Panic", 4: "NotFound", 5: "StaleHandle",
    6: "FunctionNotAvailable", 7: "DuplicateProvider", 8: "InvalidPointer", 9: "ReentrantCall",
    100: "HostContractNotFound", 101: "HostContractVersionMismatch",
    102: "HostContractCallFailed",
}
DISPATCH_NATIVE, DISPATCH_VM = 0, 1
COMPATIBILITY = {"strict": 0, "relaxed": 1, "yolo": 2}
PHASE_NAMES = {0: "Preparing", 1: "Reloaded", 2: "Failed", 3: "Unloading"}
LOG_LEVELS = {"error": 1, "warn": 2, "info": 3, "debug": 4, "trace": 5}
LOG_LEVEL_NAMES = {v: k for k, v in LOG_LEVELS.items()}
LANGUAGE_NAMES = {0: "Rust", 1: "Cpp", 2: "Dotnet", 3: "Python", 4: "Lua", 5: "JavaScript"}


# ---- the layout assertions of abi.h ------------------------------------------------------------
def _check(cls, size, offsets=(), align=None):
    if C.sizeof(cls) != size:
        raise ImportError(f"polyplug._abi: sizeof({cls.__name__}) is {C.sizeof(cls)}, the ABI "
                          f"says {size}")
    if align is not None and C.alignment(cls) != align:
        raise ImportError(f"polyplug._abi: alignof({cls.__name__}) is {C.alignment(cls)}, the "
                          f"ABI says {align}")
    for field, offset in offsets:
        got = getattr(cls, field).offset
        if got != offset:
            raise ImportError(f"polyplug._abi: {cls.__name__}.{field} is at {got}, the ABI "
                              f"says {offset}")


_check(StringView, 16, [("ptr", 0), ("len", 8)])
_check(Buffer, 24, [("ptr", 0), ("len", 8), ("cap", 16)])
_check(Array, 24, [("items", 0), ("len", 8), ("align", 16)])
_check(ContractArray, 16, [("items", 0), ("len", 8)], 8)
_check(Version, 12, [("major", 0), ("minor", 4), ("patch", 8)])
_check(AbiError, 24, [("code", 0), ("message", 8)])
_check(GuestContractHandle, 8, [("index", 0), ("generation", 4)], 4)
_check(GuestContractInstance, 16, [("data", 0), ("contract_id", 8)])
_check(HostContractInstance, 8)
_check(NativeDispatch, 16, [("function_count", 0), ("functions", 8)])
_check(VmDispatch, 16, [("call", 0), ("loader_data", 8)])
_check(DispatchMechanisms, 16, align=8)
_check(ArenaOverflowBlock, 24, [("next", 0), ("capacity", 8), ("used", 16)])
_check(CallArena, 40, [("cur", 0), ("end", 8), ("base", 16), ("host", 24),
                       ("first_overflow", 32)])
_check(GuestContractInterface, 56, [("contract_id", 0), ("contract_version", 8),
                                    ("dispatch_type", 20), ("create_instance", 24),
                                    ("destroy_instance", 32), ("dispatch", 40)])
_check(HostContractInterface, 80, [("contract_id", 0), ("contract_version", 8),
                                   ("singleton", 20), ("dispatch_type", 24), ("runtime", 32),
                                   ("user_data", 40), ("create_instance", 48),
                                   ("destroy_instance", 56), ("dispatch", 64)])
_check(DependencyInfo, 24, [("contract_id", 0), ("min_version", 8), ("bundle_id", 16)])
_check(ReloadPhase, 48, [("phase_type", 0), ("bundle_id", 8), ("bundle_name", 16),
                         ("reason", 32)])
_check(RuntimeConfig, 48, [("compatibility", 0), ("hot_reload_enabled", 4), ("on_reload", 8),
                           ("on_reload_user_data", 16), ("log", 24), ("log_user_data", 32),
                           ("log_max_level", 40)])
_check(HostApi, 184, [(name, 8 * i) for i, name in enumerate(HOST_API_FIELDS)])
_check(LoadDirsArgs, 16)
_check(LoadDirsResult, 32, [("loaded", 0), ("skipped", 4), ("diagnostics", 8)])
_check(BundleInfo, 120, [("id", 0), ("version", 8), ("language", 20), ("name", 24),
                         ("path", 48), ("loader", 72), ("contracts", 96)])
_check(WatchArgs, 24, [("debounce_ms", 16), ("flags", 20)])


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def guest_contract_id(name: str, major: int) -> int:
    return fnv1a64(b"guest_contract:" + name.encode() + b"@" + str(major).encode())


def host_contract_id(name: str, major: int) -> int:
    return fnv1a64(b"host_contract:" + name.encode() + b"@" + str(major).encode())


def bundle_id(name: str) -> int:
    return fnv1a64(name.encode())
