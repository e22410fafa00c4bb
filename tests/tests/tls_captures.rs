//! End to end over the captures of `tests/data/tls`: frames -> `wire::parse_frame` -> per-flow
//! `HelloReassembly` -> ClientHello, SNI, versions, ALPN, JA3 and JA4. The expected
//! fingerprints come from independent implementations (tshark's `tls.handshake.ja3`, FoxIO's
//! `python/ja4.py`), with the commands in `tests/data/tls/README.md`. Needs only
//! `dataplane::{pcap, wire, tls}` (no EAL).
use dataplane::policy::sni::SniMatcher;
use dataplane::tls::{ja3, ja4, version_str, FeedResult, HelloBufferPool, HelloReassembly};
use dataplane::wire::{parse_frame, tcp_flags, Parsed};
use std::path::PathBuf;

struct Expected {
    file: &'static str,
    sni: Option<&'static str>,
    alpn: &'static [&'static str],
    version: &'static str,
    ech: bool,
    ja3: &'static str,
    ja4: &'static str,
}

const EXPECTED: &[Expected] = &[
    Expected {
        file: "openssl_tls13_sni.pcap",
        sni: Some("openssl.example.com"),
        alpn: &[],
        version: "1.3",
        ech: false,
        ja3: "a3afc2c46ba4a7d7fbe1cfb7a3031c2f",
        ja4: "t13d311000_e8f1e7e78f70_1f22a2ca17c4",
    },
    Expected {
        file: "openssl_alpn.pcap",
        sni: Some("alpn.example.com"),
        alpn: &["h2", "http/1.1"],
        version: "1.3",
        ech: false,
        ja3: "5a1edc7f170af1014fc65c994878e63c",
        ja4: "t13d3111h2_e8f1e7e78f70_1f22a2ca17c4",
    },
    Expected {
        file: "openssl_tls12.pcap",
        sni: Some("tls12.example.com"),
        alpn: &[],
        version: "1.2",
        ech: false,
        ja3: "871a754af286dfb70c1b53c6887c62e0",
        ja4: "t12d280700_d943125447b4_e7e480e5a997",
    },
    Expected {
        file: "openssl_nosni.pcap",
        sni: None,
        alpn: &[],
        version: "1.3",
        ech: false,
        ja3: "c216e752cae6f8755fd27f561d031636",
        ja4: "t13i310900_e8f1e7e78f70_1f22a2ca17c4",
    },
    Expected {
        file: "curl.pcap",
        sni: Some("curl.example.com"),
        alpn: &["h2", "http/1.1"],
        version: "1.3",
        ech: false,
        ja3: "0149f47eabf9a20d0893e2a44e5a6323",
        ja4: "t13d3112h2_e8f1e7e78f70_b26ce05bbdd6",
    },
    Expected {
        file: "gnutls.pcap",
        sni: Some("gnutls.example.com"),
        alpn: &[],
        version: "1.3",
        ech: false,
        ja3: "f35ce21b44ac0b87d3266294bb1b0e20",
        ja4: "t13d291300_723694b0fccc_2cc26d266019",
    },
    Expected {
        file: "python.pcap",
        sni: Some("python.example.com"),
        alpn: &["http/1.1"],
        version: "1.3",
        ech: false,
        ja3: "304734bb1c086c3453b387400cf83f11",
        ja4: "t13d1812h1_85036bcba153_d41ae481755e",
    },
    // Crafted (tests/data/tls/craft.py): post-quantum key share, GREASE, ECH, two segments.
    Expected {
        file: "pq_split.pcap",
        sni: Some("curl.example.com"),
        alpn: &["h2", "http/1.1"],
        version: "1.3",
        ech: true,
        ja3: "2b24c7ef88f77c3e03b2b51e5a1cb36f",
        ja4: "t13d3113h2_e8f1e7e78f70_08edaaf7106f",
    },
    // The same segments, second one first.
    Expected {
        file: "pq_out_of_order.pcap",
        sni: Some("curl.example.com"),
        alpn: &["h2", "http/1.1"],
        version: "1.3",
        ech: true,
        ja3: "2b24c7ef88f77c3e03b2b51e5a1cb36f",
        ja4: "t13d3113h2_e8f1e7e78f70_08edaaf7106f",
    },
    // openssl_tls13_sni's hello split across two TLS records.
    Expected {
        file: "two_records.pcap",
        sni: Some("openssl.example.com"),
        alpn: &[],
        version: "1.3",
        ech: false,
        ja3: "a3afc2c46ba4a7d7fbe1cfb7a3031c2f",
        ja4: "t13d311000_e8f1e7e78f70_1f22a2ca17c4",
    },
];

