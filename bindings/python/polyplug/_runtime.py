# SPDX-License-Identifier: MIT
"""polyplug.Runtime, guest contract objects and Python host contracts."""
import collections
import ctypes as C
import os
import sys
import threading
import weakref

from . import _abi
from . import _errors as E
from ._library import load_loader_module, load_runtime_library
from ._types import Description, _read

ReloadEvent = collections.namedtuple("ReloadEvent", "phase bundle_id bundle_name reason")
ReloadEvent.__doc__ = ("One reload phase: phase is 'Preparing', 'Reloaded', 'Failed' or "
                       "'Unloading' (or 'Unknown(n)'); reason is '' unless Failed.")
LogRecord = collections.namedtuple("LogRecord", "level scope message")
LoadDirsResult = collections.namedtuple("LoadDirsResult", "loaded skipped diagnostics")
Bundle = collections.namedtuple("Bundle", "id name version language loader path contracts")
Bundle.__doc__ = "A loaded bundle: version is (major, minor, patch); contracts are guest ids."

_byref = C.byref
_OVERFLOW_HEADER = C.sizeof(_abi.ArenaOverflowBlock)  # a rewound block's `used`


def _text(view):
    """A StringView's text (messages, names: invalid UTF-8 replaced). A view that cannot be read
    (bad pointer or length) gives a note saying so instead of raising: it is read while
    reporting something else (an error, a log record), which should still be reported."""
    try:
        return _read(view.ptr, view.len).decode("utf-8", "replace")
    except E.InvalidPointerError as exc:
        return f"<unreadable text: {exc.message}>"


def _directory_views(dirs):
    """One directory or several as (the encoded paths, a C array of StringViews over them); the
    caller keeps both alive for the call."""
    if isinstance(dirs, (str, bytes, os.PathLike)):
        dirs = [dirs]
    data = [_path_bytes(d) for d in dirs]
    views = (_abi.StringView * max(1, len(data)))()
    for i, d in enumerate(data):
        views[i] = _abi.StringView(C.cast(d, C.c_void_p).value, len(d))
    return data, views


def _path_bytes(path):
    return os.fsencode(os.fspath(path))


class _Callbacks:
    """What the C callbacks reach: no reference back to the Runtime, so it can be collected."""

    def __init__(self, on_reload, log):
        self.on_reload, self.log = on_reload, log
        self.pending = None
        self.lock = threading.Lock()

    def failed(self, exc):
        with self.lock:
            if self.pending is None:
                self.pending = exc

    def reload_trampoline(self, _user, phase_ptr):
        try:
            p = phase_ptr.contents
            self.on_reload(ReloadEvent(_abi.PHASE_NAMES.get(p.phase_type,
                                                            f"Unknown({p.phase_type})"),
                                       p.bundle_id, _text(p.bundle_name), _text(p.reason)))
        except BaseException as exc:  # never unwind into C
            self.failed(exc)

    def log_trampoline(self, _user, level, scope, message):
        try:
            self.log(LogRecord(_abi.LOG_LEVEL_NAMES.get(level, str(level)), _text(scope),
                               _text(message)))
        except BaseException as exc:
            self.failed(exc)


