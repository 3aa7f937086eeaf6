// SPDX-License-Identifier: MIT
//! Guest contracts: the `Contract` trait a user implements, `Function` slots, and `Guest`, a
//! contract object that finds a provider, owns an instance and makes typed calls.

use crate::error::{Error, ErrorCode, Result};
use crate::runtime::Runtime;
use crate::sys;
use crate::types::{AbiType, Scoped};
use std::marker::PhantomData;
use std::mem::{size_of, MaybeUninit};
use std::os::raw::c_void;
use std::sync::atomic::{AtomicU64, Ordering};

// What a runtime without a revision counter reads: never changes.
static NO_REVISION: AtomicU64 = AtomicU64::new(0);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

const fn fnv_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        h = (h ^ bytes[i] as u64).wrapping_mul(FNV_PRIME);
        i += 1;
    }
    h
}

const fn fnv_decimal(mut h: u64, n: u32) -> u64 {
    let mut digits = [0u8; 10];
    let mut count = 0;
    let mut v = n;
    loop {
        digits[count] = b'0' + (v % 10) as u8;
        count += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    while count > 0 {
        count -= 1;
        h = (h ^ digits[count] as u64).wrapping_mul(FNV_PRIME);
    }
    h
}

/// FNV-1a 64 of `bytes` (the ABI's hash).
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv_bytes(FNV_OFFSET, bytes)
}

/// `fnv1a64("guest_contract:" + name + "@" + major)`.
pub const fn guest_contract_id(name: &str, major: u32) -> u64 {
    let h = fnv_bytes(FNV_OFFSET, b"guest_contract:");
    let h = fnv_bytes(h, name.as_bytes());
    fnv_decimal(fnv_bytes(h, b"@"), major)
}

/// `fnv1a64("host_contract:" + name + "@" + major)`.
pub const fn host_contract_id(name: &str, major: u32) -> u64 {
    let h = fnv_bytes(FNV_OFFSET, b"host_contract:");
    let h = fnv_bytes(h, name.as_bytes());
    fnv_decimal(fnv_bytes(h, b"@"), major)
}

/// A bundle's id: `fnv1a64(name)`.
pub const fn bundle_id(name: &str) -> u64 {
    fnv1a64(name.as_bytes())
}

/// A guest contract as the host knows it: name and version from its contract file. Implement
/// it on a unit struct and declare its functions as `Function` constants (see the crate docs).
pub trait Contract {
    const NAME: &'static str;
    const VERSION: sys::Version;
    const ID: u64 = guest_contract_id(Self::NAME, Self::VERSION.major);
}

/// The contract type of objects found by name and major version at run time
/// ([`Runtime::find_named`]); its functions are made with [`Function::dynamic`], which records
/// the contract they were written for: calling one on an object of another contract is a
/// `FunctionNotAvailable` error, not a call with the wrong argument and result layouts.
pub enum Dynamic {}

/// One function of contract `C`: its index (declaration order in the contract file) and the
/// argument and result structs it takes.
pub struct Function<C, A, R> {
    index: u32,
    name: &'static str,
    // For Function<Dynamic, ..>: the guest contract id it was written for (0: none, refused by
    // dynamic objects). Typed functions leave it 0; their C says the contract.
    contract: u64,
    _types: PhantomData<(fn() -> C, fn(&A) -> R)>,
}

impl<C, A, R> Clone for Function<C, A, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C, A, R> Copy for Function<C, A, R> {}

