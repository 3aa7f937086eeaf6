// SPDX-License-Identifier: MIT
//! `Runtime`: one `polyplug_runtime_create` handle, its options, callbacks, loaders and bundles.

use crate::error::{Error, ErrorCode, Result};
use crate::host::HostRegistration;
use crate::sys;
use crate::types::checked_text;
use std::cell::RefCell;
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The phase of a reload event (`ReloadPhase.phase_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Preparing,
    Reloaded,
    Failed,
    Unloading,
    Unknown(u32),
}

/// One `on_reload` callback: `reason` is empty unless the phase is `Failed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadEvent {
    pub phase: Phase,
    pub bundle_id: u64,
    pub bundle_name: String,
    pub reason: String,
}

/// Log levels (`RuntimeConfig.log_max_level`, `HostApi.log`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// One record of the runtime's (or a guest's) log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// The raw level: 1 (error) to 5 (trace).
    pub level: u32,
    pub scope: String,
    pub message: String,
}

/// How manifest version and function-count mismatches are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compatibility {
    Strict = 0,
    Relaxed = 1,
    Yolo = 2,
}

type ReloadFn = Box<dyn Fn(&ReloadEvent) + Send + Sync>;
type LogFn = Box<dyn Fn(&LogRecord) + Send + Sync>;

/// What `Runtime::with_options` builds: defaults are no hot reload, strict compatibility, log
/// level warn, no callbacks (the runtime then prints errors and warnings to stderr).
pub struct RuntimeOptions {
    hot_reload: bool,
    compatibility: Compatibility,
    log_level: LogLevel,
    on_reload: Option<ReloadFn>,
    log: Option<LogFn>,
}

impl Default for RuntimeOptions {
    fn default() -> RuntimeOptions {
        RuntimeOptions::new()
    }
}

impl RuntimeOptions {
    pub fn new() -> RuntimeOptions {
        RuntimeOptions {
            hot_reload: false,
            compatibility: Compatibility::Strict,
            log_level: LogLevel::Warn,
            on_reload: None,
            log: None,
        }
    }
    pub fn hot_reload(mut self, on: bool) -> RuntimeOptions {
        self.hot_reload = on;
        self
    }
    pub fn compatibility(mut self, mode: Compatibility) -> RuntimeOptions {
        self.compatibility = mode;
        self
    }
    pub fn log_level(mut self, level: LogLevel) -> RuntimeOptions {
        self.log_level = level;
        self
    }
    /// Called for every reload phase, on the thread that reloads or unloads.
    pub fn on_reload<F: Fn(&ReloadEvent) + Send + Sync + 'static>(
        mut self,
        f: F,
    ) -> RuntimeOptions {
        self.on_reload = Some(Box::new(f));
        self
    }
    /// Called for every log record up to the level, on whichever thread logs (guests may log
    /// from their own threads). Must not call back into the runtime.
    pub fn log<F: Fn(&LogRecord) + Send + Sync + 'static>(mut self, f: F) -> RuntimeOptions {
        self.log = Some(Box::new(f));
        self
    }
    pub fn build(self) -> Result<Runtime> {
        Runtime::with_options(self)
    }
}

/// What the C callbacks reach. A panic in a user callback is caught (it must not unwind into C)
/// and kept (the first one) until [`Runtime::take_callback_error`] takes it.
struct Callbacks {
    on_reload: Option<ReloadFn>,
    log: Option<LogFn>,
    failure: Mutex<Option<Error>>,
}

impl Callbacks {
    fn fail(&self, error: Error) {
        if let Ok(mut slot) = self.failure.lock() {
            if slot.is_none() {
                *slot = Some(error);
            }
        }
    }
    fn take_failure(&self) -> Option<Error> {
        match self.failure.lock() {
            Ok(mut slot) => slot.take(),
            Err(_) => Some(Error::new(
                ErrorCode::Generic,
                "a callback's failure slot is poisoned",
            )),
        }
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_string()
    }
}

