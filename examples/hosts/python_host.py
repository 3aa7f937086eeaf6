#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A Python host on libpolyplug.so through the polyplug package (bindings/python, ctypes only):
discovers the example bundles of every language that is built, calls each provider of
example.calc@1, implements host.example.Log@1 (which the C bundle calls on every add), and
hot-reloads the C bundle, printing the phases.

    PYTHONPATH=bindings/python python3 examples/hosts/python_host.py \\
        --library build/shim/libpolyplug.so --bundles build/examples/bundles \\
        --scripts build/examples/scripts --loaders lua,python,js
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bindings", "python"))
import polyplug  # noqa: E402

API = os.path.join(HERE, "..", "contracts", "example_calc.api.toml")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", help="libpolyplug.so (default: $POLYPLUG_LIBRARY, soname)")
    parser.add_argument("--bundles", required=True, help="the native example plugin directory")
    parser.add_argument("--scripts", help="the script example plugin directory")
    parser.add_argument("--loaders", default="", help="comma-separated: lua,python,js")
    opts = parser.parse_args()
    loaders = [lang for lang in opts.loaders.split(",") if lang]

    phases = []

    def on_reload(event):
        phases.append(event.phase)
        print(f"  [reload] {event.phase} {event.bundle_name}"
              + (f": {event.reason}" if event.reason else ""))

    def on_log(record):
        print(f"  [runtime {record.level}] {record.scope}: {record.message}", file=sys.stderr)

    plugin_lines = []

    class Log:  # host.example.Log@1, implemented here
        def write(self, line):
            plugin_lines.append(line)
            print(f"  [plugin log] {line}")

    failures = 0
    with polyplug.Runtime(opts.library, loaders=loaders, hot_reload=True, on_reload=on_reload,
                          log=on_log) as rt:
        rt.register_host_contract("host.example.Log", api=API, implementation=Log())
        dirs = [opts.bundles] + ([opts.scripts] if opts.scripts and loaders else [])
        found = rt.load_dirs(dirs)
        print(f"discovered and loaded {found.loaded} bundle(s), skipped {found.skipped}")
        if found.skipped:
            print(found.diagnostics, file=sys.stderr)
            failures += 1
        for bundle in rt.bundles():
            print(f"bundle {bundle.name} {'.'.join(map(str, bundle.version))} "
                  f"(loader {bundle.loader})")

        providers = rt.find_all("example.calc", api=API)
        for calc in providers:
            with calc:
                total, text = calc.add(2, 40), calc.describe()
                print(f"{calc.dispatch:6} provider: add(2, 40) = {total}, describe() = {text!r}")
                failures += total != 42
        seen = {b.loader for b in rt.bundles()}
        for lang in loaders:
            if lang not in seen:
                print(f"no {lang} bundle was loaded", file=sys.stderr)
                failures += 1
        if not plugin_lines:
            print("c-calc never called host.example.Log", file=sys.stderr)
            failures += 1

        # Hot reload: a contract object found before keeps working afterwards.
        calc = rt.find("example.calc", api=API)
        rt.reload("c-calc")
        if phases[-2:] != ["Preparing", "Reloaded"]:
            print(f"reload phases: {phases}", file=sys.stderr)
            failures += 1
        print(f"after the reload: add(2, 40) = {calc.add(2, 40)}")
        failures += calc.add(2, 40) != 42

        # An error path: a typed refusal before any call is made.
        try:
            calc.add(2**31, 0)
            failures += 1
        except polyplug.OutOfRangeError as exc:
            print(f"expected: {exc}")
    print(f"{len(providers)} providers called, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
