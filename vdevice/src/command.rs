//! The 64-byte command format the engines execute, with an encoder for
//! drivers and tests and the validating decoder the engine uses.

use bitfield_struct::bitfield;

/// Every command is 64 bytes; rings are arrays of commands.
pub const COMMAND_BYTES: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    Nop = 0,
    Copy = 1,
    Fill = 2,
    Fence = 3,
    SemWait = 4,
    Timestamp = 5,
    Crc32 = 6,
    FillRect = 7,
    Blit = 8,
}

impl Opcode {
    /// Every opcode, in numeric order.
    pub const ALL: &'static [Self] = &[
        Self::Nop,
        Self::Copy,
        Self::Fill,
        Self::Fence,
        Self::SemWait,
        Self::Timestamp,
        Self::Crc32,
        Self::FillRect,
        Self::Blit,
    ];

    /// Bit n set for every opcode n (the window's OPCODES register).
    pub const fn supported_mask() -> u32 {
        let mut mask = 0;
        let mut i = 0;
        while i < Self::ALL.len() {
            mask |= 1 << Self::ALL[i] as u8;
            i += 1;
        }
        mask
    }

    pub fn from_bits(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Nop,
            1 => Self::Copy,
            2 => Self::Fill,
            3 => Self::Fence,
            4 => Self::SemWait,
            5 => Self::Timestamp,
            6 => Self::Crc32,
            7 => Self::FillRect,
            8 => Self::Blit,
            _ => return None,
        })
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Nop => "NOP",
            Self::Copy => "COPY",
            Self::Fill => "FILL",
            Self::Fence => "FENCE",
            Self::SemWait => "SEM_WAIT",
            Self::Timestamp => "TIMESTAMP",
            Self::Crc32 => "CRC32",
            Self::FillRect => "FILL_RECT",
            Self::Blit => "BLIT",
        }
    }
}

/// Byte 1 of a command.
#[bitfield(u8)]
#[derive(PartialEq, Eq)]
pub struct CmdFlags {
    /// `dst` is a system-memory address (else a VRAM offset).
    pub dst_sysmem: bool,
    /// `src` is a system-memory address (else a VRAM offset).
    pub src_sysmem: bool,
    /// FENCE only: raise INTR_STATUS.FENCE on completion.
    pub intr: bool,
    #[bits(5)]
    __: u8,
}

impl CmdFlags {
    /// The flag bits the format defines; the others are reserved.
    pub const DEFINED: u8 = CmdFlags::new()
        .with_dst_sysmem(true)
        .with_src_sysmem(true)
        .with_intr(true)
        .into_bits();
}

/// Where each field of a command lives (bytes, little endian); every byte
/// not listed here is reserved and must be 0.
pub mod layout {
    use std::ops::Range;

    pub const OPCODE: usize = 0;
    /// [`super::CmdFlags`].
    pub const FLAGS: usize = 1;
    pub const DST: Range<usize> = 8..16;
    pub const SRC: Range<usize> = 16..24;
    pub const LEN: Range<usize> = 24..32;
    pub const VALUE: Range<usize> = 32..40;
    /// The rectangle of FILL_RECT and BLIT: bytes per row, rows, and the
    /// bytes from one row to the next at the destination and the source.
    pub const WIDTH: Range<usize> = 40..44;
    pub const HEIGHT: Range<usize> = 44..48;
    pub const DST_PITCH: Range<usize> = 48..52;
    pub const SRC_PITCH: Range<usize> = 52..56;
    /// Reserved bytes: between the flags and `dst`, and after the rectangle.
    pub const RESERVED: [Range<usize>; 2] =
        [FLAGS + 1..DST.start, SRC_PITCH.end..super::COMMAND_BYTES];

    /// (name, offset, bytes) of every field, for the C header and SPEC.md.
    pub const FIELDS: [(&str, usize, usize); 10] = [
        ("OPCODE", OPCODE, 1),
        ("FLAGS", FLAGS, 1),
        ("DST", DST.start, DST.end - DST.start),
        ("SRC", SRC.start, SRC.end - SRC.start),
        ("LEN", LEN.start, LEN.end - LEN.start),
        ("VALUE", VALUE.start, VALUE.end - VALUE.start),
        ("WIDTH", WIDTH.start, WIDTH.end - WIDTH.start),
        ("HEIGHT", HEIGHT.start, HEIGHT.end - HEIGHT.start),
        (
            "DST_PITCH",
            DST_PITCH.start,
            DST_PITCH.end - DST_PITCH.start,
        ),
        (
            "SRC_PITCH",
            SRC_PITCH.start,
            SRC_PITCH.end - SRC_PITCH.start,
        ),
    ];
}

