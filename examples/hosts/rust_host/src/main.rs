// SPDX-License-Identifier: MIT
// A Rust host on the polyplug crate: a runtime with reload and log callbacks, the loaders of the
// script languages, a host contract implemented as a closure (host.example.Log@1, which the C
// bundle calls on every add), discovery of every example bundle, typed calls of example.calc@1
// on each provider, a hot reload with its phases, and the error paths.
//
//   rust_host <native bundles dir> <script bundles dir> <loaders: lua,python,js or "">
//
// libpolyplug.so is linked (POLYPLUG_LIB_DIR at build time) and found at run time through
// LD_LIBRARY_PATH; loader modules through POLYPLUG_LOADER_DIR.

use polyplug::{
    AbiType, Contract, ErrorCode, Function, HostContract, HostFunction, Runtime, StringView,
    Version,
};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

// ---- example.calc@1 (examples/contracts/example_calc.api.toml) ---------------------------------
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
// Safety: #[repr(C)] with the layout of the generated ExampleCalcAddArgs.
unsafe impl AbiType for AddArgs {}

impl Calc {
    // Safety: function 0 is add(a: i32, b: i32) -> i32, function 1 describe() -> StringView.
    const ADD: Function<Calc, AddArgs, i32> = unsafe { Function::new(0, "add") };
    const DESCRIBE: Function<Calc, (), StringView<'static>> =
        unsafe { Function::new(1, "describe") };
}

// ---- host.example.Log@1, implemented here ------------------------------------------------------
#[repr(C)]
struct LogWriteArgs {
    line: StringView<'static>,
}
unsafe impl AbiType for LogWriteArgs {}
const LOG_WRITE: HostFunction<LogWriteArgs, ()> = unsafe { HostFunction::new() };

fn run(bundles: &str, scripts: &str, loaders: &[&str]) -> Result<(), polyplug::Error> {
    let phases = Arc::new(Mutex::new(Vec::new()));
    let seen = phases.clone();
    let mut rt = Runtime::options()
        .hot_reload(true)
        .on_reload(move |e| seen.lock().unwrap().push(e.phase))
        .log(|r| eprintln!("[log {}] {}: {}", r.level, r.scope, r.message))
        .build()?;
    for lang in loaders {
        let module = rt.add_loader(lang, None)?;
        println!("loader {}: {}", lang, module.display());
    }

    let lines = Arc::new(AtomicU32::new(0));
    let counter = lines.clone();
    let log = HostContract::new("host.example.Log", Version::new(1, 0, 0))
        .singleton(true)
        .function(LOG_WRITE, move |args| {
            println!("  plugin says: {}", args.text(|a| &a.line)?);
            counter.fetch_add(1, Ordering::Relaxed);
            Ok(())
        });
    rt.register_host_contract(log)?;

    let dirs = if loaders.is_empty() {
        vec![bundles]
    } else {
        vec![bundles, scripts]
    };
    let found = rt.load_dirs(&dirs)?;
    println!("loaded {} bundles, skipped {}", found.loaded, found.skipped);
    if found.skipped != 0 {
        return Err(polyplug::Error::new(
            ErrorCode::Generic,
            format!("skipped bundles: {}", found.diagnostics),
        ));
    }

    let providers = rt.find_all::<Calc>()?;
    for mut calc in providers {
        let vm = calc.is_vm();
        let sum = calc.call(Calc::ADD, &AddArgs { a: 2, b: 40 })?.into_value();
        // The text lives in the guest until the next call on `calc`: the reply borrows it.
        let reply = calc.call(Calc::DESCRIBE, &())?;
        let name = reply.text(|s| s)?;
        println!(
            "{:<40} add(2, 40) = {}{}",
            name,
            sum,
            if vm { "  (vm)" } else { "" }
        );
        if sum != 42 {
            return Err(polyplug::Error::new(
                ErrorCode::Generic,
                format!("{}: add(2, 40) = {}", name, sum),
            ));
        }
    }
    if lines.load(Ordering::Relaxed) == 0 {
        return Err(polyplug::Error::new(
            ErrorCode::Generic,
            "the C bundle never called host.example.Log",
        ));
    }

    // A hot reload in place. It takes `&mut rt`: no contract object or call result may live
    // across it (the old code and its memory go), so the object is found again after.
    let c_calc = std::path::Path::new(bundles).join("c_calc");
    rt.reload(&c_calc)?;
    let mut calc = rt.find::<Calc>()?;
    println!("reload phases: {:?}", phases.lock().unwrap());
    println!(
        "after reload: add(1, 2) = {}",
        calc.call(Calc::ADD, &AddArgs { a: 1, b: 2 })?.into_value()
    );

    // The error paths: a code and a message each.
    match rt.load("/nonexistent/bundle") {
        Err(e) => println!("expected error: {}", e),
        Ok(_) => {
            return Err(polyplug::Error::new(
                ErrorCode::Generic,
                "loading a missing bundle succeeded",
            ))
        }
    }
    match rt.find_named("example.nothing", 1) {
        Err(e) if e.code == ErrorCode::NotFound => println!("expected error: {}", e),
        other => {
            return Err(polyplug::Error::new(
                ErrorCode::Generic,
                format!("find of a missing contract: {:?}", other.err()),
            ))
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!(
            "usage: rust_host <native bundles dir> <script bundles dir> <loaders, e.g. lua,js>"
        );
        return ExitCode::from(2);
    }
    let loaders: Vec<&str> = args[3].split(',').filter(|s| !s.is_empty()).collect();
    match run(&args[1], &args[2], &loaders) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rust_host: {}", e);
            ExitCode::FAILURE
        }
    }
}
