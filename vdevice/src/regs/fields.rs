//! What the bits of a register mean: one `bitfield` struct per register
//! layout and one enum per enumerated field, each with its numbers and its
//! names in the manual. The table (table.rs) lists these fields; code that
//! reads or builds a register value uses the same structs.

use bitfield_struct::bitfield;

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
    __: bool,
    /// 0: the PF; n + 1: VF n (SR-IOV mode).
    #[bits(7)]
    pub function: u8,
    #[bits(9)]
    __: u16,
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

#[bitfield(u64)]
pub struct EngineDelay {
    /// Least time, in microseconds, from taking a command to completing it.
    pub min_us: u32,
    /// Up to this many microseconds more, drawn per command.
    pub jitter_us: u32,
}

#[bitfield(u32)]
pub struct PtCtrl {
    pub enable: bool,
    pub xlate: bool,
    pub xlate_replay: bool,
    pub stop: bool,
    pub dirty_log: bool,
    #[bits(27)]
    __: u32,
}

#[bitfield(u32)]
pub struct DirtySel {
    pub partition: u8,
    #[bits(1)]
    pub log: DirtyKind,
    #[bits(23)]
    __: u32,
}

#[bitfield(u32)]
pub struct CtxCmd {
    pub partition: u8,
    #[bits(2)]
    pub op: CtxOp,
    #[bits(22)]
    __: u32,
}

#[bitfield(u32)]
pub struct CtxStatus {
    #[bits(8)]
    pub result: CtxResult,
    #[bits(24)]
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
    pub display: bool,
    #[bits(22)]
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
    pub fill_rect: bool,
    pub blit: bool,
    #[bits(23)]
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
#[derive(PartialEq, Eq)]
pub struct PartIntr {
    pub fence: bool,
    pub fault: bool,
    pub idle: bool,
    pub vblank: bool,
    pub flip_done: bool,
    pub hotplug: bool,
    #[bits(26)]
    __: u32,
}

/// DISP_CTRL: the pending state's ENABLE.
#[bitfield(u32)]
pub struct DispCtrl {
    pub enable: bool,
    #[bits(31)]
    __: u32,
}

/// DISP_MODE, DISP_ACTIVE_MODE, DISP_MAX_MODE: a mode in pixels.
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct DispMode {
    pub width: u16,
    pub height: u16,
}

#[bitfield(u32)]
pub struct DispStatus {
    pub active: bool,
    pub flip_pending: bool,
    pub connected: bool,
    #[bits(29)]
    __: u32,
}

/// PT DISP_LINK: the link state the host sets.
#[bitfield(u32)]
pub struct DispLink {
    pub connected: bool,
    #[bits(31)]
    __: u32,
}

#[bitfield(u32)]
pub struct EdidSel {
    pub partition: u8,
    #[bits(24)]
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
    /// The two dirty logs of a partition (DIRTY_SEL.LOG).
    pub enum DirtyKind {
        Sysmem = 0 => "SYSMEM",
        Vram = 1 => "VRAM",
    }
}

value_enum! {
    /// Context operations (CTX_CMD.OP).
    pub enum CtxOp {
        None = 0 => "NONE",
        Save = 1 => "SAVE",
        Restore = 2 => "RESTORE",
    }
}

value_enum! {
    /// What the last CTX_CMD did (CTX_STATUS.RESULT).
    pub enum CtxResult {
        Ok = 0 => "OK",
        NotStopped = 1 => "NOT_STOPPED",
        BadFormat = 2 => "BAD_FORMAT",
        BadVersion = 3 => "BAD_VERSION",
        BadChecksum = 4 => "BAD_CHECKSUM",
        SliceMismatch = 5 => "SLICE_MISMATCH",
        BadState = 6 => "BAD_STATE",
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
// Field lists: what the table, the generators and the decoder see of each
// layout (the bitfield's own offsets and widths, and the value names)
// ---------------------------------------------------------------------------

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub lsb: u32,
    pub width: u32,
    /// Names of enumerated values, empty for plain numbers and flags.
    pub values: &'static [(u64, &'static str)],
}

impl Field {
    /// The bits of the register this field occupies.
    pub const fn mask(&self) -> u64 {
        let ones = if self.width >= 64 {
            u64::MAX
        } else {
            (1u64 << self.width) - 1
        };
        ones << self.lsb
    }

    /// The name of an enumerated value of this field, if it has one.
    pub fn value_name(&self, v: u64) -> Option<&'static str> {
        self.values
            .iter()
            .find(|(n, _)| *n == v)
            .map(|(_, name)| *name)
    }

    pub fn extract(&self, value: u64) -> u64 {
        (value & self.mask()) >> self.lsb
    }

    pub fn bits(&self) -> String {
        if self.width == 1 {
            format!("{}", self.lsb)
        } else {
            format!("{}:{}", self.lsb + self.width - 1, self.lsb)
        }
    }
}

