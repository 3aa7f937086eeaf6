#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, builds polyplug and its examples, and runs the demo host over every
# example bundle (C, C++, Rust, and the Python, Lua and JavaScript scripts whose loaders are
# built), and hot-reloads some of them live.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
# Tests are not configured here (./scripts/test.sh turns them on again in the same build tree):
# the demo needs the library, the loaders and the examples, built with the compiled-once engine.
echo "== configure (build/)"
if [[ -d build ]]; then
    meson setup --reconfigure build -Dexamples=enabled -Dtests=disabled >build-setup.log 2>&1 ||
        { cat build-setup.log; exit 1; }
else
    meson setup build -Dexamples=enabled -Dtests=disabled >build-setup.log 2>&1 ||
        { cat build-setup.log; exit 1; }
fi
rm -f build-setup.log
echo "== build (every 10th step shown; compiler messages in full)"
start=$SECONDS
ninja -C build | awk '/^\[[0-9]+\/[0-9]+\]/ { split(substr($1, 2), p, "/"); n = p[1] + 0; t = p[2] + 0;
                                              if (n % 10 == 0 || n == t) { print "   " $1 " " $NF; fflush() }
                                              next }
                     { print; fflush() }'
echo "   built in $((SECONDS - start)) s"
echo "== demo"
# Plugin directories: the native bundles, and the script bundles of every loader this build has.
# --reload: after calling every bundle, swap in version 2 of the C calc, of the C++ counter (which
# keeps its count through the state hand-over), of the Lua calc and of the C# calc (into a new
# application domain), and hot-reload them live.
dirs=(build/examples/bundles)
reloads=(--reload c-calc=build/examples/reload/libc_calc.so
         --reload cpp-counter=build/examples/reload/libcpp_counter.so)
if [[ -d build/examples/scripts ]]; then
    dirs+=(build/examples/scripts)
fi
if [[ -d build/examples/scripts/lua_calc ]]; then
    reloads+=(--reload lua-calc=examples/scripts/lua_calc/calc_v2.lua)
fi
if [[ -f build/examples/dotnet/dotnet_calc/Calc_v2.dll ]]; then
    dirs+=(build/examples/dotnet)
    reloads+=(--reload dotnet-calc=build/examples/dotnet/dotnet_calc/Calc_v2.dll)
fi
exec ./build/examples/polyplug_demo "${dirs[@]}" "${reloads[@]}"
