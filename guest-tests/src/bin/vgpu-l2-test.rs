//! vgpu-l2-test: the L2 tier. Runs as root in a nested L2 guest on one vGPU (vfio-pci on an
//! mdev partition) driven by vgpu_guest.ko (DRM driver "vgpu") through its render node and,
//! for the display head, Debian's modetest; next to a peer L2 guest.

use std::fs;
use std::hint::black_box;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Child, Command as Process, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use vdevice::command::{Command, Loc, Rect, COMMAND_BYTES};
use vdevice::pci;
use vdevice::regs::{
    self, DispStatus, FaultCode, FaultStatus, PartCaps, PartIntr, PartitionState, RegId, RingCtrl,
};
use vgpu_guest_tests::checks::{avg_ns, describe_fault, Window};
use vgpu_guest_tests::guest_driver::{
    drm_node, release_console, render_node, DmaBuf, Opened, Vgpu, WAIT_MS,
};
use vgpu_guest_tests::pattern::{
    all_words, pattern_word, random_bytes, scan_pattern, seed_of, write_pattern,
};
use vgpu_guest_tests::uapi::{self, irq_name, Info, IRQ_INTX, IRQ_MSI, IRQ_MSIX};
use vgpu_guest_tests::{bench, best_of, ensure, Bar, Check, PciDev, Report, PAGE};

const MIB: u64 = 1 << 20;
/// The orchestrator always answers ("alone" if the peer died); this only turns a
/// lost answer into a failure line before the guest's own timeout kills it.
const SYNC_TIMEOUT_MS: i32 = 600_000;
const DRIVER: &str = "vgpu_guest";
/// QEMU's `edu` teaching device; offset 0 of its BAR0 reads 0xRRrr00ed.
const EDU_VENDOR: u16 = 0x1234;
const EDU_DEVICE: u16 = 0x11e8;
/// Far beyond any directory the RM programs (4096 entries of 2 MiB).
const FAR_SYS: u64 = 1 << 40;

type Outcome = Result<String, String>;

// DMA buffer layout.
const B_SEM: usize = 0x0;
const B_MARK: usize = 0x8;
const B_TS_RELEASE: usize = 0x10;
const B_TS_WAKE: usize = 0x18;
const B_TS: usize = 0x100;
const B_CRC: usize = 0x200;
const B_IN: usize = 0x1000;
const B_OUT: usize = 0x11000;
const BLOCK: usize = 0x10000;
const B_NEED: usize = B_OUT + BLOCK;

// VRAM layout (offsets in the partition's slice).
const V_FILL: u64 = 0;
const V_COPY_DST: u64 = 0x10000;
const V_FROM_SYS: u64 = 0x20000;
const V_TO_SYS: u64 = 0x30000;
const V_COPY_SRC: u64 = 0x40000;
const V_FAULT_DST: u64 = 0x50000;
const V_MOVE: u64 = 0x60000;
const V_AFTER_RESET: u64 = 0x70000;
const V_MARK: u64 = 0x80000;
const V_RECT: u64 = 0x90000;
const V_BLIT: u64 = 0x98000;
const MIN_VRAM: u64 = MIB;

const DRM_FORMAT_XRGB8888: u64 = 0x3432_5258;
/// The DRM driver's name, for modetest -M.
const DRM_NAME: &str = "vgpu";
const MODETEST: &str = "/usr/bin/modetest";
/// What modetest says for a CRTC without a gamma LUT (not an error).
const MODETEST_NO_GAMMA: &str = "failed to set gamma: Function not implemented";
/// How long one modetest run may take before it is killed.
const MODETEST_TIMEOUT: Duration = Duration::from_secs(120);

// ---- arguments ------------------------------------------------------------------

struct Args {
    name: String,
    pattern: String,
    peer: Option<String>,
    sync: bool,
    /// The interrupt mode the driver must have chosen (`--irq`): MSI-X, or
    /// INTx when the guest boots with pci=nomsi.
    irq_mode: u32,
    /// Whether the VMM gave this guest QEMU's edu device for the register
    /// read figure (`--no-edu`: a VM defined through libvirt has none).
    edu: bool,
}

/// `--name N --pattern UUID [--peer UUID] [--sync] [--irq intx|msi|msix] [--no-edu]`.
fn parse_args(
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>,
) -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut a = Args {
        name: "L2".into(),
        pattern: "vgpu-l2-test".into(),
        peer: None,
        sync: false,
        irq_mode: IRQ_MSIX,
        edu: true,
    };
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next()? {
        match arg {
            Long("name") => a.name = p.value()?.string()?,
            Long("pattern") => a.pattern = p.value()?.string()?,
            Long("peer") => a.peer = Some(p.value()?.string()?),
            Long("sync") => a.sync = true,
            Long("no-edu") => a.edu = false,
            Long("irq") => {
                a.irq_mode = match p.value()?.string()?.as_str() {
                    "intx" => IRQ_INTX,
                    "msi" => IRQ_MSI,
                    "msix" => IRQ_MSIX,
                    other => return Err(format!("--irq {other}: want intx, msi or msix").into()),
                }
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(a)
}

// ---- sysfs, /proc and the console barrier ------------------------------------------

fn bar_start(dev: &PciDev, n: usize) -> Option<u64> {
    let s = fs::read_to_string(dev.path.join("resource")).ok()?;
    let first = s.lines().nth(n)?.split_whitespace().next()?;
    u64::from_str_radix(first.trim_start_matches("0x"), 16).ok()
}

/// A guest-physical page just past the highest RAM that no resource claims:
/// no memory behind it, so the host can neither translate nor pin it.
fn ram_hole() -> Result<u64, String> {
    let text = fs::read_to_string("/proc/iomem").map_err(|e| format!("/proc/iomem: {e}"))?;
    let mut ram_end = 0u64;
    let mut claimed = Vec::new();
    for line in text.lines() {
        let Some((range, name)) = line.split_once(" : ") else {
            continue;
        };
        let Some((a, b)) = range.trim().split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        if name.trim() == "System RAM" {
            ram_end = ram_end.max(b + 1);
        }
        if !name.trim().starts_with("PCI Bus") {
            claimed.push((a, b));
        }
    }
    ensure!(ram_end > 0, "no System RAM in /proc/iomem");
    let mut at = ram_end.next_multiple_of(2 * MIB);
    while claimed
        .iter()
        .any(|&(a, b)| a < at + PAGE as u64 && at <= b)
    {
        at += 2 * MIB;
        ensure!(at < FAR_SYS, "no unclaimed page below {FAR_SYS:#x}");
    }
    Ok(at)
}

/// Announce the barrier and read the orchestrator's one-line answer, with
/// echo off so the answer does not clutter the slow console.
fn barrier(name: &str) -> String {
    // SAFETY: termios is plain old data that tcgetattr fills in.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd 0 and a valid termios pointer.
    let tty = unsafe { libc::tcgetattr(0, &mut saved) } == 0;
    if tty {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: as above.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &quiet) };
    }
    println!("VGPU-L2-SYNC {name}");
    let _ = io::stdout().flush();
    let mut pfd = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut pfd, 1, SYNC_TIMEOUT_MS) };
    let reply = if ready == 1 {
        let mut line = String::new();
        match io::stdin().lock().read_line(&mut line) {
            Ok(0) => "<eof>".into(),
            Ok(_) => line.trim().to_string(),
            Err(e) => format!("<{e}>"),
        }
    } else {
        "<no answer>".into()
    };
    if tty {
        // SAFETY: restores the settings read above.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &saved) };
    }
    reply
}

// ---- phase 1: the PCI function and the driver's node -------------------------------

/// What the first checks find: the vGPU's PCI function and, once the driver
/// check has opened and mapped it, the driver's interface.
struct Found {
    dev: PciDev,
    /// The driver's render node, `renderDN`.
    node: String,
    opened: Option<Opened>,
}

