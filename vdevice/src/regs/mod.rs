//! The register map of the vGPU: the single table that drives register
//! dispatch, SPEC.md's register tables, state dumps and trace decoding.
//!
//! Every register is declared once in [`REGISTERS`]; its fields come from
//! the `bitfield` structs below, so code that reads or builds a register
//! value and the printed tables cannot disagree.

use bitfield_struct::bitfield;
use std::fmt::Write as _;

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
pub const VERSION_MINOR: u16 = 0;

/// First MSI-X vector of partition `p`.
pub const fn partition_vector_base(p: usize) -> u32 {
    HOST_VECTORS + VECTORS_PER_PARTITION * p as u32
}

/// MSI-X vectors a device with `partitions` partitions exposes.
pub const fn msix_vectors(partitions: usize) -> u32 {
    partition_vector_base(partitions)
}

// ---------------------------------------------------------------------------
// Fields
// ---------------------------------------------------------------------------

#[bitfield(u32)]
pub struct Version {
    pub minor: u16,
    pub major: u16,
}

#[bitfield(u32)]
pub struct Caps {
    pub partitions: u8,
    #[bits(4)]
    pub engines: u8,
    #[bits(4)]
    pub rings_per_partition: u8,
    #[bits(4)]
    pub vectors_per_partition: u8,
    #[bits(4)]
    pub host_vectors: u8,
    pub xlate_replay: bool,
    pub fault_inject: bool,
    #[bits(6)]
    __: u8,
}

#[bitfield(u32)]
pub struct GlobalIntr {
    pub partition_fault: bool,
    pub xlate_fault: bool,
    pub access_error: bool,
    pub fault_log_overflow: bool,
    #[bits(28)]
    __: u32,
}

#[bitfield(u32)]
pub struct FaultLogInfo {
    pub partition: u8,
    #[bits(8)]
    pub code: FaultCode,
    #[bits(4)]
    pub ring: u8,
    pub write: bool,
    #[bits(10)]
    __: u16,
    pub valid: bool,
}

#[bitfield(u32)]
pub struct AccessErrorInfo {
    #[bits(4)]
    pub size: u8,
    pub write: bool,
    #[bits(3)]
    __: u8,
    #[bits(4)]
    pub reason: AccessError,
    #[bits(3)]
    pub bar: u8,
    #[bits(17)]
    __: u32,
}

#[bitfield(u32)]
pub struct XlateFaultInfo {
    pub partition: u8,
    pub write: bool,
    #[bits(22)]
    __: u32,
    pub valid: bool,
}

#[bitfield(u32)]
pub struct XlateResume {
    pub partition: u8,
    #[bits(2)]
    pub action: ResumeAction,
    #[bits(22)]
    __: u32,
}

#[bitfield(u32)]
pub struct PtCtrl {
    pub enable: bool,
    pub xlate: bool,
    pub xlate_replay: bool,
    #[bits(29)]
    __: u32,
}

#[bitfield(u32)]
pub struct PtState {
    #[bits(4)]
    pub state: PartitionState,
    #[bits(4)]
    __: u8,
    #[bits(4)]
    pub inject: InjectKind,
    #[bits(20)]
    __: u32,
}

#[bitfield(u32)]
pub struct PtInject {
    #[bits(4)]
    pub kind: InjectKind,
    #[bits(28)]
    __: u32,
}

#[bitfield(u32)]
pub struct PartCaps {
    #[bits(4)]
    pub rings: u8,
    #[bits(4)]
    pub vectors: u8,
    pub xlate: bool,
    #[bits(23)]
    __: u32,
}

#[bitfield(u32)]
pub struct Opcodes {
    pub nop: bool,
    pub copy: bool,
    pub fill: bool,
    pub fence: bool,
    pub sem_wait: bool,
    pub timestamp: bool,
    pub crc32: bool,
    #[bits(25)]
    __: u32,
}

#[bitfield(u32)]
pub struct PartStatus {
    #[bits(4)]
    pub state: PartitionState,
    #[bits(28)]
    __: u32,
}

#[bitfield(u32)]
pub struct PartIntr {
    pub fence: bool,
    pub fault: bool,
    pub idle: bool,
    #[bits(29)]
    __: u32,
}

#[bitfield(u32)]
pub struct FaultStatus {
    #[bits(8)]
    pub code: FaultCode,
    #[bits(4)]
    pub ring: u8,
    pub write: bool,
    #[bits(19)]
    __: u32,
}

#[bitfield(u32)]
pub struct RingCtrl {
    pub sysmem: bool,
    #[bits(31)]
    __: u32,
}

