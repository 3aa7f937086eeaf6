// SPDX-License-Identifier: MIT
// C# mirrors of the structs of include/polyplug/abi.h and runtime_contract.h, the delegate types of
// the HostApi entries this library calls, and the contract ids. Every size and offset asserted in
// abi.h is checked again by Abi.CheckLayouts (run once per process before the first runtime), so
// a mistake here fails at once instead of corrupting memory later. 64-bit little-endian only.
using System;
using System.Runtime.InteropServices;
using System.Text;

// The test program (tests/hosts/csharp) replaces a provider's entries to play a misbehaving plugin.
[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("PolyplugHostTests")]

namespace Polyplug
{
    [StructLayout(LayoutKind.Sequential)]
    public struct StringView { public IntPtr Ptr; public UIntPtr Len; }

    [StructLayout(LayoutKind.Sequential)]
    public struct AbiBuffer { public IntPtr Ptr; public UIntPtr Len; public UIntPtr Cap; }

    /// <summary>The caller-frees Array of HostApi results (not a contract function's array).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct AbiArray { public IntPtr Items; public UIntPtr Len; public UIntPtr Align; }

    /// <summary>Array&lt;T&gt; inside contract functions and structs: {const T* items; size_t len}.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ContractArray { public IntPtr Items; public UIntPtr Len; }

    [StructLayout(LayoutKind.Sequential)]
    public struct AbiVersion { public uint Major, Minor, Patch; }

    [StructLayout(LayoutKind.Sequential)]
    public struct AbiError { public uint Code; public StringView Message; }

    [StructLayout(LayoutKind.Sequential)]
    public struct GuestContractHandle { public uint Index, Generation; }

    [StructLayout(LayoutKind.Sequential)]
    public struct GuestContractInstance { public IntPtr Data; public ulong ContractId; }

    [StructLayout(LayoutKind.Sequential)]
    public struct HostContractInstance { public IntPtr Data; }

    [StructLayout(LayoutKind.Sequential)]
    public struct ArenaOverflowBlock { public IntPtr Next; public UIntPtr Capacity, Used; }

    [StructLayout(LayoutKind.Sequential)]
    public struct CallArena { public IntPtr Cur, End, Base, Host, FirstOverflow; }

    // The dispatch union is read through explicit offsets: a native table {u32 count; fn** functions}
    // and a VM entry {call; loader_data} share its 16 bytes.
    [StructLayout(LayoutKind.Explicit, Size = 56)]
    public struct GuestContractInterface
    {
        [FieldOffset(0)] public ulong ContractId;
        [FieldOffset(8)] public AbiVersion Version;
        [FieldOffset(20)] public uint DispatchType;
        [FieldOffset(24)] public IntPtr CreateInstance;
        [FieldOffset(32)] public IntPtr DestroyInstance;
        [FieldOffset(40)] public uint FunctionCount;     // native
        [FieldOffset(48)] public IntPtr Functions;       // native
        [FieldOffset(40)] public IntPtr VmCall;          // vm
        [FieldOffset(48)] public IntPtr VmLoaderData;    // vm
    }

    [StructLayout(LayoutKind.Explicit, Size = 80)]
    public struct HostContractInterface
    {
        [FieldOffset(0)] public ulong ContractId;
        [FieldOffset(8)] public AbiVersion Version;
        [FieldOffset(20)] public byte Singleton;
        [FieldOffset(24)] public uint DispatchType;
        [FieldOffset(32)] public IntPtr Runtime;
        [FieldOffset(40)] public IntPtr UserData;
        [FieldOffset(48)] public IntPtr CreateInstance;
        [FieldOffset(56)] public IntPtr DestroyInstance;
        [FieldOffset(64)] public uint FunctionCount;
        [FieldOffset(72)] public IntPtr Functions;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ReloadPhaseRecord
    {
        public uint PhaseType; public ulong BundleId; public StringView BundleName; public StringView Reason;
    }

    [StructLayout(LayoutKind.Explicit, Size = 48)]
    public struct RuntimeConfig
    {
        [FieldOffset(0)] public uint Compatibility;
        [FieldOffset(4)] public byte HotReloadEnabled;
        [FieldOffset(8)] public IntPtr OnReload;
        [FieldOffset(16)] public IntPtr OnReloadUserData;
        [FieldOffset(24)] public IntPtr Log;
        [FieldOffset(32)] public IntPtr LogUserData;
        [FieldOffset(40)] public uint LogMaxLevel;
    }

    // runtime_contract.h
    [StructLayout(LayoutKind.Sequential)]
    public struct LoadDirsArgs { public IntPtr Dirs; public UIntPtr Count; }