/// Without the driver's node nothing else can run: a failure ends the test.
const FIND: &[Check<Found>] = &[
    Check {
        name: "identity: vGPU PCI function bound to vgpu_guest, class, subsystem, BAR0",
        run: pci_function,
    },
    Check {
        name: "driver: /dev/dri/{node} INFO, BAR mmaps, DMA buffer mmap (bad ones refused)",
        run: open_driver,
    },
];

/// The vGPU function is bound to the guest driver and shows SPEC's class,
/// revision, subsystem and a BAR0 of exactly one partition window.
fn pci_function(f: &mut Found) -> Outcome {
    let dev = &f.dev;
    let drv = fs::read_link(dev.path.join("driver")).map_err(|_| "no driver bound")?;
    let drv = drv.file_name().unwrap_or_default().to_string_lossy();
    ensure!(drv == DRIVER, "bound to {drv}");
    ensure!(
        dev.attr("class") == Some(pci::CLASS_CODE as u64),
        "class {:?}",
        dev.attr("class")
    );
    ensure!(
        dev.attr("revision") == Some(pci::REVISION as u64),
        "revision {:?}",
        dev.attr("revision")
    );
    ensure!(
        dev.attr("subsystem_vendor") == Some(pci::SUBSYSTEM_VENDOR_ID as u64)
            && dev.attr("subsystem_device") == Some(pci::SUBSYSTEM_ID as u64),
        "subsystem {:?}:{:?}",
        dev.attr("subsystem_vendor"),
        dev.attr("subsystem_device")
    );
    ensure!(
        dev.bar_size(0) == Some(regs::WINDOW_STRIDE),
        "BAR0 size {:?}, want one window",
        dev.bar_size(0)
    );
    Ok(dev
        .path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned())
}

/// The render node answers INFO with a usable VRAM size, DMA buffer and ring
/// size; the BARs map; the DMA buffer maps whole, and mmaps past its end or
/// at another offset are refused. Keeps what it opened for the later checks.
fn open_driver(f: &mut Found) -> Outcome {
    let o = Opened::open(&f.dev, &f.node)?;
    let (info, vram_size) = (&o.info, o.vram_size);
    ensure!(
        vram_size >= MIN_VRAM && vram_size <= o.vram.len as u64,
        "VRAM_SIZE {vram_size:#x}, BAR2 {:#x}",
        o.vram.len
    );
    ensure!(
        info.buf_size as usize >= B_NEED,
        "DMA buffer {:#x} < {B_NEED:#x}",
        info.buf_size
    );
    ensure!(
        info.ring_entries.is_power_of_two() && info.ring_entries > 2,
        "ring_entries {}",
        info.ring_entries
    );
    let len = info.buf_size as usize;
    ensure!(
        o.gpu.map(0, len + PAGE).is_err(),
        "mmap beyond buf_size accepted"
    );
    ensure!(
        o.gpu.map(PAGE as u64, PAGE).is_err(),
        "mmap at offset {PAGE:#x} accepted"
    );
    let detail = format!(
        "partition {}, {} MiB VRAM, {} KiB buffer at {:#x}",
        info.partition,
        vram_size >> 20,
        len >> 10,
        info.buf_bus_addr
    );
    f.opened = Some(o);
    Ok(detail)
}

// ---- phase 2: the checks on the opened vGPU -----------------------------------------

/// What the setup found and what checks hand on to later ones.
struct Ctx {
    args: Args,
    dev: PciDev,
    win: Window,
    vram: Bar,
    gpu: Vgpu,
    /// INFO as the driver check read it.
    info: Info,
    buf: DmaBuf,
    /// The partition's VRAM (window VRAM_SIZE).
    size: u64,
    /// The seed of our VRAM pattern (from --pattern), and of the peer's.
    seed: u64,
    peer_seed: Option<u64>,
    /// The fence of the COPY that faulted, for the reset check to see signalled.
    oob_fence: Option<u64>,
}

impl Ctx {
    fn new(args: Args, found: Found, o: Opened) -> Self {
        Self {
            seed: seed_of(&args.pattern),
            peer_seed: args.peer.as_deref().map(seed_of),
            args,
            dev: found.dev,
            win: o.win,
            vram: o.vram,
            gpu: o.gpu,
            info: o.info,
            buf: o.buf,
            size: o.vram_size,
            oob_fence: None,
        }
    }

    /// A check's name with what the setup found filled in.
    fn name(&self, template: &'static str) -> String {
        template.replace("{vram_mib}", &(self.size >> 20).to_string())
    }

    /// The word the fault check leaves in VRAM for the reset check to find.
    fn vram_mark(&self) -> u64 {
        pattern_word(self.seed ^ 0x4d, 0)
    }

    /// The value ring 0 releases ring 1's semaphore with.
    fn sem_value(&self) -> u64 {
        0x5e4a_0000_0000_0001 ^ (self.seed & 0xffff_0000)
    }

    /// SUBMIT, with the errno in words.
    fn submit(&self, ring: u32, cmds: &[Command]) -> Result<u64, String> {
        self.gpu
            .submit(ring, cmds)
            .map_err(|e| format!("SUBMIT: {e:?}"))
    }
}

const CHECKS: &[Check<Ctx>] = &[
    Check {
        name: "identity: window ID, VERSION, CAPS, OPCODES, VRAM_SIZE, INDEX agree with INFO",
        run: window_identity,
    },
    Check {
        name: "registers: read-only ignore writes, SCRATCH round-trips, bad width reads ones",
        run: window_registers,
    },
    Check {
        name: "display: the console on the vGPU's fbdev, released before the VRAM checks",
        run: fbdev_console,
    },
    Check {
        name: "VRAM: uuid pattern over all {vram_mib} MiB through BAR2 reads back",
        run: vram_pattern,
    },
    Check {
        name: "engine: FILL into VRAM, read back through BAR2",
        run: engine_fill,
    },
    Check {
        name: "engine: COPY VRAM->VRAM, and overlapping (memmove)",
        run: engine_copy_vram,
    },
    Check {
        name: "engine: COPY sysmem->VRAM and VRAM->sysmem (DMA into L2 memory)",
        run: engine_copy_sysmem,
    },
    Check {
        name: "engine: FILL_RECT and BLIT rectangles in VRAM, rows only",
        run: engine_rects,
    },
    Check {
        name: "engine: CRC32 of sysmem, VRAM and an odd range = crc32fast",
        run: engine_crc32,
    },
    Check {
        name: "engine: TIMESTAMP between two TIMESTAMP register reads, monotonic",
        run: engine_timestamp,
    },
    Check {
        name: "engine: fences count up per ring, WAIT_FENCE returns, interrupts counted",
        run: engine_fences,
    },
    Check {
        name: "semaphore: ring 1 waits for ring 0's release, ring 0 keeps running",
        run: semaphore,
    },
    Check {
        name: "fault: COPY past the VRAM slice -> EIO, VRAM_OOB at its start, nothing written",
        run: fault_vram_oob,
    },
    Check {
        name: "reset: RESET ioctl recovers; VRAM kept (SPEC 11), window state reset, FILL works",
        run: reset_recovers,
    },
    Check {
        name:
            "fault: unmapped system memory (past RAM; past any translation) -> EIO with its address",
        run: fault_unmapped_sysmem,
    },
    Check {
        name: "fault: malformed command -> EIO, BAD_COMMAND at its ring address",
        run: fault_bad_command,
    },
    Check {
        name: "display: a dumb buffer pinned with GEM_VRAM, cleared and filled by the engine",
        run: dumb_buffer_gem_vram,
    },
    Check {
        name: "display: modetest sets 1024x768 and draws its pattern; the head shows it",
        run: modetest_set_mode,
    },
    Check {
        name: "display: modetest page flips (-v) complete on FLIP_DONE",
        run: modetest_page_flips,
    },
];

