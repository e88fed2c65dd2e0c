//! Fakes for tests and benchmarks: system memory as a byte vector, an
//! IOMMU in front of it that keeps each function to its own ranges, and an
//! interrupt sink that records vectors and lets a test wait for one.

use crate::{Dma, DmaError, Function, Irq};
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Every function sees the same memory (no IOMMU).
impl Dma for FakeMemory {
    fn read(&self, _func: Function, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let b = self.bytes.lock();
        let end = addr.checked_add(buf.len() as u64).ok_or(DmaError)?;
        if end > b.len() as u64 {
            return Err(DmaError);
        }
        buf.copy_from_slice(&b[addr as usize..end as usize]);
        Ok(())
    }

    fn write(&self, _func: Function, addr: u64, buf: &[u8]) -> Result<(), DmaError> {
        let mut b = self.bytes.lock();
        let end = addr.checked_add(buf.len() as u64).ok_or(DmaError)?;
        if end > b.len() as u64 {
            return Err(DmaError);
        }
        b[addr as usize..end as usize].copy_from_slice(buf);
        Ok(())
    }
}

/// One device access to system memory, as [`IommuMemory`] saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaAccess {
    pub func: Function,
    pub write: bool,
    pub addr: u64,
    pub len: u64,
    /// The IOMMU let it through.
    pub allowed: bool,
}

/// An IOMMU in front of a [`FakeMemory`], identity-mapping: a function
/// given ranges with [`IommuMemory::map`] reaches only those (anything
/// else is a failed transaction, as a platform IOMMU refusing an IOVA the
/// VMM never mapped); a function with no ranges reaches all memory. Every
/// access is logged with its function.
pub struct IommuMemory {
    pub mem: Arc<FakeMemory>,
    domains: Mutex<Vec<(Function, std::ops::Range<u64>)>>,
    log: Mutex<Vec<DmaAccess>>,
}

impl IommuMemory {
    pub fn new(mem: Arc<FakeMemory>) -> Self {
        Self {
            mem,
            domains: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
        }
    }

    /// Let `func` reach `range` (and, once it has a range, nothing else).
    pub fn map(&self, func: Function, range: std::ops::Range<u64>) {
        self.domains.lock().push((func, range));
    }

    pub fn log(&self) -> Vec<DmaAccess> {
        self.log.lock().clone()
    }

    fn check(&self, func: Function, write: bool, addr: u64, len: u64) -> Result<(), DmaError> {
        let domains = self.domains.lock();
        let mut own = domains.iter().filter(|(f, _)| *f == func).peekable();
        let allowed = own.peek().is_none()
            || own.any(|(_, r)| {
                addr.checked_add(len)
                    .is_some_and(|end| r.start <= addr && end <= r.end)
            });
        drop(domains);
        self.log.lock().push(DmaAccess {
            func,
            write,
            addr,
            len,
            allowed,
        });
        allowed.then_some(()).ok_or(DmaError)
    }
}

impl Dma for IommuMemory {
    fn read(&self, func: Function, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        self.check(func, false, addr, buf.len() as u64)?;
        self.mem.read(func, addr, buf)
    }

    fn write(&self, func: Function, addr: u64, buf: &[u8]) -> Result<(), DmaError> {
        self.check(func, true, addr, buf.len() as u64)?;
        self.mem.write(func, addr, buf)
    }
}

/// Records every MSI-X message sent, in order, with its function. The
/// plain accessors (`vectors`, `count`, `wait_for`) are about the PF's
/// vectors; the `_of` ones take the function.
#[derive(Default)]
pub struct RecordingIrq {
    log: Mutex<Vec<(Function, u32)>>,
    cv: Condvar,
}

impl RecordingIrq {
    /// The PF's vectors, in the order they were raised.
    pub fn vectors(&self) -> Vec<u32> {
        self.vectors_of(Function::Pf)
    }

    pub fn vectors_of(&self, func: Function) -> Vec<u32> {
        let log = self.log.lock();
        log.iter().filter(|m| m.0 == func).map(|m| m.1).collect()
    }

    pub fn count(&self, vector: u32) -> usize {
        self.count_of(Function::Pf, vector)
    }

    pub fn count_of(&self, func: Function, vector: u32) -> usize {
        let log = self.log.lock();
        log.iter().filter(|&&m| m == (func, vector)).count()
    }

    pub fn clear(&self) {
        self.log.lock().clear();
    }

    /// Wait until the PF's `vector` has been raised at least `n` times.
    pub fn wait_for(&self, vector: u32, n: usize, timeout: Duration) -> bool {
        self.wait_for_of(Function::Pf, vector, n, timeout)
    }

    /// Wait until `func`'s `vector` has been raised at least `n` times.
    pub fn wait_for_of(&self, func: Function, vector: u32, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut log = self.log.lock();
        let seen =
            |log: &Vec<(Function, u32)>| log.iter().filter(|&&m| m == (func, vector)).count();
        loop {
            if seen(&log) >= n {
                return true;
            }
            if self.cv.wait_until(&mut log, deadline).timed_out() {
                return seen(&log) >= n;
            }
        }
    }
}

