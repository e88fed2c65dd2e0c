//! Partition context images (SPEC 16): a stopped partition's whole window
//! state as bytes, for migration. SAVE writes an image of [`CTX_BYTES`]
//! into the device's context buffer; RESTORE parses one, refusing anything
//! that is not an image this device wrote (magic, version, length,
//! checksum, records, every value in range) before it touches the target.
//!
//! Layout (little-endian): a 16-byte header (magic, version, length, CRC32
//! of the bytes after the header), then records `tag u16, len u16,
//! payload`, each padded to 4 bytes, ended by tag 0; zeroes fill the rest.
//! Host settings (slice, translation, weight, injection) are not in the
//! image: they are the target host's. The slice size is, to refuse a
//! target whose slice differs.

#![deny(clippy::arithmetic_side_effects)]

use crate::command::{Command, Opcode, COMMAND_BYTES};
use crate::device::{InFlight, PartState, Ring, XlateWait};
use crate::display::{Display, Head};
use crate::regs::{
    CtxResult, DispMode, FaultCode, FaultStatus, PartIntr, DISP_BASE_ALIGN, MAX_RING_SIZE,
    RINGS_PER_PARTITION,
};
use std::time::{Duration, Instant};

/// "VCTX".
pub const CTX_MAGIC: u32 = 0x5854_4356;
/// Image format version: major in the high half (a different major is
/// refused; a newer minor of the same major may add records only).
pub const CTX_VERSION: u32 = 0x0001_0001;
/// Bytes of a context image (CTX_SIZE).
pub const CTX_BYTES: usize = 512;
const HEADER: usize = 16;
/// Payload of a Display record: two heads of 24 bytes, FLIP_PENDING, the
/// vblank count.
const DISPLAY_RECORD: usize = 60;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u16)]
enum Tag {
    End = 0,
    Slice = 1,
    Ring = 2,
    Exec = 3,
    XlateWait = 4,
    Intr = 5,
    Fault = 6,
    Fence = 7,
    Stats = 8,
    Misc = 9,
    /// The display head (minor 1; an image without it has the head off).
    Display = 10,
}

impl Tag {
    fn from_u16(v: u16) -> Option<Tag> {
        Some(match v {
            0 => Tag::End,
            1 => Tag::Slice,
            2 => Tag::Ring,
            3 => Tag::Exec,
            4 => Tag::XlateWait,
            5 => Tag::Intr,
            6 => Tag::Fault,
            7 => Tag::Fence,
            8 => Tag::Stats,
            9 => Tag::Misc,
            10 => Tag::Display,
            _ => return None,
        })
    }
}

/// The window state of a partition, as an image carries it.
#[derive(Clone, Debug)]
pub(crate) struct Context {
    pub vram_size: u64,
    pub rings: [Ring; RINGS_PER_PARTITION],
    pub sem_stalled: [bool; RINGS_PER_PARTITION],
    pub next_ring: usize,
    /// The command in flight: ring, the command if fetched, bytes done,
    /// CRC so far, ENGINE_DELAY time left.
    pub exec: Option<(usize, Option<Command>, u64, u32, u64)>,
    pub xlate_wait: Option<XlateWait>,
    pub hung: bool,
    pub intr_status: u32,
    pub intr_mask: u32,
    pub fault: FaultStatus,
    pub fault_addr: u64,
    pub fault_cmd: u32,
    pub fence_value: u64,
    pub stat_commands: u64,
    pub stat_bytes: u64,
    pub stat_busy_ns: u64,
    pub stat_faults: u32,
    pub access_errors: u32,
    pub scratch: u32,
    pub disp: Display,
}

