//! Exact-match rules for DPDK's `l3fwd -E` from a capture, for `scripts/l3fwd_em.sh`: one
//! rule per directional 5-tuple of the TCP/UDP packets (as the dataplane's own parser reads
//! them), all sent to one output port, so that every such packet finds its entry.
//!
//!     cargo run --release -p dataplane --example em_rules -- TRAFFIC.pcap OUT_V4 OUT_V6 PORT
//!
//! l3fwd's EM rule line: `R<dst addr> <src addr> <dst port> <src port> <protocol> <out port>`.
use dataplane::pcap::read_all;
use dataplane::wire::{ip_proto, parse_frame, IpPair, Parsed};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::ExitCode;

fn run(args: &[String]) -> Result<(), String> {
    let [pcap, out_v4, out_v6, port] = args else {
        return Err("usage: em_rules TRAFFIC.pcap OUT_V4 OUT_V6 PORT".into());
    };
    let port: u8 = port.parse().map_err(|e| format!("{port}: {e}"))?;
    let (mut v4, mut v6) = (BTreeSet::new(), BTreeSet::new());
    for frame in read_all(Path::new(pcap))? {
        let Ok(Parsed::Ip(p)) = parse_frame(&frame.data) else { continue };
        if !p.has_ports || !matches!(p.protocol, ip_proto::TCP | ip_proto::UDP) {
            continue;
        }
        let ports = (p.dst_port, p.src_port, p.protocol);
        match p.addrs {
            IpPair::V4 { src, dst } => v4.insert((dst, src, ports)),
            IpPair::V6 { src, dst } => v6.insert((dst, src, ports)),
        };
    }
    let line = |dst: &dyn std::fmt::Display, src: &dyn std::fmt::Display, (dport, sport, proto): (u16, u16, u8)| {
        format!("R{dst} {src} {dport} {sport} {proto} {port}\n")
    };
    let mut text = String::new();
    for &(dst, src, ports) in &v4 {
        text.push_str(&line(&Ipv4Addr::from(dst), &Ipv4Addr::from(src), ports));
    }
    std::fs::write(out_v4, &text).map_err(|e| format!("{out_v4}: {e}"))?;
    text.clear();
    // l3fwd reads IPv6 addresses with inet_pton: the compressed form does.
    for &(dst, src, ports) in &v6 {
        text.push_str(&line(&Ipv6Addr::from(dst), &Ipv6Addr::from(src), ports));
    }
    std::fs::write(out_v6, &text).map_err(|e| format!("{out_v6}: {e}"))?;
    eprintln!("{} IPv4 and {} IPv6 exact-match rules", v4.len(), v6.len());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("em_rules: {e}");
            ExitCode::from(2)
        }
    }
}
