//! Dirty-page logs of a partition (SPEC 16): which 4 KiB pages its engine
//! wrote, in its system-memory address space and in its VRAM slice, since
//! the host last read them. The host turns them on with PT CTRL.DIRTY_LOG
//! and reads them 32 pages at a time (DIRTY_WORD, read and clear).

#![deny(clippy::arithmetic_side_effects)]

use crate::regs::DirtyKind;

pub const DIRTY_PAGE: u64 = 4096;
/// The system-memory log covers partition addresses 0 .. this; a write
/// beyond sets the partition's DIRTY_OVERFLOW bit instead.
pub const DIRTY_SYS_SPAN: u64 = 16 << 30;
const PAGES_PER_WORD: u64 = 32;

/// Both logs of one partition; empty while logging is off.
#[derive(Default)]
pub struct DirtyLog {
    sys: Vec<u32>,
    vram: Vec<u32>,
    pub overflow: bool,
}

fn words(span: u64) -> usize {
    let pages = span.div_ceil(DIRTY_PAGE);
    usize::try_from(pages.div_ceil(PAGES_PER_WORD)).unwrap_or(0)
}

impl DirtyLog {
    /// Logging on, both logs clear (VRAM: a slice of `vram_size` bytes).
    pub fn start(&mut self, vram_size: u64) {
        self.sys = vec![0; words(DIRTY_SYS_SPAN)];
        self.vram = vec![0; words(vram_size)];
        self.overflow = false;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_pages_reads_and_clears_and_reports_overflow() {
        let mut l = DirtyLog::default();
        l.mark(DirtyKind::Sysmem, 0, 4096);
        assert_eq!(l.take(DirtyKind::Sysmem, 0), 0, "off: nothing logged");
        l.start(1 << 20);
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
