//! SR-IOV mode (SPEC 15), driven the way a PF driver and a VF's tenant
//! would: VF BARs lead to their partition's window and slice, a VF's FLR
//! resets only its partition, DMA and interrupts carry the function, the
//! VF slice notifier follows enables, disables and device resets.

use parking_lot::Mutex;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;
use vdevice::command::{Command, Loc};
use vdevice::events::EventKind;
use vdevice::regs::{
    self, AccessError, AccessErrorInfo, FaultCode, FaultLogInfo, FaultStatus, PartitionState,
    PtCtrl, RegId, VF_REG_BAR, VF_VRAM_BAR, WINDOW_MAGIC,
};
use vdevice::testing::{FakeMemory, Harness, IommuMemory};
use vdevice::{Device, DeviceConfig, Function, VfSlice, VfSliceNotify};

const MIB: u64 = 1 << 20;
const T: Duration = Duration::from_secs(10);

/// 64 MiB of VRAM, three partitions: 0 and 1 are VF0 and VF1 (VRAM BARs of
/// 32 MiB, derived), 2 stays the PF's.
fn cfg() -> DeviceConfig {
    DeviceConfig {
        vram_size_bytes: 64 * MIB,
        partitions: 3,
        engines: 2,
        sriov_vfs: 2,
        ..DeviceConfig::default()
    }
}

fn vf_reg(h: &Harness, vf: u16, id: RegId, elem: usize) -> u64 {
    let w = regs::register(id).width as u32;
    h.dev
        .vf_read(vf, VF_REG_BAR, regs::window_offset(id, elem), w)
}

fn vf_set(h: &Harness, vf: u16, id: RegId, elem: usize, v: u64) {
    let w = regs::register(id).width as u32;
    h.dev
        .vf_write(vf, VF_REG_BAR, regs::window_offset(id, elem), v, w)
}

fn last_access_error(h: &Harness) -> (AccessErrorInfo, u64) {
    let info = AccessErrorInfo::from_bits(h.reg(RegId::AccessErrorInfo, 0, 0) as u32);
    (info, h.reg(RegId::AccessErrorOffset, 0, 0))
}

#[test]
fn a_vfs_register_bar_is_its_partitions_window() {
    let h = Harness::new(cfg(), 1 << 20);
    h.enable(1, 8 * MIB, 8 * MIB, PtCtrl::new());
    assert_eq!(vf_reg(&h, 1, RegId::WId, 0), WINDOW_MAGIC as u64);
    assert_eq!(vf_reg(&h, 1, RegId::WIndex, 0), 1);
    assert_eq!(vf_reg(&h, 1, RegId::WVramSize, 0), 8 * MIB);
    // The PF's view of window 1 is the same registers.
    vf_set(&h, 1, RegId::WScratch, 0, 0x5eed);
    assert_eq!(h.reg(RegId::WScratch, 1, 0), 0x5eed);
    h.set(RegId::WScratch, 1, 0, 0xcafe);
    assert_eq!(vf_reg(&h, 1, RegId::WScratch, 0), 0xcafe);
    assert_eq!(
        vf_reg(&h, 0, RegId::WScratch, 0),
        0,
        "VF0 is another window"
    );

    // Past the window: refused, logged with the VF and its own offset, and
    // counted against the VF's partition only.
    assert_eq!(h.dev.vf_read(1, VF_REG_BAR, 0x2000, 4), 0xffff_ffff);
    let (info, offset) = last_access_error(&h);
    assert_eq!(info.reason(), AccessError::Unmapped);
    assert_eq!(info.function(), 2, "VF1 is function id 2");
    assert_eq!((info.bar(), offset), (VF_REG_BAR, 0x2000));
    assert_eq!(h.reg(RegId::WAccessErrors, 1, 0), 1);
    assert_eq!(h.reg(RegId::WAccessErrors, 0, 0), 0);
    // A refused register access inside the window is the VF's too.
    vf_set(&h, 1, RegId::WIndex, 0, 7);
    let (info, offset) = last_access_error(&h);
    assert_eq!((info.reason(), info.function()), (AccessError::ReadOnly, 2));
    assert_eq!(offset, regs::window_offset(RegId::WIndex, 0));
    assert_eq!(h.reg(RegId::WAccessErrors, 1, 0), 2);
    // No VF2 (partition 2 is the PF's), no BAR 4 in the model.
    assert_eq!(h.dev.vf_read(2, VF_REG_BAR, 0, 4), 0xffff_ffff);
    assert_eq!(last_access_error(&h).0.function(), 3);
    assert_eq!(h.dev.vf_read(1, 4, 0, 4), 0xffff_ffff);
    assert_eq!(h.reg(RegId::WAccessErrors, 2, 0), 0);
}

