#!/usr/bin/env bash
# test-host.sh - `make test-host`: build the host driver modules, vgpuctl and
# the VFIO tier, boot L1 with vgpu-pci, load the modules, run the tier
# (guest-tests/host-run.sh), and compare the normalised transcript and the
# parent's sysfs tree with the insta snapshots in snapshots/.
set -euo pipefail
# shellcheck source=scripts/lib/tier.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/tier.sh"

tier_begin host "vgpu-pci,vram_size=256M,partitions=8,engines=2"
scripts/checkpatch.sh
modules=$(scripts/build-modules.sh)
build_guest_bins
host_driver_extras "$modules"
IMAGES=$(scripts/build-images.sh "${HOST_DRIVER_EXTRAS[@]}" \
    "$GUEST_BIN/vgpu-vfio-test:/bin/vgpu-vfio-test" \
    "$GUEST_BIN/vgpu-types-test:/bin/vgpu-types-test" \
    "$GUEST_BIN/vgpu-vfio-chaos:/bin/vgpu-vfio-chaos" \
    "$GUEST_BIN/vgpu-mig-test:/bin/vgpu-mig-test" \
    "$GUEST_BIN/vgpuctl:/bin/vgpuctl" \
    "/usr/bin/mdevctl:/bin/mdevctl" \
    "guest-tests/host-run.sh:/bin/host-run.sh")

tier_boot_l1 console.log /bin/host-run.sh
tier_sections console.log TRANSCRIPT=transcript.txt SYSFS=sysfs.txt
cat "$OUT/transcript.txt"
tier_check_run "L1 run" console.log

tier_snapshots vgpu-guest-tests host_snapshots \
    VGPU_HOST_TRANSCRIPT=transcript.txt VGPU_HOST_SYSFS=sysfs.txt
