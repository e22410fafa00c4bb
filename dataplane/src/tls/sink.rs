//! Byte sinks for the fingerprints: the fingerprint strings are streamed into a hash (or,
//! for tests and logs, into a `fmt::Write`) piece by piece, never built on the heap.

use sha2::Digest;

pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

/// Feeds a digest in 64-byte blocks (one `update` call per block instead of one per number).
pub(crate) struct Hashing<D: Digest> {
    digest: D,
    buf: [u8; 64],
    len: usize,
}

impl<D: Digest> Hashing<D> {
    pub(crate) fn new() -> Self {
        Hashing { digest: D::new(), buf: [0; 64], len: 0 }
    }

    pub(crate) fn finish(mut self) -> sha2::digest::Output<D> {
        self.digest.update(self.buf.get(..self.len).unwrap_or(&[]));
        self.digest.finalize()
    }
}

impl<D: Digest> Sink for Hashing<D> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        let room = self.buf.len() - self.len;
        if bytes.len() > room {
            self.digest.update(self.buf.get(..self.len).unwrap_or(&[]));
            self.len = 0;
            if bytes.len() > self.buf.len() {
                self.digest.update(bytes);
                return;
            }
        }
        if let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }
}

/// Writes into a `fmt::Write` (the pieces are always ASCII).
pub(crate) struct Text<'w, W: std::fmt::Write> {
    pub(crate) out: &'w mut W,
    pub(crate) result: std::fmt::Result,
}

impl<W: std::fmt::Write> Sink for Text<'_, W> {
    fn put(&mut self, bytes: &[u8]) {
        if self.result.is_ok() {
            self.result = self.out.write_str(std::str::from_utf8(bytes).unwrap_or("?"));
        }
    }
}

pub(crate) const HEX: &[u8; 16] = b"0123456789abcdef";

#[inline]
pub(crate) fn hex_digit(n: u8) -> u8 {
    HEX.get(usize::from(n & 0xf)).copied().unwrap_or(b'0')
}

/// `v` in decimal.
#[inline]
pub(crate) fn put_dec<S: Sink>(s: &mut S, v: u16) {
    let mut buf = [b'0'; 5];
    let mut n = v;
    let mut len = 0;
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 {
            break;
        }
    }
    s.put(buf.get(buf.len() - len..).unwrap_or(&[]));
}

/// `v` as 4 lowercase hex digits.
#[inline]
pub(crate) fn hex4(v: u16) -> [u8; 4] {
    [hex_digit((v >> 12) as u8), hex_digit((v >> 8) as u8), hex_digit((v >> 4) as u8), hex_digit(v as u8)]
}