impl Context {
    /// The window state of `st` (its partition stopped: nothing runs).
    pub fn capture(st: &PartState, now: Instant) -> Context {
        Context {
            vram_size: st.vram_size,
            rings: st.rings,
            sem_stalled: st.sem_stalled,
            next_ring: st.next_ring,
            exec: st.exec.map(|f| {
                let left = f
                    .due
                    .map_or(0, |d| d.saturating_duration_since(now).as_nanos());
                (
                    f.ring,
                    f.cmd,
                    f.done,
                    f.crc,
                    u64::try_from(left).unwrap_or(u64::MAX),
                )
            }),
            xlate_wait: st.xlate_wait,
            hung: st.hung,
            intr_status: st.intr_status,
            intr_mask: st.intr_mask,
            fault: st.fault,
            fault_addr: st.fault_addr,
            fault_cmd: st.fault_cmd,
            fence_value: st.fence_value,
            stat_commands: st.stat_commands,
            stat_bytes: st.stat_bytes,
            stat_busy_ns: st.stat_busy_ns,
            stat_faults: st.stat_faults,
            access_errors: st.access_errors,
            scratch: st.scratch,
            disp: st.disp,
        }
    }

    /// Put this state into `st`'s window; host settings stay.
    pub fn apply(&self, st: &mut PartState, now: Instant) {
        st.rings = self.rings;
        st.sem_stalled = self.sem_stalled;
        st.next_ring = self.next_ring;
        st.exec = self.exec.map(|(ring, cmd, done, crc, left)| InFlight {
            ring,
            cmd,
            done,
            crc,
            due: (left != 0).then(|| now.checked_add(Duration::from_nanos(left)).unwrap_or(now)),
        });
        st.xlate_wait = self.xlate_wait;
        st.hung = self.hung;
        st.intr_status = self.intr_status;
        st.intr_mask = self.intr_mask;
        st.fault = self.fault;
        st.fault_addr = self.fault_addr;
        st.fault_cmd = self.fault_cmd;
        st.fence_value = self.fence_value;
        st.stat_commands = self.stat_commands;
        st.stat_bytes = self.stat_bytes;
        st.stat_busy_ns = self.stat_busy_ns;
        st.stat_faults = self.stat_faults;
        st.access_errors = self.access_errors;
        st.scratch = self.scratch;
        st.disp = self.disp;
    }

