//! The C header the L1 kernel modules include
//! (`host-driver/include/vgpu_regs.h`), generated from the register table,
//! the field structs and the command format; vdevice/tests/spec.rs keeps
//! the checked-in header equal to it.
//!
//! Lists come as X-macros (`VGPU_STATE_VALUES(X)`, `VGPU_GLOBAL_REGS(X)`):
//! C expands them where it needs a table, so no header defines a variable
//! that a file might not use (W=1). checkpatch reads a multi-line macro as
//! one expression only when its continuation lines start in column 0 and
//! end in a bare backslash, so the lists are laid out that way.

use super::*;
use crate::command::{layout, CmdFlags, Opcode, COMMAND_BYTES};
use crate::pci;
use crate::xlate;
use std::fmt::Write as _;

/// `#define NAME VALUE` with the value column aligned as in the rest of the header.
fn define(o: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = writeln!(o, "#define {name:<40} {value}");
}

/// `#define NAME(X) X(...)...`, one entry a line.
fn x_macro(o: &mut String, comment: &str, name: &str, entries: &[String]) {
    let _ = writeln!(o, "/* {comment} */");
    let _ = write!(o, "#define {name}(X) \\");
    for (i, e) in entries.iter().enumerate() {
        let more = if i + 1 < entries.len() { "\\" } else { "" };
        let _ = write!(o, "\nX({e}){more}");
    }
    o.push('\n');
}

/// Mask and shift of one field, as `PREFIX_FIELD` and `PREFIX_FIELD_SHIFT`.
fn field_defines(o: &mut String, prefix: &str, f: &Field) {
    define(
        o,
        &format!("{prefix}_{}", f.name),
        format_args!("{:#x}ULL", f.mask()),
    );
    define(o, &format!("{prefix}_{}_SHIFT", f.name), f.lsb);
}

/// The mask of field `name` of a layout.
fn mask(fields: &[Field], name: &str) -> u64 {
    fields
        .iter()
        .find(|f| f.name == name)
        .map_or(0, Field::mask)
}

/// Prefix of a block's register macros, and what its offsets are relative to.
fn block_prefix(block: Block) -> (&'static str, &'static str) {
    match block {
        Block::Global => ("G", "Global registers: offsets in BAR0"),
        Block::PartitionTable => (
            "PT",
            "Partition table: offsets in an entry (BAR0 + VGPU_PTABLE_BASE + p * VGPU_PTABLE_STRIDE)",
        ),
        Block::Window => (
            "W",
            "Partition window: offsets in a window (BAR0 + VGPU_WINDOW_BASE + p * VGPU_WINDOW_STRIDE)",
        ),
    }
}

fn constants(o: &mut String) {
    let consts: &[(&str, u64)] = &[
        ("VGPU_PCI_VENDOR_ID", pci::VENDOR_ID as u64),
        ("VGPU_PCI_DEVICE_ID", pci::DEVICE_ID as u64),
        ("VGPU_PCI_VGPU_DEVICE_ID", pci::VGPU_DEVICE_ID as u64),
        (
            "VGPU_PCI_SUBSYSTEM_VENDOR_ID",
            pci::SUBSYSTEM_VENDOR_ID as u64,
        ),
        ("VGPU_PCI_SUBSYSTEM_ID", pci::SUBSYSTEM_ID as u64),
        ("VGPU_PCI_CLASS", pci::CLASS_CODE as u64),
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
        ("VGPU_VRAM_ALIGN", VRAM_GRANULE),
        ("VGPU_XLATE_PAGE_SIZE", xlate::PAGE_SIZE),
        ("VGPU_XLATE_PTES_PER_TABLE", xlate::PTES_PER_TABLE),
        ("VGPU_XLATE_DIR_ENTRY_SPAN", xlate::DIR_ENTRY_SPAN),
        ("VGPU_XLATE_MAX_DIR_ENTRIES", xlate::MAX_DIR_ENTRIES as u64),
        ("VGPU_XLATE_VALID", mask(XlatePte::FIELDS, "VALID")),
        ("VGPU_XLATE_WRITABLE", mask(XlatePte::FIELDS, "WRITABLE")),
        (
            "VGPU_XLATE_RESUME_RETRY",
            ResumeAction::Retry.into_bits() as u64,
        ),
        (
            "VGPU_XLATE_RESUME_CANCEL",
            ResumeAction::Cancel.into_bits() as u64,
        ),
        ("VGPU_COMMAND_BYTES", COMMAND_BYTES as u64),
        ("VGPU_VERSION", VERSION_WORD as u64),
        ("VGPU_FAULT_LOG_DEPTH", FAULT_LOG_DEPTH as u64),
        ("VGPU_MAX_RING_SIZE", MAX_RING_SIZE as u64),
        ("VGPU_MAX_WEIGHT", MAX_WEIGHT as u64),
        ("VGPU_CTX_BYTES", crate::context::CTX_BYTES as u64),
        ("VGPU_CTX_MAGIC", crate::context::CTX_MAGIC as u64),
        ("VGPU_DIRTY_PAGE", crate::dirty::DIRTY_PAGE),
        ("VGPU_DIRTY_SYS_SPAN", crate::dirty::DIRTY_SYS_SPAN),
    ];
    for (n, v) in consts {
        define(o, n, format_args!("{v:#x}ULL"));
    }
    o.push_str("\n/* First MSI-X vector of partition p. */\n");
    o.push_str("#define VGPU_PARTITION_VECTOR_BASE(p) (VGPU_HOST_VECTORS + VGPU_VECTORS_PER_PARTITION * (p))\n");
}