    [StructLayout(LayoutKind.Sequential)]
    public struct LoadDirsOut { public uint Loaded, Skipped; public AbiBuffer Diagnostics; }

    [StructLayout(LayoutKind.Sequential)]
    public struct UnmapPolicyArgs { public uint Policy, GraceMs; }

    [StructLayout(LayoutKind.Sequential)]
    public struct BundleInfoOut
    {
        public ulong Id; public AbiVersion Version; public uint Language;
        public AbiBuffer Name, Path, Loader; public AbiArray Contracts;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct WatchArgs { public IntPtr Dirs; public UIntPtr Count; public uint DebounceMs, Flags; }

    // Delegates of the C entry points this library calls (cdecl is the SysV ABI's only convention).
    // Instances and handles are passed as the structs above, by value, exactly as in abi.h.
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate IntPtr CreateRuntimeFn(ref RuntimeConfig config);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate void DestroyRuntimeFn(IntPtr host);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate void FreeFn(IntPtr host, IntPtr ptr, UIntPtr size, UIntPtr align);
    // GuestContractHandle (two u32) comes back in one register: read as a u64 (index low, generation high).
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate ulong FindGuestFn(IntPtr host, ulong id, uint minVersion);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate AbiArray FindAllGuestFn(IntPtr host, ulong id, uint minVersion);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate IntPtr ResolveGuestFn(IntPtr host, ulong handle);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate HostContractInstance GetHostContractFn(IntPtr host, ulong id, uint version);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate IntPtr ResolveHostIfaceFn(IntPtr host, ulong id, uint version);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate AbiArray ListBundlesFn(IntPtr host);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate void PathOpFn(IntPtr host, byte[] path, UIntPtr len, ref AbiError err);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate void PtrOpFn(IntPtr host, IntPtr what, ref AbiError err);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate UIntPtr GetLastErrorFn(IntPtr host, byte[] buf, UIntPtr len);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate UIntPtr GetErrorLenFn(IntPtr host);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate void UnloadFn(IntPtr host, ulong bundleId, ref AbiError err);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate void LogFn(IntPtr host, uint level, StringView scope, StringView message);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate void CreateGuestInstanceFn(IntPtr host, IntPtr iface, IntPtr args, out GuestContractInstance instance);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate void DestroyGuestInstanceFn(IntPtr host, IntPtr iface, GuestContractInstance instance);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate IntPtr RevisionCounterFn(IntPtr host);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] internal delegate IntPtr LoaderCreateFn();

    /// <summary>A guest contract function of a native provider.</summary>
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    public delegate void GuestContractFn(GuestContractInstance instance, IntPtr args, IntPtr result, IntPtr err);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void VmCallFn(IntPtr loaderData, GuestContractInstance instance, uint fnId, IntPtr args, IntPtr result, IntPtr arena, IntPtr err);
    /// <summary>A host contract function (what a plugin calls; also the thunks of C# implementations).</summary>
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    public delegate void HostContractFn(HostContractInstance instance, IntPtr args, IntPtr result, IntPtr err);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void HostCreateInstanceFn(IntPtr iface, IntPtr args, IntPtr outInstance);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void HostDestroyInstanceFn(IntPtr iface, HostContractInstance instance);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void ReloadCallbackFn(IntPtr user, IntPtr phase);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void LogCallbackFn(IntPtr user, uint level, StringView scope, StringView message);

    /// <summary>Constants and ids of the C ABI.</summary>
    public static class Abi
    {
        // Offsets of the HostApi entries (abi.h: 23 pointers, 184 bytes).
        internal const int HostRuntime = 0, HostAlloc = 16, HostFree = 24, HostFindGuest = 32,
            HostFindAllGuest = 40, HostResolveGuest = 48, HostGetHostContract = 56,
            HostResolveHostIface = 64, HostListBundles = 72, HostLoadBundle = 88,
            HostReloadBundle = 96, HostRegisterHostContract = 104, HostRegisterLoader = 112,
            HostGetLastError = 120, HostGetErrorLen = 128, HostUnloadBundle = 136, HostLog = 144,
            HostCreateGuestInstance = 152, HostDestroyGuestInstance = 160, HostRevisionCounter = 168;

        public const ulong RuntimeContractId = 0xE847EF18831F2333UL;
        internal const uint FnLoadDirs = 0, FnUnloadCascade = 1, FnSetUnmapPolicy = 2, FnBundleInfo = 3,
            FnWatch = 4, FnUnwatch = 5, FnPollWatch = 6, FnDescribeContractFile = 7;
        internal const uint WatchManual = 1;
        internal const uint DispatchNative = 0, DispatchVm = 1;
        internal const uint NoIndex = 0xFFFFFFFF;

