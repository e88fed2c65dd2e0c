//! Scenario tests: drive the model the way a host driver would — enable two
//! partitions, program rings, ring doorbells, wait for fences and
//! interrupts, move data between VRAM and system memory, check the CRC.

use std::time::Duration;
use vdevice::command::{Command, Loc};
use vdevice::regs::{self, PartIntr, PartitionState, PtCtrl, RegId};
use vdevice::testing::Harness;
use vdevice::DeviceConfig;

const MIB: u64 = 1 << 20;
const T: Duration = Duration::from_secs(10);

fn cfg() -> DeviceConfig {
    DeviceConfig {
        vram_size_bytes: 64 * MIB,
        partitions: 4,
        engines: 2,
        ..DeviceConfig::default()
    }
}

/// Two partitions, untranslated system memory (bare-metal style).
fn two_partitions() -> Harness {
    let h = Harness::new(cfg(), 8 << 20);
    h.enable(0, 0, 16 * MIB, PtCtrl::new());
    h.enable(1, 16 * MIB, 16 * MIB, PtCtrl::new());
    for p in 0..2 {
        h.ring_in_vram(p, 0, 0, 64);
        h.ring_in_vram(p, 1, 0x1000, 64);
    }
    h
}

#[test]
fn identity_and_capabilities() {
    let h = Harness::new(cfg(), 4096);
    assert_eq!(h.reg(RegId::Id, 0, 0), regs::DEVICE_MAGIC as u64);
    let caps = regs::Caps::from_bits(h.reg(RegId::Caps, 0, 0) as u32);
    assert_eq!(caps.partitions(), 4);
    assert_eq!(caps.engines(), 2);
    assert_eq!(caps.rings_per_partition(), 2);
    assert_eq!(h.reg(RegId::VramSize, 0, 0), 64 * MIB);
    assert_eq!(h.reg(RegId::WId, 3, 0), regs::WINDOW_MAGIC as u64);
    assert_eq!(h.reg(RegId::WIndex, 3, 0), 3);
    assert_eq!(h.reg(RegId::PtMsixBase, 3, 0), 8);
    let info = h.dev.pci_info();
    assert_eq!(info.msix_vectors, 10);
    assert_eq!(info.vram_bar_size, 64 * MIB);
}

#[test]
fn copy_fill_fence_and_crc_across_vram_and_system_memory() {
    let h = two_partitions();
    let data: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    h.mem.write_bytes(0x10_0000, &data);
    h.set(
        RegId::WIntrMask,
        0,
        0,
        PartIntr::new().with_fence(true).into_bits() as u64,
    );
    h.submit(
        0,
        0,
        &[
            Command::copy(Loc::Vram(MIB), Loc::Sys(0x10_0000), 8192),
            Command::copy(Loc::Vram(2 * MIB), Loc::Vram(MIB), 8192),
            Command::copy(Loc::Sys(0x20_0000), Loc::Vram(2 * MIB), 8192),
            Command::fill(Loc::Vram(3 * MIB), 4096, 0xa5a5_0f0f),
            Command::crc32(Loc::Sys(0x30_0000), Loc::Vram(2 * MIB), 8192),
            Command::crc32(Loc::Vram(4 * MIB), Loc::Sys(0x10_0000), 8192),
            Command::fence(Loc::Sys(0x40_0000), 42, true),
        ],
    );
    let vb = regs::partition_vector_base(0);
    assert!(h.irq.wait_for(vb, 1, T), "no fence interrupt");
    assert_eq!(h.mem.read_u64(0x40_0000), 42);
    assert_eq!(h.reg(RegId::WFenceValue, 0, 0), 42);
    assert_eq!(h.mem.read_bytes(0x20_0000, 8192), data);
    let crc = crc32fast::hash(&data) as u64;
    assert_eq!(h.mem.read_u64(0x30_0000), crc);
    let mut b = [0u8; 8];
    h.dev.vram().read(4 * MIB, &mut b);
    assert_eq!(u64::from_le_bytes(b), crc);
    h.dev.vram().read(3 * MIB + 4092, &mut b[..4]);
    assert_eq!(&b[..4], &0xa5a5_0f0fu32.to_le_bytes());
    assert_eq!(h.reg(RegId::WStatCommands, 0, 0), 7);
    assert_eq!(h.reg(RegId::WStatBytes, 0, 0), 8192 * 5 + 4096);
    let st = PartIntr::from_bits(h.reg(RegId::WIntrStatus, 0, 0) as u32);
    assert!(st.fence() && st.idle());
    // RW1C
    h.set(RegId::WIntrStatus, 0, 0, st.into_bits() as u64);
    assert_eq!(h.reg(RegId::WIntrStatus, 0, 0), 0);
}

