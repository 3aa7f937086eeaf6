// SPDX-License-Identifier: MIT
// ns/call of the Rust host crate against plain FFI calls in the same run (not a pass/fail test;
// scripts/bench.sh runs it in release mode):
//
//   cargo run --release --example bench -- --build build-bench [--vm lua] [-n 2000000]
//
// Rows: a plain FFI call of HostApi.get_error_len (the baseline: a trivial C function), a plain
// FFI find_guest_contract and the crate's find_handle, a plain FFI call of the C bundle's add
// function pointer (arguments prepared once) and Guest::call of add through the crate (native,
// then one VM bundle). Each figure is the best of 5 runs of N iterations.
//
//   cargo run --release --example bench -- --matrix --build build-bench [--floor lib.so] [-n N]
//
// --matrix: this host's row of the host x guest matrix (one "matrix Rust <guest> <ns>" line per
// cell, the floor first): Guest::call of test.parity.Kit's greet("world") read back as a String,
// on each parity guest (<build>/tests/parity/<g>, one runtime each), against the floor, the same
// round trip through a plain FFI call of polyplug_matrix_greet in
// <build>/tests/bench/matrix/libpolyplug_matrix_floor.so. Each cell is the best of 5 runs of N
// iterations, N calibrated to about 0.15 s per run unless -n is given.

use polyplug::{sys, AbiType, Contract, Function, Runtime, StringView, Version};
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Calc;
impl Contract for Calc {
    const NAME: &'static str = "example.calc";
    const VERSION: Version = Version::new(1, 0, 0);
}
#[repr(C)]
struct AddArgs {
    a: i32,
    b: i32,
}
unsafe impl AbiType for AddArgs {}
impl Calc {
    const ADD: Function<Calc, AddArgs, i32> = unsafe { Function::new(0, "add") };
}

fn best_ns<F: FnMut(u64) -> u64>(n: u64, mut f: F) -> f64 {
    let mut best = f64::MAX;
    let mut sink = 0u64;
    for _ in 0..5 {
        let start = Instant::now();
        sink = sink.wrapping_add(f(n));
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        if ns < best {
            best = ns;
        }
    }
    // Keeps the results observable, so no loop is optimised away.
    unsafe { std::ptr::write_volatile(&mut sink as *mut u64, sink) };
    best
}

