//! The device: register dispatch for the three register blocks, partition
//! and device reset, interrupt delivery, and the state shared with the
//! engine threads (see engine.rs).
//!
//! Locking rule (SPEC 2, "Concurrent accesses"): every register write that
//! validates state does so under the lock that protects that state and
//! changes it under the same lock, so concurrent accesses from any number
//! of vCPUs behave as if they happened one at a time in some order. The
//! slice check and ENABLE of a partition are one step under `config_lock`
//! plus the partition's `st`; VRAM_BASE/SIZE writes take `config_lock`
//! too. Ring and doorbell checks hold `st`, which also guards the command
//! in flight (`PartState::exec`). Nothing unwraps a value that a register
//! write could have changed since it was checked.
//!
//! Lock order: a partition's `st` may be held while taking `global` (a leaf
//! lock); `sched` is never held together with either, and neither is the
//! TLB lock except by the engine during a translation. `config_lock` comes
//! before any `st`; it is held while the SR-IOV slice notification runs
//! (`notify_vf_slices`), so no other enable can claim a slice a VF's BAR
//! still reaches.

#![deny(clippy::arithmetic_side_effects)]

use crate::command::Command;
use crate::config::{ConfigError, DeviceConfig};
use crate::context::{Context, CTX_BYTES};
use crate::dirty::{CpuWrites, DirtyLog, DIRTY_WORD_SPAN};
use crate::display::{self, Display};
use crate::engine::{self, LateIrq, Sched};
use crate::events::{Event, EventBus, EventKind, IrqCause, IrqFate, Refusal, Subscription, Why};
use crate::pci::PciInfo;
use crate::regs::{self, *};
use crate::vram::Vram;
use crate::xlate::{Tlb, XlateConfig, MAX_DIR_ENTRIES};
use crate::{Dma, Function, Irq, VfSliceNotify, VramWriteLog};
use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ring {
    pub base: u64,
    pub size: u32,
    pub sysmem: bool,
    pub head: u32,
    pub tail: u32,
}

impl Ring {
    pub fn has_work(&self) -> bool {
        self.size != 0 && self.head != self.tail
    }
}

/// A command an engine took from a ring and has not finished. Its ring is
/// busy until the command's effects are applied: the ring cannot be
/// reconfigured and a doorbell cannot withdraw it (SPEC 5). Kept with its
/// progress across preemption, invalidation and replayable faults. It came
/// from its ring's HEAD slot, which cannot move while it is in flight.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InFlight {
    pub ring: usize,
    /// The command as fetched; fetched once, never re-read from the ring.
    pub cmd: Option<Command>,
    /// Bytes of the command's work done (rows, for FILL_RECT and BLIT).
    pub done: u64,
    /// CRC32: the checksum of the bytes done.
    pub crc: u32,
    /// ENGINE_DELAY: the command may not run before this.
    pub due: Option<Instant>,
}