/// With --sync: checked while the peer guest holds its own pattern.
const ISOLATION: Check<Ctx> = Check {
    name: "isolation: all VRAM holds only our pattern while the peer holds its own",
    run: isolation,
};
const ISOLATION_LOCAL: Check<Ctx> = Check {
    name: "isolation (no --sync, local only): all VRAM holds only our pattern",
    run: isolation,
};

const BENCHES: &[Check<Ctx>] = &[Check {
    name: "bench: VRAM BAR memcpy vs RAM memcpy",
    run: bench_vram_bar,
}];

/// Needs `-device edu` in the guest (not with --no-edu).
const BENCH_EDU: Check<Ctx> = Check {
    name: "bench: vGPU register read vs QEMU edu register read",
    run: bench_register_read,
};

/// The window's identity registers agree with SPEC, with INFO and with
/// sysfs; the driver chose the interrupt mode --irq asks for; the
/// partition is IDLE.
fn window_identity(c: &mut Ctx) -> Outcome {
    let size = c.size;
    let id = c.win.get(RegId::WId);
    ensure!(id == regs::WINDOW_MAGIC as u64, "ID {id:#x}");
    let v = regs::Version::from_bits(c.win.get(RegId::WVersion) as u32);
    ensure!(v.major() == regs::VERSION_MAJOR, "VERSION {v:?}");
    ensure!(
        size == c.info.vram_size,
        "VRAM_SIZE {size:#x} != INFO {:#x}",
        c.info.vram_size
    );
    // An mdev vGPU's BAR2 is its slice rounded up to a power of two; a
    // VF's is the VF VRAM BAR size, the same for every VF (SPEC 15).
    let bar2 = c.dev.bar_size(regs::VRAM_BAR as usize);
    ensure!(
        bar2.is_some_and(|b| b.is_power_of_two() && b >= size),
        "BAR2 size {bar2:?} for VRAM_SIZE {size:#x}"
    );
    let start = bar_start(&c.dev, regs::VRAM_BAR as usize);
    ensure!(
        start == Some(c.info.vram_bus_addr),
        "INFO.vram_bus_addr {:#x}, sysfs {start:x?}",
        c.info.vram_bus_addr
    );
    let index = c.win.get(RegId::WIndex);
    ensure!(
        index == c.info.partition as u64 && index < regs::MAX_PARTITIONS as u64,
        "INDEX {index} INFO.partition {}",
        c.info.partition
    );
    let caps = c.win.get(RegId::WCaps);
    ensure!(
        caps == c.info.caps as u64,
        "CAPS {caps:#x} INFO {:#x}",
        c.info.caps
    );
    // XLATE: the device translates (an mdev vGPU); a VF's system memory
    // is translated by the platform IOMMU instead (SPEC 15).
    let pc = PartCaps::from_bits(caps as u32);
    ensure!(
        pc.rings() as usize == regs::RINGS_PER_PARTITION
            && pc.vectors() as u32 == regs::VECTORS_PER_PARTITION,
        "CAPS {pc:?}: want 2 rings, 2 vectors"
    );
    let ops = c.win.get(RegId::WOpcodes);
    let want_ops = match regs::register(RegId::WOpcodes).reset {
        regs::Reset::Value(v) => v,
        regs::Reset::Config(_) => return Err("OPCODES has no fixed value".into()),
    };
    ensure!(ops == want_ops, "OPCODES {ops:#x}, want {want_ops:#x}");
    let want_irq = c.args.irq_mode;
    ensure!(
        c.info.irq_mode == want_irq,
        "irq_mode {}, want {}",
        irq_name(c.info.irq_mode),
        irq_name(want_irq)
    );
    let st = c.win.state();
    ensure!(st == PartitionState::Idle, "STATUS {}", st);
    Ok(format!(
        "partition {index}, CAPS {caps:#x}, {}",
        irq_name(c.info.irq_mode)
    ))
}

/// Writes to the read-only registers change nothing and are counted;
/// SCRATCH round-trips; a 1-byte read gives all ones and is counted; the
/// driver enabled its interrupt causes and put both rings in system memory.
fn window_registers(c: &mut Ctx) -> Outcome {
    let errs = c.win.get(RegId::WAccessErrors);
    let ro = [
        RegId::WId,
        RegId::WVersion,
        RegId::WCaps,
        RegId::WOpcodes,
        RegId::WVramSize,
        RegId::WIndex,
    ];
    let before: Vec<u64> = ro.iter().map(|&id| c.win.get(id)).collect();
    for (&id, &v) in ro.iter().zip(&before) {
        c.win.set(id, !v);
    }
    let after: Vec<u64> = ro.iter().map(|&id| c.win.get(id)).collect();
    ensure!(before == after, "{before:x?} became {after:x?}");
    let errs2 = c.win.get(RegId::WAccessErrors);
    ensure!(
        errs2 == errs + ro.len() as u64,
        "ACCESS_ERRORS {errs} -> {errs2}, want +{}",
        ro.len()
    );
    let saved = c.win.get(RegId::WScratch);
    for v in [0x5ca1_ab1e, 0xa35e_54e1, 0] {
        c.win.set(RegId::WScratch, v);
        let got = c.win.get(RegId::WScratch);
        ensure!(got == v, "SCRATCH wrote {v:#x} read {got:#x}");
    }
    let byte = c.win.0.read(regs::window_offset(RegId::WScratch, 0), 1);
    c.win.set(RegId::WScratch, saved);
    ensure!(byte == 0xff, "1-byte read {byte:#x}, want 0xff");
    let errs3 = c.win.get(RegId::WAccessErrors);
    ensure!(
        errs3 == errs2 + 1,
        "ACCESS_ERRORS {errs2} -> {errs3} on a bad width"
    );
    let mask = PartIntr::from_bits(c.win.get(RegId::WIntrMask) as u32);
    ensure!(
        mask.fence() && mask.fault(),
        "INTR_MASK {mask:?}: driver's causes not enabled"
    );
    for n in 0..regs::RINGS_PER_PARTITION {
        let sz = c.win.at(RegId::WRingSize, n);
        let sys = RingCtrl::from_bits(c.win.at(RegId::WRingCtrl, n) as u32).sysmem();
        ensure!(
            sz == c.info.ring_entries as u64 && sys,
            "ring {n}: size {sz} sysmem {sys}"
        );
    }
    Ok(String::new())
}

/// Our pattern written over all of the slice through BAR2 reads back.
fn vram_pattern(c: &mut Ctx) -> Outcome {
    let t = Instant::now();
    write_pattern(&c.vram, c.size, c.seed);
    let w = t.elapsed().as_secs_f64();
    let s = scan_pattern(&c.vram, c.size, c.seed, None);
    ensure!(
        s.bad == 0,
        "{} words differ, first at {:#x}",
        s.bad,
        s.first_bad.unwrap_or(0)
    );
    Ok(format!("written at {:.0} MB/s", c.size as f64 / w / 1e6))
}

/// A FILL lands in VRAM, and not past its end.
fn engine_fill(c: &mut Ctx) -> Outcome {
    let v = 0x5a00_0000 | (c.seed as u32 & 0x00ff_ffff);
    let sentinel = !pattern_word(c.seed, 1);
    c.vram.write(V_FILL + BLOCK as u64, sentinel, 8);
    c.vram.write(V_FILL, 0, 8);
    c.gpu
        .run(0, &[Command::fill(Loc::Vram(V_FILL), BLOCK as u64, v)])?;
    let mut data = vec![0u8; BLOCK];
    c.vram.copy_out(V_FILL, &mut data);
    ensure!(all_words(&data, v), "VRAM does not hold {v:#x}");
    ensure!(
        c.vram.read(V_FILL + BLOCK as u64, 8) == sentinel,
        "FILL wrote past its end"
    );
    Ok(String::new())
}

