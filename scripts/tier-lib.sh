#!/usr/bin/env bash
# tier-lib.sh - sourced by the test-* scripts: build the static guest
# binaries and cut console sections out of a guest's log.

# shellcheck disable=SC2034 # used by the scripts that source this file
GUEST_TARGET=x86_64-unknown-linux-gnu
GUEST_BIN="target/$GUEST_TARGET/release"

# Static, so they run in busybox initramfs images without libraries.
build_guest_bins() {
    RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --quiet --release --target "$GUEST_TARGET" \
        -p vgpu-guest-tests -p vgpuctl
}

# section NAME LOG: the lines between VGPU-NAME-BEGIN and VGPU-NAME-END.
section() {
    tr -d '\r' <"$2" | sed -n "/^VGPU-$1-BEGIN\$/,/^VGPU-$1-END\$/p" | sed '1d;$d'
}
