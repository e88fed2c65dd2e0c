//! The guest's console as an input that a busy loop polls: lines typed on
//! the serial console (or piped in) without ever blocking the loop.

/// Longest partial line kept; a runaway line without a newline is dropped
/// rather than grown without bound.
const MAX_LINE: usize = 256;

/// Splits bytes as they arrive into trimmed lines (`\n` or `\r` ends one).
#[derive(Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// The complete lines in `bytes`, with what came before them.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' || b == b'\r' {
                let line = String::from_utf8_lossy(&self.partial).trim().to_string();
                if !line.is_empty() {
                    out.push(line);
                }
                self.partial.clear();
            } else if self.partial.len() < MAX_LINE {
                self.partial.push(b);
            }
        }
        out
    }
}

/// Standard input, polled: lines that have arrived, never waiting for one.
/// At end of file (or on an error) it stays quiet for good.
#[derive(Default)]
pub struct StdinLines {
    lines: Lines,
    closed: bool,
}

impl StdinLines {
    /// The lines that are complete by now; empty when nothing came.
    pub fn poll(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        // Bounded: a flood of input cannot keep the caller here.
        for _ in 0..16 {
            if self.closed {
                break;
            }
            let mut pfd = libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd; timeout 0 never blocks.
            let ready = unsafe { libc::poll(&mut pfd, 1, 0) };
            if ready != 1 {
                break;
            }
            if pfd.revents & libc::POLLIN == 0 {
                // POLLHUP, POLLERR or POLLNVAL without data: nothing will come.
                self.closed = true;
                break;
            }
            let mut buf = [0u8; 256];
            // SAFETY: reads at most buf.len() bytes into buf. POLLIN said
            // a read will not block (a tty in canonical mode gives a line).
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            match usize::try_from(n) {
                Ok(0) | Err(_) => self.closed = true,
                Ok(n) => out.extend(self.lines.feed(&buf[..n])),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_at_newline_or_return_and_are_trimmed() {
        let mut l = Lines::default();
        assert!(l.feed(b"st").is_empty());
        assert_eq!(l.feed(b"op\r\n  go \nx"), ["stop", "go"]);
        assert_eq!(l.feed(b"\n"), ["x"]);
        assert!(l.feed(b"\n\r\n").is_empty());
    }

    #[test]
    fn a_runaway_line_is_cut_not_grown() {
        let mut l = Lines::default();
        l.feed(&[b'a'; 10 * MAX_LINE]);
        let got = l.feed(b"\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), MAX_LINE);
    }
}