/// COPY within VRAM moves the data, and overlapping ranges copy like memmove.
fn engine_copy_vram(c: &mut Ctx) -> Outcome {
    let data = random_bytes(c.seed ^ 0xc0, BLOCK);
    c.vram.copy_in(V_COPY_SRC, &data);
    c.vram.copy_in(V_COPY_DST, &[0u8; BLOCK]);
    let moved = random_bytes(c.seed ^ 0x3e, 0x2000);
    c.vram.copy_in(V_MOVE, &moved);
    c.gpu.run(
        0,
        &[
            Command::copy(Loc::Vram(V_COPY_DST), Loc::Vram(V_COPY_SRC), BLOCK as u64),
            Command::copy(Loc::Vram(V_MOVE + 0x100), Loc::Vram(V_MOVE), 0x1000),
        ],
    )?;
    let mut got = vec![0u8; BLOCK];
    c.vram.copy_out(V_COPY_DST, &mut got);
    ensure!(got == data, "copy differs");
    let mut want = moved.clone();
    want.copy_within(0..0x1000, 0x100);
    let mut got = vec![0u8; 0x2000];
    c.vram.copy_out(V_MOVE, &mut got);
    ensure!(got == want, "overlapping copy is not a memmove");
    Ok(String::new())
}

/// COPY moves data between this guest's memory (the DMA buffer) and VRAM,
/// both ways, on ring 1.
fn engine_copy_sysmem(c: &mut Ctx) -> Outcome {
    let data = random_bytes(c.seed ^ 0x5e, BLOCK);
    c.buf.write(B_IN, &data);
    c.buf.write(B_OUT, &[0u8; BLOCK]);
    c.vram.copy_in(V_FROM_SYS, &[0u8; BLOCK]);
    let v = 0xd000_0000 | ((c.seed as u32) >> 8);
    c.gpu.run(
        1,
        &[
            Command::copy(
                Loc::Vram(V_FROM_SYS),
                Loc::Sys(c.buf.bus(B_IN)),
                BLOCK as u64,
            ),
            Command::fill(Loc::Vram(V_TO_SYS), BLOCK as u64, v),
            Command::copy(
                Loc::Sys(c.buf.bus(B_OUT)),
                Loc::Vram(V_TO_SYS),
                BLOCK as u64,
            ),
        ],
    )?;
    let mut got = vec![0u8; BLOCK];
    c.vram.copy_out(V_FROM_SYS, &mut got);
    ensure!(got == data, "VRAM after sysmem->VRAM differs");
    c.buf.read(B_OUT, &mut got);
    ensure!(
        all_words(&got, v),
        "DMA buffer after VRAM->sysmem lacks {v:#x}"
    );
    Ok(String::new())
}

/// CRC32 of system memory, of VRAM and of an odd, unaligned range equal
/// crc32fast's.
fn engine_crc32(c: &mut Ctx) -> Outcome {
    let data = random_bytes(c.seed ^ 0xc3, BLOCK);
    c.buf.write(B_IN, &data);
    c.vram.copy_in(V_FROM_SYS, &data);
    for i in 0..3 {
        c.buf.put(B_CRC + 8 * i, u64::MAX);
    }
    let odd = 4093u64;
    let crc_at = |i: usize| Loc::Sys(c.buf.bus(B_CRC + 8 * i));
    c.gpu.run(
        0,
        &[
            Command::crc32(crc_at(0), Loc::Sys(c.buf.bus(B_IN)), BLOCK as u64),
            Command::crc32(crc_at(1), Loc::Vram(V_FROM_SYS), BLOCK as u64),
            Command::crc32(crc_at(2), Loc::Sys(c.buf.bus(B_IN + 1)), odd),
        ],
    )?;
    let want = crc32fast::hash(&data) as u64;
    let want_odd = crc32fast::hash(&data[1..1 + odd as usize]) as u64;
    let got = [
        c.buf.get(B_CRC),
        c.buf.get(B_CRC + 8),
        c.buf.get(B_CRC + 16),
    ];
    ensure!(
        got == [want, want, want_odd],
        "got {got:x?}, want [{want:#x}, {want:#x}, {want_odd:#x}]"
    );
    Ok(format!("{want:#010x}"))
}

/// Two TIMESTAMP commands land, in order, between two reads of the
/// window's TIMESTAMP register.
fn engine_timestamp(c: &mut Ctx) -> Outcome {
    c.buf.put(B_TS, 0);
    c.buf.put(B_TS + 8, 0);
    let before = c.win.get(RegId::WTimestamp);
    c.gpu.run(
        0,
        &[
            Command::timestamp(Loc::Sys(c.buf.bus(B_TS))),
            Command::nop(),
            Command::timestamp(Loc::Sys(c.buf.bus(B_TS + 8))),
        ],
    )?;
    let after = c.win.get(RegId::WTimestamp);
    let (t1, t2) = (c.buf.get(B_TS), c.buf.get(B_TS + 8));
    ensure!(
        before < after && before <= t1 && t1 <= t2 && t2 <= after,
        "register {before} .. {after}, commands {t1}, {t2}"
    );
    Ok(format!("{} ns between", t2 - t1))
}

/// Each ring's fences count up by one per SUBMIT and WAIT_FENCE returns for
/// each; an unsubmitted fence is EINVAL; both rings' commands ran and
/// engine interrupts arrived.
fn engine_fences(c: &mut Ctx) -> Outcome {
    let info0 = c.gpu.info()?;
    let cmds0 = c.win.get(RegId::WStatCommands);
    let mut fences = [Vec::new(), Vec::new()];
    for i in 0..8 {
        let ring = i % 2;
        let f = c.submit(ring as u32, &[Command::nop()])?;
        fences[ring].push(f);
    }
    for (ring, fs) in fences.iter().enumerate() {
        ensure!(
            fs.windows(2).all(|w| w[1] == w[0] + 1),
            "ring {ring} fences {fs:?}"
        );
        for &f in fs {
            c.gpu
                .wait(ring as u32, f, WAIT_MS)
                .map_err(|e| format!("fence {f} ring {ring}: {e}"))?;
        }
    }
    let last0 = *fences[0].last().expect("4 fences");
    match c.gpu.wait(0, last0 + 1, 0) {
        Err(e) if e.errno == Errno::EINVAL => {}
        other => return Err(format!("WAIT_FENCE on an unsubmitted fence: {other:?}")),
    }
    // Both rings' fence commands ran; each submission is a NOP plus the driver's FENCE.
    let cmds = c.win.get(RegId::WStatCommands) - cmds0;
    ensure!(cmds == 16, "STAT_COMMANDS +{cmds}, want +16");
    let fv = c.win.get(RegId::WFenceValue);
    let last1 = *fences[1].last().expect("4 fences");
    ensure!(
        fv == last0 || fv == last1,
        "FENCE_VALUE {fv}, last fences {last0}/{last1}"
    );
    let info = c.gpu.info()?;
    ensure!(
        info.engine_irqs > info0.engine_irqs,
        "engine_irqs stayed {}",
        info.engine_irqs
    );
    Ok(format!(
        "ring 0 at {last0}, ring 1 at {last1}, {} engine irqs",
        info.engine_irqs - info0.engine_irqs
    ))
}

/// Ring 1 stalls at a SEM_WAIT while ring 0 keeps running, and wakes only
/// after ring 0's FENCE releases it. Releases the semaphore afterwards in
/// any case: a failure must not leave ring 1 stalled for later checks.
fn semaphore(c: &mut Ctx) -> Outcome {
    let res = semaphore_release(c);
    c.buf.put(B_SEM, c.sem_value());
    res
}

