#!/usr/bin/env bash
# test-l1.sh - `make test-l1`: build QEMU with vgpu-pci, the L1 images with
# the bare-metal driver test, boot L1, run it, and compare the normalised
# transcript and lspci output with the insta snapshots in snapshots/.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
out="$repo/target/l1"
mkdir -p "$out"
target=x86_64-unknown-linux-gnu
device="${VGPU_DEVICE:-vgpu-pci,vram_size=256M,partitions=4,engines=2}"

scripts/setup-host.sh
scripts/build-qemu.sh >/dev/null
# Static, so it runs in the busybox initramfs without libraries.
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --quiet --release -p vgpu-guest-tests --target "$target"
images=$(scripts/build-images.sh \
    "target/$target/release/vgpu-l1-test:/bin/vgpu-l1-test" \
    "guest-tests/l1-run.sh:/bin/l1-run.sh")

echo "test-l1: booting L1 with -device $device"
status=0
IMAGES="$images" RUN=/bin/l1-run.sh LOG="$out/console.log" QUIET=1 \
    scripts/run-l1.sh -device "$device" || status=$?

section() {
    tr -d '\r' <"$out/console.log" | sed -n "/^VGPU-$1-BEGIN\$/,/^VGPU-$1-END\$/p" | sed '1d;$d'
}
section TRANSCRIPT >"$out/transcript.txt"
section LSPCI >"$out/lspci.txt"
cat "$out/transcript.txt"
grep '^bench ' "$out/transcript.txt" | sed 's/^bench //' >"$out/bench.txt" || true
if [[ $status -ne 0 ]]; then
    echo "test-l1: L1 run failed (status $status); console log: $out/console.log" >&2
    exit "$status"
fi

VGPU_L1_TRANSCRIPT="$out/transcript.txt" VGPU_L1_LSPCI="$out/lspci.txt" \
    cargo test --quiet -p vgpu-guest-tests --test l1_snapshots -- --include-ignored
echo "test-l1: passed"
