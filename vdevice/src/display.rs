//! The display head of every partition (SPEC 17): pending and active
//! scanout state, commits that take effect at once or at the next vblank,
//! and the vblank clock, a thread that ticks while any head is active.
//! The head reads no pixels itself: a host shows the active frame from the
//! VRAM slice (the DISP_ACTIVE_ registers say where).

#![deny(clippy::arithmetic_side_effects)]

use crate::device::{Delivery, PartState, Shared};
use crate::events::Why;
use crate::regs::{
    DispMode, PartIntr, DISP_BYTES_PER_PIXEL, DISP_FORMAT_XRGB8888, DISP_MAX_HEIGHT,
    DISP_MAX_WIDTH, DISP_VBLANK_NS,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One set of head registers: what DISP_CTRL..DISP_BASE hold (pending), or
/// what the head shows (active).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Head {
    pub enable: bool,
    pub format: u32,
    pub mode: DispMode,
    pub stride: u32,
    pub base: u64,
}

impl Head {
    /// May this state be committed on a partition with `vram_size` bytes?
    /// A disabled head always may.
    pub fn check(&self, vram_size: u64) -> Result<(), Why> {
        if !self.enable {
            return Ok(());
        }
        if self.format != DISP_FORMAT_XRGB8888 {
            return Err(Why::DispFormat {
                format: self.format,
            });
        }
        let (w, h) = (self.mode.width(), self.mode.height());
        if w == 0 || h == 0 || w > DISP_MAX_WIDTH || h > DISP_MAX_HEIGHT {
            return Err(Why::DispMode {
                width: w,
                height: h,
            });
        }
        // w <= 4096: the product fits in u32.
        let line = u32::from(w).saturating_mul(DISP_BYTES_PER_PIXEL);
        if self.stride < line || !self.stride.is_multiple_of(4) {
            return Err(Why::DispStride {
                stride: self.stride,
                min: line,
            });
        }
        let end = u64::from(self.stride)
            .checked_mul(u64::from(h).saturating_sub(1))
            .and_then(|x| x.checked_add(u64::from(line)))
            .and_then(|x| x.checked_add(self.base));
        match end {
            Some(e) if e <= vram_size => Ok(()),
            _ => Err(Why::DispBeyondVram),
        }
    }

    /// The active registers of a head in this state (all 0 while off).
    pub fn shown(&self) -> Head {
        if self.enable {
            *self
        } else {
            Head::default()
        }
    }
}

/// A partition's head: window state, reset by partition reset.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Display {
    pub pending: Head,
    /// What the head shows; `active.enable` is DISP_STATUS.ACTIVE.
    pub active: Head,
    /// A commit waits for the next vblank.
    pub flip_pending: bool,
    pub vblank_count: u64,
}

impl Display {
    /// DISP_COMMIT. Returns the causes to raise now (FLIP_DONE when the
    /// state took effect at once), or why the pending state is refused.
    pub fn commit(&mut self, vram_size: u64) -> Result<PartIntr, Why> {
        self.pending.check(vram_size)?;
        if self.active.enable && self.pending.enable {
            self.flip_pending = true;
            return Ok(PartIntr::new());
        }
        self.active = self.pending.shown();
        self.flip_pending = false;
        Ok(PartIntr::new().with_flip_done(true))
    }

    /// One vblank of an active head: count, latch a pending flip. Returns
    /// the causes to raise.
    pub fn vblank(&mut self) -> PartIntr {
        if !self.active.enable {
            return PartIntr::new();
        }
        self.vblank_count = self.vblank_count.wrapping_add(1);
        let flipped = std::mem::take(&mut self.flip_pending);
        if flipped {
            self.active = self.pending.shown();
        }
        PartIntr::new().with_vblank(true).with_flip_done(flipped)
    }
}

/// Does this partition's head tick? Active, enabled and not stopped (a
/// stopped partition's head freezes, so a saved context stays true).
pub(crate) fn ticking(st: &PartState) -> bool {
    st.disp.active.enable && st.ctrl.enable() && !st.ctrl.stop()
}