fn semaphore_release(c: &Ctx) -> Outcome {
    let value = c.sem_value();
    let mark = 0x6d61_726b;
    for off in [B_SEM, B_MARK, B_TS_RELEASE, B_TS_WAKE] {
        c.buf.put(off, 0);
    }
    let f1 = c
        .gpu
        .submit(
            1,
            &[
                Command::sem_wait(Loc::Sys(c.buf.bus(B_SEM)), value),
                Command::timestamp(Loc::Sys(c.buf.bus(B_TS_WAKE))),
                Command::fill(Loc::Sys(c.buf.bus(B_MARK)), 8, mark),
            ],
        )
        .map_err(|e| format!("SUBMIT ring 1: {e:?}"))?;
    std::thread::sleep(Duration::from_millis(50));
    match c.gpu.wait(1, f1, 100) {
        Err(e) if e.errno == Errno::ETIMEDOUT => {}
        other => return Err(format!("ring 1 before release: {other:?}")),
    }
    // Ring 0 is not blocked by the stalled ring 1.
    c.gpu.run(0, &[Command::nop(), Command::nop()])?;
    let st = c.win.state();
    ensure!(
        c.buf.get(B_MARK) == 0 && c.buf.get(B_TS_WAKE) == 0,
        "ring 1 ran past SEM_WAIT before the release"
    );
    ensure!(
        st == PartitionState::Busy,
        "STATUS {} while ring 1 waits",
        st
    );
    match c.gpu.wait(1, f1, 0) {
        Err(e) if e.errno == Errno::ETIMEDOUT => {}
        other => return Err(format!("ring 1 after ring 0's work: {other:?}")),
    }
    c.gpu.run(
        0,
        &[
            Command::timestamp(Loc::Sys(c.buf.bus(B_TS_RELEASE))),
            Command::fence(Loc::Sys(c.buf.bus(B_SEM)), value, false),
        ],
    )?;
    c.gpu
        .wait(1, f1, WAIT_MS)
        .map_err(|e| format!("ring 1 after release: {e}"))?;
    let (rel, wake) = (c.buf.get(B_TS_RELEASE), c.buf.get(B_TS_WAKE));
    let got = c.buf.get(B_MARK);
    let want = ((mark as u64) << 32) | mark as u64;
    ensure!(got == want, "ring 1 marker {got:#x}, want {want:#x}");
    ensure!(
        rel != 0 && rel <= wake,
        "ring 1 woke at {wake}, before the release at {rel}"
    );
    Ok(format!("woke {} ns after the release", wake - rel))
}

/// The fault a submission must end in (see [`expect_fault`]).
struct Expected<'a> {
    /// Acceptable codes; the first is what a mismatch is reported against.
    codes: &'a [FaultCode],
    /// The faulting address; None: the command's own ring address.
    addr: Option<u64>,
    write: bool,
}

/// After a submission that must fault: WAIT_FENCE says EIO with the expected
/// fault, the window agrees, HEAD stayed on the command, the fault interrupt
/// arrived and the driver refuses new work. Returns the fault code seen.
fn expect_fault(
    c: &Ctx,
    ring: u32,
    fence: u64,
    before: &Info,
    want: Expected,
) -> Result<FaultCode, String> {
    let e = match c.gpu.wait(ring, fence, WAIT_MS) {
        Ok(()) => return Err(format!("fence {fence} signalled: no fault")),
        Err(e) => e,
    };
    ensure!(e.errno == Errno::EIO, "WAIT_FENCE {e}, want EIO");
    let got = FaultStatus::from_bits(e.status);
    let head = c.win.at(RegId::WRingHead, ring as usize);
    let tail = c.win.at(RegId::WRingTail, ring as usize);
    let cmd = c.win.get(RegId::WFaultCmd);
    let want_addr = want
        .addr
        .unwrap_or_else(|| c.win.at(RegId::WRingBase, ring as usize) + cmd * COMMAND_BYTES as u64);
    let code = want
        .codes
        .iter()
        .find(|&&k| k == got.code())
        .unwrap_or(&want.codes[0]);
    let want_status = FaultStatus::new()
        .with_code(*code)
        .with_ring(ring as u8)
        .with_write(want.write)
        .into_bits();
    ensure!(
        e.status == want_status && e.addr == want_addr,
        "got {}, want {}",
        describe_fault(e.status, e.addr),
        describe_fault(want_status, want_addr)
    );
    let st = c.win.state();
    ensure!(st == PartitionState::Faulted, "STATUS {}", st);
    let (ws, wa) = (c.win.get(RegId::WFaultStatus), c.win.get(RegId::WFaultAddr));
    ensure!(
        ws == want_status as u64 && wa == want_addr,
        "window says {}",
        describe_fault(ws as u32, wa)
    );
    let entries = c.info.ring_entries as u64;
    ensure!(
        cmd == head && tail.wrapping_sub(head) % entries == 2,
        "FAULT_CMD {cmd} HEAD {head} TAIL {tail}: HEAD left the faulting command"
    );
    let info = c.gpu.info()?;
    ensure!(
        info.fault_irqs > before.fault_irqs,
        "fault_irqs stayed {}",
        info.fault_irqs
    );
    match c.gpu.submit(ring, &[Command::nop()]) {
        Err(Errno::EIO) => {}
        Err(e) => return Err(format!("SUBMIT while faulted: {e:?}")),
        Ok(f) => return Err(format!("SUBMIT while faulted accepted (fence {f})")),
    }
    Ok(got.code())
}

/// A COPY that runs past the end of the slice faults VRAM_OOB at the slice's
/// end and writes nothing there. Leaves the partition faulted and a marker
/// in VRAM for the reset check.
fn fault_vram_oob(c: &mut Ctx) -> Outcome {
    let size = c.size;
    c.vram.write(V_MARK, c.vram_mark(), 8);
    let canary = pattern_word(c.seed ^ 0xca, 0);
    for i in 0..4 {
        c.vram.write(size - 32 + 8 * i, canary ^ i, 8);
    }
    c.vram.copy_in(0, &[0x11; 64]);
    let info0 = c.gpu.info()?;
    let f = c.submit(0, &[Command::copy(Loc::Vram(size - 32), Loc::Vram(0), 64)])?;
    c.oob_fence = Some(f);
    let want = Expected {
        codes: &[FaultCode::VramOutOfBounds],
        addr: Some(size - 32),
        write: true,
    };
    expect_fault(c, 0, f, &info0, want)?;
    for i in 0..4 {
        ensure!(
            c.vram.read(size - 32 + 8 * i, 8) == canary ^ i,
            "the faulting COPY wrote the end of VRAM"
        );
    }
    Ok(String::new())
}

/// RESET brings the faulted partition back to IDLE with its window state
/// cleared and interrupts re-armed, signals abandoned fences, keeps VRAM
/// (SPEC 11), and work runs again.
fn reset_recovers(c: &mut Ctx) -> Outcome {
    c.win.set(RegId::WScratch, 0x600d_5eed);
    let info0 = c.gpu.info()?;
    c.gpu.reset()?;
    let st = c.win.state();
    ensure!(st == PartitionState::Idle, "STATUS {}", st);
    let regs_now = [
        c.win.get(RegId::WFaultStatus),
        c.win.get(RegId::WFaultAddr),
        c.win.get(RegId::WStatFaults),
        c.win.get(RegId::WScratch),
    ];
    ensure!(
        regs_now == [0; 4],
        "FAULT_STATUS, FAULT_ADDR, STAT_FAULTS, SCRATCH = {regs_now:x?}, want 0"
    );
    let mask = PartIntr::from_bits(c.win.get(RegId::WIntrMask) as u32);
    ensure!(
        mask.fence() && mask.fault(),
        "driver did not re-arm INTR_MASK"
    );
    if let Some(f) = c.oob_fence {
        c.gpu
            .wait(0, f, 0)
            .map_err(|e| format!("abandoned fence {f} not signalled: {e}"))?;
    }
    ensure!(
        c.vram.read(V_MARK, 8) == c.vram_mark(),
        "VRAM changed by partition reset"
    );
    let v = 0x7e5e_7000 | (c.seed as u32 & 0xfff);
    c.gpu
        .run(0, &[Command::fill(Loc::Vram(V_AFTER_RESET), 0x1000, v)])?;
    let mut got = vec![0u8; 0x1000];
    c.vram.copy_out(V_AFTER_RESET, &mut got);
    ensure!(all_words(&got, v), "FILL after reset did not land");
    let info = c.gpu.info()?;
    ensure!(
        info.engine_irqs > info0.engine_irqs,
        "no engine interrupt after reset"
    );
    Ok(String::new())
}