fn main() {
    let mut build = PathBuf::from("build");
    let mut vm = String::from("lua");
    let mut n: Option<u64> = None;
    let mut matrix = false;
    let mut floor: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--build" => build = PathBuf::from(args.next().expect("--build DIR")),
            "--vm" => vm = args.next().expect("--vm lua|js|python|''"),
            "-n" => {
                n = Some(
                    args.next()
                        .expect("-n N")
                        .parse()
                        .expect("-n takes a number"),
                )
            }
            "--matrix" => matrix = true,
            "--floor" => floor = Some(PathBuf::from(args.next().expect("--floor FILE"))),
            other => panic!(
                "unknown argument {:?} (--build DIR, --vm LANG, -n N, --matrix, --floor FILE)",
                other
            ),
        }
    }
    if matrix {
        let floor =
            floor.unwrap_or_else(|| build.join("tests/bench/matrix/libpolyplug_matrix_floor.so"));
        std::process::exit(run_matrix(&build, &floor, n));
    }
    let n = n.unwrap_or(2_000_000);
    let rt = Runtime::new().expect("runtime");
    rt.load(build.join("examples/bundles/c_calc"))
        .expect("load c_calc");
    let host = rt.host_api();
    let api = unsafe { &*host };
    let get_error_len = api.get_error_len.unwrap();
    let find = api.find_guest_contract.unwrap();
    let id = Calc::ID;

    let mut rows: Vec<(String, f64)> = Vec::new();
    let base = best_ns(n, |n| {
        let mut s = 0u64;
        for _ in 0..n {
            s = s.wrapping_add(unsafe { get_error_len(host) } as u64);
        }
        s
    });
    rows.push(("plain FFI HostApi.get_error_len (baseline)".into(), base));
    let raw_find = best_ns(n, |n| {
        let mut s = 0u64;
        for _ in 0..n {
            s = s.wrapping_add(unsafe { find(host, id, 1) }.index as u64);
        }
        s
    });
    rows.push(("plain FFI find_guest_contract".into(), raw_find));
    let crate_find = best_ns(n, |n| {
        let mut s = 0u64;
        for _ in 0..n {
            s = s.wrapping_add(rt.find_handle(id, 1).map_or(0, |h| h.index as u64 + 1));
        }
        s
    });
    rows.push(("crate Runtime::find_handle".into(), crate_find));

    // The plain call: the provider's add entry, instance and arguments prepared once.
    let handle = rt.find_handle(id, 1).expect("example.calc@1");
    let iface = unsafe { (api.resolve_guest_contract.unwrap())(host, handle) };
    let mut instance = sys::GuestContractInstance {
        data: std::ptr::null_mut(),
        contract_id: 0,
    };
    unsafe { (api.create_guest_instance.unwrap())(host, iface, std::ptr::null(), &mut instance) };
    let entry: sys::GuestFn = unsafe { std::mem::transmute(*(*iface).dispatch.native.functions) };
    let raw_add = best_ns(n, |n| {
        let mut s = 0u64;
        let args = AddArgs { a: 2, b: 40 };
        for _ in 0..n {
            let mut out = 0i32;
            let mut err = sys::AbiError::OK;
            unsafe {
                entry(
                    instance,
                    &args as *const AddArgs as *const c_void,
                    &mut out as *mut i32 as *mut c_void,
                    &mut err,
                )
            };
            s = s.wrapping_add(out as u64 + err.code as u64);
        }
        s
    });
    rows.push(("plain FFI native add fn pointer".into(), raw_add));
    let mut calc = rt.find::<Calc>().expect("find");
    let crate_add = best_ns(n, |n| {
        let mut s = 0u64;
        let args = AddArgs { a: 2, b: 40 }; // prepared once, as for the plain call
        for _ in 0..n {
            let v = calc.call(Calc::ADD, &args).expect("add").into_value();
            s = s.wrapping_add(v as u64);
        }
        s
    });
    rows.push(("crate Guest::call add, native".into(), crate_add));
    drop(calc);
    unsafe { (api.destroy_guest_instance.unwrap())(host, iface, instance) };

    if !vm.is_empty() {
        let dir = match vm.as_str() {
            "lua" => "lua_calc",
            "js" => "js_calc",
            "python" => "python_calc",
            other => panic!("--vm {:?}: lua, js or python", other),
        };
        rt.add_loader(&vm, None)
            .expect("loader (set POLYPLUG_LOADER_DIR)");
        rt.load(build.join("examples/scripts").join(dir))
            .expect("load the VM bundle");
        let mut vm_calc = rt
            .find_all::<Calc>()
            .expect("find_all")
            .into_iter()
            .find(|c| c.is_vm())
            .expect("a VM provider");
        let m = (n / 10).max(1);
        let ns = best_ns(m, |m| {
            let mut s = 0u64;
            for _ in 0..m {
                s = s.wrapping_add(
                    vm_calc
                        .call(Calc::ADD, &AddArgs { a: 2, b: 40 })
                        .expect("add")
                        .into_value() as u64,
                );
            }
            s
        });
        rows.push((format!("crate Guest::call add, {} VM", vm), ns));
    }

    println!("{:46} {:>9} {:>7}", "what", "ns/call", "ratio");
    for (what, ns) in &rows {
        println!("{:46} {:9.1} {:7.2}", what, ns, ns / base);
    }
    println!("crate find / plain FFI find: {:.2}x", crate_find / raw_find);
    println!("crate add / plain FFI add:   {:.2}x", crate_add / raw_add);
}

// ---- the host x guest matrix ------------------------------------------------------------------
// test.parity.Kit@1 (tests/parity/parity.api.toml): only greet, function 4.
struct Kit;
impl Contract for Kit {
    const NAME: &'static str = "test.parity.Kit";
    const VERSION: Version = Version::new(1, 0, 0);
}
#[repr(C)]
struct GreetArgs<'a> {
    name: StringView<'a>,
}
unsafe impl<'a> AbiType for GreetArgs<'a> {}
impl Kit {
    fn greet<'a>() -> Function<Kit, GreetArgs<'a>, StringView<'static>> {
        unsafe { Function::new(4, "greet") }
    }
}

// The floor is opened with dlopen (glibc 2.36 has it in libc itself) rather than linked, so that
// --floor can name any file and a missing one is this program's error, not a link failure.
extern "C" {
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlerror() -> *mut c_char;
}
const RTLD_NOW: c_int = 2;
type FloorGreet = unsafe extern "C" fn(*const c_char, usize, *mut c_char, usize) -> usize;

fn open_floor(path: &Path) -> Result<FloorGreet, String> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    let handle = unsafe { dlopen(c.as_ptr(), RTLD_NOW) };
    let dl_error = || {
        let e = unsafe { dlerror() };
        if e.is_null() {
            String::from("unknown dlerror")
        } else {
            unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
        }
    };
    if handle.is_null() {
        return Err(dl_error());
    }
    let sym = unsafe { dlsym(handle, b"polyplug_matrix_greet\0".as_ptr() as *const c_char) };
    if sym.is_null() {
        return Err(dl_error());
    }
    Ok(unsafe { std::mem::transmute::<*mut c_void, FloorGreet>(sym) })
}

