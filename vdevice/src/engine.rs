//! Engines: worker threads that share partitions by weighted fair
//! scheduling (lowest weighted virtual time first, preempting between
//! commands after a timeslice), fetch commands from rings, and execute them
//! with every VRAM and system-memory access checked against the partition's
//! slice and translation. Plus the timer thread for late interrupts.

use crate::command::{Command, Loc, Opcode, COMMAND_BYTES};
use crate::device::{Delivery, FaultLogEntry, Partition, Shared, XlateFaultEntry, XlateWait};
use crate::regs::{FaultCode, InjectKind, PartIntr, RINGS_PER_PARTITION};
use crate::xlate::{self, Segment, XlateConfig, XlateError};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Work is split into chunks this big so a reset never waits long.
const CHUNK_BYTES: u64 = 1 << 20;
/// How soon a ring stalled on SEM_WAIT is polled again.
const SEM_POLL: Duration = Duration::from_micros(50);
/// Virtual time advances by busy_ns * VTIME_SCALE / weight.
const VTIME_SCALE: u64 = 256;

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SchedSlot {
    pub queued: bool,
    pub running: bool,
    /// Work arrived while running: look again after the slice.
    pub kicked: bool,
    /// Resets in progress; the partition is not scheduled while > 0.
    pub quiesce: u32,
    pub vtime: u64,
    pub not_before: Option<Instant>,
}

pub(crate) struct Sched {
    pub slots: Vec<SchedSlot>,
    pub vclock: u64,
    pub shutdown: bool,
}

impl Sched {
    pub fn new(partitions: usize) -> Self {
        Self {
            slots: vec![SchedSlot::default(); partitions],
            vclock: 0,
            shutdown: false,
        }
    }
}

enum SliceEnd {
    /// Nothing runnable left (idle, faulted, hung, waiting for the host).
    Idle,
    /// Timeslice used up with work left.
    More,
    /// Only rings stalled on semaphores are left.
    Waiting,
    /// A reset took the partition away.
    Aborted,
}

pub(crate) fn worker(shared: Arc<Shared>) {
    shared.dma.thread_start();
    while let Some(p) = pick(&shared) {
        let (busy_ns, weight, end) = run_slice(&shared, &shared.parts[p]);
        release(&shared, p, busy_ns, weight, end);
    }
    shared.dma.thread_stop();
}

fn pick(shared: &Shared) -> Option<usize> {
    let mut s = shared.sched.lock();
    loop {
        if s.shutdown {
            return None;
        }
        let now = Instant::now();
        let mut best: Option<usize> = None;
        let mut wake: Option<Instant> = None;
        for (i, slot) in s.slots.iter().enumerate() {
            if !slot.queued || slot.running || slot.quiesce > 0 {
                continue;
            }
            if let Some(t) = slot.not_before.filter(|&t| t > now) {
                wake = Some(wake.map_or(t, |w| w.min(t)));
                continue;
            }
            if best.is_none_or(|b| slot.vtime < s.slots[b].vtime) {
                best = Some(i);
            }
        }
        if let Some(i) = best {
            let vtime = s.slots[i].vtime;
            s.vclock = s.vclock.max(vtime);
            let slot = &mut s.slots[i];
            slot.queued = false;
            slot.running = true;
            slot.kicked = false;
            slot.not_before = None;
            return Some(i);
        }
        match wake {
            Some(t) => {
                shared.sched_cv.wait_until(&mut s, t);
            }
            None => shared.sched_cv.wait(&mut s),
        }
    }
}

fn release(shared: &Shared, p: usize, busy_ns: u64, weight: u32, end: SliceEnd) {
    let mut s = shared.sched.lock();
    let slot = &mut s.slots[p];
    slot.running = false;
    slot.vtime += busy_ns.saturating_mul(VTIME_SCALE) / weight.max(1) as u64;
    let requeue = match end {
        SliceEnd::More => true,
        SliceEnd::Waiting => {
            slot.not_before = Some(Instant::now() + SEM_POLL);
            true
        }
        SliceEnd::Idle | SliceEnd::Aborted => slot.kicked,
    };
    if requeue && slot.quiesce == 0 {
        slot.queued = true;
        if slot.kicked {
            slot.not_before = None;
        }
    }
    slot.kicked = false;
    drop(s);
    shared.sched_cv.notify_all();
}

