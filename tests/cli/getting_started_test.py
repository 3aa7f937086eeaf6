#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""docs/GETTING_STARTED.md, run as written: its `sh` blocks and its files (```cpp blocks whose
first line is `// file: NAME`) in page order, in one bash session with `set -euo pipefail`, in a
fresh HOME holding a copy of the source tree, so the page's install step builds polyplug from
scratch into HOME/.local. The page cannot drift: nothing here restates its commands.

Directives the page gives the test, in HTML comments or shell comments (invisible or harmless to
a reader):
  <!-- getting-started-test: wait-for "TEXT" -->  before a ```sh block: after the block, TEXT
      must appear in the session's output (background jobs included) since the block started.
  CMD   # getting-started-test: skip (REASON)      on a line of a block: the line is not run
      (for steps that need root, such as installing Debian packages); the test prints it.
Any other `getting-started-test:` text is an error, so a typo cannot switch a check off. A
command that fails ends the session and fails the test; since `set -e` does not see a failure
left of `&&` or `||`, the page's blocks may not use them.

Beyond the waits, it checks that the page shows a hot reload: after the scaffold's greeting, the
reload_host prints `-- reloaded` and then the new greeting, and never the old one again."""
import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# What the `polyplug new hello --lang cpp` stub answers (tools/scaffold.hpp): the greeting the
# page must show before its edit.
SCAFFOLD_GREETING = "greet() = Hello from hello (C++)"
RELOADED = "-- reloaded"
DIRECTIVE = "getting-started-test:"
WAIT_RE = re.compile(r'^<!-- getting-started-test: wait-for "([^"]+)" -->$')
SKIP_RE = re.compile(r"#\s*getting-started-test: skip \((.+)\)\s*$")
FILE_RE = re.compile(r"^// file: (\S+)$")


class PageError(Exception):
    pass


def parse_page(path):
    """The page's steps, in order: ("sh", text, waits, line) and ("file", name, text, line)."""
    steps = []
    waits = []
    fence = None  # (language, first line number, lines)
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if fence is not None:
            if line.strip() == "```":
                language, start, lines = fence
                if language == "sh":
                    steps.append(("sh", "\n".join(lines) + "\n", waits, start))
                    waits = []
                elif language == "cpp" and lines and FILE_RE.match(lines[0]):
                    name = FILE_RE.match(lines[0]).group(1)
                    steps.append(("file", name, "\n".join(lines) + "\n", start))
                fence = None
            else:
                fence[2].append(line)
            continue
        if line.startswith("```"):
            fence = (line[3:].strip(), number, [])
            if waits and fence[0] != "sh":
                raise PageError(f"line {number}: a wait-for directive must precede a ```sh block")
            continue
        match = WAIT_RE.match(line.strip())
        if match:
            waits.append(match.group(1))
        elif DIRECTIVE in line:
            raise PageError(f"line {number}: unknown directive: {line.strip()}")
    if fence is not None:
        raise PageError(f"line {fence[1]}: unterminated code block")
    if waits:
        raise PageError("a wait-for directive is not followed by a ```sh block")
    return steps


def runnable(text, where):
    """The block's text with skipped lines replaced by a note, and the notes."""
    out, notes = [], []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        skip = SKIP_RE.search(line)
        if skip is None:
            if DIRECTIVE in line:
                raise PageError(f"{where}: unknown directive: {line.strip()}")
            # `set -e` ignores a failure left of && or ||: the page would fail without the test.
            if "&&" in line or "||" in line:
                raise PageError(f"{where}: one command per line, no && or ||: {line.strip()}")
            out.append(line)
            continue
        continued = line.rstrip().endswith("\\") or (i > 0 and lines[i - 1].rstrip().endswith("\\"))
        if continued:
            raise PageError(f"{where}: a skipped line must be a whole command: {line.strip()}")
        command = line[:skip.start()].strip()
        notes.append(f"skipped `{command}`: {skip.group(1)}")
        out.append(":  # skipped by the test")
    return "\n".join(out) + "\n", notes


class Session:
    """One bash process reading commands from a pipe; its output (and that of its background
    jobs) collected line by line."""

    def __init__(self, cwd, env):
        self.lines = []
        self.cond = threading.Condition()
        self.ended = False
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"], cwd=cwd, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.send("set -euo pipefail\n")

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            print(f"  | {line}", flush=True)
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.ended = True
            self.cond.notify_all()

    def send(self, text):
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def wait_for(self, predicate, timeout):
        """Waits until predicate(lines) holds; False on timeout or when bash ended first."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self.lines):
                left = deadline - time.monotonic()
                if self.ended or left <= 0:
                    return predicate(self.lines)
                self.cond.wait(left)
            return True

    def close(self):
        # bash and its background jobs (the reload host) share the session's process group.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def copy_source_tree(root, dest):
    """The tracked and untracked-but-not-ignored files (a clone, without build trees)."""
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-co", "--exclude-standard", "-z"],
                            capture_output=True)
    if listed.returncode != 0:
        shutil.copytree(root, dest, ignore=shutil.ignore_patterns("build*", ".git", "subprojects"),
                        dirs_exist_ok=True)
        return
    for name in listed.stdout.decode().split("\0"):
        if not name or not (root / name).is_file():
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, dest / name)


def new_greeting(steps):
    """The last greet() answer the page waits for: the reloaded plugin's."""
    waits = [w for step in steps if step[0] == "sh" for w in step[2]]
    return waits[-1]


