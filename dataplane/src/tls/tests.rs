//! Unit tests: real hellos from `tests/data/tls`, malformed variants, multi-record hellos,
//! reassembly orders, and the fingerprints' edge cases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::client_hello::{ext, HelloOutcome, InvalidHello, MAX_HELLO_LEN};
use super::ja3::{ja3, write_ja3_string};
use super::ja4::{ja4, write_ja4_raw, Ja4};
use super::reassembly::{FeedResult, HelloBufferPool, HelloReassembly, SLOT_LEN};
use super::stream::parse_stream;
use super::*;
use crate::wire::{parse_frame, Parsed};
use proptest::prelude::*;
use std::path::PathBuf;

pub(crate) fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tls")
}

/// The client's first payload of a capture (one segment holds the whole hello record).
pub(crate) fn hello_record(name: &str) -> Vec<u8> {
    let frames = crate::pcap::read_all(&data_dir().join(name)).unwrap();
    for f in &frames {
        if let Ok(Parsed::Ip(p)) = parse_frame(&f.data) {
            let payload = &f.data[p.payload_offset as usize..][..p.payload_len as usize];
            if payload.first() == Some(&22) {
                return payload.to_vec();
            }
        }
    }
    panic!("{name}: no hello");
}

/// The client's byte stream of a capture: its payload segments placed by sequence number.
pub(crate) fn client_stream(name: &str) -> Vec<u8> {
    let frames = crate::pcap::read_all(&data_dir().join(name)).unwrap();
    let mut base = None;
    let mut out = Vec::new();
    for f in &frames {
        if let Ok(Parsed::Ip(p)) = parse_frame(&f.data) {
            if p.dst_port != 443 && p.dst_port != 4433 {
                continue;
            }
            if p.tcp_flags & crate::wire::tcp_flags::SYN != 0 {
                base = Some(p.tcp_seq.wrapping_add(1));
                continue;
            }
            let payload = &f.data[p.payload_offset as usize..][..p.payload_len as usize];
            let at = p.tcp_seq.wrapping_sub(base.unwrap()) as usize;
            if out.len() < at + payload.len() {
                out.resize(at + payload.len(), 0);
            }
            out[at..at + payload.len()].copy_from_slice(payload);
        }
    }
    out
}

const CAPTURES: &[&str] = &[
    "openssl_tls13_sni.pcap",
    "openssl_alpn.pcap",
    "openssl_tls12.pcap",
    "openssl_nosni.pcap",
    "curl.pcap",
    "gnutls.pcap",
    "python.pcap",
];

fn complete<'a>(o: HelloOutcome<'a>) -> ClientHello<'a> {
    match o {
        HelloOutcome::Complete(h) => h,
        other => panic!("expected a complete hello, got {other:?}"),
    }
}

fn invalid(o: HelloOutcome<'_>) -> InvalidHello {
    match o {
        HelloOutcome::Invalid(e) => e,
        other => panic!("expected invalid, got {other:?}"),
    }
}

fn parse(stream: &[u8]) -> HelloOutcome<'_> {
    // A leaked scratch keeps the test helpers short; tests only.
    let scratch: &'static mut [u8] = Box::leak(vec![0u8; MAX_HELLO_LEN].into_boxed_slice());
    parse_stream(stream, scratch)
}

/// Handshake message (type, length, body) of a single-record hello.
fn message(record: &[u8]) -> &[u8] {
    &record[5..]
}

fn records(msg: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut from = 0;
    for &to in cuts.iter().chain(std::iter::once(&msg.len())) {
        let frag = &msg[from..to];
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&(frag.len() as u16).to_be_bytes());
        out.extend_from_slice(frag);
        from = to;
    }
    out
}

/// Offsets of the body fields of a real hello, to edit them.
struct Layout {
    session_id: usize,
    ciphers: usize,
    compression: usize,
    extensions: usize,
}

fn layout(record: &[u8]) -> Layout {
    let session_id = 9 + 2 + 32;
    let ciphers = session_id + 1 + record[session_id] as usize;
    let n = u16::from_be_bytes([record[ciphers], record[ciphers + 1]]) as usize;
    let compression = ciphers + 2 + n;
    let extensions = compression + 1 + record[compression] as usize;
    Layout { session_id, ciphers, compression, extensions }
}

