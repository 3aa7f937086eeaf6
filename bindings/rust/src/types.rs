// SPDX-License-Identifier: MIT
//! The ABI's views (`StringView`, `Buffer`, contract `Array<T>`) with lifetimes, the `AbiType`
//! promise argument and result structs make, and `Scoped`: the only way to read a view that a
//! guest (or, in a host contract, a calling plugin) handed over.
//!
//! Soundness rests on two rules: a view built in Rust borrows what it points at (`'a`), and the
//! views are neither `Copy` nor `Clone`, so a view received from the other side cannot be moved
//! out of the `Scoped` it arrived in, which lives no longer than the ABI says the memory does.

use crate::error::{Error, ErrorCode, Result};
use std::marker::PhantomData;
use std::ops::Deref;

/// A type that may cross the boundary as (part of) an argument or result struct.
///
/// # Safety
/// The type must be `#[repr(C)]` (or a primitive) with exactly the layout the contract file
/// gives it, the all-zero bit pattern must be a valid value, and every bit pattern the other
/// side may write must be a valid value: a guest is foreign code, so that means every bit
/// pattern of the type's size. Hence no `bool` (only 0 and 1 are valid; the contract's `bool`
/// is a `u8` here, read as `!= 0`) and no Rust enums (use the integer).
///
/// `bool` is not an `AbiType`, so a guest writing 2 cannot make safe code read an invalid bool:
///
/// ```compile_fail
/// fn needs<T: polyplug::AbiType>() {}
/// needs::<bool>();
/// ```
/// ```
/// fn needs<T: polyplug::AbiType>() {}
/// needs::<u8>();
/// ```
pub unsafe trait AbiType {}

macro_rules! abi_primitive {
    ($($t:ty),*) => { $(unsafe impl AbiType for $t {})* };
}
// Every bit pattern of these is a valid value.
abi_primitive!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64, ());

/// `StringView`: UTF-8 text, not NUL-terminated. Built from Rust text it borrows it for `'a`; in
/// result structs and host-contract arguments declare it `StringView<'static>` and read it
/// through [`Scoped::text`].
#[repr(C)]
#[derive(Debug)]
pub struct StringView<'a> {
    ptr: *const u8,
    len: usize,
    _borrow: PhantomData<&'a [u8]>,
}

unsafe impl<'a> AbiType for StringView<'a> {}

impl<'a> StringView<'a> {
    /// The null view (`{NULL, 0}`), "absent" in the ABI.
    pub const fn null() -> StringView<'static> {
        StringView {
            ptr: std::ptr::null(),
            len: 0,
            _borrow: PhantomData,
        }
    }
    pub const fn new(text: &'a str) -> StringView<'a> {
        StringView {
            ptr: text.as_ptr(),
            len: text.len(),
            _borrow: PhantomData,
        }
    }
    /// A view over bytes that need not be UTF-8 (a guest may reject them, as it should).
    pub const fn from_bytes(bytes: &'a [u8]) -> StringView<'a> {
        StringView {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
            _borrow: PhantomData,
        }
    }
    /// # Safety
    /// `ptr..ptr+len` must stay readable for `'a` (or `ptr` null and `len` 0).
    pub const unsafe fn from_raw_parts(ptr: *const u8, len: usize) -> StringView<'a> {
        StringView {
            ptr,
            len,
            _borrow: PhantomData,
        }
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }
}

impl<'a> From<&'a str> for StringView<'a> {
    fn from(text: &'a str) -> StringView<'a> {
        StringView::new(text)
    }
}

/// `Buffer`: `{ptr, len, cap}`. As an argument it borrows a byte slice (`cap == len`); in results
/// read it through [`Scoped::bytes`].
#[repr(C)]
#[derive(Debug)]
pub struct Buffer<'a> {
    ptr: *const u8,
    len: usize,
    cap: usize,
    _borrow: PhantomData<&'a [u8]>,
}

unsafe impl<'a> AbiType for Buffer<'a> {}

