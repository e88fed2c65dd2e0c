//! The random operations: what a buggy or hostile VMM does to the small
//! vGPU between the episodes, each kind a method of [`Fuzz`].

use super::*;

/// An offset into the device fd: region index in bits 40+ (vfio-pci's
/// layout, which vgpu_vfio follows), sometimes a region that does not exist,
/// sometimes near a region's end.
pub fn region_offset(rng: &mut Rng, sizes: &[u64]) -> u64 {
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

pub fn access_len(rng: &mut Rng) -> usize {
    rng.pick(&[1, 2, 3, 4, 8, 16, 7, 64, 4096, 4097, 1 << 20])
}

#[derive(Default)]
pub struct Tally {
    pub ops: u64,
    pub refused: u64,
}

impl Tally {
    pub fn note<T, E>(&mut self, r: Result<T, E>) {
        self.ops += 1;
        if r.is_err() {
            self.refused += 1;
        }
    }
}

// ---- the random operations ---------------------------------------------------------

/// The random operations on the small vGPU: its device fd, regions and
/// VRAM mapping, the container and the operations' own buffer.
pub struct Fuzz<'a> {
    pub v: &'a Vg,
    pub container: &'a Container,
    pub dma: DmaBuf,
    /// Every region's size, for offsets near their ends.
    pub sizes: Vec<u64>,
    /// Eventfds that SET_IRQS garbage may route vectors to.
    pub efds: Vec<EventFd>,
    pub rng: Rng,
    pub tally: Tally,
}

impl<'a> Fuzz<'a> {
    pub fn new(v: &'a Vg, container: &'a Container, dma: DmaBuf, seed: u64) -> Self {
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

    pub fn dev(&self) -> &'a vfio::Device {
        &self.v.g.hw.dev
    }

    /// One random operation.
    pub fn step(&mut self) {
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
    pub fn region_read(&mut self) {
        let mut buf = vec![0u8; access_len(&mut self.rng)];
        let off = region_offset(&mut self.rng, &self.sizes);
        let r = self.dev().pread_raw(off, &mut buf);
        self.tally.note(r);
    }

    /// Region writes of random bytes anywhere, any size.
    pub fn region_write(&mut self) {
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
    pub fn config_write(&mut self) {
        let cfg = region_base(CONFIG_REGION.into());
        let v = self.rng.next().to_le_bytes();
        let n = self.rng.pick(&[1usize, 2, 4]);
        let off = cfg | self.rng.below(0x110);
        let r = self.dev().pwrite_raw(off, &v[..n]);
        self.tally.note(r);
    }

    /// SET_IRQS: any index, range, flags; eventfds, bad fds, no data; argsz
    /// too short, exact or long.
    pub fn set_irqs(&mut self) {
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
    pub fn get_infos(&mut self) {
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
    pub fn mmap_anywhere(&mut self) {
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
    pub fn map_or_unmap(&mut self) {
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
    pub fn garbage_ring(&mut self) {
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
