#!/usr/bin/env bash
# test-sriov-pf.sh - `make test-sriov-pf`: the RM as SR-IOV PF driver.
# Boots L1 on q35 with vgpu-pci,sriov_vfs=4 in a PCIe root port, runs
# guest-tests/sriov-pf-run.sh (vgpu_mode, sriov_numvfs, per-VF type
# selection and their refusals) and compares its transcript with the
# insta snapshot. No VF is opened: that needs the vfio-pci variant driver.
set -euo pipefail
# shellcheck source=scripts/lib/tier.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/tier.sh"

# The root port comes first (-device $DEVICE), the GPU after it.
tier_begin sriov-pf "pcie-root-port,id=rp0"
gpu="vgpu-pci,bus=rp0,vram_size=256M,partitions=8,engines=2,sriov_vfs=4"
modules=$(scripts/build-modules.sh)
host_driver_extras "$modules"
IMAGES=$(scripts/build-images.sh "${HOST_DRIVER_EXTRAS[@]}" \
    "guest-tests/sriov-pf-run.sh:/bin/sriov-pf-run.sh")

tier_boot_l1 console.log /bin/sriov-pf-run.sh -- -machine q35 -device "$gpu"
tier_sections console.log TRANSCRIPT=transcript.txt
cat "$OUT/transcript.txt"
tier_check_run "L1 run" console.log

tier_snapshots vgpu-guest-tests sriov_pf_snapshots VGPU_SRIOV_PF_TRANSCRIPT=transcript.txt
