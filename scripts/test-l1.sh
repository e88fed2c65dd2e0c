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

# The example driver of SPEC section 14, run as a user would run theirs
# (make run-l1 PROG=...), on engines slowed down by the device properties
# of SPEC 13: it must wait for each fence, and each fence must take at
# least the delay of its two commands (FILL, FENCE).
example="$OUT/example"
delay_us=2000
log "example driver (examples/first-driver) through run-prog.sh, engine_delay_us=$delay_us"
prog=$(build_first_driver "$example")
PROG=$prog OUT="$example" \
    DEVICE="$DEVICE,engine_delay_us=$delay_us,engine_jitter_us=1000" \
    scripts/run-prog.sh | tee "$example/output.txt"
latencies=$(sed -n 's/^ok   FILL .* after \([0-9]*\) us$/\1/p' "$example/output.txt")
[[ $(wc -w <<<"$latencies") == 2 ]] || die "first-driver printed no fence latencies"
for us in $latencies; do
    ((us >= 2 * delay_us)) ||
        die "a fence arrived after $us us, before the engine delay of 2 x $delay_us us"
done
log "fences after ${latencies//$'\n'/ and } us (at least 2 x $delay_us us each)"

tier_snapshots vgpu-guest-tests l1_snapshots \
    VGPU_L1_TRANSCRIPT=transcript.txt VGPU_L1_LSPCI=lspci.txt
