// SPDX-License-Identifier: MIT
//! Host contracts implemented as Rust closures (`register_host_contract`).

use crate::error::{Error, ErrorCode, Result};
use crate::guest::host_contract_id;
use crate::runtime::Runtime;
use crate::sys;
use crate::types::{AbiType, Scoped};
use std::cell::RefCell;
use std::marker::PhantomData;
use std::os::raw::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The most functions one host contract may have (one C entry point per slot).
pub const MAX_HOST_FUNCTIONS: usize = 16;

type Slot = Box<dyn Fn(*const c_void, *mut c_void) -> Result<()> + Send + Sync>;

struct HostState {
    name: String,
    slots: Vec<Slot>,
}

/// What the runtime keeps pointers to; owned by the `Runtime` until after it is destroyed.
pub(crate) struct HostRegistration {
    _iface: Box<sys::HostContractInterface>,
    _table: Box<[*const c_void]>,
    _state: Box<HostState>,
}

/// One function of a host contract: its argument and result structs.
pub struct HostFunction<A, R> {
    _types: PhantomData<fn(&A) -> R>,
}

impl<A, R> HostFunction<A, R> {
    /// # Safety
    /// The contract file's function at this position must take `A` and return `R` (C layout).
    pub const unsafe fn new() -> HostFunction<A, R> {
        HostFunction {
            _types: PhantomData,
        }
    }
}

/// A host contract under construction: add its functions in declaration order, then
/// [`Runtime::register_host_contract`].
pub struct HostContract {
    name: String,
    version: sys::Version,
    singleton: bool,
    slots: Vec<Slot>,
}

impl HostContract {
    pub fn new(name: &str, version: sys::Version) -> HostContract {
        HostContract {
            name: name.to_string(),
            version,
            singleton: false,
            slots: Vec::new(),
        }
    }

    /// Singleton contracts get one shared instance (the contract file's `singleton = true`).
    pub fn singleton(mut self, on: bool) -> HostContract {
        self.singleton = on;
        self
    }

    /// The next function (index = how many were added before). The closure receives the
    /// plugin's arguments as a `Scoped` (read its views with `text`/`bytes`/`slice`) and returns
    /// the result or an `Error`, which the plugin receives as its `AbiError` code and message. A
    /// panic is caught and reported as `Panic` (3). It runs on the plugin's calling thread.
    pub fn function<A, R, F>(mut self, _signature: HostFunction<A, R>, f: F) -> HostContract
    where
        A: AbiType + 'static,
        R: AbiType + 'static,
        F: Fn(&Scoped<'_, A>) -> Result<R> + Send + Sync + 'static,
    {
        let name = self.name.clone();
        let index = self.slots.len();
        self.slots
            .push(Box::new(move |args: *const c_void, out: *mut c_void| {
                if args.is_null() && std::mem::size_of::<A>() != 0 {
                    return Err(Error::new(
                        ErrorCode::InvalidPointer,
                        format!("{} function {}: null arguments", name, index),
                    ));
                }
                if out.is_null() && std::mem::size_of::<R>() != 0 {
                    return Err(Error::new(
                        ErrorCode::InvalidPointer,
                        format!("{} function {}: null result pointer", name, index),
                    ));
                }
                // A bitwise copy: views inside stay views of the plugin's memory, readable only
                // through the Scoped, which does not outlive this call.
                let value: A = if std::mem::size_of::<A>() == 0 {
                    unsafe { std::ptr::read_unaligned(std::ptr::NonNull::<A>::dangling().as_ptr()) }
                } else {
                    unsafe { std::ptr::read_unaligned(args as *const A) }
                };
                let result = f(&Scoped::new(value, "host contract arguments"))?;
                if std::mem::size_of::<R>() != 0 {
                    unsafe { std::ptr::write_unaligned(out as *mut R, result) };
                }
                Ok(())
            }));
        self
    }
}

thread_local! {
    // An error message handed to a plugin must outlive the thunk: it stays here until the next
    // host-contract error on the same thread.
    static MESSAGE: RefCell<Vec<u8>> = RefCell::new(Vec::new());
}

// What a plugin gets when the thread-local buffer is unusable (the thread is tearing down its
// thread-locals, or the buffer is borrowed): static text, so nothing here can panic.
const FALLBACK_MESSAGE: &str =
    "host contract failed (its message was lost: thread-local storage unavailable)";

// Never panics: it runs inside the extern "C" thunks, where a panic would abort.
unsafe fn report(err: *mut sys::AbiError, code: u32, message: String) {
    if err.is_null() {
        return;
    }
    (*err).code = code;
    (*err).message = sys::RawStringView {
        ptr: FALLBACK_MESSAGE.as_ptr(),
        len: FALLBACK_MESSAGE.len(),
    };
    // try_with: during thread-local destruction `with` would panic. try_borrow_mut: a
    // re-entrant report while the buffer is borrowed (impossible today) must not panic either.
    let _ = MESSAGE.try_with(|m| {
        if let Ok(mut m) = m.try_borrow_mut() {
            *m = message.into_bytes();
            (*err).message = sys::RawStringView {
                ptr: m.as_ptr(),
                len: m.len(),
            };
        }
    });
}

unsafe extern "C" fn thunk<const I: usize>(
    instance: sys::HostContractInstance,
    args: *const c_void,
    out: *mut c_void,
    err: *mut sys::AbiError,
) {
    if instance.data.is_null() {
        report(
            err,
            ErrorCode::InvalidPointer.raw(),
            "host contract called with a null instance".to_string(),
        );
        return;
    }
    let state = &*(instance.data as *const HostState);
    let slot = match state.slots.get(I) {
        Some(slot) => slot,
        None => {
            report(
                err,
                ErrorCode::FunctionNotAvailable.raw(),
                format!("{} has no function {}", state.name, I),
            );
            return;
        }
    };
    match catch_unwind(AssertUnwindSafe(|| slot(args, out))) {
        Ok(Ok(())) => {
            if !err.is_null() {
                (*err).code = 0;
            }
        }
        Ok(Err(e)) => report(err, e.code.raw(), e.message),
        Err(payload) => {
            let text = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "a non-string panic payload".to_string()
            };
            report(
                err,
                ErrorCode::Panic.raw(),
                format!("{}: the host closure panicked: {}", state.name, text),
            );
        }
    }
}

