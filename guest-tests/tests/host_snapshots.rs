//! Snapshots of the L1 host-driver run (`make test-host` sets the paths):
//! the normalised transcript of host-run.sh (mdevctl, vgpuctl, the VFIO
//! tier) and the sysfs tree of the GPU's mdev types.

mod common;
use common::*;

#[test]
#[ignore = "needs an L1 run: make test-host"]
fn host_transcript() {
    let t = input("VGPU_HOST_TRANSCRIPT");
    assert!(
        !t.contains("\nFAIL") && !t.starts_with("FAIL"),
        "checks failed:\n{t}"
    );
    assert!(
        t.contains(" passed, 0 failed"),
        "the VFIO tier failed:\n{t}"
    );
    settings().bind(|| insta::assert_snapshot!("host_transcript", normalise_transcript(&t)));
}

#[test]
#[ignore = "needs an L1 run: make test-host"]
fn host_sysfs_tree() {
    let t = input("VGPU_HOST_SYSFS");
    assert!(t.contains("/description: framebuffer="), "no types:\n{t}");
    settings().bind(|| insta::assert_snapshot!("host_sysfs", t));
}
