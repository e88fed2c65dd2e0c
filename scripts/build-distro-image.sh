#!/usr/bin/env bash
# build-distro-image.sh - the distribution L1 of test-libvirt: a Debian 12
# system on a qcow2 disk, made with mmdebstrap from Debian's archive the way
# an admin sets up a vGPU host: bookworm with systemd, mdevctl, and from
# bookworm-backports (`apt-get install -t bookworm-backports`, as Debian
# documents for backports) the 6.12 kernel the other tiers boot, libvirt
# and QEMU. Nothing of ours is in it: the tier installs our modules on
# first boot like any out-of-tree modules (test-libvirt.sh).
#
# Usage: scripts/build-distro-image.sh
#   VGPU_DEV_CACHE=DIR   cache directory (default ~/.cache/vgpu-dev)
# Prints the image directory (messages go to stderr):
#   $CACHE/distro-<key>/disk.qcow2    the root file system (ext4, label
#       vgpu-l1, no partition table): boot it with root=LABEL=vgpu-l1 and
#       a copy-on-write overlay (qemu-img create -b), never directly
#   $CACHE/distro-<key>/initrd.img    Debian's initramfs-tools image for
#       the kernel (direct kernel boot with the cached vmlinux: the same
#       package, build-images.sh)
#   $CACHE/distro-<key>/versions.txt  the versions of the packages that matter
#   $CACHE/distro-<key>/build-seconds the cold build's duration
# The key covers this script, the kernel version and the archive's package
# lists; a cold build fetches ~300 MB and takes minutes.
set -euo pipefail
# shellcheck source=scripts/lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host.sh"
# shellcheck source=scripts/lib/images.sh
. "$SCRIPTS_DIR/lib/images.sh"

SUITE=bookworm
MIRROR=http://deb.debian.org/debian
# From bookworm: what a small systemd host needs, and mdevctl.
BASE_PACKAGES=(systemd-sysv udev kmod dbus procps pciutils iproute2 initramfs-tools mdevctl)
# From bookworm-backports, with -t: libvirt's system daemons and clients,
# Debian's QEMU (the L2 VMM), and the kernel.
BACKPORTS_PACKAGES=(libvirt-daemon-system libvirt-clients qemu-system-x86)
# What versions.txt lists.
REPORT_PACKAGES=(linux-image-%s-unsigned libvirt-daemon libvirt-clients qemu-system-x86 mdevctl systemd)
# Free space on the root file system beyond what the packages take.
HEADROOM_MB=1536

mkdir -p "$CACHE_DIR"
exec {lock_fd}>"$CACHE_DIR/.build-distro.lock"
flock "$lock_fd"
TMP_DIR=$(mktemp -d "$CACHE_DIR/.build-distro.XXXXXX")
trap 'rm -rf "$TMP_DIR"' EXIT

command -v mmdebstrap >/dev/null || die "no mmdebstrap (scripts/setup-host.sh installs it)"
versions=$(package_versions)
kernel_version "$versions"
release="$KERNEL_ABI-amd64"
kernel_pkg="linux-image-$release-unsigned=$KERNEL_PKG_VERSION"

lists_key=$(stat -c '%n %Y' /var/lib/apt/lists/*bookworm*_Packages* 2>/dev/null | short_hash)
key=$({
    cat "${BASH_SOURCE[0]}"
    echo "$kernel_pkg $lists_key"
    dpkg-query -W -f='${Version}\n' mmdebstrap
} | short_hash)
out="$CACHE_DIR/distro-$key"
if [[ -f $out/.complete ]]; then
    touch "$out"
    echo "$out"
    exit 0
fi

log "building the Debian $SUITE L1 image (kernel $release, libvirt and QEMU from $SUITE-backports)"
start=$SECONDS
root="$TMP_DIR/root"
# The customize hooks run in the finished chroot (mmdebstrap mounts /proc,
# /sys and /dev there): backports first, then the system's settings.
# Settings: hostname; the root file system and the payload disk
# test-libvirt.sh attaches (an automount: mounted at the first access, in
# order for a unit run at boot, and no wait when there is none); initramfs-tools
# without the resume probe (no swap). ($1 is mmdebstrap's, in its shell.)
# shellcheck disable=SC2016
mmdebstrap --variant=minbase --mode=root --quiet \
    --aptopt='APT::Install-Recommends "false"' \
    --include="$(
        IFS=,
        echo "${BASE_PACKAGES[*]}"
    )" \
    --customize-hook="chroot \"\$1\" apt-get install -y -q -t $SUITE-backports ${BACKPORTS_PACKAGES[*]} $kernel_pkg" \
    --customize-hook='echo l1 >"$1/etc/hostname"' \
    --customize-hook='printf "%s\n" "LABEL=vgpu-l1 / ext4 rw,errors=remount-ro 0 1" "LABEL=vgpu-payload /mnt/vgpu ext4 ro,noauto,x-systemd.automount,x-systemd.device-timeout=30s 0 0" >"$1/etc/fstab"' \
    --customize-hook='mkdir -p "$1/mnt/vgpu"' \
    --customize-hook='echo RESUME=none >"$1/etc/initramfs-tools/conf.d/resume"' \
    --customize-hook="chroot \"\$1\" update-initramfs -u -k $release" \
    --customize-hook='chroot "$1" apt-get clean' \
    "$SUITE" "$root" "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-backports main" >&2 ||
    die "mmdebstrap failed"

[[ -f $root/boot/initrd.img-$release ]] || die "no initramfs for $release in the image"
mkdir -p "$TMP_DIR/out"
cp "$root/boot/initrd.img-$release" "$TMP_DIR/out/initrd.img"
for pkg in "${REPORT_PACKAGES[@]}"; do
    # shellcheck disable=SC2059,SC2016 # the kernel's name is a format; dpkg's fields
    chroot "$root" dpkg-query -W -f='${Package} ${Version}\n' "$(printf "$pkg" "$release")"
done >"$TMP_DIR/out/versions.txt"
echo "$release" >"$TMP_DIR/out/kernel-release"

# An ext4 file system made from the directory (no loop mount), then qcow2.
used_mb=$(du -sm "$root" | cut -f1)
size_mb=$((used_mb + HEADROOM_MB))
mke2fs -q -t ext4 -L vgpu-l1 -d "$root" "$TMP_DIR/root.img" "${size_mb}M" ||
    die "mke2fs -d failed"
qemu-img convert -q -O qcow2 "$TMP_DIR/root.img" "$TMP_DIR/out/disk.qcow2"
rm -rf "$TMP_DIR/root.img" "$root"
echo $((SECONDS - start)) >"$TMP_DIR/out/build-seconds"
touch "$TMP_DIR/out/.complete"
rm -rf "$out"
mv "$TMP_DIR/out" "$out"
prune_cache 'distro-????????????????' 2
log "built $out in $(cat "$out/build-seconds") s: ${used_mb} MB of files, $(du -h "$out/disk.qcow2" | cut -f1) qcow2"
sed 's/^/    /' "$out/versions.txt" >&2
echo "$out"
