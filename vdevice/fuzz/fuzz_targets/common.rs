//! What both fuzz targets share: a device with two enabled partitions, the
//! operations a buggy or hostile driver performs (register garbage, command
//! submissions built from input bytes, long commands, doorbell rewinds and
//! ring reconfiguration under running commands, translation edits, the
//! RM's unmap sequence, resets and injections), and the checks run at the
//! end.
//!
//! Memory layout. VRAM: partition 0 owns [0, 4 MiB), partition 1 owns
//! [4, 8 MiB); [8, 9 MiB), owned by no partition, is a canary (checking
//! it reads every page, so it is kept to the most likely overrun). System memory:
//! partition 0 is untranslated and reaches bus [0, 2 MiB) only (its
//! addresses and lengths are each below 1 MiB); partition 1's translation
//! (directory, tables and the data pages it may map) lives in [2, 3 MiB),
//! where partition 0 cannot reach. An unmapped data page
//! gets a canary after the unmap returns; it must stay intact until
//! something maps that page again (the unmap contract, SPEC 8).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;
use vdevice::command::{Command, Loc, COMMAND_BYTES};
use vdevice::regs::{self, Block, PtCtrl, RegId, REG_BAR};
use vdevice::testing::Harness;
use vdevice::xlate::PAGE_SIZE;
use vdevice::DeviceConfig;

pub const MIB: u64 = 1 << 20;
/// The MiB right above partition 1's slice: no partition owns it.
const CANARY: u64 = 8 * MIB;
const CANARY_LEN: u64 = MIB;
const P0_SYS: u64 = MIB;
const X: u64 = 2 * MIB;
const DIR: u64 = X + 0x1000;
const TABLES: u64 = X + 0x2000;
const DATA: u64 = X + 0x8_0000;
const DATA_PAGES: u64 = 64;
const MAPPED: usize = 8;
const SYSMEM: u64 = DATA + DATA_PAGES * PAGE_SIZE;
const UNPIN_CANARY: u8 = 0xc5;

pub struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    pub fn u8(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    pub fn u64(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..8 {
            v |= (self.u8()? as u64) << (8 * i);
        }
        Some(v)
    }
}

fn loc(sys: bool, addr: u64) -> Loc {
    if sys {
        Loc::Sys(addr)
    } else {
        Loc::Vram(addr)
    }
}

/// Partition 1's translation as the fuzzer's "RM" keeps it.
pub struct Xlate {
    /// Entry i maps partition page i to (bus page, writable), or nothing.
    maps: [Option<(u64, bool)>; MAPPED],
    /// Bus pages unmapped (and canaried) that nothing maps since.
    unpinned: BTreeSet<u64>,
}

pub struct World {
    pub h: Harness,
    pub xlate: Mutex<Xlate>,
}

impl World {
    pub fn new() -> Self {
        let h = Harness::new(
            DeviceConfig {
                vram_size_bytes: 16 * MIB,
                partitions: 2,
                engines: 1,
                ..DeviceConfig::default()
            },
            SYSMEM as usize,
        );
        h.set(RegId::SchedTimesliceUs, 0, 0, 100);
        h.enable(0, 0, 4 * MIB, PtCtrl::new());
        h.ring_in_vram(0, 0, 0, 16);
        h.ring_in_vram(0, 1, 0x1000, 16);
        let mut maps = [None; MAPPED];
        for (i, m) in maps.iter_mut().enumerate() {
            *m = Some((DATA + i as u64 * PAGE_SIZE, i % 2 == 0));
        }
        let w = Self {
            h,
            xlate: Mutex::new(Xlate {
                maps,
                unpinned: BTreeSet::new(),
            }),
        };
        let entries = w.write_tables(&w.xlate.lock().unwrap());
        w.h.set_xlate(1, DIR, entries);
        w.h.enable(1, 4 * MIB, 4 * MIB, PtCtrl::new().with_xlate(true));
        w.h.ring_in_vram(1, 0, 0, 16);
        w
    }

