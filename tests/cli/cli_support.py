# SPDX-License-Identifier: MIT
"""What the unittest scripts of tests/cli (cli_test.py, scaffold_test.py) share, written once: the
command line Meson gives them (--tool, --loaders), running the polyplug tool, a test case with a
temporary folder and a check of exit code and output, and the runtime's FNV-1a 64 hash.

Meson runs each script as `python3 tests/cli/SCRIPT.py --tool ...` from the source tree, so this
folder is on sys.path and the scripts `import cli_support`. A script parses its command line with
argument_parser() and parse_args(), keeps the result as its own ARGS (the same object as
cli_support.ARGS, which run_tool reads), and ends with main()."""
import argparse
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

# The parsed command line, set by parse_args(); run_tool() takes the tool's path from it.
ARGS = None


def argument_parser():
    """A parser holding the option every script takes first: --tool, the polyplug executable
    under test (required). The script adds its own options, then calls parse_args()."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--tool", required=True)
    return parser


def parse_args(parser):
    """Adds --loaders (the loader modules built, comma-separated), parses the command line, and
    returns (ARGS, rest): ARGS with .loaders as a list of names ([] when none were built), rest
    the arguments the parser did not know (for unittest). ARGS is also kept as cli_support.ARGS,
    so later changes the script makes to it (e.g. resolving --tool) are seen by run_tool()."""
    global ARGS
    parser.add_argument("--loaders", default="",
                        help="the loader modules built, comma-separated (lua,js,python)")
    ARGS, rest = parser.parse_known_args()
    ARGS.loaders = [name for name in ARGS.loaders.split(",") if name]
    return ARGS, rest


def main(rest):
    """Runs the script's tests (those of __main__) verbosely, passing unittest the arguments
    parse_args() left over (a test name, -k PATTERN, ...)."""
    unittest.main(argv=[sys.argv[0], "-v", *rest])


def run_tool(*args, cwd=None, env=None):
    """Runs the polyplug tool (ARGS.tool) with args, each turned into a string, in cwd and env
    (this process's when None); returns the CompletedProcess, its stdout and stderr as text.
    A run over 60 seconds raises subprocess.TimeoutExpired."""
    return subprocess.run([ARGS.tool, *map(str, args)], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env=env)


def fnv1a64(text):
    """FNV-1a 64 of text's UTF-8 bytes, as an int: the runtime's hash behind bundle and contract
    ids (spec 9.8), e.g. fnv1a64("guest_contract:NAME@MAJOR") for a guest contract."""
    value = 0xCBF29CE484222325
    for byte in text.encode():
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


class ToolCase(unittest.TestCase):
    """A test case with a fresh temporary folder, self.tmp (a Path named TMP_PREFIX...), made
    before each test and removed after it, and expect() to check a run of the tool."""

    TMP_PREFIX = "polyplug-"

    def setUp(self):
        """Makes self.tmp."""
        self.tmp = Path(tempfile.mkdtemp(prefix=self.TMP_PREFIX))

    def tearDown(self):
        """Removes self.tmp and everything in it."""
        shutil.rmtree(self.tmp, ignore_errors=True)

    def expect(self, result, code, *patterns, stream="any"):
        """Asserts that the run `result` exited with `code` (the message shows both outputs) and
        that every regular expression in patterns is found (re.search) in its stdout
        (stream="out"), its stderr ("err"), or stdout followed by stderr (any other value).
        Returns result."""
        text = {"out": result.stdout, "err": result.stderr}.get(stream,
                                                               result.stdout + result.stderr)
        self.assertEqual(result.returncode, code,
                         f"exit {result.returncode}, expected {code}\n{result.stdout}{result.stderr}")
        for pattern in patterns:
            self.assertRegex(text, pattern)
        return result