impl Irq for RecordingIrq {
    fn notify(&self, func: Function, vector: u32) {
        self.log.lock().push((func, vector));
        self.cv.notify_all();
    }
}

/// xorshift64*: enough randomness for seeded tests, no dependency,
/// replayable from a seed (the state must not be 0: `new` makes sure).
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform-ish in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    pub fn coin(&mut self) -> bool {
        self.below(2) == 0
    }
    pub fn pattern(&mut self) -> u32 {
        self.next() as u32
    }
}

/// System memory whose device writes can be held: after `hold_from(n)`,
/// the device's n-th write (counting from 0) and every later one wait in
/// the engine until `release()`. Tests use it to catch a command mid-flight
/// deterministically.
pub struct GatedMemory {
    pub mem: Arc<FakeMemory>,
    writes: AtomicU64,
    hold_from: AtomicU64,
    held: Mutex<u32>,
    cv: Condvar,
}

impl GatedMemory {
    pub fn new(mem: Arc<FakeMemory>) -> Self {
        Self {
            mem,
            writes: AtomicU64::new(0),
            hold_from: AtomicU64::new(u64::MAX),
            held: Mutex::new(0),
            cv: Condvar::new(),
        }
    }

    pub fn hold_from(&self, n: u64) {
        self.writes.store(0, Ordering::SeqCst);
        self.hold_from.store(n, Ordering::SeqCst);
    }

    /// Wait until an engine is held in a write; false on timeout.
    pub fn wait_held(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut held = self.held.lock();
        while *held == 0 {
            if self.cv.wait_until(&mut held, deadline).timed_out() {
                return *held != 0;
            }
        }
        true
    }

    /// Let held and later writes through.
    pub fn release(&self) {
        self.hold_from.store(u64::MAX, Ordering::SeqCst);
        let _held = self.held.lock();
        self.cv.notify_all();
    }
}

impl Dma for GatedMemory {
    fn read(&self, func: Function, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        self.mem.read(func, addr, buf)
    }

    fn write(&self, func: Function, addr: u64, buf: &[u8]) -> Result<(), DmaError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst);
        if n >= self.hold_from.load(Ordering::SeqCst) {
            let mut held = self.held.lock();
            *held += 1;
            self.cv.notify_all();
            while n >= self.hold_from.load(Ordering::SeqCst) {
                self.cv.wait(&mut held);
            }
            *held -= 1;
        }
        self.mem.write(func, addr, buf)
    }
}

// ---------------------------------------------------------------------------
// The model with fake memory behind the generic driver
// ---------------------------------------------------------------------------

use crate::driver::{Driver, Hardware};
use crate::regs::{REG_BAR, VRAM_BAR};
use crate::{Device, DeviceConfig};
use std::sync::Arc;

/// The model as [`Hardware`]: registers through `read`/`write`, VRAM
/// through the BAR, system memory in a [`FakeMemory`].
pub struct ModelHw {
    pub dev: Arc<Device>,
    pub mem: Arc<FakeMemory>,
}

impl Hardware for ModelHw {
    fn reg_read(&self, offset: u64, size: u32) -> u64 {
        self.dev.read(REG_BAR, offset, size)
    }

    fn reg_write(&self, offset: u64, value: u64, size: u32) {
        self.dev.write(REG_BAR, offset, value, size)
    }

    fn vram_write(&self, offset: u64, data: &[u8]) {
        assert!(
            self.dev.vram().write(offset, data),
            "VRAM write out of range"
        );
    }

    fn vram_read(&self, offset: u64, buf: &mut [u8]) {
        assert!(self.dev.vram().read(offset, buf), "VRAM read out of range");
    }

    fn sys_write(&self, bus: u64, data: &[u8]) {
        self.mem.write_bytes(bus, data);
    }

    fn sys_read(&self, bus: u64, buf: &mut [u8]) {
        buf.copy_from_slice(&self.mem.read_bytes(bus, buf.len()));
    }

    fn subscribe_events(
        &self,
        f: Box<dyn Fn(&crate::events::Event) + Send + Sync>,
    ) -> Option<crate::events::Subscription> {
        Some(self.dev.subscribe(f))
    }
}

/// A virtual function as its tenant sees it (SR-IOV mode): the register
/// offsets of partition `vf`'s window go to the VF's register BAR, VRAM
/// accesses to the VF's VRAM BAR (the slice at offset 0), so the generic
/// [`Driver`] drives a VF the way a vGPU's guest driver does. Touching
/// anything outside the window panics: a tenant has no other registers.
pub struct VfHw {
    pub dev: Arc<Device>,
    pub mem: Arc<FakeMemory>,
    pub vf: u16,
}