    fn write_tables(&self, x: &Xlate) -> u32 {
        let maps: Vec<_> = x
            .maps
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.map(|(bus, w)| (i as u64 * PAGE_SIZE, bus, w)))
            .collect();
        self.h.mem.write_bytes(TABLES, &[0u8; PAGE_SIZE as usize]);
        self.h.build_xlate(DIR, TABLES, &maps).max(1)
    }

    /// One operation from the input; None when the input ran out.
    pub fn step(&self, input: &mut Input, submitted: &mut u32) -> Option<()> {
        let h = &self.h;
        match input.u8()? % 11 {
            0 => {
                let off = input.u64()? % (2 * regs::REG_BAR_SIZE);
                let size = [1, 2, 4, 8, 3][(input.u8()? % 5) as usize];
                let _ = h.dev.read(REG_BAR, off, size);
            }
            1 => {
                let off = input.u64()? % (2 * regs::REG_BAR_SIZE);
                let size = [1, 2, 4, 8, 3][(input.u8()? % 5) as usize];
                let value = input.u64()?;
                // The host's side stays trusted: the partition table places
                // the slices (a garbage one could legitimately cover the
                // canary; the garbage proptest covers it for panics), and a
                // device reset scrubs the canary by design.
                let host_only = matches!(regs::block_of(off), Some((Block::PartitionTable, _, _)))
                    || regs::decode(off).is_some_and(|d| d.reg.id == RegId::DeviceReset);
                if !host_only {
                    h.dev.write(REG_BAR, off, value, size);
                }
            }
            2..=4 if *submitted < 64 => {
                *submitted += 1;
                self.submit(input)?;
            }
            5 => {
                // Remap one of partition 1's pages the way the RM does:
                // entry, invalidate (which waits), read back.
                let i = (input.u8()? % MAPPED as u8) as usize;
                let bus = DATA + (input.u64()? % DATA_PAGES) * PAGE_SIZE;
                let writable = input.u8()? % 2 == 0;
                let mut x = self.xlate.lock().unwrap();
                x.maps[i] = Some((bus, writable));
                x.unpinned.remove(&bus);
                self.write_tables(&x);
                h.set(RegId::PtXlateInvalidate, 1, 0, 1);
                h.reg(RegId::PtState, 1, 0);
            }
            6 => {
                // The RM's unmap: clear the entry, invalidate, read back,
                // then "unpin": the page gets a canary the device must
                // never overwrite (unless something maps it again).
                let i = (input.u8()? % MAPPED as u8) as usize;
                let mut x = self.xlate.lock().unwrap();
                if let Some((bus, _)) = x.maps[i].take() {
                    self.write_tables(&x);
                    h.set(RegId::PtXlateInvalidate, 1, 0, 1);
                    h.reg(RegId::PtState, 1, 0);
                    if !x.maps.iter().flatten().any(|&(b, _)| b == bus) {
                        h.mem.write_bytes(bus, &[UNPIN_CANARY; PAGE_SIZE as usize]);
                        x.unpinned.insert(bus);
                    }
                }
            }
            7 => {
                let p = (input.u8()? % 2) as usize;
                match input.u8()? % 3 {
                    0 => h.set(RegId::WReset, p, 0, 1),
                    1 => h.set(RegId::PtInject, p, 0, input.u8()? as u64 % 8),
                    _ => h.set(RegId::PtReset, p, 0, 1),
                }
            }
            8 => {
                // The tenant's attack on its own ring under a running
                // command: rewind TAIL to HEAD, turn the ring off, move it.
                let p = (input.u8()? % 2) as usize;
                let ring = (input.u8()? % 2) as usize;
                let head = h.reg(RegId::WRingHead, p, ring);
                match input.u8()? % 4 {
                    0 => h.set(RegId::WDoorbell, p, ring, head),
                    1 => h.set(RegId::WRingSize, p, ring, 0),
                    2 => h.set(RegId::WRingBase, p, ring, input.u64()? % (4 * MIB)),
                    _ => h.set(RegId::WDoorbell, p, ring, input.u64()? % 16),
                }
            }
            9 => {
                // Let the engines run for a moment (so commands are in
                // flight when the next operations arrive).
                std::thread::sleep(Duration::from_micros(input.u8()? as u64 * 4));
            }
            _ => {
                let off = CANARY - 64 + (input.u8()? as u64);
                let _ = h.dev.vram().write(off % CANARY, &[input.u8()?]);
            }
        }
        Some(())
    }

    /// A command from input bytes. Partition 0 uses bus addresses inside
    /// its half of system memory; partition 1 goes through its translation
    /// and also gets raw garbage commands. Lengths reach well past the
    /// slices and chunk size, so commands run long and are preempted.
    fn submit(&self, input: &mut Input) -> Option<()> {
        let p = (input.u8()? % 2) as usize;
        let kind = input.u8()?;
        let (dst, src, raw_len, value) = (input.u64()?, input.u64()?, input.u64()?, input.u64()?);
        let (ds, ss) = (kind & 8 != 0, kind & 16 != 0);
        let addr = |sys: bool, v: u64| match (sys, p) {
            (true, 0) => v % P0_SYS,
            (true, _) => v % (MAPPED as u64 * PAGE_SIZE + PAGE_SIZE),
            (false, _) => v % (8 * MIB),
        };
        let long = kind & 32 != 0;
        let len = |sys: bool| {
            let cap = if sys && p == 0 {
                P0_SYS
            } else if long {
                16 * MIB
            } else {
                64 * 1024
            };
            raw_len % cap
        };
        let cmd = match kind % 8 {
            0 => Command::copy(
                loc(ds, addr(ds, dst)),
                loc(ss, addr(ss, src)),
                len(ds || ss),
            ),
            1 => Command::fill(loc(ds, addr(ds, dst)), len(ds) & !3, value as u32),
            2 => Command::fence(loc(ds, addr(ds, dst) & !7), value, kind & 16 != 0),
            3 => Command::sem_wait(loc(ss, addr(ss, src) & !7), value % 4),
            4 => Command::timestamp(loc(ds, addr(ds, dst) & !7)),
            5 => Command::crc32(loc(ds, addr(ds, dst) & !7), loc(ss, addr(ss, src)), len(ss)),
            6 => Command::nop(),
            _ => {
                let mut raw = [0u8; COMMAND_BYTES];
                raw[..8].copy_from_slice(&dst.to_le_bytes());
                raw[8..16].copy_from_slice(&src.to_le_bytes());
                raw[16..24].copy_from_slice(&raw_len.to_le_bytes());
                self.h.submit_raw(1, 0, &[raw]);
                return Some(());
            }
        };
        self.h.submit(p, 0, &[cmd]);
        Some(())
    }

    /// Check everything. The checks hold at any moment, so nothing waits
    /// for the engines to drain (a stalled SEM_WAIT never would).
    pub fn finish(&self) {
        let h = &self.h;
        // Stop both partitions (waits for the engine), then look.
        h.set(RegId::PtCtrl, 0, 0, 0);
        h.set(RegId::PtCtrl, 1, 0, 0);
        assert!(h.dev.threads_alive(), "a model thread died");
        if let Err(e) = h.dev.check_invariants() {
            panic!("device invariant broken: {e}");
        }
        let zero = vec![0u8; CANARY_LEN as usize];
        let mut canary = vec![0u8; zero.len()];
        assert!(h.dev.vram().read(CANARY, &mut canary));
        // One memcmp: a byte loop would run under comparison tracing.
        if canary != zero {
            let dirty = canary.iter().position(|&b| b != 0);
            panic!("VRAM canary written at CANARY + {dirty:?}");
        }
        for &bus in &self.xlate.lock().unwrap().unpinned {
            let page = h.mem.read_bytes(bus, PAGE_SIZE as usize);
            let dirty = page.iter().position(|&b| b != UNPIN_CANARY);
            assert_eq!(
                dirty, None,
                "unpinned page {bus:#x} written after its unmap"
            );
        }
    }
}
