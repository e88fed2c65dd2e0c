//! Snapshots of VFs assigned through VFIO behind a virtual IOMMU (`make
//! test-sriov` sets the paths): vgpu-vf-test's and vgpu-vf-mig-test's
//! transcript, and the PF's SR-IOV capability as lspci decodes it
//! (addresses normalised).

mod common;
use common::*;

#[test]
#[ignore = "needs an L1 run: make test-sriov"]
fn sriov_vf_transcript_and_capability() {
    let t = input("VGPU_SRIOV_TRANSCRIPT");
    assert!(
        !t.contains("\nFAIL") && !t.starts_with("FAIL"),
        "checks failed:\n{t}"
    );
    assert!(
        t.contains("IOMMU refusal: VF0 writing VF1's IOVA faults only partition 0"),
        "the refused DMA was not checked:\n{t}"
    );
    assert!(
        t.contains("VF migration: work queued behind a semaphore"),
        "VF migration was not checked:\n{t}"
    );
    let lspci = input("VGPU_SRIOV_LSPCI");
    assert!(
        lspci.contains("Device ID: 7691"),
        "no SR-IOV capability:\n{lspci}"
    );
    settings().bind(|| {
        insta::assert_snapshot!("sriov_transcript", normalise_transcript(&t));
        insta::assert_snapshot!("sriov_pf_lspci", normalise_addresses(&lspci));
    });
}
