//! Error paths: every fault-injection mode, reset during work, bad register
//! accesses and garbage commands. Each has a defined result and none panics.

use std::time::{Duration, Instant};
use vdevice::command::{Command, Loc, COMMAND_BYTES};
use vdevice::regs::{
    self, AccessError, AccessErrorInfo, FaultCode, FaultLogInfo, FaultStatus, InjectKind, PartIntr,
    PartitionState, PtCtrl, RegId, REG_BAR, VRAM_BAR,
};
use vdevice::testing::Harness;
use vdevice::DeviceConfig;

const MIB: u64 = 1 << 20;
const T: Duration = Duration::from_secs(10);

fn harness() -> Harness {
    let h = Harness::new(
        DeviceConfig {
            vram_size_bytes: 64 * MIB,
            partitions: 2,
            engines: 2,
            ..DeviceConfig::default()
        },
        4 << 20,
    );
    h.enable(0, 0, 8 * MIB, PtCtrl::new());
    h.enable(1, 8 * MIB, 8 * MIB, PtCtrl::new());
    h.ring_in_vram(0, 0, 0, 64);
    h.ring_in_vram(1, 0, 0, 64);
    h.set(RegId::WIntrMask, 0, 0, 0x7);
    h.set(RegId::IntrMask, 0, 0, 0xf);
    h
}

fn fault_code(h: &Harness, p: usize) -> FaultCode {
    FaultStatus::from_bits(h.reg(RegId::WFaultStatus, p, 0) as u32).code()
}

fn inject(h: &Harness, p: usize, kind: InjectKind) {
    h.set(RegId::PtInject, p, 0, kind.into_bits() as u64);
    assert_eq!(h.reg(RegId::PtInject, p, 0), kind.into_bits() as u64);
}

fn reset_and_check_recovers(h: &Harness, p: usize) {
    h.set(RegId::WReset, p, 0, 1);
    h.forget_rings(p);
    assert_eq!(h.state(p), PartitionState::Idle);
    assert_eq!(fault_code(h, p), FaultCode::None);
    h.ring_in_vram(p, 0, 0, 64);
    h.submit(p, 0, &[Command::fence(Loc::Vram(0x8000), 0x600d, false)]);
    assert_eq!(h.wait_not_busy(p, T), PartitionState::Idle);
    assert_eq!(h.reg(RegId::WFenceValue, p, 0), 0x600d);
}

#[test]
fn engine_hang_stalls_only_that_partition_until_reset() {
    let h = harness();
    inject(&h, 0, InjectKind::EngineHang);
    h.submit(0, 0, &[Command::fence(Loc::Vram(0x8000), 1, true)]);
    h.submit(1, 0, &[Command::fence(Loc::Vram(0x8000), 2, false)]);
    assert_eq!(h.wait_not_busy(1, T), PartitionState::Idle);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        h.state(0),
        PartitionState::Busy,
        "hung partition looks busy"
    );
    assert_eq!(h.reg(RegId::WRingHead, 0, 0), 0);
    assert_eq!(h.reg(RegId::PtInject, 0, 0), 0, "injection fired once");
    reset_and_check_recovers(&h, 0);
}

#[test]
fn dma_error_faults_with_the_address() {
    let h = harness();
    inject(&h, 0, InjectKind::DmaError);
    h.submit(
        0,
        0,
        &[Command::copy(Loc::Vram(0x10000), Loc::Sys(0x1000), 64)],
    );
    assert_eq!(h.wait_not_busy(0, T), PartitionState::Faulted);
    assert_eq!(fault_code(&h, 0), FaultCode::DmaError);
    assert_eq!(h.reg(RegId::WFaultAddr, 0, 0), 0x1000);
    assert!(h.irq.wait_for(regs::partition_vector_base(0) + 1, 1, T));
    // a real bus error (beyond fake memory) gives the same code
    reset_and_check_recovers(&h, 0);
    h.submit(
        0,
        0,
        &[Command::copy(Loc::Vram(0x10000), Loc::Sys(64 * MIB), 64)],
    );
    assert_eq!(h.wait_not_busy(0, T), PartitionState::Faulted);
    assert_eq!(fault_code(&h, 0), FaultCode::DmaError);
}

