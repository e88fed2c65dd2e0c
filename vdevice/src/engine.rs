//! Engines: worker threads that share partitions by weighted fair
//! scheduling (lowest weighted virtual time first, preempting after a
//! timeslice, inside a long command between its 1 MiB chunks), fetch
//! commands from rings, and execute them with every VRAM and system-memory
//! access checked against the partition's slice and translation. A command
//! taken from a ring stays in flight (`PartState::exec`, with its progress)
//! until its effects are applied, so preemption, invalidation and replayable
//! faults resume it where it stopped. Plus the timer thread for late
//! interrupts.

#![deny(clippy::arithmetic_side_effects)]

use crate::command::{Command, Loc, Opcode, Rect, COMMAND_BYTES};
use crate::device::{
    Delivery, FaultLogEntry, InFlight, Partition, Shared, XlateFaultEntry, XlateWait,
};
use crate::events::{EventKind, IrqCause, IrqFate};
use crate::regs::{DirtyKind, FaultCode, InjectKind, PartIntr, CHUNK_BYTES, RINGS_PER_PARTITION};
use crate::xlate::{self, Segment, XlateConfig, XlateError};
use crate::{Dma, DmaError, Function};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// The command in flight is held by ENGINE_DELAY until this time.
    Delayed(Instant),
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
    let advance = busy_ns
        .saturating_mul(VTIME_SCALE)
        .checked_div(u64::from(weight))
        .unwrap_or(u64::MAX);
    slot.vtime = slot.vtime.saturating_add(advance);
    let requeue = match end {
        SliceEnd::More => true,
        SliceEnd::Waiting => {
            slot.not_before = Instant::now().checked_add(SEM_POLL);
            true
        }
        SliceEnd::Delayed(due) => {
            slot.not_before = Some(due);
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
/// The ring's base and kind cannot change while its command is in flight
/// (SPEC 5), so a resumed command sees the same ring.
#[derive(Clone, Copy)]
struct Job {
    flight: InFlight,
    /// The ring slot of the command (its ring's HEAD while it is in flight).
    head: u32,
    ring_base: u64,
    ring_sysmem: bool,
    vram_base: u64,
    vram_size: u64,
    xlate: XlateConfig,
    replay: bool,
    inject: InjectKind,
    /// Taking the command again after a SEM_WAIT stall: no CMD_TAKEN event.
    quiet_take: bool,
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
    /// A reset or an invalidation wants the partition: progress is kept.
    Aborted,
    /// The timeslice ended inside the command: progress is kept.
    Preempted,
    /// ENGINE_DELAY holds the command (taken, in flight) until then.
    Delayed(Instant),
}

struct Done {
    bytes: u64,
    fence: Option<(u64, bool)>,
}

/// Runs partition `part` for one timeslice: picks a command (`next_job`),
/// executes it, applies the outcome (`apply`), until the slice ends.
/// Returns the engine time used, the weight to charge it at, and why the
/// slice ended.
fn run_slice(shared: &Shared, part: &Partition) -> (u64, u32, SliceEnd) {
    let start = Instant::now();
    let slice = Duration::from_micros(u64::from(
        shared.timeslice_us.load(Ordering::Relaxed).max(1),
    ));
    let deadline = start.checked_add(slice).unwrap_or(start);
    let mut busy_ns = 0u64;
    let mut weight = 1;
    let mut stalled = [false; RINGS_PER_PARTITION];
    loop {
        if part.abort.load(Ordering::SeqCst) {
            return (busy_ns, weight, SliceEnd::Aborted);
        }
        let job = match next_job(part, &stalled, &mut weight) {
            Ok(job) => job,
            Err(end) => return (busy_ns, weight, end),
        };
        let t0 = Instant::now();
        let mut exec = Exec {
            shared,
            part,
            job,
            flight: job.flight,
            injection_fired: false,
            deadline,
            chunks_run: 0,
            bounce: Vec::new(),
        };
        let result = exec.run();
        let dt = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        busy_ns = busy_ns.saturating_add(dt);
        let outcome = Outcome {
            flight: exec.flight,
            result,
            busy_ns: dt,
            injection_fired: exec.injection_fired,
        };
        if let Some(end) = apply(shared, part, &job, outcome, &mut stalled) {
            return (busy_ns, weight, end);
        }
        if Instant::now() >= deadline {
            return (busy_ns, weight, SliceEnd::More);
        }
    }
}

/// Picks the partition's next command, under its lock: the command in
/// flight if one was preempted, invalidated under or replayed (it goes on
/// where it stopped), else the next ring with work in round-robin order,
/// skipping rings stalled on a semaphore in this slice. `weight` is set to
/// the partition's current weight. Err: why the slice ends instead.
fn next_job(
    part: &Partition,
    stalled: &[bool; RINGS_PER_PARTITION],
    weight: &mut u32,
) -> Result<Job, SliceEnd> {
    let mut st = part.st.lock();
    *weight = st.weight;
    if !st.runnable() {
        return Err(SliceEnd::Idle);
    }
    let flight = match st.exec {
        Some(f) => f,
        None => {
            let first = st.next_ring;
            let ring = (0..RINGS_PER_PARTITION)
                .map(|i| first.wrapping_add(i) % RINGS_PER_PARTITION)
                .find(|&r| st.rings[r].has_work() && !stalled[r]);
            let Some(r) = ring else {
                return Err(SliceEnd::Waiting);
            };
            if st.inject == InjectKind::EngineHang {
                // The engine context wedges: nothing completes until reset.
                st.inject = InjectKind::None;
                st.hung = true;
                return Err(SliceEnd::Idle);
            }
            st.next_ring = r.wrapping_add(1) % RINGS_PER_PARTITION;
            let f = InFlight::new(r);
            st.exec = Some(f);
            f
        }
    };
    let ring = &st.rings[flight.ring];
    Ok(Job {
        flight,
        head: ring.head,
        ring_base: ring.base,
        ring_sysmem: ring.sysmem,
        vram_base: st.vram_base,
        vram_size: st.vram_size,
        xlate: st.xlate_config(),
        replay: st.ctrl.xlate_replay(),
        inject: st.inject,
        quiet_take: st.sem_stalled[flight.ring],
    })
}

/// What one run of a command left behind.
struct Outcome {
    /// The command and its progress as the engine left them.
    flight: InFlight,
    result: Result<Done, Stop>,
    busy_ns: u64,
    injection_fired: bool,
}

/// Applies a command's outcome to its partition: completion (HEAD moves,
/// statistics, fence, interrupts), a semaphore stall, progress kept for a
/// preempted or aborted command, a replayable translation wait, or a fault.
/// The outcome is always applied: a reset waits for the engine to let go of
/// the partition (quiesce) and then discards it. Interrupts are delivered
/// and the host's logs written after the partition's lock is dropped.
/// Some(end): the slice ends here.
fn apply(
    shared: &Shared,
    part: &Partition,
    job: &Job,
    out: Outcome,
    stalled: &mut [bool; RINGS_PER_PARTITION],
) -> Option<SliceEnd> {
    let ring_ix = out.flight.ring;
    let (flight, completed) = (out.flight, out.result.is_ok());
    let mut deliveries: [Option<Delivery>; 2] = [None, None];
    let mut fault_entry = None;
    let mut xlate_entry = None;
    let mut end = None;
    let (before, after) = {
        let mut st = part.st.lock();
        let before = shared.watch(&st);
        st.stat_busy_ns = st.stat_busy_ns.wrapping_add(out.busy_ns);
        if out.injection_fired && st.inject == job.inject {
            st.inject = InjectKind::None;
        }
        let vb = part.vector_base();
        match out.result {
            Ok(done) => {
                st.exec = None;
                st.sem_stalled[ring_ix] = false;
                let ring = &mut st.rings[ring_ix];
                // Reconfiguring the ring was refused while the command
                // ran, so its size is the one HEAD was taken from.
                ring.head = job.head.wrapping_add(1).checked_rem(ring.size).unwrap_or(0);
                st.stat_commands = st.stat_commands.wrapping_add(1);
                st.stat_bytes = st.stat_bytes.wrapping_add(done.bytes);
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
            Err(Stop::SemNotReady) => {
                st.exec = None;
                st.sem_stalled[ring_ix] = true;
                stalled[ring_ix] = true;
            }
            Err(Stop::Delayed(due)) => {
                st.exec = Some(out.flight);
                end = Some(SliceEnd::Delayed(due));
            }
            Err(Stop::Aborted) => {
                st.exec = Some(out.flight);
                end = Some(SliceEnd::Aborted);
            }
            Err(Stop::Preempted) => {
                st.exec = Some(out.flight);
                end = Some(SliceEnd::More);
            }
            Err(Stop::XlateMiss { addr, write }) if job.replay => {
                st.exec = Some(out.flight);
                st.xlate_wait = Some(XlateWait {
                    addr,
                    write,
                    ring: ring_ix,
                });
                xlate_entry = Some(XlateFaultEntry {
                    partition: part.index,
                    addr,
                    write,
                });
            }
            Err(Stop::XlateMiss { addr, write }) => {
                let code = FaultCode::SysmemUnmapped;
                st.sem_stalled[ring_ix] = false;
                deliveries[0] = st.set_fault(code, addr, ring_ix, write, vb);
                fault_entry = Some((code, addr, write));
            }
            Err(Stop::Fault { code, addr, write }) => {
                st.sem_stalled[ring_ix] = false;
                deliveries[0] = st.set_fault(code, addr, ring_ix, write, vb);
                fault_entry = Some((code, addr, write));
            }
        }
        (before, crate::device::Shared::after(before, &st))
    };
    if before.is_some() {
        announce(
            shared,
            part,
            job,
            &flight,
            completed,
            xlate_entry.as_ref(),
            fault_entry,
        );
        shared.state_changed(part.index, before, after);
    }
    // The host's fault log before the partition's fault interrupt: a
    // driver woken by that interrupt (or seeing FAULTED) and asking its
    // host finds the entry there.
    if let (true, Some((code, addr, write))) = (end.is_none(), fault_entry) {
        shared.log_fault(FaultLogEntry {
            partition: part.index,
            code,
            ring: ring_ix,
            write,
            addr,
        });
    }
    shared.deliver_all(part.index, &deliveries);
    if end.is_some() {
        return end;
    }
    if fault_entry.is_some() {
        return Some(SliceEnd::Idle);
    }
    if let Some(e) = xlate_entry {
        shared.push_xlate_fault(e);
        return Some(SliceEnd::Idle);
    }
    None
}

/// Events for a command's outcome (only called when someone listens).
fn announce(
    shared: &Shared,
    part: &Partition,
    job: &Job,
    flight: &InFlight,
    completed: bool,
    xlate: Option<&XlateFaultEntry>,
    fault: Option<(FaultCode, u64, bool)>,
) {
    let (partition, ring, index) = (part.index, flight.ring, job.head);
    let opcode = flight.cmd.map(|c| c.opcode);
    if let Some((code, addr, write)) = fault {
        shared.emit(|| EventKind::CmdFault {
            partition,
            ring,
            index,
            opcode,
            code,
            addr,
            write,
        });
    } else if let Some(e) = xlate {
        shared.emit(|| EventKind::XlateFault {
            partition,
            addr: e.addr,
            write: e.write,
        });
    } else if let (true, Some(opcode)) = (completed, opcode) {
        shared.emit(|| EventKind::CmdDone {
            partition,
            ring,
            index,
            opcode,
        });
    }
}

/// One command's execution context.
struct Exec<'a> {
    shared: &'a Shared,
    part: &'a Partition,
    job: Job,
    /// The command and its progress; written back to the partition when
    /// the command stops short of completion.
    flight: InFlight,
    injection_fired: bool,
    /// End of the timeslice: a long command yields between chunks after it.
    deadline: Instant,
    chunks_run: u32,
    /// Staging buffer for data that crosses between VRAM and system memory.
    bounce: Vec<u8>,
}

fn fault(code: FaultCode, addr: u64, write: bool) -> Stop {
    Stop::Fault { code, addr, write }
}

/// A range checked before the command moves any data.
#[derive(Clone, Copy)]
enum Place {
    /// Absolute VRAM offset of the range's start, inside the slice.
    Vram(u64),
    /// Partition system-memory address of the range's start; translated
    /// one chunk at a time.
    Sys(u64),
}

impl Exec<'_> {
    fn run(&mut self) -> Result<Done, Stop> {
        let cmd = match self.flight.cmd {
            Some(c) => c,
            None => {
                let c = self.fetch()?;
                self.flight.cmd = Some(c);
                let sh = self.shared;
                self.flight.due = sh
                    .command_delay()
                    .and_then(|d| Instant::now().checked_add(d));
                if !self.job.quiet_take {
                    sh.emit(|| EventKind::CmdTaken {
                        partition: self.part.index,
                        ring: self.flight.ring,
                        index: self.job.head,
                        opcode: c.opcode,
                    });
                }
                c
            }
        };
        if let Some(due) = self.flight.due.filter(|&d| Instant::now() < d) {
            return Err(Stop::Delayed(due));
        }
        self.execute(&cmd)
    }

    fn fetch(&mut self) -> Result<Command, Stop> {
        let j = self.job;
        // HEAD < RING_SIZE <= 65536: the product fits easily.
        let off = u64::from(self.job.head).wrapping_mul(COMMAND_BYTES as u64);
        let Some(cmd_addr) = j.ring_base.checked_add(off) else {
            return Err(if j.ring_sysmem {
                Stop::XlateMiss {
                    addr: j.ring_base,
                    write: false,
                }
            } else {
                fault(FaultCode::VramOutOfBounds, j.ring_base, false)
            });
        };
        let loc = Loc::new(j.ring_sysmem, cmd_addr);
        let mut raw = [0u8; COMMAND_BYTES];
        let p = self.place(loc, COMMAND_BYTES as u64, false)?;
        self.load(p, 0, &mut raw)?;
        Command::decode(&raw).map_err(|_| fault(FaultCode::BadCommand, cmd_addr, false))
    }

    /// Check a whole range before any data moves: a VRAM range must lie
    /// inside the slice; a system-memory range must not wrap.
    fn place(&self, loc: Loc, len: u64, write: bool) -> Result<Place, Stop> {
        match loc {
            Loc::Vram(off) => {
                let end = off.checked_add(len);
                let abs = self.job.vram_base.checked_add(off);
                match (end, abs) {
                    (Some(e), Some(abs)) if e <= self.job.vram_size => Ok(Place::Vram(abs)),
                    _ => Err(fault(FaultCode::VramOutOfBounds, off, write)),
                }
            }
            Loc::Sys(addr) => match addr.checked_add(len) {
                Some(_) => Ok(Place::Sys(addr)),
                None => Err(Stop::XlateMiss { addr, write }),
            },
        }
    }

    /// Translate `[addr, addr+len)` (at most one chunk) into bus segments.
    fn translate(&self, addr: u64, len: u64, write: bool) -> Result<Vec<Segment>, Stop> {
        let mut tlb = self.part.tlb.lock();
        match xlate::translate(
            &*self.shared.dma,
            &mut tlb,
            &self.job.xlate,
            addr,
            len,
            write,
        ) {
            Ok(segs) => Ok(segs),
            Err(XlateError::Unmapped { addr }) => Err(Stop::XlateMiss { addr, write }),
            Err(XlateError::ReadOnly { addr }) => Err(fault(FaultCode::SysmemReadOnly, addr, true)),
            Err(XlateError::Dma { .. }) => Err(fault(FaultCode::DmaError, addr, write)),
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

    /// Between chunks: stop for a reset or an invalidation, yield the
    /// engine when the timeslice is over (after at least one chunk, so a
    /// command always makes progress).
    fn yield_point(&self) -> Result<(), Stop> {
        if self.part.abort.load(Ordering::Relaxed) {
            return Err(Stop::Aborted);
        }
        if self.chunks_run > 0 && Instant::now() >= self.deadline {
            return Err(Stop::Preempted);
        }
        Ok(())
    }

    /// Run bytes `done..len` of the command's work in chunks of at most
    /// CHUNK_BYTES; `step(self, at, n)` does bytes `[at, at+n)` (all or
    /// nothing). Progress survives preemption, invalidation and faults.
    fn chunks(
        &mut self,
        len: u64,
        mut step: impl FnMut(&mut Self, u64, u64) -> Result<(), Stop>,
    ) -> Result<(), Stop> {
        while self.flight.done < len {
            self.yield_point()?;
            let at = self.flight.done;
            let n = len.wrapping_sub(at).min(CHUNK_BYTES);
            step(self, at, n)?;
            self.flight.done = at.wrapping_add(n);
            self.chunks_run = self.chunks_run.saturating_add(1);
        }
        Ok(())
    }

    /// The staging buffer, at least `n` (<= CHUNK_BYTES) bytes long.
    fn take_bounce(&mut self, n: u64) -> Vec<u8> {
        let mut b = std::mem::take(&mut self.bounce);
        let n = usize::try_from(n).unwrap_or(0);
        if b.len() < n {
            b.resize(n, 0);
        }
        b
    }

    /// Translate `len` bytes at partition address `addr` (at most one
    /// chunk) and run `f(dma, function, bus, range)` for each bus segment,
    /// `range` being the segment's bytes within the chunk.
    fn each_segment(
        &mut self,
        addr: u64,
        len: usize,
        write: bool,
        mut f: impl FnMut(&dyn Dma, Function, u64, std::ops::Range<usize>) -> Result<(), DmaError>,
    ) -> Result<(), Stop> {
        let segs = self.translate(addr, len as u64, write)?;
        if self.inject(InjectKind::DmaError) {
            return Err(fault(FaultCode::DmaError, addr, write));
        }
        // The partition's own function issues its DMA: in SR-IOV mode a
        // VF's requester ID, which the platform IOMMU translates (SPEC 15).
        let func = self.part.function;
        let mut off = 0usize;
        for s in segs {
            let n = usize::try_from(s.len).unwrap_or(usize::MAX);
            let end = off.saturating_add(n).min(len);
            f(&*self.shared.dma, func, s.bus, off..end)
                .map_err(|_| fault(FaultCode::DmaError, addr.wrapping_add(off as u64), write))?;
            off = end;
        }
        Ok(())
    }

    /// Read `buf.len()` bytes at `at` bytes into a checked range.
    fn load(&mut self, p: Place, at: u64, buf: &mut [u8]) -> Result<(), Stop> {
        match p {
            Place::Vram(abs) => {
                if self.inject(InjectKind::EccError) {
                    let off = abs.wrapping_sub(self.job.vram_base).wrapping_add(at);
                    return Err(fault(FaultCode::EccError, off, false));
                }
                let ok = abs
                    .checked_add(at)
                    .is_some_and(|a| self.shared.vram.read(a, buf));
                ok.then_some(())
                    .ok_or(fault(FaultCode::VramOutOfBounds, at, false))
            }
            Place::Sys(base) => {
                self.each_segment(base.wrapping_add(at), buf.len(), false, |dma, f, bus, r| {
                    dma.read(f, bus, &mut buf[r])
                })
            }
        }
    }

    /// Write `buf` at `at` bytes into a checked range.
    fn store(&mut self, p: Place, at: u64, buf: &[u8]) -> Result<(), Stop> {
        let r = match p {
            Place::Vram(abs) => {
                let ok = abs
                    .checked_add(at)
                    .is_some_and(|a| self.shared.vram.write(a, buf));
                ok.then_some(())
                    .ok_or(fault(FaultCode::VramOutOfBounds, at, true))
            }
            Place::Sys(base) => {
                self.each_segment(base.wrapping_add(at), buf.len(), true, |dma, f, bus, r| {
                    dma.write(f, bus, &buf[r])
                })
            }
        };
        // A bus error may come after some segments were written: logged.
        // Translation refusals come before any byte moves.
        let wrote = !matches!(
            r,
            Err(Stop::XlateMiss { .. })
                | Err(Stop::Fault {
                    code: FaultCode::SysmemReadOnly,
                    ..
                })
        );
        if wrote {
            self.written(p, at, buf.len() as u64);
        }
        r
    }

    /// The dirty logs (SPEC 16) learn that `len` bytes at `at` into `p`
    /// were written: a slice offset, or a partition system-memory address.
    fn written(&self, p: Place, at: u64, len: u64) {
        if !self.part.dirty_on.load(Ordering::Relaxed) {
            return;
        }
        let (kind, addr) = match p {
            Place::Vram(abs) => (
                DirtyKind::Vram,
                abs.wrapping_sub(self.job.vram_base).wrapping_add(at),
            ),
            Place::Sys(base) => (DirtyKind::Sysmem, base.wrapping_add(at)),
        };
        self.part.dirty.lock().mark(kind, addr, len);
    }

    fn execute(&mut self, cmd: &Command) -> Result<Done, Stop> {
        let done = |bytes| Ok(Done { bytes, fence: None });
        match cmd.opcode {
            Opcode::Nop => done(0),
            Opcode::Copy => {
                let (src, dst) = (cmd.src_loc(), cmd.dst_loc());
                let ps = self.place(src, cmd.len, false)?;
                let pd = self.place(dst, cmd.len, true)?;
                self.copy(ps, pd, cmd.len)?;
                done(cmd.len)
            }
            Opcode::Fill => {
                let pd = self.place(cmd.dst_loc(), cmd.len, true)?;
                // The decoder refused values above 32 bits.
                let pattern = u32::try_from(cmd.value).unwrap_or(0);
                match pd {
                    Place::Vram(abs) => self.chunks(cmd.len, |e, at, n| {
                        let ok = abs
                            .checked_add(at)
                            .is_some_and(|a| e.shared.vram.fill32(a, n, pattern));
                        e.written(pd, at, n);
                        ok.then_some(())
                            .ok_or(fault(FaultCode::VramOutOfBounds, at, true))
                    })?,
                    Place::Sys(_) => {
                        let mut b = self.take_bounce(cmd.len.min(CHUNK_BYTES));
                        for (d, s) in b.iter_mut().zip(pattern.to_le_bytes().iter().cycle()) {
                            *d = *s;
                        }
                        let r = self.chunks(cmd.len, |e, at, n| {
                            let n = usize::try_from(n).unwrap_or(0);
                            e.store(pd, at, &b[..n])
                        });
                        self.bounce = b;
                        r?;
                    }
                }
                done(cmd.len)
            }
            Opcode::Fence => {
                let pd = self.place(cmd.dst_loc(), 8, true)?;
                self.store(pd, 0, &cmd.value.to_le_bytes())?;
                Ok(Done {
                    bytes: 0,
                    fence: Some((cmd.value, cmd.flags.intr())),
                })
            }
            Opcode::SemWait => {
                let ps = self.place(cmd.src_loc(), 8, false)?;
                let mut b = [0u8; 8];
                self.load(ps, 0, &mut b)?;
                if u64::from_le_bytes(b) < cmd.value {
                    return Err(Stop::SemNotReady);
                }
                done(0)
            }
            Opcode::Timestamp => {
                let pd = self.place(cmd.dst_loc(), 8, true)?;
                let now = self.shared.now_ns();
                self.store(pd, 0, &now.to_le_bytes())?;
                done(0)
            }
            Opcode::Crc32 => {
                let ps = self.place(cmd.src_loc(), cmd.len, false)?;
                let pd = self.place(cmd.dst_loc(), 8, true)?;
                let mut b = self.take_bounce(cmd.len.min(CHUNK_BYTES));
                let r = self.chunks(cmd.len, |e, at, n| {
                    let buf = &mut b[..usize::try_from(n).unwrap_or(0)];
                    e.load(ps, at, buf)?;
                    let mut h = crc32fast::Hasher::new_with_initial(e.flight.crc);
                    h.update(buf);
                    e.flight.crc = h.finalize();
                    Ok(())
                });
                self.bounce = b;
                r?;
                let crc = u64::from(self.flight.crc);
                self.store(pd, 0, &crc.to_le_bytes())?;
                done(cmd.len)
            }
            Opcode::FillRect => {
                self.fill_rect(cmd)?;
                done(cmd.rect.bytes())
            }
            Opcode::Blit => {
                self.blit(cmd)?;
                done(cmd.rect.bytes())
            }
        }
    }

    /// Check a rectangle at VRAM offset `off` with rows `pitch` apart:
    /// every row inside the slice. Returns its absolute start.
    fn place_rect(&self, off: u64, r: Rect, pitch: u32, write: bool) -> Result<u64, Stop> {
        let span = r
            .span(pitch)
            .ok_or(fault(FaultCode::VramOutOfBounds, off, write))?;
        match self.place(Loc::Vram(off), span, write)? {
            Place::Vram(abs) => Ok(abs),
            Place::Sys(_) => Err(fault(FaultCode::VramOutOfBounds, off, write)),
        }
    }

    /// Run rows `done..height` of a rectangle command, as many rows a
    /// chunk as fit in CHUNK_BYTES (at least one); `step(self, row)` does
    /// one row. `backwards`: from the last row up. Progress (rows done)
    /// survives preemption and resets like a long command's bytes.
    fn rows(
        &mut self,
        r: Rect,
        backwards: bool,
        mut step: impl FnMut(&mut Self, u64) -> Result<(), Stop>,
    ) -> Result<(), Stop> {
        let height = u64::from(r.height);
        let per_chunk = CHUNK_BYTES
            .checked_div(u64::from(r.width))
            .unwrap_or(CHUNK_BYTES)
            .max(1);
        while self.flight.done < height {
            self.yield_point()?;
            let first = self.flight.done;
            let n = height.wrapping_sub(first).min(per_chunk);
            for i in 0..n {
                let i = first.wrapping_add(i);
                let row = if backwards {
                    height.wrapping_sub(1).wrapping_sub(i)
                } else {
                    i
                };
                step(self, row)?;
            }
            self.flight.done = first.wrapping_add(n);
            self.chunks_run = self.chunks_run.saturating_add(1);
        }
        Ok(())
    }

    fn fill_rect(&mut self, cmd: &Command) -> Result<(), Stop> {
        let r = cmd.rect;
        let abs = self.place_rect(cmd.dst, r, r.dst_pitch, true)?;
        // The decoder refused values above 32 bits.
        let pattern = u32::try_from(cmd.value).unwrap_or(0);
        let (width, pitch) = (u64::from(r.width), u64::from(r.dst_pitch));
        self.rows(r, false, |e, row| {
            // Inside the checked span: row * pitch + width <= span.
            let at = row.wrapping_mul(pitch);
            let ok = e.shared.vram.fill32(abs.wrapping_add(at), width, pattern);
            e.written(Place::Vram(abs), at, width);
            ok.then_some(())
                .ok_or(fault(FaultCode::VramOutOfBounds, at, true))
        })
    }

    fn blit(&mut self, cmd: &Command) -> Result<(), Stop> {
        let r = cmd.rect;
        let s = self.place_rect(cmd.src, r, r.src_pitch, false)?;
        let d = self.place_rect(cmd.dst, r, r.dst_pitch, true)?;
        if self.inject(InjectKind::EccError) {
            return Err(fault(FaultCode::EccError, cmd.src, false));
        }
        let width = u64::from(r.width);
        let (sp, dp) = (u64::from(r.src_pitch), u64::from(r.dst_pitch));
        // Rows go top to bottom, or bottom to top when the destination
        // starts after the source; each row is copied as memmove would.
        self.rows(r, d > s, |e, row| {
            let (from, to) = (row.wrapping_mul(sp), row.wrapping_mul(dp));
            let ok = e
                .shared
                .vram
                .copy_within(s.wrapping_add(from), d.wrapping_add(to), width);
            e.written(Place::Vram(d), to, width);
            ok.then_some(())
                .ok_or(fault(FaultCode::VramOutOfBounds, to, true))
        })
    }

    fn copy(&mut self, ps: Place, pd: Place, len: u64) -> Result<(), Stop> {
        if let (Place::Vram(s), Place::Vram(d)) = (ps, pd) {
            if self.inject(InjectKind::EccError) {
                let off = s.wrapping_sub(self.job.vram_base);
                return Err(fault(FaultCode::EccError, off, false));
            }
            // Chunks go front to back unless the ranges overlap that way;
            // both ranges lie inside the slice, so the sums cannot wrap.
            let backwards = d > s && d < s.wrapping_add(len);
            return self.chunks(len, |e, done, n| {
                let at = if backwards {
                    len.wrapping_sub(done).wrapping_sub(n)
                } else {
                    done
                };
                let ok = e
                    .shared
                    .vram
                    .copy_within(s.wrapping_add(at), d.wrapping_add(at), n);
                e.written(pd, at, n);
                ok.then_some(())
                    .ok_or(fault(FaultCode::VramOutOfBounds, at, true))
            });
        }
        // Through the staging buffer: the source chunk is read (and
        // translated) in full before any byte of the destination is written.
        let mut b = self.take_bounce(len.min(CHUNK_BYTES));
        let r = self.chunks(len, |e, at, n| {
            let buf = &mut b[..usize::try_from(n).unwrap_or(0)];
            e.load(ps, at, buf)?;
            e.store(pd, at, buf)
        });
        self.bounce = b;
        r
    }
}

/// An interrupt held back by LATE_IRQ injection.
pub(crate) struct LateIrq {
    pub due: Instant,
    pub vector: u32,
    pub cause: IrqCause,
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
                shared.emit(|| EventKind::Irq {
                    vector: m.vector,
                    partition: Some(m.partition),
                    cause: m.cause,
                    fate: IrqFate::Sent,
                });
                shared
                    .irq
                    .notify(shared.parts[m.partition].function, m.vector);
            }
        }
    }
    shared.dma.thread_stop();
}
