//! Field checks for rule documents, each with its own message.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::document::ErrorSink;
use super::rule::{ConnectionLimit, PortRange, MAX_LIMIT_BURST, MAX_LIMIT_RATE};
use crate::wire::ip_proto;
use ipnet::IpNet;
use std::net::IpAddr;

pub const MAX_REASON_BYTES: usize = 256;
pub const DEFAULT_PRIORITY: u16 = 1000;
const MAX_NAME_BYTES: usize = 253;

/// Kubernetes DNS-1123 subdomain: lowercase alphanumerics, '-' and '.', at most 253 bytes,
/// starting and ending with an alphanumeric, no empty label.
pub fn dns1123_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!("{} bytes long, at most {MAX_NAME_BYTES} allowed", name.len()));
    }
    let ok_label = |l: &str| {
        let b = l.as_bytes();
        let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        !b.is_empty()
            && b.first().is_some_and(alnum)
            && b.last().is_some_and(alnum)
            && b.iter().all(|c| alnum(c) || *c == b'-')
    };
    if name.split('.').all(ok_label) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid DNS-1123 subdomain (lowercase letters, digits, '-' and '.', \
             starting and ending with a letter or digit)"
        ))
    }
}

/// Parse a list of CIDRs, keeping positions (an invalid entry is `None`) for later messages.
pub(crate) fn cidr_list(items: &[impl AsRef<str>], field: &str, sink: &mut ErrorSink<'_>) -> Vec<Option<IpNet>> {
    let mut out: Vec<Option<IpNet>> = Vec::with_capacity(items.len());
    for (i, text) in items.iter().enumerate() {
        // The field path is formatted only for an error (100k-rule sets are parsed in the
        // time budget of an update).
        let path = || format!("{field}[{i}]");
        match parse_canonical_cidr(text.as_ref()) {
            Ok(net) => {
                if let Some(j) = out.iter().position(|o| *o == Some(net)) {
                    sink.push(path(), format!("duplicate CIDR {net} (same as {field}[{j}])"));
                    out.push(None);
                } else {
                    out.push(Some(net));
                }
            }
            Err(msg) => {
                sink.push(path(), msg);
                out.push(None);
            }
        }
    }
    out
}

/// A CIDR in canonical form: an address, a prefix length, no host bits set.
pub fn parse_canonical_cidr(text: &str) -> Result<IpNet, String> {
    let trimmed = text.trim();
    match trimmed.parse::<IpNet>() {
        Ok(net) if net.network() == net.addr() => Ok(net),
        Ok(net) => Err(format!("host bits set in {trimmed} (did you mean {}?)", net.trunc())),
        Err(_) => match trimmed.parse::<IpAddr>() {
            Ok(addr) => {
                let full = if addr.is_ipv4() { 32 } else { 128 };
                Err(format!("missing prefix length in {trimmed} (did you mean {addr}/{full}?)"))
            }
            Err(_) => Err(format!(
                "invalid CIDR {text:?} (expected an address and a prefix length, like 10.0.0.0/8 or 2001:db8::/32)"
            )),
        },
    }
}

/// Each `except` entry must lie inside one of the rule's `cidrBlocks` (of the same family).
pub(crate) fn except_inside_blocks(blocks: &[Option<IpNet>], except: &[Option<IpNet>], sink: &mut ErrorSink<'_>) {
    for (i, e) in except.iter().enumerate() {
        let Some(e) = e else { continue };
        if blocks.is_empty() {
            sink.push(
                format!("spec.except[{i}]"),
                format!("{e} is not inside any of spec.cidrBlocks (which is empty)"),
            );
        } else if !blocks.iter().flatten().any(|b| b.contains(e)) {
            sink.push(format!("spec.except[{i}]"), format!("{e} is not inside any of spec.cidrBlocks"));
        }
    }
}

