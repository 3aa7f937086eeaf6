#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every subcommand of the `polyplug` tool on good and bad input: exit codes (0 done, 1 input
refused, 2 command line wrong) and the messages a user reads."""
import os
import re
import shlex
import shutil
import struct
import subprocess
from pathlib import Path

import cli_support
from cli_support import run_tool as run

ARGS = None

GOOD_API = """
[[types]]
name = "Pair"
fields = [{ name = "a", type = "u8" }, { name = "b", type = "f64" }]

[[guest_contract]]
name = "demo.Math"
version = "1.4"

[[guest_contract.functions]]
name = "add"
params = [{ name = "p", type = "Pair" }]
return = "f64"
"""


class Case(cli_support.ToolCase):
    TMP_PREFIX = "polyplug-cli-"

    def write(self, name, text):
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def bundle(self, name, manifest, library=None, library_name=None):
        """A bundle directory with a manifest and, optionally, a copied library."""
        directory = self.tmp / name
        directory.mkdir()
        (directory / "manifest.toml").write_text(manifest)
        if library is not None:
            shutil.copy(library, directory / (library_name or Path(library).name))
        return directory


def manifest_for(name, bundle_id, file, extra=""):
    return (f'id = "{bundle_id}"\nname = "{name}"\nversion = "1.0.0"\nloader = "native"\n'
            f'file = "{file}"\n{extra}')


class Overview(Case):
    def test_no_command_is_a_usage_error(self):
        self.expect(run(), 2, r"usage: polyplug <command>", stream="err")

    def test_help_lists_every_command(self):
        result = run("--help")
        self.expect(result, 0)
        for command in ("id", "generate", "manifest", "validate", "inspect"):
            self.assertIn(f"  {command} ", result.stdout)

    def test_help_for_one_command(self):
        self.expect(run("help", "generate"), 0, r"--lang c ", stream="out")
        self.expect(run("validate", "--help"), 0, r"usage: polyplug validate", stream="out")

    def test_version(self):
        # The version is meson's project version, the one libpolyplug.so and the packages carry.
        self.expect(run("--version"), 0,
                    "^polyplug " + re.escape(ARGS.project_version) + r" \(C ABI 1\)\n$",
                    stream="out")

    def test_unknown_command_suggests(self):
        self.expect(run("genrate"), 2, r"unknown command 'genrate' \(did you mean 'generate'\?\)",
                    stream="err")

    def test_unknown_option(self):
        self.expect(run("id", "x", "--majr", "2"), 2, r"unknown option '--majr'", stream="err")


class Id(Case):
    def test_known_ids(self):
        result = run("id", "example.calc@1")
        self.expect(result, 0)
        # The example contract's id (examples/contracts) and a manifest's bundle id.
        self.assertRegex(result.stdout, r"guest contract\s+0x1c2310712da78b06")
        self.expect(run("id", "typed-calc"), 0, r"bundle\s+0x8c808caa2df05367")
        self.expect(run("id", "adder"), 0, r"bundle\s+0x235decfdfd543243")

    def test_major_changes_contract_ids_not_the_bundle_id(self):
        one, two = run("id", "x.y@1").stdout, run("id", "x.y", "--major", "2").stdout
        line = lambda text, label: re.search(label + r"\s+(0x[0-9a-f]{16})", text).group(1)
        self.assertEqual(line(one, "bundle"), line(two, "bundle"))
        self.assertNotEqual(line(one, "guest contract"), line(two, "guest contract"))
        self.assertNotEqual(line(one, "guest contract"), line(one, "host contract"))

    def test_bad_input(self):
        self.expect(run("id"), 2, r"missing NAME")
        self.expect(run("id", "a@b"), 2, r"'b' is not a major version")
        self.expect(run("id", "a@99999999999"), 2, r"too large")
        self.expect(run("id", "@1"), 2, r"the name is empty")
        self.expect(run("id", "a", "b"), 2, r"unexpected argument 'b'")


class Generate(Case):
    def test_c_and_cpp_headers(self):
        api = self.write("demo.api.toml", GOOD_API)
        self.expect(run("generate", "--api", api, "--lang", "c", "--out", self.tmp / "out"), 0,
                    r"wrote .*demo\.h \(1 guest and 0 host contracts\)")
        header = (self.tmp / "out" / "demo.h").read_text()
        self.assertIn("#ifndef POLYPLUG_GENERATED_DEMO_H", header)
        self.assertIn("    DEMO_MATH_FN_ADD = 0,\n", header)
        self.assertIn("offsetof(Pair, b) == 8", header)
        self.assertIn("static inline AbiError demo_math_add(", header)
        self.expect(run("generate", "--api", api, "--lang", "cpp", "--out", self.tmp / "out",
                        "--namespace", "app::api", "--header", "demo_api"), 0)
        header = (self.tmp / "out" / "demo_api.hpp").read_text()
        self.assertIn("namespace app::api {", header)
        self.assertIn('polyplug::guest_contract_name name{"demo.Math", 1, 4, 0}', header)
        self.assertIn("polyplug::function<0, double(Pair)> add{\"add\"}", header)

    def test_the_generated_headers_compile(self):
        api = self.write("demo.api.toml", GOOD_API)
        include = Path(ARGS.source).parents[1] / "include"
        for lang, compiler, source in (("c", "cc", "demo.h"), ("cpp", "c++", "demo.hpp")):
            self.expect(run("generate", "--api", api, "--lang", lang, "--out", self.tmp), 0)
            main = self.write(f"main_{lang}.{'c' if lang == 'c' else 'cpp'}",
                              f'#include "{source}"\nint main(void) {{ return 0; }}\n')
            std = "-std=c11" if lang == "c" else "-std=c++20"
            built = subprocess.run([compiler, std, "-Wall", "-Werror", f"-I{include}",
                                    f"-I{self.tmp}", main, "-o", self.tmp / f"a_{lang}"],
                                   capture_output=True, text=True)
            self.assertEqual(built.returncode, 0, built.stderr)

    def test_usage_errors(self):
        api = self.write("demo.api.toml", GOOD_API)
        out = self.tmp / "out"
        self.expect(run("generate", "--lang", "c", "--out", out), 2, r"missing option '--api'")
        self.expect(run("generate", "--api", api, "--lang", "rust", "--out", out), 2,
                    r"unknown language 'rust'")
        self.expect(run("generate", "--api", api, "--lang", "c", "--out", out, "--namespace",
                        "x"), 2, r"--namespace applies to --lang cpp only")
        self.expect(run("generate", "--api", api, "--lang", "cpp", "--out", out, "--namespace",
                        "1x"), 2, r"'1x' is not a C\+\+ namespace name")
        self.expect(run("generate", "--api", api, "--lang", "c"), 2, r"missing option '--out'")
        self.assertFalse(out.exists())

    def test_refused_contract_files(self):
        out = self.tmp / "out"
        self.expect(run("generate", "--api", self.tmp / "none.toml", "--lang", "c", "--out", out),
                    1, r"none\.toml: no such file")
        bad = self.write("bad.api.toml", '[[guest_contract]]\nname = "a.B"\nversion = "1"\n'
                         '[[guest_contract.functions]]\nname = "f"\n'
                         'params = [{ name = "s", type = "Strng" }]\n')
        self.expect(run("generate", "--api", bad, "--lang", "c", "--out", out), 1,
                    r"bad\.api\.toml:6:\d+: .*unknown type 'Strng'.*did you mean 'StringView'",
                    stream="err")
        syntax = self.write("syntax.api.toml", "[[guest_contract]\n")
        self.expect(run("generate", "--api", syntax, "--lang", "cpp", "--out", out), 1,
                    r"syntax\.api\.toml:1:\d+: TOML syntax error")
        self.assertFalse(out.exists())

    def test_what_a_language_cannot_express(self):
        params = ", ".join(f'{{ name = "p{i}", type = "u8" }}' for i in range(9))
        wide = self.write("wide.api.toml", '[[guest_contract]]\nname = "w.Wide"\nversion = "1"\n'
                          f'[[guest_contract.functions]]\nname = "f"\nparams = [{params}]\n')
        self.expect(run("generate", "--api", wide, "--lang", "cpp", "--out", self.tmp), 1,
                    r"9 parameters; the typed C\+\+ API takes at most 8")
        self.expect(run("generate", "--api", wide, "--lang", "c", "--out", self.tmp), 0)
        clash = self.write("clash.api.toml",
                           '[[guest_contract]]\nname = "a.b_c"\nversion = "1"\n'
                           '[[guest_contract]]\nname = "a.bC"\nversion = "1"\n')
        self.expect(run("generate", "--api", clash, "--lang", "c", "--out", self.tmp), 1,
                    r"would both be named 'A_B_C_NAME' in C")


class Manifest(Case):
    def bundle_toml(self, body, api=GOOD_API):
        self.write("api.toml", api)
        return self.write("bundle.toml", body)

    def test_generates_a_manifest_the_runtime_reads(self):
        bundle = self.bundle_toml(
            '[bundle]\nname = "my_plugin"\nversion = "1.2.0"\napi = "api.toml"\n'
            'loader = "native"\n[bundle.file]\nlinux.x86_64 = "libmy.so"\n'
            'linux.aarch64 = "libmy_arm.so"\n'
            '[[plugin]]\nname = "math"\nimplements = ["demo.Math@1.2"]\n'
            '[[dependency]]\nkind = "contract"\ncontract = "pipeline.Validator"\n'
            'min_version = "1.0"\n')
        self.expect(run("manifest", "--bundle", bundle), 0,
                    r"wrote .*manifest\.toml \(bundle 'my_plugin', id 0x546cf140b9cd1fe7, "
                    r"1 contracts provided, 1 dependencies\)")
        text = (self.tmp / "manifest.toml").read_text()
        self.assertIn('id = "0x546cf140b9cd1fe7"', text)  # fnv1a64("my_plugin"), spec 9.8
        self.assertIn('provides = ["demo.Math@1"]', text)
        self.assertIn('function_count = { "demo.Math@1" = 1 }', text)
        self.assertIn('contract_id = "0x45173a959eec57c5"', text)  # spec 9.8's example id
        self.assertIn('linux.aarch64 = "libmy_arm.so"', text)
        out = self.tmp / "elsewhere"
        self.expect(run("manifest", "--bundle", bundle, "--out", out), 0)
        self.assertEqual((out / "manifest.toml").read_text(), text)

    def test_refused_bundle_files(self):
        cases = [
            ('[bundle]\nname = "p"\nloader = "native"\nfile = "x.so"\napi = "api.toml"\n'
             '[[plugin]]\nname = "m"\nimplements = ["demo.Maths@1"]\n',
             r"bundle\.toml:8:\d+: .*no guest contract demo\.Maths@1 \(did you mean 'demo\.Math'\?\)"),
            ('[bundle]\nname = "p"\nloader = "native"\nfile = "x.so"\napi = "api.toml"\n'
             '[[plugin]]\nname = "m"\nimplements = ["demo.Math@1.9"]\n',
             r"at version 1\.4\.0 in the contract file; a plugin cannot implement a later minor"),
            ('[bundle]\nname = "p"\nloader = "native"\nfile = "x.so"\n'
             '[[plugin]]\nname = "m"\nimplements = ["demo.Math@1"]\n',
             r"\[bundle\] has no 'api'"),
            ('[bundle]\nname = "p"\nloader = "native"\nfiel = "x.so"\n',
             r"bundle\.toml:4:1: unknown key 'fiel' in \[bundle\] \(did you mean 'file'\?\)"),
            ('[bundle]\nname = "p"\nloader = "native"\n', r"\[bundle\] has no 'file'"),
            ('name = "p"\n', r"unknown key 'name' in the bundle file"),
            ('[plugin]\n', r"has no \[bundle\] table|must be an array of tables"),
            ('[bundle]\nname = ""\nloader = "native"\nfile = "x.so"\n',
             r"error: [^ ]*bundle\.toml: key 'name' must not be empty\n"),
            ('[bundle]\nname = "p"\nversion = "x"\nloader = "native"\nfile = "x.so"\n',
             r"error: [^ ]*bundle\.toml: [^\n]*'version'[^\n]*\n"),
            ('[bundle]\nname = "p"\nloader = "native"\nfile = "x.so"\n'
             '[[plugin]]\nname = "m"\nimplements = ["demo.Math"]\n',
             r"must name a contract and its version"),
            ('[bundle\n', r"bundle\.toml:1:\d+: TOML syntax error"),
            # 100,000 segments overflowed the stack inside toml++ before the pre-scan.
            ("[" + ".".join(["a"] * 100000) + "]\n",
             r"bundle\.toml:1:129: keys, tables and arrays nested deeper than 64 levels"),
        ]
        for body, pattern in cases:
            with self.subTest(body=body):
                bundle = self.bundle_toml(body)
                self.expect(run("manifest", "--bundle", bundle), 1, pattern, stream="err")
                self.assertFalse((self.tmp / "manifest.toml").exists())
        self.expect(run("manifest", "--bundle", self.tmp / "missing.toml"), 1, r"is not a file")
        self.expect(run("manifest"), 2, r"missing option '--bundle'")

    def test_a_script_bundle_keeps_its_contract_file(self):
        # VM loaders read the contract file the manifest's `api` names (api.toml without it).
        self.write("calc.api.toml", GOOD_API)
        bundle = self.write("bundle.toml",
                            '[bundle]\nname = "calc-lua"\nversion = "1.0.0"\n'
                            'api = "calc.api.toml"\n'
                            'loader = "lua"\nfile = "calc.lua"\n'
                            '[[plugin]]\nname = "calc"\nimplements = ["demo.Math@1"]\n')
        self.expect(run("manifest", "--bundle", bundle), 0, r"1 contracts provided")
        text = (self.tmp / "manifest.toml").read_text()
        self.assertIn('\napi = "calc.api.toml"\n', text)
        self.assertIn('function_count = { "demo.Math@1" = 1 }', text)

    def test_the_named_contract_file_must_exist(self):
        cases = [
            ('loader = "lua"\nfile = "calc.lua"\napi = "calc.api.toml"\n',
             r"bundle\.toml:6:7: the contract file '[^']*calc\.api\.toml' named by 'api' does not "
             r"exist"),
            ('loader = "native"\nfile = "x.so"\napi = "gone/x.api.toml"\n',
             r"the contract file '[^']*gone/x\.api\.toml' named by 'api' does not exist"),
            ('loader = "python"\nfile = "calc.py"\napi = "../api.toml"\n',
             r"'api' path '\.\./api\.toml' leaves the bundle directory; a 'python' bundle's "
             r"contract file must be inside it"),
        ]
        for body, pattern in cases:
            with self.subTest(body=body):
                self.write("api.toml", GOOD_API)
                bundle = self.write("b/bundle.toml",
                                    '[bundle]\nname = "p"\nversion = "1.0.0"\n' + body)
                self.expect(run("manifest", "--bundle", bundle), 1,
                            r"^polyplug manifest: error: [^\n]*" + pattern, stream="err")
                self.assertFalse((self.tmp / "b" / "manifest.toml").exists())

    def test_the_broken_api_file_is_named(self):
        bundle = self.bundle_toml('[bundle]\nname = "p"\nloader = "native"\nfile = "x.so"\n'
                                  'api = "api.toml"\n[[plugin]]\nname = "m"\n'
                                  'implements = ["demo.Math@1"]\n', api="[[types]]\nname = 3\n")
        self.expect(run("manifest", "--bundle", bundle), 1, r"api\.toml:2:\d+: ")


class Validate(Case):
    def fixture(self, name):
        return Path(ARGS.plugins) / name

    def test_a_good_bundle(self):
        self.expect(run("validate", "--bundle-dir", ARGS.kitchen), 0,
                    r"bundle 'kitchen' 2\.3\.4", r"ok: libkitchen\.so is an ELF \S+ shared object",
                    r"ok: libkitchen\.so exports polyplug_abi_version",
                    r"ok: libkitchen\.so exports polyplug_init", r"\nvalid\n")
        self.expect(run("validate", "--bundle-dir", ARGS.kitchen, "--api",
                        Path(ARGS.source) / "kitchen.api.toml"), 0,
                    r"ok: test\.cli\.Kitchen@2 matches")

    def test_function_count_against_the_contract_file(self):
        directory = self.bundle("k", (Path(ARGS.kitchen) / "manifest.toml").read_text().replace(
            '"test.cli.Kitchen@2" = 9', '"test.cli.Kitchen@2" = 8'),
            Path(ARGS.kitchen) / "libkitchen.so")
        self.expect(run("validate", directory, "--api",
                        Path(ARGS.source) / "kitchen.api.toml"), 1,
                    r"error: function_count of test\.cli\.Kitchen@2 is 8, the contract file has 9",
                    r"invalid: 1 problem")

    def test_refused_bundles(self):
        adder = "0x235decfdfd543243"
        text_file = self.write("notes.txt", "not a library\n" * 10)
        cases = [
            ("no-manifest", None, None,
             r"error: manifest '[^']*no-manifest/manifest\.toml': no such file\n"),
            ("bad-id", manifest_for("adder", "0x1", "fixture_adder.so"), None,
             r"error: .*0x235decfdfd543243"),
            ("missing-artifact", manifest_for("adder", adder, "fixture_adder.so"), None,
             r"error: .*artifact .*fixture_adder\.so.* not found"),
            ("escapes", manifest_for("adder", adder, "../fixture_adder.so"), None,
             r"error: .*escapes the bundle directory"),
            ("absolute", manifest_for("adder", adder, "/usr/lib/libc.so"), None,
             r"error: .*escapes the bundle directory"),
            ("text", manifest_for("adder", adder, "notes.txt"), text_file,
             r"error: notes\.txt cannot be read as a shared library: not an ELF"),
            ("no-entry-points", manifest_for("adder", adder, "fixture_not_a_plugin.so"),
             self.fixture("fixture_not_a_plugin.so"),
             r"error: fixture_not_a_plugin\.so does not export the function polyplug_init"),
        ]
        for name, manifest, library, pattern in cases:
            with self.subTest(name=name):
                if manifest is None:
                    directory = self.tmp / name
                    directory.mkdir()
                else:
                    directory = self.bundle(name, manifest, library)
                self.expect(run("validate", directory), 1, pattern,
                            r"invalid: \d+ problem")

    def test_a_symlink_out_of_the_bundle_is_refused(self):
        directory = self.bundle("linked", manifest_for("adder", "0x235decfdfd543243",
                                                       "fixture_adder.so"))
        os.symlink(self.fixture("fixture_adder.so").resolve(), directory / "fixture_adder.so")
        self.expect(run("validate", directory), 1,
                    r"goes through a symlink to .* outside the bundle directory")

    def test_an_id_above_2_63_as_a_bare_decimal_integer(self):
        # The original's manifests write ids so (issue 21); fixture_adder's id has bit 63 set.
        wide = int(bundle_id("fixture_adder"), 16)
        self.assertGreater(wide, 2**63 - 1)
        cases = [
            ("wide", wide, 0, [r"bundle 'fixture_adder' 1\.0\.0", r"\nvalid\n"]),
            ("wide-tampered", wide - 1, 1,
             [r"error: .*id does not match the bundle name .*found 0x" + f"{wide - 1:016x}"]),
            ("wide-too-large", 2**64, 1,
             [r"error: .*key 'id' is 18446744073709551616, above 18446744073709551615"]),
        ]
        for name, value, code, patterns in cases:
            with self.subTest(name=name):
                manifest = manifest_for("fixture_adder", "", "fixture_adder.so").replace(
                    'id = ""', f"id = {value}  # fnv1a64(name)")
                directory = self.bundle(name, manifest, self.fixture("fixture_adder.so"))
                self.expect(run("validate", directory), code, *patterns)

    def test_validate_never_runs_the_bundle_but_inspect_does(self):
        marker = self.tmp / "constructor-ran.flag"
        env = dict(os.environ, POLYPLUG_MARKER=str(marker))
        directory = self.bundle("marker", manifest_for("marker", "0x" + bundle_id("marker"),
                                                       "libmarker.so"),
                                Path(ARGS.source_build) / "libmarker.so")
        self.expect(run("validate", directory, env=env), 0, r"\nvalid\n")
        self.assertFalse(marker.exists(), "validate ran the library's constructor")
        self.expect(run("inspect", directory, env=env), 0)
        self.assertTrue(marker.exists(), "inspect should have loaded the library")

    def test_contract_files(self):
        self.expect(run("validate", "--api", Path(ARGS.source) / "kitchen.api.toml"), 0,
                    r"guest contract test\.cli\.Kitchen@2 \(version 2\.3\.4, id 0x[0-9a-f]{16}\): "
                    r"9 functions", r"host contract host\.test\.cli\.Log@1")
        bad = self.write("bad.api.toml", '[[enum]]\nname = "E"\nrepr = "u8"\n'
                         'variants = [{ name = "A", value = 256 }]\n')
        self.expect(run("validate", "--api", bad), 1, r"bad\.api\.toml:4:\d+: ")
        self.expect(run("validate"), 2, r"give a bundle directory DIR, --api FILE, or both")

    def test_the_bundle_directory_is_positional(self):
        # Like inspect DIR; the older --bundle-dir DIR still works.
        for args in ([ARGS.kitchen], ["--bundle-dir", ARGS.kitchen]):
            with self.subTest(args=args):
                self.expect(run("validate", *args), 0, r"bundle 'kitchen' 2\.3\.4", r"\nvalid\n")
        self.expect(run("validate", ARGS.kitchen, "--api", Path(ARGS.source) / "kitchen.api.toml"),
                    0, r"ok: test\.cli\.Kitchen@2 matches")
        self.expect(run("validate", self.tmp / "absent"), 1,
                    r"error: manifest '[^']*absent/manifest\.toml': no such file",
                    r"invalid: 1 problem")
        self.expect(run("validate", ARGS.kitchen, "--bundle-dir", ARGS.kitchen), 2,
                    r"the bundle directory is given twice", stream="err")
        self.expect(run("validate", ARGS.kitchen, self.tmp), 2, r"unexpected argument",
                    stream="err")
        self.expect(run("validate", "--help"), 0, r"usage: polyplug validate DIR \[--api FILE\]",
                    stream="out")
        self.expect(run("--help"), 0, r"\n  validate DIR ", stream="out")


class EveryError(Case):
    """validate reports every independent problem of a contract file in one run."""

    BAD = ('[[types]]\nname = "Point"\n'
           'fields = [{ name = "x", type = "f32" }, { name = "y", type = "Flaot" }]\n\n'
           '[[guest_contract]]\nname = "demo.Calc"\nversion = "1.x"\n\n'
           '[[guest_contract.functions]]\nname = "add"\n'
           'params = [{ name = "a", type = "i32" }, { name = "b", type = "Strng" }]\n'
           'return = "i32"\n\n'
           '[[guest_contract.functions]]\nname = "add"\n'
           'params = [{ name = "p", type = "Point" }]\n')

    def errors(self, result):
        return [line for line in result.stderr.splitlines() if ": error: " in line]

    def test_every_error_of_the_file_with_its_place(self):
        bad = self.write("bad.api.toml", self.BAD)
        result = run("validate", "--api", bad)
        self.expect(result, 1,
                    r"bad\.api\.toml:3:\d+: unknown type 'Flaot' in field 'y' of type 'Point'",
                    r"bad\.api\.toml:7:11: bad version '1\.x' of guest contract 'demo\.Calc'",
                    r"bad\.api\.toml:11:\d+: unknown type 'Strng' in parameter 'b' of function "
                    r"'add' \(did you mean 'StringView'\?\)",
                    r"bad\.api\.toml:15:8: duplicate function name 'add' in guest contract "
                    r"'demo\.Calc' \(first at line 9\)",
                    r"bad\.api\.toml: 4 errors\n$", stream="err")
        self.assertEqual(len(self.errors(result)), 4, result.stderr)
        # In reading order, which for this file (no enums, structs first) is file order.
        lines = [int(re.search(r"toml:(\d+):", e).group(1)) for e in self.errors(result)]
        self.assertEqual(lines, sorted(lines), result.stderr)

    def test_one_error_is_counted_as_one(self):
        bad = self.write("one.api.toml", '[[enum]]\nname = "E"\nrepr = "u8"\n'
                         'variants = [{ name = "A", value = 256 }]\n')
        result = run("validate", "--api", bad)
        self.expect(result, 1, r"one\.api\.toml:4:\d+: value 256 of variant 'A' does not fit u8",
                    r"one\.api\.toml: 1 error\n$", stream="err")
        self.assertEqual(len(self.errors(result)), 1, result.stderr)

    def test_a_syntax_error_stops_the_reading(self):
        # Nothing after a TOML syntax error can be trusted: the one error reported.
        bad = self.write("syntax.api.toml", self.BAD + "[[guest_contract]\n")
        result = run("validate", "--api", bad)
        self.expect(result, 1, r"syntax\.api\.toml:17:\d+: TOML syntax error",
                    r"syntax\.api\.toml: 1 error\n$", stream="err")
        self.assertEqual(len(self.errors(result)), 1, result.stderr)

    def test_a_refused_name_is_not_reported_again_where_it_is_used(self):
        # 'int' is refused as a type name (reserved in C); its two uses are not "unknown type".
        bad = self.write("reserved.api.toml",
                         '[[types]]\nname = "int"\nfields = [{ name = "v", type = "i32" }]\n\n'
                         '[[guest_contract]]\nname = "r.R"\nversion = "1"\n\n'
                         '[[guest_contract.functions]]\nname = "f"\n'
                         'params = [{ name = "a", type = "int" }]\nreturn = "int"\n'
                         '[[guest_contract.functions]]\nname = "class"\n')
        result = run("validate", "--api", bad)
        self.expect(result, 1, r"reserved\.api\.toml:2:\d+: type name 'int' is a reserved word",
                    r"reserved\.api\.toml:14:\d+: function name 'class' is a reserved word",
                    r"2 errors\n$", stream="err")
        self.assertNotIn("unknown type", result.stderr)

    def test_independent_errors_in_enums_structs_and_contracts(self):
        bad = self.write("many.api.toml",
                         '[[enum]]\nname = "E"\nrepr = "u9"\n'
                         'variants = [{ name = "A", value = 1 }, { name = "B", value = 1 }]\n\n'
                         '[[types]]\nname = "S"\nfields = [{ name = "a", type = "u8" }, '
                         '{ name = "a", type = "u16" }]\n\n'
                         '[[host_contract]]\nname = "logger"\nversion = "1"\n\n'
                         '[[guest_contract]]\nname = "g.G"\nversion = "1"\nextra = 1\n')
        result = run("validate", "--api", bad)
        self.expect(result, 1, r"many\.api\.toml:3:\d+: repr 'u9' of enum 'E' must be",
                    r"many\.api\.toml:4:\d+: variant 'B' has the value 1 of variant 'A'",
                    r"many\.api\.toml:8:\d+: duplicate field name 'a' in type 'S'",
                    r"many\.api\.toml:11:\d+: host contract name 'logger' must start with "
                    r"'host\.'",
                    r"many\.api\.toml:17:1: unknown key 'extra' in guest contract 'g\.G'",
                    r"5 errors\n$", stream="err")

    def test_validate_dir_lists_every_error_of_the_api_file(self):
        bad = self.write("bad.api.toml", self.BAD)
        result = run("validate", ARGS.kitchen, "--api", bad)
        self.expect(result, 1, r"error: [^\n]*bad\.api\.toml:3:\d+: unknown type 'Flaot'",
                    r"error: [^\n]*bad\.api\.toml:15:8: duplicate function name",
                    r"invalid: 4 problems", stream="out")

    def test_generate_still_stops_at_the_first(self):
        bad = self.write("bad.api.toml", self.BAD)
        result = run("generate", "--api", bad, "--lang", "c", "--out", self.tmp)
        self.expect(result, 1, r"bad\.api\.toml:3:\d+: unknown type 'Flaot'", stream="err")
        self.assertNotIn("Strng", result.stderr)


class Types(Case):
    def rows(self):
        result = run("types")
        self.expect(result, 0, r"^TYPE +SIZE +ALIGN +DESCRIPTION\n", stream="out")
        rows = {}
        for line in result.stdout.splitlines()[1:]:
            if not line.strip():
                break
            name, size, align, description = line.split(None, 3)
            rows[name] = (size, align, description)
        return rows, result.stdout

    def test_lists_every_built_in_type(self):
        rows, text = self.rows()
        pointer = struct.calcsize("P")
        self.assertEqual(list(rows), ["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32",
                                      "f64", "bool", "StringView", "Buffer", "Ptr", "Void",
                                      "Array<T>"])
        self.assertEqual(rows["u16"][:2], ("2", "2"))
        self.assertEqual(rows["f64"][:2], ("8", "8"))
        self.assertEqual(rows["StringView"][:2], (str(2 * pointer), str(pointer)))
        self.assertEqual(rows["Buffer"][:2], (str(3 * pointer), str(pointer)))
        self.assertEqual(rows["Void"][:2], ("-", "-"))
        self.assertIn("only as a return type", rows["Void"][2])
        self.assertRegex(text, r"\[\[types\]\] struct .* \[\[enum\]\]")

    def test_every_listed_type_is_accepted_by_the_parser(self):
        rows, _ = self.rows()
        for name in rows:
            with self.subTest(type=name):
                param = {"Void": None, "Array<T>": "Array<u8>"}.get(name, name)
                text = '[[guest_contract]]\nname = "t.T"\nversion = "1"\n' \
                       '[[guest_contract.functions]]\nname = "f"\n'
                text += (f'params = [{{ name = "p", type = "{param}" }}]\n' if param
                         else 'return = "Void"\n')
                api = self.write("t.api.toml", text)
                self.expect(run("validate", "--api", api), 0, r"valid contract file")
                # And the name cannot be taken by a declaration.
                if name != "Array<T>":
                    taken = self.write("taken.api.toml",
                                       f'[[types]]\nname = "{name}"\n'
                                       'fields = [{ name = "v", type = "u8" }]\n')
                    self.expect(run("validate", "--api", taken), 1,
                                r"is a built-in type|is a reserved word")

    def test_the_docs_table_is_the_tools_output(self):
        if struct.calcsize("P") != 8:
            self.skipTest("docs/CLI.md gives the sizes of a 64-bit machine")
        docs = (Path(ARGS.source).parents[1] / "docs" / "CLI.md").read_text()
        begin = "<!-- polyplug types --format markdown: begin -->\n"
        end = "<!-- polyplug types --format markdown: end -->"
        self.assertIn(begin, docs)
        table = docs[docs.index(begin) + len(begin):docs.index(end)]
        result = run("types", "--format", "markdown")
        self.expect(result, 0)
        self.assertEqual(table, result.stdout,
                         "docs/CLI.md's type table is out of date: replace it with the output of "
                         "`polyplug types --format markdown`")

    def test_bad_format(self):
        self.expect(run("types", "--format", "json"), 2,
                    r"unknown format 'json' for --format \(text or markdown\)", stream="err")
        self.expect(run("types", "extra"), 2, r"unexpected argument 'extra'", stream="err")


class Names(Case):
    """validate DIR: the bundle name and the [[plugin]] names of manifest.toml and the
    bundle.toml beside it must agree."""

    def kitchen(self, bundle_toml=None, manifest_extra=""):
        directory = self.tmp / "kitchen"
        directory.mkdir()
        (directory / "manifest.toml").write_text(
            (Path(ARGS.kitchen) / "manifest.toml").read_text() + manifest_extra)
        shutil.copy(Path(ARGS.kitchen) / "libkitchen.so", directory)
        if bundle_toml is not None:
            (directory / "bundle.toml").write_text(bundle_toml)
        return directory

    def bundle_toml(self, name="kitchen", plugin="kitchen"):
        return (Path(ARGS.source) / "kitchen.bundle.toml").read_text().replace(
            'name = "kitchen"\nversion', f'name = "{name}"\nversion').replace(
            '[[plugin]]\nname = "kitchen"', f'[[plugin]]\nname = "{plugin}"')

    def test_the_same_names(self):
        self.expect(run("validate", self.kitchen(self.bundle_toml())), 0,
                    r"ok: bundle name 'kitchen' is the same in manifest\.toml and bundle\.toml",
                    r"\nvalid\n")
        # Without a bundle.toml beside it nothing is compared.
        result = run("validate", ARGS.kitchen)
        self.expect(result, 0, r"\nvalid\n")
        self.assertNotIn("bundle.toml", result.stdout)

    def test_a_different_bundle_name_names_both_and_where(self):
        directory = self.kitchen(self.bundle_toml(name="kitchen-two"))
        self.expect(run("validate", directory), 1,
                    r"error: bundle name 'kitchen' \(name in [^)]*kitchen/manifest\.toml:\d+\) "
                    r"differs from 'kitchen-two' "
                    r"\(\[bundle\] name in [^)]*kitchen/bundle\.toml:4\)",
                    r"regenerate it with polyplug manifest", r"invalid: 1 problem")

    def test_different_plugin_names(self):
        directory = self.kitchen(self.bundle_toml(plugin="cook"),
                                 '\n[[plugin]]\nname = "kitchen"\n')
        self.expect(run("validate", directory), 1,
                    r"error: \[\[plugin\]\] names differ: 'kitchen' \([^)]*manifest\.toml:\d+\) "
                    r"in the manifest, 'cook' \([^)]*bundle\.toml:\d+\) in bundle\.toml",
                    r"invalid: 1 problem")
        shutil.rmtree(directory)
        directory = self.kitchen(self.bundle_toml(), '\n[[plugin]]\nname = "kitchen"\n')
        self.expect(run("validate", directory), 0,
                    r"ok: \[\[plugin\]\] names are the same in manifest\.toml and bundle\.toml")

    def test_inspect_compares_the_registered_plugin_name(self):
        # kitchen_plugin.cpp passes "kitchen" to POLYPLUG_EXPORT_BUNDLE: known only once its
        # init ran, so inspect (not validate) compares it with the [[plugin]] names.
        directory = self.kitchen(self.bundle_toml(plugin="cook"))
        self.expect(run("inspect", directory), 0,
                    r"warning: test\.cli\.Kitchen is registered by plugin 'kitchen', which is not "
                    r"a \[\[plugin\]\] name of bundle\.toml \('cook' \([^)]*bundle\.toml:\d+\)\); "
                    r"check the name given to POLYPLUG_EXPORT_BUNDLE", stream="out")
        shutil.rmtree(directory)
        result = run("inspect", self.kitchen(self.bundle_toml()))
        self.expect(result, 0, r"from plugin 'kitchen'", stream="out")
        self.assertNotIn("warning", result.stdout)

    def test_an_unreadable_bundle_toml(self):
        directory = self.kitchen("[bundle\nname = 1\n")
        self.expect(run("validate", directory), 1,
                    r"error: bundle\.toml beside the manifest cannot be read: "
                    r"[^\n]*bundle\.toml:1:\d+: TOML syntax error")
        shutil.rmtree(directory)
        directory = self.kitchen("[bundle]\nversion = \"1\"\n")
        self.expect(run("validate", directory), 1,
                    r"error: bundle\.toml beside the manifest has no \[bundle\] name")
        # Nested beyond what the runtime's readers accept: refused before toml++ recurses.
        shutil.rmtree(directory)
        directory = self.kitchen("x = " + "[" * 100000 + "\n")
        self.expect(run("validate", directory), 1,
                    r"error: bundle\.toml beside the manifest cannot be read: "
                    r"[^\n]*bundle\.toml:1:\d+: ")


class Completion(Case):
    def complete(self, *words):
        """COMPREPLY for the command line `polyplug WORDS...` (the last word being completed)."""
        script = self.tmp / "polyplug.bash"
        result = run("completion", "bash")
        self.expect(result, 0)
        script.write_text(result.stdout)
        line = ["polyplug", *words]
        program = (f'source "{script}"\n'
                   f'COMP_WORDS=({" ".join(shlex.quote(w) for w in line)})\n'
                   f'COMP_CWORD={len(line) - 1}\n'
                   '_polyplug\nprintf "%s\\n" "${COMPREPLY[@]}"\n')
        done = subprocess.run(["bash", "--norc", "--noprofile", "-c", program],
                              capture_output=True, text=True, cwd=self.tmp, timeout=30)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stderr, "")
        return sorted(w for w in done.stdout.splitlines() if w)

    def test_commands_and_options(self):
        self.assertEqual(self.complete("va"), ["validate"])
        self.assertEqual(self.complete("i"), ["id", "inspect"])
        self.assertEqual(self.complete("t"), ["types"])
        self.assertEqual(self.complete("generate", "--l"), ["--lang"])
        self.assertEqual(self.complete("generate", "--lang", ""), ["c", "cpp"])
        self.assertEqual(self.complete("types", "--format", "m"), ["markdown"])
        self.assertEqual(self.complete("validate", "--"), ["--api", "--bundle-dir", "--help"])
        self.assertEqual(self.complete("completion", ""), ["bash"])
        self.assertEqual(self.complete("help", "ma"), ["manifest"])

    def test_directories_and_files(self):
        (self.tmp / "sub").mkdir()
        (self.tmp / "some.api.toml").write_text("")
        # A bundle directory: directories only.
        self.assertEqual(self.complete("validate", "s"), ["sub"])
        self.assertEqual(self.complete("inspect", "--with", "s"), ["sub"])
        # A contract file: files too.
        self.assertEqual(self.complete("validate", "--api", "s"), ["some.api.toml", "sub"])
        self.assertEqual(self.complete("id", "s"), [])

    def test_usage(self):
        self.expect(run("completion", "zsh"), 2, r"no completion for 'zsh' \(only bash\)",
                    stream="err")
        self.expect(run("completion"), 2, r"missing the shell \(bash\)", stream="err")
        self.expect(run("--help"), 0, r"\n  completion bash ", r"\n  types ", stream="out")


class Inspect(Case):
    def test_lists_what_the_bundle_registers(self):
        self.expect(run("inspect", ARGS.kitchen), 0, r"bundle 'kitchen' 2\.3\.4 \(id 0x[0-9a-f]{16}, "
                    r"loader native\)", r"contracts: 1",
                    r"test\.cli\.Kitchen 2\.3\.4 \(id 0x737622a333a5ebb0\) from plugin 'kitchen': "
                    r"native, 9 functions", r"dependencies: 0")

    def test_a_bundle_that_does_not_load(self):
        directory = self.bundle("np", manifest_for("adder", "0x235decfdfd543243",
                                                   "fixture_not_a_plugin.so"),
                                self.fixture_path("fixture_not_a_plugin.so"))
        self.expect(run("inspect", directory), 1, r"polyplug inspect: error: .*polyplug_abi_version",
                    stream="err")
        self.expect(run("inspect", self.tmp / "absent"), 1, r"polyplug inspect: error: ")
        self.expect(run("inspect"), 2, r"missing DIR")

    def test_dependencies_and_with(self):
        # The depender fixture declares test.add@1; --with loads the adder that provides it first,
        # and what is listed is still the inspected bundle's own.
        depender = self.tmp / "depender"
        depender.mkdir()
        shutil.copy(self.fixture_path("fixture_depender.so"), depender)
        (depender / "manifest.toml").write_text(
            manifest_for("depender", "0x" + bundle_id("depender"), "fixture_depender.so",
                         'provides = ["test.depender@1"]\n'
                         'function_count = { "test.depender@1" = 1 }\n'
                         '\n[[dependency]]\nkind = "contract"\ncontract = "test.add@1"\n'))
        plugins = self.tmp / "plugins"
        shutil.copytree(Path(ARGS.plugins), plugins / "adder",
                        ignore=lambda d, names: [n for n in names if n not in (
                            "manifest.toml", "fixture_adder.so")])
        self.expect(run("inspect", depender, "--with", plugins), 0,
                    r"contracts: 1\n.*test\.depender ", r"dependencies: 1",
                    r"test\.add@1 \(id 0x40244df59fcbecb6\)")
        self.expect(run("inspect", depender, "--with", self.tmp / "none"), 1,
                    r"--with .*none.* is not a directory")

    def fixture_path(self, name):
        return Path(ARGS.plugins) / name


class ScriptBundles(Case):
    """Bundles with loader = "lua", "python" or "js": manifest keeps their contract file, validate
    reads it, inspect loads them through the loader modules the build made (ARGS.loaders)."""
    SCRIPTS = {"lua": "calc.lua", "js": "calc.js", "python": "calc.py"}

    def script_bundle(self, loader, name=None):
        """examples/scripts/<loader>_calc with its contract file named calc.api.toml (not the
        default api.toml) and a manifest generated from a bundle.toml."""
        examples = Path(ARGS.source).parents[1] / "examples"
        directory = self.tmp / (name or loader)
        directory.mkdir()
        script = self.SCRIPTS[loader]
        shutil.copy(examples / "scripts" / f"{loader}_calc" / script, directory)
        shutil.copy(examples / "contracts" / "example_calc.api.toml", directory / "calc.api.toml")
        (directory / "bundle.toml").write_text(
            f'[bundle]\nname = "{loader}-calc"\nversion = "1.0.0"\napi = "calc.api.toml"\n'
            f'loader = "{loader}"\nfile = "{script}"\n'
            '[[plugin]]\nname = "calc"\nimplements = ["example.calc@1"]\n')
        self.expect(run("manifest", "--bundle", directory / "bundle.toml"), 0)
        return directory

    def test_validate_and_inspect_every_kind(self):
        for loader in self.SCRIPTS:
            with self.subTest(loader=loader):
                directory = self.script_bundle(loader)
                self.expect(run("validate", directory), 0, f"loader {loader}\\)",
                            r"ok: contract file calc\.api\.toml is valid",
                            r"ok: example\.calc@1 matches calc\.api\.toml", r"\nvalid\n")
                if loader in ARGS.loaders:
                    self.expect(run("inspect", directory), 0,
                                f"bundle '{loader}-calc' 1\\.0\\.0 \\(id 0x[0-9a-f]{{16}}, "
                                f"loader {loader}\\)",
                                r"example\.calc 1\.0\.0 \(id 0x1c2310712da78b06\) from plugin "
                                f"'{loader}-calc': VM")
                else:
                    self.expect(run("inspect", directory), 1,
                                f"no {loader} loader module was found .*-D{loader}=enabled",
                                stream="err")

    def test_a_missing_loader_module_is_named_with_how_to_build_it(self):
        empty = self.tmp / "no-modules"
        empty.mkdir()
        hints = {"lua": r"Build libpolyplug-loader-lua\.so with -Dlua=enabled \(it embeds Lua 5\.4",
                 "js": r"Build libpolyplug-loader-js\.so with -Djs=enabled",
                 "python": r"Build libpolyplug-loader-python\.so with -Dpython=enabled"}
        for loader, hint in hints.items():
            with self.subTest(loader=loader):
                directory = self.script_bundle(loader)
                self.expect(run("inspect", directory, "--loader-dir", empty), 1,
                            f"^polyplug inspect: error: bundle '{loader}-calc' has loader = "
                            f"\"{loader}\": no {loader} loader module was found \\(tried "
                            f"[^\\n]*no-modules/libpolyplug-loader-{loader}\\.so: no such file",
                            hint, stream="err")
        directory = self.bundle("cobol", manifest_for("cobol-calc", "0x" + bundle_id("cobol-calc"),
                                                      "calc.cob").replace('"native"', '"cobol"'))
        (directory / "calc.cob").write_text("DISPLAY 'HI'.\n")
        self.expect(run("validate", directory), 0,
                    r"note: 'cobol' is not a loader polyplug ships", r"\nvalid\n")
        self.expect(run("inspect", directory), 1,
                    r"no cobol loader module was found .*polyplug ships loader modules for lua, "
                    r"python, js and dotnet only: a 'cobol' loader must come from "
                    r"libpolyplug-loader-cobol\.so exporting polyplug_loader_cobol_create",
                    stream="err")

    def test_a_loader_name_that_is_a_path_opens_nothing(self):
        # The manifest is untrusted: its loader name must not lead inspect to dlopen a library
        # of the bundle's choosing (whose constructors would run in the tool).
        evil = self.tmp / "libpolyplug-loader-x" / "evil.so"
        evil.parent.mkdir()
        evil.write_text("not reached")
        directory = self.bundle("pathy", manifest_for("pathy", "0x" + bundle_id("pathy"),
                                                      "calc.cob").replace('"native"', '"x/evil"'))
        (directory / "calc.cob").write_text("DISPLAY 'HI'.\n")
        self.expect(run("inspect", directory, "--loader-dir", self.tmp), 1,
                    r"bundle 'pathy' has loader = \"x/evil\": the loader name is not a plain name "
                    r"\(letters, digits, '_' and '-'\), so no loader module file is looked for",
                    stream="err")

    def test_refused_script_bundles(self):
        def edit(directory, old, new, file="manifest.toml"):
            path = directory / file
            path.write_text(path.read_text().replace(old, new))

        cases = [
            ("missing-api", lambda d: (d / "calc.api.toml").unlink(),
             r"error: [^\n]*calc\.api\.toml: no such file\n"),
            ("no-api-key", lambda d: edit(d, 'api = "calc.api.toml"\n', ""),
             r"error: [^\n]*api\.toml: no such file \(the manifest names no 'api', so its loader "
             r"reads api\.toml\)"),
            ("escaping-api", lambda d: edit(d, '"calc.api.toml"', '"../calc.api.toml"'),
             r"error: api path '\.\./calc\.api\.toml' escapes the bundle directory"),
            ("broken-api", lambda d: edit(d, "[[guest_contract]]", "[[guest_contract]\n",
                                          "calc.api.toml"),
             r"error: [^\n]*calc\.api\.toml:\d+:\d+: TOML syntax error"),
            ("undeclared", lambda d: edit(d, "example.calc@1", "example.calk@1"),
             r"error: provided contract example\.calk@1 is not a guest contract of "
             r"calc\.api\.toml"),
            ("count", lambda d: edit(d, '"example.calc@1" = 2', '"example.calc@1" = 3'),
             r"error: function_count of example\.calc@1 is 3, the contract file has 2 functions"),
        ]
        for name, spoil, pattern in cases:
            with self.subTest(name=name):
                directory = self.script_bundle("lua", name)
                spoil(directory)
                self.expect(run("validate", directory), 1, pattern, r"invalid: 1 problem\n")

    def test_a_script_that_fails_names_its_bundle_once(self):
        if "lua" not in ARGS.loaders:
            self.skipTest("the Lua loader module is not built")
        directory = self.script_bundle("lua")
        with open(directory / "calc.lua", "a") as script:
            script.write("this is not lua (\n")
        result = run("inspect", directory)
        self.expect(result, 1, r"^polyplug inspect: error: bundle 'lua-calc': loader 'lua' failed "
                    r"with code \d+: calc\.lua:\d+: ", stream="err")
        self.assertEqual(result.stderr.count("lua-calc"), 1, result.stderr)


def bundle_id(name):
    return f"{cli_support.fnv1a64(name):016x}"


if __name__ == "__main__":
    parser = cli_support.argument_parser()
    parser.add_argument("--source", required=True)
    parser.add_argument("--source-build", required=True)
    parser.add_argument("--kitchen", required=True)
    parser.add_argument("--plugins", required=True)
    parser.add_argument("--project-version", required=True)
    ARGS, rest = cli_support.parse_args(parser)
    cli_support.main(rest)