/// What the engine needs to run one command, snapshotted under the lock.
#[derive(Clone, Copy)]
struct Job {
    ring: usize,
    head: u32,
    ring_base: u64,
    ring_sysmem: bool,
    vram_base: u64,
    vram_size: u64,
    xlate: XlateConfig,
    replay: bool,
    inject: InjectKind,
}

/// Why a command stopped without completing.
enum Stop {
    Fault {
        code: FaultCode,
        addr: u64,
        write: bool,
    },
    XlateMiss {
        addr: u64,
        write: bool,
    },
    SemNotReady,
    Aborted,
}

struct Done {
    bytes: u64,
    fence: Option<(u64, bool)>,
}

fn run_slice(shared: &Shared, part: &Partition) -> (u64, u32, SliceEnd) {
    let start = Instant::now();
    let slice = Duration::from_micros(shared.timeslice_us.load(Ordering::Relaxed).max(1) as u64);
    let mut busy_ns = 0u64;
    let mut weight = 1;
    let mut stalled = [false; RINGS_PER_PARTITION];
    loop {
        if part.abort.load(Ordering::SeqCst) {
            return (busy_ns, weight, SliceEnd::Aborted);
        }
        let job = {
            let mut st = part.st.lock();
            weight = st.weight;
            if !st.runnable() {
                return (busy_ns, weight, SliceEnd::Idle);
            }
            let first = st.next_ring;
            let ring = (0..RINGS_PER_PARTITION)
                .map(|i| (first + i) % RINGS_PER_PARTITION)
                .find(|&r| st.rings[r].has_work() && !stalled[r]);
            let Some(r) = ring else {
                return (busy_ns, weight, SliceEnd::Waiting);
            };
            if st.inject == InjectKind::EngineHang {
                // The engine context wedges: nothing completes until reset.
                st.inject = InjectKind::None;
                st.hung = true;
                return (busy_ns, weight, SliceEnd::Idle);
            }
            st.next_ring = (r + 1) % RINGS_PER_PARTITION;
            Job {
                ring: r,
                head: st.rings[r].head,
                ring_base: st.rings[r].base,
                ring_sysmem: st.rings[r].sysmem,
                vram_base: st.vram_base,
                vram_size: st.vram_size,
                xlate: st.xlate_config(),
                replay: st.ctrl.xlate_replay(),
                inject: st.inject,
            }
        };
        let t0 = Instant::now();
        let mut exec = Exec {
            shared,
            part,
            job,
            injection_fired: false,
        };
        let result = exec.run();
        let dt = t0.elapsed().as_nanos() as u64;
        busy_ns += dt;

        let mut deliveries: [Option<Delivery>; 2] = [None, None];
        let mut fault_entry = None;
        let mut xlate_entry = None;
        {
            let mut st = part.st.lock();
            if part.abort.load(Ordering::SeqCst) {
                return (busy_ns, weight, SliceEnd::Aborted);
            }
            st.stat_busy_ns += dt;
            if exec.injection_fired && st.inject == job.inject {
                st.inject = InjectKind::None;
            }
            let vb = part.vector_base();
            match result {
                Ok(done) => {
                    let ring = &mut st.rings[job.ring];
                    ring.head = (ring.head + 1) % ring.size;
                    st.stat_commands += 1;
                    st.stat_bytes += done.bytes;
                    if let Some((value, intr)) = done.fence {
                        st.fence_value = value;
                        if intr {
                            deliveries[0] = st.event(PartIntr::new().with_fence(true), vb);
                        }
                    }
                    if !st.rings.iter().any(|r| r.has_work()) {
                        deliveries[1] = st.event(PartIntr::new().with_idle(true), vb);
                    }
                }
                Err(Stop::SemNotReady) => stalled[job.ring] = true,
                Err(Stop::Aborted) => return (busy_ns, weight, SliceEnd::Aborted),
                Err(Stop::XlateMiss { addr, write }) if job.replay => {
                    st.xlate_wait = Some(XlateWait {
                        addr,
                        write,
                        ring: job.ring,
                    });
                    xlate_entry = Some(XlateFaultEntry {
                        partition: part.index,
                        addr,
                        write,
                    });
                }
                Err(Stop::XlateMiss { addr, write }) => {
                    let code = FaultCode::SysmemUnmapped;
                    deliveries[0] = st.set_fault(code, addr, job.ring, write, vb);
                    fault_entry = Some((code, addr, write));
                }
                Err(Stop::Fault { code, addr, write }) => {
                    deliveries[0] = st.set_fault(code, addr, job.ring, write, vb);
                    fault_entry = Some((code, addr, write));
                }
            }
        }
        for d in deliveries {
            shared.deliver(part.index, d);
        }
        if let Some((code, addr, write)) = fault_entry {
            shared.log_fault(FaultLogEntry {
                partition: part.index,
                code,
                ring: job.ring,
                write,
                addr,
            });
            return (busy_ns, weight, SliceEnd::Idle);
        }
        if let Some(e) = xlate_entry {
            shared.push_xlate_fault(e);
            return (busy_ns, weight, SliceEnd::Idle);
        }
        if start.elapsed() >= slice {
            return (busy_ns, weight, SliceEnd::More);
        }
    }
}