class Runtime:
    """A polyplug runtime over libpolyplug.so.

    Runtime(library=None, *, loaders=(), hot_reload=False, compatibility="strict",
            log_level="warn", on_reload=None, log=None)

    on_reload(event) receives a ReloadEvent; log(record) a LogRecord (level name, scope,
    message). Both run on the thread the runtime acts on (yours, except for an automatic watch
    thread). An exception they raise is re-raised as CallbackError when the runtime operation
    that triggered it returns.
    """

    def __init__(self, library=None, *, loaders=(), hot_reload=False, compatibility="strict",
                 log_level="warn", on_reload=None, log=None):
        self._host = None
        self._lib, self.library_path = load_runtime_library(library)
        if compatibility not in _abi.COMPATIBILITY:
            raise E.ArgumentError(f"compatibility must be one of {', '.join(_abi.COMPATIBILITY)}"
                                  f", not {compatibility!r}")
        if log_level not in _abi.LOG_LEVELS:
            raise E.ArgumentError(f"log_level must be one of {', '.join(_abi.LOG_LEVELS)}, not "
                                  f"{log_level!r}")
        for name, cb in (("on_reload", on_reload), ("log", log)):
            if cb is not None and not callable(cb):
                raise E.ArgumentError(f"{name} must be callable or None")
        self._callbacks = _Callbacks(on_reload, log)
        config = _abi.RuntimeConfig()
        config.compatibility = _abi.COMPATIBILITY[compatibility]
        config.hot_reload_enabled = bool(hot_reload)
        config.log_max_level = _abi.LOG_LEVELS[log_level]
        # Kept as long as the runtime: the runtime calls them until it is destroyed.
        self._c_callbacks = []
        if on_reload is not None:
            cb = _abi.ReloadCallbackFn(self._callbacks.reload_trampoline)
            self._c_callbacks.append(cb)
            config.on_reload = cb
        if log is not None:
            cb = _abi.LogCallbackFn(self._callbacks.log_trampoline)
            self._c_callbacks.append(cb)
            config.log = cb
        create = self._lib.polyplug_runtime_create
        create.argtypes, create.restype = [C.POINTER(_abi.RuntimeConfig)], C.c_void_p
        self._destroy = self._lib.polyplug_runtime_destroy
        self._destroy.argtypes, self._destroy.restype = [C.c_void_p], None
        host = create(_byref(config))
        if not host:
            raise E.GenericError("polyplug_runtime_create failed (returned NULL)")
        self._host = host
        api = _abi.HostApi.from_address(host)
        self._fn = {}
        for name, proto in _abi.HOST_API_PROTOTYPES.items():
            addr = getattr(api, name)
            if not addr:
                self._destroy(host)
                self._host = None
                raise E.GenericError(f"the runtime's HostApi has no {name}")
            self._fn[name] = proto(addr)
        rev = self._fn["revision_counter"](host)
        self._revision = C.c_uint64.from_address(rev) if rev else None
        self._contracts = weakref.WeakSet()
        self._host_contracts = []  # registrations: must outlive the runtime
        self._loader_libs = {}
        self._descriptions = {}
        self._runtime_contract()
        try:
            for lang in loaders:
                self.add_loader(lang)
        except BaseException:
            self.close()
            raise

    # ---- plumbing --------------------------------------------------------------------------------
    def _check_open(self):
        if self._host is None:
            raise E.ClosedError("the runtime is closed")
        return self._host

    def _take_last_error(self):
        host = self._host
        n = self._fn["get_error_len"](host)
        if not n:
            return ""
        buf = C.create_string_buffer(n)
        got = self._fn["get_last_error"](host, buf, n)
        return buf.raw[:got].decode("utf-8", "replace")

    def _clear_last_error(self):
        if self._fn["get_error_len"](self._host):
            self._fn["get_last_error"](self._host, None, 0)

    def _failure(self, err, what):
        message = _text(err.message)
        last = self._take_last_error()
        if last and last not in message:
            message = f"{message}: {last}" if message else last
        return E.error_for(err.code, f"{what}: {message or 'failed (no message)'}")

    def _pending_callback_error(self):
        cb = self._callbacks
        if cb.pending is not None:
            with cb.lock:
                exc, cb.pending = cb.pending, None
            raise E.CallbackError(f"a Python callback raised {type(exc).__name__}: {exc}") \
                from exc

    def _runtime_contract(self):
        host = self._host
        iface = self._fn["resolve_host_contract_interface"](host, _abi.RUNTIME_CONTRACT_ID, 0)
        instance = self._fn["get_host_contract"](host, _abi.RUNTIME_CONTRACT_ID, 0)
        if not iface or not instance.data:
            raise E.HostContractNotFoundError("the runtime has no host.polyplug.Runtime@1")
        i = _abi.HostContractInterface.from_address(iface)
        table = i.dispatch.native
        self._rt_instance = instance
        self._rt_fns = [_abi.HostContractFn(table.functions[k]) if table.functions[k] else None
                        for k in range(table.function_count)]

    def _rt_call(self, fn_id, args, out, what):
        self._check_open()
        if fn_id >= len(self._rt_fns) or self._rt_fns[fn_id] is None:
            raise E.FunctionNotAvailableError(
                f"{what}: this libpolyplug.so's host.polyplug.Runtime@1 has no function {fn_id} "
                f"(it has {len(self._rt_fns)}); the runtime is older than this package")
        self._clear_last_error()
        err = _abi.AbiError()
        self._rt_fns[fn_id](self._rt_instance, None if args is None else _byref(args),
                            None if out is None else _byref(out), _byref(err))
        if err.code:
            failure = self._failure(err, what)
            self._pending_callback_error()
            raise failure
        self._pending_callback_error()

    def _host_call(self, name, what, *args):
        host = self._check_open()
        self._clear_last_error()
        err = _abi.AbiError()
        self._fn[name](host, *args, _byref(err))
        if err.code:
            failure = self._failure(err, what)
            self._pending_callback_error()
            raise failure
        self._pending_callback_error()

    def _free(self, ptr, size, align):
        if ptr:
            self._fn["free"](self._host, ptr, size, align)

    @property
    def host_api(self):
        """The address of the HostApi table (for ctypes code of your own)."""
        return self._check_open()

    @property
    def revision(self):
        """The runtime's revision counter: it changes on every load, unload and reload."""
        self._check_open()
        return self._revision.value if self._revision is not None else 0

    # ---- lifetime --------------------------------------------------------------------------------
    def close(self):
        """Closes every contract object, then destroys the runtime. Idempotent."""
        if self._host is None:
            return
        for contract in list(self._contracts):
            contract.close()
        host, self._host = self._host, None
        self._destroy(host)
        # Only now may the callbacks and host contract tables go.
        self._c_callbacks = []
        self._host_contracts = []

    def __enter__(self):
        self._check_open()
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    @property
    def closed(self):
        return self._host is None

    # ---- loaders ---------------------------------------------------------------------------------
    def add_loader(self, lang, path=None):
        """Loads libpolyplug-loader-<lang>.so (path=, else $POLYPLUG_LOADER_DIR, else beside
        libpolyplug.so, else the dynamic loader) and registers its loader."""
        host = self._check_open()
        if not isinstance(lang, str) or not lang.isidentifier():
            raise E.ArgumentError(f"loader language must be a name like 'lua', not {lang!r}")
        if lang in self._loader_libs:
            raise E.DuplicateProviderError(f"the {lang!r} loader is already registered")
        if lang == "python":
            _check_python_loader_possible()
        lib, where = load_loader_module(lang, path, self.library_path)
        create = getattr(lib, f"polyplug_loader_{lang}_create")
        create.argtypes, create.restype = [], C.c_void_p
        loader = create()
        if not loader:
            raise E.GenericError(f"polyplug_loader_{lang}_create in {where} returned NULL")
        self._host_call("register_loader", f"registering the {lang!r} loader from {where}",
                        loader)
        self._loader_libs[lang] = lib  # never unloaded while the process lives
        return where

    # ---- bundles ---------------------------------------------------------------------------------
    def _bundle_ids(self):
        host = self._check_open()
        arr = self._fn["list_bundles"](host)
        try:
            return list((C.c_uint64 * arr.len).from_address(arr.items)) if arr.len else []
        finally:
            self._free(arr.items, arr.len * 8, arr.align)

    def bundle(self, which):
        """The Bundle of a loaded bundle, by id (int), name (str) or Bundle."""
        bid = self._bundle_id(which)
        args, info = _abi.U64Args(bid), _abi.BundleInfo()
        self._rt_call(_abi.FN_BUNDLE_INFO, args, info, f"bundle_info({which!r})")
        try:
            def buf(b):
                return _read(b.ptr, b.len, "bundle_info").decode("utf-8", "surrogateescape")
            c = info.contracts
            contracts = list((C.c_uint64 * c.len).from_address(c.items)) if c.len else []
            v = info.version
            return Bundle(info.id, buf(info.name), (v.major, v.minor, v.patch),
                          _abi.LANGUAGE_NAMES.get(info.language, str(info.language)),
                          buf(info.loader), buf(info.path), contracts)
        finally:
            self._free(info.name.ptr, info.name.cap, 1)
            self._free(info.path.ptr, info.path.cap, 1)
            self._free(info.loader.ptr, info.loader.cap, 1)
            self._free(info.contracts.items, info.contracts.len * 8, info.contracts.align)

    def bundles(self):
        """Every loaded bundle (list_bundles, then bundle_info of each)."""
        return [self.bundle(bid) for bid in self._bundle_ids()]

    def _bundle_id(self, which):
        self._check_open()
        if isinstance(which, Bundle):
            return which.id
        if isinstance(which, bool) or not isinstance(which, (int, str)):
            raise E.ArgumentError(f"a bundle is named by id (int), name (str) or Bundle, not "
                                  f"{type(which).__name__}")
        if isinstance(which, int):
            if not 0 <= which < 1 << 64:
                raise E.OutOfRangeError(f"bundle id {which} is not a u64")
            return which
        bid = _abi.bundle_id(which)
        if bid not in self._bundle_ids():
            loaded = ", ".join(b.name for b in self.bundles()) or "none"
            raise E.NotFoundError(f"no bundle named {which!r} is loaded (loaded: {loaded})")
        return bid

    def load(self, path):
        """Loads the bundle in directory `path`; returns its Bundle."""
        before = set(self._bundle_ids())
        data = _path_bytes(path)
        self._host_call("load_bundle", f"load({os.fspath(path)!r})", data, len(data))
        new = [b for b in self._bundle_ids() if b not in before]
        if len(new) != 1:
            raise E.GenericError(f"load({os.fspath(path)!r}) succeeded but {len(new)} new "
                                 f"bundles appeared")
        return self.bundle(new[0])

    def reload(self, which):
        """Reloads a bundle from its directory: a path, or a loaded bundle's name, id or Bundle.
        The old version keeps serving when the new one fails (Error raised, phase Failed)."""
        if isinstance(which, (str, os.PathLike)) and (os.sep in os.fspath(which)
                                                      or os.path.isdir(which)):
            path = os.fspath(which)
        else:
            path = self.bundle(which).path
        data = _path_bytes(path)
        self._host_call("reload_bundle", f"reload({path!r})", data, len(data))

    def unload(self, which):
        """Unloads one bundle (by name, id or Bundle)."""
        bid = self._bundle_id(which)
        self._host_call("unload_bundle", f"unload({which!r})", bid)

    def unload_cascade(self, which):
        """Unloads a bundle and, first, every bundle depending on it; returns how many."""
        bid = self._bundle_id(which)
        out = C.c_uint32()
        self._rt_call(_abi.FN_UNLOAD_CASCADE, _abi.U64Args(bid), out,
                      f"unload_cascade({which!r})")
        return out.value

    def load_dirs(self, dirs):
        """Discovers and loads every bundle under these plugin directories, providers first (all
        or nothing). Returns LoadDirsResult(loaded, skipped, diagnostics text)."""
        data, views = _directory_views(dirs)
        args = _abi.LoadDirsArgs(views, len(data))
        out = _abi.LoadDirsResult()
        self._rt_call(_abi.FN_LOAD_DIRS, args, out, f"load_dirs({[os.fsdecode(d) for d in data]})")
        d = out.diagnostics
        try:
            text = _read(d.ptr, d.len, "load_dirs diagnostics").decode("utf-8", "replace")
        finally:
            self._free(d.ptr, d.cap, 1)
        return LoadDirsResult(out.loaded, out.skipped, text)

    def set_unmap_policy(self, never=False, grace_ms=0):
        """What happens to the code of bundles unloaded from now on (runtime_contract.h)."""
        self._rt_call(_abi.FN_SET_UNMAP_POLICY, _abi.UnmapPolicyArgs(1 if never else 0,
                                                                     grace_ms), None,
                      "set_unmap_policy")

    def watch(self, dirs, debounce_ms=250, manual=True):
        """Watches plugin directories (needs hot_reload=True). manual=True: nothing happens
        until poll_watch(); manual=False: a runtime thread acts (callbacks run on it)."""
        data, views = _directory_views(dirs)
        args = _abi.WatchArgs(views, len(data), debounce_ms, _abi.WATCH_MANUAL if manual else 0)
        self._rt_call(_abi.FN_WATCH, args, None, "watch")

    def unwatch(self):
        self._rt_call(_abi.FN_UNWATCH, None, None, "unwatch")

    def poll_watch(self):
        """Acts on watched changes now; returns how many bundles were reloaded or loaded."""
        out = C.c_uint32()
        self._rt_call(_abi.FN_POLL_WATCH, None, out, "poll_watch")
        return out.value

    # ---- contracts -------------------------------------------------------------------------------
    def describe_contract_file_text(self, path):
        """The runtime's description of a contract file ("polyplug-contracts 1" text)."""
        data = _path_bytes(path)
        args = _abi.DescribeContractFileArgs(_abi.StringView(C.cast(data, C.c_void_p).value,
                                                             len(data)))
        out = _abi.Buffer()
        try:
            self._rt_call(_abi.FN_DESCRIBE_CONTRACT_FILE, args, out,
                          f"contract file {os.fsdecode(data)}")
        except E.Error as exc:
            if isinstance(exc, E.FunctionNotAvailableError):
                raise
            raise E.ContractFileError(exc.message, exc.code) from None
        try:
            return _read(out.ptr, out.len, "the contract description").decode("utf-8")
        finally:
            self._free(out.ptr, out.cap, 1)

    def describe_contract_file(self, path):
        """The parsed description of a contract file (cached by path and modification time)."""
        self._check_open()
        key = os.path.realpath(os.fspath(path))
        try:
            stamp = os.stat(key).st_mtime_ns
        except OSError:
            stamp = None
        cached = self._descriptions.get(key)
        if cached is not None and cached[0] == stamp and stamp is not None:
            return cached[1]
        description = Description(self.describe_contract_file_text(path), os.fspath(path))
        self._descriptions[key] = (stamp, description)
        return description

    def _contract_decl(self, name, api, side):
        if not isinstance(name, str):
            raise E.ArgumentError(f"a contract is named by a string, not {type(name).__name__}")
        if api is None:
            raise E.ArgumentError(f"{name}: pass api='path/to/file.api.toml', the contract file "
                                  f"that declares it (its layouts come from there)")
        base = name.split("@", 1)[0]
        return self.describe_contract_file(api).contract(base, side)

    def find(self, name, api, min_version=None):
        """A GuestContract on the first provider of `name` (declared in contract file `api`)
        whose major version is at least min_version (default: the file's major). It follows
        reloads and moves to whichever provider is registered when that one goes away."""
        decl = self._contract_decl(name, api, "guest")
        contract = _contract_class(decl)(self, decl, None, _min_version(decl, min_version))
        return contract

    def find_all(self, name, api, min_version=None):
        """One GuestContract per provider of `name`, each pinned to its provider."""
        decl = self._contract_decl(name, api, "guest")
        minimum = _min_version(decl, min_version)
        host = self._check_open()
        arr = self._fn["find_all_guest_contracts"](host, decl.id, minimum)
        try:
            handles = [_abi.GuestContractHandle(h.index, h.generation) for h in
                       (_abi.GuestContractHandle * arr.len).from_address(arr.items)] \
                if arr.len else []
        finally:
            self._free(arr.items, arr.len * 8, arr.align)
        cls = _contract_class(decl)
        return [cls(self, decl, h, minimum) for h in handles]

    def register_host_contract(self, name, api, implementation):
        """Implements host contract `name` (declared in contract file `api`) with a Python object
        (methods named after the functions) or a dict of callables. Registered for the
        runtime's life. Plugins that call it get the results marshalled back; an exception
        becomes AbiError Panic with the exception's text."""
        decl = self._contract_decl(name, api, "host")
        registration = HostContractImplementation(self, decl, implementation)
        self._host_call("register_host_contract", f"register_host_contract({decl.name})",
                        C.addressof(registration.iface))
        self._host_contracts.append(registration)
        return registration

    def host_contract(self, name, api, min_version=None):
        """A client of a registered host contract (yours, another host's or the runtime's)."""
        decl = self._contract_decl(name, api, "host")
        return _contract_class(decl, HostContractClient)(self, decl, None,
                                                         _min_version(decl, min_version))

    def log(self, level, scope, message):
        """A record through the runtime's logger."""
        host = self._check_open()
        if level not in _abi.LOG_LEVELS:
            raise E.ArgumentError(f"level must be one of {', '.join(_abi.LOG_LEVELS)}")
        s, m = scope.encode(), message.encode()
        self._fn["log"](host, _abi.LOG_LEVELS[level], _abi.StringView(C.cast(s, C.c_void_p).value,
                                                                      len(s)),
                        _abi.StringView(C.cast(m, C.c_void_p).value, len(m)))