/// Reads from a guest-physical hole past RAM and writes far past any
/// translation fault with their addresses (refused by the device's
/// translation, or by the platform IOMMU on a VF), write nothing, and RESET
/// recovers from each.
fn fault_unmapped_sysmem(c: &mut Ctx) -> Outcome {
    let hole = ram_hole()?;
    let xlate = PartCaps::from_bits(c.win.get(RegId::WCaps) as u32).xlate();
    let sentinel = pattern_word(c.seed ^ 0xf0, 0);
    let cases = [
        (
            1u32,
            Command::copy(Loc::Vram(V_FAULT_DST), Loc::Sys(hole), 0x1000),
            hole,
            false,
        ),
        (
            0u32,
            Command::fence(Loc::Sys(FAR_SYS), 1, false),
            FAR_SYS,
            true,
        ),
    ];
    let mut seen = Vec::new();
    for (ring, cmd, addr, write) in cases {
        c.vram.write(V_FAULT_DST, sentinel, 8);
        let info0 = c.gpu.info()?;
        let f = c.submit(ring, &[cmd])?;
        // The host RM runs mdev vGPUs with replayable translation and
        // cancels what it cannot pin; without replay the device itself
        // reports SYSMEM_UNMAPPED. A VF's DMA goes through the platform
        // IOMMU, which refuses it: DMA_ERROR (SPEC 15).
        let codes: &[FaultCode] = if xlate {
            &[FaultCode::XlateCancelled, FaultCode::SysmemUnmapped]
        } else {
            &[FaultCode::DmaError]
        };
        let want = Expected {
            codes,
            addr: Some(addr),
            write,
        };
        let res = expect_fault(c, ring, f, &info0, want);
        let reset = c.gpu.reset();
        let code = res.map_err(|e| format!("{addr:#x}: {e}"))?;
        reset?;
        ensure!(
            c.vram.read(V_FAULT_DST, 8) == sentinel,
            "faulting COPY from {addr:#x} wrote VRAM"
        );
        seen.push(format!("{addr:#x} {}", code));
    }
    c.gpu.run(0, &[Command::nop()])?;
    Ok(seen.join(", "))
}

/// A command with a reserved byte set faults BAD_COMMAND at its own ring
/// address; RESET recovers.
fn fault_bad_command(c: &mut Ctx) -> Outcome {
    let mut raw = Command::nop().encode();
    raw[COMMAND_BYTES - 1] = 0xa5;
    let info0 = c.gpu.info()?;
    let f = c
        .gpu
        .submit_raw(0, &[raw])
        .map_err(|e| format!("SUBMIT: {e:?}"))?;
    let want = Expected {
        codes: &[FaultCode::BadCommand],
        addr: None,
        write: false,
    };
    let res = expect_fault(c, 0, f, &info0, want);
    let reset = c.gpu.reset();
    res?;
    reset?;
    c.gpu.run(0, &[Command::nop()])?;
    Ok(String::new())
}

// ---- the display head -------------------------------------------------------------

/// The driver's fbdev emulation brought the kernel console up on the vGPU
/// (a "vgpudrmfb" framebuffer with fbcon bound to it). fbcon is unbound
/// then: the checks below own all of VRAM (see `release_console`).
fn fbdev_console(c: &mut Ctx) -> Outcome {
    let bound = release_console()?;
    let names: Vec<String> = fs::read_dir(c.dev.path.join("graphics"))
        .map_err(|_| "no framebuffer under the vGPU's PCI function")?
        .filter_map(|e| e.ok())
        .filter_map(|e| fs::read_to_string(e.path().join("name")).ok())
        .map(|n| n.trim().to_string())
        .collect();
    ensure!(
        names.iter().any(|n| n.starts_with(DRM_NAME)),
        "framebuffers {names:?}, none the vGPU's"
    );
    ensure!(bound, "fbcon was not bound to a framebuffer");
    Ok(format!("{} (fbcon unbound)", names.join(", ")))
}

/// FILL_RECT fills three rows of 256 bytes at a 1 KiB pitch and nothing
/// between them; BLIT copies that rectangle to a 512-byte pitch.
fn engine_rects(c: &mut Ctx) -> Outcome {
    const ROWS: usize = 3;
    const ROW: usize = 256;
    const X: usize = 64;
    let (fpitch, bpitch) = (1024usize, 512usize);
    let bg = random_bytes(c.seed ^ 0x4e, (ROWS + 1) * fpitch);
    c.vram.copy_in(V_RECT, &bg);
    let bg2 = random_bytes(c.seed ^ 0xb1, (ROWS + 1) * bpitch);
    c.vram.copy_in(V_BLIT, &bg2);
    let v = 0x7ec7_0000 | (c.seed as u32 & 0xffff);
    let src = V_RECT + X as u64;
    let rect = Rect {
        width: ROW as u32,
        height: ROWS as u32,
        dst_pitch: bpitch as u32,
        src_pitch: fpitch as u32,
    };
    c.gpu.run(
        0,
        &[
            Command::fill_rect(src, ROW as u32, ROWS as u32, fpitch as u32, v),
            Command::blit(V_BLIT, src, rect),
        ],
    )?;
    let mut want = bg;
    for row in 0..ROWS {
        let at = row * fpitch + X;
        for w in want[at..at + ROW].chunks_mut(4) {
            w.copy_from_slice(&v.to_le_bytes());
        }
    }
    let mut got = vec![0u8; want.len()];
    c.vram.copy_out(V_RECT, &mut got);
    let first_diff = |a: &[u8], b: &[u8]| a.iter().zip(b).position(|(x, y)| x != y);
    if let Some(i) = first_diff(&got, &want) {
        return Err(format!("FILL_RECT: byte {i:#x} of the area differs"));
    }
    let mut want2 = bg2;
    for row in 0..ROWS {
        let from = row * fpitch + X;
        want2[row * bpitch..row * bpitch + ROW].copy_from_slice(&want[from..from + ROW]);
    }
    let mut got2 = vec![0u8; want2.len()];
    c.vram.copy_out(V_BLIT, &mut got2);
    if let Some(i) = first_diff(&got2, &want2) {
        return Err(format!("BLIT: byte {i:#x} of the destination differs"));
    }
    Ok(String::new())
}

/// struct drm_mode_create_dumb (DRM_IOCTL_MODE_CREATE_DUMB).
#[repr(C)]
#[derive(Default)]
struct CreateDumb {
    height: u32,
    width: u32,
    bpp: u32,
    flags: u32,
    handle: u32,
    pitch: u32,
    size: u64,
}

nix::ioctl_readwrite!(create_dumb, b'd', 0xb2, CreateDumb);
nix::ioctl_readwrite!(destroy_dumb, b'd', 0xb4, u32);

