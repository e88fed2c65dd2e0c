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