def _min_version(decl, min_version):
    if min_version is None:
        return decl.major
    if isinstance(min_version, bool) or not isinstance(min_version, int) or \
            not 0 <= min_version < 1 << 32:
        raise E.ArgumentError(f"min_version must be a u32 major version, not {min_version!r}")
    return min_version


def _check_python_loader_possible():
    """The Python loader embeds libpython and runs bundles in sub-interpreters of the process's
    interpreter. Inside a Python host that works only when this interpreter is itself the
    shared libpython the loader links (not a statically linked python executable)."""
    import sysconfig
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        raise E.GenericError(
            "the Python loader cannot run inside this Python host: this interpreter is linked "
            "statically, so the loader would start a second, separate CPython in the process; "
            "use a python built with --enable-shared (libpython3.x.so), or load Python bundles "
            "from a C or C++ host")
    if sys.version_info[:2] != (3, 11):
        raise E.GenericError(
            f"the Python loader embeds CPython 3.11; this host runs Python "
            f"{sys.version_info[0]}.{sys.version_info[1]}, whose libpython would clash with it")


# ---- contract objects ----------------------------------------------------------------------------
_class_cache = {}


def _contract_class(decl, base=None):
    """A subclass of GuestContract (or HostContractClient) with one method per function, so that
    help(obj) lists the functions with their signatures."""
    base = base or GuestContract
    key = (id(decl), base)
    cached = _class_cache.get(key)
    if cached is not None and cached[0] is decl:
        return cached[1]
    methods = {fn.id: _method(fn, base) for fn in decl.functions}
    namespace = {"__doc__": decl.doc(), "__slots__": (), "_methods": methods}
    for fn in decl.functions:
        namespace[fn.name] = methods[fn.id]
    cls = type(decl.name.replace(".", "_"), (base,), namespace)
    _class_cache[key] = (decl, cls)
    return cls


