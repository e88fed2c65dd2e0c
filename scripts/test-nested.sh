#!/usr/bin/env bash
# test-nested.sh - `make test-nested`: the whole stack (run-nested.sh: L0 QEMU
# with vgpu-pci -> L1 with the host driver and two vGPUs -> two L2 guests
# running vgpu-l2-test at once), then the insta snapshots of its transcript,
# the L2 view of the vGPU and the L1 parent's sysfs tree. run-nested.sh fails
# on any failed check, timeout, or oops/warning in any guest's dmesg.
# One run, no retry: a guest that vanishes (an L1 without its exit marker, an
# L2 that triple faults or never reaches /init) is a bug to find, and its
# logs stay in target/nested.
set -euo pipefail
# shellcheck source=scripts/lib/tier.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/tier.sh"

# Not tier_begin: run-nested.sh sets up and builds what it boots itself.
LOG_TAG=test-nested OUT="$REPO/target/nested"
cd "$REPO"

TIER_STATUS=0
OUT="$OUT" scripts/run-nested.sh || TIER_STATUS=$?
tier_check_run run-nested console.log

tier_snapshots vgpu-guest-tests nested_snapshots VGPU_NESTED_LOG=run.log
