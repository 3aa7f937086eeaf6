// SPDX-License-Identifier: MIT
// Polyplug.Runtime: a runtime of libpolyplug.so, its bundles, and the records its callbacks get.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace Polyplug
{
    /// <summary>One reload phase: Phase is "Preparing", "Reloaded", "Failed" or "Unloading"; Reason is "" unless Failed.</summary>
    public sealed class ReloadEvent
    {
        public string Phase { get; internal set; }
        public ulong BundleId { get; internal set; }
        public string BundleName { get; internal set; }
        public string Reason { get; internal set; }
        public override string ToString() => $"{Phase} {BundleName}" + (Reason.Length > 0 ? ": " + Reason : "");
    }

    /// <summary>A record of the runtime's logger; Level is "error" ... "trace".</summary>
    public sealed class LogRecord
    {
        public string Level { get; internal set; }
        public string Scope { get; internal set; }
        public string Message { get; internal set; }
        public override string ToString() => $"[{Level}] {Scope}: {Message}";
    }

    /// <summary>What LoadDirs did: bundles loaded and skipped, and the diagnostics text of the skipped ones.</summary>
    public sealed class LoadDirsResult
    {
        public uint Loaded { get; internal set; }
        public uint Skipped { get; internal set; }
        public string Diagnostics { get; internal set; }
    }

    /// <summary>A loaded bundle; Contracts are the ids of the guest contracts it provides.</summary>
    public sealed class Bundle
    {
        public ulong Id { get; internal set; }
        public string Name { get; internal set; }
        public uint[] Version { get; internal set; }
        public string Language { get; internal set; }
        public string Loader { get; internal set; }
        public string Path { get; internal set; }
        public ulong[] Contracts { get; internal set; }
        public override string ToString() => $"{Name} {string.Join(".", Version)} ({Loader})";
    }

    /// <summary>How strictly the runtime checks bundles against the ABI (abi.h Compatibility).</summary>
    public enum Compatibility : uint { Strict = 0, Relaxed = 1, Yolo = 2 }

    /// <summary>The runtime's log levels (abi.h).</summary>
    public enum LogLevel : uint { Error = 1, Warn = 2, Info = 3, Debug = 4, Trace = 5 }

    /// <summary>A polyplug runtime over libpolyplug.so. Dispose (or Close) closes every contract
    /// object, then destroys the runtime; anything afterwards throws ClosedException.
    /// OnReload and Log run on the thread the runtime acts on (yours, except for an automatic
    /// watch); an exception they throw is rethrown as CallbackException when the runtime operation
    /// that triggered it returns.</summary>
    public sealed unsafe class Runtime : IDisposable
    {
        IntPtr host;
        readonly DestroyRuntimeFn destroy;
        internal FreeFn Free;
        internal FindGuestFn FindGuest;
        internal FindAllGuestFn FindAllGuest;
        internal ResolveGuestFn ResolveGuest;
        internal GetHostContractFn GetHostContract;
        internal ResolveHostIfaceFn ResolveHostIface;
        internal CreateGuestInstanceFn CreateGuestInstance;
        internal DestroyGuestInstanceFn DestroyGuestInstance;
        ListBundlesFn listBundles;
        PathOpFn loadBundle, reloadBundle;
        PtrOpFn registerHostContract, registerLoader;
        GetLastErrorFn getLastError;
        GetErrorLenFn getErrorLen;
        UnloadFn unloadBundle;
        LogFn log;
        internal ulong* RevisionPtr;

        // Kept as long as the runtime: the runtime calls them until it is destroyed.
        readonly List<object> keepAlive = new List<object>();
        readonly List<HostContractImplementation> hostContracts = new List<HostContractImplementation>();
        readonly List<ContractObject> contracts = new List<ContractObject>();
        readonly Dictionary<string, IntPtr> loaders = new Dictionary<string, IntPtr>();
        readonly Dictionary<string, KeyValuePair<DateTime, Description>> descriptions = new Dictionary<string, KeyValuePair<DateTime, Description>>();
        readonly Action<ReloadEvent> onReload;
        readonly Action<LogRecord> onLog;
        readonly object pendingLock = new object();
        Exception pending;
        HostContractInstance rtInstance;
        HostContractFn[] rtFns;
        // Calls into the runtime in progress, on any thread (contract calls, loads, reloads, the
        // runtime contract, Close itself): Close refuses while it is nonzero, since a callback or
        // host contract run inside such a call would destroy the runtime under it.
        int busy;

        internal void Enter() => Interlocked.Increment(ref busy);
        internal void Leave() => Interlocked.Decrement(ref busy);

        /// <summary>The libpolyplug.so in use (a full path when it was opened by one).</summary>
        public string LibraryPath { get; }

        /// <summary>Creates a runtime. library: libpolyplug.so's path (default: $POLYPLUG_LIBRARY,
        /// else the soname through the dynamic loader); loaders: languages whose loader module to
        /// register ("lua", "js", "python").</summary>
        public Runtime(string library = null, IEnumerable<string> loaders = null, bool hotReload = false,
                       Compatibility compatibility = Compatibility.Strict, LogLevel logLevel = LogLevel.Warn,
                       Action<ReloadEvent> onReload = null, Action<LogRecord> log = null)
        {
            Abi.CheckLayouts();
            if (!Enum.IsDefined(typeof(Compatibility), compatibility))
                throw new ArgumentMismatchException($"compatibility must be Strict, Relaxed or Yolo, not {compatibility}");
            if (!Enum.IsDefined(typeof(LogLevel), logLevel))
                throw new ArgumentMismatchException($"logLevel must be Error ... Trace, not {logLevel}");
            IntPtr lib = Library.OpenRuntime(library, out string found);
            LibraryPath = found;
            this.onReload = onReload;
            onLog = log;
            var config = new RuntimeConfig
            {
                Compatibility = (uint)compatibility,
                HotReloadEnabled = hotReload ? (byte)1 : (byte)0,
                LogMaxLevel = (uint)logLevel,
            };
            if (onReload != null)
            {
                ReloadCallbackFn cb = ReloadTrampoline;
                keepAlive.Add(cb);
                config.OnReload = Marshal.GetFunctionPointerForDelegate(cb);
            }
            if (log != null)
            {
                LogCallbackFn cb = LogTrampoline;
                keepAlive.Add(cb);
                config.Log = Marshal.GetFunctionPointerForDelegate(cb);
            }
            var create = Fn<CreateRuntimeFn>(Library.Symbol(lib, "polyplug_runtime_create"));
            destroy = Fn<DestroyRuntimeFn>(Library.Symbol(lib, "polyplug_runtime_destroy"));
            host = create(ref config);
            if (host == IntPtr.Zero) throw new GenericException("polyplug_runtime_create failed (returned NULL)");
            try
            {
                Free = Entry<FreeFn>(Abi.HostFree);
                FindGuest = Entry<FindGuestFn>(Abi.HostFindGuest);
                FindAllGuest = Entry<FindAllGuestFn>(Abi.HostFindAllGuest);
                ResolveGuest = Entry<ResolveGuestFn>(Abi.HostResolveGuest);
                GetHostContract = Entry<GetHostContractFn>(Abi.HostGetHostContract);
                ResolveHostIface = Entry<ResolveHostIfaceFn>(Abi.HostResolveHostIface);
                listBundles = Entry<ListBundlesFn>(Abi.HostListBundles);
                loadBundle = Entry<PathOpFn>(Abi.HostLoadBundle);
                reloadBundle = Entry<PathOpFn>(Abi.HostReloadBundle);
                registerHostContract = Entry<PtrOpFn>(Abi.HostRegisterHostContract);
                registerLoader = Entry<PtrOpFn>(Abi.HostRegisterLoader);
                getLastError = Entry<GetLastErrorFn>(Abi.HostGetLastError);
                getErrorLen = Entry<GetErrorLenFn>(Abi.HostGetErrorLen);
                unloadBundle = Entry<UnloadFn>(Abi.HostUnloadBundle);
                this.log = Entry<LogFn>(Abi.HostLog);
                CreateGuestInstance = Entry<CreateGuestInstanceFn>(Abi.HostCreateGuestInstance);
                DestroyGuestInstance = Entry<DestroyGuestInstanceFn>(Abi.HostDestroyGuestInstance);
                IntPtr rev = Entry<RevisionCounterFn>(Abi.HostRevisionCounter)(host);
                RevisionPtr = (ulong*)rev;
                RuntimeContract();
                foreach (string lang in loaders ?? Enumerable.Empty<string>()) AddLoader(lang);
            }
            catch
            {
                Close();
                throw;
            }
        }

        static T Fn<T>(IntPtr p) where T : class => (T)(object)Marshal.GetDelegateForFunctionPointer(p, typeof(T));

        T Entry<T>(int offset) where T : class
        {
            IntPtr p = Marshal.ReadIntPtr(host, offset);
            if (p == IntPtr.Zero) throw new GenericException($"the runtime's HostApi has no entry at offset {offset}");
            return Fn<T>(p);
        }

        void RuntimeContract()
        {
            IntPtr iface = ResolveHostIface(host, Abi.RuntimeContractId, 0);
            HostContractInstance instance = GetHostContract(host, Abi.RuntimeContractId, 0);
            if (iface == IntPtr.Zero || instance.Data == IntPtr.Zero)
                throw new HostContractNotFoundException("the runtime has no host.polyplug.Runtime@1");
            var i = (HostContractInterface*)iface;
            rtInstance = instance;
            rtFns = new HostContractFn[i->FunctionCount];
            for (int k = 0; k < rtFns.Length; k++)
            {
                IntPtr fn = ((IntPtr*)i->Functions)[k];
                rtFns[k] = fn == IntPtr.Zero ? null : Fn<HostContractFn>(fn);
            }
        }

        // ---- callbacks: nothing may unwind into C ----
        void Failed(Exception e)
        {
            lock (pendingLock) if (pending == null) pending = e;
        }

        // The callbacks count as calls in progress themselves: an automatic watch runs them on the
        // runtime's thread, inside no call made from C#.
        void ReloadTrampoline(IntPtr user, IntPtr phasePtr)
        {
            Enter();
            try
            {
                var p = (ReloadPhaseRecord*)phasePtr;
                onReload(new ReloadEvent
                {
                    Phase = p->PhaseType < Abi.PhaseNames.Length ? Abi.PhaseNames[p->PhaseType] : $"Unknown({p->PhaseType})",
                    BundleId = p->BundleId,
                    BundleName = Memory.Text(p->BundleName),
                    Reason = Memory.Text(p->Reason),
                });
            }
            catch (Exception e) { Failed(e); }
            finally { Leave(); }
        }

        void LogTrampoline(IntPtr user, uint level, StringView scope, StringView message)
        {
            Enter();
            try
            {
                onLog(new LogRecord
                {
                    Level = level < Abi.LogLevelNames.Length ? Abi.LogLevelNames[level] : level.ToString(),
                    Scope = Memory.Text(scope),
                    Message = Memory.Text(message),
                });
            }
            catch (Exception e) { Failed(e); }
            finally { Leave(); }
        }

        void PendingCallbackError()
        {
            Exception e;
            lock (pendingLock) { e = pending; pending = null; }
            if (e != null) throw new CallbackException($"a C# callback threw {e.GetType().Name}: {e.Message}", e);
        }

        // ---- plumbing ----
        internal IntPtr CheckOpen()
        {
            if (host == IntPtr.Zero) throw new ClosedException("the runtime is closed");
            return host;
        }

        internal bool IsOpen => host != IntPtr.Zero;

        internal string TakeLastError()
        {
            ulong n = (ulong)getErrorLen(host);
            if (n == 0) return "";
            var buf = new byte[n];
            ulong got = (ulong)getLastError(host, buf, (UIntPtr)n);
            return Encoding.UTF8.GetString(buf, 0, (int)Math.Min(got, n));
        }

        internal void ClearLastError()
        {
            if ((ulong)getErrorLen(host) != 0) getLastError(host, null, UIntPtr.Zero);
        }

        PolyplugException Failure(AbiError err, string what)
        {
            string message = Memory.Text(err.Message);
            string last = TakeLastError();
            if (last.Length > 0 && !message.Contains(last)) message = message.Length > 0 ? $"{message}: {last}" : last;
            return PolyplugException.For(err.Code, $"{what}: {(message.Length > 0 ? message : "failed (no message)")}");
        }

        void Finish(AbiError err, string what)
        {
            if (err.Code != 0)
            {
                var failure = Failure(err, what);
                PendingCallbackError();
                throw failure;
            }
            PendingCallbackError();
        }

        void RtCall(uint fnId, void* args, void* output, string what)
        {
            CheckOpen();
            if (fnId >= rtFns.Length || rtFns[fnId] == null)
                throw new FunctionNotAvailableException($"{what}: this libpolyplug.so's host.polyplug.Runtime@1 has no function {fnId} (it has {rtFns.Length}); the runtime is older than this library");
            ClearLastError();
            AbiError err;
            Enter();
            try { rtFns[fnId](rtInstance, (IntPtr)args, (IntPtr)output, (IntPtr)(&err)); }
            finally { Leave(); }
            Finish(err, what);
        }

        internal void FreeHost(IntPtr ptr, ulong size, ulong align)
        {
            if (ptr != IntPtr.Zero) Free(host, ptr, (UIntPtr)size, (UIntPtr)align);
        }

        /// <summary>The address of the HostApi table (for P/Invoke code of your own).</summary>
        public IntPtr HostApi => CheckOpen();

        /// <summary>The runtime's revision counter: it changes on every load, unload and reload.</summary>
        public ulong Revision { get { CheckOpen(); return RevisionPtr == null ? 0 : *RevisionPtr; } }

        public bool IsClosed => host == IntPtr.Zero;

        // ---- lifetime ----
        /// <summary>Closes every contract object, then destroys the runtime. Idempotent. Throws
        /// BusyException, changing nothing, while a call into the runtime is in progress (from a
        /// log or onReload callback or a host contract implemented in C# run inside it, or on
        /// another thread): close it after the call returns.</summary>
        public void Close()
        {
            if (host == IntPtr.Zero) return;
            if (Volatile.Read(ref busy) > 0)
                throw new BusyException("close(): the runtime is busy: a call into it is in progress (this is a callback or host contract run inside it, or another thread's call); close it after the call returns");
            // Counted too: instances' destructors and the runtime's teardown run plugin code and
            // callbacks, and a Close from there must not start a second teardown.
            Enter();
            try
            {
                foreach (ContractObject c in contracts.ToList()) c.Close();
                contracts.Clear();
                destroy(host);
            }
            finally { Leave(); }
            host = IntPtr.Zero;
            // Only now may the callbacks and host contract tables go.
            foreach (var hc in hostContracts) hc.Release();
            hostContracts.Clear();
            keepAlive.Clear();
        }

        public void Dispose() => Close();

        // Contract objects are held until closed (by you, or by Close here), so that an object
        // dropped without Dispose still has its instance destroyed before the runtime goes.
        internal void Track(ContractObject c) => contracts.Add(c);
        internal void Untrack(ContractObject c) => contracts.Remove(c);

        // ---- loaders ----
        /// <summary>Loads libpolyplug-loader-&lt;lang&gt;.so (path, else $POLYPLUG_LOADER_DIR, else beside
        /// libpolyplug.so, else the dynamic loader) and registers its loader; returns where it was found.</summary>
        public string AddLoader(string lang, string path = null)
        {
            CheckOpen();
            if (string.IsNullOrEmpty(lang) || !lang.All(ch => char.IsLetterOrDigit(ch) || ch == '_') || char.IsDigit(lang[0]))
                throw new ArgumentMismatchException($"loader language must be a name like 'lua', not '{lang}'");
            if (loaders.ContainsKey(lang)) throw new DuplicateProviderException($"the '{lang}' loader is already registered");
            IntPtr lib = Library.OpenLoader(lang, path, LibraryPath, out IntPtr createPtr, out string where);
            IntPtr loader = Fn<LoaderCreateFn>(createPtr)();
            if (loader == IntPtr.Zero) throw new GenericException($"polyplug_loader_{lang}_create in {where} returned NULL");
            ClearLastError();
            var err = new AbiError();
            Enter();
            try { registerLoader(host, loader, ref err); }
            finally { Leave(); }
            Finish(err, $"registering the '{lang}' loader from {where}");
            loaders[lang] = lib; // never unloaded while the process lives
            return where;
        }

        // ---- bundles ----
        ulong[] BundleIds()
        {
            IntPtr h = CheckOpen();
            AbiArray arr = listBundles(h);
            try { return ReadIds(arr.Items, (ulong)arr.Len, "list_bundles"); }
            finally { FreeHost(arr.Items, (ulong)arr.Len * 8, (ulong)arr.Align); }
        }

        static ulong[] ReadIds(IntPtr items, ulong n, string what)
        {
            if (n == 0) return new ulong[0];
            if (n > (ulong)Memory.MaxRead / 8) throw new InvalidPointerException($"{what}: {n} ids are beyond the read limit");
            Memory.CheckRange(items, n * 8, what);
            var ids = new ulong[n];
            for (ulong i = 0; i < n; i++) ids[i] = ((ulong*)items)[i];
            return ids;
        }

        /// <summary>The Bundle of a loaded bundle by id.</summary>
        public Bundle Bundle(ulong id)
        {
            ulong args = id;
            BundleInfoOut info;
            RtCall(Abi.FnBundleInfo, &args, &info, $"bundle_info({id})");
            try
            {
                Func<AbiBuffer, string> Buf = b => Encoding.UTF8.GetString(Memory.Read(b.Ptr, (ulong)b.Len, "bundle_info"));
                return new Bundle
                {
                    Id = info.Id,
                    Name = Buf(info.Name),
                    Version = new[] { info.Version.Major, info.Version.Minor, info.Version.Patch },
                    Language = info.Language < Abi.LanguageNames.Length ? Abi.LanguageNames[info.Language] : info.Language.ToString(),
                    Loader = Buf(info.Loader),
                    Path = Buf(info.Path),
                    Contracts = ReadIds(info.Contracts.Items, (ulong)info.Contracts.Len, "bundle_info contracts"),
                };
            }
            finally
            {
                FreeHost(info.Name.Ptr, (ulong)info.Name.Cap, 1);
                FreeHost(info.Path.Ptr, (ulong)info.Path.Cap, 1);
                FreeHost(info.Loader.Ptr, (ulong)info.Loader.Cap, 1);
                FreeHost(info.Contracts.Items, (ulong)info.Contracts.Len * 8, (ulong)info.Contracts.Align);
            }
        }

        /// <summary>The Bundle of a loaded bundle by name (NotFoundException when none is loaded).</summary>
        public Bundle Bundle(string name) => Bundle(IdOf(name));

        /// <summary>Every loaded bundle.</summary>
        public List<Bundle> Bundles() => BundleIds().Select(id => Bundle(id)).ToList();

        ulong IdOf(string name)
        {
            if (name == null) throw new ArgumentMismatchException("a bundle name may not be null");
            ulong id = Abi.BundleId(name);
            if (!BundleIds().Contains(id))
            {
                string loaded = string.Join(", ", Bundles().Select(b => b.Name));
                throw new NotFoundException($"no bundle named '{name}' is loaded (loaded: {(loaded.Length > 0 ? loaded : "none")})");
            }
            return id;
        }

        static byte[] PathBytes(string path)
        {
            if (path == null) throw new ArgumentMismatchException("a path may not be null");
            return Encoding.UTF8.GetBytes(path);
        }

        /// <summary>Loads the bundle in directory `path`; returns its Bundle.</summary>
        public Bundle Load(string path)
        {
            var before = new HashSet<ulong>(BundleIds());
            byte[] data = PathBytes(path);
            ClearLastError();
            var err = new AbiError();
            Enter();
            try { loadBundle(host, data, (UIntPtr)(ulong)data.Length, ref err); }
            finally { Leave(); }
            Finish(err, $"Load(\"{path}\")");
            var fresh = BundleIds().Where(b => !before.Contains(b)).ToList();
            if (fresh.Count != 1) throw new GenericException($"Load(\"{path}\") succeeded but {fresh.Count} new bundles appeared");
            return Bundle(fresh[0]);
        }

        /// <summary>Reloads a bundle from its directory: a path (containing '/', or an existing
        /// directory) or a loaded bundle's name. Needs hotReload. The old version keeps serving
        /// when the new one fails (the exception says why; OnReload sees Failed).</summary>
        public void Reload(string pathOrName)
        {
            CheckOpen();
            string path = pathOrName != null && (pathOrName.Contains("/") || Directory.Exists(pathOrName))
                ? pathOrName : Bundle(pathOrName).Path;
            byte[] data = PathBytes(path);
            ClearLastError();
            var err = new AbiError();
            Enter();
            try { reloadBundle(host, data, (UIntPtr)(ulong)data.Length, ref err); }
            finally { Leave(); }
            Finish(err, $"Reload(\"{path}\")");
        }

        public void Reload(Bundle bundle) => Reload(bundle.Path);

        /// <summary>Unloads one bundle by id.</summary>
        public void Unload(ulong id)
        {
            IntPtr h = CheckOpen();
            ClearLastError();
            var err = new AbiError();
            Enter();
            try { unloadBundle(h, id, ref err); }
            finally { Leave(); }
            Finish(err, $"Unload({id})");
        }

        public void Unload(string name) => Unload(IdOf(name));
        public void Unload(Bundle bundle) => Unload(bundle.Id);

        /// <summary>Unloads a bundle and, first, every bundle depending on it; returns how many.</summary>
        public uint UnloadCascade(string name)
        {
            ulong args = IdOf(name);
            uint output = 0;
            RtCall(Abi.FnUnloadCascade, &args, &output, $"UnloadCascade(\"{name}\")");
            return output;
        }

        static IntPtr DirectoryViews(string[] dirs, Scratch scratch)
        {
            IntPtr views = scratch.Alloc(16L * Math.Max(1, dirs.Length));
            for (int i = 0; i < dirs.Length; i++)
            {
                byte[] d = PathBytes(dirs[i]);
                var v = (StringView*)views + i;
                v->Ptr = scratch.Copy(d);
                v->Len = (UIntPtr)(ulong)d.Length;
            }
            return views;
        }

        /// <summary>Discovers and loads every bundle under these plugin directories, providers first (all or nothing).</summary>
        public LoadDirsResult LoadDirs(params string[] dirs)
        {
            var scratch = new Scratch();
            try
            {
                var args = new LoadDirsArgs { Dirs = DirectoryViews(dirs, scratch), Count = (UIntPtr)(ulong)dirs.Length };
                LoadDirsOut output;
                RtCall(Abi.FnLoadDirs, &args, &output, $"LoadDirs({string.Join(", ", dirs)})");
                AbiBuffer d = output.Diagnostics;
                try
                {
                    return new LoadDirsResult
                    {
                        Loaded = output.Loaded,
                        Skipped = output.Skipped,
                        Diagnostics = Encoding.UTF8.GetString(Memory.Read(d.Ptr, (ulong)d.Len, "load_dirs diagnostics")),
                    };
                }
                finally { FreeHost(d.Ptr, (ulong)d.Cap, 1); }
            }
            finally { scratch.Clear(); }
        }

        /// <summary>What happens to the code of bundles unloaded from now on (runtime_contract.h).</summary>
        public void SetUnmapPolicy(bool never = false, uint graceMs = 0)
        {
            var args = new UnmapPolicyArgs { Policy = never ? 1u : 0u, GraceMs = graceMs };
            RtCall(Abi.FnSetUnmapPolicy, &args, null, "SetUnmapPolicy");
        }

        /// <summary>Watches plugin directories (needs hotReload). manual: nothing happens until
        /// PollWatch(); otherwise a runtime thread acts (and the callbacks run on it).</summary>
        public void Watch(string[] dirs, uint debounceMs = 250, bool manual = true)
        {
            var scratch = new Scratch();
            try
            {
                var args = new WatchArgs { Dirs = DirectoryViews(dirs, scratch), Count = (UIntPtr)(ulong)dirs.Length, DebounceMs = debounceMs, Flags = manual ? Abi.WatchManual : 0 };
                RtCall(Abi.FnWatch, &args, null, "Watch");
            }
            finally { scratch.Clear(); }
        }

        public void Unwatch() => RtCall(Abi.FnUnwatch, null, null, "Unwatch");

        /// <summary>Acts on watched changes now; returns how many bundles were reloaded or loaded.</summary>
        public uint PollWatch()
        {
            uint output = 0;
            RtCall(Abi.FnPollWatch, null, &output, "PollWatch");
            return output;
        }

        // ---- contracts ----
        /// <summary>The runtime's description of a contract file ("polyplug-contracts 1" text).</summary>
        public string DescribeContractFileText(string path)
        {
            byte[] data = PathBytes(path);
            AbiBuffer output = default(AbiBuffer);
            fixed (byte* p = data)
            {
                var args = new StringView { Ptr = (IntPtr)p, Len = (UIntPtr)(ulong)data.Length };
                try { RtCall(Abi.FnDescribeContractFile, &args, &output, $"contract file {path}"); }
                catch (PolyplugException e) when (!(e is FunctionNotAvailableException) && !(e is ClosedException) && !(e is CallbackException))
                {
                    throw new ContractFileException(e.Message, e.Code);
                }
            }
            try { return Encoding.UTF8.GetString(Memory.Read(output.Ptr, (ulong)output.Len, "the contract description")); }
            finally { FreeHost(output.Ptr, (ulong)output.Cap, 1); }
        }

        /// <summary>The parsed description of a contract file (cached by path and modification time).</summary>
        public Description DescribeContractFile(string path)
        {
            CheckOpen();
            string key = Path.GetFullPath(path);
            DateTime stamp = File.Exists(key) ? File.GetLastWriteTimeUtc(key) : DateTime.MinValue;
            if (stamp != DateTime.MinValue && descriptions.TryGetValue(key, out var cached) && cached.Key == stamp)
                return cached.Value;
            var description = new Description(DescribeContractFileText(path), path);
            descriptions[key] = new KeyValuePair<DateTime, Description>(stamp, description);
            return description;
        }

        Contract Decl(string name, string api, string side)
        {
            if (name == null) throw new ArgumentMismatchException("a contract is named by a string, not null");
            if (api == null) throw new ArgumentMismatchException($"{name}: pass api: \"path/to/file.api.toml\", the contract file that declares it (its layouts come from there)");
            int at = name.IndexOf('@');
            return DescribeContractFile(api).Contract(at < 0 ? name : name.Substring(0, at), side);
        }

        /// <summary>A GuestContract on the first provider of `name` (declared in contract file
        /// `api`) whose major version is at least minVersion (default: the file's major). It follows
        /// reloads and moves to whichever provider is registered when that one goes away.</summary>
        public GuestContract Find(string name, string api, uint? minVersion = null)
        {
            Contract decl = Decl(name, api, "guest");
            return new GuestContract(this, decl, null, minVersion ?? decl.Major);
        }

        /// <summary>HostApi.find_guest_contract: the handle of the first provider of a contract id
        /// whose major version is at least minVersion, null when there is none. (Find wraps this
        /// with an instance and the contract file's types.)</summary>
        public GuestContractHandle? FindGuestContract(ulong contractId, uint minVersion)
        {
            ulong h = FindGuest(CheckOpen(), contractId, minVersion);
            if ((uint)h == Abi.NoIndex)
            {
                ClearLastError();
                return null;
            }
            return new GuestContractHandle { Index = (uint)h, Generation = (uint)(h >> 32) };
        }

        /// <summary>One GuestContract per provider of `name`, each pinned to its provider.</summary>
        public List<GuestContract> FindAll(string name, string api, uint? minVersion = null)
        {
            Contract decl = Decl(name, api, "guest");
            uint minimum = minVersion ?? decl.Major;
            IntPtr h = CheckOpen();
            AbiArray arr = FindAllGuest(h, decl.Id, minimum);
            ulong[] handles;
            try { handles = ReadIds(arr.Items, (ulong)arr.Len, "find_all_guest_contracts"); }
            finally { FreeHost(arr.Items, (ulong)arr.Len * 8, (ulong)arr.Align); }
            return handles.Select(handle => new GuestContract(this, decl, handle, minimum)).ToList();
        }

        /// <summary>Implements host contract `name` (declared in contract file `api`) with an object
        /// whose public methods are named after the functions (exactly, or with a capital first
        /// letter), or a dictionary of name to Func&lt;object[], object&gt;. Registered for the
        /// runtime's life; an exception becomes AbiError Panic with "ExceptionType: message".</summary>
        public HostContractImplementation RegisterHostContract(string name, string api, object implementation)
        {
            Contract decl = Decl(name, api, "host");
            var registration = new HostContractImplementation(this, decl, implementation);
            ClearLastError();
            var err = new AbiError();
            Enter();
            try { registerHostContract(host, registration.Interface, ref err); }
            finally { Leave(); }
            hostContracts.Add(registration); // kept even on failure: the runtime may have seen the pointer
            Finish(err, $"RegisterHostContract({decl.Name})");
            return registration;
        }

        /// <summary>A client of a registered host contract (yours, another host's or the runtime's).</summary>
        public HostContractClient HostContract(string name, string api, uint? minVersion = null)
        {
            Contract decl = Decl(name, api, "host");
            return new HostContractClient(this, decl, minVersion ?? decl.Major);
        }

        /// <summary>A record through the runtime's logger.</summary>
        public void Log(LogLevel level, string scope, string message)
        {
            IntPtr h = CheckOpen();
            byte[] s = Encoding.UTF8.GetBytes(scope ?? ""), m = Encoding.UTF8.GetBytes(message ?? "");
            fixed (byte* sp = s, mp = m)
            {
                Enter();
                try
                {
                    log(h, (uint)level, new StringView { Ptr = (IntPtr)sp, Len = (UIntPtr)(ulong)s.Length },
                        new StringView { Ptr = (IntPtr)mp, Len = (UIntPtr)(ulong)m.Length });
                }
                finally { Leave(); }
            }
        }
    }
}
