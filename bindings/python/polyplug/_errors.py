# SPDX-License-Identifier: MIT
"""polyplug.Error and its subclasses, one per AbiErrorCode plus a few raised by this package."""
from ._abi import ERROR_CODE_NAMES

GENERIC, BUFFER_TOO_SMALL, PANIC, NOT_FOUND, STALE_HANDLE = 1, 2, 3, 4, 5
FUNCTION_NOT_AVAILABLE, DUPLICATE_PROVIDER, INVALID_POINTER, REENTRANT_CALL = 6, 7, 8, 9
HOST_CONTRACT_NOT_FOUND, HOST_CONTRACT_VERSION_MISMATCH, HOST_CONTRACT_CALL_FAILED = 100, 101, 102


def code_name(code: int) -> str:
    if code in ERROR_CODE_NAMES:
        return ERROR_CODE_NAMES[code]
    return f"PluginDefined({code})" if code >= 256 else f"Unknown({code})"


class Error(Exception):
    """A polyplug failure. `.code` is the AbiErrorCode (int), `.code_name` its name ("NotFound"),
    `.message` the text (the AbiError message and/or the runtime's last_error)."""

    default_code = GENERIC

    def __init__(self, message: str, code: int | None = None):
        self.code = int(self.default_code if code is None else code)
        self.code_name = code_name(self.code)
        self.message = message
        super().__init__(message)

    def __str__(self):
        return f"[{self.code_name}] {self.message}"


class GenericError(Error):
    default_code = GENERIC


class BufferTooSmallError(Error):
    default_code = BUFFER_TOO_SMALL


class PanicError(Error):
    """The provider (or a host contract implementation) raised, threw or panicked."""
    default_code = PANIC


class NotFoundError(Error, LookupError):
    default_code = NOT_FOUND


class StaleHandleError(Error):
    """The provider this object was using went away (unloaded); nothing replaced it."""
    default_code = STALE_HANDLE


class FunctionNotAvailableError(Error):
    default_code = FUNCTION_NOT_AVAILABLE


class DuplicateProviderError(Error):
    default_code = DUPLICATE_PROVIDER


class InvalidPointerError(Error):
    default_code = INVALID_POINTER


class ReentrantCallError(Error):
    default_code = REENTRANT_CALL


class HostContractNotFoundError(Error):
    default_code = HOST_CONTRACT_NOT_FOUND


class HostContractVersionMismatchError(Error):
    default_code = HOST_CONTRACT_VERSION_MISMATCH


class HostContractCallFailedError(Error):
    default_code = HOST_CONTRACT_CALL_FAILED


# ---- raised by this package before anything reaches the runtime --------------------------------
class LibraryNotFoundError(Error, OSError):
    """libpolyplug.so or a loader module could not be opened."""


class ContractFileError(Error, ValueError):
    """A contract file that does not parse, or a description this package cannot use."""


class ArgumentError(Error, TypeError):
    """A Python value that does not fit the contract's type; no call was made."""


class OutOfRangeError(ArgumentError, OverflowError):
    """An integer (or f32) outside its type's range; no call was made, nothing truncated."""


class UnknownFunctionError(Error, AttributeError):
    """The contract has no function of that name."""
    default_code = FUNCTION_NOT_AVAILABLE


class ClosedError(Error):
    """The runtime or contract object was closed."""
    default_code = INVALID_POINTER


class CallbackError(Error):
    """A Python callback (on_reload, log) raised during a runtime operation; see __cause__."""


_BY_CODE = {
    GENERIC: GenericError, BUFFER_TOO_SMALL: BufferTooSmallError, PANIC: PanicError,
    NOT_FOUND: NotFoundError, STALE_HANDLE: StaleHandleError,
    FUNCTION_NOT_AVAILABLE: FunctionNotAvailableError, DUPLICATE_PROVIDER: DuplicateProviderError,
    INVALID_POINTER: InvalidPointerError, REENTRANT_CALL: ReentrantCallError,
    HOST_CONTRACT_NOT_FOUND: HostContractNotFoundError,
    HOST_CONTRACT_VERSION_MISMATCH: HostContractVersionMismatchError,
    HOST_CONTRACT_CALL_FAILED: HostContractCallFailedError,
}


def error_for(code: int, message: str) -> Error:
    """The Error subclass for an AbiErrorCode (Error itself for plugin-defined codes)."""
    return _BY_CODE.get(code, Error)(message, code)