/// Offsets, field masks and shifts, and reset values of RW registers.
fn registers(o: &mut String, block: Block) {
    let (prefix, comment) = block_prefix(block);
    let _ = writeln!(o, "\n/* {comment} */");
    for r in REGISTERS.iter().filter(|r| r.block == block) {
        let name = format!("VGPU_{prefix}_{}", r.name);
        let what = format!("/* {} bits, {} */", r.width * 8, r.access.name());
        if r.count > 1 {
            define(
                o,
                &format!("{name}(n)"),
                format_args!("({:#x}ULL + (n) * {:#x}ULL) {what}", r.offset, r.stride),
            );
        } else {
            define(o, &name, format_args!("{:#x}ULL {what}", r.offset));
        }
        for f in r.fields {
            field_defines(o, &name, f);
        }
        if let (Access::Rw, Reset::Value(v @ 1..)) = (r.access, r.reset) {
            define(o, &format!("{name}_RESET"), format_args!("{v:#x}ULL"));
        }
    }
}

/// The registers of a block as an X-macro, for code that walks them
/// (the RM's debugfs dump).
fn register_list(o: &mut String, block: Block) {
    let (list, what) = match block {
        Block::Global => ("VGPU_GLOBAL", "global register"),
        Block::PartitionTable => ("VGPU_PTABLE", "partition-table register"),
        Block::Window => ("VGPU_WINDOW", "window register"),
    };
    let entry = |r: &Register| {
        format!(
            "{}, {:#05x}ULL, {}, {}",
            r.name,
            r.offset,
            r.width,
            r.access.name()
        )
    };
    let plain: Vec<String> = REGISTERS
        .iter()
        .filter(|r| r.block == block && r.count == 1)
        .map(entry)
        .collect();
    o.push('\n');
    x_macro(
        o,
        &format!("X(NAME, OFFSET, BYTES, ACCESS) for each {what}, in offset order"),
        &format!("{list}_REGS"),
        &plain,
    );
    let arrays: Vec<String> = REGISTERS
        .iter()
        .filter(|r| r.block == block && r.count > 1)
        .map(|r| format!("{}, {}, {:#x}ULL", entry(r), r.count, r.stride))
        .collect();
    if !arrays.is_empty() {
        x_macro(
            o,
            &format!("X(NAME, OFFSET, BYTES, ACCESS, COUNT, STRIDE) for each {what} array"),
            &format!("{list}_ARRAY_REGS"),
            &arrays,
        );
    }
}

/// An enumerated field's values as C sees them.
struct ValueList {
    prefix: &'static str,
    what: &'static str,
    values: &'static [(u64, &'static str)],
    /// Each value also gets its own `#define PREFIX_NAME` (XLATE_RESUME's
    /// are VGPU_XLATE_RESUME_RETRY/CANCEL with the constants).
    defines: bool,
}