#[test]
fn ecc_error_faults_the_next_vram_read_and_reaches_the_fault_log() {
    let h = harness();
    inject(&h, 1, InjectKind::EccError);
    h.submit(
        1,
        0,
        &[Command::crc32(Loc::Vram(0x10000), Loc::Vram(0x20000), 256)],
    );
    assert_eq!(h.wait_not_busy(1, T), PartitionState::Faulted);
    // The command fetch itself is the first VRAM read of a VRAM ring.
    assert_eq!(fault_code(&h, 1), FaultCode::EccError);
    assert_eq!(h.reg(RegId::FaultLogCount, 0, 0), 1);
    let e = FaultLogInfo::from_bits(h.reg(RegId::FaultLogInfo, 0, 0) as u32);
    assert!(e.valid());
    assert_eq!(e.partition(), 1);
    assert_eq!(e.code(), FaultCode::EccError);
    h.set(RegId::FaultLogPop, 0, 0, 1);
    assert_eq!(h.reg(RegId::FaultLogCount, 0, 0), 0);
    assert_eq!(h.state(0), PartitionState::Idle, "partition 0 untouched");
    reset_and_check_recovers(&h, 1);
}

#[test]
fn dropped_interrupt_leaves_status_set_and_late_one_arrives_late() {
    let h = harness();
    let vb = regs::partition_vector_base(0);
    h.set(
        RegId::WIntrMask,
        0,
        0,
        PartIntr::new().with_fence(true).into_bits() as u64,
    );
    inject(&h, 0, InjectKind::DropIrq);
    h.submit(0, 0, &[Command::fence(Loc::Vram(0x8000), 1, true)]);
    h.wait_not_busy(0, T);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(h.irq.count(vb), 0, "interrupt dropped");
    assert!(PartIntr::from_bits(h.reg(RegId::WIntrStatus, 0, 0) as u32).fence());

    h.set(RegId::InjectDelayUs, 0, 0, 200_000);
    inject(&h, 0, InjectKind::LateIrq);
    let t0 = Instant::now();
    h.submit(0, 0, &[Command::fence(Loc::Vram(0x8000), 2, true)]);
    h.wait_not_busy(0, T);
    assert_eq!(h.irq.count(vb), 0, "not yet");
    assert!(h.irq.wait_for(vb, 1, T));
    assert!(t0.elapsed() >= Duration::from_millis(200));
    // next one is on time again
    h.submit(0, 0, &[Command::fence(Loc::Vram(0x8000), 3, true)]);
    assert!(h.irq.wait_for(vb, 2, T));
}

#[test]
fn late_interrupt_is_dropped_by_a_reset_in_between() {
    let h = harness();
    let vb = regs::partition_vector_base(0);
    h.set(
        RegId::WIntrMask,
        0,
        0,
        PartIntr::new().with_fence(true).into_bits() as u64,
    );
    h.set(RegId::InjectDelayUs, 0, 0, 300_000);
    inject(&h, 0, InjectKind::LateIrq);
    h.submit(0, 0, &[Command::fence(Loc::Vram(0x8000), 2, true)]);
    h.wait_not_busy(0, T);
    h.set(RegId::WReset, 0, 0, 1);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(h.irq.count(vb), 0);
}

