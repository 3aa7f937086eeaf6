# SPDX-License-Identifier: MIT
# test.py.IsoA: a module-global counter and a helper module named like the other bundle's.
import os
import helper

counter = 0


class Iso:
    def name(self):
        where = os.path.basename(os.path.dirname(helper.__file__))
        return "%s in %s, counter %d" % (helper.NAME, where, counter)

    def bump(self):
        global counter
        counter += 1
        return counter

    def spin(self, n):
        total = 0
        for i in range(n):
            total += i
        return total


contracts = {"test.py.IsoA": Iso}
