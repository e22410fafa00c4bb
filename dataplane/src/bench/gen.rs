//! `dataplane gen`: deterministic traffic for benchmarks and tests.
//!
//! Connections over IPv4/IPv6, TCP (with handshakes) and UDP; a share of the TCP connections
//! are TLS to port 443 whose ClientHello carries an SNI from a list, a quarter of those with a
//! post-quantum key share that splits the hello over two segments. A share of all connections
//! may be QUIC (UDP to port 443): the client's first flight of Initials carries the hello (SNI
//! from the same list, a quarter post-quantum and so in two datagrams), then a server datagram
//! in long form and short-header datagrams both ways. Packets of all connections are
//! interleaved round robin, so every connection opens before any carries data.

use crate::tls::build::client_hello_record;
use crate::tls::quic::build::{client_hello_message, first_flight, FIRST_DATAGRAM_LEN};
use crate::tls::quic::Version as QuicVersion;
use crate::wire::build::FrameBuilder;
use crate::wire::tcp_flags::{ACK, PSH, SYN};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// Frame sizes: minimum-size frames, or the classic 7:4:1 IMIX.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FrameSize {
    #[value(name = "64")]
    Min,
    Imix,
}

#[derive(clap::Args, Clone, Debug)]
pub struct GenArgs {
    /// Output pcap file.
    #[arg(long)]
    pub out: std::path::PathBuf,
    #[command(flatten)]
    pub traffic: TrafficArgs,
    #[command(flatten)]
    pub storm: super::storm::StormArgs,
}

/// What traffic to generate (shared by `gen` and `bench`).
#[derive(clap::Args, Clone, Debug)]
pub struct TrafficArgs {
    /// Total packets.
    #[arg(long, default_value_t = 131_072)]
    pub packets: usize,
    /// Connections.
    #[arg(long, default_value_t = 65_536)]
    pub flows: usize,
    /// Share of TCP connections that are TLS (port 443, with a ClientHello).
    #[arg(long, default_value_t = 0.05)]
    pub tls_ratio: f64,
    /// Share of all connections that are QUIC (UDP to port 443, the ClientHello in the
    /// client's Initials). Drawn first; the other connections are TCP or UDP, and TLS, as
    /// without it, so any two ratios combine.
    #[arg(long, default_value_t = 0.0)]
    pub quic_ratio: f64,
    /// Share of connections over IPv6.
    #[arg(long, default_value_t = 0.2)]
    pub ipv6_ratio: f64,
    #[arg(long, value_enum, default_value = "64")]
    pub size: FrameSize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// SNIs used by the TLS connections, comma separated.
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_NAMES)]
    pub server_names: Vec<String>,
}

const DEFAULT_NAMES: &str =
    "www.example.com,api.example.com,cdn.example.net,login.example.org,tracker.example.biz,mail.example.com";

/// What was generated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GenSummary {
    pub packets: usize,
    pub bytes: usize,
    pub flows: usize,
    pub tcp_flows: usize,
    pub udp_flows: usize,
    pub ipv6_flows: usize,
    pub tls_flows: usize,
    pub post_quantum_hellos: usize,
    /// TLS connections whose whole ClientHello is in the capture (the others ran out of
    /// packets first: raise --packets).
    pub complete_hellos: usize,
    /// QUIC connections (counted among the UDP ones too).
    pub quic_flows: usize,
    /// QUIC connections whose hello is post-quantum sized: two Initial datagrams.
    pub quic_post_quantum_hellos: usize,
    /// QUIC connections whose whole first flight is in the capture.
    pub complete_quic_hellos: usize,
}

struct Flow {
    client: [u8; 16],
    server: [u8; 16],
    v6: bool,
    tcp: bool,
    cport: u16,
    sport: u16,
    cseq: u32,
    sseq: u32,
    /// Hello segments still to send (TLS connections), or the UDP payloads of the client's
    /// first flight (QUIC connections).
    hello: Vec<Vec<u8>>,
    /// Datagrams of the client's first flight (QUIC connections; 0 otherwise).
    quic_flight: usize,
    /// Too few packets for the handshake and the hello: the hello follows the SYN at once.
    hello_first: bool,
    step: usize,
}