/// Translation directory entry (in host memory, 8 bytes).
#[bitfield(u64)]
pub struct XlatePde {
    pub valid: bool,
    #[bits(11)]
    __: u16,
    #[bits(52)]
    pub pfn: u64,
}

/// Translation page-table entry (in host memory, 8 bytes).
#[bitfield(u64)]
pub struct XlatePte {
    pub valid: bool,
    pub writable: bool,
    #[bits(10)]
    __: u16,
    #[bits(52)]
    pub pfn: u64,
}

// ---------------------------------------------------------------------------
// Enumerated field values
// ---------------------------------------------------------------------------

/// Declares the values of an enumerated register field once: the enum, its
/// numbers, its names in the manual and a catch-all for numbers the manual
/// does not define (what a driver may read from a newer device, or what a
/// tenant may write). Bitfields use the enum as their field type.
macro_rules! value_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$vmeta:meta])* $var:ident = $val:literal => $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $var,)+
            /// A number this manual does not define.
            Unknown(u8),
        }

        impl $name {
            /// Every defined value, in numeric order.
            pub const ALL: &'static [Self] = &[$(Self::$var),+];
            /// (number, name) of every defined value, for tables and decoders.
            pub const VALUES: &'static [(u64, &'static str)] = &[$(($val, $text)),+];

            pub const fn from_bits(v: u8) -> Self {
                match v {
                    $($val => Self::$var,)+
                    other => Self::Unknown(other),
                }
            }

            pub const fn into_bits(self) -> u8 {
                match self {
                    $(Self::$var => $val,)+
                    Self::Unknown(v) => v,
                }
            }

            /// The value's name in the manual; "UNKNOWN" for other numbers.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$var => $text,)+
                    Self::Unknown(_) => "UNKNOWN",
                }
            }

            /// The defined value with this number, if any.
            pub const fn known(v: u8) -> Option<Self> {
                match Self::from_bits(v) {
                    Self::Unknown(_) => None,
                    k => Some(k),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    Self::Unknown(v) => write!(f, "UNKNOWN({v})"),
                    k => f.write_str(k.name()),
                }
            }
        }
    };
}

value_enum! {
    /// Partition state (PT_STATE.STATE, STATUS.STATE).
    pub enum PartitionState {
        Disabled = 0 => "DISABLED",
        Idle = 1 => "IDLE",
        Busy = 2 => "BUSY",
        Faulted = 3 => "FAULTED",
        XlateWait = 4 => "XLATE_WAIT",
    }
}

value_enum! {
    /// Fault codes (FAULT_STATUS.CODE, FAULT_LOG_INFO.CODE).
    pub enum FaultCode {
        None = 0 => "NONE",
        VramOutOfBounds = 1 => "VRAM_OOB",
        SysmemUnmapped = 2 => "SYSMEM_UNMAPPED",
        SysmemReadOnly = 3 => "SYSMEM_READ_ONLY",
        BadCommand = 4 => "BAD_COMMAND",
        DmaError = 5 => "DMA_ERROR",
        EccError = 6 => "ECC_ERROR",
        XlateCancelled = 7 => "XLATE_CANCELLED",
    }
}

value_enum! {
    /// Why a register access was rejected (ACCESS_ERROR_INFO.REASON).
    pub enum AccessError {
        None = 0 => "NONE",
        Unmapped = 1 => "UNMAPPED",
        BadWidth = 2 => "BAD_WIDTH",
        Misaligned = 3 => "MISALIGNED",
        ReadOnly = 4 => "READ_ONLY",
        BadValue = 5 => "BAD_VALUE",
        Disabled = 6 => "DISABLED",
        Busy = 7 => "BUSY",
    }
}

value_enum! {
    /// Fault-injection kinds (PT_INJECT.KIND).
    pub enum InjectKind {
        None = 0 => "NONE",
        EngineHang = 1 => "ENGINE_HANG",
        DmaError = 2 => "DMA_ERROR",
        EccError = 3 => "ECC_ERROR",
        DropIrq = 4 => "DROP_IRQ",
        LateIrq = 5 => "LATE_IRQ",
    }
}

