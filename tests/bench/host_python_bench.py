#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ns/call of the Python host package against raw ctypes calls (not a pass/fail test).

    PYTHONPATH=bindings/python python3 tests/bench/host_python_bench.py --build build [--vm lua]

Rows: a raw ctypes call of HostApi.get_error_len (the baseline), one find_guest_contract through
ctypes, a raw ctypes call of the native add function pointer (argument struct prepared once),
and calc.add(2, 40) through the package on the C bundle and on one VM bundle. Each figure is
the best of 5 runs of time.perf_counter_ns over N iterations, with its ratio to the baseline.

    python3 tests/bench/host_python_bench.py --matrix --build build-bench [--floor LIB] [-n N]

prints this host's row of the host x guest matrix instead: one "matrix Python <cell> <ns>" line
per cell, the floor (greet through a plain ctypes call of libpolyplug_matrix_floor.so) first, then
the parity contract's greet("world") in each guest language (one runtime per guest).
"""
import argparse
import ctypes as C
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
import polyplug  # noqa: E402
from polyplug import _abi  # noqa: E402

API = os.path.join(ROOT, "examples", "contracts", "example_calc.api.toml")
PARITY_API = os.path.join(ROOT, "tests", "parity", "parity.api.toml")
MATRIX_GUESTS = ["c", "cpp", "rust", "lua", "python", "js"]
MATRIX_VMS = ("lua", "python", "js")


def best_ns(fn, n, runs=5):
    best = None
    for _ in range(runs):
        start = time.perf_counter_ns()
        fn(n)
        elapsed = (time.perf_counter_ns() - start) / n
        best = elapsed if best is None else min(best, elapsed)
    return best


def calibrate(fn, target_ns=150e6):
    """The iteration count for one run of ~0.15 s: doubles n until a run takes 20 ms or more."""
    n = 16
    while True:
        start = time.perf_counter_ns()
        fn(n)
        elapsed = time.perf_counter_ns() - start
        if elapsed >= 20e6:
            return max(1, int(n * target_ns / elapsed))
        n *= 2


def matrix_cell(label, fn, n):
    ns = best_ns(fn, n or calibrate(fn))
    print(f"matrix Python {label} {ns:.1f}", flush=True)


def matrix(opts):
    """This host's row of the host x guest matrix (the spec: one greet round trip per cell)."""
    build = opts.build
    name, expected = "world", "hello, world!"
    failed = []
    floor_path = opts.floor or os.path.join(build, "tests", "bench", "matrix",
                                            "libpolyplug_matrix_floor.so")
    # The floor: the same round trip through a plain ctypes call, argument encoded from a str and
    # the result decoded back into one on every iteration, as the package does for a StringView.
    cap = 256
    out = C.create_string_buffer(cap)
    try:
        greet = C.CDLL(floor_path).polyplug_matrix_greet
        greet.argtypes = [C.c_char_p, C.c_size_t, C.c_char_p, C.c_size_t]
        greet.restype = C.c_size_t

        def floor(n):
            for _ in range(n):
                arg = name.encode()
                got = C.string_at(out, greet(arg, len(arg), out, cap)).decode()
            return got

        got = floor(1)
        if got != expected:
            raise RuntimeError(f"greet({name!r}) returned {got!r}, not {expected!r}")
        matrix_cell("floor", floor, opts.n)
    except Exception as e:  # printed, the guest cells still run, and the exit code says so
        print(f"error: Python host, floor ({floor_path}): {type(e).__name__}: {e}", file=sys.stderr)
        failed.append("floor")

    lib = os.path.join(build, "shim", "libpolyplug.so")
    for guest in MATRIX_GUESTS:
        bundle = os.path.join(build, "tests", "parity", guest)
        if not os.path.isfile(os.path.join(bundle, "manifest.toml")):
            print(f"matrix Python {guest} skip not built: {bundle}/manifest.toml is missing")
            continue
        loaders = []
        if guest in MATRIX_VMS:
            module = os.path.join(build, "shim", "loaders", guest,
                                  f"libpolyplug-loader-{guest}.so")
            if not os.path.isfile(module):
                print(f"matrix Python {guest} skip loader not built: {module} is missing")
                continue
            if guest == "python":
                # The package refuses (with its reason) an interpreter the Python loader cannot
                # share; that is a property of this host, not an error.
                try:
                    polyplug._runtime._check_python_loader_possible()
                except polyplug.Error as e:
                    print(f"matrix Python {guest} skip {e.message}")
                    continue
            loaders = [guest]
        try:
            # One runtime per guest: all six provide test.parity.Kit.
            with polyplug.Runtime(lib, loaders=loaders) as rt:
                rt.load(bundle)
                kit = rt.find("test.parity.Kit", api=PARITY_API)

                def cell(n, g=kit.greet):
                    for _ in range(n):
                        got = g(name)
                    return got

                got = cell(1)
                if got != expected:
                    raise RuntimeError(f"greet({name!r}) returned {got!r}, not {expected!r}")
                matrix_cell(guest, cell, opts.n)
        except Exception as e:  # printed, the other cells still run, and the exit code says so
            print(f"error: Python host, guest {guest}: {type(e).__name__}: {e}", file=sys.stderr)
            failed.append(guest)
    if failed:
        raise SystemExit(f"matrix Python: failed cells: {', '.join(failed)}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--vm", default="lua", help="lua, js or python ('' for none)")
    parser.add_argument("-n", type=int, default=None,
                        help="iterations per run (default 200000; --matrix calibrates ~0.15 s)")
    parser.add_argument("--matrix", action="store_true", help="this host's row of the matrix")
    parser.add_argument("--floor", help="the floor library (--matrix; default under --build)")
    opts = parser.parse_args()
    if opts.matrix:
        return matrix(opts)
    if opts.n is None:
        opts.n = 200000
    lib = os.path.join(opts.build, "shim", "libpolyplug.so")
    vm_dirs = {"lua": "lua_calc", "js": "js_calc", "python": "python_calc"}
    rows = []
    with polyplug.Runtime(lib, loaders=[opts.vm] if opts.vm else []) as rt:
        rt.load(os.path.join(opts.build, "examples", "bundles", "c_calc"))
        host = rt.host_api
        get_error_len = rt._fn["get_error_len"]
        find = rt._fn["find_guest_contract"]
        cid = polyplug.guest_contract_id("example.calc", 1)
        calc = rt.find("example.calc", api=API)
        add = calc._entries[0]
        fn = calc._decl.by_name["add"]
        args = fn.args_ctype(2, 40)
        out, err = C.c_int32(), _abi.AbiError()
        instance = calc._instance
        args_ref, out_ref, err_ref = C.byref(args), C.byref(out), C.byref(err)

        def baseline(n):
            for _ in range(n):
                get_error_len(host)

        def lookup(n):
            for _ in range(n):
                find(host, cid, 1)

        def raw_add(n):
            for _ in range(n):
                add(instance, args_ref, out_ref, err_ref)

        def package_add(n, c=calc):
            a = c.add
            for _ in range(n):
                a(2, 40)

        base = best_ns(baseline, opts.n)
        rows.append(("ctypes HostApi.get_error_len (baseline)", base))
        rows.append(("ctypes find_guest_contract", best_ns(lookup, opts.n)))
        # The floor of that lookup: a C function with find_guest_contract's signature declared
        # with the same ctypes prototype, doing no work (tests/bench/matrix/matrix_floor.c).
        floor_lib = opts.floor or os.path.join(opts.build, "tests", "bench", "matrix",
                                               "libpolyplug_matrix_floor.so")
        if os.path.isfile(floor_lib):
            shape = type(find)(("polyplug_matrix_find_shape", C.CDLL(floor_lib)))

            def lookup_shape(n):
                for _ in range(n):
                    shape(host, cid, 1)

            rows.append(("ctypes call of find's signature, no work", best_ns(lookup_shape, opts.n)))
        else:
            print(f"(no row for find's signature: {floor_lib} is not built; scripts/bench.sh "
                  "builds it)")
        rows.append(("ctypes native add fn pointer", best_ns(raw_add, opts.n)))
        rows.append(("calc.add(2, 40) native (package)", best_ns(package_add, opts.n)))
        if opts.vm:
            rt.load(os.path.join(opts.build, "examples", "scripts", vm_dirs[opts.vm]))
            vm = [c for c in rt.find_all("example.calc", api=API) if c.dispatch == "vm"][0]
            rows.append((f"calc.add(2, 40) {opts.vm} VM (package)",
                         best_ns(lambda n: package_add(n, vm), max(1, opts.n // 4))))
    print(f"{'what':44} {'ns/call':>9} {'ratio':>7}")
    for what, ns in rows:
        print(f"{what:44} {ns:9.0f} {ns / base:7.1f}")


if __name__ == "__main__":
    main()