#[test]
fn two_partitions_run_at_once_each_in_its_own_slice() {
    let h = two_partitions();
    for p in 0..2 {
        h.submit(
            p,
            0,
            &[
                Command::fill(Loc::Vram(MIB), MIB, 0x1111_1111 * (p as u32 + 1)),
                Command::fence(Loc::Vram(0x2000), 1, false),
            ],
        );
    }
    for p in 0..2 {
        assert_eq!(h.wait_not_busy(p, T), PartitionState::Idle);
    }
    let mut b = [0u8; 4];
    h.dev.vram().read(MIB + 12, &mut b);
    assert_eq!(u32::from_le_bytes(b), 0x1111_1111);
    h.dev.vram().read(16 * MIB + MIB + 12, &mut b);
    assert_eq!(u32::from_le_bytes(b), 0x2222_2222);
}

#[test]
fn semaphore_on_one_ring_released_by_the_other() {
    let h = two_partitions();
    // ring 0 waits for sem >= 2 then writes a fence; ring 1 releases later.
    h.submit(
        0,
        0,
        &[
            Command::sem_wait(Loc::Vram(0x3000), 2),
            Command::fence(Loc::Vram(0x3008), 99, false),
        ],
    );
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(h.reg(RegId::WRingHead, 0, 0), 0, "ring 0 must stall");
    assert_eq!(h.state(0), PartitionState::Busy);
    h.submit(0, 1, &[Command::fence(Loc::Vram(0x3000), 2, false)]);
    assert_eq!(h.wait_not_busy(0, T), PartitionState::Idle);
    let mut b = [0u8; 8];
    h.dev.vram().read(0x3008, &mut b);
    assert_eq!(u64::from_le_bytes(b), 99);
}

#[test]
fn timestamps_advance() {
    let h = two_partitions();
    h.submit(
        0,
        0,
        &[
            Command::timestamp(Loc::Vram(0x4000)),
            Command::timestamp(Loc::Vram(0x4008)),
        ],
    );
    h.wait_not_busy(0, T);
    let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
    h.dev.vram().read(0x4000, &mut a);
    h.dev.vram().read(0x4008, &mut b);
    let (a, b) = (u64::from_le_bytes(a), u64::from_le_bytes(b));
    assert!(a > 0 && b >= a);
    assert!(h.reg(RegId::Timestamp, 0, 0) >= b);
}

#[test]
fn ring_in_system_memory_through_translation() {
    let h = Harness::new(cfg(), 8 << 20);
    // partition addresses 0..16 KiB map to bus pages 0x40_0000.. (ring + data)
    let maps: Vec<_> = (0..4)
        .map(|i| (i * 4096, 0x40_0000 + i * 4096, true))
        .collect();
    let entries = h.build_xlate(0x1000, 0x2000, &maps);
    h.set_xlate(0, 0x1000, entries);
    h.enable(0, 0, 16 * MIB, PtCtrl::new().with_xlate(true));
    h.ring_in_sysmem(0, 0, 0, 0x40_0000, 32);
    h.mem.write_bytes(0x40_2000, b"hello, partition");
    h.submit(
        0,
        0,
        &[
            Command::copy(Loc::Vram(0x100), Loc::Sys(0x2000), 16),
            Command::copy(Loc::Sys(0x3000), Loc::Vram(0x100), 16),
            Command::fence(Loc::Sys(0x3800), 5, false),
        ],
    );
    assert_eq!(h.wait_not_busy(0, T), PartitionState::Idle);
    assert_eq!(h.mem.read_bytes(0x40_3000, 16), b"hello, partition");
    assert_eq!(h.mem.read_u64(0x40_3800), 5);
}