/// A decoded command; its byte layout is [`layout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    pub opcode: Opcode,
    pub flags: CmdFlags,
    pub dst: u64,
    pub src: u64,
    pub len: u64,
    pub value: u64,
    /// FILL_RECT and BLIT: the rectangle (0 for every other opcode).
    pub rect: Rect,
}

/// A rectangle in VRAM: `height` rows of `width` bytes, `dst_pitch`
/// (`src_pitch`) bytes apart at the destination (source).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rect {
    pub width: u32,
    pub height: u32,
    pub dst_pitch: u32,
    pub src_pitch: u32,
}

impl Rect {
    /// Bytes from the start of the first row to the end of the last, at
    /// a side with `pitch`; None if it does not fit in 64 bits.
    pub fn span(&self, pitch: u32) -> Option<u64> {
        if self.height == 0 {
            return Some(0);
        }
        u64::from(pitch)
            .checked_mul(u64::from(self.height) - 1)?
            .checked_add(u64::from(self.width))
    }

    /// Bytes the rectangle covers.
    pub fn bytes(&self) -> u64 {
        u64::from(self.width).saturating_mul(u64::from(self.height))
    }
}

/// Why a command was rejected (the engine faults with BAD_COMMAND).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandError {
    UnknownOpcode(u8),
    ReservedBits,
    BadFlags,
    Misaligned,
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().expect("4 bytes"))
}

fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

impl Command {
    fn new(opcode: Opcode) -> Self {
        Self {
            opcode,
            flags: CmdFlags::new(),
            dst: 0,
            src: 0,
            len: 0,
            value: 0,
            rect: Rect::default(),
        }
    }

    pub fn nop() -> Self {
        Self::new(Opcode::Nop)
    }

    /// Copy `len` bytes from `src` to `dst`; `Loc` says which memory each is in.
    pub fn copy(dst: Loc, src: Loc, len: u64) -> Self {
        Self {
            flags: CmdFlags::new()
                .with_dst_sysmem(dst.is_sysmem())
                .with_src_sysmem(src.is_sysmem()),
            dst: dst.addr(),
            src: src.addr(),
            len,
            ..Self::new(Opcode::Copy)
        }
    }

    /// Fill `len` bytes (multiple of 4) at `dst` (4-aligned) with a 32-bit pattern.
    pub fn fill(dst: Loc, len: u64, pattern: u32) -> Self {
        Self {
            flags: CmdFlags::new().with_dst_sysmem(dst.is_sysmem()),
            dst: dst.addr(),
            len,
            value: pattern as u64,
            ..Self::new(Opcode::Fill)
        }
    }

    /// Write the 64-bit `value` to `dst` (8-aligned); `intr` raises FENCE.
    pub fn fence(dst: Loc, value: u64, intr: bool) -> Self {
        Self {
            flags: CmdFlags::new()
                .with_dst_sysmem(dst.is_sysmem())
                .with_intr(intr),
            dst: dst.addr(),
            value,
            ..Self::new(Opcode::Fence)
        }
    }

    /// Stall this ring until the 64-bit word at `src` (8-aligned) is >= `value`.
    pub fn sem_wait(src: Loc, value: u64) -> Self {
        Self {
            flags: CmdFlags::new().with_src_sysmem(src.is_sysmem()),
            src: src.addr(),
            value,
            ..Self::new(Opcode::SemWait)
        }
    }

    /// Write the device time (ns) as 64 bits to `dst` (8-aligned).
    pub fn timestamp(dst: Loc) -> Self {
        Self {
            flags: CmdFlags::new().with_dst_sysmem(dst.is_sysmem()),
            dst: dst.addr(),
            ..Self::new(Opcode::Timestamp)
        }
    }

    /// CRC-32 (IEEE 802.3) of `len` bytes at `src`, written as 64 bits to `dst` (8-aligned).
    pub fn crc32(dst: Loc, src: Loc, len: u64) -> Self {
        Self {
            flags: CmdFlags::new()
                .with_dst_sysmem(dst.is_sysmem())
                .with_src_sysmem(src.is_sysmem()),
            dst: dst.addr(),
            src: src.addr(),
            len,
            ..Self::new(Opcode::Crc32)
        }
    }

    /// Fill a rectangle of VRAM at `dst` (4-aligned): `height` rows of
    /// `width` bytes (a multiple of 4), `pitch` bytes apart, with a 32-bit pattern.
    pub fn fill_rect(dst: u64, width: u32, height: u32, pitch: u32, pattern: u32) -> Self {
        Self {
            dst,
            value: pattern as u64,
            rect: Rect {
                width,
                height,
                dst_pitch: pitch,
                src_pitch: 0,
            },
            ..Self::new(Opcode::FillRect)
        }
    }