impl<'a> Buffer<'a> {
    pub const fn new(bytes: &'a [u8]) -> Buffer<'a> {
        Buffer {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
            cap: bytes.len(),
            _borrow: PhantomData,
        }
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A contract function's `Array<T>` (`ArrayOf_T {const T* items; size_t len}`).
#[repr(C)]
#[derive(Debug)]
pub struct ContractArray<'a, T> {
    items: *const T,
    len: usize,
    _borrow: PhantomData<&'a [T]>,
}

unsafe impl<'a, T: AbiType> AbiType for ContractArray<'a, T> {}

impl<'a, T> ContractArray<'a, T> {
    pub const fn new(items: &'a [T]) -> ContractArray<'a, T> {
        ContractArray {
            items: items.as_ptr(),
            len: items.len(),
            _borrow: PhantomData,
        }
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Checks a (pointer, length) pair from the other side: null with a non-zero length is an
/// error, so is a length no slice can have. `len == 0` reads as empty whatever the pointer.
pub(crate) unsafe fn checked_bytes<'s>(ptr: *const u8, len: usize, what: &str) -> Result<&'s [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Error::new(
            ErrorCode::InvalidPointer,
            format!("{}: a null pointer with length {}", what, len),
        ));
    }
    if len > isize::MAX as usize {
        return Err(Error::new(
            ErrorCode::InvalidPointer,
            format!("{}: length {} is impossible", what, len),
        ));
    }
    Ok(std::slice::from_raw_parts(ptr, len))
}

pub(crate) unsafe fn checked_text<'s>(ptr: *const u8, len: usize, what: &str) -> Result<&'s str> {
    let bytes = checked_bytes(ptr, len, what)?;
    std::str::from_utf8(bytes).map_err(|e| {
        Error::new(
            ErrorCode::Generic,
            format!("{}: not valid UTF-8 ({})", what, e),
        )
    })
}

/// A value whose views point at memory the other side owns, valid while the `Scoped` lives: a
/// call's result ([`crate::Guest::call`]; valid until the next call on that contract object,
/// which the borrow enforces) or a host contract's arguments (valid during the closure).
/// Derefs to the value; views inside are read with `text`, `bytes` and `slice`, which check them.
pub struct Scoped<'s, T> {
    value: T,
    what: &'static str,
    _scope: PhantomData<&'s mut ()>,
}

impl<'s, T> Scoped<'s, T> {
    pub(crate) fn new(value: T, what: &'static str) -> Scoped<'s, T> {
        Scoped {
            value,
            what,
            _scope: PhantomData,
        }
    }

    /// The value itself, for types without views (the `Copy` bound keeps views inside).
    pub fn into_value(self) -> T
    where
        T: Copy,
    {
        self.value
    }

    /// The text of a `StringView` inside the value, checked (null with a length, invalid UTF-8:
    /// an error). `|r| r` for a `StringView` result, `|r| &r.label` for a field.
    pub fn text<'r, F>(&'r self, field: F) -> Result<&'r str>
    where
        F: FnOnce(&'r T) -> &'r StringView<'static>,
    {
        let view = field(&self.value);
        unsafe { checked_text(view.ptr, view.len, self.what) }
    }

    /// The bytes of a `Buffer` inside the value, checked like `text` (`len` bytes, not `cap`).
    pub fn bytes<'r, F>(&'r self, field: F) -> Result<&'r [u8]>
    where
        F: FnOnce(&'r T) -> &'r Buffer<'static>,
    {
        let buffer = field(&self.value);
        unsafe { checked_bytes(buffer.ptr, buffer.len, self.what) }
    }

    /// The items of a contract `Array<E>` inside the value; a misaligned pointer is an error too.
    pub fn slice<'r, E, F>(&'r self, field: F) -> Result<&'r [E]>
    where
        E: AbiType + Copy + 'static,
        F: FnOnce(&'r T) -> &'r ContractArray<'static, E>,
    {
        let array = field(&self.value);
        if array.len == 0 {
            return Ok(&[]);
        }
        if array.items.is_null() || (array.items as usize) % std::mem::align_of::<E>() != 0 {
            return Err(Error::new(
                ErrorCode::InvalidPointer,
                format!(
                    "{}: array pointer {:p} (length {}) is null or misaligned",
                    self.what, array.items, array.len
                ),
            ));
        }
        if array
            .len
            .checked_mul(std::mem::size_of::<E>())
            .map_or(true, |n| n > isize::MAX as usize)
        {
            return Err(Error::new(
                ErrorCode::InvalidPointer,
                format!("{}: array length {} is impossible", self.what, array.len),
            ));
        }
        Ok(unsafe { std::slice::from_raw_parts(array.items, array.len) })
    }
}

impl<'s, T> Deref for Scoped<'s, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}