#[test]
fn reset_during_work_quiesces_and_keeps_the_slice() {
    let h = harness();
    // lots of big fills so the engine is mid-work when reset lands
    let cmds: Vec<_> = (0..60)
        .map(|i| Command::fill(Loc::Vram(MIB), 4 * MIB, i))
        .collect();
    h.submit(0, 0, &cmds);
    std::thread::sleep(Duration::from_millis(2));
    h.set(RegId::WReset, 0, 0, 1);
    assert_eq!(h.state(0), PartitionState::Idle);
    assert_eq!(
        h.reg(RegId::WRingSize, 0, 0),
        0,
        "rings back to reset values"
    );
    assert_eq!(h.reg(RegId::WStatCommands, 0, 0), 0);
    assert_eq!(
        h.reg(RegId::PtVramSize, 0, 0),
        8 * MIB,
        "host settings kept"
    );
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        h.reg(RegId::WStatCommands, 0, 0),
        0,
        "nothing ran after reset"
    );
    h.forget_rings(0);
    reset_and_check_recovers(&h, 0);
}

#[test]
fn device_reset_during_work_clears_everything_and_scrubs_vram() {
    let h = harness();
    let cmds: Vec<_> = (0..40)
        .map(|i| Command::fill(Loc::Vram(0), 8 * MIB, i + 1))
        .collect();
    h.submit(0, 0, &cmds);
    h.submit(1, 0, &cmds[..10]);
    std::thread::sleep(Duration::from_millis(2));
    h.set(RegId::DeviceReset, 0, 0, 1);
    for p in 0..2 {
        assert_eq!(h.state(p), PartitionState::Disabled);
        assert_eq!(h.reg(RegId::PtVramSize, p, 0), 0);
    }
    assert_eq!(h.reg(RegId::IntrMask, 0, 0), 0);
    std::thread::sleep(Duration::from_millis(10));
    let mut buf = vec![0xffu8; 16 * MIB as usize];
    assert!(h.dev.vram().read(0, &mut buf));
    assert!(buf.iter().all(|&b| b == 0), "VRAM scrubbed");
}

#[test]
fn garbage_commands_fault_with_bad_command_and_the_ring_stops_on_them() {
    let h = harness();
    let mut garbage = [0xabu8; COMMAND_BYTES];
    garbage[0] = 0x42;
    h.submit(0, 0, &[Command::nop(), Command::nop()]);
    h.submit_raw(0, 0, &[garbage]);
    assert_eq!(h.wait_not_busy(0, T), PartitionState::Faulted);
    assert_eq!(fault_code(&h, 0), FaultCode::BadCommand);
    assert_eq!(h.reg(RegId::WFaultCmd, 0, 0), 2);
    assert_eq!(h.reg(RegId::WRingHead, 0, 0), 2);
    assert_eq!(h.reg(RegId::WFaultAddr, 0, 0), 2 * COMMAND_BYTES as u64);
    assert_eq!(h.reg(RegId::WStatCommands, 0, 0), 2);
    // doorbells on a faulted partition queue nothing new until reset
    h.submit(0, 0, &[Command::fence(Loc::Vram(0x8000), 1, false)]);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(h.reg(RegId::WFenceValue, 0, 0), 0);
    reset_and_check_recovers(&h, 0);
}

#[test]
fn out_of_slice_vram_faults_only_the_offender() {
    let h = harness();
    h.dev.vram().write(8 * MIB, &[0x5a; 64]);
    h.submit(
        0,
        0,
        &[Command::copy(Loc::Vram(8 * MIB - 32), Loc::Vram(0), 64)],
    );
    assert_eq!(h.wait_not_busy(0, T), PartitionState::Faulted);
    assert_eq!(fault_code(&h, 0), FaultCode::VramOutOfBounds);
    assert_eq!(h.reg(RegId::WFaultAddr, 0, 0), 8 * MIB - 32);
    let mut b = [0u8; 64];
    h.dev.vram().read(8 * MIB, &mut b);
    assert_eq!(b, [0x5a; 64], "neighbour's VRAM untouched");
    // and no partial write into its own slice either
    h.dev.vram().read(8 * MIB - 32, &mut b[..32]);
    assert_eq!(&b[..32], &[0u8; 32]);
    assert_eq!(h.state(1), PartitionState::Idle);
}