// The floor's round trip: the host string's bytes in, a new String out (checked UTF-8, as the
// crate's text() does).
fn floor_greet(f: FloorGreet, name: &str) -> String {
    let mut out = [0u8; 64];
    let n = unsafe {
        f(
            name.as_ptr() as *const c_char,
            name.len(),
            out.as_mut_ptr() as *mut c_char,
            out.len(),
        )
    };
    assert!(n <= out.len(), "the floor needs {} bytes", n);
    std::str::from_utf8(&out[..n]).expect("UTF-8").to_owned()
}

// The crate's round trip: a typed call, the reply read back as a new String.
fn crate_greet(kit: &mut polyplug::Guest<'_, Kit>, name: &str) -> polyplug::Result<String> {
    let reply = kit.call(
        Kit::greet(),
        &GreetArgs {
            name: StringView::new(name),
        },
    )?;
    Ok(reply.text(|s| s)?.to_owned())
}

// One cell: greet("world") checked once, then the best of 5 runs of N round trips (N for about
// 0.15 s per run: doubled until a run takes 20 ms, then scaled; or -n as given).
fn measure_cell<F: FnMut() -> Result<String, String>>(
    n: Option<u64>,
    mut greet: F,
) -> Result<f64, String> {
    let got = greet()?;
    if got != "hello, world!" {
        return Err(format!("greet(\"world\") returned {:?}", got));
    }
    let mut run = |n: u64| -> u64 {
        let mut s = 0u64;
        for _ in 0..n {
            s = s.wrapping_add(greet().expect("greet").len() as u64);
        }
        s
    };
    let n = match n {
        Some(n) => n,
        None => {
            let mut n = 100u64;
            loop {
                let start = Instant::now();
                run(n);
                let ns = start.elapsed().as_nanos() as f64;
                if ns >= 20e6 {
                    break ((n as f64 * 150e6 / ns) as u64).max(1);
                }
                n *= 2;
            }
        }
    };
    Ok(best_ns(n, run))
}

fn matrix_cell(build: &Path, guest: &str, n: Option<u64>) -> Result<f64, String> {
    // One runtime per guest: all six provide the same contract.
    let rt = Runtime::new().map_err(|e| e.to_string())?;
    if guest == "lua" || guest == "python" || guest == "js" {
        // $POLYPLUG_LOADER_DIR when set (as bench.sh does), else the build tree's module.
        let file = build
            .join("shim/loaders")
            .join(guest)
            .join(format!("libpolyplug-loader-{}.so", guest));
        let explicit = std::env::var_os("POLYPLUG_LOADER_DIR").is_none();
        rt.add_loader(guest, if explicit { Some(&file) } else { None })
            .map_err(|e| e.to_string())?;
    }
    rt.load(build.join("tests/parity").join(guest))
        .map_err(|e| e.to_string())?;
    let mut kit = rt.find::<Kit>().map_err(|e| e.to_string())?;
    measure_cell(n, || {
        crate_greet(&mut kit, "world").map_err(|e| e.to_string())
    })
}

// Prints the row; returns the exit status (1 when any cell failed).
fn run_matrix(build: &Path, floor: &Path, n: Option<u64>) -> i32 {
    println!("Rust host (the polyplug crate); greet(\"world\") round trips, best of 5");
    let mut status = 0;
    // (dlerror's message names the file.)
    let floor_ns = open_floor(floor).and_then(|f| measure_cell(n, || Ok(floor_greet(f, "world"))));
    match floor_ns {
        Ok(ns) => println!("matrix Rust floor {:.1}", ns),
        Err(e) => {
            eprintln!("the floor failed: {}", e);
            status = 1;
        }
    }
    for guest in ["c", "cpp", "rust", "lua", "python", "js"] {
        let dir = build.join("tests/parity").join(guest);
        if !dir.join("manifest.toml").exists() {
            println!(
                "matrix Rust {} skip {} has no manifest.toml (the {} parity guest is not built)",
                guest,
                dir.display(),
                guest
            );
            continue;
        }
        match matrix_cell(build, guest, n) {
            Ok(ns) => println!("matrix Rust {} {:.1}", guest, ns),
            Err(e) => {
                eprintln!("the {} guest failed: {}", guest, e);
                status = 1;
            }
        }
    }
    status
}
