//! Device events: the device's side of the story. The model tells
//! subscribers why it refused a register access, which commands it took,
//! completed or faulted on, which interrupts it raised or held back, how
//! partition states changed and what happened to translation faults.
//! Traces (the model-level driver trace, the trace decoder) interleave
//! them with register accesses.
//!
//! Delivery is synchronous, on the thread that produced the event: a vCPU
//! (or test) thread for register accesses, an engine thread for commands,
//! the timer thread for late interrupts. Subscribers therefore must be
//! quick, thread-safe, and must not call into the device, subscribe or
//! unsubscribe from inside a callback. With no subscriber an event costs
//! one relaxed atomic load ([`EventBus::enabled`]): nothing is built.

use crate::command::Opcode;
use crate::regs::{AccessError, FaultCode, PartitionState, ResumeAction};
use crate::Function;
use parking_lot::RwLock;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// One thing the device did or refused, stamped with the device clock
/// (nanoseconds, as `TIMESTAMP`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub time_ns: u64,
    pub kind: EventKind,
}

/// Why an interrupt was raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqCause {
    /// Window `INTR_STATUS.FENCE` (partition engine vector).
    Fence,
    /// Window `INTR_STATUS.IDLE` (partition engine vector).
    Idle,
    /// Window `INTR_STATUS.FAULT` (partition fault vector).
    Fault,
    /// Global `INTR_STATUS` causes (host vectors), as their bits.
    Host(u32),
    /// Window `INTR_STATUS` display causes (VBLANK, FLIP_DONE, HOTPLUG:
    /// partition engine vector), as their bits.
    Display(u32),
}

/// What became of an interrupt cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqFate {
    /// The message was sent.
    Sent,
    /// The cause is masked in `INTR_MASK`: status bit set, no message.
    /// Reported for a partition's FENCE and FAULT causes only (a masked
    /// IDLE or host cause is routine).
    Masked,
    /// Swallowed by a `DROP_IRQ` injection.
    Dropped,
    /// Held back by a `LATE_IRQ` injection (a `Sent` event follows when
    /// the timer sends it, unless a reset drops it first).
    Late,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A register or BAR access the device refused (SPEC 2): the access as
    /// made (to BAR `bar` of `function`), the reason it records in
    /// `ACCESS_ERROR_INFO`, and in words why.
    Rejected {
        function: Function,
        bar: u8,
        offset: u64,
        size: u32,
        write: bool,
        value: u64,
        code: AccessError,
        why: String,
    },
    /// An engine took the command at ring slot `index` (read its 64 bytes).
    CmdTaken {
        partition: usize,
        ring: usize,
        index: u32,
        opcode: Opcode,
    },
    /// The command completed: its effects are applied and HEAD moved past it.
    CmdDone {
        partition: usize,
        ring: usize,
        index: u32,
        opcode: Opcode,
    },
    /// The command faulted the partition (opcode None: it was not decoded,
    /// e.g. `BAD_COMMAND` or a failed ring fetch).
    CmdFault {
        partition: usize,
        ring: usize,
        index: u32,
        opcode: Option<Opcode>,
        code: FaultCode,
        addr: u64,
        write: bool,
    },
    /// A partition reset ended the command in flight.
    CmdAborted {
        partition: usize,
        ring: usize,
        index: u32,
        opcode: Option<Opcode>,
    },
    /// An interrupt cause was set; `fate` says whether its vector was sent.
    Irq {
        vector: u32,
        partition: Option<usize>,
        cause: IrqCause,
        fate: IrqFate,
    },
    /// A partition changed state (`STATUS.STATE`).
    State {
        partition: usize,
        from: PartitionState,
        to: PartitionState,
    },
    /// A partition reset (window or table `RESET`, or disabling).
    PartitionReset { partition: usize },
    /// A whole-device reset.
    DeviceReset,
    /// A replayable translation fault was queued for the host.
    XlateFault {
        partition: usize,
        addr: u64,
        write: bool,
    },
    /// The host resolved a translation wait with `XLATE_RESUME`.
    XlateResolved {
        partition: usize,
        action: ResumeAction,
    },
}

