# SPDX-License-Identifier: MIT
"""The Python host package (bindings/python/polyplug) against the real libpolyplug.so: example and
parity bundles of every built language, reloads, a Python host contract called by the kitchen
plugin, the error paths and memory. Run by Meson (tests/hosts/python/meson.build), which passes
every path in the environment:

  POLYPLUG_LIBRARY        libpolyplug.so           PYHOST_SOURCE     the source tree
  PYHOST_EXAMPLE_BUNDLES  native example bundles   PYHOST_EXAMPLE_SCRIPTS  script bundles
  PYHOST_PARITY_DIR       build/tests/parity       PYHOST_KITCHEN    the kitchen bundle dir
  PYHOST_LANGUAGES        parity languages built, comma-separated (c,cpp,rust,lua,python,js)
"""
import math
import os
import re
import shutil
import struct
import sys
import tempfile
import textwrap
import unittest

ENV = os.environ
REQUIRED = ["POLYPLUG_LIBRARY", "PYHOST_SOURCE", "PYHOST_EXAMPLE_BUNDLES", "PYHOST_PARITY_DIR",
            "PYHOST_KITCHEN", "PYHOST_LANGUAGES", "PYHOST_EXAMPLE_SCRIPTS"]

sys.path.insert(0, os.path.join(ENV.get("PYHOST_SOURCE", "."), "bindings", "python"))
import polyplug  # noqa: E402

LANGS = [lang for lang in ENV.get("PYHOST_LANGUAGES", "").split(",") if lang]
SCRIPT_LANGS = [lang for lang in LANGS if lang in ("lua", "python", "js")]
I32_MIN, I32_MAX = -2**31, 2**31 - 1


def src(*parts):
    return os.path.join(ENV["PYHOST_SOURCE"], *parts)


CALC_API = None
PARITY_API = None
KITCHEN_API = None


def setUpModule():
    global CALC_API, PARITY_API, KITCHEN_API
    CALC_API = src("examples", "contracts", "example_calc.api.toml")
    PARITY_API = src("tests", "parity", "parity.api.toml")
    KITCHEN_API = src("tests", "cli", "kitchen.api.toml")


def runtime(**kw):
    kw.setdefault("loaders", SCRIPT_LANGS)
    return polyplug.Runtime(**kw)


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def same_double(a, b):
    return struct.pack("<d", a) == struct.pack("<d", b)


class LibraryLookup(unittest.TestCase):
    def test_bad_explicit_library_names_all_three_ways(self):
        with self.assertRaises(polyplug.LibraryNotFoundError) as cm:
            polyplug.Runtime(library="/nonexistent/libpolyplug.so")
        text = str(cm.exception)
        for needle in ("/nonexistent/libpolyplug.so", "POLYPLUG_LIBRARY", "libpolyplug.so.0",
                       "library="):
            self.assertIn(needle, text)

    def test_not_a_polyplug_library(self):
        with self.assertRaises(polyplug.LibraryNotFoundError) as cm:
            polyplug.Runtime(library="libc.so.6")
        self.assertIn("polyplug_runtime_create", str(cm.exception))

    def test_missing_loader_module(self):
        with polyplug.Runtime() as rt:
            with self.assertRaises(polyplug.LibraryNotFoundError) as cm:
                rt.add_loader("cobol")
            self.assertIn("libpolyplug-loader-cobol.so", str(cm.exception))
            with self.assertRaises(polyplug.ArgumentError):
                rt.add_loader("../evil")

    def test_bad_config(self):
        with self.assertRaises(polyplug.ArgumentError):
            polyplug.Runtime(compatibility="lenient")
        with self.assertRaises(polyplug.ArgumentError):
            polyplug.Runtime(log_level="loud")


