#!/usr/bin/env bash
# run-nested.sh - `make run-nested`: the whole stack at work. L0 QEMU with
# vgpu-pci boots L1 (KVM if this host has a working one, else TCG); L1
# loads the host driver (vgpu_rm + vgpu_vfio), creates two vGPUs and boots
# two L2 guests on them at the same time (KVM inside L1 when it has nested
# paging, else TCG); each L2 loads the guest driver and runs vgpu-l2-test.
# Every line says who speaks (L0, L1, L2a, L2b); a one-screen summary ends
# it. Exit status 0 only if every check passed, no timeout, clean dmesgs.
#
# Environment:
#   MODE=mdev|sriov     mdev (default): two mdev vGPUs of one type. sriov: L1
#                       is q35 with intel-iommu (caching mode, interrupt
#                       remapping) and the GPU in a PCIe root port with
#                       sriov_vfs=4; L1 enables the VFs, gives VF0 and VF1
#                       types of different sizes (current_vgpu_type), the
#                       variant driver vgpu_vfio_pci binds them, and each L2
#                       gets one with `-device vfio-pci,host=<VF>`
#   VGPU_DEVICE=...     default vgpu-pci,vram_size=256M,partitions=8 (sriov:
#                       vgpu-pci,bus=rp0,vram_size=256M,partitions=8,sriov_vfs=4)
#   VGPU_TYPE=NAME      mdev type (default: the one with max_instances=4)
#   L2_ACCEL=kvm|tcg    L2's accelerator (default: detected inside L1)
#   L2_TIMEOUT=SECS     per L2 guest (default 480 with KVM, 1500 with TCG)
#   NO_VGPU=1           no host driver or vGPUs: only the L1 -> L2 boot path
#   MEM=2G SMP=1        L1's size; TIMEOUT=SECS for the whole L1 run. One
#                       vCPU: with two, a TCG L1 running two KVM L2 guests
#                       crashed now and then (L2 or L1 triple faults, an L2
#                       stuck in boot: 3 of 4 runs); with one, every run
#                       since passed (16 of 16)
#   OUT=DIR             logs (default target/nested): run.log, console.log
#   TRACE=1             record every access to the GPU's register BAR (L1's
#                       RM and, through it, the L2 guests' trapped accesses
#                       and doorbells), decoded, into OUT/vgpu-trace.log
#                       (TCG L1 only; TRACE_ARGS= adds filters, see run-l1.sh)
# Other run-l1.sh variables (ACCEL, QEMU, ...) pass through.
set -euo pipefail
# shellcheck source=scripts/lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host.sh"

cd "$REPO"
mode="${MODE:-mdev}"
machine=()
case "$mode" in
mdev)
    out="${OUT:-$REPO/target/nested}"
    device="${VGPU_DEVICE:-vgpu-pci,vram_size=256M,partitions=8}"
    ;;
sriov)
    out="${OUT:-$REPO/target/nested-sriov}"
    device="${VGPU_DEVICE:-vgpu-pci,bus=rp0,vram_size=256M,partitions=8,sriov_vfs=4}"
    # The vIOMMU before any PCI device; kernel-irqchip=split is what
    # interrupt remapping needs under KVM (TCG ignores it).
    machine=(-machine "$L1_Q35,kernel-irqchip=split" -device "intel-iommu,caching-mode=on,intremap=on"
        -device "pcie-root-port,id=rp0,chassis=1")
    ;;
*)
    echo "run-nested: MODE=$mode: want mdev or sriov" >&2
    exit 2
    ;;
esac
mkdir -p "$out"
run_log="$out/run.log"
if [[ -n ${TRACE:-} && $TRACE != 0 ]]; then
    export TRACE TRACE_OUT="${TRACE_OUT:-$out/vgpu-trace.log}"
fi
: >"$run_log"

# Everything shown is also kept in run.log for the summary.
say() {
    printf '%s\n' "$*" | tee -a "$run_log"
}

l0() {
    say "L0  | $*"
}