impl InFlight {
    pub fn new(ring: usize) -> Self {
        Self {
            ring,
            cmd: None,
            done: 0,
            crc: 0,
            due: None,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct XlateWait {
    pub addr: u64,
    pub write: bool,
    pub ring: usize,
}

/// Everything a partition's registers hold, host settings and window state.
pub(crate) struct PartState {
    // host settings (partition table)
    pub ctrl: PtCtrl,
    pub vram_base: u64,
    pub vram_size: u64,
    pub xlate_root: u64,
    pub xlate_dir_entries: u32,
    pub weight: u32,
    pub inject: InjectKind,
    /// PT DISP_LINK.CONNECTED and the EDID (SPEC 17).
    pub disp_link: bool,
    pub edid: [u8; EDID_BYTES],
    // window state
    pub rings: [Ring; RINGS_PER_PARTITION],
    pub next_ring: usize,
    pub exec: Option<InFlight>,
    /// The ring's HEAD command is a SEM_WAIT that was not ready: taking it
    /// again is a re-poll, not news (no CMD_TAKEN event).
    pub sem_stalled: [bool; RINGS_PER_PARTITION],
    pub hung: bool,
    pub xlate_wait: Option<XlateWait>,
    pub intr_status: u32,
    pub intr_mask: u32,
    pub fault: FaultStatus,
    pub fault_addr: u64,
    pub fault_cmd: u32,
    pub fence_value: u64,
    pub stat_commands: u64,
    pub stat_bytes: u64,
    pub stat_busy_ns: u64,
    pub stat_faults: u32,
    pub access_errors: u32,
    pub scratch: u32,
    /// The display head (SPEC 17).
    pub disp: Display,
}

impl PartState {
    fn new() -> Self {
        Self {
            ctrl: PtCtrl::new(),
            vram_base: 0,
            vram_size: 0,
            xlate_root: 0,
            xlate_dir_entries: 0,
            weight: WEIGHT_RESET,
            inject: InjectKind::None,
            disp_link: false,
            edid: [0; EDID_BYTES],
            rings: [Ring::default(); RINGS_PER_PARTITION],
            next_ring: 0,
            exec: None,
            sem_stalled: [false; RINGS_PER_PARTITION],
            hung: false,
            xlate_wait: None,
            intr_status: 0,
            intr_mask: 0,
            fault: FaultStatus::new(),
            fault_addr: 0,
            fault_cmd: 0,
            fence_value: 0,
            stat_commands: 0,
            stat_bytes: 0,
            stat_busy_ns: 0,
            stat_faults: 0,
            access_errors: 0,
            scratch: 0,
            disp: Display::default(),
        }
    }

    /// Partition reset: window state to reset values, host settings kept.
    fn reset_window(&mut self) {
        let host = (
            self.ctrl,
            self.vram_base,
            self.vram_size,
            self.xlate_root,
            self.xlate_dir_entries,
            self.weight,
            self.inject,
            self.disp_link,
            self.edid,
        );
        *self = Self::new();
        (
            self.ctrl,
            self.vram_base,
            self.vram_size,
            self.xlate_root,
            self.xlate_dir_entries,
            self.weight,
            self.inject,
            self.disp_link,
            self.edid,
        ) = host;
    }

    pub fn state(&self) -> PartitionState {
        if !self.ctrl.enable() {
            PartitionState::Disabled
        } else if self.fault.code() != FaultCode::None {
            PartitionState::Faulted
        } else if self.xlate_wait.is_some() {
            PartitionState::XlateWait
        } else if self.hung || self.exec.is_some() || self.rings.iter().any(Ring::has_work) {
            PartitionState::Busy
        } else {
            PartitionState::Idle
        }
    }

    /// May an engine execute this partition's commands now?
    pub fn runnable(&self) -> bool {
        self.state() == PartitionState::Busy && !self.hung && !self.ctrl.stop()
    }

    pub fn xlate_config(&self) -> XlateConfig {
        XlateConfig {
            enabled: self.ctrl.xlate(),
            root: self.xlate_root,
            dir_entries: self.xlate_dir_entries,
        }
    }

    /// Is a command of `ring` in flight?
    pub fn executing(&self, ring: usize) -> Option<InFlight> {
        self.exec.filter(|f| f.ring == ring)
    }

    /// Record an interrupt cause; returns what to do with its vector
    /// after the mask and the DROP_IRQ / LATE_IRQ injections had their say.
    pub fn event(&mut self, cause: PartIntr, vector_base: u32) -> Option<Delivery> {
        let bits = cause.into_bits();
        self.intr_status |= bits;
        let vector = vector_base.wrapping_add(if cause.fault() {
            PART_VECTOR_FAULT
        } else {
            PART_VECTOR_ENGINE
        });
        let why = if cause.fault() {
            IrqCause::Fault
        } else if cause.fence() {
            IrqCause::Fence
        } else if cause.idle() {
            IrqCause::Idle
        } else {
            IrqCause::Display(bits)
        };
        if bits & self.intr_mask == 0 {
            // A masked FENCE, FAULT, FLIP_DONE or HOTPLUG is news to a
            // driver waiting for its interrupt; a masked IDLE (every drain)
            // or VBLANK (60 a second) would only be noise.
            let noise = why == IrqCause::Idle
                || why == IrqCause::Display(PartIntr::new().with_vblank(true).into_bits());
            return (!noise).then_some(Delivery::Held(vector, why, IrqFate::Masked));
        }
        match self.inject {
            InjectKind::DropIrq => {
                self.inject = InjectKind::None;
                Some(Delivery::Held(vector, why, IrqFate::Dropped))
            }
            InjectKind::LateIrq => {
                self.inject = InjectKind::None;
                Some(Delivery::Late(vector, why))
            }
            _ => Some(Delivery::Now(vector, why)),
        }
    }

    /// Enter FAULTED. Returns the fault-vector delivery.
    pub fn set_fault(
        &mut self,
        code: FaultCode,
        addr: u64,
        ring: usize,
        write: bool,
        vector_base: u32,
    ) -> Option<Delivery> {
        self.fault = FaultStatus::new()
            .with_code(code)
            .with_ring(ring as u8)
            .with_write(write);
        self.fault_addr = addr;
        self.fault_cmd = self.rings[ring].head;
        self.stat_faults = self.stat_faults.wrapping_add(1);
        self.xlate_wait = None;
        // The faulting command is dead; HEAD stays on it.
        self.exec = None;
        self.event(PartIntr::new().with_fault(true), vector_base)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    Now(u32, IrqCause),
    Late(u32, IrqCause),
    /// No message (masked, or dropped by DROP_IRQ): only an event says so.
    Held(u32, IrqCause, IrqFate),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct FaultLogEntry {
    pub partition: usize,
    pub code: FaultCode,
    pub ring: usize,
    pub write: bool,
    pub addr: u64,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct XlateFaultEntry {
    pub partition: usize,
    pub addr: u64,
    pub write: bool,
}

pub(crate) struct Global {
    pub scratch: u32,
    pub intr_status: u32,
    pub intr_mask: u32,
    pub fault_log: VecDeque<FaultLogEntry>,
    pub fault_log_lost: u32,
    pub access_error_count: u32,
    pub access_error_info: AccessErrorInfo,
    pub access_error_offset: u64,
    pub xlate_faults: VecDeque<XlateFaultEntry>,
    /// The context buffer (SPEC 16), CTX_POS and CTX_STATUS.RESULT.
    pub ctx_buf: [u8; CTX_BYTES],
    pub ctx_pos: usize,
    pub ctx_result: CtxResult,
    /// The dirty log DIRTY_WORD reads (SPEC 16) and its next word.
    pub dirty_sel: DirtySel,
    pub dirty_index: u32,
    /// The EDID EDID_DATA accesses (SPEC 17) and the byte it is at.
    pub edid_sel: EdidSel,
    pub edid_pos: usize,
}

impl Global {
    fn new() -> Self {
        Self {
            scratch: 0,
            intr_status: 0,
            intr_mask: 0,
            fault_log: VecDeque::new(),
            fault_log_lost: 0,
            access_error_count: 0,
            access_error_info: AccessErrorInfo::new(),
            access_error_offset: 0,
            xlate_faults: VecDeque::new(),
            ctx_buf: [0; CTX_BYTES],
            ctx_pos: 0,
            ctx_result: CtxResult::Ok,
            dirty_sel: DirtySel::new(),
            dirty_index: 0,
            edid_sel: EdidSel::new(),
            edid_pos: 0,
        }
    }
}

pub(crate) struct Partition {
    pub index: usize,
    /// The PCI function whose requester ID its DMA carries and whose
    /// MSI-X table its vectors are in: VF `index` in SR-IOV mode, else the PF.
    pub function: Function,
    pub st: Mutex<PartState>,
    pub tlb: Mutex<Tlb>,
    /// Set while a reset waits for the engine to let go of the partition.
    pub abort: AtomicBool,
    /// Bumped on every reset: late interrupts of an earlier life are dropped.
    pub generation: AtomicU64,
    /// PT CTRL.DIRTY_LOG is on: the engine records its writes in `dirty`.
    pub dirty_on: AtomicBool,
    pub dirty: Mutex<DirtyLog>,
}

impl Partition {
    /// First vector (engine; fault is +1) in its function's MSI-X table.
    pub fn vector_base(&self) -> u32 {
        match self.function {
            Function::Pf => partition_vector_base(self.index),
            Function::Vf(_) => 0,
        }
    }

    /// Is this partition a VF's (SR-IOV mode)?
    pub fn vf(&self) -> Option<u16> {
        match self.function {
            Function::Vf(n) => Some(n),
            Function::Pf => None,
        }
    }
}

pub(crate) struct Shared {
    pub cfg: DeviceConfig,
    pub vram: Vram,
    pub dma: Arc<dyn Dma>,
    pub irq: Arc<dyn Irq>,
    pub epoch: Instant,
    pub global: Mutex<Global>,
    pub parts: Vec<Partition>,
    /// Serialises partition enable/disable (slice overlap checks) and the
    /// SR-IOV slice notifications that follow them.
    pub config_lock: Mutex<()>,
    /// SR-IOV mode: the size of every VF's VRAM BAR (0 without SR-IOV).
    pub vf_vram_bar: u64,
    /// SR-IOV mode: who follows the VFs' VRAM BAR mappings.
    pub vf_notify: Option<Arc<dyn VfSliceNotify>>,
    /// CPU writes through the VRAM BAR, for the VRAM dirty logs.
    pub cpu_writes: CpuWrites,
    pub sched: Mutex<Sched>,
    pub sched_cv: Condvar,
    pub timer_tx: Mutex<Option<Sender<LateIrq>>>,
    pub inject_delay_us: AtomicU32,
    pub timeslice_us: AtomicU32,
    /// ENGINE_DELAY (SPEC 13): the least time a command takes, and jitter.
    pub engine_delay: AtomicU64,
    /// What ENGINE_DELAY becomes at device reset: ENGINE_DELAY_RESET unless
    /// the VMM set another (`Device::set_engine_delay_reset`).
    pub engine_delay_reset: AtomicU64,
    /// State of the jitter generator (splitmix64 counter), reseeded by
    /// device reset so a run's delays are reproducible.
    pub jitter_state: AtomicU64,
    /// Event subscribers (events.rs).
    pub events: Arc<EventBus>,
    /// The vblank clock's wake-ups (display.rs).
    pub display: Mutex<display::Clock>,
    pub display_cv: Condvar,
}

/// The vGPU device model. Dropping it stops and joins its threads.
pub struct Device {
    pub(crate) shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

type AccessResult<T> = Result<T, Refusal>;

/// A refused access: the code the device records and the reason in words.
fn refuse<T>(code: AccessError, why: Why) -> AccessResult<T> {
    Err(Refusal::new(code, why))
}

impl Device {
    pub fn new(
        cfg: DeviceConfig,
        dma: Arc<dyn Dma>,
        irq: Arc<dyn Irq>,
    ) -> Result<Self, ConfigError> {
        Self::with_vf_slice_notify(cfg, dma, irq, None)
    }

    /// A device whose SR-IOV slice changes are told to `notify` (SPEC 15):
    /// `vf_vram_changed(n)` runs after VF n's VRAM BAR started or stopped
    /// reaching partition n's slice (the partition was enabled or
    /// disabled, or the device reset), synchronously on the thread that
    /// made the change, while the device holds the lock that serialises
    /// slice changes: it may call [`Device::vf_vram_slice`] and nothing
    /// else of the device, and once it returns the caller's write
    /// completes. Without a notifier a VMM must trap the whole VF VRAM BAR
    /// (`vf_read`/`vf_write` serve the slice).
    pub fn with_vf_slice_notify(
        cfg: DeviceConfig,
        dma: Arc<dyn Dma>,
        irq: Arc<dyn Irq>,
        notify: Option<Arc<dyn VfSliceNotify>>,
    ) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let vram = Vram::new(cfg.vram_size_bytes).map_err(ConfigError::Backing)?;
        let parts = (0..cfg.partitions)
            .map(|index| Partition {
                index,
                function: match u16::try_from(index) {
                    Ok(n) if index < cfg.sriov_vfs => Function::Vf(n),
                    _ => Function::Pf,
                },
                st: Mutex::new(PartState::new()),
                tlb: Mutex::new(Tlb::default()),
                abort: AtomicBool::new(false),
                generation: AtomicU64::new(0),
                dirty_on: AtomicBool::new(false),
                dirty: Mutex::new(DirtyLog::default()),
            })
            .collect();
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            cfg,
            vram,
            dma,
            irq,
            epoch: Instant::now(),
            global: Mutex::new(Global::new()),
            parts,
            config_lock: Mutex::new(()),
            vf_vram_bar: cfg.vf_vram_bar_bytes(),
            vf_notify: notify,
            cpu_writes: CpuWrites::new(cfg.vram_size_bytes),
            sched: Mutex::new(Sched::new(cfg.partitions)),
            sched_cv: Condvar::new(),
            timer_tx: Mutex::new(Some(tx)),
            inject_delay_us: AtomicU32::new(INJECT_DELAY_US_RESET),
            timeslice_us: AtomicU32::new(SCHED_TIMESLICE_US_RESET),
            engine_delay: AtomicU64::new(ENGINE_DELAY_RESET),
            engine_delay_reset: AtomicU64::new(ENGINE_DELAY_RESET),
            jitter_state: AtomicU64::new(JITTER_SEED),
            events: Arc::new(EventBus::default()),
            display: Mutex::new(display::Clock::default()),
            display_cv: Condvar::new(),
        });
        let mut threads = Vec::new();
        for e in 0..cfg.engines {
            let s = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("vgpu-engine{e}"))
                    .spawn(move || engine::worker(s))
                    .map_err(ConfigError::Backing)?,
            );
        }
        let s = shared.clone();
        threads.push(
            std::thread::Builder::new()
                .name("vgpu-timer".into())
                .spawn(move || engine::timer(s, rx))
                .map_err(ConfigError::Backing)?,
        );
        let s = shared.clone();
        threads.push(
            std::thread::Builder::new()
                .name("vgpu-display".into())
                .spawn(move || display::clock(s))
                .map_err(ConfigError::Backing)?,
        );
        Ok(Self { shared, threads })
    }

    pub fn config(&self) -> DeviceConfig {
        self.shared.cfg
    }

    pub fn pci_info(&self) -> PciInfo {
        PciInfo::new(self.shared.cfg.vram_size_bytes, self.shared.cfg.partitions)
    }

    pub fn vram(&self) -> &Vram {
        &self.shared.vram
    }

    /// crosvm-style BAR read: `data.len()` is the access size.
    pub fn read_bar(&self, bar: u8, offset: u64, data: &mut [u8]) {
        let v = self.read(bar, offset, data.len() as u32);
        let n = data.len().min(8);
        data[..n].copy_from_slice(&v.to_le_bytes()[..n]);
    }

    pub fn write_bar(&self, bar: u8, offset: u64, data: &[u8]) {
        let mut b = [0u8; 8];
        let n = data.len().min(8);
        b[..n].copy_from_slice(&data[..n]);
        self.write(bar, offset, u64::from_le_bytes(b), data.len() as u32);
    }

    /// Read `size` bytes (1, 2, 4 or 8) at `offset` of `bar`.
    pub fn read(&self, bar: u8, offset: u64, size: u32) -> u64 {
        let all_ones = if size >= 8 {
            u64::MAX
        } else {
            1u64.checked_shl(size.saturating_mul(8))
                .map_or(u64::MAX, |v| v.wrapping_sub(1))
        };
        let r = match bar {
            REG_BAR => self.reg_access(offset, size, None),
            VRAM_BAR => self.vram_access(offset, size, None),
            _ => refuse(AccessError::Unmapped, Why::NoSuchBar(bar)),
        };
        match r {
            Ok(v) => v,
            Err(e) => {
                self.shared
                    .access_error(Function::Pf, bar, offset, size, None, e);
                all_ones
            }
        }
    }

    /// Write `size` bytes (1, 2, 4 or 8) of `value` at `offset` of `bar`.
    pub fn write(&self, bar: u8, offset: u64, value: u64, size: u32) {
        let r = match bar {
            REG_BAR => self.reg_access(offset, size, Some(value)),
            VRAM_BAR => self.vram_access(offset, size, Some(value)),
            _ => refuse(AccessError::Unmapped, Why::NoSuchBar(bar)),
        };
        if let Err(e) = r {
            self.shared
                .access_error(Function::Pf, bar, offset, size, Some(value), e);
        }
    }

    /// Whole-device reset (PCI reset or DEVICE_RESET).
    pub fn reset(&self) {
        self.shared.device_reset();
    }

    /// CPU writes through the VRAM BAR (the PF's or a VF's) reach the
    /// VRAM dirty logs through `log` (SPEC 16); without one the logs hold
    /// the engine's writes only. Set it once, before the host turns a log
    /// on; false if one is set already.
    pub fn set_vram_write_log(&self, log: Arc<dyn VramWriteLog>) -> bool {
        self.shared.cpu_writes.set_host(log)
    }

    /// Set the value `ENGINE_DELAY` has from now on and after every device
    /// reset (SPEC 13): how a VMM makes engines slow from the start, e.g.
    /// QEMU's `engine_delay_us`/`engine_jitter_us` properties. The host can
    /// still write the register.
    pub fn set_engine_delay_reset(&self, value: EngineDelay) {
        let bits = value.into_bits();
        self.shared
            .engine_delay_reset
            .store(bits, Ordering::Relaxed);
        self.shared.engine_delay.store(bits, Ordering::Relaxed);
    }

    /// Receive the device's events (events.rs) until the returned
    /// subscription is dropped. `f` runs synchronously on the thread that
    /// produced the event (a thread calling `read`/`write`, an engine or
    /// the timer thread): it must be quick and thread-safe, and must not
    /// call into the device.
    pub fn subscribe(&self, f: impl Fn(&Event) + Send + Sync + 'static) -> Subscription {
        Subscription::new(&self.shared.events, Arc::new(f))
    }

    /// The subscriber list itself, for the C ABI's id-based subscriptions.
    pub(crate) fn event_bus(&self) -> &Arc<EventBus> {
        &self.shared.events
    }

    fn vram_access(&self, offset: u64, size: u32, value: Option<u64>) -> AccessResult<u64> {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return refuse(AccessError::BadWidth, Why::VramWidth(size));
        }
        let vram = &self.shared.vram;
        let beyond = Why::BeyondVram;
        match value {
            None => {
                let mut b = [0u8; 8];
                if !vram.read(offset, &mut b[..size as usize]) {
                    return refuse(AccessError::Unmapped, beyond);
                }
                Ok(u64::from_le_bytes(b))
            }
            Some(v) => {
                if !vram.write(offset, &v.to_le_bytes()[..size as usize]) {
                    return refuse(AccessError::Unmapped, beyond);
                }
                self.shared.cpu_writes.bar_write(offset, u64::from(size));
                Ok(0)
            }
        }
    }

    /// Validate and dispatch one register-BAR access; `value` is Some for writes.
    fn reg_access(&self, offset: u64, size: u32, value: Option<u64>) -> AccessResult<u64> {
        let r = self.reg_access_checked(offset, size, value);
        // SPEC 2: every rejected access inside an existing window, whatever
        // the reason (width, alignment, hole, read-only), is that tenant's.
        if r.is_err() {
            if let Some((Block::Window, p, _)) = regs::block_of(offset) {
                if p < self.shared.cfg.partitions {
                    let mut st = self.shared.parts[p].st.lock();
                    st.access_errors = st.access_errors.wrapping_add(1);
                }
            }
        }
        r
    }

    pub(crate) fn reg_access_checked(
        &self,
        offset: u64,
        size: u32,
        value: Option<u64>,
    ) -> AccessResult<u64> {
        if size != 4 && size != 8 {
            return refuse(AccessError::BadWidth, Why::RegWidth(size));
        }
        if !offset.is_multiple_of(size as u64) {
            return refuse(AccessError::Misaligned, Why::Misaligned(size));
        }
        let d = regs::decode(offset).ok_or(Refusal::new(AccessError::Unmapped, Why::NoRegister))?;
        if d.reg.block != Block::Global && d.instance >= self.shared.cfg.partitions {
            let partitions = self.shared.cfg.partitions as u8;
            return refuse(AccessError::Unmapped, Why::NoPartition { partitions });
        }
        if size as u64 > d.reg.width as u64 {
            return refuse(AccessError::BadWidth, Why::WideAccessTo32);
        }
        self.reg_access_decoded(&d, size, value)
    }

    fn reg_access_decoded(
        &self,
        d: &regs::Decoded,
        size: u32,
        value: Option<u64>,
    ) -> AccessResult<u64> {
        // The decoder gives byte 0 or 4 (a half of a 64-bit register).
        let shift = d.byte.wrapping_mul(8);
        let half_mask = if size == 8 { u64::MAX } else { 0xffff_ffff };
        match value {
            None => {
                if d.reg.access == Access::Wo {
                    return Ok(0);
                }
                Ok((self.shared.reg_read(d) >> shift) & half_mask)
            }
            Some(v) => {
                if d.reg.access == Access::Ro {
                    return refuse(AccessError::ReadOnly, Why::ReadOnly);
                }
                // Command registers take exact values; RW registers ignore
                // bits outside their writable mask.
                if d.reg.access == Access::Wo && v & !d.reg.writable != 0 {
                    let mask = d.reg.writable as u32;
                    return refuse(AccessError::BadValue, Why::OutsideWritableMask { mask });
                }
                // A half write of a 64-bit register keeps the other half.
                let full = if (size as u64) < d.reg.width as u64 {
                    let old = self.shared.reg_read(d);
                    (old & !(half_mask << shift)) | ((v & half_mask) << shift)
                } else {
                    v
                };
                self.shared.reg_write(d, full & d.reg.writable)
            }
        }
    }

    /// Human-readable state: every readable register decoded, per block.
    pub fn dump(&self) -> String {
        self.shared.dump()
    }

    /// Are all engine and timer threads still running? (A panic on one of
    /// them, which aborts QEMU, ends the thread in an unwinding build.)
    pub fn threads_alive(&self) -> bool {
        self.threads.iter().all(|t| !t.is_finished())
    }

    /// Check the device's internal invariants in one consistent snapshot
    /// (all locks held): enabled slices inside VRAM and pairwise disjoint,
    /// ring indices inside their rings, a command in flight only on a ring
    /// that can hold it. For tests and fuzzing; Err says what broke.
    pub fn check_invariants(&self) -> Result<(), String> {
        let sh = &self.shared;
        let _cfg = sh.config_lock.lock();
        let parts: Vec<_> = sh.parts.iter().map(|p| p.st.lock()).collect();
        let mut slices = Vec::new();
        for (i, st) in parts.iter().enumerate() {
            if st.ctrl.enable() {
                let end = st.vram_base.checked_add(st.vram_size);
                if st.vram_size == 0 || end.is_none_or(|e| e > sh.cfg.vram_size_bytes) {
                    return Err(format!(
                        "partition {i}: enabled slice {:#x}+{:#x} outside VRAM",
                        st.vram_base, st.vram_size
                    ));
                }
                slices.push((i, st.vram_base, end.unwrap_or(u64::MAX)));
            }
            for (r, ring) in st.rings.iter().enumerate() {
                if ring.size != 0 && (ring.head >= ring.size || ring.tail >= ring.size) {
                    return Err(format!("partition {i} ring {r}: index outside the ring"));
                }
            }
            if let Some(f) = st.exec {
                let ring = st.rings.get(f.ring).ok_or("in-flight ring index")?;
                if ring.size == 0 {
                    return Err(format!(
                        "partition {i}: command in flight on ring {}, which is off",
                        f.ring
                    ));
                }
            }
        }
        for (n, &(i, b, e)) in slices.iter().enumerate() {
            for &(j, ob, oe) in slices.iter().skip(n.saturating_add(1)) {
                if b < oe && ob < e {
                    return Err(format!("partitions {i} and {j}: enabled slices overlap"));
                }
            }
        }
        Ok(())
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.shared.sched.lock().shutdown = true;
        self.shared.sched_cv.notify_all();
        self.shared.timer_tx.lock().take();
        self.shared.display.lock().shutdown = true;
        self.shared.display_cv.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Holds a partition away from the engines; dropping it lets them back.
pub(crate) struct Quiesced<'a> {
    shared: &'a Shared,
    p: usize,
}

impl Drop for Quiesced<'_> {
    fn drop(&mut self) {
        let mut s = self.shared.sched.lock();
        let slot = &mut s.slots[self.p];
        slot.quiesce = slot.quiesce.saturating_sub(1);
        if slot.quiesce == 0 {
            self.shared.parts[self.p]
                .abort
                .store(false, Ordering::SeqCst);
        }
        drop(s);
        // Whatever survived the reset (nothing, or work queued since) is
        // picked up again.
        self.shared.kick(self.p);
    }
}

impl Shared {
    /// A head may have turned on: the vblank clock looks again.
    pub fn display_wake(&self) {
        self.display.lock().woken = true;
        self.display_cv.notify_all();
    }

    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// ENGINE_DELAY for the command being taken: MIN_US plus a jitter in
    /// 0..=JITTER_US from a seeded splitmix64 sequence (deterministic per
    /// device and reset, varied per command). None when no delay is set.
    pub fn command_delay(&self) -> Option<Duration> {
        let d = EngineDelay::from_bits(self.engine_delay.load(Ordering::Relaxed));
        if d.into_bits() == 0 {
            return None;
        }
        const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut z = self
            .jitter_state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ z.wrapping_shr(30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ z.wrapping_shr(27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z.wrapping_shr(31);
        let jitter = z
            .checked_rem(u64::from(d.jitter_us()).wrapping_add(1))
            .unwrap_or(0);
        Some(Duration::from_micros(
            u64::from(d.min_us()).wrapping_add(jitter),
        ))
    }

    /// Wait until no engine runs partition `p` and keep engines away.
    pub fn quiesce(&self, p: usize) -> Quiesced<'_> {
        let mut s = self.sched.lock();
        s.slots[p].quiesce = s.slots[p].quiesce.saturating_add(1);
        self.parts[p].abort.store(true, Ordering::SeqCst);
        while s.slots[p].running {
            self.sched_cv.wait(&mut s);
        }
        s.slots[p].queued = false;
        Quiesced { shared: self, p }
    }

    /// Translation change (SPEC 8): stop partition `p`'s in-flight command
    /// at a chunk boundary, drop its TLB, and keep the engines away while
    /// the guard lives. Once this returns, no command can use a translation
    /// made before it; the command resumes by translating afresh.
    pub fn invalidate(&self, p: usize) -> Quiesced<'_> {
        let q = self.quiesce(p);
        self.parts[p].tlb.lock().invalidate();
        q
    }

