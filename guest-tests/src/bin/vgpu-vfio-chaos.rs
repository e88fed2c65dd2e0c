//! vgpu-vfio-chaos: a randomized VFIO sequence, as a buggy or hostile VMM
//! would drive its vGPUs: region reads and writes at any offset and size,
//! config-space garbage, malformed SET_IRQS / GET_*_INFO arguments, resets,
//! mmaps at random offsets, DMA maps and unmaps under running work, and
//! garbage command streams that DMA anywhere. The kernel must refuse what is
//! malformed and stay up (run-l1.sh then checks L1's dmesg).
//!
//! Between the random operations run episodes of the sequences that once
//! broke isolation, each with checks that hold whatever the timing:
//!
//! - ring: doorbell rewinds onto RING_HEAD (through the trapped BAR0 and
//!   the mmap'ed doorbell page) and RING_SIZE / RING_BASE / RING_CTRL
//!   writes while commands run. A command in flight owns its ring: no
//!   command may fault, be cut short or run out of ring order, and nothing
//!   may move once the partition reads IDLE.
//! - big: FILL / COPY / CRC32 of many MiB in VRAM and in system memory on
//!   small and large vGPUs, sometimes two at once beside a busy third one
//!   (time slices) and under DMA unmaps that invalidate their translations:
//!   results must be exact.
//! - unmap: VFIO_IOMMU_UNMAP_DMA of a buffer a command is using (sometimes
//!   right after a doorbell rewind): once the unmap returns, no byte of the
//!   VMM's unmapped pages may change (a canary written then is checked at the
//!   end of the episode) nor be read; memory mapped at the same addresses
//!   afterwards works.
//! - reset: VFIO_DEVICE_RESET and the window's RESET racing completions and
//!   interrupts: once a reset returns, nothing of what ran before moves.
//!
//! Afterwards every vGPU works and a bystander vGPU's VRAM is intact.
//! Everything the program does follows from the seed (a failure replays);
//! how it interleaves with the engines does not, so the transcript says
//! only what holds either way and the timing-dependent counts are benches.
//!
//! Usage: vgpu-vfio-chaos [OPERATIONS] [SEED] [EPISODES]
//! (VGPU_CHAOS_TRACE=1 prints each episode's outcome and time on stderr.)

//!
//! The program is a table of named checks on a [`Chaos`] context; the
//! random sequence runs first ([`run_sequence`]), each episode a named
//! function (`ep_ring`, `ep_big`, `ep_unmap`, `ep_reset`, `reset_storm`).

use std::collections::BTreeMap;
use std::fs::File;
use std::time::{Duration, Instant};
use vdevice::command::{Command, Loc, COMMAND_BYTES};
use vdevice::driver::{Driver, Hardware};
use vdevice::regs::{self, FaultCode, PartIntr, PartitionState, RegId};
use vdevice::testing::Rng;
use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_SET_ACTION_MASK, VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_ACTION_UNMASK,
    VFIO_IRQ_SET_DATA_BOOL, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE,
};
use vgpu_guest_tests::vfio::{
    self, region_offset as region_base, Container, DmaBuf, EventFd, VfioVgpu, CONFIG_REGION,
};
use vgpu_guest_tests::vgpu::{self as vg, fatal, framebuffer_bytes, TIMEOUT as T, TIMEOUT_MS};
use vgpu_guest_tests::{bench, ensure, Check, Report};
use vgpuctl::{Gpu, Vgpu, VgpuType};

const UUIDS: [&str; 3] = [
    "0c4a0500-0000-4000-8000-00000000c4a0",
    "0c4a0500-0000-4000-8000-00000000c4a1",
    "0c4a0500-0000-4000-8000-00000000c4a2",
];
/// The random operations' buffer.
const IOVA: u64 = 0x2000_0000;
const DMA_BYTES: usize = 2 << 20;
const PAGE: u64 = 4096;
const MIB: u64 = 1 << 20;

// Each vGPU's IOVA area for the episodes (one container: one IOVA space).
const AREA: u64 = 0x4000_0000;
const AREA_STRIDE: u64 = 0x1000_0000;
/// Mapped throughout: system-memory rings and the final check's words.
const CTRL_BYTES: usize = 1 << 20;
const SYS_RINGS: u64 = 0x1_0000;
/// Pages pinned by a command, then unmapped one by one while long commands
/// run: every such unmap invalidates the partition's translations.
const SCRATCH_OFF: u64 = 0x10_0000;
const SCRATCH_PAGES: u64 = 16;
/// Unmapped between episodes; mapped in pieces (type1 v2 unmaps whole
/// mappings) from one of two buffers.
const UNMAP_OFF: u64 = 0x20_0000;
const PIECE: u64 = 16 << 10;
const PIECES: u64 = 8;
const U_BYTES: u64 = PIECE * PIECES;
/// The large system-memory buffer. Every page costs a replayable fault the
/// first time (1-5 ms each in a TCG L1), so it is pinned once, at the
/// start, and never unmapped; commands on it are a few MiB long.
const BIG_OFF: u64 = 0x100_0000;
const BIG_BYTES: usize = 2 << 20;

// VRAM layout of a vGPU: rings, result words, data from 1 MiB on.
const RES: u64 = 0x1_0000;
const WORK: u64 = 0x2_0000;
const DATA: u64 = MIB;
const GUARD: u64 = 0x1_0000;
const ENTRIES: u32 = 64;

// ---- the command line ------------------------------------------------------

const USAGE: &str = "usage: vgpu-vfio-chaos [OPERATIONS] [SEED] [EPISODES]
  OPERATIONS  random VFIO operations (decimal, default 3000)
  SEED        the sequence's seed (hex, 0x optional, default 0x5eedc4a05eedc4a0)
  EPISODES    episodes spread over the operations (decimal, default OPERATIONS/400)";

/// What a run does: everything follows from these.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Args {
    ops: u64,
    seed: u64,
    episodes: u64,
}

/// OPERATIONS, SEED and EPISODES, each optional in that order; Ok(None) for
/// --help.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, lexopt::Error> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut values = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Value(v) if values.len() < 3 => values.push(v.string()?),
            _ => return Err(arg.unexpected()),
        }
    }
    let number = |what: &str, s: &str, radix: u32| {
        let digits = if radix == 16 {
            s.trim_start_matches("0x")
        } else {
            s
        };
        u64::from_str_radix(digits, radix).map_err(|e| lexopt::Error::ParsingFailed {
            value: s.to_string(),
            error: format!("{what}: {e}").into(),
        })
    };
    let ops = match values.first() {
        Some(s) => number("OPERATIONS", s, 10)?,
        None => 3000,
    };
    let seed = match values.get(1) {
        Some(s) => number("SEED", s, 16)?,
        None => 0x5eed_c4a0_5eed_c4a0,
    };
    let episodes = match values.get(2) {
        Some(s) => number("EPISODES", s, 10)?,
        None => ops / 400,
    };
    Ok(Some(Args {
        ops,
        seed,
        episodes,
    }))
}

// ---- helpers ------------------------------------------------------------------

/// An offset into the device fd: region index in bits 40+ (vfio-pci's
/// layout, which vgpu_vfio follows), sometimes a region that does not exist,
/// sometimes near a region's end.
fn region_offset(rng: &mut Rng, sizes: &[u64]) -> u64 {
    let index = rng.below(12);
    let size = sizes.get(index as usize).copied().unwrap_or(0x1000);
    let within = match rng.below(4) {
        0 => rng.below(size.max(1)),
        1 => size.saturating_sub(rng.below(16)),
        2 => rng.below(1 << 40),
        _ => rng.below(0x100),
    };
    region_base(index) | within
}

fn access_len(rng: &mut Rng) -> usize {
    rng.pick(&[1, 2, 3, 4, 8, 16, 7, 64, 4096, 4097, 1 << 20])
}

#[derive(Default)]
struct Tally {
    ops: u64,
    refused: u64,
}

impl Tally {
    fn note<T, E>(&mut self, r: Result<T, E>) {
        self.ops += 1;
        if r.is_err() {
            self.refused += 1;
        }
    }
}

/// With VGPU_CHAOS_TRACE set, a line on stderr.
fn trace(line: impl FnOnce() -> String) {
    if std::env::var_os("VGPU_CHAOS_TRACE").is_some() {
        eprintln!("{}", line());
    }
}

/// CRC-32 of `len` bytes of the little-endian word `pattern` repeated, as
/// the device computes it, without building the bytes: concatenations of
/// equal words commute, so CRCs of powers of two are combined.
fn pattern_crc(pattern: u32, len: u64) -> u32 {
    assert!(len & 3 == 0, "a FILL length");
    let mut unit = crc32fast::Hasher::new();
    unit.update(&pattern.to_le_bytes());
    let mut acc = crc32fast::Hasher::new();
    let mut words = len / 4;
    while words > 0 {
        if words & 1 == 1 {
            acc.combine(&unit);
        }
        let u = unit.clone();
        unit.combine(&u);
        words >>= 1;
    }
    acc.finalize()
}

/// A FILL whose target the checks look at: VRAM offset, or IOVA in the
/// vGPU's large system-memory buffer.
#[derive(Clone, Copy)]
struct Fill {
    sys: bool,
    at: u64,
    len: u64,
    new: u32,
    old: u32,
}

impl Fill {
    fn new(sys: bool, at: u64, len: u64, e: &mut Rng) -> Self {
        let new = e.pattern();
        Self {
            sys,
            at,
            len,
            new,
            old: !new,
        }
    }
    fn loc(&self) -> Loc {
        Loc::new(self.sys, self.at)
    }
    fn cmd(&self) -> Command {
        Command::fill(self.loc(), self.len, self.new)
    }
}

/// The state of a target, one letter per 1 MiB of it (the engine's unit of
/// work, counted from the command's start): 'P' the new pattern, 'Q' the
/// old one, 'x' mixed or neither. Sampled: the first and last word of every
/// page.
fn shape(f: &Fill, word: impl Fn(u64) -> u32) -> String {
    let mut s = String::new();
    let mut c = 0;
    while c < f.len {
        let end = (c + MIB).min(f.len);
        let (mut new, mut old, mut all) = (0, 0, 0);
        let mut p = c;
        while p < end {
            for w in [p, (p + PAGE).min(end) - 4] {
                let x = word(f.at + w);
                all += 1;
                new += usize::from(x == f.new);
                old += usize::from(x == f.old);
            }
            p += PAGE;
        }
        s.push(if new == all {
            'P'
        } else if old == all {
            'Q'
        } else {
            'x'
        });
        c = end;
    }
    s
}

