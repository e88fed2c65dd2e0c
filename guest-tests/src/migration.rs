//! VFIO migration v2 of a vGPU as a VMM drives it, for both frontends: the
//! stream's layout (host-driver/vfio/vgpu_mig.c), saving and loading, and
//! the checks `vgpu-mig-test` (mdev vGPUs) and `vgpu-vf-mig-test` (SR-IOV
//! VFs through the variant driver) share, on a context of a source A, a
//! destination B of its type and a vGPU C of another type.

use std::fs::File;
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use vdevice::command::{Command, Loc};
use vdevice::driver::{Driver, Hardware};
use vdevice::regs::{PartitionState, RegId};

use crate::vfio::{
    self, precopy_info, precopy_info_argsz, Container, DmaBuf, VfioVgpu, MIGRATION_P2P,
    MIGRATION_PRE_COPY, MIGRATION_STOP_COPY, MIG_PRE_COPY, MIG_PRE_COPY_P2P, MIG_RESUMING,
    MIG_RUNNING, MIG_STOP, MIG_STOP_COPY,
};
use crate::vgpu::{sys_u64, vram_u32, vram_u64, VfioDriver, TIMEOUT as T};
use crate::{bench, ensure};

pub const IOVA: u64 = 0x1000_0000;
pub const DMA_BYTES: usize = 1 << 20;
pub const SEM: u64 = IOVA + 0x1000;
pub const FENCE: u64 = IOVA + 0x2000;
/// The pre-copy check's fence and ring (in system memory: the CPU then
/// writes no VRAM while A is pre-copied).
pub const PRE_FENCE: u64 = IOVA + 0x3000;
pub const PRE_RING: u64 = IOVA + 0x40000;
pub const PAGE: u64 = 4096;
/// The stream (vgpu_mig.c, version 3): a header, then records of a
/// header (tag, crc, offset, length) and a payload; crc is 0 but in the end
/// record, where it is the CRC-32 of every byte before that record.
pub const HEADER: usize = 56;
pub const REC: usize = 24;
pub const REC_END: u32 = 1;
pub const REC_VRAM: u32 = 2;
pub const REC_CTX: u32 = 3;

/// One record of a stream: its tag, offset and length, and where its
/// payload starts in the bytes it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rec {
    pub tag: u32,
    pub offset: u64,
    pub len: u64,
    pub at: usize,
}

/// The records of `bytes` (a stream without its header, or a part of one
/// that starts at a record).
pub fn records(bytes: &[u8]) -> Result<Vec<Rec>, String> {
    let mut v = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let h = bytes
            .get(at..at + REC)
            .ok_or(format!("a record header cut at byte {at}"))?;
        let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().expect("8 bytes"));
        let r = Rec {
            tag: u32::from_le_bytes(h[0..4].try_into().expect("4 bytes")),
            offset: u64_at(8),
            len: u64_at(16),
            at: at + REC,
        };
        at = r.at + r.len as usize;
        ensure!(at <= bytes.len(), "record {r:?} cut");
        v.push(r);
    }
    Ok(v)
}

/// Read `f` until it has nothing more for now (ENOMSG in PRE_COPY) or ends.
pub fn read_available(f: &mut File) -> Result<Vec<u8>, String> {
    let mut v = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut chunk) {
            Ok(0) => return Ok(v),
            Ok(n) => v.extend_from_slice(&chunk[..n]),
            Err(e) if e.raw_os_error() == Some(libc::ENOMSG) => return Ok(v),
            Err(e) => return Err(format!("read the stream: {e}")),
        }
    }
}

/// The VRAM records' (offset, length) of `recs`.
pub fn vram_ranges(recs: &[Rec]) -> Vec<(u64, u64)> {
    recs.iter()
        .filter(|r| r.tag == REC_VRAM)
        .map(|r| (r.offset, r.len))
        .collect()
}

pub fn einval<T>(r: std::io::Result<T>) -> bool {
    matches!(r, Err(e) if e.raw_os_error() == Some(libc::EINVAL))
}

