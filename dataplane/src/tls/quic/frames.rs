//! The frames of a decrypted client Initial (RFC 9000 section 19): PADDING, PING and ACK are
//! skipped, CRYPTO frames are handed out; any other frame type (including CONNECTION_CLOSE and
//! types in a non-minimal encoding) or a truncated frame is an error.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::{read_varint, QuicError};

pub const PADDING: u8 = 0x00;
pub const PING: u8 = 0x01;
pub const ACK: u8 = 0x02;
pub const ACK_ECN: u8 = 0x03;
pub const CRYPTO: u8 = 0x06;
/// Largest stream offset plus length (2^62 - 1).
const MAX_OFFSET: u64 = (1 << 62) - 1;

/// One CRYPTO frame: its stream offset and data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CryptoFrame<'a> {
    pub offset: u64,
    pub data: &'a [u8],
}

/// The CRYPTO frames of a packet's payload, in order. After an error it yields nothing more.
#[derive(Clone, Debug)]
pub struct CryptoFrames<'a> {
    rest: &'a [u8],
}

impl<'a> CryptoFrames<'a> {
    pub fn new(payload: &'a [u8]) -> CryptoFrames<'a> {
        CryptoFrames { rest: payload }
    }

    fn varint(&mut self) -> Result<u64, QuicError> {
        let (v, n) = read_varint(self.rest).ok_or(QuicError::Frame)?;
        self.rest = self.rest.get(n..).unwrap_or(&[]);
        Ok(v)
    }

    fn next_frame(&mut self) -> Result<Option<CryptoFrame<'a>>, QuicError> {
        loop {
            let Some((&kind, tail)) = self.rest.split_first() else { return Ok(None) };
            self.rest = tail;
            match kind {
                PADDING => {
                    // A run of padding at once (most of a small Initial is padding).
                    self.rest = self.rest.get(zero_run(self.rest)..).unwrap_or(&[]);
                }
                PING => {}
                ACK | ACK_ECN => {
                    let _largest = self.varint()?;
                    let _delay = self.varint()?;
                    let ranges = self.varint()?;
                    let _first = self.varint()?;
                    // Each range is two varints of at least a byte: the count cannot exceed
                    // what is left, so the loop ends with the bytes.
                    for _ in 0..ranges {
                        let _gap = self.varint()?;
                        let _len = self.varint()?;
                    }
                    if kind == ACK_ECN {
                        for _ in 0..3 {
                            let _count = self.varint()?;
                        }
                    }
                }
                CRYPTO => {
                    let offset = self.varint()?;
                    let len = self.varint()?;
                    if offset.checked_add(len).is_none_or(|end| end > MAX_OFFSET) {
                        return Err(QuicError::Frame);
                    }
                    let len = usize::try_from(len).map_err(|_| QuicError::Frame)?;
                    let data = self.rest.get(..len).ok_or(QuicError::Frame)?;
                    self.rest = self.rest.get(len..).unwrap_or(&[]);
                    return Ok(Some(CryptoFrame { offset, data }));
                }
                _ => return Err(QuicError::Frame),
            }
        }
    }
}

/// Leading zero bytes of `b`, 16 at a time while it can (the OR of a block vectorises).
fn zero_run(b: &[u8]) -> usize {
    let mut n = 0;
    for block in b.chunks_exact(16) {
        if block.iter().fold(0u8, |acc, x| acc | x) != 0 {
            break;
        }
        n += 16;
    }
    n + b.get(n..).unwrap_or(&[]).iter().take_while(|x| **x == PADDING).count()
}

impl<'a> Iterator for CryptoFrames<'a> {
    type Item = Result<CryptoFrame<'a>, QuicError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_frame() {
            Ok(f) => f.map(Ok),
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}
