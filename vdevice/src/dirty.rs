//! Dirty-page logs of a partition (SPEC 16): which 4 KiB pages its engine
//! wrote, in its system-memory address space and in its VRAM slice, since
//! the host last read them. The host turns them on with PT CTRL.DIRTY_LOG
//! and reads them 32 pages at a time (DIRTY_WORD, read and clear). The
//! VRAM log also takes the CPU writes through the VRAM BAR that the host
//! reports ([`CpuWrites`]).

#![deny(clippy::arithmetic_side_effects)]

use crate::regs::DirtyKind;
use crate::VramWriteLog;
use parking_lot::Mutex;
use std::sync::{Arc, OnceLock};

pub const DIRTY_PAGE: u64 = 4096;
/// The system-memory log covers partition addresses 0 .. this; a write
/// beyond sets the partition's DIRTY_OVERFLOW bit instead.
pub const DIRTY_SYS_SPAN: u64 = 16 << 30;
const PAGES_PER_WORD: u64 = 32;
/// The bytes one DIRTY_WORD covers.
pub const DIRTY_WORD_SPAN: u64 = DIRTY_PAGE * PAGES_PER_WORD;

/// Both logs of one partition; empty while logging is off.
#[derive(Default)]
pub struct DirtyLog {
    sys: Vec<u32>,
    vram: Vec<u32>,
    /// The slice the VRAM log covers: its VRAM offset and size.
    slice_base: u64,
    slice_size: u64,
    pub overflow: bool,
}

fn words(span: u64) -> usize {
    let pages = span.div_ceil(DIRTY_PAGE);
    usize::try_from(pages.div_ceil(PAGES_PER_WORD)).unwrap_or(0)
}

impl DirtyLog {
    /// Logging on, both logs clear (VRAM: the slice of `vram_size` bytes
    /// at VRAM offset `vram_base`). CPU writes to the slice reported
    /// before this are dropped: the log holds only what follows.
    pub fn start(&mut self, vram_base: u64, vram_size: u64, cpu: &CpuWrites) {
        self.sys = vec![0; words(DIRTY_SYS_SPAN)];
        self.vram = vec![0; words(vram_size)];
        self.slice_base = vram_base;
        self.slice_size = vram_size;
        self.overflow = false;
        cpu.take(vram_base, vram_size, &mut |_| {});
    }

    /// The host's CPU writes to slice offsets `[at, at + len)` (clipped to
    /// the slice) go into the VRAM log. Nothing while logging is off.
    pub fn fold_cpu_writes(&mut self, cpu: &CpuWrites, at: u64, len: u64) {
        if self.vram.is_empty() || at >= self.slice_size {
            return;
        }
        let len = len.min(self.slice_size.saturating_sub(at));
        let Some(start) = self.slice_base.checked_add(at) else {
            return;
        };
        let (base, size) = (self.slice_base, self.slice_size);
        cpu.take(start, len, &mut |page| {
            // CpuWrites reports only pages of the range asked for.
            if let Some(rel) = page.checked_sub(base).filter(|r| *r < size) {
                self.mark(DirtyKind::Vram, rel, 1);
            }
        });
    }

    pub fn stop(&mut self) {
        *self = DirtyLog::default();
    }

    fn log(&mut self, kind: DirtyKind) -> &mut Vec<u32> {
        match kind {
            DirtyKind::Vram => &mut self.vram,
            _ => &mut self.sys,
        }
    }

    /// The engine wrote `[at, at + len)` of `kind` (a partition address or
    /// a slice offset). Pages outside the log set `overflow`.
    pub fn mark(&mut self, kind: DirtyKind, at: u64, len: u64) {
        if len == 0 {
            return;
        }
        let last = at.saturating_add(len.saturating_sub(1));
        let (first, last) = (at / DIRTY_PAGE, last / DIRTY_PAGE);
        let log = self.log(kind);
        if log.is_empty() {
            return;
        }
        let mut outside = false;
        for page in first..=last {
            let (w, b) = (page / PAGES_PER_WORD, page % PAGES_PER_WORD);
            match usize::try_from(w).ok().and_then(|w| log.get_mut(w)) {
                Some(word) => *word |= 1u32 << b,
                None => {
                    outside = true;
                    break;
                }
            }
        }
        self.overflow |= outside;
    }

    /// Word `index` of the `kind` log (bit i: page index * 32 + i), cleared
    /// as it is read; 0 beyond the log.
    pub fn take(&mut self, kind: DirtyKind, index: u32) -> u32 {
        let log = self.log(kind);
        usize::try_from(index)
            .ok()
            .and_then(|i| log.get_mut(i))
            .map_or(0, std::mem::take)
    }

    /// Pages set in the `kind` log.
    pub fn count(&mut self, kind: DirtyKind) -> u32 {
        self.log(kind).iter().map(|w| w.count_ones()).sum()
    }
}

