//! The register map of the vGPU: the single table that drives register
//! dispatch, SPEC.md's register tables, the C header, state dumps and
//! trace decoding.
//!
//! - this file: the BAR layout and the device's limits;
//! - [`fields`]: what the bits of a register mean (bitfields, value enums);
//! - [`table`]: every register declared once ([`REGISTERS`]) with the
//!   register facts the device model reads (reset values, masks);
//! - `decode`: offsets to registers and registers to text;
//! - `spec` and `c_header`: SPEC.md's tables and `vgpu_regs.h`.

/// BAR numbers of the physical function.
pub const REG_BAR: u8 = 0;
pub const VRAM_BAR: u8 = 2;
pub const MSIX_BAR: u8 = 4;

/// Size of the register BAR (fixed, independent of the partition count).
pub const REG_BAR_SIZE: u64 = 1 << 20;
/// MSI-X BAR: table at 0, PBA at 0x2000 (room for 512 vectors).
pub const MSIX_BAR_SIZE: u64 = 0x4000;
pub const MSIX_TABLE_OFFSET: u32 = 0;
pub const MSIX_PBA_OFFSET: u32 = 0x2000;

/// BARs of a virtual function in SR-IOV mode (SPEC 15): the same numbers
/// and kinds as a vGPU's BARs in mdev mode.
pub const VF_REG_BAR: u8 = 0;
pub const VF_VRAM_BAR: u8 = 2;
pub const VF_MSIX_BAR: u8 = 4;
/// A VF's register BAR is one partition window.
pub const VF_REG_BAR_SIZE: u64 = WINDOW_STRIDE;
/// A VF's MSI-X BAR: table at 0, PBA at 0x800 (its two vectors).
pub const VF_MSIX_BAR_SIZE: u64 = 0x1000;
pub const VF_MSIX_TABLE_OFFSET: u32 = 0;
pub const VF_MSIX_PBA_OFFSET: u32 = 0x800;

pub const GLOBAL_BASE: u64 = 0;
pub const GLOBAL_SIZE: u64 = 0x1000;
pub const PTABLE_BASE: u64 = 0x1000;
pub const PTABLE_STRIDE: u64 = 0x40;
/// Partition windows: window `p` starts at `WINDOW_BASE + p * WINDOW_STRIDE`.
pub const WINDOW_BASE: u64 = 0x10000;
pub const WINDOW_STRIDE: u64 = 0x2000;
/// Offset of the doorbell page inside a window.
pub const DOORBELL_PAGE: u64 = 0x1000;

pub const MAX_PARTITIONS: usize = 64;
pub const MAX_ENGINES: usize = 8;
pub const RINGS_PER_PARTITION: usize = 2;
pub const HOST_VECTORS: u32 = 2;
pub const VECTORS_PER_PARTITION: u32 = 2;
/// Host vector for everything in INTR_STATUS except XLATE_FAULT.
pub const HOST_VECTOR_EVENTS: u32 = 0;
/// Host vector for replayable translation faults.
pub const HOST_VECTOR_XLATE: u32 = 1;
/// Partition vector offsets from PT_MSIX_BASE.
pub const PART_VECTOR_ENGINE: u32 = 0;
pub const PART_VECTOR_FAULT: u32 = 1;

pub const DEVICE_MAGIC: u32 = 0x5550_4756; // "VGPU" little endian
pub const WINDOW_MAGIC: u32 = 0x5550_4776; // "vGPU" little endian
pub const VERSION_MAJOR: u16 = 1;
pub const VERSION_MINOR: u16 = 1;

/// First MSI-X vector of partition `p` in the PF's table (a VF's
/// partition uses vectors 0 and 1 of its VF's table instead).
pub const fn partition_vector_base(p: usize) -> u32 {
    HOST_VECTORS + VECTORS_PER_PARTITION * p as u32
}

/// MSI-X vectors a device with `partitions` partitions exposes.
pub const fn msix_vectors(partitions: usize) -> u32 {
    partition_vector_base(partitions)
}

/// Depth of the global fault log (FAULT_LOG_COUNT); entries beyond it are
/// counted in FAULT_LOG_LOST.
pub const FAULT_LOG_DEPTH: usize = 64;
/// VRAM is handed to partitions in granules: a slice's base and size are
/// multiples of this (PT VRAM_BASE / VRAM_SIZE drop the bits below it).
pub const VRAM_GRANULE: u64 = 64 << 10;
/// Engines run long commands in chunks this big: between two chunks a
/// reset, a translation change or the end of a timeslice can stop them.
pub const CHUNK_BYTES: u64 = 1 << 20;
/// Longest command ring, in commands (RING_SIZE).
pub const MAX_RING_SIZE: u32 = 65536;

/// The display head (SPEC 17): a vblank every this many nanoseconds (60 Hz).
pub const DISP_VBLANK_NS: u32 = 16_666_667;
/// Largest width and height of a mode, in pixels (DISP_MAX_MODE).
pub const DISP_MAX_WIDTH: u16 = 4096;
pub const DISP_MAX_HEIGHT: u16 = 4096;
/// DISP_BASE is a multiple of this (one page: a host maps the scanout
/// buffer page by page).
pub const DISP_BASE_ALIGN: u64 = 4096;
/// The pixel formats the head scans out, as DRM fourccs: XRGB8888 ("XR24").
pub const DISP_FORMAT_XRGB8888: u32 = 0x3432_5258;
/// Bytes per pixel of XRGB8888.
pub const DISP_BYTES_PER_PIXEL: u32 = 4;
/// Bytes of a partition's EDID (a base block and one extension).
pub const EDID_BYTES: usize = 256;

mod c_header;
mod decode;
pub mod fields;
mod spec;
pub mod table;

pub use c_header::c_header;
pub use decode::{
    block_of, decode, decode_function, decode_in_block, format_access, format_fields,
    format_function_access, offset_of, register, window_offset, Decoded,
};
pub use fields::*;
pub use spec::spec_tables;
pub use table::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_follow_the_layout() {
        assert_eq!(partition_vector_base(0), 2);
        assert_eq!(partition_vector_base(63), 128);
        assert_eq!(msix_vectors(64), 130);
        assert!(msix_vectors(64) as u64 * 16 <= MSIX_PBA_OFFSET as u64);
    }
}