/// The vblank clock: one tick every DISP_VBLANK_NS for every ticking head,
/// phase-locked across heads. Sleeps while no head is active; a commit
/// that turns a head on wakes it (`Shared::display_wake`).
pub(crate) fn clock(shared: Arc<Shared>) {
    shared.dma.thread_start();
    let period = Duration::from_nanos(u64::from(DISP_VBLANK_NS));
    let mut next: Option<Instant> = None;
    loop {
        {
            let mut c = shared.display.lock();
            if c.shutdown {
                break;
            }
            let any = shared.parts.iter().any(|p| ticking(&p.st.lock()));
            match (any, next) {
                (false, _) => {
                    next = None;
                    c.woken = false;
                    while !c.woken && !c.shutdown {
                        shared.display_cv.wait(&mut c);
                    }
                    continue;
                }
                (true, None) => {
                    next = Instant::now().checked_add(period);
                    continue;
                }
                (true, Some(due)) => {
                    let now = Instant::now();
                    if now < due {
                        c.woken = false;
                        let _ = shared
                            .display_cv
                            .wait_for(&mut c, due.saturating_duration_since(now));
                        continue;
                    }
                }
            }
        }
        // A late tick (the host was descheduled) counts one vblank and
        // starts the cadence again rather than bursting.
        let due = next.unwrap_or_else(Instant::now);
        let now = Instant::now();
        next = due
            .checked_add(period)
            .filter(|n| *n > now)
            .or_else(|| now.checked_add(period));
        for part in &shared.parts {
            let mut st = part.st.lock();
            if !ticking(&st) {
                continue;
            }
            let causes = st.disp.vblank();
            let d: Option<Delivery> = st.event(causes, part.vector_base());
            drop(st);
            shared.deliver(part.index, d);
        }
    }
    shared.dma.thread_stop();
}

/// The clock thread's wake-up state.
#[derive(Default)]
pub(crate) struct Clock {
    pub shutdown: bool,
    pub woken: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(w: u16, h: u16) -> DispMode {
        DispMode::new().with_width(w).with_height(h)
    }

    fn head(w: u16, h: u16, stride: u32, base: u64) -> Head {
        Head {
            enable: true,
            format: DISP_FORMAT_XRGB8888,
            mode: mode(w, h),
            stride,
            base,
        }
    }

    #[test]
    fn a_mode_must_fit_its_vram_and_limits() {
        let vram = 8 << 20;
        assert_eq!(head(1024, 768, 4096, 0).check(vram), Ok(()));
        // the last line may end exactly at the end of the VRAM
        assert_eq!(head(1024, 2, 8192, vram - 8192 - 4096).check(vram), Ok(()));
        assert_eq!(
            head(1024, 2, 8192, vram - 8192 - 4092).check(vram),
            Err(Why::DispBeyondVram)
        );
        assert_eq!(
            head(1024, 768, 4092, 0).check(vram),
            Err(Why::DispStride {
                stride: 4092,
                min: 4096
            })
        );
        assert!(head(1024, 768, 4098, 0).check(vram).is_err());
        assert!(head(0, 768, 4096, 0).check(vram).is_err());
        assert!(head(4097, 1, 65536, 0).check(vram).is_err());
        let mut h = head(1, 1, 4, 0);
        h.format = 0x3432_4152; // AR24
        assert_eq!(
            h.check(vram),
            Err(Why::DispFormat {
                format: 0x3432_4152
            })
        );
        assert_eq!(
            head(4096, 4096, !3, !0xfff).check(u64::MAX),
            Err(Why::DispBeyondVram)
        );
        // off: anything goes
        assert_eq!(Head::default().check(0), Ok(()));
    }

    #[test]
    fn commits_flip_at_vblank_on_an_active_head() {
        let mut d = Display::default();
        assert_eq!(d.vblank(), PartIntr::new(), "an off head has no vblank");
        d.pending = head(64, 64, 256, 0);
        assert_eq!(d.commit(1 << 20), Ok(PartIntr::new().with_flip_done(true)));
        assert_eq!(d.active, d.pending);
        d.pending.base = 0x10000;
        assert_eq!(d.commit(1 << 20), Ok(PartIntr::new()));
        assert!(d.flip_pending);
        assert_eq!(d.active.base, 0);
        assert_eq!(
            d.vblank(),
            PartIntr::new().with_vblank(true).with_flip_done(true)
        );
        assert_eq!(d.active.base, 0x10000);
        assert_eq!(d.vblank(), PartIntr::new().with_vblank(true));
        assert_eq!(d.vblank_count, 2);
        // a refused commit changes nothing
        d.pending.base = 1 << 20;
        assert_eq!(d.commit(1 << 20), Err(Why::DispBeyondVram));
        assert!(!d.flip_pending);
        // turning it off is at once
        d.pending.enable = false;
        assert_eq!(d.commit(1 << 20), Ok(PartIntr::new().with_flip_done(true)));
        assert_eq!(d.active, Head::default());
    }
}