#[test]
fn real_hellos_parse_in_place() {
    for name in CAPTURES {
        let rec = hello_record(name);
        let h = complete(parse(&rec));
        // In place: the body borrows the stream itself.
        assert_eq!(h.body().as_ptr(), rec[9..].as_ptr(), "{name}");
        assert_eq!(h.legacy_version(), 0x0303, "{name}");
        assert!(h.cipher_suites().len() > 10, "{name}");
        assert!(h.extensions().count() > 5, "{name}");
        assert!(!h.has_ech());
    }
    let rec = hello_record("openssl_tls13_sni.pcap");
    let h2 = complete(parse(&rec));
    assert_eq!(h2.sni(), Some("openssl.example.com"));
    assert_eq!(h2.highest_version(), 0x0304);
    assert_eq!(version_str(h2.highest_version()), Some("1.3"));
    assert_eq!(h2.alpn().count(), 0);
    assert_eq!(h2.supported_groups().collect::<Vec<_>>(), [29, 23, 30, 25, 24, 256, 257, 258, 259, 260]);
    assert_eq!(h2.ec_point_formats(), &[0, 1, 2]);
    assert_eq!(h2.key_share_groups().collect::<Vec<_>>(), [29]);
    assert_eq!(h2.signature_algorithms().next(), Some(0x0403));

    let rec = hello_record("openssl_tls12.pcap");
    let h = complete(parse(&rec));
    assert_eq!(h.sni(), Some("tls12.example.com"));
    assert_eq!(h.highest_version(), 0x0303);
    assert!(!h.has_supported_versions());
    assert_eq!(h.key_share_groups().count(), 0);

    let rec = hello_record("curl.pcap");
    let h = complete(parse(&rec));
    assert_eq!(h.alpn().collect::<Vec<_>>(), [&b"h2"[..], b"http/1.1"]);
    assert_eq!(h.sni(), Some("curl.example.com"));

    let rec = hello_record("openssl_nosni.pcap");
    let h = complete(parse(&rec));
    assert_eq!(h.sni(), None);
    assert!(!h.has_sni_extension());
}

#[test]
fn every_truncation_needs_more() {
    for name in CAPTURES {
        let rec = hello_record(name);
        for cut in 0..rec.len() {
            assert!(matches!(parse(&rec[..cut]), HelloOutcome::NeedMore), "{name} cut at {cut}");
        }
        // Split into records at a few places: every prefix still needs more.
        let msg = message(&rec);
        let multi = records(msg, &[1, 3, 4, 50, msg.len() - 1]);
        for cut in 0..multi.len() {
            assert!(matches!(parse(&multi[..cut]), HelloOutcome::NeedMore), "{name} multi cut at {cut}");
        }
        assert!(matches!(parse(&multi), HelloOutcome::Complete(_)));
    }
}

#[test]
fn not_tls() {
    for s in
        [&b"GET / HTTP/1.1\r\n"[..], b"SSH-2.0-OpenSSH", &[23, 3, 3, 0, 5], &[22, 2, 0], &[22, 3, 9, 0, 5], &[0x80]]
    {
        assert!(matches!(parse(s), HelloOutcome::NotTls), "{s:?}");
    }
}