/// A dumb buffer from the card node comes cleared (the driver's FILL_RECT);
/// GEM_VRAM pins it and gives its VRAM offset, the same again for a second
/// pin; FILL_RECT through that offset shows in BAR2; unpinning twice is
/// refused the second time.
fn dumb_buffer_gem_vram(c: &mut Ctx) -> Outcome {
    let card = drm_node(&c.dev, "card").ok_or("no card node in sysfs")?;
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/dev/dri/{card}"))
        .map_err(|e| format!("open {card}: {e}"))?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let mut d = CreateDumb {
        height: 64,
        width: 256,
        bpp: 32,
        ..CreateDumb::default()
    };
    // SAFETY: our open fd and a struct that lives across the call.
    unsafe { create_dumb(fd, &mut d) }.map_err(|e| format!("CREATE_DUMB: {e:?}"))?;
    let res = dumb_fill(c, fd, &d);
    let mut handle = d.handle;
    // SAFETY: as above.
    let _ = unsafe { destroy_dumb(fd, &mut handle) };
    res
}

fn dumb_fill(c: &Ctx, fd: i32, d: &CreateDumb) -> Outcome {
    let gem = |pin| uapi::gem_vram(fd, d.handle, pin);
    let off = gem(true).map_err(|e| format!("GEM_VRAM pin: {e:?}"))?;
    ensure!(
        off % PAGE as u64 == 0 && off + d.size <= c.size,
        "offset {off:#x} for {:#x} bytes",
        d.size
    );
    let again = gem(true).map_err(|e| format!("GEM_VRAM pin again: {e:?}"))?;
    ensure!(again == off, "pinned again at {again:#x}, was {off:#x}");
    let mut got = vec![0u8; d.size as usize];
    c.vram.copy_out(off, &mut got);
    ensure!(all_words(&got, 0), "a new dumb buffer is not clear");
    let v = 0x00d0_0000 | (c.seed as u32 & 0xffff);
    c.gpu
        .run(0, &[Command::fill_rect(off, d.pitch, d.height, d.pitch, v)])?;
    c.vram.copy_out(off, &mut got);
    ensure!(
        all_words(&got, v),
        "FILL_RECT through the GEM_VRAM offset did not land"
    );
    gem(false).map_err(|e| format!("GEM_VRAM unpin: {e:?}"))?;
    match gem(false) {
        Err(Errno::EINVAL) => {}
        other => return Err(format!("a second unpin: {other:?}")),
    }
    Ok(String::new())
}

/// A modetest run: its stdout lines as they come, its stderr at the end.
struct Modetest {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Modetest {
    fn spawn(args: &[&str]) -> Result<Self, String> {
        let mut child = Process::new(MODETEST)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{MODETEST}: {e}"))?;
        let out = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Ok(Self {
            child,
            lines,
            stderr,
        })
    }

    /// Run to the end without input (listing modes): its stdout.
    fn output(args: &[&str]) -> Result<String, String> {
        let m = Self::spawn(args)?;
        let (out, _) = m.finish()?;
        Ok(out)
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Press Enter (modetest waits for it with a mode set) and wait for
    /// the end, killing it after MODETEST_TIMEOUT: its stdout and stderr.
    /// A failure exit or "failed" on stderr is an error.
    fn finish(mut self) -> Result<(String, String), String> {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let until = Instant::now() + MODETEST_TIMEOUT;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!(
                        "modetest still running after {MODETEST_TIMEOUT:?}: killed"
                    ));
                }
            }
        };
        let err = self.stderr.join().unwrap_or_default();
        let out: Vec<String> = self.lines.iter().collect();
        let out = out.join("\n");
        // Bookworm's modetest (libdrm 2.4.114) reports the ENOSYS of a CRTC
        // without a gamma LUT (like bochs's, like ours: the head has none)
        // as a failure, and goes on; every other failure counts.
        let failures: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("failed") && *l != MODETEST_NO_GAMMA)
            .collect();
        ensure!(
            status.success() && failures.is_empty(),
            "modetest {status}: {}",
            failures.join("; ")
        );
        Ok((out, err))
    }
}

/// The id in the first row of `section`'s table in modetest's listing,
/// with that row.
fn first_row<'a>(listing: &'a str, section: &str) -> Option<(u32, &'a str)> {
    let mut it = listing
        .lines()
        .skip_while(|l| !l.starts_with(section))
        .skip(2);
    let row = it.next()?;
    Some((row.split_whitespace().next()?.parse().ok()?, row))
}

/// The connector and CRTC modetest sees, with the connector's modes.
fn modetest_ids() -> Result<(u32, u32), String> {
    let listing = Modetest::output(&["-M", DRM_NAME, "-c", "-p"])?;
    let (conn, row) = first_row(&listing, "Connectors:").ok_or("no connector listed")?;
    ensure!(
        row.split_whitespace().nth(2) == Some("connected"),
        "connector {row:?}"
    );
    ensure!(
        listing
            .lines()
            .any(|l| l.trim_start().starts_with('#') && l.contains(" 1024x768 ")),
        "no 1024x768 among the connector's modes"
    );
    let (crtc, _) = first_row(&listing, "CRTCs:").ok_or("no CRTC listed")?;
    Ok((conn, crtc))
}

/// What the head shows: (STATUS, ACTIVE_MODE, ACTIVE_BASE).
fn head(c: &Ctx) -> (DispStatus, u64, u64) {
    (
        DispStatus::from_bits(c.win.get(RegId::WDispStatus) as u32),
        c.win.get(RegId::WDispActiveMode),
        c.win.get(RegId::WDispActiveBase),
    )
}