/// "PPPQQ": a prefix done, the rest untouched, nothing half done.
fn is_prefix(s: &str) -> bool {
    s.trim_start_matches('P').chars().all(|c| c == 'Q')
}

fn all_p(s: &str) -> bool {
    s.chars().all(|c| c == 'P')
}

fn intr_all() -> u64 {
    PartIntr::new()
        .with_fence(true)
        .with_fault(true)
        .with_idle(true)
        .into_bits() as u64
}

/// One vGPU opened through VFIO, with its buffers in the shared container.
struct Vg {
    /// Its framebuffer, as the type table says ("32M").
    label: String,
    uuid: &'static str,
    g: Driver<VfioVgpu>,
    /// BAR0's doorbell page, mmap'ed as a VMM maps it into its guest.
    bells: memmap2::MmapRaw,
    fb: u64,
    iova: u64,
    big: DmaBuf,
    scratch: DmaBuf,
    ubuf: [DmaBuf; 2],
    ctrl: DmaBuf,
    efd: [EventFd; 2],
    _group: File,
}

impl Vg {
    fn rd(&self, id: RegId, elem: usize) -> u64 {
        self.g.reg(id, 0, elem)
    }

    fn wr(&self, id: RegId, elem: usize, v: u64) {
        self.g.set(id, 0, elem, v)
    }

    fn state(&self) -> PartitionState {
        self.g.state(0)
    }

    fn fault(&self) -> FaultCode {
        vg::fault_code(&self.g)
    }

    fn describe(&self) -> String {
        vg::describe(&self.g)
    }

    /// DOORBELL[ring] = v, through the mmap'ed page or the trapped BAR0.
    fn doorbell(&self, ring: usize, v: u64, mmap: bool) {
        if mmap {
            // SAFETY: the doorbell page is mapped and DOORBELL[ring] is in it.
            unsafe {
                std::ptr::write_volatile((self.bells.as_mut_ptr() as *mut u32).add(ring), v as u32)
            }
        } else {
            self.wr(RegId::WDoorbell, ring, v);
        }
    }

    fn vram_u64(&self, off: u64) -> u64 {
        vg::vram_u64(&self.g, off)
    }

    /// A word of a target: VRAM, or the large system-memory buffer.
    fn word(&self, sys: bool, at: u64) -> u32 {
        if sys {
            self.big.u32_at(at - self.iova - BIG_OFF)
        } else {
            vg::vram_u32(&self.g, at)
        }
    }

    fn shape(&self, f: &Fill) -> String {
        shape(f, |a| self.word(f.sys, a))
    }

    fn drain(&self) {
        for e in &self.efd {
            e.wait(0);
        }
    }

    /// Back to a known state after whatever came before: memory decoding
    /// and bus mastering on, VFIO_DEVICE_RESET, MSI-X to our eventfds.
    fn recover(&self) -> Result<(), String> {
        let dev = &self.g.hw.dev;
        let cfg = region_base(CONFIG_REGION.into());
        dev.pwrite_raw(cfg | 4, &[0x06, 0x00])
            .map_err(|e| format!("config COMMAND: {e}"))?;
        dev.reset().map_err(|e| format!("VFIO_DEVICE_RESET: {e}"))?;
        for index in [vfio::IRQ_INTX, vfio::IRQ_MSI, vfio::IRQ_MSIX] {
            let _ = dev.disable_irqs(index);
        }
        dev.set_irq_eventfds(vfio::IRQ_MSIX, &[self.efd[0].raw(), self.efd[1].raw()])
            .map_err(|e| format!("SET_IRQS MSI-X: {e}"))?;
        self.drain();
        ensure!(
            self.state() == PartitionState::Idle,
            "after VFIO_DEVICE_RESET: {}",
            self.describe()
        );
        Ok(())
    }

    /// Ring base: copy 0 or 1 of ring `ring`, in VRAM or in the control
    /// buffer.
    fn ring_base(&self, ring: usize, copy: u64, sys: bool) -> u64 {
        let off = ring as u64 * 0x8000 + copy * 0x4000;
        if sys {
            self.iova + SYS_RINGS + off
        } else {
            off
        }
    }

    fn configure_ring(&self, ring: usize, base: u64, sys: bool) {
        self.wr(RegId::WRingCtrl, ring, u64::from(sys));
        self.wr(RegId::WRingBase, ring, base);
        self.wr(RegId::WRingSize, ring, ENTRIES as u64);
    }

    /// Commands into ring slots 0.. at `base`.
    fn put(&self, base: u64, sys: bool, cmds: &[Command]) {
        for (i, c) in cmds.iter().enumerate() {
            let at = base + (i * COMMAND_BYTES) as u64;
            if sys {
                self.g.hw.sys_write(at, &c.encode());
            } else {
                self.g.hw.vram_write(at, &c.encode());
            }
        }
    }

    /// Start `cmds` from a fresh VRAM ring 0.
    fn start(&self, cmds: &[Command], mmap: bool) {
        self.configure_ring(0, 0, false);
        self.put(0, false, cmds);
        self.doorbell(0, cmds.len() as u64, mmap);
    }

    /// Run `cmds` on a fresh VRAM ring 0: all must complete.
    fn run(&self, cmds: &[Command]) -> Result<(), String> {
        self.start(cmds, false);
        let st = self.g.wait_settled(0, T);
        ensure!(
            st == PartitionState::Idle,
            "{} commands: {}",
            cmds.len(),
            self.describe()
        );
        Ok(())
    }

    /// Wait for the partition to settle: it must end IDLE.
    fn settle(&self, what: &str) -> Result<(), String> {
        let st = self.g.wait_settled(0, T);
        ensure!(st == PartitionState::Idle, "{what}: {}", self.describe());
        Ok(())
    }
}