    /// The image of this state.
    pub fn encode(&self) -> [u8; CTX_BYTES] {
        let mut w = Writer {
            buf: [0; CTX_BYTES],
            at: HEADER,
        };
        w.record(Tag::Slice, &self.vram_size.to_le_bytes());
        for (i, r) in self.rings.iter().enumerate() {
            let mut p = Vec::with_capacity(24);
            p.push(i as u8);
            p.push(u8::from(r.sysmem));
            p.push(u8::from(self.sem_stalled[i]));
            p.push(0);
            p.extend_from_slice(&r.size.to_le_bytes());
            p.extend_from_slice(&r.head.to_le_bytes());
            p.extend_from_slice(&r.tail.to_le_bytes());
            p.extend_from_slice(&r.base.to_le_bytes());
            w.record(Tag::Ring, &p);
        }
        if let Some((ring, cmd, done, crc, left)) = self.exec {
            let mut p = Vec::with_capacity(24 + COMMAND_BYTES);
            p.push(ring as u8);
            p.push(u8::from(cmd.is_some()));
            p.extend_from_slice(&[0, 0]);
            p.extend_from_slice(&crc.to_le_bytes());
            p.extend_from_slice(&done.to_le_bytes());
            p.extend_from_slice(&left.to_le_bytes());
            p.extend_from_slice(&cmd.map_or([0; COMMAND_BYTES], |c| c.encode()));
            w.record(Tag::Exec, &p);
        }
        if let Some(x) = self.xlate_wait {
            let mut p = x.addr.to_le_bytes().to_vec();
            p.push(x.ring as u8);
            p.push(u8::from(x.write));
            w.record(Tag::XlateWait, &p);
        }
        let mut p = self.intr_status.to_le_bytes().to_vec();
        p.extend_from_slice(&self.intr_mask.to_le_bytes());
        w.record(Tag::Intr, &p);
        let mut p = self.fault.into_bits().to_le_bytes().to_vec();
        p.extend_from_slice(&self.fault_cmd.to_le_bytes());
        p.extend_from_slice(&self.fault_addr.to_le_bytes());
        w.record(Tag::Fault, &p);
        w.record(Tag::Fence, &self.fence_value.to_le_bytes());
        let mut p = self.stat_commands.to_le_bytes().to_vec();
        p.extend_from_slice(&self.stat_bytes.to_le_bytes());
        p.extend_from_slice(&self.stat_busy_ns.to_le_bytes());
        p.extend_from_slice(&self.stat_faults.to_le_bytes());
        p.extend_from_slice(&self.access_errors.to_le_bytes());
        w.record(Tag::Stats, &p);
        let mut p = self.scratch.to_le_bytes().to_vec();
        p.push(self.next_ring as u8);
        p.push(u8::from(self.hung));
        w.record(Tag::Misc, &p);
        let d = &self.disp;
        let mut p = Vec::with_capacity(DISPLAY_RECORD);
        for h in [&d.pending, &d.active] {
            p.extend_from_slice(&[u8::from(h.enable), 0, 0, 0]);
            p.extend_from_slice(&h.format.to_le_bytes());
            p.extend_from_slice(&h.mode.into_bits().to_le_bytes());
            p.extend_from_slice(&h.stride.to_le_bytes());
            p.extend_from_slice(&h.base.to_le_bytes());
        }
        p.extend_from_slice(&[u8::from(d.flip_pending), 0, 0, 0]);
        p.extend_from_slice(&d.vblank_count.to_le_bytes());
        w.record(Tag::Display, &p);
        w.record(Tag::End, &[]);
        let mut buf = w.buf;
        buf[0..4].copy_from_slice(&CTX_MAGIC.to_le_bytes());
        buf[4..8].copy_from_slice(&CTX_VERSION.to_le_bytes());
        buf[8..12].copy_from_slice(&(CTX_BYTES as u32).to_le_bytes());
        let crc = crc32fast::hash(&buf[HEADER..]);
        buf[12..16].copy_from_slice(&crc.to_le_bytes());
        buf
    }

    /// Parse and check an image: the result names the first thing wrong.
    pub fn decode(buf: &[u8; CTX_BYTES]) -> Result<Context, CtxResult> {
        if le32(buf, 0) != CTX_MAGIC {
            return Err(CtxResult::BadFormat);
        }
        if le32(buf, 4) >> 16 != CTX_VERSION >> 16 {
            return Err(CtxResult::BadVersion);
        }
        if le32(buf, 8) as usize != CTX_BYTES {
            return Err(CtxResult::BadFormat);
        }
        if le32(buf, 12) != crc32fast::hash(&buf[HEADER..]) {
            return Err(CtxResult::BadChecksum);
        }
        let mut c = Context::empty();
        let mut seen = [false; 11];
        let mut rings_seen = [false; RINGS_PER_PARTITION];
        let mut at = HEADER;
        loop {
            let Some(head) = buf.get(at..at.wrapping_add(4)) else {
                return Err(CtxResult::BadFormat);
            };
            let tag = u16::from_le_bytes([head[0], head[1]]);
            let len = usize::from(u16::from_le_bytes([head[2], head[3]]));
            let start = at.wrapping_add(4);
            let Some(p) = buf.get(start..start.wrapping_add(len)) else {
                return Err(CtxResult::BadFormat);
            };
            at = start.wrapping_add(len.wrapping_add(3) & !3);
            let tag = Tag::from_u16(tag).ok_or(CtxResult::BadFormat)?;
            if tag == Tag::End {
                break;
            }
            let once = &mut seen[tag as usize];
            if *once && tag != Tag::Ring {
                return Err(CtxResult::BadFormat);
            }
            *once = true;
            c.record(tag, p, &mut rings_seen)?;
        }
        let required = [
            Tag::Slice,
            Tag::Ring,
            Tag::Intr,
            Tag::Fault,
            Tag::Fence,
            Tag::Stats,
            Tag::Misc,
        ];
        if required.iter().any(|t| !seen[*t as usize]) || rings_seen.contains(&false) {
            return Err(CtxResult::BadFormat);
        }
        c.check()?;
        Ok(c)
    }

