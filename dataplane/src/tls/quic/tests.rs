//! QUIC Initial tests: the RFC 9001 / RFC 9369 vectors, malformed inputs, reassembly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::assembly::{place, Pieces, SLOT_LEN};
use super::build::{self, client_hello_message, crypto_frame, initial_packet, varint, InitialSpec};
use super::frames::{CryptoFrame, CryptoFrames};
use super::packet::{LongPacket, Parse};
use super::protection::{decode_packet_number, ClientSecrets};
use super::vectors;
use super::*;
use rand::rngs::SmallRng;
use rand::SeedableRng;

pub(super) fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The worker's shared hello buffers and its QUIC scratch, as the pipeline holds them.
struct TestPool {
    buffers: crate::tls::HelloBufferPool,
    scratch: QuicScratch,
}

impl TestPool {
    fn new(slots: usize) -> TestPool {
        let buffers = crate::tls::HelloBufferPool::new(slots);
        let scratch = QuicScratch::for_pool(&buffers);
        TestPool { buffers, scratch }
    }

    fn feed<'p>(&'p mut self, flow: &mut QuicHello, datagram: &[u8]) -> QuicFeed<'p> {
        flow.feed(&mut self.buffers, &mut self.scratch, datagram)
    }

    fn release(&mut self, flow: &mut QuicHello) {
        flow.release(&mut self.buffers)
    }

    fn available(&self) -> usize {
        self.buffers.available()
    }

    fn counters(&self) -> crate::tls::reassembly::PoolCounters {
        self.buffers.counters()
    }
}

const DCID: &[u8] = b"\x83\x94\xc8\xf0\x3e\x51\x57\x08";

struct Vector {
    version: Version,
    secret: &'static str,
    key: &'static str,
    iv: &'static str,
    hp: &'static str,
    crypto_frame: &'static str,
    header: &'static str,
    sample: &'static str,
    mask: &'static str,
    protected: &'static str,
}

const V1: Vector = Vector {
    version: Version::V1,
    secret: vectors::v1::CLIENT_SECRET,
    key: vectors::v1::KEY,
    iv: vectors::v1::IV,
    hp: vectors::v1::HP,
    crypto_frame: vectors::v1::CRYPTO_FRAME,
    header: vectors::v1::HEADER,
    sample: vectors::v1::SAMPLE,
    mask: vectors::v1::MASK,
    protected: vectors::v1::PROTECTED,
};

const V2: Vector = Vector {
    version: Version::V2,
    secret: vectors::v2::CLIENT_SECRET,
    key: vectors::v2::KEY,
    iv: vectors::v2::IV,
    hp: vectors::v2::HP,
    crypto_frame: vectors::v2::CRYPTO_FRAME,
    header: vectors::v2::HEADER,
    sample: vectors::v2::SAMPLE,
    mask: vectors::v2::MASK,
    protected: vectors::v2::PROTECTED,
};

