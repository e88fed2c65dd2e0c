//! Snapshot of the RM as SR-IOV PF driver (`make test-sriov-pf` sets the
//! path): the normalised transcript of sriov-pf-run.sh (vgpu_mode,
//! sriov_numvfs, per-VF creatable_vgpu_types / current_vgpu_type, and the
//! kernel's reason for each refusal).

mod common;
use common::*;

#[test]
#[ignore = "needs an L1 run: make test-sriov-pf"]
fn sriov_pf_transcript() {
    let t = input("VGPU_SRIOV_PF_TRANSCRIPT");
    assert!(
        !t.contains("\nFAIL") && !t.starts_with("FAIL"),
        "checks failed:\n{t}"
    );
    assert!(t.contains("VF3: device 0x7691"), "no fourth VF:\n{t}");
    settings().bind(|| insta::assert_snapshot!("sriov_pf_transcript", normalise_transcript(&t)));
}
