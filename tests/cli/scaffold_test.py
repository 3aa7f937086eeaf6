#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`polyplug new` (tools/scaffold.hpp): every scaffold, as written, builds, gets its manifest from
`polyplug manifest`, passes `polyplug validate`, loads in `polyplug inspect` with the contract it
declares, and its host.cpp compiles and prints the plugin's answers. Bad input is refused with
the tool's exit codes (1 input refused, 2 command line wrong) and leaves nothing behind."""
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import cli_support
from cli_support import run_tool

ARGS = None

LANGUAGES = ("c", "cpp", "rust", "lua", "python", "js")
SCRIPT_LANGUAGES = ("lua", "python", "js")
# What each plugin stub answers to greet(), after "Hello from NAME ".
SPOKEN = {"c": "(C)", "cpp": "(C++)", "rust": "(Rust)", "lua": "(Lua)", "python": "(Python)",
          "js": "(JavaScript)"}


def run(command, cwd=None, env=None, timeout=600):
    return subprocess.run([*map(str, command)], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def guest_contract_id(name, major):
    """fnv1a64("guest_contract:NAME@MAJOR"), the runtime's id of a guest contract."""
    value = cli_support.fnv1a64(f"guest_contract:{name}@{major}")
    return f"0x{value:016x}"


class Case(cli_support.ToolCase):
    TMP_PREFIX = "polyplug-scaffold-"

    def succeed(self, command, what, **kwargs):
        result = run(command, **kwargs)
        self.assertEqual(result.returncode, 0,
                         f"{what} failed (exit {result.returncode}): {shlex.join(map(str, command))}"
                         f"\n{result.stdout}{result.stderr}")
        return result


class EveryLanguage(Case):
    """One scaffold per language, from `polyplug new` to the host's answer."""

    def scaffold(self, lang):
        name = f"hello-{lang}"
        folder = self.tmp / name
        self.expect(run_tool("new", name, "--lang", lang, cwd=self.tmp), 0,
                    f"created {name}: bundle '{name}' in {lang}, providing "
                    f"hello_{lang}\\.greeter@1", r"README\.md says how to build", stream="out")
        return name, folder

    def build(self, lang, name, folder):
        """Builds the plugin as the scaffold's README says and returns the bundle directory."""
        ident = name.replace("-", "_")
        if lang in ("c", "cpp"):
            out = folder / "out"
            self.expect(run_tool("generate", "--api", folder / f"{name}.api.toml", "--lang", lang,
                                 "--header", ident, "--out", out), 0)
            compiler = ARGS.cc if lang == "c" else ARGS.cxx
            standard = "-std=c11" if lang == "c" else "-std=c++20"
            source = folder / (f"{ident}.c" if lang == "c" else f"{ident}.cpp")
            # -Werror: a stub that warns as written is a stub the user has to fix first.
            self.succeed([*compiler, standard, "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                          "-fvisibility=hidden", f"-I{ARGS.include}", f"-I{out}", source,
                          "-o", out / f"lib{ident}.so"], f"compiling the {lang} plugin")
            self.expect(run_tool("manifest", "--bundle", folder / "bundle.toml", "--out", out), 0,
                        f"wrote .*manifest\\.toml \\(bundle '{name}'")
            return out
        if lang == "rust":
            # The scaffold's own build script: cargo offline, then `polyplug manifest`.
            env = dict(os.environ, POLYPLUG=ARGS.tool, CARGO_TARGET_DIR=str(folder / "target"))
            self.succeed([folder / "build-bundle.sh"], "build-bundle.sh", env=env)
            return folder / "bundle"
        # Script bundles: no compile step, the one command the README names.
        result = run_tool("manifest", "--bundle", "bundle.toml", cwd=folder)
        self.expect(result, 0, f"wrote (\\./)?manifest\\.toml \\(bundle '{name}'")
        return folder

    def compile_and_run_host(self, lang, name, folder, bundle):
        ident = name.replace("-", "_")
        generated = self.tmp / f"host-{lang}"
        self.expect(run_tool("generate", "--api", folder / f"{name}.api.toml", "--lang", "cpp",
                             "--header", ident, "--out", generated), 0)
        link = []
        if lang in SCRIPT_LANGUAGES:
            module_dir = Path(ARGS.build_root) / "shim" / "loaders" / lang
            link = [f"-L{module_dir}", f"-Wl,-rpath,{module_dir}", f"-lpolyplug-loader-{lang}"]
        host = generated / "host"
        self.succeed([*ARGS.cxx, "-std=c++20", f"-I{ARGS.include}",
                      f"-I{generated}", folder / "host.cpp", "-o", host, *link, "-ldl",
                      "-pthread"], f"compiling the {lang} scaffold's host.cpp", timeout=900)
        result = run([host, bundle])
        self.expect(result, 0, stream="out")
        self.assertEqual(result.stdout,
                         f"greet() = Hello from {name} {SPOKEN[lang]}\nadd(2, 40) = 42\n")

    def check(self, lang):
        if lang == "rust" and shutil.which("cargo") is None:
            print("scaffold: skipping the rust scaffold: cargo is not on PATH", file=sys.stderr)
            self.skipTest("cargo is not on PATH")
        name, folder = self.scaffold(lang)
        ident = name.replace("-", "_")
        contract = f"{ident}.greeter"
        files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        common = {f"{name}.api.toml", "bundle.toml", "host.cpp", "README.md"}
        own = {"c": {f"{ident}.c", "meson.build"}, "cpp": {f"{ident}.cpp", "meson.build"},
               "rust": {"Cargo.toml", "src/lib.rs", "build-bundle.sh"},
               "lua": {f"{ident}.lua"}, "python": {f"{ident}.py"}, "js": {f"{ident}.js"}}[lang]
        self.assertEqual(files, common | own)
        # The contract file is valid on its own and declares the contract the README promises.
        self.expect(run_tool("validate", "--api", folder / f"{name}.api.toml"), 0,
                    f"guest contract {contract}@1 \\(version 1\\.0\\.0, id "
                    f"{guest_contract_id(contract, 1)}\\): 2 functions")
        readme = (folder / "README.md").read_text()
        self.assertIn("polyplug validate", readme)
        self.assertIn("add(2, 40) = 42", readme)

        bundle = self.build(lang, name, folder)
        self.expect(run_tool("validate", bundle), 0, f"bundle '{name}' 0\\.1\\.0",
                    r"\nvalid\n", stream="out")
        if lang in SCRIPT_LANGUAGES and lang not in ARGS.loaders:
            print(f"scaffold: not loading the {lang} scaffold: libpolyplug-loader-{lang}.so was "
                  f"not built (-D{lang}=enabled)", file=sys.stderr)
            self.skipTest(f"the {lang} loader module was not built")
        kind = "VM" if lang in SCRIPT_LANGUAGES else "native, 2 functions"
        self.expect(run_tool("inspect", bundle), 0,
                    f"bundle '{name}' 0\\.1\\.0 \\(id 0x[0-9a-f]{{16}}, loader "
                    f"{lang if lang in SCRIPT_LANGUAGES else 'native'}\\)",
                    r"contracts: 1\n",
                    f"{contract} 1\\.0\\.0 \\(id {guest_contract_id(contract, 1)}\\) from plugin "
                    f"'{name}': {kind}\n", stream="out")
        self.compile_and_run_host(lang, name, folder, bundle)

    def test_c(self):
        self.check("c")

    def test_cpp(self):
        self.check("cpp")

    def test_rust(self):
        self.check("rust")

    def test_lua(self):
        self.check("lua")

    def test_python(self):
        self.check("python")

    def test_js(self):
        self.check("js")


class MesonBuild(Case):
    """The c and cpp scaffolds' meson.build, configured with polyplug as a subproject: it finds
    the tool through find_program and declares the plugin, manifest and host targets. (Building
    through it would compile the tool again; the plugin build itself is EveryLanguage's.)"""

    def test_configures_with_polyplug_as_a_subproject(self):
        meson = shutil.which("meson")
        if meson is None:
            print("scaffold: skipping the meson.build check: meson is not on PATH",
                  file=sys.stderr)
            self.skipTest("meson is not on PATH")
        for lang in ("c", "cpp"):
            with self.subTest(lang=lang):
                name = f"mesonic-{lang}"
                self.expect(run_tool("new", name, "--lang", lang, "--out", self.tmp / name), 0)
                folder = self.tmp / name
                subprojects = folder / "subprojects"
                subprojects.mkdir()
                (subprojects / "polyplug").symlink_to(Path(ARGS.source_root).resolve())
                shutil.copy(Path(ARGS.source_root) / "packaging" / "polyplug.wrap", subprojects)
                options = [f"-Dpolyplug:{o}=disabled" for o in ("lua", "python", "js", "shim")]
                result = self.succeed([meson, "setup", folder / "build", folder, *options],
                                      f"meson setup of the {lang} scaffold", timeout=300)
                self.assertRegex(result.stdout, r"Program polyplug found: YES \(overridden\)")
                targets = json.loads(
                    self.succeed([meson, "introspect", "--targets", folder / "build"],
                                 "meson introspect").stdout)
                # The scaffold's own targets, by the files they make in the build directory.
                made = {Path(f).name for t in targets if t["subproject"] is None
                        for f in t["filename"]}
                ident = name.replace("-", "_")
                self.assertEqual(made, {f"lib{ident}.so", "manifest.toml", f"{ident}.h",
                                        f"{ident}.hpp", "host"})
                self.assertIn("polyplug", {t["name"] for t in targets
                                           if t["subproject"] == "polyplug"})


class BadInput(Case):
    def test_an_existing_folder_is_refused_and_left_alone(self):
        folder = self.tmp / "taken"
        folder.mkdir()
        (folder / "mine.txt").write_text("keep me")
        self.expect(run_tool("new", "taken", "--lang", "c", "--out", folder), 1,
                    f"^polyplug new: error: '{folder}' already exists", stream="err")
        self.assertEqual([p.name for p in folder.iterdir()], ["mine.txt"])
        # The default folder ./NAME, and a file in the way, are refused all the same.
        (self.tmp / "plain").write_text("")
        self.expect(run_tool("new", "taken", "--lang", "lua", cwd=self.tmp), 1,
                    r"'taken' already exists", stream="err")
        self.expect(run_tool("new", "plain", "--lang", "js", cwd=self.tmp), 1,
                    r"'plain' already exists", stream="err")
        self.assertEqual((self.tmp / "plain").read_text(), "")

    def test_bad_names_are_command_line_errors(self):
        cases = [("9lives", r"starts with a letter"), ("-x", r"starts with a letter"),
                 ("has space", r"only letters, digits, '_' and '-'"),
                 ("a/b", r"only letters, digits, '_' and '-'"),
                 ("a.b", r"only letters, digits, '_' and '-'"),
                 ("", r"the bundle name is empty"), ("x" * 65, r"longer than 64"),
                 ("int", r"'int' is a reserved word"), ("fn", r"'fn' is a reserved word"),
                 ("not-eq", r"'not_eq' is a reserved word")]
        for name, pattern in cases:
            with self.subTest(name=name):
                self.expect(run_tool("new", name, "--lang", "c", cwd=self.tmp), 2,
                            f"polyplug new: '{name}' cannot name a bundle: [^\\n]*{pattern}",
                            r"usage: polyplug new NAME", stream="err")
        self.assertEqual(list(self.tmp.iterdir()), [])

    def test_an_unknown_language_lists_the_valid_ones(self):
        self.expect(run_tool("new", "demo", "--lang", "cobol", cwd=self.tmp), 2,
                    r"unknown language 'cobol' for --lang \(one of c, cpp, rust, lua, python, "
                    r"js\)", stream="err")
        self.assertEqual(list(self.tmp.iterdir()), [])

    def test_missing_arguments(self):
        self.expect(run_tool("new", cwd=self.tmp), 2, r"missing NAME", stream="err")
        self.expect(run_tool("new", "demo", cwd=self.tmp), 2, r"missing option '--lang'",
                    stream="err")
        self.expect(run_tool("new", "demo", "--lang", cwd=self.tmp), 2,
                    r"option '--lang' needs a value", stream="err")
        self.expect(run_tool("new", "demo", "extra", "--lang", "c", cwd=self.tmp), 2,
                    r"unexpected argument 'extra'", stream="err")
        self.expect(run_tool("new", "demo", "--lang", "c", "--type", "x", cwd=self.tmp), 2,
                    r"unknown option '--type'", stream="err")
        self.assertEqual(list(self.tmp.iterdir()), [])

    def test_a_failed_write_leaves_nothing(self):
        # A regular file where a parent folder must go: creating it fails, and neither the
        # bundle folder nor the staging folder it is written in remains.
        (self.tmp / "file").write_text("")
        self.expect(run_tool("new", "demo", "--lang", "cpp", "--out", self.tmp / "file" / "demo"),
                    1, r"^polyplug new: error: ", stream="err")
        self.assertEqual([p.name for p in self.tmp.iterdir()], ["file"])

    def test_out_names_the_folder_and_nothing_else_is_left(self):
        target = self.tmp / "deep" / "er" / "bundle"
        self.expect(run_tool("new", "demo", "--lang", "python", "--out", target), 0,
                    f"created {target}: bundle 'demo' in python", stream="out")
        self.assertTrue((target / "demo.api.toml").is_file())
        self.assertIn('name = "demo"', (target / "bundle.toml").read_text())
        # The staging folder was renamed into place, not left beside it.
        self.assertEqual([p.name for p in target.parent.iterdir()], ["bundle"])
        # A trailing '/' names the same folder.
        self.expect(run_tool("new", "demo", "--lang", "js", "--out", f"{self.tmp}/slash/"), 0)
        self.assertEqual(sorted(p.name for p in self.tmp.iterdir()), ["deep", "slash"])
        self.assertTrue((self.tmp / "slash" / "demo.js").is_file())


class Help(Case):
    def test_help_and_overview(self):
        self.expect(run_tool("new", "--help"), 0,
                    r"usage: polyplug new NAME --lang c\|cpp\|rust\|lua\|python\|js \[--out DIR\]",
                    r"written\s+whole or not at all", stream="out")
        self.expect(run_tool("--help"), 0, r"\n  new NAME --lang LANG \[--out DIR\]\n",
                    stream="out")


if __name__ == "__main__":
    parser = cli_support.argument_parser()
    parser.add_argument("--include", required=True, help="the repository's include/")
    parser.add_argument("--source-root", required=True)
    parser.add_argument("--build-root", required=True)
    parser.add_argument("--cc", default=os.environ.get("CC", "cc"))
    parser.add_argument("--cxx", default=os.environ.get("CXX", "c++"))
    ARGS, rest = cli_support.parse_args(parser)
    # Absolute: the tests run the tool and the compilers from inside their temporary folders.
    for key in ("tool", "include", "source_root", "build_root"):
        setattr(ARGS, key, str(Path(getattr(ARGS, key)).resolve()))
    ARGS.cc = shlex.split(ARGS.cc)
    ARGS.cxx = shlex.split(ARGS.cxx)
    cli_support.main(rest)
