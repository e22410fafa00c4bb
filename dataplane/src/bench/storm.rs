//! `dataplane gen --storm`: a handshake storm among normal traffic, on a clock.
//!
//! A few storm sources each open new connections at `--storm-rate` per second, while many
//! normal sources open theirs at `--normal-rate`, all for `--seconds`. Connection `k` of
//! source `s` (of `n` in its group) opens at `(k + s / n) / rate` seconds, so each group's
//! sources are evenly out of phase; its packets follow 100 µs apart. The capture's timestamps
//! are that schedule, so a paced replay, and `classify` (whose clock is the capture's), see the
//! stated rates. Addresses: storm IPv4 sources 198.18.0.1 upwards, IPv6 ones a /64 each
//! (2001:db8:5:N::/64) whose every connection comes from another address inside it; normal
//! IPv4 sources 10.1.0.1 upwards, IPv6 ones 2001:db8:1::N; the server is 192.0.2.80 or
//! 2001:db8:2::80. Deterministic for a seed.

use super::gen::GenArgs;
use crate::tls::build::client_hello_record;
use crate::tls::quic::build::{client_hello_message, first_flight};
use crate::tls::quic::Version as QuicVersion;
use crate::wire::build::FrameBuilder;
use crate::wire::tcp_flags::{ACK, PSH, SYN};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Time between the packets of one connection.
const PACKET_GAP: Duration = Duration::from_micros(100);
/// Client ports a source can use before a 5-tuple would repeat.
const CLIENT_PORTS: u64 = 65536 - 1024;
/// The server every connection goes to (port 443).
const SERVER_V4: [u8; 4] = [192, 0, 2, 80];
const SERVER_V6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80];

/// What a connection sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Opening {
    /// TCP to 443: SYN, SYN-ACK, ACK, then the ClientHello (one or two segments).
    #[default]
    Tls,
    /// TCP to 443: the SYN alone (a SYN flood that never completes).
    Syn,
    /// UDP to 443: the client's first flight of QUIC v1 Initials carrying the ClientHello.
    Quic,
}

/// The storm's options (only with `--storm`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct StormArgs {
    /// Generate a handshake storm on a clock instead of the round-robin traffic above: storm
    /// sources opening connections fast among normal sources opening them slowly, for
    /// --seconds; only --seed and --server-names of the options above apply.
    #[arg(long, conflicts_with_all = ["packets", "flows", "tls_ratio", "quic_ratio", "ipv6_ratio", "size"])]
    pub storm: bool,
    /// Storm sources (distinct addresses; the last --storm-ipv6 of them IPv6).
    #[arg(long, default_value_t = 4, requires = "storm")]
    pub storm_sources: u32,
    /// Of the storm sources, how many are IPv6 (each its own /64, every connection from another
    /// address in it).
    #[arg(long, default_value_t = 0, requires = "storm")]
    pub storm_ipv6: u32,
    /// New connections per second of each storm source.
    #[arg(long, default_value_t = 200.0, requires = "storm")]
    pub storm_rate: f64,
    /// What each storm connection sends.
    #[arg(long, value_enum, default_value = "tls", requires = "storm")]
    pub storm_connection: Opening,
    /// Normal sources (distinct addresses; the last --normal-ipv6 of them IPv6).
    #[arg(long, default_value_t = 16, requires = "storm")]
    pub normal_sources: u32,
    /// Of the normal sources, how many are IPv6.
    #[arg(long, default_value_t = 0, requires = "storm")]
    pub normal_ipv6: u32,
    /// New connections per second of each normal source.
    #[arg(long, default_value_t = 2.0, requires = "storm")]
    pub normal_rate: f64,
    /// What each normal connection sends.
    #[arg(long, value_enum, default_value = "tls", requires = "storm")]
    pub normal_connection: Opening,
    /// How long the storm lasts (capture time).
    #[arg(long, default_value_t = 5.0, requires = "storm")]
    pub seconds: f64,
    /// Print the summary as one JSON object (per source: connections, packets).
    #[arg(long, requires = "storm")]
    pub json: bool,
}

/// One source's share of the capture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceSummary {
    /// The address (an IPv6 storm source: its /64, as `2001:db8:5:1::/64`).
    pub source: String,
    pub storm: bool,
    pub connection: Opening,
    pub connections: u64,
    pub packets: u64,
}