/// One command's execution context.
struct Exec<'a> {
    shared: &'a Shared,
    part: &'a Partition,
    job: Job,
    injection_fired: bool,
}

fn fault(code: FaultCode, addr: u64, write: bool) -> Stop {
    Stop::Fault { code, addr, write }
}

/// A checked range in one of the partition's address spaces.
enum Range {
    /// Absolute VRAM offset.
    Vram(u64),
    Sys(Vec<Segment>),
}

impl Exec<'_> {
    fn run(&mut self) -> Result<Done, Stop> {
        let j = self.job;
        let cmd_addr = j
            .ring_base
            .checked_add(j.head as u64 * COMMAND_BYTES as u64)
            .ok_or(if j.ring_sysmem {
                Stop::XlateMiss {
                    addr: j.ring_base,
                    write: false,
                }
            } else {
                fault(FaultCode::VramOutOfBounds, j.ring_base, false)
            })?;
        let cmd_loc = Loc::new(j.ring_sysmem, cmd_addr);
        let mut raw = [0u8; COMMAND_BYTES];
        let r = self.check(cmd_loc, COMMAND_BYTES as u64, false)?;
        self.read(&r, cmd_loc, 0, &mut raw)?;
        let cmd =
            Command::decode(&raw).map_err(|_| fault(FaultCode::BadCommand, cmd_addr, false))?;
        self.execute(&cmd)
    }

    /// Check (and translate) a whole range before any data moves.
    fn check(&mut self, loc: Loc, len: u64, write: bool) -> Result<Range, Stop> {
        match loc {
            Loc::Vram(off) => {
                let end = off.checked_add(len);
                if end.is_none_or(|e| e > self.job.vram_size) {
                    return Err(fault(FaultCode::VramOutOfBounds, off, write));
                }
                Ok(Range::Vram(self.job.vram_base + off))
            }
            Loc::Sys(addr) => {
                let mut tlb = self.part.tlb.lock();
                match xlate::translate(
                    &*self.shared.dma,
                    &mut tlb,
                    &self.job.xlate,
                    addr,
                    len,
                    write,
                ) {
                    Ok(segs) => Ok(Range::Sys(segs)),
                    Err(XlateError::Unmapped { addr }) => Err(Stop::XlateMiss { addr, write }),
                    Err(XlateError::ReadOnly { addr }) => {
                        Err(fault(FaultCode::SysmemReadOnly, addr, true))
                    }
                    Err(XlateError::Dma { .. }) => Err(fault(FaultCode::DmaError, addr, write)),
                }
            }
        }
    }

    /// The armed injection fires on this access kind?
    fn inject(&mut self, kind: InjectKind) -> bool {
        if self.job.inject == kind && !self.injection_fired {
            self.injection_fired = true;
            return true;
        }
        false
    }

    fn aborted(&self) -> Result<(), Stop> {
        if self.part.abort.load(Ordering::Relaxed) {
            Err(Stop::Aborted)
        } else {
            Ok(())
        }
    }

    /// Read `buf.len()` bytes at `at` bytes into checked range `r` (which starts at `loc`).
    fn read(&mut self, r: &Range, loc: Loc, at: u64, buf: &mut [u8]) -> Result<(), Stop> {
        match r {
            Range::Vram(abs) => {
                if self.inject(InjectKind::EccError) {
                    return Err(fault(FaultCode::EccError, loc.addr() + at, false));
                }
                self.shared.vram.read(abs + at, buf);
                Ok(())
            }
            Range::Sys(segs) => self.dma(
                segs,
                loc,
                at,
                buf.len() as u64,
                |dma, bus, off, n| dma.read(bus, &mut buf[off as usize..(off + n) as usize]),
                false,
            ),
        }
    }

    fn write(&mut self, r: &Range, loc: Loc, at: u64, buf: &[u8]) -> Result<(), Stop> {
        match r {
            Range::Vram(abs) => {
                self.shared.vram.write(abs + at, buf);
                Ok(())
            }
            Range::Sys(segs) => self.dma(
                segs,
                loc,
                at,
                buf.len() as u64,
                |dma, bus, off, n| dma.write(bus, &buf[off as usize..(off + n) as usize]),
                true,
            ),
        }
    }

    /// Walk the bus segments covering `[at, at+len)` of a range, calling
    /// `f(dma, bus_addr, buf_offset, n)` for each piece.
    fn dma(
        &mut self,
        segs: &[Segment],
        loc: Loc,
        at: u64,
        len: u64,
        mut f: impl FnMut(&dyn crate::Dma, u64, u64, u64) -> Result<(), crate::DmaError>,
        write: bool,
    ) -> Result<(), Stop> {
        if self.inject(InjectKind::DmaError) {
            return Err(fault(FaultCode::DmaError, loc.addr() + at, write));
        }
        let mut seg_start = 0u64;
        let mut done = 0u64;
        for s in segs {
            let seg_end = seg_start + s.len;
            let want_start = at + done;
            if done < len && want_start < seg_end {
                let in_seg = want_start - seg_start;
                let n = (s.len - in_seg).min(len - done);
                f(&*self.shared.dma, s.bus + in_seg, done, n)
                    .map_err(|_| fault(FaultCode::DmaError, loc.addr() + want_start, write))?;
                done += n;
            }
            seg_start = seg_end;
        }
        Ok(())
    }

    fn execute(&mut self, cmd: &Command) -> Result<Done, Stop> {
        let done = |bytes| Ok(Done { bytes, fence: None });
        match cmd.opcode {
            Opcode::Nop => done(0),
            Opcode::Copy => {
                let (src, dst) = (cmd.src_loc(), cmd.dst_loc());
                let rs = self.check(src, cmd.len, false)?;
                let rd = self.check(dst, cmd.len, true)?;
                self.copy(&rs, src, &rd, dst, cmd.len)?;
                done(cmd.len)
            }
            Opcode::Fill => {
                let dst = cmd.dst_loc();
                let rd = self.check(dst, cmd.len, true)?;
                let pattern = cmd.value as u32;
                match &rd {
                    Range::Vram(abs) => {
                        let mut at = 0;
                        while at < cmd.len {
                            self.aborted()?;
                            let n = (cmd.len - at).min(CHUNK_BYTES);
                            self.shared.vram.fill32(abs + at, n, pattern);
                            at += n;
                        }
                    }
                    Range::Sys(_) => {
                        let chunk: Vec<u8> = pattern
                            .to_le_bytes()
                            .iter()
                            .copied()
                            .cycle()
                            .take(cmd.len.min(CHUNK_BYTES) as usize)
                            .collect();
                        let mut at = 0;
                        while at < cmd.len {
                            self.aborted()?;
                            let n = (cmd.len - at).min(CHUNK_BYTES);
                            self.write(&rd, dst, at, &chunk[..n as usize])?;
                            at += n;
                        }
                    }
                }
                done(cmd.len)
            }
            Opcode::Fence => {
                let dst = cmd.dst_loc();
                let rd = self.check(dst, 8, true)?;
                self.write(&rd, dst, 0, &cmd.value.to_le_bytes())?;
                Ok(Done {
                    bytes: 0,
                    fence: Some((cmd.value, cmd.flags.intr())),
                })
            }
            Opcode::SemWait => {
                let src = cmd.src_loc();
                let rs = self.check(src, 8, false)?;
                let mut b = [0u8; 8];
                self.read(&rs, src, 0, &mut b)?;
                if u64::from_le_bytes(b) < cmd.value {
                    return Err(Stop::SemNotReady);
                }
                done(0)
            }
            Opcode::Timestamp => {
                let dst = cmd.dst_loc();
                let rd = self.check(dst, 8, true)?;
                let now = self.shared.now_ns();
                self.write(&rd, dst, 0, &now.to_le_bytes())?;
                done(0)
            }
            Opcode::Crc32 => {
                let (src, dst) = (cmd.src_loc(), cmd.dst_loc());
                let rs = self.check(src, cmd.len, false)?;
                let rd = self.check(dst, 8, true)?;
                let mut hasher = crc32fast::Hasher::new();
                match &rs {
                    Range::Vram(abs) => {
                        if self.inject(InjectKind::EccError) {
                            return Err(fault(FaultCode::EccError, src.addr(), false));
                        }
                        let mut at = 0;
                        while at < cmd.len {
                            self.aborted()?;
                            let n = (cmd.len - at).min(CHUNK_BYTES);
                            self.shared
                                .vram
                                .with_slice(abs + at, n, |s| hasher.update(s));
                            at += n;
                        }
                    }
                    Range::Sys(_) => {
                        let mut buf = vec![0u8; cmd.len.min(CHUNK_BYTES) as usize];
                        let mut at = 0;
                        while at < cmd.len {
                            self.aborted()?;
                            let n = (cmd.len - at).min(CHUNK_BYTES);
                            self.read(&rs, src, at, &mut buf[..n as usize])?;
                            hasher.update(&buf[..n as usize]);
                            at += n;
                        }
                    }
                }
                let crc = hasher.finalize() as u64;
                self.write(&rd, dst, 0, &crc.to_le_bytes())?;
                done(cmd.len)
            }
        }
    }

    fn copy(&mut self, rs: &Range, src: Loc, rd: &Range, dst: Loc, len: u64) -> Result<(), Stop> {
        let shared: &Shared = self.shared;
        let vram = &shared.vram;
        if let (Range::Vram(s), Range::Vram(d)) = (rs, rd) {
            if self.inject(InjectKind::EccError) {
                return Err(fault(FaultCode::EccError, src.addr(), false));
            }
            // Chunks go front to back unless the ranges overlap that way.
            let backwards = d > s && *d < s + len;
            let mut done = 0;
            while done < len {
                self.aborted()?;
                let n = (len - done).min(CHUNK_BYTES);
                let at = if backwards { len - done - n } else { done };
                vram.copy_within(s + at, d + at, n);
                done += n;
            }
            return Ok(());
        }
        match (rs, rd) {
            (Range::Sys(_), Range::Vram(d)) => {
                let mut at = 0;
                while at < len {
                    self.aborted()?;
                    let n = (len - at).min(CHUNK_BYTES);
                    let r = vram.with_slice_mut(d + at, n, |buf| self.read(rs, src, at, buf));
                    r.expect("checked range")?;
                    at += n;
                }
            }
            (Range::Vram(s), Range::Sys(_)) => {
                if self.inject(InjectKind::EccError) {
                    return Err(fault(FaultCode::EccError, src.addr(), false));
                }
                let mut at = 0;
                while at < len {
                    self.aborted()?;
                    let n = (len - at).min(CHUNK_BYTES);
                    let r = vram.with_slice(s + at, n, |buf| self.write(rd, dst, at, buf));
                    r.expect("checked range")?;
                    at += n;
                }
            }
            _ => {
                let mut buf = vec![0u8; len.min(CHUNK_BYTES) as usize];
                let mut at = 0;
                while at < len {
                    self.aborted()?;
                    let n = (len - at).min(CHUNK_BYTES);
                    self.read(rs, src, at, &mut buf[..n as usize])?;
                    self.write(rd, dst, at, &buf[..n as usize])?;
                    at += n;
                }
            }
        }
        Ok(())
    }
}

/// An interrupt held back by LATE_IRQ injection.
pub(crate) struct LateIrq {
    pub due: Instant,
    pub vector: u32,
    pub partition: usize,
    pub generation: u64,
}

impl PartialEq for LateIrq {
    fn eq(&self, o: &Self) -> bool {
        self.due == o.due
    }
}
impl Eq for LateIrq {}
impl PartialOrd for LateIrq {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for LateIrq {
    // Earliest first out of the max-heap.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.due.cmp(&self.due)
    }
}

pub(crate) fn timer(shared: Arc<Shared>, rx: Receiver<LateIrq>) {
    shared.dma.thread_start();
    let mut heap = BinaryHeap::new();
    loop {
        let msg = match heap.peek() {
            Some(LateIrq { due, .. }) => {
                rx.recv_timeout(due.saturating_duration_since(Instant::now()))
            }
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match msg {
            Ok(m) => heap.push(m),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while heap.peek().is_some_and(|m| m.due <= Instant::now()) {
            let m = heap.pop().expect("peeked");
            let gen = shared.parts[m.partition].generation.load(Ordering::SeqCst);
            if gen == m.generation {
                shared.irq.notify(m.vector);
            }
        }
    }
    shared.dma.thread_stop();
}
