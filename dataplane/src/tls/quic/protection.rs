//! Initial packet protection (RFC 9001 sections 5.2-5.4; RFC 9369 section 3.3): the client's
//! Initial keys from the Destination Connection ID, header protection removed, the payload
//! opened with AEAD_AES_128_GCM. Built on `ring` (already in the build through rustls):
//! `hkdf` for the key schedule, `aead::quic::HeaderProtectionKey` (AES-128) for the mask and
//! `aead::LessSafeKey` for AES-128-GCM.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::packet::{LongPacket, PacketType, Version, SAMPLE_LEN};
use super::QuicError;
use ring::aead::quic::{HeaderProtectionKey, AES_128};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, NONCE_LEN};
use ring::hkdf::{KeyType, Prk, Salt, HKDF_SHA256};

const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f,
    0x0a,
];
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e,
    0xd9,
];
const KEY_LEN: usize = 16;
const TAG_LEN: usize = 16;

/// The raw client Initial secrets (for tests and logs; the fast path keeps [`InitialKeys`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientSecrets {
    pub secret: [u8; 32],
    pub key: [u8; KEY_LEN],
    pub iv: [u8; NONCE_LEN],
    pub hp: [u8; KEY_LEN],
}

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label (RFC 8446 section 7.1) with an empty context, into `out`.
fn expand_label(prk: &Prk, label: &[u8], out: &mut [u8]) -> Result<(), QuicError> {
    let len = u16::try_from(out.len()).map_err(|_| QuicError::Decrypt)?.to_be_bytes();
    let label_len = [u8::try_from(6 + label.len()).map_err(|_| QuicError::Decrypt)?];
    let info: [&[u8]; 5] = [&len, &label_len, b"tls13 ", label, &[0]];
    prk.expand(&info, Len(out.len())).and_then(|okm| okm.fill(out)).map_err(|_| QuicError::Decrypt)
}

impl ClientSecrets {
    /// `client_initial_secret` and the key, IV and header protection key derived from it.
    pub fn derive(version: Version, dcid: &[u8]) -> Result<ClientSecrets, QuicError> {
        let (salt, key_label, iv_label, hp_label): (&[u8], &[u8], &[u8], &[u8]) = match version {
            Version::V1 => (&SALT_V1, b"quic key", b"quic iv", b"quic hp"),
            Version::V2 => (&SALT_V2, b"quicv2 key", b"quicv2 iv", b"quicv2 hp"),
        };
        let initial = Salt::new(HKDF_SHA256, salt).extract(dcid);
        let mut s = ClientSecrets { secret: [0; 32], key: [0; KEY_LEN], iv: [0; NONCE_LEN], hp: [0; KEY_LEN] };
        expand_label(&initial, b"client in", &mut s.secret)?;
        let client = Prk::new_less_safe(HKDF_SHA256, &s.secret);
        expand_label(&client, key_label, &mut s.key)?;
        expand_label(&client, iv_label, &mut s.iv)?;
        expand_label(&client, hp_label, &mut s.hp)?;
        Ok(s)
    }
}

/// The keys that open a client's Initial packets.
pub struct InitialKeys {
    version: Version,
    aead: LessSafeKey,
    iv: [u8; NONCE_LEN],
    hp: HeaderProtectionKey,
}

/// A decrypted Initial packet, in the caller's scratch buffer.
#[derive(Debug)]
pub struct Opened<'s> {
    /// The full packet number.
    pub packet_number: u64,
    /// The unprotected header (the AEAD's associated data), packet number included.
    pub header: &'s [u8],
    /// The frames.
    pub payload: &'s [u8],
}