/// Start modetest setting 1024x768 on the connector and wait until the head
/// shows it (a new scanout base): the running modetest and that base.
fn modetest_shown(c: &Ctx, more: &[&str]) -> Result<(Modetest, u64), String> {
    let (conn, crtc) = modetest_ids()?;
    let (st0, _, base0) = head(c);
    let set = format!("{conn}@{crtc}:1024x768");
    let mut args = vec!["-M", DRM_NAME, "-s", &set];
    args.extend_from_slice(more);
    let mut m = Modetest::spawn(&args)?;
    let want_mode = (768 << 16) | 1024;
    let until = Instant::now() + MODETEST_TIMEOUT;
    loop {
        let (st, mode, base) = head(c);
        if st.active() && mode == want_mode && (base != base0 || !st0.active()) {
            return Ok((m, base));
        }
        if m.exited() || Instant::now() > until {
            let why = m.finish().err().unwrap_or_default();
            return Err(format!(
                "the head never showed 1024x768 ({st:?}, MODE {mode:#x} BASE {base:#x}) {why}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// modetest -s sets 1024x768 on our connector and CRTC: the head shows an
/// XRGB8888 buffer of that mode with modetest's colour bars in its first
/// row; modetest exits cleanly.
fn modetest_set_mode(c: &mut Ctx) -> Outcome {
    let (m, base) = modetest_shown(c, &[])?;
    let format = c.win.get(RegId::WDispActiveFormat);
    let stride = c.win.get(RegId::WDispActiveStride);
    let mut row = vec![0u8; 4096];
    c.vram.copy_out(base, &mut row);
    let mut colours: Vec<u32> = row
        .chunks(4)
        .map(|p| u32::from_le_bytes([p[0], p[1], p[2], 0]))
        .collect();
    colours.sort_unstable();
    colours.dedup();
    m.finish()?;
    ensure!(format == DRM_FORMAT_XRGB8888, "ACTIVE_FORMAT {format:#x}");
    ensure!(stride >= 4096, "ACTIVE_STRIDE {stride}");
    ensure!(
        colours.len() >= 4,
        "first row holds {} colours: no test pattern",
        colours.len()
    );
    Ok(format!("{} colours in row 0", colours.len()))
}

/// modetest -v flips between two buffers, each flip waiting for the last
/// one's event: FLIP_DONE interrupts arrive and the head's vblanks count.
fn modetest_page_flips(c: &mut Ctx) -> Outcome {
    let (m, _) = modetest_shown(c, &["-v"])?;
    let info0 = c.gpu.info()?;
    let vblanks0 = c.win.get(RegId::WDispVblankCount);
    std::thread::sleep(Duration::from_secs(6));
    let info = c.gpu.info()?;
    let vblanks = c.win.get(RegId::WDispVblankCount) - vblanks0;
    m.finish()?;
    let flips = info.flip_irqs - info0.flip_irqs;
    ensure!(flips >= 10, "{flips} FLIP_DONE interrupts in 6 s");
    ensure!(vblanks >= flips, "{vblanks} vblanks for {flips} flips");
    // Rates are timing: bench lines, not the check's outcome.
    bench("l2_flips_per_s", format!("{:.1}", flips as f64 / 6.0));
    bench("l2_vblanks_per_s", format!("{:.1}", vblanks as f64 / 6.0));
    Ok(String::new())
}

/// All of our VRAM holds our pattern and none of it the peer's, scanned
/// (with --sync) while the peer guest holds its own pattern in its slice.
fn isolation(c: &mut Ctx) -> Outcome {
    let (size, seed) = (c.size, c.seed);
    ensure!(c.peer_seed != Some(seed), "--peer is our own --pattern");
    write_pattern(&c.vram, size, seed);
    let reply = c.args.sync.then(|| barrier(&c.args.name));
    let now = c.win.get(RegId::WVramSize);
    let s = scan_pattern(&c.vram, size, seed, c.peer_seed);
    ensure!(
        now == size && c.gpu.info()?.vram_size == size,
        "VRAM_SIZE now {now:#x}, was {size:#x}"
    );
    ensure!(
        s.peer_hits == 0,
        "{} words hold the peer's pattern, first bad at {:#x}",
        s.peer_hits,
        s.first_bad.unwrap_or(0)
    );
    ensure!(
        s.bad == 0,
        "{} words changed, first at {:#x}",
        s.bad,
        s.first_bad.unwrap_or(0)
    );
    if let Some(reply) = reply {
        ensure!(
            reply == "go",
            "barrier answered {reply:?}: the peer was not there"
        );
    }
    Ok(format!("{} MiB", size >> 20))
}

/// Bytes through the VRAM BAR against a RAM memcpy (figures; the check only
/// proves the data survived and the ratio is a number).
fn bench_vram_bar(c: &mut Ctx) -> Outcome {
    let n = c.size.min(16 * MIB) as usize;
    let src = random_bytes(c.seed ^ 0xbe, n);
    let mut dst = vec![0u8; n];
    let mut back = vec![0u8; n];
    // Interleaved rounds, best of each: the other L2 guest shares L1's
    // CPU and benchmarks at the same time, so RAM and VRAM are timed
    // under the same conditions rather than one block after the other.
    let (mut ram, mut w, mut rd) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..7 {
        ram = ram.min(best_of(1, || {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
        }));
        w = w.min(best_of(1, || c.vram.copy_in(0, black_box(&src))));
        rd = rd.min(best_of(1, || {
            c.vram.copy_out(0, &mut back);
            black_box(&mut back);
        }));
    }
    ensure!(back == src, "VRAM did not keep what the benchmark wrote");
    let mbps = |t: f64| n as f64 / t / 1e6;
    // Bytes moved through the BAR (in and out) per second, against RAM.
    let ratio = 2.0 * ram / (w + rd);
    bench("l2_vram_bar_write_mbps", format!("{:.0}", mbps(w)));
    bench("l2_vram_bar_read_mbps", format!("{:.0}", mbps(rd)));
    bench("l2_ram_memcpy_mbps", format!("{:.0}", mbps(ram)));
    bench("l2_vram_bar_vs_ram", format!("{ratio:.3}"));
    ensure!(ratio.is_finite() && ratio > 0.0, "ratio {ratio}");
    Ok(format!("{} MiB, ratio {ratio:.3}", n >> 20))
}

/// A register read of the vGPU against one of QEMU's edu device in the same
/// guest (figures; needs -device edu in the L2 QEMU). An mdev vGPU's
/// register page traps to L1's frontend; a VF's is mapped straight through
/// to the device, so its ratio is far below 1 (four decimals show it).
fn bench_register_read(c: &mut Ctx) -> Outcome {
    let edu = PciDev::find(EDU_VENDOR, EDU_DEVICE)
        .map_err(|e| format!("{e} (the L2 QEMU should have -device edu)"))?;
    edu.enable_mem_and_bus_master()?;
    let bar = edu.map_bar(0, false)?;
    let id = bar.read(0, 4);
    ensure!(id & 0xffff == 0x00ed, "edu identification {id:#x}");
    let status = regs::window_offset(RegId::WStatus, 0);
    // Interleaved rounds, best of each (see the VRAM benchmark).
    let round = Duration::from_millis(250);
    let (mut vgpu, mut edu_ns) = (f64::MAX, f64::MAX);
    for _ in 0..8 {
        vgpu = vgpu.min(avg_ns(round, || c.win.0.read(status, 4)));
        edu_ns = edu_ns.min(avg_ns(round, || bar.read(0, 4)));
    }
    let ratio = vgpu / edu_ns;
    bench("l2_reg_read_ns", format!("{vgpu:.0}"));
    bench("l2_edu_read_ns", format!("{edu_ns:.0}"));
    bench("l2_reg_read_vs_edu", format!("{ratio:.4}"));
    ensure!(ratio.is_finite() && ratio > 0.0, "ratio {ratio}");
    Ok(format!("{vgpu:.0} ns vs {edu_ns:.0} ns"))
}

// ---- main --------------------------------------------------------------------------

/// Exit with the report's status when a setup step failed.
fn give_up(mut r: Report, name: &str, why: String) -> ! {
    r.check(name, || Err(why));
    std::process::exit(r.finish());
}

fn main() {
    let r = Report::default();
    let args = match parse_args(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(e) => give_up(r, "arguments", e.to_string()),
    };
    let dev = match PciDev::find(pci::VENDOR_ID, pci::VGPU_DEVICE_ID) {
        Ok(d) => d,
        Err(e) => give_up(r, "identity: find the vGPU", e),
    };
    let mut r = r;
    let mut found = Found {
        node: render_node(&dev),
        dev,
        opened: None,
    };
    r.run_named(&mut found, FIND, |f, name| name.replace("{node}", &f.node));
    let Some(opened) = found.opened.take() else {
        std::process::exit(r.finish());
    };
    let mut c = Ctx::new(args, found, opened);
    r.run_named(&mut c, CHECKS, Ctx::name);
    let isolation = if c.args.sync {
        ISOLATION
    } else {
        ISOLATION_LOCAL
    };
    r.run(&mut c, &[isolation]);
    r.run(&mut c, BENCHES);
    if c.args.edu {
        r.run(&mut c, &[BENCH_EDU]);
    }
    std::process::exit(r.finish());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_as_l2_init_passes_them() {
        let a = parse_args("--name L2b --pattern U --peer P --sync --irq intx".split(' ')).unwrap();
        assert_eq!((a.name.as_str(), a.pattern.as_str()), ("L2b", "U"));
        assert_eq!(
            (a.peer.as_deref(), a.sync, a.irq_mode),
            (Some("P"), true, IRQ_INTX)
        );
        let a = parse_args(["--irq=msi"]).unwrap();
        assert_eq!(
            (a.name.as_str(), a.sync, a.irq_mode),
            ("L2", false, IRQ_MSI)
        );
        let e = parse_args(["--irq", "msx"]).err().unwrap().to_string();
        assert!(e.contains("want intx, msi or msix"), "{e}");
        assert!(a.edu && !parse_args(["--no-edu"]).unwrap().edu);
        assert!(parse_args(["--bogus"]).is_err());
        assert!(parse_args(["--name"]).is_err());
    }
}