unsafe extern "C" fn reload_trampoline(user: *mut c_void, phase: *const sys::ReloadPhase) {
    let callbacks = &*(user as *const Callbacks);
    let f = match &callbacks.on_reload {
        Some(f) => f,
        None => return,
    };
    if phase.is_null() {
        callbacks.fail(Error::new(
            ErrorCode::InvalidPointer,
            "on_reload: the runtime passed a null phase",
        ));
        return;
    }
    let p = &*phase;
    let name = checked_text(
        p.bundle_name.ptr,
        p.bundle_name.len,
        "on_reload: bundle name",
    );
    let reason = checked_text(p.reason.ptr, p.reason.len, "on_reload: reason");
    let (name, reason) = match (name, reason) {
        (Ok(n), Ok(r)) => (n, r),
        (Err(e), _) | (_, Err(e)) => {
            callbacks.fail(e);
            return;
        }
    };
    let event = ReloadEvent {
        phase: match p.phase_type {
            0 => Phase::Preparing,
            1 => Phase::Reloaded,
            2 => Phase::Failed,
            3 => Phase::Unloading,
            other => Phase::Unknown(other),
        },
        bundle_id: p.bundle_id,
        bundle_name: name.to_string(),
        reason: reason.to_string(),
    };
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(&event))) {
        callbacks.fail(Error::new(
            ErrorCode::Panic,
            format!("the on_reload callback panicked: {}", panic_text(&*payload)),
        ));
    }
}

unsafe extern "C" fn log_trampoline(
    user: *mut c_void,
    level: u32,
    scope: sys::RawStringView,
    message: sys::RawStringView,
) {
    let callbacks = &*(user as *const Callbacks);
    let f = match &callbacks.log {
        Some(f) => f,
        None => return,
    };
    let scope = checked_text(scope.ptr, scope.len, "log: scope");
    let message = checked_text(message.ptr, message.len, "log: message");
    let (scope, message) = match (scope, message) {
        (Ok(s), Ok(m)) => (s, m),
        (Err(e), _) | (_, Err(e)) => {
            callbacks.fail(e);
            return;
        }
    };
    let record = LogRecord {
        level,
        scope: scope.to_string(),
        message: message.to_string(),
    };
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(&record))) {
        callbacks.fail(Error::new(
            ErrorCode::Panic,
            format!("the log callback panicked: {}", panic_text(&*payload)),
        ));
    }
}

/// The result of [`Runtime::load_dirs`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadDirsResult {
    pub loaded: u32,
    pub skipped: u32,
    /// One line per skipped bundle and why; empty when nothing was skipped.
    pub diagnostics: String,
}

extern "C" {
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlclose(handle: *mut c_void) -> c_int;
    fn dlerror() -> *mut c_char;
}
const RTLD_NOW: c_int = 2;

