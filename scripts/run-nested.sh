#!/usr/bin/env bash
# run-nested.sh - `make run-nested`: the demo of the whole stack. Today the
# stack reaches L1: L0 QEMU with -device vgpu-pci, and an L1 Linux that
# drives the GPU from user space. The L1 host driver and the L2 guests are
# the next issues; this script says so rather than pretending.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

echo "== L0: building QEMU with vgpu-pci and the L1 images (cached in ~/.cache/vgpu-dev)"
start=$SECONDS
scripts/test-l1.sh
echo
echo "== summary"
echo "L0 -> L1 with the GPU: passed in $((SECONDS - start)) s (transcript above)."
echo "Not built yet: the L1 host driver (vgpu_rm/vgpu_vfio, vGPUs via mdev) and the L2 guests;"
echo "run-nested will boot them once they exist."