impl InitialKeys {
    /// The client keys of `version` for the DCID of the client's first Initial.
    pub fn client(version: Version, dcid: &[u8]) -> Result<InitialKeys, QuicError> {
        let s = ClientSecrets::derive(version, dcid)?;
        let aead = UnboundKey::new(&AES_128_GCM, &s.key).map_err(|_| QuicError::Decrypt)?;
        let hp = HeaderProtectionKey::new(&AES_128, &s.hp).map_err(|_| QuicError::Decrypt)?;
        Ok(InitialKeys { version, aead: LessSafeKey::new(aead), iv: s.iv, hp })
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The header protection mask for a 16-byte sample.
    pub fn mask(&self, sample: &[u8]) -> Result<[u8; 5], QuicError> {
        self.hp.new_mask(sample).map_err(|_| QuicError::Decrypt)
    }

    /// Remove header and packet protection from an Initial of this key's version: the packet
    /// is copied into `scratch` (at most [`super::MAX_INITIAL_LEN`] bytes are needed) and
    /// opened there. `largest_pn` is the largest packet number opened before in this flow
    /// (for decoding a truncated packet number).
    pub fn open<'s>(
        &self,
        packet: &LongPacket<'_>,
        largest_pn: Option<u64>,
        scratch: &'s mut [u8],
    ) -> Result<Opened<'s>, QuicError> {
        // Keys of another version, or a packet too short for the packet number the mask gives:
        // these keys do not open it (`Decrypt`; `Malformed` is for what a server rejects).
        if packet.packet_type() != PacketType::Initial || packet.version() != self.version {
            return Err(QuicError::Decrypt);
        }
        let len = packet.len();
        let buf = scratch.get_mut(..len).ok_or(QuicError::PacketTooLong)?;
        buf.copy_from_slice(packet.bytes());
        let pn_at = packet.pn_offset();
        let sample = buf.get(pn_at + 4..pn_at + 4 + SAMPLE_LEN).ok_or(QuicError::Malformed)?;
        let [m0, mask_pn @ ..] = self.mask(sample)?;
        let first = buf.first_mut().ok_or(QuicError::Malformed)?;
        *first ^= m0 & 0x0f;
        let first = *first;
        let pn_len = usize::from(first & 0x03) + 1;
        let pn_bytes = buf.get_mut(pn_at..pn_at + pn_len).ok_or(QuicError::Malformed)?;
        let mut truncated = 0u64;
        for (b, m) in pn_bytes.iter_mut().zip(mask_pn) {
            *b ^= m;
            truncated = truncated << 8 | u64::from(*b);
        }
        let packet_number = decode_packet_number(largest_pn, truncated, pn_len);
        let mut nonce = self.iv;
        for (n, p) in nonce.iter_mut().skip(NONCE_LEN - 8).zip(packet_number.to_be_bytes()) {
            *n ^= p;
        }
        if len < pn_at + pn_len + TAG_LEN {
            return Err(QuicError::Decrypt);
        }
        let (header, payload) = buf.split_at_mut(pn_at + pn_len);
        let plain = self
            .aead
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(&*header), payload)
            .map_err(|_| QuicError::Decrypt)?;
        // The reserved bits must be 0 once both protections are off (RFC 9000 section 17.2).
        if first & 0x0c != 0 {
            return Err(QuicError::Malformed);
        }
        Ok(Opened { packet_number, header, payload: plain })
    }
}

/// RFC 9000 Appendix A.3: the packet number closest to the next expected one whose low
/// `pn_len` bytes are `truncated`.
pub fn decode_packet_number(largest: Option<u64>, truncated: u64, pn_len: usize) -> u64 {
    let expected = largest.map_or(0, |l| l.saturating_add(1));
    let bits = 8 * pn_len.clamp(1, 4) as u32;
    let win = 1u64 << bits;
    let hwin = win / 2;
    let candidate = (expected & !(win - 1)) | (truncated & (win - 1));
    if candidate.saturating_add(hwin) <= expected && candidate < (1u64 << 62) - win {
        candidate + win
    } else if candidate > expected.saturating_add(hwin) && candidate >= win {
        candidate - win
    } else {
        candidate
    }
}