value_enum! {
    /// How the host resolves a translation wait (XLATE_RESUME.ACTION).
    pub enum ResumeAction {
        Retry = 0 => "RETRY",
        Cancel = 1 => "CANCEL",
    }
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Block {
    /// Host-only device registers at the start of the register BAR.
    Global,
    /// Host-only partition table: one entry per partition.
    PartitionTable,
    /// Per-partition window: the whole interface of a vGPU.
    Window,
}

impl Block {
    pub const ALL: [Block; 3] = [Block::Global, Block::PartitionTable, Block::Window];

    pub fn base(self) -> u64 {
        match self {
            Block::Global => GLOBAL_BASE,
            Block::PartitionTable => PTABLE_BASE,
            Block::Window => WINDOW_BASE,
        }
    }

    /// Bytes per instance.
    pub fn stride(self) -> u64 {
        match self {
            Block::Global => GLOBAL_SIZE,
            Block::PartitionTable => PTABLE_STRIDE,
            Block::Window => WINDOW_STRIDE,
        }
    }

    /// Name prefix in dumps and traces.
    pub fn prefix(self) -> &'static str {
        match self {
            Block::Global => "",
            Block::PartitionTable => "PT",
            Block::Window => "PART",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read-only; writes are rejected (READ_ONLY).
    Ro,
    /// Read-write; bits outside the writable mask ignore writes.
    Rw,
    /// Write-only command register; reads return 0.
    Wo,
    /// Read, write 1 to clear.
    Rw1c,
}

impl Access {
    pub fn name(self) -> &'static str {
        match self {
            Access::Ro => "RO",
            Access::Rw => "RW",
            Access::Wo => "WO",
            Access::Rw1c => "RW1C",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Reset {
    Value(u64),
    /// Set from the device configuration; the text says from what.
    Config(&'static str),
}

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub lsb: u32,
    pub width: u32,
    /// Names of enumerated values, empty for plain numbers and flags.
    pub values: &'static [(u64, &'static str)],
}

impl Field {
    /// The name of an enumerated value of this field, if it has one.
    pub fn value_name(&self, v: u64) -> Option<&'static str> {
        self.values
            .iter()
            .find(|(n, _)| *n == v)
            .map(|(_, name)| *name)
    }

    pub fn extract(&self, value: u64) -> u64 {
        let mask = if self.width >= 64 {
            u64::MAX
        } else {
            (1u64 << self.width) - 1
        };
        (value >> self.lsb) & mask
    }

    pub fn bits(&self) -> String {
        if self.width == 1 {
            format!("{}", self.lsb)
        } else {
            format!("{}:{}", self.lsb + self.width - 1, self.lsb)
        }
    }
}

/// Identifies a register for dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegId {
    // Global
    Id,
    Version,
    Caps,
    PartitionStride,
    VramSize,
    PartitionBase,
    Scratch,
    IntrStatus,
    IntrMask,
    FaultedPartitions,
    DeviceReset,
    Timestamp,
    FaultLogCount,
    FaultLogPop,
    FaultLogInfo,
    FaultLogAddr,
    FaultLogLost,
    AccessErrorCount,
    AccessErrorInfo,
    AccessErrorOffset,
    XlateFaultCount,
    XlateFaultPop,
    XlateFaultInfo,
    XlateFaultAddr,
    XlateResume,
    InjectDelayUs,
    SchedTimesliceUs,
    // Partition table
    PtCtrl,
    PtState,
    PtVramBase,
    PtVramSize,
    PtXlateRoot,
    PtXlateDirEntries,
    PtWeight,
    PtReset,
    PtScrub,
    PtXlateInvalidate,
    PtMsixBase,
    PtInject,
    // Window
    WId,
    WVersion,
    WCaps,
    WOpcodes,
    WVramSize,
    WStatus,
    WIndex,
    WIntrStatus,
    WIntrMask,
    WFaultStatus,
    WFaultAddr,
    WFaultCmd,
    WReset,
    WFenceValue,
    WTimestamp,
    WStatCommands,
    WStatBytes,
    WStatBusyNs,
    WStatFaults,
    WAccessErrors,
    WScratch,
    WRingBase,
    WRingSize,
    WRingCtrl,
    WRingHead,
    WRingTail,
    WDoorbell,
}

#[derive(Debug)]
pub struct Register {
    pub id: RegId,
    pub name: &'static str,
    pub block: Block,
    /// Offset inside the block instance.
    pub offset: u64,
    /// Width in bytes: 4 or 8.
    pub width: u8,
    /// Array length (rings, doorbells); 1 for plain registers.
    pub count: u8,
    /// Distance between array elements.
    pub stride: u64,
    pub access: Access,
    pub reset: Reset,
    /// Bits a write may change (RW) or clear (RW1C).
    pub writable: u64,
    pub fields: &'static [Field],
    pub desc: &'static str,
}

macro_rules! fields {
    ($ty:ident { $($name:ident $(= $values:expr)?),* $(,)? }) => {
        paste::paste! {
            &[$(Field {
                name: stringify!($name),
                lsb: $ty::[<$name _OFFSET>] as u32,
                width: $ty::[<$name _BITS>] as u32,
                values: fields!(@values $($values)?),
            }),*]
        }
    };
    (@values) => { &[] };
    (@values $v:expr) => { $v };
}

