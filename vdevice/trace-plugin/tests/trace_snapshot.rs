//! The decoded MMIO trace of the RM's probe, of one vGPU's creation and
//! removal, of the example driver's reset-then-forgotten-ring mistake with
//! the device's events, and of the RM's side of a vGPU's migration
//! (`make test-trace` records it in L1 and sets the path), as an insta
//! snapshot: a change in the host driver's hardware programming, or in what
//! the device says about a driver's mistake, shows up in review.
//! trace-run.sh marks the phases by writing 0x7ace000N into the global
//! SCRATCH register.

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

/// The RM's side of a phase: its accesses to the host-only registers (the
/// global block and the partition table) and what each access made the
/// device do. The tenant's accesses to its partition window (doorbells,
/// and status polls whose count depends on timing) are left out, and so
/// are the engines' events, which land between the vCPU's lines wherever
/// the engine happens to be. A device event caused by an access carries
/// that access's time stamp (the tracer prints it right after it).
fn rm_side<'a>(phase: &[&'a str]) -> Vec<&'a str> {
    let mut kept_access_time = None;
    let mut out = Vec::new();
    for l in phase {
        let mut f = l.split_whitespace();
        let (time, who) = (f.next(), f.next().unwrap_or(""));
        if who.starts_with("vcpu") {
            // vcpuN SIZE OFFSET NAME ...
            let name = f.nth(2).unwrap_or("");
            let keep = !name.starts_with("PART[");
            kept_access_time = keep.then_some(time);
            if keep {
                out.push(*l);
            }
        } else if kept_access_time.is_some() && kept_access_time == Some(time) {
            out.push(*l);
        }
    }
    out
}

/// Word indices of a context image (SPEC 16) that differ from run to run
/// for the same state: the CRC, and in its records the busy time
/// (`STATS`) and the `ENGINE_DELAY` time left of a command in flight
/// (`EXEC`). An image that does not parse has only its CRC hidden.
fn ctx_image_varying_words(words: &[u32]) -> Vec<usize> {
    const EXEC: u32 = 3;
    const STATS: u32 = 8;
    let mut varying = vec![3];
    let mut at = 4;
    while let Some(&w) = words.get(at) {
        let (tag, len) = (w & 0xffff, (w >> 16) as usize);
        if tag == 0 {
            break;
        }
        let payload = at + 1;
        // both are 8 bytes at payload bytes 16..24
        if tag == EXEC || tag == STATS {
            varying.extend([payload + 4, payload + 5]);
        }
        at = payload + len.div_ceil(4);
    }
    varying
}

/// Hide the varying words of each run of `CTX_DATA` accesses that is a
/// whole context image (a SAVE read out, or one written for a RESTORE).
fn mask_ctx_images(lines: &[&str]) -> Vec<String> {
    let data = |l: &str| -> Option<(usize, u32)> {
        let i = l.find(" CTX_DATA ")?;
        let rest = &l[i + " CTX_DATA ".len()..];
        let v = rest
            .strip_prefix("-> ")
            .or_else(|| rest.strip_prefix("<- "))?;
        let hex = v.split(' ').next()?.strip_prefix("0x")?;
        Some((
            i + " CTX_DATA ".len() + 3,
            u32::from_str_radix(hex, 16).ok()?,
        ))
    };
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let mut i = 0;
    while i < lines.len() {
        let run: Vec<(usize, u32)> = lines[i..].iter().map_while(|l| data(l)).collect();
        if run.is_empty() {
            i += 1;
            continue;
        }
        let words: Vec<u32> = run.iter().map(|&(_, v)| v).collect();
        if words.first() == Some(&0x5854_4356) {
            for w in ctx_image_varying_words(&words) {
                if let Some(&(at, _)) = run.get(w) {
                    let l = lines[i + w];
                    let end = l[at..].find(' ').map_or(l.len(), |e| at + e);
                    out[i + w] = format!("{}<varies>{}", &l[..at], &l[end..]);
                }
            }
        }
        i += run.len();
    }
    out
}

