// SPDX-License-Identifier: MIT
// The Rust host crate against the real libpolyplug.so: the example bundles, the parity table in
// every built language, errors, reloads and a host contract implemented as a closure. Run by
// Meson (tests/hosts/rust/meson.build), which passes every path in the environment:
//
//   RUSTHOST_EXAMPLE_BUNDLES  native example bundles   RUSTHOST_EXAMPLE_SCRIPTS  script bundles
//   RUSTHOST_PARITY_DIR       build/tests/parity       RUSTHOST_KITCHEN          kitchen bundle
//   RUSTHOST_LANGUAGES        parity languages built, comma-separated (c,cpp,rust,lua,python,js)
//   POLYPLUG_LOADER_DIR       where libpolyplug-loader-<lang>.so are
//
// A missing variable fails the test that needs it, naming the variable.

use polyplug::{
    bundle_id, guest_contract_id, AbiType, Buffer, Contract, ContractArray, Dynamic, ErrorCode,
    Function, HostContract, HostFunction, LogLevel, Phase, ReloadEvent, Runtime, StringView,
    Version,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{} is not set: run these tests through meson (tests/hosts/rust)",
            name
        ),
    }
}

fn path(var: &str, sub: &str) -> PathBuf {
    PathBuf::from(env(var)).join(sub)
}

fn languages() -> Vec<String> {
    env("RUSTHOST_LANGUAGES")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.to_string())
        .collect()
}

fn script_languages() -> Vec<String> {
    languages()
        .into_iter()
        .filter(|l| l == "lua" || l == "python" || l == "js")
        .collect()
}

fn with_loaders(rt: &Runtime) {
    for lang in script_languages() {
        rt.add_loader(&lang, None)
            .unwrap_or_else(|e| panic!("loader {}: {}", lang, e));
    }
}

// ---- example.calc@1 ---------------------------------------------------------------------------
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
    const DESCRIBE: Function<Calc, (), StringView<'static>> =
        unsafe { Function::new(1, "describe") };
}

fn add(calc: &mut polyplug::Guest<'_, Calc>, a: i32, b: i32) -> Result<i32, polyplug::Error> {
    Ok(calc.call(Calc::ADD, &AddArgs { a, b })?.into_value())
}

// ---- test.parity.Kit@1 (tests/parity/parity.api.toml) -------------------------------------------
struct Kit;
impl Contract for Kit {
    const NAME: &'static str = "test.parity.Kit";
    const VERSION: Version = Version::new(1, 0, 0);
}
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
struct Ints {
    a: i8,
    b: u8,
    c: i16,
    d: u16,
    e: i32,
    f: u32,
    g: i64,
    h: u64,
}
unsafe impl AbiType for Ints {}
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
struct Point {
    x: i32,
    y: i32,
}
unsafe impl AbiType for Point {}
#[repr(C)]
struct Shape<'a> {
    tag: u8,
    weight: f64,
    color: u16,
    label: StringView<'a>,
}
unsafe impl<'a> AbiType for Shape<'a> {}
#[repr(C)]
struct I32Pair {
    a: i32,
    b: i32,
}
unsafe impl AbiType for I32Pair {}
#[repr(C)]
struct EchoArgs {
    v: Ints,
}
unsafe impl AbiType for EchoArgs {}
#[repr(C)]
struct ScaleArgs {
    x: f32,
    y: f64,
}
unsafe impl AbiType for ScaleArgs {}
#[repr(C)]
struct DifferArgs {
    // bool in the contract: u8 here (0 or 1), since bool is not an AbiType (a guest writing 2
    // into a Rust bool would be undefined behaviour).
    a: u8,
    b: u8,
}
unsafe impl AbiType for DifferArgs {}
#[repr(C)]
struct GreetArgs<'a> {
    name: StringView<'a>,
}
unsafe impl<'a> AbiType for GreetArgs<'a> {}
#[repr(C)]
struct ReverseArgs<'a> {
    data: Buffer<'a>,
}
unsafe impl<'a> AbiType for ReverseArgs<'a> {}
#[repr(C)]
struct TotalArgs<'a> {
    points: ContractArray<'a, Point>,
}
unsafe impl<'a> AbiType for TotalArgs<'a> {}
#[repr(C)]
struct DescribeArgs<'a> {
    s: Shape<'a>,
}
unsafe impl<'a> AbiType for DescribeArgs<'a> {}
#[repr(C)]
struct U32Arg {
    n: u32,
}
unsafe impl AbiType for U32Arg {}
#[repr(C)]
struct I32Arg {
    code: i32,
}
unsafe impl AbiType for I32Arg {}

