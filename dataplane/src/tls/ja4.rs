//! JA4 TLS client fingerprint (FoxIO-LLC/ja4, `technical_details/JA4.md`), for TLS over TCP
//! ([`ja4`]) and QUIC ([`ja4_over`] with [`Transport::Quic`]: the same with `q` first):
//! `t` + version + `d`/`i` + cipher count + extension count + ALPN `_` cipher hash `_`
//! extension hash, e.g. `t13d1516h2_8daaf6152771_e5627efa2ab1`. GREASE values are ignored
//! everywhere. Only JA4 itself, not the rest of the JA4+ family.
//!
//! No allocation: sorting uses stack arrays (small ones for real hellos, a larger frame only
//! for pathological lists) and the hash inputs are streamed into SHA-256.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::client_hello::{ext, is_grease, version, ClientHello, MAX_HELLO_LEN};
use super::sink::{hex4, hex_digit, Hashing, Sink, Text};
use sha2::Sha256;

/// Length of a JA4 fingerprint.
pub const JA4_LEN: usize = 36;

/// A JA4 fingerprint: 36 ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ja4 {
    bytes: [u8; JA4_LEN],
}

impl Ja4 {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes).unwrap_or("")
    }

    pub fn as_bytes(&self) -> &[u8; JA4_LEN] {
        &self.bytes
    }

    /// Accept a fingerprint as written in rules: 36 characters `[a-z0-9]{10}_[0-9a-f]{12}_[0-9a-f]{12}`
    /// (upper case is folded).
    pub fn parse(s: &str) -> Option<Ja4> {
        let bytes: [u8; JA4_LEN] = s.as_bytes().try_into().ok()?;
        let mut out = [0u8; JA4_LEN];
        for (i, (o, b)) in out.iter_mut().zip(bytes).enumerate() {
            let b = b.to_ascii_lowercase();
            let ok = match i {
                10 | 23 => b == b'_',
                0..=9 => b.is_ascii_alphanumeric(),
                _ => b.is_ascii_hexdigit(),
            };
            if !ok {
                return None;
            }
            *o = b;
        }
        Some(Ja4 { bytes: out })
    }
}

impl std::fmt::Display for Ja4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Ja4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ja4({})", self.as_str())
    }
}

fn version_code(v: u16) -> [u8; 2] {
    match v {
        version::TLS_1_3 => *b"13",
        version::TLS_1_2 => *b"12",
        version::TLS_1_1 => *b"11",
        version::TLS_1_0 => *b"10",
        version::SSL_3_0 => *b"s3",
        0x0002 => *b"s2",
        0xfeff => *b"d1",
        0xfefd => *b"d2",
        0xfefc => *b"d3",
        _ => *b"00",
    }
}

fn count2(n: usize) -> [u8; 2] {
    let n = n.min(99) as u8;
    [b'0' + n / 10, b'0' + n % 10]
}

/// First and last character of the first ALPN value; hex digits when either is not ASCII
/// alphanumeric; "00" without one.
fn alpn_code(first: Option<&[u8]>) -> [u8; 2] {
    match first {
        Some(&[f, ..]) => {
            let l = first.and_then(|v| v.last().copied()).unwrap_or(f);
            if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
                [f, l]
            } else {
                [hex_digit(f >> 4), hex_digit(l)]
            }
        }
        _ => *b"00",
    }
}

/// A comma-joined list of 4-hex values.
fn put_list<S: Sink>(s: &mut S, values: &[u16]) {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.put(b",");
        }
        s.put(&hex4(*v));
    }
}

