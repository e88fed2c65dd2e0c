//! A minimal host driver for the physical GPU, generic over how it reaches
//! the hardware: the model directly (tests, benches, fuzzing) or a real
//! device's mapped BARs (guest-tests in L1). Register names come from the
//! register table; it can record every access decoded by name, with the
//! device's events (when the hardware can report them) interleaved.

use crate::command::{Command, COMMAND_BYTES};
use crate::events::{Event, EventKind, Subscription};
use crate::regs::{self, PartitionState, PtCtrl, RegId, XlatePde, XlatePte};
use crate::xlate::{PAGE_SIZE, PTES_PER_TABLE};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a driver touches the GPU and system memory.
pub trait Hardware {
    fn reg_read(&self, offset: u64, size: u32) -> u64;
    fn reg_write(&self, offset: u64, value: u64, size: u32);
    /// Access VRAM at an absolute offset (through the VRAM BAR).
    fn vram_write(&self, offset: u64, data: &[u8]);
    fn vram_read(&self, offset: u64, buf: &mut [u8]);
    /// Access system memory at a bus address the device can reach.
    fn sys_write(&self, bus: u64, data: &[u8]);
    fn sys_read(&self, bus: u64, buf: &mut [u8]);
    /// Where partition `p`'s VRAM starts in what `vram_write` addresses.
    /// None: read the host's partition table. A tenant that sees only its
    /// own window and slice (a vGPU) returns Some(0).
    fn partition_vram_base(&self, _p: usize) -> Option<u64> {
        None
    }
    /// Deliver the device's events to `f` until the subscription drops;
    /// None when this hardware cannot report them (a real device's BARs).
    fn subscribe_events(&self, _f: Box<dyn Fn(&Event) + Send + Sync>) -> Option<Subscription> {
        None
    }
}

thread_local! {
    /// The refusal of the access this thread is making, if the device
    /// refused it: events are delivered on the accessing thread, during
    /// the access, so the trace can annotate the access's own line.
    static REJECTION: RefCell<Option<String>> = const { RefCell::new(None) };
}

#[derive(Clone, Copy, Debug)]
struct RingInfo {
    /// Absolute VRAM offset (VRAM rings) or bus address (system-memory rings).
    mem: u64,
    sysmem: bool,
    size: u32,
    tail: u32,
}

pub struct Driver<H: Hardware> {
    pub hw: H,
    rings: Mutex<HashMap<(usize, usize), RingInfo>>,
    trace: Arc<Mutex<Option<Vec<String>>>>,
    events: Mutex<Option<Subscription>>,
}

impl<H: Hardware> Driver<H> {
    pub fn new(hw: H) -> Self {
        Self {
            hw,
            rings: Mutex::new(HashMap::new()),
            trace: Arc::new(Mutex::new(None)),
            events: Mutex::new(None),
        }
    }

    /// Start recording decoded register accesses and, interleaved in the
    /// order they happen, the device's events (`dev ...` lines; a refused
    /// access gets `REJECTED CODE (why)` appended to its own line).
    pub fn start_trace(&self) {
        *self.trace.lock() = Some(Vec::new());
        let trace = self.trace.clone();
        let sub = self.hw.subscribe_events(Box::new(move |e: &Event| {
            if let EventKind::Rejected { .. } = e.kind {
                REJECTION.with(|r| *r.borrow_mut() = e.kind.rejection());
            } else if let Some(t) = trace.lock().as_mut() {
                t.push(format!("dev {}", e.kind));
            }
        }));
        *self.events.lock() = sub;
    }

    /// The trace so far, still recording.
    pub fn peek_trace(&self) -> Vec<String> {
        self.trace.lock().clone().unwrap_or_default()
    }

    pub fn take_trace(&self) -> Vec<String> {
        self.events.lock().take();
        self.trace.lock().take().unwrap_or_default()
    }