/// Drop the time column; hide non-zero values that differ from run to run:
/// times, busy counters, bus addresses the kernel chose (DMA of the
/// translation directory) and the varying words of context images. A run
/// of identical accesses (a context image's zero padding, a dirty log's
/// empty words, a polling loop) becomes one line ending in `… ×N`.
fn normalise(lines: &[&str]) -> String {
    let mut out: Vec<(String, usize)> = Vec::new();
    for l in mask_ctx_images(lines) {
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
        match out.last_mut() {
            Some((last, n)) if *last == norm => *n += 1,
            _ => out.push((norm, 1)),
        }
    }
    out.iter()
        .map(|(l, n)| match n {
            1 => l.clone(),
            n => format!("{l}  … ×{n}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
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
    let migrate = rm_side(&phases(&trace, 7, 8));
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
    for (what, pattern) in [
        ("STOP", ".CTRL <- "),
        ("SAVE", "CTX_CMD <- "),
        ("RESTORE", "OP=RESTORE"),
        ("a SAVE's CTX_DATA read", " CTX_DATA -> "),
        ("a RESTORE's CTX_DATA write", " CTX_DATA <- "),
        ("CTX_STATUS", " CTX_STATUS -> "),
        ("DIRTY_LOG", "DIRTY_LOG=1"),
        ("a dirty-log read", " DIRTY_WORD -> "),
    ] {
        assert!(
            migrate.iter().any(|l| l.contains(pattern)),
            "no {what} ({pattern:?}) in the migration phase:\n{}",
            migrate.join("\n")
        );
    }
    assert!(
        migrate.iter().any(|l| l.contains("STOP=1")),
        "the migration stopped no partition"
    );
    let snap = format!(
        "== probe (insmod vgpu_rm vgpu_vfio)\n{}\n== create one vGPU\n{}\n== remove it\n{}\n\
         == first-driver --forget-ring: reset, then a doorbell with the ring off\n{}\n\
         == migrate: vgpu-mig-test --only \"DMA logging\" --only \"work queued\" \
         (the RM's host-only registers; the tenant's window and the engines' events left out)\n{}",
        normalise(&probe),
        normalise(&create),
        normalise(&remove),
        normalise(&forgot),
        normalise(&migrate)
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
         vcpu0 R4 0x010030 PART[0].STATUS -> 0x2  … ×2\n\
         vcpu0 R8 0x010040 PART[0].TIMESTAMP -> <varies>"
    );
}

#[test]
fn the_rm_side_keeps_host_registers_and_their_events_only() {
    let phase = [
        "1 vcpu0 W4 0x001000 PT[1].CTRL <- 0xf {ENABLE=1 XLATE=1 XLATE_REPLAY=1 STOP=1 DIRTY_LOG=0}",
        "1 dev   PART[1] BUSY -> STOPPED",
        "2 dev   PART[1] ring 0 #3 FILL done",
        "3 vcpu0 W4 0x013000 PART[1].DOORBELL[0] <- 0x4",
        "3 dev   PART[1] IDLE -> BUSY",
        "4 vcpu0 R4 0x0000b8 CTX_STATUS -> 0x0 {RESULT=OK}",
    ];
    assert_eq!(
        rm_side(&phase),
        [phase[0], phase[1], phase[5]],
        "{:#?}",
        rm_side(&phase)
    );
}

#[test]
fn context_images_hide_their_crc_and_times_and_fold_their_padding() {
    // magic, version, length, CRC; SLICE (8 bytes), STATS (32 bytes), end
    let mut words: Vec<u32> = vec![0x5854_4356, 0x1_0000, 0x200, 0xdead_beef];
    words.extend([0x0008_0001, 0x400_0000, 0]);
    words.extend([0x0020_0008, 4, 0, 0x1000, 0, 0x1234, 0x5678, 0, 0]);
    words.extend([0, 0, 0]);
    let lines: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| format!("{i} vcpu0 R4 0x0000c0 CTX_DATA -> {w:#x}"))
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let n = normalise(&lines);
    let n: Vec<&str> = n.lines().collect();
    assert_eq!(n[3], "vcpu0 R4 0x0000c0 CTX_DATA -> <varies>");
    assert_eq!(n[12], "vcpu0 R4 0x0000c0 CTX_DATA -> <varies>  … ×2");
    assert_eq!(n[13], "vcpu0 R4 0x0000c0 CTX_DATA -> 0x0  … ×5", "{n:#?}");
    assert_eq!(n.len(), 14);
}
