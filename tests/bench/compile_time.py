#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How long a C++ host translation unit takes to compile, against one that includes toml++ alone.

Compiles each unit below REPEAT times with the same compiler and flags (g++ -std=c++20 -O0 unless
--cxx/--flags say otherwise) and reports the median CPU time (user + system of the compiler, so a
busy machine stretches it less than wall time), then each host unit's ratio to the toml++ unit:

  toml++ alone          includes <toml++/toml.h> and parses a string: the baseline
  host, header-only     includes <polyplug/polyplug.hpp> and makes a polyplug::runtime (the default)
  host, compiled-once   the same with POLYPLUG_HEADER_ONLY=0 (config.hpp)
  implementation unit   <polyplug/implementation.hpp> with POLYPLUG_HEADER_ONLY=0: paid once per
                        program in compiled-once mode, not per host unit (no ratio, for scale)

The budget (issue 16): a host unit within 2x of the toml++ unit. Timing only: never a pass/fail.
"""
import argparse
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile

UNITS = {
    "toml++ alone": ("", """#include <toml++/toml.h>
int main() {
    auto table = toml::parse("answer = 42");
    return table["answer"].value_or(0) == 42 ? 0 : 1;
}
"""),
    "host, header-only": ("", """#include <polyplug/polyplug.hpp>
int main() {
    polyplug::runtime rt;
    return rt.bundles().empty() ? 0 : 1;
}
"""),
    "host, compiled-once": ("-DPOLYPLUG_HEADER_ONLY=0", """#include <polyplug/polyplug.hpp>
int main() {
    polyplug::runtime rt;
    return rt.bundles().empty() ? 0 : 1;
}
"""),
    "implementation unit": ("-DPOLYPLUG_HEADER_ONLY=0", """#include <polyplug/implementation.hpp>
"""),
}


def cpu_seconds_of(command):
    """Runs `command`; returns the CPU time (user + system) it and its children used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"compile_time.py: compiling failed:\n  {' '.join(command)}\n{done.stderr}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--include", required=True, help="polyplug's include directory")
    parser.add_argument("--cxx", default="g++")
    parser.add_argument("--flags", default="-std=c++20 -O0",
                        help="compiler flags (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", help="also write the table here")
    args = parser.parse_args()

    version = subprocess.run([args.cxx, "--version"], capture_output=True,
                             text=True).stdout.splitlines()[0]
    print(f"compile time, {args.cxx} {args.flags} ({version}), median CPU time of {args.repeat}")
    medians = {}
    with tempfile.TemporaryDirectory(prefix="polyplug-compile-") as tmp:
        for name, (define, text) in UNITS.items():
            source = pathlib.Path(tmp) / (name.replace(" ", "_").replace(",", "") + ".cpp")
            source.write_text(text)
            command = [args.cxx, *args.flags.split(),
                       f"-I{args.include}", *([define] if define else []), "-c", str(source),
                       "-o", str(source.with_suffix(".o"))]
            times = []
            for attempt in range(args.repeat):
                times.append(cpu_seconds_of(command))
                print(f"  {name}: run {attempt + 1}/{args.repeat}: {times[-1]:.2f} s", flush=True)
            medians[name] = statistics.median(times)

    base = medians["toml++ alone"]
    rows = ["| translation unit | CPU time | vs toml++ alone | budget |", "|---|---|---|---|"]
    for name, seconds in medians.items():
        if name == "toml++ alone":
            ratio, budget = "1.00x", "baseline"
        elif name == "implementation unit":
            ratio, budget = "(once per program)", ""
        else:
            ratio, budget = f"{seconds / base:.2f}x", "2x"
        rows.append(f"| {name} | {seconds:.2f} s | {ratio} | {budget} |")
    print("\n".join(rows))
    if args.markdown:
        pathlib.Path(args.markdown).write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
