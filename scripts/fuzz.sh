#!/usr/bin/env bash
# fuzz.sh - `make fuzz`: coverage-guided fuzzing of the vdevice model with
# cargo fuzz (libFuzzer). Two targets (vdevice/fuzz/fuzz_targets/) drive
# two partitions with register garbage, commands built from the input, long
# commands, doorbell rewinds and ring reconfiguration under running
# commands, translation edits, the RM's unmap sequence, resets and
# injections: driver_streams from one vCPU, driver_threads from two racing
# vCPUs. Both check that a VRAM canary outside every slice and a canary in
# every unmapped page stay untouched, that the device's invariants hold,
# and that no model thread panicked.
#
#   FUZZ_SECONDS=60   how long, per target (default 60)
#   FUZZ_TARGETS="driver_streams driver_threads"   which targets, in turn
#   VGPU_DEV_CACHE=DIR   cargo-fuzz is installed into DIR/tools on first use
# Stable Rust with RUSTC_BOOTSTRAP=1 stands in for nightly (no other
# toolchain can be installed here). A crash leaves its input in
# vdevice/fuzz/artifacts/ and fails this script.
set -euo pipefail

# shellcheck source=scripts/lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host.sh"
CARGO_FUZZ_VERSION=0.13.1
tools="$CACHE_DIR/tools"

if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION into $tools"
    cargo install --quiet --locked --root "$tools" "cargo-fuzz@$CARGO_FUZZ_VERSION"
fi
export PATH="$tools/bin:$PATH" RUSTC_BOOTSTRAP=1
cd "$REPO/vdevice"
for target in ${FUZZ_TARGETS:-driver_streams driver_threads}; do
    log "$target for ${FUZZ_SECONDS:-60} s"
    cargo fuzz run "$target" -- -max_total_time="${FUZZ_SECONDS:-60}" -max_len=512 \
        -timeout=20 -rss_limit_mb=4096
done