# label: prefix console and run-l1.sh lines with who speaks; L1's own dmesg
# is checked by run-l1.sh and only counted here.
label() {
    local line in_dmesg=0 lines=0
    while IFS= read -r line; do
        case "$line" in
        "L2a | "* | "L2b | "*) say "$line" ;;
        run-l1:*) say "L0  | $line" ;;
        *VGPU-DMESG-BEGIN) in_dmesg=1 lines=0 ;;
        *VGPU-DMESG-END) # (markers: lib/common.sh)
            in_dmesg=0
            say "L1  | (L1 dmesg: $lines lines, checked by run-l1.sh)"
            ;;
        *)
            if ((in_dmesg)); then
                lines=$((lines + 1))
            else
                say "L1  | $line"
            fi
            ;;
        esac
    done
}

start=$SECONDS
l0 "building: QEMU with vgpu-pci, host driver, guest driver, tests, images (cached in ~/.cache/vgpu-dev)"
# (errexit does not apply inside a pipeline's function: each step checks.)
build() {
    ensure_setup || return
    scripts/build-qemu.sh >/dev/null || return
    local modules=""
    if [[ -z ${NO_VGPU:-} ]]; then
        modules=$(scripts/build-modules.sh) || return
    fi
    scripts/build-l2-images.sh ${modules:+"$modules"} >"$out/images"
}
# (PIPESTATUS must be read in the same command: `|| true` would reset it.)
build_status=0
build 2>&1 | sed 's/^/L0  | /' | tee -a "$run_log" || build_status=${PIPESTATUS[0]}
if ((build_status != 0)); then
    l0 "build failed (status $build_status)"
    exit 1
fi
images=$(cat "$out/images")
build_time=$((SECONDS - start))

append="vgpu.l2mem=256M vgpu.mode=$mode"
[[ $mode != sriov ]] || append+=" intel_iommu=on"
[[ -z ${NO_VGPU:-} ]] || append+=" vgpu.novgpu"
[[ -z ${VGPU_TYPE:-} ]] || append+=" vgpu.type=$VGPU_TYPE"
[[ -z ${L2_ACCEL:-} ]] || append+=" vgpu.l2accel=$L2_ACCEL"
[[ -z ${L2_TIMEOUT:-} ]] || append+=" vgpu.l2timeout=$L2_TIMEOUT"
# L1 picks L2's accelerator: leave room for its TCG fallback.
timeout_default=$((${L2_TIMEOUT:-1500} + 600))

l0 "booting L1 with -device $device (images $images)"
status=0
l1_start=$SECONDS
screens="$out/screens"
rm -rf "$screens"
IMAGES="$images" RUN=/bin/l1-nested.sh APPEND="$append" MEM="${MEM:-2G}" SMP="${SMP:-1}" \
    TIMEOUT="${TIMEOUT:-$timeout_default}" LOG="$out/console.log" FILES_OUT="$screens" \
    scripts/run-l1.sh "${machine[@]}" -device "$device" 2>&1 | label || status=${PIPESTATUS[0]}
l1_time=$((SECONDS - l1_start))

# The L2 screens L1 sent out: PPM screendumps, and a PNG of each.
shots=""
if [[ -s $screens/l1-files.stream ]]; then
    shots=$("$GUEST_BIN/vgpu-screens" unpack "$screens/l1-files.stream" "$screens" 2>&1) ||
        l0 "the screens did not unpack: $shots"
fi

