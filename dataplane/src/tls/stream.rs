//! From the client's byte stream to its ClientHello: the TLS records at the start of the
//! stream are walked (RFC 8446 section 5.1), the handshake message they carry is parsed in
//! place when the first record holds it, or copied into the caller's scratch buffer when it
//! spans records. [`parse_handshake`] takes a message without record framing.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::client_hello::{
    parse_body, HelloOutcome, InvalidHello, HANDSHAKE_CLIENT_HELLO, HANDSHAKE_HEADER_LEN, MAX_HELLO_LEN,
};
use super::record::{self, HeaderCheck};

/// Parse the ClientHello at the start of the client's byte stream.
///
/// `scratch` receives the handshake message when it spans records (its first
/// [`MAX_HELLO_LEN`] bytes are enough); a hello inside the first record is parsed in place
/// and `scratch` is not touched. Never panics, never allocates.
pub fn parse_stream<'a>(stream: &'a [u8], scratch: &'a mut [u8]) -> HelloOutcome<'a> {
    match parse_stream_in_place(stream, scratch.len()) {
        Some(outcome) => outcome,
        None => {
            let first_len = match record::check_header(stream) {
                HeaderCheck::Handshake(h) => h.length,
                _ => 0,
            };
            let total = match walk(stream, first_len, scratch.len(), Some(&mut *scratch)) {
                Walk::Done(total) => total,
                // Unreachable: the same walk succeeded in `parse_stream_in_place`.
                _ => return HelloOutcome::Invalid(InvalidHello::RecordType),
            };
            let scratch: &'a [u8] = scratch;
            parse_message_body(scratch.get(HANDSHAKE_HEADER_LEN..total))
        }
    }
}

/// [`parse_stream`] without a scratch buffer: `None` when the hello is complete but spans
/// records (so it must be copied to be parsed), else the outcome. `scratch_len` is the size
/// of the buffer the caller would copy into (it bounds a spanning hello).
pub fn parse_stream_in_place(stream: &[u8], scratch_len: usize) -> Option<HelloOutcome<'_>> {
    let first = match record::check_header(stream) {
        HeaderCheck::Handshake(h) => h,
        HeaderCheck::Short => return Some(HelloOutcome::NeedMore),
        HeaderCheck::NotHandshake => return Some(HelloOutcome::NotTls),
        HeaderCheck::BadLength => return Some(HelloOutcome::Invalid(InvalidHello::RecordLength)),
    };
    let total = match walk(stream, first.length, scratch_len, None) {
        Walk::Done(total) => total,
        Walk::NeedMore => return Some(HelloOutcome::NeedMore),
        Walk::NotTls => return Some(HelloOutcome::NotTls),
        Walk::Invalid(e) => return Some(HelloOutcome::Invalid(e)),
    };
    if total > first.length {
        return None;
    }
    Some(parse_message_body(stream.get(record::HEADER_LEN + HANDSHAKE_HEADER_LEN..record::HEADER_LEN + total)))
}

fn parse_message_body(body: Option<&[u8]>) -> HelloOutcome<'_> {
    match body {
        Some(body) => match parse_body(body) {
            Ok(hello) => HelloOutcome::Complete(hello),
            Err(e) => HelloOutcome::Invalid(e),
        },
        None => HelloOutcome::Invalid(InvalidHello::Truncated),
    }
}

/// Parse a ClientHello handshake message given without record framing (type byte, 24-bit
/// length, body), e.g. from a QUIC CRYPTO frame or a test vector.
pub fn parse_handshake(message: &[u8]) -> HelloOutcome<'_> {
    match *message {
        [] => HelloOutcome::NeedMore,
        [t, ..] if t != HANDSHAKE_CLIENT_HELLO => HelloOutcome::Invalid(InvalidHello::NotClientHello),
        [_, a, b, c, ref body @ ..] => {
            let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
            if len + HANDSHAKE_HEADER_LEN > MAX_HELLO_LEN {
                return HelloOutcome::Invalid(InvalidHello::TooLarge);
            }
            match body.get(..len) {
                None => HelloOutcome::NeedMore,
                Some(body) => match parse_body(body) {
                    Ok(h) => HelloOutcome::Complete(h),
                    Err(e) => HelloOutcome::Invalid(e),
                },
            }
        }
        _ => HelloOutcome::NeedMore,
    }
}

enum Walk {
    /// The whole handshake message is present; its length, header included.
    Done(usize),
    NeedMore,
    NotTls,
    Invalid(InvalidHello),
}

/// Walk the records at the start of `stream`, following the handshake message they carry.
/// With a `sink`, copy the message (header included) into it.
fn walk(stream: &[u8], first_record_len: usize, scratch_len: usize, mut sink: Option<&mut [u8]>) -> Walk {
    let mut pos = 0usize;
    let mut header = [0u8; HANDSHAKE_HEADER_LEN];
    let mut got = 0usize;
    let mut total: Option<usize> = None;
    loop {
        let rest = stream.get(pos..).unwrap_or(&[]);
        let rec = match record::check_header(rest) {
            HeaderCheck::Handshake(h) => h,
            HeaderCheck::Short => return Walk::NeedMore,
            HeaderCheck::NotHandshake if pos == 0 => return Walk::NotTls,
            HeaderCheck::NotHandshake => return Walk::Invalid(InvalidHello::RecordType),
            HeaderCheck::BadLength => return Walk::Invalid(InvalidHello::RecordLength),
        };
        let end = rest.len().min(record::HEADER_LEN + rec.length);
        let mut frag = rest.get(record::HEADER_LEN..end).unwrap_or(&[]);
        while !frag.is_empty() {
            match total {
                None => {
                    let [b, tail @ ..] = frag else { break };
                    if let Some(slot) = header.get_mut(got) {
                        *slot = *b;
                    }
                    got += 1;
                    frag = tail;
                    if got == 1 && *b != HANDSHAKE_CLIENT_HELLO {
                        return Walk::Invalid(InvalidHello::NotClientHello);
                    }
                    if got == HANDSHAKE_HEADER_LEN {
                        let [_, x, y, z] = header;
                        let t = HANDSHAKE_HEADER_LEN + (usize::from(x) << 16 | usize::from(y) << 8 | usize::from(z));
                        if t > MAX_HELLO_LEN || (t > first_record_len && t > scratch_len) {
                            return Walk::Invalid(InvalidHello::TooLarge);
                        }
                        if let Some(dst) = sink.as_deref_mut().and_then(|s| s.get_mut(..HANDSHAKE_HEADER_LEN)) {
                            dst.copy_from_slice(&header);
                        }
                        total = Some(t);
                    }
                }
                Some(t) => {
                    let take = frag.len().min(t - got);
                    let (head, tail) = frag.split_at(take);
                    if let Some(dst) = sink.as_deref_mut().and_then(|s| s.get_mut(got..got + take)) {
                        dst.copy_from_slice(head);
                    }
                    got += take;
                    frag = tail;
                }
            }
            if total == Some(got) {
                return Walk::Done(got);
            }
        }
        if total == Some(got) {
            return Walk::Done(got);
        }
        if end < record::HEADER_LEN + rec.length {
            return Walk::NeedMore;
        }
        pos += record::HEADER_LEN + rec.length;
    }
}