/// Builds a register entry; `count`/`stride` default to a plain register.
macro_rules! reg {
    ($id:ident, $name:literal, $block:ident, $off:expr, $w:expr, $acc:ident, $reset:expr, $wmask:expr, $fields:expr, $desc:literal) => {
        reg!($id, $name, $block, $off, $w, 1, 0, $acc, $reset, $wmask, $fields, $desc)
    };
    ($id:ident, $name:literal, $block:ident, $off:expr, $w:expr, $count:expr, $stride:expr, $acc:ident, $reset:expr, $wmask:expr, $fields:expr, $desc:literal) => {
        Register {
            id: RegId::$id,
            name: $name,
            block: Block::$block,
            offset: $off,
            width: $w,
            count: $count,
            stride: $stride,
            access: Access::$acc,
            reset: $reset,
            writable: $wmask,
            fields: $fields,
            desc: $desc,
        }
    };
}

const NONE: &[Field] = &[];
const V0: Reset = Reset::Value(0);
const RING_REGS_BASE: u64 = 0x100;
const RING_REGS_STRIDE: u64 = 0x20;
const RINGS: u8 = RINGS_PER_PARTITION as u8;
const INTR_BITS: u64 = 0xf;
const PART_INTR_BITS: u64 = 0x7;

pub static REGISTERS: &[Register] = &[
    // ---- Global block --------------------------------------------------
    reg!(Id, "ID", Global, 0x000, 4, Ro, Reset::Value(DEVICE_MAGIC as u64), 0, NONE,
        "Magic 0x55504756 (\"VGPU\"): identifies the device."),
    reg!(Version, "VERSION", Global, 0x004, 4, Ro,
        Reset::Value(((VERSION_MAJOR as u64) << 16) | VERSION_MINOR as u64), 0,
        fields!(Version { MINOR, MAJOR }),
        "Programming-interface version of this manual."),
    reg!(Caps, "CAPS", Global, 0x008, 4, Ro, Reset::Config("partitions, engines"), 0,
        fields!(Caps { PARTITIONS, ENGINES, RINGS_PER_PARTITION, VECTORS_PER_PARTITION,
            HOST_VECTORS, XLATE_REPLAY, FAULT_INJECT }),
        "Capabilities: configured partition and engine counts, rings and MSI-X vectors per partition, host vectors, replayable translation faults, fault injection."),
    reg!(PartitionStride, "PARTITION_STRIDE", Global, 0x00c, 4, Ro, Reset::Value(WINDOW_STRIDE), 0, NONE,
        "Bytes between partition windows in the register BAR."),
    reg!(VramSize, "VRAM_SIZE", Global, 0x010, 8, Ro, Reset::Config("vram_size_bytes"), 0, NONE,
        "Total VRAM in bytes (size of the VRAM BAR)."),
    reg!(PartitionBase, "PARTITION_BASE", Global, 0x018, 4, Ro, Reset::Value(WINDOW_BASE), 0, NONE,
        "Offset of partition window 0 in the register BAR."),
    reg!(Scratch, "SCRATCH", Global, 0x01c, 4, Rw, V0, 0xffff_ffff, NONE,
        "Free for the driver; no effect."),
    reg!(IntrStatus, "INTR_STATUS", Global, 0x020, 4, Rw1c, V0, INTR_BITS,
        fields!(GlobalIntr { PARTITION_FAULT, XLATE_FAULT, ACCESS_ERROR, FAULT_LOG_OVERFLOW }),
        "Host interrupt causes. XLATE_FAULT raises host vector 1, every other cause host vector 0, when the cause is set while enabled in INTR_MASK."),
    reg!(IntrMask, "INTR_MASK", Global, 0x024, 4, Rw, V0, INTR_BITS,
        fields!(GlobalIntr { PARTITION_FAULT, XLATE_FAULT, ACCESS_ERROR, FAULT_LOG_OVERFLOW }),
        "1 enables a cause. Enabling a cause that is already pending raises its vector."),
    reg!(FaultedPartitions, "FAULTED_PARTITIONS", Global, 0x028, 8, Ro, V0, 0, NONE,
        "Bit p is set while partition p is in state FAULTED."),
    reg!(DeviceReset, "DEVICE_RESET", Global, 0x030, 4, Wo, V0, 1, NONE,
        "Write 1: whole-device reset (quiesce every engine, every register to its reset value, scrub all VRAM)."),
    reg!(Timestamp, "TIMESTAMP", Global, 0x038, 8, Ro, V0, 0, NONE,
        "Device time in nanoseconds since the device was created; TIMESTAMP commands write the same clock."),
    reg!(FaultLogCount, "FAULT_LOG_COUNT", Global, 0x040, 4, Ro, V0, 0, NONE,
        "Entries pending in the partition fault log (a 64-entry FIFO)."),
    reg!(FaultLogPop, "FAULT_LOG_POP", Global, 0x044, 4, Wo, V0, 1, NONE,
        "Write 1: drop the head entry of the fault log."),
    reg!(FaultLogInfo, "FAULT_LOG_INFO", Global, 0x048, 4, Ro, V0, 0,
        fields!(FaultLogInfo { PARTITION, CODE = FaultCode::VALUES, RING, WRITE, VALID }),
        "Head entry of the fault log (VALID=0 when empty)."),
    reg!(FaultLogAddr, "FAULT_LOG_ADDR", Global, 0x050, 8, Ro, V0, 0, NONE,
        "Faulting address of the head entry (partition VRAM offset or partition system-memory address)."),
    reg!(FaultLogLost, "FAULT_LOG_LOST", Global, 0x058, 4, Ro, V0, 0, NONE,
        "Fault-log entries dropped because the FIFO was full."),
    reg!(AccessErrorCount, "ACCESS_ERROR_COUNT", Global, 0x060, 4, Ro, V0, 0, NONE,
        "Rejected register accesses since reset (any block)."),
    reg!(AccessErrorInfo, "ACCESS_ERROR_INFO", Global, 0x064, 4, Ro, V0, 0,
        fields!(AccessErrorInfo { SIZE, WRITE, REASON = AccessError::VALUES, BAR }),
        "The most recent rejected access."),
    reg!(AccessErrorOffset, "ACCESS_ERROR_OFFSET", Global, 0x068, 8, Ro, V0, 0, NONE,
        "BAR offset of the most recent rejected access."),
    reg!(XlateFaultCount, "XLATE_FAULT_COUNT", Global, 0x080, 4, Ro, V0, 0, NONE,
        "Replayable translation faults waiting for the host (at most one per partition)."),
    reg!(XlateFaultPop, "XLATE_FAULT_POP", Global, 0x084, 4, Wo, V0, 1, NONE,
        "Write 1: drop the head translation-fault entry (the partition keeps waiting for XLATE_RESUME)."),
    reg!(XlateFaultInfo, "XLATE_FAULT_INFO", Global, 0x088, 4, Ro, V0, 0,
        fields!(XlateFaultInfo { PARTITION, WRITE, VALID }),
        "Head translation-fault entry (VALID=0 when empty)."),
    reg!(XlateFaultAddr, "XLATE_FAULT_ADDR", Global, 0x090, 8, Ro, V0, 0, NONE,
        "Start of the partition system-memory page that missed translation (head entry)."),
    reg!(XlateResume, "XLATE_RESUME", Global, 0x098, 4, Wo, V0, 0x3ff,
        fields!(XlateResume { PARTITION, ACTION = ResumeAction::VALUES }),
        "Resolve partition PARTITION's translation wait: RETRY replays the command from its start, CANCEL faults it with XLATE_CANCELLED."),
    reg!(InjectDelayUs, "INJECT_DELAY_US", Global, 0x0a0, 4, Rw, Reset::Value(10_000), 0xffff_ffff, NONE,
        "Delay of an interrupt injected with LATE_IRQ, in microseconds."),
    reg!(SchedTimesliceUs, "SCHED_TIMESLICE_US", Global, 0x0a4, 4, Rw, Reset::Value(2_000), 0xffff_ffff, NONE,
        "Longest time an engine runs one partition before it picks the next (checked between commands and between the 1 MiB chunks of a long command); 0 reads back as 1."),
    // ---- Partition table ------------------------------------------------
    reg!(PtCtrl, "CTRL", PartitionTable, 0x00, 4, Rw, V0, 0x7,
        fields!(PtCtrl { ENABLE, XLATE, XLATE_REPLAY }),
        "ENABLE: the partition may run (refused with BAD_VALUE unless its VRAM slice is valid and overlaps no enabled slice; clearing it quiesces and resets the partition). XLATE: system-memory addresses go through the translation table (else they are bus addresses). XLATE_REPLAY: a translation miss waits for the host (else it faults)."),
    reg!(PtState, "STATE", PartitionTable, 0x04, 4, Ro, V0, 0,
        fields!(PtState { STATE = PartitionState::VALUES, INJECT = InjectKind::VALUES }),
        "Partition state and the armed fault injection."),
    reg!(PtVramBase, "VRAM_BASE", PartitionTable, 0x08, 8, Rw, V0, !0xffff,
        NONE, "Start of the VRAM slice, 64 KiB aligned; writable only while disabled."),
    reg!(PtVramSize, "VRAM_SIZE", PartitionTable, 0x10, 8, Rw, V0, !0xffff,
        NONE, "Size of the VRAM slice, a non-zero multiple of 64 KiB; writable only while disabled."),
    reg!(PtXlateRoot, "XLATE_ROOT", PartitionTable, 0x18, 8, Rw, V0, !0xfff,
        NONE, "Bus address of the translation directory (4 KiB aligned). A write is a translation change: it waits as XLATE_INVALIDATE does."),
    reg!(PtXlateDirEntries, "XLATE_DIR_ENTRIES", PartitionTable, 0x20, 4, Rw, V0, 0x1fff,
        NONE, "Directory entries (0..4096; more is refused with BAD_VALUE); each maps 2 MiB of partition system-memory addresses. A write waits as XLATE_INVALIDATE does."),
    reg!(PtWeight, "WEIGHT", PartitionTable, 0x24, 4, Rw, Reset::Value(1), 0xff,
        NONE, "Scheduling weight 1..255 (0 is refused with BAD_VALUE): engine time is shared in proportion."),
    reg!(PtReset, "RESET", PartitionTable, 0x28, 4, Wo, V0, 1, NONE,
        "Write 1: partition reset (as the window's RESET)."),
    reg!(PtScrub, "SCRUB", PartitionTable, 0x2c, 4, Wo, V0, 1, NONE,
        "Write 1 while disabled: zero the VRAM slice (refused with BAD_VALUE while enabled). Completes before the write returns."),
    reg!(PtXlateInvalidate, "XLATE_INVALIDATE", PartitionTable, 0x30, 4, Wo, V0, 1, NONE,
        "Write 1: drop cached translations of this partition. Required after changing or removing an entry. Completes (a read of any register after it returns) only once no in-flight command can use a translation made before it: the command stops at a chunk boundary and resumes by translating afresh."),
    reg!(PtMsixBase, "MSIX_BASE", PartitionTable, 0x34, 4, Ro, Reset::Config("2 + 2 * partition"), 0, NONE,
        "First MSI-X vector of the partition (engine vector; fault vector is +1)."),
    reg!(PtInject, "INJECT", PartitionTable, 0x38, 4, Rw, V0, 0xf,
        fields!(PtInject { KIND = InjectKind::VALUES }),
        "Arm one fault injection; reads the armed kind, 0 once it has fired. Unknown kinds are refused (BAD_VALUE)."),
    // ---- Partition window ------------------------------------------------
    reg!(WId, "ID", Window, 0x000, 4, Ro, Reset::Value(WINDOW_MAGIC as u64), 0, NONE,
        "Magic 0x55504776 (\"vGPU\"): identifies a partition window."),
    reg!(WVersion, "VERSION", Window, 0x004, 4, Ro,
        Reset::Value(((VERSION_MAJOR as u64) << 16) | VERSION_MINOR as u64), 0,
        fields!(Version { MINOR, MAJOR }), "As the global VERSION."),
    reg!(WCaps, "CAPS", Window, 0x008, 4, Ro, Reset::Config("rings, vectors, PT CTRL.XLATE"), 0,
        fields!(PartCaps { RINGS, VECTORS, XLATE }),
        "Rings and MSI-X vectors of this partition; XLATE=1 when system-memory addresses are translated."),
    reg!(WOpcodes, "OPCODES", Window, 0x00c, 4, Ro, Reset::Value(0x7f), 0,
        fields!(Opcodes { NOP, COPY, FILL, FENCE, SEM_WAIT, TIMESTAMP, CRC32 }),
        "Bit n set: command opcode n is supported."),
    reg!(WVramSize, "VRAM_SIZE", Window, 0x010, 8, Ro, Reset::Config("PT VRAM_SIZE"), 0, NONE,
        "Size of this partition's VRAM; VRAM addresses in commands are offsets in 0..VRAM_SIZE."),
    reg!(WStatus, "STATUS", Window, 0x018, 4, Ro, V0, 0,
        fields!(PartStatus { STATE = PartitionState::VALUES }), "Partition state."),
    reg!(WIndex, "INDEX", Window, 0x01c, 4, Ro, Reset::Config("partition"), 0, NONE,
        "Index of this partition."),
    reg!(WIntrStatus, "INTR_STATUS", Window, 0x020, 4, Rw1c, V0, PART_INTR_BITS,
        fields!(PartIntr { FENCE, FAULT, IDLE }),
        "Interrupt causes: FENCE (a FENCE command with INTR completed), FAULT (the partition faulted), IDLE (all rings drained). FENCE and IDLE raise the engine vector, FAULT the fault vector, when set while enabled in INTR_MASK."),
    reg!(WIntrMask, "INTR_MASK", Window, 0x024, 4, Rw, V0, PART_INTR_BITS,
        fields!(PartIntr { FENCE, FAULT, IDLE }),
        "1 enables a cause. Enabling a cause that is already pending raises its vector."),
    reg!(WFaultStatus, "FAULT_STATUS", Window, 0x028, 4, Ro, V0, 0,
        fields!(FaultStatus { CODE = FaultCode::VALUES, RING, WRITE }),
        "Why the partition faulted; cleared by partition reset."),
    reg!(WFaultAddr, "FAULT_ADDR", Window, 0x030, 8, Ro, V0, 0, NONE,
        "Faulting address (VRAM offset or system-memory address of the partition)."),
    reg!(WFaultCmd, "FAULT_CMD", Window, 0x038, 4, Ro, V0, 0, NONE,
        "Ring index of the faulting command (the ring's HEAD stays on it)."),
    reg!(WReset, "RESET", Window, 0x03c, 4, Wo, V0, 1, NONE,
        "Write 1: partition reset: quiesce, then rings, interrupts, fault and statistics to reset values. VRAM contents and the host's partition-table settings are kept."),
    reg!(WFenceValue, "FENCE_VALUE", Window, 0x040, 8, Ro, V0, 0, NONE,
        "Value of the last completed FENCE command (any ring)."),
    reg!(WTimestamp, "TIMESTAMP", Window, 0x048, 8, Ro, V0, 0, NONE,
        "Device time in nanoseconds (as the global TIMESTAMP)."),
    reg!(WStatCommands, "STAT_COMMANDS", Window, 0x050, 8, Ro, V0, 0, NONE,
        "Commands completed."),
    reg!(WStatBytes, "STAT_BYTES", Window, 0x058, 8, Ro, V0, 0, NONE,
        "Bytes moved or read by COPY, FILL and CRC32."),
    reg!(WStatBusyNs, "STAT_BUSY_NS", Window, 0x060, 8, Ro, V0, 0, NONE,
        "Engine time spent on this partition's commands, in nanoseconds."),
    reg!(WStatFaults, "STAT_FAULTS", Window, 0x068, 4, Ro, V0, 0, NONE,
        "Faults of this partition since reset."),
    reg!(WAccessErrors, "ACCESS_ERRORS", Window, 0x06c, 4, Ro, V0, 0, NONE,
        "Rejected accesses to this window since reset."),
    reg!(WScratch, "SCRATCH", Window, 0x070, 4, Rw, V0, 0xffff_ffff, NONE,
        "Free for the driver; no effect."),
    reg!(WRingBase, "RING_BASE", Window, RING_REGS_BASE, 8, RINGS, RING_REGS_STRIDE, Rw, V0, !0x3f, NONE,
        "Ring start, 64-byte aligned: a VRAM offset, or a system-memory address when RING_CTRL.SYSMEM=1. Writing it resets HEAD and TAIL; refused with BUSY while a command of the ring is in flight, with BAD_VALUE while the ring holds work."),
    reg!(WRingSize, "RING_SIZE", Window, RING_REGS_BASE + 0x08, 4, RINGS, RING_REGS_STRIDE, Rw, V0, 0x1_ffff,
        NONE, "Ring length in 64-byte commands: 0 (ring off) or a power of two up to 65536. Same reset and refusal rules as RING_BASE."),
    reg!(WRingCtrl, "RING_CTRL", Window, RING_REGS_BASE + 0x0c, 4, RINGS, RING_REGS_STRIDE, Rw, V0, 0x1,
        fields!(RingCtrl { SYSMEM }), "SYSMEM=1: the ring lives in system memory. Same refusal rules as RING_BASE."),
    reg!(WRingHead, "RING_HEAD", Window, RING_REGS_BASE + 0x10, 4, RINGS, RING_REGS_STRIDE, Ro, V0, 0, NONE,
        "Index of the next command the engine executes."),
    reg!(WRingTail, "RING_TAIL", Window, RING_REGS_BASE + 0x14, 4, RINGS, RING_REGS_STRIDE, Ro, V0, 0, NONE,
        "Index one past the last submitted command (the last doorbell value)."),
    reg!(WDoorbell, "DOORBELL", Window, DOORBELL_PAGE, 4, RINGS, 4, Wo, V0, 0xffff,
        NONE, "Write the new TAIL (< RING_SIZE) of ring n: the engine runs commands HEAD..TAIL. Returns at once. TAIL may move back to withdraw commands not yet taken, but not onto the command in flight (refused with BUSY)."),
];