const RED: u16 = 1;
const GREEN: u16 = 2;
const BLUE: u16 = 256;

// Functions whose arguments borrow: a generic fn per slot, so each call picks its own lifetime.
impl Kit {
    const ADD_I32: Function<Kit, I32Pair, i32> = unsafe { Function::new(0, "add_i32") };
    const ECHO_INTS: Function<Kit, EchoArgs, Ints> = unsafe { Function::new(1, "echo_ints") };
    const SCALE: Function<Kit, ScaleArgs, f64> = unsafe { Function::new(2, "scale") };
    const DIFFER: Function<Kit, DifferArgs, u8> = unsafe { Function::new(3, "differ") };
    fn greet<'a>() -> Function<Kit, GreetArgs<'a>, StringView<'static>> {
        unsafe { Function::new(4, "greet") }
    }
    fn reverse<'a>() -> Function<Kit, ReverseArgs<'a>, Buffer<'static>> {
        unsafe { Function::new(5, "reverse") }
    }
    fn total<'a>() -> Function<Kit, TotalArgs<'a>, Point> {
        unsafe { Function::new(6, "total") }
    }
    fn describe<'a>() -> Function<Kit, DescribeArgs<'a>, Shape<'static>> {
        unsafe { Function::new(7, "describe") }
    }
    const COLORS: Function<Kit, U32Arg, ContractArray<'static, u16>> =
        unsafe { Function::new(8, "colors") };
    const FAIL: Function<Kit, I32Arg, ()> = unsafe { Function::new(9, "fail") };
}

