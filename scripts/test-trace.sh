#!/usr/bin/env bash
# test-trace.sh - `make test-trace`: check the trace plugin's bindings against
# the QEMU build's qemu-plugin.h, boot L1 twice with the host driver (once
# plain, once under the MMIO tracer) running guest-tests/trace-run.sh, print
# the tracer's slowdown, and compare the decoded, normalised trace of the
# RM's probe and of one vGPU's creation and removal with the insta snapshot.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
out="$repo/target/trace"
mkdir -p "$out"
# shellcheck source=scripts/tier-lib.sh
. scripts/tier-lib.sh
device="${VGPU_DEVICE:-vgpu-pci,vram_size=256M,partitions=8,engines=2}"

scripts/setup-host.sh
scripts/build-qemu.sh >/dev/null
scripts/gen-plugin-bindings.sh --check
cargo build --quiet --release -p vgpu-trace-plugin
modules=$(scripts/build-modules.sh)
images=$(scripts/build-images.sh \
    "$modules/vgpu_rm.ko:/lib/vgpu/vgpu_rm.ko" \
    "$modules/vgpu_vfio.ko:/lib/vgpu/vgpu_vfio.ko" \
    "guest-tests/trace-run.sh:/bin/trace-run.sh")

# boot NAME [VAR=...]: one L1 run of trace-run.sh; one vCPU, so the trace
# has one order; prints run-l1's timing line.
boot() {
    local name=$1 status=0
    shift
    env "$@" IMAGES="$images" RUN=/bin/trace-run.sh LOG="$out/$name.console.log" QUIET=1 \
        ACCEL=tcg SMP=1 scripts/run-l1.sh -device "$device" 2>"$out/$name.run-l1.log" || status=$?
    cat "$out/$name.run-l1.log" >&2
    section TRANSCRIPT "$out/$name.console.log"
    if [[ $status -ne 0 ]]; then
        echo "test-trace: the $name L1 run failed (status $status); see $out" >&2
        exit "$status"
    fi
}
seconds() { # KEY LOG: "/init after" or "total" seconds from run-l1's timing line
    sed -n "s|.*timing: .*$1 \\([0-9.]*\\) s.*|\\1|p" "$2" | tail -n 1
}

echo "test-trace: L1 without the tracer"
boot plain
echo "test-trace: L1 with the tracer"
rm -f "$out/vgpu-trace.log"
boot traced TRACE=1 TRACE_OUT="$out/vgpu-trace.log"
[[ -s $out/vgpu-trace.log ]] || { echo "test-trace: the tracer wrote nothing" >&2; exit 1; }
echo "test-trace: $(wc -l <"$out/vgpu-trace.log") accesses traced into $out/vgpu-trace.log"
for key in "/init after" total; do
    p=$(seconds "$key" "$out/plain.run-l1.log")
    t=$(seconds "$key" "$out/traced.run-l1.log")
    name=trace_l1_$( [[ $key == total ]] && echo run || echo boot)_slowdown
    echo "bench $name $(awk -v a="$t" -v b="$p" 'BEGIN { printf "%.2f", a / b }') ($t s vs $p s)"
done

VGPU_TRACE_LOG="$out/vgpu-trace.log" \
    cargo test --quiet -p vgpu-trace-plugin --test trace_snapshot -- --include-ignored
echo "test-trace: passed"
