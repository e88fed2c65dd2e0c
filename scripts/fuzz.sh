#!/usr/bin/env bash
# fuzz.sh - `make fuzz`: coverage-guided fuzzing of the vdevice model with
# cargo fuzz (libFuzzer). The one target, vdevice/fuzz/fuzz_targets/
# driver_streams.rs, drives two partitions with register garbage, commands
# built from the input, translation edits, resets and injections, and
# checks that a VRAM canary outside every slice stays untouched.
#
#   FUZZ_SECONDS=60   how long (default 60)
#   VGPU_DEV_CACHE=DIR   cargo-fuzz is installed into DIR/tools on first use
# Stable Rust with RUSTC_BOOTSTRAP=1 stands in for nightly (no other
# toolchain can be installed here). A crash leaves its input in
# vdevice/fuzz/artifacts/ and fails this script.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_DIR="${VGPU_DEV_CACHE:-$HOME/.cache/vgpu-dev}"
CARGO_FUZZ_VERSION=0.13.1
tools="$CACHE_DIR/tools"

if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into $tools" >&2
    cargo install --quiet --locked --root "$tools" "cargo-fuzz@$CARGO_FUZZ_VERSION"
fi
export PATH="$tools/bin:$PATH" RUSTC_BOOTSTRAP=1
cd "$repo/vdevice"
cargo fuzz run driver_streams -- -max_total_time="${FUZZ_SECONDS:-60}" -max_len=512 \
    -timeout=20 -rss_limit_mb=4096
