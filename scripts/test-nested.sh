#!/usr/bin/env bash
# test-nested.sh - `make test-nested`: the whole stack (run-nested.sh: L0 QEMU
# with vgpu-pci -> L1 with the host driver and two vGPUs -> two L2 guests
# running vgpu-l2-test at once), then the insta snapshots of its transcript,
# the L2 view of the vGPU and the L1 parent's sysfs tree. run-nested.sh fails
# on any failed check, timeout, or oops/warning in any guest's dmesg.
set -euo pipefail
# shellcheck source=scripts/lib/tier.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/tier.sh"

# Not tier_begin: run-nested.sh sets up and builds what it boots itself.
LOG_TAG=test-nested OUT="$REPO/target/nested"
cd "$REPO"
out=$OUT

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
        log "$reason (no check failed): retrying once; first run kept in $out.1"
        rm -rf "$out.1"
        mv "$out" "$out.1"
        status=0
        OUT="$out" scripts/run-nested.sh || status=$?
    fi
fi
TIER_STATUS=$status
tier_check_run run-nested console.log

tier_snapshots vgpu-guest-tests nested_snapshots VGPU_NESTED_LOG=run.log
