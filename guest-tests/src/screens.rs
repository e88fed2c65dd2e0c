//! Screens: the frames an L2 guest draws on its vGPU's display head with
//! the engine (`FILL_RECT`), and what the VMM in L1 saw of them (QEMU's
//! `screendump`, a PPM brought out to L0): the test pattern both sides
//! compute, the PPM reader, the PNG a person looks at, and the stream of
//! files L1 sends out on its second serial port (lib/guest.sh `send_file`).

use std::fmt;
use std::fs::{self, File};
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

/// One filled rectangle of a test frame, in pixels; `rgb` is XRGB8888's
/// low 24 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    pub rgb: u32,
}

/// Colour bars of the test frames (SMPTE-like, in XRGB8888).
const BARS: [u32; 8] = [
    0xc0c0c0, 0xc0c000, 0x00c0c0, 0x00c000, 0xc000c0, 0xc00000, 0x0000c0, 0x101010,
];

/// Test frame `frame` of a guest whose pattern is `seed`, `w` x `h`
/// pixels: a background, eight colour bars rotated by the frame number
/// over the top half, and a row of 16 black or white squares spelling the
/// seed's low 16 bits (so each guest's screen is its own), all drawn with
/// FILL_RECT in this order. Every rectangle lies inside the frame.
pub fn test_frame(frame: u32, seed: u32, w: u32, h: u32) -> Vec<Block> {
    let bg = 0x20_2040u32.wrapping_add(frame.wrapping_mul(0x10_2000)) & 0xff_ffff;
    let mut out = vec![Block {
        x: 0,
        y: 0,
        w,
        h,
        rgb: bg,
    }];
    let bar_w = w / 8;
    for i in 0..8u32 {
        out.push(Block {
            x: i * bar_w,
            y: 0,
            w: bar_w,
            h: h / 2,
            rgb: BARS[((i + frame) % 8) as usize],
        });
    }
    let step = (w / 17).max(1);
    let sq = (step * 3 / 4).min(h / 8).max(1);
    for bit in 0..16u32 {
        let on = seed >> (15 - bit) & 1 == 1;
        out.push(Block {
            x: step / 2 + bit * step,
            y: h / 2 + sq,
            w: sq,
            h: sq,
            rgb: if on { 0xffffff } else { 0x000000 },
        });
    }
    out.retain(|b| b.w > 0 && b.h > 0 && b.x + b.w <= w && b.y + b.h <= h);
    out
}

/// The pixels (XRGB8888, X = 0) `blocks` make on a `w` x `h` frame.
pub fn render(blocks: &[Block], w: u32, h: u32) -> Vec<u32> {
    let mut px = vec![0u32; (w as usize) * (h as usize)];
    for b in blocks {
        for y in b.y..b.y + b.h {
            let row = y as usize * w as usize;
            px[row + b.x as usize..row + (b.x + b.w) as usize].fill(b.rgb);
        }
    }
    px
}

/// A screendump: QEMU writes binary PPM ("P6", maxval 255).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ppm {
    pub width: u32,
    pub height: u32,
    /// RGB, 3 bytes a pixel, row by row.
    pub rgb: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ScreenError {
    NotPpm(String),
    Io(String),
}

impl fmt::Display for ScreenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScreenError::NotPpm(w) => write!(f, "not a binary PPM: {w}"),
            ScreenError::Io(w) => f.write_str(w),
        }
    }
}