class Examples(unittest.TestCase):
    def test_every_example_bundle(self):
        with runtime() as rt:
            result = rt.load_dirs([ENV["PYHOST_EXAMPLE_BUNDLES"], ENV["PYHOST_EXAMPLE_SCRIPTS"]])
            self.assertGreaterEqual(result.loaded, 4 + len(SCRIPT_LANGS))
            self.assertEqual(result.skipped, 0, result.diagnostics)
            self.assertEqual(result.diagnostics, "")
            providers = rt.find_all("example.calc", api=CALC_API)
            calc_bundles = [b for b in rt.bundles()
                            if polyplug.guest_contract_id("example.calc", 1) in b.contracts]
            self.assertEqual(len(providers), len(calc_bundles))
            kinds = set()
            for p in providers:
                with p:
                    self.assertEqual(p.add(2, 40), 42)
                    self.assertEqual(p.add(I32_MAX, 1), I32_MIN)  # wraps, as documented
                    text = p.describe()
                    self.assertIsInstance(text, str)
                    self.assertTrue(text)
                    kinds.add(p.dispatch)
            self.assertEqual(kinds, {"native", "vm"} if SCRIPT_LANGS else {"native"})
            loaders = {b.loader for b in rt.bundles()}
            self.assertIn("native", loaders)
            for lang in SCRIPT_LANGS:
                self.assertIn(lang, loaders)

    def test_load_returns_the_bundle_and_find_follows(self):
        with runtime(loaders=()) as rt:
            b = rt.load(os.path.join(ENV["PYHOST_EXAMPLE_BUNDLES"], "c_calc"))
            self.assertEqual(b.name, "c-calc")
            self.assertEqual(b.id, polyplug.bundle_id("c-calc"))
            self.assertEqual(b.loader, "native")
            self.assertEqual(b.version, (1, 0, 0))
            self.assertTrue(os.path.samefile(b.path,
                                             os.path.join(ENV["PYHOST_EXAMPLE_BUNDLES"],
                                                          "c_calc")))
            self.assertEqual(b.contracts, [polyplug.guest_contract_id("example.calc", 1)])
            calc = rt.find("example.calc", api=CALC_API)
            self.assertEqual(calc.add(a=2, b=40), 42)
            self.assertEqual(calc.add(2, b=40), 42)
            self.assertEqual(calc.functions, ["add(a: i32, b: i32) -> i32",
                                              "describe() -> StringView"])
            self.assertIn("add(a: i32, b: i32) -> i32", type(calc).__doc__)
            self.assertEqual(calc.call("add", 1, 2), 3)


class Parity(unittest.TestCase):
    """tests/parity/parity.cpp's table, through the package, in every built language."""

    def check_language(self, rt, lang):
        path = os.path.join(ENV["PYHOST_PARITY_DIR"], lang)
        self.assertTrue(os.path.exists(os.path.join(path, "manifest.toml")),
                        f"{lang} is listed as built but {path} has no manifest")
        bundle = rt.load(path)
        kits = rt.find_all("test.parity.Kit", api=PARITY_API)
        kit = kits[-1]
        for other in kits[:-1]:
            other.close()
        t = kit.types
        name = {"c": "C", "cpp": "C++", "rust": "Rust", "lua": "Lua", "python": "Python",
                "js": "JavaScript"}[lang]
        for a, b, s in [(2, 40, 42), (I32_MAX, 1, I32_MIN), (I32_MIN, -1, I32_MAX), (-7, 7, 0)]:
            self.assertEqual(kit.add_i32(a, b), s)
        minimum = dict(a=-128, b=0, c=-32768, d=0, e=I32_MIN, f=0, g=-2**63, h=0)
        maximum = dict(a=127, b=255, c=32767, d=65535, e=I32_MAX, f=2**32 - 1, g=2**63 - 1,
                       h=2**64 - 1)
        safe = dict(a=-1, b=200, c=-300, d=60000, e=-70000, f=4000000000, g=-(2**53), h=2**53)
        for label, v, refusers in [("minimum", minimum, {"JavaScript"}),
                                   ("maximum", maximum, {"JavaScript", "Lua"}),
                                   ("2^53", safe, set())]:
            with self.subTest(lang=lang, echo=label):
                if name in refusers:
                    with self.assertRaises(polyplug.PanicError):
                        kit.echo_ints(v)
                else:
                    got = kit.echo_ints(v)
                    self.assertEqual(got, t.Ints(**v))
                    self.assertEqual(kit.echo_ints(t.Ints(**v)), got)  # the namedtuple too
        for x, y in [(1.5, 0.25), (-0.0, -0.0), (3.4028235e38, 1e308), (1e-45, -2.5)]:
            with self.subTest(lang=lang, scale=(x, y)):
                self.assertTrue(same_double(kit.scale(x, y), f32(x) * 2.0 + y))
        for a in (False, True):
            for b in (False, True):
                self.assertIs(kit.differ(a, b), a != b)
        for text in ["world", "", "nul\0in", "gr\u00fc\u00df \u20ac \U0001f50c"]:
            self.assertEqual(kit.greet(text), f"hello, {text}!")
            self.assertEqual(kit.greet(text.encode()), f"hello, {text}!")
        for data in [b"", b"\x01\x00\xff", b"abc"]:
            self.assertEqual(kit.reverse(data), data[::-1])
            self.assertEqual(kit.reverse(bytearray(data)), data[::-1])
        pts = [t.Point(1, 2), {"x": I32_MAX, "y": -3}, t.Point(x=1, y=I32_MIN)]
        self.assertEqual(kit.total(pts), t.Point(I32_MIN + 1, I32_MAX))
        self.assertEqual(kit.total([]), t.Point(0, 0))
        self.assertEqual(kit.total(()), (0, 0))
        shape = kit.describe({"tag": 255, "weight": 1.25, "color": "Blue",
                              "label": "\u00e9t\u00e9"})
        self.assertEqual(shape, t.Shape(0, 2.5, t.Color.Red, "\u00e9t\u00e9!"))
        self.assertIsInstance(shape.color, t.Color)
        self.assertEqual(kit.describe(t.Shape(255, 1.25, t.Color.Blue, "x")).label, "x!")
        self.assertEqual(kit.colors(0), [])
        self.assertEqual(kit.colors(2), [t.Color.Red, t.Color.Green])
        self.assertEqual(kit.colors(3), [1, 2, 256])
        with self.assertRaises(polyplug.PanicError) as cm:
            kit.colors(4)
        self.assertEqual(cm.exception.code, 3)
        self.assertEqual(cm.exception.code_name, "Panic")
        self.assertIn("n too large", cm.exception.message)
        with self.assertRaises(polyplug.PanicError) as cm:
            kit.fail(-7)
        self.assertIn("parity failure -7", cm.exception.message)
        self.assertEqual(kit.add_i32(1, 1), 2)  # still serving after the errors
        kit.close()
        rt.unload(bundle.id)

    def test_every_language(self):
        self.assertTrue(LANGS)
        with runtime() as rt:
            for lang in LANGS:
                with self.subTest(lang=lang):
                    self.check_language(rt, lang)
            self.assertEqual(rt.bundles(), [])

    def test_python_bundle_in_a_python_host(self):
        if "python" not in LANGS:
            self.skipTest("the Python loader is not built (-Dpython)")
        with polyplug.Runtime(loaders=["python"]) as rt:
            rt.load(os.path.join(ENV["PYHOST_PARITY_DIR"], "python"))
            kit = rt.find("test.parity.Kit", api=PARITY_API)
            self.assertEqual(kit.dispatch, "vm")
            self.assertEqual(kit.greet("py"), "hello, py!")
            self.assertEqual(kit.echo_ints(dict(a=127, b=255, c=32767, d=65535, e=I32_MAX,
                                                f=2**32 - 1, g=2**63 - 1, h=2**64 - 1)).h,
                             2**64 - 1)


