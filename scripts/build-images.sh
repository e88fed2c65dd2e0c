#!/usr/bin/env bash
# build-images.sh - the L1 guest's boot images: Debian's bookworm-backports
# 6.12 kernel (plus its headers for building our modules) and an initramfs
# with busybox, lspci, the VFIO (vfio-pci-core for the VF variant driver),
# mdev and KVM modules and scripts/l1-init.sh. vfio.ko is rebuilt from
# Debian's source of the same kernel with CONFIG_IOMMUFD_DRIVER, for VFIO
# DMA dirty logging (lib/images.sh: build_vfio_ko).
#
# Usage: scripts/build-images.sh [SRC:DST ...]
#   SRC:DST       add file or directory SRC to the initramfs at DST (absolute)
#   EXTRA=DIR     add DIR's contents at the initramfs root
#   MODULES=...   modules loaded at boot, dependencies added (default below;
#                 MODULES= empty: none)
#   INIT_SCRIPT=FILE  the initramfs's /init (default scripts/l1-init.sh)
#   EXTRA_LIBDIRS="DIR..."  where the extras' shared libraries are looked
#                 for first (give the libraries as extras too: they make the key)
#   LINK_CURRENT=0    leave $CACHE/images-current alone (for other images,
#                 e.g. build-l2-images.sh's L2 and nested-L1 images)
#   KERNEL_VERSION=6.12.95-1~bpo12+1   pin the kernel package version
#   VGPU_DEV_CACHE=DIR   cache directory (default ~/.cache/vgpu-dev)
# Dynamically linked executables among the extras get their libraries too.
# Every image carries the guests' script library (lib/common.sh, lib/guest.sh)
# in /usr/lib/vgpu. The steps are lib/images.sh's functions.
#
# Outputs (stdout prints the images directory, messages go to stderr):
#   $CACHE/kernel-<release>_<version>/  extracted kernel, modules and headers;
#       build/ is the headers tree: make -C .../build M=$PWD modules
#   $CACHE/images-<key>/{vmlinuz,vmlinux,initramfs.img,kernel-release}
#       vmlinux is the uncompressed ELF kernel (PVH entry, boots faster);
#       the key covers the kernel version, these scripts and the extras.
#   $CACHE/images-current -> the images directory built last
#   $CACHE/kernel-current -> the kernel directory used last
set -euo pipefail
# shellcheck source=scripts/lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host.sh"
# shellcheck source=scripts/lib/images.sh
. "$SCRIPTS_DIR/lib/images.sh"

MODULES="${MODULES-configfs vfio vfio_iommu_type1 vfio_pci_core mdev kvm_amd kvm_intel}"
USERLAND_PACKAGES=(busybox-static pciutils libpci3 pci.ids)
INIT_SCRIPT="${INIT_SCRIPT:-$SCRIPTS_DIR/l1-init.sh}"
# What every image is made of besides the packages: these feed the key.
GUEST_LIB_FILES=("$SCRIPTS_DIR/lib/common.sh" "$SCRIPTS_DIR/lib/guest.sh")
RECIPE_FILES=("${BASH_SOURCE[0]}" "$SCRIPTS_DIR/lib/images.sh" "$INIT_SCRIPT" "${GUEST_LIB_FILES[@]}")

mkdir -p "$CACHE_DIR"
exec {lock_fd}>"$CACHE_DIR/.build-images.lock"
flock "$lock_fd"
TMP_DIR=$(mktemp -d "$CACHE_DIR/.build-images.XXXXXX")
trap 'rm -rf "$TMP_DIR"' EXIT