    /// New work may be available for partition `p`.
    pub fn kick(&self, p: usize) {
        let mut s = self.sched.lock();
        let vclock = s.vclock;
        let slot = &mut s.slots[p];
        if slot.running {
            slot.kicked = true;
        } else if !slot.queued && slot.quiesce == 0 {
            slot.queued = true;
            slot.not_before = None;
            slot.vtime = slot.vtime.max(vclock);
        }
        drop(s);
        self.sched_cv.notify_all();
    }

    /// Tell subscribers what became of partition `p`'s interrupt causes,
    /// then send the messages: every event of one step is out before any
    /// interrupt can wake a driver (traces stay in causal order).
    pub fn deliver_all(&self, p: usize, ds: &[Option<Delivery>]) {
        if self.events.enabled() {
            for d in ds.iter().flatten() {
                let (vector, cause, fate) = match *d {
                    Delivery::Now(v, c) => (v, c, IrqFate::Sent),
                    Delivery::Late(v, c) => (v, c, IrqFate::Late),
                    Delivery::Held(v, c, f) => (v, c, f),
                };
                self.emit(|| EventKind::Irq {
                    vector,
                    partition: Some(p),
                    cause,
                    fate,
                });
            }
        }
        for d in ds {
            self.send(p, *d);
        }
    }

