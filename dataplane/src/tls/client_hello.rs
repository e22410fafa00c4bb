//! Zero-copy, allocation-free ClientHello parser: the handshake message's body, its
//! extensions, and the views rules and fingerprints read.
//!
//! [`super::stream::parse_stream`] finds the message in the client's TCP byte stream (records
//! walked, a message that spans records copied) and hands its body here. The outcome is one
//! of: a complete hello, "need more bytes", "not TLS" (the stream does not start with a
//! handshake record) or invalid (with the reason).
//!
//! Every length field is checked before it is used; the accessors of [`ClientHello`] read
//! only what the parse validated, so they cannot fail.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

/// `HandshakeType.client_hello`.
pub const HANDSHAKE_CLIENT_HELLO: u8 = 1;
/// Handshake message header: type (1) and 24-bit length (3).
pub const HANDSHAKE_HEADER_LEN: usize = 4;
/// The largest ClientHello handshake message (header included) accepted: 16 KB. Real ones
/// are below 2 KB, about 3 KB with a post-quantum key share.
pub const MAX_HELLO_LEN: usize = 16 * 1024;

/// Extension code points the parser looks into.
pub mod ext {
    pub const SERVER_NAME: u16 = 0x0000;
    pub const SUPPORTED_GROUPS: u16 = 0x000a;
    pub const EC_POINT_FORMATS: u16 = 0x000b;
    pub const SIGNATURE_ALGORITHMS: u16 = 0x000d;
    pub const ALPN: u16 = 0x0010;
    pub const PADDING: u16 = 0x0015;
    pub const SUPPORTED_VERSIONS: u16 = 0x002b;
    pub const KEY_SHARE: u16 = 0x0033;
    pub const ENCRYPTED_CLIENT_HELLO: u16 = 0xfe0d;
}

/// Protocol versions (`ProtocolVersion` values).
pub mod version {
    pub const SSL_3_0: u16 = 0x0300;
    pub const TLS_1_0: u16 = 0x0301;
    pub const TLS_1_1: u16 = 0x0302;
    pub const TLS_1_2: u16 = 0x0303;
    pub const TLS_1_3: u16 = 0x0304;
}

/// The result of [`parse_stream`](super::stream::parse_stream).
// Returned by value and consumed at once; boxing the hello would allocate per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum HelloOutcome<'a> {
    /// A complete, well-formed ClientHello.
    Complete(ClientHello<'a>),
    /// Everything so far is consistent with a ClientHello; more bytes are needed.
    NeedMore,
    /// The stream does not start with a TLS handshake record: not a TLS connection.
    NotTls,
    /// A TLS handshake record, but not a well-formed ClientHello.
    Invalid(InvalidHello),
}

/// Why a ClientHello was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InvalidHello {
    /// A record of length 0 or above 2^14.
    RecordLength,
    /// A later record of the hello is not a handshake record (or has a junk version).
    RecordType,
    /// The first handshake message is not a ClientHello.
    NotClientHello,
    /// The declared hello is longer than [`MAX_HELLO_LEN`] (or than the scratch buffer when it
    /// spans records).
    TooLarge,
    /// The body ends inside the fixed fields (version, random).
    Truncated,
    /// `legacy_session_id` longer than 32 bytes or beyond the body.
    SessionId,
    /// Cipher suite list empty, odd or beyond the body.
    CipherSuites,
    /// Compression method list empty or beyond the body.
    CompressionMethods,
    /// The extension block's length disagrees with the bytes left, or an extension header or
    /// body runs past it.
    Extensions,
    /// The contents of this extension are malformed.
    Extension(u16),
    /// This (inspected) extension appears twice.
    DuplicateExtension(u16),
}

