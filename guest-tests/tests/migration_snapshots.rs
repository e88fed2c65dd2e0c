//! Snapshots of the migration tier (`make test-migration` sets the paths):
//! the VFIO migration state transitions of one hop, source then
//! destination, as QEMU traced them; and the checks of scripts/l1-migration.sh.

mod common;
use common::*;

/// `vfio_migration_set_state (<device>) new state X, recover state Y`, with
/// whatever QEMU put in front (thread, time) and the device's path gone.
fn normalise_states(t: &str) -> String {
    t.lines()
        .filter_map(|l| {
            let (side, rest) = l.split_once(": ")?;
            let at = rest.find("vfio_migration_set_state")?;
            let rest = &rest[at..];
            let after = rest.split_once(") ").map_or(rest, |(_, a)| a);
            Some(format!("{side}: {after}"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// UUIDs, the numbers before "ms" or "MiB", CRCs (of a stream holding
/// times) and bench values vary per run.
fn normalise_checks(t: &str) -> String {
    normalise_transcript(t)
        .lines()
        .filter(|l| l.starts_with("ok ") || l.starts_with("FAIL"))
        .map(|l| {
            let words: Vec<&str> = l.split(' ').collect();
            words
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let bare = w.trim_matches(['(', ',', ':', ';', ')']);
                    let next = words.get(i + 1).copied().unwrap_or("");
                    let uuid = bare.len() == 36 && bare.matches('-').count() == 4;
                    if uuid {
                        w.replace(bare, "<uuid>")
                    } else if bare.parse::<f64>().is_ok()
                        && (next.starts_with("ms") || next.starts_with("MiB"))
                    {
                        w.replace(bare, "<n>")
                    } else if bare.starts_with("0x") && bare.len() == 10 {
                        w.replace(bare, "<crc>")
                    } else if w.starts_with("rounds=") {
                        "rounds=<n>".to_string()
                    } else if w.starts_with("fence=") {
                        "fence=<n>".to_string()
                    } else {
                        w.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
#[ignore = "needs an L1 run: make test-migration"]
fn migration_transcript() {
    let t = input("VGPU_MIG_TRANSCRIPT");
    let states = normalise_states(&t);
    for want in [
        "source: new state STOP_COPY",
        "destination: new state RESUMING",
    ] {
        assert!(states.contains(want), "no {want:?} in:\n{states}");
    }
    settings().bind(|| insta::assert_snapshot!("migration_transcript", states));
}

#[test]
#[ignore = "needs an L1 run: make test-migration"]
fn migration_checks() {
    let t = input("VGPU_MIG_CHECKS");
    assert!(
        !t.lines().any(|l| l.starts_with("FAIL")),
        "checks failed:\n{t}"
    );
    settings().bind(|| insta::assert_snapshot!("migration_checks", normalise_checks(&t)));
}