impl VfHw {
    fn bar_offset(&self, offset: u64) -> u64 {
        let base = crate::regs::offset_of(crate::regs::RegId::WId, usize::from(self.vf), 0);
        offset
            .checked_sub(base)
            .filter(|&o| o < crate::regs::VF_REG_BAR_SIZE)
            .expect("a VF's tenant reaches only its own window")
    }
}

impl Hardware for VfHw {
    fn reg_read(&self, offset: u64, size: u32) -> u64 {
        let o = self.bar_offset(offset);
        self.dev.vf_read(self.vf, crate::regs::VF_REG_BAR, o, size)
    }

    fn reg_write(&self, offset: u64, value: u64, size: u32) {
        let o = self.bar_offset(offset);
        self.dev
            .vf_write(self.vf, crate::regs::VF_REG_BAR, o, value, size)
    }

    fn vram_write(&self, offset: u64, data: &[u8]) {
        for (i, c) in data.chunks(8).enumerate() {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            let at = offset + i as u64 * 8;
            if c.len() == 8 {
                let v = u64::from_le_bytes(b);
                self.dev
                    .vf_write(self.vf, crate::regs::VF_VRAM_BAR, at, v, 8);
            } else {
                for (j, byte) in c.iter().enumerate() {
                    let v = u64::from(*byte);
                    let a = at + j as u64;
                    self.dev
                        .vf_write(self.vf, crate::regs::VF_VRAM_BAR, a, v, 1);
                }
            }
        }
    }

    fn vram_read(&self, offset: u64, buf: &mut [u8]) {
        for (i, byte) in buf.iter_mut().enumerate() {
            let at = offset + i as u64;
            *byte = self.dev.vf_read(self.vf, crate::regs::VF_VRAM_BAR, at, 1) as u8;
        }
    }

    fn sys_write(&self, bus: u64, data: &[u8]) {
        self.mem.write_bytes(bus, data);
    }

    fn sys_read(&self, bus: u64, buf: &mut [u8]) {
        buf.copy_from_slice(&self.mem.read_bytes(bus, buf.len()));
    }

    fn partition_vram_base(&self, _p: usize) -> Option<u64> {
        Some(0)
    }

    fn subscribe_events(
        &self,
        f: Box<dyn Fn(&crate::events::Event) + Send + Sync>,
    ) -> Option<crate::events::Subscription> {
        Some(self.dev.subscribe(f))
    }
}

/// A device with fake memory and a recording interrupt sink, driven by a
/// [`Driver`] (reachable through `Deref`).
pub struct Harness {
    pub dev: Arc<Device>,
    pub mem: Arc<FakeMemory>,
    pub irq: Arc<RecordingIrq>,
    drv: Driver<ModelHw>,
}

impl Harness {
    pub fn new(cfg: DeviceConfig, sysmem_bytes: usize) -> Self {
        let mem = Arc::new(FakeMemory::new(sysmem_bytes));
        Self::with_dma(cfg, mem.clone(), mem)
    }

    /// A harness whose device reaches `mem` through `dma` (a wrapper that
    /// delays, holds or watches the device's accesses).
    pub fn with_dma(cfg: DeviceConfig, mem: Arc<FakeMemory>, dma: Arc<dyn crate::Dma>) -> Self {
        Self::with_vf_slice_notify(cfg, mem, dma, None)
    }

    /// As `with_dma`, telling `notify` about VF slice changes (SR-IOV).
    pub fn with_vf_slice_notify(
        cfg: DeviceConfig,
        mem: Arc<FakeMemory>,
        dma: Arc<dyn crate::Dma>,
        notify: Option<Arc<dyn crate::VfSliceNotify>>,
    ) -> Self {
        let irq = Arc::new(RecordingIrq::default());
        let dev = Device::with_vf_slice_notify(cfg, dma, irq.clone(), notify);
        let dev = Arc::new(dev.expect("valid config"));
        let drv = Driver::new(ModelHw {
            dev: dev.clone(),
            mem: mem.clone(),
        });
        Self { dev, mem, irq, drv }
    }

    /// Build a translation table with the directory at `dir` and page
    /// tables in consecutive pages from `tables`.
    pub fn build_xlate(&self, dir: u64, tables: u64, maps: &[(u64, u64, bool)]) -> u32 {
        let pages: Vec<u64> = (0..maps.len() as u64 + 1)
            .map(|i| tables + i * 4096)
            .collect();
        self.drv.build_xlate(dir, &pages, maps)
    }

    /// VRAM BAR read helper for tests.
    pub fn vram_bar_read(&self, offset: u64, size: u32) -> u64 {
        self.dev.read(VRAM_BAR, offset, size)
    }

    /// A driver for VF `vf` as its tenant sees it (SR-IOV mode).
    pub fn vf_tenant(&self, vf: u16) -> Driver<VfHw> {
        Driver::new(VfHw {
            dev: self.dev.clone(),
            mem: self.mem.clone(),
            vf,
        })
    }
}

impl std::ops::Deref for Harness {
    type Target = Driver<ModelHw>;

    fn deref(&self) -> &Driver<ModelHw> {
        &self.drv
    }
}
