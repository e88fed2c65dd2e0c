#!/usr/bin/env bash
# fuzz-qemu.sh - `make fuzz-qemu`: QEMU's own device fuzzer (generic-fuzz,
# libFuzzer) against -device vgpu-pci, in a clang build with ASan and UBSan.
#
# Builds qemu-fuzz-x86_64 from the same QEMU source and qemu-patches/series
# as build-qemu.sh, plus qemu-patches/fuzz-series (the harness made safe for
# a device that DMAs from its own threads). The vdevice library is built with
# the stable toolchain and SanitizerCoverage (no ASan on the Rust side), so
# libFuzzer sees the model's branches too; debug assertions and overflow
# checks are on, and a Rust panic aborts, which libFuzzer reports as a crash.
#
#   scripts/fuzz-qemu.sh                 build if needed, fuzz FUZZ_SECONDS
#   scripts/fuzz-qemu.sh build           build only, print the binary's path
#   scripts/fuzz-qemu.sh FILE|ARG...     run the fuzzer on inputs or with
#                                        libFuzzer arguments (reproduce,
#                                        minimise: -minimize_crash=1 ...)
#
# Environment: FUZZ_SECONDS (60), FUZZ_TIMEOUT (per input, 30 s),
# FUZZ_COVERAGE (1: replay the corpus afterwards and report the share of
# vgpu-pci.c's and vdevice's edges covered), QEMU_FUZZ_ARGS and
# QEMU_FUZZ_OBJECTS (the machine and what to fuzz), QEMU_FUZZ_SETTLE_US (how
# long the engines may run after each input, 500), JOBS (ninja -j),
# VGPU_DEV_CACHE. The build lands in ~/.cache/vgpu-dev/qemu-fuzz-<key>, keyed
# by the QEMU version, both patch lists, the configure flags, the compilers
# and the vdevice sources; the corpus in ~/.cache/vgpu-dev/fuzz-qemu/corpus,
# crash inputs in ~/.cache/vgpu-dev/fuzz-qemu/artifacts. A crash fails this
# script. Needs scripts/setup-host.sh (make fuzz-qemu runs it); installs
# clang from Debian 12 itself.
set -euo pipefail

LOG_TAG="fuzz-qemu"
# shellcheck source=scripts/qemu-build-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/qemu-build-lib.sh"

LLVM_VERSION=19
LLVM_BIN="/usr/lib/llvm-$LLVM_VERSION/bin"
# libFuzzer and the sanitizer runtimes are in libclang-rt; llvm has the
# symbolizer for stacks and coverage reports; lld links the big binary fast.
FUZZ_PACKAGES=("clang-$LLVM_VERSION" "lld-$LLVM_VERSION"
    "libclang-rt-$LLVM_VERSION-dev" "llvm-$LLVM_VERSION")

# qtest drives the machine, so no TCG; KVM keeps the x86 machine code built.
FUZZ_CONFIGURE_ARGS=(
    --cc="$LLVM_BIN/clang" --cxx="$LLVM_BIN/clang++"
    --target-list=x86_64-softmmu
    --without-default-features
    --enable-kvm --disable-tcg
    --enable-pixman --enable-fdt=system
    --enable-fuzzing --enable-asan --enable-ubsan
    --extra-ldflags=-fuse-ld=lld
    --disable-install-blobs --disable-werror
)
FUZZ_BINARY=qemu-fuzz-x86_64

# SanitizerCoverage for the model, as cargo fuzz instruments Rust (all stable
# codegen options). Only the vdevice crate gets them: its dependencies'
# lock-free internals would feed libFuzzer timing noise.
VDEVICE_RUSTFLAGS=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    -Cdebug-assertions -Coverflow-checks
)

# A small device: 16 MiB of VRAM (the minimum), four partitions, two engines.
DEFAULT_FUZZ_ARGS="-machine q35 -nodefaults -L /usr/share/seabios -L /usr/share/qemu"
DEFAULT_FUZZ_ARGS+=" -device vgpu-pci,vram_size=16M,partitions=4,engines=2"