#[test]
fn record_and_handshake_header_errors() {
    let rec = hello_record("openssl_tls13_sni.pcap");
    let mut r = rec.clone();
    r[3] = 0;
    r[4] = 0;
    assert_eq!(invalid(parse(&r)), InvalidHello::RecordLength);
    r[3] = 0x40;
    r[4] = 1;
    assert_eq!(invalid(parse(&r)), InvalidHello::RecordLength);

    let mut r = rec.clone();
    r[5] = 2; // ServerHello
    assert_eq!(invalid(parse(&r)), InvalidHello::NotClientHello);
    assert_eq!(invalid(parse(&r[..6])), InvalidHello::NotClientHello, "known from the first byte");

    let mut r = rec.clone();
    r[6] = 0x01; // 65536 + ... > 16 KB
    assert_eq!(invalid(parse(&r[..9])), InvalidHello::TooLarge, "known from the header");

    // The handshake claims one byte more than the record: the next record must carry it,
    // and an application-data record there is a lie.
    let msg = message(&rec).to_vec();
    let mut longer = msg.clone();
    let n = u32::from_be_bytes([0, longer[1], longer[2], longer[3]]) + 1;
    longer[1..4].copy_from_slice(&n.to_be_bytes()[1..]);
    let stream = records(&longer, &[]);
    assert!(matches!(parse(&stream), HelloOutcome::NeedMore));
    let mut lying = stream.clone();
    lying.extend_from_slice(&[23, 3, 3, 0, 1, 0]);
    assert_eq!(invalid(parse(&lying)), InvalidHello::RecordType);
    let mut junk_version = stream.clone();
    junk_version.extend_from_slice(&[22, 7, 7, 0, 1, 0]);
    assert_eq!(invalid(parse(&junk_version)), InvalidHello::RecordType);
    // ... and a handshake record carrying one more byte ends the hello with trailing garbage.
    let mut with_byte = stream.clone();
    with_byte.extend_from_slice(&[22, 3, 3, 0, 1, 0]);
    assert_eq!(invalid(parse(&with_byte)), InvalidHello::Extensions);

    // The handshake claims one byte less: the extension block overruns the body.
    let mut shorter = msg.clone();
    let n = u32::from_be_bytes([0, shorter[1], shorter[2], shorter[3]]) - 1;
    shorter[1..4].copy_from_slice(&n.to_be_bytes()[1..]);
    assert_eq!(invalid(parse(&records(&shorter, &[]))), InvalidHello::Extensions);
}

#[test]
fn body_field_errors() {
    let rec = hello_record("openssl_tls13_sni.pcap");
    let l = layout(&rec);
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut r = rec.clone();
        f(&mut r);
        r
    };
    let r = edit(&|r| r[l.session_id] = 33);
    assert_eq!(invalid(parse(&r)), InvalidHello::SessionId);
    let r = edit(&|r| r[l.session_id] = 255);
    assert_eq!(invalid(parse(&r)), InvalidHello::SessionId);
    let r = edit(&|r| r[l.ciphers + 1] |= 1);
    assert!(matches!(
        invalid(parse(&r)),
        InvalidHello::CipherSuites | InvalidHello::CompressionMethods | InvalidHello::Extensions
    ));
    let r = edit(&|r| r[l.ciphers + 1] += 1); // odd length
    assert_eq!(invalid(parse(&r)), InvalidHello::CipherSuites);
    let r = edit(&|r| r[l.ciphers] = 0xff);
    assert_eq!(invalid(parse(&r)), InvalidHello::CipherSuites);
    let r = edit(&|r| r[l.compression] = 0);
    assert!(matches!(invalid(parse(&r)), InvalidHello::Extensions | InvalidHello::CompressionMethods));
    let r = edit(&|r| r[l.compression] = 200);
    assert_eq!(invalid(parse(&r)), InvalidHello::CompressionMethods);
    let r = edit(&|r| r[l.extensions] ^= 0x10);
    assert_eq!(invalid(parse(&r)), InvalidHello::Extensions);
    // The first extension (server_name) claims more than the block holds.
    let first_ext = l.extensions + 2;
    assert_eq!(u16::from_be_bytes([rec[first_ext], rec[first_ext + 1]]), ext::SERVER_NAME);
    let r = edit(&|r| r[first_ext + 2] = 0x7f);
    assert_eq!(invalid(parse(&r)), InvalidHello::Extensions);
    // Its server_name_list length lies.
    let r = edit(&|r| r[first_ext + 5] += 1);
    assert_eq!(invalid(parse(&r)), InvalidHello::Extension(ext::SERVER_NAME));
    // Its host_name length lies.
    let r = edit(&|r| r[first_ext + 8] += 1);
    assert_eq!(invalid(parse(&r)), InvalidHello::Extension(ext::SERVER_NAME));
    // Truncated fixed fields.
    let msg = message(&rec);
    let short = [&[1u8, 0, 0, 20][..], &msg[4..24]].concat();
    assert_eq!(invalid(parse(&records(&short, &[]))), InvalidHello::Truncated);
}

/// A hello from explicit parts (tests of the fingerprints and of extension contents).
pub(crate) fn build_hello(legacy: u16, ciphers: &[u16], exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = legacy.to_be_bytes().to_vec();
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&((ciphers.len() * 2) as u16).to_be_bytes());
    for c in ciphers {
        body.extend_from_slice(&c.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]);
    let mut block = Vec::new();
    for (t, d) in exts {
        block.extend_from_slice(&t.to_be_bytes());
        block.extend_from_slice(&(d.len() as u16).to_be_bytes());
        block.extend_from_slice(d);
    }
    if !exts.is_empty() {
        body.extend_from_slice(&(block.len() as u16).to_be_bytes());
        body.extend_from_slice(&block);
    }
    let mut msg = vec![1];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(&body);
    records(&msg, &[])
}

