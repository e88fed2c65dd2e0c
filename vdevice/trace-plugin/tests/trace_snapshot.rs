//! The decoded MMIO trace of the RM's probe, of one vGPU's creation and
//! removal, and of the example driver's reset-then-forgotten-ring mistake
//! with the device's events (`make test-trace` records it in L1 and sets the
//! path), as an insta snapshot: a change in the host driver's hardware
//! programming, or in what the device says about a driver's mistake, shows
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

/// The example driver's mistake, from its partition reset up to the point
/// where it programs the ring again: everything in it happens on the vCPU
/// (no command runs while the ring is off), so its order is fixed. The
/// fault before the reset is the engines': its interrupt or state events
/// may still land just after the reset line, and are left out.
fn mistake<'a>(phase: &[&'a str]) -> Vec<&'a str> {
    let straggler = |l: &&str| {
        l.contains(" dev ")
            && (l.contains("MSI-X") || l.contains(" FAULT ") || l.ends_with("-> FAULTED"))
    };
    phase
        .iter()
        .skip_while(|l| !l.contains("PART[0].RESET <- "))
        .take_while(|l| !l.contains("PART[0].RING_CTRL[0] <- "))
        .filter(|l| !straggler(l))
        .copied()
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
    let forgot = mistake(&phases(&trace, 5, 6));
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
    assert!(
        forgot
            .iter()
            .any(|l| l.contains("DOORBELL[0] <- ") && l.contains("REJECTED BAD_VALUE")),
        "the forgotten ring's doorbell is not REJECTED in the trace:\n{}",
        forgot.join("\n")
    );
    let snap = format!(
        "== probe (insmod vgpu_rm vgpu_vfio)\n{}\n== create one vGPU\n{}\n== remove it\n{}\n\
         == first-driver --forget-ring: reset, then a doorbell with the ring off\n{}",
        normalise(&probe),
        normalise(&create),
        normalise(&remove),
        normalise(&forgot)
    );
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s.bind(|| insta::assert_snapshot!("trace_rm_probe_and_vgpu", snap));
}

#[test]
fn the_mistake_starts_at_the_reset_and_drops_the_faults_stragglers() {
    let phase = [
        "1 vcpu0 R4 0x010018 PART[0].STATUS -> 0x3 {STATE=FAULTED}",
        "2 vcpu0 W4 0x01003c PART[0].RESET <- 0x1",
        "2 dev   PART[0] RESET (rings off, window to reset values)",
        "3 dev   MSI-X 3 (PART[0] FAULT) masked: not sent",
        "2 dev   PART[0] FAULTED -> IDLE",
        "4 vcpu0 W4 0x011000 PART[0].DOORBELL[0] <- 0x4  REJECTED BAD_VALUE (ring 0 off)",
        "5 vcpu0 W4 0x01010c PART[0].RING_CTRL[0] <- 0x0 {SYSMEM=0}",
    ];
    let m = mistake(&phase);
    assert_eq!(m.len(), 4, "{m:#?}");
    assert!(m[0].contains("RESET <-") && m[3].contains("REJECTED"));
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