fn check_parity(rt: &mut Runtime, lang: &str) {
    let dir = path("RUSTHOST_PARITY_DIR", lang);
    assert!(
        dir.join("manifest.toml").exists(),
        "{} is listed as built but {} has no manifest",
        lang,
        dir.display()
    );
    let id = rt.load(&dir).unwrap_or_else(|e| panic!("{}: {}", lang, e));
    let mut kits = rt.find_all::<Kit>().unwrap();
    assert_eq!(kits.len(), 1, "{}: one provider at a time", lang);
    let mut kit = kits.pop().unwrap();
    let script = lang == "lua" || lang == "python" || lang == "js";
    assert_eq!(kit.is_vm(), script, "{}: dispatch kind", lang);

    for &(a, b, s) in &[
        (2, 40, 42),
        (i32::MAX, 1, i32::MIN),
        (i32::MIN, -1, i32::MAX),
        (-7, 7, 0),
    ] {
        assert_eq!(
            kit.call(Kit::ADD_I32, &I32Pair { a, b })
                .unwrap()
                .into_value(),
            s,
            "{}: add_i32({}, {})",
            lang,
            a,
            b
        );
    }
    let minimum = Ints {
        a: -128,
        b: 0,
        c: -32768,
        d: 0,
        e: i32::MIN,
        f: 0,
        g: i64::MIN,
        h: 0,
    };
    let maximum = Ints {
        a: 127,
        b: 255,
        c: 32767,
        d: 65535,
        e: i32::MAX,
        f: u32::MAX,
        g: i64::MAX,
        h: u64::MAX,
    };
    let safe = Ints {
        a: -1,
        b: 200,
        c: -300,
        d: 60000,
        e: -70000,
        f: 4_000_000_000,
        g: -(1 << 53),
        h: 1 << 53,
    };
    // JavaScript numbers cannot carry the 64-bit extremes, LuaJIT's cannot carry u64::MAX exactly:
    // those guests refuse with Panic rather than answer wrongly.
    for &(label, v, refused) in &[
        ("minimum", minimum, lang == "js"),
        ("maximum", maximum, lang == "js" || lang == "lua"),
        ("2^53", safe, false),
    ] {
        let got = kit.call(Kit::ECHO_INTS, &EchoArgs { v });
        if refused {
            let e = got
                .err()
                .unwrap_or_else(|| panic!("{}: echo_ints({}) should be refused", lang, label));
            assert_eq!(e.code, ErrorCode::Panic, "{}: {}", lang, e);
        } else {
            assert_eq!(
                got.unwrap().into_value(),
                v,
                "{}: echo_ints({})",
                lang,
                label
            );
        }
    }
    for &(x, y) in &[
        (1.5f32, 0.25f64),
        (-0.0, -0.0),
        (3.402_823_5e38, 1e308),
        (1e-45, -2.5),
    ] {
        let got = kit
            .call(Kit::SCALE, &ScaleArgs { x, y })
            .unwrap()
            .into_value();
        assert_eq!(
            got.to_bits(),
            (x as f64 * 2.0 + y).to_bits(),
            "{}: scale({}, {})",
            lang,
            x,
            y
        );
    }
    for &a in &[0u8, 1] {
        for &b in &[0u8, 1] {
            assert_eq!(
                kit.call(Kit::DIFFER, &DifferArgs { a, b })
                    .unwrap()
                    .into_value(),
                (a != b) as u8,
                "{}: differ",
                lang
            );
        }
    }
    for text in &["world", "", "nul\0in", "gr\u{fc}\u{df} \u{20ac} \u{1f50c}"] {
        let reply = kit
            .call(
                Kit::greet(),
                &GreetArgs {
                    name: StringView::new(text),
                },
            )
            .unwrap();
        assert_eq!(
            reply.text(|s| s).unwrap(),
            format!("hello, {}!", text),
            "{}: greet",
            lang
        );
    }
    for data in &[&b""[..], &b"\x01\x00\xff"[..], &b"abc"[..]] {
        let reply = kit
            .call(
                Kit::reverse(),
                &ReverseArgs {
                    data: Buffer::new(data),
                },
            )
            .unwrap();
        let want: Vec<u8> = data.iter().rev().cloned().collect();
        assert_eq!(reply.bytes(|b| b).unwrap(), &want[..], "{}: reverse", lang);
    }
    let points = [
        Point { x: 1, y: 2 },
        Point { x: i32::MAX, y: -3 },
        Point { x: 1, y: i32::MIN },
    ];
    let total = kit
        .call(
            Kit::total(),
            &TotalArgs {
                points: ContractArray::new(&points),
            },
        )
        .unwrap()
        .into_value();
    assert_eq!(
        total,
        Point {
            x: i32::MIN + 1,
            y: i32::MAX
        },
        "{}: total",
        lang
    );
    let none: [Point; 0] = [];
    assert_eq!(
        kit.call(
            Kit::total(),
            &TotalArgs {
                points: ContractArray::new(&none)
            }
        )
        .unwrap()
        .into_value(),
        Point { x: 0, y: 0 }
    );
    let label = "\u{e9}t\u{e9}";
    let shape = Shape {
        tag: 255,
        weight: 1.25,
        color: BLUE,
        label: StringView::new(label),
    };
    {
        let reply = kit
            .call(Kit::describe(), &DescribeArgs { s: shape })
            .unwrap();
        assert_eq!(
            (reply.tag, reply.weight, reply.color),
            (0, 2.5, RED),
            "{}: describe",
            lang
        );
        assert_eq!(
            reply.text(|s| &s.label).unwrap(),
            "\u{e9}t\u{e9}!",
            "{}: describe label",
            lang
        );
    }
    assert_eq!(
        kit.call(Kit::COLORS, &U32Arg { n: 0 })
            .unwrap()
            .slice(|a| a)
            .unwrap(),
        &[] as &[u16]
    );
    assert_eq!(
        kit.call(Kit::COLORS, &U32Arg { n: 2 })
            .unwrap()
            .slice(|a| a)
            .unwrap(),
        &[RED, GREEN]
    );
    assert_eq!(
        kit.call(Kit::COLORS, &U32Arg { n: 3 })
            .unwrap()
            .slice(|a| a)
            .unwrap(),
        &[RED, GREEN, BLUE]
    );
    // Guest errors: code and message as the guest wrote them.
    let e = kit
        .call(Kit::COLORS, &U32Arg { n: 4 })
        .err()
        .expect("colors(4) must fail");
    assert_eq!(e.code, ErrorCode::Panic, "{}: {}", lang, e);
    assert!(e.message.contains("n too large"), "{}: {}", lang, e);
    let e = kit
        .call(Kit::FAIL, &I32Arg { code: -7 })
        .err()
        .expect("fail must fail");
    assert_eq!(e.code, ErrorCode::Panic, "{}: {}", lang, e);
    assert!(e.message.contains("parity failure -7"), "{}: {}", lang, e);
    assert!(
        e.message.starts_with("test.parity.Kit.fail: "),
        "{}: {}",
        lang,
        e
    );
    assert_eq!(
        kit.call(Kit::ADD_I32, &I32Pair { a: 1, b: 1 })
            .unwrap()
            .into_value(),
        2,
        "{}: still serving",
        lang
    );
    drop(kit);
    drop(kits);
    rt.unload(id).unwrap();
}

