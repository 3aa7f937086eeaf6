# SPDX-License-Identifier: MIT
"""polyplug for Python: a ctypes host over libpolyplug.so (no compilation, stdlib only).

    import polyplug
    with polyplug.Runtime(hot_reload=True) as rt:
        rt.load("build/examples/bundles/c_calc")
        calc = rt.find("example.calc", api="examples/contracts/example_calc.api.toml")
        calc.add(2, 40)      # 42
        calc.describe()      # a str

Contracts are described by their contract file (*.api.toml), read by the runtime's own parser
(host.polyplug.Runtime@1 DescribeContractFile): no generated code. See docs/PYTHON_HOST.md.
"""
from ._errors import (  # noqa: F401
    ArgumentError, BufferTooSmallError, CallbackError, ClosedError, ContractFileError,
    DuplicateProviderError, Error, FunctionNotAvailableError, GenericError,
    HostContractCallFailedError, HostContractNotFoundError, HostContractVersionMismatchError,
    InvalidPointerError, LibraryNotFoundError, NotFoundError, OutOfRangeError, PanicError,
    ReentrantCallError, StaleHandleError, UnknownFunctionError, code_name, error_for,
)
from ._runtime import (  # noqa: F401
    Bundle, GuestContract, HostContractClient, HostContractImplementation, LoadDirsResult,
    LogRecord, ReloadEvent, Runtime,
)
from ._types import Description  # noqa: F401
from ._abi import bundle_id, guest_contract_id, host_contract_id  # noqa: F401

__version__ = "0.1.1"
