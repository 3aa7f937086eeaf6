# SPDX-License-Identifier: MIT
# test.py.Caller: polyplug.call into the host, into another bundle, and back into itself.
import polyplug

MATH = "host.test.py.Math"


class Caller:
    def host_add(self, a, b):
        return polyplug.call(MATH, "add", a, b)

    def host_scale(self, p, by):
        return polyplug.call(MATH, "scale", p, by)

    def host_join(self, words):
        return polyplug.call(MATH, "join", words)

    def host_fail(self):
        try:
            polyplug.call(MATH, "fail")
        except polyplug.CallError as e:
            return e.code
        return 0

    def host_fail_raw(self):
        return polyplug.call(MATH, "fail")

    def iso_name(self):
        return "via caller: " + polyplug.call("test.py.IsoA", "name")

    def reenter(self):
        return polyplug.call("test.py.Caller", "plain")

    def plain(self):
        return 7

    def bad_arg(self):
        return polyplug.call(MATH, "add", "x", 1)

    def unknown_contract(self):
        return polyplug.call("nope.Contract", "f")


contracts = {"test.py.Caller": Caller}
