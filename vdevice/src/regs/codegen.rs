//! The generated views of the register table: SPEC.md's register tables
//! and the kernel modules' C header.

use super::*;

/// Markdown tables of every register, as SPEC.md embeds them.
pub fn spec_tables() -> String {
    let mut out = String::new();
    for block in Block::ALL {
        let title = match block {
            Block::Global => format!(
                "### Global registers (BAR0 + {GLOBAL_BASE:#x}, host only)\n\n"
            ),
            Block::PartitionTable => format!(
                "### Partition table (BAR0 + {PTABLE_BASE:#x} + p * {PTABLE_STRIDE:#x}, host only)\n\n"
            ),
            Block::Window => format!(
                "### Partition window (BAR0 + {WINDOW_BASE:#x} + p * {WINDOW_STRIDE:#x}; a vGPU's whole BAR0)\n\n"
            ),
        };
        out.push_str(&title);
        out.push_str("| offset | name | width | access | reset | fields | description |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        for r in REGISTERS.iter().filter(|r| r.block == block) {
            let offset = if r.count > 1 {
                format!("{:#05x} + n * {:#x} (n < {})", r.offset, r.stride, r.count)
            } else {
                format!("{:#05x}", r.offset)
            };
            let name = if r.count > 1 {
                format!("{}[n]", r.name)
            } else {
                r.name.to_string()
            };
            let reset = match r.reset {
                Reset::Value(v) => format!("{v:#x}"),
                Reset::Config(c) => format!("from {c}"),
            };
            let fields: Vec<String> = r
                .fields
                .iter()
                .map(|f| {
                    let mut s = format!("{} [{}]", f.name, f.bits());
                    if !f.values.is_empty() {
                        let vals: Vec<String> =
                            f.values.iter().map(|(v, n)| format!("{v}={n}")).collect();
                        let _ = write!(s, " ({})", vals.join(", "));
                    }
                    s
                })
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                offset,
                name,
                r.width * 8,
                r.access.name(),
                reset,
                fields.join("<br>"),
                r.desc
            );
        }
        out.push('\n');
    }
    out
}

