#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The host x guest matrix as a Markdown table (scripts/bench.sh --matrix; not a pass/fail test).

    python3 matrix_table.py --out build-bench/matrix.md [--docs docs/PERFORMANCE.md] ROW_FILE...

Each ROW_FILE is one host bench's output; its lines "matrix <Host> floor <ns>",
"matrix <Host> <guest> <ns>" and "matrix <Host> <guest> skip <reason>" are the cells (the other
lines are ignored). A cell shows ns per round trip and its ratio to the floor of its row: the
same round trip through that host language's plain FFI call of a C function, in the same run.
A host that printed no row, a cell that is missing or skipped: the table says so and why.
With --docs, the table replaces the text between the "matrix:begin" and "matrix:end" markers.
"""
import argparse
import datetime
import os
import platform
import re
import sys

HOSTS = ["C++", "C", "Rust", "Node.js", "Python", "LuaJIT"]
GUESTS = [("c", "C"), ("cpp", "C++"), ("rust", "Rust"), ("lua", "Lua"), ("python", "Python"),
          ("js", "JavaScript")]
BEGIN, END = "<!-- matrix:begin -->", "<!-- matrix:end -->"
LINE = re.compile(r"^matrix (\S+) (\S+) (.*)$")


def read_rows(paths):
    """{host: {cell: float ns | ("skip", reason)}} and {host: file} from the row files."""
    rows, sources = {}, {}
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = LINE.match(line.rstrip("\n"))
                if not m:
                    continue
                host, cell, rest = m.groups()
                if host not in HOSTS:
                    sys.exit(f"{path}: unknown host {host!r} in {line.strip()!r}")
                sources[host] = path
                if rest.startswith("skip "):
                    rows.setdefault(host, {})[cell] = ("skip", rest[5:].strip())
                else:
                    try:
                        rows.setdefault(host, {})[cell] = float(rest)
                    except ValueError:
                        sys.exit(f"{path}: not a number of ns: {line.strip()!r}")
    return rows, sources


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def table(rows, sources, missing_reason):
    notes = []
    out = ["| host \\ guest | floor (plain FFI) | " + " | ".join(g for _, g in GUESTS) + " |",
           "|---" * (len(GUESTS) + 2) + "|"]
    for host in HOSTS:
        cells = rows.get(host)
        if cells is None:
            reason = missing_reason.get(host, "its bench printed no row (see its output)")
            notes.append(f"{host} host: not measured: {reason}.")
            out.append(f"| {host} | not measured [{len(notes)}] |" + " |" * len(GUESTS))
            continue
        floor = cells.get("floor")
        row = [host]
        if isinstance(floor, float):
            row.append(f"{floor:,.0f} ns")
        else:
            notes.append(f"{host} host, floor: " + (floor[1] if floor else "no value printed") +
                         " (the ratios of this row are missing)")
            row.append(f"- [{len(notes)}]")
        for key, _ in GUESTS:
            cell = cells.get(key)
            if isinstance(cell, float):
                ratio = f" ({cell / floor:.1f}x)" if isinstance(floor, float) else ""
                row.append(f"{cell:,.0f} ns{ratio}")
            else:
                why = cell[1] if cell else \
                    f"no value printed: the bench failed for this cell (see {sources[host]})"
                notes.append(f"{host} host, {key} guest: {why}.")
                row.append(f"- [{len(notes)}]")
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    out.append(f"Measured {datetime.date.today().isoformat()} on {machine()}; "
               "each cell the best of 5 runs of about 0.15 s, ns per round trip "
               "(ratio to the row's floor).")
    for i, note in enumerate(notes, 1):
        out.append(f"[{i}] {note}  ")
    return "\n".join(out).rstrip() + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="where the Markdown table goes")
    parser.add_argument("--docs", help="a Markdown file whose marked section gets the table")
    parser.add_argument("--missing", action="append", default=[], metavar="HOST=REASON",
                        help="why a host has no row (a toolchain not installed)")
    parser.add_argument("rows", nargs="+")
    opts = parser.parse_args()
    missing = dict(m.split("=", 1) for m in opts.missing)
    rows, sources = read_rows([p for p in opts.rows if os.path.exists(p)])
    text = table(rows, sources, missing)
    with open(opts.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(text, end="")
    if opts.docs:
        with open(opts.docs, encoding="utf-8") as f:
            doc = f.read()
        begin, end = doc.find(BEGIN), doc.find(END)
        if begin < 0 or end < begin:
            sys.exit(f"{opts.docs}: no {BEGIN} ... {END} section to replace")
        doc = doc[:begin + len(BEGIN)] + "\n" + text + doc[end:]
        with open(opts.docs, "w", encoding="utf-8") as f:
            f.write(doc)
        print(f"wrote the table into {opts.docs}")


if __name__ == "__main__":
    main()
