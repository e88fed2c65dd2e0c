//! SR-IOV mode (SPEC 15): partition n is virtual function n. A VF's
//! register BAR is its partition's window, its VRAM BAR its slice (while
//! the partition is enabled), its FLR a partition reset; its DMA and
//! interrupts carry its function (engine.rs, device.rs). The PF keeps the
//! global block, the partition table and its own view of every window.

#![deny(clippy::arithmetic_side_effects)]

use crate::device::Device;
use crate::events::{Refusal, Why};
use crate::pci::VfPciInfo;
use crate::regs::{
    AccessError, VF_REG_BAR, VF_REG_BAR_SIZE, VF_VRAM_BAR, WINDOW_BASE, WINDOW_STRIDE,
};
use crate::Function;

/// Where a VF's VRAM BAR leads: bytes `0..size_bytes` of the BAR are VRAM
/// `base..base + size_bytes` (the partition's slice); the rest of the BAR
/// is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VfSlice {
    pub base: u64,
    pub size_bytes: u64,
}

impl Device {
    /// The VFs' PCI identity and BAR layout; None without SR-IOV.
    pub fn vf_info(&self) -> Option<VfPciInfo> {
        let sh = &self.shared;
        let vfs = u16::try_from(sh.cfg.sriov_vfs).ok().filter(|&n| n > 0)?;
        Some(VfPciInfo::new(vfs, sh.vf_vram_bar))
    }

    /// VF `vf`'s partition index, if there is such a VF.
    fn vf_partition(&self, vf: u16) -> Option<usize> {
        let p = usize::from(vf);
        (p < self.shared.cfg.sriov_vfs).then_some(p)
    }

    /// Where VF `vf`'s VRAM BAR leads now: Some while its partition is
    /// enabled (its slice was checked then and cannot change until it is
    /// disabled), None while disabled or for a VF that does not exist.
    pub fn vf_vram_slice(&self, vf: u16) -> Option<VfSlice> {
        let p = self.vf_partition(vf)?;
        let st = self.shared.parts[p].st.lock();
        st.ctrl.enable().then_some(VfSlice {
            base: st.vram_base,
            size_bytes: st.vram_size,
        })
    }

    /// Read `size` bytes at `offset` of BAR `bar` of VF `vf`; a refused
    /// access reads all ones (as the PF's BARs).
    pub fn vf_read(&self, vf: u16, bar: u8, offset: u64, size: u32) -> u64 {
        match self.vf_access(vf, bar, offset, size, None) {
            Ok(v) => v,
            Err(r) => {
                self.vf_refused(vf, bar, offset, size, None, r);
                if size >= 8 {
                    u64::MAX
                } else {
                    1u64.checked_shl(size.saturating_mul(8))
                        .map_or(u64::MAX, |v| v.wrapping_sub(1))
                }
            }
        }
    }

    /// Write `size` bytes of `value` at `offset` of BAR `bar` of VF `vf`.
    pub fn vf_write(&self, vf: u16, bar: u8, offset: u64, value: u64, size: u32) {
        if let Err(r) = self.vf_access(vf, bar, offset, size, Some(value)) {
            self.vf_refused(vf, bar, offset, size, Some(value), r);
        }
    }

    /// Function-level reset of VF `vf`: a partition reset of its partition
    /// (SPEC 11); nothing of the PF or of other VFs changes. False if
    /// there is no such VF.
    pub fn vf_flr(&self, vf: u16) -> bool {
        match self.vf_partition(vf) {
            Some(p) => {
                self.shared.reset_partition(p);
                true
            }
            None => false,
        }
    }

    fn vf_access(
        &self,
        vf: u16,
        bar: u8,
        offset: u64,
        size: u32,
        value: Option<u64>,
    ) -> Result<u64, Refusal> {
        let Some(p) = self.vf_partition(vf) else {
            let vfs = u16::try_from(self.shared.cfg.sriov_vfs).unwrap_or(u16::MAX);
            return Err(Refusal::new(AccessError::Unmapped, Why::NoSuchVf { vfs }));
        };
        match bar {
            VF_REG_BAR => {
                if offset >= VF_REG_BAR_SIZE {
                    return Err(Refusal::new(AccessError::Unmapped, Why::BeyondVfWindow));
                }
                // The same register of the PF's window p: p < 64 and the
                // offset is inside one window, so this stays in window p.
                let pf_offset = WINDOW_STRIDE
                    .wrapping_mul(p as u64)
                    .wrapping_add(WINDOW_BASE)
                    .wrapping_add(offset);
                self.reg_access_checked(pf_offset, size, value)
            }
            VF_VRAM_BAR => self.vf_vram_access(vf, p, offset, size, value),
            _ => Err(Refusal::new(AccessError::Unmapped, Why::NoSuchBar(bar))),
        }
    }

    /// An access to VF `vf`'s VRAM BAR: the slice of partition `p` while it
    /// is enabled. The partition's lock is held across the copy, so a
    /// disable (which takes it) either precedes or follows the access.
    fn vf_vram_access(
        &self,
        vf: u16,
        p: usize,
        offset: u64,
        size: u32,
        value: Option<u64>,
    ) -> Result<u64, Refusal> {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Err(Refusal::new(AccessError::BadWidth, Why::VramWidth(size)));
        }
        let st = self.shared.parts[p].st.lock();
        if !st.ctrl.enable() {
            return Err(Refusal::new(
                AccessError::Unmapped,
                Why::VfSliceUnmapped { vf },
            ));
        }
        let beyond = Refusal::new(AccessError::Unmapped, Why::BeyondVfSlice { vf });
        let inside = offset
            .checked_add(u64::from(size))
            .is_some_and(|end| end <= st.vram_size);
        let abs = st.vram_base.checked_add(offset).filter(|_| inside);
        let abs = abs.ok_or(beyond)?;
        let n = size as usize;
        let vram = &self.shared.vram;
        match value {
            None => {
                let mut b = [0u8; 8];
                vram.read(abs, &mut b[..n]).then_some(()).ok_or(beyond)?;
                Ok(u64::from_le_bytes(b))
            }
            Some(v) => {
                vram.write(abs, &v.to_le_bytes()[..n])
                    .then_some(())
                    .ok_or(beyond)?;
                self.shared.cpu_writes.bar_write(abs, u64::from(size));
                Ok(0)
            }
        }
    }

    /// Record a refused VF access: in the host's ACCESS_ERROR registers
    /// (FUNCTION says which VF) and in the partition's ACCESS_ERRORS, since
    /// every BAR of a VF is its tenant's.
    fn vf_refused(&self, vf: u16, bar: u8, offset: u64, size: u32, value: Option<u64>, r: Refusal) {
        if let Some(p) = self.vf_partition(vf) {
            let mut st = self.shared.parts[p].st.lock();
            st.access_errors = st.access_errors.wrapping_add(1);
        }
        self.shared
            .access_error(Function::Vf(vf), bar, offset, size, value, r);
    }
}
