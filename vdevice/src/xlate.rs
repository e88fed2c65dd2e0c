//! Per-partition system-memory translation: a two-level table in host
//! memory (directory of 2 MiB entries -> page tables of 4 KiB pages) that the
//! host RM programs, walked by the engine through DMA, with a small TLB.

#![deny(clippy::arithmetic_side_effects)]

use crate::regs::{XlatePde, XlatePte};
use crate::{Dma, Function};

pub const PAGE_SIZE: u64 = 4096;
pub const PTES_PER_TABLE: u64 = 512;
/// Bytes of partition address space one directory entry maps.
pub const DIR_ENTRY_SPAN: u64 = PAGE_SIZE * PTES_PER_TABLE;
pub const MAX_DIR_ENTRIES: u32 = 4096;
/// TLB slots; direct-mapped by virtual page number, so a miss replaces one
/// entry instead of flushing the lot.
const TLB_ENTRIES: usize = 1024;

/// The translation settings of a partition, snapshotted for one command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XlateConfig {
    /// PT CTRL.XLATE: translate; else addresses are bus addresses.
    pub enabled: bool,
    pub root: u64,
    pub dir_entries: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XlateError {
    /// No valid entry maps `addr` (replayable).
    Unmapped { addr: u64 },
    /// A write hit a read-only page.
    ReadOnly { addr: u64 },
    /// Reading the table itself failed on the bus.
    Dma { addr: u64 },
}

/// Cached page translations of one partition: slot `vpn % TLB_ENTRIES`
/// holds `(vpn, pte)`.
pub struct Tlb {
    slots: Box<[Option<(u64, XlatePte)>]>,
}

impl Default for Tlb {
    fn default() -> Self {
        Self {
            slots: vec![None; TLB_ENTRIES].into_boxed_slice(),
        }
    }
}

impl Tlb {
    pub fn invalidate(&mut self) {
        self.slots.fill(None);
    }

    pub fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    fn slot(&mut self, vpn: u64) -> &mut Option<(u64, XlatePte)> {
        // The remainder is < TLB_ENTRIES, so the index is in bounds.
        let i = vpn.checked_rem(TLB_ENTRIES as u64).unwrap_or(0) as usize;
        &mut self.slots[i]
    }

    fn lookup(&mut self, vpn: u64) -> Option<XlatePte> {
        match *self.slot(vpn) {
            Some((v, pte)) if v == vpn => Some(pte),
            _ => None,
        }
    }

    fn insert(&mut self, vpn: u64, pte: XlatePte) {
        *self.slot(vpn) = Some((vpn, pte));
    }
}

/// A run of bus addresses backing part of a partition range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub bus: u64,
    pub len: u64,
}

/// Read a table entry. The host builds the tables in its own memory, so
/// the walk is the PF's DMA (only PF-owned partitions translate: SPEC 15).
fn read_u64(dma: &dyn Dma, addr: u64) -> Result<u64, XlateError> {
    let mut b = [0u8; 8];
    dma.read(Function::Pf, addr, &mut b)
        .map_err(|_| XlateError::Dma { addr })?;
    Ok(u64::from_le_bytes(b))
}

/// The directory entry a walk used last: consecutive pages share one.
type PdeCache = Option<(u64, XlatePde)>;

fn walk(
    dma: &dyn Dma,
    cfg: &XlateConfig,
    vpn: u64,
    last: &mut PdeCache,
) -> Result<XlatePte, XlateError> {
    // vpn < 2^52, so these never overflow; the host-programmed root and the
    // PDE's frame number are guest-visible values and are checked.
    let addr = vpn.wrapping_mul(PAGE_SIZE);
    let dir_index = vpn / PTES_PER_TABLE;
    if dir_index >= u64::from(cfg.dir_entries) {
        return Err(XlateError::Unmapped { addr });
    }
    let pde = match *last {
        Some((i, pde)) if i == dir_index => pde,
        _ => {
            let pde_addr = cfg
                .root
                .checked_add(dir_index.wrapping_mul(8))
                .ok_or(XlateError::Dma { addr: cfg.root })?;
            let pde = XlatePde::from_bits(read_u64(dma, pde_addr)?);
            *last = Some((dir_index, pde));
            pde
        }
    };
    if !pde.valid() {
        return Err(XlateError::Unmapped { addr });
    }
    // pfn is a 52-bit field: pfn * 4096 + 511 * 8 fits in 64 bits.
    let pte_addr = pde
        .pfn()
        .wrapping_mul(PAGE_SIZE)
        .wrapping_add((vpn % PTES_PER_TABLE).wrapping_mul(8));
    let pte = XlatePte::from_bits(read_u64(dma, pte_addr)?);
    if !pte.valid() {
        return Err(XlateError::Unmapped { addr });
    }
    Ok(pte)
}

