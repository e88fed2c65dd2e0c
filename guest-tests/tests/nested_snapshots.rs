//! Snapshots of the nested run (`make test-nested` sets the path to
//! run-nested.sh's run.log): the checks of L1 and of both L2 guests, the L2
//! guest's `lspci -vvv` of its vGPU and the L1 parent's mdev sysfs tree.
//! The two guests' consoles interleave at random, so each is cut out alone.

mod common;
use common::*;

/// The lines `who` said (run.log prefixes each with "L1  | ", "L2a | "...).
fn said<'a>(log: &'a str, who: &str) -> Vec<&'a str> {
    let prefix = format!("{who:<3} | ");
    log.lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|l| l.trim_end_matches('\r'))
        .collect()
}

/// The lines between "<marker>-BEGIN" and "<marker>-END" (ends of lines:
/// the L2 consoles put terminal escapes in front of some).
fn section<'a>(lines: &[&'a str], marker: &str) -> Vec<&'a str> {
    let begin = format!("{marker}-BEGIN");
    let end = format!("{marker}-END");
    lines
        .iter()
        .skip_while(|l| !l.ends_with(&begin))
        .skip(1)
        .take_while(|l| !l.ends_with(&end))
        .copied()
        .collect()
}

fn is_uuid(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// UUIDs, and the measured numbers inside check details: times, rates,
/// ratios and the CRC of a pattern made from the (random) UUID.
fn normalise_nested(t: &str) -> String {
    let mut out = Vec::new();
    for line in normalise_transcript(t).lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let mut norm = Vec::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            let next = words.get(i + 1).copied().unwrap_or("");
            let prev = if i > 0 { words[i - 1] } else { "" };
            let bare = w.trim_end_matches([',', ':', ')']);
            let numeric = !bare.is_empty() && bare.parse::<f64>().is_ok();
            let w = if is_uuid(bare) {
                w.replace(bare, "<uuid>")
            } else if numeric
                // (interrupts coalesce: their count is timing too)
                && (matches!(next.trim_end_matches(','), "ns" | "MB/s" | "s" | "engine")
                    || prev == "ratio")
            {
                w.replace(bare, "<n>")
            } else if bare
                .strip_suffix('s')
                .is_some_and(|n| n.parse::<f64>().is_ok())
            {
                w.replace(bare, "<n>s")
            } else if prev == "at" && bare.starts_with("0x") {
                w.replace(bare, "<addr>")
            } else if prev == "crc32fast:" && bare.starts_with("0x") {
                w.replace(bare, "<crc>")
            } else {
                w.to_string()
            };
            norm.push(w);
        }
        out.push(norm.join(" "));
    }
    out.join("\n")
}

/// The run's mode (`VGPU_NESTED_MODE`, mdev when unset) and the snapshot
/// name of `what` in it.
fn mode_and_name(what: &str) -> (String, String) {
    let mode = std::env::var("VGPU_NESTED_MODE").unwrap_or_else(|_| "mdev".into());
    let name = match mode.as_str() {
        "mdev" => format!("nested_{what}"),
        m => format!("nested_{m}_{what}"),
    };
    (mode, name)
}

#[test]
#[ignore = "needs a nested run: make test-nested"]
fn nested_transcript() {
    let (_, name) = mode_and_name("transcript");
    let log = input("VGPU_NESTED_LOG");
    assert!(
        log.contains("result   PASSED"),
        "run-nested did not pass:\n{log}"
    );
    let l1: Vec<&str> = said(&log, "L1")
        .into_iter()
        .filter(|l| l.starts_with("ok ") || l.starts_with("FAIL") || l.starts_with("l1-nested:"))
        // The accelerator L1 found for L2 (and its timeout) depends on the host.
        .filter(|l| !l.starts_with("l1-nested: L2 guests under"))
        .collect();
    let mut t = vec!["== L1".to_string()];
    t.extend(l1.iter().map(|l| l.to_string()));
    for g in ["L2a", "L2b"] {
        let lines = said(&log, g);
        let tr = section(&lines, "VGPU-L2-TRANSCRIPT");
        assert!(
            tr.last().is_some_and(|l| l.ends_with(" passed, 0 failed")),
            "{g} did not pass:\n{}",
            tr.join("\n")
        );
        t.push(format!("== {g}"));
        // The barrier line names the guest; the rest is the same test.
        t.extend(tr.iter().map(|l| l.to_string()));
    }
    settings().bind(|| insta::assert_snapshot!(name, normalise_nested(&t.join("\n"))));
}

#[test]
#[ignore = "needs a nested run: make test-nested"]
fn nested_l2_lspci() {
    let (_, name) = mode_and_name("l2_lspci");
    let log = input("VGPU_NESTED_LOG");
    let lines = said(&log, "L2a");
    let t = section(&lines, "VGPU-L2-LSPCI").join("\n");
    for want in [
        "1234:7691",
        "MSI-X: Enable+",
        "Kernel driver in use: vgpu_guest",
    ] {
        assert!(t.contains(want), "L2 lspci lacks {want:?}:\n{t}");
    }
    settings().bind(|| insta::assert_snapshot!(name, normalise_addresses(&t)));
}

#[test]
#[ignore = "needs a nested run: make test-nested"]
fn nested_l1_sysfs() {
    let (mode, name) = mode_and_name("l1_sysfs");
    let log = input("VGPU_NESTED_LOG");
    let lines = said(&log, "L1");
    let t = section(&lines, "VGPU-SYSFS").join("\n");
    let want = if mode == "sriov" {
        "driver vgpu_vfio_pci"
    } else {
        "/devices: 2"
    };
    assert!(t.contains(want), "no {want:?}:\n{t}");
    settings().bind(|| insta::assert_snapshot!(name, normalise_nested(&t)));
}

