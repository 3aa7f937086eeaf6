#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, builds polyplug and its examples, and runs the demo host over every
# example bundle (C, C++, Rust, and the Python, Lua and JavaScript scripts whose loaders are
# built), and hot-reloads some of them live.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
if [[ -d build ]]; then
    meson setup --reconfigure build -Dexamples=enabled >/dev/null
else
    meson setup build -Dexamples=enabled >/dev/null
fi
ninja -C build >/dev/null
# Plugin directories: the native bundles, and the script bundles of every loader this build has.
# --reload: after calling every bundle, swap in version 2 of the C calc, of the C++ counter (which
# keeps its count through the state hand-over) and of the Lua calc, and hot-reload them live.
dirs=(build/examples/bundles)
reloads=(--reload c-calc=build/examples/reload/libc_calc.so
         --reload cpp-counter=build/examples/reload/libcpp_counter.so)
if [[ -d build/examples/scripts ]]; then
    dirs+=(build/examples/scripts)
fi
if [[ -d build/examples/scripts/lua_calc ]]; then
    reloads+=(--reload lua-calc=examples/scripts/lua_calc/calc_v2.lua)
fi
exec ./build/examples/polyplug_demo "${dirs[@]}" "${reloads[@]}"
