#!/bin/sh
# vf-run.sh - runs in L1 (busybox sh) on vgpu-pci with sriov_vfs behind a
# virtual IOMMU: the IOMMU's boot lines, the PF's SR-IOV capability, then
# vgpu-vf-test (its arguments are this script's) between console markers,
# and the VFs' lspci view and IOMMU groups afterwards.
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
echo "VGPU-TRANSCRIPT-END"
lspci -nnk -d 1234:
dmesg | grep -iE "vfio|DMAR|iommu" | tail -8
for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/vendor")" = 0x1234 ] && echo "$(basename "$d") group $(basename "$(readlink "$d/iommu_group")")"
done
exit "$rc"