fn check_vector(v: &Vector) {
    assert_eq!(hex(vectors::DCID), DCID);
    let s = ClientSecrets::derive(v.version, DCID).unwrap();
    assert_eq!(s.secret.to_vec(), hex(v.secret));
    assert_eq!(s.key.to_vec(), hex(v.key));
    assert_eq!(s.iv.to_vec(), hex(v.iv));
    assert_eq!(s.hp.to_vec(), hex(v.hp));

    let protected = hex(v.protected);
    assert_eq!(protected.len(), 1200);
    let keys = InitialKeys::client(v.version, DCID).unwrap();
    assert_eq!(keys.mask(&hex(v.sample)).unwrap().to_vec(), hex(v.mask));

    let Parse::Packet(p) = LongPacket::parse(&protected) else { panic!("not a packet") };
    assert_eq!(p.version(), v.version);
    assert_eq!(p.packet_type(), PacketType::Initial);
    assert_eq!(p.dcid(), DCID);
    assert!(p.scid().is_empty() && p.token().is_empty());
    assert_eq!(p.len(), 1200);
    assert_eq!(p.pn_offset(), 18);

    let mut scratch = [0u8; MAX_INITIAL_LEN];
    let opened = keys.open(&p, None, &mut scratch).unwrap();
    assert_eq!(opened.packet_number, 2);
    assert_eq!(opened.header, &hex(v.header)[..]);
    let frame = hex(v.crypto_frame);
    assert_eq!(opened.payload.len(), 1162);
    assert_eq!(&opened.payload[..frame.len()], &frame[..]);
    assert!(opened.payload[frame.len()..].iter().all(|b| *b == 0), "the rest is PADDING");

    let frames: Vec<_> = CryptoFrames::new(opened.payload).collect();
    assert_eq!(frames, vec![Ok(CryptoFrame { offset: 0, data: &frame[4..] })]);

    let mut pool = TestPool::new(1);
    let mut flow = QuicHello::new();
    match pool.feed(&mut flow, &protected) {
        QuicFeed::Complete(hello) => {
            assert_eq!(hello.sni(), Some("example.com"));
            assert_eq!(hello.alpn().next(), Some(&b"alpn"[..]));
            assert_eq!(hello.highest_version(), crate::tls::client_hello::version::TLS_1_3);
        }
        other => panic!("{other:?}"),
    }
    assert!(!flow.holds_slot());
    assert_eq!(flow.version(), Some(v.version));
    assert_eq!(flow.original_dcid(), DCID);
    assert!(matches!(pool.feed(&mut flow, &protected), QuicFeed::Finished));
}

#[test]
fn rfc9001_client_initial() {
    check_vector(&V1);
}

#[test]
fn ja4_of_a_quic_hello_starts_with_q() {
    use crate::tls::ja4::{ja4, ja4_over, Transport};
    let protected = hex(V1.protected);
    let mut pool = TestPool::new(0);
    let mut flow = QuicHello::new();
    let QuicFeed::Complete(hello) = pool.feed(&mut flow, &protected) else { panic!("no hello") };
    // Part a: QUIC, TLS 1.3, SNI, 2 ciphers, 11 extensions, ALPN "alpn"; the hashes computed
    // by hand from the RFC's hello (sha256 of "1301,1302" and of
    // "0005,000a,000d,001c,002b,002d,0033,0039,ff01_0403,0503,0603,0203,0804,0805,0806").
    assert_eq!(ja4_over(&hello, Transport::Quic).as_str(), "q13d0211an_62ed6f6ca7ad_4d634acda6c0");
    assert_eq!(ja4(&hello).as_str(), "t13d0211an_62ed6f6ca7ad_4d634acda6c0");
}

#[test]
fn rfc9369_client_initial() {
    check_vector(&V2);
}

