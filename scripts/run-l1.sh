#!/usr/bin/env bash
# run-l1.sh - boot the L1 guest from build-images.sh's images under QEMU, run
# one command in it and exit with that command's status; fails on a kernel
# oops/warning in the guest's dmesg.
#
# Usage: [VAR=...] scripts/run-l1.sh [QEMU ARGS...]
#   e.g. RUN=/tests/run.sh scripts/run-l1.sh -device vgpu-pci,vram-mb=256
# Environment:
#   RUN=CMD        command for L1's /init (vgpu.run=; commas become spaces);
#                  default /run.sh in the initramfs if present. RUN=shell gives
#                  an interactive shell (no timeout, no checks).
#   APPEND=...     more kernel command line
#   QEMU=PATH      default $CACHE/qemu-current/bin/qemu-system-x86_64
#   QEMU_DATA=DIR  -L firmware dir; default $CACHE/qemu-current/share for the
#                  default QEMU, none for QEMU=...
#   IMAGES=DIR     default $CACHE/images-current (the last build-images.sh)
#   KERNEL=FILE    default IMAGES/vmlinux (PVH entry) or else IMAGES/vmlinuz
#   ACCEL=kvm|tcg  skip the probe (cached in $CACHE/accel per host kernel)
#   TIMEOUT=300    seconds for the whole run; INIT_TIMEOUT=60 to reach /init
#                  (one retry when /init is not reached in time)
#   MEM=1G SMP=2   guest size
#   LOG=FILE       console log (default: a file in a temp dir); QUIET=1 does
#                  not echo the console
#   TRACE=1        load the MMIO tracer plugin (TCG only): every access to
#                  vgpu-pci's register BAR, decoded, into TRACE_OUT (default
#                  target/trace/vgpu-trace.log); TRACE_ARGS=format=json,... adds
#                  plugin arguments (filters: partition=, reg=, rw=)
#   VGPU_DEV_CACHE=DIR   default ~/.cache/vgpu-dev
# Exit status: the command's, or 124 timeout, 125 no VGPU-L1-EXIT marker
# (QEMU failed, kernel panic), 123 oops/warning in dmesg after status 0
# (lib/host.sh names them).
set -euo pipefail
# shellcheck source=scripts/lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host.sh"
DIE_STATUS=$EXIT_NO_MARKER

DEFAULT_QEMU="$CACHE_DIR/qemu-current/bin/qemu-system-x86_64"
if [[ -n ${QEMU:-} ]]; then
    QEMU_DATA="${QEMU_DATA:-}"
else
    QEMU=$DEFAULT_QEMU
    QEMU_DATA="${QEMU_DATA:-$CACHE_DIR/qemu-current/share}"
fi
IMAGES="${IMAGES:-$CACHE_DIR/images-current}"
TIMEOUT="${TIMEOUT:-300}"
INIT_TIMEOUT="${INIT_TIMEOUT:-60}"
MEM="${MEM:-1G}"
SMP="${SMP:-2}"
PROBE_TIMEOUT=20

[[ -x $QEMU ]] || die "no QEMU at $QEMU (scripts/build-qemu.sh, or QEMU=...)"
[[ -f $IMAGES/initramfs.img ]] || die "no images in $IMAGES (scripts/build-images.sh)"
if [[ -z ${KERNEL:-} ]]; then
    KERNEL="$IMAGES/vmlinux"
    [[ -f $KERNEL ]] || KERNEL="$IMAGES/vmlinuz"
fi

qemu_base=("$QEMU")
[[ -z $QEMU_DATA ]] || qemu_base+=(-L "$QEMU_DATA")
qemu_base+=(-nographic -no-reboot -vga none -nic none -kernel "$KERNEL" -initrd "$IMAGES/initramfs.img")

# KVM only if it really boots a guest here: this machine's /dev/kvm may be a
# PVM host that accepts the ioctls but cannot run a stock kernel.
probe_accel() {
    local cache="$CACHE_DIR/accel" host out accel=tcg
    host=$(uname -r)
    if [[ -f $cache ]] && read -r cached_host cached_accel <"$cache" &&
        [[ $cached_host == "$host" ]]; then
        echo "$cached_accel"
        return
    fi
    if [[ -r /dev/kvm && -w /dev/kvm ]]; then
        log "probing KVM (up to ${PROBE_TIMEOUT}s)"
        out=$(timeout "$PROBE_TIMEOUT" "${qemu_base[@]}" -accel kvm -cpu host -m 512M -smp 1 \
            -append "$VGPU_BOOT_CMDLINE vgpu.probe" </dev/null 2>&1) || true
        if grep -q "$VGPU_L1_INIT" <<<"$out"; then
            accel=kvm
        else
            log "KVM does not boot a guest here: $(tail -n1 <<<"$out" | tr -d '\r')"
        fi
    fi
    mkdir -p "$CACHE_DIR"
    echo "$host $accel" >"$cache"
    echo "$accel"
}

ACCEL="${ACCEL:-$(probe_accel)}"
case "$ACCEL" in
kvm) accel_args=(-accel kvm -cpu host) ;;
# SVM (with nested paging, which EPYC has) so kvm_amd loads in L1 for L2;
# without the EPYC features TCG lacks, which it would warn about.
tcg) accel_args=(-accel "tcg,thread=multi"
    -cpu "EPYC,+svm,-fxsr-opt,-misalignsse,-osvw,-topoext,-nrip-save,-xsavec") ;;