# --- summary ---------------------------------------------------------------------
nested() { # KEY...: the values of "VGPU-NESTED KEY..." lines from L1
    sed -n "s/^L1  | VGPU-NESTED $* //p" "$run_log" | tr -d '\r'
}
l1_accel=$(sed -n 's/.*run-l1: accel \([a-z]*\),.*/\1/p' "$run_log" | tail -n 1)
l1_init=$(sed -n 's/.*run-l1: timing: \/init after \([0-9.-]*\) s.*/\1/p' "$run_log" | tail -n 1)
l2_accel=$(nested accel_l2)
{
    echo
    echo "== run-nested summary"
    printf 'stack    L0 QEMU %s-device %s (%s mode)\n' "${machine[*]:+${machine[*]} }" "$device" "$mode"
    printf '         -> L1 under %s -> two L2 guests under %s, each with a vGPU%s%s\n' \
        "${l1_accel:-?}" "${l2_accel:-?}" "$([[ $mode == sriov ]] && echo " (a VF)")" \
        "${NO_VGPU:+ (NO_VGPU: none)}"
    echo "stages   (seconds unless ms)"
    printf '  %-28s %s\n' "build (cached after the first)" "$build_time"
    printf '  %-28s %s  [%s]\n' "L1 boot to /init" "${l1_init:--}" "${l1_accel:-?}"
    printf '  %-28s %s\n' "host driver load" "$(nested stage l1_modules)"
    if [[ $mode == sriov ]]; then
        printf '  %-28s %s ms\n' "VFs enabled" "$(nested stage vf_enable_ms)"
        printf '  %-28s %s ms\n' "two VF types assigned" "$(nested stage vgpu_create_ms)"
    else
        printf '  %-28s %s ms\n' "two vGPUs created" "$(nested stage vgpu_create_ms)"
    fi
    printf '  %-28s %s\n' "both L2 reach the barrier" "$(nested sync_after)"
    printf '  %-28s %s\n' "both L2 done" "$(nested stage l2_both)"
    printf '  %-28s %s ms\n' "two vGPUs $([[ $mode == sriov ]] && echo released || echo destroyed)" \
        "$(nested stage vgpu_destroy_ms)"
    printf '  %-28s %s\n' "L1 total (boot to power off)" "$l1_time"
    echo "guests   boot  total  checks passed/failed  dmesg  exit  [accel]"
    for g in L2a L2b; do
        line=$(nested l2 "$g")
        get() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$line"; }
        printf '  %-5s %6s %6s  %6s/%-6s              %-6s %-4s  [%s]\n' "$g" "$(get boot)" \
            "$(get total)" "$(get passed)" "$(get failed)" "$(get dmesg)" "$(get status)" "${l2_accel:-?}"
    done
    l1_ok=$(grep -c '^L1  | ok ' "$run_log" || true)
    l1_fail=$(grep -c '^L1  | FAIL ' "$run_log" || true)
    printf '  %-5s checks %s passed, %s failed; L1 dmesg %s\n' L1 "$l1_ok" "$l1_fail" \
        "$(if ((status == EXIT_DMESG)); then echo BAD; elif grep -q 'L1 dmesg:' "$run_log"; then echo clean; else echo '?'; fi)"
    echo "benchmarks                    L2a        L2b        goal"
    for b in $(nested bench | awk '{ print $2 }' | sort -u); do
        goal=""
        case "$b" in
        l2_vram_bar_vs_ram) goal=">= 0.9" ;;
        l2_reg_read_vs_edu) goal="<= 2" ;;
        esac
        printf '  %-27s %-10s %-10s %s\n' "$b" "$(nested bench L2a "$b")" "$(nested bench L2b "$b")" "$goal"
    done
    echo "screens  (QEMU's screendump of each L2's vGPU display in L1, as PNG)"
    if [[ -z $shots ]]; then
        echo "  none"
    fi
    while read -r kind path size; do
        [[ $kind == screen ]] && printf '  %-9s %s\n' "$size" "$path"
    done <<<"$shots"
    for g in L2a L2b; do
        fps=$(nested display_fps "$g")
        [[ -z $fps ]] || printf '  %s display_fps %s (whole frames a second through the region plane)\n' "$g" "$fps"
    done
} | tee -a "$run_log"

if [[ -n ${TRACE_OUT:-} && -s $TRACE_OUT ]]; then
    say "trace    $(wc -l <"$TRACE_OUT") register accesses, decoded, in $TRACE_OUT"
fi
if ((status == 0)); then
    say "result   PASSED (log $run_log, L1 console $out/console.log)"
else
    case $status in
    "$EXIT_TIMEOUT") why="timeout" ;;
    "$EXIT_DMESG") why="kernel problems in L1's dmesg" ;;
    "$EXIT_QEMU_EARLY") why="QEMU failed before L1 reached /init" ;;
    "$EXIT_QEMU_DIED") why="QEMU crashed while L1 ran" ;;
    "$EXIT_NO_MARKER") why="L1 did not finish (kernel panic?)" ;;
    *) why="L1 run exited with $status" ;;
    esac
    say "result   FAILED: $why (log $run_log, L1 console $out/console.log)"
    exit 1
fi
