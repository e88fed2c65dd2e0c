//! vgpu-vfio-chaos: a randomized VFIO sequence against one vGPU, as a buggy
//! or hostile VMM would drive it: region reads and writes at any offset and
//! size, config-space garbage, malformed SET_IRQS / GET_*_INFO arguments,
//! resets, mmaps at random offsets, DMA maps and unmaps under running work,
//! and garbage command streams that DMA anywhere. The kernel must refuse
//! what is malformed and stay up (run-l1.sh then checks L1's dmesg); the
//! vGPU must work again after a reset. Seeded, so a failure replays.
//!
//! Usage: vgpu-vfio-chaos [OPERATIONS] [SEED]

use std::time::{Duration, Instant};
use vdevice::command::{Command, Loc, COMMAND_BYTES};
use vdevice::driver::{Driver, Hardware};
use vdevice::regs::{self, PartitionState, RegId};
use vgpu_guest_tests::vfio::{self, Container, Device, EventFd, VfioVgpu, CONFIG_REGION};
use vgpu_guest_tests::{bench, ensure, Report};
use vgpuctl::{Gpu, Vgpu};

const UUID: &str = "0c4a0500-0000-4000-8000-00000000c4a0";
const IOVA: u64 = 0x2000_0000;
const DMA_BYTES: usize = 2 << 20;
const PAGE: u64 = 4096;

/// xorshift64*: enough randomness, no dependency, replayable from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

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
    (index << 40) | within
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

