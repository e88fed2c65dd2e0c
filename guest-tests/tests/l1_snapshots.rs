//! Snapshots of the L1 run (`make test-l1` sets the paths): the normalised
//! transcript of vgpu-l1-test and the `lspci -vv` view of the GPU. Ignored
//! in a plain `cargo test`, which has no L1 run to look at.

mod common;
use common::*;

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
    settings().bind(|| insta::assert_snapshot!("l1_lspci", normalise_addresses(&t)));
}

#[test]
fn normalisers_hide_what_varies() {
    assert_eq!(
        normalise_transcript("ok   x\nbench a 1.5"),
        "ok   x\nbench a <value>"
    );
    let l = normalise_addresses(
        "00:02.0 3D controller [0302]\n\tRegion 0: Memory at fea00000 (32-bit)",
    );
    assert_eq!(
        l,
        "<bdf> 3D controller [0302]\n\tRegion 0: Memory at <addr> (32-bit)"
    );
}