/// Translate `[addr, addr+len)` for a read or a write into bus segments.
/// Either the whole range translates or nothing is returned. Engines call
/// it one chunk (at most 1 MiB) at a time, so a miss costs one chunk's walk.
pub fn translate(
    dma: &dyn Dma,
    tlb: &mut Tlb,
    cfg: &XlateConfig,
    addr: u64,
    len: u64,
    write: bool,
) -> Result<Vec<Segment>, XlateError> {
    let end = addr.checked_add(len).ok_or(XlateError::Unmapped { addr })?;
    if len == 0 {
        return Ok(Vec::new());
    }
    if !cfg.enabled {
        return Ok(vec![Segment { bus: addr, len }]);
    }
    let mut segs: Vec<Segment> = Vec::new();
    let mut pde = None;
    let mut cur = addr;
    while cur < end {
        let vpn = cur / PAGE_SIZE;
        let pte = match tlb.lookup(vpn) {
            Some(p) => p,
            None => {
                let p = walk(dma, cfg, vpn, &mut pde)?;
                tlb.insert(vpn, p);
                p
            }
        };
        if write && !pte.writable() {
            return Err(XlateError::ReadOnly { addr: cur });
        }
        // in_page < PAGE_SIZE and cur < end: no underflow; pfn * 4096 +
        // in_page fits in 64 bits (pfn is a 52-bit field).
        let in_page = cur % PAGE_SIZE;
        let n = PAGE_SIZE.wrapping_sub(in_page).min(end.wrapping_sub(cur));
        let bus = pte.pfn().wrapping_mul(PAGE_SIZE).wrapping_add(in_page);
        match segs.last_mut() {
            Some(last) if last.bus.checked_add(last.len) == Some(bus) => {
                last.len = last.len.wrapping_add(n)
            }
            _ => segs.push(Segment { bus, len: n }),
        }
        cur = cur.wrapping_add(n);
    }
    Ok(segs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeMemory;

    fn table(mem: &FakeMemory) -> XlateConfig {
        // directory at 0x1000 with one entry -> page table at 0x2000
        mem.write_u64(
            0x1000,
            XlatePde::new().with_valid(true).with_pfn(2).into_bits(),
        );
        // vpn 0 -> page 0x10 (rw), vpn 1 -> page 0x11 (rw), vpn 2 -> page 0x20 (ro)
        let pte = |pfn, w| {
            XlatePte::new()
                .with_valid(true)
                .with_writable(w)
                .with_pfn(pfn)
                .into_bits()
        };
        mem.write_u64(0x2000, pte(0x10, true));
        mem.write_u64(0x2008, pte(0x11, true));
        mem.write_u64(0x2010, pte(0x20, false));
        XlateConfig {
            enabled: true,
            root: 0x1000,
            dir_entries: 1,
        }
    }

    #[test]
    fn walks_merges_and_checks_permissions() {
        let mem = FakeMemory::new(1 << 20);
        let cfg = table(&mem);
        let mut tlb = Tlb::default();
        let s = translate(&mem, &mut tlb, &cfg, 0x800, 0x1000, true).unwrap();
        assert_eq!(
            s,
            vec![Segment {
                bus: 0x10800,
                len: 0x1000
            }]
        );
        let s = translate(&mem, &mut tlb, &cfg, 0x1ff0, 0x20, false).unwrap();
        assert_eq!(
            s,
            vec![
                Segment {
                    bus: 0x11ff0,
                    len: 0x10
                },
                Segment {
                    bus: 0x20000,
                    len: 0x10
                }
            ]
        );
        assert_eq!(
            translate(&mem, &mut tlb, &cfg, 0x2000, 8, true),
            Err(XlateError::ReadOnly { addr: 0x2000 })
        );
        assert_eq!(
            translate(&mem, &mut tlb, &cfg, 0x3000, 8, false),
            Err(XlateError::Unmapped { addr: 0x3000 })
        );
        assert_eq!(
            translate(&mem, &mut tlb, &cfg, DIR_ENTRY_SPAN, 8, false),
            Err(XlateError::Unmapped {
                addr: DIR_ENTRY_SPAN
            })
        );
        assert_eq!(
            translate(&mem, &mut tlb, &cfg, u64::MAX - 2, 8, false),
            Err(XlateError::Unmapped { addr: u64::MAX - 2 })
        );
    }

    #[test]
    fn tlb_keeps_stale_entries_until_invalidated() {
        let mem = FakeMemory::new(1 << 20);
        let cfg = table(&mem);
        let mut tlb = Tlb::default();
        translate(&mem, &mut tlb, &cfg, 0, 8, false).unwrap();
        mem.write_u64(0x2000, 0); // host unmaps vpn 0
        assert!(translate(&mem, &mut tlb, &cfg, 0, 8, false).is_ok());
        tlb.invalidate();
        assert!(translate(&mem, &mut tlb, &cfg, 0, 8, false).is_err());
    }

    #[test]
    fn untranslated_mode_passes_bus_addresses() {
        let mem = FakeMemory::new(4096);
        let mut tlb = Tlb::default();
        let cfg = XlateConfig::default();
        let s = translate(&mem, &mut tlb, &cfg, 0x1234_0000, 64, true).unwrap();
        assert_eq!(
            s,
            vec![Segment {
                bus: 0x1234_0000,
                len: 64
            }]
        );
    }
}