fn last_access_error(h: &Harness) -> (AccessError, u64) {
    let info = AccessErrorInfo::from_bits(h.dev.read(REG_BAR, 0x64, 4) as u32);
    (info.reason(), h.dev.read(REG_BAR, 0x68, 8))
}

#[test]
fn bad_register_accesses_have_defined_results() {
    let h = harness();
    let scratch = regs::offset_of(RegId::Scratch, 0, 0);
    let count = |h: &Harness| h.reg(RegId::AccessErrorCount, 0, 0);
    // wrong width: reads all ones, writes ignored
    assert_eq!(h.dev.read(REG_BAR, scratch, 2), 0xffff);
    assert_eq!(last_access_error(&h), (AccessError::BadWidth, scratch));
    h.dev.write(REG_BAR, scratch, 0x12, 1);
    assert_eq!(h.reg(RegId::Scratch, 0, 0), 0);
    // misaligned
    assert_eq!(h.dev.read(REG_BAR, scratch + 2, 4), 0xffff_ffff);
    assert_eq!(last_access_error(&h).0, AccessError::Misaligned);
    // unmapped: hole in a block, beyond the configured partitions, beyond the BAR
    assert_eq!(h.dev.read(REG_BAR, 0xffc, 4), 0xffff_ffff);
    assert_eq!(last_access_error(&h).0, AccessError::Unmapped);
    let w5 = regs::offset_of(RegId::WScratch, 5, 0);
    assert_eq!(h.dev.read(REG_BAR, w5, 4), 0xffff_ffff);
    assert_eq!(h.dev.read(REG_BAR, 1 << 30, 8), u64::MAX);
    assert_eq!(h.dev.read(7, 0, 4), 0xffff_ffff);
    assert_eq!(h.dev.read(VRAM_BAR, 64 * MIB, 4), 0xffff_ffff);
    // read-only: write rejected, value unchanged
    let before = count(&h);
    h.set(RegId::Id, 0, 0, 0);
    assert_eq!(h.reg(RegId::Id, 0, 0), regs::DEVICE_MAGIC as u64);
    assert_eq!(last_access_error(&h).0, AccessError::ReadOnly);
    assert_eq!(count(&h), before + 1);
    // 8-byte access to a 4-byte register
    assert_eq!(
        h.dev
            .read(REG_BAR, regs::offset_of(RegId::IntrStatus, 0, 0), 8),
        u64::MAX
    );
    // write-only registers read as 0
    assert_eq!(h.reg(RegId::WDoorbell, 0, 0), 0);
    // bad values: doorbell past the ring, zero weight, bad ring size, unknown injection
    h.set(RegId::WDoorbell, 0, 0, 64);
    assert_eq!(last_access_error(&h).0, AccessError::BadValue);
    assert_eq!(h.reg(RegId::WRingTail, 0, 0), 0);
    h.set(RegId::PtWeight, 0, 0, 0);
    assert_eq!(h.reg(RegId::PtWeight, 0, 0), 1);
    h.set(RegId::WRingSize, 0, 1, 48);
    assert_eq!(h.reg(RegId::WRingSize, 0, 1), 0);
    h.set(RegId::PtInject, 0, 0, 9);
    assert_eq!(h.reg(RegId::PtInject, 0, 0), 0);
    // the window counts its own bad accesses, of every kind: width,
    // alignment and holes too (a vGPU's guest reads this counter)
    let before = h.reg(RegId::WAccessErrors, 0, 0);
    assert!(before >= 2);
    let before1 = h.reg(RegId::WAccessErrors, 1, 0);
    let scratch = regs::offset_of(RegId::WScratch, 1, 0);
    assert_eq!(h.dev.read(REG_BAR, scratch, 1), 0xff);
    assert_eq!(h.dev.read(REG_BAR, scratch + 2, 2), 0xffff);
    h.dev.write(REG_BAR, scratch + 2, 0, 4);
    assert_eq!(h.reg(RegId::WAccessErrors, 1, 0), before1 + 3);
    assert_eq!(h.reg(RegId::WAccessErrors, 0, 0), before);
    // 64-bit registers take 8-byte and half accesses
    let rb = regs::offset_of(RegId::WRingBase, 0, 1);
    h.dev.write(REG_BAR, rb, 0x1_0000_0040, 8);
    assert_eq!(h.dev.read(REG_BAR, rb + 4, 4), 1);
    h.dev.write(REG_BAR, rb, 0x80, 4);
    assert_eq!(h.dev.read(REG_BAR, rb, 8), 0x1_0000_0080);
    // host sees an access-error interrupt
    assert!(h.irq.wait_for(regs::HOST_VECTOR_EVENTS, 1, T));
}