def _method(fn, base):
    """The method calling `fn`: the base class's call path, specialised for `fn` once."""
    method = base._call_path(fn)
    method.__name__ = fn.name
    method.__qualname__ = f"{fn.contract}.{fn.name}"
    method.__doc__ = fn.signature
    return method


def _bind(fn, args, kwargs):
    params = fn.params
    if not kwargs:
        if len(args) == len(params):
            return args
    elif len(args) <= len(params):
        values = list(args)
        for p in params[len(args):]:
            if p.name not in kwargs:
                break
            values.append(kwargs[p.name])
        if len(values) == len(params) and len(kwargs) == len(params) - len(args):
            return values
        unknown = [k for k in kwargs if k not in fn.param_names]
        if unknown:
            raise E.ArgumentError(f"{fn.contract}.{fn.signature}: no parameter named "
                                  f"{', '.join(unknown)}")
        twice = [k for k in kwargs if k in fn.param_names[:len(args)]]
        if twice:
            raise E.ArgumentError(f"{fn.contract}.{fn.signature}: {', '.join(twice)} given "
                                  f"twice")
    raise E.ArgumentError(f"{fn.contract}.{fn.signature} takes {len(params)} argument(s), got "
                          f"{len(args) + len(kwargs)}")


class _Caller:
    """What GuestContract and HostContractClient share: argument packing and results."""
    __slots__ = ("_rt", "_decl", "_min", "_keep_ref", "__weakref__", "types", "_pools")

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        decl = object.__getattribute__(self, "_decl")
        raise E.UnknownFunctionError(f"contract {decl.name} has no function {name!r}; it has "
                                     + ", ".join(f.name for f in decl.functions))

    def call(self, name, *args, **kwargs):
        """Calls a function by name (for names that clash with attributes of this object)."""
        fn = self._decl.by_name.get(name)
        if fn is None:
            raise E.UnknownFunctionError(f"contract {self._decl.name} has no function {name!r};"
                                         f" it has "
                                         + ", ".join(f.name for f in self._decl.functions))
        return self._methods[fn.id](self, *args, **kwargs)

    @staticmethod
    def _call_path(fn):
        """The method that calls `fn`, with what it needs of `fn` bound once: one frame (plus the
        class's _ready and _dispatch), one foreign call, and the per-object storage of _new_slot
        reused. The result storage and AbiError are zeroed before every call, so a provider that
        reports success without writing its result gives zeros, never a previous call's result,
        and a failure without a message never shows an old one."""
        fn_id, params, pack, read, release = (fn.id, len(fn.params), fn.pack, fn.read_result,
                                              fn.release)
        zero = bytes(_slot_size(fn))

        def call(self, *args, **kwargs):
            self._ready()
            if kwargs or len(args) != params:
                args = _bind(fn, args, kwargs)
            # The call owns its storage until it returns (list.pop and append are atomic under
            # the GIL): a re-entrant or concurrent call of the same function gets its own.
            pool = self._pools[fn_id]
            try:
                slot = pool.pop()
            except IndexError:
                slot = _new_slot(fn)
            writer, out, err, args_at, out_at, err_at, keep, cleared = slot
            arena = None
            try:
                pack(writer, args, keep)
                cleared[:] = zero
                arena = self._dispatch(fn, args_at, out_at, err_at)
                if err.code:
                    raise _call_failure(fn, err)
                # Read before the arena is rewound: a VM result points into it.
                return None if read is None else read(out)
            finally:
                if release is not None:
                    release(writer)  # the argument objects the writer holds
                if keep:
                    keep.clear()
                pool.append(slot)
                if arena is not None:
                    self._return_arena(arena)
        return call

    @property
    def functions(self):
        """The signatures of the contract's functions."""
        return [f.signature for f in self._decl.functions]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()