#[test]
fn a_tenant_driver_runs_work_through_the_vfs_bars_alone() {
    let h = Harness::new(cfg(), 1 << 20);
    h.enable(0, 0, 8 * MIB, PtCtrl::new());
    h.enable(1, 8 * MIB, 8 * MIB, PtCtrl::new());
    let tenant = h.vf_tenant(1);
    tenant.ring_in_vram(1, 0, 0x1000, 64);
    tenant.submit(
        1,
        0,
        &[
            Command::fill(Loc::Vram(0x10000), 0x1000, 0xa5a5_a5a5),
            Command::fence(Loc::Vram(0x20000), 0x77, false),
        ],
    );
    assert_eq!(tenant.wait_not_busy(1, T), PartitionState::Idle);
    assert_eq!(tenant.reg(RegId::WFenceValue, 1, 0), 0x77);
    // The fill landed in partition 1's slice, seen through VF1's VRAM BAR
    // at the slice offset and through the PF at the absolute one.
    assert_eq!(
        h.dev.vf_read(1, VF_VRAM_BAR, 0x10ff8, 8),
        0xa5a5_a5a5_a5a5_a5a5
    );
    assert_eq!(h.vram_bar_read(8 * MIB + 0x10000, 4), 0xa5a5_a5a5);
    assert_eq!(h.vram_bar_read(0x10000, 4), 0, "VF0's slice untouched");
}

#[test]
fn a_vfs_vram_bar_reaches_its_slice_only_while_enabled() {
    let h = Harness::new(cfg(), 1 << 20);
    assert_eq!(h.dev.vf_info().unwrap().vram_bar_size, 32 * MIB);
    // Disabled: the BAR reaches nothing.
    assert_eq!(h.dev.vf_read(0, VF_VRAM_BAR, 0, 8), u64::MAX);
    let (info, _) = last_access_error(&h);
    assert_eq!(
        (info.reason(), info.bar()),
        (AccessError::Unmapped, VF_VRAM_BAR)
    );
    assert_eq!(h.dev.vf_vram_slice(0), None);

    h.enable(0, 16 * MIB, MIB, PtCtrl::new());
    assert_eq!(
        h.dev.vf_vram_slice(0),
        Some(VfSlice {
            base: 16 * MIB,
            size_bytes: MIB
        })
    );
    h.dev
        .vf_write(0, VF_VRAM_BAR, 0x10, 0x1122_3344_5566_7788, 8);
    assert_eq!(h.vram_bar_read(16 * MIB + 0x10, 8), 0x1122_3344_5566_7788);
    assert_eq!(h.dev.vf_read(0, VF_VRAM_BAR, 0x14, 2), 0x3344);
    // The last bytes of the slice, then beyond it (still inside the BAR).
    h.dev.vf_write(0, VF_VRAM_BAR, MIB - 4, 0xdead_beef, 4);
    assert_eq!(h.vram_bar_read(17 * MIB - 4, 4), 0xdead_beef);
    assert_eq!(h.dev.vf_read(0, VF_VRAM_BAR, MIB - 2, 4), 0xffff_ffff);
    h.dev.vf_write(0, VF_VRAM_BAR, MIB, 0x55, 1);
    assert_eq!(h.vram_bar_read(17 * MIB, 1), 0, "nothing beyond the slice");
    assert_eq!(h.dev.vf_read(0, VF_VRAM_BAR, 0, 3), 0xff_ffff, "3 bytes");

    // Disabled again: refused, and VRAM keeps what it had.
    h.set(RegId::PtCtrl, 0, 0, 0);
    assert_eq!(h.dev.vf_read(0, VF_VRAM_BAR, 0x10, 8), u64::MAX);
    h.dev.vf_write(0, VF_VRAM_BAR, 0x10, 0, 8);
    assert_eq!(h.vram_bar_read(16 * MIB + 0x10, 8), 0x1122_3344_5566_7788);
}

