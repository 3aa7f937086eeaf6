#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Tests of matrix_table.py (the host x guest table of scripts/bench.sh --matrix): cells and
ratios, skipped and missing cells and hosts with their reasons, the documentation section
replaced between its markers and nothing else, and refused input."""
import os
import subprocess
import sys
import tempfile
import unittest

TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "matrix_table.py")


def run(args, cwd):
    return subprocess.run([sys.executable, TABLE] + args, cwd=cwd, capture_output=True,
                          text=True)


class MatrixTable(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def table(self, *rows, extra=()):
        out = os.path.join(self.dir, "matrix.md")
        result = run(["--out", out, *extra, *rows], self.dir)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(out, encoding="utf-8") as f:
            return f.read()

    def row_of(self, text, host):
        lines = [line for line in text.splitlines() if line.startswith(f"| {host} |")]
        self.assertEqual(len(lines), 1, text)
        return [cell.strip() for cell in lines[0].strip("|").split("|")]

    def test_cells_show_ns_and_ratio_to_the_floor_of_their_row(self):
        rows = self.write("c.txt", "human text is ignored\nmatrix C floor 10.0\n"
                          "matrix C c 15.0\nmatrix C lua 1234.5\n")
        text = self.table(rows)
        cells = self.row_of(text, "C")
        self.assertEqual(cells[1], "10 ns")
        self.assertEqual(cells[2], "15 ns (1.5x)")
        self.assertEqual(cells[5], "1,234 ns (123.5x)")

    def test_skipped_and_missing_cells_and_hosts_say_why(self):
        rows = self.write("py.txt", "matrix Python floor 2000\nmatrix Python c 8000\n"
                          "matrix Python rust skip not built: no manifest\n")
        text = self.table(rows, extra=["--missing", "Rust=cargo is not installed"])
        cells = self.row_of(text, "Python")
        self.assertEqual(cells[2], "8,000 ns (4.0x)")
        self.assertRegex(cells[4], r"^- \[\d+\]$")
        self.assertIn("Python host, rust guest: not built: no manifest.", text)
        self.assertIn("Python host, lua guest: no value printed: the bench failed", text)
        self.assertIn("Rust host: not measured: cargo is not installed.", text)
        self.assertIn("LuaJIT host: not measured: its bench printed no row", text)

    def test_docs_section_is_replaced_between_markers_only(self):
        rows = self.write("c.txt", "matrix C floor 10\nmatrix C c 20\n")
        doc = self.write("doc.md", "before\n<!-- matrix:begin -->\nold table\n"
                         "<!-- matrix:end -->\nafter\n")
        self.table(rows, extra=["--docs", doc])
        with open(doc, encoding="utf-8") as f:
            text = f.read()
        self.assertTrue(text.startswith("before\n<!-- matrix:begin -->\n| host"), text)
        self.assertNotIn("old table", text)
        self.assertTrue(text.endswith("<!-- matrix:end -->\nafter\n"), text)
        self.assertIn("20 ns (2.0x)", text)

    def test_a_document_without_markers_is_refused(self):
        rows = self.write("c.txt", "matrix C floor 10\n")
        doc = self.write("doc.md", "no markers here\n")
        result = run(["--out", os.path.join(self.dir, "m.md"), "--docs", doc, rows], self.dir)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("no <!-- matrix:begin -->", result.stderr)
        with open(doc, encoding="utf-8") as f:
            self.assertEqual(f.read(), "no markers here\n")

    def test_unknown_hosts_and_values_that_are_not_numbers_are_refused(self):
        for text, message in (("matrix Cobol floor 10\n", "unknown host 'Cobol'"),
                              ("matrix C c fast\n", "not a number of ns")):
            rows = self.write("bad.txt", text)
            result = run(["--out", os.path.join(self.dir, "m.md"), rows], self.dir)
            self.assertNotEqual(result.returncode, 0, text)
            self.assertIn(message, result.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
