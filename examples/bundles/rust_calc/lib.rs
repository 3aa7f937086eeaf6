// SPDX-License-Identifier: MIT
// A native plugin in Rust without crates: #[repr(C)] ABI mirrors and #[no_mangle] exports.
//
// Built by plain rustc as a cdylib. Nothing may unwind into the C caller, so no code path here
// can panic: wrapping arithmetic, checked pointers, no allocation, no indexing at run time.

use core::ffi::c_void;
use core::mem::{align_of, size_of};

// ---- ABI mirrors (layouts from include/polyplug/abi.h, checked at compile time below) ---------

#[repr(C)]
#[derive(Clone, Copy)]
pub struct StringView {
    ptr: *const u8,
    len: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Version {
    major: u32,
    minor: u32,
    patch: u32,
}

#[repr(C)]
pub struct AbiError {
    code: u32,
    message: StringView,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct GuestContractInstance {
    data: *mut c_void,
    contract_id: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct VmLoaderData {
    data: *mut c_void,
}

type GuestContractFn =
    unsafe extern "C" fn(GuestContractInstance, *const c_void, *mut c_void, *mut AbiError);
type CreateInstanceFn =
    unsafe extern "C" fn(VmLoaderData, *const HostApi, *const c_void, *mut GuestContractInstance);
type DestroyInstanceFn = unsafe extern "C" fn(VmLoaderData, *const HostApi, GuestContractInstance);

/// The `native` member of the C `DispatchMechanisms` union. Both union members are 16 bytes with
/// align 8, so a plugin that only ever uses native dispatch can mirror this member alone.
#[repr(C)]
pub struct NativeDispatch {
    function_count: u32,
    functions: *const GuestContractFn, // `const void* const*` in C: same size, same entries
}

#[repr(C)]
pub struct GuestContractInterface {
    contract_id: u64,
    contract_version: Version,
    dispatch_type: u32,
    create_instance: CreateInstanceFn,
    destroy_instance: DestroyInstanceFn,
    dispatch: NativeDispatch,
}

#[repr(C)]
pub struct PluginDescriptor {
    name: StringView,
    contract_name: StringView,
    version: Version,
}

#[repr(C)]
pub struct BundleInitContext {
    bundle_id: u64,
    bundle_path: StringView,
}

type RegisterGuestContractFn = unsafe extern "C" fn(
    *const HostApi,
    *const PluginDescriptor,
    *const GuestContractInterface,
    *mut AbiError,
);

/// The first two fields of the runtime's 184-byte HostApi: all this plugin calls. Only ever seen
/// through a pointer the runtime owns, so mirroring a prefix is enough.
#[repr(C)]
pub struct HostApi {
    runtime: *mut c_void,
    register_guest_contract: Option<RegisterGuestContractFn>,
}

const _: () = {
    assert!(size_of::<StringView>() == 16);
    assert!(size_of::<Version>() == 12);
    assert!(size_of::<AbiError>() == 24);
    assert!(size_of::<GuestContractInstance>() == 16);
    assert!(size_of::<NativeDispatch>() == 16 && align_of::<NativeDispatch>() == 8);
    assert!(size_of::<GuestContractInterface>() == 56);
    assert!(size_of::<PluginDescriptor>() == 48);
    assert!(size_of::<BundleInitContext>() == 24);
    assert!(size_of::<GuestContractFn>() == size_of::<*const c_void>());
};

const ABI_VERSION: u32 = 1; // POLYPLUG_ABI_VERSION
const CODE_OK: u32 = 0;
const CODE_INVALID_POINTER: u32 = 8;
const DISPATCH_NATIVE: u32 = 0;

// ---- the contract --------------------------------------------------------------------------

/// fnv1a64 over `bytes`, continuing from `hash`: the id scheme, evaluated at compile time.
const fn fnv1a64(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

const CONTRACT_NAME: &str = "example.calc";
/// guest_contract_id("example.calc", 1) = fnv1a64("guest_contract:example.calc@1").
const CONTRACT_ID: u64 = fnv1a64(0xcbf2_9ce4_8422_2325, b"guest_contract:example.calc@1");
const _: () = assert!(CONTRACT_ID == 0x1c23_1071_2da7_8b06); // EXAMPLE_CALC_CONTRACT_ID

const PLUGIN_NAME: &str = "rust-calc";
const DESCRIPTION: &str = "Rust calc";

const FUNCTION_COUNT: usize = 2;

#[repr(C)]
struct AddArgs {
    a: i32,
    b: i32,
}

const fn view(text: &'static str) -> StringView {
    StringView { ptr: text.as_ptr(), len: text.len() }
}

const NO_ERROR: AbiError =
    AbiError { code: CODE_OK, message: StringView { ptr: core::ptr::null(), len: 0 } };

unsafe extern "C" fn calc_create(
    _loader_data: VmLoaderData,
    _host: *const HostApi,
    _args: *const c_void,
    out_instance: *mut GuestContractInstance,
) {
    if let Some(out) = out_instance.as_mut() {
        *out = GuestContractInstance { data: core::ptr::null_mut(), contract_id: CONTRACT_ID };
    }
}

unsafe extern "C" fn calc_destroy(_: VmLoaderData, _: *const HostApi, _: GuestContractInstance) {}

/// Writes the error if the caller gave somewhere to write it.
unsafe fn report(out_err: *mut AbiError, error: AbiError) {
    if let Some(err) = out_err.as_mut() {
        *err = error;
    }
}

unsafe extern "C" fn calc_add(
    _instance: GuestContractInstance,
    args: *const c_void,
    out: *mut c_void,
    out_err: *mut AbiError,
) {
    let args = (args as *const AddArgs).as_ref();
    let out = (out as *mut i32).as_mut();
    match (args, out) {
        (Some(args), Some(out)) => {
            *out = args.a.wrapping_add(args.b); // never the panicking `+` of debug builds
            report(out_err, NO_ERROR);
        }
        _ => report(
            out_err,
            AbiError {
                code: CODE_INVALID_POINTER,
                message: view("rust-calc add: args and out must be set"),
            },
        ),
    }
}

unsafe extern "C" fn calc_describe(
    _instance: GuestContractInstance,
    _args: *const c_void,
    out: *mut c_void,
    out_err: *mut AbiError,
) {
    match (out as *mut StringView).as_mut() {
        Some(out) => {
            *out = view(DESCRIPTION);
            report(out_err, NO_ERROR);
        }
        None => report(
            out_err,
            AbiError {
                code: CODE_INVALID_POINTER,
                message: view("rust-calc describe: out must be set"),
            },
        ),
    }
}

/// Raw pointers are not `Sync`; these statics are immutable and only ever read, so sharing them
/// between threads is sound.
struct Shared<T>(T);
unsafe impl<T> Sync for Shared<T> {}

/// Indexed by function id: 0 = add, 1 = describe.
static FUNCTIONS: [GuestContractFn; FUNCTION_COUNT] = [calc_add, calc_describe];

static INTERFACE: Shared<GuestContractInterface> = Shared(GuestContractInterface {
    contract_id: CONTRACT_ID,
    contract_version: Version { major: 1, minor: 0, patch: 0 },
    dispatch_type: DISPATCH_NATIVE,
    create_instance: calc_create,
    destroy_instance: calc_destroy,
    dispatch: NativeDispatch {
        function_count: FUNCTION_COUNT as u32,
        functions: FUNCTIONS.as_ptr(),
    },
});

// ---- entry points ----------------------------------------------------------------------------

#[no_mangle]
pub extern "C" fn polyplug_abi_version() -> u32 {
    ABI_VERSION
}

/// # Safety
/// Called by the runtime with a valid HostApi; `_ctx` is only valid during the call.
#[no_mangle]
pub unsafe extern "C" fn polyplug_init(
    host: *const HostApi,
    _ctx: *const BundleInitContext,
) -> AbiError {
    // `match` rather than `let ... else`: Debian 12's rustc is 1.63, older than let-else (1.65).
    let host = match host.as_ref() {
        Some(host) => host,
        None => {
            return AbiError { code: CODE_INVALID_POINTER, message: view("rust-calc: no HostApi") }
        }
    };
    let register = match host.register_guest_contract {
        Some(register) => register,
        None => {
            return AbiError {
                code: CODE_INVALID_POINTER,
                message: view("rust-calc: no register_guest_contract"),
            }
        }
    };
    let descriptor = PluginDescriptor {
        name: view(PLUGIN_NAME),
        contract_name: view(CONTRACT_NAME),
        version: Version { major: 1, minor: 0, patch: 0 },
    };
    let mut err = NO_ERROR;
    register(host, &descriptor, &INTERFACE.0, &mut err);
    err
}