/// The checks' context: A the source, B a destination of A's type, C a
/// vGPU of another type, all in one container that maps `dma` at `IOVA`
/// (the destination sees the source's system memory, as after a VMM
/// migrated its RAM).
pub struct Mig {
    pub a: VfioDriver,
    pub b: VfioDriver,
    pub c: Option<VfioDriver>,
    pub dma: DmaBuf,
    /// A's stream from the migration check, for the refusal checks.
    pub stream: Vec<u8>,
    /// The benchmark names' prefix (`mig_l1`, `vf_mig_l1`).
    pub bench: &'static str,
    pub container: Container,
    pub groups: Vec<File>,
}

/// The driver of an opened vGPU, with ring 0 in its VRAM.
pub fn driver(hw: VfioVgpu) -> VfioDriver {
    let g = Driver::new(hw);
    g.ring_in_vram(0, 0, 0, 64);
    g
}

pub fn dev(g: &VfioDriver) -> &vfio::Device {
    &g.hw.dev
}

pub fn state(g: &VfioDriver, s: u32) -> Result<Option<File>, String> {
    dev(g)
        .set_mig_state(s)
        .map_err(|e| format!("to state {s}: {e}"))
}

/// `c`, a destination, is closed while it resumes: it takes the start of
/// its own stream, then goes (it is dropped here); the data fd outlives
/// the device, and a write to it after that must fail, harmlessly.
pub fn close_while_resuming(c: VfioDriver) -> Result<(), String> {
    state(&c, MIG_STOP)?;
    let mut save = state(&c, MIG_STOP_COPY)?.ok_or("no data fd")?;
    let mut start = vec![0u8; 8192];
    save.read_exact(&mut start)
        .map_err(|e| format!("read C's stream: {e}"))?;
    drop(save);
    state(&c, MIG_STOP)?;
    let mut f = state(&c, MIG_RESUMING)?.ok_or("no data fd")?;
    f.write_all(&start[..4096])
        .map_err(|e| format!("write C's stream: {e}"))?;
    drop(c);
    ensure!(
        f.write_all(&start[4096..]).is_err(),
        "a write after the device closed was taken"
    );
    Ok(())
}

/// A's stream: STOP, STOP_COPY, read it all, back to STOP.
pub fn save(g: &VfioDriver) -> Result<Vec<u8>, String> {
    state(g, MIG_STOP)?;
    let mut f = state(g, MIG_STOP_COPY)?.ok_or("STOP_COPY gave no data fd")?;
    let mut v = Vec::new();
    f.read_to_end(&mut v)
        .map_err(|e| format!("read the stream: {e}"))?;
    drop(f);
    state(g, MIG_STOP)?;
    Ok(v)
}

/// Feed `stream` to `g` in RESUMING and move to STOP; the error of the
/// first step that refused it.
pub fn load(g: &VfioDriver, stream: &[u8]) -> Result<(), String> {
    state(g, MIG_STOP)?;
    let mut f = state(g, MIG_RESUMING)?.ok_or("RESUMING gave no data fd")?;
    for chunk in stream.chunks(256 << 10) {
        f.write_all(chunk)
            .map_err(|e| format!("write the stream: {e}"))?;
    }
    drop(f);
    state(g, MIG_STOP).map(|_| ())
}

/// A refused load leaves `g` in RESUMING; a reset brings it back to
/// RUNNING with its rings off, which the driver sets up again.
pub fn recover(g: &VfioDriver) -> Result<(), String> {
    dev(g).reset().map_err(|e| format!("reset: {e}"))?;
    let st = dev(g).mig_state().map_err(|e| e.to_string())?;
    ensure!(st == MIG_RUNNING, "state {st} after reset");
    g.forget_rings(0);
    g.ring_in_vram(0, 0, 0, 64);
    fence_runs(g, 0x600d)
}

pub fn fence_runs(g: &VfioDriver, v: u64) -> Result<(), String> {
    g.submit(0, 0, &[Command::fence(Loc::Vram(0x8000), v, false)]);
    ensure!(
        g.wait_not_busy(0, T) == PartitionState::Idle && g.reg(RegId::WFenceValue, 0, 0) == v,
        "a FENCE did not run ({:?})",
        g.state(0)
    );
    Ok(())
}

