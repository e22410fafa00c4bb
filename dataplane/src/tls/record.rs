//! TLS record layer view (RFC 8446 section 5.1): just enough to walk the plaintext records
//! of a client's first flight.

/// Content type, legacy version (2) and length (2).
pub const HEADER_LEN: usize = 5;
/// `ContentType.handshake`.
pub const CONTENT_HANDSHAKE: u8 = 22;
/// The largest plaintext record fragment a peer may send (2^14). A ClientHello travels in
/// plaintext records, so a longer record is a protocol violation, not a bigger hello.
pub const MAX_PLAINTEXT_LEN: usize = 1 << 14;

/// How the first bytes of a stream look as a TLS record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderCheck {
    /// A handshake record header with a sane version and length.
    Handshake(RecordHeader),
    /// Fewer than [`HEADER_LEN`] bytes, and those present are consistent with a handshake record.
    Short,
    /// The bytes cannot start a TLS handshake record (wrong content type or version).
    NotHandshake,
    /// Handshake content type and version, but a length of 0 or above [`MAX_PLAINTEXT_LEN`].
    BadLength,
}

/// A decoded record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub content_type: u8,
    pub version: u16,
    /// Length of the fragment that follows the header.
    pub length: usize,
}

/// True for record-layer versions a TLS 1.0-1.3 client (or an SSL 3.0 one) can put on a
/// ClientHello record: major 3, minor 0..=4.
#[inline]
fn plausible_version(major: u8, minor: u8) -> bool {
    major == 3 && minor <= 4
}

/// Check the record header at the start of `bytes` (which may be shorter than a header).
#[inline]
pub fn check_header(bytes: &[u8]) -> HeaderCheck {
    match *bytes {
        [] => HeaderCheck::Short,
        [t, ..] if t != CONTENT_HANDSHAKE => HeaderCheck::NotHandshake,
        [_] => HeaderCheck::Short,
        [_, major] if major != 3 => HeaderCheck::NotHandshake,
        [_, _] => HeaderCheck::Short,
        [_, major, minor, ..] if !plausible_version(major, minor) => HeaderCheck::NotHandshake,
        [_, _, _] | [_, _, _, _] => HeaderCheck::Short,
        [t, major, minor, hi, lo, ..] => {
            let length = usize::from(u16::from_be_bytes([hi, lo]));
            if length == 0 || length > MAX_PLAINTEXT_LEN {
                HeaderCheck::BadLength
            } else {
                HeaderCheck::Handshake(RecordHeader {
                    content_type: t,
                    version: u16::from_be_bytes([major, minor]),
                    length,
                })
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn header_checks() {
        assert_eq!(check_header(&[]), HeaderCheck::Short);
        assert_eq!(check_header(&[22]), HeaderCheck::Short);
        assert_eq!(check_header(&[23]), HeaderCheck::NotHandshake);
        assert_eq!(check_header(b"GET / HTTP/1.1"), HeaderCheck::NotHandshake);
        assert_eq!(check_header(&[22, 2]), HeaderCheck::NotHandshake);
        assert_eq!(check_header(&[22, 3, 5]), HeaderCheck::NotHandshake);
        assert_eq!(check_header(&[22, 3, 1, 0]), HeaderCheck::Short);
        assert_eq!(check_header(&[22, 3, 1, 0, 0]), HeaderCheck::BadLength);
        assert_eq!(check_header(&[22, 3, 1, 0x40, 1]), HeaderCheck::BadLength);
        assert_eq!(
            check_header(&[22, 3, 1, 0x40, 0, 9]),
            HeaderCheck::Handshake(RecordHeader { content_type: 22, version: 0x0301, length: 16384 })
        );
    }
}