#[test]
fn a_vfs_partition_takes_no_translation_and_no_slice_beyond_its_bar() {
    let h = Harness::new(cfg(), 1 << 20);
    for ctrl in [
        PtCtrl::new().with_xlate(true),
        PtCtrl::new().with_xlate_replay(true),
    ] {
        assert!(!h.try_enable(0, 0, MIB, ctrl));
        assert_eq!(h.reg(RegId::PtCtrl, 0, 0), 0, "CTRL unchanged");
        let (info, _) = last_access_error(&h);
        assert_eq!((info.reason(), info.function()), (AccessError::BadValue, 0));
    }
    // VF BARs are 32 MiB here: a bigger slice would be out of the VF's reach.
    assert!(!h.try_enable(1, 0, 48 * MIB, PtCtrl::new()));
    assert_eq!(last_access_error(&h).0.reason(), AccessError::BadValue);
    assert!(h.try_enable(1, 0, 32 * MIB, PtCtrl::new()));
    // The PF's partition: translation and any slice, as in mdev mode.
    h.set(RegId::PtCtrl, 1, 0, 0);
    assert!(h.try_enable(2, 0, 48 * MIB, PtCtrl::new().with_xlate(true)));
    assert_eq!(h.reg(RegId::WCaps, 2, 0) >> 8 & 1, 1);
    assert_eq!(h.reg(RegId::WCaps, 0, 0) >> 8 & 1, 0);
}

#[test]
fn flr_of_a_vf_resets_only_its_partition() {
    let h = Harness::new(cfg(), 1 << 20);
    h.enable(0, 0, 8 * MIB, PtCtrl::new());
    h.enable(1, 8 * MIB, 8 * MIB, PtCtrl::new());
    h.set(RegId::PtWeight, 0, 0, 9);
    let tenants = [h.vf_tenant(0), h.vf_tenant(1)];
    for (vf, t) in tenants.iter().enumerate() {
        t.ring_in_vram(vf, 0, 0, 64);
        t.set(RegId::WScratch, vf, 0, 0x100 + vf as u64);
        t.set(RegId::WIntrMask, vf, 0, 0x3);
        t.submit(vf, 0, &[Command::fence(Loc::Vram(0x8000), 0x42, false)]);
        assert_eq!(t.wait_not_busy(vf, T), PartitionState::Idle);
    }
    let resets = Arc::new(Mutex::new(Vec::new()));
    let r = resets.clone();
    let _sub = h.dev.subscribe(move |e| {
        if let EventKind::PartitionReset { partition } = e.kind {
            r.lock().push(partition);
        }
    });
    assert!(h.dev.vf_flr(0));
    assert_eq!(*resets.lock(), [0]);
    // VF0's window is back to reset values, rings off; the host's settings
    // and the VRAM contents stay.
    for (id, want) in [
        (RegId::WScratch, 0),
        (RegId::WIntrMask, 0),
        (RegId::WFenceValue, 0),
        (RegId::WRingSize, 0),
        (RegId::WStatCommands, 0),
    ] {
        assert_eq!(vf_reg(&h, 0, id, 0), want, "VF0 {id:?}");
    }
    assert_eq!(h.reg(RegId::PtCtrl, 0, 0), 1);
    assert_eq!(h.reg(RegId::PtWeight, 0, 0), 9);
    assert_eq!(h.dev.vf_read(0, VF_VRAM_BAR, 0x8000, 8), 0x42);
    // VF1 did not notice.
    for (id, want) in [
        (RegId::WScratch, 0x101),
        (RegId::WIntrMask, 0x3),
        (RegId::WFenceValue, 0x42),
        (RegId::WRingSize, 64),
        (RegId::WStatCommands, 1),
    ] {
        assert_eq!(vf_reg(&h, 1, id, 0), want, "VF1 {id:?}");
    }
    // No such VF: nothing happens.
    assert!(!h.dev.vf_flr(2));
    assert_eq!(*resets.lock(), [0]);
}