impl Vg {
    /// Open `uuid` as the `index`th vGPU of the container (the first one
    /// chooses the IOMMU), with its buffers mapped in its IOVA area and the
    /// doorbell page mmap'ed.
    fn open(
        container: &Container,
        uuid: &'static str,
        index: u64,
        label: String,
    ) -> Result<Self, String> {
        let iova = AREA + index * AREA_STRIDE;
        let ctrl = DmaBuf::new(CTRL_BYTES)?;
        let (hw, group) = VfioVgpu::open(container, uuid, index == 0, ctrl, iova)?;
        let bells = hw
            .dev
            .mmap(&hw.bar0, regs::DOORBELL_PAGE, PAGE as usize)
            .map_err(|e| format!("doorbell page mmap: {e}"))?;
        let fb = hw.bar2.size;
        let big = DmaBuf::new(BIG_BYTES)?;
        let scratch = DmaBuf::new((SCRATCH_PAGES * PAGE) as usize)?;
        let ubuf = [
            DmaBuf::new(U_BYTES as usize)?,
            DmaBuf::new(U_BYTES as usize)?,
        ];
        let map = |b: &DmaBuf, off: u64, len: u64| {
            container
                .map_dma(b.vaddr(0), iova + off, len)
                .map_err(|e| format!("MAP_DMA at {:#x}: {e}", iova + off))
        };
        map(&ctrl, 0, CTRL_BYTES as u64)?;
        map(&big, BIG_OFF, big.len() as u64)?;
        for p in 0..SCRATCH_PAGES {
            container
                .map_dma(scratch.vaddr(p * PAGE), iova + SCRATCH_OFF + p * PAGE, PAGE)
                .map_err(|e| format!("MAP_DMA scratch: {e}"))?;
        }
        Ok(Vg {
            label,
            uuid,
            g: Driver::new(hw),
            bells,
            fb,
            iova,
            big,
            scratch,
            ubuf,
            ctrl,
            efd: [
                EventFd::new().map_err(|e| e.to_string())?,
                EventFd::new().map_err(|e| e.to_string())?,
            ],
            _group: group,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Ring,
    Big,
    Unmap,
    Reset,
}

const KINDS: [Kind; 4] = [Kind::Ring, Kind::Big, Kind::Unmap, Kind::Reset];

/// Timing-dependent counts: benches, not checks.
#[derive(Default)]
struct Stats {
    refused_ring_writes: u64,
    rewinds: u64,
    big_mib: u64,
    invalidations: u64,
    invalidations_busy: u64,
    unmaps: u64,
    unmaps_busy: u64,
    resets: u64,
    resets_mid_command: u64,
    storm_resets: u64,
}

#[derive(Default)]
struct KindResult {
    runs: u64,
    on: BTreeMap<String, u64>,
    failed: u64,
    first_failure: Option<String>,
    ms: u128,
}

// ---- episode: ring ---------------------------------------------------------------

/// Doorbell rewinds and ring reconfiguration while the ring's commands run.
/// The stream is idempotent and stored at two ring bases, so that whatever
/// the device accepts (it may accept a write once the ring is empty) the
/// commands run from slot 0 or from HEAD: the targets done always form a
/// prefix of the stream, and none is half done.
fn ep_ring(v: &Vg, nth: u64, e: &mut Rng, st: &mut Stats) -> Result<(), String> {
    v.recover()?;
    let ring = e.below(2) as usize;
    let sys_ring = nth % 3 == 2;
    let bases = (
        v.ring_base(ring, 0, sys_ring),
        v.ring_base(ring, 1, sys_ring),
    );
    let (fills, guard) = ring_targets(v, e)?;

    let mut cmds: Vec<Command> = fills.iter().map(Fill::cmd).collect();
    let c = fills[e.below(fills.len() as u64) as usize];
    cmds.push(Command::crc32(Loc::Vram(RES), c.loc(), c.len));
    let fence = e.next() | 1;
    cmds.push(Command::fence(Loc::Vram(RES + 8), fence, e.coin()));
    let count = cmds.len() as u64;
    v.configure_ring(ring, bases.0, sys_ring);
    v.put(bases.0, sys_ring, &cmds);
    v.put(bases.1, sys_ring, &cmds);
    v.doorbell(ring, count, e.coin());
    // Until the first command is under way (its first word landed).
    let t0 = Instant::now();
    let f0 = fills[0];
    while v.word(f0.sys, f0.at) != f0.new && v.state() != PartitionState::Idle && t0.elapsed() < T {
        std::thread::sleep(Duration::from_micros(50));
    }
    hostile_ring_writes(v, ring, bases, sys_ring, count, e, st);
    ring_outcome_holds(v, ring, &fills, guard)?;
    st.refused_ring_writes += v.rd(RegId::WAccessErrors, 0);

    // All of it once more from a fresh ring: exact results.
    v.configure_ring(ring, bases.0, sys_ring);
    v.doorbell(ring, count, false);
    v.settle("the stream again")?;
    for (i, f) in fills.iter().enumerate() {
        let s = v.shape(f);
        ensure!(all_p(&s), "target {i} after the stream ran again: {s}");
    }
    let crc = v.vram_u64(RES);
    ensure!(
        crc == pattern_crc(c.new, c.len) as u64,
        "CRC32 of {} MiB: {crc:#x}, want {:#x}",
        c.len / MIB,
        pattern_crc(c.new, c.len)
    );
    ensure!(v.vram_u64(RES + 8) == fence, "fence value");
    Ok(())
}

/// The ring episode's FILL targets (one to three in VRAM, sometimes one in
/// the large system-memory buffer), set to their old pattern, each VRAM one
/// followed by a guard holding the returned pattern.
fn ring_targets(v: &Vg, e: &mut Rng) -> Result<(Vec<Fill>, u32), String> {
    let n = 1 + e.below(3);
    let per = ((v.fb - DATA) / MIB / n - 1).clamp(1, 24);
    let mut fills = Vec::new();
    let mut at = DATA;
    for _ in 0..n {
        let len = MIB * (1 + e.below(per));
        fills.push(Fill::new(false, at, len, e));
        at += len + MIB;
    }
    if e.below(3) == 0 {
        let len = MIB * (1 + e.below(v.big.len() as u64 / MIB));
        let pos = e.below(fills.len() as u64 + 1) as usize;
        fills.insert(pos, Fill::new(true, v.iova + BIG_OFF, len, e));
    }
    let guard = e.pattern();
    let mut prep = Vec::new();
    for f in &fills {
        if f.sys {
            v.big.fill(0, f.len, f.old);
        } else {
            prep.push(Command::fill(Loc::Vram(f.at), f.len, f.old));
            prep.push(Command::fill(Loc::Vram(f.at + f.len), GUARD, guard));
        }
    }
    v.g.hw.vram_write(RES, &[0u8; 16]);
    v.run(&prep)?;
    Ok((fills, guard))
}

/// The hostile VMM's writes while the ring's commands run: rewinds of the
/// doorbell onto HEAD, the doorbell to the end again, RING_SIZE,
/// RING_BASE (either copy of the stream) and RING_CTRL writes, pauses.
fn hostile_ring_writes(
    v: &Vg,
    ring: usize,
    (b1, b2): (u64, u64),
    sys_ring: bool,
    count: u64,
    e: &mut Rng,
    st: &mut Stats,
) {
    for _ in 0..2 + e.below(7) {
        match e.below(9) {
            0..=2 => {
                let head = v.rd(RegId::WRingHead, ring);
                v.doorbell(ring, head, e.coin());
                st.rewinds += 1;
            }
            3 => v.doorbell(ring, count, e.coin()),
            4 => v.wr(RegId::WRingSize, ring, 0),
            5 => v.wr(RegId::WRingSize, ring, ENTRIES as u64),
            6 => v.wr(RegId::WRingBase, ring, if e.coin() { b1 } else { b2 }),
            7 => {
                v.wr(RegId::WRingCtrl, ring, u64::from(!sys_ring));
                v.wr(RegId::WRingCtrl, ring, u64::from(sys_ring));
            }
            _ => std::thread::sleep(Duration::from_micros(e.below(1500))),
        }
    }
}

/// After the hostile writes the partition settles IDLE with an empty ring;
/// each target is done or untouched, the done ones a prefix of the stream;
/// nothing moves once IDLE; the guards are intact.
fn ring_outcome_holds(v: &Vg, ring: usize, fills: &[Fill], guard: u32) -> Result<(), String> {
    v.settle("after the ring writes")?;
    let (head, tail) = (v.rd(RegId::WRingHead, ring), v.rd(RegId::WRingTail, ring));
    ensure!(
        head == tail,
        "PartitionState::Idle with HEAD {head} TAIL {tail}"
    );
    let before: Vec<String> = fills.iter().map(|f| v.shape(f)).collect();
    for (i, s) in before.iter().enumerate() {
        ensure!(
            all_p(s) || s.chars().all(|c| c == 'Q'),
            "target {i} half done ({s}): a command was cut short or ran twice at once; all: {before:?}"
        );
    }
    let done: Vec<bool> = before.iter().map(|s| all_p(s)).collect();
    ensure!(
        !done.windows(2).any(|w| !w[0] && w[1]),
        "commands done out of ring order: {before:?}"
    );
    // IDLE means idle: nothing moves afterwards.
    std::thread::sleep(Duration::from_millis(10));
    let after: Vec<String> = fills.iter().map(|f| v.shape(f)).collect();
    ensure!(
        after == before,
        "targets changed after the partition read PartitionState::Idle: {before:?} -> {after:?}"
    );
    for f in fills.iter().filter(|f| !f.sys) {
        let g = Fill {
            at: f.at + f.len,
            len: GUARD,
            new: guard,
            old: !guard,
            sys: false,
        };
        let s = v.shape(&g);
        ensure!(all_p(&s), "the guard after target {:#x} changed", f.at);
    }
    Ok(())
}

// ---- episode: big ----------------------------------------------------------------

/// FILL / COPY / CRC32 of many MiB on each of `vs` (two at once sometimes),
/// the bystander reading its whole slice meanwhile (three busy partitions on
/// two engines: time slices end inside commands); sometimes pinned pages
/// are unmapped under the running commands, each unmap stopping them at a
/// chunk boundary. Results must be exact.
fn ep_big(
    vs: &[&Vg],
    byst: Option<(&Vg, u32)>,
    c: &Container,
    e: &mut Rng,
    st: &mut Stats,
) -> Result<(), String> {
    let res = big_inner(vs, byst, c, e, st);
    // Whatever failed, the bystander is idle and the scratch pages mapped
    // again for the next episode (EEXIST for those still mapped).
    if let Some((b, _)) = byst {
        b.g.wait_settled(0, T);
    }
    for v in vs {
        for p in 0..SCRATCH_PAGES {
            let _ = c.map_dma(
                v.scratch.vaddr(p * PAGE),
                v.iova + SCRATCH_OFF + p * PAGE,
                PAGE,
            );
        }
    }
    res
}

/// The large commands started on one vGPU, and what they must produce.
struct Job<'a> {
    v: &'a Vg,
    crc: u32,
    len: u64,
    fence: u64,
    sys_copy: Option<Fill>,
    scratch: u32,
}

fn big_inner(
    vs: &[&Vg],
    byst: Option<(&Vg, u32)>,
    c: &Container,
    e: &mut Rng,
    st: &mut Stats,
) -> Result<(), String> {
    let unmaps = e.coin();
    let mut jobs = Vec::new();
    for &v in vs {
        jobs.push(start_big_job(v, unmaps, e, st)?);
    }
    if let Some((b, _)) = byst {
        let blen = b.fb - DATA;
        b.g.hw.vram_write(RES, &[0u8; 24]);
        b.start(
            &[
                Command::crc32(Loc::Vram(RES), Loc::Vram(DATA), blen),
                Command::crc32(Loc::Vram(RES + 8), Loc::Vram(DATA), blen),
                Command::fence(Loc::Vram(RES + 16), 1, false),
            ],
            false,
        );
    }
    if unmaps {
        unmap_scratch_pages(&jobs, c, e, st)?;
    }
    for j in &jobs {
        big_job_exact(j)?;
    }
    if let Some((b, crc)) = byst {
        b.settle("the bystander's CRC32s")?;
        for slot in [RES, RES + 8] {
            ensure!(
                b.vram_u64(slot) == crc as u64,
                "the bystander's VRAM changed (CRC32 {:#x}, want {crc:#x})",
                b.vram_u64(slot)
            );
        }
    }
    Ok(())
}

/// Start the large commands on `v`: a scratch FILL first when pages will be
/// unmapped, then in VRAM FILL, COPY and CRC32 of both copies, or in the
/// whole large system-memory buffer FILL, COPY in and out and CRC32 of both.
fn start_big_job<'a>(
    v: &'a Vg,
    unmaps: bool,
    e: &mut Rng,
    st: &mut Stats,
) -> Result<Job<'a>, String> {
    v.recover()?;
    let mut cmds = Vec::new();
    let scratch = e.pattern() | 1;
    if unmaps {
        v.scratch.fill(0, SCRATCH_PAGES * PAGE, 0);
        cmds.push(Command::fill(
            Loc::Sys(v.iova + SCRATCH_OFF),
            SCRATCH_PAGES * PAGE,
            scratch,
        ));
    }
    let p = e.pattern();
    let (a, mut sys_copy) = (DATA, None);
    let len;
    if e.coin() {
        // VRAM: FILL, COPY, CRC32 of both copies.
        let half = ((v.fb - DATA) / MIB / 2 - 1).min(48);
        len = MIB * (half / 2 + 1 + e.below(half - half / 2));
        let b = a + len;
        cmds.extend([
            Command::fill(Loc::Vram(a), len, p),
            Command::copy(Loc::Vram(b), Loc::Vram(a), len),
            Command::crc32(Loc::Vram(RES), Loc::Vram(b), len),
            Command::crc32(Loc::Vram(RES + 8), Loc::Vram(a), len),
        ]);
        st.big_mib += 4 * len / MIB;
    } else {
        // System memory, the whole large buffer: FILL it, COPY VRAM
        // into it and back out, CRC32 of both.
        len = v.big.len() as u64;
        let (sys, c) = (Loc::Sys(v.iova + BIG_OFF), a + len);
        let f = Fill {
            sys: true,
            at: v.iova + BIG_OFF,
            len,
            new: p,
            old: !p,
        };
        cmds.extend([
            Command::fill(sys, len, f.old),
            Command::fill(Loc::Vram(c), len, p),
            Command::copy(sys, Loc::Vram(c), len),
            Command::crc32(Loc::Vram(RES), sys, len),
            Command::copy(Loc::Vram(a), sys, len),
            Command::crc32(Loc::Vram(RES + 8), Loc::Vram(a), len),
        ]);
        sys_copy = Some(f);
        st.big_mib += 6 * len / MIB;
    }
    let fence = e.next() | 1;
    cmds.push(Command::fence(Loc::Vram(RES + 16), fence, true));
    v.g.hw.vram_write(RES, &[0u8; 24]);
    v.start(&cmds, e.coin());
    Ok(Job {
        v,
        crc: pattern_crc(p, len),
        len,
        fence,
        sys_copy,
        scratch,
    })
}