    pub fn deliver(&self, p: usize, d: Option<Delivery>) {
        self.deliver_all(p, &[d]);
    }

    fn send(&self, p: usize, d: Option<Delivery>) {
        match d {
            None | Some(Delivery::Held(..)) => {}
            Some(Delivery::Now(v, _)) => self.irq.notify(self.parts[p].function, v),
            Some(Delivery::Late(v, cause)) => {
                let delay =
                    Duration::from_micros(self.inject_delay_us.load(Ordering::Relaxed) as u64);
                let msg = LateIrq {
                    due: Instant::now()
                        .checked_add(delay)
                        .unwrap_or_else(Instant::now),
                    vector: v,
                    cause,
                    partition: p,
                    generation: self.parts[p].generation.load(Ordering::SeqCst),
                };
                if let Some(tx) = self.timer_tx.lock().as_ref() {
                    let _ = tx.send(msg);
                }
            }
        }
    }

    /// Raise host interrupt causes.
    pub fn host_event(&self, cause: GlobalIntr) {
        let bits = cause.into_bits();
        let mut g = self.global.lock();
        g.intr_status |= bits;
        let fire = bits & g.intr_mask;
        drop(g);
        self.raise_host_vectors(fire);
    }

    /// Events for host causes `bits`, one per host vector they map to.
    fn host_irq_events(&self, bits: u32, fate: IrqFate) {
        let xlate = GlobalIntr::new().with_xlate_fault(true).into_bits();
        for (vector, b) in [
            (HOST_VECTOR_EVENTS, bits & !xlate),
            (HOST_VECTOR_XLATE, bits & xlate),
        ] {
            if b != 0 {
                self.emit(|| EventKind::Irq {
                    vector,
                    partition: None,
                    cause: IrqCause::Host(b),
                    fate,
                });
            }
        }
    }

    fn raise_host_vectors(&self, fire: u32) {
        if self.events.enabled() {
            self.host_irq_events(fire, IrqFate::Sent);
        }
        let xlate = GlobalIntr::new().with_xlate_fault(true).into_bits();
        if fire & !xlate != 0 {
            self.irq.notify(Function::Pf, HOST_VECTOR_EVENTS);
        }
        if fire & xlate != 0 {
            self.irq.notify(Function::Pf, HOST_VECTOR_XLATE);
        }
    }

    /// Deliver an event stamped with the device clock, if anyone listens.
    #[inline]
    pub fn emit(&self, make: impl FnOnce() -> EventKind) {
        self.events.emit(|| self.now_ns(), make);
    }

    /// Partition state before a change, when anyone listens for changes.
    #[inline]
    pub fn watch(&self, st: &PartState) -> Option<PartitionState> {
        self.events.enabled().then(|| st.state())
    }

    /// The state after a change watched with `watch` (None if unwatched).
    #[inline]
    pub fn after(before: Option<PartitionState>, st: &PartState) -> Option<PartitionState> {
        before.map(|_| st.state())
    }

    /// Emit a state change seen by `watch`/`after`, if there was one.
    pub fn state_changed(
        &self,
        p: usize,
        from: Option<PartitionState>,
        to: Option<PartitionState>,
    ) {
        if let (Some(from), Some(to)) = (from, to) {
            if from != to {
                self.emit(|| EventKind::State {
                    partition: p,
                    from,
                    to,
                });
            }
        }
    }

    pub fn log_fault(&self, e: FaultLogEntry) {
        let mut g = self.global.lock();
        let mut cause = GlobalIntr::new().with_partition_fault(true);
        if g.fault_log.len() >= FAULT_LOG_DEPTH {
            g.fault_log_lost = g.fault_log_lost.wrapping_add(1);
            cause.set_fault_log_overflow(true);
        } else {
            g.fault_log.push_back(e);
        }
        drop(g);
        self.host_event(cause);
    }

    pub fn push_xlate_fault(&self, e: XlateFaultEntry) {
        self.global.lock().xlate_faults.push_back(e);
        self.host_event(GlobalIntr::new().with_xlate_fault(true));
    }

    /// Record a refused access to BAR `bar` of `function` (`value` is Some
    /// for writes) and tell subscribers why, before the host's
    /// ACCESS_ERROR interrupt.
    pub(crate) fn access_error(
        &self,
        function: Function,
        bar: u8,
        offset: u64,
        size: u32,
        value: Option<u64>,
        r: Refusal,
    ) {
        let write = value.is_some();
        let e = r.code;
        self.emit(|| EventKind::Rejected {
            function,
            bar,
            offset,
            size,
            write,
            value: value.unwrap_or(0),
            code: e,
            why: r.why.to_string(),
        });
        let mut g = self.global.lock();
        g.access_error_count = g.access_error_count.wrapping_add(1);
        g.access_error_info = AccessErrorInfo::new()
            .with_size(size.min(15) as u8)
            .with_write(write)
            .with_reason(e)
            .with_bar(bar.min(7))
            .with_function(function.id().min(0x7f) as u8);
        g.access_error_offset = offset;
        drop(g);
        self.host_event(GlobalIntr::new().with_access_error(true));
    }

    /// Partition reset: quiesce, window state to reset values, TLB dropped.
    pub fn reset_partition(&self, p: usize) {
        let _q = self.quiesce(p);
        self.reset_partition_quiesced(p, None);
    }

    /// Partition reset of a quiesced partition; `ctrl`: a new CTRL to set
    /// in the same step (disabling).
    fn reset_partition_quiesced(&self, p: usize, ctrl: Option<PtCtrl>) {
        let part = &self.parts[p];
        part.generation.fetch_add(1, Ordering::SeqCst);
        let mut st = part.st.lock();
        let before = self.watch(&st);
        let ended = st.exec.filter(|_| before.is_some());
        let head = ended.map_or(0, |f| st.rings[f.ring].head);
        st.reset_window();
        if let Some(c) = ctrl {
            st.ctrl = c;
        }
        let after = Self::after(before, &st);
        drop(st);
        part.tlb.lock().invalidate();
        self.global.lock().xlate_faults.retain(|e| e.partition != p);
        self.emit(|| EventKind::PartitionReset { partition: p });
        if let Some(f) = ended {
            self.emit(|| EventKind::CmdAborted {
                partition: p,
                ring: f.ring,
                index: head,
                opcode: f.cmd.map(|c| c.opcode),
            });
        }
        self.state_changed(p, before, after);
    }

