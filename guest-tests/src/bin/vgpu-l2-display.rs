//! vgpu-l2-display: the display check an L2 guest runs on its vGPU through
//! the DRM driver ("vgpu") and standard KMS: the connector's modes come
//! from the EDID the VMM set (`--expect-mode WxH` is the one it must
//! prefer), test frames are drawn into dumb buffers in VRAM by the engine
//! (FILL_RECT), shown by a mode set, changed by a page flip that completes
//! at a vblank, and finally a smaller mode from the EDID is set. After each
//! step it prints `VGPU-L2-SCREEN TAG` and waits for L1's answer (L1 takes
//! a screendump, L0 compares it with the frame, guest-tests/src/screens.rs).
//!
//! Usage: vgpu-l2-display --seed HEX --expect-mode WxH [--card /dev/dri/card0]
//! Prints a transcript of checks and "bench NAME VALUE" lines; exits 1 if
//! a check failed.

use std::io::BufRead;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use drm::buffer::{Buffer, DrmFourcc};
use drm::control::{
    connector, crtc, dumbbuffer::DumbBuffer, framebuffer, Device as _, Event, ModeTypeFlags,
    PageFlipFlags,
};
use drm::Device as _;
use vdevice::command::Command;
use vdevice::pci;
use vdevice::regs::{self, RegId};
use vgpu_guest_tests::guest_driver::Vgpu;
use vgpu_guest_tests::screens::{test_frame, Block};
use vgpu_guest_tests::uapi;
use vgpu_guest_tests::{bench, PciDev, Report};

struct Card(std::fs::File);

impl AsFd for Card {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
impl drm::Device for Card {}
impl drm::control::Device for Card {}

struct Args {
    seed: u32,
    expect: (u16, u16),
    card: String,
}

fn parse_args() -> Result<Args, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_env();
    let (mut seed, mut expect, mut card) = (None, None, "/dev/dri/card0".to_string());
    while let Some(a) = p.next().map_err(|e| e.to_string())? {
        match a {
            Long("seed") => {
                let v = p
                    .value()
                    .map_err(|e| e.to_string())?
                    .string()
                    .map_err(|_| "seed")?;
                seed = Some(
                    u32::from_str_radix(v.trim_start_matches("0x"), 16)
                        .map_err(|e| e.to_string())?,
                );
            }
            Long("expect-mode") => {
                let v = p
                    .value()
                    .map_err(|e| e.to_string())?
                    .string()
                    .map_err(|_| "mode")?;
                let (w, h) = v.split_once('x').ok_or("mode is WxH")?;
                expect = Some((
                    w.parse().map_err(|_| "width")?,
                    h.parse().map_err(|_| "height")?,
                ));
            }
            Long("card") => {
                card = p
                    .value()
                    .map_err(|e| e.to_string())?
                    .string()
                    .map_err(|_| "card")?
            }
            _ => return Err(a.unexpected().to_string()),
        }
    }
    Ok(Args {
        seed: seed.ok_or("--seed HEX")?,
        expect: expect.ok_or("--expect-mode WxH")?,
        card,
    })
}

/// What the connector's EDID (sysfs) says, in a few words.
fn sysfs_edid() -> String {
    let found = std::fs::read_dir("/sys/class/drm")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("edid"))
        .find_map(|p| std::fs::read(p).ok().filter(|b| !b.is_empty()));
    // And what the window itself holds (BAR0 through sysfs).
    let window = PciDev::find(pci::VENDOR_ID, pci::VGPU_DEVICE_ID)
        .and_then(|d| d.map_bar(0, false))
        .map(|b| {
            let r = |id| b.read(regs::window_offset(id, 0), 4);
            format!(
                "window DISP_STATUS {:#x}, DISP_EDID[0..2] {:#010x} {:#010x}",
                r(RegId::WDispStatus),
                b.read(regs::window_offset(RegId::WDispEdid, 0), 4),
                b.read(regs::window_offset(RegId::WDispEdid, 1), 4),
            )
        })
        .unwrap_or_else(|e| e);
    let sysfs = match found {
        Some(b) if b.len() >= 128 => format!(
            "EDID {} bytes, version {}.{}, features {:#04x}, first timing {}x{}",
            b.len(),
            b[18],
            b[19],
            b[24],
            u32::from(b[56]) | u32::from(b[58] >> 4) << 8,
            u32::from(b[59]) | u32::from(b[61] >> 4) << 8,
        ),
        Some(b) => format!("EDID {} bytes", b.len()),
        None => "no EDID in sysfs".into(),
    };
    format!("{sysfs}; {window}")
}

