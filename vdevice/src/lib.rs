//! `vdevice`: the device model of a partitionable PCIe GPU, driven only
//! through its BARs (`read_bar`/`write_bar`), with system memory and MSI-X
//! reached through the [`Dma`] and [`Irq`] traits. No VMM inside: QEMU uses
//! it through the C ABI in [`ffi`], tests through fake memory.

pub mod command;
pub mod config;
mod device;
pub mod driver;
mod engine;
pub mod events;
pub mod ffi;
pub mod pci;
pub mod regs;
pub mod testing;
pub mod vram;
pub mod xlate;

pub use config::{ConfigError, DeviceConfig};
pub use device::Device;

/// A failed bus transaction (unmapped address, bus mastering off, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaError;

/// System memory as the device sees it (bus addresses). Called only on
/// engine threads.
pub trait Dma: Send + Sync {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError>;
    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), DmaError>;
    /// Called on each model thread before its first callback.
    fn thread_start(&self) {}
    /// Called on each model thread after its last callback.
    fn thread_stop(&self) {}
}

/// The MSI-X sink. Must not block or call back into the device.
pub trait Irq: Send + Sync {
    fn notify(&self, vector: u32);
}
