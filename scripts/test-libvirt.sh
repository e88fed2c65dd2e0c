#!/usr/bin/env bash
# test-libvirt.sh - `make test-libvirt`: the vGPUs under a real management
# stack. L1 is a Debian 12 system on a disk (build-distro-image.sh: systemd,
# Debian's libvirt, QEMU and mdevctl), booted with vgpu-pci; nothing of
# ours is on its disk. A payload disk brings our modules, the L2 images,
# examples/libvirt/*.xml and guest-tests/libvirt-run.sh, which systemd runs
# at every boot: it installs the modules as out-of-tree modules are
# installed (updates/, depmod, modules-load.d), checks libvirt's nodedev
# view of the GPU against sysfs, defines, starts and autostarts a vGPU with
# `virsh nodedev-*` (mdevctl underneath), starts a domain on it (Debian's
# QEMU runs vgpu-l2-test in L2), checks that a second domain asking for the
# same vGPU is refused, and reboots L1 from the same disk; after the reboot
# the modules load at boot, the vGPU is back with its UUID and type, the
# domain runs again, and everything is removed again.
# Then the insta snapshots: the transcript, the nodedev XML of the GPU and
# of the vGPU (libvirt_snapshots.rs).
#
# The README shows examples/libvirt/*.xml; this tier checks that it shows
# them as they are, byte for byte, before it uses them.
set -euo pipefail
# shellcheck source=scripts/lib/tier.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/tier.sh"

# q35 with a virtual IOMMU for the VF hostdev (test-sriov's machine): the
# IOMMU first (-device $DEVICE), then the root port and the GPU behind it,
# 0000:01:00.0 as examples/libvirt/*.xml name it, VF0 0000:01:00.1.
tier_begin libvirt "intel-iommu,caching-mode=on,intremap=on"
gpu="vgpu-pci,bus=rp0,vram_size=256M,partitions=8,engines=2,sriov_vfs=4"

# shellcheck source=scripts/lib/images.sh
. "$SCRIPTS_DIR/lib/images.sh"
TMP_DIR=$(mktemp -d "$CACHE_DIR/.test-libvirt.XXXXXX")
trap 'rm -rf "$TMP_DIR"' EXIT

# --- the README's XML is the examples' -------------------------------------------------
mkdir -p "$TMP_DIR/readme"
awk -v dir="$TMP_DIR/readme" '/^```xml$/ { n++; inblock = 1; next }
    /^```$/ && inblock { inblock = 0; close(dir "/" n); next }
    inblock { print > (dir "/" n) }' README.md
for xml in examples/libvirt/*.xml; do
    shown=0
    for block in "$TMP_DIR"/readme/*; do
        ! cmp -s "$block" "$xml" || shown=1
    done
    ((shown)) || die "README.md does not show $xml as it is (an \`\`\`xml block with the file's text)"
done
log "README.md shows examples/libvirt/*.xml as they are"
# The domains boot L2 with the guests' command line (lib/common.sh).
for xml in examples/libvirt/vgpu-l2-*.xml; do
    grep -qF "<cmdline>$VGPU_BOOT_CMDLINE " "$xml" ||
        die "$xml: <cmdline> does not start with VGPU_BOOT_CMDLINE ($VGPU_BOOT_CMDLINE)"
done

# --- what L1 gets -----------------------------------------------------------------------
modules=$(scripts/build-modules.sh)
l2=$(L2_ONLY=1 scripts/build-l2-images.sh)
distro=$(scripts/build-distro-image.sh)
IMAGES=$distro
kdir=$(readlink -f "$CACHE_DIR/kernel-current")
release=$(cat "$kdir/kernel-release")
[[ $(cat "$distro/kernel-release") == "$release" ]] ||
    die "the Debian image has kernel $(cat "$distro/kernel-release"), the modules are built for $release"
vfio_ko=$(build_vfio_ko "$kdir" "$release" "${kdir##*_}")

payload="$TMP_DIR/payload"
mkdir -p "$payload"/{modules,lib,l2,libvirt}
cp "$modules"/vgpu_rm.ko "$modules"/vgpu_vfio.ko "$modules"/vgpu_vfio_pci.ko "$vfio_ko" "$payload/modules/"
cp scripts/lib/common.sh scripts/lib/guest.sh "$payload/lib/"
cp "$l2/vmlinuz" "$l2/initramfs.img" "$payload/l2/"
cp examples/libvirt/*.xml "$payload/libvirt/"
install -m 0755 guest-tests/libvirt-run.sh "$payload/libvirt-run.sh"
rm -f "$OUT/payload.img"
mke2fs -q -t ext4 -L vgpu-payload -d "$payload" "$OUT/payload.img" \
    "$(($(du -sm "$payload" | cut -f1) + 16))M" >/dev/null

# L1's disk: a copy-on-write overlay of the cached image, kept in $OUT for
# a look after the run.
rm -f "$OUT/l1-disk.qcow2"
qemu-img create -q -f qcow2 -F qcow2 -b "$distro/disk.qcow2" "$OUT/l1-disk.qcow2"

log "Debian L1: $(tr '\n' ',' <"$distro/versions.txt" | sed 's/,$//; s/,/, /g')"
log "Debian L1 image cold build: $(cat "$distro/build-seconds") s"
# Two boots, four L2 runs under KVM, TCG-speed systemd: 582-701 s (two
# complete runs). No login prompt on ttyS0: agetty's vhangup() would cut the
# script's output. (No FailureAction: the shutdown that `systemctl reboot`
# starts may stop the script first, which counts as a failure.)
tier_boot_l1 console.log /mnt/vgpu/libvirt-run.sh \
    KERNEL="$kdir/vmlinux" INITRD="$distro/initrd.img" REBOOT=1 MEM=2G SMP=1 \
    INIT_TIMEOUT=400 TIMEOUT="${TIMEOUT:-1500}" \
    APPEND="intel_iommu=on root=LABEL=vgpu-l1 rw systemd.run=/mnt/vgpu/libvirt-run.sh systemd.run_success_action=none systemd.run_failure_action=none systemd.mask=serial-getty@ttyS0.service" -- \
    -machine "$L1_Q35" -device pcie-root-port,id=rp0,chassis=1 -device "$gpu" \
    -drive "file=$OUT/l1-disk.qcow2,if=none,id=root,format=qcow2" -device virtio-blk-pci,drive=root,addr=04.0 \
    -drive "file=$OUT/payload.img,if=none,id=payload,format=raw,readonly=on" -device virtio-blk-pci,drive=payload,addr=05.0
tier_sections console.log TRANSCRIPT=transcript.txt NODEDEV-PARENT=nodedev-parent.xml \
    NODEDEV-MDEV=nodedev-mdev.xml L2-CONSOLE=l2-console.log
cat "$OUT/transcript.txt"
grep -h '^VGPU-LIBVIRT ' "$OUT/console.log" | tr -d '\r' | sed 's/^VGPU-LIBVIRT /figure /' >&2 || true
tier_check_run "L1 run" console.log

tier_snapshots vgpu-guest-tests libvirt_snapshots \
    VGPU_LIBVIRT_TRANSCRIPT=transcript.txt VGPU_LIBVIRT_PARENT=nodedev-parent.xml \
    VGPU_LIBVIRT_MDEV=nodedev-mdev.xml