/// Once the scratch FILLs are done their pages are pinned and no command
/// uses them again: unmap some of them, one by one, while the large
/// commands run. Each unmap costs the running ones a stop at a chunk
/// boundary and fresh translations, nothing else.
fn unmap_scratch_pages(
    jobs: &[Job],
    c: &Container,
    e: &mut Rng,
    st: &mut Stats,
) -> Result<(), String> {
    for j in jobs {
        let t0 = Instant::now();
        while j.v.scratch.u32_at(SCRATCH_PAGES * PAGE - 4) != j.scratch {
            ensure!(
                t0.elapsed() < T,
                "the scratch FILL did not finish: {}",
                j.v.describe()
            );
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    for i in 0..1 + e.below(SCRATCH_PAGES) {
        std::thread::sleep(Duration::from_micros(e.below(2000)));
        let j = &jobs[i as usize % jobs.len()];
        let page = i / jobs.len() as u64;
        let busy = matches!(
            j.v.state(),
            PartitionState::Busy | PartitionState::XlateWait
        );
        c.unmap_dma(j.v.iova + SCRATCH_OFF + page * PAGE, PAGE)
            .map_err(|e| format!("UNMAP_DMA of a scratch page: {e}"))?;
        st.invalidations += 1;
        st.invalidations_busy += u64::from(busy);
    }
    Ok(())
}

/// A job's commands settle IDLE with both CRC32s, the fence and the copy
/// into system memory exact.
fn big_job_exact(j: &Job) -> Result<(), String> {
    j.v.settle("the large commands")?;
    for slot in [RES, RES + 8] {
        let got = j.v.vram_u64(slot);
        ensure!(
            got == j.crc as u64,
            "{}: CRC32 of {} MiB at result {:#x}: {got:#x}, want {:#x}",
            j.v.label,
            j.len / MIB,
            slot,
            j.crc
        );
    }
    ensure!(j.v.vram_u64(RES + 16) == j.fence, "{}: fence", j.v.label);
    if let Some(f) = &j.sys_copy {
        let s = j.v.shape(f);
        ensure!(all_p(&s), "{}: the copy into system memory: {s}", j.v.label);
    }
    Ok(())
}

// ---- episode: unmap --------------------------------------------------------------

/// VFIO_IOMMU_UNMAP_DMA of pieces of a buffer that commands are writing,
/// reading or fetching their ring from. After the unmap returns those pages
/// are the VMM's alone: a canary written then must be intact at the end of
/// the episode, whatever the device did meanwhile (it goes on into other
/// memory mapped at the same addresses, is reset, or faults).
fn ep_unmap(v: &Vg, c: &Container, nth: u64, e: &mut Rng, st: &mut Stats) -> Result<(), String> {
    let res = unmap_inner(v, c, nth, e, st);
    // The area is unmapped between episodes, whatever happened.
    let _ = c.unmap_dma(v.iova + UNMAP_OFF, U_BYTES);
    res
}

/// One unmap episode's choices: which buffer is mapped first (`x`, the
/// other `y` mapped at the same addresses afterwards), what the commands
/// do with it, and the pieces `a..b` unmapped under them.
struct UnmapPlan {
    x: DmaBuf,
    y: DmaBuf,
    base: u64,
    /// 0 FILL into it, 1 COPY into it, 2 COPY out of it, 3 CRC32 of it,
    /// 4 the ring itself in it.
    kind: u64,
    /// Every page pinned before the race, so the commands run at speed.
    prepin: bool,
    a: u64,
    b: u64,
    reps: u64,
    /// The VRAM pattern the commands use.
    pd: u32,
}

impl UnmapPlan {
    /// Map `y`'s pieces `a..b` where `x`'s were.
    fn remap(&self, c: &Container) -> Result<(), String> {
        for p in self.a..self.b {
            c.map_dma(self.y.vaddr(p * PIECE), self.base + p * PIECE, PIECE)
                .map_err(|e| format!("MAP_DMA again: {e}"))?;
        }
        Ok(())
    }
}

/// Words written into `x`'s unmapped pieces right after the unmap
/// returned: the device may neither change them nor have read them.
struct Canary {
    bytes: Vec<u8>,
    nonce: u64,
    /// At the unmap: whether the partition was busy.
    busy: bool,
}

impl Canary {
    fn intact(&self, p: &UnmapPlan, when: &str) -> Result<(), String> {
        let mut now = vec![0u8; self.bytes.len()];
        p.x.read(p.a * PIECE, &mut now);
        let changed = now.iter().zip(&self.bytes).filter(|(p, q)| p != q).count();
        ensure!(
            changed == 0,
            "{changed} bytes of the unmapped buffer changed after UNMAP_DMA returned ({when}; pieces {}..{}, command kind {}, busy at the unmap: {})",
            p.a,
            p.b,
            p.kind,
            self.busy
        );
        Ok(())
    }
}

fn unmap_inner(v: &Vg, c: &Container, nth: u64, e: &mut Rng, st: &mut Stats) -> Result<(), String> {
    let p = unmap_prepare(v, c, nth, e)?;
    let cmds = unmap_start(v, &p, e, st);
    let (canary, head_before) = unmap_under_commands(v, c, &p, e, st)?;
    // Then: nothing, the VMM maps other memory there, or a reset after
    // a while (commands left running meanwhile).
    let after = e.pick(&[0, 0, 0, 1, 1, 1, 2, 3]);
    let head_after = v.rd(RegId::WRingHead, 0);
    if after >= 2 {
        std::thread::sleep(Duration::from_micros(e.below(2000)));
    }
    match after {
        0 => {}
        1 => p.remap(c)?,
        2 => {
            p.remap(c)?;
            v.g.hw
                .dev
                .reset()
                .map_err(|e| format!("VFIO_DEVICE_RESET: {e}"))?;
        }
        _ => {
            v.wr(RegId::WReset, 0, 1);
            p.remap(c)?;
        }
    }
    let s = v.g.wait_settled(0, T);
    trace(|| {
        format!(
            "  unmap: kind {} prepin {} reps {} pieces {}..{} busy {} \
             HEAD {head_before} -> {head_after} of {}, then {after}: {}",
            p.kind,
            p.prepin,
            p.reps,
            p.a,
            p.b,
            canary.busy,
            cmds,
            v.describe()
        )
    });
    ensure!(
        s == PartitionState::Idle
            || (s == PartitionState::Faulted && v.fault() == FaultCode::XlateCancelled),
        "after the unmap: {}",
        v.describe()
    );
    std::thread::sleep(Duration::from_millis(5));
    canary.intact(&p, "the commands settled")?;
    if p.kind == 2 {
        nothing_read_after_unmap(v, &p, &canary)?;
    }
    remapped_memory_works(v, c, &p, after == 0, e)?;
    canary.intact(&p, "after DMA to the re-mapped addresses")
}

/// Map `x` in pieces, give both buffers patterns, choose what the commands
/// do, and prepare VRAM (and, with `prepin`, every page of the buffer).
fn unmap_prepare(v: &Vg, c: &Container, nth: u64, e: &mut Rng) -> Result<UnmapPlan, String> {
    v.recover()?;
    let xi = e.below(2) as usize;
    let (x, y) = (v.ubuf[xi], v.ubuf[1 - xi]);
    let base = v.iova + UNMAP_OFF;
    for p in 0..PIECES {
        c.map_dma(x.vaddr(p * PIECE), base + p * PIECE, PIECE)
            .map_err(|e| format!("MAP_DMA: {e}"))?;
    }
    x.fill(0, U_BYTES, e.pattern());
    y.fill(0, U_BYTES, e.pattern());
    let kind = nth % 5;
    let prepin = e.below(3) != 0;
    let a = e.below(PIECES);
    let b = a + 1 + e.below(PIECES - a);
    let reps = if prepin {
        4 + e.below(26)
    } else {
        1 + e.below(2)
    };
    let pd = e.pattern();
    v.run(&[Command::fill(Loc::Vram(DATA), U_BYTES, pd)])?;
    if prepin {
        let q = e.pattern();
        v.run(&[Command::fill(Loc::Sys(base), U_BYTES, q)])?;
    }
    Ok(UnmapPlan {
        x,
        y,
        base,
        kind,
        prepin,
        a,
        b,
        reps,
        pd,
    })
}

/// Start the commands on the buffer (from a VRAM ring, or for kind 4 from
/// a ring in the buffer itself), sometimes after a pause or with a doorbell
/// rewind. Returns how many commands there are.
fn unmap_start(v: &Vg, p: &UnmapPlan, e: &mut Rng, st: &mut Stats) -> usize {
    let sys = Loc::Sys(p.base);
    let mut cmds = Vec::new();
    for _ in 0..p.reps {
        cmds.push(match p.kind {
            0 => Command::fill(sys, U_BYTES, p.pd ^ 0x5a5a_5a5a),
            1 => Command::copy(sys, Loc::Vram(DATA), U_BYTES),
            2 => Command::copy(Loc::Vram(DATA + U_BYTES), sys, U_BYTES),
            3 => Command::crc32(Loc::Vram(RES), sys, U_BYTES),
            _ => Command::fill(Loc::Vram(DATA), MIB, p.pd),
        });
        if p.prepin {
            // Long VRAM work in between: the partition is still busy
            // when the unmap comes, with commands on the buffer to go.
            let len = MIB * (1 + e.below(8));
            cmds.push(Command::fill(Loc::Vram(DATA + 2 * U_BYTES), len, p.pd));
        }
    }
    cmds.push(Command::fence(Loc::Vram(RES + 8), 1, true));
    let mmap = e.coin();
    if p.kind == 4 {
        // The ring itself in the pieces to go; the memory mapped there
        // afterwards holds the same commands (a VMM that moved it).
        let off = p.a * PIECE;
        for buf in [p.x, p.y] {
            for (i, cmd) in cmds.iter().enumerate() {
                buf.write(off + (i * COMMAND_BYTES) as u64, &cmd.encode());
            }
        }
        v.configure_ring(0, p.base + off, true);
        v.doorbell(0, cmds.len() as u64, mmap);
    } else {
        v.start(&cmds, mmap);
    }
    if e.below(4) == 0 {
        std::thread::sleep(Duration::from_micros(e.below(1000)));
    }
    if e.below(3) == 0 {
        // The old attack: a rewind made a busy partition read IDLE, and
        // the host unpinned what the engine kept writing.
        let head = v.rd(RegId::WRingHead, 0);
        v.doorbell(0, head, e.coin());
        st.rewinds += 1;
    }
    cmds.len()
}

/// UNMAP_DMA of pieces `a..b` under the running commands, then the canary
/// into them at once. Returns it and RING_HEAD just before the unmap.
fn unmap_under_commands(
    v: &Vg,
    c: &Container,
    p: &UnmapPlan,
    e: &mut Rng,
    st: &mut Stats,
) -> Result<(Canary, u64), String> {
    let busy = matches!(v.state(), PartitionState::Busy | PartitionState::XlateWait);
    let head_before = v.rd(RegId::WRingHead, 0);
    c.unmap_dma(p.base + p.a * PIECE, (p.b - p.a) * PIECE)
        .map_err(|e| format!("UNMAP_DMA under running commands: {e}"))?;
    let nonce = e.next();
    let bytes: Vec<u8> = (p.a * PIECE..p.b * PIECE)
        .step_by(8)
        .flat_map(|o| (nonce ^ o).to_le_bytes())
        .collect();
    p.x.write(p.a * PIECE, &bytes);
    st.unmaps += 1;
    st.unmaps_busy += u64::from(busy);
    Ok((Canary { bytes, nonce, busy }, head_before))
}

/// Nothing read the pages after the unmap either: no canary word in what
/// the copies out of the buffer wrote.
fn nothing_read_after_unmap(v: &Vg, p: &UnmapPlan, canary: &Canary) -> Result<(), String> {
    let mut got = vec![0u8; U_BYTES as usize];
    v.g.hw.vram_read(DATA + U_BYTES, &mut got);
    let leaked = got
        .chunks(8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap()) ^ canary.nonce)
        .filter(|o| (p.a * PIECE..p.b * PIECE).contains(o) && o % 8 == 0)
        .count();
    ensure!(
        leaked == 0,
        "{leaked} words of the unmapped buffer were read after UNMAP_DMA returned"
    );
    Ok(())
}

/// The memory mapped at those addresses now works, and only it is used: a
/// FILL of the whole area lands in `x` outside `a..b` and in `y` inside.
fn remapped_memory_works(
    v: &Vg,
    c: &Container,
    p: &UnmapPlan,
    remap: bool,
    e: &mut Rng,
) -> Result<(), String> {
    v.recover()?;
    if remap {
        p.remap(c)?;
    }
    let sys = Loc::Sys(p.base);
    let p2 = e.pattern();
    v.run(&[
        Command::fill(sys, U_BYTES, p2),
        Command::crc32(Loc::Vram(RES), sys, U_BYTES),
    ])?;
    ensure!(
        v.vram_u64(RES) == pattern_crc(p2, U_BYTES) as u64,
        "CRC32 of the re-mapped buffer"
    );
    let (a, b) = (p.a, p.b);
    let stale = p.x.count_not(0, a * PIECE, p2)
        + p.x.count_not(b * PIECE, U_BYTES - b * PIECE, p2)
        + p.y.count_not(a * PIECE, (b - a) * PIECE, p2);
    ensure!(stale == 0, "{stale} words of the mapped memory not filled");
    Ok(())
}

// ---- episode: reset --------------------------------------------------------------

/// A reset at a seeded point of a stream of FILLs and fences with
/// interrupts: once it returns, the rings, fence value and statistics are
/// reset and stay so, the FILL it cut short keeps the chunks done (a
/// prefix), and nothing moves any more.
fn ep_reset(v: &Vg, nth: u64, e: &mut Rng, st: &mut Stats) -> Result<(), String> {
    if nth % 3 == 2 {
        return reset_storm(v, e, st);
    }
    let fills = start_reset_stream(v, e)?;
    reset_at_seeded_point(v, e)?;
    window_is_reset(v, "right after the reset")?;
    let (shapes, words) = reset_snapshot(v, &fills);
    for (i, s) in shapes.iter().enumerate() {
        ensure!(
            is_prefix(s),
            "FILL {i} after the reset: {s} (not a prefix of whole chunks)"
        );
    }
    ensure!(
        (words[1] != 2 || all_p(&shapes[0]))
            && (words[2] != 3 || all_p(&shapes[1]))
            && (!shapes[1].contains('P') || words[1] == 2)
            && (!shapes[0].contains('P') || words[0] == 1),
        "out of ring order: fences {words:?}, targets {shapes:?}"
    );
    st.resets += 1;
    st.resets_mid_command += u64::from(shapes.iter().any(|s| s.contains('P') && s.contains('Q')));
    std::thread::sleep(Duration::from_millis(20));
    window_is_reset(v, "20 ms after the reset")?;
    let later = reset_snapshot(v, &fills);
    ensure!(
        later == (shapes.clone(), words.clone()),
        "memory changed after the reset returned: {shapes:?} {words:?} -> {later:?}"
    );
    works_with_interrupt(v)
}

/// Start the stream the reset cuts: fences with interrupts around a FILL
/// in VRAM and one in system memory (in a seeded order) and a CRC32.
/// Returns the two FILLs, their targets holding the old patterns.
fn start_reset_stream(v: &Vg, e: &mut Rng) -> Result<[Fill; 2], String> {
    v.recover()?;
    v.wr(RegId::WIntrMask, 0, intr_all());
    let vlen = MIB * (4 + e.below(((v.fb - DATA) / MIB - 4).min(28)));
    let slen = MIB * (1 + e.below(v.big.len() as u64 / MIB));
    let mut fills = [
        Fill::new(false, DATA, vlen, e),
        Fill::new(true, v.iova + BIG_OFF, slen, e),
    ];
    if e.coin() {
        fills.swap(0, 1);
    }
    v.run(&[Command::fill(
        Loc::Vram(DATA),
        vlen,
        fills.iter().find(|f| !f.sys).unwrap().old,
    )])?;
    v.big
        .fill(0, slen, fills.iter().find(|f| f.sys).unwrap().old);
    v.g.hw.vram_write(RES, &[0u8; 48]);
    let cmds = [
        Command::fence(Loc::Vram(RES), 1, true),
        fills[0].cmd(),
        Command::fence(Loc::Vram(RES + 8), 2, true),
        fills[1].cmd(),
        Command::fence(Loc::Vram(RES + 16), 3, true),
        Command::crc32(Loc::Vram(RES + 24), fills[0].loc(), fills[0].len),
        Command::fence(Loc::Vram(RES + 32), 4, true),
    ];
    v.start(&cmds, e.coin());
    Ok(fills)
}

/// At once, after a seeded number of fences, or after a seeded pause:
/// VFIO_DEVICE_RESET, the window's RESET, or both.
fn reset_at_seeded_point(v: &Vg, e: &mut Rng) -> Result<(), String> {
    match e.below(3) {
        0 => {}
        1 => {
            let k = 1 + e.below(4);
            let t0 = Instant::now();
            while v.rd(RegId::WFenceValue, 0) < k
                && v.state() == PartitionState::Busy
                && t0.elapsed() < T
            {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        _ => std::thread::sleep(Duration::from_micros(e.below(4000))),
    }
    let vfio_reset = || {
        v.g.hw
            .dev
            .reset()
            .map_err(|e| format!("VFIO_DEVICE_RESET: {e}"))
    };
    match e.below(3) {
        0 => vfio_reset()?,
        1 => v.wr(RegId::WReset, 0, 1),
        _ => {
            v.wr(RegId::WReset, 0, 1);
            vfio_reset()?;
        }
    }
    Ok(())
}

/// The window reads as reset: IDLE, and the fence value, statistics, ring
/// and fault registers 0.
fn window_is_reset(v: &Vg, when: &str) -> Result<(), String> {
    let vals = [
        ("FENCE_VALUE", v.rd(RegId::WFenceValue, 0)),
        ("STAT_COMMANDS", v.rd(RegId::WStatCommands, 0)),
        ("STAT_BYTES", v.rd(RegId::WStatBytes, 0)),
        ("RING_HEAD", v.rd(RegId::WRingHead, 0)),
        ("RING_TAIL", v.rd(RegId::WRingTail, 0)),
        ("RING_SIZE", v.rd(RegId::WRingSize, 0)),
        ("FAULT_STATUS", v.rd(RegId::WFaultStatus, 0)),
    ];
    ensure!(
        v.state() == PartitionState::Idle,
        "{when}: {}",
        v.describe()
    );
    for (name, val) in vals {
        ensure!(val == 0, "{when}: {name} = {val:#x}");
    }
    Ok(())
}

/// The FILL targets' shapes and the five result words of the stream.
fn reset_snapshot(v: &Vg, fills: &[Fill; 2]) -> (Vec<String>, Vec<u64>) {
    let shapes: Vec<String> = fills.iter().map(|f| v.shape(f)).collect();
    let words: Vec<u64> = (0..5).map(|i| v.vram_u64(RES + 8 * i)).collect();
    (shapes, words)
}

/// After a reset: a fence with an interrupt completes and signals the
/// engine vector's eventfd.
fn works_with_interrupt(v: &Vg) -> Result<(), String> {
    v.drain();
    v.wr(RegId::WIntrMask, 0, intr_all());
    v.run(&[Command::fence(Loc::Vram(RES + 40), 77, true)])?;
    ensure!(v.vram_u64(RES + 40) == 77, "fence after the reset");
    ensure!(
        v.efd[0].wait(TIMEOUT_MS) >= 1,
        "no interrupt after the reset"
    );
    Ok(())
}

/// Resets from a second thread (VFIO_DEVICE_RESET and window RESET through
/// another fd) while the VMM thread keeps restarting its ring with FILLs
/// and fences that interrupt.
fn reset_storm(v: &Vg, e: &mut Rng, st: &mut Stats) -> Result<(), String> {
    v.recover()?;
    let plan: Vec<(u64, bool)> = (0..3 + e.below(6))
        .map(|_| (200 + e.below(3000), e.coin()))
        .collect();
    let iters = 20 + e.below(40);
    let mmap = e.coin();
    let pattern = e.pattern();
    let other =
        v.g.hw
            .dev
            .try_clone()
            .map_err(|e| format!("dup the device fd: {e}"))?;
    let reset_at = v.g.hw.bar0.offset + regs::window_offset(RegId::WReset, 0);
    let n = plan.len() as u64;
    let errors = std::thread::scope(|s| {
        let h = s.spawn(move || {
            let mut errors = Vec::new();
            for (us, vfio_reset) in plan {
                std::thread::sleep(Duration::from_micros(us));
                let r = if vfio_reset {
                    other.reset()
                } else {
                    other.pwrite_raw(reset_at, &1u32.to_le_bytes()).map(|_| ())
                };
                if let Err(e) = r {
                    errors.push(e.to_string());
                }
            }
            errors
        });
        for i in 0..iters {
            v.wr(RegId::WIntrMask, 0, intr_all());
            v.start(
                &[
                    Command::fill(Loc::Vram(DATA), MIB * (1 + i % 4), pattern),
                    Command::fence(Loc::Vram(RES), i + 1, true),
                    Command::fill(Loc::Vram(DATA + 4 * MIB), MIB, pattern),
                    Command::fence(Loc::Vram(RES + 8), i + 1, true),
                ],
                mmap,
            );
            for _ in 0..3 {
                v.drain();
                std::hint::black_box(v.state());
            }
        }
        h.join()
            .unwrap_or_else(|_| vec!["the reset thread died".into()])
    });
    ensure!(errors.is_empty(), "resets failed: {errors:?}");
    st.storm_resets += n;
    let s = v.g.wait_settled(0, T);
    ensure!(
        s == PartitionState::Idle,
        "after {n} resets racing {iters} submissions: {}",
        v.describe()
    );
    v.recover()?;
    let quiet = [RegId::WFenceValue, RegId::WStatCommands, RegId::WRingSize];
    std::thread::sleep(Duration::from_millis(10));
    for id in quiet {
        ensure!(
            v.rd(id, 0) == 0,
            "{:?} = {:#x} 10 ms after a reset",
            id,
            v.rd(id, 0)
        );
    }
    works_with_interrupt(v)
}

// ---- the vGPUs, the plan ------------------------------------------------------

/// Create the vGPUs: the smallest type, the largest one still available
/// beside it, and a bystander of the smallest type again (the ones the
/// GPU has room for).
fn create_vgpus(gpu: &Gpu) -> Result<Vec<(String, &'static str)>, String> {
    let types = |gpu: &Gpu| -> Result<Vec<VgpuType>, String> {
        let mut t = gpu.types().map_err(|e| e.to_string())?;
        t.retain(|t| t.available > 0 && framebuffer_bytes(t) > 0);
        t.sort_by_key(framebuffer_bytes);
        Ok(t)
    };
    let mut made = Vec::new();
    let small = types(gpu)?
        .into_iter()
        .next()
        .ok_or("no vGPU type available")?;
    gpu.create(&small.id, UUIDS[0]).map_err(|e| e.to_string())?;
    made.push((small.id.clone(), UUIDS[0]));
    if let Some(large) = types(gpu)?
        .into_iter()
        .rfind(|t| framebuffer_bytes(t) > framebuffer_bytes(&small))
    {
        gpu.create(&large.id, UUIDS[1]).map_err(|e| e.to_string())?;
        made.push((large.id.clone(), UUIDS[1]));
    }
    if let Some(b) = types(gpu)?.into_iter().next() {
        gpu.create(&b.id, UUIDS[2]).map_err(|e| e.to_string())?;
        made.push((b.id.clone(), UUIDS[2]));
    }
    Ok(made)
}

/// One episode of the plan: before random operation `at`, the `nth` of
/// its kind, on `targets[target]`, driven by its own seed.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Episode {
    at: u64,
    kind: Kind,
    nth: u64,
    target: usize,
    seed: u64,
}

/// The episodes, spread evenly over the random operations: each group of
/// four has one of each kind in a seeded order; the episodes of a kind
/// alternate between the vGPUs.
fn plan(seed: u64, ops: u64, episodes: u64, targets: u64) -> Vec<Episode> {
    let mut rng = Rng((seed.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15) | 1);
    let mut kinds = KINDS;
    let mut count = [0u64; 4];
    let flip: Vec<u64> = KINDS.iter().map(|_| rng.below(targets)).collect();
    (0..episodes)
        .map(|j| {
            if j % 4 == 0 {
                for i in (1..kinds.len()).rev() {
                    kinds.swap(i, rng.below(i as u64 + 1) as usize);
                }
            }
            let kind = kinds[j as usize % 4];
            let nth = count[kind as usize];
            count[kind as usize] += 1;
            Episode {
                at: (j + 1) * ops / (episodes + 1),
                kind,
                nth,
                target: ((nth + flip[kind as usize]) % targets.max(1)) as usize,
                seed: rng.next(),
            }
        })
        .collect()
}

// ---- the context --------------------------------------------------------------------

/// The vGPUs opened for the run, and what the sequence left for the checks.
struct Chaos {
    args: Args,
    container: Container,
    /// The random operations' buffer (they map and unmap pieces of it at IOVA).
    dma: DmaBuf,
    /// The small vGPU (also the random operations' target), the large one
    /// and the bystander: those the GPU had room for. Emptied by the last
    /// check.
    vgs: Vec<Vg>,
    /// CRC32 of the pattern in the bystander's VRAM.
    bystander_crc: Option<u32>,
    results: BTreeMap<Kind, KindResult>,
}

impl Chaos {
    /// Create and open the vGPUs, give the bystander its pattern and pin
    /// the large buffers; a failure ends the program.
    fn set_up(args: Args) -> Self {
        let vgs = open_vgpus().unwrap_or_else(|(e, container)| {
            println!("FAIL chaos: set up the vGPUs through VFIO: {e}");
            drop(container);
            for u in UUIDS {
                let _ = Vgpu::destroy(u);
            }
            std::process::exit(1);
        });
        let (container, vgs) = vgs;
        let dma = DmaBuf::new(DMA_BYTES)
            .unwrap_or_else(|e| fatal(format!("allocate the DMA buffer: {e}")));
        let mut c = Self {
            args,
            container,
            dma,
            vgs,
            bystander_crc: None,
            results: BTreeMap::new(),
        };
        // The bystander holds a pattern in all its VRAM.
        if let Some(b) = c.vgs.iter().find(|v| v.uuid == UUIDS[2]) {
            let p = (args.seed as u32) ^ 0xb157_a0de;
            b.recover()
                .and_then(|_| b.run(&[Command::fill(Loc::Vram(DATA), b.fb - DATA, p)]))
                .unwrap_or_else(|e| fatal(format!("chaos: the bystander's pattern: {e}")));
            c.bystander_crc = Some(pattern_crc(p, b.fb - DATA));
        }
        c.pin_large_buffers()
            .unwrap_or_else(|e| fatal(format!("chaos: pin the large system-memory buffers: {e}")));
        c
    }

    /// The large system-memory buffers, pinned once (the two vGPUs' faults
    /// are serviced side by side).
    fn pin_large_buffers(&self) -> Result<(), String> {
        let t0 = Instant::now();
        let targets = self.targets();
        for v in &targets {
            v.recover()?;
            let fill = Command::fill(Loc::Sys(v.iova + BIG_OFF), v.big.len() as u64, 0);
            v.start(&[fill], false);
        }
        for v in &targets {
            v.settle("pinning the large buffer")?;
        }
        let pages: u64 = targets.iter().map(|v| v.big.len() as u64 / PAGE).sum();
        bench(
            "vfio_chaos_first_touch_us_per_page",
            t0.elapsed().as_micros() as u64 / pages,
        );
        Ok(())
    }

    /// The episodes' targets: the small vGPU and the large one.
    fn targets(&self) -> Vec<&Vg> {
        self.vgs.iter().filter(|v| v.uuid != UUIDS[2]).collect()
    }

    fn bystander(&self) -> Option<(&Vg, u32)> {
        let b = self.vgs.iter().find(|v| v.uuid == UUIDS[2])?;
        Some((b, self.bystander_crc?))
    }
}

/// Create the vGPUs and open them in one container, each labelled with its
/// framebuffer; on failure the error and the container if there is one.
#[allow(clippy::type_complexity)] // the error keeps the container to close it first
fn open_vgpus() -> Result<(Container, Vec<Vg>), (String, Option<Container>)> {
    let gpu = Gpu::find(None).map_err(|e| (e.to_string(), None))?;
    let made = create_vgpus(&gpu).map_err(|e| (e, None))?;
    let container = Container::open().map_err(|e| (format!("container: {e}"), None))?;
    let mut vgs = Vec::new();
    for (i, (ty, uuid)) in made.iter().enumerate() {
        let opened = gpu.find_type(ty).map_err(|e| e.to_string()).and_then(|t| {
            let label = t.desc_value("framebuffer").unwrap_or("?").to_string();
            Vg::open(&container, uuid, i as u64, label)
        });
        match opened {
            Ok(v) => vgs.push(v),
            Err(e) => {
                drop(vgs);
                return Err((e, Some(container)));
            }
        }
    }
    Ok((container, vgs))
}

// ---- the random operations ---------------------------------------------------------

/// The random operations on the small vGPU: its device fd, regions and
/// VRAM mapping, the container and the operations' own buffer.
struct Fuzz<'a> {
    v: &'a Vg,
    container: &'a Container,
    dma: DmaBuf,
    /// Every region's size, for offsets near their ends.
    sizes: Vec<u64>,
    /// Eventfds that SET_IRQS garbage may route vectors to.
    efds: Vec<EventFd>,
    rng: Rng,
    tally: Tally,
}

impl<'a> Fuzz<'a> {
    fn new(v: &'a Vg, container: &'a Container, dma: DmaBuf, seed: u64) -> Self {
        let dev = &v.g.hw.dev;
        let sizes: Vec<u64> = (0..dev.num_regions)
            .map(|i| dev.region(i).map_or(0, |r| r.size))
            .collect();
        let efds: Vec<EventFd> = (0..3).map(|_| EventFd::new().expect("eventfd")).collect();
        Self {
            v,
            container,
            dma,
            sizes,
            efds,
            rng: Rng(seed | 1),
            tally: Tally::default(),
        }
    }

    fn dev(&self) -> &'a vfio::Device {
        &self.v.g.hw.dev
    }

    /// One random operation.
    fn step(&mut self) {
        match self.rng.below(13) {
            0 | 1 => self.region_read(),
            2 | 3 => self.region_write(),
            4 => self.config_write(),
            5 => self.set_irqs(),
            6 => self.get_infos(),
            7 => {
                let r = self.dev().reset();
                self.tally.note(r)
            }
            8 => self.mmap_anywhere(),
            9 => self.map_or_unmap(),
            10 | 11 => self.garbage_ring(),
            _ => {
                let off = regs::window_offset(RegId::WDoorbell, self.rng.below(3) as usize);
                let v = (self.rng.next() as u32).to_le_bytes();
                let r = self.dev().write(&self.v.g.hw.bar0, off, &v);
                self.tally.note(r);
            }
        }
    }

    /// Region reads anywhere, any size.
    fn region_read(&mut self) {
        let mut buf = vec![0u8; access_len(&mut self.rng)];
        let off = region_offset(&mut self.rng, &self.sizes);
        let r = self.dev().pread_raw(off, &mut buf);
        self.tally.note(r);
    }

    /// Region writes of random bytes anywhere, any size.
    fn region_write(&mut self) {
        let mut buf = vec![0u8; access_len(&mut self.rng)];
        for b in buf.iter_mut() {
            *b = self.rng.next() as u8;
        }
        let off = region_offset(&mut self.rng, &self.sizes);
        let r = self.dev().pwrite_raw(off, &buf);
        self.tally.note(r);
    }

    /// Config space: random bytes at random places (BARs, command,
    /// MSI/MSI-X control...).
    fn config_write(&mut self) {
        let cfg = region_base(CONFIG_REGION.into());
        let v = self.rng.next().to_le_bytes();
        let n = self.rng.pick(&[1usize, 2, 4]);
        let off = cfg | self.rng.below(0x110);
        let r = self.dev().pwrite_raw(off, &v[..n]);
        self.tally.note(r);
    }

    /// SET_IRQS: any index, range, flags; eventfds, bad fds, no data; argsz
    /// too short, exact or long.
    fn set_irqs(&mut self) {
        let rng = &mut self.rng;
        let mut words = [0u32; 64];
        let count = rng.pick(&[0u32, 1, 2, 3, 64, u32::MAX]);
        let argsz = rng.pick(&[0u32, 8, 20, 24, 28, 32, 256]);
        words[0] = argsz;
        words[1] = rng.pick(&[
            VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
            VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER,
            VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK,
            VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK,
        ]) | if rng.below(8) == 0 {
            rng.next() as u32
        } else {
            0
        };
        words[2] = rng.pick(&[0u32, 1, 2, 3, 4, 9]);
        words[3] = rng.pick(&[0u32, 1, 2, u32::MAX]);
        words[4] = count;
        for w in words[5..].iter_mut() {
            *w = match rng.below(4) {
                0 => u32::MAX, // -1: tear down
                1 => rng.below(1024) as u32,
                _ => self.efds[rng.below(3) as usize].raw() as u32,
            };
        }
        let r = self.dev().set_irqs_raw(&mut words);
        self.tally.note(r);
    }

    /// GET_REGION_INFO / GET_IRQ_INFO with odd argsz and indexes.
    fn get_infos(&mut self) {
        let mut buf = [0u32; 256];
        buf[0] = self.rng.pick(&[0u32, 4, 16, 32, 40, 1024]);
        buf[2] = self.rng.below(16) as u32;
        let r = self.dev().region_info_raw(&mut buf);
        self.tally.note(r);
        let mut w = [0u32; 8];
        w[0] = self.rng.pick(&[0u32, 8, 16, 32]);
        w[2] = self.rng.below(8) as u32;
        let r = self.dev().irq_info_raw(&mut w);
        self.tally.note(r);
    }

    /// mmap at random offsets and lengths; touch what maps.
    fn mmap_anywhere(&mut self) {
        let off = region_offset(&mut self.rng, &self.sizes) & !(PAGE - 1);
        let len = self.rng.pick(&[PAGE, 2 * PAGE, 1 << 20, 1 << 26]) as usize;
        let m = self.dev().mmap_raw(off, len);
        if let Ok(m) = &m {
            // SAFETY: inside the mapping just made.
            std::hint::black_box(unsafe { std::ptr::read_volatile(m.as_ptr()) });
        }
        self.tally.note(m);
    }

    /// DMA map / unmap of random pieces of the buffer, also while commands
    /// run against it.
    fn map_or_unmap(&mut self) {
        let first = self.rng.below(DMA_BYTES as u64 / PAGE);
        let pages = 1 + self.rng.below(DMA_BYTES as u64 / PAGE - first);
        let (iova, size) = (IOVA + first * PAGE, pages * PAGE);
        let r = if self.rng.below(2) == 0 {
            self.container
                .map_dma(self.dma.vaddr(first * PAGE), iova, size)
        } else {
            self.container.unmap_dma(iova, size)
        };
        self.tally.note(r);
    }

    /// A ring in VRAM full of garbage or of commands aimed anywhere, and its
    /// doorbell rung.
    fn garbage_ring(&mut self) {
        let hw = &self.v.g.hw;
        let (dev, bar0, bar2, vram) = (&hw.dev, &hw.bar0, &hw.bar2, &hw.vram);
        let rng = &mut self.rng;
        let t = &mut self.tally;
        let ring = rng.pick(&[0u64, 0x1000, bar2.size.saturating_sub(0x1000)]);
        let entries = rng.pick(&[16u64, 64]);
        let w = |id: RegId, elem: usize, v: u64, size: usize| {
            let off = regs::window_offset(id, elem);
            dev.write(bar0, off, &v.to_le_bytes()[..size])
        };
        t.note(w(RegId::WRingCtrl, 0, 0, 4));
        t.note(w(RegId::WRingBase, 0, ring, 8));
        t.note(w(RegId::WRingSize, 0, entries, 4));
        let n = 1 + rng.below(entries - 1);
        for i in 0..n {
            let sys = IOVA + rng.below(2 * DMA_BYTES as u64);
            let any = rng.next();
            let cmd = match rng.below(6) {
                0 => Command::copy(Loc::Sys(sys), Loc::Vram(rng.below(bar2.size)), 8192),
                1 => Command::copy(Loc::Vram(rng.below(2 * bar2.size)), Loc::Sys(sys), 4096),
                2 => Command::fill(Loc::Sys(sys), rng.below(1 << 21), any as u32),
                3 => Command::crc32(Loc::Sys(sys), Loc::Sys(any & 0xffff_ffff), 64),
                4 => Command::fence(Loc::Sys(any), any, true),
                _ => Command::nop(),
            };
            let mut bytes = cmd.encode();
            if rng.below(5) == 0 {
                bytes[rng.below(COMMAND_BYTES as u64) as usize] = rng.next() as u8;
            }
            let at = (ring + i * COMMAND_BYTES as u64) as usize;
            if at + COMMAND_BYTES <= vram.len() {
                // SAFETY: inside the VRAM mapping.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        bytes.as_ptr(),
                        vram.as_mut_ptr().add(at),
                        COMMAND_BYTES,
                    )
                };
            }
        }
        t.note(w(RegId::WDoorbell, 0, n, 4));
    }
}