/// What was generated.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StormSummary {
    pub packets: u64,
    pub bytes: u64,
    pub connections: u64,
    pub seconds: f64,
    pub storm_rate: f64,
    pub normal_rate: f64,
    pub sources: Vec<SourceSummary>,
}

struct Source {
    storm: bool,
    /// IPv4 address, or for IPv6 the first 8 bytes (the /64) and the base interface id.
    address: [u8; 16],
    v6: bool,
    /// Every connection from another interface id (IPv6 storm sources).
    rotate: bool,
    rate: f64,
    phase: f64,
    opening: Opening,
}

impl Source {
    fn name(&self) -> String {
        if !self.v6 {
            let [.., a, b, c, d] = self.address;
            return Ipv4Addr::new(a, b, c, d).to_string();
        }
        if self.rotate {
            let mut prefix = self.address;
            prefix[8..].fill(0);
            return format!("{}/64", Ipv6Addr::from(prefix));
        }
        Ipv6Addr::from(self.address).to_string()
    }
}

fn check(args: &StormArgs) -> Result<(), String> {
    for (option, rate) in [("--storm-rate", args.storm_rate), ("--normal-rate", args.normal_rate)] {
        if !(rate.is_finite() && rate > 0.0 && rate <= 1e6) {
            return Err(format!("{option}: {rate} is not a rate between 0 (excluded) and 1000000 per second"));
        }
    }
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 86_400.0) {
        return Err(format!("--seconds: {} is not between 0 (excluded) and 86400", args.seconds));
    }
    if args.storm_sources > 65_535 || args.normal_sources > 65_535 {
        return Err("--storm-sources and --normal-sources: at most 65535 each".into());
    }
    if args.storm_sources + args.normal_sources == 0 {
        return Err("--storm-sources and --normal-sources: at least one source in all".into());
    }
    if args.storm_ipv6 > args.storm_sources {
        return Err(format!("--storm-ipv6: {} is more than --storm-sources {}", args.storm_ipv6, args.storm_sources));
    }
    if args.normal_ipv6 > args.normal_sources {
        return Err(format!(
            "--normal-ipv6: {} is more than --normal-sources {}",
            args.normal_ipv6, args.normal_sources
        ));
    }
    for (option, rate) in [("--storm-rate", args.storm_rate), ("--normal-rate", args.normal_rate)] {
        if rate * args.seconds > CLIENT_PORTS as f64 {
            return Err(format!(
                "{option} x --seconds: {} connections from one source would reuse client ports (at most {CLIENT_PORTS})",
                rate * args.seconds
            ));
        }
    }
    Ok(())
}

fn sources(args: &StormArgs) -> Vec<Source> {
    let mut out = Vec::new();
    let groups = [
        (true, args.storm_sources, args.storm_ipv6, args.storm_rate, args.storm_connection),
        (false, args.normal_sources, args.normal_ipv6, args.normal_rate, args.normal_connection),
    ];
    for (storm, count, ipv6, rate, opening) in groups {
        for s in 0..count {
            let v6 = s >= count - ipv6;
            let n = (s + 1).to_be_bytes();
            let address = match (storm, v6) {
                (true, false) => [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 198, 18, n[2], n[3]],
                (false, false) => [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 1, n[2], n[3]],
                (true, true) => [0x20, 0x01, 0x0d, 0xb8, 0, 5, n[2], n[3], 0, 0, 0, 0, 0, 0, 0, 1],
                (false, true) => [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, n[2], n[3]],
            };
            let phase = f64::from(s) / f64::from(count) / rate;
            out.push(Source { storm, address, v6, rotate: storm && v6, rate, phase, opening });
        }
    }
    out
}

