//! JA3 client fingerprint (salesforce/ja3): the MD5 of
//! `SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats`, each field a
//! `-`-joined list of decimal values in wire order, GREASE values left out. The version is the
//! hello's `legacy_version`. Computed by streaming the string into MD5: no allocation.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::client_hello::{is_grease, ClientHello};
use super::sink::{hex_digit, put_dec, Hashing, Sink, Text};
use md5::Md5;

/// A JA3 hash (16 bytes); displays as 32 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ja3(pub [u8; 16]);

impl Ja3 {
    /// Parse 32 hex digits (either case), as written in rules.
    pub fn from_hex(s: &str) -> Option<Ja3> {
        let s = s.as_bytes();
        if s.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
            let [hi, lo] = *pair else { return None };
            *byte = (nibble(hi)? << 4) | nibble(lo)?;
        }
        Some(Ja3(out))
    }

    /// The 32 lowercase hex digits.
    pub fn to_hex(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (pair, b) in out.chunks_exact_mut(2).zip(self.0) {
            if let [hi, lo] = pair {
                *hi = hex_digit(b >> 4);
                *lo = hex_digit(b);
            }
        }
        out
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl std::fmt::Display for Ja3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = self.to_hex();
        f.write_str(std::str::from_utf8(&hex).unwrap_or(""))
    }
}

fn list<S: Sink>(s: &mut S, values: impl Iterator<Item = u16>) {
    let mut first = true;
    for v in values {
        if !first {
            s.put(b"-");
        }
        first = false;
        put_dec(s, v);
    }
}

fn emit<S: Sink>(hello: &ClientHello<'_>, s: &mut S) {
    put_dec(s, hello.legacy_version());
    s.put(b",");
    list(s, hello.cipher_suites().filter(|v| !is_grease(*v)));
    s.put(b",");
    list(s, hello.extensions().map(|(t, _)| t).filter(|v| !is_grease(*v)));
    s.put(b",");
    list(s, hello.supported_groups().filter(|v| !is_grease(*v)));
    s.put(b",");
    list(s, hello.ec_point_formats().iter().map(|&f| u16::from(f)));
}

/// The JA3 hash of a hello.
pub fn ja3(hello: &ClientHello<'_>) -> Ja3 {
    let mut h = Hashing::<Md5>::new();
    emit(hello, &mut h);
    Ja3(h.finish().into())
}

/// The JA3 string (the MD5 input), for logs and tests.
pub fn write_ja3_string<W: std::fmt::Write>(hello: &ClientHello<'_>, out: &mut W) -> std::fmt::Result {
    let mut t = Text { out, result: Ok(()) };
    emit(hello, &mut t);
    t.result
}
