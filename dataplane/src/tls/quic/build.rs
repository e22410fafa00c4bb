//! Protected client Initial packets for tests, fuzzing and generated traffic (as
//! `tls::build` makes ClientHello records): frames written, the payload sealed with the
//! client's Initial keys and header protection applied (RFC 9001 section 5).

use super::packet::{Version, MAX_CID_LEN, SAMPLE_LEN};
use super::protection::ClientSecrets;
use ring::aead::quic::{HeaderProtectionKey, AES_128};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, NONCE_LEN};

/// `v` as a QUIC variable-length integer, in its shortest form (`v` below 2^62).
pub fn varint(v: u64) -> Vec<u8> {
    match v {
        0..=0x3f => vec![v as u8],
        0x40..=0x3fff => (0x4000 | v as u16).to_be_bytes().to_vec(),
        0x4000..=0x3fff_ffff => (0x8000_0000 | v as u32).to_be_bytes().to_vec(),
        _ => (0xc000_0000_0000_0000 | v).to_be_bytes().to_vec(),
    }
}

/// A CRYPTO frame.
pub fn crypto_frame(offset: u64, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x06];
    out.extend(varint(offset));
    out.extend(varint(data.len() as u64));
    out.extend_from_slice(data);
    out
}

/// What goes into one Initial packet.
#[derive(Clone, Debug)]
pub struct InitialSpec<'a> {
    pub version: Version,
    /// The DCID the keys come from.
    pub key_dcid: &'a [u8],
    /// The DCID written in the header (the same unless the server chose a new one).
    pub dcid: &'a [u8],
    pub scid: &'a [u8],
    pub token: &'a [u8],
    pub packet_number: u64,
    /// Bytes of packet number written (1..=4).
    pub pn_len: usize,
}

impl<'a> InitialSpec<'a> {
    /// Packet number 0 in one byte, no token, an 8-byte SCID.
    pub fn new(version: Version, dcid: &'a [u8]) -> InitialSpec<'a> {
        InitialSpec {
            version,
            key_dcid: dcid,
            dcid,
            scid: b"\x01\x02\x03\x04\x05\x06\x07\x08",
            token: &[],
            packet_number: 0,
            pn_len: 1,
        }
    }
}

/// A protected Initial carrying `frames`, PADDING added up to `min_payload` bytes of frames.
/// Panics only on misuse (a connection ID over 20 bytes, `pn_len` outside 1..=4).
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
pub fn initial_packet(spec: &InitialSpec<'_>, frames: &[u8], min_payload: usize) -> Vec<u8> {
    assert!(spec.dcid.len() <= MAX_CID_LEN && spec.scid.len() <= MAX_CID_LEN && (1..=4).contains(&spec.pn_len));
    let secrets = ClientSecrets::derive(spec.version, spec.key_dcid).unwrap();
    let mut payload = frames.to_vec();
    // The sample needs 4 bytes after the packet number's start beyond the tag's 16.
    let min = min_payload.max(4usize.saturating_sub(spec.pn_len) + 1);
    payload.resize(payload.len().max(min), 0);
    let type_bits: u8 = match spec.version {
        Version::V1 => 0,
        Version::V2 => 1,
    };
    let mut packet = vec![0xc0 | type_bits << 4 | (spec.pn_len as u8 - 1)];
    packet.extend(spec.version.wire().to_be_bytes());
    packet.push(spec.dcid.len() as u8);
    packet.extend_from_slice(spec.dcid);
    packet.push(spec.scid.len() as u8);
    packet.extend_from_slice(spec.scid);
    packet.extend(varint(spec.token.len() as u64));
    packet.extend_from_slice(spec.token);
    let length = spec.pn_len + payload.len() + 16;
    packet.extend((0x4000 | length as u16).to_be_bytes());
    let pn_at = packet.len();
    packet.extend(&spec.packet_number.to_be_bytes()[8 - spec.pn_len..]);

    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &secrets.key).unwrap());
    let mut nonce = secrets.iv;
    for (n, p) in nonce[NONCE_LEN - 8..].iter_mut().zip(spec.packet_number.to_be_bytes()) {
        *n ^= p;
    }
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&packet[..]), &mut payload)
        .unwrap();
    packet.extend(&payload);
    packet.extend(tag.as_ref());

    let hp = HeaderProtectionKey::new(&AES_128, &secrets.hp).unwrap();
    let mask = hp.new_mask(&packet[pn_at + 4..pn_at + 4 + SAMPLE_LEN]).unwrap();
    packet[0] ^= mask[0] & 0x0f;
    for (b, m) in packet[pn_at..pn_at + spec.pn_len].iter_mut().zip(&mask[1..]) {
        *b ^= m;
    }
    packet
}

/// A ClientHello handshake message (type, 24-bit length, body) as a QUIC client sends it:
/// the record of [`crate::tls::build::client_hello_record`] without its record header.
pub fn client_hello_message(sni: &str, post_quantum: bool, rng: &mut rand::rngs::SmallRng) -> Vec<u8> {
    let record = crate::tls::build::client_hello_record(sni, post_quantum, rng);
    record.get(crate::tls::record::HEADER_LEN..).unwrap_or(&[]).to_vec()
}

/// Bytes of a client's first datagrams: the least RFC 9000 allows (section 14.1), what most
/// stacks send.
pub const FIRST_DATAGRAM_LEN: usize = 1200;

/// A client's first flight carrying handshake `message` over `version`: one Initial per
/// datagram (packet numbers 0, 1, ...), each padded to [`FIRST_DATAGRAM_LEN`] bytes, the
/// CRYPTO stream cut where a datagram is full (a post-quantum hello takes two, as Chrome's).
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
pub fn first_flight(version: Version, dcid: &[u8], message: &[u8]) -> Vec<Vec<u8>> {
    // A full datagram's frames: its size less the header and the AEAD tag; of which a
    // CRYPTO frame's header takes at most 8 bytes (type, offset, length).
    let payload = FIRST_DATAGRAM_LEN - header_len(dcid) - 16;
    let room = payload - 8;
    let mut out = Vec::new();
    for (n, chunk) in message.chunks(room).enumerate() {
        let mut spec = InitialSpec::new(version, dcid);
        spec.packet_number = n as u64;
        out.push(initial_packet(&spec, &crypto_frame((n * room) as u64, chunk), payload));
    }
    out
}

/// Header bytes of an Initial built by [`InitialSpec::new`] (8-byte SCID, no token, a
/// one-byte packet number), with a 2-byte Length.
fn header_len(dcid: &[u8]) -> usize {
    1 + 4 + 1 + dcid.len() + 1 + 8 + 1 + 2 + 1
}

/// The first flight of a post-quantum ClientHello for `sni` over QUIC v1: two datagrams.
pub fn two_datagram_hello(sni: &str, rng: &mut rand::rngs::SmallRng) -> Vec<Vec<u8>> {
    first_flight(Version::V1, b"\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11", &client_hello_message(sni, true, rng))
}
