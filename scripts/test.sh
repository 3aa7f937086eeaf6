#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, builds polyplug, and runs every test suite in three configurations
# (GCC strict; Clang with AddressSanitizer + UndefinedBehaviorSanitizer; Clang with
# ThreadSanitizer), bounded fuzzing, the format check and the consumer projects. Ends with one line:
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

"$root/scripts/install-deps.sh" || { echo "dependency installation failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
failures=()

# A section heading with the time since the start, so a long run shows where it is.
step() {
    printf '== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"
}

record() {  # record NAME EXIT_CODE
    if [[ "$2" -eq 0 ]]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$1")
    fi
}

# Adds the results of one `meson test` run (from its testlog.json) to the totals.
count_meson_tests() {  # count_meson_tests BUILD_DIR LABEL
    local log="$1/meson-logs/testlog.json"
    [[ -f "$log" ]] || { record "$2: no test log" 1; return; }
    local counts
    counts=$(python3 - "$log" "$2" <<'PY'
import json, sys
ok = bad = 0
for line in open(sys.argv[1]):
    entry = json.loads(line)
    if entry["result"] in ("OK", "EXPECTEDFAIL"):
        ok += 1
    elif entry["result"] == "SKIP":
        print(f"  skipped: {sys.argv[2]} / {entry['name']}", file=sys.stderr)
    else:
        bad += 1
        print(f"  FAILED: {sys.argv[2]} / {entry['name']} ({entry['result']})", file=sys.stderr)
        # The end of what it printed, so a failure on a CI machine can be read from the log.
        output = (entry.get("stdout") or "") + (entry.get("stderr") or "")
        tail = output.splitlines()[-80:]
        print("\n".join("    | " + line for line in tail), file=sys.stderr)
print(ok, bad)
PY
)
    local ok bad
    read -r ok bad <<<"$counts"
    passed=$((passed + ok))
    failed=$((failed + bad))
    if [[ "$bad" -ne 0 ]]; then failures+=("$2: $bad meson test(s)"); fi
}

build_and_test() {  # build_and_test LABEL BUILD_DIR [meson options...]
    local label=$1 dir=$2
    shift 2
    step "$label: configure and build ($dir)"
    if [[ -d "$dir" ]]; then
        meson setup --reconfigure "$dir" "$@" >"$dir.setup.log" 2>&1
    else
        meson setup "$dir" "$@" >"$dir.setup.log" 2>&1
    fi
    local rc=$?
    if [[ $rc -ne 0 ]]; then cat "$dir.setup.log"; record "$label: configure" 1; return; fi
    # The full build log goes to a file; the terminal gets a line per tenth of the build.
    ninja -C "$dir" 2>&1 | tee "$dir.build.log" | awk -v label="$label" '
        match($0, /^\[[0-9]+\/[0-9]+\]/) {
            split(substr($0, 2, RLENGTH - 2), n, "/")
            step = int(10 * n[1] / n[2])
            if (step > shown) { shown = step; printf "   %s: built %d of %d\n", label, n[1], n[2]; fflush() }
        }'
    if [[ ${PIPESTATUS[0]} -ne 0 ]]; then
        tail -50 "$dir.build.log"
        record "$label: build" 1
        return
    fi
    step "$label: test"
    # One line per test as it ends; the full output is in $dir/meson-logs/testlog.txt, and the
    # end of each failing test's output is printed below by count_meson_tests.
    meson test -C "$dir" --num-processes 2 2>&1 | grep --line-buffered -E '^ *[0-9]+/[0-9]+ '
    count_meson_tests "$dir" "$label"
}

build_and_test "gcc" build -Dstrict=true -Dtests=enabled -Dexamples=enabled
CC=clang CXX=clang++ build_and_test "clang asan+ubsan" build-sanitize -Dstrict=true \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug -Dtests=enabled -Dexamples=enabled
CC=clang CXX=clang++ build_and_test "clang tsan" build-tsan -Db_sanitize=thread -Db_lundef=false \
    -Dbuildtype=debug -Dtests=enabled -Dexamples=disabled

# Instruction counts are deterministic, so unlike timings they can fail the run: the runtime's
# table call may add at most a fixed few instructions, and no atomic, over a raw dlsym pointer
# call (bounds and reasons in tests/bench/callgrind_check.py; docs/PERFORMANCE.md).
step "instruction counts: callgrind (runtime call vs raw dlsym pointer)"
if ! command -v valgrind >/dev/null 2>&1; then
    echo "  skipped: valgrind is not installed (scripts/install-deps.sh installs it)"
elif [[ ! -x build/tests/bench/callgrind_probe ]]; then
    echo "  build/tests/bench/callgrind_probe is missing (did the gcc build fail?)"
    record "callgrind instruction counts" 1
else
    python3 tests/bench/callgrind_check.py --probe build/tests/bench/callgrind_probe \
        --plugin build/tests/bench/bench_plugin.so
    record "callgrind instruction counts" $?
fi

# Bounded fuzzing (libFuzzer, clang, ASan + UBSan): the manifest and contract-file parsers from
# their seed corpora, and load_bundle on mutated bundles; POLYPLUG_FUZZ_SECONDS per target
# (default 60). A crash fails the run.
step "fuzzing: ${POLYPLUG_FUZZ_SECONDS:-60}s per target (scripts/fuzz.sh)"
"$root/scripts/fuzz.sh" "${POLYPLUG_FUZZ_SECONDS:-60}"
record "fuzzing (manifest, contract_file, bundle)" $?

step "format: clang-format --dry-run --Werror"
mapfile -t sources < <(git ls-files '*.h' '*.hpp' '*.c' '*.cpp' 2>/dev/null)
if [[ ${#sources[@]} -gt 0 ]]; then
    clang-format --dry-run --Werror "${sources[@]}"
    record "clang-format" $?
fi

step "consumer projects (Meson subproject, pkg-config)"
"$root/tests/consumer/run.sh" "$root" build-consumer
record "consumer projects" $?

echo
if [[ ${#failures[@]} -gt 0 ]]; then
    printf 'failed: %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
