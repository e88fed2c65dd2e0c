#!/usr/bin/env bash
# test-sriov.sh - `make test-sriov`: VFs assigned as a VMM assigns them.
# Boots L1 on q35 with a virtual IOMMU (intel-iommu, caching mode) and
# vgpu-pci,sriov_vfs=4 in a PCIe root port, runs guest-tests/vf-run.sh:
# vgpu-vf-test enables VFs (pci-pf-stub on the PF), gives two partitions
# slices of different sizes, binds two VFs to vfio-pci in their own IOMMU
# groups and drives them through VFIO - DMA at IOVAs through the IOMMU, a
# DMA the IOMMU refuses faulting only that VF's partition, FLR, unmap -
# then hands the PF to the RM (SR-IOV mode) and the VFs to the variant
# driver vgpu_vfio_pci, and vgpu-vf-mig-test migrates VF0 to VF1 through
# VFIO (stop-and-copy and pre-copy, DMA logging, refused streams, FLR);
# then compares the transcript and the PF's SR-IOV capability (lspci)
# with the insta snapshots.
# Then the whole stack on VFs: run-nested.sh MODE=sriov (the RM as PF
# driver, types of different sizes on VF0 and VF1, the variant driver
# vgpu_vfio_pci, two L2 guests on `-device vfio-pci,host=<VF>` running
# vgpu-l2-test), and its snapshots: the transcript, the VF's lspci in L2,
# the VFs' sysfs in L1 (nested_sriov_*).
set -euo pipefail
# shellcheck source=scripts/lib/tier.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/tier.sh"

# The vIOMMU comes first (-device $DEVICE), then the root port, the GPU.
tier_begin sriov "intel-iommu,caching-mode=on,intremap=on"
gpu="vgpu-pci,bus=rp0,vram_size=256M,partitions=8,engines=2,sriov_vfs=4"
build_guest_bins
host_driver_extras "$(scripts/build-modules.sh)"
IMAGES=$(MODULES="configfs vfio vfio_iommu_type1 vfio-pci mdev pci-pf-stub" \
    scripts/build-images.sh "${HOST_DRIVER_EXTRAS[@]}" \
    "$GUEST_BIN/vgpu-vf-test:/bin/vgpu-vf-test" \
    "$GUEST_BIN/vgpu-vf-mig-test:/bin/vgpu-vf-mig-test" \
    "guest-tests/vf-run.sh:/bin/vf-run.sh")

tier_boot_l1 console.log /bin/vf-run.sh APPEND=intel_iommu=on -- \
    -machine "$L1_Q35" -device pcie-root-port,id=rp0,chassis=1 -device "$gpu"
tier_sections console.log TRANSCRIPT=transcript.txt LSPCI=lspci.txt
cat "$OUT/transcript.txt"
tier_check_run "L1 run" console.log

tier_snapshots vgpu-guest-tests sriov_snapshots \
    VGPU_SRIOV_TRANSCRIPT=transcript.txt VGPU_SRIOV_LSPCI=lspci.txt

# --- the whole stack on VFs -------------------------------------------------------
OUT="$REPO/target/nested-sriov"
TIER_STATUS=0
MODE=sriov OUT="$OUT" scripts/run-nested.sh || TIER_STATUS=$?
tier_check_run run-nested console.log
export VGPU_NESTED_MODE=sriov
tier_snapshots vgpu-guest-tests nested_snapshots VGPU_NESTED_LOG=run.log