#[test]
fn parity_table_in_every_built_language() {
    let langs = languages();
    for expected in ["c", "cpp"] {
        assert!(
            langs.iter().any(|l| l == expected),
            "RUSTHOST_LANGUAGES lacks {}",
            expected
        );
    }
    let mut rt = Runtime::new().unwrap();
    with_loaders(&rt);
    for lang in &langs {
        check_parity(&mut rt, lang);
    }
    assert_eq!(rt.bundles().unwrap(), Vec::<u64>::new());
    println!("parity: checked {}", langs.join(", "));
}

#[test]
fn every_example_bundle_adds() {
    let mut rt = Runtime::new().unwrap();
    with_loaders(&rt);
    let scripts = script_languages();
    let result = rt
        .load_dirs(&[
            PathBuf::from(env("RUSTHOST_EXAMPLE_BUNDLES")),
            PathBuf::from(env("RUSTHOST_EXAMPLE_SCRIPTS")),
        ])
        .unwrap();
    assert!(result.loaded as usize >= 4 + scripts.len(), "{:?}", result);
    assert_eq!((result.skipped, result.diagnostics.as_str()), (0, ""));
    let providers = rt.find_all::<Calc>().unwrap();
    assert!(providers.len() >= 4, "{} providers", providers.len());
    let mut vm = 0;
    for mut p in providers {
        assert_eq!(add(&mut p, 2, 40).unwrap(), 42);
        assert_eq!(add(&mut p, i32::MAX, 1).unwrap(), i32::MIN); // wraps, as documented
        let reply = p.call(Calc::DESCRIBE, &()).unwrap();
        assert!(!reply.text(|s| s).unwrap().is_empty());
        if p.is_vm() {
            vm += 1;
        }
    }
    assert_eq!(vm, scripts.len());
}

#[test]
fn load_returns_the_id_and_find_by_name_works() {
    let rt = Runtime::new().unwrap();
    let id = rt.load(path("RUSTHOST_EXAMPLE_BUNDLES", "c_calc")).unwrap();
    assert_eq!(id, bundle_id("c-calc"));
    assert_eq!(rt.bundles().unwrap(), vec![id]);
    let mut calc = rt.find::<Calc>().unwrap();
    assert_eq!(calc.version(), Some(Version::new(1, 0, 0)));
    assert_eq!(add(&mut calc, 2, 40).unwrap(), 42);
    let mut named = rt.find_named("example.calc", 1).unwrap();
    let add_dyn: Function<Dynamic, AddArgs, i32> =
        unsafe { Function::dynamic("example.calc", 1, 0, "add") };
    assert_eq!(
        named
            .call(add_dyn, &AddArgs { a: 20, b: 22 })
            .unwrap()
            .into_value(),
        42
    );
    let missing: Function<Dynamic, AddArgs, i32> =
        unsafe { Function::dynamic("example.calc", 1, 7, "nope") };
    let e = named.call(missing, &AddArgs { a: 1, b: 1 }).err().unwrap();
    assert_eq!(e.code, ErrorCode::FunctionNotAvailable);
    assert!(e.message.contains("example.calc.nope"), "{}", e);
    // A function written for another contract (the kitchen's echo: a StringView argument and
    // result) is refused before any call, not run as calc.add with the wrong layouts.
    let foreign: Function<Dynamic, GreetArgs<'_>, StringView<'static>> =
        unsafe { Function::dynamic("test.cli.Kitchen", 2, 0, "echo") };
    let e = named
        .call(
            foreign,
            &GreetArgs {
                name: StringView::new("x"),
            },
        )
        .err()
        .unwrap();
    assert_eq!(e.code, ErrorCode::FunctionNotAvailable);
    assert!(e.message.contains("another contract"), "{}", e);
    // One made with Function::new names no contract: refused by a dynamic object too.
    let unnamed: Function<Dynamic, AddArgs, i32> = unsafe { Function::new(0, "add") };
    let e = named.call(unnamed, &AddArgs { a: 1, b: 1 }).err().unwrap();
    assert_eq!(e.code, ErrorCode::FunctionNotAvailable);
    assert!(e.message.contains("names no contract"), "{}", e);
    // The typed object is unaffected.
    assert_eq!(add(&mut calc, 1, 1).unwrap(), 2);
    assert!(rt
        .find_handle(guest_contract_id("example.calc", 1), 0)
        .is_some());
    assert!(rt
        .find_handle(guest_contract_id("example.calc", 1), 2)
        .is_none());
    let e = rt.find_named("example.nothing", 1).err().unwrap();
    assert_eq!(e.code, ErrorCode::NotFound);
    assert!(e.message.contains("example.nothing"), "{}", e);
}

