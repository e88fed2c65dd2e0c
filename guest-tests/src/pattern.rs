//! Position-dependent data patterns, and writing and scanning them across
//! a mapped VRAM BAR: each guest's pattern follows from a name (its vGPU's
//! UUID), so a misplaced, aliased or foreign word shows up, and whose it is.

use crate::Bar;

/// Patterns go through the BAR in pieces of this size.
const CHUNK: usize = 1 << 20;

/// FNV-1a of the normalised name (a UUID): the seed of its pattern.
pub fn seed_of(name: &str) -> u64 {
    name.trim()
        .to_ascii_lowercase()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

/// splitmix64 of (seed, word index): position-dependent, so a misplaced or
/// aliased page shows up as well as a foreign one.
pub fn pattern_word(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fill `buf` with the pattern's words from word `first_word` on.
pub fn pattern_bytes(seed: u64, first_word: u64, buf: &mut [u8]) {
    for (i, w) in buf.chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(&pattern_word(seed, first_word + i as u64).to_le_bytes());
    }
}

/// `len` bytes of the pattern from its start: reproducible test data.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    pattern_bytes(seed, 0, &mut v);
    v
}

/// Every little-endian u32 of `data` is `v` (what a FILL leaves).
pub fn all_words(data: &[u8], v: u32) -> bool {
    data.chunks_exact(4).all(|w| w == v.to_le_bytes())
}

/// Write the pattern over the first `size` bytes of `vram`.
pub fn write_pattern(vram: &Bar, size: u64, seed: u64) {
    let mut buf = vec![0u8; CHUNK];
    let mut off = 0;
    while off < size {
        let n = (size - off).min(CHUNK as u64) as usize;
        pattern_bytes(seed, off / 8, &mut buf[..n]);
        vram.copy_in(off, &buf[..n]);
        off += n as u64;
    }
}

/// What [`scan_pattern`] found.
#[derive(Default, Debug)]
pub struct Scan {
    /// Words that are not ours.
    pub bad: u64,
    /// Of those, words that hold the peer's pattern at the same place.
    pub peer_hits: u64,
    /// Byte offset of the first bad word.
    pub first_bad: Option<u64>,
}

/// Compare the first `size` bytes of `vram` with the pattern of `seed`,
/// telling apart words that hold the pattern of `peer`.
pub fn scan_pattern(vram: &Bar, size: u64, seed: u64, peer: Option<u64>) -> Scan {
    let mut s = Scan::default();
    let mut buf = vec![0u8; CHUNK];
    let mut off = 0;
    while off < size {
        let n = (size - off).min(CHUNK as u64) as usize;
        vram.copy_out(off, &mut buf[..n]);
        for (i, w) in buf[..n].chunks_exact(8).enumerate() {
            let index = off / 8 + i as u64;
            let got = u64::from_le_bytes(w.try_into().expect("8 bytes"));
            if got != pattern_word(seed, index) {
                s.bad += 1;
                s.first_bad.get_or_insert(index * 8);
                if peer.is_some_and(|p| got == pattern_word(p, index)) {
                    s.peer_hits += 1;
                }
            }
        }
        off += n as u64;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_ignore_case_and_space_and_patterns_depend_on_place() {
        let u = "D04AF641-4703-401C-8170-F12601CA576E";
        assert_eq!(seed_of(u), seed_of(&format!(" {} ", u.to_lowercase())));
        let s = seed_of(u);
        assert_ne!(pattern_word(s, 0), pattern_word(s, 1));
        assert_ne!(pattern_word(s, 0), pattern_word(seed_of("other"), 0));
        let mut b = [0u8; 16];
        pattern_bytes(s, 1, &mut b);
        assert_eq!(b[..8], pattern_word(s, 1).to_le_bytes());
        assert_eq!(random_bytes(s, 8), pattern_word(s, 0).to_le_bytes());
        assert!(all_words(&[1, 0, 0, 0, 1, 0, 0, 0], 1));
        assert!(!all_words(&[1, 0, 0, 0, 2, 0, 0, 0], 1));
    }
}