mod codegen;
mod decode;

pub use codegen::{c_header, spec_tables};
pub use decode::{
    block_of, decode, decode_in_block, format_access, format_fields, offset_of, register,
    window_offset, Decoded,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_register_fits_its_block_and_is_aligned() {
        for r in REGISTERS {
            assert!(r.width == 4 || r.width == 8, "{}", r.name);
            assert_eq!(r.offset % r.width as u64, 0, "{}", r.name);
            let end = r.offset + r.stride * (r.count as u64 - 1) + r.width as u64;
            assert!(end <= r.block.stride(), "{} beyond its block", r.name);
        }
        // building the lookup asserts that no two registers overlap
        let _ = decode::lookup();
    }

    #[test]
    fn every_reg_id_appears_once() {
        let mut seen = std::collections::HashSet::new();
        for r in REGISTERS {
            assert!(seen.insert(r.id), "{:?} twice", r.id);
        }
    }

    #[test]
    fn fields_do_not_overlap_and_fit() {
        for r in REGISTERS {
            let mut used = 0u64;
            for f in r.fields {
                assert!(
                    f.lsb + f.width <= r.width as u32 * 8,
                    "{}.{}",
                    r.name,
                    f.name
                );
                let m = ((1u128 << f.width) - 1) as u64;
                assert_eq!(used & (m << f.lsb), 0, "{}.{} overlaps", r.name, f.name);
                used |= m << f.lsb;
            }
        }
    }

    #[test]
    fn decode_names_window_ring_and_halves() {
        let off = offset_of(RegId::WRingBase, 3, 1);
        let d = decode(off).unwrap();
        assert_eq!(d.name(), "PART[3].RING_BASE[1]");
        assert_eq!(decode(off + 4).unwrap().name(), "PART[3].RING_BASE[1]:hi");
        assert_eq!(
            decode(offset_of(RegId::PtCtrl, 5, 0)).unwrap().name(),
            "PT[5].CTRL"
        );
        assert!(decode(0x0ffc).is_none());
        assert!(decode(REG_BAR_SIZE - 4).is_none());
    }

    #[test]
    fn format_access_decodes_fields_and_enum_values() {
        let s = format_access(offset_of(RegId::WFaultStatus, 0, 0), 4, 0x101, false);
        assert_eq!(
            s,
            "PART[0].FAULT_STATUS -> 0x101 {CODE=VRAM_OOB RING=0x1 WRITE=0}"
        );
        let ctrl = PtCtrl::new().with_enable(true).with_xlate(true);
        let s = format_access(
            offset_of(RegId::PtCtrl, 2, 0),
            4,
            ctrl.into_bits() as u64,
            true,
        );
        assert_eq!(s, "PT[2].CTRL <- 0x3 {ENABLE=1 XLATE=1 XLATE_REPLAY=0}");
    }

    #[test]
    fn value_enums_round_trip_their_numbers_and_names() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(
            all: &[T],
            values: &[(u64, &str)],
            from: fn(u8) -> T,
            into: fn(T) -> u8,
            name: fn(T) -> &'static str,
        ) {
            assert_eq!(all.len(), values.len());
            for (&k, &(v, n)) in all.iter().zip(values) {
                assert_eq!(into(k) as u64, v);
                assert_eq!(from(v as u8), k);
                assert_eq!(name(k), n);
            }
        }
        check(
            PartitionState::ALL,
            PartitionState::VALUES,
            PartitionState::from_bits,
            PartitionState::into_bits,
            PartitionState::name,
        );
        check(
            FaultCode::ALL,
            FaultCode::VALUES,
            FaultCode::from_bits,
            FaultCode::into_bits,
            FaultCode::name,
        );
        assert_eq!(FaultCode::from_bits(200), FaultCode::Unknown(200));
        assert_eq!(FaultCode::Unknown(200).to_string(), "UNKNOWN(200)");
        assert_eq!(InjectKind::known(9), None);
        assert_eq!(InjectKind::known(4), Some(InjectKind::DropIrq));
        let st = PtState::from_bits(0x0503);
        assert_eq!(st.state(), PartitionState::Faulted);
        assert_eq!(st.inject(), InjectKind::LateIrq);
    }

    #[test]
    fn vectors_follow_the_layout() {
        assert_eq!(partition_vector_base(0), 2);
        assert_eq!(partition_vector_base(63), 128);
        assert_eq!(msix_vectors(64), 130);
        assert!(msix_vectors(64) as u64 * 16 <= MSIX_PBA_OFFSET as u64);
    }
}
