//! Fakes for tests and benchmarks: system memory as a byte vector and an
//! interrupt sink that records vectors and lets a test wait for one.

use crate::{Dma, DmaError, Irq};
use parking_lot::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// System memory at bus addresses `0..size`; anything beyond fails.
pub struct FakeMemory {
    bytes: Mutex<Vec<u8>>,
}

impl FakeMemory {
    pub fn new(size: usize) -> Self {
        Self {
            bytes: Mutex::new(vec![0; size]),
        }
    }

    pub fn size(&self) -> u64 {
        self.bytes.lock().len() as u64
    }

    pub fn write_bytes(&self, addr: u64, data: &[u8]) {
        let mut b = self.bytes.lock();
        b[addr as usize..addr as usize + data.len()].copy_from_slice(data);
    }

    pub fn read_bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        self.bytes.lock()[addr as usize..addr as usize + len].to_vec()
    }

    pub fn write_u64(&self, addr: u64, v: u64) {
        self.write_bytes(addr, &v.to_le_bytes());
    }

    pub fn read_u64(&self, addr: u64) -> u64 {
        u64::from_le_bytes(self.read_bytes(addr, 8).try_into().unwrap())
    }

    /// A copy of all of memory (for isolation checks).
    pub fn snapshot(&self) -> Vec<u8> {
        self.bytes.lock().clone()
    }
}

impl Dma for FakeMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let b = self.bytes.lock();
        let end = addr.checked_add(buf.len() as u64).ok_or(DmaError)?;
        if end > b.len() as u64 {
            return Err(DmaError);
        }
        buf.copy_from_slice(&b[addr as usize..end as usize]);
        Ok(())
    }

    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), DmaError> {
        let mut b = self.bytes.lock();
        let end = addr.checked_add(buf.len() as u64).ok_or(DmaError)?;
        if end > b.len() as u64 {
            return Err(DmaError);
        }
        b[addr as usize..end as usize].copy_from_slice(buf);
        Ok(())
    }
}

/// Records every MSI-X vector raised, in order.
#[derive(Default)]
pub struct RecordingIrq {
    log: Mutex<Vec<u32>>,
    cv: Condvar,
}

impl RecordingIrq {
    pub fn vectors(&self) -> Vec<u32> {
        self.log.lock().clone()
    }

    pub fn count(&self, vector: u32) -> usize {
        self.log.lock().iter().filter(|&&v| v == vector).count()
    }

    pub fn clear(&self) {
        self.log.lock().clear();
    }

    /// Wait until `vector` has been raised at least `n` times.
    pub fn wait_for(&self, vector: u32, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut log = self.log.lock();
        loop {
            if log.iter().filter(|&&v| v == vector).count() >= n {
                return true;
            }
            if self.cv.wait_until(&mut log, deadline).timed_out() {
                return log.iter().filter(|&&v| v == vector).count() >= n;
            }
        }
    }
}

impl Irq for RecordingIrq {
    fn notify(&self, vector: u32) {
        self.log.lock().push(vector);
        self.cv.notify_all();
    }
}

// ---------------------------------------------------------------------------
// A minimal host driver for tests, benches and fuzzing
// ---------------------------------------------------------------------------

use crate::command::{Command, COMMAND_BYTES};
use crate::regs::{self, PartitionState, PtCtrl, RegId, XlatePde, XlatePte, REG_BAR};
use crate::xlate::{PAGE_SIZE, PTES_PER_TABLE};
use crate::{Device, DeviceConfig};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
struct RingInfo {
    /// Absolute VRAM offset (VRAM rings) or bus address (system-memory rings).
    mem: u64,
    sysmem: bool,
    size: u32,
    tail: u32,
}

/// Drives a [`Device`] the way a bare-metal driver would, through register
/// reads and writes only, and can record every access decoded by name.
pub struct Harness {
    pub dev: Device,
    pub mem: Arc<FakeMemory>,
    pub irq: Arc<RecordingIrq>,
    rings: Mutex<HashMap<(usize, usize), RingInfo>>,
    trace: Mutex<Option<Vec<String>>>,
}

impl Harness {
    pub fn new(cfg: DeviceConfig, sysmem_bytes: usize) -> Self {
        let mem = Arc::new(FakeMemory::new(sysmem_bytes));
        let irq = Arc::new(RecordingIrq::default());
        let dev = Device::new(cfg, mem.clone(), irq.clone()).expect("valid config");
        Self {
            dev,
            mem,
            irq,
            rings: Mutex::new(HashMap::new()),
            trace: Mutex::new(None),
        }
    }

    /// Start recording decoded register accesses.
    pub fn start_trace(&self) {
        *self.trace.lock() = Some(Vec::new());
    }

