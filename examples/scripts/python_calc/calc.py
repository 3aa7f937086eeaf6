# SPDX-License-Identifier: MIT
# example.calc@1 in Python: a plain class. No generated code: the loader reads the contract
# file and converts the arguments and results itself.
import sys


class Calc:
    def add(self, a, b):
        # add wraps at 32 bits, as the contract says (Python integers do not).
        return ((a + b + 2**31) % 2**32) - 2**31

    def describe(self):
        return f"Python calc ({sys.version.split()[0]})"


contracts = {"example.calc": Calc}
