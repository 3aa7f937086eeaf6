#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what polyplug's build, tests and demo need from Debian 12's packages (only what is
# missing). Set POLYPLUG_NO_INSTALL=1 to skip (for example on a machine you manage yourself).
set -euo pipefail

if [[ "${POLYPLUG_NO_INSTALL:-0}" == "1" ]]; then
    exit 0
fi

packages=(
    meson ninja-build pkg-config python3   # build
    g++ gcc clang libclang-rt-14-dev       # compilers; clang's runtime for the sanitizer build
    libtomlplusplus-dev                    # toml++ (manifests and contract files)
    catch2 clang-format binutils           # tests, format check, nm for the export check
    valgrind                               # instruction counts (callgrind) checked by test.sh
    rustc                                  # the Rust example bundle
    cargo                                  # the Rust host crate (bindings/rust) and its tests
    liblua5.4-dev libluajit-5.1-dev        # the Lua loader (Lua 5.4; LuaJIT with -Dlua_impl=luajit)
    python3-dev                            # the Python loader (python3-embed)
    duktape-dev                            # the JavaScript loader
    luajit                                 # the LuaJIT host (bindings/luajit) and its tests
    nodejs libnode-dev                     # the Node.js host (bindings/node): node, node_api.h
    mono-devel                             # mcs and mono: the C# host (bindings/csharp), C# bundles
    libmono-2.0-dev                        # the .NET loader (loaders/dotnet.hpp): Mono embedding
)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
# rustc and cargo may come from rustup instead of Debian: don't install Debian's over them.
if command -v rustc >/dev/null 2>&1; then
    missing=("${missing[@]/rustc/}")
fi
# node may come from elsewhere (NodeSource's nodejs 20 ships its headers in /usr/include/node, and
# conflicts with Debian's libnode-dev; an official tarball has them in <prefix>/include/node): keep
# what is there, and ask for libnode-dev only when node_api.h is in neither place.
if command -v node >/dev/null 2>&1; then
    missing=("${missing[@]/nodejs/}")
    node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
    if [[ -f "$node_prefix/include/node/node_api.h" || -f /usr/include/node/node_api.h ]]; then
        missing=("${missing[@]/libnode-dev/}")
    fi
fi
if command -v cargo >/dev/null 2>&1; then
    missing=("${missing[@]/cargo/}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

echo "polyplug: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
    sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