impl EventKind {
    /// A short name of the kind, as in the C ABI and JSON traces.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Rejected { .. } => "REJECTED",
            EventKind::CmdTaken { .. } => "CMD_TAKEN",
            EventKind::CmdDone { .. } => "CMD_DONE",
            EventKind::CmdFault { .. } => "CMD_FAULT",
            EventKind::CmdAborted { .. } => "CMD_ABORTED",
            EventKind::Irq { .. } => "IRQ",
            EventKind::State { .. } => "STATE",
            EventKind::PartitionReset { .. } => "PARTITION_RESET",
            EventKind::DeviceReset => "DEVICE_RESET",
            EventKind::XlateFault { .. } => "XLATE_FAULT",
            EventKind::XlateResolved { .. } => "XLATE_RESOLVED",
        }
    }

    /// The partition the event belongs to, if any (a rejected access to a
    /// partition's table entry or window, or to any BAR of its VF, belongs
    /// to that partition).
    pub fn partition(&self) -> Option<usize> {
        match *self {
            EventKind::Rejected {
                function: Function::Vf(n),
                ..
            } => Some(usize::from(n)),
            EventKind::Rejected { bar, offset, .. } => {
                if bar != crate::regs::REG_BAR {
                    return None;
                }
                match crate::regs::block_of(offset) {
                    Some((crate::regs::Block::Global, _, _)) | None => None,
                    Some((_, p, _)) => Some(p),
                }
            }
            EventKind::CmdTaken { partition, .. }
            | EventKind::CmdDone { partition, .. }
            | EventKind::CmdFault { partition, .. }
            | EventKind::CmdAborted { partition, .. }
            | EventKind::State { partition, .. }
            | EventKind::PartitionReset { partition }
            | EventKind::XlateFault { partition, .. }
            | EventKind::XlateResolved { partition, .. } => Some(partition),
            EventKind::Irq { partition, .. } => partition,
            EventKind::DeviceReset => None,
        }
    }

    /// The annotation a trace appends to a rejected access:
    /// `REJECTED BAD_VALUE (ring 0 off: RING_SIZE is 0)`.
    pub fn rejection(&self) -> Option<String> {
        match self {
            EventKind::Rejected { code, why, .. } => Some(format!("REJECTED {code} ({why})")),
            _ => None,
        }
    }
}

fn opcode_name(op: Option<Opcode>) -> &'static str {
    op.map_or("(undecoded)", Opcode::name)
}

fn host_causes(f: &mut fmt::Formatter<'_>, bits: u32) -> fmt::Result {
    cause_names(f, crate::regs::GlobalIntr::FIELDS, bits)
}

fn display_causes(f: &mut fmt::Formatter<'_>, bits: u32) -> fmt::Result {
    cause_names(f, crate::regs::PartIntr::FIELDS, bits)
}

fn cause_names(
    f: &mut fmt::Formatter<'_>,
    fields: &[crate::regs::Field],
    bits: u32,
) -> fmt::Result {
    let names = fields
        .iter()
        .filter(|fd| u64::from(bits) & fd.mask() != 0)
        .map(|fd| fd.name)
        .collect::<Vec<_>>();
    write!(f, "{}", names.join("|"))
}

