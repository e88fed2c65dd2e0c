#!/usr/bin/env bash
# test-trace.sh - `make test-trace`: check the trace plugin's bindings against
# the QEMU build's qemu-plugin.h, boot L1 twice with the host driver (once
# plain, once under the MMIO tracer) running guest-tests/trace-run.sh, print
# the tracer's slowdown, and compare the decoded, normalised trace of the
# RM's probe and of one vGPU's creation and removal with the insta snapshot.
set -euo pipefail
# shellcheck source=scripts/lib/tier.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/tier.sh"

tier_begin trace "vgpu-pci,vram_size=256M,partitions=8,engines=2"
scripts/gen-plugin-bindings.sh --check
cargo build --quiet --release -p vgpu-trace-plugin
modules=$(scripts/build-modules.sh)
host_driver_extras "$modules"
IMAGES=$(scripts/build-images.sh "${HOST_DRIVER_EXTRAS[@]}" "guest-tests/trace-run.sh:/bin/trace-run.sh")

# boot NAME [VAR=...]: one L1 run of trace-run.sh; one vCPU, so the trace
# has one order.
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
rm -f "$OUT/vgpu-trace.log"
boot traced TRACE=1 TRACE_OUT="$OUT/vgpu-trace.log"
[[ -s $OUT/vgpu-trace.log ]] || die "the tracer wrote nothing"
log "$(wc -l <"$OUT/vgpu-trace.log") accesses traced into $OUT/vgpu-trace.log"
for key in "/init after" total; do
    p=$(seconds "$key" "$OUT/plain.run-l1.log")
    t=$(seconds "$key" "$OUT/traced.run-l1.log")
    name=trace_l1_$( [[ $key == total ]] && echo run || echo boot)_slowdown
    echo "bench $name $(awk -v a="$t" -v b="$p" 'BEGIN { printf "%.2f", a / b }') ($t s vs $p s)"
done

tier_snapshots vgpu-trace-plugin trace_snapshot VGPU_TRACE_LOG=vgpu-trace.log