#[test]
fn slices_must_be_valid_and_disjoint_and_scrub_needs_a_disabled_partition() {
    let h = Harness::new(
        DeviceConfig {
            vram_size_bytes: 16 * MIB,
            partitions: 3,
            engines: 1,
            ..DeviceConfig::default()
        },
        4096,
    );
    h.enable(0, 0, 8 * MIB, PtCtrl::new());
    let try_enable = |p: usize, base: u64, size: u64| {
        h.set(RegId::PtVramBase, p, 0, base);
        h.set(RegId::PtVramSize, p, 0, size);
        h.set(RegId::PtCtrl, p, 0, 1);
        h.reg(RegId::PtCtrl, p, 0) & 1 == 1
    };
    assert!(!try_enable(1, 4 * MIB, 8 * MIB), "overlap refused");
    assert!(!try_enable(1, 12 * MIB, 8 * MIB), "beyond VRAM refused");
    assert!(!try_enable(1, 8 * MIB, 0), "empty refused");
    assert!(try_enable(1, 8 * MIB, 8 * MIB));
    // slice registers are frozen while enabled
    h.set(RegId::PtVramBase, 1, 0, 0);
    assert_eq!(h.reg(RegId::PtVramBase, 1, 0), 8 * MIB);
    // scrub refused while enabled, done after disable
    h.dev.vram().write(9 * MIB, &[7; 16]);
    h.set(RegId::PtScrub, 1, 0, 1);
    let mut b = [0u8; 16];
    h.dev.vram().read(9 * MIB, &mut b);
    assert_eq!(b, [7; 16]);
    h.set(RegId::PtCtrl, 1, 0, 0);
    h.set(RegId::PtScrub, 1, 0, 1);
    h.dev.vram().read(9 * MIB, &mut b);
    assert_eq!(b, [0; 16]);
    // doorbell on a disabled partition is refused
    h.set(RegId::WDoorbell, 2, 0, 0);
    assert_eq!(last_access_error(&h).0, AccessError::Disabled);
}

#[test]
fn bad_configs_are_rejected_with_a_message() {
    use std::sync::Arc;
    use vdevice::testing::{FakeMemory, RecordingIrq};
    let mem = Arc::new(FakeMemory::new(16));
    let irq = Arc::new(RecordingIrq::default());
    for (cfg, want) in [
        (
            DeviceConfig {
                vram_size_bytes: 100 * MIB,
                ..DeviceConfig::default()
            },
            "power of two",
        ),
        (
            DeviceConfig {
                partitions: 0,
                ..DeviceConfig::default()
            },
            "partitions",
        ),
        (
            DeviceConfig {
                engines: 9,
                ..DeviceConfig::default()
            },
            "engines",
        ),
    ] {
        let e = vdevice::Device::new(cfg, mem.clone(), irq.clone())
            .err()
            .expect("rejected");
        assert!(e.to_string().contains(want), "{e}");
    }
}
