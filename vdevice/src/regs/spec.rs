//! SPEC.md's register tables, generated from the register table
//! (vdevice/tests/spec.rs keeps SPEC.md equal to them).

use super::*;
use std::fmt::Write as _;

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