#[test]
fn dma_and_interrupts_carry_the_issuing_function() {
    let mem = Arc::new(FakeMemory::new(1 << 20));
    let iommu = Arc::new(IommuMemory::new(mem.clone()));
    let h = Harness::with_dma(cfg(), mem.clone(), iommu.clone());
    h.enable(0, 0, 8 * MIB, PtCtrl::new());
    h.enable(2, 8 * MIB, 8 * MIB, PtCtrl::new());
    assert_eq!(h.reg(RegId::PtMsixBase, 0, 0), 0, "VF0's own table");
    assert_eq!(h.reg(RegId::PtMsixBase, 1, 0), 0, "VF1's own table");
    assert_eq!(
        h.reg(RegId::PtMsixBase, 2, 0),
        regs::partition_vector_base(2) as u64
    );
    // VF0: a ring in system memory, a fence into system memory.
    let vf0 = h.vf_tenant(0);
    vf0.ring_in_sysmem(0, 0, 0x1000, 0x1000, 16);
    vf0.set(RegId::WIntrMask, 0, 0, 0x1);
    vf0.submit(0, 0, &[Command::fence(Loc::Sys(0x8000), 0xf0, true)]);
    // The PF's partition 2 does the same at other addresses.
    h.ring_in_sysmem(2, 0, 0x2000, 0x2000, 16);
    h.set(RegId::WIntrMask, 2, 0, 0x1);
    h.submit(2, 0, &[Command::fence(Loc::Sys(0x9000), 0xf2, true)]);
    assert!(h.irq.wait_for_of(Function::Vf(0), 0, 1, T));
    assert!(h.irq.wait_for(regs::partition_vector_base(2), 1, T));
    assert_eq!((mem.read_u64(0x8000), mem.read_u64(0x9000)), (0xf0, 0xf2));

    let by = |lo: u64| {
        let log = iommu.log();
        let mut fs: Vec<_> = log
            .iter()
            .filter(|a| (lo..lo + 0x1000).contains(&a.addr))
            .map(|a| a.func)
            .collect();
        fs.dedup();
        fs
    };
    assert_eq!(by(0x1000), [Function::Vf(0)], "VF0's ring fetch");
    assert_eq!(by(0x8000), [Function::Vf(0)], "VF0's fence write");
    assert_eq!(by(0x2000), [Function::Pf], "partition 2's ring fetch");
    assert_eq!(by(0x9000), [Function::Pf], "partition 2's fence write");
    // VF0's partition never raised the PF vectors it would have in mdev mode.
    assert_eq!(h.irq.count(regs::partition_vector_base(0)), 0);
    assert_eq!(h.irq.vectors_of(Function::Vf(0)), [0]);
    assert!(h.irq.vectors_of(Function::Vf(1)).is_empty());
}

#[test]
fn an_iommu_refusal_faults_only_that_vfs_partition() {
    let mem = Arc::new(FakeMemory::new(1 << 20));
    let iommu = Arc::new(IommuMemory::new(mem.clone()));
    iommu.map(Function::Vf(0), 0..0x10000);
    iommu.map(Function::Vf(1), 0x10000..0x20000);
    let h = Harness::with_dma(cfg(), mem.clone(), iommu.clone());
    h.set(RegId::IntrMask, 0, 0, 0xf);
    h.enable(0, 0, 8 * MIB, PtCtrl::new());
    h.enable(1, 8 * MIB, 8 * MIB, PtCtrl::new());
    let tenants = [h.vf_tenant(0), h.vf_tenant(1)];
    for (vf, t) in tenants.iter().enumerate() {
        t.ring_in_vram(vf, 0, 0, 64);
        t.set(RegId::WIntrMask, vf, 0, 0x3);
        // Both aim at VF0's page: VF1's IOMMU domain does not map it.
        t.submit(
            vf,
            0,
            &[Command::fence(Loc::Sys(0x100), 0xa0 + vf as u64, true)],
        );
    }
    assert_eq!(tenants[0].wait_not_busy(0, T), PartitionState::Idle);
    assert_eq!(tenants[1].wait_not_busy(1, T), PartitionState::Faulted);
    assert_eq!(mem.read_u64(0x100), 0xa0, "only VF0's fence landed");
    let fault = FaultStatus::from_bits(vf_reg(&h, 1, RegId::WFaultStatus, 0) as u32);
    assert_eq!(fault.code(), FaultCode::DmaError);
    assert_eq!(vf_reg(&h, 1, RegId::WFaultAddr, 0), 0x100);
    // VF1's fault vector, and the host's fault log on the PF's vector 0.
    assert!(h.irq.wait_for_of(Function::Vf(1), 1, 1, T));
    assert!(h.irq.wait_for(regs::HOST_VECTOR_EVENTS, 1, T));
    let log = FaultLogInfo::from_bits(h.reg(RegId::FaultLogInfo, 0, 0) as u32);
    assert_eq!((log.partition(), log.code()), (1, FaultCode::DmaError));
    assert_eq!(h.reg(RegId::FaultedPartitions, 0, 0), 0b10);
    let refused: Vec<_> = iommu.log().into_iter().filter(|a| !a.allowed).collect();
    assert_eq!(refused.len(), 1);
    assert_eq!((refused[0].func, refused[0].write), (Function::Vf(1), true));
}

/// Records each notification with the mapping it reads back from inside
/// the callback, as a VMM would.
#[derive(Default)]
struct SliceLog {
    dev: OnceLock<Weak<Device>>,
    seen: Mutex<Vec<(u16, Option<VfSlice>)>>,
}