    /// Copy a rectangle of VRAM: `height` rows of `width` bytes from `src`
    /// (rows `src_pitch` apart) to `dst` (rows `dst_pitch` apart).
    pub fn blit(dst: u64, src: u64, rect: Rect) -> Self {
        Self {
            dst,
            src,
            rect,
            ..Self::new(Opcode::Blit)
        }
    }

    pub fn encode(&self) -> [u8; COMMAND_BYTES] {
        let mut b = [0u8; COMMAND_BYTES];
        b[layout::OPCODE] = self.opcode as u8;
        b[layout::FLAGS] = self.flags.into_bits();
        b[layout::DST].copy_from_slice(&self.dst.to_le_bytes());
        b[layout::SRC].copy_from_slice(&self.src.to_le_bytes());
        b[layout::LEN].copy_from_slice(&self.len.to_le_bytes());
        b[layout::VALUE].copy_from_slice(&self.value.to_le_bytes());
        b[layout::WIDTH].copy_from_slice(&self.rect.width.to_le_bytes());
        b[layout::HEIGHT].copy_from_slice(&self.rect.height.to_le_bytes());
        b[layout::DST_PITCH].copy_from_slice(&self.rect.dst_pitch.to_le_bytes());
        b[layout::SRC_PITCH].copy_from_slice(&self.rect.src_pitch.to_le_bytes());
        b
    }

    /// Decode and validate: reserved bytes zero, flags meaningful for the
    /// opcode, addresses aligned as the opcode requires.
    pub fn decode(b: &[u8; COMMAND_BYTES]) -> Result<Self, CommandError> {
        let op = b[layout::OPCODE];
        let opcode = Opcode::from_bits(op).ok_or(CommandError::UnknownOpcode(op))?;
        if layout::RESERVED
            .into_iter()
            .flat_map(|r| &b[r])
            .any(|&x| x != 0)
        {
            return Err(CommandError::ReservedBits);
        }
        let flags = CmdFlags::from_bits(b[layout::FLAGS]);
        let cmd = Command {
            opcode,
            flags,
            dst: le64(&b[layout::DST]),
            src: le64(&b[layout::SRC]),
            len: le64(&b[layout::LEN]),
            value: le64(&b[layout::VALUE]),
            rect: Rect {
                width: le32(&b[layout::WIDTH]),
                height: le32(&b[layout::HEIGHT]),
                dst_pitch: le32(&b[layout::DST_PITCH]),
                src_pitch: le32(&b[layout::SRC_PITCH]),
            },
        };
        // Flags an opcode does not use must be clear, and so must the
        // fields it does not read: a garbage command is rejected, not guessed at.
        let (uses_dst, uses_src, uses_len, uses_value) = match opcode {
            Opcode::Nop => (false, false, false, false),
            Opcode::Copy => (true, true, true, false),
            Opcode::Fill => (true, false, true, true),
            Opcode::Fence => (true, false, false, true),
            Opcode::SemWait => (false, true, false, true),
            Opcode::Timestamp => (true, false, false, false),
            Opcode::Crc32 => (true, true, true, false),
            Opcode::FillRect => (true, false, false, true),
            Opcode::Blit => (true, true, false, false),
        };
        let rect_op = matches!(opcode, Opcode::FillRect | Opcode::Blit);
        // The rectangle commands work in VRAM only.
        let bad_flags = (rect_op && (flags.dst_sysmem() || flags.src_sysmem()))
            || (!uses_dst && flags.dst_sysmem())
            || (!uses_src && flags.src_sysmem())
            || (opcode != Opcode::Fence && flags.intr())
            || flags.into_bits() & !CmdFlags::DEFINED != 0;
        let bad_fields = (!uses_dst && cmd.dst != 0)
            || (!uses_src && cmd.src != 0)
            || (!uses_len && cmd.len != 0)
            || (!uses_value && cmd.value != 0)
            || (matches!(opcode, Opcode::Fill | Opcode::FillRect) && cmd.value > u32::MAX as u64)
            || (!rect_op && cmd.rect != Rect::default())
            || (opcode == Opcode::FillRect && cmd.rect.src_pitch != 0);
        if bad_flags {
            return Err(CommandError::BadFlags);
        }
        if bad_fields {
            return Err(CommandError::ReservedBits);
        }
        let misaligned = match opcode {
            Opcode::Fill => !cmd.dst.is_multiple_of(4) || !cmd.len.is_multiple_of(4),
            Opcode::Fence | Opcode::Timestamp | Opcode::Crc32 => !cmd.dst.is_multiple_of(8),
            Opcode::SemWait => !cmd.src.is_multiple_of(8),
            Opcode::FillRect => {
                !cmd.dst.is_multiple_of(4)
                    || !cmd.rect.width.is_multiple_of(4)
                    || !cmd.rect.dst_pitch.is_multiple_of(4)
            }
            _ => false,
        };
        if misaligned {
            return Err(CommandError::Misaligned);
        }
        Ok(cmd)
    }