fn value_names(o: &mut String) {
    let list = |prefix, what, values, defines| ValueList {
        prefix,
        what,
        values,
        defines,
    };
    let enums = [
        list(
            "VGPU_STATE",
            "partition state",
            PartitionState::VALUES,
            true,
        ),
        list("VGPU_FAULT", "fault code", FaultCode::VALUES, true),
        list(
            "VGPU_ACCESS_ERROR",
            "access-error reason",
            AccessError::VALUES,
            true,
        ),
        list(
            "VGPU_INJECT",
            "fault-injection kind",
            InjectKind::VALUES,
            true,
        ),
        list(
            "VGPU_XLATE_RESUME",
            "XLATE_RESUME action",
            ResumeAction::VALUES,
            false,
        ),
        list("VGPU_CTX_OP", "CTX_CMD operation", CtxOp::VALUES, true),
        list("VGPU_CTX", "CTX_STATUS result", CtxResult::VALUES, true),
        list(
            "VGPU_DIRTY",
            "dirty log (DIRTY_SEL.LOG)",
            DirtyKind::VALUES,
            true,
        ),
    ];
    o.push_str("\n/* Enumerated field values */\n");
    for e in enums.iter().filter(|e| e.defines) {
        for (v, n) in e.values {
            define(o, &format!("{}_{n}", e.prefix), v);
        }
    }
    for e in &enums {
        let entries: Vec<String> = e.values.iter().map(|(v, n)| format!("{v}, {n}")).collect();
        o.push('\n');
        x_macro(
            o,
            &format!("X(VALUE, NAME) for each {}", e.what),
            &format!("{}_VALUES", e.prefix),
            &entries,
        );
    }
}

fn commands(o: &mut String) {
    o.push_str("\n/* Commands: 64 bytes, see SPEC.md section 6 */\n");
    for op in Opcode::ALL {
        define(o, &format!("VGPU_OP_{}", op.name()), *op as u8);
    }
    let flags = [
        ("DST_SYSMEM", CmdFlags::new().with_dst_sysmem(true)),
        ("SRC_SYSMEM", CmdFlags::new().with_src_sysmem(true)),
        ("INTR", CmdFlags::new().with_intr(true)),
    ];
    for (name, bit) in flags {
        define(
            o,
            &format!("VGPU_CMD_{name}"),
            format_args!("{:#x}", bit.into_bits()),
        );
    }
    define(
        o,
        "VGPU_CMD_FLAGS_DEFINED",
        format_args!("{:#x}", CmdFlags::DEFINED),
    );
    o.push('\n');
    let ops: Vec<String> = Opcode::ALL
        .iter()
        .map(|op| format!("{}, {}", *op as u8, op.name()))
        .collect();
    x_macro(o, "X(VALUE, NAME) for each opcode", "VGPU_OP_VALUES", &ops);
    o.push_str("\n/* Command layout: byte offset and size of each field, little endian */\n");
    for (name, offset, bytes) in layout::FIELDS {
        define(o, &format!("VGPU_CMD_{name}_OFFSET"), offset);
        define(o, &format!("VGPU_CMD_{name}_BYTES"), bytes);
    }
    let fields: Vec<String> = layout::FIELDS
        .iter()
        .map(|(name, offset, bytes)| format!("{name}, {offset}, {bytes}"))
        .collect();
    x_macro(
        o,
        "X(NAME, OFFSET, BYTES) for each command field; every other byte is reserved (0)",
        "VGPU_CMD_FIELDS",
        &fields,
    );
}

/// Fields of the translation entries the host writes in its memory.
fn xlate_entries(o: &mut String) {
    o.push_str("\n/* Translation directory and page-table entries (64 bits, in host memory) */\n");
    for (prefix, fields) in [
        ("VGPU_XLATE_PDE", XlatePde::FIELDS),
        ("VGPU_XLATE_PTE", XlatePte::FIELDS),
    ] {
        for f in fields {
            field_defines(o, prefix, f);
        }
    }
}

/// The whole header.
pub fn c_header() -> String {
    let mut o = String::new();
    o.push_str("/* SPDX-License-Identifier: GPL-2.0-or-later */\n");
    o.push_str(
        "/*\n * vgpu_regs.h - register map of vgpu-pci, GENERATED from vdevice/src/regs/.\n",
    );
    o.push_str(" * Do not edit: run UPDATE_SPEC=1 cargo test -p vdevice --test spec\n */\n");
    o.push_str("#ifndef VGPU_REGS_H\n#define VGPU_REGS_H\n\n");
    constants(&mut o);
    for block in Block::ALL {
        registers(&mut o, block);
    }
    o.push_str("\n/* Register access: ACCESS in the register lists below */\n");
    for a in [Access::Ro, Access::Rw, Access::Wo, Access::Rw1c] {
        let read = u8::from(a != Access::Wo);
        let write = u8::from(a != Access::Ro) << 1;
        define(
            &mut o,
            &format!("VGPU_REG_ACCESS_{}", a.name()),
            format_args!("{:#x}", read | write),
        );
    }
    define(&mut o, "VGPU_REG_READABLE", "0x1");
    define(&mut o, "VGPU_REG_WRITABLE", "0x2");
    for block in Block::ALL {
        register_list(&mut o, block);
    }
    value_names(&mut o);
    xlate_entries(&mut o);
    commands(&mut o);
    o.push_str("\n#endif /* VGPU_REGS_H */\n");
    o
}