pub fn offered(m: &mut Mig) -> Result<String, String> {
    let d = dev(&m.a);
    let flags = d
        .migration_flags()
        .map_err(|e| format!("MIGRATION feature: {e}"))?;
    let want = u64::from(MIGRATION_STOP_COPY | MIGRATION_P2P | MIGRATION_PRE_COPY);
    ensure!(flags & want == want, "flags {flags:#x}");
    let st = d.mig_state().map_err(|e| e.to_string())?;
    ensure!(st == MIG_RUNNING, "state {st} at open");
    let size = d
        .mig_data_size()
        .map_err(|e| format!("MIG_DATA_SIZE: {e}"))?;
    let vram = m.a.reg(RegId::WVramSize, 0, 0);
    ensure!(size > vram, "data size {size} for {vram} bytes of VRAM");
    Ok(format!("flags {flags:#x}, {size} bytes to send"))
}

pub fn cancelled(m: &mut Mig) -> Result<String, String> {
    fence_runs(&m.a, 1)?;
    state(&m.a, MIG_STOP)?;
    let mut f = state(&m.a, MIG_STOP_COPY)?.ok_or("no data fd")?;
    let mut part = vec![0u8; 4096];
    f.read_exact(&mut part).map_err(|e| format!("read: {e}"))?;
    drop(f);
    state(&m.a, MIG_STOP)?;
    state(&m.a, MIG_RUNNING)?;
    fence_runs(&m.a, 2)?;
    Ok(String::new())
}

pub fn migrates(m: &mut Mig) -> Result<String, String> {
    let (a, b) = (&m.a, &m.b);
    m.dma.write(SEM - IOVA, &0u64.to_le_bytes());
    m.dma.write(FENCE - IOVA, &0u64.to_le_bytes());
    let pattern: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    a.hw.vram_write(0x10000, &pattern);
    let before = a.reg(RegId::WStatCommands, 0, 0);
    let head = a.reg(RegId::WRingHead, 0, 0);
    a.submit(
        0,
        0,
        &[
            Command::sem_wait(Loc::Sys(SEM), 1),
            Command::fill(Loc::Vram(0x20000), 0x1000, 0xabcd_0123),
            Command::copy(Loc::Vram(0x30000), Loc::Vram(0x10000), 0x1000),
            Command::fence(Loc::Sys(FENCE), 77, false),
        ],
    );
    std::thread::sleep(Duration::from_millis(50));
    // The semaphore's page is translated on demand: A stops stalled on the
    // semaphore, not waiting for the RM (the same image every run, and the
    // same trace for make test-trace).
    let deadline = Instant::now() + T;
    while a.state(0) == PartitionState::XlateWait && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    ensure!(
        a.reg(RegId::WRingHead, 0, 0) == head && a.state(0) == PartitionState::Busy,
        "A did not wait on the semaphore ({:?})",
        a.state(0)
    );
    let t = Instant::now();
    let stream = save(a)?;
    let want = dev(a).mig_data_size().map_err(|e| e.to_string())?;
    ensure!(
        stream.len() as u64 == want,
        "{} bytes, MIG_DATA_SIZE said {want}",
        stream.len()
    );
    load(b, &stream)?;
    state(b, MIG_RUNNING)?;
    bench(
        &format!("{}_save_load_ms", m.bench),
        format!("{:.1}", t.elapsed().as_secs_f64() * 1e3),
    );
    bench(&format!("{}_stream_bytes", m.bench), stream.len());
    ensure!(
        b.reg(RegId::WRingTail, 0, 0) == (head + 4) % 64 && b.reg(RegId::WRingHead, 0, 0) == head,
        "B's ring 0 at HEAD {} TAIL {}",
        b.reg(RegId::WRingHead, 0, 0),
        b.reg(RegId::WRingTail, 0, 0)
    );
    m.dma.write(SEM - IOVA, &1u64.to_le_bytes());
    let deadline = Instant::now() + T;
    while sys_u64(b, FENCE) != 77 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    ensure!(
        b.wait_not_busy(0, T) == PartitionState::Idle,
        "B {:?}",
        b.state(0)
    );
    ensure!(sys_u64(b, FENCE) == 77, "B's FENCE did not land");
    ensure!(
        b.reg(RegId::WStatCommands, 0, 0) == before + 4,
        "B completed {} commands, A had {before} before",
        b.reg(RegId::WStatCommands, 0, 0)
    );
    ensure!(vram_u32(b, 0x20000) == 0xabcd_0123, "B's FILL");
    let mut got = vec![0u8; 4096];
    b.hw.vram_read(0x30000, &mut got);
    ensure!(got == pattern, "the VRAM A had did not reach B");
    // The source, stopped, ran none of it.
    ensure!(
        a.reg(RegId::WRingHead, 0, 0) == head && vram_u64(a, 0x20000) != 0xabcd_0123_abcd_0123,
        "A ran the work too"
    );
    m.stream = stream;
    recover(&m.a)?;
    recover(&m.b)?;
    Ok(format!("{} bytes", m.stream.len()))
}

