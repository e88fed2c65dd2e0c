//! The weighted scheduler: two partitions kept busy on one engine share it
//! in proportion to their weights, as read back from STAT_BUSY_NS.

use std::time::Duration;
use vdevice::command::{Command, Loc};
use vdevice::regs::{PtCtrl, RegId};
use vdevice::testing::Harness;
use vdevice::DeviceConfig;

const MIB: u64 = 1 << 20;

#[test]
fn weights_one_and_three_share_one_engine_one_to_three() {
    let h = Harness::new(
        DeviceConfig {
            vram_size_bytes: 64 * MIB,
            partitions: 2,
            engines: 1,
            ..DeviceConfig::default()
        },
        4096,
    );
    for p in 0..2 {
        h.enable(p, p as u64 * 32 * MIB, 32 * MIB, PtCtrl::new());
        h.ring_in_vram(p, 0, 0, 4096);
    }
    h.set(RegId::PtWeight, 0, 0, 1);
    h.set(RegId::PtWeight, 1, 0, 3);
    // Enough work that neither ring drains during the measurement (32 GiB
    // of fills each, past the ring in the first MiB), and a measurement long
    // in engine time, not wall time, so a fast or a loaded machine
    // measures the same thing.
    let cmds: Vec<_> = (0..4095)
        .map(|i| Command::fill(Loc::Vram(MIB + (i % 3) * 8 * MIB), 8 * MIB, 0))
        .collect();
    h.submit(0, 0, &cmds);
    h.submit(1, 0, &cmds);
    let busy_total = || (0..2).map(|p| h.reg(RegId::WStatBusyNs, p, 0)).sum::<u64>();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while busy_total() < 400_000_000 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let busy: Vec<u64> = (0..2).map(|p| h.reg(RegId::WStatBusyNs, p, 0)).collect();
    let left: Vec<u64> = (0..2)
        .map(|p| (h.reg(RegId::WRingTail, p, 0) + 4096 - h.reg(RegId::WRingHead, p, 0)) % 4096)
        .collect();
    for p in 0..2 {
        h.set(RegId::WReset, p, 0, 1);
    }
    assert!(left.iter().all(|&l| l > 0), "a ring drained: {left:?}");
    let ratio = busy[1] as f64 / busy[0] as f64;
    eprintln!("busy ns {busy:?} ratio {ratio:.3}");
    assert!(
        (ratio - 3.0).abs() <= 0.15 * 3.0,
        "busy ratio {ratio:.3} not within 15% of 3 ({busy:?})"
    );
}
