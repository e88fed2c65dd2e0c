//! Snapshots of the vGPUs under libvirt in a Debian L1 (`make test-libvirt`
//! sets the paths): libvirt-run.sh's transcript over both boots (mdev
//! vGPUs, then a VF in SR-IOV mode), and
//! `virsh nodedev-dumpxml` of the GPU (its mdev types) and of the vGPU
//! examples/libvirt/vgpu-mdev.xml defines. The UUID and the PCI address
//! are the example files' own, not random: nothing to normalise in the XML.

mod common;
use common::*;

/// The transcript's own lines: its checks and what it says, without the
/// sections inside it (the nodedev XML, snapshotted apart; each L2's
/// console, with its timings), kernel lines that reach the console, and
/// figures.
fn checks_only(t: &str) -> String {
    let mut inside = false;
    let mut out = Vec::new();
    for l in t.lines() {
        // (the boots' own sections meet in the middle: END, then BEGIN)
        if l.starts_with("VGPU-TRANSCRIPT-") {
            continue;
        }
        if l.starts_with("VGPU-") && l.ends_with("-BEGIN") {
            inside = true;
        } else if l.starts_with("VGPU-") && l.ends_with("-END") {
            inside = false;
        } else if !inside && !l.starts_with('[') && !l.starts_with("VGPU-") {
            out.push(l.trim_end());
        }
    }
    out.join("\n")
}

#[test]
#[ignore = "needs the Debian L1 run: make test-libvirt"]
fn libvirt_transcript_and_nodedev_xml() {
    let t = input("VGPU_LIBVIRT_TRANSCRIPT");
    assert!(
        !t.contains("\nFAIL") && !t.starts_with("FAIL"),
        "checks failed:\n{t}"
    );
    for must in [
        "== boot 2",
        "the persistent vGPU is back (mdevctl autostart)",
        "boot 2: vgpu-l2-test in the domain",
        "virsh start is refused, the vGPU is in use",
        "VF0: vgpu-l2-test in the domain",
    ] {
        assert!(t.contains(must), "no check '{must}':\n{t}");
    }
    let parent = input("VGPU_LIBVIRT_PARENT");
    assert!(
        parent.contains("<capability type='mdev_types'>"),
        "no mdev types:\n{parent}"
    );
    let mdev = input("VGPU_LIBVIRT_MDEV");
    assert!(
        mdev.contains("<capability type='mdev'>"),
        "not an mdev:\n{mdev}"
    );
    settings().bind(|| {
        insta::assert_snapshot!("libvirt_transcript", normalise_transcript(&checks_only(&t)));
        insta::assert_snapshot!("libvirt_nodedev_parent", parent);
        insta::assert_snapshot!("libvirt_nodedev_mdev", mdev);
    });
}