def run_page(root, page, steps, tmp, args):
    """Runs the page in `tmp`; returns (failure or None, seconds)."""
    home = tmp / "home"
    clone = home / "polyplug"
    clone.mkdir(parents=True)
    copy_source_tree(root, clone)
    env = dict(os.environ, HOME=str(home))
    env.pop("DESTDIR", None)  # meson install must go to the page's prefix, in this HOME
    print(f"getting-started: HOME={home}, the clone in {clone}", flush=True)

    session = Session(clone, env)
    started = time.monotonic()
    failure = None
    host_from = None  # output line where the block that starts the reload host began
    try:
        for index, step in enumerate(steps, 1):
            if step[0] == "file":
                _, name, text, line = step
                print(f"getting-started: step {index} (line {line}): saving {name}", flush=True)
                # Written by the shell, so it lands in the session's current directory.
                marker = "GETTING_STARTED_FILE_END"
                if marker in text:
                    raise PageError(f"line {line}: the file contains {marker}")
                script = f"cat > {shlex.quote(name)} <<'{marker}'\n{text}{marker}\n"
            else:
                _, text, waits, line = step
                script, notes = runnable(text, f"line {line}")
                for note in notes:
                    print(f"getting-started: step {index} (line {line}): {note}", flush=True)
                print(f"getting-started: step {index} (line {line}):\n{text.rstrip()}", flush=True)
            block_file = tmp / f"step-{index}.sh"
            block_file.write_text(script)
            with session.cond:
                first = len(session.lines)
            if step[0] == "sh" and SCAFFOLD_GREETING in step[2]:
                host_from = first
            done = f"@@getting-started step {index} done"
            # stdin from /dev/null: nothing the page runs reads the session's own commands.
            session.send(f"{{ source {block_file}; }} </dev/null\necho '{done}'\n")
            t0 = time.monotonic()
            if not session.wait_for(lambda lines: done in lines[first:], args.block_timeout):
                failure = (f"step {index} (page line {line}) failed or timed out: "
                           f"{'bash exited' if session.ended else 'no end'} after "
                           f"{time.monotonic() - t0:.0f} s")
                break
            print(f"getting-started: step {index} done in {time.monotonic() - t0:.1f} s",
                  flush=True)
            if step[0] == "sh":
                for wanted in step[2]:
                    if not session.wait_for(lambda lines: wanted in lines[first:],
                                            args.wait_timeout):
                        failure = (f"step {index} (page line {line}): {wanted!r} did not appear "
                                   f"within {args.wait_timeout:.0f} s")
                        break
                if failure:
                    break
        if failure is None:
            session.send("exit 0\n")
            if session.proc.wait(60) != 0:
                failure = f"the session ended with exit code {session.proc.returncode}"
    except PageError as e:
        failure = f"{page}: {e}"
    finally:
        session.close()

    if failure is None:
        # The reload itself: in the host's output, the old answer, the reload, the new answer,
        # and not the old answer again.
        output = session.lines[host_from:]
        new = new_greeting(steps)
        old = output.index(SCAFFOLD_GREETING)
        reloaded = output.index(RELOADED, old) if RELOADED in output[old:] else None
        if reloaded is None:
            failure = f"the reload host never printed {RELOADED!r} after {SCAFFOLD_GREETING!r}"
        elif new not in output[reloaded:]:
            failure = f"no {new!r} after {RELOADED!r}"
        elif SCAFFOLD_GREETING in output[output.index(new, reloaded):]:
            failure = f"{SCAFFOLD_GREETING!r} again after {new!r}"

    return failure, time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source-root", required=True, type=Path)
    parser.add_argument("--block-timeout", type=float, default=1200)
    parser.add_argument("--wait-timeout", type=float, default=60)
    parser.add_argument("--keep", action="store_true", help="keep the temporary HOME")
    args = parser.parse_args()
    root = args.source_root.resolve()
    page = root / "docs" / "GETTING_STARTED.md"

    try:
        steps = parse_page(page)
    except PageError as e:
        print(f"getting-started: {page}: {e}", file=sys.stderr)
        return 1
    all_waits = [w for step in steps if step[0] == "sh" for w in step[2]]
    if SCAFFOLD_GREETING not in all_waits:
        print(f"getting-started: the page must wait for {SCAFFOLD_GREETING!r} (the scaffold's "
              f"greeting) before its edit", file=sys.stderr)
        return 1
    new_greetings = all_waits[all_waits.index(SCAFFOLD_GREETING) + 1:]
    if not new_greetings or new_greetings[-1] == SCAFFOLD_GREETING \
            or not new_greetings[-1].startswith("greet() = "):
        print("getting-started: after the scaffold's greeting, the page must wait for a new "
              "greet() answer (the reloaded plugin's)", file=sys.stderr)
        return 1

    # meson test ends a test that overruns with SIGTERM: clean up as on any other failure.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("getting-started: terminated"))
    tmp = Path(tempfile.mkdtemp(prefix="polyplug-getting-started-"))
    try:
        failure, elapsed = run_page(root, page, steps, tmp, args)
    finally:
        if args.keep:
            print(f"getting-started: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if failure:
        print(f"getting-started: FAILED: {failure}", file=sys.stderr)
        return 1
    print(f"getting-started: ok: {SCAFFOLD_GREETING!r}, then {RELOADED!r}, then "
          f"{new_greeting(steps)!r}, in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
