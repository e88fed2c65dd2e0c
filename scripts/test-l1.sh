#!/usr/bin/env bash
# test-l1.sh - `make test-l1`: build QEMU with vgpu-pci, the L1 images with
# the bare-metal driver test, boot L1, run it, and compare the normalised
# transcript and lspci output with the insta snapshots in snapshots/.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
out="$repo/target/l1"
mkdir -p "$out"
# shellcheck source=scripts/tier-lib.sh
. scripts/tier-lib.sh
device="${VGPU_DEVICE:-vgpu-pci,vram_size=256M,partitions=4,engines=2}"

scripts/setup-host.sh
scripts/build-qemu.sh >/dev/null
build_guest_bins
images=$(scripts/build-images.sh \
    "$GUEST_BIN/vgpu-l1-test:/bin/vgpu-l1-test" \
    "guest-tests/l1-run.sh:/bin/l1-run.sh")

echo "test-l1: booting L1 with -device $device"
status=0
IMAGES="$images" RUN=/bin/l1-run.sh LOG="$out/console.log" QUIET=1 \
    scripts/run-l1.sh -device "$device" || status=$?

section TRANSCRIPT "$out/console.log" >"$out/transcript.txt"
section LSPCI "$out/console.log" >"$out/lspci.txt"
cat "$out/transcript.txt"
grep '^bench ' "$out/transcript.txt" | sed 's/^bench //' >"$out/bench.txt" || true
if [[ $status -ne 0 ]]; then
    echo "test-l1: L1 run failed (status $status); console log: $out/console.log" >&2
    exit "$status"
fi

VGPU_L1_TRANSCRIPT="$out/transcript.txt" VGPU_L1_LSPCI="$out/lspci.txt" \
    cargo test --quiet -p vgpu-guest-tests --test l1_snapshots -- --include-ignored
echo "test-l1: passed"
