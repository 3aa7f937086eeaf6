#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Disassembles polyplug_codegen_raw and polyplug_codegen_typed (tests/typed_codegen.cpp) with
objdump and checks that the typed call costs at most `slack` instructions more than the raw table
call. Prints both listings. Deterministic: instruction text, never timing.

usage: typed_codegen.py OBJDUMP LIBRARY [slack]"""
import re
import subprocess
import sys

PADDING = re.compile(r"^(nop|xchg\s+%ax,%ax|cs nop|data16|int3)")


def functions(objdump, library):
    text = subprocess.run([objdump, "-d", "--no-show-raw-insn", library], check=True,
                          capture_output=True, text=True).stdout
    bodies, current = {}, None
    for line in text.splitlines():
        header = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
        if header:
            current = bodies.setdefault(header.group(1), [])
        elif not line.strip():
            current = None
        elif current is not None and "\t" in line:
            instruction = line.split("\t", 1)[1].strip()
            if instruction and not PADDING.match(instruction):
                current.append(instruction)
    return bodies


def main():
    objdump, library = sys.argv[1], sys.argv[2]
    slack = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    bodies = functions(objdump, library)
    counts = {}
    for name in ("polyplug_codegen_raw", "polyplug_codegen_typed", "polyplug_codegen_typed_call"):
        body = bodies.get(name)
        if body is None:
            print(f"FAIL: {name} not found in {library}")
            return 1
        counts[name] = len(body)
        print(f"{name}: {len(body)} instructions")
        for instruction in body:
            print(f"    {instruction}")
    raw, typed = counts["polyplug_codegen_raw"], counts["polyplug_codegen_typed"]
    print(f"raw table call: {raw} instructions, typed call: {typed} instructions "
          f"(allowed: at most {slack} more; call() with its throwing cold path: "
          f"{counts['polyplug_codegen_typed_call']}, not compared)")
    if typed > raw + slack:
        print("FAIL: the typed call is not zero-overhead")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