/// Pages the host saw written through the VRAM BAR, taken from it by
/// range. The host may hand over pages beyond the range asked for (its
/// tracking is coarser than a slice); those wait here, one bit per VRAM
/// page, for the log of the slice they are in. Lock order: after a
/// partition's dirty log.
pub struct CpuWrites {
    host: OnceLock<Arc<dyn VramWriteLog>>,
    vram_size: u64,
    held: Mutex<Vec<u64>>,
}

impl CpuWrites {
    pub fn new(vram_size: u64) -> Self {
        Self {
            host: OnceLock::new(),
            vram_size,
            held: Mutex::new(Vec::new()),
        }
    }

    /// Sets the host's log; false if one is set already.
    pub fn set_host(&self, host: Arc<dyn VramWriteLog>) -> bool {
        self.host.set(host).is_ok()
    }

    /// The bitmap of held pages, allocated on first use.
    fn held(&self) -> parking_lot::MutexGuard<'_, Vec<u64>> {
        let mut held = self.held.lock();
        if held.is_empty() {
            let pages = self.vram_size.div_ceil(DIRTY_PAGE);
            *held = vec![0; usize::try_from(pages.div_ceil(64)).unwrap_or(0)];
        }
        held
    }

    /// A write of `len` bytes at VRAM offset `at` through a VRAM BAR that
    /// the device serves itself (a VMM that traps it instead of mapping
    /// it): held as the host's reports are.
    pub fn bar_write(&self, at: u64, len: u64) {
        let mut held = self.held();
        let last = at.saturating_add(len.max(1).saturating_sub(1));
        hold(&mut held, at);
        hold(&mut held, last);
    }

    /// Report and forget the pages of VRAM `[start, start + len)` written
    /// through the BAR: `mark(page)` with each page's VRAM offset, once.
    pub fn take(&self, start: u64, len: u64, mark: &mut dyn FnMut(u64)) {
        if len == 0 || start >= self.vram_size {
            return;
        }
        let len = len.min(self.vram_size.saturating_sub(start));
        let mut held = self.held();
        if let Some(host) = self.host.get() {
            host.take_cpu_dirty(start, len, &mut |page| hold(&mut held, page));
        }
        let first = start / DIRTY_PAGE;
        let last = start.saturating_add(len.saturating_sub(1)) / DIRTY_PAGE;
        let mut page = first;
        while page <= last {
            let (w, b) = (page / 64, page % 64);
            let Some(word) = usize::try_from(w).ok().and_then(|w| held.get_mut(w)) else {
                break;
            };
            // Whole clean words are skipped: a slice's log is read often.
            let span = 64u64
                .saturating_sub(b)
                .min(last.saturating_sub(page).saturating_add(1));
            let ones = 1u64
                .checked_shl(span as u32)
                .map_or(u64::MAX, |v| v.wrapping_sub(1));
            let mask = ones.wrapping_shl(b as u32);
            let mut hit = *word & mask;
            *word &= !mask;
            while hit != 0 {
                let bit = u64::from(hit.trailing_zeros());
                hit &= hit.wrapping_sub(1);
                mark(
                    w.saturating_mul(64)
                        .saturating_add(bit)
                        .saturating_mul(DIRTY_PAGE),
                );
            }
            page = page.saturating_add(span);
        }
    }
}

/// Set the held bit of the page at VRAM offset `at` (none beyond VRAM).
fn hold(held: &mut [u64], at: u64) {
    let page = at / DIRTY_PAGE;
    let (w, b) = (page / 64, page % 64);
    if let Some(word) = usize::try_from(w).ok().and_then(|w| held.get_mut(w)) {
        *word |= 1u64 << b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_pages_reads_and_clears_and_reports_overflow() {
        let mut l = DirtyLog::default();
        l.mark(DirtyKind::Sysmem, 0, 4096);
        assert_eq!(l.take(DirtyKind::Sysmem, 0), 0, "off: nothing logged");
        l.start(0, 1 << 20, &CpuWrites::new(1 << 20));
        l.mark(DirtyKind::Sysmem, 4095, 2);
        l.mark(DirtyKind::Vram, 33 * 4096, 1);
        assert_eq!(l.count(DirtyKind::Sysmem), 2);
        assert_eq!(l.take(DirtyKind::Sysmem, 0), 0b11);
        assert_eq!(l.take(DirtyKind::Sysmem, 0), 0, "read clears");
        assert_eq!(l.take(DirtyKind::Vram, 1), 0b10);
        assert!(!l.overflow);
        l.mark(DirtyKind::Vram, 1 << 20, 1);
        assert!(l.overflow, "a write past the slice's log");
        l.mark(DirtyKind::Sysmem, u64::MAX - 1, 10);
        assert_eq!(l.take(DirtyKind::Vram, u32::MAX), 0);
    }
}