*) die "ACCEL must be kvm or tcg, not '$ACCEL'" ;;
esac

# The MMIO tracer (vdevice/trace-plugin): a TCG plugin, so TCG only.
trace_args=()
if [[ -n ${TRACE:-} && ${TRACE} != 0 ]]; then
    trace_out="${TRACE_OUT:-$REPO/target/trace/vgpu-trace.log}"
    if [[ $ACCEL != tcg ]]; then
        log "TRACE: the MMIO tracer is a TCG plugin and L1 runs under $ACCEL: no trace (ACCEL=tcg forces TCG)"
    else
        (cd "$REPO" && cargo build --quiet --release -p vgpu-trace-plugin) ||
            die "cannot build the trace plugin"
        mkdir -p "$(dirname "$trace_out")"
        trace_args=(-plugin "$REPO/target/release/libvgpu_trace.so,out=$trace_out${TRACE_ARGS:+,$TRACE_ARGS}")
        log "TRACE: decoded register-BAR accesses go to $trace_out"
    fi
fi

cmdline="$VGPU_BOOT_CMDLINE${APPEND:+ $APPEND}${RUN:+ vgpu.run=$RUN}"
qemu_cmd=("${qemu_base[@]}" "${accel_args[@]}" "${trace_args[@]}" -m "$MEM" -smp "$SMP"
    -append "$cmdline" "$@")

log "accel $ACCEL, kernel $(basename "$KERNEL") $(cat "$IMAGES/kernel-release" 2>/dev/null || true), images $IMAGES"
if [[ ${RUN:-} == shell ]]; then
    exec "${qemu_cmd[@]}"
fi

if [[ -z ${LOG:-} ]]; then
    logdir=$(mktemp -d "${TMPDIR:-/tmp}/run-l1.XXXXXX")
    LOG="$logdir/console.log"
fi
mkdir -p "$(dirname "$LOG")"

elapsed() {
    local now=${EPOCHREALTIME/./}
    printf '%d.%d' $(((now - $1) / 1000000)) $(((now - $1) / 100000 % 10))
}

# Do not leave QEMU behind when this script is interrupted.
qpid=""
trap '[[ -z $qpid ]] || kill "$qpid" 2>/dev/null || true' EXIT

# run_once: boot, echo and log the console; sets init_time, exit_status,
# qemu_status, hung (no /init within INIT_TIMEOUT).
run_once() {
    local start line partial="" rc qfd
    start=${EPOCHREALTIME/./}
    init_time="" exit_status="" hung=0
    : >"$LOG"
    exec {qfd}< <(exec timeout -k 10 "$TIMEOUT" "${qemu_cmd[@]}" </dev/null 2>&1)
    qpid=$!
    while true; do
        rc=0
        IFS= read -r -t 1 -u "$qfd" line || rc=$?
        if ((rc > 128)); then
            # No full line within a second: keep the partial one, check the clock.
            partial+=$line
            if [[ -z $init_time ]] && ((!hung && (${EPOCHREALTIME/./} - start) / 1000000 >= INIT_TIMEOUT)); then
                hung=1
                kill "$qpid" 2>/dev/null || true
            fi
            continue
        fi
        line="$partial$line"
        partial=""
        if ((rc != 0)) && [[ -z $line ]]; then
            break
        fi
        line=${line%$'\r'}
        printf '%s\n' "$line" >>"$LOG"
        [[ -n ${QUIET:-} ]] || printf '%s\n' "$line"
        # Markers may follow firmware output that lacks a newline.
        case "$line" in
        *"$VGPU_L1_INIT") [[ -n $init_time ]] || init_time=$(elapsed "$start") ;;
        *"$VGPU_L1_EXIT "*) exit_status=${line##*"$VGPU_L1_EXIT "} ;;
        esac
        ((rc == 0)) || break
    done
    exec {qfd}<&-
    qemu_status=0
    wait "$qpid" || qemu_status=$?
    qpid=""
    total_time=$(elapsed "$start")
}

for attempt in 1 2; do
    run_once
    if [[ -z $init_time ]] && ((hung || qemu_status == 124)); then
        cp "$LOG" "$LOG.hang$attempt"
        log "no /init after $total_time s (attempt $attempt, log in $LOG.hang$attempt)"
        ((attempt == 1)) && continue
    fi
    break
done

log "console log: $LOG"
log "timing: /init after ${init_time:--} s, total $total_time s ($ACCEL)"

bad=$(dmesg_problems "$LOG" || true)
if [[ -n $bad ]]; then
    log "kernel problems in L1 dmesg:"
    printf '%s\n' "$bad" >&2
fi

if [[ -z $exit_status ]]; then
    if ((qemu_status == 124 || hung)); then
        log "timed out; the console ended with:"
        tail -n 5 "$LOG" >&2
        exit "$EXIT_TIMEOUT"
    fi
    log "no VGPU-L1-EXIT marker (QEMU status $qemu_status); the console ended with:"
    tail -n 20 "$LOG" >&2
    exit "$EXIT_NO_MARKER"
fi
if [[ ! $exit_status =~ ^[0-9]+$ ]]; then
    log "garbled exit marker '$exit_status'"
    exit "$EXIT_NO_MARKER"
fi
log "L1 command exited with $exit_status"
if ((exit_status == 0)) && [[ -n $bad ]]; then
    exit "$EXIT_DMESG"
fi
exit "$exit_status"