    pub fn dst_loc(&self) -> Loc {
        Loc::new(self.flags.dst_sysmem(), self.dst)
    }

    pub fn src_loc(&self) -> Loc {
        Loc::new(self.flags.src_sysmem(), self.src)
    }
}

/// An address in one of a partition's two address spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loc {
    /// Offset inside the partition's VRAM slice.
    Vram(u64),
    /// Partition system-memory address (translated when PT CTRL.XLATE=1).
    Sys(u64),
}

impl Loc {
    pub fn new(sysmem: bool, addr: u64) -> Self {
        if sysmem {
            Loc::Sys(addr)
        } else {
            Loc::Vram(addr)
        }
    }

    pub fn is_sysmem(self) -> bool {
        matches!(self, Loc::Sys(_))
    }

    pub fn addr(self) -> u64 {
        match self {
            Loc::Vram(a) | Loc::Sys(a) => a,
        }
    }

    pub fn offset(self, by: u64) -> Self {
        match self {
            Loc::Vram(a) => Loc::Vram(a.wrapping_add(by)),
            Loc::Sys(a) => Loc::Sys(a.wrapping_add(by)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let cmds = [
            Command::nop(),
            Command::copy(Loc::Sys(0x1000), Loc::Vram(0x40), 4096),
            Command::fill(Loc::Vram(0x100), 64, 0xdead_beef),
            Command::fence(Loc::Sys(0x2000), 7, true),
            Command::sem_wait(Loc::Vram(0x8), 3),
            Command::timestamp(Loc::Vram(0x10)),
            Command::crc32(Loc::Vram(0x18), Loc::Sys(0x3000), 100),
            Command::fill_rect(0x1000, 64, 8, 4096, 0x00ff_0000),
            Command::blit(
                0x2000,
                0x40,
                Rect {
                    width: 3,
                    height: 2,
                    dst_pitch: 100,
                    src_pitch: 7,
                },
            ),
        ];
        for c in cmds {
            assert_eq!(Command::decode(&c.encode()), Ok(c));
        }
    }

    #[test]
    fn layout_covers_every_byte_once() {
        let mut owner = [0u8; COMMAND_BYTES];
        let fields = layout::FIELDS.iter().map(|&(_, off, n)| off..off + n);
        for r in fields.chain(layout::RESERVED) {
            for b in r {
                owner[b] += 1;
            }
        }
        assert!(owner.iter().all(|&n| n == 1), "{owner:?}");
        assert_eq!(CmdFlags::DEFINED, 0x7);
        assert_eq!(Opcode::supported_mask(), 0x1ff);
        for (i, op) in Opcode::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i);
            assert_eq!(Opcode::from_bits(i as u8), Some(*op));
        }
    }

    #[test]
    fn garbage_is_rejected_with_a_reason() {
        let mut b = Command::nop().encode();
        b[0] = 0x77;
        assert_eq!(Command::decode(&b), Err(CommandError::UnknownOpcode(0x77)));
        let mut b = Command::nop().encode();
        b[63] = 1;
        assert_eq!(Command::decode(&b), Err(CommandError::ReservedBits));
        let mut b = Command::copy(Loc::Vram(0), Loc::Vram(8), 8).encode();
        b[1] |= 0x4; // INTR on a COPY
        assert_eq!(Command::decode(&b), Err(CommandError::BadFlags));
        let b = Command::fence(Loc::Vram(4), 1, false).encode();
        assert_eq!(Command::decode(&b), Err(CommandError::Misaligned));
        let b = Command::fill(Loc::Vram(0), 6, 1).encode();
        assert_eq!(Command::decode(&b), Err(CommandError::Misaligned));
        let mut b = Command::nop().encode();
        b[8] = 1; // NOP with a dst
        assert_eq!(Command::decode(&b), Err(CommandError::ReservedBits));
        let mut b = Command::fill(Loc::Vram(0), 8, 1).encode();
        b[40] = 4; // a FILL with a rectangle
        assert_eq!(Command::decode(&b), Err(CommandError::ReservedBits));
        let mut b = Command::fill_rect(0, 8, 1, 8, 1).encode();
        b[1] = 1; // a rectangle in system memory
        assert_eq!(Command::decode(&b), Err(CommandError::BadFlags));
        let b = Command::fill_rect(0, 6, 1, 8, 1).encode();
        assert_eq!(Command::decode(&b), Err(CommandError::Misaligned));
    }
}