fn data(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/tls").join(file)
}

#[derive(Debug, Default)]
struct Seen {
    sni: Option<String>,
    alpn: Vec<String>,
    version: String,
    ech: bool,
    ja3: String,
    ja4: String,
    key_share_groups: Vec<u16>,
    segments_fed: usize,
}

fn run(file: &str, pool: &mut HelloBufferPool) -> Seen {
    let frames = dataplane::pcap::read_all(&data(file)).unwrap();
    let mut flow = HelloReassembly::new();
    let mut seen = None;
    let mut fed = 0;
    for f in &frames {
        let Ok(Parsed::Ip(p)) = parse_frame(&f.data) else { panic!("{file}: unparsable frame") };
        if p.dst_port != 443 && p.dst_port != 4433 {
            continue; // server -> client
        }
        if p.tcp_flags & tcp_flags::SYN != 0 {
            flow.on_syn(p.tcp_seq);
            continue;
        }
        let payload = &f.data[p.payload_offset as usize..][..p.payload_len as usize];
        if payload.is_empty() || flow.is_done() {
            continue;
        }
        fed += 1;
        match flow.feed(pool, p.tcp_seq, payload) {
            FeedResult::Complete(h) => {
                seen = Some(Seen {
                    sni: h.sni().map(str::to_string),
                    alpn: h.alpn().map(|a| String::from_utf8_lossy(a).into_owned()).collect(),
                    version: version_str(h.highest_version()).unwrap_or("?").to_string(),
                    ech: h.has_ech(),
                    ja3: ja3(&h).to_string(),
                    ja4: ja4(&h).as_str().to_string(),
                    key_share_groups: h.key_share_groups().collect(),
                    segments_fed: fed,
                });
            }
            FeedResult::NeedMore => {}
            other => panic!("{file}: {other:?}"),
        }
    }
    flow.release(pool);
    seen.unwrap_or_else(|| panic!("{file}: no complete ClientHello"))
}

#[test]
fn captures_match_independent_fingerprints() {
    let mut pool = HelloBufferPool::new(2);
    for e in EXPECTED {
        let s = run(e.file, &mut pool);
        assert_eq!(s.sni.as_deref(), e.sni, "{}", e.file);
        assert_eq!(s.alpn, e.alpn, "{}", e.file);
        assert_eq!(s.version, e.version, "{}", e.file);
        assert_eq!(s.ech, e.ech, "{}", e.file);
        assert_eq!(s.ja3, e.ja3, "{}: JA3", e.file);
        assert_eq!(s.ja4, e.ja4, "{}: JA4", e.file);
        assert_eq!(pool.available(), 2, "{}: the slot came back", e.file);
    }
}

#[test]
fn post_quantum_hello_needs_both_segments() {
    let mut pool = HelloBufferPool::new(1);
    let s = run("pq_split.pcap", &mut pool);
    assert_eq!(s.segments_fed, 2);
    assert_eq!(s.key_share_groups, [0xdada, 0x11ec, 0x001d]);
    let s = run("pq_out_of_order.pcap", &mut pool);
    assert_eq!(s.segments_fed, 2);
    assert_eq!(pool.counters().acquired, 2);
    // A single-segment hello never takes a buffer.
    run("curl.pcap", &mut pool);
    assert_eq!(pool.counters().acquired, 2);
}

#[test]
fn sni_rules_over_captures() {
    let m = SniMatcher::new([("*.example.com", 1), ("curl.example.com", 2), ("python.example.com.", 3)]).unwrap();
    let mut pool = HelloBufferPool::new(1);
    let mut out = [0u32; 4];
    for (file, want) in
        [("curl.pcap", &[2, 1][..]), ("python.pcap", &[3, 1]), ("gnutls.pcap", &[1]), ("openssl_nosni.pcap", &[])]
    {
        let s = run(file, &mut pool);
        let n = s.sni.as_deref().map_or(0, |name| m.matching_rules(name, &mut out));
        assert_eq!(&out[..n], want, "{file}");
    }
}