/// One `ports` entry as in Kubernetes NetworkPolicy: protocol (default TCP), port, endPort.
/// No `port` means every port of the protocol.
pub(crate) fn port_range(
    protocol: Option<&str>,
    port: Option<i64>,
    end_port: Option<i64>,
    field: &str,
    sink: &mut ErrorSink<'_>,
) -> Option<PortRange> {
    let before = sink.errors.len();
    let protocol = match protocol {
        None | Some("TCP") => ip_proto::TCP,
        Some("UDP") => ip_proto::UDP,
        Some(p) => {
            sink.push(format!("{field}.protocol"), format!("unknown protocol {p:?} (expected TCP or UDP)"));
            0
        }
    };
    let check = |v: i64, name: &str, sink: &mut ErrorSink<'_>| -> u16 {
        match u16::try_from(v) {
            Ok(p) if p >= 1 => p,
            _ => {
                sink.push(format!("{field}.{name}"), format!("{v} is out of range 1..=65535"));
                0
            }
        }
    };
    let (first, last) = match (port, end_port) {
        (None, None) => (0, u16::MAX),
        (None, Some(_)) => {
            sink.push(format!("{field}.endPort"), "endPort requires port");
            (0, 0)
        }
        (Some(p), None) => {
            let p = check(p, "port", sink);
            (p, p)
        }
        (Some(p), Some(e)) => {
            let (p, e2) = (check(p, "port", sink), check(e, "endPort", sink));
            if p != 0 && e2 != 0 && e2 < p {
                sink.push(format!("{field}.endPort"), format!("endPort {e2} is below port {p}"));
            }
            (p, e2)
        }
    };
    (sink.errors.len() == before).then_some(PortRange { protocol, first, last })
}

/// Check every entry of an optional list with `check`, keeping the normalised good ones.
pub(crate) fn each(
    items: Option<Vec<impl AsRef<str>>>,
    field: &str,
    sink: &mut ErrorSink<'_>,
    check: fn(&str) -> Result<String, String>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, item) in items.unwrap_or_default().iter().enumerate() {
        match check(item.as_ref()) {
            Ok(v) if out.contains(&v) => sink.push(format!("{field}[{i}]"), format!("duplicate entry {v:?}")),
            Ok(v) => out.push(v),
            Err(msg) => sink.push(format!("{field}[{i}]"), msg),
        }
    }
    out
}

/// A server name pattern (`www.example.com`, `*.example.com`), lowercased, trailing dot dropped.
pub fn server_name_pattern(text: &str) -> Result<String, String> {
    let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    super::sni::validate_pattern(&name).map_err(|e| format!("{text:?}: {e}"))?;
    Ok(name)
}

/// "1.0" .. "1.3" to the wire value.
pub fn tls_version(text: &str) -> Result<u16, String> {
    crate::tls::client_hello::parse_version(text.trim())
        .ok_or_else(|| format!("unknown TLS version {text:?} (expected ssl3, 1.0, 1.1, 1.2 or 1.3)"))
}

/// A JA3 fingerprint: the MD5 of the JA3 string, 32 hex digits; kept lowercase.
pub fn ja3_fingerprint(text: &str) -> Result<String, String> {
    crate::tls::ja3::Ja3::from_hex(text.trim())
        .map(|j| String::from_utf8_lossy(&j.to_hex()).into_owned())
        .ok_or_else(|| format!("{text:?} is not a JA3 fingerprint (32 hex digits)"))
}

/// A JA4 fingerprint (`t13d1516h2_8daaf6152771_02713d6af862`); kept lowercase.
pub fn ja4_fingerprint(text: &str) -> Result<String, String> {
    crate::tls::ja4::Ja4::parse(text.trim())
        .map(|j| j.as_str().to_string())
        .ok_or_else(|| format!("{text:?} is not a JA4 fingerprint (like t13d1516h2_8daaf6152771_02713d6af862)"))
}

/// `spec.limit`: both fields required, each from 1 to its bound; not on a TLS rule (a limit
/// counts new connections, which are decided before any ClientHello is seen).
pub(crate) fn limit(
    per_second: Option<i64>,
    burst: Option<i64>,
    tls: bool,
    sink: &mut ErrorSink<'_>,
) -> Option<ConnectionLimit> {
    let before = sink.errors.len();
    if tls {
        sink.push(
            "spec.limit",
            "not allowed with spec.tls (a limit counts new connections, decided before any ClientHello is seen)",
        );
    }
    let mut field = |value: Option<i64>, name: &str, max: u32| -> u32 {
        match value {
            None => {
                sink.push(format!("spec.limit.{name}"), "required field is missing");
                0
            }
            Some(v) => match u32::try_from(v) {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    sink.push(format!("spec.limit.{name}"), format!("{v} is out of range 1..={max}"));
                    0
                }
            },
        }
    };
    let per_second = field(per_second, "connectionsPerSecond", MAX_LIMIT_RATE);
    let burst = field(burst, "burst", MAX_LIMIT_BURST);
    (sink.errors.len() == before).then_some(ConnectionLimit { per_second, burst })
}
