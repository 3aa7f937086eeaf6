#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, builds polyplug and its examples, and runs the demo host over every
# example bundle (C, C++ and, when rustc is installed, Rust), and hot-reloads one of them live.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
if [[ -d build ]]; then
    meson setup --reconfigure build -Dexamples=enabled >/dev/null
else
    meson setup build -Dexamples=enabled >/dev/null
fi
ninja -C build >/dev/null
# --reload: after calling every bundle, swap in version 2 of the C calc and of the C++ counter
# and hot-reload them live (the counter keeps its count through the state hand-over).
exec ./build/examples/polyplug_demo build/examples/bundles \
    --reload c-calc=build/examples/reload/libc_calc.so \
    --reload cpp-counter=build/examples/reload/libcpp_counter.so
