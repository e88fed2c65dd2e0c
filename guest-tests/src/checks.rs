//! Pieces the checks of several test programs share: how a fault reads in
//! a transcript, a partition window's registers by name, a partition's
//! VRAM dirty log, and a timer for operations too short to time one by one.

use std::hint::black_box;
use std::time::{Duration, Instant};

use vdevice::driver::{Driver, Hardware};
use vdevice::regs::{self, DirtyKind, DirtySel, FaultStatus, PartStatus, PartitionState, RegId};

use crate::Bar;

/// A fault as a transcript shows it: `VRAM_OOB ring 0 write @0x3fffe0`.
pub fn describe_fault(status: u32, addr: u64) -> String {
    let s = FaultStatus::from_bits(status);
    let rw = if s.write() { "write" } else { "read" };
    format!("{} ring {} {rw} @{addr:#x}", s.code(), s.ring())
}

/// Partition `p`'s VRAM dirty log read in full through the host's global
/// registers (and so cleared): the pages written (slice offset / 4 KiB) of
/// its `slice` bytes, and DIRTY_COUNT before the read.
pub fn vram_dirty_pages<H: Hardware>(g: &Driver<H>, p: usize, slice: u64) -> (Vec<u64>, u64) {
    let sel = DirtySel::new()
        .with_partition(p as u8)
        .with_log(DirtyKind::Vram);
    g.set(RegId::DirtySel, 0, 0, sel.into_bits() as u64);
    let count = g.reg(RegId::DirtyCount, 0, 0);
    let mut pages = Vec::new();
    for word in 0..slice / 4096 / 32 {
        let w = g.reg(RegId::DirtyWord, 0, 0);
        pages.extend((0..32).filter(|b| w & 1 << b != 0).map(|b| word * 32 + b));
    }
    (pages, count)
}

/// Average ns of `f`: up to 2000 calls or about `budget`, at least 50,
/// after 20 to warm up.
pub fn avg_ns(budget: Duration, f: impl Fn() -> u64) -> f64 {
    for _ in 0..20 {
        black_box(f());
    }
    let t = Instant::now();
    let mut n = 0u32;
    while n < 2000 && (n < 50 || t.elapsed() < budget) {
        black_box(f());
        n += 1;
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

/// A partition window (a vGPU's BAR0) mapped from a BAR: its registers by
/// name, each accessed at its own width.
pub struct Window(pub Bar);

impl Window {
    /// Element `n` of a register array (a ring's registers).
    pub fn at(&self, id: RegId, n: usize) -> u64 {
        self.0
            .read(regs::window_offset(id, n), regs::register(id).width as u32)
    }

    pub fn get(&self, id: RegId) -> u64 {
        self.at(id, 0)
    }

    pub fn set(&self, id: RegId, v: u64) {
        self.0.write(
            regs::window_offset(id, 0),
            v,
            regs::register(id).width as u32,
        )
    }

    /// STATUS.STATE.
    pub fn state(&self) -> PartitionState {
        PartStatus::from_bits(self.get(RegId::WStatus) as u32).state()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vdevice::regs::FaultCode;

    #[test]
    fn faults_read_as_code_ring_direction_and_address() {
        let s = FaultStatus::new()
            .with_code(FaultCode::VramOutOfBounds)
            .with_ring(1)
            .with_write(true)
            .into_bits();
        assert_eq!(describe_fault(s, 0x40), "VRAM_OOB ring 1 write @0x40");
    }
}