fn main() {
    let mut args = std::env::args().skip(1);
    let ops: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3000);
    let seed: u64 = args
        .next()
        .and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0x5eed_c4a0_5eed_c4a0);
    let mut r = Report::default();

    let setup = || -> Result<_, String> {
        let gpu = Gpu::find(None).map_err(|e| e.to_string())?;
        let ty = gpu
            .types()
            .map_err(|e| e.to_string())?
            .into_iter()
            .max_by_key(|t| t.available)
            .ok_or("no vGPU types")?;
        gpu.create(&ty.id, UUID).map_err(|e| e.to_string())?;
        let v = Vgpu::get(UUID).map_err(|e| e.to_string())?;
        let container = Container::open().map_err(|e| format!("container: {e}"))?;
        let group = container
            .add_group(v.iommu_group.ok_or("no iommu group")?, true)
            .map_err(|e| format!("group: {e}"))?;
        let dev = Device::open(&group, UUID).map_err(|e| format!("device: {e}"))?;
        Ok((container, group, dev))
    };
    let (container, _group, dev) = match setup() {
        Ok(x) => x,
        Err(e) => {
            println!("FAIL chaos: set up a vGPU through VFIO: {e}");
            let _ = Vgpu::destroy(UUID);
            std::process::exit(1);
        }
    };
    let dma = match vfio::dma_buffer(DMA_BYTES) {
        Ok(p) => p,
        Err(e) => {
            println!("FAIL allocate the DMA buffer: {e}");
            std::process::exit(1);
        }
    };
    let sizes: Vec<u64> = (0..dev.num_regions)
        .map(|i| dev.region(i).map_or(0, |r| r.size))
        .collect();
    let bar0 = dev.region(0).expect("BAR0");
    let bar2 = dev.region(2).expect("BAR2");
    let vram = dev.mmap(&bar2, 0, bar2.size as usize).expect("BAR2 mmap");
    let efds: Vec<EventFd> = (0..3).map(|_| EventFd::new().expect("eventfd")).collect();
    let mut t = Tally::default();
    let mut rng = Rng(seed | 1);
    let start = Instant::now();

    for _ in 0..ops {
        match rng.below(13) {
            // region reads and writes anywhere, any size
            0 | 1 => {
                let mut buf = vec![0u8; access_len(&mut rng)];
                t.note(dev.pread_raw(region_offset(&mut rng, &sizes), &mut buf));
            }
            2 | 3 => {
                let mut buf = vec![0u8; access_len(&mut rng)];
                for b in buf.iter_mut() {
                    *b = rng.next() as u8;
                }
                t.note(dev.pwrite_raw(region_offset(&mut rng, &sizes), &buf));
            }
            // config space: random bytes at random places (BARs, command,
            // MSI/MSI-X control...)
            4 => {
                let cfg = (CONFIG_REGION as u64) << 40;
                let v = rng.next().to_le_bytes();
                let n = rng.pick(&[1usize, 2, 4]);
                t.note(dev.pwrite_raw(cfg | rng.below(0x110), &v[..n]));
            }
            // SET_IRQS: any index, range, flags; eventfds, bad fds, no data
            5 => {
                let mut words = [0u32; 64];
                let count = rng.pick(&[0u32, 1, 2, 3, 64, u32::MAX]);
                let argsz = rng.pick(&[0u32, 8, 20, 24, 28, 32, 256]);
                words[0] = argsz;
                words[1] = rng.pick(&[0x1 | 0x20, 0x4 | 0x20, 0x2 | 0x20, 0x1 | 0x8, 0x1 | 0x10])
                    | if rng.below(8) == 0 {
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
                        _ => efds[rng.below(3) as usize].raw() as u32,
                    };
                }
                t.note(dev.set_irqs_raw(&mut words));
            }
            // GET_REGION_INFO / GET_IRQ_INFO with odd argsz and indexes
            6 => {
                let mut buf = [0u32; 256];
                buf[0] = rng.pick(&[0u32, 4, 16, 32, 40, 1024]);
                buf[2] = rng.below(16) as u32;
                t.note(dev.region_info_raw(&mut buf));
                let mut w = [0u32; 8];
                w[0] = rng.pick(&[0u32, 8, 16, 32]);
                w[2] = rng.below(8) as u32;
                t.note(dev.irq_info_raw(&mut w));
            }
            7 => t.note(dev.reset()),
            // mmap at random offsets and lengths; touch what maps
            8 => {
                let off = region_offset(&mut rng, &sizes) & !(PAGE - 1);
                let len = rng.pick(&[PAGE, 2 * PAGE, 1 << 20, 1 << 26]) as usize;
                let m = dev.mmap_raw(off, len);
                if let Ok(m) = &m {
                    // SAFETY: inside the mapping just made.
                    std::hint::black_box(unsafe { std::ptr::read_volatile(m.as_ptr()) });
                }
                t.note(m);
            }
            // DMA map / unmap of random pieces of the buffer, also while
            // commands run against it
            9 => {
                let first = rng.below(DMA_BYTES as u64 / PAGE);
                let pages = 1 + rng.below(DMA_BYTES as u64 / PAGE - first);
                let (iova, size) = (IOVA + first * PAGE, pages * PAGE);
                if rng.below(2) == 0 {
                    // SAFETY: inside the buffer.
                    let vaddr = unsafe { dma.add((first * PAGE) as usize) } as u64;
                    t.note(container.map_dma(vaddr, iova, size));
                } else {
                    t.note(container.unmap_dma(iova, size));
                }
            }
            // a ring in VRAM full of garbage or of commands aimed anywhere
            10 | 11 => {
                let ring = rng.pick(&[0u64, 0x1000, bar2.size.saturating_sub(0x1000)]);
                let entries = rng.pick(&[16u64, 64]);
                let w = |id: RegId, elem: usize, v: u64, size: usize| {
                    let off = regs::window_offset(id, elem);
                    dev.write(&bar0, off, &v.to_le_bytes()[..size])
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
                        1 => {
                            Command::copy(Loc::Vram(rng.below(2 * bar2.size)), Loc::Sys(sys), 4096)
                        }
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
            _ => {
                let off = regs::window_offset(RegId::WDoorbell, rng.below(3) as usize);
                t.note(dev.write(&bar0, off, &(rng.next() as u32).to_le_bytes()));
            }
        }
    }
    // Figures that vary with timing (the engine races the VMM) stay out of
    // the check lines, which the transcript snapshot pins down.
    bench("vfio_chaos_ms", start.elapsed().as_millis());
    bench("vfio_chaos_refused", format!("{}/{}", t.refused, t.ops));

    // Afterwards the vGPU works again: reset, map the buffer, FILL + FENCE.
    // SAFETY: the DMA buffer is DMA_BYTES long and never unmapped.
    let g = Driver::new(unsafe { VfioVgpu::new(dev, bar0, bar2, vram, dma, IOVA, DMA_BYTES) });
    r.check(
        &format!("chaos: {ops} random VFIO operations (seed {seed:#x}), then the vGPU works after a reset"),
        || {
            let _ = container.unmap_dma(IOVA, DMA_BYTES as u64);
            container
                .map_dma(dma as u64, IOVA, DMA_BYTES as u64)
                .map_err(|e| format!("map the DMA buffer again: {e}"))?;
            // The config-space garbage may have turned memory decoding off.
            let cfg = (CONFIG_REGION as u64) << 40;
            g.hw.dev
                .pwrite_raw(cfg | 4, &[0x06, 0x00])
                .map_err(|e| format!("config COMMAND: {e}"))?;
            g.hw.dev.reset().map_err(|e| format!("VFIO_DEVICE_RESET: {e}"))?;
            let st = g.state(0);
            ensure!(
                st == PartitionState::Idle as u8,
                "after reset: state {st}, want IDLE"
            );
            g.ring_in_vram(0, 0, 0, 64);
            g.hw.sys_write(IOVA + 0x1000, &[0u8; 16]);
            g.submit(
                0,
                0,
                &[
                    Command::fill(Loc::Vram(0x10000), 4096, 0xc4a0_c4a0),
                    Command::copy(Loc::Sys(IOVA + 0x1000), Loc::Vram(0x10000), 8),
                    Command::fence(Loc::Sys(IOVA + 0x1008), 77, false),
                ],
            );
            let st = g.wait_settled(0, Duration::from_secs(20));
            let mut b = [0u8; 16];
            g.hw.sys_read(IOVA + 0x1000, &mut b);
            ensure!(
                st == PartitionState::Idle as u8
                    && b[..8] == [0xa0, 0xc4, 0xa0, 0xc4, 0xa0, 0xc4, 0xa0, 0xc4]
                    && u64::from_le_bytes(b[8..].try_into().unwrap()) == 77,
                "state {st}, buffer {b:02x?}"
            );
            Ok(String::new())
        },
    );
    drop(g);
    r.check("chaos: the vGPU is destroyed after all that", || {
        Vgpu::destroy(UUID).map_err(|e| e.to_string())?;
        ensure!(Vgpu::get(UUID).is_err(), "still listed");
        Ok(String::new())
    });
    std::process::exit(r.finish());
}
