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
if [[ $status -ne 0 ]]; then
    echo "test-nested: run-nested failed (status $status); logs in $out" >&2
    exit "$status"
fi

VGPU_NESTED_LOG="$out/run.log" \
    cargo test --quiet -p vgpu-guest-tests --test nested_snapshots -- --include-ignored
echo "test-nested: passed"