#[test]
fn bad_paths_and_ids_are_errors_with_code_and_message() {
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = logs.clone();
    let mut rt = Runtime::options()
        .log_level(LogLevel::Debug)
        .log(move |r| sink.lock().unwrap().push(r.clone()))
        .build()
        .unwrap();
    let e = rt.load("/nonexistent/polyplug-bundle").err().unwrap();
    assert_ne!(e.code.raw(), 0);
    assert!(e.message.contains("/nonexistent/polyplug-bundle"), "{}", e);
    assert!(e.to_string().contains(&e.message));
    let e = rt.unload(bundle_id("no-such-bundle")).err().unwrap();
    assert_ne!(e.code.raw(), 0);
    assert!(e.message.starts_with("unload("), "{}", e);
    assert_eq!(rt.bundles().unwrap(), Vec::<u64>::new());
    let e = rt.add_loader("no_such_language", None).err().unwrap();
    assert_eq!(e.code, ErrorCode::NotFound);
    assert!(
        e.message.contains("libpolyplug-loader-no_such_language.so"),
        "{}",
        e
    );
    let records = logs.lock().unwrap();
    assert!(
        !records.is_empty(),
        "log level debug: the runtime's failure records arrive"
    );
    assert!(records.iter().all(|r| (1..=5).contains(&r.level)));
}