impl<C, A, R> Function<C, A, R> {
    /// # Safety
    /// Function `index` of contract `C` must take a C struct laid out exactly as `A` (`()` for
    /// none) and write a result laid out exactly as `R` (`()` for void), per the contract file.
    ///
    /// For `C = Dynamic` use [`Function::dynamic`]: objects from `find_named` refuse functions
    /// made with `new` (`FunctionNotAvailable`), since those name no contract.
    pub const unsafe fn new(index: u32, name: &'static str) -> Function<C, A, R> {
        Function {
            index,
            name,
            contract: 0,
            _types: PhantomData,
        }
    }
    pub fn index(&self) -> u32 {
        self.index
    }
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl<A, R> Function<Dynamic, A, R> {
    /// Function `index` of the guest contract `contract@major`, for objects found with
    /// [`Runtime::find_named`]. A call checks that the object's contract is this one.
    ///
    /// # Safety
    /// As for [`Function::new`], for function `index` of `contract@major`.
    pub const unsafe fn dynamic(
        contract: &str,
        major: u32,
        index: u32,
        name: &'static str,
    ) -> Function<Dynamic, A, R> {
        Function {
            index,
            name,
            contract: guest_contract_id(contract, major),
            _types: PhantomData,
        }
    }
}

const ARENA_WORDS: usize = 512; // 4 KiB primary region for VM results
const OVERFLOW_HEADER: usize = size_of::<sys::ArenaOverflowBlock>();

struct ArenaBox {
    arena: sys::CallArena,
    storage: [u64; ARENA_WORDS],
}

/// A contract object: a provider of contract `C`, an instance of it, and a call arena. Found
/// by [`Runtime::find`] (follows whichever provider is current: after a `load` the next call
/// re-finds) or [`Runtime::find_all`] (pinned to one provider). It borrows the runtime, so
/// `unload`, `reload` and `load_dirs` (`&mut self`) cannot run while it lives. Dropping it
/// destroys the instance.
pub struct Guest<'rt, C = Dynamic> {
    rt: &'rt Runtime,
    id: u64,
    name: String,
    min_major: u32,
    pinned: bool,
    // Set for find_named objects: every call checks Function::contract against `id`.
    check_contract: bool,
    handle: sys::GuestContractHandle,
    iface: *const sys::GuestContractInterface,
    instance: sys::GuestContractInstance,
    functions: *const *const c_void,
    function_count: u32,
    vm: Option<(sys::VmCallFn, sys::VmLoaderData)>,
    revision: *const AtomicU64,
    seen: u64,
    gone: Option<Error>,
    arena: Box<ArenaBox>,
    _contract: PhantomData<fn() -> C>,
}

impl Runtime {
    /// The first provider of `C` whose major version is `C::VERSION.major` or newer.
    pub fn find<C: Contract>(&self) -> Result<Guest<'_, C>> {
        Guest::attach_new(self, C::ID, C::NAME.to_string(), C::VERSION.major, None)
    }

    /// The first provider of `C` with major version `min_major` or newer (0: any).
    pub fn find_version<C: Contract>(&self, min_major: u32) -> Result<Guest<'_, C>> {
        Guest::attach_new(self, C::ID, C::NAME.to_string(), min_major, None)
    }

    /// A provider of the contract `name@major`, found at run time; call it with
    /// `Function<Dynamic, A, R>`.
    pub fn find_named(&self, name: &str, major: u32) -> Result<Guest<'_, Dynamic>> {
        let mut g = Guest::attach_new(
            self,
            guest_contract_id(name, major),
            name.to_string(),
            major,
            None,
        )?;
        g.check_contract = true;
        Ok(g)
    }

    /// Every provider of `C` (major version `C::VERSION.major` or newer), in registration order,
    /// each pinned to its provider.
    /// An empty list from a failed call (the runtime's last error set) is that error.
    pub fn find_all<C: Contract>(&self) -> Result<Vec<Guest<'_, C>>> {
        self.clear_last_error();
        let arr = unsafe {
            (self.api().find_all_guest_contracts.unwrap())(self.host_api(), C::ID, C::VERSION.major)
        };
        let handles: Vec<sys::GuestContractHandle> = if arr.len == 0 || arr.items.is_null() {
            Vec::new()
        } else {
            unsafe {
                std::slice::from_raw_parts(arr.items as *const sys::GuestContractHandle, arr.len)
            }
            .to_vec()
        };
        self.free(
            arr.items as *mut u8,
            arr.len * size_of::<sys::GuestContractHandle>(),
            arr.align,
        );
        if handles.is_empty() {
            let what = format!("find_all({}@{})", C::NAME, C::VERSION.major);
            if let Some(e) = self.take_last_failure(&what, ErrorCode::Generic) {
                return Err(e);
            }
        }
        handles
            .into_iter()
            .map(|h| Guest::attach_new(self, C::ID, C::NAME.to_string(), C::VERSION.major, Some(h)))
            .collect()
    }

    /// The raw lookup (`find_guest_contract`): a handle, or `None` when no provider matches.
    #[inline]
    pub fn find_handle(
        &self,
        contract_id: u64,
        min_major: u32,
    ) -> Option<sys::GuestContractHandle> {
        let h = unsafe { (self.find)(self.host_api(), contract_id, min_major) };
        if h.is_null() {
            None
        } else {
            Some(h)
        }
    }
}

