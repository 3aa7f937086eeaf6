// SPDX-License-Identifier: MIT
//! Raw `#[repr(C)]` mirrors of `include/polyplug/abi.h` and `runtime_contract.h`, for code that
//! needs the C ABI directly. Sizes are checked at compile time, offsets by the unit tests.

use std::mem::{align_of, size_of};
use std::os::raw::c_void;

/// `StringView` without a lifetime: what crosses the boundary.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawStringView {
    pub ptr: *const u8,
    pub len: usize,
}

/// `Buffer`: host-allocated bytes (`free(ptr, cap, 1)`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawBuffer {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

/// The caller-frees `Array<T>` of HostApi results (`free(items, len * size_of::<T>(), align)`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Array {
    pub items: *mut c_void,
    pub len: usize,
    pub align: usize,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    /// `Version::new(1, 0, 0)`: short enough for a `Contract`'s `VERSION` constant.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AbiError {
    pub code: u32,
    pub message: RawStringView,
}

impl AbiError {
    pub const OK: AbiError = AbiError {
        code: 0,
        message: RawStringView {
            ptr: std::ptr::null(),
            len: 0,
        },
    };
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GuestContractHandle {
    pub index: u32,
    pub generation: u32,
}

impl GuestContractHandle {
    pub const NULL: GuestContractHandle = GuestContractHandle {
        index: u32::MAX,
        generation: 0,
    };
    pub fn is_null(&self) -> bool {
        self.index == u32::MAX
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GuestContractInstance {
    pub data: *mut c_void,
    pub contract_id: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HostContractInstance {
    pub data: *mut c_void,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VmLoaderData {
    pub data: *mut c_void,
}

pub type GuestFn =
    unsafe extern "C" fn(GuestContractInstance, *const c_void, *mut c_void, *mut AbiError);
pub type HostFn =
    unsafe extern "C" fn(HostContractInstance, *const c_void, *mut c_void, *mut AbiError);
pub type VmCallFn = unsafe extern "C" fn(
    VmLoaderData,
    GuestContractInstance,
    u32,
    *const c_void,
    *mut c_void,
    *mut CallArena,
    *mut AbiError,
);

/// `NativeDispatch`: `functions` is `const void* const*` in C; entries are `GuestFn` or
/// `HostFn` depending on the owning interface.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NativeDispatch {
    pub function_count: u32,
    pub functions: *const *const c_void,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct VmDispatch {
    pub call: Option<VmCallFn>,
    pub loader_data: VmLoaderData,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union DispatchMechanisms {
    pub native: NativeDispatch,
    pub vm: VmDispatch,
}

pub const DISPATCH_NATIVE: u32 = 0;
pub const DISPATCH_VM: u32 = 1;

#[repr(C)]
pub struct ArenaOverflowBlock {
    pub next: *mut ArenaOverflowBlock,
    pub capacity: usize,
    pub used: usize,
}

#[repr(C)]
pub struct CallArena {
    pub cur: *mut u8,
    pub end: *mut u8,
    pub base: *mut u8,
    pub host: *const HostApi,
    pub first_overflow: *mut ArenaOverflowBlock,
}

pub type GuestCreateFn =
    unsafe extern "C" fn(VmLoaderData, *const HostApi, *const c_void, *mut GuestContractInstance);
pub type GuestDestroyFn = unsafe extern "C" fn(VmLoaderData, *const HostApi, GuestContractInstance);

#[repr(C)]
pub struct GuestContractInterface {
    pub contract_id: u64,
    pub contract_version: Version,
    pub dispatch_type: u32,
    pub create_instance: Option<GuestCreateFn>,
    pub destroy_instance: Option<GuestDestroyFn>,
    pub dispatch: DispatchMechanisms,
}

pub type HostCreateFn =
    unsafe extern "C" fn(*const HostContractInterface, *const c_void, *mut HostContractInstance);
pub type HostDestroyFn = unsafe extern "C" fn(*const HostContractInterface, HostContractInstance);

#[repr(C)]
pub struct HostContractInterface {
    pub contract_id: u64,
    pub contract_version: Version,
    pub singleton: bool,
    pub dispatch_type: u32,
    pub runtime: *mut c_void,
    pub user_data: *mut c_void,
    pub create_instance: Option<HostCreateFn>,
    pub destroy_instance: Option<HostDestroyFn>,
    pub dispatch: DispatchMechanisms,
}

#[repr(C)]
pub struct ReloadPhase {
    pub phase_type: u32,
    pub bundle_id: u64,
    pub bundle_name: RawStringView,
    pub reason: RawStringView,
}

pub type ReloadCallback = unsafe extern "C" fn(*mut c_void, *const ReloadPhase);
pub type LogCallback = unsafe extern "C" fn(*mut c_void, u32, RawStringView, RawStringView);

#[repr(C)]
pub struct RuntimeConfig {
    pub compatibility: u32,
    pub hot_reload_enabled: bool,
    pub on_reload: Option<ReloadCallback>,
    pub on_reload_user_data: *mut c_void,
    pub log: Option<LogCallback>,
    pub log_user_data: *mut c_void,
    pub log_max_level: u32,
}

/// The function table `polyplug_runtime_create` returns (`self` first in every entry).
#[repr(C)]
pub struct HostApi {
    pub runtime: *mut c_void,
    pub register_guest_contract: Option<
        unsafe extern "C" fn(
            *const HostApi,
            *const c_void,
            *const GuestContractInterface,
            *mut AbiError,
        ),
    >,
    pub alloc: Option<unsafe extern "C" fn(*const HostApi, usize, usize) -> *mut u8>,
    pub free: Option<unsafe extern "C" fn(*const HostApi, *mut u8, usize, usize)>,
    pub find_guest_contract:
        Option<unsafe extern "C" fn(*const HostApi, u64, u32) -> GuestContractHandle>,
    pub find_all_guest_contracts: Option<unsafe extern "C" fn(*const HostApi, u64, u32) -> Array>,
    pub resolve_guest_contract: Option<
        unsafe extern "C" fn(*const HostApi, GuestContractHandle) -> *const GuestContractInterface,
    >,
    pub get_host_contract:
        Option<unsafe extern "C" fn(*const HostApi, u64, u32) -> HostContractInstance>,
    pub resolve_host_contract_interface:
        Option<unsafe extern "C" fn(*const HostApi, u64, u32) -> *const HostContractInterface>,
    pub list_bundles: Option<unsafe extern "C" fn(*const HostApi) -> Array>,
    pub get_dependencies: Option<unsafe extern "C" fn(*const HostApi) -> Array>,
    pub load_bundle: Option<unsafe extern "C" fn(*const HostApi, *const u8, usize, *mut AbiError)>,
    pub reload_bundle:
        Option<unsafe extern "C" fn(*const HostApi, *const u8, usize, *mut AbiError)>,
    pub register_host_contract:
        Option<unsafe extern "C" fn(*const HostApi, *const HostContractInterface, *mut AbiError)>,
    pub register_loader: Option<unsafe extern "C" fn(*const HostApi, *mut c_void, *mut AbiError)>,
    pub get_last_error: Option<unsafe extern "C" fn(*const HostApi, *mut u8, usize) -> usize>,
    pub get_error_len: Option<unsafe extern "C" fn(*const HostApi) -> usize>,
    pub unload_bundle: Option<unsafe extern "C" fn(*const HostApi, u64, *mut AbiError)>,
    pub log: Option<unsafe extern "C" fn(*const HostApi, u32, RawStringView, RawStringView)>,
    pub create_guest_instance: Option<
        unsafe extern "C" fn(
            *const HostApi,
            *const GuestContractInterface,
            *const c_void,
            *mut GuestContractInstance,
        ),
    >,
    pub destroy_guest_instance: Option<
        unsafe extern "C" fn(*const HostApi, *const GuestContractInterface, GuestContractInstance),
    >,
    pub revision_counter: Option<unsafe extern "C" fn(*const HostApi) -> *const u64>,
    pub reserved: *const c_void,
}

// ---- host.polyplug.Runtime@1 (runtime_contract.h) ---------------------------------------------
pub const RUNTIME_CONTRACT_ID: u64 = 0xe847_ef18_831f_2333;
pub const RUNTIME_FN_LOAD_DIRS: u32 = 0;

#[repr(C)]
pub struct LoadDirsArgs {
    pub dirs: *const RawStringView,
    pub count: usize,
}

#[repr(C)]
pub struct LoadDirsResult {
    pub loaded: u32,
    pub skipped: u32,
    pub diagnostics: RawBuffer,
}

extern "C" {
    pub fn polyplug_runtime_create(config: *const RuntimeConfig) -> *const HostApi;
    pub fn polyplug_runtime_destroy(host: *const HostApi);
}

// The ABI is defined for 64-bit little-endian targets only.
const _: () = assert!(size_of::<usize>() == 8 && cfg!(target_endian = "little"));
const _: () = assert!(size_of::<RawStringView>() == 16 && align_of::<RawStringView>() == 8);
const _: () = assert!(size_of::<RawBuffer>() == 24);
const _: () = assert!(size_of::<Array>() == 24);
const _: () = assert!(size_of::<Version>() == 12 && align_of::<Version>() == 4);
const _: () = assert!(size_of::<AbiError>() == 24);
const _: () =
    assert!(size_of::<GuestContractHandle>() == 8 && align_of::<GuestContractHandle>() == 4);
const _: () = assert!(size_of::<GuestContractInstance>() == 16);
const _: () = assert!(size_of::<HostContractInstance>() == 8);
const _: () =
    assert!(size_of::<DispatchMechanisms>() == 16 && align_of::<DispatchMechanisms>() == 8);
const _: () = assert!(size_of::<ArenaOverflowBlock>() == 24);
const _: () = assert!(size_of::<CallArena>() == 40);
const _: () = assert!(size_of::<GuestContractInterface>() == 56);
const _: () = assert!(size_of::<HostContractInterface>() == 80);
const _: () = assert!(size_of::<ReloadPhase>() == 48);
const _: () = assert!(size_of::<RuntimeConfig>() == 48);
const _: () = assert!(size_of::<HostApi>() == 184);
const _: () = assert!(size_of::<LoadDirsArgs>() == 16 && size_of::<LoadDirsResult>() == 32);

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::MaybeUninit;
    use std::ptr::addr_of;

    macro_rules! offset {
        ($t:ty, $f:ident) => {{
            let u = MaybeUninit::<$t>::uninit();
            let base = u.as_ptr();
            // addr_of! on a field of an uninitialised place: no read, no reference.
            unsafe { (addr_of!((*base).$f) as usize) - (base as usize) }
        }};
    }

    // The numbers are the LP64 layout written down from include/polyplug/abi.h by hand; this
    // test does not read the header, so it catches a field moved in these Rust mirrors, not a
    // change in abi.h (the parity table in tests/host.rs exercises the real library).
    #[test]
    fn offsets_match_the_documented_layout() {
        assert_eq!(offset!(AbiError, message), 8);
        assert_eq!(offset!(GuestContractInterface, contract_version), 8);
        assert_eq!(offset!(GuestContractInterface, dispatch_type), 20);
        assert_eq!(offset!(GuestContractInterface, create_instance), 24);
        assert_eq!(offset!(GuestContractInterface, destroy_instance), 32);
        assert_eq!(offset!(GuestContractInterface, dispatch), 40);
        assert_eq!(offset!(HostContractInterface, singleton), 20);
        assert_eq!(offset!(HostContractInterface, dispatch_type), 24);
        assert_eq!(offset!(HostContractInterface, runtime), 32);
        assert_eq!(offset!(HostContractInterface, user_data), 40);
        assert_eq!(offset!(HostContractInterface, create_instance), 48);
        assert_eq!(offset!(HostContractInterface, destroy_instance), 56);
        assert_eq!(offset!(HostContractInterface, dispatch), 64);
        assert_eq!(offset!(ReloadPhase, bundle_id), 8);
        assert_eq!(offset!(ReloadPhase, bundle_name), 16);
        assert_eq!(offset!(ReloadPhase, reason), 32);
        assert_eq!(offset!(RuntimeConfig, hot_reload_enabled), 4);
        assert_eq!(offset!(RuntimeConfig, on_reload), 8);
        assert_eq!(offset!(RuntimeConfig, log), 24);
        assert_eq!(offset!(RuntimeConfig, log_max_level), 40);
        assert_eq!(offset!(HostApi, find_guest_contract), 32);
        assert_eq!(offset!(HostApi, load_bundle), 88);
        assert_eq!(offset!(HostApi, unload_bundle), 136);
        assert_eq!(offset!(HostApi, revision_counter), 168);
        assert_eq!(offset!(HostApi, reserved), 176);
        assert_eq!(offset!(CallArena, first_overflow), 32);
        assert_eq!(offset!(LoadDirsResult, diagnostics), 8);
    }
}
