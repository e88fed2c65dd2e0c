//! The decoded MMIO trace of the RM's probe and of one vGPU's creation and
//! removal (`make test-trace` records it in L1 and sets the path), as an
//! insta snapshot: a change in the host driver's hardware programming shows
//! up in review. trace-run.sh marks the phases by writing 0x7ace000N into
//! the global SCRATCH register.

use std::path::PathBuf;

/// The lines of phase `from` up to (not including) marker `to`.
fn phases(trace: &str, from: u32, to: u32) -> Vec<&str> {
    let marker = |n: u32| format!("SCRATCH <- {:#x}", 0x7ace_0000 + n);
    let (start, end) = (marker(from), marker(to));
    trace
        .lines()
        .skip_while(|l| !l.ends_with(&start))
        .take_while(|l| !l.ends_with(&end))
        .collect()
}

/// Drop the time column; hide non-zero values that differ from run to run:
/// times, busy counters, and bus addresses the kernel chose (DMA of the
/// translation directory). Polling loops of any length become one line.
fn normalise(lines: &[&str]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut repeats = 0;
    for l in lines {
        let l = l.trim_start();
        let rest = l.split_once(' ').map_or(l, |(_, r)| r);
        let volatile = ["TIMESTAMP", "BUSY_NS", "XLATE_ROOT"];
        let norm = match rest.split_once(" -> ").or_else(|| rest.split_once(" <- ")) {
            // (a zero is a deliberate clear, not a chosen address)
            Some((head, value))
                if volatile.iter().any(|v| head.contains(v))
                    && value.split(' ').next() != Some("0x0") =>
            {
                let arrow = if rest.contains(" -> ") { "->" } else { "<-" };
                format!("{head} {arrow} <varies>")
            }
            _ => rest.to_string(),
        };
        if out.last() == Some(&norm) {
            repeats += 1;
            continue;
        }
        if repeats > 0 {
            out.push("  (repeated)".into());
            repeats = 0;
        }
        out.push(norm);
    }
    if repeats > 0 {
        out.push("  (repeated)".into());
    }
    out.join("\n")
}

#[test]
#[ignore = "needs a traced L1 run: make test-trace"]
fn rm_probe_and_vgpu_lifecycle_trace() {
    let path = std::env::var("VGPU_TRACE_LOG").expect("VGPU_TRACE_LOG: run make test-trace");
    let trace = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let probe = phases(&trace, 1, 2);
    let create = phases(&trace, 2, 3);
    let remove = phases(&trace, 3, 4);
    assert!(
        probe.len() > 5,
        "no probe in the trace:\n{}",
        probe.join("\n")
    );
    assert!(
        probe
            .iter()
            .any(|l| l.contains("R4") && l.contains(" ID -> 0x55504756")),
        "the RM did not read the device ID"
    );
    assert!(
        create.iter().any(|l| l.contains(".CTRL <- ")),
        "the vGPU's creation programmed no partition"
    );
    let snap = format!(
        "== probe (insmod vgpu_rm vgpu_vfio)\n{}\n== create one vGPU\n{}\n== remove it\n{}",
        normalise(&probe),
        normalise(&create),
        normalise(&remove)
    );
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s.bind(|| insta::assert_snapshot!("trace_rm_probe_and_vgpu", snap));
}

#[test]
fn phases_and_normaliser() {
    let t = "1 vcpu0 W4 0x00001c SCRATCH <- 0x7ace0001\n\
             2 vcpu0 R4 0x000000 ID -> 0x55504756\n\
             3 vcpu0 R4 0x010030 PART[0].STATUS -> 0x2\n\
             4 vcpu0 R4 0x010030 PART[0].STATUS -> 0x2\n\
             5 vcpu0 R8 0x010040 PART[0].TIMESTAMP -> 0x1234\n\
             6 vcpu0 W4 0x00001c SCRATCH <- 0x7ace0002";
    let p = phases(t.trim_end(), 1, 2);
    assert_eq!(p.len(), 5);
    assert_eq!(
        normalise(&p),
        "vcpu0 W4 0x00001c SCRATCH <- 0x7ace0001\nvcpu0 R4 0x000000 ID -> 0x55504756\n\
         vcpu0 R4 0x010030 PART[0].STATUS -> 0x2\n  (repeated)\n\
         vcpu0 R8 0x010040 PART[0].TIMESTAMP -> <varies>"
    );
}
