//! Snapshot plumbing shared by the tiers that run in guests: where their
//! output is, where the snapshots live, and normalisers for what varies.

use std::path::PathBuf;

pub fn input(var: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| panic!("{var} not set: run the make target"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s
}

/// Benchmark values vary per run; everything else in a transcript must not.
pub fn normalise_transcript(t: &str) -> String {
    t.lines()
        .map(|l| match l.strip_prefix("bench ") {
            Some(rest) => format!("bench {} <value>", rest.split(' ').next().unwrap_or("")),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[allow(dead_code)] // not every tier prints PCI addresses
pub fn normalise_addresses(t: &str) -> String {
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