def _slot_size(fn):
    """The bytes of a slot's zeroed part: the result storage (8-aligned), then the AbiError."""
    result = 0 if fn.result is None else -(-C.sizeof(fn.result.ctype) // 8) * 8
    return result + C.sizeof(_abi.AbiError)


def _new_slot(fn):
    """The storage of one call of `fn`: argument writer, result, AbiError, their addresses (calls
    pass plain ints: cheaper through ctypes than byref objects), a keep list and a memoryview
    over one bytearray backing result and AbiError (zeroed before each call). A contract
    object keeps one per function in a pool and reuses it; a call that finds the pool empty
    (re-entered from a callback, or another thread's call in flight) gets a new one."""
    writer = fn.args_writer() if fn.args_writer is not None else None
    backing = bytearray(_slot_size(fn))
    err_offset = len(backing) - C.sizeof(_abi.AbiError)
    out = fn.result.ctype.from_buffer(backing) if fn.result is not None else None
    err = _abi.AbiError.from_buffer(backing, err_offset)
    return (writer, out, err,
            None if writer is None else C.addressof(writer),
            None if out is None else C.addressof(out), C.addressof(err), [],
            memoryview(backing))


def _call_failure(fn, err):
    """The error a contract call reported in its AbiError."""
    return E.error_for(err.code, f"{fn.contract}.{fn.name}: {_text(err.message) or 'failed'}")


class _Arena:
    """A call arena for VM guests (retain and rewind, spec 5.4): a first block of its own, and
    overflow blocks from the runtime's allocator kept between calls, freed by free()."""
    __slots__ = ("storage", "c", "address")

    SIZE = 4096

    def __init__(self, host):
        self.storage = (C.c_uint8 * self.SIZE)()
        base = C.addressof(self.storage)
        self.c = _abi.CallArena(base, base + self.SIZE, base, host, None)
        self.address = C.addressof(self.c)

    def rewind(self):
        """Rewinds the arena between calls, keeping its overflow blocks."""
        arena = self.c
        block = arena.first_overflow
        if not block and arena.cur == arena.base:
            return
        while block:
            header = _abi.ArenaOverflowBlock.from_address(block)
            header.used = _OVERFLOW_HEADER
            block = header.next
        arena.cur = arena.base

    def free(self, rt):
        """Teardown: frees the overflow blocks."""
        arena = self.c
        block = arena.first_overflow
        if block:
            free = rt._fn["free"]
            host = rt._host
            while block:
                header = _abi.ArenaOverflowBlock.from_address(block)
                following = header.next
                free(host, block, header.capacity, 8)
                block = following
            arena.first_overflow = None
        arena.cur = arena.base


class GuestContract(_Caller):
    """One instance of a guest contract's provider; call its functions as methods.
    close() (or the with block's end) destroys the instance."""
    __slots__ = ("_handle", "_pinned", "_iface", "_instance", "_entries", "_vm", "_seen",
                 "_arenas", "_gone", "_closed")

    def __init__(self, rt, decl, handle, minimum):
        rt._check_open()
        self._rt, self._decl, self._min = rt, decl, minimum
        self.types = decl.types
        self._pinned = handle is not None
        self._handle = handle
        self._iface = None
        self._entries = None
        self._vm = None
        self._closed = False
        self._gone = None
        self._pools = {fn.id: [] for fn in decl.functions}
        self._arenas = []  # idle arenas (VM dispatch), pooled like the call storage
        self._seen = rt._revision.value if rt._revision is not None else 0
        failure = self._attach()
        if failure is not None:
            raise failure
        rt._contracts.add(self)

    def __repr__(self):
        state = "closed" if self._closed else ("detached" if self._iface is None else "attached")
        return f"<polyplug contract {self._decl.name}@{self._decl.major} {state}>"

    @property
    def dispatch(self):
        """'native' or 'vm' (the current provider's dispatch), None when detached."""
        if self._iface is None:
            return None
        return "vm" if self._vm is not None else "native"

    def _attach(self):
        rt, decl = self._rt, self._decl
        fn = rt._fn
        host = rt._host
        if not self._pinned:
            self._handle = fn["find_guest_contract"](host, decl.id, self._min)
            if self._handle.index == 0xFFFFFFFF:
                return E.NotFoundError(f"{decl.name}@{self._min}: no provider is loaded")
        iface = fn["resolve_guest_contract"](host, self._handle)
        if not iface:
            rt._clear_last_error()
            return E.StaleHandleError(f"{decl.name}@{decl.major}: the provider is gone "
                                      f"(unloaded)")
        i = _abi.GuestContractInterface.from_address(iface)
        if i.dispatch_type not in (_abi.DISPATCH_NATIVE, _abi.DISPATCH_VM):
            return E.FunctionNotAvailableError(f"{decl.name}: unknown dispatch type "
                                               f"{i.dispatch_type}")
        rt._clear_last_error()
        instance = _abi.GuestContractInstance()
        fn["create_guest_instance"](host, iface, None, _byref(instance))
        if not instance.data and not instance.contract_id:
            return E.GenericError(f"{decl.name}: create_guest_instance failed: "
                                  f"{rt._take_last_error() or 'no message'}")
        self._iface, self._instance = iface, instance
        self._read_entries()
        return None

    def _read_entries(self):
        i = _abi.GuestContractInterface.from_address(self._iface)
        if i.dispatch_type == _abi.DISPATCH_VM:
            self._vm = (_abi.VmCallFn(i.dispatch.vm.call), _abi.VmLoaderData(
                i.dispatch.vm.loader_data.data)) if i.dispatch.vm.call else None
            self._entries = None  # with _vm None too: calls raise FunctionNotAvailableError
        else:
            self._vm = None
            table = i.dispatch.native
            self._entries = [_abi.GuestContractFn(table.functions[k])
                             if table.functions[k] else None
                             for k in range(table.function_count)]

    def _detach(self):
        if self._iface is None:
            return
        rt = self._rt
        rt._fn["destroy_guest_instance"](rt._host, self._iface, self._instance)
        self._free_arena()
        self._iface, self._entries, self._vm = None, None, None

    def _refresh(self):
        rt = self._rt
        self._seen = rt._revision.value
        decl = self._decl
        if not self._pinned:
            now = rt._fn["find_guest_contract"](rt._host, decl.id, self._min)
        else:
            now = self._handle
        if self._iface is not None and now.index == self._handle.index and \
                now.generation == self._handle.generation and \
                rt._fn["resolve_guest_contract"](rt._host, now) == self._iface:
            self._read_entries()
            return
        self._detach()
        self._gone = self._attach()

    def _free_arena(self):
        """Teardown: frees the idle arenas' overflow blocks."""
        arenas, self._arenas = self._arenas, []
        for arena in arenas:
            arena.free(self._rt)

    def _ready(self):
        """Before a call: open, refreshed after a reload, attached (raises otherwise)."""
        if self._closed:
            raise E.ClosedError(f"{self._decl.name}: this contract object is closed")
        rt = self._rt
        if rt._host is None:
            raise E.ClosedError(f"{self._decl.name}: the runtime is closed")
        revision = rt._revision
        if revision is not None and revision.value != self._seen:
            self._refresh()
        if self._iface is None:
            raise self._gone or E.StaleHandleError(f"{self._decl.name}: no provider")

    def _dispatch(self, fn, args_at, out_at, err_at):
        """The foreign call of `fn`; returns the arena lent to a VM call (else None)."""
        vm = self._vm
        if vm is None:
            entries = self._entries
            if entries is None:
                raise E.FunctionNotAvailableError(f"{fn.contract}.{fn.name}: the provider's VM "
                                                  f"entry is empty")
            entry = entries[fn.id] if fn.id < len(entries) else None
            if entry is None:
                raise E.FunctionNotAvailableError(
                    f"{fn.contract}.{fn.name}: the provider's table has no entry {fn.id}")
            entry(self._instance, args_at, out_at, err_at)
            return None
        try:
            arena = self._arenas.pop()
        except IndexError:
            arena = _Arena(self._rt._host)
        vm[0](vm[1], self._instance, fn.id, args_at, out_at, arena.address, err_at)
        return arena

    def _return_arena(self, arena):
        if self._closed:  # closed by a callback during the call
            if self._rt._host is not None:
                arena.free(self._rt)
        else:
            arena.rewind()
            self._arenas.append(arena)

    def close(self):
        """Destroys the instance and frees the arena. Idempotent."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        if self._rt._host is not None:
            self._detach()
        self._iface = None

    def __del__(self):
        # A contract object dropped without close(): destroy its instance now rather than
        # leaving it to the runtime's unload (which warns about live instances).
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


class HostContractClient(_Caller):
    """Calls a registered host contract (native dispatch), as a plugin would."""
    __slots__ = ("_iface", "_instance", "_entries", "_closed")

    def __init__(self, rt, decl, _handle, minimum):
        host = rt._check_open()
        self._rt, self._decl, self._min = rt, decl, minimum
        self.types = decl.types
        self._closed = False
        # Host contract versions are packed (major << 16 | minor) for these lookups.
        packed_version = minimum << 16
        iface = rt._fn["resolve_host_contract_interface"](host, decl.id, packed_version)
        instance = rt._fn["get_host_contract"](host, decl.id, packed_version)
        if not iface or not instance.data:
            rt._clear_last_error()
            raise E.HostContractNotFoundError(f"{decl.name}@{decl.major}: no such host contract "
                                              f"is registered")
        table = _abi.HostContractInterface.from_address(iface).dispatch.native
        self._iface, self._instance = iface, instance
        self._entries = [_abi.HostContractCallFn(table.functions[k]) if table.functions[k]
                         else None for k in range(table.function_count)]
        self._pools = {fn.id: [] for fn in decl.functions}
        rt._contracts.add(self)

    def _ready(self):
        if self._closed or self._rt._host is None:
            raise E.ClosedError(f"{self._decl.name}: closed")

    def _dispatch(self, fn, args_at, out_at, err_at):
        entries = self._entries
        entry = entries[fn.id] if fn.id < len(entries) else None
        if entry is None:
            raise E.FunctionNotAvailableError(f"{fn.contract}.{fn.name}: no entry {fn.id}")
        entry(self._instance, args_at, out_at, err_at)
        return None

    _return_arena = None  # never called: _dispatch lends no arena

    def close(self):
        self._closed = True


# ---- host contracts implemented in Python -------------------------------------------------------
class HostContractImplementation:
    """The native table of a host contract implemented by Python callables. Kept alive by the
    runtime until it is destroyed (the runtime stores the interface by reference)."""

    def __init__(self, rt, decl, implementation):
        self.decl = decl
        callables = []
        missing = []
        for fn in decl.functions:
            if isinstance(implementation, dict):
                target = implementation.get(fn.name)
            else:
                target = getattr(implementation, fn.name, None)
            if not callable(target):
                missing.append(fn.name)
            callables.append(target)
        if missing:
            raise E.ArgumentError(f"host contract {decl.name}: the implementation lacks "
                                  f"{', '.join(missing)} (needs: "
                                  + ", ".join(f.signature for f in decl.functions) + ")")
        if isinstance(implementation, dict):
            extra = [k for k in implementation if k not in decl.by_name]
            if extra:
                raise E.ArgumentError(f"host contract {decl.name} has no function "
                                      f"{', '.join(map(str, extra))}")
        self.implementation = implementation
        # (calling thread, fn id) -> what the last result points into, and the last exception's
        # text: valid until that thread's next call of the function. Per thread, because a
        # plugin may call from several at once and its caller reads the memory after the thunk
        # has returned (a shared slot let one thread's call free another's result). Keyed by
        # thread id, not threading.local: a plugin's own thread gets a fresh Python thread
        # state for every callback, and its thread-local values would go with it before the
        # caller had read them.
        self._results = {}
        self._messages = {}
        self._thunks = [_abi.HostContractFn(self._thunk(fn, target))
                        for fn, target in zip(decl.functions, callables)]
        self._table = (C.c_void_p * max(1, len(self._thunks)))(
            *[C.cast(t, C.c_void_p).value for t in self._thunks])
        self._create = _abi.HostCreateInstanceFn(self._create_instance)
        self._destroy = _abi.HostDestroyInstanceFn(lambda _self, _instance: None)
        iface = self.iface = _abi.HostContractInterface()
        iface.contract_id = decl.id
        iface.contract_version = _abi.Version(*decl.version)
        iface.singleton = decl.singleton
        iface.dispatch_type = _abi.DISPATCH_NATIVE
        iface.create_instance = C.cast(self._create, C.c_void_p).value
        iface.destroy_instance = C.cast(self._destroy, C.c_void_p).value
        iface.dispatch.native.function_count = len(self._thunks)
        iface.dispatch.native.functions = C.cast(self._table, C.POINTER(C.c_void_p))
        self.calls = 0
        self.failures = 0

    def _create_instance(self, self_iface, _args, out_instance):
        # Never NULL: a NULL instance means "not found" to the caller.
        out_instance[0].data = self_iface

    def _thunk(self, fn, target):
        params = fn.params
        args_ctype = fn.args_ctype
        result = fn.result
        label = f"{fn.contract}.{fn.name}"

        def thunk(_instance, args, out, err_ptr):
            if not err_ptr:
                return
            err = err_ptr[0]
            self.calls += 1
            try:
                if args_ctype is not None:
                    if not args:
                        raise E.InvalidPointerError(f"{label}: called with NULL arguments")
                    packed = args_ctype.from_address(args)
                    values = [p.type.decode(getattr(packed, p.name)) for p in params]
                else:
                    values = ()
                value = target(*values)
                if result is not None:
                    if not out:
                        raise E.InvalidPointerError(f"{label}: called with a NULL result pointer")
                    keep = []
                    encoded = result.encode(value, keep, f"{label} result")
                    if result.simple:
                        result.ctype.from_address(out).value = encoded
                    else:
                        C.memmove(out, C.addressof(encoded), C.sizeof(result.ctype))
                        keep.append(encoded)
                    self._results[(threading.get_ident(), fn.id)] = keep
                err.code = 0
                err.message = _abi.StringView(None, 0)
            except BaseException as exc:  # never unwind into C
                self.failures += 1
                text = f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")
                self._messages[(threading.get_ident(), fn.id)] = text
                err.code = E.PANIC
                err.message = _abi.StringView(C.cast(text, C.c_void_p).value, len(text))
        return thunk
