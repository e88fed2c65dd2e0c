//! PCI identity and BAR layout of the physical function, of a vGPU, and
//! (SR-IOV mode) of the virtual functions.

use crate::regs;

pub const VENDOR_ID: u16 = 0x1234;
/// The physical, partitionable GPU.
pub const DEVICE_ID: u16 = 0x7690;
/// A vGPU (one partition) as the mdev frontend presents it to a guest, and
/// the VF device ID in SR-IOV mode: a VF is the same vGPU to its driver.
pub const VGPU_DEVICE_ID: u16 = 0x7691;
pub const SUBSYSTEM_VENDOR_ID: u16 = 0x1234;
pub const SUBSYSTEM_ID: u16 = 0x0001;
/// 3D controller (base class 0x03, sub class 0x02, prog-if 0).
pub const CLASS_CODE: u32 = 0x03_02_00;
pub const REVISION: u8 = 1;

/// PCI identity and BAR layout of the physical function; the C ABI hands
/// this very struct to the shim (VDevicePciInfo).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciInfo {
    pub vendor_id: u16,
    pub device_id: u16,
    pub subsystem_vendor_id: u16,
    pub subsystem_id: u16,
    /// 24 bits: base class, sub class, prog-if.
    pub class_code: u32,
    pub revision: u8,
    /// 32-bit non-prefetchable MMIO, trapped.
    pub reg_bar: u8,
    /// 64-bit prefetchable, backed by vdevice_vram_fd().
    pub vram_bar: u8,
    /// 32-bit MMIO, MSI-X table and PBA only.
    pub msix_bar: u8,
    pub reg_bar_size: u64,
    pub vram_bar_size: u64,
    pub msix_bar_size: u64,
    pub msix_vectors: u32,
    pub msix_table_offset: u32,
    pub msix_pba_offset: u32,
}

impl PciInfo {
    pub fn new(vram_size_bytes: u64, partitions: usize) -> Self {
        Self {
            vendor_id: VENDOR_ID,
            device_id: DEVICE_ID,
            subsystem_vendor_id: SUBSYSTEM_VENDOR_ID,
            subsystem_id: SUBSYSTEM_ID,
            class_code: CLASS_CODE,
            revision: REVISION,
            reg_bar: regs::REG_BAR,
            vram_bar: regs::VRAM_BAR,
            msix_bar: regs::MSIX_BAR,
            reg_bar_size: regs::REG_BAR_SIZE,
            vram_bar_size: vram_size_bytes,
            msix_bar_size: regs::MSIX_BAR_SIZE,
            msix_vectors: regs::msix_vectors(partitions),
            msix_table_offset: regs::MSIX_TABLE_OFFSET,
            msix_pba_offset: regs::MSIX_PBA_OFFSET,
        }
    }
}

/// SR-IOV mode: what the shim puts in the PF's SR-IOV capability and in
/// each VF's config space (SPEC 15). Every VF has the same BAR layout (the
/// capability has one size per BAR for all VFs). The VF routing (First VF
/// Offset, VF Stride), InitialVFs and ARI are the shim's business. The C
/// ABI hands this very struct to the shim (VDeviceVfInfo).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VfPciInfo {
    /// TotalVFs: VF n is partition n, n < total_vfs.
    pub total_vfs: u16,
    /// VF Device ID of the SR-IOV capability (the vendor is the PF's).
    pub vf_device_id: u16,
    pub subsystem_vendor_id: u16,
    pub subsystem_id: u16,
    /// 24 bits: base class, sub class, prog-if.
    pub class_code: u32,
    pub revision: u8,
    /// 32-bit non-prefetchable MMIO: the partition window, trapped
    /// (vdevice_vf_bar_read/write) except that its doorbell page may be.
    pub reg_bar: u8,
    /// 64-bit prefetchable: the partition's VRAM slice at offset 0.
    pub vram_bar: u8,
    /// 32-bit MMIO, MSI-X table and PBA only.
    pub msix_bar: u8,
    pub reg_bar_size: u64,
    pub vram_bar_size: u64,
    pub msix_bar_size: u64,
    /// MSI-X vectors of each VF: 0 engine, 1 fault.
    pub msix_vectors: u32,
    pub msix_table_offset: u32,
    pub msix_pba_offset: u32,
}

impl VfPciInfo {
    /// The VF layout of a device with `total_vfs` VFs whose VRAM BARs are
    /// `vram_bar_size` bytes each.
    pub fn new(total_vfs: u16, vram_bar_size: u64) -> Self {
        Self {
            total_vfs,
            vf_device_id: VGPU_DEVICE_ID,
            subsystem_vendor_id: SUBSYSTEM_VENDOR_ID,
            subsystem_id: SUBSYSTEM_ID,
            class_code: CLASS_CODE,
            revision: REVISION,
            reg_bar: regs::VF_REG_BAR,
            vram_bar: regs::VF_VRAM_BAR,
            msix_bar: regs::VF_MSIX_BAR,
            reg_bar_size: regs::VF_REG_BAR_SIZE,
            vram_bar_size,
            msix_bar_size: regs::VF_MSIX_BAR_SIZE,
            msix_vectors: regs::VECTORS_PER_PARTITION,
            msix_table_offset: regs::VF_MSIX_TABLE_OFFSET,
            msix_pba_offset: regs::VF_MSIX_PBA_OFFSET,
        }
    }
}
