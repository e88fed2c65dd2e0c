#!/usr/bin/env bash
# test-nested.sh - `make test-nested`: the whole stack (run-nested.sh: L0 QEMU
# with vgpu-pci -> L1 with the host driver and two vGPUs -> two L2 guests
# running vgpu-l2-test at once), then the insta snapshots of its transcript,
# the L2 view of the vGPU and the L1 parent's sysfs tree. run-nested.sh fails
# on any failed check, timeout, or oops/warning in any guest's dmesg.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
out="$repo/target/nested"

status=0
OUT="$out" scripts/run-nested.sh || status=$?
# Nested virtualisation under TCG has rare crashes of its own: a guest that
# vanishes without a word (an L1 with no exit marker; an L2 whose QEMU
# exits 0 with no exit status, i.e. a triple fault; an L2 that never
# reaches its /init). Those get one more run, and only when no check failed
# except the isolation barrier that the vanished peer left alone.
if [[ $status -ne 0 ]] &&
    ! grep -E '^L2[ab] \| FAIL ' "$out/run.log" | grep -qv 'barrier answered "alone"'; then
    reason=""
    if grep -q 'L1 did not finish' "$out/run.log"; then
        reason="L1 ended without its exit marker"
    elif grep 'VGPU-NESTED l2 ' "$out/run.log" |
        grep -qE ' status=- qemu=0 | boot=- .* status=- '; then
        reason="an L2 guest vanished or never booted"
    fi
    if [[ -n $reason ]]; then
        echo "test-nested: $reason (no check failed): retrying once; first run kept in $out.1" >&2
        rm -rf "$out.1"
        mv "$out" "$out.1"
        status=0
        OUT="$out" scripts/run-nested.sh || status=$?
    fi
fi
if [[ $status -ne 0 ]]; then
    echo "test-nested: run-nested failed (status $status); logs in $out" >&2
    exit "$status"
fi

VGPU_NESTED_LOG="$out/run.log" \
    cargo test --quiet -p vgpu-guest-tests --test nested_snapshots -- --include-ignored
echo "test-nested: passed"
