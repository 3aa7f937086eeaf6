#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and runs two consumers of polyplug: one vendoring it as a Meson subproject (with
# packaging/polyplug.wrap), one using the installed pkg-config files. Usage: run.sh ROOT WORKDIR
set -euo pipefail
root=$(cd "$1" && pwd)
work="$root/$2"
rm -rf "$work"
mkdir -p "$work/subproject/subprojects"

echo "-- consumer: Meson subproject"
cp "$root"/tests/consumer/{meson.build,cpp_consumer.cpp,c_consumer.c,engine_consumer.cpp} \
    "$work/subproject/"
# A vendored copy of the source tree (what a monorepo would commit), without build trees.
mkdir -p "$work/subproject/subprojects/polyplug"
git -C "$root" ls-files -co --exclude-standard -z | (cd "$root" && xargs -0 cp --parents -t "$work/subproject/subprojects/polyplug")
cp "$root/packaging/polyplug.wrap" "$work/subproject/subprojects/"
meson setup "$work/subproject/build" "$work/subproject" >"$work/subproject.log" 2>&1 || { cat "$work/subproject.log"; exit 1; }
grep -q "Dependency catch2 skipped\|tests *: NO" "$work/subproject.log" || grep -q "feature tests disabled" "$work/subproject.log" || true
ninja -C "$work/subproject/build" >>"$work/subproject.log" 2>&1 || { tail -40 "$work/subproject.log"; exit 1; }
"$work/subproject/build/cpp_consumer"
"$work/subproject/build/cpp_once_consumer"
LD_LIBRARY_PATH="$work/subproject/build/subprojects/polyplug/shim" "$work/subproject/build/c_consumer"
# dependency('polyplug-<engine>') for each script engine whose VM this machine has.
for engine in lua python js; do
    if [[ -x "$work/subproject/build/${engine}_consumer" ]]; then
        "$work/subproject/build/${engine}_consumer"
    else
        echo "engine_consumer: polyplug-$engine not built (its VM library is not installed)"
    fi
done

echo "-- consumer: Meson subproject, header-only runtime alone"
# Only dependency('polyplug'): the build must compile nothing of polyplug's own.
mkdir -p "$work/header-only/subprojects"
cp "$root/tests/consumer/header_only/meson.build" "$root/tests/consumer/cpp_consumer.cpp" \
    "$work/header-only/"
ln -s "$work/subproject/subprojects/polyplug" "$work/header-only/subprojects/polyplug"
cp "$root/packaging/polyplug.wrap" "$work/header-only/subprojects/"
meson setup "$work/header-only/build" "$work/header-only" >"$work/header-only.log" 2>&1 ||
    { cat "$work/header-only.log"; exit 1; }
ninja -C "$work/header-only/build" >>"$work/header-only.log" 2>&1 ||
    { tail -40 "$work/header-only.log"; exit 1; }
"$work/header-only/build/cpp_consumer"
built=$(find "$work/header-only/build/subprojects" \( -name 'libpolyplug*' -o -name polyplug \) \
    -type f)
if [[ -n "$built" ]]; then
    echo "header-only consumer: polyplug compiled what the consumer did not ask for:"
    echo "$built"
    exit 1
fi
echo "header-only consumer: nothing of polyplug compiled"

echo "-- consumer: installed, through pkg-config"
meson setup "$work/install-build" "$root" --prefix "$work/prefix" --libdir lib -Dtests=disabled \
    -Dexamples=disabled >"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
meson install -C "$work/install-build" >>"$work/install.log" 2>&1 || { tail -40 "$work/install.log"; exit 1; }
# Every .pc file in one directory: the prefix's lib/pkgconfig.
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
if [[ -e "$work/prefix/share/pkgconfig" ]]; then
    echo "a .pc file was installed to share/pkgconfig:"; ls "$work/prefix/share/pkgconfig"; exit 1
fi
cc $(pkg-config --cflags polyplug-c) "$root/tests/consumer/c_consumer.c" -o "$work/c_pkgconfig" \
    $(pkg-config --libs polyplug-c)
LD_LIBRARY_PATH="$work/prefix/lib" "$work/c_pkgconfig"
c++ $(pkg-config --cflags polyplug) "$root/tests/consumer/cpp_consumer.cpp" -o "$work/cpp_pkgconfig" \
    $(pkg-config --libs polyplug)
"$work/cpp_pkgconfig"
# The compiled-once mode without Meson: one unit of the program includes implementation.hpp.
printf '#include <polyplug/implementation.hpp>\n' >"$work/polyplug_once.cpp"
c++ -DPOLYPLUG_HEADER_ONLY=0 $(pkg-config --cflags polyplug) "$root/tests/consumer/cpp_consumer.cpp" \
    "$work/polyplug_once.cpp" -o "$work/cpp_once_pkgconfig" $(pkg-config --libs polyplug)
