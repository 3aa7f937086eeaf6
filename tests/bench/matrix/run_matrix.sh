#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The host x guest matrix (issue 19; run by scripts/bench.sh --matrix in its configured release
# directory): builds what the rows need, runs each host language's row, and turns the rows into
# the table (matrix_table.py). Each row is measured by its host language itself, against that
# language's plain FFI call of a C function (matrix_floor.c) in the same process.
#
#   tests/bench/matrix/run_matrix.sh <build dir> <quick: 0 or 1>
set -uo pipefail
cd "$(dirname "$0")/../../.."
root=$(pwd)
dir=$1
quick=$2
start=$SECONDS

echo "== build the matrix's targets ($dir)"
all_targets=$(ninja -C "$dir" -t targets all 2>/dev/null)
# Versioned library names (Meson names those targets by their full version), the parity
# bundles, the floors and the C/C++ rows, and the Node.js addon when node's headers were found.
mapfile -t targets < <(grep -E '^(shim/libpolyplug\.so\.[0-9.]*[0-9]|shim/loaders/[a-z]+/libpolyplug-loader-[a-z]+\.so\.[0-9.]*[0-9]|tests/parity/[a-z]+/[^:/]+|tests/bench/matrix/[^:/]+|bindings/node/polyplug_node\.node):' \
    <<<"$all_targets" | cut -d: -f1)
build_log="$dir/matrix-build.log"
ninja -C "$dir" "${targets[@]}" >"$build_log" 2>&1 || { tail -50 "$build_log"; exit 1; }
echo "   built in $((SECONDS - start)) s"

rows=()
missing=()
failed=0
run_row() {  # run_row <host> <output file> <command...>
    local host=$1 out=$2
    shift 2
    echo "== $host host"
    "$@" | tee "$out"
    local status=${PIPESTATUS[0]}
    rows+=("$out")
    if [[ $status -ne 0 ]]; then
        echo "   the $host row failed (exit $status): its missing cells say so in the table"
        failed=1
    fi
}
quick_n=()
c_quick=()
if [[ $quick -eq 1 ]]; then quick_n=(-n 2000); c_quick=(--quick); fi

run_row C++ "$dir/matrix-cpp.txt" "$dir/tests/bench/matrix/matrix_cpp" "$dir" "${c_quick[@]}"
run_row C "$dir/matrix-c.txt" "$dir/tests/bench/matrix/matrix_c" "$dir" "${c_quick[@]}"
if command -v cargo >/dev/null 2>&1; then
    run_row Rust "$dir/matrix-rust.txt" env POLYPLUG_LIB_DIR="$root/$dir/shim" \
        POLYPLUG_LOADER_DIR="$root/$dir/shim/loaders" CARGO_TARGET_DIR="$root/$dir/cargo-target" \
        cargo run --offline --release --quiet --manifest-path bindings/rust/Cargo.toml \
        --example bench -- --matrix --build "$dir" "${quick_n[@]}"
else
    missing+=(--missing "Rust=cargo is not installed (scripts/install-deps.sh installs it)")
fi
if [[ -f "$dir/bindings/node/polyplug_node.node" ]] && command -v node >/dev/null 2>&1; then
    run_row Node.js "$dir/matrix-node.txt" node tests/bench/host_node_bench.js --matrix \
        --build "$dir" "${quick_n[@]}"
else
    missing+=(--missing "Node.js=the Node.js binding is not built (node or node_api.h missing)")
fi
run_row Python "$dir/matrix-python.txt" python3 tests/bench/host_python_bench.py --matrix \
    --build "$dir" "${quick_n[@]}"
if command -v luajit >/dev/null 2>&1; then
    run_row LuaJIT "$dir/matrix-luajit.txt" env LUA_PATH="bindings/luajit/?.lua;;" luajit \
        tests/bench/host_luajit_bench.lua --matrix --build "$dir" "${quick_n[@]}"
else
    missing+=(--missing "LuaJIT=luajit is not installed (scripts/install-deps.sh installs it)")
fi

echo "== the table ($dir/matrix.md)"
docs=()
# Quick runs are a smoke test of the harness: their numbers do not go into the documentation.
[[ $quick -eq 0 ]] && docs=(--docs docs/PERFORMANCE.md)
python3 tests/bench/matrix/matrix_table.py --out "$dir/matrix.md" "${docs[@]}" \
    "${missing[@]}" "${rows[@]}" || exit 1
echo "== done in $((SECONDS - start)) s"
exit $failed
