#!/usr/bin/env bash
# build-l2-images.sh - the images of the nested stack, with build-images.sh:
#   L2: the same kernel, an initramfs with busybox, lspci, the DRM modules
#       and the guest driver (vgpu_guest.ko, built W=1 against the kernel's
#       headers), Debian's modetest (libdrm-tests) with libdrm, the static
#       vgpu-l2-test, the static vgpu-l2-work (the migration workload) and
#       scripts/l2-init.sh as /init;
#   L1: the usual L1 initramfs plus our QEMU (stripped) with its libraries and
#       firmware, the L2 kernel and initramfs, the host driver modules,
#       vgpuctl and scripts/l1-nested.sh.
#
# Usage: scripts/build-l2-images.sh [MODULES_DIR [SRC:DST...]]
#   MODULES_DIR   holds vgpu_rm.ko and vgpu_vfio.ko (scripts/build-modules.sh
#                 prints it); without it the L1 image has no host driver
#   SRC:DST       more files for the L1 image (build-images.sh's form)
#   L2_KERNEL=vmlinuz|vmlinux   what L2 boots (default vmlinuz, see below)
#   L2_ONLY=1     build and print the L2 images directory only (test-libvirt:
#                 a distribution's QEMU in L1 boots them)
#   VGPU_DEV_CACHE=DIR   cache directory (default ~/.cache/vgpu-dev)
# Prints the L1 images directory (for run-l1.sh's IMAGES=); messages go to
# stderr. Everything is cached in $CACHE, keyed by content.
set -euo pipefail
# shellcheck source=scripts/lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host.sh"