/// Real first flights from aioquic (tests/data/quic/README.md).
#[test]
fn aioquic_initials_decode() {
    use crate::tls::ja4::{ja4_over, Transport};
    let cases = [
        (include_str!("../../../../tests/data/quic/aioquic_v1_h3.hex"), Version::V1, "www.example.org", &["h3"][..]),
        (
            include_str!("../../../../tests/data/quic/aioquic_v2_h3.hex"),
            Version::V2,
            "quic-v2.example.net",
            &["h3", "h3-29"],
        ),
    ];
    for (text, version, sni, alpn) in cases {
        let mut pool = TestPool::new(1);
        let mut flow = QuicHello::new();
        let mut done = false;
        for line in text.lines() {
            match pool.feed(&mut flow, &hex(line.trim())) {
                QuicFeed::NeedMore => {}
                QuicFeed::Complete(h) => {
                    assert_eq!(h.sni(), Some(sni));
                    let got: Vec<&[u8]> = h.alpn().collect();
                    let want: Vec<&[u8]> = alpn.iter().map(|a| a.as_bytes()).collect();
                    assert_eq!(got, want);
                    assert!(ja4_over(&h, Transport::Quic).as_str().starts_with("q13d"));
                    done = true;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(done, "{sni}");
        assert_eq!(flow.version(), Some(version));
    }
}

#[test]
fn packet_numbers_decode_near_the_expected_one() {
    // RFC 9000 Appendix A.3's example.
    assert_eq!(decode_packet_number(Some(0xa82f30ea), 0x9b32, 2), 0xa82f9b32);
    assert_eq!(decode_packet_number(None, 2, 4), 2);
    assert_eq!(decode_packet_number(Some(0xff), 0x01, 1), 0x101);
    assert_eq!(decode_packet_number(Some(0x1fe), 0xff, 1), 0x1ff);
}

#[test]
fn varints_round_trip() {
    for v in [0u64, 37, 63, 64, 15293, 16383, 16384, 494878333, (1 << 30) - 1, 1 << 30, 151288809941952652] {
        let b = varint(v);
        assert_eq!(read_varint(&b), Some((v, b.len())));
    }
    assert_eq!(read_varint(&hex("c2197c5eff14e88c")), Some((151288809941952652, 8)));
    assert_eq!(read_varint(&hex("9d7f3e7d")), Some((494878333, 4)));
    assert_eq!(read_varint(&hex("7bbd")), Some((15293, 2)));
    assert_eq!(read_varint(&[0x40]), None);
    assert_eq!(read_varint(&[]), None);
}

fn feed_all(datagrams: &[Vec<u8>]) -> Result<Option<String>, String> {
    let mut pool = TestPool::new(2);
    let mut flow = QuicHello::new();
    for d in datagrams {
        match pool.feed(&mut flow, d) {
            QuicFeed::NeedMore => {}
            QuicFeed::Complete(h) => {
                let sni = h.sni().map(str::to_owned);
                pool.release(&mut flow);
                assert_eq!(pool.available(), 2);
                return Ok(sni);
            }
            QuicFeed::Refused(r) => {
                // Dropped alone; the reading goes on (holding its slot, if any).
                pool.release(&mut flow);
                return Err(format!("Refused({r:?})"));
            }
            other => {
                let e = format!("{other:?}");
                assert_eq!(pool.available(), 2, "slots come back on failure");
                return Err(e);
            }
        }
    }
    Ok(None)
}

#[test]
fn truncated_and_cut_datagrams_never_panic_nor_spoil_the_whole_one() {
    for v in [&V1, &V2] {
        let protected = hex(v.protected);
        for cut in 0..protected.len() {
            // A cut header is not QUIC (the flow is settled as such) or is skipped.
            let r = feed_all(&[protected[..cut].to_vec()]);
            assert!(matches!(r, Err(_) | Ok(None)), "cut at {cut}: {r:?}");
            if r == Ok(None) {
                let whole = feed_all(&[protected[..cut].to_vec(), protected.clone()]);
                assert_eq!(whole, Ok(Some("example.com".into())), "cut at {cut}");
            }
        }
    }
}

#[test]
fn no_flipped_byte_yields_a_hello() {
    let protected = hex(V1.protected);
    for i in 0..protected.len() {
        let mut d = protected.clone();
        d[i] ^= 0x01;
        let got = feed_all(&[d]);
        assert!(matches!(got, Err(_) | Ok(None)), "flip at {i}: {got:?}");
    }
}

/// A packet that does not open (a forged or corrupt one, no server opens it either) is
/// skipped: it neither settles the flow nor spoils the hello that follows.
#[test]
fn a_tampered_initial_is_skipped() {
    let mut d = hex(V1.protected);
    *d.last_mut().unwrap() ^= 0x80;
    let mut pool = TestPool::new(1);
    let mut flow = QuicHello::new();
    assert!(matches!(pool.feed(&mut flow, &d), QuicFeed::NeedMore));
    assert!(!flow.is_done());
    assert!(matches!(pool.feed(&mut flow, &hex(V1.protected)), QuicFeed::Complete(_)));
}

#[test]
fn other_versions_and_types_are_not_initials() {
    let protected = hex(V1.protected);
    let mut pool = TestPool::new(1);
    // Unknown version, Version Negotiation, a short header, empty.
    let mut unknown = protected.clone();
    unknown[1..5].copy_from_slice(&[0xff, 0, 0, 0x1d]);
    let mut vn = protected.clone();
    vn[1..5].copy_from_slice(&[0; 4]);
    let mut short = protected.clone();
    short[0] = 0x40;
    // The v1 packet's version field set to v2 makes its type bits (00) a v2 Retry.
    let mut retry = protected.clone();
    retry[1..5].copy_from_slice(&Version::V2_WIRE.to_be_bytes());
    // Handshake and 0-RTT type bits.
    let mut handshake = protected.clone();
    handshake[0] = (handshake[0] & 0xcf) | 0x20;
    let mut zero_rtt = protected.clone();
    zero_rtt[0] = (zero_rtt[0] & 0xcf) | 0x10;
    for d in [unknown, vn, short, vec![]] {
        let mut flow = QuicHello::new();
        assert!(matches!(pool.feed(&mut flow, &d), QuicFeed::NotInitial), "{:02x?}", &d[..d.len().min(5)]);
        assert!(matches!(pool.feed(&mut flow, &hex(V1.protected)), QuicFeed::NotInitial));
    }
    // QUIC, but not an Initial: never opened, and the flow still waits for its Initial.
    for d in [retry, handshake, zero_rtt] {
        let mut flow = QuicHello::new();
        assert!(matches!(pool.feed(&mut flow, &d), QuicFeed::NeedMore), "{:02x?}", &d[..5]);
        assert!(!flow.is_done() && flow.version().is_none());
        assert!(matches!(pool.feed(&mut flow, &hex(V1.protected)), QuicFeed::Complete(_)));
    }
}

#[test]
fn bad_lengths_are_skipped() {
    let protected = hex(V1.protected);
    // Length (bytes 16..18, 0x449e) beyond the datagram, below the sample's needs.
    for length in [0x449fu16, 0x4000 | 1200, 0x4000 | 19, 0x4000] {
        let mut d = protected.clone();
        d[16..18].copy_from_slice(&length.to_be_bytes());
        assert_eq!(feed_all(&[d]), Ok(None), "{length:x}");
    }
    // A 21-byte DCID.
    let mut d = protected.clone();
    d[5] = 21;
    assert_eq!(feed_all(&[d.clone()]), Ok(None));
    // Skipped as a server skips it: the flow still reads the Initial that follows.
    assert_eq!(feed_all(&[d, protected]), Ok(Some("example.com".into())));
}

#[test]
fn packets_beyond_the_scratch_are_too_long() {
    let spec = InitialSpec::new(Version::V1, DCID);
    let d = initial_packet(&spec, &crypto_frame(0, b"\x01\x00\x00"), MAX_INITIAL_LEN);
    assert_eq!(feed_all(&[d]), Err("Invalid(PacketTooLong)".into()));
}

#[test]
fn coalesced_packets_are_walked_and_only_initials_opened() {
    let mut rng = SmallRng::seed_from_u64(7);
    let hello = client_hello_message("coalesced.example", false, &mut rng);
    let spec = InitialSpec::new(Version::V1, DCID);
    let mut d = initial_packet(&spec, &crypto_frame(0, &hello), 0);
    // A 0-RTT packet after it (garbage payload: never decrypted), then zero padding.
    let mut zero_rtt = vec![0xd0, 0, 0, 0, 1, 8];
    zero_rtt.extend(DCID);
    zero_rtt.push(0);
    zero_rtt.extend(varint(40));
    zero_rtt.extend([0xaa; 40]);
    d.extend(zero_rtt);
    d.extend([0u8; 100]);
    assert_eq!(feed_all(&[d]), Ok(Some("coalesced.example".into())));
}

#[test]
fn hello_split_across_packets_and_datagrams() {
    let mut rng = SmallRng::seed_from_u64(1);
    let hello = client_hello_message("pq.example", true, &mut rng);
    assert!(hello.len() > 1200, "{}", hello.len());
    let mut spec = InitialSpec::new(Version::V2, DCID);
    let first = initial_packet(&spec, &crypto_frame(0, &hello[..1000]), 1162);
    spec.packet_number = 1;
    // The second Initial goes to the server's new connection ID; the keys stay.
    spec.dcid = b"\x11\x22\x33\x44";
    let second = initial_packet(&spec, &crypto_frame(1000, &hello[1000..]), 0);
    assert_eq!(feed_all(&[first.clone(), second.clone()]), Ok(Some("pq.example".into())));
    // Out of order (the second still to the first DCID), with a duplicate of the first.
    spec.dcid = DCID;
    let second_same = initial_packet(&spec, &crypto_frame(1000, &hello[1000..]), 0);
    assert_eq!(feed_all(&[second_same, first.clone(), first.clone()]), Ok(Some("pq.example".into())));
    // Both in one datagram.
    let both = [first, second].concat();
    assert_eq!(feed_all(&[both]), Ok(Some("pq.example".into())));
}

#[test]
fn after_a_retry_the_keys_follow_the_new_connection_id() {
    let mut rng = SmallRng::seed_from_u64(5);
    let hello = client_hello_message("retry.example", true, &mut rng);
    let spec = InitialSpec::new(Version::V1, DCID);
    let first = initial_packet(&spec, &crypto_frame(0, &hello[..900]), 1162);
    // The server answered with a Retry (new connection ID, a token): the client starts over.
    let new_cid = b"\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12";
    let mut retried = InitialSpec::new(Version::V1, new_cid);
    retried.token = b"retry token";
    retried.packet_number = 1;
    let again = [
        initial_packet(&retried, &crypto_frame(0, &hello[..900]), 0),
        initial_packet(&InitialSpec { packet_number: 2, ..retried.clone() }, &crypto_frame(900, &hello[900..]), 0),
    ];
    // Without the server's Retry seen, the new ID is another connection.
    assert_eq!(feed_all(&[first.clone(), again[0].clone(), again[1].clone()]), Err("Refused(OtherConnection)".into()));
    // The server's Retry: long header type 3, the client's SCID as DCID, the new ID as SCID,
    // the token and a 16-byte integrity tag.
    let retry =
        [&[0xf0, 0, 0, 0, 1, 8][..], b"\x01\x02\x03\x04\x05\x06\x07\x08", &[9], new_cid, b"retry token", &[0; 16]]
            .concat();
    let mut pool = TestPool::new(2);
    let mut flow = QuicHello::new();
    assert!(matches!(pool.feed(&mut flow, &first), QuicFeed::NeedMore));
    flow.note_server_datagram(&retry);
    assert!(matches!(pool.feed(&mut flow, &again[0]), QuicFeed::NeedMore));
    assert!(matches!(pool.feed(&mut flow, &again[1]), QuicFeed::Complete(h) if h.sni() == Some("retry.example")));
    assert_eq!(flow.original_dcid(), new_cid);
    pool.release(&mut flow);
    // Without a token, even after a Retry, the new ID is another connection.
    let mut no_token = retried.clone();
    no_token.token = &[];
    let stray = initial_packet(&no_token, &crypto_frame(900, &hello[900..]), 0);
    let mut flow = QuicHello::new();
    assert!(matches!(pool.feed(&mut flow, &first), QuicFeed::NeedMore));
    flow.note_server_datagram(&retry);
    assert!(matches!(pool.feed(&mut flow, &stray), QuicFeed::Refused(Refusal::OtherConnection)));
    pool.release(&mut flow);
    assert_eq!(pool.available(), 2);
}

#[test]
fn interleaved_flows_each_get_their_keys() {
    let mut rng = SmallRng::seed_from_u64(6);
    let hello = client_hello_message("a.example", true, &mut rng);
    let other: &[u8] = b"\x01\x02\x03\x04\x05\x06\x07\x08\x09";
    let mut pool = TestPool::new(2);
    let (mut a, mut b) = (QuicHello::new(), QuicHello::new());
    let mk = |dcid: &'static [u8], range: std::ops::Range<usize>, v: Version| {
        initial_packet(&InitialSpec::new(v, dcid), &crypto_frame(range.start as u64, &hello[range]), 0)
    };
    let (a1, a2) = (mk(DCID, 0..700, Version::V1), mk(DCID, 700..hello.len(), Version::V1));
    let (b1, b2) = (mk(other, 0..500, Version::V2), mk(other, 500..hello.len(), Version::V2));
    assert!(matches!(pool.feed(&mut a, &a1), QuicFeed::NeedMore));
    assert!(matches!(pool.feed(&mut b, &b1), QuicFeed::NeedMore));
    assert!(matches!(pool.feed(&mut a, &a2), QuicFeed::Complete(h) if h.sni() == Some("a.example")));
    pool.release(&mut a);
    assert!(matches!(pool.feed(&mut b, &b2), QuicFeed::Complete(h) if h.sni() == Some("a.example")));
    pool.release(&mut b);
    assert_eq!(pool.available(), 2);
}

#[test]
fn conflicting_overlap_is_refused() {
    let mut rng = SmallRng::seed_from_u64(2);
    let hello = client_hello_message("conflict.example", false, &mut rng);
    let spec = InitialSpec::new(Version::V1, DCID);
    let mut altered = hello[100..200].to_vec();
    altered[20] ^= 1;
    let frames = [crypto_frame(0, &hello[..150]), crypto_frame(100, &altered)].concat();
    let d = initial_packet(&spec, &frames, 0);
    assert_eq!(feed_all(&[d]), Err("Refused(Disagrees)".into()));
    // Equal overlap is fine.
    let frames = [crypto_frame(0, &hello[..150]), crypto_frame(100, &hello[100..])].concat();
    let d = initial_packet(&spec, &frames, 0);
    assert_eq!(feed_all(&[d]), Ok(Some("conflict.example".into())));
}

#[test]
fn other_frames_and_bad_frames_fail() {
    let spec = InitialSpec::new(Version::V1, DCID);
    // PING, an ACK with a range and an ACK_ECN, then a STREAM frame (0x08).
    let ok = [vec![0x01, 0x02, 5, 0, 1, 0, 1, 1, 0x03, 5, 0, 0, 0, 1, 2, 3]].concat();
    assert_eq!(feed_all(&[initial_packet(&spec, &ok, 0)]), Ok(None));
    for bad in [vec![0x08, 0, 0], vec![0x1c, 0, 0, 0], vec![0x06, 0, 10, 1], vec![0x02, 5], vec![0x40, 0x06, 0, 0]] {
        assert_eq!(feed_all(&[initial_packet(&spec, &bad, 0)]), Err("Invalid(Frame)".into()), "{bad:02x?}");
    }
    // CRYPTO data beyond the 16 KB bound.
    let far = crypto_frame(SLOT_LEN as u64, b"x");
    assert_eq!(feed_all(&[initial_packet(&spec, &far, 0)]), Err("Invalid(Overflow)".into()));
    // Not a ClientHello; a declared hello above 16 KB.
    let not_hello = crypto_frame(0, &[2, 0, 0, 1, 0]);
    assert!(feed_all(&[initial_packet(&spec, &not_hello, 0)]).unwrap_err().contains("NotClientHello"));
    let huge = crypto_frame(0, &[1, 0, 0x40, 0]);
    assert_eq!(feed_all(&[initial_packet(&spec, &huge, 0)]), Err("Invalid(Overflow)".into()));
}

#[test]
fn another_version_is_another_connection() {
    let mut rng = SmallRng::seed_from_u64(3);
    let hello = client_hello_message("v.example", false, &mut rng);
    let a = initial_packet(&InitialSpec::new(Version::V1, DCID), &crypto_frame(0, &hello[..100]), 0);
    let b = initial_packet(&InitialSpec::new(Version::V2, DCID), &crypto_frame(100, &hello[100..]), 0);
    assert_eq!(feed_all(&[a, b]), Err("Refused(OtherConnection)".into()));
}

#[test]
fn pool_exhaustion_only_for_spanning_hellos() {
    let mut rng = SmallRng::seed_from_u64(4);
    let hello = client_hello_message("p.example", false, &mut rng);
    let spec = InitialSpec::new(Version::V1, DCID);
    let whole = initial_packet(&spec, &crypto_frame(0, &hello), 0);
    let half = initial_packet(&spec, &crypto_frame(0, &hello[..100]), 0);
    let mut pool = TestPool::new(0);
    let mut flow = QuicHello::new();
    assert!(matches!(pool.feed(&mut flow, &whole), QuicFeed::Complete(_)));
    let mut flow = QuicHello::new();
    assert!(matches!(pool.feed(&mut flow, &half), QuicFeed::PoolExhausted));
    assert_eq!(pool.counters().exhausted, 1);
}

#[test]
fn pieces_merge_and_bound() {
    let mut buf = vec![0u8; SLOT_LEN];
    let mut p = Pieces::default();
    place(&mut buf, &mut p, 10, b"abc").unwrap();
    place(&mut buf, &mut p, 20, b"xyz").unwrap();
    assert_eq!(p.contiguous(), 0);
    assert_eq!(p.end(), 23);
    place(&mut buf, &mut p, 0, b"0123456789").unwrap();
    assert_eq!(p.contiguous(), 13);
    place(&mut buf, &mut p, 13, b"defghij").unwrap();
    assert_eq!(p.contiguous(), 23);
    assert_eq!(&buf[..23], b"0123456789abcdefghijxyz");
    assert_eq!(place(&mut buf, &mut p, 5, b"5X"), Err(QuicError::Conflict));
    // Disjoint pieces up to the limit, then one more fails.
    let mut p = Pieces::default();
    for i in 0..assembly::MAX_PIECES as u64 {
        place(&mut buf, &mut p, 100 + 10 * i, b"z").unwrap();
    }
    assert_eq!(place(&mut buf, &mut p, 5000, b"z"), Err(QuicError::Fragmented));
    assert_eq!(place(&mut buf, &mut p, 101, b"z"), Ok(()));
    assert_eq!(place(&mut buf, &mut p, SLOT_LEN as u64 - 1, b"zz"), Err(QuicError::Overflow));
}

#[test]
fn flow_state_is_small() {
    // The flow table keeps one beside each entry (as `pipeline::flow::HelloState`).
    assert!(std::mem::size_of::<QuicHello>() <= 36, "{}", std::mem::size_of::<QuicHello>());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// The fuzz target's input shape: raw datagrams and arbitrary payloads sealed into
        /// valid Initials, into one flow. Never panics; slots always come back.
        #[test]
        fn arbitrary_datagrams_and_payloads(
            records in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..8),
        ) {
            let mut pool = TestPool::new(1);
            let mut flow = QuicHello::new();
            for (kind, bytes) in &records {
                let datagram = if kind & 1 == 1 {
                    let version = if kind & 2 == 0 { Version::V1 } else { Version::V2 };
                    let mut spec = InitialSpec::new(version, DCID);
                    spec.pn_len = usize::from(kind >> 2 & 3) + 1;
                    spec.packet_number = u64::from(kind >> 4);
                    // Biased towards frames that parse: a CRYPTO frame around the bytes.
                    let payload = if kind & 0x40 == 0 { crypto_frame(u64::from(kind >> 5), bytes) } else { bytes.clone() };
                    initial_packet(&spec, &payload, 0)
                } else {
                    bytes.clone()
                };
                let r = pool.feed(&mut flow, &datagram);
                if matches!(r, QuicFeed::NotInitial | QuicFeed::Invalid(_) | QuicFeed::PoolExhausted) {
                    prop_assert!(!flow.holds_slot());
                }
            }
            pool.release(&mut flow);
            prop_assert_eq!(pool.available(), 1);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// A ClientHello cut into CRYPTO frames at random points, the frames dealt into
        /// packets and datagrams, the datagrams in random order (some twice): the same hello.
        #[test]
        fn random_splits_reassemble(
            seed in any::<u64>(),
            pq in any::<bool>(),
            cuts in proptest::collection::vec(1usize..4000, 0..12),
            // At most 13 pieces, two or more per datagram, and one extra datagram dealt first:
            // within the datagrams a flow may send before its hello completes.
            per_packet in 2usize..5,
            order in proptest::collection::vec(any::<u16>(), 0..2),
            v2 in any::<bool>(),
        ) {
            let mut rng = SmallRng::seed_from_u64(seed);
            let hello = client_hello_message("split.example", pq, &mut rng);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % hello.len()).collect();
            cuts.extend([0, hello.len()]);
            cuts.sort_unstable();
            cuts.dedup();
            let frames: Vec<Vec<u8>> =
                cuts.windows(2).map(|w| crypto_frame(w[0] as u64, &hello[w[0]..w[1]])).collect();
            let version = if v2 { Version::V2 } else { Version::V1 };
            let mut datagrams = Vec::new();
            for (pn, chunk) in frames.chunks(per_packet).enumerate() {
                let mut spec = InitialSpec::new(version, DCID);
                spec.packet_number = pn as u64;
                spec.pn_len = 2;
                let mut payload: Vec<u8> = chunk.iter().rev().flatten().copied().collect();
                payload.insert(0, 0x01);
                datagrams.push(initial_packet(&spec, &payload, 0));
            }
            // Deal in random order: each index drawn picks a datagram, then the rest in order.
            let mut deck: Vec<Vec<u8>> = Vec::new();
            for o in order {
                deck.push(datagrams[usize::from(o) % datagrams.len()].clone());
            }
            deck.extend(datagrams.iter().cloned());
            let mut pool = TestPool::new(1);
            let mut flow = QuicHello::new();
            let mut got = None;
            for d in &deck {
                match pool.feed(&mut flow, d) {
                    QuicFeed::NeedMore => {}
                    QuicFeed::Complete(h) => {
                        got = Some(h.body().to_vec());
                        break;
                    }
                    other => prop_assert!(false, "{:?}", other),
                }
            }
            prop_assert_eq!(got.as_deref(), Some(&hello[4..]));
            pool.release(&mut flow);
            prop_assert_eq!(pool.available(), 1);
        }
    }
}