impl Flow {
    fn frame(&self, fb: &FrameBuilder, from_client: bool, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
        let (src, dst, sp, dp) = if from_client {
            (self.client, self.server, self.cport, self.sport)
        } else {
            (self.server, self.client, self.sport, self.cport)
        };
        let v4 = |a: [u8; 16]| [a[12], a[13], a[14], a[15]];
        match (self.v6, self.tcp) {
            (false, true) => fb.tcp_v4(v4(src), v4(dst), sp, dp, flags, seq, payload),
            (true, true) => fb.tcp_v6(src, dst, sp, dp, flags, seq, payload),
            (false, false) => fb.udp_v4(v4(src), v4(dst), sp, dp, payload),
            (true, false) => fb.udp_v6(src, dst, sp, dp, payload),
        }
    }

    /// The flow's next packet: handshake, then the hello, then data in alternating directions.
    fn next(&mut self, fb: &FrameBuilder, payload_len: usize) -> Vec<u8> {
        let step = self.step;
        self.step += 1;
        if self.quic_flight > 0 {
            return self.next_quic(fb, step, payload_len);
        }
        if !self.tcp {
            return self.frame(fb, step.is_multiple_of(2), 0, 0, &vec![0x5a; payload_len]);
        }
        match step {
            0 => self.frame(fb, true, SYN, self.cseq.wrapping_sub(1), &[]),
            1 if !self.hello_first => self.frame(fb, false, SYN | ACK, self.sseq.wrapping_sub(1), &[]),
            2 if !self.hello_first => self.frame(fb, true, ACK, self.cseq, &[]),
            _ if !self.hello.is_empty() => {
                let seg = self.hello.remove(0);
                let f = self.frame(fb, true, PSH | ACK, self.cseq, &seg);
                self.cseq = self.cseq.wrapping_add(seg.len() as u32);
                f
            }
            _ => {
                let data = vec![0x5a; payload_len];
                let from_client = !step.is_multiple_of(2);
                let seq = if from_client { &mut self.cseq } else { &mut self.sseq };
                let s = *seq;
                *seq = s.wrapping_add(data.len() as u32);
                self.frame(fb, from_client, ACK, s, &data)
            }
        }
    }

    /// A QUIC connection's packet `step`: the client's Initials, then a server datagram in
    /// long form (its Initial and Handshake, as far as a middlebox reads it: the header's
    /// first bytes, padded to the 1200 bytes a server's Initial datagram takes), then
    /// short-header datagrams from the client and the server in turn.
    fn next_quic(&mut self, fb: &FrameBuilder, step: usize, payload_len: usize) -> Vec<u8> {
        if !self.hello.is_empty() {
            let datagram = self.hello.remove(0);
            return self.frame(fb, true, 0, 0, &datagram);
        }
        let after = step.saturating_sub(self.quic_flight);
        if after == 0 {
            let mut datagram = vec![0xc0, 0, 0, 0, 1];
            datagram.resize(FIRST_DATAGRAM_LEN, 0x5a);
            return self.frame(fb, false, 0, 0, &datagram);
        }
        // Header form 0 (short), fixed bit 1; the rest stands for the protected packet.
        let mut datagram = vec![0x5a; payload_len];
        if let Some(first) = datagram.first_mut() {
            *first = 0x40;
        }
        self.frame(fb, !after.is_multiple_of(2), 0, 0, &datagram)
    }
}

/// Payload that makes a frame of `frame_len` bytes (at least one byte of header room kept).
fn payload_for(frame_len: usize, flow: &Flow) -> usize {
    let headers = 14 + if flow.v6 { 40 } else { 20 } + if flow.tcp { 20 } else { 8 };
    frame_len.saturating_sub(headers)
}