    fn empty() -> Context {
        Context {
            vram_size: 0,
            rings: [Ring::default(); RINGS_PER_PARTITION],
            sem_stalled: [false; RINGS_PER_PARTITION],
            next_ring: 0,
            exec: None,
            xlate_wait: None,
            hung: false,
            intr_status: 0,
            intr_mask: 0,
            fault: FaultStatus::new(),
            fault_addr: 0,
            fault_cmd: 0,
            fence_value: 0,
            stat_commands: 0,
            stat_bytes: 0,
            stat_busy_ns: 0,
            stat_faults: 0,
            access_errors: 0,
            scratch: 0,
            disp: Display::default(),
        }
    }

    /// One record's payload into `self`; sizes checked, values later.
    fn record(
        &mut self,
        tag: Tag,
        p: &[u8],
        rings_seen: &mut [bool; RINGS_PER_PARTITION],
    ) -> Result<(), CtxResult> {
        let want = match tag {
            Tag::Slice | Tag::Fence => 8,
            Tag::Ring => 24,
            Tag::Exec => 24usize.wrapping_add(COMMAND_BYTES),
            Tag::XlateWait => 10,
            Tag::Intr => 8,
            Tag::Fault => 16,
            Tag::Stats => 32,
            Tag::Misc => 6,
            Tag::Display => DISPLAY_RECORD,
            Tag::End => 0,
        };
        if p.len() != want {
            return Err(CtxResult::BadFormat);
        }
        let bad = CtxResult::BadState;
        match tag {
            Tag::Slice => self.vram_size = le64(p, 0),
            Tag::Fence => self.fence_value = le64(p, 0),
            Tag::Ring => {
                let i = usize::from(p[0]);
                let seen = rings_seen.get_mut(i).ok_or(bad)?;
                if *seen {
                    return Err(CtxResult::BadFormat);
                }
                *seen = true;
                self.rings[i] = Ring {
                    sysmem: flag(p[1])?,
                    size: le32(p, 4),
                    head: le32(p, 8),
                    tail: le32(p, 12),
                    base: le64(p, 16),
                };
                self.sem_stalled[i] = flag(p[2])?;
            }
            Tag::Exec => {
                let ring = usize::from(p[0]);
                let cmd = if flag(p[1])? {
                    let raw: &[u8; COMMAND_BYTES] = p[24..].try_into().map_err(|_| bad)?;
                    Some(Command::decode(raw).map_err(|_| bad)?)
                } else {
                    None
                };
                self.exec = Some((ring, cmd, le64(p, 8), le32(p, 4), le64(p, 16)));
            }
            Tag::XlateWait => {
                self.xlate_wait = Some(XlateWait {
                    addr: le64(p, 0),
                    ring: usize::from(p[8]),
                    write: flag(p[9])?,
                })
            }
            Tag::Intr => {
                self.intr_status = le32(p, 0);
                self.intr_mask = le32(p, 4);
            }
            Tag::Fault => {
                self.fault = FaultStatus::from_bits(le32(p, 0));
                self.fault_cmd = le32(p, 4);
                self.fault_addr = le64(p, 8);
            }
            Tag::Stats => {
                self.stat_commands = le64(p, 0);
                self.stat_bytes = le64(p, 8);
                self.stat_busy_ns = le64(p, 16);
                self.stat_faults = le32(p, 24);
                self.access_errors = le32(p, 28);
            }
            Tag::Misc => {
                self.scratch = le32(p, 0);
                self.next_ring = usize::from(p[4]);
                self.hung = flag(p[5])?;
            }
            Tag::Display => {
                let head = |at: usize| -> Result<Head, CtxResult> {
                    Ok(Head {
                        enable: flag(p[at])?,
                        format: le32(p, at.wrapping_add(4)),
                        mode: DispMode::from_bits(le32(p, at.wrapping_add(8))),
                        stride: le32(p, at.wrapping_add(12)),
                        base: le64(p, at.wrapping_add(16)),
                    })
                };
                self.disp = Display {
                    pending: head(0)?,
                    active: head(24)?,
                    flip_pending: flag(p[48])?,
                    vblank_count: le64(p, 52),
                };
            }
            Tag::End => {}
        }
        Ok(())
    }