/// The bits of a register that its fields cover.
pub const fn fields_mask(fields: &[Field]) -> u64 {
    let mut mask = 0;
    let mut i = 0;
    while i < fields.len() {
        mask |= fields[i].mask();
        i += 1;
    }
    mask
}

/// The fields of a `bitfield` struct, in the order given, with the value
/// names of enumerated ones: `fields!(PtState { STATE = PartitionState::VALUES })`.
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

impl Version {
    pub const FIELDS: &'static [Field] = fields!(Version { MINOR, MAJOR });
}

impl Caps {
    pub const FIELDS: &'static [Field] = fields!(Caps {
        PARTITIONS,
        ENGINES,
        RINGS_PER_PARTITION,
        VECTORS_PER_PARTITION,
        HOST_VECTORS,
        XLATE_REPLAY,
        FAULT_INJECT,
    });
}

impl GlobalIntr {
    pub const FIELDS: &'static [Field] = fields!(GlobalIntr {
        PARTITION_FAULT,
        XLATE_FAULT,
        ACCESS_ERROR,
        FAULT_LOG_OVERFLOW
    });
}

impl FaultLogInfo {
    pub const FIELDS: &'static [Field] =
        fields!(FaultLogInfo { PARTITION, CODE = FaultCode::VALUES, RING, WRITE, VALID });
}

impl AccessErrorInfo {
    pub const FIELDS: &'static [Field] =
        fields!(AccessErrorInfo { SIZE, WRITE, REASON = AccessError::VALUES, BAR, FUNCTION });
}

impl XlateFaultInfo {
    pub const FIELDS: &'static [Field] = fields!(XlateFaultInfo {
        PARTITION,
        WRITE,
        VALID
    });
}

impl XlateResume {
    pub const FIELDS: &'static [Field] =
        fields!(XlateResume { PARTITION, ACTION = ResumeAction::VALUES });
}

impl EngineDelay {
    pub const FIELDS: &'static [Field] = fields!(EngineDelay { MIN_US, JITTER_US });
}

impl PtCtrl {
    pub const FIELDS: &'static [Field] = fields!(PtCtrl {
        ENABLE,
        XLATE,
        XLATE_REPLAY,
        STOP,
        DIRTY_LOG
    });
}

impl DirtySel {
    pub const FIELDS: &'static [Field] = fields!(DirtySel { PARTITION, LOG = DirtyKind::VALUES });
}

impl CtxCmd {
    pub const FIELDS: &'static [Field] = fields!(CtxCmd { PARTITION, OP = CtxOp::VALUES });
}

impl CtxStatus {
    pub const FIELDS: &'static [Field] = fields!(CtxStatus { RESULT = CtxResult::VALUES });
}

impl PtState {
    pub const FIELDS: &'static [Field] =
        fields!(PtState { STATE = PartitionState::VALUES, INJECT = InjectKind::VALUES });
}

impl PtInject {
    pub const FIELDS: &'static [Field] = fields!(PtInject { KIND = InjectKind::VALUES });
}

impl PartCaps {
    pub const FIELDS: &'static [Field] = fields!(PartCaps {
        RINGS,
        VECTORS,
        XLATE,
        DISPLAY
    });
}

impl Opcodes {
    pub const FIELDS: &'static [Field] = fields!(Opcodes {
        NOP,
        COPY,
        FILL,
        FENCE,
        SEM_WAIT,
        TIMESTAMP,
        CRC32,
        FILL_RECT,
        BLIT
    });
}

impl PartStatus {
    pub const FIELDS: &'static [Field] = fields!(PartStatus { STATE = PartitionState::VALUES });
}

impl PartIntr {
    pub const FIELDS: &'static [Field] = fields!(PartIntr {
        FENCE,
        FAULT,
        IDLE,
        VBLANK,
        FLIP_DONE,
        HOTPLUG
    });
}

impl DispCtrl {
    pub const FIELDS: &'static [Field] = fields!(DispCtrl { ENABLE });
}

impl DispMode {
    pub const FIELDS: &'static [Field] = fields!(DispMode { WIDTH, HEIGHT });
}

impl DispStatus {
    pub const FIELDS: &'static [Field] = fields!(DispStatus {
        ACTIVE,
        FLIP_PENDING,
        CONNECTED
    });
}

impl DispLink {
    pub const FIELDS: &'static [Field] = fields!(DispLink { CONNECTED });
}

impl EdidSel {
    pub const FIELDS: &'static [Field] = fields!(EdidSel { PARTITION });
}

impl FaultStatus {
    pub const FIELDS: &'static [Field] =
        fields!(FaultStatus { CODE = FaultCode::VALUES, RING, WRITE });
}

impl RingCtrl {
    pub const FIELDS: &'static [Field] = fields!(RingCtrl { SYSMEM });
}

impl XlatePde {
    pub const FIELDS: &'static [Field] = fields!(XlatePde { VALID, PFN });
}

impl XlatePte {
    pub const FIELDS: &'static [Field] = fields!(XlatePte {
        VALID,
        WRITABLE,
        PFN
    });
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