#[test]
fn replayable_translation_fault_is_serviced_by_the_host() {
    let h = Harness::new(cfg(), 8 << 20);
    let entries = h.build_xlate(0x1000, 0x2000, &[(0, 0x40_0000, true)]);
    // room for a second directory entry's worth of addresses
    h.set_xlate(0, 0x1000, entries);
    h.enable(
        0,
        0,
        16 * MIB,
        PtCtrl::new().with_xlate(true).with_xlate_replay(true),
    );
    h.set(
        RegId::IntrMask,
        0,
        0,
        regs::GlobalIntr::new().with_xlate_fault(true).into_bits() as u64,
    );
    h.ring_in_vram(0, 0, 0, 16);
    h.submit(0, 0, &[Command::fence(Loc::Sys(0x5000), 77, false)]);
    assert!(h.irq.wait_for(regs::HOST_VECTOR_XLATE, 1, T));
    assert_eq!(h.state(0), PartitionState::XlateWait);
    assert_eq!(h.reg(RegId::XlateFaultCount, 0, 0), 1);
    let info = regs::XlateFaultInfo::from_bits(h.reg(RegId::XlateFaultInfo, 0, 0) as u32);
    assert!(info.valid() && info.write());
    assert_eq!(info.partition(), 0);
    assert_eq!(h.reg(RegId::XlateFaultAddr, 0, 0), 0x5000);
    // host maps the page and retries
    h.build_xlate(
        0x1000,
        0x2000,
        &[(0, 0x40_0000, true), (0x5000, 0x50_0000, true)],
    );
    h.set(RegId::XlateFaultPop, 0, 0, 1);
    h.set(RegId::XlateResume, 0, 0, 0);
    assert_eq!(h.wait_not_busy(0, T), PartitionState::Idle);
    assert_eq!(h.mem.read_u64(0x50_0000), 77);
    assert_eq!(h.reg(RegId::WStatFaults, 0, 0), 0);
}