impl Ppm {
    pub fn parse(b: &[u8]) -> Result<Ppm, ScreenError> {
        let bad = |w: &str| ScreenError::NotPpm(w.to_string());
        // Four header tokens separated by whitespace (comments: none in
        // QEMU's output), then exactly one whitespace byte.
        let mut at = 0;
        let mut tokens = Vec::new();
        while tokens.len() < 4 {
            while b.get(at).is_some_and(|c| c.is_ascii_whitespace()) {
                at += 1;
            }
            let start = at;
            while b.get(at).is_some_and(|c| !c.is_ascii_whitespace()) {
                at += 1;
            }
            if start == at {
                return Err(bad("short header"));
            }
            tokens.push(std::str::from_utf8(&b[start..at]).map_err(|_| bad("header"))?);
        }
        at += 1;
        if tokens[0] != "P6" || tokens[3] != "255" {
            return Err(bad("magic or maxval"));
        }
        let num = |t: &str| t.parse::<u32>().map_err(|_| bad("size"));
        let (width, height) = (num(tokens[1])?, num(tokens[2])?);
        let len = (width as usize)
            .checked_mul(height as usize)
            .and_then(|n| n.checked_mul(3))
            .ok_or_else(|| bad("size"))?;
        let rgb = b
            .get(at..at + len)
            .ok_or_else(|| bad("short pixel data"))?
            .to_vec();
        Ok(Ppm { width, height, rgb })
    }

    pub fn load(path: &Path) -> Result<Ppm, ScreenError> {
        let b = fs::read(path).map_err(|e| ScreenError::Io(format!("{}: {e}", path.display())))?;
        Ppm::parse(&b)
    }

    /// The pixel at (x, y) as 0xRRGGBB.
    pub fn pixel(&self, x: u32, y: u32) -> u32 {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        u32::from(self.rgb[i]) << 16 | u32::from(self.rgb[i + 1]) << 8 | u32::from(self.rgb[i + 2])
    }

    /// Compare with the frame `want` (XRGB8888, this size): None when every
    /// pixel is equal, else how many differ and the first that does.
    pub fn differs(&self, want: &[u32]) -> Option<String> {
        if want.len() != self.width as usize * self.height as usize {
            return Some(format!(
                "size {}x{} and {} pixels",
                self.width,
                self.height,
                want.len()
            ));
        }
        let mut bad = 0usize;
        let mut first = None;
        for (i, w) in want.iter().enumerate() {
            let (x, y) = (
                (i % self.width as usize) as u32,
                (i / self.width as usize) as u32,
            );
            let got = self.pixel(x, y);
            if got != w & 0xff_ffff {
                bad += 1;
                first.get_or_insert(format!("({x},{y}) is {got:06x}, not {:06x}", w & 0xff_ffff));
            }
        }
        first.map(|f| format!("{bad} pixels differ, first {f}"))
    }

    /// The PNG of this screen, for people.
    pub fn write_png(&self, path: &Path) -> Result<(), ScreenError> {
        let io = |e: &dyn fmt::Display| ScreenError::Io(format!("{}: {e}", path.display()));
        let f = File::create(path).map_err(|e| io(&e))?;
        let mut enc = png::Encoder::new(BufWriter::new(f), self.width, self.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Best);
        let mut w = enc.write_header().map_err(|e| io(&e))?;
        w.write_image_data(&self.rgb).map_err(|e| io(&e))?;
        w.finish().map_err(|e| io(&e))
    }
}

