# SPDX-License-Identifier: MIT
"""Finding libpolyplug.so and the loader modules (libpolyplug-loader-<lang>.so)."""
import ctypes as C
import os

from ._errors import LibraryNotFoundError

SONAME = "libpolyplug.so.0"
LIBRARY_ENV = "POLYPLUG_LIBRARY"
LOADER_DIR_ENV = "POLYPLUG_LOADER_DIR"


def _open(path):
    # RTLD_GLOBAL is not needed: the runtime reaches loaders through function tables only.
    return C.CDLL(path)


def load_runtime_library(library=None):
    """Opens libpolyplug.so: `library` if given, else $POLYPLUG_LIBRARY, else the soname through
    the dynamic loader. The first of these that is set is the only one tried, so a wrong explicit
    choice is never replaced silently by another library."""
    how = ("pass library='/path/to/libpolyplug.so' to Runtime(), or set POLYPLUG_LIBRARY to its "
           f"path, or make {SONAME} findable by the dynamic loader (LD_LIBRARY_PATH, ldconfig)")
    if library is not None:
        source, target = "library= argument", os.fspath(library)
    elif os.environ.get(LIBRARY_ENV):
        source, target = f"${LIBRARY_ENV}", os.environ[LIBRARY_ENV]
    else:
        source, target = "the dynamic loader", SONAME
    try:
        lib = _open(target)
    except OSError as exc:
        raise LibraryNotFoundError(f"cannot open libpolyplug ({target!r}, from {source}): {exc}; "
                                   f"{how}") from None
    for symbol in ("polyplug_runtime_create", "polyplug_runtime_destroy"):
        if not hasattr(lib, symbol):
            raise LibraryNotFoundError(f"{target!r} (from {source}) does not export {symbol}: it "
                                       f"is not libpolyplug.so")
    found = library_path(lib) or target
    if os.sep in found:
        found = os.path.abspath(found)
    return lib, found


class _LinkMap(C.Structure):
    _fields_ = [("l_addr", C.c_void_p), ("l_name", C.c_char_p)]


def library_path(lib):
    """The file a CDLL was loaded from (dlinfo RTLD_DI_LINKMAP), or None."""
    try:
        libc = C.CDLL(None)
        dlinfo = libc.dlinfo
    except (OSError, AttributeError):
        try:
            dlinfo = C.CDLL("libdl.so.2").dlinfo
        except (OSError, AttributeError):
            return None
    dlinfo.argtypes = [C.c_void_p, C.c_int, C.c_void_p]
    dlinfo.restype = C.c_int
    linkmap = C.POINTER(_LinkMap)()
    if dlinfo(lib._handle, 2, C.byref(linkmap)) != 0 or not linkmap:
        return None
    name = linkmap.contents.l_name
    return os.fsdecode(name) if name else None


def loader_candidates(lang, runtime_path):
    """Where libpolyplug-loader-<lang>.so is looked for, in order."""
    name = f"libpolyplug-loader-{lang}.so"
    out = []
    env = os.environ.get(LOADER_DIR_ENV)
    if env:
        out += [os.path.join(env, name), os.path.join(env, lang, name)]
    if runtime_path and os.sep in runtime_path:
        here = os.path.dirname(os.path.realpath(runtime_path))
        out += [os.path.join(here, name), os.path.join(here, "loaders", lang, name),
                os.path.join(here, "polyplug", name)]
    out.append(name)  # the dynamic loader's search
    return out


def load_loader_module(lang, path, runtime_path):
    """(CDLL, path) of a loader module, with its create function checked."""
    symbol = f"polyplug_loader_{lang}_create"
    tried = [os.fspath(path)] if path is not None else loader_candidates(lang, runtime_path)
    failures = []
    for candidate in tried:
        if os.sep in candidate and not os.path.exists(candidate):
            failures.append(f"{candidate}: no such file")
            continue
        try:
            lib = _open(candidate)
        except OSError as exc:
            failures.append(f"{candidate}: {exc}")
            continue
        if not hasattr(lib, symbol):
            failures.append(f"{candidate}: does not export {symbol}")
            continue
        return lib, candidate
    raise LibraryNotFoundError(
        f"no loader module for {lang!r}: tried " + "; ".join(failures) +
        f". Pass path=, set {LOADER_DIR_ENV}, or build it (-D{lang}=enabled)")