        public static readonly string[] LanguageNames = { "Rust", "Cpp", "Dotnet", "Python", "Lua", "JavaScript" };
        internal static readonly string[] PhaseNames = { "Preparing", "Reloaded", "Failed", "Unloading" };
        internal static readonly string[] LogLevelNames = { "off", "error", "warn", "info", "debug", "trace" };

        /// <summary>FNV-1a 64 of the bytes, the hash all ids are made of.</summary>
        public static ulong Fnv1a64(byte[] data)
        {
            ulong h = 0xCBF29CE484222325UL;
            foreach (byte b in data) h = unchecked((h ^ b) * 0x100000001B3UL);
            return h;
        }

        public static ulong GuestContractId(string name, uint major) =>
            Fnv1a64(Encoding.UTF8.GetBytes("guest_contract:" + name + "@" + major));

        public static ulong HostContractId(string name, uint major) =>
            Fnv1a64(Encoding.UTF8.GetBytes("host_contract:" + name + "@" + major));

        public static ulong BundleId(string name) => Fnv1a64(Encoding.UTF8.GetBytes(name));

        static bool checkedLayouts;

        static void Expect(Type t, int size, params object[] fieldsAndOffsets)
        {
            int got = Marshal.SizeOf(t);
            if (got != size)
                throw new PolyplugException($"Polyplug.Abi: sizeof({t.Name}) is {got}, the ABI says {size}", ErrorCode.Generic);
            for (int i = 0; i + 1 < fieldsAndOffsets.Length; i += 2)
            {
                string field = (string)fieldsAndOffsets[i];
                long offset = Marshal.OffsetOf(t, field).ToInt64();
                if (offset != (int)fieldsAndOffsets[i + 1])
                    throw new PolyplugException($"Polyplug.Abi: {t.Name}.{field} is at {offset}, the ABI says {fieldsAndOffsets[i + 1]}", ErrorCode.Generic);
            }
        }

        /// <summary>abi.h's layout assertions, checked against these mirrors once per process.</summary>
        internal static void CheckLayouts()
        {
            if (checkedLayouts) return;
            if (IntPtr.Size != 8)
                throw new PolyplugException("polyplug's C ABI is defined for 64-bit targets only", ErrorCode.Generic);
            Expect(typeof(StringView), 16, "Ptr", 0, "Len", 8);
            Expect(typeof(AbiBuffer), 24, "Ptr", 0, "Len", 8, "Cap", 16);
            Expect(typeof(AbiArray), 24, "Items", 0, "Len", 8, "Align", 16);
            Expect(typeof(ContractArray), 16, "Items", 0, "Len", 8);
            Expect(typeof(AbiVersion), 12, "Major", 0, "Minor", 4, "Patch", 8);
            Expect(typeof(AbiError), 24, "Code", 0, "Message", 8);
            Expect(typeof(GuestContractHandle), 8, "Index", 0, "Generation", 4);
            Expect(typeof(GuestContractInstance), 16, "Data", 0, "ContractId", 8);
            Expect(typeof(HostContractInstance), 8);
            Expect(typeof(ArenaOverflowBlock), 24, "Next", 0, "Capacity", 8, "Used", 16);
            Expect(typeof(CallArena), 40, "Cur", 0, "End", 8, "Base", 16, "Host", 24, "FirstOverflow", 32);
            Expect(typeof(GuestContractInterface), 56, "DispatchType", 20, "CreateInstance", 24, "DestroyInstance", 32, "Functions", 48);
            Expect(typeof(HostContractInterface), 80, "Singleton", 20, "DispatchType", 24, "CreateInstance", 48, "Functions", 72);
            Expect(typeof(ReloadPhaseRecord), 48, "PhaseType", 0, "BundleId", 8, "BundleName", 16, "Reason", 32);
            Expect(typeof(RuntimeConfig), 48, "HotReloadEnabled", 4, "OnReload", 8, "Log", 24, "LogMaxLevel", 40);
            Expect(typeof(LoadDirsArgs), 16);
            Expect(typeof(LoadDirsOut), 32, "Loaded", 0, "Skipped", 4, "Diagnostics", 8);
            Expect(typeof(BundleInfoOut), 120, "Id", 0, "Version", 8, "Language", 20, "Name", 24, "Path", 48, "Loader", 72, "Contracts", 96);
            Expect(typeof(WatchArgs), 24, "DebounceMs", 16, "Flags", 20);
            checkedLayouts = true;
        }
    }
}
