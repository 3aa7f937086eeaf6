// SPDX-License-Identifier: MIT
//! polyplug for Rust hosts: a safe wrapper over `libpolyplug.so` (docs/RUST_HOST.md).
//!
//! Contracts are declared by hand, with plain trait impls (no macro): a unit struct implementing
//! [`Contract`], `#[repr(C)]` argument and result structs marked [`AbiType`], and one
//! [`Function`] per contract function (its index is the declaration order in the contract file).
//!
//! ```no_run
//! use polyplug::{AbiType, Contract, Function, Runtime, StringView, Version};
//!
//! struct Calc;
//! impl Contract for Calc {
//!     const NAME: &'static str = "example.calc";
//!     const VERSION: Version = Version::new(1, 0, 0);
//! }
//! #[repr(C)]
//! struct AddArgs { a: i32, b: i32 }
//! unsafe impl AbiType for AddArgs {}
//! impl Calc {
//!     // Safety: add(a: i32, b: i32) -> i32 is function 0 of example.calc@1.
//!     const ADD: Function<Calc, AddArgs, i32> = unsafe { Function::new(0, "add") };
//!     const DESCRIBE: Function<Calc, (), StringView<'static>> =
//!         unsafe { Function::new(1, "describe") };
//! }
//!
//! # fn main() -> Result<(), polyplug::Error> {
//! let rt = Runtime::new()?;
//! rt.load("build/examples/bundles/c_calc")?;
//! let mut calc = rt.find::<Calc>()?;
//! assert_eq!(calc.call(Calc::ADD, &AddArgs { a: 2, b: 40 })?.into_value(), 42);
//! let name = calc.call(Calc::DESCRIBE, &())?.text(|s| s)?.to_string();
//! # let _ = name; Ok(()) }
//! ```

mod error;
mod guest;
mod host;
mod runtime;
pub mod sys;
mod types;

pub use error::{Error, ErrorCode, Result};
pub use guest::{
    bundle_id, fnv1a64, guest_contract_id, host_contract_id, Contract, Dynamic, Function, Guest,
};
pub use host::{HostContract, HostFunction, MAX_HOST_FUNCTIONS};
pub use runtime::{
    Compatibility, LoadDirsResult, LogLevel, LogRecord, Phase, ReloadEvent, Runtime, RuntimeOptions,
};
pub use sys::{GuestContractHandle, Version};
pub use types::{AbiType, Buffer, ContractArray, Scoped, StringView};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_abi_vectors() {
        assert_eq!(fnv1a64(b""), 0xCBF2_9CE4_8422_2325);
        assert_eq!(fnv1a64(b"test.add@1"), 0xCC42_32FA_B041_0D2B);
        assert_eq!(bundle_id("my-bundle"), 0xFE62_2687_6E3A_35B2);
        assert_eq!(guest_contract_id("my.contract", 1), 0x3AFC_01CA_348E_3F0D);
        assert_eq!(guest_contract_id("test.add", 1), 0x4024_4DF5_9FCB_ECB6);
        assert_eq!(
            guest_contract_id("pipeline.Decoder", 1),
            0xE1D7_DE77_3BE6_E7F7
        );
        assert_eq!(host_contract_id("logger", 1), 0xEE2F_1DB9_0B2B_5EFF);
        assert_eq!(host_contract_id("host.logger", 1), 0xF53E_B5F2_8458_53BB);
        assert_eq!(
            host_contract_id("host.polyplug.Runtime", 1),
            sys::RUNTIME_CONTRACT_ID
        );
        // multi-digit majors hash their decimal digits
        assert_eq!(guest_contract_id("x", 12), fnv1a64(b"guest_contract:x@12"));
        assert_eq!(guest_contract_id("x", 0), fnv1a64(b"guest_contract:x@0"));
    }

    #[test]
    fn error_codes_round_trip_and_keep_unknown_values() {
        for raw in [1u32, 2, 3, 4, 5, 6, 7, 8, 9, 100, 101, 102, 256, 4242] {
            assert_eq!(ErrorCode::from_raw(raw).raw(), raw);
        }
        assert_eq!(ErrorCode::from_raw(4242), ErrorCode::Other(4242));
        let e = Error::new(ErrorCode::NotFound, "nope");
        assert_eq!(e.to_string(), "nope [NotFound (4)]");
    }

    #[test]
    fn scoped_views_are_checked() {
        let bad: StringView<'static> = unsafe { StringView::from_raw_parts(std::ptr::null(), 3) };
        let s = Scoped::new(bad, "t");
        let e = s.text(|v| v).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidPointer);
        let not_utf8: StringView<'static> = StringView::from_bytes(b"\xff\xfe");
        let s = Scoped::new(not_utf8, "t");
        assert!(s.text(|v| v).unwrap_err().message.contains("UTF-8"));
        let null_empty: StringView<'static> =
            unsafe { StringView::from_raw_parts(std::ptr::null(), 0) };
        assert_eq!(Scoped::new(null_empty, "t").text(|v| v).unwrap(), "");
    }
}
