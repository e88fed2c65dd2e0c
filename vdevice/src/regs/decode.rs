//! Register-BAR offsets to registers, and registers to text: what the
//! device's dispatch, the trace decoder and the dumps share. Offsets come
//! from guests, so nothing here may panic on one.

#![deny(clippy::arithmetic_side_effects)]

use super::*;
use std::fmt::Write as _;
use std::sync::OnceLock;

/// Where an offset of the register BAR lands.
#[derive(Clone, Copy, Debug)]
pub struct Decoded {
    pub reg: &'static Register,
    /// Partition index for partition-table and window registers.
    pub instance: usize,
    /// Array element (ring) for array registers.
    pub elem: usize,
    /// Byte offset of the access inside the register (0, or 4 for the high half).
    pub byte: u64,
}

pub(super) struct Lookup {
    /// Per block: dword index inside an instance -> (register index, element).
    slots: [Vec<Option<(u16, u8)>>; 3],
}

// Arithmetic on the register table's own constants only.
#[allow(clippy::arithmetic_side_effects)]
pub(super) fn lookup() -> &'static Lookup {
    static LOOKUP: OnceLock<Lookup> = OnceLock::new();
    LOOKUP.get_or_init(|| {
        let mut slots = Block::ALL.map(|b| vec![None; (b.stride() / 4) as usize]);
        for (i, r) in REGISTERS.iter().enumerate() {
            let bi = r.block as usize;
            for e in 0..r.count as u64 {
                let start = r.offset + e * r.stride;
                for d in 0..(r.width as u64 / 4) {
                    let slot = &mut slots[bi][((start / 4) + d) as usize];
                    assert!(slot.is_none(), "register {} overlaps another", r.name);
                    *slot = Some((i as u16, e as u8));
                }
            }
        }
        Lookup { slots }
    })
}

/// Which block and instance an offset of the register BAR belongs to.
pub fn block_of(offset: u64) -> Option<(Block, usize, u64)> {
    if offset < GLOBAL_SIZE {
        return Some((Block::Global, 0, offset));
    }
    [Block::PartitionTable, Block::Window]
        .into_iter()
        .find_map(|block| {
            let (base, stride) = match block {
                Block::PartitionTable => (PTABLE_BASE, PTABLE_STRIDE),
                _ => (WINDOW_BASE, WINDOW_STRIDE),
            };
            let rel = offset.checked_sub(base)?;
            let instance = usize::try_from(rel.checked_div(stride)?).ok()?;
            (instance < MAX_PARTITIONS).then_some((block, instance, rel.checked_rem(stride)?))
        })
}

/// Decode a register-BAR offset to the register it falls in (any partition
/// index up to [`MAX_PARTITIONS`]; the device checks its own count).
pub fn decode(offset: u64) -> Option<Decoded> {
    let (block, instance, rel) = block_of(offset)?;
    decode_in_block(block, instance, rel)
}

/// Decode an offset relative to one block instance (e.g. a vGPU's BAR0 is
/// one window, so its offsets decode with `Block::Window`).
pub fn decode_in_block(block: Block, instance: usize, rel: u64) -> Option<Decoded> {
    let slot = usize::try_from(rel / 4).ok()?;
    let (ri, elem) = (*lookup().slots[block as usize].get(slot)?)?;
    let reg = REGISTERS.get(usize::from(ri))?;
    let start = u64::from(elem)
        .checked_mul(reg.stride)?
        .checked_add(reg.offset)?;
    Some(Decoded {
        reg,
        instance,
        elem: usize::from(elem),
        byte: rel.checked_sub(start)?,
    })
}

/// The register with this id (first element for arrays).
pub fn register(id: RegId) -> &'static Register {
    REGISTERS
        .iter()
        .find(|r| r.id == id)
        .expect("every RegId is in the table")
}

/// BAR offset of register `id`, element `elem`, of partition `instance`
/// (a driver's own indices, not guest input).
#[allow(clippy::arithmetic_side_effects)]
pub fn offset_of(id: RegId, instance: usize, elem: usize) -> u64 {
    let r = register(id);
    let base = match r.block {
        Block::Global => GLOBAL_BASE,
        Block::PartitionTable => PTABLE_BASE + PTABLE_STRIDE * instance as u64,
        Block::Window => WINDOW_BASE + WINDOW_STRIDE * instance as u64,
    };
    base + r.offset + r.stride * elem as u64
}

/// Offset of register `id` inside one window (what a vGPU's BAR0 offset is).
#[allow(clippy::arithmetic_side_effects)]
pub fn window_offset(id: RegId, elem: usize) -> u64 {
    let r = register(id);
    debug_assert_eq!(r.block, Block::Window);
    r.offset + r.stride * elem as u64
}

impl Decoded {
    /// "PT[3].CTRL", "PART[1].RING_BASE[0]", "SCRATCH" (":hi" for the upper half).
    pub fn name(&self) -> String {
        let mut s = String::new();
        if self.reg.block != Block::Global {
            let _ = write!(s, "{}[{}].", self.reg.block.prefix(), self.instance);
        }
        s.push_str(self.reg.name);
        if self.reg.count > 1 {
            let _ = write!(s, "[{}]", self.elem);
        }
        if self.byte == 4 {
            s.push_str(":hi");
        }
        s
    }
}