/// A copy across many unmapped pages: one replayable fault per page, each
/// serviced by the host the way vgpu_rm does it (read, pop, map, RETRY).
/// The replay faults on the next page at once, so a fault queued while the
/// host is still resuming the previous one must not be lost.
#[test]
fn replayed_copy_across_many_pages_faults_once_per_page() {
    const PAGES: u64 = 48;
    const SRC: u64 = 0x10_0000; // partition address of the source
    const BUS: u64 = 0x40_0000; // where it really is
    let h = Harness::new(cfg(), 8 << 20);
    let data: Vec<u8> = (0..PAGES * 4096)
        .map(|i| (i * 7 + i / 4096) as u8)
        .collect();
    h.mem.write_bytes(BUS, &data);
    // One directory entry (2 MiB) covers the source; it starts out empty.
    h.build_xlate(0x1000, 0x2000, &[]);
    h.set_xlate(0, 0x1000, 1);
    h.enable(
        0,
        0,
        16 * MIB,
        PtCtrl::new().with_xlate(true).with_xlate_replay(true),
    );
    h.ring_in_vram(0, 0, 0, 16);
    h.submit(
        0,
        0,
        &[Command::copy(
            Loc::Vram(0x10_0000),
            Loc::Sys(SRC),
            PAGES * 4096,
        )],
    );
    let mut maps = Vec::new();
    let deadline = std::time::Instant::now() + T;
    let mut stuck_since = None;
    while h.state(0) != PartitionState::Idle {
        assert!(
            std::time::Instant::now() < deadline,
            "copy never finished: state {} after {} faults",
            h.state(0),
            maps.len()
        );
        assert_ne!(h.state(0), PartitionState::Faulted);
        if h.reg(RegId::XlateFaultCount, 0, 0) == 0 {
            // Waiting with nothing queued for long means a lost fault.
            if h.state(0) == PartitionState::XlateWait {
                let since = *stuck_since.get_or_insert_with(std::time::Instant::now);
                assert!(
                    since.elapsed() < Duration::from_secs(2),
                    "XLATE_WAIT with no queued fault"
                );
            }
            std::thread::yield_now();
            continue;
        }
        stuck_since = None;
        let addr = h.reg(RegId::XlateFaultAddr, 0, 0);
        assert!(
            (SRC..SRC + PAGES * 4096).contains(&addr),
            "fault at {addr:#x}"
        );
        maps.push((addr & !0xfff, BUS + (addr & !0xfff) - SRC, false));
        h.build_xlate(0x1000, 0x2000, &maps);
        h.set(RegId::XlateFaultPop, 0, 0, 1);
        h.set(RegId::XlateResume, 0, 0, 0);
    }
    assert_eq!(maps.len() as u64, PAGES, "one fault per page");
    let mut got = vec![0u8; data.len()];
    for (i, chunk) in got.chunks_mut(8).enumerate() {
        let v = h.vram_bar_read(0x10_0000 + i as u64 * 8, 8);
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    assert!(got == data, "VRAM holds the source");
}

#[test]
fn cancelled_translation_fault_faults_the_partition() {
    let h = Harness::new(cfg(), 8 << 20);
    h.set_xlate(0, 0x1000, 0);
    h.enable(
        0,
        0,
        16 * MIB,
        PtCtrl::new().with_xlate(true).with_xlate_replay(true),
    );
    h.ring_in_vram(0, 0, 0, 16);
    h.submit(0, 0, &[Command::fence(Loc::Sys(0x9000), 1, false)]);
    while h.state(0) != PartitionState::XlateWait {
        std::thread::sleep(Duration::from_millis(1));
    }
    h.set(
        RegId::XlateResume,
        0,
        0,
        regs::XlateResume::new()
            .with_action(regs::ResumeAction::Cancel)
            .into_bits() as u64,
    );
    assert_eq!(h.state(0), PartitionState::Faulted);
    let fs = regs::FaultStatus::from_bits(h.reg(RegId::WFaultStatus, 0, 0) as u32);
    assert_eq!(fs.code(), regs::FaultCode::XlateCancelled);
    assert_eq!(h.reg(RegId::XlateFaultCount, 0, 0), 0);
}

#[test]
fn msix_vectors_follow_causes_and_masks() {
    let h = two_partitions();
    let vb = regs::partition_vector_base(1);
    // fence with INTR while masked: status set, no vector
    h.submit(1, 0, &[Command::fence(Loc::Vram(0x5000), 1, true)]);
    h.wait_not_busy(1, T);
    assert_eq!(h.irq.count(vb), 0);
    assert!(PartIntr::from_bits(h.reg(RegId::WIntrStatus, 1, 0) as u32).fence());
    // unmasking a pending cause raises it
    h.set(
        RegId::WIntrMask,
        1,
        0,
        PartIntr::new().with_fence(true).into_bits() as u64,
    );
    assert!(h.irq.wait_for(vb, 1, T));
    // fault goes to the fault vector, and the host hears about it on vector 0
    h.set(RegId::WIntrMask, 1, 0, 0x7);
    h.set(RegId::IntrMask, 0, 0, 0x1);
    h.submit(1, 0, &[Command::fill(Loc::Vram(32 * MIB), 4, 0)]);
    assert!(h.irq.wait_for(vb + 1, 1, T));
    assert!(h.irq.wait_for(regs::HOST_VECTOR_EVENTS, 1, T));
    assert_eq!(h.reg(RegId::FaultedPartitions, 0, 0), 0b10);
}