/// A pre-copy while A's engine writes VRAM: the initial data, then
/// exactly the pages it wrote, then in STOP_COPY the last ones and the
/// context; B ends with A's VRAM byte for byte and runs A's queued work.
/// A and B are RUNNING again afterwards, whatever happened.
pub fn precopy_migrates(m: &mut Mig) -> Result<String, String> {
    let r = precopy_migration(m);
    if r.is_err() {
        let _ = recover(&m.a);
        let _ = recover(&m.b);
    }
    r
}

pub fn precopy_migration(m: &mut Mig) -> Result<String, String> {
    let (a, b) = (&m.a, &m.b);
    let vram = a.reg(RegId::WVramSize, 0, 0);
    m.dma.write(SEM - IOVA, &0u64.to_le_bytes());
    m.dma.write(PRE_FENCE - IOVA, &0u64.to_le_bytes());
    a.forget_rings(0);
    a.ring_in_sysmem(0, 0, PRE_RING, PRE_RING, 64);
    let pattern: Vec<u8> = (0..2 * PAGE as u32).map(|i| (i * 13 + 5) as u8).collect();
    a.hw.vram_write(0x10_0000, &pattern);

    let mut f = state(a, MIG_PRE_COPY)?.ok_or("PRE_COPY gave no data fd")?;
    let (init0, dirty0) = precopy_info(&f).map_err(|e| format!("PRECOPY_INFO: {e}"))?;
    let want = (HEADER + REC) as u64 + vram;
    ensure!(
        init0 == want && dirty0 == 0,
        "before reading: initial {init0} (want {want}), dirty {dirty0}"
    );
    let mut initial = vec![0u8; init0 as usize];
    f.read_exact(&mut initial)
        .map_err(|e| format!("read the initial data: {e}"))?;
    let (init1, dirty1) = precopy_info(&f).map_err(|e| format!("PRECOPY_INFO: {e}"))?;
    ensure!(
        init1 == 0 && dirty1 == 0,
        "after reading it: initial {init1}, dirty {dirty1}"
    );

    // The engine writes three pages in two runs while A runs in PRE_COPY.
    a.submit(
        0,
        0,
        &[
            Command::fill(Loc::Vram(0x20_0000), 2 * PAGE, 0x1234_5678),
            Command::copy(Loc::Vram(0x30_0000), Loc::Vram(0x10_0000), PAGE),
            Command::fence(Loc::Sys(PRE_FENCE), 1, false),
        ],
    );
    // The first command from the ring's page waits for its translation.
    ensure!(
        a.wait_settled(0, T) == PartitionState::Idle && sys_u64(a, PRE_FENCE) == 1,
        "A's writes did not run ({:?})",
        a.state(0)
    );
    let (init2, dirty2) = precopy_info(&f).map_err(|e| format!("PRECOPY_INFO: {e}"))?;
    let want = 2 * REC as u64 + 3 * PAGE;
    ensure!(
        init2 == 0 && dirty2 == want,
        "after the engine's writes: initial {init2}, dirty {dirty2} (want {want})"
    );
    // What the ioctl took from the device log comes with the next read.
    let dirty = read_available(&mut f)?;
    let got = vram_ranges(&records(&dirty)?);
    ensure!(
        got == [(0x20_0000, 2 * PAGE), (0x30_0000, PAGE)],
        "dirty records {got:x?}"
    );
    let after = precopy_info(&f).map_err(|e| format!("PRECOPY_INFO: {e}"))?;
    ensure!(after == (0, 0), "after the dirty pages: {after:?}");
    let mut one = [0u8; 1];
    let e = f.read(&mut one);
    ensure!(
        matches!(&e, Err(e) if e.raw_os_error() == Some(libc::ENOMSG)),
        "a read with nothing to send: {e:?}, want ENOMSG"
    );

    // One more page, then work queued behind a semaphore A stops in.
    let head = a.reg(RegId::WRingHead, 0, 0);
    let before = a.reg(RegId::WStatCommands, 0, 0);
    a.submit(
        0,
        0,
        &[
            Command::fill(Loc::Vram(0x40_0000), PAGE, 0xfeed_f00d),
            Command::sem_wait(Loc::Sys(SEM), 1),
            Command::fill(Loc::Vram(0x50_0000), PAGE, 0xabcd_0123),
            Command::fence(Loc::Sys(PRE_FENCE), 2, false),
        ],
    );
    let deadline = Instant::now() + T;
    while vram_u32(a, 0x40_0000) != 0xfeed_f00d && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(20));
    ensure!(
        vram_u32(a, 0x40_0000) == 0xfeed_f00d && a.reg(RegId::WRingHead, 0, 0) == (head + 1) % 64,
        "A did not stop at the semaphore (HEAD {})",
        a.reg(RegId::WRingHead, 0, 0)
    );
    let size = dev(a).mig_data_size().map_err(|e| e.to_string())?;

    // STOP_COPY goes on in the same fd: the last page, the context, the end.
    let t = Instant::now();
    let no_fd = state(a, MIG_STOP_COPY)?;
    ensure!(
        no_fd.is_none(),
        "PRE_COPY -> STOP_COPY gave a second data fd"
    );
    ensure!(
        einval(precopy_info(&f)),
        "PRECOPY_INFO in STOP_COPY was not refused"
    );
    let tail = read_available(&mut f)?;
    drop(f);
    state(a, MIG_STOP)?;
    let recs = records(&tail)?;
    let tags: Vec<u32> = recs.iter().map(|r| r.tag).collect();
    ensure!(
        tags == [REC_VRAM, REC_CTX, REC_END] && recs[0].offset == 0x40_0000 && recs[0].len == PAGE,
        "STOP_COPY records {recs:x?}"
    );
    ensure!(
        tail.len() as u64 == size,
        "STOP_COPY sent {} bytes, MIG_DATA_SIZE said {size}",
        tail.len()
    );
    bench(&format!("{}_precopy_stop_copy_bytes", m.bench), tail.len());
    bench(
        &format!("{}_precopy_stop_copy_vs_slice", m.bench),
        format!("{:.6}", tail.len() as f64 / vram as f64),
    );

    let stop_copy_bytes = tail.len();
    let stream = [initial, dirty, tail].concat();
    load(b, &stream)?;
    bench(
        &format!("{}_precopy_stop_copy_load_ms", m.bench),
        format!("{:.1}", t.elapsed().as_secs_f64() * 1e3),
    );
    let (mut va, mut vb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    for off in (0..vram).step_by(1 << 20) {
        a.hw.vram_read(off, &mut va);
        b.hw.vram_read(off, &mut vb);
        if let Some(i) = va.iter().zip(&vb).position(|(x, y)| x != y) {
            return Err(format!(
                "B's VRAM differs from A's at {:#x}",
                off + i as u64
            ));
        }
    }
    state(b, MIG_RUNNING)?;
    m.dma.write(SEM - IOVA, &1u64.to_le_bytes());
    let deadline = Instant::now() + T;
    while sys_u64(b, PRE_FENCE) != 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    ensure!(
        b.wait_settled(0, T) == PartitionState::Idle && sys_u64(b, PRE_FENCE) == 2,
        "B did not finish A's work ({:?})",
        b.state(0)
    );
    ensure!(
        vram_u32(b, 0x50_0000) == 0xabcd_0123 && vram_u32(a, 0x50_0000) != 0xabcd_0123,
        "the work after the semaphore ran on A, or not on B"
    );
    ensure!(
        b.reg(RegId::WStatCommands, 0, 0) == before + 4,
        "B completed {} commands, A had {before} before",
        b.reg(RegId::WStatCommands, 0, 0)
    );
    recover(&m.a)?;
    recover(&m.b)?;
    Ok(format!("{stop_copy_bytes} bytes in STOP_COPY"))
}