impl<'rt, C> Guest<'rt, C> {
    fn attach_new(
        rt: &'rt Runtime,
        id: u64,
        name: String,
        min_major: u32,
        pinned: Option<sys::GuestContractHandle>,
    ) -> Result<Guest<'rt, C>> {
        let mut arena = Box::new(ArenaBox {
            arena: sys::CallArena {
                cur: std::ptr::null_mut(),
                end: std::ptr::null_mut(),
                base: std::ptr::null_mut(),
                host: rt.host_api(),
                first_overflow: std::ptr::null_mut(),
            },
            storage: [0; ARENA_WORDS],
        });
        let base = arena.storage.as_mut_ptr() as *mut u8;
        arena.arena.base = base;
        arena.arena.cur = base;
        arena.arena.end = unsafe { base.add(ARENA_WORDS * 8) };
        let mut g = Guest {
            rt,
            id,
            name,
            min_major,
            pinned: pinned.is_some(),
            check_contract: false,
            handle: pinned.unwrap_or(sys::GuestContractHandle::NULL),
            iface: std::ptr::null(),
            instance: sys::GuestContractInstance {
                data: std::ptr::null_mut(),
                contract_id: 0,
            },
            functions: std::ptr::null(),
            function_count: 0,
            vm: None,
            revision: if rt.revision_ptr().is_null() {
                &NO_REVISION
            } else {
                rt.revision_ptr()
            },
            seen: rt.revision(),
            gone: None,
            arena,
            _contract: PhantomData,
        };
        g.attach()?;
        Ok(g)
    }

    /// The contract's name as found.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when the current provider dispatches through a VM loader (Lua, Python, JS).
    pub fn is_vm(&self) -> bool {
        self.vm.is_some()
    }

    /// The current provider's version, `None` when it is gone.
    pub fn version(&self) -> Option<sys::Version> {
        if self.iface.is_null() {
            None
        } else {
            Some(unsafe { (*self.iface).contract_version })
        }
    }

    fn attach(&mut self) -> Result<()> {
        let rt = self.rt;
        let api = rt.api();
        if !self.pinned {
            self.handle = unsafe {
                (api.find_guest_contract.unwrap())(rt.host_api(), self.id, self.min_major)
            };
            if self.handle.is_null() {
                return Err(Error::new(
                    ErrorCode::NotFound,
                    format!("{}@{}: no provider is loaded", self.name, self.min_major),
                ));
            }
        }
        let iface = unsafe { (api.resolve_guest_contract.unwrap())(rt.host_api(), self.handle) };
        if iface.is_null() {
            // The runtime says why (if it recorded anything): pass it on.
            let last = rt.take_last_error();
            return Err(Error::new(
                ErrorCode::StaleHandle,
                if last.is_empty() {
                    format!("{}: the provider is gone (unloaded)", self.name)
                } else {
                    format!("{}: the provider is gone (unloaded): {}", self.name, last)
                },
            ));
        }
        let dispatch_type = unsafe { (*iface).dispatch_type };
        if dispatch_type != sys::DISPATCH_NATIVE && dispatch_type != sys::DISPATCH_VM {
            return Err(Error::new(
                ErrorCode::FunctionNotAvailable,
                format!("{}: unknown dispatch type {}", self.name, dispatch_type),
            ));
        }
        rt.clear_last_error();
        let mut instance = sys::GuestContractInstance {
            data: std::ptr::null_mut(),
            contract_id: 0,
        };
        unsafe {
            (api.create_guest_instance.unwrap())(
                rt.host_api(),
                iface,
                std::ptr::null(),
                &mut instance,
            )
        };
        if instance.data.is_null() && instance.contract_id == 0 {
            // The runtime's own failures (a null pointer) come with its message and code; a
            // provider whose factory returned no instance leaves no last error: Generic.
            let what = format!("{}: create_guest_instance failed", self.name);
            return Err(rt
                .take_last_failure(&what, ErrorCode::Generic)
                .unwrap_or_else(|| {
                    Error::new(
                        ErrorCode::Generic,
                        format!(
                            "{}: the provider's create_instance returned no instance",
                            what
                        ),
                    )
                }));
        }
        self.iface = iface;
        self.instance = instance;
        self.read_entries();
        Ok(())
    }

    fn read_entries(&mut self) {
        let i = unsafe { &*self.iface };
        if i.dispatch_type == sys::DISPATCH_VM {
            let vm = unsafe { i.dispatch.vm };
            self.vm = vm.call.map(|call| (call, vm.loader_data));
            self.functions = std::ptr::null();
            self.function_count = 0;
        } else {
            let native = unsafe { i.dispatch.native };
            self.vm = None;
            self.functions = native.functions;
            self.function_count = if native.functions.is_null() {
                0
            } else {
                native.function_count
            };
        }
    }

    fn detach(&mut self) {
        if self.iface.is_null() {
            return;
        }
        let rt = self.rt;
        unsafe {
            (rt.api().destroy_guest_instance.unwrap())(rt.host_api(), self.iface, self.instance)
        };
        self.iface = std::ptr::null();
        self.vm = None;
        self.functions = std::ptr::null();
        self.function_count = 0;
    }

    #[cold]
    fn refresh(&mut self, now: u64) {
        self.seen = now;
        let rt = self.rt;
        let api = rt.api();
        let handle = if self.pinned {
            self.handle
        } else {
            unsafe { (api.find_guest_contract.unwrap())(rt.host_api(), self.id, self.min_major) }
        };
        if !self.iface.is_null() && handle == self.handle {
            let iface = unsafe { (api.resolve_guest_contract.unwrap())(rt.host_api(), handle) };
            if iface == self.iface {
                // Reloaded in place: same slot, same interface copy, new entries.
                self.read_entries();
                return;
            }
        }
        self.detach();
        self.gone = self.attach().err();
    }

    fn reset_arena(&mut self) {
        let a = &mut self.arena.arena;
        let mut block = a.first_overflow;
        while !block.is_null() {
            unsafe {
                (*block).used = OVERFLOW_HEADER;
                block = (*block).next;
            }
        }
        a.cur = a.base;
    }

    /// Calls function `f` with `args`. The result's views (strings, buffers, arrays) point at
    /// memory the guest owns until the next call on this object; the `Scoped` result borrows
    /// the object so they cannot outlive that. A guest error comes back as `Err` with its code
    /// and message.
    #[inline]
    pub fn call<A: AbiType, R: AbiType>(
        &mut self,
        f: Function<C, A, R>,
        args: &A,
    ) -> Result<Scoped<'_, R>> {
        if self.check_contract && f.contract != self.id {
            return Err(self.wrong_contract(f.name, f.contract));
        }
        let now = unsafe { (*self.revision).load(Ordering::Acquire) };
        if now != self.seen {
            self.refresh(now);
        }
        // The fast path: a native provider with this entry (function_count is 0 when detached
        // or VM-dispatched, so one comparison covers those).
        if f.index < self.function_count {
            let entry = unsafe { *self.functions.add(f.index as usize) };
            if !entry.is_null() {
                let entry: sys::GuestFn = unsafe { std::mem::transmute(entry) };
                let mut out = MaybeUninit::<R>::zeroed();
                let mut err = sys::AbiError::OK;
                unsafe {
                    entry(
                        self.instance,
                        Self::args_ptr(args),
                        Self::out_ptr(&mut out),
                        &mut err,
                    )
                };
                if err.code != 0 {
                    return Err(self.guest_error(f.name, &err));
                }
                // The guest wrote the result (R: AbiType promises zeroed memory is valid too).
                return Ok(Scoped::new(unsafe { out.assume_init() }, f.name));
            }
        }
        self.call_other(f, args)
    }

    #[inline]
    fn args_ptr<A>(args: &A) -> *const c_void {
        if size_of::<A>() == 0 {
            std::ptr::null()
        } else {
            args as *const A as *const c_void
        }
    }

    #[inline]
    fn out_ptr<R>(out: &mut MaybeUninit<R>) -> *mut c_void {
        if size_of::<R>() == 0 {
            std::ptr::null_mut()
        } else {
            out.as_mut_ptr() as *mut c_void
        }
    }

    /// VM dispatch, and every failure of the fast path.
    fn call_other<A: AbiType, R: AbiType>(
        &mut self,
        f: Function<C, A, R>,
        args: &A,
    ) -> Result<Scoped<'_, R>> {
        if self.iface.is_null() {
            return Err(self.gone.clone().unwrap_or_else(|| {
                Error::new(
                    ErrorCode::StaleHandle,
                    format!("{}: no provider", self.name),
                )
            }));
        }
        let (vm_call, data) = match self.vm {
            Some(vm) => vm,
            None => return Err(self.unavailable(f.name, f.index)),
        };
        if self.arena.arena.cur != self.arena.arena.base
            || !self.arena.arena.first_overflow.is_null()
        {
            self.reset_arena();
        }
        let mut out = MaybeUninit::<R>::zeroed();
        let mut err = sys::AbiError::OK;
        unsafe {
            vm_call(
                data,
                self.instance,
                f.index,
                Self::args_ptr(args),
                Self::out_ptr(&mut out),
                &mut self.arena.arena,
                &mut err,
            )
        };
        if err.code != 0 {
            return Err(self.guest_error(f.name, &err));
        }
        Ok(Scoped::new(unsafe { out.assume_init() }, f.name))
    }

    #[cold]
    fn wrong_contract(&self, name: &str, contract: u64) -> Error {
        Error::new(
            ErrorCode::FunctionNotAvailable,
            if contract == 0 {
                format!(
                    "{}.{}: a dynamic object takes only Function::dynamic functions (this one \
                     names no contract)",
                    self.name, name
                )
            } else {
                format!(
                    "{}.{}: the function was written for another contract (id {:#018x}, this \
                     object's is {:#018x})",
                    self.name, name, contract, self.id
                )
            },
        )
    }

    #[cold]
    fn unavailable(&self, name: &str, index: u32) -> Error {
        Error::new(
            ErrorCode::FunctionNotAvailable,
            format!(
                "{}.{}: the provider's table has no entry {} (it has {})",
                self.name, name, index, self.function_count
            ),
        )
    }

    #[cold]
    fn guest_error(&self, name: &str, err: &sys::AbiError) -> Error {
        let what = format!("{}.{}", self.name, name);
        let message =
            match unsafe { crate::types::checked_text(err.message.ptr, err.message.len, &what) } {
                Ok("") => "failed (no message)".to_string(),
                Ok(m) => m.to_string(),
                Err(e) => e.message,
            };
        Error::new(
            ErrorCode::from_raw(err.code),
            format!("{}: {}", what, message),
        )
    }
}

impl<'rt, C> Drop for Guest<'rt, C> {
    fn drop(&mut self) {
        self.detach();
        let rt = self.rt;
        let mut block = self.arena.arena.first_overflow;
        while !block.is_null() {
            let (next, capacity) = unsafe { ((*block).next, (*block).capacity) };
            rt.free(block as *mut u8, capacity, 8);
            block = next;
        }
        self.arena.arena.first_overflow = std::ptr::null_mut();
    }
}