    pub fn device_reset(&self) {
        let guards: Vec<_> = (0..self.parts.len()).map(|p| self.quiesce(p)).collect();
        // After the quiesce (an enable holding config_lock may be waiting
        // for one): no enable runs until the VFs' BARs let go of the slices.
        let cfg = self.config_lock.lock();
        self.emit(|| EventKind::DeviceReset);
        let mut unmapped = Vec::new();
        for part in &self.parts {
            part.generation.fetch_add(1, Ordering::SeqCst);
            let mut st = part.st.lock();
            let before = self.watch(&st);
            if st.ctrl.enable() {
                unmapped.push(part.index);
            }
            *st = PartState::new();
            let after = Self::after(before, &st);
            drop(st);
            part.tlb.lock().invalidate();
            part.dirty_on.store(false, Ordering::SeqCst);
            part.dirty.lock().stop();
            self.state_changed(part.index, before, after);
        }
        // Before the scrub: no VF reaches VRAM any more when it is zeroed.
        for p in unmapped {
            self.notify_vf_slice(p);
        }
        drop(cfg);
        *self.global.lock() = Global::new();
        self.inject_delay_us
            .store(INJECT_DELAY_US_RESET, Ordering::Relaxed);
        self.timeslice_us
            .store(SCHED_TIMESLICE_US_RESET, Ordering::Relaxed);
        self.engine_delay.store(
            self.engine_delay_reset.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.jitter_state.store(JITTER_SEED, Ordering::Relaxed);
        self.vram.scrub(0, self.vram.size());
        {
            let mut s = self.sched.lock();
            s.vclock = 0;
            for slot in &mut s.slots {
                slot.vtime = 0;
            }
        }
        drop(guards);
    }

    fn caps(&self) -> Caps {
        Caps::new()
            .with_partitions(self.cfg.partitions as u8)
            .with_engines(self.cfg.engines as u8)
            .with_rings_per_partition(RINGS_PER_PARTITION as u8)
            .with_vectors_per_partition(VECTORS_PER_PARTITION as u8)
            .with_host_vectors(HOST_VECTORS as u8)
            .with_xlate_replay(true)
            .with_fault_inject(true)
    }

    /// Full value of a register (no side effects).
    pub fn reg_read(&self, d: &regs::Decoded) -> u64 {
        let version = VERSION_WORD as u64;
        match d.reg.block {
            Block::Global => {
                if d.reg.id == RegId::FaultedPartitions {
                    return self
                        .parts
                        .iter()
                        .filter(|p| p.st.lock().state() == PartitionState::Faulted)
                        .fold(0u64, |acc, p| acc | 1 << p.index);
                }
                let mut g = self.global.lock();
                match d.reg.id {
                    RegId::CtxData => {
                        // A read moves CTX_POS on (SPEC 16).
                        let at = g.ctx_pos.min(CTX_BYTES.saturating_sub(4));
                        let mut w = [0u8; 4];
                        w.copy_from_slice(&g.ctx_buf[at..at.saturating_add(4)]);
                        g.ctx_pos = at.saturating_add(4) % CTX_BYTES;
                        return u32::from_le_bytes(w) as u64;
                    }
                    RegId::DirtyWord | RegId::DirtyCount => {
                        let sel = g.dirty_sel;
                        let part = self.parts.get(sel.partition() as usize);
                        let Some(part) = part else { return 0 };
                        let mut log = part.dirty.lock();
                        if d.reg.id == RegId::DirtyCount {
                            if sel.log() == DirtyKind::Vram {
                                log.fold_cpu_writes(&self.cpu_writes, 0, u64::MAX);
                            }
                            return log.count(sel.log()) as u64;
                        }
                        if sel.log() == DirtyKind::Vram {
                            // Only this word's pages: a log is read a word at a time.
                            let at = u64::from(g.dirty_index).saturating_mul(DIRTY_WORD_SPAN);
                            log.fold_cpu_writes(&self.cpu_writes, at, DIRTY_WORD_SPAN);
                        }
                        let w = log.take(sel.log(), g.dirty_index);
                        g.dirty_index = g.dirty_index.wrapping_add(1);
                        return w as u64;
                    }
                    RegId::EdidData => {
                        // A read moves the EDID position on (SPEC 17).
                        let at = g.edid_pos.min(EDID_BYTES.saturating_sub(4));
                        g.edid_pos = at.saturating_add(4) % EDID_BYTES;
                        let Some(part) = self.parts.get(g.edid_sel.partition() as usize) else {
                            return 0;
                        };
                        drop(g);
                        let st = part.st.lock();
                        let mut w = [0u8; 4];
                        w.copy_from_slice(&st.edid[at..at.saturating_add(4)]);
                        return u32::from_le_bytes(w) as u64;
                    }
                    RegId::EdidSel => return g.edid_sel.into_bits() as u64,
                    RegId::DirtySel => return g.dirty_sel.into_bits() as u64,
                    RegId::DirtyIndex => return g.dirty_index as u64,
                    RegId::DirtyOverflow => {
                        return self
                            .parts
                            .iter()
                            .filter(|p| p.dirty.lock().overflow)
                            .fold(0u64, |acc, p| acc | 1 << p.index)
                    }
                    RegId::CtxSize => return CTX_BYTES as u64,
                    RegId::CtxPos => return g.ctx_pos as u64,
                    RegId::CtxStatus => {
                        return CtxStatus::new().with_result(g.ctx_result).into_bits() as u64
                    }
                    _ => {}
                }
                match d.reg.id {
                    RegId::Id => DEVICE_MAGIC as u64,
                    RegId::Version => version,
                    RegId::Caps => self.caps().into_bits() as u64,
                    RegId::PartitionStride => WINDOW_STRIDE,
                    RegId::VramSize => self.cfg.vram_size_bytes,
                    RegId::PartitionBase => WINDOW_BASE,
                    RegId::Scratch => g.scratch as u64,
                    RegId::IntrStatus => g.intr_status as u64,
                    RegId::IntrMask => g.intr_mask as u64,
                    RegId::Timestamp => self.now_ns(),
                    RegId::FaultLogCount => g.fault_log.len() as u64,
                    RegId::FaultLogInfo => g.fault_log.front().map_or(0, |e| {
                        FaultLogInfo::new()
                            .with_partition(e.partition as u8)
                            .with_code(e.code)
                            .with_ring(e.ring as u8)
                            .with_write(e.write)
                            .with_valid(true)
                            .into_bits() as u64
                    }),
                    RegId::FaultLogAddr => g.fault_log.front().map_or(0, |e| e.addr),
                    RegId::FaultLogLost => g.fault_log_lost as u64,
                    RegId::AccessErrorCount => g.access_error_count as u64,
                    RegId::AccessErrorInfo => g.access_error_info.into_bits() as u64,
                    RegId::AccessErrorOffset => g.access_error_offset,
                    RegId::XlateFaultCount => g.xlate_faults.len() as u64,
                    RegId::XlateFaultInfo => g.xlate_faults.front().map_or(0, |e| {
                        XlateFaultInfo::new()
                            .with_partition(e.partition as u8)
                            .with_write(e.write)
                            .with_valid(true)
                            .into_bits() as u64
                    }),
                    RegId::XlateFaultAddr => g.xlate_faults.front().map_or(0, |e| e.addr),
                    RegId::InjectDelayUs => self.inject_delay_us.load(Ordering::Relaxed) as u64,
                    RegId::SchedTimesliceUs => {
                        self.timeslice_us.load(Ordering::Relaxed).max(1) as u64
                    }
                    RegId::EngineDelay => self.engine_delay.load(Ordering::Relaxed),
                    _ => 0, // write-only registers
                }
            }
            Block::PartitionTable => {
                let part = &self.parts[d.instance];
                let st = part.st.lock();
                match d.reg.id {
                    RegId::PtCtrl => st.ctrl.into_bits() as u64,
                    RegId::PtState => PtState::new()
                        .with_state(st.state())
                        .with_inject(st.inject)
                        .into_bits() as u64,
                    RegId::PtVramBase => st.vram_base,
                    RegId::PtVramSize => st.vram_size,
                    RegId::PtXlateRoot => st.xlate_root,
                    RegId::PtXlateDirEntries => st.xlate_dir_entries as u64,
                    RegId::PtWeight => st.weight as u64,
                    RegId::PtMsixBase => part.vector_base() as u64,
                    RegId::PtInject => st.inject.into_bits() as u64,
                    RegId::PtDispLink => {
                        DispLink::new().with_connected(st.disp_link).into_bits() as u64
                    }
                    _ => 0,
                }
            }
            Block::Window => {
                let st = self.parts[d.instance].st.lock();
                let ring = &st.rings[d.elem.min(RINGS_PER_PARTITION - 1)];
                match d.reg.id {
                    RegId::WId => WINDOW_MAGIC as u64,
                    RegId::WVersion => version,
                    RegId::WCaps => PartCaps::new()
                        .with_rings(RINGS_PER_PARTITION as u8)
                        .with_vectors(VECTORS_PER_PARTITION as u8)
                        .with_xlate(st.ctrl.xlate())
                        .with_display(true)
                        .into_bits() as u64,
                    RegId::WOpcodes => OPCODES_SUPPORTED as u64,
                    RegId::WVramSize => st.vram_size,
                    RegId::WStatus => PartStatus::new().with_state(st.state()).into_bits() as u64,
                    RegId::WIndex => d.instance as u64,
                    RegId::WIntrStatus => st.intr_status as u64,
                    RegId::WIntrMask => st.intr_mask as u64,
                    RegId::WFaultStatus => st.fault.into_bits() as u64,
                    RegId::WFaultAddr => st.fault_addr,
                    RegId::WFaultCmd => st.fault_cmd as u64,
                    RegId::WFenceValue => st.fence_value,
                    RegId::WTimestamp => self.now_ns(),
                    RegId::WStatCommands => st.stat_commands,
                    RegId::WStatBytes => st.stat_bytes,
                    RegId::WStatBusyNs => st.stat_busy_ns,
                    RegId::WStatFaults => st.stat_faults as u64,
                    RegId::WAccessErrors => st.access_errors as u64,
                    RegId::WScratch => st.scratch as u64,
                    RegId::WRingBase => ring.base,
                    RegId::WRingSize => ring.size as u64,
                    RegId::WRingCtrl => RingCtrl::new().with_sysmem(ring.sysmem).into_bits() as u64,
                    RegId::WRingHead => ring.head as u64,
                    RegId::WRingTail => ring.tail as u64,
                    RegId::WDispCtrl => DispCtrl::new()
                        .with_enable(st.disp.pending.enable)
                        .into_bits() as u64,
                    RegId::WDispFormat => st.disp.pending.format as u64,
                    RegId::WDispMode => st.disp.pending.mode.into_bits() as u64,
                    RegId::WDispStride => st.disp.pending.stride as u64,
                    RegId::WDispBase => st.disp.pending.base,
                    RegId::WDispStatus => DispStatus::new()
                        .with_active(st.disp.active.enable)
                        .with_flip_pending(st.disp.flip_pending)
                        .with_connected(st.disp_link)
                        .into_bits() as u64,
                    RegId::WDispActiveBase => st.disp.active.base,
                    RegId::WDispActiveMode => st.disp.active.mode.into_bits() as u64,
                    RegId::WDispActiveStride => st.disp.active.stride as u64,
                    RegId::WDispActiveFormat => st.disp.active.format as u64,
                    RegId::WDispVblankCount => st.disp.vblank_count,
                    RegId::WDispVblankNs => DISP_VBLANK_NS as u64,
                    RegId::WDispMaxMode => DISP_MAX_MODE as u64,
                    RegId::WDispEdid => {
                        let at = d.elem.min(EDID_BYTES / 4 - 1).saturating_mul(4);
                        let mut w = [0u8; 4];
                        w.copy_from_slice(&st.edid[at..at.saturating_add(4)]);
                        u32::from_le_bytes(w) as u64
                    }
                    _ => 0,
                }
            }
        }
    }

    /// Write a full (masked) register value.
    pub fn reg_write(&self, d: &regs::Decoded, v: u64) -> AccessResult<u64> {
        match d.reg.block {
            Block::Global => self.global_write(d.reg.id, v),
            Block::PartitionTable => self.ptable_write(d.instance, d.reg.id, v),
            Block::Window => self.window_write(d.instance, d.reg.id, d.elem, v),
        }
        .map(|()| 0)
    }

    fn global_write(&self, id: RegId, v: u64) -> AccessResult<()> {
        let v32 = v as u32;
        match id {
            RegId::Scratch => self.global.lock().scratch = v32,
            RegId::IntrStatus => self.global.lock().intr_status &= !v32,
            RegId::IntrMask => {
                let mut g = self.global.lock();
                let newly = v32 & !g.intr_mask & g.intr_status;
                g.intr_mask = v32;
                drop(g);
                self.raise_host_vectors(newly);
            }
            RegId::DeviceReset => {
                if v32 != 1 {
                    return refuse(AccessError::BadValue, Why::WriteOne);
                }
                self.device_reset();
            }
            RegId::FaultLogPop => {
                self.global.lock().fault_log.pop_front();
            }
            RegId::XlateFaultPop => {
                self.global.lock().xlate_faults.pop_front();
            }
            RegId::XlateResume => {
                let r = XlateResume::from_bits(v32);
                let p = r.partition() as usize;
                if p >= self.parts.len() {
                    let partitions = self.parts.len() as u8;
                    return refuse(AccessError::BadValue, Why::NoPartition { partitions });
                }
                self.xlate_resume(p, r.action())?;
            }
            RegId::InjectDelayUs => self.inject_delay_us.store(v32, Ordering::Relaxed),
            RegId::SchedTimesliceUs => self.timeslice_us.store(v32, Ordering::Relaxed),
            RegId::EngineDelay => self.engine_delay.store(v, Ordering::Relaxed),
            RegId::CtxCmd => {
                let c = CtxCmd::from_bits(v32);
                let p = c.partition() as usize;
                if p >= self.parts.len() {
                    let partitions = self.parts.len() as u8;
                    return refuse(AccessError::BadValue, Why::NoPartition { partitions });
                }
                let result = match c.op() {
                    CtxOp::Save => self.ctx_save(p),
                    CtxOp::Restore => self.ctx_restore(p),
                    _ => return refuse(AccessError::BadValue, Why::UnknownCtxOp),
                };
                let mut g = self.global.lock();
                g.ctx_result = result;
                g.ctx_pos = 0;
            }
            RegId::DirtySel => {
                let sel = DirtySel::from_bits(v32);
                if sel.partition() as usize >= self.parts.len() {
                    let partitions = self.parts.len() as u8;
                    return refuse(AccessError::BadValue, Why::NoPartition { partitions });
                }
                let mut g = self.global.lock();
                g.dirty_sel = sel;
                g.dirty_index = 0;
            }
            RegId::DirtyIndex => self.global.lock().dirty_index = v32,
            RegId::DirtyOverflow => {
                for part in self.parts.iter().filter(|p| v & 1 << p.index != 0) {
                    part.dirty.lock().overflow = false;
                }
            }
            RegId::CtxPos => {
                let at = v32 as usize;
                if at >= CTX_BYTES || !at.is_multiple_of(4) {
                    return refuse(AccessError::BadValue, Why::CtxPosRange);
                }
                self.global.lock().ctx_pos = at;
            }
            RegId::EdidSel => {
                let sel = EdidSel::from_bits(v32);
                if sel.partition() as usize >= self.parts.len() {
                    let partitions = self.parts.len() as u8;
                    return refuse(AccessError::BadValue, Why::NoPartition { partitions });
                }
                let mut g = self.global.lock();
                g.edid_sel = sel;
                g.edid_pos = 0;
            }
            RegId::EdidData => {
                let mut g = self.global.lock();
                let at = g.edid_pos.min(EDID_BYTES.saturating_sub(4));
                g.edid_pos = at.saturating_add(4) % EDID_BYTES;
                let p = g.edid_sel.partition() as usize;
                drop(g);
                if let Some(part) = self.parts.get(p) {
                    part.st.lock().edid[at..at.saturating_add(4)]
                        .copy_from_slice(&v32.to_le_bytes());
                }
            }
            RegId::CtxData => {
                let mut g = self.global.lock();
                let at = g.ctx_pos.min(CTX_BYTES.saturating_sub(4));
                g.ctx_buf[at..at.saturating_add(4)].copy_from_slice(&v32.to_le_bytes());
                g.ctx_pos = at.saturating_add(4) % CTX_BYTES;
            }
            _ => return refuse(AccessError::ReadOnly, Why::ReadOnly),
        }
        Ok(())
    }

    /// CTX_CMD SAVE (SPEC 16): a stopped partition's window state into
    /// the context buffer. Nothing runs it (the STOP write waited for the
    /// engines, and they take none of its work while STOP is set).
    fn ctx_save(&self, p: usize) -> CtxResult {
        let st = self.parts[p].st.lock();
        if !(st.ctrl.enable() && st.ctrl.stop()) {
            return CtxResult::NotStopped;
        }
        let image = Context::capture(&st, Instant::now()).encode();
        drop(st);
        self.global.lock().ctx_buf = image;
        CtxResult::Ok
    }

    /// CTX_CMD RESTORE (SPEC 16): the context buffer into stopped partition
    /// `p`, whose own window state ends as at a partition reset. Checked
    /// whole before anything changes; a replayable translation wait comes
    /// back as a new entry in the host's translation-fault log.
    fn ctx_restore(&self, p: usize) -> CtxResult {
        let image = self.global.lock().ctx_buf;
        let ctx = match Context::decode(&image) {
            Ok(c) => c,
            Err(r) => return r,
        };
        let part = &self.parts[p];
        let q = self.quiesce(p);
        let mut st = part.st.lock();
        if !(st.ctrl.enable() && st.ctrl.stop()) {
            return CtxResult::NotStopped;
        }
        if ctx.vram_size != st.vram_size {
            return CtxResult::SliceMismatch;
        }
        // A command waiting for the host's translation needs a host that
        // translates and replays.
        if ctx.xlate_wait.is_some() && !(st.ctrl.xlate() && st.ctrl.xlate_replay()) {
            return CtxResult::BadState;
        }
        part.generation.fetch_add(1, Ordering::SeqCst);
        let before = self.watch(&st);
        st.reset_window();
        ctx.apply(&mut st, Instant::now());
        let after = Self::after(before, &st);
        drop(st);
        part.tlb.lock().invalidate();
        self.global.lock().xlate_faults.retain(|e| e.partition != p);
        self.state_changed(p, before, after);
        if let Some(w) = ctx.xlate_wait {
            self.push_xlate_fault(XlateFaultEntry {
                partition: p,
                addr: w.addr,
                write: w.write,
            });
        }
        drop(q);
        CtxResult::Ok
    }

    fn xlate_resume(&self, p: usize, action: ResumeAction) -> AccessResult<()> {
        let part = &self.parts[p];
        let not_waiting = Refusal::new(
            AccessError::BadValue,
            Why::NotWaiting { partition: p as u8 },
        );
        if matches!(action, ResumeAction::Unknown(_)) {
            return refuse(AccessError::BadValue, Why::UnknownAction);
        }
        if part.st.lock().xlate_wait.is_none() {
            return Err(not_waiting);
        }
        // Drop the partition's queued entries before the engine can run
        // again: after a RETRY the replay may miss on the next page at once
        // and queue a new entry, which must survive (else the partition
        // waits forever for a fault the host never sees).
        self.global.lock().xlate_faults.retain(|e| e.partition != p);
        let mut st = part.st.lock();
        // A reset may have ended the wait meanwhile.
        let wait = st.xlate_wait.ok_or(not_waiting)?;
        let before = self.watch(&st);
        match action {
            ResumeAction::Retry => {
                st.xlate_wait = None;
                let after = Self::after(before, &st);
                drop(st);
                self.emit(|| EventKind::XlateResolved {
                    partition: p,
                    action,
                });
                self.state_changed(p, before, after);
                self.kick(p);
            }
            ResumeAction::Cancel => {
                let opcode = st.exec.and_then(|f| f.cmd).map(|c| c.opcode);
                let d = st.set_fault(
                    FaultCode::XlateCancelled,
                    wait.addr,
                    wait.ring,
                    wait.write,
                    part.vector_base(),
                );
                let index = st.fault_cmd;
                let after = Self::after(before, &st);
                drop(st);
                self.emit(|| EventKind::XlateResolved {
                    partition: p,
                    action,
                });
                self.emit(|| EventKind::CmdFault {
                    partition: p,
                    ring: wait.ring,
                    index,
                    opcode,
                    code: FaultCode::XlateCancelled,
                    addr: wait.addr,
                    write: wait.write,
                });
                self.state_changed(p, before, after);
                self.deliver(p, d);
                self.log_fault(FaultLogEntry {
                    partition: p,
                    code: FaultCode::XlateCancelled,
                    ring: wait.ring,
                    write: wait.write,
                    addr: wait.addr,
                });
            }
            _ => unreachable!("action checked above"),
        }
        Ok(())
    }

    fn ptable_write(&self, p: usize, id: RegId, v: u64) -> AccessResult<()> {
        let part = &self.parts[p];
        match id {
            RegId::PtCtrl => {
                let r = self.ptable_ctrl(p, PtCtrl::from_bits(v as u32));
                // Enabling, STOP and its end start or stop the head's vblanks.
                self.display_wake();
                return r;
            }
            RegId::PtVramBase | RegId::PtVramSize => {
                // Under config_lock: an enable checks the slice and sets
                // ENABLE in one step that this write cannot split.
                let _cfg = self.config_lock.lock();
                let mut st = part.st.lock();
                if st.ctrl.enable() {
                    return refuse(AccessError::BadValue, Why::SliceWhileEnabled);
                }
                if id == RegId::PtVramBase {
                    st.vram_base = v;
                } else {
                    st.vram_size = v;
                }
            }
            RegId::PtXlateRoot => {
                let _q = self.invalidate(p);
                part.st.lock().xlate_root = v;
            }
            RegId::PtXlateDirEntries => {
                let n = u32::try_from(v)
                    .ok()
                    .filter(|&n| n <= MAX_DIR_ENTRIES)
                    .ok_or(Refusal::new(
                        AccessError::BadValue,
                        Why::DirEntries {
                            max: MAX_DIR_ENTRIES,
                        },
                    ))?;
                let _q = self.invalidate(p);
                part.st.lock().xlate_dir_entries = n;
            }
            RegId::PtWeight => {
                if v == 0 {
                    return refuse(AccessError::BadValue, Why::WeightZero);
                }
                // The writable mask keeps WEIGHT to 8 bits.
                part.st.lock().weight = u32::try_from(v).unwrap_or(u32::MAX);
            }
            RegId::PtReset => {
                if v != 1 {
                    return refuse(AccessError::BadValue, Why::WriteOne);
                }
                self.reset_partition(p);
            }
            RegId::PtScrub => {
                let st = part.st.lock();
                if v != 1 {
                    return refuse(AccessError::BadValue, Why::WriteOne);
                }
                if st.ctrl.enable() {
                    return refuse(AccessError::BadValue, Why::ScrubWhileEnabled);
                }
                let (base, size) = (st.vram_base, st.vram_size);
                drop(st);
                if !self.vram.scrub(base, size) {
                    return refuse(AccessError::BadValue, Why::SliceBeyondVram);
                }
            }
            RegId::PtXlateInvalidate => drop(self.invalidate(p)),
            RegId::PtInject => {
                let kind = u8::try_from(v)
                    .ok()
                    .and_then(InjectKind::known)
                    .ok_or(Refusal::new(AccessError::BadValue, Why::UnknownInjection))?;
                part.st.lock().inject = kind;
            }
            RegId::PtDispLink => {
                let mut st = part.st.lock();
                st.disp_link = DispLink::from_bits(v as u32).connected();
                let d = st.event(PartIntr::new().with_hotplug(true), part.vector_base());
                drop(st);
                self.deliver(p, d);
            }
            _ => return refuse(AccessError::ReadOnly, Why::ReadOnly),
        }
        Ok(())
    }

    /// CTRL: the enable check and the enable are one step under
    /// `config_lock` and the partition's lock, so no concurrent write of
    /// this slice (VRAM_BASE/SIZE take `config_lock`) or enable of another
    /// partition can slip between them.
    ///
    /// SR-IOV mode (SPEC 15): a VF's partition takes no translation (its
    /// DMA goes through the platform IOMMU) and no slice bigger than the
    /// VF's VRAM BAR; enabling or disabling it tells the VF slice notifier,
    /// still under `config_lock`.
    fn ptable_ctrl(&self, p: usize, new: PtCtrl) -> AccessResult<()> {
        if new.dirty_log() && !new.enable() {
            return refuse(AccessError::BadValue, Why::DirtyLogWithoutEnable);
        }
        self.ptable_ctrl_inner(p, new)?;
        // The dirty logs follow CTRL: started empty when DIRTY_LOG turns
        // on, dropped when it (or ENABLE) goes off.
        let part = &self.parts[p];
        let st = part.st.lock();
        let on = st.ctrl.enable() && st.ctrl.dirty_log();
        if on != part.dirty_on.load(Ordering::SeqCst) {
            let mut log = part.dirty.lock();
            if on {
                log.start(st.vram_base, st.vram_size, &self.cpu_writes);
            } else {
                log.stop();
            }
            part.dirty_on.store(on, Ordering::SeqCst);
        }
        Ok(())
    }

    fn ptable_ctrl_inner(&self, p: usize, new: PtCtrl) -> AccessResult<()> {
        let _cfg = self.config_lock.lock();
        let part = &self.parts[p];
        if let Some(vf) = part.vf() {
            if new.xlate() || new.xlate_replay() {
                return refuse(AccessError::BadValue, Why::XlateOnVf { vf });
            }
        }
        if new.stop() && !new.enable() {
            return refuse(AccessError::BadValue, Why::StopWithoutEnable);
        }
        let mut st = part.st.lock();
        let was_enabled = st.ctrl.enable();
        if was_enabled && new.enable() && new.stop() != st.ctrl.stop() {
            // STOP (SPEC 16): engines leave at a chunk boundary, progress
            // kept, and take nothing until it is cleared.
            drop(st);
            let q = if new.stop() {
                Some(self.invalidate(p))
            } else {
                None
            };
            let mut st = part.st.lock();
            let before = self.watch(&st);
            if st.ctrl.xlate() != new.xlate() {
                part.tlb.lock().invalidate();
            }
            st.ctrl = new;
            let after = Self::after(before, &st);
            drop(st);
            drop(q);
            self.state_changed(p, before, after);
            self.kick(p);
            return Ok(());
        }
        if was_enabled && !new.enable() {
            drop(st);
            let q = self.quiesce(p);
            self.reset_partition_quiesced(p, Some(new));
            drop(q);
            self.notify_vf_slice(p);
            return Ok(());
        }
        if new.enable() && !was_enabled {
            let (base, size) = (st.vram_base, st.vram_size);
            let beyond = Refusal::new(AccessError::BadValue, Why::SliceBeyondVram);
            let end = base.checked_add(size).ok_or(beyond)?;
            if size == 0 {
                return refuse(AccessError::BadValue, Why::EmptySlice);
            }
            if end > self.cfg.vram_size_bytes {
                return Err(beyond);
            }
            if let Some(vf) = part.vf() {
                if size > self.vf_vram_bar {
                    return refuse(AccessError::BadValue, Why::SliceBeyondVfBar { vf });
                }
            }
            // Other partitions' locks are taken while holding ours only
            // here, under config_lock, so two enables cannot deadlock.
            let overlap = self.parts.iter().filter(|o| o.index != p).find(|o| {
                let o = o.st.lock();
                o.ctrl.enable()
                    && o.vram_base < end
                    && o.vram_base
                        .checked_add(o.vram_size)
                        .is_none_or(|e| base < e)
            });
            if let Some(o) = overlap {
                let other = o.index as u8;
                return refuse(AccessError::BadValue, Why::SliceOverlaps { other });
            }
        }
        if was_enabled && st.ctrl.xlate() != new.xlate() {
            // Switching translation on or off is a change of translation:
            // wait for the in-flight command like XLATE_INVALIDATE does.
            drop(st);
            let _q = self.invalidate(p);
            part.st.lock().ctrl = new;
            return Ok(());
        }
        if st.ctrl.xlate() != new.xlate() {
            part.tlb.lock().invalidate();
        }
        let before = self.watch(&st);
        st.ctrl = new;
        let after = Self::after(before, &st);
        drop(st);
        self.state_changed(p, before, after);
        if new.enable() && !was_enabled {
            self.notify_vf_slice(p);
        }
        Ok(())
    }

    /// Tell the VF slice notifier that partition `p`'s slice mapping
    /// changed, if `p` is a VF's. The caller holds `config_lock` and no
    /// partition lock (the notifier may read the slice back).
    fn notify_vf_slice(&self, p: usize) {
        if let (Some(vf), Some(n)) = (self.parts[p].vf(), &self.vf_notify) {
            n.vf_vram_changed(vf);
        }
    }

    fn window_write(&self, p: usize, id: RegId, elem: usize, v: u64) -> AccessResult<()> {
        let part = &self.parts[p];
        let v32 = v as u32;
        match id {
            RegId::WIntrStatus => part.st.lock().intr_status &= !v32,
            RegId::WIntrMask => {
                let mut st = part.st.lock();
                let newly = v32 & !st.intr_mask & st.intr_status;
                st.intr_mask = v32;
                drop(st);
                let newly = PartIntr::from_bits(newly);
                let vb = part.vector_base();
                let fault = newly.fault().then_some(Delivery::Now(
                    vb.wrapping_add(PART_VECTOR_FAULT),
                    IrqCause::Fault,
                ));
                let display = newly.into_bits()
                    & (PartIntr::new()
                        .with_vblank(true)
                        .with_flip_done(true)
                        .with_hotplug(true)
                        .into_bits());
                let engine = (newly.fence() || newly.idle() || display != 0).then(|| {
                    let cause = if newly.fence() {
                        IrqCause::Fence
                    } else if newly.idle() {
                        IrqCause::Idle
                    } else {
                        IrqCause::Display(display)
                    };
                    Delivery::Now(vb.wrapping_add(PART_VECTOR_ENGINE), cause)
                });
                self.deliver_all(p, &[fault, engine]);
            }
            RegId::WReset => {
                if v32 != 1 {
                    return refuse(AccessError::BadValue, Why::WriteOne);
                }
                self.reset_partition(p);
            }
            RegId::WScratch => part.st.lock().scratch = v32,
            RegId::WRingBase | RegId::WRingSize | RegId::WRingCtrl => {
                let mut st = part.st.lock();
                if st.executing(elem).is_some() {
                    return refuse(AccessError::Busy, Why::RingInFlight { ring: elem as u8 });
                }
                let ring = &mut st.rings[elem];
                if ring.has_work() {
                    let (head, tail) = (ring.head, ring.tail);
                    let why = Why::RingHoldsWork {
                        ring: elem as u8,
                        head,
                        tail,
                    };
                    return refuse(AccessError::BadValue, why);
                }
                match id {
                    RegId::WRingBase => ring.base = v,
                    RegId::WRingSize => {
                        if v32 != 0 && (!v32.is_power_of_two() || v32 > MAX_RING_SIZE) {
                            return refuse(AccessError::BadValue, Why::RingSize);
                        }
                        ring.size = v32;
                    }
                    _ => ring.sysmem = RingCtrl::from_bits(v32).sysmem(),
                }
                if id != RegId::WRingCtrl {
                    ring.head = 0;
                    ring.tail = 0;
                }
            }
            RegId::WDoorbell => {
                let mut st = part.st.lock();
                if !st.ctrl.enable() {
                    return refuse(
                        AccessError::Disabled,
                        Why::PartitionDisabled { partition: p as u8 },
                    );
                }
                // TAIL may move either way (a driver may withdraw commands
                // no engine has taken), but never onto the command in
                // flight: that would un-submit a command that is running.
                if st.executing(elem).is_some() && st.rings[elem].head == v32 {
                    let head = v32;
                    return refuse(
                        AccessError::Busy,
                        Why::TailOntoInFlight {
                            ring: elem as u8,
                            head,
                        },
                    );
                }
                let before = self.watch(&st);
                let ring = &mut st.rings[elem];
                if v32 >= ring.size {
                    let why = if ring.size == 0 {
                        Why::RingOff { ring: elem as u8 }
                    } else {
                        Why::TailBeyondRing {
                            ring: elem as u8,
                            tail: v32,
                            size: ring.size,
                        }
                    };
                    return refuse(AccessError::BadValue, why);
                }
                ring.tail = v32;
                let after = Self::after(before, &st);
                drop(st);
                // Before the kick: the engine's events come after this one.
                self.state_changed(p, before, after);
                self.kick(p);
            }
            RegId::WDispCtrl => {
                part.st.lock().disp.pending.enable = DispCtrl::from_bits(v32).enable()
            }
            RegId::WDispFormat => part.st.lock().disp.pending.format = v32,
            RegId::WDispMode => part.st.lock().disp.pending.mode = DispMode::from_bits(v32),
            RegId::WDispStride => part.st.lock().disp.pending.stride = v32,
            RegId::WDispBase => part.st.lock().disp.pending.base = v,
            RegId::WDispCommit => {
                let mut st = part.st.lock();
                if st.disp.pending.enable && !st.ctrl.enable() {
                    return refuse(
                        AccessError::Disabled,
                        Why::PartitionDisabled { partition: p as u8 },
                    );
                }
                let vram_size = st.vram_size;
                let causes = st
                    .disp
                    .commit(vram_size)
                    .map_err(|why| Refusal::new(AccessError::BadValue, why))?;
                let d = st.event(causes, part.vector_base());
                let on = st.disp.active.enable;
                drop(st);
                self.deliver(p, d);
                if on {
                    self.display_wake();
                }
            }
            _ => return refuse(AccessError::ReadOnly, Why::ReadOnly),
        }
        Ok(())
    }

    fn dump(&self) -> String {
        let mut out = String::new();
        let c = &self.cfg;
        let _ = write!(
            out,
            "vgpu: vram {} MiB, {} partitions, {} engines",
            c.vram_size_bytes >> 20,
            c.partitions,
            c.engines
        );
        if c.sriov_vfs > 0 {
            let _ = write!(
                out,
                ", SR-IOV: {} VFs, VF VRAM BAR {} KiB",
                c.sriov_vfs,
                self.vf_vram_bar >> 10
            );
        }
        out.push('\n');
        let block = |out: &mut String, block: Block, instance: usize| {
            for r in REGISTERS.iter().filter(|r| r.block == block) {
                // (CTX_DATA and DIRTY_WORD: reads have effects; a dump leaves them.)
                // (DISP_EDID: 256 bytes of data, not a register state.)
                if r.access == Access::Wo
                    || matches!(
                        r.id,
                        RegId::CtxData | RegId::DirtyWord | RegId::EdidData | RegId::WDispEdid
                    )
                {
                    continue;
                }
                for elem in 0..r.count as usize {
                    let d = regs::Decoded {
                        reg: r,
                        instance,
                        elem,
                        byte: 0,
                    };
                    let v = self.reg_read(&d);
                    let _ = write!(out, "  {:<28} {:#018x}", d.name(), v);
                    if !r.fields.is_empty() {
                        let _ = write!(out, "  {}", regs::format_fields(r, v));
                    }
                    out.push('\n');
                }
            }
        };
        out.push_str("global:\n");
        block(&mut out, Block::Global, 0);
        for p in 0..c.partitions {
            let enabled = self.parts[p].st.lock().ctrl.enable();
            let _ = writeln!(out, "partition {p}:");
            block(&mut out, Block::PartitionTable, p);
            if enabled {
                block(&mut out, Block::Window, p);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeMemory, RecordingIrq};

    /// 16 MiB, one partition, one engine.
    fn small_device() -> Device {
        let cfg = DeviceConfig {
            vram_size_bytes: 16 << 20,
            partitions: 1,
            engines: 1,
            ..DeviceConfig::default()
        };
        Device::new(
            cfg,
            Arc::new(FakeMemory::new(4096)),
            Arc::new(RecordingIrq::default()),
        )
        .unwrap()
    }

    /// ENGINE_DELAY's jitter: within MIN_US..=MIN_US+JITTER_US, varied
    /// from command to command, and the same sequence after a device reset.
    #[test]
    fn engine_delay_jitter_is_bounded_varied_and_reproducible() {
        let dev = small_device();
        let delay = EngineDelay::new().with_min_us(100).with_jitter_us(50);
        let offset = regs::offset_of(RegId::EngineDelay, 0, 0);
        let draw = |dev: &Device| -> Vec<Duration> {
            dev.write(REG_BAR, offset, delay.into_bits(), 8);
            (0..32).filter_map(|_| dev.shared.command_delay()).collect()
        };
        assert_eq!(dev.shared.command_delay(), None, "reset value: no delay");
        let first = draw(&dev);
        assert_eq!(first.len(), 32);
        assert!(first.iter().all(|d| (100..=150).contains(&d.as_micros())));
        let distinct: std::collections::HashSet<_> = first.iter().collect();
        assert!(distinct.len() > 8, "{first:?}");
        dev.reset();
        assert_eq!(draw(&dev), first);
    }

    /// A VMM-set ENGINE_DELAY holds from creation and comes back at every
    /// device reset; the host can still change it until then.
    #[test]
    fn a_vmm_engine_delay_is_the_reset_value() {
        let dev = small_device();
        let offset = regs::offset_of(RegId::EngineDelay, 0, 0);
        let delay = EngineDelay::new().with_min_us(2000).with_jitter_us(0);
        dev.set_engine_delay_reset(delay);
        assert_eq!(dev.read(REG_BAR, offset, 8), delay.into_bits());
        assert_eq!(
            dev.shared.command_delay(),
            Some(Duration::from_micros(2000))
        );
        dev.write(REG_BAR, offset, 0, 8);
        assert_eq!(dev.shared.command_delay(), None);
        dev.reset();
        assert_eq!(dev.read(REG_BAR, offset, 8), delay.into_bits());
    }
}