/// Split the stream L1 wrote to its second serial port ("VGPU-FILE NAME
/// SIZE" lines, each followed by SIZE bytes; NAME.gz is gunzipped to NAME)
/// into files in `dir`. Returns their paths; a cut last file is an error,
/// names with a '/' are refused.
pub fn unpack(stream: &Path, dir: &Path) -> Result<Vec<PathBuf>, ScreenError> {
    let io = |e: std::io::Error| ScreenError::Io(format!("{}: {e}", stream.display()));
    let mut b = Vec::new();
    File::open(stream)
        .and_then(|mut f| f.read_to_end(&mut b))
        .map_err(io)?;
    fs::create_dir_all(dir).map_err(io)?;
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let nl = b[at..]
            .iter()
            .position(|&c| c == b'\n')
            .ok_or_else(|| ScreenError::Io("a file header without its end".into()))?;
        let line = String::from_utf8_lossy(&b[at..at + nl]).into_owned();
        at += nl + 1;
        let mut w = line.split(' ');
        let (Some("VGPU-FILE"), Some(name), Some(size), None) =
            (w.next(), w.next(), w.next(), w.next())
        else {
            return Err(ScreenError::Io(format!("not a file header: {line:?}")));
        };
        let size: usize = size
            .parse()
            .map_err(|_| ScreenError::Io(format!("bad size in {line:?}")))?;
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(ScreenError::Io(format!("bad file name in {line:?}")));
        }
        let data = b.get(at..at + size).ok_or_else(|| {
            ScreenError::Io(format!(
                "{name}: cut after {} of {size} bytes",
                b.len() - at
            ))
        })?;
        at += size;
        // send_file gzips: the file is what was sent, unpacked.
        let (name, data) = match name.strip_suffix(".gz") {
            Some(plain) => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(data)
                    .read_to_end(&mut out)
                    .map_err(|e| ScreenError::Io(format!("{name}: {e}")))?;
                (plain, out)
            }
            None => (name, data.to_vec()),
        };
        let path = dir.join(name);
        fs::write(&path, data).map_err(|e| ScreenError::Io(format!("{}: {e}", path.display())))?;
        out.push(path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_differ_by_frame_and_seed_and_stay_inside() {
        for (w, h) in [(1024, 768), (800, 600), (64, 48), (8, 8)] {
            let a = test_frame(0, 0x1234, w, h);
            assert!(a.iter().all(|b| b.x + b.w <= w && b.y + b.h <= h));
            let pa = render(&a, w, h);
            if w >= 64 {
                let other_frame = render(&test_frame(1, 0x1234, w, h), w, h);
                let other_seed = render(&test_frame(0, 0x1235, w, h), w, h);
                assert!(pa != other_frame, "{w}x{h}: frames 0 and 1 look the same");
                assert!(
                    pa != other_seed,
                    "{w}x{h}: seeds 0x1234 and 0x1235 look the same"
                );
            }
        }
    }

    #[test]
    fn a_ppm_round_trips_and_compares() {
        let (w, h) = (64, 48);
        let want = render(&test_frame(3, 0xbeef, w, h), w, h);
        let mut file = format!("P6\n{w} {h}\n255\n").into_bytes();
        for p in &want {
            file.extend_from_slice(&[(p >> 16) as u8, (p >> 8) as u8, *p as u8]);
        }
        let ppm = Ppm::parse(&file).unwrap();
        assert_eq!((ppm.width, ppm.height), (w, h));
        assert_eq!(ppm.differs(&want), None);
        let other = render(&test_frame(4, 0xbeef, w, h), w, h);
        assert!(ppm.differs(&other).unwrap().contains("pixels differ"));
        assert!(Ppm::parse(&file[..file.len() - 1]).is_err());
        assert!(Ppm::parse(b"P5\n1 1\n255\n\0").is_err());
    }

    #[test]
    fn the_file_stream_splits_and_refuses_a_cut_file() {
        let dir = std::env::temp_dir().join(format!("vgpu-screens-{}", std::process::id()));
        let stream = dir.with_extension("stream");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"hello").unwrap();
        let gz = gz.finish().unwrap();
        let mut b = b"VGPU-FILE a.txt 3\nabcVGPU-FILE b 0\n".to_vec();
        b.extend_from_slice(format!("VGPU-FILE c.ppm.gz {}\n", gz.len()).as_bytes());
        b.extend_from_slice(&gz);
        fs::write(&stream, b).unwrap();
        let got = unpack(&stream, &dir).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(fs::read(&got[0]).unwrap(), b"abc");
        assert_eq!(got[2], dir.join("c.ppm"));
        assert_eq!(fs::read(&got[2]).unwrap(), b"hello");
        fs::write(&stream, b"VGPU-FILE a.txt 9\nabc").unwrap();
        assert!(unpack(&stream, &dir).is_err());
        fs::write(&stream, b"VGPU-FILE ../x 1\na").unwrap();
        assert!(unpack(&stream, &dir).is_err());
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_file(&stream);
    }
}
