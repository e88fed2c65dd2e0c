//! The register table: every register of the three blocks declared once,
//! with its offset, width, access, reset value, writable mask, fields and
//! description. Dispatch, SPEC.md's tables, the C header, dumps and the
//! trace decoder all read it; the numbers a register's behaviour depends
//! on (reset values, limits, masks) are the named constants below, which
//! the device model reads too.

use super::*;
use crate::command::{Opcode, COMMAND_BYTES};
use crate::context::CTX_BYTES;
use crate::xlate::{MAX_DIR_ENTRIES, PAGE_SIZE};

// ---------------------------------------------------------------------------
// Register facts the device model shares with the table
// ---------------------------------------------------------------------------

/// The VERSION word (global and window): major in the high half.
pub const VERSION_WORD: u32 = Version::new()
    .with_major(VERSION_MAJOR)
    .with_minor(VERSION_MINOR)
    .into_bits();
/// OPCODES: bit n set for every opcode n the engines execute.
pub const OPCODES_SUPPORTED: u32 = Opcode::supported_mask();
/// Reset value of INJECT_DELAY_US.
pub const INJECT_DELAY_US_RESET: u32 = 10_000;
/// Reset value of SCHED_TIMESLICE_US.
pub const SCHED_TIMESLICE_US_RESET: u32 = 2_000;
/// Reset value of ENGINE_DELAY: engines as fast as they go.
pub const ENGINE_DELAY_RESET: u64 = 0;
/// Seed of the ENGINE_DELAY jitter sequence (set again by device reset).
pub const JITTER_SEED: u64 = 0x5eed_0f6a_117e_5a11;
/// Reset value of a partition's WEIGHT, and the largest weight.
pub const WEIGHT_RESET: u32 = 1;
pub const MAX_WEIGHT: u32 = 255;

/// The smallest all-ones mask that holds `n`.
const fn mask_covering(n: u64) -> u64 {
    u64::MAX >> n.leading_zeros()
}

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
    EngineDelay,
    CtxSize,
    CtxCmd,
    CtxStatus,
    CtxPos,
    CtxData,
    DirtySel,
    DirtyIndex,
    DirtyWord,
    DirtyCount,
    DirtyOverflow,
    EdidSel,
    EdidData,
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
    PtDispLink,
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
    WDispCtrl,
    WDispFormat,
    WDispMode,
    WDispStride,
    WDispBase,
    WDispCommit,
    WDispStatus,
    WDispActiveBase,
    WDispActiveMode,
    WDispActiveStride,
    WDispActiveFormat,
    WDispVblankCount,
    WDispVblankNs,
    WDispMaxMode,
    WDispEdid,
}

/// One register (or register array) of a block. Entries in [`REGISTERS`]
/// name every field they set and take the rest from [`Register::PLAIN`].
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
    /// Bits a write may change (RW) or clear (RW1C), or may set (WO).
    pub writable: u64,
    pub fields: &'static [Field],
    pub desc: &'static str,
}

impl Register {
    /// The defaults of a table entry: a plain (not array) register that
    /// resets to 0, has no fields and ignores writes. What every entry must
    /// state itself (id, name, width, description) is invalid here, so the
    /// table's tests catch an entry that forgets it.
    pub const PLAIN: Register = Register {
        id: RegId::Id,
        name: "",
        block: Block::Global,
        offset: 0,
        width: 0,
        count: 1,
        stride: 0,
        access: Access::Ro,
        reset: Reset::Value(0),
        writable: 0,
        fields: &[],
        desc: "",
    };
}

/// Every bit of a 32-bit register.
const ALL32: u64 = u32::MAX as u64;
/// "Write 1" command registers take exactly the value 1.
const WRITE_1: u64 = 1;
const RING_REGS_BASE: u64 = 0x100;
const RING_REGS_STRIDE: u64 = 0x20;
const RINGS: u8 = RINGS_PER_PARTITION as u8;
const DISP_REGS_BASE: u64 = 0x200;
const DISP_EDID_BASE: u64 = 0x300;
const EDID_WORDS: u8 = (EDID_BYTES / 4) as u8;
/// DISP_MAX_MODE's value.
pub const DISP_MAX_MODE: u32 = DispMode::new()
    .with_width(DISP_MAX_WIDTH)
    .with_height(DISP_MAX_HEIGHT)
    .into_bits();

use Access::{Ro, Rw, Rw1c, Wo};
use Block::{Global, PartitionTable, Window};

