#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs cargo for the Rust host tests and example (tests/hosts/rust/meson.build):
#
#   cargo_test.sh <work dir> <package dir, relative to the source root> <cargo subcommand> <args...>
#
# Exits 77 (Meson's "skipped") with the reason printed when RUSTHOST_SKIP is set or cargo cannot
# be found.
#
# Which cargo: $POLYPLUG_CARGO when set (POLYPLUG_CARGO=/usr/bin/cargo tests with Debian 12's
# toolchain while rustup's comes first in PATH), else the cargo Meson found at configure time
# ($RUSTHOST_CARGO), else `cargo` from PATH. With POLYPLUG_CARGO, rustc and rustdoc are taken
# from its directory too unless RUSTC or RUSTDOC say otherwise: cargo would otherwise run the
# first rustc and rustdoc in PATH, and doctests built by another rustdoc than the crate's
# rustc fail ("invalid metadata").
#
# Nothing is written to the source tree: cargo runs on a mirror of the packages under the work
# dir (each manifest copied, everything else symlinked), so Cargo.lock lands there, and with
# CARGO_TARGET_DIR=<work dir>/target. Each test has its own work dir, so parallel tests never
# wait on each other's cargo lock. RUSTHOST_SOURCE_ROOT names the source root.
if [ -n "${RUSTHOST_SKIP:-}" ]; then
    echo "skipped: $RUSTHOST_SKIP"
    exit 77
fi
cargo=${POLYPLUG_CARGO:-${RUSTHOST_CARGO:-cargo}}
if ! command -v "$cargo" >/dev/null 2>&1; then
    echo "skipped: cargo ($cargo) was not found (scripts/install-deps.sh installs Debian's;" \
        "POLYPLUG_CARGO chooses one)"
    exit 77
fi
if [ -n "${POLYPLUG_CARGO:-}" ]; then
    case $cargo in
        */*) bin=${cargo%/*} ;;
        *) bin=$(dirname "$(command -v "$cargo")") ;;
    esac
    if [ -z "${RUSTC:-}" ] && [ -x "$bin/rustc" ]; then export RUSTC="$bin/rustc"; fi
    if [ -z "${RUSTDOC:-}" ] && [ -x "$bin/rustdoc" ]; then export RUSTDOC="$bin/rustdoc"; fi
fi
if [ $# -lt 3 ] || [ -z "${RUSTHOST_SOURCE_ROOT:-}" ]; then
    echo "usage: RUSTHOST_SOURCE_ROOT=<dir> $0 <work dir> <package dir> <cargo args...>" >&2
    exit 2
fi
work=$1
package=$2
shift 2
src=$RUSTHOST_SOURCE_ROOT
mirror=$work/src

# mirror_package <dir relative to the source root>: a real Cargo.toml, the rest symlinks.
mirror_package() {
    from=$src/$1
    to=$mirror/$1
    mkdir -p "$to" || exit 1
    for entry in "$from"/* "$from"/.[!.]*; do
        [ -e "$entry" ] || continue
        name=${entry##*/}
        case $name in
            Cargo.toml) cp "$entry" "$to/Cargo.toml.tmp" && mv -f "$to/Cargo.toml.tmp" "$to/Cargo.toml" ;;
            Cargo.lock | target | .gitignore) ;;
            *) ln -sfn "$entry" "$to/$name" ;;
        esac
    done
}

mirror_package bindings/rust
[ "$package" = bindings/rust ] || mirror_package "$package"

export CARGO_TARGET_DIR="$work/target"
echo "cargo: $cargo ($("$cargo" --version 2>&1)); rustc: ${RUSTC:-rustc from PATH};" \
    "rustdoc: ${RUSTDOC:-rustdoc from PATH}; package: $mirror/$package"
subcommand=$1
shift
exec "$cargo" "$subcommand" --manifest-path "$mirror/$package/Cargo.toml" "$@"