/// Ask L1 for a screendump of what the head shows now; its answer.
fn screen(tag: &str) -> String {
    println!("VGPU-L2-SCREEN {tag}");
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    line.trim().to_string()
}

/// A dumb buffer in VRAM, pinned there while we draw into it with the
/// engine (DRM_VGPU_GEM_VRAM), and its framebuffer.
struct Frame {
    buf: DumbBuffer,
    fb: framebuffer::Handle,
    offset: u64,
}

fn frame(card: &Card, w: u16, h: u16) -> Result<Frame, String> {
    let buf = card
        .create_dumb_buffer((w.into(), h.into()), DrmFourcc::Xrgb8888, 32)
        .map_err(|e| format!("CREATE_DUMB {w}x{h}: {e}"))?;
    let fb = card
        .add_framebuffer(&buf, 24, 32)
        .map_err(|e| format!("ADDFB: {e}"))?;
    let handle: u32 = buf.handle().into();
    let offset = uapi::gem_vram(card.0.as_raw_fd(), handle, true)
        .map_err(|e| format!("GEM_VRAM pin: {e:?}"))?;
    Ok(Frame { buf, fb, offset })
}

/// Draw `blocks` into `f` with FILL_RECT and wait for the fence.
fn draw(gpu: &Vgpu, f: &Frame, blocks: &[Block]) -> Result<(), String> {
    let pitch = f.buf.pitch();
    let cmds: Vec<Command> = blocks
        .iter()
        .map(|b| {
            let at = f.offset + u64::from(b.y) * u64::from(pitch) + u64::from(b.x) * 4;
            Command::fill_rect(at, b.w * 4, b.h, pitch, b.rgb)
        })
        .collect();
    for batch in cmds.chunks(uapi::MAX_SUBMIT) {
        gpu.run(0, batch)?;
    }
    Ok(())
}

/// Wait for the page-flip event of `crtc`; the time it took.
fn flip_event(card: &Card, crtc: crtc::Handle, since: Instant) -> Result<Duration, String> {
    let deadline = since + Duration::from_secs(5);
    while Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: card.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd that lives across the call.
        if unsafe { libc::poll(&mut pfd, 1, 1000) } <= 0 {
            continue;
        }
        for e in card
            .receive_events()
            .map_err(|e| format!("read events: {e}"))?
        {
            if let Event::PageFlip(p) = e {
                if p.crtc == crtc {
                    return Ok(since.elapsed());
                }
            }
        }
    }
    Err("no page-flip event in 5 s".into())
}

