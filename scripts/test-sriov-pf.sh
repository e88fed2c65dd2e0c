#!/usr/bin/env bash
# test-sriov-pf.sh - `make test-sriov-pf`: the RM as SR-IOV PF driver.
# Boots L1 on q35 with vgpu-pci,sriov_vfs=4 in a PCIe root port (and a
# second one with 64 partitions and 64 VFs, for max_vfs), runs
# guest-tests/sriov-pf-run.sh (vgpu_mode, sriov_numvfs, per-VF type
# selection and their refusals) and compares its transcript with the
# insta snapshot. No VF is opened here: run-nested.sh MODE=sriov (in
# test-sriov) opens them through the variant driver vgpu_vfio_pci.
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

# A second GPU with 64 partitions and as many VFs: max_vfs.
big="vgpu-pci,bus=rp1,vram_size=1G,partitions=64,engines=2,sriov_vfs=64"
tier_boot_l1 console.log /bin/sriov-pf-run.sh -- -machine "$L1_Q35" -device "$gpu" \
    -device pcie-root-port,id=rp1,chassis=2 -device "$big"
tier_sections console.log TRANSCRIPT=transcript.txt
cat "$OUT/transcript.txt"
tier_check_run "L1 run" console.log

tier_snapshots vgpu-guest-tests sriov_pf_snapshots VGPU_SRIOV_PF_TRANSCRIPT=transcript.txt