cd "$REPO"
export VGPU_DEV_CACHE="$CACHE_DIR"
# vmlinux boots without decompressing (seconds at TCG speed, which is L2's
# speed too) but is 57 MB against 12 MB; measured: see the report in
# run-nested.sh's header.
L2_KERNEL="${L2_KERNEL:-vmlinuz}"
modules_dir="${1:-}"
shift $(($# > 0 ? 1 : 0))
l1_more=("$@")

qemu_dir=$(readlink -f "$CACHE_DIR/qemu-current" 2>/dev/null || true)
[[ -x $qemu_dir/bin/qemu-system-x86_64 ]] || die "no QEMU in $CACHE_DIR/qemu-current (scripts/build-qemu.sh)"
HOST_DRIVER_EXTRAS=()
[[ -z $modules_dir ]] || host_driver_extras "$modules_dir"

# The plain L1 image: fetches the kernel and its headers if needed.
LINK_CURRENT=0 scripts/build-images.sh >/dev/null
kdir=$(readlink -f "$CACHE_DIR/kernel-current")
release=$(cat "$kdir/kernel-release")

# --- modetest for the display checks: Debian's, with its library --------------------
# shellcheck source=scripts/lib/images.sh
. "$SCRIPTS_DIR/lib/images.sh"
TMP_DIR=$(mktemp -d "$CACHE_DIR/.l2-packages.XXXXXX")
drm_pkgs=$(fetch_packages l2-packages libdrm-tests libdrm2)
rm -rf "$TMP_DIR"
drm_libdir="$drm_pkgs/root/usr/lib/x86_64-linux-gnu"
[[ -x $drm_pkgs/root/usr/bin/modetest && -f $drm_libdir/libdrm.so.2 ]] ||
    die "no modetest or libdrm.so.2 in $drm_pkgs"

# --- the guest driver, built in a copy so the tree stays clean -------------------
driver_files=(guest-tests/guest-driver/{Kbuild,vgpu_guest.h,vgpu_guest_drv.c,vgpu_guest_kms.c,vgpu_drm.h} host-driver/include/vgpu_regs.h)
driver="$CACHE_DIR/l2-driver-$({ echo "$release"; cat "${driver_files[@]}"; } | short_hash)"
if [[ ! -f $driver/vgpu_guest.ko ]]; then
    log "building vgpu_guest.ko for $release"
    tmp=$(mktemp -d "$CACHE_DIR/.l2-driver.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    for f in "${driver_files[@]}"; do
        install -D -m 0644 "$f" "$tmp/$f"
    done
    out=$(make -C "$kdir/build" M="$tmp/guest-tests/guest-driver" W=1 modules 2>&1) ||
        die "vgpu_guest.ko does not build:"$'\n'"$out"
    if grep -E 'warning:|error:' <<<"$out" >&2; then
        die "vgpu_guest.ko is not W=1 clean"
    fi
    mkdir -p "$driver"
    cp "$tmp/guest-tests/guest-driver/vgpu_guest.ko" "$driver/"
    rm -rf "$tmp"
    trap - EXIT
fi

# --- the test (L2) and vgpuctl (L1), static for the busybox initramfs -----------
build_guest_bins

# --- L2 images ----------------------------------------------------------------------
# The guest driver's dependencies (modinfo -F depends) are loaded at boot
# by l2-init.sh, in the order add_modules lists them.
l2=$(LINK_CURRENT=0 MODULES="drm_vram_helper" INIT_SCRIPT="$SCRIPTS_DIR/l2-init.sh" \
    EXTRA_LIBDIRS="$drm_libdir" scripts/build-images.sh \
    "$GUEST_BIN/vgpu-l2-test:/bin/vgpu-l2-test" \
    "$GUEST_BIN/vgpu-l2-work:/bin/vgpu-l2-work" \
    "$GUEST_BIN/vgpu-l2-display:/bin/vgpu-l2-display" \
    "$driver/vgpu_guest.ko:$VGPU_MODULES_DIR/vgpu_guest.ko" \
    "$drm_pkgs/root/usr/bin/modetest:/usr/bin/modetest" \
    "$(readlink -f "$drm_libdir/libdrm.so.2"):/lib/x86_64-linux-gnu/libdrm.so.2")
[[ -f $l2/$L2_KERNEL ]] || die "no $L2_KERNEL in $l2"
log "L2 images: $l2"
if [[ ${L2_ONLY:-0} == 1 ]]; then
    echo "$l2"
    exit 0
fi

# --- QEMU for L1: stripped, with its firmware -----------------------------------
qemu_bin="$qemu_dir/bin/qemu-system-x86_64"
qemu_l1="$CACHE_DIR/qemu-stripped-$({ sha256sum <"$qemu_bin"; find "$qemu_dir/share" -type f -exec sha256sum {} + | sort; } | short_hash)"
if [[ ! -x $qemu_l1/bin/qemu-system-x86_64 ]]; then
    log "stripping QEMU for L1"
    rm -rf "$qemu_l1.tmp"
    mkdir -p "$qemu_l1.tmp/bin"
    strip -o "$qemu_l1.tmp/bin/qemu-system-x86_64" "$qemu_bin"
    cp -a "$qemu_dir/share" "$qemu_l1.tmp/share"
    rm -rf "$qemu_l1"
    mv "$qemu_l1.tmp" "$qemu_l1"
    find "$CACHE_DIR" -maxdepth 1 -name 'qemu-stripped-*' ! -path "$qemu_l1" -exec rm -rf {} +
fi

# --- L1 images for the nested run ------------------------------------------------------
extras=(
    "$qemu_l1/bin/qemu-system-x86_64:/usr/bin/qemu-system-x86_64"
    "$qemu_l1/share:/usr/share/qemu"
    "$l2/$L2_KERNEL:/l2/kernel"
    "$l2/initramfs.img:/l2/initramfs.img"
    "scripts/l1-nested.sh:/bin/l1-nested.sh"
    "$GUEST_BIN/vgpuctl:/bin/vgpuctl"
    "${HOST_DRIVER_EXTRAS[@]}"
    "${l1_more[@]}"
)
l1=$(LINK_CURRENT=0 scripts/build-images.sh "${extras[@]}")
log "L1 images: $l1 ($(du -h "$l1/initramfs.img" | cut -f1) initramfs)"
echo "$l1"