/// Every register, in block and offset order. An entry names what it sets
/// and takes the defaults of [`Register::PLAIN`] (plain register, reset 0,
/// no fields, writes ignored) for the rest.
#[rustfmt::skip]
pub static REGISTERS: &[Register] = &[
    // ---- Global block --------------------------------------------------
    Register { id: RegId::Id, name: "ID", block: Global, offset: 0x000, width: 4, access: Ro,
        reset: Reset::Value(DEVICE_MAGIC as u64),
        desc: "Magic 0x55504756 (\"VGPU\"): identifies the device.",
        ..Register::PLAIN },
    Register { id: RegId::Version, name: "VERSION", block: Global, offset: 0x004, width: 4, access: Ro,
        reset: Reset::Value(VERSION_WORD as u64), fields: Version::FIELDS,
        desc: "Programming-interface version of this manual.",
        ..Register::PLAIN },
    Register { id: RegId::Caps, name: "CAPS", block: Global, offset: 0x008, width: 4, access: Ro,
        reset: Reset::Config("partitions, engines"),
        fields: Caps::FIELDS,
        desc: "Capabilities: configured partition and engine counts, rings and MSI-X vectors per partition, host vectors, replayable translation faults, fault injection.",
        ..Register::PLAIN },
    Register { id: RegId::PartitionStride, name: "PARTITION_STRIDE", block: Global, offset: 0x00c, width: 4, access: Ro,
        reset: Reset::Value(WINDOW_STRIDE),
        desc: "Bytes between partition windows in the register BAR.",
        ..Register::PLAIN },
    Register { id: RegId::VramSize, name: "VRAM_SIZE", block: Global, offset: 0x010, width: 8, access: Ro,
        reset: Reset::Config("vram_size_bytes"),
        desc: "Total VRAM in bytes (size of the VRAM BAR).",
        ..Register::PLAIN },
    Register { id: RegId::PartitionBase, name: "PARTITION_BASE", block: Global, offset: 0x018, width: 4, access: Ro,
        reset: Reset::Value(WINDOW_BASE),
        desc: "Offset of partition window 0 in the register BAR.",
        ..Register::PLAIN },
    Register { id: RegId::Scratch, name: "SCRATCH", block: Global, offset: 0x01c, width: 4, access: Rw,
        writable: ALL32,
        desc: "Free for the driver; no effect.",
        ..Register::PLAIN },
    Register { id: RegId::IntrStatus, name: "INTR_STATUS", block: Global, offset: 0x020, width: 4, access: Rw1c,
        writable: fields_mask(GlobalIntr::FIELDS), fields: GlobalIntr::FIELDS,
        desc: "Host interrupt causes. XLATE_FAULT raises host vector 1, every other cause host vector 0, when the cause is set while enabled in INTR_MASK.",
        ..Register::PLAIN },
    Register { id: RegId::IntrMask, name: "INTR_MASK", block: Global, offset: 0x024, width: 4, access: Rw,
        writable: fields_mask(GlobalIntr::FIELDS), fields: GlobalIntr::FIELDS,
        desc: "1 enables a cause. Enabling a cause that is already pending raises its vector.",
        ..Register::PLAIN },
    Register { id: RegId::FaultedPartitions, name: "FAULTED_PARTITIONS", block: Global, offset: 0x028, width: 8, access: Ro,
        desc: "Bit p is set while partition p is in state FAULTED.",
        ..Register::PLAIN },
    Register { id: RegId::DeviceReset, name: "DEVICE_RESET", block: Global, offset: 0x030, width: 4, access: Wo,
        writable: WRITE_1,
        desc: "Write 1: whole-device reset (quiesce every engine, every register to its reset value, scrub all VRAM).",
        ..Register::PLAIN },
    Register { id: RegId::Timestamp, name: "TIMESTAMP", block: Global, offset: 0x038, width: 8, access: Ro,
        desc: "Device time in nanoseconds since the device was created; TIMESTAMP commands write the same clock.",
        ..Register::PLAIN },
    Register { id: RegId::FaultLogCount, name: "FAULT_LOG_COUNT", block: Global, offset: 0x040, width: 4, access: Ro,
        desc: "Entries pending in the partition fault log (a 64-entry FIFO).",
        ..Register::PLAIN },
    Register { id: RegId::FaultLogPop, name: "FAULT_LOG_POP", block: Global, offset: 0x044, width: 4, access: Wo,
        writable: WRITE_1,
        desc: "Write 1: drop the head entry of the fault log.",
        ..Register::PLAIN },
    Register { id: RegId::FaultLogInfo, name: "FAULT_LOG_INFO", block: Global, offset: 0x048, width: 4, access: Ro,
        fields: FaultLogInfo::FIELDS,
        desc: "Head entry of the fault log (VALID=0 when empty).",
        ..Register::PLAIN },
    Register { id: RegId::FaultLogAddr, name: "FAULT_LOG_ADDR", block: Global, offset: 0x050, width: 8, access: Ro,
        desc: "Faulting address of the head entry (partition VRAM offset or partition system-memory address).",
        ..Register::PLAIN },
    Register { id: RegId::FaultLogLost, name: "FAULT_LOG_LOST", block: Global, offset: 0x058, width: 4, access: Ro,
        desc: "Fault-log entries dropped because the FIFO was full.",
        ..Register::PLAIN },
    Register { id: RegId::AccessErrorCount, name: "ACCESS_ERROR_COUNT", block: Global, offset: 0x060, width: 4, access: Ro,
        desc: "Rejected register accesses since reset (any block).",
        ..Register::PLAIN },
    Register { id: RegId::AccessErrorInfo, name: "ACCESS_ERROR_INFO", block: Global, offset: 0x064, width: 4, access: Ro,
        fields: AccessErrorInfo::FIELDS,
        desc: "The most recent rejected access.",
        ..Register::PLAIN },
    Register { id: RegId::AccessErrorOffset, name: "ACCESS_ERROR_OFFSET", block: Global, offset: 0x068, width: 8, access: Ro,
        desc: "BAR offset of the most recent rejected access (in the BAR of the function ACCESS_ERROR_INFO.FUNCTION names).",
        ..Register::PLAIN },
    Register { id: RegId::XlateFaultCount, name: "XLATE_FAULT_COUNT", block: Global, offset: 0x080, width: 4, access: Ro,
        desc: "Replayable translation faults waiting for the host (at most one per partition).",
        ..Register::PLAIN },
    Register { id: RegId::XlateFaultPop, name: "XLATE_FAULT_POP", block: Global, offset: 0x084, width: 4, access: Wo,
        writable: WRITE_1,
        desc: "Write 1: drop the head translation-fault entry (the partition keeps waiting for XLATE_RESUME).",
        ..Register::PLAIN },
    Register { id: RegId::XlateFaultInfo, name: "XLATE_FAULT_INFO", block: Global, offset: 0x088, width: 4, access: Ro,
        fields: XlateFaultInfo::FIELDS,
        desc: "Head translation-fault entry (VALID=0 when empty).",
        ..Register::PLAIN },
    Register { id: RegId::XlateFaultAddr, name: "XLATE_FAULT_ADDR", block: Global, offset: 0x090, width: 8, access: Ro,
        desc: "Start of the partition system-memory page that missed translation (head entry).",
        ..Register::PLAIN },
    Register { id: RegId::XlateResume, name: "XLATE_RESUME", block: Global, offset: 0x098, width: 4, access: Wo,
        writable: fields_mask(XlateResume::FIELDS), fields: XlateResume::FIELDS,
        desc: "Resolve partition PARTITION's translation wait: RETRY replays the command from its start, CANCEL faults it with XLATE_CANCELLED.",
        ..Register::PLAIN },
    Register { id: RegId::InjectDelayUs, name: "INJECT_DELAY_US", block: Global, offset: 0x0a0, width: 4, access: Rw,
        reset: Reset::Value(INJECT_DELAY_US_RESET as u64), writable: ALL32,
        desc: "Delay of an interrupt injected with LATE_IRQ, in microseconds.",
        ..Register::PLAIN },
    Register { id: RegId::SchedTimesliceUs, name: "SCHED_TIMESLICE_US", block: Global, offset: 0x0a4, width: 4, access: Rw,
        reset: Reset::Value(SCHED_TIMESLICE_US_RESET as u64), writable: ALL32,
        desc: "Longest time an engine runs one partition before it picks the next (checked between commands and between the 1 MiB chunks of a long command); 0 reads back as 1.",
        ..Register::PLAIN },
    Register { id: RegId::EngineDelay, name: "ENGINE_DELAY", block: Global, offset: 0x0a8, width: 8, access: Rw,
        reset: Reset::Value(ENGINE_DELAY_RESET),
        writable: fields_mask(EngineDelay::FIELDS), fields: EngineDelay::FIELDS,
        desc: "Timing-bug provocation (host only): every command completes no earlier than MIN_US plus a per-command jitter in 0..=JITTER_US microseconds after an engine took it; meanwhile the engine runs other partitions. 0: no delay.",
        ..Register::PLAIN },
    Register { id: RegId::CtxSize, name: "CTX_SIZE", block: Global, offset: 0x0b0, width: 4, access: Ro,
        reset: Reset::Value(CTX_BYTES as u64),
        desc: "Bytes of a partition context image (SPEC 16): the size of the context buffer CTX_DATA reads and writes.",
        ..Register::PLAIN },
    Register { id: RegId::CtxCmd, name: "CTX_CMD", block: Global, offset: 0x0b4, width: 4, access: Wo,
        writable: fields_mask(CtxCmd::FIELDS), fields: CtxCmd::FIELDS,
        desc: "SAVE: the context of partition PARTITION (PT CTRL.ENABLE and STOP set) into the context buffer. RESTORE: the context buffer into partition PARTITION (ENABLE and STOP set; the image must be valid and of the same slice size). Completes before the write returns; CTX_POS goes to 0; the result is in CTX_STATUS. Unknown OP or a partition out of range: BAD_VALUE.",
        ..Register::PLAIN },
    Register { id: RegId::CtxStatus, name: "CTX_STATUS", block: Global, offset: 0x0b8, width: 4, access: Ro,
        fields: CtxStatus::FIELDS,
        desc: "Result of the last CTX_CMD: OK, or why the operation was refused (the partition is unchanged).",
        ..Register::PLAIN },
    Register { id: RegId::CtxPos, name: "CTX_POS", block: Global, offset: 0x0bc, width: 4, access: Rw,
        writable: mask_covering(CTX_BYTES as u64 - 1) & !3,
        desc: "Byte offset in the context buffer of the next CTX_DATA access (a multiple of 4 below CTX_SIZE; larger values are refused with BAD_VALUE).",
        ..Register::PLAIN },
    Register { id: RegId::CtxData, name: "CTX_DATA", block: Global, offset: 0x0c0, width: 4, access: Rw,
        writable: ALL32,
        desc: "4 bytes of the context buffer at CTX_POS; each read or write moves CTX_POS on by 4 (wrapping to 0 at CTX_SIZE).",
        ..Register::PLAIN },
    Register { id: RegId::DirtySel, name: "DIRTY_SEL", block: Global, offset: 0x0c4, width: 4, access: Rw,
        writable: fields_mask(DirtySel::FIELDS), fields: DirtySel::FIELDS,
        desc: "Selects the dirty log DIRTY_WORD and DIRTY_COUNT read: partition PARTITION's SYSMEM or VRAM log (SPEC 16). A write sets DIRTY_INDEX to 0; a partition out of range is refused with BAD_VALUE.",
        ..Register::PLAIN },
    Register { id: RegId::DirtyIndex, name: "DIRTY_INDEX", block: Global, offset: 0x0c8, width: 4, access: Rw,
        writable: ALL32,
        desc: "Word of the selected log that DIRTY_WORD reads next (word i covers pages 32 * i .. 32 * i + 31).",
        ..Register::PLAIN },
    Register { id: RegId::DirtyWord, name: "DIRTY_WORD", block: Global, offset: 0x0cc, width: 4, access: Ro,
        desc: "Word DIRTY_INDEX of the selected log, cleared as it is read; DIRTY_INDEX moves on by 1. Bit b set: the partition's engine wrote page 32 * DIRTY_INDEX + b (4 KiB pages of its system-memory addresses, or of its VRAM slice) since the word was last read. 0 beyond the log or while logging is off.",
        ..Register::PLAIN },
    Register { id: RegId::DirtyCount, name: "DIRTY_COUNT", block: Global, offset: 0x0d0, width: 4, access: Ro,
        desc: "Pages set in the selected log.",
        ..Register::PLAIN },
    Register { id: RegId::DirtyOverflow, name: "DIRTY_OVERFLOW", block: Global, offset: 0x0d8, width: 8, access: Rw1c,
        writable: u64::MAX,
        desc: "Bit p: partition p's engine wrote system memory beyond its log (16 GiB of partition addresses) since the bit was cleared; its host must treat all of that memory as dirty.",
        ..Register::PLAIN },
    Register { id: RegId::EdidSel, name: "EDID_SEL", block: Global, offset: 0x0e0, width: 4, access: Rw,
        writable: fields_mask(EdidSel::FIELDS), fields: EdidSel::FIELDS,
        desc: "Selects the partition whose EDID EDID_DATA reads and writes (SPEC 17). A write sets the EDID position to 0; a partition out of range is refused with BAD_VALUE.",
        ..Register::PLAIN },
    Register { id: RegId::EdidData, name: "EDID_DATA", block: Global, offset: 0x0e4, width: 4, access: Rw,
        writable: ALL32,
        desc: "4 bytes of the selected partition's 256-byte EDID at the EDID position (byte 4i is the low byte of word i); each read or write moves the position on by 4, wrapping to 0 at 256. The guest sees the EDID in its window's DISP_EDID; the host tells it of a change with PT DISP_LINK.",
        ..Register::PLAIN },
    // ---- Partition table ------------------------------------------------
    Register { id: RegId::PtCtrl, name: "CTRL", block: PartitionTable, offset: 0x00, width: 4, access: Rw,
        writable: fields_mask(PtCtrl::FIELDS), fields: PtCtrl::FIELDS,
        desc: "ENABLE: the partition may run (refused with BAD_VALUE unless its VRAM slice is valid and overlaps no enabled slice; clearing it quiesces and resets the partition). XLATE: system-memory addresses go through the translation table (else they are bus addresses). XLATE_REPLAY: a translation miss waits for the host (else it faults). STOP (with ENABLE): engines leave the partition at the next chunk boundary, keeping the progress of the command in flight, and take none of its work until STOP is cleared; doorbells are still accepted. The write returns once no engine runs it (SPEC 16). DIRTY_LOG (with ENABLE): the partition's dirty logs record the pages its engine writes; setting it starts them empty, clearing it (or disabling) drops them.",
        ..Register::PLAIN },
    Register { id: RegId::PtState, name: "STATE", block: PartitionTable, offset: 0x04, width: 4, access: Ro,
        fields: PtState::FIELDS,
        desc: "Partition state and the armed fault injection.",
        ..Register::PLAIN },
    Register { id: RegId::PtVramBase, name: "VRAM_BASE", block: PartitionTable, offset: 0x08, width: 8, access: Rw,
        writable: !(VRAM_GRANULE - 1),
        desc: "Start of the VRAM slice, 64 KiB aligned; writable only while disabled.",
        ..Register::PLAIN },
    Register { id: RegId::PtVramSize, name: "VRAM_SIZE", block: PartitionTable, offset: 0x10, width: 8, access: Rw,
        writable: !(VRAM_GRANULE - 1),
        desc: "Size of the VRAM slice, a non-zero multiple of 64 KiB; writable only while disabled.",
        ..Register::PLAIN },
    Register { id: RegId::PtXlateRoot, name: "XLATE_ROOT", block: PartitionTable, offset: 0x18, width: 8, access: Rw,
        writable: !(PAGE_SIZE - 1),
        desc: "Bus address of the translation directory (4 KiB aligned). A write is a translation change: it waits as XLATE_INVALIDATE does.",
        ..Register::PLAIN },
    Register { id: RegId::PtXlateDirEntries, name: "XLATE_DIR_ENTRIES", block: PartitionTable, offset: 0x20, width: 4, access: Rw,
        writable: mask_covering(MAX_DIR_ENTRIES as u64),
        desc: "Directory entries (0..4096; more is refused with BAD_VALUE); each maps 2 MiB of partition system-memory addresses. A write waits as XLATE_INVALIDATE does.",
        ..Register::PLAIN },
    Register { id: RegId::PtWeight, name: "WEIGHT", block: PartitionTable, offset: 0x24, width: 4, access: Rw,
        reset: Reset::Value(WEIGHT_RESET as u64), writable: mask_covering(MAX_WEIGHT as u64),
        desc: "Scheduling weight 1..255 (0 is refused with BAD_VALUE): engine time is shared in proportion.",
        ..Register::PLAIN },
    Register { id: RegId::PtReset, name: "RESET", block: PartitionTable, offset: 0x28, width: 4, access: Wo,
        writable: WRITE_1,
        desc: "Write 1: partition reset (as the window's RESET).",
        ..Register::PLAIN },
    Register { id: RegId::PtScrub, name: "SCRUB", block: PartitionTable, offset: 0x2c, width: 4, access: Wo,
        writable: WRITE_1,
        desc: "Write 1 while disabled: zero the VRAM slice (refused with BAD_VALUE while enabled). Completes before the write returns.",
        ..Register::PLAIN },
    Register { id: RegId::PtXlateInvalidate, name: "XLATE_INVALIDATE", block: PartitionTable, offset: 0x30, width: 4, access: Wo,
        writable: WRITE_1,
        desc: "Write 1: drop cached translations of this partition. Required after changing or removing an entry. Completes (a read of any register after it returns) only once no in-flight command can use a translation made before it: the command stops at a chunk boundary and resumes by translating afresh.",
        ..Register::PLAIN },
    Register { id: RegId::PtMsixBase, name: "MSIX_BASE", block: PartitionTable, offset: 0x34, width: 4, access: Ro,
        reset: Reset::Config("2 + 2 * partition; 0 for a VF's partition"),
        desc: "First MSI-X vector of the partition (engine vector; fault vector is +1), in the PF's MSI-X table; in SR-IOV mode a VF's partition reads 0: its vectors are 0 and 1 of its VF's table.",
        ..Register::PLAIN },
    Register { id: RegId::PtInject, name: "INJECT", block: PartitionTable, offset: 0x38, width: 4, access: Rw,
        writable: fields_mask(PtInject::FIELDS), fields: PtInject::FIELDS,
        desc: "Arm one fault injection; reads the armed kind, 0 once it has fired. Unknown kinds are refused (BAD_VALUE).",
        ..Register::PLAIN },
    Register { id: RegId::PtDispLink, name: "DISP_LINK", block: PartitionTable, offset: 0x3c, width: 4, access: Rw,
        writable: fields_mask(DispLink::FIELDS), fields: DispLink::FIELDS,
        desc: "CONNECTED: a display is attached to the partition's head (the window's DISP_STATUS.CONNECTED). Every write raises the window's INTR_STATUS.HOTPLUG, so a host writes it after changing the EDID too. Kept by partition reset; device reset clears it.",
        ..Register::PLAIN },
    // ---- Partition window ------------------------------------------------
    Register { id: RegId::WId, name: "ID", block: Window, offset: 0x000, width: 4, access: Ro,
        reset: Reset::Value(WINDOW_MAGIC as u64),
        desc: "Magic 0x55504776 (\"vGPU\"): identifies a partition window.",
        ..Register::PLAIN },
    Register { id: RegId::WVersion, name: "VERSION", block: Window, offset: 0x004, width: 4, access: Ro,
        reset: Reset::Value(VERSION_WORD as u64), fields: Version::FIELDS,
        desc: "As the global VERSION.",
        ..Register::PLAIN },
    Register { id: RegId::WCaps, name: "CAPS", block: Window, offset: 0x008, width: 4, access: Ro,
        reset: Reset::Config("rings, vectors, PT CTRL.XLATE"),
        fields: PartCaps::FIELDS,
        desc: "Rings and MSI-X vectors of this partition; XLATE=1 when system-memory addresses are translated.",
        ..Register::PLAIN },
    Register { id: RegId::WOpcodes, name: "OPCODES", block: Window, offset: 0x00c, width: 4, access: Ro,
        reset: Reset::Value(OPCODES_SUPPORTED as u64),
        fields: Opcodes::FIELDS,
        desc: "Bit n set: command opcode n is supported.",
        ..Register::PLAIN },
    Register { id: RegId::WVramSize, name: "VRAM_SIZE", block: Window, offset: 0x010, width: 8, access: Ro,
        reset: Reset::Config("PT VRAM_SIZE"),
        desc: "Size of this partition's VRAM; VRAM addresses in commands are offsets in 0..VRAM_SIZE.",
        ..Register::PLAIN },
    Register { id: RegId::WStatus, name: "STATUS", block: Window, offset: 0x018, width: 4, access: Ro,
        fields: PartStatus::FIELDS,
        desc: "Partition state.",
        ..Register::PLAIN },
    Register { id: RegId::WIndex, name: "INDEX", block: Window, offset: 0x01c, width: 4, access: Ro,
        reset: Reset::Config("partition"),
        desc: "Index of this partition.",
        ..Register::PLAIN },
    Register { id: RegId::WIntrStatus, name: "INTR_STATUS", block: Window, offset: 0x020, width: 4, access: Rw1c,
        writable: fields_mask(PartIntr::FIELDS), fields: PartIntr::FIELDS,
        desc: "Interrupt causes: FENCE (a FENCE command with INTR completed), FAULT (the partition faulted), IDLE (all rings drained). FENCE and IDLE raise the engine vector, FAULT the fault vector, when set while enabled in INTR_MASK.",
        ..Register::PLAIN },
    Register { id: RegId::WIntrMask, name: "INTR_MASK", block: Window, offset: 0x024, width: 4, access: Rw,
        writable: fields_mask(PartIntr::FIELDS), fields: PartIntr::FIELDS,
        desc: "1 enables a cause. Enabling a cause that is already pending raises its vector.",
        ..Register::PLAIN },
    Register { id: RegId::WFaultStatus, name: "FAULT_STATUS", block: Window, offset: 0x028, width: 4, access: Ro,
        fields: FaultStatus::FIELDS,
        desc: "Why the partition faulted; cleared by partition reset.",
        ..Register::PLAIN },
    Register { id: RegId::WFaultAddr, name: "FAULT_ADDR", block: Window, offset: 0x030, width: 8, access: Ro,
        desc: "Faulting address (VRAM offset or system-memory address of the partition).",
        ..Register::PLAIN },
    Register { id: RegId::WFaultCmd, name: "FAULT_CMD", block: Window, offset: 0x038, width: 4, access: Ro,
        desc: "Ring index of the faulting command (the ring's HEAD stays on it).",
        ..Register::PLAIN },
    Register { id: RegId::WReset, name: "RESET", block: Window, offset: 0x03c, width: 4, access: Wo,
        writable: WRITE_1,
        desc: "Write 1: partition reset: quiesce, then rings (turned off: RING_BASE, RING_SIZE, RING_CTRL, HEAD and TAIL read 0), interrupts, fault and statistics to reset values. VRAM contents and the host's partition-table settings are kept.",
        ..Register::PLAIN },
    Register { id: RegId::WFenceValue, name: "FENCE_VALUE", block: Window, offset: 0x040, width: 8, access: Ro,
        desc: "Value of the last completed FENCE command (any ring).",
        ..Register::PLAIN },
    Register { id: RegId::WTimestamp, name: "TIMESTAMP", block: Window, offset: 0x048, width: 8, access: Ro,
        desc: "Device time in nanoseconds (as the global TIMESTAMP).",
        ..Register::PLAIN },
    Register { id: RegId::WStatCommands, name: "STAT_COMMANDS", block: Window, offset: 0x050, width: 8, access: Ro,
        desc: "Commands completed.",
        ..Register::PLAIN },
    Register { id: RegId::WStatBytes, name: "STAT_BYTES", block: Window, offset: 0x058, width: 8, access: Ro,
        desc: "Bytes moved or read by COPY, FILL and CRC32.",
        ..Register::PLAIN },
    Register { id: RegId::WStatBusyNs, name: "STAT_BUSY_NS", block: Window, offset: 0x060, width: 8, access: Ro,
        desc: "Engine time spent on this partition's commands, in nanoseconds.",
        ..Register::PLAIN },
    Register { id: RegId::WStatFaults, name: "STAT_FAULTS", block: Window, offset: 0x068, width: 4, access: Ro,
        desc: "Faults of this partition since reset.",
        ..Register::PLAIN },
    Register { id: RegId::WAccessErrors, name: "ACCESS_ERRORS", block: Window, offset: 0x06c, width: 4, access: Ro,
        desc: "Rejected accesses to this window since reset (in SR-IOV mode, to any BAR of the partition's VF too).",
        ..Register::PLAIN },
    Register { id: RegId::WScratch, name: "SCRATCH", block: Window, offset: 0x070, width: 4, access: Rw,
        writable: ALL32,
        desc: "Free for the driver; no effect.",
        ..Register::PLAIN },
    Register { id: RegId::WRingBase, name: "RING_BASE", block: Window, offset: RING_REGS_BASE, width: 8,
        count: RINGS, stride: RING_REGS_STRIDE, access: Rw,
        writable: !(COMMAND_BYTES as u64 - 1),
        desc: "Ring start, 64-byte aligned: a VRAM offset, or a system-memory address when RING_CTRL.SYSMEM=1. Writing it resets HEAD and TAIL; refused with BUSY while a command of the ring is in flight, with BAD_VALUE while the ring holds work.",
        ..Register::PLAIN },
    Register { id: RegId::WRingSize, name: "RING_SIZE", block: Window, offset: RING_REGS_BASE + 0x08, width: 4,
        count: RINGS, stride: RING_REGS_STRIDE, access: Rw,
        writable: mask_covering(MAX_RING_SIZE as u64),
        desc: "Ring length in 64-byte commands: 0 (ring off) or a power of two up to 65536. Same reset and refusal rules as RING_BASE.",
        ..Register::PLAIN },
    Register { id: RegId::WRingCtrl, name: "RING_CTRL", block: Window, offset: RING_REGS_BASE + 0x0c, width: 4,
        count: RINGS, stride: RING_REGS_STRIDE, access: Rw,
        writable: fields_mask(RingCtrl::FIELDS), fields: RingCtrl::FIELDS,
        desc: "SYSMEM=1: the ring lives in system memory. Same refusal rules as RING_BASE.",
        ..Register::PLAIN },
    Register { id: RegId::WRingHead, name: "RING_HEAD", block: Window, offset: RING_REGS_BASE + 0x10, width: 4,
        count: RINGS, stride: RING_REGS_STRIDE, access: Ro,
        desc: "Index of the next command the engine executes.",
        ..Register::PLAIN },
    Register { id: RegId::WRingTail, name: "RING_TAIL", block: Window, offset: RING_REGS_BASE + 0x14, width: 4,
        count: RINGS, stride: RING_REGS_STRIDE, access: Ro,
        desc: "Index one past the last submitted command (the last doorbell value).",
        ..Register::PLAIN },
    Register { id: RegId::WDispCtrl, name: "DISP_CTRL", block: Window, offset: DISP_REGS_BASE, width: 4, access: Rw,
        writable: fields_mask(DispCtrl::FIELDS), fields: DispCtrl::FIELDS,
        desc: "Pending head state (SPEC 17): ENABLE turns scanout on. Like every DISP_ pending register it takes effect only at DISP_COMMIT.",
        ..Register::PLAIN },
    Register { id: RegId::WDispFormat, name: "DISP_FORMAT", block: Window, offset: DISP_REGS_BASE + 0x04, width: 4, access: Rw,
        writable: ALL32,
        desc: "Pending pixel format, a DRM fourcc. The head scans out XRGB8888 (0x34325258): 4 bytes a pixel, blue in the lowest byte.",
        ..Register::PLAIN },
    Register { id: RegId::WDispMode, name: "DISP_MODE", block: Window, offset: DISP_REGS_BASE + 0x08, width: 4, access: Rw,
        writable: fields_mask(DispMode::FIELDS), fields: DispMode::FIELDS,
        desc: "Pending mode in pixels: 1 to 4096 in each direction.",
        ..Register::PLAIN },
    Register { id: RegId::WDispStride, name: "DISP_STRIDE", block: Window, offset: DISP_REGS_BASE + 0x0c, width: 4, access: Rw,
        writable: ALL32,
        desc: "Pending bytes from one line to the next: at least WIDTH * 4, a multiple of 4.",
        ..Register::PLAIN },
    Register { id: RegId::WDispBase, name: "DISP_BASE", block: Window, offset: DISP_REGS_BASE + 0x10, width: 8, access: Rw,
        writable: !(DISP_BASE_ALIGN - 1),
        desc: "Pending scanout start: an offset in the partition's VRAM, 4 KiB aligned (the low bits ignore writes). The whole frame must lie inside the VRAM.",
        ..Register::PLAIN },
    Register { id: RegId::WDispCommit, name: "DISP_COMMIT", block: Window, offset: DISP_REGS_BASE + 0x18, width: 4, access: Wo,
        writable: WRITE_1,
        desc: "Write 1: commit the pending state. An invalid one (ENABLE with a format other than XRGB8888, a mode out of range, a short or unaligned stride, a frame beyond the VRAM) is refused with BAD_VALUE and changes nothing. With the head off, or to turn it off, the state takes effect at once; on an active head at the next vblank (a page flip; FLIP_PENDING until then). Either way INTR_STATUS.FLIP_DONE is raised when it took effect; a commit while one is pending replaces it.",
        ..Register::PLAIN },
    Register { id: RegId::WDispStatus, name: "DISP_STATUS", block: Window, offset: DISP_REGS_BASE + 0x1c, width: 4, access: Ro,
        fields: DispStatus::FIELDS,
        desc: "ACTIVE: the head scans out (the DISP_ACTIVE_ registers say what). FLIP_PENDING: a commit waits for the next vblank. CONNECTED: a display is attached (the host's PT DISP_LINK).",
        ..Register::PLAIN },
    Register { id: RegId::WDispActiveBase, name: "DISP_ACTIVE_BASE", block: Window, offset: DISP_REGS_BASE + 0x20, width: 8, access: Ro,
        desc: "The scanout start the head shows now.",
        ..Register::PLAIN },
    Register { id: RegId::WDispActiveMode, name: "DISP_ACTIVE_MODE", block: Window, offset: DISP_REGS_BASE + 0x28, width: 4, access: Ro,
        fields: DispMode::FIELDS,
        desc: "The mode the head shows now.",
        ..Register::PLAIN },
    Register { id: RegId::WDispActiveStride, name: "DISP_ACTIVE_STRIDE", block: Window, offset: DISP_REGS_BASE + 0x2c, width: 4, access: Ro,
        desc: "The stride the head shows now.",
        ..Register::PLAIN },
    Register { id: RegId::WDispActiveFormat, name: "DISP_ACTIVE_FORMAT", block: Window, offset: DISP_REGS_BASE + 0x30, width: 4, access: Ro,
        desc: "The format the head shows now; 0 while the head is off.",
        ..Register::PLAIN },
    Register { id: RegId::WDispVblankCount, name: "DISP_VBLANK_COUNT", block: Window, offset: DISP_REGS_BASE + 0x38, width: 8, access: Ro,
        desc: "Vblanks of this head since reset; it counts while the head is active and the partition is not stopped.",
        ..Register::PLAIN },
    Register { id: RegId::WDispVblankNs, name: "DISP_VBLANK_NS", block: Window, offset: DISP_REGS_BASE + 0x40, width: 4, access: Ro,
        reset: Reset::Value(DISP_VBLANK_NS as u64),
        desc: "Frame period in nanoseconds: an active head has a vblank every 16666667 ns (60 Hz).",
        ..Register::PLAIN },
    Register { id: RegId::WDispMaxMode, name: "DISP_MAX_MODE", block: Window, offset: DISP_REGS_BASE + 0x44, width: 4, access: Ro,
        reset: Reset::Value(DISP_MAX_MODE as u64), fields: DispMode::FIELDS,
        desc: "The largest mode the head takes.",
        ..Register::PLAIN },
    Register { id: RegId::WDispEdid, name: "DISP_EDID", block: Window, offset: DISP_EDID_BASE, width: 4,
        count: EDID_WORDS, stride: 4, access: Ro,
        desc: "The EDID of the attached display as the host provides it, 256 bytes (byte 4n is the low byte of word n); all zero until the host writes one. It changes only with a HOTPLUG.",
        ..Register::PLAIN },
    Register { id: RegId::WDoorbell, name: "DOORBELL", block: Window, offset: DOORBELL_PAGE, width: 4,
        count: RINGS, stride: 4, access: Wo,
        writable: mask_covering(MAX_RING_SIZE as u64 - 1),
        desc: "Write the new TAIL (< RING_SIZE) of ring n: the engine runs commands HEAD..TAIL. Returns at once. TAIL may move back to withdraw commands not yet taken, but not onto the command in flight (refused with BUSY).",
        ..Register::PLAIN },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xlate::{DIR_ENTRY_SPAN, PTES_PER_TABLE};

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
    fn every_entry_states_what_plain_leaves_invalid() {
        for r in REGISTERS {
            assert!(!r.name.is_empty(), "{:?} has no name", r.id);
            assert!(!r.desc.is_empty(), "{} has no description", r.name);
            assert!(r.count >= 1, "{}", r.name);
            assert!(r.count == 1 || r.stride >= r.width as u64, "{}", r.name);
        }
    }

    #[test]
    fn writable_registers_with_fields_take_exactly_their_fields() {
        for r in REGISTERS
            .iter()
            .filter(|r| !r.fields.is_empty() && r.writable != 0)
        {
            assert_eq!(r.writable, fields_mask(r.fields), "{}", r.name);
        }
    }

    #[test]
    fn opcodes_fields_are_the_command_opcodes() {
        let f = register(RegId::WOpcodes).fields;
        assert_eq!(f.len(), Opcode::ALL.len());
        for (field, op) in f.iter().zip(Opcode::ALL) {
            assert_eq!(field.name, op.name());
            assert_eq!(field.lsb, *op as u32);
            assert_eq!(field.width, 1);
        }
        assert_eq!(fields_mask(f), OPCODES_SUPPORTED as u64);
    }

    /// Descriptions are prose; where they state a number, it is the
    /// number the device uses.
    #[test]
    fn descriptions_state_the_constants() {
        let kib = |b: u64| format!("{} KiB", b >> 10);
        let cases: &[(RegId, String)] = &[
            (RegId::Id, format!("Magic {DEVICE_MAGIC:#x}")),
            (RegId::WId, format!("Magic {WINDOW_MAGIC:#x}")),
            (
                RegId::IntrStatus,
                format!("XLATE_FAULT raises host vector {HOST_VECTOR_XLATE}, every other cause host vector {HOST_VECTOR_EVENTS}"),
            ),
            (RegId::FaultLogCount, format!("a {FAULT_LOG_DEPTH}-entry FIFO")),
            (RegId::PtVramBase, format!("{} aligned", kib(VRAM_GRANULE))),
            (RegId::PtVramSize, format!("multiple of {}", kib(VRAM_GRANULE))),
            (RegId::PtXlateRoot, format!("({} aligned)", kib(PAGE_SIZE))),
            (RegId::PtXlateDirEntries, format!("(0..{MAX_DIR_ENTRIES};")),
            (
                RegId::PtXlateDirEntries,
                format!("each maps {} MiB", DIR_ENTRY_SPAN >> 20),
            ),
            (RegId::PtWeight, format!("weight {WEIGHT_RESET}..{MAX_WEIGHT}")),
            (RegId::WRingBase, format!("{COMMAND_BYTES}-byte aligned")),
            (RegId::WRingSize, format!("{COMMAND_BYTES}-byte commands")),
            (RegId::WRingSize, format!("up to {MAX_RING_SIZE}.")),
            (
                RegId::SchedTimesliceUs,
                format!("the {} MiB chunks", CHUNK_BYTES >> 20),
            ),
        ];
        for (id, want) in cases {
            let r = register(*id);
            assert!(
                r.desc.contains(want.as_str()),
                "{}: {:?} lacks {want:?}",
                r.name,
                r.desc
            );
        }
        assert_eq!(DIR_ENTRY_SPAN, PAGE_SIZE * PTES_PER_TABLE);
        let Reset::Config(msix) = register(RegId::PtMsixBase).reset else {
            panic!("MSIX_BASE resets from the configuration");
        };
        assert_eq!(
            msix,
            format!("{HOST_VECTORS} + {VECTORS_PER_PARTITION} * partition; 0 for a VF's partition")
        );
        assert!(register(RegId::PtMsixBase)
            .desc
            .contains(&format!("fault vector is +{PART_VECTOR_FAULT}")));
    }

    #[test]
    fn masks_follow_the_limits() {
        assert_eq!(register(RegId::PtVramBase).writable, !0xffff);
        assert_eq!(register(RegId::PtXlateDirEntries).writable, 0x1fff);
        assert_eq!(register(RegId::PtWeight).writable, 0xff);
        assert_eq!(register(RegId::WRingSize).writable, 0x1_ffff);
        assert_eq!(register(RegId::WDoorbell).writable, 0xffff);
        assert_eq!(register(RegId::WRingBase).writable, !0x3f);
        assert_eq!(
            VERSION_WORD,
            (VERSION_MAJOR as u32) << 16 | VERSION_MINOR as u32
        );
        assert_eq!(OPCODES_SUPPORTED, 0x1ff);
    }
}
