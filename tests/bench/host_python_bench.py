#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ns/call of the Python host package against raw ctypes calls (not a pass/fail test).

    PYTHONPATH=bindings/python python3 tests/bench/host_python_bench.py --build build [--vm lua]

Rows: a raw ctypes call of HostApi.get_error_len (the baseline), one find_guest_contract through
ctypes, a raw ctypes call of the native add function pointer (argument struct prepared once),
and calc.add(2, 40) through the package on the C bundle and on one VM bundle. Each figure is
the best of 5 runs of time.perf_counter_ns over N iterations, with its ratio to the baseline.
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


def best_ns(fn, n, runs=5):
    best = None
    for _ in range(runs):
        start = time.perf_counter_ns()
        fn(n)
        elapsed = (time.perf_counter_ns() - start) / n
        best = elapsed if best is None else min(best, elapsed)
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--vm", default="lua", help="lua, js or python ('' for none)")
    parser.add_argument("-n", type=int, default=200000)
    opts = parser.parse_args()
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