const THUNKS: [sys::HostFn; MAX_HOST_FUNCTIONS] = [
    thunk::<0>,
    thunk::<1>,
    thunk::<2>,
    thunk::<3>,
    thunk::<4>,
    thunk::<5>,
    thunk::<6>,
    thunk::<7>,
    thunk::<8>,
    thunk::<9>,
    thunk::<10>,
    thunk::<11>,
    thunk::<12>,
    thunk::<13>,
    thunk::<14>,
    thunk::<15>,
];

unsafe extern "C" fn create_instance(
    iface: *const sys::HostContractInterface,
    _args: *const c_void,
    out: *mut sys::HostContractInstance,
) {
    if !iface.is_null() && !out.is_null() {
        (*out).data = (*iface).user_data;
    }
}

unsafe extern "C" fn destroy_instance(
    _iface: *const sys::HostContractInterface,
    _instance: sys::HostContractInstance,
) {
    // Instances are the registration's shared state, owned by the Runtime.
}

impl Runtime {
    /// Registers a host contract whose functions are Rust closures; plugins find it with
    /// `get_host_contract`. It stays registered until the runtime is dropped. A second
    /// registration of the same contract id fails (`"duplicate host contract registration"`).
    pub fn register_host_contract(&self, contract: HostContract) -> Result<()> {
        let what = format!(
            "register_host_contract({}@{})",
            contract.name, contract.version.major
        );
        if contract.slots.len() > MAX_HOST_FUNCTIONS {
            return Err(Error::new(
                ErrorCode::Generic,
                format!(
                    "{}: {} functions, at most {} are supported",
                    what,
                    contract.slots.len(),
                    MAX_HOST_FUNCTIONS
                ),
            ));
        }
        let state = Box::new(HostState {
            name: contract.name.clone(),
            slots: contract.slots,
        });
        let table: Box<[*const c_void]> = THUNKS[..state.slots.len()]
            .iter()
            .map(|t| *t as *const c_void)
            .collect();
        let iface = Box::new(sys::HostContractInterface {
            contract_id: host_contract_id(&contract.name, contract.version.major),
            contract_version: contract.version,
            singleton: contract.singleton,
            dispatch_type: sys::DISPATCH_NATIVE,
            runtime: std::ptr::null_mut(),
            user_data: &*state as *const HostState as *mut c_void,
            create_instance: Some(create_instance),
            destroy_instance: Some(destroy_instance),
            dispatch: sys::DispatchMechanisms {
                native: sys::NativeDispatch {
                    function_count: table.len() as u32,
                    functions: table.as_ptr(),
                },
            },
        });
        let result = self.register_raw_host_contract(&*iface, &what);
        // Kept even on failure: harmless, and the runtime never sees a freed table.
        self.keep_host_contract(HostRegistration {
            _iface: iface,
            _table: table,
            _state: state,
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    static SEEN: Mutex<Option<(u32, String)>> = Mutex::new(None);

    struct ReportsOnDrop;
    impl Drop for ReportsOnDrop {
        fn drop(&mut self) {
            let mut err = sys::AbiError::OK;
            unsafe { report(&mut err, 7, "from a thread-local destructor".to_string()) };
            let text = unsafe {
                std::str::from_utf8(std::slice::from_raw_parts(err.message.ptr, err.message.len))
                    .unwrap()
                    .to_string()
            };
            *SEEN.lock().unwrap() = Some((err.code, text));
        }
    }

    thread_local! {
        static GUARD: ReportsOnDrop = ReportsOnDrop;
    }

    // GUARD is touched before MESSAGE, so its destructor runs after MESSAGE's: `MESSAGE.with`
    // would panic there (an abort: a panic out of a thread-local destructor). `report` must
    // still set the code and hand over the static fallback text.
    #[test]
    fn report_during_thread_local_destruction_does_not_panic() {
        std::thread::spawn(|| {
            GUARD.with(|_| ());
            let mut err = sys::AbiError::OK;
            unsafe { report(&mut err, 1, "live".to_string()) };
            assert_eq!(err.code, 1);
            assert_eq!(err.message.len, 4);
        })
        .join()
        .unwrap();
        let (code, text) = SEEN.lock().unwrap().take().expect("the destructor ran");
        assert_eq!(code, 7);
        assert!(
            text == FALLBACK_MESSAGE || text == "from a thread-local destructor",
            "{}",
            text
        );
    }
}
