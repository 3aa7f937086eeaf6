#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Summarises groups of rows over several runs of polyplug_bench, each in its own process.

At a few nanoseconds a call, the layout of one process (where address space randomisation put the
code, the stack and the heap) can move a loop by a cycle, so one process's ratio is one draw. The
median over processes is the figure to quote; the range shows the spread.

Usage: aggregate_runs.py --group NAME [--group NAME...] [--json OUT] RUN.json...
"""
import argparse
import json
import statistics
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", action="append", required=True)
    parser.add_argument("--json", help="write the summary to this file")
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()

    ratios = {}  # (group, row name) -> ratio per run, in row order
    for path in args.runs:
        with open(path) as f:
            for row in json.load(f)["rows"]:
                if row["group"] in args.group and row["status"] == "measured":
                    ratios.setdefault((row["group"], row["name"]), []).append(row["ratio"])
    if not ratios:
        print("no measured rows in groups %s" % ", ".join(args.group), file=sys.stderr)
        return 1

    print("ratio to the baseline in each of %d processes, and their median" % len(args.runs))
    summary = []
    group = None
    for (row_group, name), values in ratios.items():
        if row_group != group:
            group = row_group
            print(group)
        median = statistics.median(values)
        print("  %-50s %s  median %.2fx" % (name, " ".join("%.2f" % v for v in values), median))
        summary.append({"group": row_group, "name": name, "ratios": values, "median": median,
                        "min": min(values), "max": max(values)})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"processes": len(args.runs), "rows": summary}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