STATE_DIR="$CACHE_DIR/fuzz-qemu"

install_toolchain() {
    local status
    status=$(dpkg-query -W -f='${db:Status-Abbrev}\n' "${FUZZ_PACKAGES[@]}" 2>/dev/null) || true
    if [[ $(grep -c '^ii' <<<"$status") -ne ${#FUZZ_PACKAGES[@]} ]]; then
        [[ $(id -u) -eq 0 ]] || die "needs root to install ${FUZZ_PACKAGES[*]}"
        log "installing ${FUZZ_PACKAGES[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${FUZZ_PACKAGES[@]}" >&2
    fi
    [[ -x "$LLVM_BIN/clang" ]] || die "no $LLVM_BIN/clang after installing"
}

# The vdevice staticlib with coverage instrumentation, in its own target
# directory (the normal release build stays untouched).
build_vdevice_instrumented() {
    local target_dir="$STATE_DIR/cargo-target"
    if [[ -n "${VGPU_VDEVICE_LIB:-}" ]]; then
        printf '%s\n' "$VGPU_VDEVICE_LIB"
        return
    fi
    log "cargo rustc --release -p vdevice (SanitizerCoverage)"
    (cd "$REPO" && CARGO_TARGET_DIR="$target_dir" cargo rustc --release --locked \
        -p vdevice --lib --crate-type staticlib -- "${VDEVICE_RUSTFLAGS[@]}" >&2)
    [[ -f "$target_dir/release/libvdevice.a" ]] ||
        die "cargo did not produce $target_dir/release/libvdevice.a"
    printf '%s\n' "$target_dir/release/libvdevice.a"
}

# build: prints the directory holding bin/qemu-fuzz-x86_64.
build() {
    local pristine deb_version list patches=() tree_key key out work lib
    local compilers

    [[ -x "$VENV_DIR/bin/meson" ]] || die "no meson in $VENV_DIR: run scripts/setup-host.sh"
    install_toolchain
    mkdir -p "$CACHE_DIR" "$STATE_DIR"
    exec 8>"$CACHE_DIR/fuzz-qemu-build.lock"
    flock 8

    pristine=$(qemu_source_dir)
    deb_version=$(dpkg-parsechangelog -l "$pristine/debian/changelog" -S Version)
    # A substitution, not <(...): a missing patch must stop the build.
    list=$(series_patches "$PATCH_DIR/series" && series_patches "$PATCH_DIR/fuzz-series")
    mapfile -t patches <<<"$list"
    compilers=$("$LLVM_BIN/clang" --version | head -n1; rustc -vV | grep -E '^(release|LLVM)')

    # The build directory survives patch and model changes (only what they
    # touch is rebuilt); the installed binary is keyed by everything.
    tree_key=$(printf 'qemu %s\nconfigure %s\nlibs %s\ncompilers %s\n' "$deb_version" \
        "${FUZZ_CONFIGURE_ARGS[*]}" "$VDEVICE_NATIVE_LIBS" "$compilers" | short_hash)
    key=$({
        printf 'tree %s\nvdevice %s\nrustflags %s\n' "$tree_key" \
            "$(vdevice_sources_hash)" "${VDEVICE_RUSTFLAGS[*]}"
        patches_digest "${patches[@]}"
    } | short_hash)
    out="$CACHE_DIR/qemu-fuzz-$key"
    if [[ -f "$out/BUILDINFO" ]]; then
        ln -sfn "$out" "$CACHE_DIR/qemu-fuzz-current"
        log "up to date ($out)"
        printf '%s\n' "$out"
        return
    fi

    work="$CACHE_DIR/work/fuzz-$tree_key"
    mkdir -p "$work"
    sync_patched_tree "$pristine" "$work/src" "${patches[@]}"

    lib=$(build_vdevice_instrumented)
    configure_and_build "$work" "$FUZZ_BINARY" "$lib" "${FUZZ_CONFIGURE_ARGS[@]}"

    rm -rf "$out.partial"
    mkdir -p "$out.partial/bin"
    install -m 0755 "$work/build/$FUZZ_BINARY" "$out.partial/bin/"
    {
        printf 'qemu %s\n' "$deb_version"
        printf 'patches %s\n' "$(basename -a "${patches[@]}" | tr '\n' ' ')"
        printf 'vdevice %s (rustflags %s)\n' "$(vdevice_sources_hash)" "${VDEVICE_RUSTFLAGS[*]}"
        printf 'configure %s\n' "${FUZZ_CONFIGURE_ARGS[*]}"
        printf 'compilers %s\n' "${compilers//$'\n'/, }"
    } >"$out.partial/BUILDINFO"
    rm -rf "$out"
    mv "$out.partial" "$out"
    ln -sfn "$out" "$CACHE_DIR/qemu-fuzz-current"
    # Each binary is hundreds of MB (ASan, debug info): keep the newest only.
    find "$CACHE_DIR" -mindepth 1 -maxdepth 1 -type d -name 'qemu-fuzz-*' \
        ! -name "qemu-fuzz-$key" -exec rm -rf {} +
    log "installed $out/bin/$FUZZ_BINARY"
    printf '%s\n' "$out"
}

# fuzz_env: what generic-fuzz and the sanitizers read.
fuzz_env() {
    export QEMU_FUZZ_ARGS="${QEMU_FUZZ_ARGS:-$DEFAULT_FUZZ_ARGS}"
    export QEMU_FUZZ_OBJECTS="${QEMU_FUZZ_OBJECTS:-vgpu*}"
    # The engines run a doorbell's commands on their threads; the reset that
    # ends an input would cancel most of them (fuzz-0002).
    export QEMU_FUZZ_SETTLE_US="${QEMU_FUZZ_SETTLE_US:-500}"
    # Leak checks off as on OSS-Fuzz: QEMU keeps much alive on purpose, and
    # device threads allocate while an input ends.
    export ASAN_OPTIONS="detect_leaks=0:symbolize=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
    export ASAN_SYMBOLIZER_PATH="$LLVM_BIN/llvm-symbolizer"
    export PATH="$LLVM_BIN:$PATH"
}

# write_seeds DIR: a few generic-fuzz inputs that drive vgpu-pci the way the
# host driver would (SPEC.md): bring partition 0 up, put a ring in system
# memory, let the DMA hook hand the engine one command type each, ring the
# doorbell, read the state back. Without them libFuzzer first has to find a
# valid slice, the enable bit and the ring registers by itself.
write_seeds() {
    rm -rf "$1"
    mkdir -p "$1"
    python3 - "$1" <<'EOF'
import struct, sys

SEP = b"FUZZ"  # generic_fuzz.c: SEPARATOR; ops are opcode % 10
OP_READ, OP_WRITE, OP_ADD_DMA_PATTERN = 2, 3, 7
REGS = 0  # base index: the register BAR is the first fuzzed region (BAR 0)
PT0, WIN0 = 0x1000, 0x10000
RING_SYSMEM = 0x100000  # guest RAM

def w(off, val, size=2):  # size: 2 = 32-bit, 3 = 64-bit
    return bytes([OP_WRITE]) + struct.pack("<BBxxIQ", size, REGS, off, val)

def r(off, size=2):
    return bytes([OP_READ]) + struct.pack("<BBxxI", size, REGS, off)

def cmd(op, flags=0, dst=0, src=0, length=0, value=0):
    return struct.pack("<BB6xQQQQ24x", op, flags, dst, src, length, value)

DST_SYS, SRC_SYS, INTR = 1, 2, 4
COMMANDS = {
    "fill": cmd(2, dst=0x1000, length=0x1000, value=0x5A5A5A5A),
    "copy-in": cmd(1, flags=SRC_SYS, dst=0x2000, src=0x200000, length=0x1000),
    "copy-out": cmd(1, flags=DST_SYS, dst=0x300000, src=0, length=0x800),
    "fence": cmd(3, flags=DST_SYS | INTR, dst=0x300040, value=42),
    "sem-wait": cmd(4, flags=SRC_SYS, src=0x300080, value=1),
    "timestamp": cmd(5, dst=0x40),
    "crc32": cmd(6, dst=0x80, src=0x1000, length=0x100),
    "nop": cmd(0),
}

def partition_up(ctrl=1, xlate_root=0):
    ops = [w(PT0 + 0x08, 0, 3), w(PT0 + 0x10, 0x100000, 3)]
    if xlate_root:
        ops += [w(PT0 + 0x18, xlate_root, 3), w(PT0 + 0x20, 4)]
    return ops + [w(PT0, ctrl), w(WIN0 + 0x24, 7)]

def pattern(data):
    return bytes([OP_ADD_DMA_PATTERN, 0, 0]) + data

def sysmem_ring(tail):
    return [w(WIN0 + 0x100, RING_SYSMEM, 3), w(WIN0 + 0x108, 16),
            w(WIN0 + 0x10C, 1), w(WIN0 + 0x1000, tail)]

def readback():
    return [r(WIN0 + 0x18), r(WIN0 + 0x20), r(WIN0 + 0x28), r(WIN0 + 0x40, 3),
            r(0x20), r(0x48)]

def vram_ring(tail):
    return [w(WIN0 + 0x100, 0, 3), w(WIN0 + 0x108, 16), w(WIN0 + 0x1000, tail)]

seeds = {}
for name, c in COMMANDS.items():
    seeds[name] = partition_up() + [pattern(c)] + sysmem_ring(4) + readback()
# A ring in (zeroed) VRAM runs NOPs.
seeds["vram-ring"] = partition_up() + vram_ring(8) + readback()
# Injections (PT INJECT): DMA error, ECC error, engine hang then reset, late IRQ.
seeds["inject-dma-error"] = (partition_up() + [w(PT0 + 0x38, 2), pattern(COMMANDS["copy-in"])]
                             + sysmem_ring(2) + readback())
seeds["inject-ecc"] = partition_up() + [w(PT0 + 0x38, 3)] + vram_ring(2) + readback()
seeds["inject-hang"] = (partition_up() + [w(PT0 + 0x38, 1)] + vram_ring(2)
                        + [w(WIN0 + 0x3C, 1)] + readback())
seeds["inject-late-irq"] = (partition_up() + [w(0xA0, 10), w(PT0 + 0x38, 5),
                                              pattern(COMMANDS["fence"])]
                            + sysmem_ring(1) + readback())
# Translation: the hook hands out patterns in turn, so the engine reads a
# directory entry (-> page table at 0x600000), a page-table entry (-> page
# 0x700000, writable), then the command; misses with XLATE_REPLAY queue a
# fault the host resumes, then cancels.
XLATE_ROOT = 0x500000
seeds["xlate"] = (partition_up(ctrl=3, xlate_root=XLATE_ROOT)
                  + [pattern(struct.pack("<Q", 0x600001)), pattern(struct.pack("<Q", 0x700003)),
                     pattern(COMMANDS["copy-in"])]
                  + sysmem_ring(2) + readback())
seeds["xlate-replay"] = (partition_up(ctrl=7, xlate_root=XLATE_ROOT)
                         + [pattern(struct.pack("<Q", 0)), pattern(COMMANDS["fill"])]
                         + sysmem_ring(1) + [r(0x80), r(0x88), r(0x90, 3), w(0x98, 0),
                                             r(0x80), w(0x98, 0x100)] + readback())
# A semaphore polled by DMA every 50 us while the main thread adds and clears
# patterns: the stock hook's race (a division by zero on the engine thread).
churn = partition_up() + [pattern(cmd(4, flags=SRC_SYS, src=0x300080, value=2**64 - 1))]
churn += sysmem_ring(1)
for i in range(100):
    churn += [pattern(bytes([i]) * 8), pattern(b"\x11" * 8), bytes([8])]  # 8: clear
seeds["pattern-churn"] = churn + readback()
for name, ops in seeds.items():
    with open(f"{sys.argv[1]}/seed-{name}", "wb") as f:
        f.write(SEP.join(ops))
EOF
}

# coverage_report BINARY LOG CORPUS...: replay the corpus and sum libFuzzer's
# per-function edge counts over vgpu-pci.c and over the vdevice sources.
coverage_report() {
    local bin=$1 log=$2
    shift 2
    log "replaying the corpus for the coverage report ($log)"
    "$bin" --fuzz-target=generic-fuzz -runs=0 -print_coverage=1 -detect_leaks=0 \
        -timeout="${FUZZ_TIMEOUT:-30}" "$@" >"$log" 2>&1 ||
        die "corpus replay failed, see $log"
    awk -v vdev="$REPO/vdevice/src/" '
        /COVERED_FUNC: / {
            split($5, e, "/")
            where = ""
            if (index($0, "hw/misc/vgpu-pci.c:")) where = "vgpu-pci.c"
            else if (index($0, vdev)) where = "vdevice/src"
            if (where == "") next
            cov[where] += e[1]; tot[where] += e[2]
            funcs[where]++
            if (e[1] > 0) hit[where]++
        }
        END {
            for (w in tot)
                printf "fuzz-qemu: coverage %s: %d/%d edges (%.1f%%), %d/%d functions entered\n",
                    w, cov[w], tot[w], 100 * cov[w] / tot[w], hit[w], funcs[w]
        }' "$log" >&2
}

run_fuzzer() {
    local dir=$1 bin corpus seeds artifacts log status
    bin="$dir/bin/$FUZZ_BINARY"
    corpus="$STATE_DIR/corpus"
    seeds="$STATE_DIR/seeds"
    artifacts="$STATE_DIR/artifacts"
    log="$STATE_DIR/last-run.log"
    mkdir -p "$corpus" "$artifacts"
    write_seeds "$seeds"
    fuzz_env
    log "QEMU_FUZZ_ARGS=\"$QEMU_FUZZ_ARGS\" QEMU_FUZZ_OBJECTS=\"$QEMU_FUZZ_OBJECTS\"" \
        "QEMU_FUZZ_SETTLE_US=$QEMU_FUZZ_SETTLE_US"
    log "fuzzing for ${FUZZ_SECONDS:-60} s (corpus $corpus, log $log)"
    status=0
    "$bin" --fuzz-target=generic-fuzz -max_total_time="${FUZZ_SECONDS:-60}" \
        -timeout="${FUZZ_TIMEOUT:-30}" -rss_limit_mb=4096 -max_len=4096 \
        -detect_leaks=0 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "$corpus" "$seeds" >"$log" 2>&1 || status=$?
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::|^SUMMARY' "$log" >&2 || true
    if ((status != 0)); then
        sed -n '/^==[0-9]*==ERROR\|runtime error\|panicked at\|deadly signal/,$p' "$log" |
            head -n 80 >&2
        grep -h 'Test unit written to\|artifact_prefix' "$log" >&2 || true
        die "the fuzzer failed (exit $status): crash input kept in $artifacts, log in $log"
    fi
    local done_line
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n1)
    [[ -n "$done_line" ]] || die "no DONE line from libFuzzer, see $log"
    log "no crash; $(sed -E 's/^#([0-9]+)[[:space:]]+DONE +/\1 executions, /' <<<"$done_line")"
    if [[ "${FUZZ_COVERAGE:-1}" == 1 ]]; then
        coverage_report "$bin" "$STATE_DIR/coverage.log" "$corpus" "$seeds"
    fi
}

main() {
    local dir
    if [[ "${1:-}" == build ]]; then
        build
        return
    fi
    dir=$(build)
    if (($#)); then
        fuzz_env
        exec "$dir/bin/$FUZZ_BINARY" --fuzz-target=generic-fuzz -detect_leaks=0 "$@"
    fi
    run_fuzzer "$dir"
}

main "$@"