// ---- the sequence ---------------------------------------------------------------

/// The seeded sequence: `ops` random operations on the small vGPU with the
/// planned episodes between them; their outcomes go to `c.results`, the
/// timing-dependent counts to bench lines.
fn run_sequence(c: &mut Chaos) {
    let Args {
        ops,
        seed,
        episodes,
    } = c.args;
    let targets = c.targets();
    let byst = c.bystander();
    let mut fuzz = Fuzz::new(&c.vgs[0], &c.container, c.dma, seed);
    let plan = plan(seed, ops, episodes, targets.len() as u64);
    let mut results: BTreeMap<Kind, KindResult> = BTreeMap::new();
    let mut st = Stats::default();
    let mut next = 0;
    let start = Instant::now();
    for i in 0..=ops {
        while next < plan.len() && plan[next].at <= i {
            let ep = plan[next];
            let v = targets[ep.target];
            let t0 = Instant::now();
            let res = run_episode(&ep, &targets, byst, &c.container, &mut st);
            trace(|| {
                format!(
                    "episode {next} {:?} on {}: {} ms, {res:?}",
                    ep.kind,
                    v.label,
                    t0.elapsed().as_millis()
                )
            });
            let kr = results.entry(ep.kind).or_default();
            kr.ms += t0.elapsed().as_millis();
            kr.runs += 1;
            *kr.on.entry(v.label.clone()).or_default() += 1;
            if let Err(why) = res {
                kr.failed += 1;
                if kr.first_failure.is_none() {
                    kr.first_failure = Some(format!("episode {next} on {}: {why}", v.label));
                }
            }
            next += 1;
        }
        if i == ops {
            break;
        }
        fuzz.step();
    }
    sequence_benches(start, &results, &fuzz.tally, &st);
    c.results = results;
}