impl std::fmt::Display for InvalidHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvalidHello::RecordLength => f.write_str("TLS record length is 0 or above 2^14"),
            InvalidHello::RecordType => f.write_str("a record inside the ClientHello is not a handshake record"),
            InvalidHello::NotClientHello => f.write_str("first handshake message is not a ClientHello"),
            InvalidHello::TooLarge => write!(f, "ClientHello longer than {MAX_HELLO_LEN} bytes"),
            InvalidHello::Truncated => f.write_str("ClientHello body ends inside the fixed fields"),
            InvalidHello::SessionId => f.write_str("bad legacy_session_id length"),
            InvalidHello::CipherSuites => f.write_str("bad cipher_suites length"),
            InvalidHello::CompressionMethods => f.write_str("bad compression_methods length"),
            InvalidHello::Extensions => f.write_str("bad extensions block"),
            InvalidHello::Extension(t) => write!(f, "malformed extension 0x{t:04x}"),
            InvalidHello::DuplicateExtension(t) => write!(f, "duplicate extension 0x{t:04x}"),
        }
    }
}

/// RFC 8701 GREASE values: `0x?a?a` with both bytes equal.
#[inline]
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// "1.0".."1.3" for TLS versions, "ssl3" for SSL 3.0, `None` for anything else.
pub fn version_str(v: u16) -> Option<&'static str> {
    match v {
        version::SSL_3_0 => Some("ssl3"),
        version::TLS_1_0 => Some("1.0"),
        version::TLS_1_1 => Some("1.1"),
        version::TLS_1_2 => Some("1.2"),
        version::TLS_1_3 => Some("1.3"),
        _ => None,
    }
}

/// The inverse of [`version_str`] (for rule fields such as `versionBelow: "1.2"`).
pub fn parse_version(s: &str) -> Option<u16> {
    match s {
        "ssl3" => Some(version::SSL_3_0),
        "1.0" => Some(version::TLS_1_0),
        "1.1" => Some(version::TLS_1_1),
        "1.2" => Some(version::TLS_1_2),
        "1.3" => Some(version::TLS_1_3),
        _ => None,
    }
}

/// A cursor over validated bytes.
#[derive(Clone, Copy)]
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    #[inline]
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let head = self.buf.get(..n)?;
        self.buf = self.buf.get(n..)?;
        Some(head)
    }

    #[inline]
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(b)
    }

    #[inline]
    fn u16(&mut self) -> Option<u16> {
        match *self.buf {
            [a, b, ref rest @ ..] => {
                self.buf = rest;
                Some(u16::from_be_bytes([a, b]))
            }
            _ => None,
        }
    }

    /// A vector with a one-byte length prefix.
    #[inline]
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    /// A vector with a two-byte length prefix.
    #[inline]
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// A parsed ClientHello; all slices borrow the stream or the scratch buffer.
#[derive(Clone, Copy, Debug)]
pub struct ClientHello<'a> {
    body: &'a [u8],
    legacy_version: u16,
    random: &'a [u8],
    session_id: &'a [u8],
    cipher_suites: &'a [u8],
    compression_methods: &'a [u8],
    extensions: &'a [u8],
    has_server_name: bool,
    server_name: Option<&'a [u8]>,
    alpn: Option<&'a [u8]>,
    supported_versions: Option<&'a [u8]>,
    supported_groups: Option<&'a [u8]>,
    ec_point_formats: Option<&'a [u8]>,
    signature_algorithms: Option<&'a [u8]>,
    key_shares: Option<&'a [u8]>,
    has_ech: bool,
}

/// A non-empty list of 2-byte values.
fn even(l: &&[u8]) -> bool {
    !l.is_empty() && l.len() & 1 == 0
}

/// Validate one inspected extension and return the slice the accessors will read.
fn inspect(kind: u16, data: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let mut r = Reader { buf: data };
    let list = match kind {
        ext::SERVER_NAME => {
            let list = r.vec16().filter(|l| !l.is_empty())?;
            let mut entries = Reader { buf: list };
            let mut host = None;
            while !entries.is_empty() {
                let name_type = entries.u8()?;
                let name = entries.vec16().filter(|n| !n.is_empty())?;
                if name_type == 0 {
                    if host.is_some() {
                        return None;
                    }
                    host = Some(name);
                }
            }
            if !r.is_empty() {
                return None;
            }
            return Some((list, host));
        }
        ext::ALPN => {
            let list = r.vec16().filter(|l| !l.is_empty())?;
            let mut names = Reader { buf: list };
            while !names.is_empty() {
                names.vec8().filter(|n| !n.is_empty())?;
            }
            list
        }
        ext::SUPPORTED_VERSIONS => r.vec8().filter(even)?,
        ext::SUPPORTED_GROUPS | ext::SIGNATURE_ALGORITHMS => r.vec16().filter(even)?,
        ext::EC_POINT_FORMATS => r.vec8().filter(|l| !l.is_empty())?,
        ext::KEY_SHARE => {
            let list = r.vec16()?;
            let mut shares = Reader { buf: list };
            while !shares.is_empty() {
                shares.u16()?;
                shares.vec16().filter(|k| !k.is_empty())?;
            }
            list
        }
        _ => data,
    };
    if !r.is_empty() {
        return None;
    }
    Some((list, None))
}

