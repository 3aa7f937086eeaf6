// SPDX-License-Identifier: MIT
// Contract objects (GuestContract, HostContractClient): typed calls marshalled from the contract
// description; and HostContractImplementation, a host contract implemented by C# methods.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace Polyplug
{
    /// <summary>The unmanaged storage of one call: argument block, result, AbiError, and the
    /// memory the arguments point into. A contract object keeps one per function and reuses it;
    /// a call that finds it taken (re-entered from a host contract, or another thread's call)
    /// gets a new one, so a running call's storage is never overwritten.</summary>
    internal sealed unsafe class CallSlot
    {
        public readonly IntPtr Args, Result, Err;
        public readonly int ArgsSize, ResultSize;
        public readonly Scratch Scratch = new Scratch();

        public CallSlot(Function fn)
        {
            ArgsSize = fn.ArgsSize;
            ResultSize = fn.Result?.Size ?? 0;
            Args = Marshal.AllocHGlobal(Math.Max(ArgsSize, 8));
            Result = Marshal.AllocHGlobal(Math.Max(ResultSize, 8));
            Err = Marshal.AllocHGlobal(sizeof(AbiError));
        }

        public void Free()
        {
            Scratch.Clear();
            Marshal.FreeHGlobal(Args);
            Marshal.FreeHGlobal(Result);
            Marshal.FreeHGlobal(Err);
        }
    }

    /// <summary>A call arena for VM guests (retain and rewind, spec 5.4): a first block of its own,
    /// and overflow blocks from the runtime's allocator kept between calls, freed by Free.</summary>
    internal sealed unsafe class Arena
    {
        public const int Size = 4096;
        readonly IntPtr storage;
        public readonly CallArena* C;

        public Arena(IntPtr host)
        {
            storage = Marshal.AllocHGlobal(Size);
            C = (CallArena*)Marshal.AllocHGlobal(sizeof(CallArena));
            C->Base = C->Cur = storage;
            C->End = storage + Size;
            C->Host = host;
            C->FirstOverflow = IntPtr.Zero;
        }

        public void Rewind()
        {
            for (IntPtr block = C->FirstOverflow; block != IntPtr.Zero;)
            {
                var header = (ArenaOverflowBlock*)block;
                header->Used = (UIntPtr)(ulong)sizeof(ArenaOverflowBlock); // `used` counts the header
                block = header->Next;
            }
            C->Cur = C->Base;
        }

        /// <summary>Teardown: the overflow blocks go back to the runtime (when it is still open), then our memory.</summary>
        public void Free(Runtime rt)
        {
            if (rt.IsOpen)
                for (IntPtr block = C->FirstOverflow; block != IntPtr.Zero;)
                {
                    var header = (ArenaOverflowBlock*)block;
                    IntPtr next = header->Next;
                    rt.FreeHost(block, (ulong)header->Capacity, 8);
                    block = next;
                }
            Marshal.FreeHGlobal(storage);
            Marshal.FreeHGlobal((IntPtr)C);
        }
    }

    /// <summary>A plugin's function table, read lazily: an entry is read (and its delegate made)
    /// on the first call of its function, and only for ids the contract file describes below the
    /// count the plugin claims. That count is the plugin's word: its table may be shorter, so
    /// nothing past the entries actually called is touched.</summary>
    internal sealed unsafe class EntryTable<T> where T : class
    {
        readonly IntPtr* table;
        readonly T[] entries;
        readonly bool[] read;

        public EntryTable(IntPtr functions, uint count, Contract decl)
        {
            table = (IntPtr*)functions;
            ulong described = decl.Functions.Count == 0 ? 0 : decl.Functions.Max(f => (ulong)f.Id) + 1;
            int n = table == null ? 0 : (int)Math.Min(count, described);
            entries = new T[n];
            read = new bool[n];
        }

        /// <summary>The entry of function id, null when the table has none (NULL, or beyond it).</summary>
        public T this[uint id]
        {
            get
            {
                if (id >= (uint)entries.Length) return null;
                if (!read[id])
                {
                    IntPtr p = table[id];
                    entries[id] = p == IntPtr.Zero ? null : (T)(object)Marshal.GetDelegateForFunctionPointer(p, typeof(T));
                    read[id] = true;
                }
                return entries[id];
            }
            set
            {
                entries[id] = value;
                read[id] = true;
            }
        }
    }

    /// <summary>What GuestContract and HostContractClient share: argument packing, results, errors.
    /// Not thread-safe: use one object per thread.</summary>
    public abstract unsafe class ContractObject : IDisposable
    {
        internal readonly Runtime Rt;
        /// <summary>The contract's description (functions, signatures, its file's types).</summary>
        public Contract Contract { get; }
        // Keyed by the Function object itself (reference identity): one lookup both finds the pool and
        // refuses a Function of another contract object's description.
        readonly Dictionary<Function, Stack<CallSlot>> pools = new Dictionary<Function, Stack<CallSlot>>();
        protected bool closed;
        // Calls of this object in progress (more than 1: a call re-entered from a host contract);
        // Close refuses while it is nonzero. A contract object is used by one thread at a time.
        internal int depth;

        internal ContractObject(Runtime rt, Contract decl)
        {
            Rt = rt;
            Contract = decl;
            foreach (Function fn in decl.Functions) pools[fn] = new Stack<CallSlot>();
        }

        /// <summary>The file's struct and enum types (<c>kit.Types.Struct("Point").New(1, 2)</c>).</summary>
        public Description Types => Contract.Description;

        /// <summary>The signatures of the contract's functions.</summary>
        public IReadOnlyList<string> Functions => Contract.Functions.Select(f => f.Signature).ToList();

        public bool IsClosed => closed;

        /// <summary>Calls a function by name; the result is null for Void.</summary>
        public object Call(string name, params object[] args) => Invoke(Contract.Function(name), args);

        /// <summary>Calls a function by name and casts its result.</summary>
        public T Call<T>(string name, params object[] args) => (T)Invoke(Contract.Function(name), args);

        /// <summary>Calls a function of this contract (from Contract.Function(name): no lookup by name).</summary>
        public object Invoke(Function fn, params object[] args)
        {
            Rt.Enter();
            depth++;
            try { return InvokeIn(fn, args); }
            finally
            {
                depth--;
                Rt.Leave();
            }
        }

        object InvokeIn(Function fn, object[] args)
        {
            Ready();
            if (fn == null || !pools.TryGetValue(fn, out Stack<CallSlot> pool))
                throw new ArgumentMismatchException($"{Contract.Name}: {(fn == null ? "null" : fn.Contract + "." + fn.Name)} is not a function of this contract object");
            args = args ?? new object[] { null };
            if (args.Length != fn.Params.Count)
                throw new ArgumentMismatchException($"{fn.Contract}.{fn.Signature} takes {fn.Params.Count} argument(s), got {args.Length}");
            CallSlot slot = pool.Count > 0 ? pool.Pop() : new CallSlot(fn);
            Arena arena = null;
            try
            {
                byte* a = (byte*)slot.Args;
                Zero(a, slot.ArgsSize);
                for (int i = 0; i < args.Length; i++)
                {
                    Param p = fn.Params[i];
                    p.Type.Write(a + p.Offset, args[i], slot.Scratch, fn.Where[i]);
                }
                // Zeroed before every call: a provider that reports success without writing its result
                // yields zeros ("", empty, 0), and a failure without a message never shows an older one.
                Zero((byte*)slot.Result, slot.ResultSize);
                Zero((byte*)slot.Err, sizeof(AbiError));
                arena = DispatchCall(fn, slot.Args, slot.Result, slot.Err);
                var err = (AbiError*)slot.Err;
                if (err->Code != 0)
                    throw PolyplugException.For(err->Code, $"{fn.Contract}.{fn.Name}: {NonEmpty(Memory.Text(err->Message), "failed")}");
                // Read before the arena is rewound: a VM result points into it.
                return fn.Result == null ? null : fn.Result.Read((byte*)slot.Result);
            }
            finally
            {
                slot.Scratch.Clear();
                if (closed) slot.Free(); else pool.Push(slot);
                if (arena != null) ReturnArena(arena);
            }
        }

        static string NonEmpty(string s, string fallback) => s.Length > 0 ? s : fallback;

        static void Zero(byte* p, int n)
        {
            for (int i = 0; i < n; i++) p[i] = 0;
        }

        internal abstract void Ready();
        internal abstract Arena DispatchCall(Function fn, IntPtr args, IntPtr result, IntPtr err);
        internal virtual void ReturnArena(Arena arena) { }

        /// <summary>Refuses to close while a call of this object (or its own Close) is in progress:
        /// a host contract or callback run inside that call would destroy the instance the
        /// provider is running on, and the call's storage under it.</summary>
        protected void CheckNotBusy()
        {
            if (depth > 0)
                throw new BusyException($"{Contract.Name}: close(): a call of this contract object is in progress; close it after the call returns");
        }

        /// <summary>Destroys the instance (guest contracts) and frees the call storage. Idempotent.
        /// Throws BusyException, changing nothing, when called during one of this object's calls
        /// (from a host contract implementation or callback run inside it).</summary>
        public virtual void Close()
        {
            if (closed) return;
            CheckNotBusy();
            closed = true;
            Rt.Untrack(this);
            foreach (var pool in pools.Values) while (pool.Count > 0) pool.Pop().Free();
        }

        public void Dispose() => Close();
    }

    /// <summary>One instance of a guest contract's provider. Follows reloads: before every call the
    /// runtime's revision counter is read, and on a change the provider is resolved again (same
    /// provider: instance kept, table re-read; otherwise a new instance on whichever provider is
    /// registered now; a FindAll object is pinned and throws StaleHandleException once its provider
    /// is gone). Dispose (or Close) destroys the instance.</summary>
    public sealed unsafe class GuestContract : ContractObject
    {
        readonly bool pinned;
        readonly uint minimum;
        ulong handle;
        IntPtr iface;
        GuestContractInstance instance;
        EntryTable<GuestContractFn> entries;
        VmCallFn vmCall;
        IntPtr vmData;
        ulong seen;
        PolyplugException gone;
        readonly Stack<Arena> arenas = new Stack<Arena>();

        internal GuestContract(Runtime rt, Contract decl, ulong? pinnedHandle, uint minimum) : base(rt, decl)
        {
            rt.CheckOpen();
            this.minimum = minimum;
            pinned = pinnedHandle.HasValue;
            handle = pinnedHandle ?? 0;
            seen = rt.RevisionPtr == null ? 0 : *rt.RevisionPtr;
            PolyplugException failure;
            // create_guest_instance runs plugin code, which may call back into C#.
            rt.Enter();
            try { failure = Attach(); }
            finally { rt.Leave(); }
            if (failure != null) throw failure;
            rt.Track(this);
        }

        /// <summary>"native" or "vm" (the current provider's dispatch), null when detached.</summary>
        public string Dispatch => iface == IntPtr.Zero ? null : vmCall != null ? "vm" : "native";

        public override string ToString() =>
            $"<polyplug contract {Contract.Name}@{Contract.Major} {(closed ? "closed" : iface == IntPtr.Zero ? "detached" : "attached")}>";

        PolyplugException Attach()
        {
            IntPtr host = Rt.CheckOpen();
            if (!pinned)
            {
                handle = Rt.FindGuest(host, Contract.Id, minimum);
                if ((uint)handle == Abi.NoIndex)
                {
                    Rt.ClearLastError();
                    return new NotFoundException($"{Contract.Name}@{minimum}: no provider is loaded");
                }
            }
            IntPtr i = Rt.ResolveGuest(host, handle);
            if (i == IntPtr.Zero)
            {
                Rt.ClearLastError();
                return new StaleHandleException($"{Contract.Name}@{Contract.Major}: the provider is gone (unloaded)");
            }
            var gi = (GuestContractInterface*)i;
            if (gi->DispatchType != Abi.DispatchNative && gi->DispatchType != Abi.DispatchVm)
                return new FunctionNotAvailableException($"{Contract.Name}: unknown dispatch type {gi->DispatchType}");
            Rt.ClearLastError();
            Rt.CreateGuestInstance(host, i, IntPtr.Zero, out GuestContractInstance made);
            if (made.Data == IntPtr.Zero && made.ContractId == 0)
                return new GenericException($"{Contract.Name}: create_guest_instance failed: {NonEmpty(Rt.TakeLastError())}");
            iface = i;
            instance = made;
            ReadEntries();
            return null;
        }

        static string NonEmpty(string s) => s.Length > 0 ? s : "no message";

        void ReadEntries()
        {
            var gi = (GuestContractInterface*)iface;
            if (gi->DispatchType == Abi.DispatchVm)
            {
                entries = null;
                vmCall = gi->VmCall == IntPtr.Zero ? null : (VmCallFn)Marshal.GetDelegateForFunctionPointer(gi->VmCall, typeof(VmCallFn));
                vmData = gi->VmLoaderData;
                return;
            }
            vmCall = null;
            entries = new EntryTable<GuestContractFn>(gi->Functions, gi->FunctionCount, Contract);
        }

        void Detach()
        {
            if (iface == IntPtr.Zero) return;
            Rt.DestroyGuestInstance(Rt.CheckOpen(), iface, instance);
            FreeArenas();
            iface = IntPtr.Zero;
            entries = null;
            vmCall = null;
        }

        void Refresh()
        {
            seen = *Rt.RevisionPtr;
            IntPtr host = Rt.CheckOpen();
            ulong now = pinned ? handle : Rt.FindGuest(host, Contract.Id, minimum);
            if (iface != IntPtr.Zero && now == handle && Rt.ResolveGuest(host, now) == iface)
            {
                ReadEntries();
                return;
            }
            Detach();
            gone = Attach();
        }

        void FreeArenas()
        {
            while (arenas.Count > 0) arenas.Pop().Free(Rt);
        }

        internal override void Ready()
        {
            if (closed) throw new ClosedException($"{Contract.Name}: this contract object is closed");
            if (!Rt.IsOpen) throw new ClosedException($"{Contract.Name}: the runtime is closed");
            if (Rt.RevisionPtr != null && *Rt.RevisionPtr != seen) Refresh();
            if (iface == IntPtr.Zero) throw gone ?? new StaleHandleException($"{Contract.Name}: no provider");
        }

        internal override Arena DispatchCall(Function fn, IntPtr args, IntPtr result, IntPtr err)
        {
            if (vmCall == null)
            {
                if (entries == null)
                    throw new FunctionNotAvailableException($"{fn.Contract}.{fn.Name}: the provider's VM entry is empty");
                GuestContractFn entry = entries[fn.Id];
                if (entry == null)
                    throw new FunctionNotAvailableException($"{fn.Contract}.{fn.Name}: the provider's table has no entry {fn.Id}");
                entry(instance, args, result, err);
                return null;
            }
            Arena arena = arenas.Count > 0 ? arenas.Pop() : new Arena(Rt.CheckOpen());
            vmCall(vmData, instance, fn.Id, args, result, (IntPtr)arena.C, err);
            return arena;
        }

        internal override void ReturnArena(Arena arena)
        {
            if (closed) arena.Free(Rt); // not by a callback (Close refuses during a call); a safety net
            else { arena.Rewind(); arenas.Push(arena); }
        }

        /// <summary>For tests: replaces the native entry of a function (returns the old one), as a
        /// misbehaving provider would have it.</summary>
        internal GuestContractFn ReplaceEntry(string name, GuestContractFn fn)
        {
            Ready();
            Function f = Contract.Function(name);
            GuestContractFn old = entries[f.Id];
            entries[f.Id] = fn;
            return old;
        }

        public override void Close()
        {
            if (closed) return;
            CheckNotBusy();
            // destroy_instance runs plugin code, which may call a host contract that closes this
            // object (or the runtime) again: counted like a call, so that is refused.
            Rt.Enter();
            depth++;
            try
            {
                if (Rt.IsOpen) Detach();
                else FreeArenas();
            }
            finally
            {
                depth--;
                Rt.Leave();
            }
            iface = IntPtr.Zero;
            base.Close();
        }
    }

    /// <summary>Calls a registered host contract (native dispatch), as a plugin would.</summary>
    public sealed unsafe class HostContractClient : ContractObject
    {
        readonly HostContractInstance instance;
        readonly EntryTable<HostContractFn> entries;

        internal HostContractClient(Runtime rt, Contract decl, uint minimum) : base(rt, decl)
        {
            IntPtr host = rt.CheckOpen();
            // Host contract versions are packed (major << 16 | minor) for these lookups.
            uint packed = minimum << 16;
            IntPtr iface = rt.ResolveHostIface(host, decl.Id, packed);
            instance = rt.GetHostContract(host, decl.Id, packed);
            if (iface == IntPtr.Zero || instance.Data == IntPtr.Zero)
            {
                rt.ClearLastError();
                throw new HostContractNotFoundException($"{decl.Name}@{decl.Major}: no such host contract is registered");
            }
            var hi = (HostContractInterface*)iface;
            entries = new EntryTable<HostContractFn>(hi->Functions, hi->FunctionCount, decl);
            rt.Track(this);
        }

        internal override void Ready()
        {
            if (closed || !Rt.IsOpen) throw new ClosedException($"{Contract.Name}: closed");
        }

        internal override Arena DispatchCall(Function fn, IntPtr args, IntPtr result, IntPtr err)
        {
            HostContractFn entry = entries[fn.Id];
            if (entry == null) throw new FunctionNotAvailableException($"{fn.Contract}.{fn.Name}: no entry {fn.Id}");
            entry(instance, args, result, err);
            return null;
        }
    }

    /// <summary>The native table of a host contract implemented in C#. Kept alive by the runtime
    /// until it is destroyed (the runtime keeps the interface by address).</summary>
    public sealed unsafe class HostContractImplementation
    {
        public Contract Contract { get; }
        /// <summary>Calls made through the table, and how many of them failed (Panic).</summary>
        public int Calls => calls;
        public int Failures => failures;
        int calls, failures; // counted with Interlocked: plugins may call from several threads

        internal IntPtr Interface { get; private set; }
        readonly Runtime rt;
        IntPtr table;
        readonly Func<object[], object>[] targets;
        readonly List<Delegate> keep = new List<Delegate>();
        // Per calling thread and function: what its last result points into, and its last
        // exception's text. The caller reads them after the call returns, so only its own
        // thread's next call of that function may free them: plugins call from several threads
        // at once, and one shared slot per function let a second thread free a buffer the first
        // caller was still reading. Every thread's storage is freed by Release.
        sealed class Kept
        {
            public readonly Scratch[] Results;
            public readonly IntPtr[] Messages;
            public Kept(int n) { Results = new Scratch[n]; Messages = new IntPtr[n]; }
        }
        readonly ThreadLocal<Kept> kept;
        internal readonly HostContractFn[] Thunks;

        internal HostContractImplementation(Runtime rt, Contract decl, object implementation)
        {
            this.rt = rt;
            Contract = decl;
            if (implementation == null) throw new ArgumentMismatchException($"host contract {decl.Name}: the implementation is null");
            int n = decl.Functions.Count;
            targets = new Func<object[], object>[n];
            var missing = new List<string>();
            for (int k = 0; k < n; k++)
            {
                targets[k] = Target(implementation, decl.Functions[k]);
                if (targets[k] == null) missing.Add(decl.Functions[k].Name);
            }
            if (missing.Count > 0)
                throw new ArgumentMismatchException($"host contract {decl.Name}: the implementation lacks {string.Join(", ", missing)} (needs: {string.Join(", ", decl.Functions.Select(f => f.Signature))})");
            if (implementation is IDictionary dict)
            {
                var extra = dict.Keys.Cast<object>().Select(k => k.ToString()).Where(k => !decl.ByName.ContainsKey(k)).ToList();
                if (extra.Count > 0) throw new ArgumentMismatchException($"host contract {decl.Name} has no function {string.Join(", ", extra)}");
            }
            kept = new ThreadLocal<Kept>(() => new Kept(n), trackAllValues: true);
            Thunks = new HostContractFn[n];
            table = Marshal.AllocHGlobal(8 * Math.Max(1, n));
            for (int k = 0; k < n; k++)
            {
                int index = k;
                Function fn = decl.Functions[k];
                Thunks[k] = (inst, args, output, err) => Thunk(index, fn, args, output, err);
                keep.Add(Thunks[k]);
                ((IntPtr*)table)[k] = Marshal.GetFunctionPointerForDelegate(Thunks[k]);
            }
            HostCreateInstanceFn create = CreateInstance;
            HostDestroyInstanceFn destroy = (self, inst) => { };
            keep.Add(create);
            keep.Add(destroy);
            Interface = Marshal.AllocHGlobal(sizeof(HostContractInterface));
            var i = (HostContractInterface*)Interface;
            *i = default(HostContractInterface);
            i->ContractId = decl.Id;
            i->Version = new AbiVersion { Major = decl.Major, Minor = decl.Minor, Patch = decl.Patch };
            i->Singleton = decl.Singleton ? (byte)1 : (byte)0;
            i->DispatchType = Abi.DispatchNative;
            i->CreateInstance = Marshal.GetFunctionPointerForDelegate(create);
            i->DestroyInstance = Marshal.GetFunctionPointerForDelegate(destroy);
            i->FunctionCount = (uint)n;
            i->Functions = table;
        }

        static void CreateInstance(IntPtr self, IntPtr args, IntPtr outInstance)
        {
            // Never NULL: a NULL instance means "not found" to the caller.
            if (outInstance != IntPtr.Zero) Marshal.WriteIntPtr(outInstance, self);
        }

        /// <summary>The callable of one function: a dictionary entry (Func&lt;object[], object&gt; or
        /// any delegate), or a public method named like the function (or with a capital first letter)
        /// taking its parameters; null when there is none.</summary>
        static Func<object[], object> Target(object implementation, Function fn)
        {
            if (implementation is IDictionary dict)
            {
                object entry = dict.Contains(fn.Name) ? dict[fn.Name] : null;
                if (entry is Func<object[], object> f) return f;
                if (entry is Delegate d) return args => Unwrap(() => d.DynamicInvoke(args));
                return null;
            }
            string capital = char.ToUpperInvariant(fn.Name[0]) + fn.Name.Substring(1);
            MethodInfo method = implementation.GetType().GetMethods(BindingFlags.Public | BindingFlags.Instance)
                .FirstOrDefault(m => (m.Name == fn.Name || m.Name == capital) && m.GetParameters().Length == fn.Params.Count);
            if (method == null) return null;
            ParameterInfo[] parameters = method.GetParameters();
            return args =>
            {
                var converted = new object[args.Length];
                for (int i = 0; i < args.Length; i++)
                {
                    Type want = parameters[i].ParameterType;
                    object v = args[i];
                    converted[i] = v == null || want.IsInstanceOfType(v) ? v
                        : v is IConvertible ? Convert.ChangeType(v, want) : v;
                }
                return Unwrap(() => method.Invoke(implementation, converted));
            };
        }

        static object Unwrap(Func<object> call)
        {
            try { return call(); }
            catch (TargetInvocationException e) when (e.InnerException != null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
                throw;
            }
        }

        void Thunk(int index, Function fn, IntPtr args, IntPtr output, IntPtr errPtr)
        {
            if (errPtr == IntPtr.Zero) return;
            var err = (AbiError*)errPtr;
            Interlocked.Increment(ref calls);
            Kept mine = null;
            // A call in progress, so the runtime refuses to close under it: plugins also call
            // from threads of their own, inside no call made from C#.
            rt.Enter();
            try
            {
                mine = kept.Value;
                var values = new object[fn.Params.Count];
                if (values.Length > 0 && args == IntPtr.Zero)
                    throw new InvalidPointerException($"{fn.Contract}.{fn.Name}: called with NULL arguments");
                for (int i = 0; i < values.Length; i++)
                    values[i] = fn.Params[i].Type.Read((byte*)args + fn.Params[i].Offset);
                object value = targets[index](values);
                if (fn.Result != null)
                {
                    if (output == IntPtr.Zero) throw new InvalidPointerException($"{fn.Contract}.{fn.Name}: called with a NULL result pointer");
                    // Encoded aside first: a value that does not fit leaves the caller's result untouched.
                    var staging = new Scratch();
                    try
                    {
                        IntPtr staged = staging.Alloc(fn.Result.Size);
                        for (int i = 0; i < fn.Result.Size; i++) ((byte*)staged)[i] = 0;
                        fn.Result.Write((byte*)staged, value, staging, $"{fn.Contract}.{fn.Name} result");
                        Buffer.MemoryCopy((void*)staged, (void*)output, fn.Result.Size, fn.Result.Size);
                    }
                    catch { staging.Clear(); throw; }
                    mine.Results[index]?.Clear();
                    mine.Results[index] = staging;
                }
                err->Code = 0;
                err->Message = default(StringView);
            }
            catch (Exception e) // never unwind into C
            {
                Interlocked.Increment(ref failures);
                byte[] text = Encoding.UTF8.GetBytes($"{e.GetType().Name}: {e.Message}");
                err->Code = (uint)ErrorCode.Panic;
                err->Message = default(StringView);
                if (mine == null) return; // no storage for a message (out of memory)
                IntPtr[] messages = mine.Messages;
                if (messages[index] != IntPtr.Zero) Marshal.FreeHGlobal(messages[index]);
                messages[index] = Marshal.AllocHGlobal(Math.Max(1, text.Length));
                Marshal.Copy(text, 0, messages[index], text.Length);
                err->Message = new StringView { Ptr = messages[index], Len = (UIntPtr)(ulong)text.Length };
            }
            finally { rt.Leave(); }
        }

        /// <summary>After the runtime is destroyed: the table and every thread's last results go.</summary>
        internal void Release()
        {
            foreach (Kept k in kept.Values)
            {
                foreach (Scratch s in k.Results) s?.Clear();
                for (int i = 0; i < k.Messages.Length; i++)
                    if (k.Messages[i] != IntPtr.Zero) { Marshal.FreeHGlobal(k.Messages[i]); k.Messages[i] = IntPtr.Zero; }
            }
            kept.Dispose();
            if (table != IntPtr.Zero) { Marshal.FreeHGlobal(table); table = IntPtr.Zero; }
            if (Interface != IntPtr.Zero) { Marshal.FreeHGlobal(Interface); Interface = IntPtr.Zero; }
            keep.Clear();
        }
    }
}