/// PRE_COPY_P2P, PRE_COPY, then back to RUNNING: the fd is dead, the
/// source never stopped.
pub fn precopy_cancelled(m: &mut Mig) -> Result<String, String> {
    let a = &m.a;
    fence_runs(a, 3)?;
    let mut f = state(a, MIG_PRE_COPY_P2P)?.ok_or("PRE_COPY_P2P gave no data fd")?;
    let mut part = vec![0u8; 4096];
    f.read_exact(&mut part).map_err(|e| format!("read: {e}"))?;
    ensure!(state(a, MIG_PRE_COPY)?.is_none(), "a second data fd");
    let (init, _) = precopy_info(&f).map_err(|e| format!("PRECOPY_INFO: {e}"))?;
    let want = (HEADER + REC) as u64 + a.reg(RegId::WVramSize, 0, 0) - 4096;
    ensure!(init == want, "initial {init} after 4096 bytes, want {want}");
    fence_runs(a, 4)?;
    state(a, MIG_RUNNING)?;
    ensure!(einval(precopy_info(&f)), "PRECOPY_INFO after the cancel");
    ensure!(f.read(&mut part).is_err(), "the cancelled fd still reads");
    fence_runs(a, 5)?;
    let st = dev(a).mig_state().map_err(|e| e.to_string())?;
    ensure!(st == MIG_RUNNING, "state {st}");
    Ok(String::new())
}