fn dl_error() -> String {
    unsafe {
        let e = dlerror();
        if e.is_null() {
            "no dlerror text".to_string()
        } else {
            std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

pub(crate) type FindFn =
    unsafe extern "C" fn(*const sys::HostApi, u64, u32) -> sys::GuestContractHandle;

unsafe extern "C" fn find_nothing(
    _: *const sys::HostApi,
    _: u64,
    _: u32,
) -> sys::GuestContractHandle {
    sys::GuestContractHandle::NULL
}

/// A polyplug runtime (`polyplug_runtime_create`); dropping it destroys the runtime.
///
/// Threads: a `Runtime` may be moved to another thread (`Send`) but not shared (`!Sync`), and
/// every contract object borrows it, so loading, reloading, unloading and calling happen on one
/// thread at a time; that is what lets a call check the revision counter and then use the
/// interface without another thread unloading it in between. Host contract closures and the
/// callbacks must be `Send + Sync`: guests may call them from any thread.
pub struct Runtime {
    host: *const sys::HostApi,
    // find_guest_contract, read once: the hot lookup skips the table.
    pub(crate) find: FindFn,
    revision: *const AtomicU64,
    callbacks: Box<Callbacks>,
    // Must outlive the runtime: the registry keeps pointers to them. Dropped after destroy.
    host_contracts: RefCell<Vec<HostRegistration>>,
    loaders: RefCell<Vec<(String, PathBuf)>>,
    runtime_contract: Option<(sys::HostContractInstance, *const sys::HostContractInterface)>,
}

unsafe impl Send for Runtime {}

impl Runtime {
    /// A runtime with the default options.
    pub fn new() -> Result<Runtime> {
        Runtime::with_options(RuntimeOptions::new())
    }

    pub fn options() -> RuntimeOptions {
        RuntimeOptions::new()
    }

    pub fn with_options(options: RuntimeOptions) -> Result<Runtime> {
        let callbacks = Box::new(Callbacks {
            on_reload: options.on_reload,
            log: options.log,
            failure: Mutex::new(None),
        });
        let user = &*callbacks as *const Callbacks as *mut c_void;
        let config = sys::RuntimeConfig {
            compatibility: options.compatibility as u32,
            hot_reload_enabled: options.hot_reload,
            on_reload: if callbacks.on_reload.is_some() {
                Some(reload_trampoline)
            } else {
                None
            },
            on_reload_user_data: user,
            log: if callbacks.log.is_some() {
                Some(log_trampoline)
            } else {
                None
            },
            log_user_data: user,
            log_max_level: options.log_level as u32,
        };
        let host = unsafe { sys::polyplug_runtime_create(&config) };
        if host.is_null() {
            return Err(Error::new(
                ErrorCode::Generic,
                "polyplug_runtime_create failed (returned NULL)",
            ));
        }
        let mut rt = Runtime {
            host,
            // Replaced by the check below before any use; a stand-in keeps the field non-optional.
            find: unsafe { (*host).find_guest_contract }.unwrap_or(find_nothing),
            revision: std::ptr::null(),
            callbacks,
            host_contracts: RefCell::new(Vec::new()),
            loaders: RefCell::new(Vec::new()),
            runtime_contract: None,
        };
        {
            let api = unsafe { &*host };
            let all_set = api.register_guest_contract.is_some()
                && api.alloc.is_some()
                && api.free.is_some()
                && api.find_guest_contract.is_some()
                && api.find_all_guest_contracts.is_some()
                && api.resolve_guest_contract.is_some()
                && api.get_host_contract.is_some()
                && api.resolve_host_contract_interface.is_some()
                && api.list_bundles.is_some()
                && api.load_bundle.is_some()
                && api.reload_bundle.is_some()
                && api.register_host_contract.is_some()
                && api.register_loader.is_some()
                && api.get_last_error.is_some()
                && api.get_error_len.is_some()
                && api.unload_bundle.is_some()
                && api.log.is_some()
                && api.create_guest_instance.is_some()
                && api.destroy_guest_instance.is_some()
                && api.revision_counter.is_some();
            if !all_set {
                return Err(Error::new(
                    ErrorCode::InvalidPointer,
                    "the runtime's HostApi has a null entry",
                ));
            }
            rt.revision = unsafe { (api.revision_counter.unwrap())(host) } as *const AtomicU64;
            let iface = unsafe {
                (api.resolve_host_contract_interface.unwrap())(host, sys::RUNTIME_CONTRACT_ID, 0)
            };
            let instance =
                unsafe { (api.get_host_contract.unwrap())(host, sys::RUNTIME_CONTRACT_ID, 0) };
            rt.clear_last_error();
            if !iface.is_null() && !instance.data.is_null() {
                rt.runtime_contract = Some((instance, iface));
            }
        }
        Ok(rt)
    }

    /// The raw function table, for code that needs the C ABI directly.
    pub fn host_api(&self) -> *const sys::HostApi {
        self.host
    }

    pub(crate) fn api(&self) -> &sys::HostApi {
        unsafe { &*self.host }
    }

    /// The revision counter: it changes on every load, reload and unload.
    pub fn revision(&self) -> u64 {
        if self.revision.is_null() {
            0
        } else {
            unsafe { (*self.revision).load(Ordering::Acquire) }
        }
    }

    pub(crate) fn revision_ptr(&self) -> *const AtomicU64 {
        self.revision
    }

    pub(crate) fn take_last_error(&self) -> String {
        let api = self.api();
        unsafe {
            let n = (api.get_error_len.unwrap())(self.host);
            if n == 0 {
                return String::new();
            }
            let mut buf = vec![0u8; n];
            let got = (api.get_last_error.unwrap())(self.host, buf.as_mut_ptr(), n);
            buf.truncate(got.min(n));
            String::from_utf8_lossy(&buf).into_owned()
        }
    }

    /// The runtime's last error as an `Error` for a call that reports failure only through it
    /// (`get_last_error` has no code): `None` when there is none. The code is `InvalidPointer`
    /// for the runtime's null-pointer failures, else `fallback`.
    pub(crate) fn take_last_failure(&self, what: &str, fallback: ErrorCode) -> Option<Error> {
        let last = self.take_last_error();
        if last.is_empty() {
            return None;
        }
        let code = if last.contains("null interface")
            || last.contains("null out_instance")
            || last.contains("null lifecycle function")
            || last.contains("null pointer")
        {
            ErrorCode::InvalidPointer
        } else {
            fallback
        };
        Some(Error::new(code, format!("{}: {}", what, last)))
    }

    pub(crate) fn clear_last_error(&self) {
        let api = self.api();
        unsafe {
            if (api.get_error_len.unwrap())(self.host) != 0 {
                (api.get_last_error.unwrap())(self.host, std::ptr::null_mut(), 0);
            }
        }
    }

    /// The error of a failed table call: its message, plus the runtime's last error text.
    pub(crate) fn failure(&self, err: &sys::AbiError, what: &str) -> Error {
        let message = match unsafe { checked_text(err.message.ptr, err.message.len, what) } {
            Ok(m) => m.to_string(),
            Err(e) => e.message,
        };
        let last = self.take_last_error();
        let text = match (
            message.is_empty(),
            last.is_empty() || message.contains(&last),
        ) {
            (true, true) => "failed (no message)".to_string(),
            (true, false) => last,
            (false, true) => message,
            (false, false) => format!("{}: {}", message, last),
        };
        Error::new(ErrorCode::from_raw(err.code), format!("{}: {}", what, text))
    }

    /// Runs a table function that reports through `AbiError`: the operation's own result only
    /// (a callback's failure stays for [`take_callback_error`](Runtime::take_callback_error)).
    fn checked<F: FnOnce(*mut sys::AbiError)>(&self, what: &str, f: F) -> Result<()> {
        self.clear_last_error();
        let mut err = sys::AbiError::OK;
        f(&mut err);
        if err.code != 0 {
            Err(self.failure(&err, what))
        } else {
            Ok(())
        }
    }

    /// The first failure of an `on_reload` or `log` callback (a panic, or text that is not
    /// UTF-8) since the last call, if any. Such a failure is caught where it happens (it must not
    /// unwind into C) and is not the error of the operation it happened in: a `reload` whose
    /// `on_reload` panicked still returns the reload's own result. Call this after operations
    /// whose callbacks matter; the error's code is `Panic` for a panic.
    pub fn take_callback_error(&self) -> Option<Error> {
        self.callbacks.take_failure()
    }

    pub(crate) fn free(&self, ptr: *mut u8, size: usize, align: usize) {
        if !ptr.is_null() {
            unsafe { (self.api().free.unwrap())(self.host, ptr, size, align) }
        }
    }

    /// Loads `libpolyplug-loader-<lang>.so` (`path`, else `$POLYPLUG_LOADER_DIR/` or
    /// `$POLYPLUG_LOADER_DIR/<lang>/`, else the dynamic loader's search) and registers its
    /// loader, so bundles of that language (`lua`, `python`, `js`) can be loaded. Returns the
    /// file it used. The module stays loaded for the life of the process.
    pub fn add_loader(&self, lang: &str, path: Option<&Path>) -> Result<PathBuf> {
        if lang.is_empty() || !lang.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(Error::new(
                ErrorCode::Generic,
                format!(
                    "loader language must be a name like \"lua\", not {:?}",
                    lang
                ),
            ));
        }
        if self.loaders.borrow().iter().any(|(l, _)| l == lang) {
            return Err(Error::new(
                ErrorCode::DuplicateProvider,
                format!("the {:?} loader is already registered", lang),
            ));
        }
        let file = format!("libpolyplug-loader-{}.so", lang);
        let mut candidates: Vec<PathBuf> = Vec::new();
        match path {
            Some(p) => candidates.push(p.to_path_buf()),
            None => {
                if let Some(dir) = std::env::var_os("POLYPLUG_LOADER_DIR") {
                    let dir = PathBuf::from(dir);
                    candidates.push(dir.join(&file));
                    candidates.push(dir.join(lang).join(&file));
                }
                candidates.push(PathBuf::from(&file));
            }
        }
        let mut failures = Vec::new();
        for candidate in candidates {
            let is_path = candidate.components().count() > 1;
            if is_path && !candidate.exists() {
                failures.push(format!("{}: no such file", candidate.display()));
                continue;
            }
            let c = match CString::new(candidate.as_os_str().as_bytes()) {
                Ok(c) => c,
                Err(_) => {
                    failures.push(format!("{}: contains a NUL byte", candidate.display()));
                    continue;
                }
            };
            let handle = unsafe { dlopen(c.as_ptr(), RTLD_NOW) };
            if handle.is_null() {
                failures.push(format!("{}: {}", candidate.display(), dl_error()));
                continue;
            }
            let symbol = CString::new(format!("polyplug_loader_{}_create", lang)).unwrap();
            let create = unsafe { dlsym(handle, symbol.as_ptr()) };
            if create.is_null() {
                // Not a loader for this language: try the next candidate.
                failures.push(format!(
                    "{}: has no {}",
                    candidate.display(),
                    symbol.to_string_lossy()
                ));
                unsafe { dlclose(handle) };
                continue;
            }
            let create: unsafe extern "C" fn() -> *mut c_void =
                unsafe { std::mem::transmute(create) };
            let loader = unsafe { create() };
            if loader.is_null() {
                failures.push(format!(
                    "{}: {} returned NULL",
                    candidate.display(),
                    symbol.to_string_lossy()
                ));
                continue;
            }
            let what = format!(
                "registering the {:?} loader from {}",
                lang,
                candidate.display()
            );
            self.checked(&what, |err| unsafe {
                (self.api().register_loader.unwrap())(self.host, loader, err)
            })?;
            self.loaders
                .borrow_mut()
                .push((lang.to_string(), candidate.clone()));
            return Ok(candidate);
        }
        Err(Error::new(
            ErrorCode::NotFound,
            format!("no loader module for {:?}: {}", lang, failures.join("; ")),
        ))
    }

    /// The ids of every loaded bundle. An empty list from a failed call (the runtime's last
    /// error set) is that error, not "no bundles".
    pub fn bundles(&self) -> Result<Vec<u64>> {
        self.clear_last_error();
        let arr = unsafe { (self.api().list_bundles.unwrap())(self.host) };
        let ids = if arr.len == 0 || arr.items.is_null() {
            Vec::new()
        } else {
            unsafe { std::slice::from_raw_parts(arr.items as *const u64, arr.len) }.to_vec()
        };
        self.free(arr.items as *mut u8, arr.len * 8, arr.align);
        if ids.is_empty() {
            if let Some(e) = self.take_last_failure("list_bundles", ErrorCode::Generic) {
                return Err(e);
            }
        }
        Ok(ids)
    }

    fn path_bytes(path: &Path) -> &[u8] {
        path.as_os_str().as_bytes()
    }

    /// Loads the bundle in directory `path` (or a file in it); returns its bundle id.
    pub fn load<P: AsRef<Path>>(&self, path: P) -> Result<u64> {
        let path = path.as_ref();
        let before = self.bundles()?;
        let bytes = Self::path_bytes(path);
        let what = format!("load({})", path.display());
        self.checked(&what, |err| unsafe {
            (self.api().load_bundle.unwrap())(self.host, bytes.as_ptr(), bytes.len(), err)
        })?;
        let new: Vec<u64> = self
            .bundles()?
            .into_iter()
            .filter(|b| !before.contains(b))
            .collect();
        if new.len() != 1 {
            return Err(Error::new(
                ErrorCode::Generic,
                format!("{} succeeded but {} new bundles appeared", what, new.len()),
            ));
        }
        Ok(new[0])
    }

    /// Reloads the bundle in directory `path` in place (needs `hot_reload(true)`); on failure
    /// the old version keeps serving and the error says why.
    ///
    /// Takes `&mut self`, like [`unload`](Runtime::unload) and [`load_dirs`](Runtime::load_dirs):
    /// a reload replaces code and, after the grace period, frees the memory a call result's
    /// views point into, so no contract object (and no result borrowed from one) may be alive
    /// across it. Drop them first and find again after:
    ///
    /// ```compile_fail
    /// # use polyplug::{Contract, Function, Runtime};
    /// # struct Calc;
    /// # impl Contract for Calc {
    /// #     const NAME: &'static str = "example.Calculator";
    /// #     const VERSION: polyplug::sys::Version = polyplug::sys::Version { major: 1, minor: 0, patch: 0 };
    /// # }
    /// # const NAME: Function<Calc, (), polyplug::StringView<'static>> = unsafe { Function::new(0, "name") };
    /// let mut rt = Runtime::new().unwrap();
    /// let mut calc = rt.find::<Calc>().unwrap();
    /// let reply = calc.call(NAME, &()).unwrap();
    /// rt.reload("bundles/c_calc").unwrap(); // error: `rt` is borrowed by `calc`
    /// println!("{}", reply.text(|r| r).unwrap()); // would read freed memory
    /// ```
    pub fn reload<P: AsRef<Path>>(&mut self, path: P) -> Result<()> {
        let path = path.as_ref();
        let bytes = Self::path_bytes(path);
        self.checked(&format!("reload({})", path.display()), |err| unsafe {
            (self.api().reload_bundle.unwrap())(self.host, bytes.as_ptr(), bytes.len(), err)
        })
    }

    /// Unloads a bundle by id ([`bundle_id`](crate::bundle_id) of its name, or what `load`
    /// returned). Takes `&mut self`, so no contract object or call result is alive across it
    /// (the unloaded code and the memory its results point into go away):
    ///
    /// ```compile_fail
    /// # use polyplug::{Contract, Function, Runtime};
    /// # struct Calc;
    /// # impl Contract for Calc {
    /// #     const NAME: &'static str = "example.Calculator";
    /// #     const VERSION: polyplug::sys::Version = polyplug::sys::Version { major: 1, minor: 0, patch: 0 };
    /// # }
    /// # const NAME: Function<Calc, (), polyplug::StringView<'static>> = unsafe { Function::new(0, "name") };
    /// let mut rt = Runtime::new().unwrap();
    /// let id = rt.load("bundles/c_calc").unwrap();
    /// let mut calc = rt.find::<Calc>().unwrap();
    /// let reply = calc.call(NAME, &()).unwrap();
    /// rt.unload(id).unwrap(); // error: `rt` is borrowed by `calc`
    /// println!("{}", reply.text(|r| r).unwrap()); // would read freed memory
    /// ```
    ///
    /// The same code with the result and the object dropped first compiles (and the
    /// `compile_fail` above fails only for the borrow):
    ///
    /// ```no_run
    /// # use polyplug::{Contract, Function, Runtime};
    /// # struct Calc;
    /// # impl Contract for Calc {
    /// #     const NAME: &'static str = "example.Calculator";
    /// #     const VERSION: polyplug::sys::Version = polyplug::sys::Version { major: 1, minor: 0, patch: 0 };
    /// # }
    /// # const NAME: Function<Calc, (), polyplug::StringView<'static>> = unsafe { Function::new(0, "name") };
    /// let mut rt = Runtime::new().unwrap();
    /// let id = rt.load("bundles/c_calc").unwrap();
    /// let mut calc = rt.find::<Calc>().unwrap();
    /// let reply = calc.call(NAME, &()).unwrap();
    /// println!("{}", reply.text(|r| r).unwrap());
    /// drop(reply);
    /// drop(calc);
    /// rt.unload(id).unwrap();
    /// ```
    pub fn unload(&mut self, bundle_id: u64) -> Result<()> {
        self.checked(&format!("unload({:#018x})", bundle_id), |err| unsafe {
            (self.api().unload_bundle.unwrap())(self.host, bundle_id, err)
        })
    }

    /// Discovers and loads every bundle under these plugin directories, providers first
    /// (`host.polyplug.Runtime@1` LoadDirs).
    /// Takes `&mut self` like [`unload`](Runtime::unload): it may unload or replace bundles.
    pub fn load_dirs<P: AsRef<Path>>(&mut self, dirs: &[P]) -> Result<LoadDirsResult> {
        let (instance, iface) = match self.runtime_contract {
            Some(rc) => rc,
            None => {
                return Err(Error::new(
                    ErrorCode::HostContractNotFound,
                    "load_dirs: this libpolyplug.so has no host.polyplug.Runtime@1",
                ))
            }
        };
        let native = unsafe { (*iface).dispatch.native };
        if native.function_count < sys::RUNTIME_FN_LOAD_DIRS + 1 || native.functions.is_null() {
            return Err(Error::new(
                ErrorCode::FunctionNotAvailable,
                "load_dirs: host.polyplug.Runtime@1 has no LoadDirs",
            ));
        }
        let entry = unsafe { *native.functions.add(sys::RUNTIME_FN_LOAD_DIRS as usize) };
        if entry.is_null() {
            return Err(Error::new(
                ErrorCode::FunctionNotAvailable,
                "load_dirs: the LoadDirs entry is null",
            ));
        }
        let entry: sys::HostFn = unsafe { std::mem::transmute(entry) };
        let views: Vec<sys::RawStringView> = dirs
            .iter()
            .map(|d| {
                let b = Self::path_bytes(d.as_ref());
                sys::RawStringView {
                    ptr: b.as_ptr(),
                    len: b.len(),
                }
            })
            .collect();
        let args = sys::LoadDirsArgs {
            dirs: views.as_ptr(),
            count: views.len(),
        };
        let mut out = sys::LoadDirsResult {
            loaded: 0,
            skipped: 0,
            diagnostics: sys::RawBuffer {
                ptr: std::ptr::null_mut(),
                len: 0,
                cap: 0,
            },
        };
        let names: Vec<String> = dirs
            .iter()
            .map(|d| d.as_ref().display().to_string())
            .collect();
        self.checked(&format!("load_dirs({:?})", names), |err| unsafe {
            entry(
                instance,
                &args as *const _ as *const c_void,
                &mut out as *mut _ as *mut c_void,
                err,
            )
        })?;
        let d = out.diagnostics;
        let text =
            unsafe { checked_text(d.ptr, d.len, "load_dirs: diagnostics") }.map(|s| s.to_string());
        self.free(d.ptr, d.cap, 1);
        Ok(LoadDirsResult {
            loaded: out.loaded,
            skipped: out.skipped,
            diagnostics: text?,
        })
    }

    /// Sends a record to the runtime's log (the same sink as the log callback).
    pub fn log(&self, level: LogLevel, scope: &str, message: &str) {
        unsafe {
            (self.api().log.unwrap())(
                self.host,
                level as u32,
                sys::RawStringView {
                    ptr: scope.as_ptr(),
                    len: scope.len(),
                },
                sys::RawStringView {
                    ptr: message.as_ptr(),
                    len: message.len(),
                },
            )
        }
    }

    pub(crate) fn keep_host_contract(&self, registration: HostRegistration) {
        self.host_contracts.borrow_mut().push(registration);
    }

    pub(crate) fn register_raw_host_contract(
        &self,
        iface: *const sys::HostContractInterface,
        what: &str,
    ) -> Result<()> {
        self.checked(what, |err| unsafe {
            (self.api().register_host_contract.unwrap())(self.host, iface, err)
        })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        unsafe { sys::polyplug_runtime_destroy(self.host) };
        // Only now may the host contract tables and the callbacks go (fields drop after this).
    }
}