/// Field-by-field rendering of a register value: "ENABLE=1 XLATE=0 CODE=VRAM_OOB".
pub fn format_fields(reg: &Register, value: u64) -> String {
    let mut out = String::new();
    for f in reg.fields {
        let v = f.extract(value);
        if !out.is_empty() {
            out.push(' ');
        }
        match f.value_name(v) {
            Some(name) => {
                let _ = write!(out, "{}={}", f.name, name);
            }
            None if f.width == 1 => {
                let _ = write!(out, "{}={}", f.name, v);
            }
            None => {
                let _ = write!(out, "{}={:#x}", f.name, v);
            }
        }
    }
    out
}

/// The register an access to BAR `bar` of function `func` lands in: the
/// PF's register BAR decodes as [`decode`]; a VF's register BAR (SR-IOV
/// mode) is its partition's window, so it decodes with that partition's
/// register names.
pub fn decode_function(func: crate::Function, bar: u8, offset: u64) -> Option<Decoded> {
    match func {
        crate::Function::Pf if bar == REG_BAR => decode(offset),
        crate::Function::Vf(n) if bar == VF_REG_BAR => {
            decode_in_block(Block::Window, usize::from(n), offset)
        }
        _ => None,
    }
}

/// [`format_access`] for an access to any BAR of any function: a VF's
/// accesses are prefixed with the VF (`VF1 PART[1].DOORBELL[0] <- 0x3`),
/// other BARs name the BAR (`BAR2+0x1000`).
pub fn format_function_access(
    func: crate::Function,
    bar: u8,
    offset: u64,
    size: u32,
    value: u64,
    write: bool,
) -> String {
    let prefix = match func {
        crate::Function::Pf => String::new(),
        vf => format!("{vf} "),
    };
    match (func, decode_function(func, bar, offset)) {
        (crate::Function::Pf, _) if bar == REG_BAR => format_access(offset, size, value, write),
        (crate::Function::Vf(n), Some(d)) => {
            // The same register in the PF's window has the same name and fields.
            let pf_offset = WINDOW_BASE
                .checked_add(WINDOW_STRIDE.saturating_mul(u64::from(n)))
                .and_then(|b| b.checked_add(offset));
            match pf_offset {
                Some(o) if d.instance < MAX_PARTITIONS => {
                    format!("{prefix}{}", format_access(o, size, value, write))
                }
                _ => format!("{prefix}BAR{bar}+{offset:#x}"),
            }
        }
        _ => format!("{prefix}BAR{bar}+{offset:#x}"),
    }
}

/// One decoded register access, as the trace decoder and test transcripts print it.
pub fn format_access(offset: u64, size: u32, value: u64, write: bool) -> String {
    let arrow = if write { "<-" } else { "->" };
    match decode(offset) {
        Some(d) => {
            let mut s = format!("{} {} {:#x}", d.name(), arrow, value);
            if d.byte == 0 && size as u64 >= d.reg.width as u64 && !d.reg.fields.is_empty() {
                let _ = write!(s, " {{{}}}", format_fields(d.reg, value));
            }
            s
        }
        None => format!("BAR0+{offset:#x} {arrow} {value:#x} (unmapped, {size} bytes)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_names_window_ring_and_halves() {
        let off = offset_of(RegId::WRingBase, 3, 1);
        let d = decode(off).unwrap();
        assert_eq!(d.name(), "PART[3].RING_BASE[1]");
        assert_eq!(decode(off + 4).unwrap().name(), "PART[3].RING_BASE[1]:hi");
        assert_eq!(
            decode(offset_of(RegId::PtCtrl, 5, 0)).unwrap().name(),
            "PT[5].CTRL"
        );
        assert!(decode(0x0ffc).is_none());
        assert!(decode(REG_BAR_SIZE - 4).is_none());
    }

    #[test]
    fn format_access_decodes_fields_and_enum_values() {
        let s = format_access(offset_of(RegId::WFaultStatus, 0, 0), 4, 0x101, false);
        assert_eq!(
            s,
            "PART[0].FAULT_STATUS -> 0x101 {CODE=VRAM_OOB RING=0x1 WRITE=0}"
        );
        let ctrl = PtCtrl::new().with_enable(true).with_xlate(true);
        let s = format_access(
            offset_of(RegId::PtCtrl, 2, 0),
            4,
            ctrl.into_bits() as u64,
            true,
        );
        assert_eq!(
            s,
            "PT[2].CTRL <- 0x3 {ENABLE=1 XLATE=1 XLATE_REPLAY=0 STOP=0 DIRTY_LOG=0}"
        );
    }

    #[test]
    fn a_vfs_register_bar_decodes_as_its_partitions_window() {
        use crate::Function;
        let off = window_offset(RegId::WDoorbell, 1);
        let d = decode_function(Function::Vf(3), VF_REG_BAR, off).unwrap();
        assert_eq!(d.name(), "PART[3].DOORBELL[1]");
        assert!(decode_function(Function::Vf(3), VF_VRAM_BAR, off).is_none());
        assert!(decode_function(Function::Vf(3), VF_REG_BAR, WINDOW_STRIDE).is_none());
        assert_eq!(
            format_function_access(Function::Vf(3), VF_REG_BAR, off, 4, 5, true),
            "VF3 PART[3].DOORBELL[1] <- 0x5"
        );
        assert_eq!(
            format_function_access(Function::Vf(3), VF_VRAM_BAR, 0x10, 4, 5, false),
            "VF3 BAR2+0x10"
        );
        assert_eq!(
            format_function_access(Function::Pf, REG_BAR, 0x1c, 4, 7, true),
            format_access(0x1c, 4, 7, true)
        );
        assert_eq!(
            format_function_access(Function::Pf, VRAM_BAR, 0x40, 4, 7, true),
            "BAR2+0x40"
        );
    }
}