    pub fn take_trace(&self) -> Vec<String> {
        self.trace.lock().take().unwrap_or_default()
    }

    fn record(&self, line: impl FnOnce() -> String) {
        if let Some(t) = self.trace.lock().as_mut() {
            t.push(line());
        }
    }

    pub fn read_off(&self, offset: u64, size: u32) -> u64 {
        let v = self.dev.read(REG_BAR, offset, size);
        self.record(|| regs::format_access(offset, size, v, false));
        v
    }

    pub fn write_off(&self, offset: u64, value: u64, size: u32) {
        self.record(|| regs::format_access(offset, size, value, true));
        self.dev.write(REG_BAR, offset, value, size);
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

    pub fn state(&self, p: usize) -> u8 {
        regs::PartStatus::from_bits(self.reg(RegId::WStatus, p, 0) as u32).state()
    }

    /// Program a VRAM slice and enable partition `p`.
    pub fn enable(&self, p: usize, vram_base: u64, vram_size: u64, ctrl: PtCtrl) {
        self.set(RegId::PtVramBase, p, 0, vram_base);
        self.set(RegId::PtVramSize, p, 0, vram_size);
        self.set(
            RegId::PtCtrl,
            p,
            0,
            ctrl.with_enable(true).into_bits() as u64,
        );
        assert_eq!(
            self.state(p),
            PartitionState::Idle as u8,
            "partition {p} did not enable"
        );
    }

    /// Put ring `ring` of partition `p` at VRAM offset `offset` of its slice.
    pub fn ring_in_vram(&self, p: usize, ring: usize, offset: u64, entries: u32) {
        let base = self.reg(RegId::PtVramBase, p, 0);
        self.set(RegId::WRingCtrl, p, ring, 0);
        self.set(RegId::WRingBase, p, ring, offset);
        self.set(RegId::WRingSize, p, ring, entries as u64);
        self.rings.lock().insert(
            (p, ring),
            RingInfo {
                mem: base + offset,
                sysmem: false,
                size: entries,
                tail: 0,
            },
        );
    }

    /// Put ring `ring` in system memory at partition address `addr`, which
    /// the test maps to bus address `bus` (identical when untranslated).
    pub fn ring_in_sysmem(&self, p: usize, ring: usize, addr: u64, bus: u64, entries: u32) {
        self.set(RegId::WRingCtrl, p, ring, 1);
        self.set(RegId::WRingBase, p, ring, addr);
        self.set(RegId::WRingSize, p, ring, entries as u64);
        self.rings.lock().insert(
            (p, ring),
            RingInfo {
                mem: bus,
                sysmem: true,
                size: entries,
                tail: 0,
            },
        );
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
                self.mem.write_bytes(at, c);
            } else {
                assert!(self.dev.vram().write(at, c));
            }
            r.tail = (r.tail + 1) % r.size;
        }
        let tail = r.tail;
        drop(rings);
        self.set(RegId::WDoorbell, p, ring, tail as u64);
    }

    /// Forget the harness's ring bookkeeping after a partition reset.
    pub fn forget_rings(&self, p: usize) {
        self.rings.lock().retain(|k, _| k.0 != p);
    }

    /// Poll STATUS until the partition leaves BUSY; returns the state.
    pub fn wait_not_busy(&self, p: usize, timeout: Duration) -> u8 {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.state(p);
            if s != PartitionState::Busy as u8 || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Build a translation table in system memory: directory at `dir`,
    /// page tables allocated from `tables` upward; `maps` = (partition
    /// address, bus address, writable), page aligned. Returns the number of
    /// directory entries to program.
    pub fn build_xlate(&self, dir: u64, tables: u64, maps: &[(u64, u64, bool)]) -> u32 {
        let mut next_table = tables;
        let mut pts: HashMap<u64, u64> = HashMap::new();
        let mut dir_entries = 0u32;
        for &(addr, bus, writable) in maps {
            let vpn = addr / PAGE_SIZE;
            let di = vpn / PTES_PER_TABLE;
            let pt = *pts.entry(di).or_insert_with(|| {
                let t = next_table;
                next_table += PAGE_SIZE;
                self.mem.write_bytes(t, &[0u8; PAGE_SIZE as usize]);
                self.mem.write_u64(
                    dir + di * 8,
                    XlatePde::new()
                        .with_valid(true)
                        .with_pfn(t / PAGE_SIZE)
                        .into_bits(),
                );
                t
            });
            let pte = XlatePte::new()
                .with_valid(true)
                .with_writable(writable)
                .with_pfn(bus / PAGE_SIZE);
            self.mem
                .write_u64(pt + (vpn % PTES_PER_TABLE) * 8, pte.into_bits());
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