pub(super) fn parse_body(body: &[u8]) -> Result<ClientHello<'_>, InvalidHello> {
    let mut r = Reader { buf: body };
    let legacy_version = r.u16().ok_or(InvalidHello::Truncated)?;
    let random = r.take(32).ok_or(InvalidHello::Truncated)?;
    let session_id = r.vec8().filter(|s| s.len() <= 32).ok_or(InvalidHello::SessionId)?;
    let cipher_suites = r.vec16().filter(even).ok_or(InvalidHello::CipherSuites)?;
    let compression_methods = r.vec8().filter(|c| !c.is_empty()).ok_or(InvalidHello::CompressionMethods)?;
    let extensions = if r.is_empty() {
        &[][..]
    } else {
        let block = r.vec16().ok_or(InvalidHello::Extensions)?;
        if !r.is_empty() {
            return Err(InvalidHello::Extensions);
        }
        block
    };
    let mut hello = ClientHello {
        body,
        legacy_version,
        random,
        session_id,
        cipher_suites,
        compression_methods,
        extensions,
        has_server_name: false,
        server_name: None,
        alpn: None,
        supported_versions: None,
        supported_groups: None,
        ec_point_formats: None,
        signature_algorithms: None,
        key_shares: None,
        has_ech: false,
    };
    let mut exts = Reader { buf: extensions };
    while !exts.is_empty() {
        let kind = exts.u16().ok_or(InvalidHello::Extensions)?;
        let data = exts.vec16().ok_or(InvalidHello::Extensions)?;
        let slot = match kind {
            ext::SERVER_NAME => {
                if hello.has_server_name {
                    return Err(InvalidHello::DuplicateExtension(kind));
                }
                let (_, host) = inspect(kind, data).ok_or(InvalidHello::Extension(kind))?;
                hello.has_server_name = true;
                hello.server_name = host;
                continue;
            }
            ext::ENCRYPTED_CLIENT_HELLO => {
                if hello.has_ech {
                    return Err(InvalidHello::DuplicateExtension(kind));
                }
                hello.has_ech = true;
                continue;
            }
            ext::ALPN => &mut hello.alpn,
            ext::SUPPORTED_VERSIONS => &mut hello.supported_versions,
            ext::SUPPORTED_GROUPS => &mut hello.supported_groups,
            ext::EC_POINT_FORMATS => &mut hello.ec_point_formats,
            ext::SIGNATURE_ALGORITHMS => &mut hello.signature_algorithms,
            ext::KEY_SHARE => &mut hello.key_shares,
            _ => continue,
        };
        if slot.is_some() {
            return Err(InvalidHello::DuplicateExtension(kind));
        }
        let (list, _) = inspect(kind, data).ok_or(InvalidHello::Extension(kind))?;
        *slot = Some(list);
    }
    Ok(hello)
}

/// Big-endian 2-byte values of a validated list.
#[derive(Clone, Debug)]
pub struct U16s<'a> {
    chunks: std::slice::ChunksExact<'a, u8>,
}

impl<'a> U16s<'a> {
    fn new(list: &'a [u8]) -> U16s<'a> {
        U16s { chunks: list.chunks_exact(2) }
    }
}

impl Iterator for U16s<'_> {
    type Item = u16;

