//! ClientHello parse + SNI match per hello: ours (`tls::parse_stream` + `SniMatcher`) against
//! the `tls-parser` crate (+ a `HashSet` lookup of the name), on the captured hellos of
//! `tests/data/tls`, in one run. Also times JA3, JA4 and the reassembly fast path.
//!
//!   cargo bench -p dataplane --no-default-features --bench tls_parse [-- --json]
use dataplane::policy::sni::SniMatcher;
use dataplane::tls::{ja3, ja4, parse_stream, FeedResult, HelloBufferPool, HelloOutcome, HelloReassembly};
use dataplane::wire::{parse_frame, tcp_flags, Parsed};
use std::collections::HashSet;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;
use tls_parser::{parse_tls_extensions, parse_tls_plaintext, TlsExtension, TlsMessage, TlsMessageHandshake};

/// Client streams (SYN-relative reassembly) of every capture whose hello is one record.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tls");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "pcap")).collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = Vec::new();
    for path in names {
        let Ok(frames) = dataplane::pcap::read_all(&path) else { continue };
        let mut base = 0u32;
        let mut stream = Vec::new();
        for f in &frames {
            let Ok(Parsed::Ip(p)) = parse_frame(&f.data) else { continue };
            if p.dst_port != 443 && p.dst_port != 4433 {
                continue;
            }
            if p.tcp_flags & tcp_flags::SYN != 0 {
                base = p.tcp_seq.wrapping_add(1);
                continue;
            }
            let at = p.tcp_seq.wrapping_sub(base) as usize;
            let payload = &f.data[p.payload_offset as usize..][..p.payload_len as usize];
            if at + payload.len() > stream.len() {
                stream.resize(at + payload.len(), 0);
            }
            stream[at..at + payload.len()].copy_from_slice(payload);
        }
        // Keep the first record only, when it holds the whole hello (tls-parser's unit).
        if stream.len() < 9 {
            continue;
        }
        let rec_len = 5 + u16::from_be_bytes([stream[3], stream[4]]) as usize;
        let msg_len = 4 + (usize::from(stream[6]) << 16 | usize::from(stream[7]) << 8 | usize::from(stream[8]));
        if msg_len <= rec_len - 5 && rec_len <= stream.len() {
            stream.truncate(rec_len);
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            out.push((name, stream));
        }
    }
    out
}

fn time(iters: usize, hellos: usize, mut f: impl FnMut() -> usize) -> (f64, usize) {
    // Warm up, then measure.
    let mut check = 0;
    for _ in 0..iters / 10 {
        check += f();
    }
    let start = Instant::now();
    for _ in 0..iters {
        check += f();
    }
    (start.elapsed().as_nanos() as f64 / (iters * hellos) as f64, check)
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let corpus = corpus();
    assert!(!corpus.is_empty(), "no captures found in tests/data/tls");
    // A rule set of 10,000 exact names and 1,000 wildcards, including the captured names.
    let mut patterns: Vec<(String, u32)> = (0..10_000).map(|i| (format!("host{i}.example.net"), i)).collect();
    patterns.extend((0..1_000).map(|i| (format!("*.zone{i}.example.org"), 10_000 + i)));
    patterns.push(("*.example.com".to_string(), 20_000));
    patterns.push(("python.example.com".to_string(), 20_001));
    let matcher = SniMatcher::new(patterns.iter().map(|(p, r)| (p.as_str(), *r))).expect("valid patterns");
    // The reference side: std HashSets of exact names and of wildcard suffixes, probed with
    // the name and its label suffixes (same semantics, so both sides count the same hits).
    let set: HashSet<Vec<u8>> =
        patterns.iter().filter(|(p, _)| !p.starts_with('*')).map(|(p, _)| p.as_bytes().to_vec()).collect();
    let wild: HashSet<Vec<u8>> =
        patterns.iter().filter_map(|(p, _)| p.strip_prefix("*.")).map(|p| p.as_bytes().to_vec()).collect();
    let set_match = |name: &[u8]| {
        set.contains(name) || name.iter().enumerate().any(|(i, &b)| b == b'.' && wild.contains(&name[i + 1..]))
    };

    let n = corpus.len();
    let iters = 100_000;
    let mut scratch = vec![0u8; dataplane::tls::MAX_HELLO_LEN];

    let (ours, ours_hits) = time(iters, n, || {
        let mut hits = 0;
        for (_, s) in &corpus {
            if let HelloOutcome::Complete(h) = parse_stream(black_box(s), &mut scratch) {
                if let Some(name) = h.sni_bytes() {
                    hits += usize::from(matcher.min_rule(name).is_some());
                }
            }
        }
        hits
    });

    let (theirs, their_hits) = time(iters, n, || {
        let mut hits = 0;
        for (_, s) in &corpus {
            if let Ok((_, rec)) = parse_tls_plaintext(black_box(s)) {
                for m in &rec.msg {
                    if let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = m {
                        if let Some(Ok((_, exts))) = ch.ext.map(parse_tls_extensions) {
                            for e in exts {
                                if let TlsExtension::SNI(names) = e {
                                    if let Some((_, name)) = names.first() {
                                        hits += usize::from(set_match(name));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        hits
    });

    let (ja3_ns, _) = time(iters / 4, n, || {
        let mut x = 0;
        for (_, s) in &corpus {
            if let HelloOutcome::Complete(h) = parse_stream(s, &mut scratch) {
                x += usize::from(ja3(black_box(&h)).0[0]);
            }
        }
        x
    });
    let (ja4_ns, _) = time(iters / 4, n, || {
        let mut x = 0;
        for (_, s) in &corpus {
            if let HelloOutcome::Complete(h) = parse_stream(s, &mut scratch) {
                x += usize::from(ja4(black_box(&h)).as_bytes()[0]);
            }
        }
        x
    });
    let mut pool = HelloBufferPool::new(4);
    let (feed_ns, _) = time(iters, n, || {
        let mut x = 0;
        for (_, s) in &corpus {
            let mut st = HelloReassembly::new();
            st.on_syn(999);
            if let FeedResult::Complete(h) = st.feed(&mut pool, 1000, black_box(s)) {
                x += h.sni_bytes().map_or(0, |n| usize::from(matcher.is_match(n)));
            }
            st.release(&mut pool);
        }
        x
    });

    assert_eq!(ours_hits, their_hits, "both sides must see the same names");
    let ratio = theirs / ours;
    if json {
        println!(
            "{{\"hellos\":{n},\"ours_ns\":{ours:.1},\"tls_parser_ns\":{theirs:.1},\"ratio\":{ratio:.2},\"ja3_ns\":{ja3_ns:.1},\"ja4_ns\":{ja4_ns:.1},\"feed_fast_path_ns\":{feed_ns:.1}}}"
        );
    } else {
        println!(
            "corpus: {n} ClientHellos ({})",
            corpus.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>().join(", ")
        );
        println!("rules: {} SNI patterns (exact + wildcard)", patterns.len());
        println!("parse + SNI match, ours (parse_stream + SniMatcher):    {ours:8.1} ns/hello");
        println!("parse + SNI match, tls-parser (+ HashSet lookups)   : {theirs:8.1} ns/hello");
        println!("ratio tls-parser / ours: {ratio:.2}x");
        println!("parse + JA3 (md5):  {ja3_ns:8.1} ns/hello");
        println!("parse + JA4 (sha256): {ja4_ns:6.1} ns/hello");
        println!("reassembly feed fast path + parse + SNI match: {feed_ns:.1} ns/hello");
    }
}
