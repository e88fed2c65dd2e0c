//! vgpu-l2-work: a workload for live migration. Runs as root in an L2 guest on the
//! vGPU driven by vgpu_guest.ko and loops self-checking rounds of CPU and engine work
//! until `stop` arrives on the console (or --rounds / --seconds), so that a migration
//! at any moment lands in the middle of it and any lost or torn state shows up.
//!
//! Output (short: L2's serial console is slow):
//!   VGPU-WORK-START partition=P vram_mib=V keeper_mib=K irq=MODE
//!   VGPU-WORK rounds=R errors=E                    every ~2 s of guest time
//!   VGPU-WORK-ERR round=R CHECK: WHY               at most MAX_ERROR_LINES of them
//!   VGPU-WORK-DONE rounds=R errors=E fence=F keeper=ok|bad
//!   bench work_rounds R
//!   bench work_max_round_ms X
//! Exit status 0 only with no errors and the keeper intact; 2 when the vGPU cannot
//! be opened (`VGPU-WORK-FAIL why`).

use std::time::{Duration, Instant};

use nix::errno::Errno;
use vdevice::command::{Command, Loc};
use vdevice::pci;
use vdevice::regs::RegId;
use vgpu_guest_tests::console::StdinLines;
use vgpu_guest_tests::guest_driver::{release_console, render_node, Opened};
use vgpu_guest_tests::pattern::{all_words, pattern_word, random_bytes, scan_pattern, seed_of};
use vgpu_guest_tests::uapi::irq_name;
use vgpu_guest_tests::{bench, ensure, pattern, Check, PciDev};

const MIB: u64 = 1 << 20;
/// Every round moves blocks of this size.
const BLOCK: usize = 0x10000;
const BLOCK_BYTES: u64 = BLOCK as u64;
/// The CPU's block and its engine copy rotate over this many places.
const SLOTS: u64 = 4;

// DMA buffer layout.
/// The round's FENCE writes its sequence number here.
const B_SEQ: usize = 0x0;
/// CRC32's result.
const B_CRC: usize = 0x8;
/// The engine copies the block here (VRAM -> system memory).
const B_OUT: usize = 0x1000;
const B_NEED: usize = B_OUT + BLOCK;
const _: () = assert!(B_SEQ + 8 <= B_CRC && B_CRC + 8 <= B_OUT);

// The work area at the top of VRAM (offsets from its base).
const W_CPU: u64 = 0;
const W_COPY: u64 = SLOTS * BLOCK_BYTES;
const W_FILL: u64 = 2 * SLOTS * BLOCK_BYTES;
const WORK_BYTES: u64 = W_FILL + BLOCK_BYTES;
/// The keeper: VRAM below the work area, written once, checked at the end.
const KEEPER_MAX: u64 = 16 * MIB;

/// One WAIT_FENCE: generous, a migration may stop the guest for seconds.
const ROUND_WAIT_MS: u32 = 10_000;
/// Consecutive waits that time out before giving up rather than hanging.
const MAX_TIMEOUTS: u32 = 3;
/// Consecutive failed rounds (faults, refused submissions) before giving up.
const MAX_FAILED_ROUNDS: u32 = 3;
const STATUS_EVERY: Duration = Duration::from_secs(2);
const MAX_ERROR_LINES: u64 = 10;

// ---- arguments ------------------------------------------------------------------

struct Args {
    pattern: String,
    rounds: Option<u64>,
    seconds: Option<u64>,
}