/// One planned episode on its target, driven by its own seed.
fn run_episode(
    ep: &Episode,
    targets: &[&Vg],
    byst: Option<(&Vg, u32)>,
    container: &Container,
    st: &mut Stats,
) -> Result<(), String> {
    let mut e = Rng(ep.seed | 1);
    let v = targets[ep.target];
    match ep.kind {
        Kind::Ring => ep_ring(v, ep.nth, &mut e, st),
        Kind::Big => {
            // Every third one on both targets at once.
            let vs: Vec<&Vg> = if ep.nth % 3 == 1 {
                targets.to_vec()
            } else {
                vec![v]
            };
            ep_big(&vs, byst, container, &mut e, st)
        }
        Kind::Unmap => ep_unmap(v, container, ep.nth, &mut e, st),
        Kind::Reset => ep_reset(v, ep.nth, &mut e, st),
    }
}

/// Figures that vary with timing (the engines race the VMM) stay out of
/// the check lines, which the transcript snapshot pins down.
fn sequence_benches(start: Instant, results: &BTreeMap<Kind, KindResult>, t: &Tally, st: &Stats) {
    bench("vfio_chaos_ms", start.elapsed().as_millis());
    bench(
        "vfio_chaos_episodes_ms",
        results.values().map(|k| k.ms).sum::<u128>(),
    );
    bench("vfio_chaos_refused", format!("{}/{}", t.refused, t.ops));
    bench(
        "vfio_chaos_ring_refused_writes",
        format!("{} ({} rewinds)", st.refused_ring_writes, st.rewinds),
    );
    bench("vfio_chaos_big_mib", st.big_mib);
    bench(
        "vfio_chaos_invalidations_while_busy",
        format!("{}/{}", st.invalidations_busy, st.invalidations),
    );
    bench(
        "vfio_chaos_unmaps_while_busy",
        format!("{}/{}", st.unmaps_busy, st.unmaps),
    );
    bench(
        "vfio_chaos_resets_mid_command",
        format!(
            "{}/{} (+{} from a second thread)",
            st.resets_mid_command, st.resets, st.storm_resets
        ),
    );
}

