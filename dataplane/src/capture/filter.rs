//! Which packets a capture keeps (verdict, deciding rule, source prefix) and how long it runs
//! (a packet count and/or seconds), read from the query of `GET /v1/capture`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::IpAddr;

use ipnet::IpNet;

use crate::pipeline::Verdict;
use crate::policy::{Action, CompiledPolicy};
use crate::wire::{parse_frame_into, IpPair, PacketSummary};

/// The most packets one capture may ask for.
pub const MAX_COUNT: u64 = 1_000_000;
/// The longest a capture may run, in seconds.
pub const MAX_SECONDS: f64 = 3600.0;

/// What a packet must be to be copied; every part given must hold (none given: every packet).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Decided by the rule of this name (in whichever generation of the policy runs).
    pub rule: Option<String>,
    /// Given this verdict.
    pub verdict: Option<Action>,
    /// Sent from an address in this prefix (IPv4 or IPv6; non-IP frames never match).
    pub source: Option<IpNet>,
}

/// A capture asked for: its filter and its bounds (at least one of them).
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub filter: Filter,
    /// Stop after this many packets.
    pub count: Option<u64>,
    /// Stop after this many seconds.
    pub seconds: Option<f64>,
}

/// A query the capture cannot run, naming the parameter at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn fail<T>(field: &str, message: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError { field: field.to_owned(), message: message.into() })
}

impl Request {
    /// Reads the query's `(key, value)` pairs: `rule`, `verdict` (ALLOW, DROP or REJECT, any
    /// case), `source` (a CIDR or an address), `count` (1 to [`MAX_COUNT`]) and `seconds`
    /// (above 0, at most [`MAX_SECONDS`]); each at most once, nothing else.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Request, QueryError> {
        let mut request = Request { filter: Filter::default(), count: None, seconds: None };
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in pairs {
            if seen.contains(&key) {
                return fail(key, "given twice");
            }
            seen.push(key);
            match key {
                "rule" => {
                    if value.is_empty() {
                        return fail(key, "empty rule name");
                    }
                    request.filter.rule = Some(value.to_owned());
                }
                "verdict" => match Action::parse(&value.to_ascii_uppercase()) {
                    Some(a) => request.filter.verdict = Some(a),
                    None => return fail(key, format!("{value:?} is not a verdict (expected ALLOW, DROP or REJECT)")),
                },
                "source" => request.filter.source = Some(parse_source(value)?),
                "count" => match value.parse::<u64>() {
                    Ok(n) if (1..=MAX_COUNT).contains(&n) => request.count = Some(n),
                    _ => return fail(key, format!("{value:?} is not a packet count from 1 to {MAX_COUNT}")),
                },
                "seconds" => match value.parse::<f64>() {
                    Ok(s) if s > 0.0 && s <= MAX_SECONDS => request.seconds = Some(s),
                    _ => return fail(key, format!("{value:?} is not a duration above 0 and at most {MAX_SECONDS} s")),
                },
                _ => return fail(key, "unknown parameter (expected rule, verdict, source, count, seconds)"),
            }
        }
        if request.count.is_none() && request.seconds.is_none() {
            return fail("count", "a capture needs a bound: count, seconds or both");
        }
        Ok(request)
    }
}

/// A prefix without host bits, or one address (a /32 or /128).
fn parse_source(value: &str) -> Result<IpNet, QueryError> {
    if let Ok(addr) = value.parse::<IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    let Ok(net) = value.parse::<IpNet>() else {
        return fail("source", format!("{value:?} is not a CIDR or an IP address"));
    };
    if net.trunc() != net {
        return fail("source", format!("host bits set in {net} (did you mean {}?)", net.trunc()));
    }
    Ok(net)
}

impl Filter {
    /// Whether the packet `frame`, given `verdict` under `policy`, is to be copied. The
    /// cheap tests come first; the source is read from the frame only when asked for.
    #[inline]
    pub fn matches(&self, verdict: &Verdict, policy: &CompiledPolicy, frame: &[u8]) -> bool {
        if self.verdict.is_some_and(|a| a != verdict.action) {
            return false;
        }
        if let Some(name) = &self.rule {
            if verdict.rule().and_then(|id| policy.rule(id)).is_none_or(|r| r.name != *name) {
                return false;
            }
        }
        match &self.source {
            Some(net) => source_of(frame).is_some_and(|a| net.contains(&a)),
            None => true,
        }
    }
}

/// The source address of an IP frame (after VLAN tags), also when only its transport could
/// not be read; `None` for anything else.
fn source_of(frame: &[u8]) -> Option<IpAddr> {
    let mut summary = PacketSummary::EMPTY;
    match parse_frame_into(frame, &mut summary) {
        Ok(None) => {}
        Err(m) if m.cause().addresses_known() => {}
        _ => return None,
    }
    Some(match summary.addrs {
        IpPair::V4 { src, .. } => IpAddr::from(src.to_be_bytes()),
        IpPair::V6 { src, .. } => IpAddr::from(src.to_be_bytes()),
    })
}