class Marshalling(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rt = polyplug.Runtime()
        cls.rt.load(os.path.join(ENV["PYHOST_PARITY_DIR"], "c"))
        cls.kit = cls.rt.find("test.parity.Kit", api=PARITY_API)

    @classmethod
    def tearDownClass(cls):
        cls.rt.close()

    def test_integer_ranges_never_truncate(self):
        k = self.kit
        for bad in (2**31, I32_MIN - 1, 2**40):
            with self.assertRaises(polyplug.OutOfRangeError) as cm:
                k.add_i32(bad, 0)
            self.assertIn(str(bad), str(cm.exception))
            self.assertIn("i32", str(cm.exception))
        ints = dict(a=0, b=0, c=0, d=0, e=0, f=0, g=0, h=0)
        for field, bad in [("a", 128), ("b", -1), ("b", 256), ("d", 65536), ("f", 2**32),
                           ("g", 2**63), ("h", -1), ("h", 2**64)]:
            with self.assertRaises(polyplug.OutOfRangeError):
                k.echo_ints({**ints, field: bad})
        self.assertIsInstance(polyplug.OutOfRangeError("x"), OverflowError)

    def test_wrong_types(self):
        k = self.kit
        for call in (lambda: k.add_i32("2", 40), lambda: k.add_i32(2.0, 40),
                     lambda: k.add_i32(True, 1), lambda: k.differ(1, 0),
                     lambda: k.greet(42), lambda: k.reverse("text"),
                     lambda: k.total([(1, 2)]), lambda: k.total("points"),
                     lambda: k.scale("1", 2.0), lambda: k.colors(None)):
            with self.assertRaises(polyplug.ArgumentError):
                call()
        with self.assertRaises(TypeError):  # ArgumentError is a TypeError too
            k.add_i32(1)
        with self.assertRaises(polyplug.ArgumentError):
            k.add_i32(1, 2, 3)
        with self.assertRaises(polyplug.ArgumentError):
            k.add_i32(1, c=2)
        with self.assertRaises(polyplug.ArgumentError) as cm:
            k.echo_ints(dict(a=1))
        self.assertIn("missing", str(cm.exception))
        with self.assertRaises(polyplug.ArgumentError) as cm:
            k.describe({"tag": 1, "weight": 1.0, "color": "Purple", "label": ""})
        self.assertIn("Purple", str(cm.exception))
        with self.assertRaises(polyplug.ArgumentError):
            k.describe({"tag": 1, "weight": 1.0, "color": 3, "label": ""})
        with self.assertRaises(polyplug.OutOfRangeError):
            k.scale(1e39, 0.0)
        self.assertEqual(k.add_i32(2, 40), 42)  # nothing changed by the refusals

    def test_unknown_function_and_contract(self):
        with self.assertRaises(polyplug.UnknownFunctionError) as cm:
            self.kit.nope()
        self.assertIsInstance(cm.exception, AttributeError)
        self.assertIn("add_i32", str(cm.exception))
        with self.assertRaises(polyplug.UnknownFunctionError):
            self.kit.call("nope")
        with self.assertRaises(polyplug.ContractFileError) as cm:
            self.rt.find("test.parity.Nope", api=PARITY_API)
        self.assertIn("test.parity.Kit", str(cm.exception))
        with self.assertRaises(polyplug.NotFoundError) as cm:
            self.rt.find("example.calc", api=CALC_API)  # declared, but nothing provides it
        self.assertEqual(cm.exception.code_name, "NotFound")
        with self.assertRaises(polyplug.ArgumentError):
            self.rt.find("test.parity.Kit", api=None)

    def test_bad_contract_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            bad = os.path.join(tmp, "bad.api.toml")
            with open(bad, "w") as f:
                f.write('[[guest_contract]]\nname = "x.y"\nversion = "1.0"\n\n'
                        '[[guest_contract.functions]]\nname = "f"\nreturn = "Nope"\n')
            with self.assertRaises(polyplug.ContractFileError) as cm:
                self.rt.find("x.y", api=bad)
            self.assertRegex(cm.exception.message, re.escape(bad) + r":\d+:\d+: ")
            self.assertNotEqual(cm.exception.code, 0)
            with open(bad, "w") as f:
                f.write("this is = = not toml\n")
            with self.assertRaises(polyplug.ContractFileError) as cm:
                self.rt.describe_contract_file(bad)
            self.assertRegex(cm.exception.message, r":1:\d+: ")
        with self.assertRaises(polyplug.ContractFileError):
            self.rt.describe_contract_file("/nonexistent/x.api.toml")
        self.assertEqual(self.kit.add_i32(1, 2), 3)

    def test_description_is_checked(self):
        with self.assertRaises(polyplug.ContractFileError):
            polyplug.Description("polyplug-contracts 2\n")
        with self.assertRaises(polyplug.ContractFileError) as cm:
            polyplug.Description("polyplug-contracts 1\nstruct P 8 4 1\nfield x i32 2\n")
        self.assertIn("ctypes disagrees", str(cm.exception))
        text = self.rt.describe_contract_file_text(PARITY_API)
        self.assertTrue(text.startswith("polyplug-contracts 1\n"))
        d = polyplug.Description(text)
        shape = d.structs["Shape"]
        self.assertEqual((shape.size, shape.align), (40, 8))
        self.assertEqual([(f, t.name, off) for f, t, off in shape.fields],
                         [("tag", "u8", 0), ("weight", "f64", 8), ("color", "Color", 16),
                          ("label", "StringView", 24)])
        kit = d.contract("test.parity.Kit")
        self.assertEqual(kit.id, polyplug.guest_contract_id("test.parity.Kit", 1))
        self.assertEqual(kit.by_name["total"].args_size, 16)


class Reload(unittest.TestCase):
    def setUp(self):
        self.events = []
        self.tmp = tempfile.mkdtemp(prefix="polyplug-pyhost-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_native_reload_in_place(self):
        with runtime(loaders=(), hot_reload=True, on_reload=self.events.append) as rt:
            rt.load(os.path.join(ENV["PYHOST_EXAMPLE_BUNDLES"], "c_calc"))
            calc = rt.find("example.calc", api=CALC_API)
            self.assertEqual(calc.add(2, 40), 42)
            before = rt.revision
            rt.reload("c-calc")
            self.assertNotEqual(rt.revision, before)
            self.assertEqual([e.phase for e in self.events], ["Preparing", "Reloaded"])
            self.assertEqual({e.bundle_name for e in self.events}, {"c-calc"})
            self.assertEqual(calc.add(2, 40), 42)  # re-resolved, no stale pointer
            rt.unload("c-calc")
            with self.assertRaises((polyplug.NotFoundError, polyplug.StaleHandleError)) as cm:
                calc.add(1, 1)
            self.assertIn(cm.exception.code_name, ("NotFound", "StaleHandle"))
            rt.load(os.path.join(ENV["PYHOST_EXAMPLE_BUNDLES"], "c_calc"))
            self.assertEqual(calc.add(1, 1), 2)  # by contract: moves to the new provider

    def test_script_reload_and_failed_reload(self):
        if "lua" not in SCRIPT_LANGS:
            self.skipTest("the Lua loader is not built (-Dlua)")
        bundle = os.path.join(self.tmp, "lua_calc")
        shutil.copytree(os.path.join(ENV["PYHOST_EXAMPLE_SCRIPTS"], "lua_calc"), bundle)
        script = os.path.join(bundle, "calc.lua")
        with runtime(loaders=["lua"], hot_reload=True, on_reload=self.events.append) as rt:
            rt.load(bundle)
            calc = rt.find("example.calc", api=CALC_API)
            self.assertEqual(calc.add(2, 40), 42)
            with open(script, "w") as f:
                f.write(textwrap.dedent("""\
                    local Calc = {}
                    function Calc:add(a, b) return a + b + 1000 end
                    function Calc:describe() return "Lua calc v2" end
                    contracts = { ["example.calc"] = Calc }
                    """))
            rt.reload("lua-calc")
            self.assertEqual([e.phase for e in self.events], ["Preparing", "Reloaded"])
            self.assertEqual(calc.add(2, 40), 1042)
            self.assertEqual(calc.describe(), "Lua calc v2")
            self.events.clear()
            with open(script, "w") as f:
                f.write("this is not lua (\n")
            with self.assertRaises(polyplug.Error) as cm:
                rt.reload(bundle)
            self.assertIn("calc.lua", cm.exception.message)
            phases = [e.phase for e in self.events]
            self.assertEqual(phases[0], "Preparing")
            self.assertIn("Failed", phases)
            failed = [e for e in self.events if e.phase == "Failed"][0]
            self.assertTrue(failed.reason)
            self.assertEqual(calc.add(2, 40), 1042)  # the old version keeps serving

    def test_pinned_provider_goes_stale(self):
        with runtime(loaders=()) as rt:
            rt.load(os.path.join(ENV["PYHOST_EXAMPLE_BUNDLES"], "c_calc"))
            (calc,) = rt.find_all("example.calc", api=CALC_API)
            rt.unload("c-calc")
            with self.assertRaises(polyplug.StaleHandleError) as cm:
                calc.add(1, 1)
            self.assertEqual(cm.exception.code, 5)

    def test_reload_refused_without_hot_reload(self):
        with runtime(loaders=()) as rt:
            rt.load(os.path.join(ENV["PYHOST_EXAMPLE_BUNDLES"], "c_calc"))
            with self.assertRaises(polyplug.Error) as cm:
                rt.reload("c-calc")
            self.assertIn("hot_reload", cm.exception.message)

    def test_callback_exception_surfaces(self):
        def boom(event):
            raise RuntimeError("callback says no")
        with runtime(loaders=(), hot_reload=True, on_reload=boom) as rt:
            rt.load(os.path.join(ENV["PYHOST_EXAMPLE_BUNDLES"], "c_calc"))
            with self.assertRaises(polyplug.CallbackError) as cm:
                rt.reload("c-calc")
            self.assertIsInstance(cm.exception.__cause__, RuntimeError)
            self.assertEqual(len(rt.bundles()), 1)


class Errors(unittest.TestCase):
    def test_bad_paths(self):
        logs = []
        with runtime(loaders=(), log=logs.append, log_level="debug") as rt:
            with self.assertRaises(polyplug.Error) as cm:
                rt.load("/nonexistent/polyplug-bundle")
            self.assertNotEqual(cm.exception.code, 0)
            self.assertIn("/nonexistent/polyplug-bundle", cm.exception.message)
            with self.assertRaises(polyplug.NotFoundError):
                rt.unload("no-such-bundle")
            with self.assertRaises(polyplug.Error):
                rt.unload(42)
            with self.assertRaises(polyplug.ArgumentError):
                rt.unload(4.2)
            self.assertEqual(rt.bundles(), [])
            self.assertTrue(logs, "log level debug: the runtime's failure records arrive")
            self.assertIsInstance(logs[0], polyplug.LogRecord)

    def test_load_dirs_skips_with_diagnostics(self):
        with tempfile.TemporaryDirectory() as tmp:
            os.mkdir(os.path.join(tmp, "broken"))
            with open(os.path.join(tmp, "broken", "manifest.toml"), "w") as f:
                f.write("name = \n")
            with runtime(loaders=()) as rt:
                result = rt.load_dirs(tmp)
                self.assertEqual((result.loaded, result.skipped), (0, 1))
                self.assertIn("broken", result.diagnostics)

    def test_after_close(self):
        rt = runtime(loaders=())
        rt.load(os.path.join(ENV["PYHOST_EXAMPLE_BUNDLES"], "c_calc"))
        calc = rt.find("example.calc", api=CALC_API)
        other = rt.find("example.calc", api=CALC_API)
        other.close()
        other.close()  # idempotent
        with self.assertRaises(polyplug.ClosedError):
            other.add(1, 2)
        self.assertEqual(calc.add(1, 2), 3)
        rt.close()
        rt.close()  # idempotent
        self.assertTrue(rt.closed)
        for call in (lambda: calc.add(1, 2), rt.bundles, lambda: rt.load("x"),
                     lambda: rt.find("example.calc", api=CALC_API), lambda: rt.revision):
            with self.assertRaises(polyplug.ClosedError):
                call()


class HostContracts(unittest.TestCase):
    def test_results_are_kept_per_calling_thread(self):
        # A plugin may call a Python host contract from several threads at once, and each
        # caller reads the result or message after the thunk returned: one thread's call must
        # not free what another's points into. The table entry is called as a plugin does; the
        # two failure texts have the same length, so a freed first text is overwritten by the
        # second (pymalloc reuses the block) and the check below sees it.
        import ctypes as C
        import threading
        from polyplug import _abi

        class Log:
            def write(self, level, message):
                raise RuntimeError(f"failure number {level:03d}")

        with runtime(loaders=()) as rt:
            reg = rt.register_host_contract("host.test.cli.Log", api=KITCHEN_API,
                                            implementation=Log())
            fn = reg.decl.functions[0]
            entry = _abi.HostContractFn(reg._table[0])

            def call(level):
                args = fn.args_ctype()
                args.level = level
                err = _abi.AbiError()
                entry(_abi.HostContractInstance(), C.addressof(args), None, C.pointer(err))
                return err

            def text(err):
                return C.string_at(err.message.ptr, err.message.len)

            first = call(1)
            other = {}
            worker = threading.Thread(target=lambda: other.setdefault("err", call(2)))
            worker.start()
            worker.join()
            self.assertEqual(text(other["err"]), b"RuntimeError: failure number 002")
            self.assertEqual(text(first), b"RuntimeError: failure number 001")
            self.assertEqual(reg.failures, 2)

    def test_kitchen_calls_a_python_host_contract(self):
        lines = []

        class Log:
            def write(self, level, message):
                lines.append((level, message))
                return True

        with runtime(loaders=()) as rt:
            reg = rt.register_host_contract("host.test.cli.Log", api=KITCHEN_API,
                                            implementation=Log())
            rt.load(ENV["PYHOST_KITCHEN"])
            k = rt.find("test.cli.Kitchen", api=KITCHEN_API)
            t = k.types
            text = "a\0b \u00fc\U0001f50c"
            self.assertEqual(k.echo(text), "v1:" + text)
            self.assertEqual(lines, [(3, "v1:" + text)])
            self.assertEqual(reg.calls, 1)
            # the rest of the kitchen, one call per type category
            self.assertEqual(k.mix(-1, 2, -3, 4, 1.5, 0.25, True, "Blue"),
                             -1 + 2 - 3 + 4 + 3 + 1 + 1000 + 256)
            self.assertEqual(k.checksum(b"\x01\x02\x03"), 1 + 4 + 9)
            self.assertEqual(k.sum_points([t.Point(1, 2), t.Point(3, 4)]), t.Point(4, 6))
            m = k.scale(t.Mixed(7, 1.5, 3), 2)
            self.assertEqual(m, t.Mixed(7, 3.0, 6))
            rec = k.describe(dict(flag=False, inner=dict(a=1, b=2, c=3), label="lbl",
                                  points=[t.Point(5, 6)], color="Red", payload=b"xyz",
                                  opaque=None, half=-7))
            self.assertEqual((rec.flag, rec.inner, rec.label, rec.points, rec.color,
                              rec.payload, rec.opaque, rec.half),
                             (True, t.Inner(2, 3, 4), "v1:lbl", [t.Point(5, 6)], t.Color.Blue,
                              b"xyz", None, 7))
            self.assertEqual(k.lists(b"ab", ["x", "yz"], ["Red", t.Color.Blue], [None, 8],
                                     [True, False, True], [b"123", bytearray(b"4")]),
                             2 + 3 + 257 + 1 + 2 + 4)
            access = k.grant("Write|Exec", 0x1000)
            self.assertIsInstance(access, t.Access)
            self.assertEqual(access, t.Access.All)
            with self.assertRaises(polyplug.PanicError) as cm:
                k.grant(t.Access.Read, None)
            self.assertIn("nichts zu tun", cm.exception.message)
            self.assertIsNone(k.reset())
            # The host contract called directly, as a plugin does.
            log = rt.host_contract("host.test.cli.Log", api=KITCHEN_API)
            self.assertIs(log.write(1, "direct"), True)
            self.assertEqual(lines[-1], (1, "direct"))
            with self.assertRaises(polyplug.Error) as cm:
                rt.register_host_contract("host.test.cli.Log", api=KITCHEN_API,
                                          implementation=Log())
            self.assertIn("duplicate", cm.exception.message)
            self.assertEqual(k.echo("again"), "v1:again")  # the first registration serves on

    def test_reentrant_calls_keep_their_own_storage(self):
        # A contract object reuses its argument/result storage from call to call; a host contract
        # that calls back into the same object while a call is running must get storage of its
        # own, and the outer call must still see its own arguments, result and error state.
        nested = []
        case = self

        class Log:
            def write(self, level, message):
                if message == "v1:outer \u00fc":
                    # the running echo holds its storage: a nested echo must not get it
                    nested.append(len(k._pools[echo_id]))
                    nested.append(k.mix(1, 2, 3, 4, 0.5, 0.25, False, "Red"))
                    nested.append(k.checksum(b"\x02"))
                    with case.assertRaises(polyplug.PanicError):
                        k.grant(t.Access.Read, None)
                    # (not echo itself: the kitchen keeps echo's result in the instance, so a
                    # nested echo would replace the outer one on the guest's side)
                return True

        with runtime(loaders=()) as rt:
            rt.register_host_contract("host.test.cli.Log", api=KITCHEN_API, implementation=Log())
            rt.load(ENV["PYHOST_KITCHEN"])
            k = rt.find("test.cli.Kitchen", api=KITCHEN_API)
            t = k.types
            echo_id = k._decl.by_name["echo"].id
            self.assertEqual(k.echo("warm"), "v1:warm")  # echo's storage now in its pool
            expected_mix = k.mix(1, 2, 3, 4, 0.5, 0.25, False, "Red")
            self.assertEqual(k.echo("outer \u00fc"), "v1:outer \u00fc")
            self.assertEqual(nested, [0, expected_mix, 2])
            # The storage serves on for ordinary calls and errors afterwards.
            self.assertEqual(k.echo(b"after"), "v1:after")
            self.assertEqual(k.echo(""), "v1:")
            with self.assertRaises(polyplug.PanicError):
                k.grant(t.Access.Read, None)
            self.assertEqual(k.grant("Write|Exec", 0x1000), t.Access.All)

    def _kitchen_with(self, rt):
        class Log:
            def write(self, level, message):
                return True
        registration = rt.register_host_contract("host.test.cli.Log", api=KITCHEN_API,
                                                 implementation=Log())
        rt.load(ENV["PYHOST_KITCHEN"])
        return rt.find("test.cli.Kitchen", api=KITCHEN_API), registration

    def test_results_and_errors_are_cleared_before_each_call(self):
        # The call storage is reused: a provider that reports success without writing its result
        # (or fails without a message) must not show the previous call's result (or message).
        import ctypes
        from polyplug import _abi
        with runtime(loaders=()) as rt:
            k, _ = self._kitchen_with(rt)
            t = k.types
            ids = {name: k._decl.by_name[name].id for name in ("echo", "mix", "grant")}
            self.assertEqual(k.echo("secret"), "v1:secret")
            self.assertEqual(k.mix(1, 2, 3, 4, 0.5, 0.25, False, "Red"), 13)
            with self.assertRaises(polyplug.PanicError) as cm:
                k.grant(t.Access.Read, None)
            self.assertIn("no target", cm.exception.message)

            @_abi.GuestContractFn
            def lazy(instance, args, out, err):  # success, result not written
                pass

            @_abi.GuestContractFn
            def code_only(instance, args, out, err):  # Panic, no message written
                ctypes.c_uint32.from_address(err).value = polyplug.PanicError.default_code

            saved = list(k._entries)
            try:
                k._entries[ids["echo"]] = k._entries[ids["mix"]] = lazy
                k._entries[ids["grant"]] = code_only
                self.assertEqual(k.echo("bob"), "")
                self.assertEqual(k.mix(1, 2, 3, 4, 0.5, 0.25, False, "Red"), 0)
                with self.assertRaises(polyplug.PanicError) as cm:
                    k.grant(t.Access.Read, None)
                self.assertEqual(cm.exception.message, "test.cli.Kitchen.grant: failed")
            finally:
                k._entries[:] = saved
            self.assertEqual(k.echo("again"), "v1:again")

    def test_bad_pointers_from_plugins_raise(self):
        # Lengths and pointers a plugin hands back are checked before anything is read: beyond
        # 2^31-1 bytes, NULL with a length, or past the address space -> InvalidPointerError.
        import ctypes
        from polyplug import _abi
        text = ctypes.create_string_buffer(b"hello", 8)
        good = ctypes.addressof(text)
        cases = [(good, 2 ** 31), (good, 2 ** 32 + 5), (2 ** 63, 5), (2 ** 64 - 3, 2),
                 (0, 5)]
        with runtime(loaders=()) as rt:
            k, registration = self._kitchen_with(rt)
            echo_id = k._decl.by_name["echo"].id
            saved = list(k._entries)
            for ptr, length in cases + [(good, 5)]:
                @_abi.GuestContractFn
                def liar(instance, args, out, err, ptr=ptr, length=length):
                    view = _abi.StringView.from_address(out)
                    view.ptr, view.len = ptr, length
                k._entries[echo_id] = liar
                try:
                    if (ptr, length) == (good, 5):
                        self.assertEqual(k.echo("x"), "hello")
                    else:
                        with self.assertRaises(polyplug.InvalidPointerError, msg=(ptr, length)):
                            k.echo("x")
                finally:
                    k._entries[:] = saved
            self.assertEqual(k.echo("fine"), "v1:fine")
            # A host contract implemented in Python, called with such a StringView: the
            # plugin gets Panic back (nothing read, nothing raised into C).
            write = registration.decl.by_name["write"]
            thunk = registration._thunks[write.id]
            for ptr, length in cases:
                args = write.args_ctype()
                args.level = 1
                args.message = _abi.StringView(ptr, length)
                out, err = ctypes.c_bool(), _abi.AbiError()
                thunk(_abi.HostContractInstance(), ctypes.addressof(args), ctypes.addressof(out),
                      ctypes.pointer(err))
                self.assertEqual(err.code, polyplug.PanicError.default_code, (ptr, length))
                message = ctypes.string_at(err.message.ptr, err.message.len).decode()
                self.assertIn("InvalidPointerError", message)
                self.assertFalse(out.value)

    def test_empty_vm_entry_is_function_not_available(self):
        with runtime(loaders=()) as rt:
            k, _ = self._kitchen_with(rt)
            saved = k._entries
            k._vm, k._entries = None, None  # what _read_entries leaves for an empty VM entry
            try:
                with self.assertRaises(polyplug.FunctionNotAvailableError):
                    k.echo("x")
            finally:
                k._entries = saved
            self.assertEqual(k.echo("y"), "v1:y")

    def test_exceptions_become_panic(self):
        class Log:
            def write(self, level, message):
                if level == 3:
                    raise ValueError(f"refusing {message!r}")
                return "not a bool"

        with runtime(loaders=()) as rt:
            reg = rt.register_host_contract("host.test.cli.Log", api=KITCHEN_API,
                                            implementation=Log())
            rt.load(ENV["PYHOST_KITCHEN"])
            k = rt.find("test.cli.Kitchen", api=KITCHEN_API)
            # The plugin's typed client raises on the log's failure, and its glue reports that
            # as its own Panic, carrying our exception's text through.
            with self.assertRaises(polyplug.PanicError) as cm:
                k.echo("hi")
            self.assertIn("ValueError: refusing 'v1:hi'", cm.exception.message)
            self.assertEqual(reg.failures, 1)
            log = rt.host_contract("host.test.cli.Log", api=KITCHEN_API)
            with self.assertRaises(polyplug.PanicError) as cm:
                log.write(3, "boom")
            self.assertEqual(cm.exception.code, 3)
            self.assertIn("ValueError: refusing 'boom'", cm.exception.message)
            with self.assertRaises(polyplug.PanicError) as cm:
                log.write(1, "x")  # a result of the wrong type is refused too
            self.assertIn("bool", cm.exception.message)
            self.assertEqual(reg.failures, 3)

    def test_incomplete_implementation(self):
        with runtime(loaders=()) as rt:
            with self.assertRaises(polyplug.ArgumentError) as cm:
                rt.register_host_contract("host.test.cli.Log", api=KITCHEN_API,
                                          implementation={})
            self.assertIn("write", str(cm.exception))
            with self.assertRaises(polyplug.ArgumentError):
                rt.register_host_contract("host.test.cli.Log", api=KITCHEN_API,
                                          implementation={"write": print, "extra": print})
            with self.assertRaises(polyplug.ContractFileError):
                rt.register_host_contract("test.cli.Kitchen", api=KITCHEN_API,
                                          implementation={})


class Memory(unittest.TestCase):
    @unittest.skipIf(os.environ.get("POLYPLUG_TEST_SANITIZED"),
                     "under AddressSanitizer RSS measures its quarantine of freed memory, not "
                     "leaks; the plain build checks the bound")
    def test_host_allocated_results_are_freed(self):
        with runtime() as rt:
            rt.load_dirs([ENV["PYHOST_EXAMPLE_BUNDLES"], ENV["PYHOST_EXAMPLE_SCRIPTS"]])
            rt.load(os.path.join(ENV["PYHOST_PARITY_DIR"], "c"))
            vm = "lua" if "lua" in LANGS else None
            if vm:
                rt.load(os.path.join(ENV["PYHOST_PARITY_DIR"], vm))
            kits = rt.find_all("test.parity.Kit", api=PARITY_API)
            # VM results this size overflow the 4 KiB arena into host-allocated blocks.
            big = {kit: "x" * (10000 if kit.dispatch == "vm" else 100) for kit in kits}

            def round_trip():
                providers = rt.find_all("example.calc", api=CALC_API)
                for p in providers:
                    p.close()
                rt.bundles()
                for kit in kits:
                    kit.greet(big[kit])
                    kit.colors(3)
                rt.describe_contract_file_text(CALC_API)

            for _ in range(1000):
                round_trip()
            start = rss_kib()
            for _ in range(10000):
                round_trip()
            grown = rss_kib() - start
            self.assertLess(grown, 16 * 1024, f"RSS grew by {grown} KiB over 10,000 rounds")


if __name__ == "__main__":
    missing = [name for name in REQUIRED if not ENV.get(name)]
    if missing:
        print("skipped: run through meson (missing " + ", ".join(missing) + ")")
        sys.exit(77)
    unittest.main(verbosity=2)
