#!/usr/bin/env bash
# test-host.sh - `make test-host`: build the host driver modules, vgpuctl and
# the VFIO tier, boot L1 with vgpu-pci, load the modules, run the tier
# (guest-tests/host-run.sh), and compare the normalised transcript and the
# parent's sysfs tree with the insta snapshots in snapshots/.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
out="$repo/target/host"
mkdir -p "$out"
# shellcheck source=scripts/tier-lib.sh
. scripts/tier-lib.sh
device="${VGPU_DEVICE:-vgpu-pci,vram_size=256M,partitions=8,engines=2}"

scripts/setup-host.sh
scripts/build-qemu.sh >/dev/null
scripts/checkpatch.sh
modules=$(scripts/build-modules.sh)
build_guest_bins
images=$(scripts/build-images.sh \
    "$modules/vgpu_rm.ko:/lib/vgpu/vgpu_rm.ko" \
    "$modules/vgpu_vfio.ko:/lib/vgpu/vgpu_vfio.ko" \
    "$GUEST_BIN/vgpu-vfio-test:/bin/vgpu-vfio-test" \
    "$GUEST_BIN/vgpu-vfio-chaos:/bin/vgpu-vfio-chaos" \
    "$GUEST_BIN/vgpuctl:/bin/vgpuctl" \
    "/usr/bin/mdevctl:/bin/mdevctl" \
    "guest-tests/host-run.sh:/bin/host-run.sh")

echo "test-host: booting L1 with -device $device"
status=0
IMAGES="$images" RUN=/bin/host-run.sh LOG="$out/console.log" QUIET=1 \
    scripts/run-l1.sh -device "$device" || status=$?

section TRANSCRIPT "$out/console.log" >"$out/transcript.txt"
section SYSFS "$out/console.log" >"$out/sysfs.txt"
cat "$out/transcript.txt"
if [[ $status -ne 0 ]]; then
    echo "test-host: L1 run failed (status $status); console log: $out/console.log" >&2
    exit "$status"
fi

VGPU_HOST_TRANSCRIPT="$out/transcript.txt" VGPU_HOST_SYSFS="$out/sysfs.txt" \
    cargo test --quiet -p vgpu-guest-tests --test host_snapshots -- --include-ignored
echo "test-host: passed"