# --- versions -----------------------------------------------------------------
versions=$(package_versions "${USERLAND_PACKAGES[@]}")
kernel_version "$versions"
release="$KERNEL_ABI-amd64"
kver=$KERNEL_PKG_VERSION
mapfile -t userland_pkgs < <(pinned_packages "$versions" "${USERLAND_PACKAGES[@]}")
((${#userland_pkgs[@]} == ${#USERLAND_PACKAGES[@]})) || die "package versions missing"

# --- kernel, modules, headers; userland: busybox, lspci ---------------------------
kdir="$CACHE_DIR/kernel-${release}_$kver"
if [[ ! -f $kdir/.complete ]]; then
    log "fetching kernel $release ($kver)"
    unpack_packages "$kdir" "linux-image-$release-unsigned=$kver" "linux-headers-$release=$kver" \
        "linux-headers-$KERNEL_ABI-common=$kver" "linux-kbuild-$KERNEL_ABI=$kver"
    prepare_kernel "$kdir" "$release"
    touch "$kdir/.complete"
fi
ln -sfn "$(basename "$kdir")" "$CACHE_DIR/kernel-current"
# vfio.ko with DMA-logging support (see build_vfio_ko).
MODULE_OVERRIDES=("$(build_vfio_ko "$kdir" "$release" "$kver")")

udir="$CACHE_DIR/userland-$(printf '%s\n' "${userland_pkgs[@]}" | short_hash)"
if [[ ! -f $udir/.complete ]]; then
    log "fetching ${USERLAND_PACKAGES[*]}"
    unpack_packages "$udir" "${userland_pkgs[@]}"
    touch "$udir/.complete"
fi
busybox="$udir/root/bin/busybox"
libdirs=("$udir/root/usr/lib/x86_64-linux-gnu" "$udir/root/lib/x86_64-linux-gnu")
# shellcheck disable=SC2206 # a list of directories
libdirs+=(${EXTRA_LIBDIRS:-})

# --- base initramfs: busybox, /init, the guest library, lspci, modules ----------------
base_key=$({
    echo "$release $kver ${userland_pkgs[*]} $MODULES"
    sha256sum "${MODULE_OVERRIDES[@]}"
    cat "${RECIPE_FILES[@]}"
} | short_hash)
base="$CACHE_DIR/initramfs-base-$base_key.cpio.gz"
if [[ ! -f $base ]]; then
    log "building the base initramfs"
    root="$TMP_DIR/base"
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,root,etc/vgpu}
    install -m 0755 "$busybox" "$root/bin/busybox"
    for applet in $("$busybox" --list); do
        [[ -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"
    done
    # The kernel opens /dev/console for /init before devtmpfs is mounted.
    mknod -m 0600 "$root/dev/console" c 5 1 2>/dev/null || log "not root: no /dev/console node"
    install -m 0755 "$INIT_SCRIPT" "$root/init"
    install -D -m 0644 -t "$root$VGPU_GUEST_LIB" "${GUEST_LIB_FILES[@]}"
    install -D -m 0755 "$udir/root/usr/bin/lspci" "$root/usr/bin/lspci"
    copy_elf_deps "$root" "$root/usr/bin/lspci" "${libdirs[@]}"
    install -D -m 0644 "$udir/root/usr/share/misc/pci.ids" "$root/usr/share/misc/pci.ids"
    # shellcheck disable=SC2086 # MODULES is a list
    add_modules "$root" "$kdir/root/lib/modules/$release" "$release" $MODULES
    cpio_pack "$busybox" "$root" "$TMP_DIR/base.cpio.gz"
    mv "$TMP_DIR/base.cpio.gz" "$base"
fi

# --- extras and the final images ---------------------------------------------------
extras=()
[[ -z ${EXTRA:-} ]] || extras+=("$EXTRA:/")
extras+=("$@")
key=$(echo "$base_key $(extras_key "${extras[@]}")" | short_hash)
out="$CACHE_DIR/images-$key"

if [[ ! -f $out/.complete ]]; then
    rm -rf "$out"
    mkdir -p "$TMP_DIR/out"
    cp "$base" "$TMP_DIR/out/initramfs.img"
    if ((${#extras[@]})); then
        root="$TMP_DIR/extra"
        mkdir -p "$root"
        add_extras "$root" "${extras[@]}"
        while read -r file; do
            copy_elf_deps "$root" "$file" "${libdirs[@]}"
        done < <(find "$root" -type f -perm -u+x)
        # Concatenated archives: the kernel unpacks them in order.
        cpio_pack "$busybox" "$root" "$TMP_DIR/extra.cpio.gz"
        cat "$TMP_DIR/extra.cpio.gz" >>"$TMP_DIR/out/initramfs.img"
    fi
    for f in "root/boot/vmlinuz-$release:vmlinuz" vmlinux:vmlinux; do
        [[ ! -f $kdir/${f%%:*} ]] ||
            cp -l "$kdir/${f%%:*}" "$TMP_DIR/out/${f#*:}" 2>/dev/null ||
            cp "$kdir/${f%%:*}" "$TMP_DIR/out/${f#*:}"
    done
    echo "$release" >"$TMP_DIR/out/kernel-release"
    printf '%s\n' "kernel $release $kver" "${extras[@]/#/extra }" >"$TMP_DIR/out/build-info"
    touch "$TMP_DIR/out/.complete"
    mv "$TMP_DIR/out" "$out"
    log "built $out ($(du -h "$out/initramfs.img" | cut -f1) initramfs)"
fi

# Keep the cache bounded: the newest few images and base archives.
touch "$out" "$base"
prune_cache 'images-????????????????' 10
prune_cache 'initramfs-base-*.cpio.gz' 4
[[ ${LINK_CURRENT:-1} == 0 ]] || ln -sfn "$(basename "$out")" "$CACHE_DIR/images-current"

log "kernel $release (package $kver)"
log "headers $kdir/build"
echo "$out"
