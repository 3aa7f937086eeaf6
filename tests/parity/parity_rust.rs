// SPDX-License-Identifier: MIT
// test.parity.Kit@1 in Rust without crates: #[repr(C)] mirrors of the ABI and of the types in
// parity.api.toml (layouts as `polyplug generate --lang c` writes them, checked at compile time),
// and the #[no_mangle] exports of a native plugin.
//
// Build: rustc --edition 2021 --crate-type cdylib -O --crate-name parity_rust \
//            -o libparity_rust.so parity_rust.rs
// Must stay within Rust 1.63 (Debian 12): no let-else, no offset_of!, no CStr::from_bytes_until_nul.
//
// Views this plugin returns (StringView, Buffer, arrays) point into the instance's state and stay
// valid until the next call on the same instance. Nothing may unwind into the C caller, so no
// code path here can panic: wrapping arithmetic, checked pointers, fallible reservations, no
// run-time indexing. Arguments and results are moved with unaligned reads and writes, and raw
// values (bools, colors) are read as integers, so no input bit pattern is undefined behaviour.

use core::ffi::c_void;
use core::mem::{align_of, size_of};
use core::ptr;

// ---- ABI mirrors (include/polyplug/abi.h) ------------------------------------------------------

#[repr(C)]
#[derive(Clone, Copy)]
pub struct StringView {
    ptr: *const u8,
    len: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Buffer {
    ptr: *mut u8,
    len: usize,
    cap: usize,
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

/// The `native` member of the C `DispatchMechanisms` union (both members: 16 bytes, align 8).
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

/// The runtime's 184-byte HostApi: 23 pointer-sized fields. This plugin calls only
/// `register_guest_contract`; the other 21 stay opaque.
#[repr(C)]
pub struct HostApi {
    runtime: *mut c_void,
    register_guest_contract: Option<RegisterGuestContractFn>,
    rest: [*const c_void; 21],
}

const _: () = {
    assert!(size_of::<StringView>() == 16 && align_of::<StringView>() == 8);
    assert!(size_of::<Buffer>() == 24 && align_of::<Buffer>() == 8);
    assert!(size_of::<Version>() == 12 && align_of::<Version>() == 4);
    assert!(size_of::<AbiError>() == 24);
    assert!(size_of::<GuestContractInstance>() == 16);
    assert!(size_of::<VmLoaderData>() == 8);
    assert!(size_of::<NativeDispatch>() == 16 && align_of::<NativeDispatch>() == 8);
    assert!(size_of::<GuestContractInterface>() == 56);
    assert!(size_of::<PluginDescriptor>() == 48);
    assert!(size_of::<BundleInitContext>() == 24);
    assert!(size_of::<HostApi>() == 184);
    assert!(size_of::<GuestContractFn>() == size_of::<*const c_void>());
    assert!(size_of::<Option<RegisterGuestContractFn>>() == size_of::<*const c_void>());
};

const ABI_VERSION: u32 = 1; // POLYPLUG_ABI_VERSION
const CODE_OK: u32 = 0;
const CODE_PANIC: u32 = 3;
const CODE_INVALID_POINTER: u32 = 8;
const DISPATCH_NATIVE: u32 = 0;

// ---- contract types (tests/parity/parity.api.toml, laid out as the generated C header) ----------

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Ints {
    a: i8,
    b: u8,
    c: i16,
    d: u16,
    e: i32,
    f: u32,
    g: i64,
    h: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Point {
    x: i32,
    y: i32,
}

/// `color` is the raw u16 of the Color enum: any value may arrive, so it is not a Rust enum.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Shape {
    tag: u8,
    weight: f64,
    color: u16,
    label: StringView,
}

/// `Array<Point>` as the generated header lays it out: items and a count.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ArrayOfPoint {
    items: *const Point,
    len: usize,
}

/// `Array<Color>` as the generated header lays it out: items and a count.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ArrayOfColor {
    items: *const u16,
    len: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct AddI32Args {
    a: i32,
    b: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct EchoIntsArgs {
    v: Ints,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct ScaleArgs {
    x: f32,
    y: f64,
}

/// C `bool`s, read as bytes: a Rust `bool` holding anything but 0 or 1 would be undefined.
#[repr(C)]
#[derive(Clone, Copy)]
struct DifferArgs {
    a: u8,
    b: u8,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct GreetArgs {
    name: StringView,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct ReverseArgs {
    data: Buffer,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct TotalArgs {
    points: ArrayOfPoint,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct DescribeArgs {
    s: Shape,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct ColorsArgs {
    n: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct FailArgs {
    code: i32,
}

// Sizes and alignments from the generated header's asserts. With #[repr(C)] and the fields in
// declaration order, equal sizes and alignments here mean equal field offsets.
const _: () = {
    assert!(size_of::<Ints>() == 32 && align_of::<Ints>() == 8);
    assert!(size_of::<Point>() == 8 && align_of::<Point>() == 4);
    assert!(size_of::<Shape>() == 40 && align_of::<Shape>() == 8);
    assert!(size_of::<ArrayOfPoint>() == 16 && align_of::<ArrayOfPoint>() == 8);
    assert!(size_of::<ArrayOfColor>() == 16 && align_of::<ArrayOfColor>() == 8);
    assert!(size_of::<AddI32Args>() == 8 && align_of::<AddI32Args>() == 4);
    assert!(size_of::<EchoIntsArgs>() == 32 && align_of::<EchoIntsArgs>() == 8);
    assert!(size_of::<ScaleArgs>() == 16 && align_of::<ScaleArgs>() == 8);
    assert!(size_of::<DifferArgs>() == 2 && align_of::<DifferArgs>() == 1);
    assert!(size_of::<GreetArgs>() == 16 && align_of::<GreetArgs>() == 8);
    assert!(size_of::<ReverseArgs>() == 24 && align_of::<ReverseArgs>() == 8);
    assert!(size_of::<TotalArgs>() == 16 && align_of::<TotalArgs>() == 8);
    assert!(size_of::<DescribeArgs>() == 40 && align_of::<DescribeArgs>() == 8);
    assert!(size_of::<ColorsArgs>() == 4 && align_of::<ColorsArgs>() == 4);
    assert!(size_of::<FailArgs>() == 4 && align_of::<FailArgs>() == 4);
};

const COLOR_RED: u16 = 1;
const COLOR_GREEN: u16 = 2;
const COLOR_BLUE: u16 = 1 << 8;

/// The result of `colors(n)` is a view of the first n.
static ALL_COLORS: [u16; 3] = [COLOR_RED, COLOR_GREEN, COLOR_BLUE];

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

const CONTRACT_NAME: &str = "test.parity.Kit";
/// guest_contract_id("test.parity.Kit", 1) = fnv1a64("guest_contract:test.parity.Kit@1").
const CONTRACT_ID: u64 = fnv1a64(0xcbf2_9ce4_8422_2325, b"guest_contract:test.parity.Kit@1");
const _: () = assert!(CONTRACT_ID == 0x0a75_4163_9462_81fe); // TEST_PARITY_KIT_CONTRACT_ID

const PLUGIN_NAME: &str = "parity-rust";
const FUNCTION_COUNT: usize = 10;

const fn view(text: &'static str) -> StringView {
    StringView { ptr: text.as_ptr(), len: text.len() }
}

const fn error(code: u32, text: &'static str) -> AbiError {
    AbiError { code, message: view(text) }
}

const NO_ERROR: AbiError =
    AbiError { code: CODE_OK, message: StringView { ptr: ptr::null(), len: 0 } };

const NO_STATE: AbiError = error(CODE_INVALID_POINTER, "parity-rust: the instance has no state");
const NO_ARGS: AbiError = error(CODE_INVALID_POINTER, "parity-rust: args must be set");
const NO_OUT: AbiError = error(CODE_INVALID_POINTER, "parity-rust: out must be set");
const BAD_VIEW: AbiError = error(
    CODE_INVALID_POINTER,
    "parity-rust: a view has a null pointer and a non-zero length, or is too long",
);
const NO_MEMORY: AbiError = error(CODE_PANIC, "parity-rust: out of memory");

type Outcome = Result<(), AbiError>;

/// Per-instance state: the storage behind every variable-size result of the last call.
struct State {
    greeting: Vec<u8>,
    reversed: Vec<u8>,
    label: Vec<u8>,
    message: Vec<u8>,
}

unsafe fn state<'a>(instance: GuestContractInstance) -> Result<&'a mut State, AbiError> {
    match (instance.data as *mut State).as_mut() {
        Some(state) => Ok(state),
        None => Err(NO_STATE),
    }
}

unsafe fn read_args<T: Copy>(args: *const c_void) -> Result<T, AbiError> {
    if args.is_null() {
        Err(NO_ARGS)
    } else {
        Ok(ptr::read_unaligned(args as *const T))
    }
}

fn check_out(out: *mut c_void) -> Outcome {
    if out.is_null() {
        Err(NO_OUT)
    } else {
        Ok(())
    }
}

unsafe fn write_out<T>(out: *mut c_void, value: T) {
    ptr::write_unaligned(out as *mut T, value);
}

/// The bytes a (ptr, len) view names; {NULL, 0} (or any pointer with len 0) is empty.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], AbiError> {
    if len == 0 {
        Ok(&[])
    } else if ptr.is_null() || len > isize::MAX as usize {
        Err(BAD_VIEW)
    } else {
        Ok(core::slice::from_raw_parts(ptr, len))
    }
}

/// `parts` concatenated into a new vector, or an error instead of a panic or an abort. A new
/// vector rather than the old one refilled: an input may be a view of the previous result.
fn concat(parts: &[&[u8]]) -> Result<Vec<u8>, AbiError> {
    let mut total: usize = 0;
    for part in parts {
        total = match total.checked_add(part.len()) {
            Some(total) => total,
            None => return Err(NO_MEMORY),
        };
    }
    let mut result = Vec::new();
    if result.try_reserve_exact(total).is_err() {
        return Err(NO_MEMORY);
    }
    for part in parts {
        result.extend_from_slice(part); // within the reserved capacity: never reallocates
    }
    Ok(result)
}

fn vec_view(bytes: &[u8]) -> StringView {
    StringView { ptr: bytes.as_ptr(), len: bytes.len() }
}

/// Appends the decimal digits of `value` (with '-' when negative) without panicking paths.
fn push_decimal(out: &mut Vec<u8>, value: i32) {
    if value < 0 {
        out.push(b'-');
    }
    let magnitude = value.unsigned_abs();
    let mut divisor: u32 = 1_000_000_000;
    let mut started = false;
    while divisor > 0 {
        let digit = (magnitude / divisor) % 10;
        if digit != 0 || started || divisor == 1 {
            out.push(b'0' + digit as u8);
            started = true;
        }
        divisor /= 10;
    }
}

fn next_color(color: u16) -> Option<u16> {
    match color {
        COLOR_RED => Some(COLOR_GREEN),
        COLOR_GREEN => Some(COLOR_BLUE),
        COLOR_BLUE => Some(COLOR_RED),
        _ => None,
    }
}

// ---- the ten functions, as Outcomes --------------------------------------------------------

unsafe fn add_i32(
    instance: GuestContractInstance,
    args: *const c_void,
    out: *mut c_void,
) -> Outcome {
    state(instance)?;
    let args: AddI32Args = read_args(args)?;
    check_out(out)?;
    write_out(out, args.a.wrapping_add(args.b));
    Ok(())
}

unsafe fn echo_ints(
    instance: GuestContractInstance,
    args: *const c_void,
    out: *mut c_void,
) -> Outcome {
    state(instance)?;
    let args: EchoIntsArgs = read_args(args)?;
    check_out(out)?;
    write_out(out, args.v);
    Ok(())
}

unsafe fn scale(instance: GuestContractInstance, args: *const c_void, out: *mut c_void) -> Outcome {
    state(instance)?;
    let args: ScaleArgs = read_args(args)?;
    check_out(out)?;
    write_out(out, (args.x as f64) * 2.0 + args.y); // rustc never contracts this into an fma
    Ok(())
}

unsafe fn differ(
    instance: GuestContractInstance,
    args: *const c_void,
    out: *mut c_void,
) -> Outcome {
    state(instance)?;
    let args: DifferArgs = read_args(args)?;
    check_out(out)?;
    write_out(out, ((args.a != 0) != (args.b != 0)) as u8);
    Ok(())
}

unsafe fn greet(instance: GuestContractInstance, args: *const c_void, out: *mut c_void) -> Outcome {
    let state = state(instance)?;
    let args: GreetArgs = read_args(args)?;
    check_out(out)?;
    let name = bytes(args.name.ptr, args.name.len)?;
    state.greeting = concat(&[b"hello, ", name, b"!"])?;
    write_out(out, vec_view(&state.greeting));
    Ok(())
}

unsafe fn reverse(
    instance: GuestContractInstance,
    args: *const c_void,
    out: *mut c_void,
) -> Outcome {
    let state = state(instance)?;
    let args: ReverseArgs = read_args(args)?;
    check_out(out)?;
    let data = bytes(args.data.ptr, args.data.len)?;
    let mut reversed = Vec::new();
    if reversed.try_reserve_exact(data.len()).is_err() {
        return Err(NO_MEMORY);
    }
    reversed.extend(data.iter().rev()); // within the reserved capacity
    state.reversed = reversed;
    let len = state.reversed.len();
    let result = if len == 0 {
        Buffer { ptr: ptr::null_mut(), len: 0, cap: 0 }
    } else {
        Buffer { ptr: state.reversed.as_mut_ptr(), len, cap: len }
    };
    write_out(out, result);
    Ok(())
}

unsafe fn total(instance: GuestContractInstance, args: *const c_void, out: *mut c_void) -> Outcome {
    state(instance)?;
    let args: TotalArgs = read_args(args)?;
    check_out(out)?;
    let points = args.points;
    if points.len != 0 && (points.items.is_null() || points.len > isize::MAX as usize / 8) {
        return Err(BAD_VIEW);
    }
    let mut sum = Point { x: 0, y: 0 };
    let mut i: usize = 0;
    while i < points.len {
        let point = ptr::read_unaligned(points.items.add(i));
        sum.x = sum.x.wrapping_add(point.x);
        sum.y = sum.y.wrapping_add(point.y);
        i += 1;
    }
    write_out(out, sum);
    Ok(())
}

unsafe fn describe(
    instance: GuestContractInstance,
    args: *const c_void,
    out: *mut c_void,
) -> Outcome {
    let state = state(instance)?;
    let args: DescribeArgs = read_args(args)?;
    check_out(out)?;
    let s = args.s;
    let color = match next_color(s.color) {
        Some(color) => color,
        None => return Err(error(CODE_PANIC, "parity-rust: unknown color")),
    };
    let label = bytes(s.label.ptr, s.label.len)?;
    state.label = concat(&[label, b"!"])?;
    let result = Shape {
        tag: s.tag.wrapping_add(1),
        weight: s.weight * 2.0,
        color,
        label: vec_view(&state.label),
    };
    write_out(out, result);
    Ok(())
}

unsafe fn colors(
    instance: GuestContractInstance,
    args: *const c_void,
    out: *mut c_void,
) -> Outcome {
    state(instance)?;
    let args: ColorsArgs = read_args(args)?;
    check_out(out)?;
    if args.n as usize > ALL_COLORS.len() {
        return Err(error(CODE_PANIC, "parity-rust: n too large (the most is 3)"));
    }
    write_out(out, ArrayOfColor { items: ALL_COLORS.as_ptr(), len: args.n as usize });
    Ok(())
}

/// Always an error; `out` is unused (the function returns nothing) and may be null.
unsafe fn fail(instance: GuestContractInstance, args: *const c_void, _out: *mut c_void) -> Outcome {
    let state = state(instance)?;
    let args: FailArgs = read_args(args)?;
    const PREFIX: &[u8] = b"parity failure ";
    state.message.clear();
    if state.message.try_reserve_exact(PREFIX.len() + 11).is_err() {
        return Err(NO_MEMORY);
    }
    state.message.extend_from_slice(PREFIX); // prefix + at most 11 characters: no reallocation
    push_decimal(&mut state.message, args.code);
    Err(AbiError { code: CODE_PANIC, message: vec_view(&state.message) })
}

// ---- the C entry points of the table -------------------------------------------------------

/// Writes the outcome if the caller gave somewhere to write it.
unsafe fn report(out_err: *mut AbiError, outcome: Outcome) {
    if let Some(err) = out_err.as_mut() {
        *err = match outcome {
            Ok(()) => NO_ERROR,
            Err(error) => error,
        };
    }
}

macro_rules! export {
    ($c_name:ident => $body:ident) => {
        unsafe extern "C" fn $c_name(
            instance: GuestContractInstance,
            args: *const c_void,
            out: *mut c_void,
            out_err: *mut AbiError,
        ) {
            report(out_err, $body(instance, args, out));
        }
    };
}

export!(kit_add_i32 => add_i32);
export!(kit_echo_ints => echo_ints);
export!(kit_scale => scale);
export!(kit_differ => differ);
export!(kit_greet => greet);
export!(kit_reverse => reverse);
export!(kit_total => total);
export!(kit_describe => describe);
export!(kit_colors => colors);
export!(kit_fail => fail);

unsafe extern "C" fn kit_create(
    _loader_data: VmLoaderData,
    _host: *const HostApi,
    _args: *const c_void,
    out_instance: *mut GuestContractInstance,
) {
    if let Some(out) = out_instance.as_mut() {
        let state = Box::new(State {
            greeting: Vec::new(),
            reversed: Vec::new(),
            label: Vec::new(),
            message: Vec::new(),
        });
        *out = GuestContractInstance {
            data: Box::into_raw(state) as *mut c_void,
            contract_id: CONTRACT_ID,
        };
    }
}

unsafe extern "C" fn kit_destroy(
    _loader_data: VmLoaderData,
    _host: *const HostApi,
    instance: GuestContractInstance,
) {
    if !instance.data.is_null() {
        drop(Box::from_raw(instance.data as *mut State));
    }
}

/// Raw pointers are not `Sync`; these statics are immutable and only ever read, so sharing them
/// between threads is sound.
struct Shared<T>(T);
unsafe impl<T> Sync for Shared<T> {}

/// Indexed by function id, in the contract's declaration order.
static FUNCTIONS: [GuestContractFn; FUNCTION_COUNT] = [
    kit_add_i32,   // 0
    kit_echo_ints, // 1
    kit_scale,     // 2
    kit_differ,    // 3
    kit_greet,     // 4
    kit_reverse,   // 5
    kit_total,     // 6
    kit_describe,  // 7
    kit_colors,    // 8
    kit_fail,      // 9
];

static INTERFACE: Shared<GuestContractInterface> = Shared(GuestContractInterface {
    contract_id: CONTRACT_ID,
    contract_version: Version { major: 1, minor: 0, patch: 0 },
    dispatch_type: DISPATCH_NATIVE,
    create_instance: kit_create,
    destroy_instance: kit_destroy,
    dispatch: NativeDispatch {
        function_count: FUNCTION_COUNT as u32,
        functions: FUNCTIONS.as_ptr(),
    },
});

// ---- plugin exports --------------------------------------------------------------------------

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
    let register = match host.as_ref() {
        Some(host) => match host.register_guest_contract {
            Some(register) => register,
            None => return error(CODE_INVALID_POINTER, "parity-rust: no register_guest_contract"),
        },
        None => return error(CODE_INVALID_POINTER, "parity-rust: no HostApi"),
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
