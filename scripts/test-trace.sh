#!/usr/bin/env bash
# test-trace.sh - `make test-trace`: check the trace plugin's bindings against
# the QEMU build's qemu-plugin.h, boot L1 twice with the host driver (once
# plain, once under the MMIO tracer) running guest-tests/trace-run.sh, print
# the tracer's slowdown, and compare the decoded, normalised trace of the
# RM's probe, of one vGPU's creation and removal and of the example driver's
# reset-then-forgotten-ring mistake (with the device's events), and of the
# RM's side of a vGPU's migration (vgpu-mig-test --only ...), with the insta
# snapshot. The traced run also checks that the device's refusal
# reaches -d guest_errors.
set -euo pipefail
# shellcheck source=scripts/lib/tier.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/tier.sh"

tier_begin trace "vgpu-pci,vram_size=256M,partitions=8,engines=2"
scripts/gen-plugin-bindings.sh --check
cargo build --quiet --release -p vgpu-trace-plugin
modules=$(scripts/build-modules.sh)
build_guest_bins
host_driver_extras "$modules"
first_driver=$(build_first_driver "$OUT")
IMAGES=$(scripts/build-images.sh "${HOST_DRIVER_EXTRAS[@]}" \
    "guest-tests/trace-run.sh:/bin/trace-run.sh" "$first_driver:/bin/first-driver" \
    "$GUEST_BIN/vgpu-mig-test:/bin/vgpu-mig-test")

# boot NAME [VAR=...] [-- QEMU ARGS]: one L1 run of trace-run.sh; one vCPU,
# so the trace has one order.
boot() {
    local name=$1
    shift
    tier_boot_l1 "$name.console.log" /bin/trace-run.sh ACCEL=tcg SMP=1 "$@"
    section TRANSCRIPT "$OUT/$name.console.log"
    tier_check_run "the $name L1 run" "$name.console.log"
}
seconds() { # KEY LOG: "/init after" or "total" seconds from run-l1's timing line
    sed -n "s|.*timing: .*$1 \\([0-9.]*\\) s.*|\\1|p" "$2" | tail -n 1
}

log "L1 without the tracer"
boot plain
log "L1 with the tracer"
rm -f "$OUT/vgpu-trace.log" "$OUT/guest-errors.log"
boot traced TRACE=1 TRACE_OUT="$OUT/vgpu-trace.log" -- -d guest_errors -D "$OUT/guest-errors.log"
[[ -s $OUT/vgpu-trace.log ]] || die "the tracer wrote nothing"
refusal="PART\[0\]\.DOORBELL\[0\] <- 0x[0-9a-f]*  REJECTED BAD_VALUE (ring 0 off"
grep -q "^vgpu-pci .*: W4 $refusal" "$OUT/guest-errors.log" ||
    die "the refused doorbell is not in -d guest_errors ($OUT/guest-errors.log)"
log "-d guest_errors: $(grep -m1 "$refusal" "$OUT/guest-errors.log")"
log "$(wc -l <"$OUT/vgpu-trace.log") accesses traced into $OUT/vgpu-trace.log"
for key in "/init after" total; do
    p=$(seconds "$key" "$OUT/plain.run-l1.log")
    t=$(seconds "$key" "$OUT/traced.run-l1.log")
    name=trace_l1_$( [[ $key == total ]] && echo run || echo boot)_slowdown
    echo "bench $name $(awk -v a="$t" -v b="$p" 'BEGIN { printf "%.2f", a / b }') ($t s vs $p s)"
done

tier_snapshots vgpu-trace-plugin trace_snapshot VGPU_TRACE_LOG=vgpu-trace.log
