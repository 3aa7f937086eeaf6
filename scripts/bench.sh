#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the benchmarks with optimisation in their own directory (build-bench, buildtype=release)
# and runs them: every row is a measured path beside its baseline from the same run. Prints the
# table and the machine's description, writes build-bench/bench.json (for tools),
# build-bench/bench.md (the Markdown table for docs/PERFORMANCE.md) and
# build-bench/processes.json (the nanosecond rows over 5 processes), then counts instructions per
# call with valgrind's callgrind (build-bench/callgrind.json). See docs/PERFORMANCE.md.
#
#   ./scripts/bench.sh               timings (native dispatch and payload rows in 5 processes),
#                                    then instruction counts
#   ./scripts/bench.sh --callgrind   instruction counts only (deterministic; what CI checks)
#   ./scripts/bench.sh --quick       short timings: a smoke test of the harness, not numbers
#   ./scripts/bench.sh --only TEXT   only the groups whose name contains TEXT (or TEXT,TEXT,...)
#   ./scripts/bench.sh --compile     compile time of a host translation unit, header-only and
#                                    compiled-once, against one including toml++ alone
#   ./scripts/bench.sh --matrix      the host x guest matrix: greet("world") from every host
#                                    language into every guest language, each against that
#                                    host's plain FFI call of a C function; writes
#                                    build-bench/matrix.md and the table in docs/PERFORMANCE.md
#                                    (with --quick: a smoke test, docs left alone)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir=build-bench

callgrind_only=0
matrix=0
quick=0
repeat_calls=1
bench_args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --callgrind) callgrind_only=1 ;;
        --quick) bench_args+=(--quick); repeat_calls=0; quick=1 ;;
        --matrix) matrix=1 ;;
        --only) bench_args+=(--only "$2"); repeat_calls=0; shift ;;
        --compile)
            "$root/scripts/install-deps.sh"
            exec python3 "$root/tests/bench/compile_time.py" --include "$root/include" ;;
        *) echo "usage: $0 [--callgrind] [--quick] [--only TEXT] [--compile] [--matrix]" >&2; exit 2 ;;
    esac
    shift
done

"$root/scripts/install-deps.sh"

start=$SECONDS
# Examples are configured (not all built) for the host-language rows: the C and Lua calc bundles.
options=(-Dbuildtype=release -Dtests=enabled -Dexamples=enabled -Dshim=enabled -Dbench=true)
echo "== configure and build ($dir, release)"
mkdir -p "$dir"
setup_log="$dir/bench-setup.log"
build_log="$dir/bench-build.log"
if [[ -f "$dir/build.ninja" ]]; then
    meson setup --reconfigure "$dir" "${options[@]}" >"$setup_log" 2>&1 || { cat "$setup_log"; exit 1; }
else
    meson setup "$dir" "${options[@]}" >"$setup_log" 2>&1 || { cat "$setup_log"; exit 1; }
fi
if [[ $matrix -eq 1 ]]; then
    exec "$root/tests/bench/matrix/run_matrix.sh" "$dir" "$quick"
fi
# Only the benchmark targets (and what they link): not the test suites.
targets=(tests/bench/bench_plugin.so tests/bench/callgrind_probe)
if [[ $callgrind_only -eq 0 ]]; then
    targets+=(tests/bench/polyplug_bench)
    # The host-language rows (Python ctypes, LuaJIT FFI) call the example C and Lua bundles.
    # (Meson names the library target by its full version; the symlinks exist from configure on.)
    all_targets=$(ninja -C "$dir" -t targets all 2>/dev/null)
    shim_target=$(sed -n 's|^\(shim/libpolyplug\.so\.[0-9.]*[0-9]\):.*|\1|p' <<<"$all_targets" | head -1)
    host_targets=("$shim_target" examples/bundles/c_calc/libc_calc.so
                  examples/bundles/c_calc/manifest.toml)
    # (The loader module's target is named by its full version too.)
    lua_target=$(sed -n 's|^\(shim/loaders/lua/libpolyplug-loader-lua\.so[.0-9]*\):.*|\1|p' \
        <<<"$all_targets" | head -1)
    if [[ -n "$lua_target" ]]; then
        mapfile -t lua_calc < <(sed -n 's|^\(examples/scripts/lua_calc/[^:]*\):.*|\1|p' <<<"$all_targets")
        host_targets+=("$lua_target" "${lua_calc[@]}")
    fi
    # The Node.js binding's addon, when node's headers were found at configure time.
    if grep -q '^bindings/node/polyplug_node.node:' <<<"$all_targets"; then
        host_targets+=(bindings/node/polyplug_node.node)
    fi
    targets+=("${host_targets[@]}")
