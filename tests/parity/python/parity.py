# SPDX-License-Identifier: MIT
# test.parity.Kit@1 in Python: a plain class, no generated code.

NEXT_COLOR = {1: 2, 2: 256, 256: 1}


def wrap32(v):
    """Two's complement at 32 bits."""
    return ((v + 2**31) % 2**32) - 2**31


class Kit:
    def add_i32(self, a, b):
        return wrap32(a + b)

    def echo_ints(self, v):
        return v

    def scale(self, x, y):
        return x * 2.0 + y

    def differ(self, a, b):
        return a != b

    def greet(self, name):
        return "hello, " + name + "!"

    def reverse(self, data):
        return bytes(reversed(data))

    def total(self, points):
        x = y = 0
        for p in points:
            x, y = wrap32(x + p["x"]), wrap32(y + p["y"])
        return {"x": x, "y": y}

    def describe(self, s):
        if s["color"] not in NEXT_COLOR:
            raise ValueError(f"unknown color {s['color']}")
        return {"tag": (s["tag"] + 1) & 0xFF, "weight": s["weight"] * 2,
                "color": NEXT_COLOR[s["color"]], "label": s["label"] + "!"}

    def colors(self, n):
        if n > 3:
            raise ValueError(f"n too large: {n}")
        return [1, 2, 256][:n]

    def fail(self, code):
        raise RuntimeError(f"parity failure {code}")


contracts = {"test.parity.Kit": Kit}
