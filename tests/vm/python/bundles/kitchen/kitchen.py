# SPDX-License-Identifier: MIT
# test.py.Kitchen: every contract type in and out of Python (tests/vm/python/python_loader.cpp).
import polyplug


def echo(self, v):
    return v


class Kitchen:
    u8 = u16 = u32 = u64 = i8 = i16 = i32 = i64 = f32 = f64 = flag = echo

    def __init__(self):
        self.total = 0

    def mix(self, a, b, c, d, e, f, g, h):
        assert isinstance(g, bool) and isinstance(e, float)
        return a + b + c + d + e + f + (1000 if g else 0) + h

    def int_as(self, text):
        return eval(text)

    narrow_i8 = narrow_u32 = int_as

    def text(self, s):
        return s + "|" + str(len(s))

    def reverse(self, kind, data):
        assert isinstance(data, bytes)
        out = bytes(reversed(data))
        return [out, bytearray(out), memoryview(out)][kind]

    def ptr_add(self, p, n):
        return None if p is None else p + n

    def scale(self, m, by):
        return {"tag": m["tag"] + 1, "value": m["value"] * by, "small": m["small"] * by}

    def describe(self, r):
        inner = r["inner"]
        return {
            "flag": not r["flag"],
            "inner": {"a": inner["c"], "b": inner["b"] * 2, "c": inner["a"]},
            "label": r["label"].upper() + "!",
            "points": [{"x": p["y"], "y": p["x"]} for p in r["points"]] + [{"x": 0, "y": 0}],
            "color": 256 if r["color"] == 2 else 1,
            "payload": r["payload"] + b"\x00end",
            "opaque": r["opaque"],
            "half": -r["half"],
            "ignored": "extra keys are fine",
        }

    def next_color(self, c):
        return {1: 2, 2: 256, 256: 1}[c]

    def sum_points(self, points):
        assert isinstance(points, list)
        return {"x": sum(p["x"] for p in points), "y": sum(p["y"] for p in points)}

    def upper(self, words):
        return [w.upper() for w in words]

    def squares(self, data):
        return [b * b for b in data]

    def grid(self, n):
        return tuple({"x": i, "y": -i} for i in range(n))

    def bump(self, by):
        self.total += by
        return "ignored: the function returns nothing"

    def count(self):
        return self.total

    def div(self, a, b):
        return a // b

    def broken_point(self):
        return {"x": 1}

    def wrong_type(self):
        return "seven"

    def float_for_int(self):
        return 2.5

    def int_for_bool(self):
        return 1

    def bad_nested(self):
        r = self.describe({"flag": True, "inner": {"a": 1, "b": 2, "c": 3}, "label": "x",
                           "points": [], "color": 1, "payload": b"", "opaque": None, "half": 0})
        r["points"] = [{"x": 1, "y": 2}, {"x": 3, "y": 2 ** 31}]
        return r

    def bad_element(self):
        return [{"x": 1, "y": 1}, "not a point"]

    def log(self, level, message):
        polyplug.log(level, message + " from " + polyplug.bundle)


contracts = {"test.py.Kitchen": Kitchen}