/// One line of text, without time: what the decoder prints after `dev`.
impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::Rejected {
                function,
                offset,
                size,
                write,
                value,
                bar,
                ..
            } => {
                let access = crate::regs::format_function_access(
                    *function, *bar, *offset, *size, *value, *write,
                );
                let rw = if *write { 'W' } else { 'R' };
                let r = self.rejection().unwrap_or_default();
                write!(f, "{rw}{size} {access}  {r}")
            }
            EventKind::CmdTaken {
                partition,
                ring,
                index,
                opcode,
            } => write!(
                f,
                "PART[{partition}] ring {ring} #{index} {} taken",
                opcode.name()
            ),
            EventKind::CmdDone {
                partition,
                ring,
                index,
                opcode,
            } => write!(
                f,
                "PART[{partition}] ring {ring} #{index} {} done",
                opcode.name()
            ),
            EventKind::CmdFault {
                partition,
                ring,
                index,
                opcode,
                code,
                addr,
                write,
            } => write!(
                f,
                "PART[{partition}] ring {ring} #{index} {} FAULT {code} @{addr:#x} {}",
                opcode_name(*opcode),
                if *write { "write" } else { "read" }
            ),
            EventKind::CmdAborted {
                partition,
                ring,
                index,
                opcode,
            } => write!(
                f,
                "PART[{partition}] ring {ring} #{index} {} ended by reset",
                opcode_name(*opcode)
            ),
            EventKind::Irq {
                vector,
                partition,
                cause,
                fate,
            } => {
                write!(f, "MSI-X {vector} (")?;
                if let Some(p) = partition {
                    write!(f, "PART[{p}] ")?;
                }
                match cause {
                    IrqCause::Fence => f.write_str("FENCE")?,
                    IrqCause::Idle => f.write_str("IDLE")?,
                    IrqCause::Fault => f.write_str("FAULT")?,
                    IrqCause::Host(bits) => host_causes(f, *bits)?,
                    IrqCause::Display(bits) => display_causes(f, *bits)?,
                }
                f.write_str(")")?;
                match fate {
                    IrqFate::Sent => Ok(()),
                    IrqFate::Masked => f.write_str(" masked: not sent"),
                    IrqFate::Dropped => f.write_str(" dropped by DROP_IRQ"),
                    IrqFate::Late => f.write_str(" held back by LATE_IRQ"),
                }
            }
            EventKind::State {
                partition,
                from,
                to,
            } => write!(f, "PART[{partition}] {from} -> {to}"),
            EventKind::PartitionReset { partition } => write!(
                f,
                "PART[{partition}] RESET (rings off, window to reset values)"
            ),
            EventKind::DeviceReset => f.write_str("DEVICE_RESET"),
            EventKind::XlateFault {
                partition,
                addr,
                write,
            } => write!(
                f,
                "PART[{partition}] XLATE_FAULT @{addr:#x} {}: waits for XLATE_RESUME",
                if *write { "write" } else { "read" }
            ),
            EventKind::XlateResolved { partition, action } => {
                write!(f, "PART[{partition}] XLATE_RESUME {action}")
            }
        }
    }
}

type Callback = Arc<dyn Fn(&Event) + Send + Sync>;

/// The device's subscriber list. Delivery holds a read lock while the
/// callbacks run, so [`EventBus::unsubscribe`] returns only once no
/// callback of that subscriber is running (the C ABI relies on it).
#[derive(Default)]
pub struct EventBus {
    /// Any subscriber? The only thing the fast path reads.
    active: AtomicBool,
    next_id: AtomicU64,
    subs: RwLock<Vec<(u64, Callback)>>,
}

impl EventBus {
    /// Is anyone listening? One relaxed load: callers test it before they
    /// build an event or compute anything only an event needs.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Deliver the event `make` builds, if anyone listens.
    #[inline]
    pub fn emit(&self, now_ns: impl FnOnce() -> u64, make: impl FnOnce() -> EventKind) {
        if self.enabled() {
            self.deliver(&Event {
                time_ns: now_ns(),
                kind: make(),
            });
        }
    }

    #[cold]
    fn deliver(&self, e: &Event) {
        for (_, cb) in self.subs.read().iter() {
            cb(e);
        }
    }

    /// Register a callback; returns its id for [`EventBus::unsubscribe`].
    pub fn subscribe(&self, cb: Callback) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let mut subs = self.subs.write();
        subs.push((id, cb));
        self.active.store(true, Ordering::Relaxed);
        id
    }

    /// Remove a callback; waits until no delivery to it is running.
    /// Returns false if the id was not subscribed.
    pub fn unsubscribe(&self, id: u64) -> bool {
        let mut subs = self.subs.write();
        let before = subs.len();
        subs.retain(|(i, _)| *i != id);
        self.active.store(!subs.is_empty(), Ordering::Relaxed);
        subs.len() != before
    }
}

/// A subscription; dropping it unsubscribes (and waits for a callback
/// running on another thread to return).
pub struct Subscription {
    bus: Weak<EventBus>,
    id: u64,
}

impl Subscription {
    pub(crate) fn new(bus: &Arc<EventBus>, cb: Callback) -> Self {
        Self {
            id: bus.subscribe(cb),
            bus: Arc::downgrade(bus),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(bus) = self.bus.upgrade() {
            bus.unsubscribe(self.id);
        }
    }
}

/// Why the device refused a register access: the code it records in
/// `ACCESS_ERROR_INFO.REASON` and, for people, the reason in words. Built
/// at every refusal site; the words are only formatted when an event
/// subscriber wants them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: AccessError,
    pub why: Why,
}

impl Refusal {
    pub const fn new(code: AccessError, why: Why) -> Self {
        Self { code, why }
    }
}