// ---- the checks -------------------------------------------------------------------

/// Afterwards the small vGPU works again: reset, map the operations' buffer
/// again, FILL + COPY into it + FENCE.
fn works_after_random_ops(c: &mut Chaos) -> Result<String, String> {
    let _ = c.container.unmap_dma(IOVA, DMA_BYTES as u64);
    c.container
        .map_dma(c.dma.vaddr(0), IOVA, DMA_BYTES as u64)
        .map_err(|e| format!("map the DMA buffer again: {e}"))?;
    let small = &c.vgs[0];
    small.recover()?;
    c.dma.write(0x1000, &[0u8; 16]);
    small.run(&[
        Command::fill(Loc::Vram(0x10000), 4096, 0xc4a0_c4a0),
        Command::copy(Loc::Sys(IOVA + 0x1000), Loc::Vram(0x10000), 8),
        Command::fence(Loc::Sys(IOVA + 0x1008), 77, false),
    ])?;
    let mut b = [0u8; 16];
    c.dma.read(0x1000, &mut b);
    ensure!(
        b[..8] == [0xa0, 0xc4, 0xa0, 0xc4, 0xa0, 0xc4, 0xa0, 0xc4]
            && u64::from_le_bytes(b[8..].try_into().unwrap()) == 77,
        "buffer {b:02x?}"
    );
    Ok(String::new())
}

