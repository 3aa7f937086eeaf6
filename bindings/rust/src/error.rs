// SPDX-License-Identifier: MIT
//! `Error` and `ErrorCode`: every failure of the crate, with the ABI's code and a message.

use std::fmt;

/// The ABI's error codes (`AbiErrorCode`). Codes this crate does not know, including plugin
/// codes (256 and up), are kept as `Other(raw)`, never guessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Generic,
    BufferTooSmall,
    Panic,
    NotFound,
    StaleHandle,
    FunctionNotAvailable,
    DuplicateProvider,
    InvalidPointer,
    ReentrantCall,
    HostContractNotFound,
    HostContractVersionMismatch,
    HostContractCallFailed,
    Other(u32),
}

impl ErrorCode {
    /// The code of a raw `AbiError.code` (0 is not an error: it maps to `Other(0)`).
    pub fn from_raw(raw: u32) -> ErrorCode {
        match raw {
            1 => ErrorCode::Generic,
            2 => ErrorCode::BufferTooSmall,
            3 => ErrorCode::Panic,
            4 => ErrorCode::NotFound,
            5 => ErrorCode::StaleHandle,
            6 => ErrorCode::FunctionNotAvailable,
            7 => ErrorCode::DuplicateProvider,
            8 => ErrorCode::InvalidPointer,
            9 => ErrorCode::ReentrantCall,
            100 => ErrorCode::HostContractNotFound,
            101 => ErrorCode::HostContractVersionMismatch,
            102 => ErrorCode::HostContractCallFailed,
            other => ErrorCode::Other(other),
        }
    }

    /// The raw `u32` the ABI carries.
    pub fn raw(self) -> u32 {
        match self {
            ErrorCode::Generic => 1,
            ErrorCode::BufferTooSmall => 2,
            ErrorCode::Panic => 3,
            ErrorCode::NotFound => 4,
            ErrorCode::StaleHandle => 5,
            ErrorCode::FunctionNotAvailable => 6,
            ErrorCode::DuplicateProvider => 7,
            ErrorCode::InvalidPointer => 8,
            ErrorCode::ReentrantCall => 9,
            ErrorCode::HostContractNotFound => 100,
            ErrorCode::HostContractVersionMismatch => 101,
            ErrorCode::HostContractCallFailed => 102,
            ErrorCode::Other(raw) => raw,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Other(raw) => write!(f, "code {}", raw),
            known => write!(f, "{:?} ({})", known, known.raw()),
        }
    }
}

/// A failure: the ABI code and a message naming what failed and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.message, self.code)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