"$work/cpp_once_pkgconfig"
# The two modes in one program (docs/INTEGRATION.md: they live in different inline namespaces,
# so a mix links as two separate engines instead of breaking the one-definition rule): a
# header-only main and a compiled-once unit, each making a runtime.
cat >"$work/mixed_main.cpp" <<'CPP'
#include <polyplug/polyplug.hpp>
int once_side();
int main() {
    polyplug::runtime rt;
    return rt.bundles().empty() && once_side() == 0 ? 0 : 1;
}
CPP
cat >"$work/mixed_once.cpp" <<'CPP'
#include <polyplug/polyplug.hpp>
int once_side() {
    polyplug::runtime rt;
    return rt.bundles().empty() ? 0 : 1;
}
CPP
c++ $(pkg-config --cflags polyplug) -c "$work/mixed_main.cpp" -o "$work/mixed_main.o"
c++ -DPOLYPLUG_HEADER_ONLY=0 $(pkg-config --cflags polyplug) -c "$work/mixed_once.cpp" \
    -o "$work/mixed_once.o"
c++ -DPOLYPLUG_HEADER_ONLY=0 $(pkg-config --cflags polyplug) -c "$work/polyplug_once.cpp" \
    -o "$work/polyplug_once.o"
c++ "$work/mixed_main.o" "$work/mixed_once.o" "$work/polyplug_once.o" -o "$work/mixed_modes" \
    $(pkg-config --libs polyplug)
"$work/mixed_modes"  # (set -e: a failure ends the script here)
echo "mixed header-only and compiled-once units: ok"
# A script engine through its installed .pc file (Lua: the quickest of the three to compile).
if pkg-config --exists polyplug-lua; then
    c++ -DPOLYPLUG_CONSUMER_ENGINE=1 $(pkg-config --cflags polyplug-lua) \
        "$root/tests/consumer/engine_consumer.cpp" -o "$work/lua_pkgconfig" \
        $(pkg-config --libs polyplug-lua)
    "$work/lua_pkgconfig"
else
    echo "polyplug-lua.pc not installed (Lua not found by the install build): skipped"
fi
# The host packages as installed: Python's ctypes package and LuaJIT's module, each finding
# libpolyplug.so through the dynamic loader, with nothing from the source tree on their paths.
package=$(find "$work/prefix" -path '*-packages/polyplug/__init__.py' | head -1)
if [[ -z "$package" ]]; then echo "the Python host package was not installed"; exit 1; fi
LD_LIBRARY_PATH="$work/prefix/lib" PYTHONPATH="$(dirname "$(dirname "$package")")" python3 -c '
import polyplug
with polyplug.Runtime() as rt:
    try:
        rt.load("/no/such/bundle")
    except polyplug.Error as e:
        print("python host (installed):", type(e).__name__, "(expected)")
    else:
        raise SystemExit("python host: a missing bundle loaded")
'
if [[ ! -f "$work/prefix/share/lua/5.1/polyplug.lua" ]]; then
    echo "polyplug.lua was not installed to share/lua/5.1"; exit 1
fi
if command -v luajit >/dev/null 2>&1; then
    LD_LIBRARY_PATH="$work/prefix/lib" LUA_PATH="$work/prefix/share/lua/5.1/?.lua" luajit -e '
local polyplug = require("polyplug")
local rt = polyplug.runtime()
local ok = pcall(function() rt:load("/no/such/bundle") end)
assert(not ok, "luajit host: a missing bundle loaded")
print("luajit host (installed): load of a missing bundle -> error (expected)")
'
else
    echo "luajit host: luajit is not installed (scripts/install-deps.sh installs it): skipped"
fi
# The Node.js binding as installed (<libdir>/nodejs/polyplug), when the install build had node's
# headers; found through NODE_PATH, the addon beside polyplug.js, libpolyplug.so by its soname.
node_module=$(find "$work/prefix" -path '*/nodejs/polyplug/polyplug.js' | head -1)
if [[ -n "$node_module" ]] && command -v node >/dev/null 2>&1; then
    LD_LIBRARY_PATH="$(dirname "$(dirname "$(dirname "$node_module")")")" \
    NODE_PATH="$(dirname "$(dirname "$node_module")")" node -e '
const polyplug = require("polyplug");
const rt = new polyplug.Runtime();
try {
    rt.load("/no/such/bundle");
    throw new Error("node host: a missing bundle loaded");
} catch (e) {
    if (!(e instanceof polyplug.PolyplugError)) throw e;
    console.log("node host (installed):", e.name, "(expected)");
} finally {
    rt.close();
}
'
else
    echo "node host: the Node.js binding was not installed (no node or node_api.h at build time): skipped"
fi
echo "-- consumers: ok"