/// Every episode of `kind` held its checks: how many ran on which vGPU, or
/// the first failure.
fn episodes_held(c: &Chaos, kind: Kind) -> Result<String, String> {
    let kr = c.results.get(&kind).ok_or("no episodes of this kind ran")?;
    let on: Vec<String> = kr.on.iter().map(|(l, n)| format!("{n} on {l}")).collect();
    if let Some(f) = &kr.first_failure {
        return Err(format!(
            "{} of {} episodes failed (seed {:#x}), first: {f}",
            kr.failed, kr.runs, c.args.seed
        ));
    }
    Ok(format!("{} episodes ({})", kr.runs, on.join(", ")))
}

/// The ring episodes ([`ep_ring`]).
fn ring_episodes_held(c: &mut Chaos) -> Result<String, String> {
    episodes_held(c, Kind::Ring)
}

/// The big episodes ([`ep_big`]).
fn big_episodes_held(c: &mut Chaos) -> Result<String, String> {
    episodes_held(c, Kind::Big)
}

/// The unmap episodes ([`ep_unmap`]).
fn unmap_episodes_held(c: &mut Chaos) -> Result<String, String> {
    episodes_held(c, Kind::Unmap)
}

/// The reset episodes ([`ep_reset`], [`reset_storm`]).
fn reset_episodes_held(c: &mut Chaos) -> Result<String, String> {
    episodes_held(c, Kind::Reset)
}

/// Each kind's check, reported when episodes of it ran.
const EPISODE_CHECKS: [(Kind, Check<Chaos>); 4] = [
    (
        Kind::Ring,
        Check {
            name: "chaos: doorbell rewinds and ring writes under running commands (trapped and mmap'ed): refused, nothing cut short, rerun or out of order",
            run: ring_episodes_held,
        },
    ),
    (
        Kind::Big,
        Check {
            name: "chaos: FILL/COPY/CRC32 of many MiB in VRAM and system memory beside other work and unmaps: exact",
            run: big_episodes_held,
        },
    ),
    (
        Kind::Unmap,
        Check {
            name: "chaos: DMA unmap under running commands: no byte of the unmapped buffer changes or is read after it returns; re-mapped memory works",
            run: unmap_episodes_held,
        },
    ),
    (
        Kind::Reset,
        Check {
            name: "chaos: VFIO and window resets racing completions: nothing moves after a reset returns, the vGPU works",
            run: reset_episodes_held,
        },
    ),
];

/// The bystander's VRAM still holds its pattern, and every vGPU runs a
/// FILL, a COPY into its control buffer and a FENCE after a reset.
fn all_work_afterwards(c: &mut Chaos) -> Result<String, String> {
    if let Some((b, crc)) = c.bystander() {
        b.configure_ring(0, 0, false);
        b.run(&[Command::crc32(Loc::Vram(RES), Loc::Vram(DATA), b.fb - DATA)])?;
        ensure!(
            b.vram_u64(RES) == crc as u64,
            "the bystander's VRAM changed"
        );
    }
    for v in &c.vgs {
        v.recover()?;
        v.ctrl.write(0x1000, &[0u8; 16]);
        v.run(&[
            Command::fill(Loc::Vram(WORK), 4096, 0x600d_600d),
            Command::copy(Loc::Sys(v.iova + 0x1000), Loc::Vram(WORK), 8),
            Command::fence(Loc::Sys(v.iova + 0x1008), 77, false),
        ])
        .map_err(|e| format!("{} ({}): {e}", v.label, v.uuid))?;
        let mut b = [0u8; 16];
        v.ctrl.read(0x1000, &mut b);
        ensure!(
            b[..8] == [0x0d, 0x60, 0x0d, 0x60, 0x0d, 0x60, 0x0d, 0x60]
                && u64::from_le_bytes(b[8..].try_into().unwrap()) == 77,
            "{}: buffer {b:02x?}",
            v.label
        );
    }
    let labels: Vec<&str> = c.vgs.iter().map(|v| v.label.as_str()).collect();
    Ok(labels.join(", "))
}

/// Once closed, the vGPUs can be destroyed and are gone.
fn all_destroyed(c: &mut Chaos) -> Result<String, String> {
    c.vgs.clear();
    for u in UUIDS {
        if Vgpu::get(u).is_ok() {
            Vgpu::destroy(u).map_err(|e| e.to_string())?;
        }
        ensure!(Vgpu::get(u).is_err(), "{u} still listed");
    }
    Ok(String::new())
}

/// The checks in transcript order: the random operations' (its name says
/// how many and the seed), each kind's that ran, the final ones.
fn checks(c: &Chaos) -> Vec<Check<Chaos>> {
    let Args { ops, seed, .. } = c.args;
    // Leaked once: a check's name is static, this one is made at run time.
    let first: &'static str = Box::leak(
        format!(
            "chaos: {ops} random VFIO operations (seed {seed:#x}), then the vGPU works after a reset"
        )
        .into_boxed_str(),
    );
    let mut checks = vec![Check {
        name: first,
        run: works_after_random_ops,
    }];
    for (kind, ch) in &EPISODE_CHECKS {
        if c.results.contains_key(kind) {
            checks.push(Check {
                name: ch.name,
                run: ch.run,
            });
        }
    }
    checks.push(Check {
        name: "chaos: every vGPU works afterwards, the bystander's VRAM is intact",
        run: all_work_afterwards,
    });
    checks.push(Check {
        name: "chaos: the vGPUs are destroyed after all that",
        run: all_destroyed,
    });
    checks
}

fn main() {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("vgpu-vfio-chaos: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let mut r = Report::default();
    let mut c = Chaos::set_up(args);
    run_sequence(&mut c);
    let checks = checks(&c);
    r.run(&mut c, &checks);
    std::process::exit(r.finish());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_crc_is_the_crc_of_the_bytes() {
        for (p, len) in [
            (0u32, 0u64),
            (0x1234_5678, 4),
            (0xdead_beef, 12),
            (7, 4096),
            (0xc4a0_0001, 3 << 20),
        ] {
            let bytes: Vec<u8> = p
                .to_le_bytes()
                .iter()
                .cycle()
                .take(len as usize)
                .copied()
                .collect();
            assert_eq!(pattern_crc(p, len), crc32fast::hash(&bytes), "{p:#x} {len}");
        }
    }

    #[test]
    fn shapes() {
        let f = Fill {
            sys: false,
            at: 0,
            len: 3 * MIB,
            new: 1,
            old: 2,
        };
        assert_eq!(shape(&f, |a| if a < MIB { 1 } else { 2 }), "PQQ");
        assert_eq!(shape(&f, |a| if a < MIB + 8192 { 1 } else { 2 }), "PxQ");
        assert!(is_prefix("PPQ") && is_prefix("QQ") && is_prefix("PP") && !is_prefix("QP"));
    }

    fn args(a: &[&str]) -> Result<Option<Args>, String> {
        parse_args(a.iter().map(|s| s.to_string())).map_err(|e| e.to_string())
    }

    #[test]
    fn arguments() {
        let host_run = Args {
            ops: 8000,
            seed: 0x5eed_c4a0_5eed_c4a0,
            episodes: 24,
        };
        assert_eq!(
            args(&["8000", "0x5eedc4a05eedc4a0", "24"]),
            Ok(Some(host_run))
        );
        assert_eq!(
            args(&["8000", "5eedc4a05eedc4a0", "24"]),
            Ok(Some(host_run))
        );
        let defaults = Args {
            ops: 3000,
            seed: 0x5eed_c4a0_5eed_c4a0,
            episodes: 7,
        };
        assert_eq!(args(&[]), Ok(Some(defaults)));
        assert_eq!(args(&["--help"]), Ok(None));
        for bad in [
            &["x"][..],
            &["10", "0xzz"],
            &["10", "1", "-3"],
            &["1", "2", "3", "4"],
        ] {
            assert!(args(bad).is_err(), "{bad:?} accepted");
        }
        let e = args(&["10", "0xzz"]).unwrap_err();
        assert!(e.contains("SEED") && e.contains("0xzz"), "{e}");
    }

    #[test]
    fn plan_has_every_kind_equally_and_is_seeded() {
        let p = plan(5, 20000, 32, 2);
        for k in KINDS {
            let of: Vec<&Episode> = p.iter().filter(|e| e.kind == k).collect();
            assert_eq!(of.len(), 8);
            assert_eq!(of.iter().filter(|e| e.target == 0).count(), 4);
        }
        assert!(p.windows(2).all(|w| w[0].at < w[1].at));
        assert_eq!(p, plan(5, 20000, 32, 2));
    }
}