impl VfSliceNotify for SliceLog {
    fn vf_vram_changed(&self, vf: u16) {
        let dev = self.dev.get().and_then(Weak::upgrade).expect("device");
        self.seen.lock().push((vf, dev.vf_vram_slice(vf)));
    }
}

#[test]
fn the_slice_notifier_follows_enable_disable_and_device_reset() {
    let log = Arc::new(SliceLog::default());
    let mem = Arc::new(FakeMemory::new(1 << 20));
    let h = Harness::with_vf_slice_notify(cfg(), mem.clone(), mem, Some(log.clone()));
    log.dev.set(Arc::downgrade(&h.dev)).unwrap();
    let take = || std::mem::take(&mut *log.seen.lock());
    let slice = |base, size_bytes| Some(VfSlice { base, size_bytes });

    h.enable(0, 4 * MIB, 2 * MIB, PtCtrl::new());
    assert_eq!(take(), [(0, slice(4 * MIB, 2 * MIB))]);
    // Not a mapping change: the PF's partition, resets, a refused enable,
    // rewriting CTRL with ENABLE still set.
    h.enable(2, 32 * MIB, MIB, PtCtrl::new());
    h.set(RegId::WReset, 0, 0, 1);
    h.set(RegId::PtReset, 0, 0, 1);
    assert!(h.dev.vf_flr(0));
    assert!(
        !h.try_enable(1, 5 * MIB, MIB, PtCtrl::new()),
        "overlaps VF0"
    );
    h.set(RegId::PtCtrl, 0, 0, 1);
    assert_eq!(take(), []);

    h.set(RegId::PtCtrl, 0, 0, 0);
    assert_eq!(take(), [(0, None)]);
    h.enable(0, 0, MIB, PtCtrl::new());
    h.enable(1, 5 * MIB, MIB, PtCtrl::new());
    assert_eq!(take(), [(0, slice(0, MIB)), (1, slice(5 * MIB, MIB))]);
    h.set(RegId::DeviceReset, 0, 0, 1);
    assert_eq!(take(), [(0, None), (1, None)]);
    h.enable(1, 0, MIB, PtCtrl::new());
    h.dev.reset();
    assert_eq!(take(), [(1, slice(0, MIB)), (1, None)]);
}

#[test]
fn without_sriov_there_are_no_vfs() {
    let h = Harness::new(
        DeviceConfig {
            sriov_vfs: 0,
            ..cfg()
        },
        1 << 20,
    );
    h.enable(0, 0, MIB, PtCtrl::new().with_xlate(true));
    assert!(h.dev.vf_info().is_none());
    assert_eq!(h.dev.vf_vram_slice(0), None);
    assert!(!h.dev.vf_flr(0));
    assert_eq!(h.dev.vf_read(0, VF_REG_BAR, 0, 4), 0xffff_ffff);
    let (info, _) = last_access_error(&h);
    assert_eq!((info.reason(), info.function()), (AccessError::Unmapped, 1));
    assert_eq!(
        h.reg(RegId::WAccessErrors, 0, 0),
        0,
        "no VF0: nobody's error"
    );
    for p in 0..3 {
        assert_eq!(
            h.reg(RegId::PtMsixBase, p, 0),
            regs::partition_vector_base(p) as u64
        );
    }
}

#[test]
fn the_vf_layout_is_one_window_a_slice_bar_and_two_vectors() {
    let h = Harness::new(
        DeviceConfig {
            vf_vram_bar_size: 64 * MIB,
            ..cfg()
        },
        4096,
    );
    let info = h.dev.vf_info().unwrap();
    assert_eq!(info.total_vfs, 2);
    assert_eq!(info.vf_device_id, vdevice::pci::VGPU_DEVICE_ID);
    assert_eq!((info.reg_bar, info.reg_bar_size), (0, 0x2000));
    assert_eq!((info.vram_bar, info.vram_bar_size), (2, 64 * MIB));
    assert_eq!((info.msix_bar, info.msix_vectors), (4, 2));
    assert!(info.msix_pba_offset as u64 + 8 <= info.msix_bar_size);
    assert!(h.dev.dump().starts_with(
        "vgpu: vram 64 MiB, 3 partitions, 2 engines, SR-IOV: 2 VFs, VF VRAM BAR 65536 KiB\n"
    ));
    // A slice as big as all of VRAM fits a VF BAR that big.
    assert!(h.try_enable(0, 0, 64 * MIB, PtCtrl::new()));
}