/// Generate the traffic into a pcap file.
pub fn generate(args: &GenArgs) -> Result<GenSummary, String> {
    let t = &args.traffic;
    if t.flows == 0 || t.packets == 0 {
        return Err("--flows and --packets must be at least 1".into());
    }
    for (option, ratio) in
        [("--tls-ratio", t.tls_ratio), ("--quic-ratio", t.quic_ratio), ("--ipv6-ratio", t.ipv6_ratio)]
    {
        if !(0.0..=1.0).contains(&ratio) {
            return Err(format!("{option}: {ratio} is not between 0 and 1"));
        }
    }
    if t.server_names.is_empty() {
        return Err("--server-names must not be empty".into());
    }
    let mut rng = SmallRng::seed_from_u64(t.seed);
    let fb = FrameBuilder { pad: true, ..FrameBuilder::default() };
    let mut summary = GenSummary { flows: t.flows, ..GenSummary::default() };
    let mut flows: Vec<Flow> = (0..t.flows)
        .map(|i| {
            let v6 = rng.random::<f64>() < t.ipv6_ratio;
            // Drawn only when asked for, so that traffic without QUIC is what it was before.
            let quic = t.quic_ratio > 0.0 && rng.random::<f64>() < t.quic_ratio;
            let tcp = !quic && rng.random::<f64>() < 0.8;
            let tls = tcp && rng.random::<f64>() < t.tls_ratio;
            let (client, server) = if v6 {
                let mut c = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                let mut s = [0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                c[8..16].copy_from_slice(&rng.random::<u64>().to_be_bytes());
                s[12..16].copy_from_slice(&rng.random::<u32>().to_be_bytes());
                (c, s)
            } else {
                let mut c = [0u8; 16];
                let mut s = [0u8; 16];
                c[12..16].copy_from_slice(&[10, rng.random(), rng.random(), rng.random()]);
                s[12..16].copy_from_slice(
                    &[[192, 0, 2], [198, 51, 100], [203, 0, 113]][i % 3]
                        .iter()
                        .copied()
                        .chain([rng.random()])
                        .collect::<Vec<u8>>(),
                );
                (c, s)
            };
            let mut hello = Vec::new();
            if tls {
                let pq = rng.random::<f64>() < 0.25;
                let name = &t.server_names[rng.random_range(0..t.server_names.len())];
                let record = client_hello_record(name, pq, &mut rng);
                let mss = if v6 { 1440 } else { 1460 };
                hello = record.chunks(mss).map(<[u8]>::to_vec).collect();
                summary.tls_flows += 1;
                summary.post_quantum_hellos += usize::from(pq);
            }
            if quic {
                let pq = rng.random::<f64>() < 0.25;
                let name = &t.server_names[rng.random_range(0..t.server_names.len())];
                let dcid = rng.random::<u64>().to_be_bytes();
                hello = first_flight(QuicVersion::V1, &dcid, &client_hello_message(name, pq, &mut rng));
                summary.quic_flows += 1;
                summary.quic_post_quantum_hellos += usize::from(pq);
            }
            summary.ipv6_flows += usize::from(v6);
            if tcp {
                summary.tcp_flows += 1;
            } else {
                summary.udp_flows += 1;
            }
            Flow {
                client,
                server,
                v6,
                tcp,
                cport: rng.random_range(1024..=65535),
                sport: if tls || quic {
                    443
                } else if tcp {
                    [80, 8080, 22, 25][i % 4]
                } else {
                    [53, 123, 5353][i % 3]
                },
                cseq: rng.random(),
                sseq: rng.random(),
                quic_flight: if quic { hello.len() } else { 0 },
                hello,
                hello_first: false,
                step: 0,
            }
        })
        .collect();
    // Packets go to the connections in turn: connection k gets `packets / flows` of them, one
    // more for the first `packets % flows`. A TLS connection short of packets for the
    // handshake and its hello sends the hello right after the SYN, so that bench traffic of
    // two packets per connection still carries ClientHellos.
    let n = flows.len();
    for (k, flow) in flows.iter_mut().enumerate() {
        let budget = t.packets / n + usize::from(k < t.packets % n);
        if flow.hello.is_empty() {
            continue;
        }
        if flow.quic_flight > 0 {
            summary.complete_quic_hellos += usize::from(budget >= flow.quic_flight);
            continue;
        }
        flow.hello_first = budget < 3 + flow.hello.len();
        let hello_room = if flow.hello_first { budget.saturating_sub(1) } else { budget - 3 };
        summary.complete_hellos += usize::from(hello_room >= flow.hello.len());
    }
    let mut frames = Vec::with_capacity(t.packets);
    for i in 0..t.packets {
        let flow = &mut flows[i % n];
        let frame_len = match t.size {
            FrameSize::Min => 60,
            FrameSize::Imix => [60, 60, 60, 60, 60, 60, 60, 590, 590, 590, 590, 1514][rng.random_range(0..12)],
        };
        let payload = payload_for(frame_len, flow);
        let f = flow.next(&fb, payload);
        summary.bytes += f.len();
        frames.push(f);
    }
    summary.packets = frames.len();
    crate::pcap::write_all(
        Path::new(&args.out),
        frames.iter().enumerate().map(|(i, f)| (Duration::from_micros(i as u64), f.as_slice())),
    )?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{parse_frame, tcp_flags, Parsed};

    fn traffic(packets: usize, flows: usize) -> TrafficArgs {
        TrafficArgs {
            packets,
            flows,
            tls_ratio: 1.0,
            quic_ratio: 0.0,
            ipv6_ratio: 0.0,
            size: FrameSize::Min,
            seed: 7,
            server_names: vec!["www.example.com".into()],
        }
    }

    /// Each connection's packets, in order: (flags, payload starts a TLS handshake record).
    fn connections(packets: usize, flows: usize) -> (GenSummary, Vec<Vec<(u8, bool)>>) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.pcap");
        let summary =
            generate(&GenArgs { out: out.clone(), traffic: traffic(packets, flows), storm: Default::default() })
                .unwrap();
        let mut by_flow = vec![Vec::new(); flows];
        for (i, f) in crate::pcap::read_all(&out).unwrap().iter().enumerate() {
            let Ok(Parsed::Ip(p)) = parse_frame(&f.data) else { panic!("frame {i} does not parse") };
            let payload = &f.data[usize::from(p.payload_offset)..][..usize::from(p.payload_len)];
            by_flow[i % flows].push((p.tcp_flags, payload.starts_with(&[0x16, 0x03])));
        }
        (summary, by_flow)
    }

    #[test]
    fn tls_connections_short_of_packets_send_the_hello_after_the_syn() {
        let (summary, flows) = connections(2 * 40, 40);
        let tcp: Vec<_> = flows.iter().filter(|f| f[0].0 == tcp_flags::SYN).collect();
        assert_eq!(summary.tls_flows, tcp.len());
        assert!(!tcp.is_empty());
        for f in &tcp {
            assert_eq!(f.len(), 2);
            assert!(f[1].1, "the second packet carries the hello: {f:?}");
        }
        // Every hello of one segment is whole (only post-quantum ones may need two).
        assert!(summary.complete_hellos >= summary.tls_flows - summary.post_quantum_hellos);

        // With room for it, the handshake comes first: SYN, SYN-ACK, ACK, then the hello.
        let (summary, flows) = connections(8 * 40, 40);
        assert_eq!(summary.complete_hellos, summary.tls_flows);
        for f in flows.iter().filter(|f| f[0].0 == tcp_flags::SYN) {
            assert_eq!(f[1].0, tcp_flags::SYN | tcp_flags::ACK);
            assert_eq!((f[2].0, f[2].1), (tcp_flags::ACK, false));
            assert!(f[3].1, "{f:?}");
        }
    }

    /// The completed hellos, by index of the packet that completed each: SNI and whether
    /// it came over QUIC.
    #[derive(Default)]
    struct Hellos(std::collections::BTreeMap<usize, (String, bool)>);

    impl crate::pipeline::HelloObserver for Hellos {
        fn hello(&mut self, packet: usize, h: &crate::tls::ClientHello<'_>, quic: Option<QuicVersion>) {
            self.0.insert(packet, (h.sni().unwrap_or_default().to_string(), quic.is_some()));
        }
    }

    #[test]
    fn generated_quic_hellos_are_read_by_the_pipeline() {
        use crate::counters::Counter;
        use crate::pipeline::{Pipeline, PipelineConfig, Verdict};
        use crate::policy::{rule_set_from_str, Action, CompiledPolicy};

        let (packets, flows) = (8 * 300, 300);
        let names: Vec<String> = vec!["www.example.com".into(), "blocked.example.net".into()];
        let traffic = TrafficArgs {
            tls_ratio: 0.3,
            quic_ratio: 0.4,
            ipv6_ratio: 0.3,
            server_names: names.clone(),
            ..traffic(packets, flows)
        };
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.pcap");
        let summary = generate(&GenArgs { out: out.clone(), traffic, storm: Default::default() }).unwrap();
        // Both kinds of hello, and room for every one of them.
        assert!(summary.quic_post_quantum_hellos > 0 && summary.quic_post_quantum_hellos < summary.quic_flows);
        assert!(summary.tls_flows > 0 && summary.udp_flows > summary.quic_flows);
        assert_eq!(summary.complete_quic_hellos, summary.quic_flows);
        assert_eq!(summary.complete_hellos, summary.tls_flows);

        let frames: Vec<Vec<u8>> = crate::pcap::read_all(&out).unwrap().into_iter().map(|f| f.data).collect();
        assert_eq!(frames.len(), packets);
        // The client's Initials: full 1200-byte datagrams to port 443, one per hello and one
        // more per post-quantum hello.
        let initials = frames
            .iter()
            .filter(|f| {
                let Ok(Parsed::Ip(p)) = parse_frame(f) else { return false };
                p.protocol == crate::wire::ip_proto::UDP && p.dst_port == 443 && p.payload_len == 1200
            })
            .count();
        assert_eq!(initials, summary.quic_flows + summary.quic_post_quantum_hellos);

        let yaml = "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {name: bad-sni}\n\
                    spec:\n  action: DROP\n  ports: [{port: 443}, {protocol: UDP, port: 443}]\n  \
                    tls: {serverNames: [blocked.example.net]}\n";
        let policy = CompiledPolicy::compile(rule_set_from_str(yaml, "t").unwrap(), Action::Allow).unwrap();
        let mut p = Pipeline::new(PipelineConfig::default());
        let mut verdicts = vec![Verdict::default(); frames.len()];
        let mut hellos = Hellos::default();
        p.process_burst_observed(&policy, &frames, 0, &mut verdicts, &mut hellos);

        let c = |k| p.counters.get(k);
        let quic = summary.quic_flows as u64;
        assert_eq!(
            (c(Counter::QuicPending), c(Counter::QuicDecided), c(Counter::QuicNotQuic), c(Counter::QuicFailed)),
            (quic, quic, 0, 0)
        );
        let tls = summary.tls_flows as u64;
        assert_eq!(
            (c(Counter::TlsPending), c(Counter::TlsDecided), c(Counter::TlsNotTls), c(Counter::TlsFailed)),
            (tls, tls, 0, 0)
        );
        assert_eq!(hellos.0.values().filter(|(_, q)| *q).count(), summary.quic_flows);
        assert!(hellos.0.values().all(|(sni, _)| names.contains(sni)), "{:?}", hellos.0);

        // Exactly the packets of blocked connections from the one completing the hello on are
        // dropped (connection k sends packets k, k + flows, ...), both directions.
        let blocked: Vec<(usize, usize)> = hellos
            .0
            .iter()
            .filter(|(_, (sni, _))| sni == "blocked.example.net")
            .map(|(&at, _)| (at % flows, at))
            .collect();
        assert!(blocked.iter().any(|&(_, at)| hellos.0[&at].1), "some QUIC connections are blocked");
        let expected: Vec<usize> =
            (0..packets).filter(|i| blocked.iter().any(|&(k, at)| i % flows == k && *i >= at)).collect();
        let dropped: Vec<usize> = (0..packets).filter(|&i| verdicts[i].action == Action::Drop).collect();
        assert_eq!(dropped, expected);
        assert!(verdicts.iter().all(|v| (v.action == Action::Drop) == (v.rule() == Some(0))));
    }

    #[test]
    fn ratios_outside_zero_to_one_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.pcap");
        for (set, option) in [
            (&(|t: &mut TrafficArgs| t.quic_ratio = 1.5) as &dyn Fn(&mut TrafficArgs), "--quic-ratio: 1.5"),
            (&|t: &mut TrafficArgs| t.quic_ratio = -0.1, "--quic-ratio: -0.1"),
            (&|t: &mut TrafficArgs| t.quic_ratio = f64::NAN, "--quic-ratio: NaN"),
            (&|t: &mut TrafficArgs| t.tls_ratio = 2.0, "--tls-ratio: 2"),
            (&|t: &mut TrafficArgs| t.ipv6_ratio = -1.0, "--ipv6-ratio: -1"),
        ] {
            let mut traffic = traffic(10, 2);
            set(&mut traffic);
            let e = generate(&GenArgs { out: out.clone(), traffic, storm: Default::default() }).unwrap_err();
            assert_eq!(e, format!("{option} is not between 0 and 1"));
        }
        assert!(!out.exists(), "nothing written");
        // All connections QUIC, all TCP ones TLS: any two ratios in range combine.
        let summary = generate(&GenArgs {
            out,
            traffic: TrafficArgs { quic_ratio: 1.0, ..traffic(10, 2) },
            storm: Default::default(),
        })
        .unwrap();
        assert_eq!((summary.quic_flows, summary.tcp_flows, summary.tls_flows), (2, 0, 0));
    }
}
