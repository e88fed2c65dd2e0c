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
//! random sequence runs first ([`run_sequence`]). One file per concern: the
//! vGPU under test and its FILL targets (`device.rs`), the random
//! operations (`fuzz.rs`), and one per kind of episode (`ring.rs`,
//! `big.rs`, `unmap.rs`, `reset.rs`), each split into named steps.

mod big;
mod device;
mod fuzz;
mod reset;
mod ring;
mod unmap;

use big::ep_big;
use device::*;
use fuzz::{Fuzz, Tally};
use reset::ep_reset;
use ring::ep_ring;
use unmap::ep_unmap;

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

/// With VGPU_CHAOS_TRACE set, a line on stderr.
fn trace(line: impl FnOnce() -> String) {
    if std::env::var_os("VGPU_CHAOS_TRACE").is_some() {
        eprintln!("{}", line());
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
