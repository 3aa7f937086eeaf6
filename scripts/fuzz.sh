#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets (tests/fuzz, clang, ASan + UBSan) in build-fuzz and runs each for
# a bounded time from its seed corpus. New inputs go to build-fuzz/corpus/<target>/ (the seeds in
# tests/fuzz/corpus/ are only read); a crash leaves build-fuzz/crashes/<target>-crash-* and fails
# the run: turn it into a regression test, then add it to the seeds.
#
#   ./scripts/fuzz.sh [SECONDS_PER_TARGET]     default 60
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
dir=build-fuzz
options=(-Dfuzz=true -Dtests=disabled -Dexamples=disabled -Dshim=disabled -Dtool=disabled
         -Dlua=disabled -Dpython=disabled -Djs=disabled -Dbuildtype=debugoptimized)
if [[ -f "$dir/build.ninja" ]]; then
    CC=clang CXX=clang++ meson setup --reconfigure "$dir" "${options[@]}" >"$dir.setup.log" 2>&1
else
    CC=clang CXX=clang++ meson setup "$dir" "${options[@]}" >"$dir.setup.log" 2>&1
fi || { cat "$dir.setup.log"; exit 1; }
ninja -C "$dir" >"$dir.build.log" 2>&1 || { tail -40 "$dir.build.log"; exit 1; }

status=0
mkdir -p "$dir/crashes"
for target in manifest contract_file bundle; do
    mkdir -p "$dir/corpus/$target"
    echo "== fuzz $target for ${seconds}s"
    # -timeout: one input taking over 10 s is a hang; -rss_limit_mb bounds memory per input.
    if "$dir/tests/fuzz/${target}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$dir/crashes/$target-" -print_final_stats=1 \
        "$dir/corpus/$target" "tests/fuzz/corpus/$target" >"$dir/$target.log" 2>&1; then
        grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$dir/$target.log" | tr '\n' ' '
        echo "($target: no crash)"
    else
        tail -40 "$dir/$target.log"
        echo "FAILED: fuzz $target (artifacts in $dir/crashes/)"
        status=1
    fi
done
exit $status