fn run(t: &mut Report, a: &Args) -> Result<(), String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&a.card)
        .map_err(|e| format!("open {}: {e}", a.card))?;
    let gpu = Vgpu {
        file: file.try_clone().map_err(|e| e.to_string())?,
    };
    let card = Card(file);
    card.acquire_master_lock()
        .map_err(|e| format!("DRM master: {e}"))?;
    let res = card
        .resource_handles()
        .map_err(|e| format!("GETRESOURCES: {e}"))?;
    let conn = res
        .connectors()
        .iter()
        .filter_map(|&c| card.get_connector(c, true).ok())
        .find(|c| c.state() == connector::State::Connected)
        .ok_or("no connected connector")?;
    let crtc = *res.crtcs().first().ok_or("no CRTC")?;
    let modes = conn.modes();
    let listed = modes
        .iter()
        .map(|m| {
            let (w, h) = m.size();
            let p = if m.mode_type().contains(ModeTypeFlags::PREFERRED) {
                "*"
            } else {
                ""
            };
            format!("{w}x{h}{p}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    let preferred = modes
        .iter()
        .find(|m| m.mode_type().contains(ModeTypeFlags::PREFERRED))
        .copied();
    let ok = preferred.is_some_and(|m| m.size() == a.expect);
    let detail = if ok {
        format!("{}x{} of {} modes", a.expect.0, a.expect.1, modes.len())
    } else {
        format!(
            "want {}x{}; modes: {listed}; {}",
            a.expect.0,
            a.expect.1,
            sysfs_edid()
        )
    };
    expect(
        t,
        "the connector prefers the mode the VMM's EDID names",
        ok,
        detail,
    );
    // Go on with the wanted mode if it is listed at all: the rest still
    // tells something.
    let preferred = preferred
        .filter(|m| m.size() == a.expect)
        .or_else(|| modes.iter().find(|m| m.size() == a.expect).copied())
        .ok_or_else(|| format!("no {}x{} mode", a.expect.0, a.expect.1))?;
    let (w, h) = preferred.size();

    // Frame 0: drawn by the engine, then a mode set shows it.
    let f0 = frame(&card, w, h)?;
    let f1 = frame(&card, w, h)?;
    draw(&gpu, &f0, &test_frame(0, a.seed, w.into(), h.into()))?;
    card.set_crtc(crtc, Some(f0.fb), (0, 0), &[conn.handle()], Some(preferred))
        .map_err(|e| format!("SETCRTC {w}x{h}: {e}"))?;
    let ans = screen("frame0");
    expect(t, "L1 took a screendump of frame 0", ans == "shot", &ans);

    // Frame 1 into the other buffer, then a page flip at the next vblank.
    draw(&gpu, &f1, &test_frame(1, a.seed, w.into(), h.into()))?;
    let t0 = Instant::now();
    card.page_flip(crtc, f1.fb, PageFlipFlags::EVENT, None)
        .map_err(|e| format!("PAGE_FLIP: {e}"))?;
    let took = flip_event(&card, crtc, t0)?;
    bench("l2_flip_to_event_us", took.as_micros());
    let ans = screen("flip1");
    expect(
        t,
        "L1 took a screendump after the flip",
        ans == "shot",
        &ans,
    );

    // Vblanks: the head's clock through DRM_IOCTL_WAIT_VBLANK.
    let t0 = Instant::now();
    let mut seq = Vec::new();
    for _ in 0..30 {
        let r = card
            .wait_vblank(
                drm::VblankWaitTarget::Relative(1),
                drm::VblankWaitFlags::empty(),
                0,
                0,
            )
            .map_err(|e| format!("WAIT_VBLANK: {e}"))?;
        seq.push(r.frame());
    }
    let hz = 30.0 / t0.elapsed().as_secs_f64();
    bench("l2_vblank_hz", format!("{hz:.1}"));
    // (A guest vCPU that runs late may see a wait end one vblank later:
    // each wait must end after a later vblank than the last, not the next.)
    let moved = seq.last().copied().unwrap_or(0).wrapping_sub(seq[0]);
    expect(
        t,
        "30 vblank waits each end on a later vblank than the one before",
        seq.windows(2).all(|p| p[1] > p[0]) && moved >= 29,
        format!(
            "{} waits, vblank {} to {}",
            seq.len(),
            seq[0],
            seq[seq.len() - 1]
        ),
    );

    // Another mode from the EDID: the plane the VMM shows changes size.
    let small = modes
        .iter()
        .filter(|m| m.size() != (w, h) && m.size().0 <= w && m.size().1 <= h)
        .max_by_key(|m| (m.size().0, m.size().1))
        .copied();
    match small {
        Some(m) => {
            let (sw, sh) = m.size();
            let f2 = frame(&card, sw, sh)?;
            draw(&gpu, &f2, &test_frame(2, a.seed, sw.into(), sh.into()))?;
            card.set_crtc(crtc, Some(f2.fb), (0, 0), &[conn.handle()], Some(m))
                .map_err(|e| format!("SETCRTC {sw}x{sh}: {e}"))?;
            let ans = screen(&format!("mode{sw}x{sh}"));
            expect(
                t,
                &format!("L1 took a screendump at {sw}x{sh}"),
                ans == "shot",
                &ans,
            );
            release(&card, f2);
        }
        None => expect(t, "the EDID offers a smaller mode", false, "none"),
    }
    // Back to what fbcon had: closing the DRM file restores it.
    release(&card, f0);
    release(&card, f1);
    Ok(())
}

/// A check whose outcome is already known, with its detail either way.
fn expect(t: &mut Report, name: &str, ok: bool, detail: impl std::fmt::Display) {
    let d = detail.to_string();
    t.check(name, || if ok { Ok(d) } else { Err(d) });
}

fn release(card: &Card, f: Frame) {
    let handle: u32 = f.buf.handle().into();
    let _ = uapi::gem_vram(card.0.as_raw_fd(), handle, false);
    let _ = card.destroy_framebuffer(f.fb);
    let _ = card.destroy_dumb_buffer(f.buf);
}

fn main() {
    let mut t = Report::default();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vgpu-l2-display: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&mut t, &args) {
        t.check("the display check ran to its end", || Err(e));
    }
    std::process::exit(t.finish());
}
