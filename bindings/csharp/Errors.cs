// SPDX-License-Identifier: MIT
// PolyplugException and its subclasses: one per AbiErrorCode, plus the ones this library raises
// before anything reaches the runtime (a value that does not fit, a closed runtime, ...).
using System;

namespace Polyplug
{
    /// <summary>The AbiErrorCode values of abi.h.</summary>
    public enum ErrorCode : uint
    {
        Ok = 0, Generic = 1, BufferTooSmall = 2, Panic = 3, NotFound = 4, StaleHandle = 5,
        FunctionNotAvailable = 6, DuplicateProvider = 7, InvalidPointer = 8, ReentrantCall = 9,
        HostContractNotFound = 100, HostContractVersionMismatch = 101, HostContractCallFailed = 102,
    }

    /// <summary>A polyplug failure: <see cref="Code"/> is the AbiErrorCode (plugin-defined codes are
    /// 256 and above), <see cref="CodeName"/> its name, Message the AbiError's message and the
    /// runtime's last_error text.</summary>
    public class PolyplugException : Exception
    {
        public uint Code { get; }
        public string CodeName => NameOf(Code);

        public PolyplugException(string message, ErrorCode code) : this(message, (uint)code, null) { }
        public PolyplugException(string message, uint code, Exception inner = null) : base(message, inner) { Code = code; }

        public override string ToString() => $"[{CodeName}] {Message}";

        public static string NameOf(uint code)
        {
            if (Enum.IsDefined(typeof(ErrorCode), code)) return ((ErrorCode)code).ToString();
            return code >= 256 ? $"PluginDefined({code})" : $"Unknown({code})";
        }

        /// <summary>The subclass for an AbiErrorCode (PolyplugException itself for plugin-defined codes).</summary>
        public static PolyplugException For(uint code, string message)
        {
            switch ((ErrorCode)code)
            {
                case ErrorCode.Generic: return new GenericException(message);
                case ErrorCode.BufferTooSmall: return new BufferTooSmallException(message);
                case ErrorCode.Panic: return new PanicException(message);
                case ErrorCode.NotFound: return new NotFoundException(message);
                case ErrorCode.StaleHandle: return new StaleHandleException(message);
                case ErrorCode.FunctionNotAvailable: return new FunctionNotAvailableException(message);
                case ErrorCode.DuplicateProvider: return new DuplicateProviderException(message);
                case ErrorCode.InvalidPointer: return new InvalidPointerException(message);
                case ErrorCode.ReentrantCall: return new ReentrantCallException(message);
                case ErrorCode.HostContractNotFound: return new HostContractNotFoundException(message);
                case ErrorCode.HostContractVersionMismatch: return new HostContractVersionMismatchException(message);
                case ErrorCode.HostContractCallFailed: return new HostContractCallFailedException(message);
                default: return new PolyplugException(message, code);
            }
        }
    }

    public class GenericException : PolyplugException { public GenericException(string m) : base(m, ErrorCode.Generic) { } }
    public class BufferTooSmallException : PolyplugException { public BufferTooSmallException(string m) : base(m, ErrorCode.BufferTooSmall) { } }
    /// <summary>The provider (or a host contract implementation) threw, raised or panicked.</summary>
    public class PanicException : PolyplugException { public PanicException(string m) : base(m, ErrorCode.Panic) { } }
    public class NotFoundException : PolyplugException { public NotFoundException(string m) : base(m, ErrorCode.NotFound) { } }
    /// <summary>The provider a pinned contract object used went away (unloaded).</summary>
    public class StaleHandleException : PolyplugException { public StaleHandleException(string m) : base(m, ErrorCode.StaleHandle) { } }
    public class FunctionNotAvailableException : PolyplugException { public FunctionNotAvailableException(string m) : base(m, ErrorCode.FunctionNotAvailable) { } }
    public class DuplicateProviderException : PolyplugException { public DuplicateProviderException(string m) : base(m, ErrorCode.DuplicateProvider) { } }
    /// <summary>A pointer and length a plugin (or the runtime) handed over cannot be a readable range.</summary>
    public class InvalidPointerException : PolyplugException { public InvalidPointerException(string m) : base(m, ErrorCode.InvalidPointer) { } }
    public class ReentrantCallException : PolyplugException { public ReentrantCallException(string m) : base(m, ErrorCode.ReentrantCall) { } }
    public class HostContractNotFoundException : PolyplugException { public HostContractNotFoundException(string m) : base(m, ErrorCode.HostContractNotFound) { } }
    public class HostContractVersionMismatchException : PolyplugException { public HostContractVersionMismatchException(string m) : base(m, ErrorCode.HostContractVersionMismatch) { } }
    public class HostContractCallFailedException : PolyplugException { public HostContractCallFailedException(string m) : base(m, ErrorCode.HostContractCallFailed) { } }

    // ---- raised by this library before any call ----
    /// <summary>libpolyplug.so or a loader module could not be opened.</summary>
    public class LibraryNotFoundException : PolyplugException { public LibraryNotFoundException(string m) : base(m, ErrorCode.Generic) { } }
    /// <summary>A contract file that does not parse (the runtime's file:line:column: message), or a description this library cannot use.</summary>
    public class ContractFileException : PolyplugException { public ContractFileException(string m, uint code = 1) : base(m, code) { } }
    /// <summary>A C# value that does not fit the contract's type; no call was made.</summary>
    public class ArgumentMismatchException : PolyplugException { public ArgumentMismatchException(string m) : base(m, ErrorCode.Generic) { } }
    /// <summary>An integer (or f32) outside its type's range; no call was made, nothing truncated.</summary>
    public class ValueOutOfRangeException : ArgumentMismatchException { public ValueOutOfRangeException(string m) : base(m) { } }
    /// <summary>The contract has no function of that name.</summary>
    public class UnknownFunctionException : PolyplugException { public UnknownFunctionException(string m) : base(m, ErrorCode.FunctionNotAvailable) { } }
    /// <summary>The runtime or contract object was closed.</summary>
    public class ClosedException : PolyplugException { public ClosedException(string m) : base(m, ErrorCode.InvalidPointer) { } }
    /// <summary>Close() of a runtime or contract object while a call into it is in progress (from a
    /// callback or a host contract implemented in C# run inside that call, or, for a runtime,
    /// another thread's call); nothing was closed. A ReentrantCallException (code 9).</summary>
    public class BusyException : ReentrantCallException { public BusyException(string m) : base(m) { } }
    /// <summary>An OnReload or Log callback threw during a runtime operation; InnerException is what it threw.</summary>
    public class CallbackException : PolyplugException { public CallbackException(string m, Exception inner) : base(m, (uint)ErrorCode.Generic, inner) { } }
}
