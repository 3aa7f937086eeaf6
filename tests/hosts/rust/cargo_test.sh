#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs cargo for the Rust host tests and example (tests/hosts/rust/meson.build): exits 77 (Meson's
# "skipped") with the reason printed when RUSTHOST_SKIP is set or cargo cannot be found.
if [ -n "${RUSTHOST_SKIP:-}" ]; then
    echo "skipped: $RUSTHOST_SKIP"
    exit 77
fi
cargo=${RUSTHOST_CARGO:-cargo}
if ! command -v "$cargo" >/dev/null 2>&1; then
    echo "skipped: cargo was not found (scripts/install-deps.sh installs Debian's)"
    exit 77
fi
exec "$cargo" "$@"