#[test]
fn a_first_flight_is_full_datagrams_and_a_post_quantum_hello_takes_two() {
    let mut rng = SmallRng::seed_from_u64(9);
    let flight = build::two_datagram_hello("pq.example", &mut rng);
    assert_eq!(flight.len(), 2);
    assert!(flight.iter().all(|d| d.len() == build::FIRST_DATAGRAM_LEN));
    let mut pool = TestPool::new(1);
    let mut flow = QuicHello::new();
    // The second first: it waits in a slot.
    assert!(matches!(pool.feed(&mut flow, &flight[1]), QuicFeed::NeedMore));
    assert_eq!(pool.available(), 0);
    let QuicFeed::Complete(h) = pool.feed(&mut flow, &flight[0]) else { panic!("no hello") };
    assert_eq!(h.sni(), Some("pq.example"));
    pool.release(&mut flow);
    assert_eq!(pool.available(), 1);
    let one = build::first_flight(Version::V2, DCID, &client_hello_message("one.example", false, &mut rng));
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].len(), build::FIRST_DATAGRAM_LEN);
}

#[test]
fn a_hello_never_finished_fails_after_the_datagram_limit() {
    let mut pool = TestPool::new(1);
    let mut flow = QuicHello::new();
    // Initials with a PING frame and padding only: each opens, none carries the hello.
    for n in 0..u64::from(assembly::MAX_DATAGRAMS) {
        let mut spec = InitialSpec::new(Version::V1, DCID);
        spec.packet_number = n;
        let d = initial_packet(&spec, &[0x01], 1162);
        assert!(matches!(pool.feed(&mut flow, &d), QuicFeed::NeedMore), "datagram {n}");
    }
    let mut spec = InitialSpec::new(Version::V1, DCID);
    spec.packet_number = 8;
    let d = initial_packet(
        &spec,
        &crypto_frame(0, &client_hello_message("late.example", false, &mut SmallRng::seed_from_u64(1))),
        0,
    );
    assert!(matches!(pool.feed(&mut flow, &d), QuicFeed::Invalid(QuicError::Unfinished)));
    assert!(!flow.holds_slot());
    assert_eq!(pool.available(), 1);
}