    /// Append a line; returns its index while tracing.
    fn record(&self, line: impl FnOnce() -> String) -> Option<usize> {
        let mut t = self.trace.lock();
        let t = t.as_mut()?;
        t.push(line());
        Some(t.len().saturating_sub(1))
    }

    /// Append the device's refusal of the access just made, if any, to
    /// trace line `at`.
    fn annotate(&self, at: Option<usize>) {
        let Some(r) = REJECTION.with(|r| r.borrow_mut().take()) else {
            return;
        };
        let mut t = self.trace.lock();
        if let Some(line) = at.and_then(|i| t.as_mut()?.get_mut(i)) {
            line.push_str("  ");
            line.push_str(&r);
        }
    }

    pub fn read_off(&self, offset: u64, size: u32) -> u64 {
        REJECTION.with(|r| r.borrow_mut().take());
        let v = self.hw.reg_read(offset, size);
        let at = self.record(|| regs::format_access(offset, size, v, false));
        self.annotate(at);
        v
    }

    pub fn write_off(&self, offset: u64, value: u64, size: u32) {
        REJECTION.with(|r| r.borrow_mut().take());
        // The line goes in first: the engine's events for this write
        // (a doorbell's commands) follow it.
        let at = self.record(|| regs::format_access(offset, size, value, true));
        self.hw.reg_write(offset, value, size);
        self.annotate(at);
    }

    /// Read a register at its natural width.
    pub fn reg(&self, id: RegId, instance: usize, elem: usize) -> u64 {
        let w = regs::register(id).width as u32;
        self.read_off(regs::offset_of(id, instance, elem), w)
    }

    pub fn set(&self, id: RegId, instance: usize, elem: usize, value: u64) {
        let w = regs::register(id).width as u32;
        self.write_off(regs::offset_of(id, instance, elem), value, w);
    }

    pub fn state(&self, p: usize) -> PartitionState {
        regs::PartStatus::from_bits(self.reg(RegId::WStatus, p, 0) as u32).state()
    }

    /// Program a VRAM slice and enable partition `p`; false if refused.
    pub fn try_enable(&self, p: usize, vram_base: u64, vram_size: u64, ctrl: PtCtrl) -> bool {
        self.set(RegId::PtVramBase, p, 0, vram_base);
        self.set(RegId::PtVramSize, p, 0, vram_size);
        self.set(
            RegId::PtCtrl,
            p,
            0,
            ctrl.with_enable(true).into_bits() as u64,
        );
        self.state(p) == PartitionState::Idle
    }

    /// As `try_enable`, panicking when the device refuses.
    pub fn enable(&self, p: usize, vram_base: u64, vram_size: u64, ctrl: PtCtrl) {
        assert!(
            self.try_enable(p, vram_base, vram_size, ctrl),
            "partition {p} did not enable"
        );
    }

    /// Put ring `ring` of partition `p` at VRAM offset `offset` of its slice.
    pub fn ring_in_vram(&self, p: usize, ring: usize, offset: u64, entries: u32) {
        let base = match self.hw.partition_vram_base(p) {
            Some(b) => b,
            None => self.reg(RegId::PtVramBase, p, 0),
        };
        self.set(RegId::WRingCtrl, p, ring, 0);
        self.set(RegId::WRingBase, p, ring, offset);
        self.set(RegId::WRingSize, p, ring, entries as u64);
        let info = RingInfo {
            mem: base + offset,
            sysmem: false,
            size: entries,
            tail: 0,
        };
        self.rings.lock().insert((p, ring), info);
    }

    /// Put ring `ring` in system memory at partition address `addr`, which
    /// the caller maps to bus address `bus` (identical when untranslated).
    pub fn ring_in_sysmem(&self, p: usize, ring: usize, addr: u64, bus: u64, entries: u32) {
        self.set(RegId::WRingCtrl, p, ring, 1);
        self.set(RegId::WRingBase, p, ring, addr);
        self.set(RegId::WRingSize, p, ring, entries as u64);
        let info = RingInfo {
            mem: bus,
            sysmem: true,
            size: entries,
            tail: 0,
        };
        self.rings.lock().insert((p, ring), info);
    }