/// Write the first 12 hex digits of a SHA-256.
fn put_hash12(out: &mut [u8], digest: &[u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(digest) {
        if let [hi, lo] = pair {
            *hi = hex_digit(b >> 4);
            *lo = hex_digit(*b);
        }
    }
}

/// The sorted, GREASE-free lists a JA4 needs, collected on the stack.
struct Lists<const N: usize> {
    ciphers: [u16; N],
    n_ciphers: usize,
    exts: [u16; N],
    n_exts: usize,
}

impl<const N: usize> Lists<N> {
    /// `None` when a list holds more than N values.
    fn collect(hello: &ClientHello<'_>) -> Option<Self> {
        let mut l = Lists { ciphers: [0; N], n_ciphers: 0, exts: [0; N], n_exts: 0 };
        for c in hello.cipher_suites().filter(|v| !is_grease(*v)) {
            *l.ciphers.get_mut(l.n_ciphers)? = c;
            l.n_ciphers += 1;
        }
        for (t, _) in hello.extensions() {
            if is_grease(t) || t == ext::SERVER_NAME || t == ext::ALPN {
                continue;
            }
            *l.exts.get_mut(l.n_exts)? = t;
            l.n_exts += 1;
        }
        let ciphers = l.ciphers.get_mut(..l.n_ciphers)?;
        ciphers.sort_unstable();
        let exts = l.exts.get_mut(..l.n_exts)?;
        exts.sort_unstable();
        Some(l)
    }

    fn ciphers(&self) -> &[u16] {
        self.ciphers.get(..self.n_ciphers).unwrap_or(&[])
    }

    fn exts(&self) -> &[u16] {
        self.exts.get(..self.n_exts).unwrap_or(&[])
    }
}

/// Parts b and c; false when a list does not fit in N.
fn hashes<const N: usize>(hello: &ClientHello<'_>, out: &mut [u8; JA4_LEN]) -> bool {
    let Some(lists) = Lists::<N>::collect(hello) else { return false };
    if let Some(b) = out.get_mut(11..23) {
        if lists.ciphers().is_empty() {
            b.fill(b'0');
        } else {
            let mut h = Hashing::<Sha256>::new();
            put_list(&mut h, lists.ciphers());
            put_hash12(b, &h.finish());
        }
    }
    if let Some(c) = out.get_mut(24..36) {
        if lists.exts().is_empty() {
            c.fill(b'0');
        } else {
            let mut h = Hashing::<Sha256>::new();
            emit_c(hello, lists.exts(), &mut h);
            put_hash12(c, &h.finish());
        }
    }
    true
}

fn emit_c<S: Sink>(hello: &ClientHello<'_>, sorted_exts: &[u16], s: &mut S) {
    put_list(s, sorted_exts);
    let mut first = true;
    for v in hello.signature_algorithms().filter(|v| !is_grease(*v)) {
        s.put(if first { b"_" } else { b"," });
        first = false;
        s.put(&hex4(v));
    }
}

/// Pathological lists (up to what a 16 KB hello can hold) get a larger stack frame, kept out
/// of the common path.
#[inline(never)]
fn hashes_large(hello: &ClientHello<'_>, out: &mut [u8; JA4_LEN]) {
    // A 16 KB hello holds at most 8192 cipher suites and 4096 extensions.
    const LARGE: usize = MAX_HELLO_LEN / 2;
    let _ = hashes::<LARGE>(hello, out);
}

/// The transport a hello arrived over: JA4's first character (`t` TCP, `q` QUIC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Transport {
    #[default]
    Tcp,
    Quic,
}

impl Transport {
    fn letter(self) -> u8 {
        match self {
            Transport::Tcp => b't',
            Transport::Quic => b'q',
        }
    }
}

fn part_a(hello: &ClientHello<'_>, transport: Transport) -> [u8; 10] {
    let v = version_code(hello.highest_version());
    let sni = if hello.has_sni_extension() { b'd' } else { b'i' };
    let c = count2(hello.cipher_suites().filter(|v| !is_grease(*v)).count());
    let e = count2(hello.extensions().filter(|(t, _)| !is_grease(*t)).count());
    let a = alpn_code(hello.alpn().next());
    [transport.letter(), v[0], v[1], sni, c[0], c[1], e[0], e[1], a[0], a[1]]
}

/// The JA4 fingerprint of a hello received over TCP.
pub fn ja4(hello: &ClientHello<'_>) -> Ja4 {
    ja4_over(hello, Transport::Tcp)
}

/// The JA4 fingerprint of a hello received over `transport` (`q...` for a QUIC Initial).
pub fn ja4_over(hello: &ClientHello<'_>, transport: Transport) -> Ja4 {
    let mut out = [b'_'; JA4_LEN];
    if let Some(a) = out.get_mut(..10) {
        a.copy_from_slice(&part_a(hello, transport));
    }
    if !hashes::<128>(hello, &mut out) {
        hashes_large(hello, &mut out);
    }
    Ja4 { bytes: out }
}

/// The unhashed, sorted form (`JA4_r`): `a_ciphers_extensions_sigalgs`, for logs and tests.
pub fn write_ja4_raw<W: std::fmt::Write>(hello: &ClientHello<'_>, out: &mut W) -> std::fmt::Result {
    let a = part_a(hello, Transport::Tcp);
    out.write_str(std::str::from_utf8(&a).unwrap_or(""))?;
    out.write_str("_")?;
    let mut ciphers: Vec<u16> = hello.cipher_suites().filter(|v| !is_grease(*v)).collect();
    ciphers.sort_unstable();
    let mut exts: Vec<u16> = hello
        .extensions()
        .map(|(t, _)| t)
        .filter(|t| !is_grease(*t) && *t != ext::SERVER_NAME && *t != ext::ALPN)
        .collect();
    exts.sort_unstable();
    let mut t = Text { out, result: Ok(()) };
    put_list(&mut t, &ciphers);
    t.put(b"_");
    emit_c(hello, &exts, &mut t);
    t.result
}