    #[inline]
    fn next(&mut self) -> Option<u16> {
        match *self.chunks.next()? {
            [a, b] => Some(u16::from_be_bytes([a, b])),
            _ => None,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for U16s<'_> {}

/// Extensions in wire order: (type, data).
#[derive(Clone, Debug)]
pub struct Extensions<'a> {
    r: Reader<'a>,
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reader({} bytes)", self.buf.len())
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = (u16, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<(u16, &'a [u8])> {
        let kind = self.r.u16()?;
        let data = self.r.vec16()?;
        Some((kind, data))
    }
}

/// ALPN protocol names of a validated list.
#[derive(Clone, Debug)]
pub struct Alpns<'a> {
    r: Reader<'a>,
}

impl<'a> Iterator for Alpns<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        self.r.vec8()
    }
}

/// The groups of the key_share extension's entries, in order.
#[derive(Clone, Debug)]
pub struct KeyShareGroups<'a> {
    r: Reader<'a>,
}

impl Iterator for KeyShareGroups<'_> {
    type Item = u16;

    #[inline]
    fn next(&mut self) -> Option<u16> {
        let group = self.r.u16()?;
        self.r.vec16()?;
        Some(group)
    }
}

impl<'a> ClientHello<'a> {
    /// The handshake message body (after the 4-byte handshake header).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// `legacy_version` of the hello (0x0303 for TLS 1.2 and 1.3 clients).
    pub fn legacy_version(&self) -> u16 {
        self.legacy_version
    }

    /// The highest version offered: the largest non-GREASE entry of supported_versions, or
    /// `legacy_version` without that extension (or with only GREASE in it).
    pub fn highest_version(&self) -> u16 {
        self.supported_versions().filter(|v| !is_grease(*v)).max().unwrap_or(self.legacy_version)
    }

    pub fn random(&self) -> &'a [u8] {
        self.random
    }

    pub fn session_id(&self) -> &'a [u8] {
        self.session_id
    }

    /// Cipher suites in wire order, GREASE values included.
    pub fn cipher_suites(&self) -> U16s<'a> {
        U16s::new(self.cipher_suites)
    }

    pub fn compression_methods(&self) -> &'a [u8] {
        self.compression_methods
    }

    /// Extensions in wire order, GREASE included: (type, extension_data).
    pub fn extensions(&self) -> Extensions<'a> {
        Extensions { r: Reader { buf: self.extensions } }
    }

    /// True when the server_name extension is present (even without a host_name entry).
    pub fn has_sni_extension(&self) -> bool {
        self.has_server_name
    }

    /// The host_name of the server_name extension, raw. With ECH this is the outer
    /// (public) name, which is the one on the wire.
    pub fn sni_bytes(&self) -> Option<&'a [u8]> {
        self.server_name
    }

    /// The host_name as text, when it is ASCII.
    pub fn sni(&self) -> Option<&'a str> {
        let name = self.server_name?;
        if !name.is_ascii() {
            return None;
        }
        std::str::from_utf8(name).ok()
    }

    /// ALPN protocol names in order (an empty iterator without the extension).
    pub fn alpn(&self) -> Alpns<'a> {
        Alpns { r: Reader { buf: self.alpn.unwrap_or(&[]) } }
    }

    pub fn has_alpn(&self) -> bool {
        self.alpn.is_some()
    }

    /// supported_versions entries in order, GREASE included.
    pub fn supported_versions(&self) -> U16s<'a> {
        U16s::new(self.supported_versions.unwrap_or(&[]))
    }

    pub fn has_supported_versions(&self) -> bool {
        self.supported_versions.is_some()
    }

    /// supported_groups (formerly elliptic_curves) in order, GREASE included.
    pub fn supported_groups(&self) -> U16s<'a> {
        U16s::new(self.supported_groups.unwrap_or(&[]))
    }

    pub fn ec_point_formats(&self) -> &'a [u8] {
        self.ec_point_formats.unwrap_or(&[])
    }

    /// signature_algorithms in order.
    pub fn signature_algorithms(&self) -> U16s<'a> {
        U16s::new(self.signature_algorithms.unwrap_or(&[]))
    }

    /// Groups of the key_share entries, in order.
    pub fn key_share_groups(&self) -> KeyShareGroups<'a> {
        KeyShareGroups { r: Reader { buf: self.key_shares.unwrap_or(&[]) } }
    }

    /// True when the encrypted_client_hello extension (0xfe0d) is present.
    pub fn has_ech(&self) -> bool {
        self.has_ech
    }
}
