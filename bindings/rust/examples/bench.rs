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

use polyplug::{sys, AbiType, Contract, Function, Runtime, Version};
use std::os::raw::c_void;
use std::path::PathBuf;
use std::time::Instant;

struct Calc;
impl Contract for Calc {
    const NAME: &'static str = "example.calc";
    const VERSION: Version = Version {
        major: 1,
        minor: 0,
        patch: 0,
    };
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
    let mut n: u64 = 2_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--build" => build = PathBuf::from(args.next().expect("--build DIR")),
            "--vm" => vm = args.next().expect("--vm lua|js|python|''"),
            "-n" => {
                n = args
                    .next()
                    .expect("-n N")
                    .parse()
                    .expect("-n takes a number")
            }
            other => panic!(
                "unknown argument {:?} (--build DIR, --vm LANG, -n N)",
                other
            ),
        }
    }
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