/// "VGPU-NESTED KEY NAME k=v..." lines of L1 for guest `g`: the k=v pairs.
fn nested_note(log: &str, key: &str, g: &str) -> Vec<(String, String)> {
    let head = format!("VGPU-NESTED {key} {g} ");
    said(log, "L1")
        .into_iter()
        .filter_map(|l| l.strip_prefix(head.as_str()))
        .next_back()
        .map(|rest| {
            rest.split(' ')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn size_of(s: &str) -> (u32, u32) {
    let (w, h) = s.split_once('x').expect("WxH");
    (w.parse().expect("width"), h.parse().expect("height"))
}

/// The screens L1 took of each L2's vGPU display (QEMU's screendump of the
/// region plane, in run-nested's OUT/screens): the test frames the L2
/// drew with the engine must be there exactly, pixel for pixel; the page
/// flip must show the other frame; the mode the EDID made the guest prefer
/// sizes the plane, and a second mode set resizes it; the console screen
/// is the preferred mode and not blank.
#[test]
#[ignore = "needs a nested run: make test-nested"]
fn nested_screens() {
    use vgpu_guest_tests::screens::{render, test_frame, Ppm};
    // One snapshot for both modes: the screens do not depend on whether
    // the vGPU is an mdev or a VF.
    let name = "nested_screens";
    let log_path = std::env::var("VGPU_NESTED_LOG").expect("VGPU_NESTED_LOG");
    let log = input("VGPU_NESTED_LOG");
    let dir = std::path::Path::new(&log_path)
        .parent()
        .expect("run.log's directory")
        .join("screens");
    let mut t = Vec::new();
    let mut sizes = Vec::new();
    for g in ["L2a", "L2b"] {
        let note = nested_note(&log, "display", g);
        let get = |k: &str| {
            note.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {k} for {g} in the display note"))
        };
        let seed = u32::from_str_radix(&get("seed"), 16).expect("seed");
        let (w, h) = size_of(&get("mode"));
        sizes.push((w, h));
        let load = |tag: &str| {
            Ppm::load(&dir.join(format!("{g}-{tag}.ppm")))
                .unwrap_or_else(|e| panic!("{g} {tag}: {e}"))
        };
        for (frame, tag) in [(0, "frame0"), (1, "flip1")] {
            let p = load(tag);
            let want = render(&test_frame(frame, seed, w, h), w, h);
            if let Some(d) = p.differs(&want) {
                panic!("{g} {tag}: the screen is not test frame {frame} at {w}x{h}: {d}");
            }
            t.push(format!("{g} {tag}: {w}x{h}, test frame {frame} exactly"));
        }
        let mode = std::fs::read_dir(&dir)
            .expect("screens")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .find_map(|f| {
                f.strip_prefix(&format!("{g}-mode"))?
                    .strip_suffix(".ppm")
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("{g}: no screen of the second mode"));
        let (mw, mh) = size_of(&mode);
        assert!((mw, mh) != (w, h), "{g}: the second mode is the first");
        let p = load(&format!("mode{mode}"));
        assert_eq!(
            (p.width, p.height),
            (mw, mh),
            "{g}: the plane did not resize"
        );
        let want = render(&test_frame(2, seed, mw, mh), mw, mh);
        if let Some(d) = p.differs(&want) {
            panic!("{g} mode{mode}: not test frame 2: {d}");
        }
        t.push(format!(
            "{g} mode{mode}: the plane is {mw}x{mh} now, test frame 2 exactly"
        ));
        let c = load("console");
        assert_eq!((c.width, c.height), (w, h), "{g}: the console's mode");
        let distinct: std::collections::BTreeSet<u32> = (0..c.height)
            .step_by(4)
            .flat_map(|y| (0..c.width).step_by(4).map(move |x| (x, y)))
            .map(|(x, y)| c.pixel(x, y))
            .collect();
        assert!(distinct.len() >= 2, "{g}: the console screen is blank");
        t.push(format!("{g} console: {w}x{h}, not blank"));
    }
    assert_ne!(
        sizes[0], sizes[1],
        "the two EDIDs asked for different modes"
    );
    settings().bind(|| insta::assert_snapshot!(name, t.join("\n")));
}

#[test]
fn nested_normaliser_hides_what_varies() {
    let t = "ok   a: written at 13 MB/s\nok   b: woke 86582 ns after\n\
             ok   c: crc32fast: 0x636ba21a\nok   d: 16 MiB, ratio 1.784\n\
             ok   e: created: d04af641-4703-401c-8170-f12601ca576e x\nbench z 3\n\
             ok   f: partition 1, 64 MiB\n\
             ok   g: ring 0 at 8, booted in 24.4s, buffer at 0x6500000, 8 engine irqs";
    assert_eq!(
        normalise_nested(t),
        "ok   a: written at <n> MB/s\nok   b: woke <n> ns after\n\
         ok   c: crc32fast: <crc>\nok   d: 16 MiB, ratio <n>\n\
         ok   e: created: <uuid> x\nbench z <value>\n\
         ok   f: partition 1, 64 MiB\n\
         ok   g: ring 0 at 8, booted in <n>s, buffer at <addr>, <n> engine irqs"
    );
    let log = "L1  | x\nL2a | VGPU-L2-TRANSCRIPT-BEGIN\nL2b | y\nL2a | ok   z\nL2a | \x1b[2JVGPU-L2-TRANSCRIPT-END";
    assert_eq!(section(&said(log, "L2a"), "VGPU-L2-TRANSCRIPT"), ["ok   z"]);
}