/// The packets of one connection opened by `source` from client port `cport`.
fn connection(fb: &FrameBuilder, source: &Source, cport: u16, rng: &mut SmallRng, names: &[String]) -> Vec<Vec<u8>> {
    let mut client = source.address;
    if source.rotate {
        client[8..].copy_from_slice(&rng.random::<u64>().to_be_bytes());
    }
    let v4 = |a: [u8; 16]| [a[12], a[13], a[14], a[15]];
    let name = names.get(rng.random_range(0..names.len().max(1))).map_or("", String::as_str);
    let tcp = |from_client: bool, flags: u8, seq: u32, payload: &[u8]| match (source.v6, from_client) {
        (false, true) => fb.tcp_v4(v4(client), SERVER_V4, cport, 443, flags, seq, payload),
        (false, false) => fb.tcp_v4(SERVER_V4, v4(client), 443, cport, flags, seq, payload),
        (true, true) => fb.tcp_v6(client, SERVER_V6, cport, 443, flags, seq, payload),
        (true, false) => fb.tcp_v6(SERVER_V6, client, 443, cport, flags, seq, payload),
    };
    match source.opening {
        Opening::Syn => vec![tcp(true, SYN, rng.random(), &[])],
        Opening::Tls => {
            let cseq: u32 = rng.random();
            let sseq: u32 = rng.random();
            let pq = rng.random::<f64>() < 0.25;
            let record = client_hello_record(name, pq, rng);
            let mss = if source.v6 { 1440 } else { 1460 };
            let mut frames = vec![
                tcp(true, SYN, cseq, &[]),
                tcp(false, SYN | ACK, sseq, &[]),
                tcp(true, ACK, cseq.wrapping_add(1), &[]),
            ];
            let mut seq = cseq.wrapping_add(1);
            for segment in record.chunks(mss) {
                frames.push(tcp(true, PSH | ACK, seq, segment));
                seq = seq.wrapping_add(segment.len() as u32);
            }
            frames
        }
        Opening::Quic => {
            let pq = rng.random::<f64>() < 0.25;
            let dcid = rng.random::<u64>().to_be_bytes();
            let flight = first_flight(QuicVersion::V1, &dcid, &client_hello_message(name, pq, rng));
            flight
                .iter()
                .map(|d| {
                    if source.v6 {
                        fb.udp_v6(client, SERVER_V6, cport, 443, d)
                    } else {
                        fb.udp_v4(v4(client), SERVER_V4, cport, 443, d)
                    }
                })
                .collect()
        }
    }
}

/// Generate the storm into `args.out`.
pub fn generate(args: &GenArgs) -> Result<StormSummary, String> {
    let storm = &args.storm;
    check(storm)?;
    if args.traffic.server_names.is_empty() {
        return Err("--server-names must not be empty".into());
    }
    let mut rng = SmallRng::seed_from_u64(args.traffic.seed);
    let fb = FrameBuilder { pad: true, ..FrameBuilder::default() };
    let sources = sources(storm);
    let mut summary = StormSummary {
        packets: 0,
        bytes: 0,
        connections: 0,
        seconds: storm.seconds,
        storm_rate: storm.storm_rate,
        normal_rate: storm.normal_rate,
        sources: Vec::with_capacity(sources.len()),
    };
    // (time, order of generation, frame): sorted by time, ties kept in generation order.
    let mut packets: Vec<(Duration, usize, Vec<u8>)> = Vec::new();
    for source in &sources {
        let mut row = SourceSummary {
            source: source.name(),
            storm: source.storm,
            connection: source.opening,
            connections: 0,
            packets: 0,
        };
        let first_port: u16 = rng.random_range(1024..=65535);
        for k in 0u64.. {
            let start = (k as f64) / source.rate + source.phase;
            if start >= storm.seconds {
                break;
            }
            let cport = 1024 + ((u64::from(first_port) - 1024 + k) % CLIENT_PORTS) as u16;
            let at = Duration::from_secs_f64(start);
            for (i, frame) in
                connection(&fb, source, cport, &mut rng, &args.traffic.server_names).into_iter().enumerate()
            {
                row.packets += 1;
                summary.bytes += frame.len() as u64;
                packets.push((at + PACKET_GAP * i as u32, packets.len(), frame));
            }
            row.connections += 1;
        }
        summary.packets += row.packets;
        summary.connections += row.connections;
        summary.sources.push(row);
    }
    packets.sort_by_key(|(at, order, _)| (*at, *order));
    crate::pcap::write_all(&args.out, packets.iter().map(|(at, _, f)| (*at, f.as_slice())))?;
    Ok(summary)
}