    /// Write commands at the ring's tail and ring the doorbell once.
    pub fn submit(&self, p: usize, ring: usize, cmds: &[Command]) {
        let raw: Vec<[u8; COMMAND_BYTES]> = cmds.iter().map(Command::encode).collect();
        self.submit_raw(p, ring, &raw);
    }

    /// As `submit`, with raw (possibly garbage) command bytes.
    pub fn submit_raw(&self, p: usize, ring: usize, cmds: &[[u8; COMMAND_BYTES]]) {
        let mut rings = self.rings.lock();
        let r = rings.get_mut(&(p, ring)).expect("ring set up");
        for c in cmds {
            let at = r.mem + r.tail as u64 * COMMAND_BYTES as u64;
            if r.sysmem {
                self.hw.sys_write(at, c);
            } else {
                self.hw.vram_write(at, c);
            }
            r.tail = (r.tail + 1) % r.size;
        }
        let tail = r.tail;
        drop(rings);
        self.set(RegId::WDoorbell, p, ring, tail as u64);
    }

    /// Forget the ring bookkeeping of partition `p` (after a reset).
    pub fn forget_rings(&self, p: usize) {
        self.rings.lock().retain(|k, _| k.0 != p);
    }

    /// Poll STATUS until the partition leaves BUSY; returns the state.
    pub fn wait_not_busy(&self, p: usize, timeout: Duration) -> PartitionState {
        self.wait_while(p, timeout, |s| s == PartitionState::Busy)
    }

    /// Like `wait_not_busy`, but also waits out XLATE_WAIT: the host's fault
    /// service decides between RETRY (back to BUSY) and CANCEL (FAULTED).
    pub fn wait_settled(&self, p: usize, timeout: Duration) -> PartitionState {
        self.wait_while(p, timeout, |s| {
            s == PartitionState::Busy || s == PartitionState::XlateWait
        })
    }

    fn wait_while(
        &self,
        p: usize,
        timeout: Duration,
        moving: impl Fn(PartitionState) -> bool,
    ) -> PartitionState {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.state(p);
            if !moving(s) || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Build a translation table in system memory: directory at bus address
    /// `dir`, page tables taken from `tables` (bus addresses of free pages,
    /// in order); `maps` = (partition address, bus address, writable), page
    /// aligned. Returns the number of directory entries to program.
    pub fn build_xlate(&self, dir: u64, tables: &[u64], maps: &[(u64, u64, bool)]) -> u32 {
        let mut free = tables.iter();
        let mut pts: HashMap<u64, u64> = HashMap::new();
        let mut dir_entries = 0u32;
        for &(addr, bus, writable) in maps {
            let vpn = addr / PAGE_SIZE;
            let di = vpn / PTES_PER_TABLE;
            let pt = *pts.entry(di).or_insert_with(|| {
                let t = *free.next().expect("enough page-table pages");
                self.hw.sys_write(t, &[0u8; PAGE_SIZE as usize]);
                let pde = XlatePde::new().with_valid(true).with_pfn(t / PAGE_SIZE);
                self.hw
                    .sys_write(dir + di * 8, &pde.into_bits().to_le_bytes());
                t
            });
            let pte = XlatePte::new()
                .with_valid(true)
                .with_writable(writable)
                .with_pfn(bus / PAGE_SIZE);
            let at = pt + (vpn % PTES_PER_TABLE) * 8;
            self.hw.sys_write(at, &pte.into_bits().to_le_bytes());
            dir_entries = dir_entries.max(di as u32 + 1);
        }
        dir_entries
    }

    /// Program partition `p` to translate through the table at `dir`.
    pub fn set_xlate(&self, p: usize, dir: u64, dir_entries: u32) {
        self.set(RegId::PtXlateRoot, p, 0, dir);
        self.set(RegId::PtXlateDirEntries, p, 0, dir_entries as u64);
    }
}
