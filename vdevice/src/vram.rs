//! VRAM: a memfd-backed shared mapping. The VMM maps the same memfd as the
//! VRAM BAR, so guest accesses never trap; untouched VRAM costs no memory.

#![deny(clippy::arithmetic_side_effects)]

use memmap2::{MmapOptions, MmapRaw};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::ptr;

pub struct Vram {
    file: File,
    map: MmapRaw,
    size: u64,
}

// Only raw-pointer copies touch the mapping; concurrent access by guests and
// engines is the hardware's semantics (last writer wins), as on a real GPU.
unsafe impl Send for Vram {}
unsafe impl Sync for Vram {}

impl Vram {
    pub fn new(size: u64) -> io::Result<Self> {
        let name = c"vgpu-vram";
        // SAFETY: memfd_create with a valid C string; the fd is owned below.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(size)?;
        let map = MmapOptions::new().len(size as usize).map_raw(&file)?;
        Ok(Self { file, map, size })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    fn check(&self, off: u64, len: u64) -> bool {
        off.checked_add(len).is_some_and(|end| end <= self.size)
    }

    /// Copy out of VRAM; false (and nothing copied) when out of range.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> bool {
        if !self.check(off, buf.len() as u64) {
            return false;
        }
        // SAFETY: range checked against the mapping.
        unsafe {
            ptr::copy_nonoverlapping(self.as_ptr().add(off as usize), buf.as_mut_ptr(), buf.len())
        };
        true
    }

    pub fn write(&self, off: u64, buf: &[u8]) -> bool {
        if !self.check(off, buf.len() as u64) {
            return false;
        }
        // SAFETY: range checked against the mapping.
        unsafe {
            ptr::copy_nonoverlapping(buf.as_ptr(), self.as_ptr().add(off as usize), buf.len())
        };
        true
    }

    /// memmove inside VRAM.
    pub fn copy_within(&self, src: u64, dst: u64, len: u64) -> bool {
        if !self.check(src, len) || !self.check(dst, len) {
            return false;
        }
        // SAFETY: both ranges checked; ptr::copy allows overlap.
        unsafe {
            ptr::copy(
                self.as_ptr().add(src as usize),
                self.as_ptr().add(dst as usize),
                len as usize,
            )
        };
        true
    }

    /// Fill with a repeating little-endian 32-bit pattern; `off` and `len` are 4-aligned.
    pub fn fill32(&self, off: u64, len: u64, pattern: u32) -> bool {
        if !self.check(off, len) {
            return false;
        }
        let bytes = pattern.to_le_bytes();
        if bytes.iter().all(|&b| b == bytes[0]) {
            // SAFETY: range checked.
            unsafe { ptr::write_bytes(self.as_ptr().add(off as usize), bytes[0], len as usize) };
            return true;
        }
        let words = len / 4;
        let base = unsafe { self.as_ptr().add(off as usize) } as *mut u32;
        for i in 0..words as usize {
            // SAFETY: in range; unaligned store because VRAM offsets are only 4-aligned by contract.
            unsafe { ptr::write_unaligned(base.add(i), pattern.to_le()) };
        }
        true
    }

    /// Zero a range and give its pages back: punch a hole in the memfd
    /// (every mapping sees zeros), falling back to writing zeros.
    pub fn scrub(&self, off: u64, len: u64) -> bool {
        if !self.check(off, len) {
            return false;
        }
        const PAGE: u64 = 4096;
        // off + len <= size was checked: none of this wraps.
        let stop = off.wrapping_add(len);
        let start = off.checked_next_multiple_of(PAGE).unwrap_or(stop).min(stop);
        let end = (stop & !(PAGE.wrapping_sub(1))).max(start);
        let zero = |a: u64, b: u64| {
            // SAFETY: sub-range of a checked range.
            unsafe {
                ptr::write_bytes(self.as_ptr().add(a as usize), 0, b.wrapping_sub(a) as usize)
            }
        };
        zero(off, start);
        zero(end, stop);
        if end > start {
            // SAFETY: fallocate on our own fd with a range inside the file.
            let r = unsafe {
                libc::fallocate(
                    self.fd(),
                    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    start as libc::off_t,
                    end.wrapping_sub(start) as libc::off_t,
                )
            };
            if r != 0 {
                zero(start, end);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_write_fill_scrub() {
        let v = Vram::new(1 << 20).unwrap();
        assert!(v.write(100, b"hello"));
        let mut b = [0u8; 5];
        assert!(v.read(100, &mut b));
        assert_eq!(&b, b"hello");
        assert!(!v.read((1 << 20) - 2, &mut b));
        assert!(!v.write(u64::MAX - 1, b"x"));
        assert!(v.fill32(8192, 8192, 0x1122_3344));
        let mut w = [0u8; 8];
        assert!(v.read(8192 + 4096, &mut w));
        assert_eq!(w, [0x44, 0x33, 0x22, 0x11, 0x44, 0x33, 0x22, 0x11]);
        assert!(v.scrub(50, 20000));
        let mut all = vec![0xffu8; 20000];
        assert!(v.read(50, &mut all));
        assert!(all.iter().all(|&x| x == 0));
    }

    #[test]
    fn sixteen_gib_is_sparse() {
        let v = Vram::new(16 << 30).unwrap();
        assert!(v.write((16 << 30) - 8, &7u64.to_le_bytes()));
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::fstat(v.fd(), &mut st) }, 0);
        // one page touched, not 16 GiB
        assert!(st.st_blocks * 512 < (1 << 20), "blocks {}", st.st_blocks);
    }
}