/// GET_PRECOPY_INFO outside PRE_COPY, or with a short argsz, is refused.
pub fn precopy_info_refused(m: &mut Mig) -> Result<String, String> {
    let a = &m.a;
    state(a, MIG_STOP)?;
    let f = state(a, MIG_STOP_COPY)?.ok_or("no data fd")?;
    let stop_copy = einval(precopy_info(&f));
    drop(f);
    state(a, MIG_RUNNING)?;
    ensure!(stop_copy, "PRECOPY_INFO on a STOP_COPY fd was not refused");
    let f = state(a, MIG_PRE_COPY)?.ok_or("no data fd")?;
    let short = einval(precopy_info_argsz(&f, 8));
    let ok = precopy_info(&f).is_ok();
    drop(f);
    state(a, MIG_RUNNING)?;
    ensure!(
        short && ok,
        "a short argsz was taken ({short}) or a right one refused"
    );
    fence_runs(a, 6).map(|_| String::new())
}

pub fn corrupted(m: &mut Mig) -> Result<String, String> {
    ensure!(!m.stream.is_empty(), "no stream from the migration check");
    let recs = records(&m.stream[HEADER..])?;
    let ctx = recs
        .iter()
        .find(|r| r.tag == REC_CTX)
        .ok_or("no context record")?;
    let end = m.stream.len() - REC;
    let crc = u32::from_le_bytes(m.stream[end + 4..end + 8].try_into().expect("4 bytes"));
    ensure!(
        crc == crc32fast::hash(&m.stream[..end]),
        "the end record's CRC 0x{crc:08x} is not the stream's"
    );
    let mut bad = m.stream.clone();
    bad[HEADER + ctx.at + 40] ^= 0x10;
    ensure!(load(&m.b, &bad).is_err(), "a corrupted context was taken");
    recover(&m.b)?;
    // One bit of VRAM: only the stream's CRC can tell.
    let vram = recs
        .iter()
        .find(|r| r.tag == REC_VRAM && r.len > 0)
        .ok_or("no VRAM record")?;
    let mut bad = m.stream.clone();
    bad[HEADER + vram.at + (vram.len / 2) as usize] ^= 0x01;
    ensure!(load(&m.b, &bad).is_err(), "a corrupted VRAM page was taken");
    recover(&m.b)?;
    let mut bad = m.stream.clone();
    bad[HEADER] = 0x7f;
    ensure!(load(&m.b, &bad).is_err(), "an unknown record was taken");
    recover(&m.b)?;
    let mut bad = m.stream.clone();
    bad[HEADER + 8..HEADER + 16].copy_from_slice(&u64::MAX.to_le_bytes());
    ensure!(
        load(&m.b, &bad).is_err(),
        "a VRAM record beyond the slice was taken"
    );
    recover(&m.b)?;
    let mut bad = m.stream.clone();
    bad[4] = 2;
    ensure!(load(&m.b, &bad).is_err(), "a version 2 stream was taken");
    recover(&m.b)?;
    ensure!(
        load(&m.b, &m.stream[..end]).is_err(),
        "a stream without its end was taken"
    );
    recover(&m.b)?;
    let cut = &m.stream[..m.stream.len() / 2];
    ensure!(load(&m.b, cut).is_err(), "a cut stream was taken");
    recover(&m.b)?;
    let mut bad = m.stream.clone();
    bad[0] ^= 0xff;
    ensure!(
        load(&m.b, &bad).is_err(),
        "a stream without its magic was taken"
    );
    recover(&m.b)?;
    Ok(String::new())
}