fi
ninja -C "$dir" "${targets[@]}" >"$build_log" 2>&1 || { tail -50 "$build_log"; exit 1; }
echo "   built in $((SECONDS - start)) s"

if [[ $callgrind_only -eq 0 ]]; then
    echo "== timings"
    "$dir/tests/bench/polyplug_bench" --plugin "$dir/tests/bench/bench_plugin.so" \
        --json "$dir/bench.json" --markdown "$dir/bench.md" "${bench_args[@]}"
    if [[ $repeat_calls -eq 1 ]]; then
        # Each process draws its own address-space layout, which can move a 2 ns loop by a cycle:
        # the nanosecond call rows again in 4 more processes, and the median over all 5.
        echo "== native dispatch and payload scaling in 4 more processes"
        runs=("$dir/bench.json")
        for i in 1 2 3 4; do
            "$dir/tests/bench/polyplug_bench" --plugin "$dir/tests/bench/bench_plugin.so" \
                --only "native dispatch,payload scaling" --json "$dir/calls-$i.json" >/dev/null
            runs+=("$dir/calls-$i.json")
        done
        python3 tests/bench/aggregate_runs.py --group "native dispatch" \
            --group "payload scaling" --json "$dir/processes.json" "${runs[@]}"
    fi
fi

if [[ $callgrind_only -eq 0 ]]; then
    # One runtime call from each host language, against that language's own FFI call of a C
    # function, measured by the language itself (best of 5 runs each; not a pass/fail check).
    vm=lua
    [[ -f "$dir/shim/loaders/lua/libpolyplug-loader-lua.so" ]] || vm=""
    echo "== host languages: Python ctypes (tests/bench/host_python_bench.py)"
    python3 tests/bench/host_python_bench.py --build "$dir" --vm "$vm" | tee "$dir/host-python.txt" ||
        echo "   the Python host bench failed"
    echo "== host languages: LuaJIT FFI (tests/bench/host_luajit_bench.lua)"
    if command -v luajit >/dev/null 2>&1; then
        lua_dir=-
        [[ -n "$vm" ]] && lua_dir="$dir/examples/scripts/lua_calc"
        LUA_PATH="bindings/luajit/?.lua;;" luajit tests/bench/host_luajit_bench.lua \
            "$dir/shim/libpolyplug.so" "$dir/examples/bundles/c_calc" "$lua_dir" \
            examples/contracts/example_calc.api.toml | tee "$dir/host-luajit.txt" ||
            echo "   the LuaJIT host bench failed"
    else
        echo "   skipped: luajit is not installed (scripts/install-deps.sh installs it)"
    fi
    echo "== host languages: Node.js Node-API (tests/bench/host_node_bench.js)"
    if [[ -f "$dir/bindings/node/polyplug_node.node" ]] && command -v node >/dev/null 2>&1; then
        node tests/bench/host_node_bench.js --build "$dir" --vm "$vm" | tee "$dir/host-node.txt" ||
            echo "   the Node.js host bench failed"
    else
        echo "   skipped: the Node.js binding is not built (node or node_api.h missing; see meson's message)"
    fi
    echo "== host languages: Rust (bindings/rust/examples/bench.rs, cargo --release)"
    if command -v cargo >/dev/null 2>&1; then
        rust_n=2000000
        [[ $repeat_calls -eq 0 ]] && rust_n=200000
        POLYPLUG_LIB_DIR="$root/$dir/shim" POLYPLUG_LOADER_DIR="$root/$dir/shim/loaders" \
            CARGO_TARGET_DIR="$root/$dir/cargo-target" \
            cargo run --offline --release --quiet --manifest-path bindings/rust/Cargo.toml \
            --example bench -- --build "$dir" --vm "$vm" -n "$rust_n" | tee "$dir/host-rust.txt" ||
            echo "   the Rust host bench failed"
    else
        echo "   skipped: cargo is not installed (scripts/install-deps.sh installs it)"
    fi
fi

echo "== instruction counts (valgrind callgrind)"
if command -v valgrind >/dev/null 2>&1; then
    python3 tests/bench/callgrind_check.py --probe "$dir/tests/bench/callgrind_probe" \
        --plugin "$dir/tests/bench/bench_plugin.so" --json "$dir/callgrind.json"
    echo "wrote $dir/callgrind.json"
else
    echo "skipped: valgrind is not installed (scripts/install-deps.sh installs it)"
fi
echo "== done in $((SECONDS - start)) s"
