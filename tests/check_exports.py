#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks that a shared library's dynamic symbol table defines exactly the expected symbols."""
import subprocess
import sys

library, expected = sys.argv[1], set(sys.argv[2:])
output = subprocess.run(["nm", "-D", "--defined-only", library], check=True,
                        capture_output=True, text=True).stdout
defined = {line.split()[-1] for line in output.splitlines() if line.strip()}
# Version-script nodes (e.g. "LIBPOLYPLUG_0") are absolute symbols, not code or data.
defined = {name for name in defined if not name.isupper()}
if defined != expected:
    print(f"{library}: exports {sorted(defined)}, expected exactly {sorted(expected)}")
    sys.exit(1)
print(f"{library}: exports exactly {sorted(defined)}")
