//! Snapshots of the L1 run (`make test-l1` sets the paths): the normalised
//! transcript of vgpu-l1-test and the `lspci -vv` view of the GPU. Ignored
//! in a plain `cargo test`, which has no L1 run to look at.

use std::path::PathBuf;

fn input(var: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| panic!("{var} not set: run `make test-l1`"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s
}

/// Benchmark values and the numbers in their detail lines vary per run.
fn normalise_transcript(t: &str) -> String {
    t.lines()
        .map(|l| match l.strip_prefix("bench ") {
            Some(rest) => format!("bench {} <value>", rest.split(' ').next().unwrap_or("")),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Bus addresses, IRQ numbers and latency values depend on the machine.
fn normalise_lspci(t: &str) -> String {
    t.lines()
        .map(|l| {
            l.split(' ')
                .map(|w| {
                    let hexy = w.len() >= 5 && w.chars().all(|c| c.is_ascii_hexdigit());
                    if hexy {
                        "<addr>"
                    } else if w.starts_with("0000:")
                        || (w.len() == 7 && w.as_bytes().get(2) == Some(&b':'))
                    {
                        "<bdf>"
                    } else {
                        w
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .map(|l| {
            if l.contains("IRQ") {
                "\tInterrupt: <irq>".to_string()
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
#[ignore = "needs an L1 run: make test-l1"]
fn l1_transcript() {
    let t = input("VGPU_L1_TRANSCRIPT");
    assert!(t.contains(" passed, 0 failed"), "the L1 test failed:\n{t}");
    settings().bind(|| insta::assert_snapshot!("l1_transcript", normalise_transcript(&t)));
}

#[test]
#[ignore = "needs an L1 run: make test-l1"]
fn l1_lspci() {
    let t = input("VGPU_L1_LSPCI");
    for want in [
        "1234:7690",
        "MSI-X: Enable",
        "Region 0",
        "Region 2",
        "Region 4",
        "Express (v2) Endpoint",
    ] {
        assert!(t.contains(want), "lspci lacks {want:?}:\n{t}");
    }
    settings().bind(|| insta::assert_snapshot!("l1_lspci", normalise_lspci(&t)));
}

#[test]
fn normalisers_hide_what_varies() {
    assert_eq!(
        normalise_transcript("ok   x\nbench a 1.5"),
        "ok   x\nbench a <value>"
    );
    let l =
        normalise_lspci("00:02.0 3D controller [0302]\n\tRegion 0: Memory at fea00000 (32-bit)");
    assert_eq!(
        l,
        "<bdf> 3D controller [0302]\n\tRegion 0: Memory at <addr> (32-bit)"
    );
}
