//! Fakes for tests and benchmarks: system memory as a byte vector and an
//! interrupt sink that records vectors and lets a test wait for one.

use crate::{Dma, DmaError, Irq};
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
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        self.mem.read(addr, buf)
    }

    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), DmaError> {
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
        self.mem.write(addr, buf)
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
        let irq = Arc::new(RecordingIrq::default());
        let dev = Arc::new(Device::new(cfg, dma, irq.clone()).expect("valid config"));
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
}

impl std::ops::Deref for Harness {
    type Target = Driver<ModelHw>;

    fn deref(&self) -> &Driver<ModelHw> {
        &self.drv
    }
}