pub(crate) fn u16_vec(prefix: usize, values: &[u16]) -> Vec<u8> {
    let mut out = Vec::new();
    let n = values.len() * 2;
    if prefix == 1 {
        out.push(n as u8);
    } else {
        out.extend_from_slice(&(n as u16).to_be_bytes());
    }
    for v in values {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out
}

pub(crate) fn sni_ext(name: &[u8]) -> (u16, Vec<u8>) {
    let mut d = ((name.len() + 3) as u16).to_be_bytes().to_vec();
    d.push(0);
    d.extend_from_slice(&(name.len() as u16).to_be_bytes());
    d.extend_from_slice(name);
    (ext::SERVER_NAME, d)
}

pub(crate) fn alpn_ext(names: &[&[u8]]) -> (u16, Vec<u8>) {
    let mut list = Vec::new();
    for n in names {
        list.push(n.len() as u8);
        list.extend_from_slice(n);
    }
    let mut d = (list.len() as u16).to_be_bytes().to_vec();
    d.extend_from_slice(&list);
    (ext::ALPN, d)
}

#[test]
fn extension_contents() {
    let sv = (ext::SUPPORTED_VERSIONS, u16_vec(1, &[0x2a2a, 0x0304, 0x0303]));
    let h = build_hello(
        0x0303,
        &[0x1301],
        &[sni_ext(b"Example.COM"), sv.clone(), (ext::ENCRYPTED_CLIENT_HELLO, vec![0; 9])],
    );
    let h = complete(parse(&h));
    assert_eq!(h.sni(), Some("Example.COM"));
    assert_eq!(h.highest_version(), 0x0304);
    assert!(h.has_ech());

    // Only GREASE in supported_versions: the legacy version counts.
    let h = build_hello(0x0302, &[0x1301], &[(ext::SUPPORTED_VERSIONS, u16_vec(1, &[0x3a3a]))]);
    assert_eq!(complete(parse(&h)).highest_version(), 0x0302);

    // Non-ASCII host name: no text SNI, bytes still available.
    let h = build_hello(0x0303, &[0x1301], &[sni_ext("bücher.example".as_bytes())]);
    let h2 = complete(parse(&h));
    assert_eq!(h2.sni(), None);
    assert!(h2.sni_bytes().is_some());

    // No extensions at all (TLS 1.0 style).
    let h = build_hello(0x0301, &[0x002f], &[]);
    let h2 = complete(parse(&h));
    assert_eq!(h2.extensions().count(), 0);
    assert_eq!(h2.highest_version(), 0x0301);

    let bad: Vec<(u16, Vec<u8>)> = vec![
        (ext::SUPPORTED_VERSIONS, vec![3, 3, 4, 3]),
        (ext::SUPPORTED_VERSIONS, vec![0]),
        (ext::SUPPORTED_GROUPS, vec![0, 3, 0, 29, 0]),
        (ext::SIGNATURE_ALGORITHMS, vec![0, 2, 4]),
        (ext::EC_POINT_FORMATS, vec![0]),
        (ext::ALPN, vec![0, 3, 0, b'h', b'2']),
        (ext::ALPN, vec![0, 0]),
        (ext::KEY_SHARE, vec![0, 4, 0, 29, 0, 0]),
        (ext::KEY_SHARE, vec![0, 5, 0, 29, 0, 2, 1]),
        (ext::SERVER_NAME, vec![]),
        (ext::SERVER_NAME, vec![0, 0]),
    ];
    for (t, d) in bad {
        let h = build_hello(0x0303, &[0x1301], &[(t, d.clone())]);
        assert_eq!(invalid(parse(&h)), InvalidHello::Extension(t), "{t:#x} {d:?}");
    }
    let h = build_hello(0x0303, &[0x1301], &[sni_ext(b"a"), sni_ext(b"b")]);
    assert_eq!(invalid(parse(&h)), InvalidHello::DuplicateExtension(0));
    let h = build_hello(0x0303, &[0x1301], &[sv.clone(), sv]);
    assert_eq!(invalid(parse(&h)), InvalidHello::DuplicateExtension(ext::SUPPORTED_VERSIONS));
}

#[test]
fn multi_record_hellos_are_copied_to_scratch() {
    let rec = hello_record("curl.pcap");
    let single = complete(parse(&rec));
    let msg = message(&rec);
    for cut in 1..msg.len() {
        let stream = records(msg, &[cut]);
        let mut scratch = vec![0u8; MAX_HELLO_LEN];
        let h = complete(parse_stream(&stream, &mut scratch));
        assert_eq!(h.sni(), single.sni(), "cut {cut}");
        assert!(h.cipher_suites().eq(single.cipher_suites()));
        assert!(h.extensions().eq(single.extensions()));
        assert_eq!(ja3(&h), ja3(&single));
    }
    // Record-per-byte (legal, if silly).
    let cuts: Vec<usize> = (1..msg.len()).collect();
    let stream = records(msg, &cuts);
    assert_eq!(complete(parse(&stream)).sni(), Some("curl.example.com"));
    // A scratch buffer too small for a spanning hello.
    let stream = records(msg, &[10]);
    let mut small = vec![0u8; 100];
    assert_eq!(invalid(parse_stream(&stream, &mut small)), InvalidHello::TooLarge);
    // Trailing bytes after a complete hello (the next flight) are ignored.
    let mut more = rec.clone();
    more.extend_from_slice(&[23, 3, 3, 0, 2, 9, 9]);
    assert!(matches!(parse(&more), HelloOutcome::Complete(_)));
}

#[test]
fn grease_and_versions() {
    for v in [0x0a0a, 0x1a1a, 0xfafa, 0xdada] {
        assert!(is_grease(v));
    }
    for v in [0x0a1a, 0x0000, 0x1301, 0xaaab, 0x0b0b] {
        assert!(!is_grease(v));
    }
    assert_eq!((0..=u16::MAX).filter(|v| is_grease(*v)).count(), 16);
    for v in 0x0300..=0x0304u16 {
        assert_eq!(parse_version(version_str(v).unwrap()), Some(v));
    }
    assert_eq!(version_str(0x0305), None);
}

#[test]
fn ja3_strings() {
    let rec = hello_record("openssl_tls12.pcap");
    let h = complete(parse(&rec));
    let mut s = String::new();
    write_ja3_string(&h, &mut s).unwrap();
    // From tshark's tls.handshake.ja3_full on the same capture (see tests/data/tls/README.md).
    assert_eq!(s, "771,49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192-107-49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,0-11-10-35-22-23-13,29-23-30-25-24,0-1-2");
    assert_eq!(ja3(&h).to_string(), "871a754af286dfb70c1b53c6887c62e0");
    assert_eq!(Ja3::from_hex("871A754AF286DFB70C1B53C6887C62E0"), Some(ja3(&h)));
    assert_eq!(Ja3::from_hex("871a"), None);
    assert_eq!(Ja3::from_hex("zz1a754af286dfb70c1b53c6887c62e0"), None);

    // GREASE is dropped everywhere; empty fields stay empty.
    let h = build_hello(0x0301, &[0x0a0a, 4, 5], &[]);
    let mut s = String::new();
    write_ja3_string(&complete(parse(&h)), &mut s).unwrap();
    assert_eq!(s, "769,4-5,,,");
}

/// JA4.md's worked example: the cipher and extension lists and signature algorithms it
/// lists, and the hashes it gives for them.
#[test]
fn ja4_spec_example() {
    let ciphers = [
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f,
        0x0035,
    ];
    let sigs = u16_vec(2, &[0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]);
    let order = [
        0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b,
        0x000a, 0x0015,
    ];
    let exts: Vec<(u16, Vec<u8>)> = order
        .iter()
        .map(|&t| match t {
            0x0000 => sni_ext(b"example.com"),
            0x0010 => alpn_ext(&[b"h2", b"http/1.1"]),
            0x000d => (t, sigs.clone()),
            0x002b => (t, u16_vec(1, &[0x0a0a, 0x0304, 0x0303])),
            0x0033 => (t, vec![0, 0]),
            0x000a => (t, u16_vec(2, &[0x001d])),
            0x000b => (t, vec![1, 0]),
            _ => (t, vec![]),
        })
        .collect();
    let mut with_grease = exts.clone();
    with_grease.insert(0, (0x1a1a, vec![]));
    let mut cs = vec![0x2a2a];
    cs.extend_from_slice(&ciphers);
    let rec = build_hello(0x0303, &cs, &with_grease);
    let h = complete(parse(&rec));
    assert_eq!(ja4(&h).as_str(), "t13d1516h2_8daaf6152771_e5627efa2ab1");
    // Without signature algorithms the extension list alone is hashed.
    let no_sigs: Vec<_> = exts.iter().filter(|(t, _)| *t != 0x000d).cloned().collect();
    let rec = build_hello(0x0303, &ciphers, &no_sigs);
    let mut raw = String::new();
    write_ja4_raw(&complete(parse(&rec)), &mut raw).unwrap();
    assert!(raw.ends_with("_0005,000a,000b,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01"), "{raw}");
}

#[test]
fn ja4_edge_cases() {
    // No ciphers beyond GREASE, only SNI and ALPN as extensions: both hashes are zeros.
    let rec = build_hello(0x0303, &[0x0a0a], &[sni_ext(b"a.b"), alpn_ext(&[b"h2"])]);
    assert_eq!(ja4(&complete(parse(&rec))).as_str(), "t12d0002h2_000000000000_000000000000");
    // No SNI, no ALPN, TLS 1.0.
    let rec = build_hello(0x0301, &[0x002f], &[(0x0017, vec![])]);
    assert!(ja4(&complete(parse(&rec))).as_str().starts_with("t10i010100_"));
    // ALPN characters (JA4.md's examples).
    let cases: &[(&[u8], &str)] = &[
        (&[0xab], "ab"),
        (&[0x20], "20"),
        (&[0xab, 0xcd], "ad"),
        (&[0x20, 0x61], "21"),
        (&[0x30, 0xab], "3b"),
        (&[0x61, 0x20], "60"),
        (&[0x30, 0x31, 0xab, 0xcd], "3d"),
        (&[0x30, 0xab, 0xcd, 0x31], "01"),
        (b"http/1.1", "h1"),
        (b"x", "xx"),
    ];
    for (alpn, code) in cases {
        let rec = build_hello(0x0303, &[0x1301], &[alpn_ext(&[alpn])]);
        assert_eq!(&ja4(&complete(parse(&rec))).as_str()[8..10], *code, "{alpn:?}");
    }
    // Counts are capped at 99; long lists take the large path and still hash everything.
    let ciphers: Vec<u16> = (0..300u16).rev().map(|c| c + 0x100).collect();
    let exts: Vec<(u16, Vec<u8>)> = (0..150u16).map(|t| (0x3000 + t, vec![])).collect();
    let rec = build_hello(0x0303, &ciphers, &exts);
    let h = complete(parse(&rec));
    let fp = ja4(&h);
    assert_eq!(&fp.as_str()[..10], "t12i999900");
    let mut raw = String::new();
    write_ja4_raw(&h, &mut raw).unwrap();
    let parts: Vec<&str> = raw.splitn(3, '_').collect();
    let hash12 = |s: &str| {
        use sha2::Digest;
        sha2::Sha256::digest(s.as_bytes()).iter().take(6).map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_eq!(&fp.as_str()[11..23], hash12(parts[1]));
    assert_eq!(&fp.as_str()[24..], hash12(parts[2]));
    assert_eq!(Ja4::parse(&fp.as_str().to_uppercase()), Some(fp));
    assert_eq!(Ja4::parse("t13d1516h2_8daaf6152771_e5627efa2ab"), None);
    assert_eq!(Ja4::parse("t13d1516h2-8daaf6152771_e5627efa2ab1"), None);
}

// ---- reassembly ----

fn feed_all(pool: &mut HelloBufferPool, st: &mut HelloReassembly, segs: &[(u32, Vec<u8>)]) -> Option<String> {
    let mut sni = None;
    for (seq, data) in segs {
        match st.feed(pool, *seq, data) {
            FeedResult::Complete(h) => sni = Some(h.sni().unwrap_or("").to_string()),
            FeedResult::NeedMore | FeedResult::Finished => {}
            other => panic!("{other:?}"),
        }
    }
    st.release(pool);
    sni
}

fn segments(stream: &[u8], base: u32, sizes: &[usize]) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < stream.len() {
        let n = sizes[i % sizes.len()].min(stream.len() - at);
        out.push((base.wrapping_add(at as u32), stream[at..at + n].to_vec()));
        at += n;
        i += 1;
    }
    out
}

#[test]
fn reassembly_fast_path_takes_no_slot() {
    let mut pool = HelloBufferPool::new(1);
    let mut st = HelloReassembly::new();
    assert_eq!(std::mem::size_of::<HelloReassembly>(), 24);
    st.on_syn(99);
    let rec = hello_record("gnutls.pcap");
    match st.feed(&mut pool, 100, &rec) {
        FeedResult::Complete(h) => assert_eq!(h.sni(), Some("gnutls.example.com")),
        other => panic!("{other:?}"),
    }
    assert!(!st.holds_slot());
    assert_eq!(pool.counters().acquired, 0);
    assert!(matches!(st.feed(&mut pool, 100, &rec), FeedResult::Finished));
}

#[test]
fn reassembly_orders() {
    let rec = hello_record("curl.pcap");
    let mut pool = HelloBufferPool::new(2);
    for base in [0u32, 1_000_000, u32::MAX - 100] {
        for sizes in [&[1usize][..], &[7], &[100, 3], &[400]] {
            let segs = segments(&rec, base, sizes);
            // In order.
            let mut st = HelloReassembly::new();
            st.on_syn(base.wrapping_sub(1));
            assert_eq!(feed_all(&mut pool, &mut st, &segs).as_deref(), Some("curl.example.com"));
            // Reversed.
            let mut st = HelloReassembly::new();
            st.on_syn(base.wrapping_sub(1));
            let mut rev = segs.clone();
            rev.reverse();
            assert_eq!(feed_all(&mut pool, &mut st, &rev).as_deref(), Some("curl.example.com"), "{sizes:?}");
            assert_eq!(pool.available(), 2);
        }
    }
}

#[test]
fn reassembly_terminal_outcomes_release_the_slot() {
    let mut pool = HelloBufferPool::new(1);
    // Not TLS, seen in the second segment's view (first segment short).
    let mut st = HelloReassembly::new();
    assert!(matches!(st.feed(&mut pool, 10, &[22]), FeedResult::NeedMore));
    assert!(st.holds_slot());
    assert!(matches!(st.feed(&mut pool, 11, b"GET"), FeedResult::NotTls));
    assert!(!st.holds_slot());
    assert_eq!(pool.available(), 1);
    assert!(matches!(st.feed(&mut pool, 14, b"more"), FeedResult::NotTls));

    // Pool exhausted.
    let mut a = HelloReassembly::new();
    let mut b = HelloReassembly::new();
    assert!(matches!(a.feed(&mut pool, 0, &[22, 3]), FeedResult::NeedMore));
    assert!(matches!(b.feed(&mut pool, 0, &[22, 3]), FeedResult::PoolExhausted));
    assert_eq!(pool.counters().exhausted, 1);
    a.release(&mut pool);
    a.release(&mut pool);
    assert_eq!(pool.available(), 1);

    // Invalid, through the buffered path.
    let rec = hello_record("openssl_tls13_sni.pcap");
    let mut bad = rec.clone();
    bad[9 + 34] = 40; // session id length
    let mut st = HelloReassembly::new();
    assert!(matches!(st.feed(&mut pool, 0, &bad[..20]), FeedResult::NeedMore));
    assert!(matches!(st.feed(&mut pool, 20, &bad[20..]), FeedResult::Invalid(InvalidHello::SessionId)));
    assert_eq!(pool.available(), 1);
}

#[test]
fn reassembly_overflow() {
    let mut pool = HelloBufferPool::new(1);
    // A hello filling one maximal record: 16384 + 5 bytes of stream, one more than a slot.
    let mut msg = vec![1, 0, 0x3f, 0xfc];
    msg.resize(16384, 0);
    let stream = records(&msg, &[]);
    let mut st = HelloReassembly::new();
    let mut last = None;
    for (seq, d) in segments(&stream, 0, &[1460]) {
        last = Some(format!("{:?}", st.feed(&mut pool, seq, &d)));
    }
    assert_eq!(last.as_deref(), Some("Overflow"));
    assert_eq!(pool.available(), 1);
    // A spanning hello declared above 16 KB is known to overflow from its header.
    let mut st = HelloReassembly::new();
    let big = [22, 3, 1, 0, 4, 1, 0, 0x40, 0x01];
    assert!(matches!(st.feed(&mut pool, 0, &big), FeedResult::Overflow));
}

#[test]
fn reassembly_retransmissions_first_wins() {
    let rec = hello_record("python.pcap");
    let mut pool = HelloBufferPool::new(1);
    let mut st = HelloReassembly::new();
    st.on_syn(999);
    // A retransmission reaching back over the SYN is trimmed.
    let mut before = vec![0xee; 3];
    before.extend_from_slice(&rec[..50]);
    assert!(matches!(st.feed(&mut pool, 997, &before), FeedResult::NeedMore));
    // An overlapping retransmission with different bytes does not overwrite.
    let mut forged = rec[..100].to_vec();
    forged[10..50].fill(0);
    assert!(matches!(st.feed(&mut pool, 1000, &forged), FeedResult::NeedMore));
    match st.feed(&mut pool, 1050, &rec[50..]) {
        FeedResult::Complete(h) => assert_eq!(h.sni(), Some("python.example.com")),
        other => panic!("{other:?}"),
    }
    assert_eq!(st.assembled(&pool), &rec[..]);
    st.release(&mut pool);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any arrival order, with duplicates and overlapping retransmissions, gives the hello.
    #[test]
    fn reassembly_any_order(
        cuts in proptest::collection::vec(1usize..2000, 1..12),
        order in proptest::collection::vec(any::<u16>(), 1..40),
        base in any::<u32>(),
        syn in any::<bool>(),
    ) {
        let rec = client_stream("pq_split.pcap");
        let mut points: Vec<usize> = cuts.iter().map(|c| c % rec.len()).collect();
        points.push(0);
        points.push(rec.len());
        points.sort_unstable();
        points.dedup();
        let segs: Vec<(usize, usize)> = points.windows(2).map(|w| (w[0], w[1])).collect();
        // Deliver segments in a shuffled order with repeats, then all of them once in order
        // (a real sender retransmits until acknowledged).
        let mut plan: Vec<(usize, usize)> = order.iter().map(|i| segs[*i as usize % segs.len()]).collect();
        // Overlapping retransmission spanning two segments.
        plan.push((segs[0].0, segs[segs.len() - 1].1.min(segs[0].1 + 37)));
        plan.extend(segs.iter().copied());
        let mut pool = HelloBufferPool::new(1);
        let mut st = HelloReassembly::new();
        let mut done = false;
        if syn {
            st.on_syn(base.wrapping_sub(1));
        } else {
            // Without a SYN the first payload fed sets the base: start with byte 0. When the
            // cuts leave one segment, that first payload is the whole hello.
            match st.feed(&mut pool, base, &rec[..segs[0].1]) {
                FeedResult::Complete(h) => {
                    prop_assert_eq!(segs.len(), 1);
                    prop_assert_eq!(h.sni(), Some("curl.example.com"));
                    done = true;
                }
                FeedResult::NeedMore => prop_assert!(segs.len() > 1),
                other => prop_assert!(false, "{:?}", other),
            }
        }
        for (a, b) in plan {
            match st.feed(&mut pool, base.wrapping_add(a as u32), &rec[a..b]) {
                FeedResult::Complete(h) => {
                    prop_assert_eq!(h.sni(), Some("curl.example.com"));
                    prop_assert!(!done);
                    done = true;
                }
                FeedResult::NeedMore | FeedResult::Finished => {}
                other => prop_assert!(false, "{:?}", other),
            }
        }
        prop_assert!(done);
        st.release(&mut pool);
        prop_assert_eq!(pool.available(), 1);
    }

    /// No input makes the parser panic, and every outcome is one of the four.
    #[test]
    fn parser_total_on_mutations(flips in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..8), cut in any::<u16>()) {
        let mut rec = hello_record("curl.pcap");
        for (at, v) in flips {
            let n = rec.len();
            rec[at as usize % n] = v;
        }
        let cut = cut as usize % (rec.len() + 1);
        let mut scratch = vec![0u8; MAX_HELLO_LEN];
        if let HelloOutcome::Complete(h) = parse_stream(&rec[..cut], &mut scratch) {
            let _ = (ja3(&h), ja4(&h), h.sni(), h.highest_version(), h.alpn().count(), h.key_share_groups().count());
        }
    }
}

#[test]
fn slot_len_is_the_bound() {
    assert_eq!(SLOT_LEN, 16 * 1024);
}