    /// Every value one the device itself could have saved.
    fn check(&self) -> Result<(), CtxResult> {
        let bad = Err(CtxResult::BadState);
        for r in &self.rings {
            let size_ok = r.size == 0 || (r.size.is_power_of_two() && r.size <= MAX_RING_SIZE);
            let pos_ok = if r.size == 0 {
                r.head == 0 && r.tail == 0 && r.base == 0
            } else {
                r.head < r.size && r.tail < r.size
            };
            if !size_ok || !pos_ok || !r.base.is_multiple_of(COMMAND_BYTES as u64) {
                return bad;
            }
        }
        if self.next_ring >= RINGS_PER_PARTITION {
            return bad;
        }
        if let Some((ring, cmd, done, _, _)) = self.exec {
            let Some(r) = self.rings.get(ring) else {
                return bad;
            };
            let work = cmd.map_or(0, |c| match c.opcode {
                Opcode::FillRect | Opcode::Blit => u64::from(c.rect.height),
                _ => c.len,
            });
            if r.size == 0 || r.head == r.tail || done > work {
                return bad;
            }
        }
        if let Some(x) = self.xlate_wait {
            if self.exec.is_none_or(|e| e.0 != x.ring) {
                return bad;
            }
        }
        let code = self.fault.code();
        if matches!(code, FaultCode::Unknown(_))
            || usize::from(self.fault.ring()) >= RINGS_PER_PARTITION
            || (code != FaultCode::None && self.xlate_wait.is_some())
        {
            return bad;
        }
        let causes = PartIntr::new()
            .with_fence(true)
            .with_fault(true)
            .with_idle(true)
            .with_vblank(true)
            .with_flip_done(true)
            .with_hotplug(true)
            .into_bits();
        if self.intr_status & !causes != 0 || self.intr_mask & !causes != 0 {
            return bad;
        }
        // The head: what the registers can hold, and an active state the
        // device accepted (the same checks as DISP_COMMIT).
        let d = &self.disp;
        let on = d.active.enable;
        if !d.pending.base.is_multiple_of(DISP_BASE_ALIGN)
            || (on && d.active.check(self.vram_size).is_err())
            || (!on && (d.active != Head::default() || d.flip_pending))
            || (d.flip_pending && (!d.pending.enable || d.pending.check(self.vram_size).is_err()))
        {
            return bad;
        }
        Ok(())
    }
}

struct Writer {
    buf: [u8; CTX_BYTES],
    at: usize,
}

impl Writer {
    fn record(&mut self, tag: Tag, p: &[u8]) {
        // Every record of one image fits CTX_BYTES (a test checks the
        // largest); a bug here must not write past the buffer.
        let end = self.at.saturating_add(4).saturating_add(p.len());
        if end > CTX_BYTES {
            return;
        }
        let at = self.at;
        self.buf[at..at.saturating_add(2)].copy_from_slice(&(tag as u16).to_le_bytes());
        self.buf[at.saturating_add(2)..at.saturating_add(4)]
            .copy_from_slice(&(p.len() as u16).to_le_bytes());
        self.buf[at.saturating_add(4)..end].copy_from_slice(p);
        self.at = end.saturating_add(3) & !3;
    }
}

fn flag(b: u8) -> Result<bool, CtxResult> {
    match b {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(CtxResult::BadState),
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at.saturating_add(4)) {
        w.copy_from_slice(s);
    }
    u32::from_le_bytes(w)
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(s) = b.get(at..at.saturating_add(8)) {
        w.copy_from_slice(s);
    }
    u64::from_le_bytes(w)
}
