#!/usr/bin/env bash
# test-l1.sh - `make test-l1`: build QEMU with vgpu-pci, the L1 images with
# the bare-metal driver test, boot L1, run it, and compare the normalised
# transcript and lspci output with the insta snapshots in snapshots/.
set -euo pipefail
# shellcheck source=scripts/lib/tier.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/tier.sh"

tier_begin l1 "vgpu-pci,vram_size=256M,partitions=4,engines=2"
build_guest_bins
IMAGES=$(scripts/build-images.sh \
    "$GUEST_BIN/vgpu-l1-test:/bin/vgpu-l1-test" \
    "guest-tests/l1-run.sh:/bin/l1-run.sh")

tier_boot_l1 console.log /bin/l1-run.sh
tier_sections console.log TRANSCRIPT=transcript.txt LSPCI=lspci.txt
cat "$OUT/transcript.txt"
sed -n 's/^bench //p' "$OUT/transcript.txt" >"$OUT/bench.txt"
tier_check_run "L1 run" console.log

# The example driver of SPEC section 14, built from the generated register
# header alone and run as a user would run theirs (make run-l1 PROG=...).
log "example driver (examples/first-driver) through run-prog.sh"
example="$OUT/example"
mkdir -p "$example"
gcc -static -O2 -Wall -Wextra -Werror -I host-driver/include \
    -o "$example/first-driver" examples/first-driver/first_driver.c
PROG="$example/first-driver" OUT="$example" scripts/run-prog.sh

tier_snapshots vgpu-guest-tests l1_snapshots \
    VGPU_L1_TRANSCRIPT=transcript.txt VGPU_L1_LSPCI=lspci.txt