/// The C header the L1 kernel modules include (`host-driver/include/vgpu_regs.h`):
/// offsets, field shifts and masks, and enumerated values, all from this table.
pub fn c_header() -> String {
    let mut o = String::new();
    o.push_str("/* SPDX-License-Identifier: GPL-2.0-or-later */\n");
    o.push_str(
        "/*\n * vgpu_regs.h - register map of vgpu-pci, GENERATED from vdevice/src/regs.rs.\n",
    );
    o.push_str(" * Do not edit: run UPDATE_SPEC=1 cargo test -p vdevice --test spec\n */\n");
    o.push_str("#ifndef VGPU_REGS_H\n#define VGPU_REGS_H\n\n");
    let consts: &[(&str, u64)] = &[
        ("VGPU_PCI_VENDOR_ID", crate::pci::VENDOR_ID as u64),
        ("VGPU_PCI_DEVICE_ID", crate::pci::DEVICE_ID as u64),
        ("VGPU_PCI_VGPU_DEVICE_ID", crate::pci::VGPU_DEVICE_ID as u64),
        (
            "VGPU_PCI_SUBSYSTEM_VENDOR_ID",
            crate::pci::SUBSYSTEM_VENDOR_ID as u64,
        ),
        ("VGPU_PCI_SUBSYSTEM_ID", crate::pci::SUBSYSTEM_ID as u64),
        ("VGPU_PCI_CLASS", crate::pci::CLASS_CODE as u64),
        ("VGPU_REG_BAR", REG_BAR as u64),
        ("VGPU_VRAM_BAR", VRAM_BAR as u64),
        ("VGPU_MSIX_BAR", MSIX_BAR as u64),
        ("VGPU_REG_BAR_SIZE", REG_BAR_SIZE),
        ("VGPU_PTABLE_BASE", PTABLE_BASE),
        ("VGPU_PTABLE_STRIDE", PTABLE_STRIDE),
        ("VGPU_WINDOW_BASE", WINDOW_BASE),
        ("VGPU_WINDOW_STRIDE", WINDOW_STRIDE),
        ("VGPU_DOORBELL_PAGE", DOORBELL_PAGE),
        ("VGPU_MAX_PARTITIONS", MAX_PARTITIONS as u64),
        ("VGPU_RINGS_PER_PARTITION", RINGS_PER_PARTITION as u64),
        ("VGPU_HOST_VECTORS", HOST_VECTORS as u64),
        ("VGPU_VECTORS_PER_PARTITION", VECTORS_PER_PARTITION as u64),
        ("VGPU_HOST_VECTOR_EVENTS", HOST_VECTOR_EVENTS as u64),
        ("VGPU_HOST_VECTOR_XLATE", HOST_VECTOR_XLATE as u64),
        ("VGPU_PART_VECTOR_ENGINE", PART_VECTOR_ENGINE as u64),
        ("VGPU_PART_VECTOR_FAULT", PART_VECTOR_FAULT as u64),
        ("VGPU_DEVICE_MAGIC", DEVICE_MAGIC as u64),
        ("VGPU_WINDOW_MAGIC", WINDOW_MAGIC as u64),
        ("VGPU_VRAM_ALIGN", 0x10000),
        ("VGPU_XLATE_PAGE_SIZE", crate::xlate::PAGE_SIZE),
        ("VGPU_XLATE_PTES_PER_TABLE", crate::xlate::PTES_PER_TABLE),
        ("VGPU_XLATE_DIR_ENTRY_SPAN", crate::xlate::DIR_ENTRY_SPAN),
        (
            "VGPU_XLATE_MAX_DIR_ENTRIES",
            crate::xlate::MAX_DIR_ENTRIES as u64,
        ),
        ("VGPU_XLATE_VALID", 1),
        ("VGPU_XLATE_WRITABLE", 2),
        (
            "VGPU_XLATE_RESUME_RETRY",
            ResumeAction::Retry.into_bits() as u64,
        ),
        (
            "VGPU_XLATE_RESUME_CANCEL",
            ResumeAction::Cancel.into_bits() as u64,
        ),
        ("VGPU_COMMAND_BYTES", crate::command::COMMAND_BYTES as u64),
    ];
    for (n, v) in consts {
        let _ = writeln!(o, "#define {n:<40} {v:#x}ULL");
    }
    o.push_str("\n/* First MSI-X vector of partition p. */\n");
    o.push_str("#define VGPU_PARTITION_VECTOR_BASE(p) (VGPU_HOST_VECTORS + VGPU_VECTORS_PER_PARTITION * (p))\n");
    for block in Block::ALL {
        let (prefix, comment) = match block {
            Block::Global => ("VGPU_G_", "Global registers: offsets in BAR0"),
            Block::PartitionTable => (
                "VGPU_PT_",
                "Partition table: offsets in an entry (BAR0 + VGPU_PTABLE_BASE + p * VGPU_PTABLE_STRIDE)",
            ),
            Block::Window => (
                "VGPU_W_",
                "Partition window: offsets in a window (BAR0 + VGPU_WINDOW_BASE + p * VGPU_WINDOW_STRIDE)",
            ),
        };
        let _ = writeln!(o, "\n/* {comment} */");
        for r in REGISTERS.iter().filter(|r| r.block == block) {
            let name = format!("{prefix}{}", r.name);
            if r.count > 1 {
                let _ = writeln!(
                    o,
                    "#define {:<40} ({:#x}ULL + (n) * {:#x}ULL) /* {} bits, {} */",
                    format!("{name}(n)"),
                    r.offset,
                    r.stride,
                    r.width * 8,
                    r.access.name()
                );
            } else {
                let _ = writeln!(
                    o,
                    "#define {name:<40} {:#x}ULL /* {} bits, {} */",
                    r.offset,
                    r.width * 8,
                    r.access.name()
                );
            }
            for f in r.fields {
                let fname = format!("{name}_{}", f.name);
                let mask = (((1u128 << f.width) - 1) as u64) << f.lsb;
                let _ = writeln!(o, "#define {:<40} {mask:#x}ULL", fname);
            }
        }
    }
    let enums: &[(&str, &[(u64, &str)])] = &[
        ("VGPU_STATE_", PartitionState::VALUES),
        ("VGPU_FAULT_", FaultCode::VALUES),
        ("VGPU_ACCESS_ERROR_", AccessError::VALUES),
        ("VGPU_INJECT_", InjectKind::VALUES),
    ];
    o.push_str("\n/* Enumerated field values */\n");
    for (prefix, values) in enums {
        for (v, n) in *values {
            let _ = writeln!(o, "#define {:<40} {v}", format!("{prefix}{n}"));
        }
    }
    o.push_str("\n/* Commands: 64 bytes, see SPEC.md section 6 */\n");
    for op in 0..=6u8 {
        let name = crate::command::Opcode::from_bits(op)
            .expect("opcode")
            .name();
        let _ = writeln!(o, "#define {:<40} {op}", format!("VGPU_OP_{name}"));
    }
    o.push_str("#define VGPU_CMD_DST_SYSMEM                      0x1\n");
    o.push_str("#define VGPU_CMD_SRC_SYSMEM                      0x2\n");
    o.push_str("#define VGPU_CMD_INTR                            0x4\n");
    o.push_str("\n#endif /* VGPU_REGS_H */\n");
    o
}
