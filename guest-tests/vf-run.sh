#!/bin/sh
# vf-run.sh - runs in L1 (busybox sh) on vgpu-pci with sriov_vfs behind a
# virtual IOMMU: the IOMMU's boot lines, the PF's SR-IOV capability, then
# vgpu-vf-test (its arguments are this script's) between console markers,
# and the VFs' lspci view and IOMMU groups afterwards. Then, in the same
# transcript, VF migration: the PF goes from pci-pf-stub to the RM (SR-IOV
# mode) with the variant driver on its VFs, and vgpu-vf-mig-test migrates
# VF0 to VF1 through VFIO.
# busybox insmod loaded the modules, so a module parameter on the kernel
# command line was not applied; this one (an IOMMU without interrupt
# remapping, e.g. virtio-iommu) is writable at run time.
if grep -q "vfio_iommu_type1.allow_unsafe_interrupts=1" /proc/cmdline; then
    echo 1 >/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts
fi
echo "VGPU-IOMMU-BEGIN"
dmesg | grep -iE "DMAR|IOMMU|virtio_iommu" | head -20
echo "VGPU-IOMMU-END"
echo "VGPU-LSPCI-BEGIN"
lspci -vv -nn -d 1234:7690 | grep -A10 "SR-IOV"
echo "VGPU-LSPCI-END"
echo "VGPU-TRANSCRIPT-BEGIN"
/bin/vgpu-vf-test "$@"
rc=$?
# The PF to the RM: VFs off, pci-pf-stub's override and binding gone; the
# engine's module (vgpu_vfio) before the variant driver that imports it.
# The refused streams' kernel messages stay off the console (the transcript).
dmesg -n 1
pf=$(basename "$(dirname "$(grep -l 0x7690 /sys/bus/pci/devices/*/device | head -n 1)")")
P=/sys/bus/pci/devices/$pf
echo 0 >"$P/sriov_numvfs"
echo >"$P/driver_override"
[ -e "$P/driver" ] && echo "$pf" >"$P/driver/unbind"
for m in vgpu_rm vgpu_vfio vgpu_vfio_pci; do
    insmod "/lib/vgpu/$m.ko" || echo "FAIL insmod $m"
done
/bin/vgpu-vf-mig-test || rc=1
echo "VGPU-TRANSCRIPT-END"
lspci -nnk -d 1234:
dmesg | grep -iE "vfio|DMAR|iommu" | tail -8
for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/vendor")" = 0x1234 ] && echo "$(basename "$d") group $(basename "$(readlink "$d/iommu_group")")"
done
exit "$rc"