/// `[--pattern TEXT] [--rounds N] [--seconds S]`.
fn parse_args(
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>,
) -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut a = Args {
        pattern: "vgpu-l2-work".into(),
        rounds: None,
        seconds: None,
    };
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next()? {
        match arg {
            Long("pattern") => a.pattern = p.value()?.string()?,
            Long("rounds") => a.rounds = Some(p.value()?.parse()?),
            Long("seconds") => a.seconds = Some(p.value()?.parse()?),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(a)
}

// ---- what each round does, as pure functions of the seed and the round -------------

/// The block the CPU writes in round `r`.
fn round_block(seed: u64, r: u64) -> Vec<u8> {
    random_bytes(pattern_word(seed ^ 0x776f_726b, r), BLOCK)
}

/// The FILL value of round `r`: multiplying by an odd number is a bijection,
/// so consecutive rounds always differ and a FILL that did not run shows.
fn fill_value(seed: u64, r: u64) -> u32 {
    (seed as u32) ^ (r as u32).wrapping_mul(0x9e37_79b9)
}

/// The fence value of round `r`: one more per round, from 1.
fn sequence(r: u64) -> u64 {
    r.wrapping_add(1)
}

/// Where round `r`'s blocks go, rotating over the slots.
fn slot_offset(r: u64) -> u64 {
    (r % SLOTS) * BLOCK_BYTES
}

/// The CRC32 command's result for `data`: zlib's CRC-32 (as the model's
/// engine), zero-extended to 64 bits (SPEC 6).
fn expected_crc(data: &[u8]) -> u64 {
    u64::from(crc32fast::hash(data))
}

/// The engine work of one round, all on one ring in order: FILL, COPY the
/// CPU's block within VRAM, COPY that copy to system memory, CRC32 of the
/// system-memory copy, and a FENCE of the sequence number. The driver's
/// FENCE after it raises the round's one interrupt: with a second one here,
/// a late interrupt of one round could hide a lost one of the next.
fn round_commands(base: u64, r: u64, seed: u64, bus: impl Fn(usize) -> u64) -> Vec<Command> {
    let slot = slot_offset(r);
    let copy = Loc::Vram(base + W_COPY + slot);
    vec![
        Command::fill(Loc::Vram(base + W_FILL), BLOCK_BYTES, fill_value(seed, r)),
        Command::copy(copy, Loc::Vram(base + W_CPU + slot), BLOCK_BYTES),
        Command::copy(Loc::Sys(bus(B_OUT)), copy, BLOCK_BYTES),
        Command::crc32(Loc::Sys(bus(B_CRC)), Loc::Sys(bus(B_OUT)), BLOCK_BYTES),
        Command::fence(Loc::Sys(bus(B_SEQ)), sequence(r), false),
    ]
}

// ---- the workload -----------------------------------------------------------------

/// The round in flight: what it was given and what it must have left.
struct Round {
    r: u64,
    block: Vec<u8>,
    /// The fence the driver appended, and the one before it (None at the
    /// start and after a reset).
    fence: u64,
    prev_fence: Option<u64>,
    engine_irqs_before: u64,
}

struct Work {
    o: Opened,
    seed: u64,
    /// Base of the work area in VRAM.
    base: u64,
    keeper_bytes: u64,
    cur: Round,
    /// The last sequence number the FENCE wrote.
    fence_seen: u64,
    errors: u64,
}

type Outcome = Result<String, String>;

/// What every finished round must show; a failure is one error.
const ROUND_CHECKS: &[Check<Work>] = &[
    Check {
        name: "fill",
        run: check_fill,
    },
    Check {
        name: "copy",
        run: check_copy,
    },
    Check {
        name: "crc",
        run: check_crc,
    },
    Check {
        name: "fence",
        run: check_fence,
    },
    Check {
        name: "irq",
        run: check_irq,
    },
];

/// The FILL region, read back through BAR2, holds the round's value.
fn check_fill(w: &mut Work) -> Outcome {
    let v = fill_value(w.seed, w.cur.r);
    let mut got = vec![0u8; BLOCK];
    w.o.vram.copy_out(w.base + W_FILL, &mut got);
    ensure!(all_words(&got, v), "FILL region lacks {v:#010x}");
    Ok(String::new())
}

/// The DMA buffer holds the CPU's block after VRAM -> VRAM -> system memory.
fn check_copy(w: &mut Work) -> Outcome {
    let mut got = vec![0u8; BLOCK];
    w.o.buf.read(B_OUT, &mut got);
    let first = got.iter().zip(&w.cur.block).position(|(a, b)| a != b);
    ensure!(
        first.is_none(),
        "DMA buffer differs from the CPU block from +{:#x}",
        first.unwrap_or(0)
    );
    Ok(String::new())
}

/// The engine's CRC of the system-memory copy equals the CPU's.
fn check_crc(w: &mut Work) -> Outcome {
    let (got, want) = (w.o.buf.get(B_CRC), expected_crc(&w.cur.block));
    ensure!(got == want, "CRC {got:#x}, want {want:#x}");
    Ok(String::new())
}

/// The FENCE wrote the round's sequence number, and the driver's fences
/// count one per round.
fn check_fence(w: &mut Work) -> Outcome {
    let (got, want) = (w.o.buf.get(B_SEQ), sequence(w.cur.r));
    w.fence_seen = got;
    ensure!(got == want, "FENCE wrote {got}, want {want}");
    if let Some(prev) = w.cur.prev_fence {
        ensure!(
            w.cur.fence == prev.wrapping_add(1),
            "driver fence {} after {prev}",
            w.cur.fence
        );
    }
    Ok(String::new())
}

/// The fence's interrupt arrived (the wait did not end by polling).
fn check_irq(w: &mut Work) -> Outcome {
    let now = w.o.gpu.info()?.engine_irqs;
    ensure!(
        now != w.cur.engine_irqs_before,
        "engine_irqs stayed {now}: no interrupt"
    );
    Ok(String::new())
}

/// How a round ended.
enum Ended {
    /// The fence signalled: verify the round.
    Signalled,
    /// The submission failed or faulted (reported); no verification.
    Failed,
    /// MAX_TIMEOUTS waits in a row timed out.
    Stuck,
}

impl Work {
    fn error(&mut self, r: u64, what: &str, why: &str) {
        self.errors = self.errors.saturating_add(1);
        if self.errors <= MAX_ERROR_LINES {
            println!("VGPU-WORK-ERR round={r} {what}: {why}");
        } else if self.errors == MAX_ERROR_LINES + 1 {
            println!("VGPU-WORK-ERR further errors are only counted");
        }
    }

    /// The partition as the window shows it, for a round that hangs.
    fn partition_state(&self) -> String {
        let win = &self.o.win;
        format!(
            "STATUS {} HEAD {} TAIL {} FENCE_VALUE {} engine_irqs {}",
            win.state(),
            win.at(RegId::WRingHead, 0),
            win.at(RegId::WRingTail, 0),
            win.get(RegId::WFenceValue),
            self.o.gpu.info().map(|i| i.engine_irqs).unwrap_or(0)
        )
    }

    /// After a fault: RESET (VRAM is kept, SPEC 11), and the driver's fences
    /// no longer follow on from the last round's.
    fn recover(&mut self, r: u64) {
        if let Err(e) = self.o.gpu.reset() {
            self.error(r, "reset", &e);
        }
        self.cur.prev_fence = None;
    }

    /// Write, submit and wait for round `r`.
    fn run_round(&mut self, r: u64) -> Ended {
        let block = round_block(self.seed, r);
        self.o
            .vram
            .copy_in(self.base + W_CPU + slot_offset(r), &block);
        self.o.buf.put(B_CRC, u64::MAX);
        self.cur.r = r;
        self.cur.block = block;
        self.cur.engine_irqs_before = self.o.gpu.info().map(|i| i.engine_irqs).unwrap_or(0);
        let cmds = round_commands(self.base, r, self.seed, |off| self.o.buf.bus(off));
        let fence = match self.o.gpu.submit(0, &cmds) {
            Ok(f) => f,
            Err(e) => {
                self.error(r, "submit", &format!("{e:?}"));
                if e == Errno::EIO {
                    self.recover(r);
                }
                return Ended::Failed;
            }
        };
        self.cur.fence = fence;
        for timeouts in 1..=MAX_TIMEOUTS {
            match self.o.gpu.wait(0, fence, ROUND_WAIT_MS) {
                Ok(()) => return Ended::Signalled,
                Err(e) if e.errno == Errno::ETIMEDOUT => {
                    let why = format!(
                        "fence {fence} not signalled after {timeouts} x {ROUND_WAIT_MS} ms: {}",
                        self.partition_state()
                    );
                    self.error(r, "timeout", &why);
                }
                Err(e) => {
                    self.error(r, "wait", &format!("fence {fence}: {e}"));
                    if e.errno == Errno::EIO {
                        self.recover(r);
                    }
                    return Ended::Failed;
                }
            }
        }
        Ended::Stuck
    }

    /// Run the round checks; a failure is an error line each.
    fn verify(&mut self) {
        for c in ROUND_CHECKS {
            if let Err(why) = (c.run)(self) {
                self.error(self.cur.r, c.name, &why);
            }
        }
        self.cur.prev_fence = Some(self.cur.fence);
    }

    /// The keeper holds the pattern written at the start, all of it.
    fn keeper_ok(&mut self) -> bool {
        let s = scan_pattern(&self.o.vram, self.keeper_bytes, self.seed, None);
        if s.bad != 0 {
            let why = format!(
                "{} words changed, first at {:#x}",
                s.bad,
                s.first_bad.unwrap_or(0)
            );
            self.error(self.cur.r, "keeper", &why);
        }
        s.bad == 0
    }
}

/// Open the vGPU and lay out VRAM: the keeper written below the work area.
fn setup(args: &Args) -> Result<Work, String> {
    let dev = PciDev::find(pci::VENDOR_ID, pci::VGPU_DEVICE_ID)?;
    let o = Opened::open(&dev, &render_node(&dev))?;
    // The keeper and the work area are all of VRAM: no console drawing there.
    release_console()?;
    let size = o.vram_size;
    ensure!(
        size <= o.vram.len as u64,
        "VRAM_SIZE {size:#x} > BAR2 {:#x}",
        o.vram.len
    );
    let base = size
        .checked_sub(WORK_BYTES)
        .filter(|&b| b >= BLOCK_BYTES)
        .ok_or(format!("VRAM_SIZE {size:#x} too small"))?;
    ensure!(
        o.info.buf_size as usize >= B_NEED,
        "DMA buffer {:#x} < {B_NEED:#x}",
        o.info.buf_size
    );
    let seed = seed_of(&args.pattern);
    let keeper_bytes = base.min(KEEPER_MAX);
    pattern::write_pattern(&o.vram, keeper_bytes, seed);
    println!(
        "VGPU-WORK-START partition={} vram_mib={} keeper_mib={} irq={}",
        o.info.partition,
        size >> 20,
        keeper_bytes >> 20,
        irq_name(o.info.irq_mode)
    );
    Ok(Work {
        o,
        seed,
        base,
        keeper_bytes,
        cur: Round {
            r: 0,
            block: Vec::new(),
            fence: 0,
            prev_fence: None,
            engine_irqs_before: 0,
        },
        fence_seen: 0,
        errors: 0,
    })
}

/// Whether a console line asks the workload to stop.
fn is_stop(line: &str) -> bool {
    line == "stop"
}

fn main() {
    let args = match parse_args(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            println!("VGPU-WORK-FAIL arguments: {e}");
            std::process::exit(2);
        }
    };
    let mut w = match setup(&args) {
        Ok(w) => w,
        Err(e) => {
            println!("VGPU-WORK-FAIL setup: {e}");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let deadline = args.seconds.map(|s| start + Duration::from_secs(s));
    let mut stdin = StdinLines::default();
    let mut last_status = start;
    let (mut rounds, mut max_round) = (0u64, Duration::ZERO);
    let mut failed_in_a_row = 0u32;
    loop {
        if args.rounds.is_some_and(|n| rounds >= n)
            || deadline.is_some_and(|d| Instant::now() >= d)
            || stdin.poll().iter().any(|l| is_stop(l))
        {
            break;
        }
        let t = Instant::now();
        let ended = w.run_round(rounds);
        rounds = rounds.wrapping_add(1);
        match ended {
            Ended::Signalled => {
                w.verify();
                failed_in_a_row = 0;
            }
            Ended::Failed => failed_in_a_row = failed_in_a_row.saturating_add(1),
            Ended::Stuck => failed_in_a_row = MAX_FAILED_ROUNDS,
        }
        max_round = max_round.max(t.elapsed());
        if failed_in_a_row >= MAX_FAILED_ROUNDS {
            break;
        }
        if last_status.elapsed() >= STATUS_EVERY {
            println!("VGPU-WORK rounds={rounds} errors={}", w.errors);
            last_status = Instant::now();
        }
    }
    let keeper = w.keeper_ok();
    println!(
        "VGPU-WORK-DONE rounds={rounds} errors={} fence={} keeper={}",
        w.errors,
        w.fence_seen,
        if keeper { "ok" } else { "bad" }
    );
    bench("work_rounds", rounds);
    bench("work_max_round_ms", max_round.as_millis());
    std::process::exit(i32::from(w.errors != 0 || !keeper));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_seconds_and_pattern_from_the_command_line() {
        let a = parse_args("--pattern U --rounds 5 --seconds 20".split(' ')).unwrap();
        assert_eq!(
            (a.pattern.as_str(), a.rounds, a.seconds),
            ("U", Some(5), Some(20))
        );
        let a = parse_args(Vec::<String>::new()).unwrap();
        assert_eq!((a.rounds, a.seconds), (None, None));
        assert!(parse_args(["--rounds", "x"]).is_err());
        assert!(parse_args(["--bogus"]).is_err());
    }

    #[test]
    fn rounds_differ_from_their_neighbours_and_repeat_exactly() {
        let s = seed_of("U");
        assert_eq!(round_block(s, 7), round_block(s, 7));
        assert_eq!(round_block(s, 7).len(), BLOCK);
        assert_ne!(round_block(s, 7), round_block(s, 8));
        assert_ne!(round_block(s, 7), round_block(seed_of("V"), 7));
        for r in [0, 1, u32::MAX as u64, u64::MAX - 1] {
            assert_ne!(fill_value(s, r), fill_value(s, r.wrapping_add(1)));
            assert_eq!(sequence(r.wrapping_add(1)), sequence(r).wrapping_add(1));
        }
        assert_eq!(sequence(0), 1);
        assert_eq!(sequence(u64::MAX), 0);
        let slots: Vec<u64> = (0..5).map(slot_offset).collect();
        assert_eq!(slots, [0, BLOCK_BYTES, 2 * BLOCK_BYTES, 3 * BLOCK_BYTES, 0]);
    }

    #[test]
    fn expected_crc_is_the_ieee_crc32() {
        // The check value of CRC-32/ISO-HDLC (zlib's crc32).
        assert_eq!(expected_crc(b"123456789"), 0xcbf4_3926);
        assert_eq!(expected_crc(b""), 0);
    }

    /// A round's commands on the model leave what the round checks expect:
    /// the FILL, the block in system memory, the CPU's CRC, the sequence
    /// number.
    #[test]
    fn the_model_runs_a_round_as_the_checks_expect() {
        use vdevice::driver::Hardware;
        use vdevice::regs::{self, PartIntr, PtCtrl};
        use vdevice::testing::Harness;
        let cfg = vdevice::DeviceConfig {
            vram_size_bytes: 64 * MIB,
            partitions: 2,
            engines: 1,
            ..vdevice::DeviceConfig::default()
        };
        let (vram, sys) = (2 * MIB, 0x10_0000u64);
        let h = Harness::new(cfg, 0x20_0000);
        h.enable(1, vram, vram, PtCtrl::new());
        h.ring_in_vram(1, 0, 0, 64);
        let fence_intr = PartIntr::new().with_fence(true).into_bits();
        h.set(RegId::WIntrMask, 1, 0, u64::from(fence_intr));
        let (s, base) = (seed_of("U"), vram - WORK_BYTES);
        for r in 0..SLOTS + 1 {
            let block = round_block(s, r);
            h.hw.vram_write(vram + base + W_CPU + slot_offset(r), &block);
            // The guest driver's FENCE, which interrupts, ends every submission.
            let mut cmds = round_commands(base, r, s, |off| sys + off as u64);
            cmds.push(Command::fence(Loc::Sys(sys + 0x100), r, true));
            h.submit(1, 0, &cmds);
            let vector = regs::partition_vector_base(1);
            let n = usize::try_from(r + 1).unwrap();
            assert!(h.irq.wait_for(vector, n, Duration::from_secs(10)));
            let mut fill = vec![0u8; BLOCK];
            h.hw.vram_read(vram + base + W_FILL, &mut fill);
            assert!(all_words(&fill, fill_value(s, r)), "round {r}: FILL");
            assert_eq!(h.mem.read_bytes(sys + B_OUT as u64, BLOCK), block);
            assert_eq!(h.mem.read_u64(sys + B_CRC as u64), expected_crc(&block));
            assert_eq!(h.mem.read_u64(sys + B_SEQ as u64), sequence(r));
        }
    }

    #[test]
    fn only_a_stop_line_stops() {
        assert!(is_stop("stop"));
        assert!(!is_stop("go") && !is_stop("alone") && !is_stop("stopped"));
    }
}