#[test]
fn load_dirs_reports_skipped_bundles() {
    let dir = std::env::temp_dir().join(format!("polyplug-rusthost-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("broken")).unwrap();
    std::fs::write(dir.join("broken").join("manifest.toml"), "name = \n").unwrap();
    let mut rt = Runtime::new().unwrap();
    let result = rt.load_dirs(&[&dir]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!((result.loaded, result.skipped), (0, 1));
    assert!(
        result.diagnostics.contains("broken"),
        "{}",
        result.diagnostics
    );
}

fn describe(calc: &mut polyplug::Guest<'_, Calc>) -> String {
    calc.call(Calc::DESCRIBE, &())
        .unwrap()
        .text(|s| s)
        .unwrap()
        .to_string()
}

#[test]
fn native_reload_serves_the_new_build_then_unload_and_load_again() {
    // A copy of c_calc whose library is then replaced by another build (cpp_calc's, same
    // contract, another description): the reload must serve the new code, which an unchanged
    // library could not show.
    let dir = std::env::temp_dir().join(format!("polyplug-rusthost-native-{}", std::process::id()));
    let bundle = dir.join("c_calc");
    copy_dir(&path("RUSTHOST_EXAMPLE_BUNDLES", "c_calc"), &bundle);
    let events: Arc<Mutex<Vec<ReloadEvent>>> = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let mut rt = Runtime::options()
        .hot_reload(true)
        .on_reload(move |e| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    let id = rt.load(&bundle).unwrap();
    let mut calc = rt.find::<Calc>().unwrap();
    assert_eq!(add(&mut calc, 2, 40).unwrap(), 42);
    let before_text = describe(&mut calc);
    drop(calc); // reload takes &mut: no contract object lives across it
    let library = bundle.join("libc_calc.so");
    std::fs::remove_file(&library).unwrap(); // a new inode: the old mapping stays intact
    std::fs::copy(
        path("RUSTHOST_EXAMPLE_BUNDLES", "cpp_calc").join("libcpp_calc.so"),
        &library,
    )
    .unwrap();
    let before = rt.revision();
    rt.reload(&bundle).unwrap();
    assert_ne!(rt.revision(), before);
    {
        let seen = events.lock().unwrap();
        let phases: Vec<Phase> = seen.iter().map(|e| e.phase).collect();
        assert_eq!(phases, vec![Phase::Preparing, Phase::Reloaded]);
        assert!(seen
            .iter()
            .all(|e| e.bundle_name == "c-calc" && e.bundle_id == id && e.reason.is_empty()));
    }
    let mut calc = rt.find::<Calc>().unwrap();
    let after_text = describe(&mut calc);
    assert_ne!(after_text, before_text, "the reloaded build serves");
    assert_eq!(add(&mut calc, 2, 40).unwrap(), 42);
    drop(calc);
    rt.unload(id).unwrap();
    let e = rt.find::<Calc>().err().unwrap();
    assert_eq!(e.code, ErrorCode::NotFound, "{}", e);
    rt.load(&bundle).unwrap();
    let mut calc = rt.find::<Calc>().unwrap();
    assert_eq!(add(&mut calc, 1, 1).unwrap(), 2);
    drop(calc);
    drop(rt);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_object_follows_a_new_provider_after_a_load() {
    // load takes &self: a live object sees the revision change on its next call and re-finds.
    let rt = Runtime::new().unwrap();
    rt.load(path("RUSTHOST_EXAMPLE_BUNDLES", "c_calc")).unwrap();
    let mut calc = rt.find::<Calc>().unwrap();
    let first = describe(&mut calc);
    let mut all = rt.find_all::<Calc>().unwrap();
    assert_eq!(all.len(), 1);
    rt.load(path("RUSTHOST_EXAMPLE_BUNDLES", "cpp_calc"))
        .unwrap();
    assert_eq!(add(&mut calc, 2, 40).unwrap(), 42);
    assert_eq!(
        describe(&mut calc),
        first,
        "the first registration stays current"
    );
    assert_eq!(
        describe(&mut all[0]),
        first,
        "a pinned object keeps its provider"
    );
    assert_eq!(rt.find_all::<Calc>().unwrap().len(), 2);
}

#[test]
fn reload_is_refused_without_hot_reload() {
    let mut rt = Runtime::new().unwrap();
    let dir = path("RUSTHOST_EXAMPLE_BUNDLES", "c_calc");
    rt.load(&dir).unwrap();
    let e = rt.reload(&dir).err().unwrap();
    assert!(e.message.contains("hot_reload"), "{}", e);
}

#[test]
fn a_panicking_callback_surfaces_as_an_error() {
    let mut rt = Runtime::options()
        .hot_reload(true)
        .on_reload(|_| panic!("callback says no"))
        .build()
        .unwrap();
    let dir = path("RUSTHOST_EXAMPLE_BUNDLES", "c_calc");
    let id = rt.load(&dir).unwrap();
    assert!(
        rt.take_callback_error().is_none(),
        "a load has no reload phase"
    );
    // The reload itself succeeds: its result says so, the panic is reported separately.
    rt.reload(&dir)
        .expect("the reload succeeded; the callback's panic is not its error");
    let e = rt
        .take_callback_error()
        .expect("the on_reload panic is kept");
    assert_eq!(e.code, ErrorCode::Panic);
    assert!(e.message.contains("callback says no"), "{}", e);
    assert!(rt.take_callback_error().is_none(), "taken once");
    assert_eq!(rt.bundles().unwrap(), vec![id]);
    let mut calc = rt.find::<Calc>().unwrap();
    assert_eq!(add(&mut calc, 2, 40).unwrap(), 42);
    drop(calc);
    // An unload also runs on_reload (Unloading): it too reports its own success.
    rt.unload(id).expect("the unload succeeded");
    assert_eq!(rt.bundles().unwrap(), Vec::<u64>::new());
    assert_eq!(rt.take_callback_error().unwrap().code, ErrorCode::Panic);
}

#[test]
fn a_panicking_log_callback_does_not_fail_a_load_that_succeeded() {
    let rt = Runtime::options()
        .log_level(LogLevel::Debug)
        .log(|_| panic!("log says no"))
        .build()
        .unwrap();
    // The C bundle logs through the runtime when it loads (level debug): the callback panics.
    let id = rt
        .load(path("RUSTHOST_EXAMPLE_BUNDLES", "c_calc"))
        .expect("the load succeeded; the log callback's panic is not its error");
    assert_eq!(rt.bundles().unwrap(), vec![id]);
    let e = rt.take_callback_error().expect("the log panic is kept");
    assert_eq!(e.code, ErrorCode::Panic);
    assert!(e.message.contains("log says no"), "{}", e);
}

// ---- the kitchen (tests/cli/kitchen.api.toml) and its host.test.cli.Log@1 -----------------------
struct Kitchen;
impl Contract for Kitchen {
    const NAME: &'static str = "test.cli.Kitchen";
    const VERSION: Version = Version::new(2, 3, 4);
}
impl Kitchen {
    fn echo<'a>() -> Function<Kitchen, GreetArgs<'a>, StringView<'static>> {
        unsafe { Function::new(1, "echo") }
    }
}
#[repr(C)]
struct WriteArgs {
    level: u8,
    message: StringView<'static>,
}
unsafe impl AbiType for WriteArgs {}
const WRITE: HostFunction<WriteArgs, u8> = unsafe { HostFunction::new() };

fn log_contract(lines: Arc<Mutex<Vec<(u8, String)>>>) -> HostContract {
    HostContract::new("host.test.cli.Log", Version::new(1, 1, 0))
        .singleton(true)
        .function(WRITE, move |args| {
            let message = args.text(|a| &a.message)?;
            if message.contains("refuse") {
                return Err(polyplug::Error::new(
                    ErrorCode::Other(300),
                    format!("refusing {:?}", message),
                ));
            }
            if message.contains("explode") {
                panic!("exploding on {:?}", message);
            }
            lines
                .lock()
                .unwrap()
                .push((args.level, message.to_string()));
            Ok(1)
        })
}

fn echo(k: &mut polyplug::Guest<'_, Kitchen>, text: &str) -> Result<String, polyplug::Error> {
    let reply = k.call(
        Kitchen::echo(),
        &GreetArgs {
            name: StringView::new(text),
        },
    )?;
    let text = reply.text(|s| s)?;
    Ok(text.to_string())
}

#[test]
fn the_kitchen_calls_a_closure_host_contract() {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let rt = Runtime::new().unwrap();
    rt.register_host_contract(log_contract(lines.clone()))
        .unwrap();
    rt.load(env("RUSTHOST_KITCHEN")).unwrap();
    let mut k = rt.find::<Kitchen>().unwrap();
    let text = "a\0b \u{fc}\u{1f50c}";
    assert_eq!(echo(&mut k, text).unwrap(), format!("v1:{}", text));
    assert_eq!(*lines.lock().unwrap(), vec![(3u8, format!("v1:{}", text))]);
    // The closure's error reaches the plugin, whose glue reports it as its own Panic.
    let e = echo(&mut k, "refuse me").err().unwrap();
    assert_eq!(e.code, ErrorCode::Panic, "{}", e);
    assert!(e.message.contains("refusing \"v1:refuse me\""), "{}", e);
    // A panic in the closure never unwinds into C: it arrives as an error too.
    let e = echo(&mut k, "explode").err().unwrap();
    assert!(
        e.message.contains("the host closure panicked") && e.message.contains("exploding"),
        "{}",
        e
    );
    assert_eq!(echo(&mut k, "again").unwrap(), "v1:again");
    let e = rt
        .register_host_contract(log_contract(lines.clone()))
        .err()
        .unwrap();
    assert!(e.message.contains("duplicate"), "{}", e);
    assert_eq!(echo(&mut k, "still").unwrap(), "v1:still"); // the first registration serves on
    assert_eq!(lines.lock().unwrap().len(), 3);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_dir() {
            continue; // build droppings (lib*.so.p)
        }
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_script_reload_then_a_failed_one_keeps_the_old_version() {
    if !script_languages().iter().any(|l| l == "lua") {
        // Not listed as built: then there must be no Lua loader to find either (a loader that
        // exists but is not listed would leave this test and the parity table unchecked).
        let rt = Runtime::new().unwrap();
        let e = rt
            .add_loader("lua", None)
            .err()
            .expect("RUSTHOST_LANGUAGES lacks lua but the Lua loader was found");
        assert_eq!(e.code, ErrorCode::NotFound, "{}", e);
        return;
    }
    let dir = std::env::temp_dir().join(format!("polyplug-rusthost-lua-{}", std::process::id()));
    let bundle = dir.join("lua_calc");
    copy_dir(&path("RUSTHOST_EXAMPLE_SCRIPTS", "lua_calc"), &bundle);
    let events: Arc<Mutex<Vec<ReloadEvent>>> = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let mut rt = Runtime::options()
        .hot_reload(true)
        .on_reload(move |e| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    rt.add_loader("lua", None).unwrap();
    rt.load(&bundle).unwrap();
    let mut calc = rt.find::<Calc>().unwrap();
    assert!(calc.is_vm());
    assert_eq!(add(&mut calc, 2, 40).unwrap(), 42);
    let script = bundle.join("calc.lua");
    std::fs::write(
        &script,
        "local Calc = {}\n\
         function Calc:add(a, b) return a + b + 1000 end\n\
         function Calc:describe() return \"Lua calc v2\" end\n\
         contracts = { [\"example.calc\"] = Calc }\n",
    )
    .unwrap();
    drop(calc); // reload takes &mut: no contract object lives across it
    rt.reload(&bundle).unwrap();
    let mut calc = rt.find::<Calc>().unwrap();
    let phases: Vec<Phase> = events.lock().unwrap().iter().map(|e| e.phase).collect();
    assert_eq!(phases, vec![Phase::Preparing, Phase::Reloaded]);
    assert_eq!(add(&mut calc, 2, 40).unwrap(), 1042);
    assert_eq!(
        calc.call(Calc::DESCRIBE, &()).unwrap().text(|s| s).unwrap(),
        "Lua calc v2"
    );
    events.lock().unwrap().clear();
    std::fs::write(&script, "this is not lua (\n").unwrap();
    drop(calc);
    let e = rt
        .reload(&bundle)
        .err()
        .expect("a reload of broken Lua must fail");
    assert!(e.message.contains("calc.lua"), "{}", e);
    {
        let seen = events.lock().unwrap();
        assert_eq!(seen[0].phase, Phase::Preparing);
        let failed = seen
            .iter()
            .find(|e| e.phase == Phase::Failed)
            .expect("a Failed phase");
        assert!(!failed.reason.is_empty());
    }
    let mut calc = rt.find::<Calc>().unwrap();
    assert_eq!(add(&mut calc, 2, 40).unwrap(), 1042); // the old version keeps serving
    drop(calc);
    drop(rt);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn add_loader_tries_the_next_candidate_after_a_library_without_the_symbol() {
    // $POLYPLUG_LOADER_DIR/libpolyplug-loader-<lang>.so is a library without the loader's
    // create symbol (an example bundle's); the real loader is in $POLYPLUG_LOADER_DIR/<lang>/.
    // add_loader must go on to it (it used to give up at the first).
    let real_dir = env("POLYPLUG_LOADER_DIR");
    let dir =
        std::env::temp_dir().join(format!("polyplug-rusthost-loaders-{}", std::process::id()));
    let lang = script_languages().into_iter().next();
    let lang_name = lang.clone().unwrap_or_else(|| "lua".to_string());
    let file = format!("libpolyplug-loader-{}.so", lang_name);
    std::fs::create_dir_all(dir.join(&lang_name)).unwrap();
    std::fs::copy(
        path("RUSTHOST_EXAMPLE_BUNDLES", "c_calc").join("libc_calc.so"),
        dir.join(&file),
    )
    .unwrap();
    let real = [
        PathBuf::from(&real_dir).join(&file),
        PathBuf::from(&real_dir).join(&lang_name).join(&file),
    ]
    .into_iter()
    .find(|p| p.exists());
    if let Some(real) = &real {
        std::os::unix::fs::symlink(real, dir.join(&lang_name).join(&file)).unwrap();
    }
    std::env::set_var("POLYPLUG_LOADER_DIR", &dir);
    let rt = Runtime::new().unwrap();
    let result = rt.add_loader(&lang_name, None);
    std::env::set_var("POLYPLUG_LOADER_DIR", &real_dir);
    std::fs::remove_dir_all(&dir).unwrap();
    match (lang, real) {
        (Some(_), Some(_)) => {
            let used = result.unwrap();
            assert_eq!(used, dir.join(&lang_name).join(&file));
        }
        (Some(l), None) => panic!(
            "{} is listed as built but its loader is not in {}",
            l, real_dir
        ),
        (None, _) => {
            let e = result.err().unwrap();
            assert_eq!(e.code, ErrorCode::NotFound);
            assert!(
                e.message.contains("has no polyplug_loader_lua_create"),
                "{}",
                e
            );
            assert!(e.message.contains("lua/libpolyplug-loader-lua.so"), "{}", e);
        }
    }
}

#[test]
fn empty_lists_are_not_errors() {
    let rt = Runtime::new().unwrap();
    assert_eq!(rt.bundles().unwrap(), Vec::<u64>::new());
    assert_eq!(rt.find_all::<Calc>().unwrap().len(), 0);
}