pub fn other_type(m: &mut Mig) -> Result<String, String> {
    let c = m.c.as_ref().ok_or("no vGPU C")?;
    let e = load(c, &m.stream)
        .err()
        .ok_or("C took a stream of another type")?;
    recover(c)?;
    Ok(e)
}

/// DMA logging reports exactly the pages of the range the vGPU wrote, once.
pub fn dma_logging(m: &mut Mig) -> Result<String, String> {
    let (a, d) = (&m.a, dev(&m.a));
    d.dma_logging_start(IOVA, DMA_BYTES as u64, PAGE)
        .map_err(|e| format!("DMA_LOGGING_START: {e}"))?;
    // Nothing written yet; CPU writes are not the device's to report.
    m.dma.write(0x30000, &[1u8; 64]);
    let none = d.dma_logging_report(IOVA, DMA_BYTES as u64, PAGE);
    a.submit(
        0,
        0,
        &[
            Command::fill(Loc::Sys(IOVA + 0x5000), 2 * PAGE, 0x5a5a_5a5a),
            Command::fence(Loc::Sys(IOVA + 0x9008), 3, false),
        ],
    );
    ensure!(
        a.wait_settled(0, T) == PartitionState::Idle,
        "A {:?}",
        a.state(0)
    );
    let got = d.dma_logging_report(IOVA, DMA_BYTES as u64, PAGE);
    let again = d.dma_logging_report(IOVA, DMA_BYTES as u64, PAGE);
    d.dma_logging_stop()
        .map_err(|e| format!("DMA_LOGGING_STOP: {e}"))?;
    let (none, got, again) = (
        none.map_err(|e| format!("REPORT: {e}"))?,
        got.map_err(|e| format!("REPORT: {e}"))?,
        again.map_err(|e| format!("REPORT: {e}"))?,
    );
    ensure!(none.is_empty(), "dirty before any device write: {none:?}");
    ensure!(got == [5, 6, 9], "reported pages {got:?}, want [5, 6, 9]");
    ensure!(again.is_empty(), "reported twice: {again:?}");
    Ok(format!("pages {got:?} of the range"))
}
