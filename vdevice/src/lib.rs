//! `vdevice`: the device model of a partitionable PCIe GPU, driven only
//! through its BARs (`read_bar`/`write_bar`), with system memory and MSI-X
//! reached through the [`Dma`] and [`Irq`] traits. No VMM inside: QEMU uses
//! it through the C ABI in [`ffi`], tests through fake memory.

pub mod command;
pub mod config;
pub mod context;
mod device;
pub mod dirty;
mod display;
pub mod driver;
mod engine;
pub mod events;
pub mod ffi;
pub mod pci;
pub mod regs;
mod sriov;
pub mod testing;
pub mod vram;
pub mod xlate;

pub use config::{ConfigError, DeviceConfig};
pub use device::Device;
pub use sriov::VfSlice;

/// A failed bus transaction (unmapped address, bus mastering off, an
/// IOMMU that refused the address, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaError;

/// A PCI function of the device: the physical function, or in SR-IOV mode
/// (SPEC 15) virtual function n, which is partition n's own function. Every
/// DMA and every MSI-X message says which function it belongs to, so a VMM
/// can use that function's requester ID (and the IOMMU's translation for
/// it) and MSI-X table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Function {
    #[default]
    Pf,
    Vf(u16),
}

impl Function {
    /// The C ABI's function id: 0 for the PF, n + 1 for VF n.
    pub fn id(self) -> u32 {
        match self {
            Function::Pf => 0,
            Function::Vf(n) => u32::from(n).wrapping_add(1),
        }
    }

    /// The function of a C ABI function id (see [`Function::id`]); None
    /// for ids no function can have.
    pub fn from_id(id: u32) -> Option<Self> {
        match id {
            0 => Some(Function::Pf),
            n => u16::try_from(n.wrapping_sub(1)).ok().map(Function::Vf),
        }
    }
}

impl std::fmt::Display for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Function::Pf => f.write_str("PF"),
            Function::Vf(n) => write!(f, "VF{n}"),
        }
    }
}

/// System memory as the device sees it: bus addresses of function `func`
/// (the PF's, or a VF's, which a platform IOMMU may translate). Called only
/// on engine threads.
pub trait Dma: Send + Sync {
    fn read(&self, func: Function, addr: u64, buf: &mut [u8]) -> Result<(), DmaError>;
    fn write(&self, func: Function, addr: u64, buf: &[u8]) -> Result<(), DmaError>;
    /// Called on each model thread before its first callback.
    fn thread_start(&self) {}
    /// Called on each model thread after its last callback.
    fn thread_stop(&self) {}
}

/// The MSI-X sink: vector `vector` of function `func`'s MSI-X table. Must
/// not block or call back into the device.
pub trait Irq: Send + Sync {
    fn notify(&self, func: Function, vector: u32);
}

/// SR-IOV mode: told when VF `vf`'s VRAM BAR starts or stops reaching its
/// partition's slice (SPEC 15), so a VMM that maps the slice straight into
/// the VF's BAR can follow. Called synchronously, after the change, on the
/// thread that made it; see [`Device::with_vf_slice_notify`] for the rules.
pub trait VfSliceNotify: Send + Sync {
    fn vf_vram_changed(&self, vf: u16);
}

/// The host's record of CPU writes through the VRAM BAR (the PF's, or a
/// VF's, which reaches the same VRAM): on hardware every such write is a
/// transaction the device sees; a VMM that maps VRAM straight into guests
/// keeps the record in its memory's dirty tracking instead. The device
/// folds it into a partition's VRAM dirty log (SPEC 16) when the host
/// reads that log, and drops it when the log starts.
///
/// Called on the thread that reads `DIRTY_COUNT` or `DIRTY_WORD` or
/// writes `PT CTRL` (in QEMU a vCPU holding the BQL), while the device
/// holds its locks: it must not call into the device.
pub trait VramWriteLog: Send + Sync {
    /// Report and forget the 4 KiB pages written through the BAR in VRAM
    /// `[offset, offset + len)` since they were last reported: `mark(page)`
    /// with each page's VRAM offset. It may report (and forget) pages
    /// around the range too, as far as its tracking is coarser; the
    /// device keeps those for the logs they belong to.
    fn take_cpu_dirty(&self, offset: u64, len: u64, mark: &mut dyn FnMut(u64));
}