/// The reason behind a refusal, with what it needs to say it. Kept small
/// (12 bytes): it travels in every register access's `Result`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    NoSuchBar(u8),
    BeyondVram,
    VramWidth(u32),
    RegWidth(u32),
    Misaligned(u32),
    NoRegister,
    NoPartition { partitions: u8 },
    WideAccessTo32,
    ReadOnly,
    OutsideWritableMask { mask: u32 },
    WriteOne,
    NotWaiting { partition: u8 },
    UnknownAction,
    SliceWhileEnabled,
    DirEntries { max: u32 },
    WeightZero,
    ScrubWhileEnabled,
    SliceBeyondVram,
    EmptySlice,
    SliceOverlaps { other: u8 },
    UnknownInjection,
    RingInFlight { ring: u8 },
    RingHoldsWork { ring: u8, head: u32, tail: u32 },
    RingSize,
    PartitionDisabled { partition: u8 },
    TailOntoInFlight { ring: u8, head: u32 },
    RingOff { ring: u8 },
    TailBeyondRing { ring: u8, tail: u32, size: u32 },
    NoSuchVf { vfs: u16 },
    BeyondVfWindow,
    VfSliceUnmapped { vf: u16 },
    BeyondVfSlice { vf: u16 },
    XlateOnVf { vf: u16 },
    SliceBeyondVfBar { vf: u16 },
    StopWithoutEnable,
    DirtyLogWithoutEnable,
    UnknownCtxOp,
    CtxPosRange,
    DispFormat { format: u32 },
    DispMode { width: u16, height: u16 },
    DispStride { stride: u32, min: u32 },
    DispBeyondVram,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Why::NoSuchBar(b) => write!(f, "BAR {b} has no registers in the model"),
            Why::BeyondVram => f.write_str("beyond the VRAM BAR"),
            Why::VramWidth(n) => write!(f, "{n}-byte VRAM access: 1, 2, 4 or 8"),
            Why::RegWidth(n) => write!(f, "{n}-byte access: registers take 4 or 8 bytes"),
            Why::Misaligned(n) => write!(f, "offset not a multiple of {n}"),
            Why::NoRegister => f.write_str("no register at this offset"),
            Why::NoPartition { partitions } => {
                write!(f, "partition beyond CAPS.PARTITIONS = {partitions}")
            }
            Why::WideAccessTo32 => f.write_str("8-byte access to a 32-bit register"),
            Why::ReadOnly => f.write_str("register is read-only"),
            Why::OutsideWritableMask { mask } => {
                write!(f, "bits outside the command's value mask {mask:#x}")
            }
            Why::WriteOne => f.write_str("write 1 to trigger"),
            Why::NotWaiting { partition } => {
                write!(f, "partition {partition} is not waiting for translation")
            }
            Why::UnknownAction => f.write_str("unknown ACTION"),
            Why::SliceWhileEnabled => {
                f.write_str("slice changes only while the partition is disabled")
            }
            Why::DirEntries { max } => write!(f, "more than {max} directory entries"),
            Why::WeightZero => f.write_str("WEIGHT 0: weights are 1..255"),
            Why::ScrubWhileEnabled => f.write_str("SCRUB only while the partition is disabled"),
            Why::SliceBeyondVram => f.write_str("slice ends beyond VRAM"),
            Why::EmptySlice => f.write_str("empty slice (VRAM_SIZE is 0)"),
            Why::SliceOverlaps { other } => write!(f, "slice overlaps partition {other}"),
            Why::UnknownInjection => f.write_str("unknown injection kind"),
            Why::RingInFlight { ring } => write!(f, "ring {ring} has a command in flight"),
            Why::RingHoldsWork { ring, head, tail } => {
                write!(f, "ring {ring} holds work: HEAD {head}, TAIL {tail}")
            }
            Why::RingSize => f.write_str("RING_SIZE is 0 or a power of two up to 65536"),
            Why::PartitionDisabled { partition } => {
                write!(f, "partition {partition} is disabled: CTRL.ENABLE is 0")
            }
            Why::TailOntoInFlight { ring, head } => write!(
                f,
                "TAIL onto ring {ring}'s command in flight at HEAD {head}"
            ),
            Why::RingOff { ring } => write!(
                f,
                "ring {ring} off: RING_SIZE is 0 - a partition reset turns rings off"
            ),
            Why::TailBeyondRing { ring, tail, size } => {
                write!(f, "ring {ring}: TAIL {tail} >= RING_SIZE {size}")
            }
            Why::NoSuchVf { vfs } => write!(f, "no such VF: the device has {vfs} VFs"),
            Why::BeyondVfWindow => {
                f.write_str("beyond the VF's register BAR (one 8 KiB partition window)")
            }
            Why::VfSliceUnmapped { vf } => write!(
                f,
                "VF{vf}'s VRAM BAR reaches no VRAM: partition {vf} is disabled"
            ),
            Why::BeyondVfSlice { vf } => write!(
                f,
                "beyond partition {vf}'s VRAM slice (PT VRAM_SIZE) in VF{vf}'s VRAM BAR"
            ),
            Why::XlateOnVf { vf } => write!(
                f,
                "partition {vf} is VF{vf}: its DMA is translated by the platform IOMMU, not XLATE"
            ),
            Why::SliceBeyondVfBar { vf } => {
                write!(f, "slice larger than VF{vf}'s VRAM BAR (vf_vram_bar_size)")
            }
            Why::StopWithoutEnable => {
                f.write_str("STOP needs ENABLE: only a running partition stops")
            }
            Why::DirtyLogWithoutEnable => f.write_str("DIRTY_LOG needs ENABLE"),
            Why::UnknownCtxOp => f.write_str("unknown OP: 1 is SAVE, 2 is RESTORE"),
            Why::CtxPosRange => f.write_str("CTX_POS beyond the context buffer (CTX_SIZE)"),
            Why::DispFormat { format } => write!(
                f,
                "DISP_FORMAT {format:#x}: the head scans out XRGB8888 (0x34325258) only"
            ),
            Why::DispMode { width, height } => write!(
                f,
                "DISP_MODE {width}x{height}: each side is 1..=DISP_MAX_MODE"
            ),
            Why::DispStride { stride, min } => write!(
                f,
                "DISP_STRIDE {stride}: at least {min} (WIDTH * 4) and a multiple of 4"
            ),
            Why::DispBeyondVram => f.write_str("the frame ends beyond the partition's VRAM"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn a_refusal_stays_small() {
        assert!(std::mem::size_of::<Refusal>() <= 16);
    }

    #[test]
    fn no_subscriber_builds_nothing_and_unsubscribe_stops_delivery() {
        let bus = Arc::new(EventBus::default());
        bus.emit(
            || unreachable!("no clock read"),
            || unreachable!("no event built"),
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let sub = Subscription::new(
            &bus,
            Arc::new(move |e: &Event| s.lock().unwrap().push(e.clone())),
        );
        assert!(bus.enabled());
        bus.emit(|| 7, || EventKind::DeviceReset);
        drop(sub);
        assert!(!bus.enabled());
        bus.emit(|| 8, || EventKind::DeviceReset);
        assert_eq!(
            *seen.lock().unwrap(),
            [Event {
                time_ns: 7,
                kind: EventKind::DeviceReset
            }]
        );
    }

    #[test]
    fn lines_say_what_happened() {
        let e = EventKind::CmdFault {
            partition: 0,
            ring: 0,
            index: 6,
            opcode: Some(Opcode::Copy),
            code: FaultCode::VramOutOfBounds,
            addr: 0x1000,
            write: true,
        };
        assert_eq!(
            e.to_string(),
            "PART[0] ring 0 #6 COPY FAULT VRAM_OOB @0x1000 write"
        );
        let e = EventKind::Irq {
            vector: 3,
            partition: Some(0),
            cause: IrqCause::Fault,
            fate: IrqFate::Sent,
        };
        assert_eq!(e.to_string(), "MSI-X 3 (PART[0] FAULT)");
        let e = EventKind::Irq {
            vector: 0,
            partition: None,
            cause: IrqCause::Host(0b101),
            fate: IrqFate::Masked,
        };
        assert_eq!(
            e.to_string(),
            "MSI-X 0 (PARTITION_FAULT|ACCESS_ERROR) masked: not sent"
        );
        let r = Refusal::new(AccessError::BadValue, Why::RingOff { ring: 0 });
        assert_eq!(
            r.why.to_string(),
            "ring 0 off: RING_SIZE is 0 - a partition reset turns rings off"
        );
    }
}