/// The summary as `gen --storm` prints it without `--json`.
pub fn render(summary: &StormSummary, out: &std::path::Path) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "wrote {}: {} packets ({} bytes), {} connections over {} s (storm {}/s, normal {}/s per source)",
        out.display(),
        summary.packets,
        summary.bytes,
        summary.connections,
        summary.seconds,
        summary.storm_rate,
        summary.normal_rate
    );
    for s in &summary.sources {
        let kind = if s.storm { "storm " } else { "normal" };
        let _ = writeln!(o, "  {kind} {}: {} connections, {} packets", s.source, s.connections, s.packets);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::gen::{FrameSize, TrafficArgs};
    use crate::wire::{parse_frame, IpPair, Parsed};

    fn args(out: std::path::PathBuf, storm: StormArgs) -> GenArgs {
        GenArgs {
            out,
            traffic: TrafficArgs {
                packets: 0,
                flows: 0,
                tls_ratio: 0.0,
                quic_ratio: 0.0,
                ipv6_ratio: 0.0,
                size: FrameSize::Min,
                seed: 3,
                server_names: vec!["www.example.com".into()],
            },
            storm,
        }
    }

    fn storm() -> StormArgs {
        StormArgs {
            storm: true,
            storm_sources: 3,
            storm_ipv6: 1,
            storm_rate: 100.0,
            storm_connection: Opening::Syn,
            normal_sources: 4,
            normal_ipv6: 1,
            normal_rate: 2.0,
            normal_connection: Opening::Tls,
            seconds: 2.5,
            json: false,
        }
    }

    #[test]
    fn each_source_opens_rate_times_seconds_connections_at_their_times() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("s.pcap");
        let summary = generate(&args(out.clone(), storm())).unwrap();
        let names: Vec<_> = summary.sources.iter().map(|s| (s.source.as_str(), s.connections, s.packets)).collect();
        // 100/s for 2.5 s: 250 SYNs each; 2/s: 5 TLS connections of 4 packets (a one-segment hello).
        assert_eq!(
            names,
            [
                ("198.18.0.1", 250, 250),
                ("198.18.0.2", 250, 250),
                ("2001:db8:5:3::/64", 250, 250),
                ("10.1.0.1", 5, 20),
                ("10.1.0.2", 5, 20),
                ("10.1.0.3", 5, 20),
                ("2001:db8:1::4", 5, 20),
            ]
        );
        let frames = crate::pcap::read_all(&out).unwrap();
        assert_eq!(frames.len() as u64, summary.packets);
        assert_eq!(summary.packets, 750 + 80);
        // Time order; the last packet before --seconds plus the connection's last gap.
        assert!(frames.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        assert!(frames.last().unwrap().timestamp < Duration::from_secs_f64(2.5) + 3 * PACKET_GAP);
        // SYNs of 198.18.0.2 (the second of three storm sources) at k/100 + 1/300 s.
        let mut syns = Vec::new();
        let mut v6_clients = std::collections::HashSet::new();
        for f in &frames {
            let Ok(Parsed::Ip(p)) = parse_frame(&f.data) else { panic!("a frame does not parse") };
            match p.addrs {
                IpPair::V4 { src, .. } if src == u32::from_be_bytes([198, 18, 0, 2]) => syns.push(f.timestamp),
                IpPair::V6 { src, .. } if src >> 64 == 0x2001_0db8_0005_0003 => {
                    v6_clients.insert(src);
                }
                _ => {}
            }
        }
        assert_eq!(syns.len(), 250);
        for (k, at) in syns.iter().enumerate() {
            let want = Duration::from_secs_f64(k as f64 / 100.0 + 1.0 / 300.0);
            assert!(at.abs_diff(want) <= Duration::from_micros(1), "SYN {k} at {at:?}, want {want:?}");
        }
        // The IPv6 storm source: another address in its /64 for (nearly) every connection.
        assert!(v6_clients.len() > 240, "{} addresses", v6_clients.len());
    }

    #[test]
    fn same_seed_same_bytes_and_bad_options_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.pcap"), dir.path().join("b.pcap"));
        let mut quic = storm();
        quic.storm_connection = Opening::Quic;
        generate(&args(a.clone(), quic.clone())).unwrap();
        generate(&args(b.clone(), quic)).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

        let bad = |f: fn(&mut StormArgs)| {
            let mut s = storm();
            f(&mut s);
            generate(&args(dir.path().join("c.pcap"), s)).unwrap_err()
        };
        assert!(bad(|s| s.storm_rate = 0.0).starts_with("--storm-rate: 0 "));
        assert!(bad(|s| s.normal_rate = f64::NAN).starts_with("--normal-rate: NaN "));
        assert!(bad(|s| s.seconds = -1.0).starts_with("--seconds: -1 "));
        assert!(bad(|s| s.storm_ipv6 = 4).starts_with("--storm-ipv6: 4 is more than --storm-sources 3"));
        assert!(bad(|s| s.storm_rate = 30_000.0).starts_with("--storm-rate x --seconds: 75000 connections"));
    }
}
