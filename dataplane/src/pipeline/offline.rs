//! `dataplane classify`: the workers' pipeline run single-threaded over a pcap file.

use super::fragments::{FragmentCause, FragmentEvent};
use super::reject::{RejectConfig, Rejecter};
use super::{HelloObserver, Pipeline, PipelineConfig, Verdict, MAX_BURST};
use crate::counters::Counters;
use crate::pcap::{Frame, PcapFrames};
use crate::policy::{Action, CompiledPolicy};
use crate::tls::ja4::Transport;
use crate::tls::quic::Version as QuicVersion;
use crate::tls::{self, ClientHello};
use serde::Serialize;
use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Totals of one offline run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClassifySummary {
    pub packets: u64,
    pub allowed: u64,
    /// Dropped packets, rejected ones included.
    pub dropped: u64,
    /// Of the dropped, those a REJECT rule decided.
    pub rejected: u64,
    pub malformed: u64,
    /// Packets decided by each rule, in evaluation order (rules with no hit included).
    pub hits: Vec<(String, u64)>,
    /// Packets decided by the default action.
    pub default_hits: u64,
    /// Replies written for rejected packets (RSTs and ICMP errors).
    pub replies: u64,
    /// New connections limit rules decided (their source over the limit), in all.
    pub connections_limited: u64,
    /// Per rule with `spec.limit`, in evaluation order: new connections it decided (counted
    /// when the policy has per-rule counters, `CompiledPolicy::attach_hits`).
    pub limited: Vec<(String, u64)>,
}

/// How `classify` answers REJECT verdicts: the workers' rate (on the capture's clock), and
/// where the replies go (a pcap file), if anywhere.
#[derive(Clone, Debug, Default)]
pub struct RejectOptions {
    pub limits: RejectConfig,
    pub replies: Option<PathBuf>,
}

#[derive(Serialize)]
struct PacketLine<'a> {
    packet: u64,
    verdict: &'static str,
    rule: Option<&'a str>,
    reason: Option<&'a str>,
    /// Why the packet could not be read completely (`wire::MalformedCause`'s word), or why its
    /// fragment was dropped for its own sake (`pipeline::fragments::FragmentCause`'s word).
    #[serde(skip_serializing_if = "Option::is_none")]
    malformed: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<&'a TlsSummary>,
    /// What a REJECT verdict did (`pipeline::reject::Answer`'s word).
    #[serde(skip_serializing_if = "Option::is_none")]
    reject: Option<&'static str>,
    /// A limit rule decided: the connection's source was over the rule's `spec.limit`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    limited: bool,
}

/// A packet read, in file order, with its verdict once known (a held fragment's comes with
/// its datagram's, a later batch or the end of the capture).
struct Pending {
    verdict: Option<(Verdict, Option<FragmentCause>)>,
    hello: Option<TlsSummary>,
    reject: Option<&'static str>,
}

/// What `classify --json` reports on the packet that completed a ClientHello.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsSummary {
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    pub version: String,
    pub ech: bool,
    pub ja3: String,
    pub ja4: String,
    /// Read from QUIC Initials (then `quic_version` says which: 1 or 2).
    pub quic: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quic_version: Option<u8>,
}

impl TlsSummary {
    /// The summary of hello `h`, read from QUIC Initials of version `quic` (`None`: TCP).
    pub fn of(h: &ClientHello<'_>, quic: Option<QuicVersion>) -> TlsSummary {
        let transport = if quic.is_some() { Transport::Quic } else { Transport::Tcp };
        TlsSummary {
            sni: h.sni().map(str::to_string),
            alpn: h.alpn().map(|p| String::from_utf8_lossy(p).into_owned()).collect(),
            version: tls::version_str(h.highest_version())
                .map_or_else(|| format!("0x{:04x}", h.highest_version()), str::to_string),
            ech: h.has_ech(),
            ja3: tls::ja3(h).to_string(),
            ja4: tls::ja4::ja4_over(h, transport).as_str().to_string(),
            quic: quic.is_some(),
            quic_version: quic.map(|v| match v {
                QuicVersion::V1 => 1,
                QuicVersion::V2 => 2,
            }),
        }
    }
}

/// Collects the hellos of one batch by packet index (offline only: allocation is fine here).
struct HelloLog(Vec<Option<TlsSummary>>);

impl HelloObserver for HelloLog {
    fn hello(&mut self, packet: usize, hello: &ClientHello<'_>, quic: Option<QuicVersion>) {
        if let Some(slot) = self.0.get_mut(packet) {
            *slot = Some(TlsSummary::of(hello, quic));
        }
    }
}

/// Classify every frame of `pcap` in file order. With `json`, one JSON object per packet is
/// written to `out` as it is decided.
pub fn classify_pcap(
    policy: &CompiledPolicy,
    pcap: &Path,
    config: PipelineConfig,
    rejects: &RejectOptions,
    json: Option<&mut dyn Write>,
) -> Result<ClassifySummary, String> {
    let mut frames = PcapFrames::open(pcap)?;
    let mut pipeline = Pipeline::new(config);
    // The rate's clock: the capture's timestamps, in microseconds.
    let mut rejecter = Rejecter::new(rejects.limits, 1_000_000);
    let mut reject_counts = Counters::default();
    let mut replies: Vec<(Duration, Vec<u8>)> = Vec::new();
    let mut batch: Vec<Frame> = Vec::with_capacity(MAX_BURST);
    let mut verdicts: Vec<Verdict> = Vec::with_capacity(MAX_BURST);
    let mut per_rule = vec![0u64; policy.rule_set().len()];
    let mut summary = ClassifySummary::default();
    let mut json = json;
    // Packets not yet reported, from packet number `reported + 1` on: printed in file order
    // as soon as the first of them has its verdict (held fragments wait for theirs).
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut reported = 0u64;
    let mut read = 0u64;
    // The packet number each held id stands for.
    let mut held_packet: Vec<Option<u64>> = vec![None; pipeline.fragments.held_capacity()];
    loop {
        let n = frames.next_batch(&mut batch, MAX_BURST)?;
        if n == 0 {
            break;
        }
        // Flow timeouts follow the capture's clock, so runs are reproducible.
        let now_ms = batch.first().map_or(0, |f| f.timestamp.as_millis() as u64);
        let data: Vec<&[u8]> = batch.iter().map(|f| f.data.as_slice()).collect();
        verdicts.resize(n, Verdict::default());
        let mut hellos = HelloLog(vec![None; n]);
        if json.is_some() {
            pipeline.process_burst_observed(policy, &data, now_ms, &mut verdicts, &mut hellos);
        } else {
            pipeline.process_burst(policy, &data, now_ms, &mut verdicts);
        }
        let mut lines: Vec<Pending> = verdicts
            .iter()
            .zip(hellos.0)
            .map(|(v, hello)| Pending { verdict: Some((*v, None)), hello, reject: None })
            .collect();
        if policy.rejects() {
            let now_us = batch.first().map_or(0, |f| f.timestamp.as_micros() as u64);
            rejecter.answer(&data, &verdicts, now_us, &mut reject_counts);
            for (i, line) in lines.iter_mut().enumerate() {
                line.reject = rejecter.answer_of(i).map(|a| a.as_str());
            }
            for (reply, bytes) in rejecter.replies() {
                let at = batch.get(reply.packet).map_or(Duration::ZERO, |f| f.timestamp);
                replies.push((at, bytes.to_vec()));
            }
            rejecter.clear();
        }
        for e in pipeline.fragments.events() {
            match *e {
                FragmentEvent::Held { packet, id } => {
                    if let (Some(line), Some(slot)) = (lines.get_mut(packet), held_packet.get_mut(id.index())) {
                        line.verdict = None;
                        *slot = Some(read + 1 + packet as u64);
                    }
                }
                FragmentEvent::Dropped { packet, cause } => {
                    if let Some((_, c)) = lines.get_mut(packet).and_then(|l| l.verdict.as_mut()) {
                        *c = Some(cause);
                    }
                }
            }
        }
        read += n as u64;
        pending.extend(lines);
        settle_released(&mut pipeline, &mut held_packet, &mut pending, reported);
        report(policy, &mut pending, &mut reported, &mut summary, &mut per_rule, json.as_deref_mut(), false)?;
    }
    // The end of the capture: fragments still held never saw their first fragment.
    pipeline.flush_fragments();
    settle_released(&mut pipeline, &mut held_packet, &mut pending, reported);
    report(policy, &mut pending, &mut reported, &mut summary, &mut per_rule, json, true)?;
    summary.hits = policy.rule_set().rules().iter().zip(per_rule).map(|(r, n)| (r.name.clone(), n)).collect();
    summary.replies = replies.len() as u64;
    summary.connections_limited = pipeline.totals().get(crate::counters::Counter::LimitedConnections);
    summary.limited = policy
        .limits()
        .iter()
        .filter_map(|l| Some((policy.rule(l.id)?.name.clone(), policy.hits().total_limited(l.id))))
        .collect();
    if let Some(path) = &rejects.replies {
        crate::pcap::write_all(path, replies.iter().map(|(at, bytes)| (*at, bytes.as_slice())))?;
    }
    Ok(summary)
}

/// Gives the held packets the pipeline released their verdicts.
fn settle_released(pipeline: &mut Pipeline, held: &mut [Option<u64>], pending: &mut VecDeque<Pending>, reported: u64) {
    pipeline.fragments.drain_released(|r| {
        let Some(packet) = held.get_mut(r.id.index()).and_then(Option::take) else { return };
        let at = packet.saturating_sub(reported + 1) as usize;
        if let Some(line) = pending.get_mut(at) {
            line.verdict = Some((r.verdict, r.cause));
        }
    });
}

/// Counts and prints (with `json`) the packets at the front of `pending` whose verdict is
/// known; at the `end`, every one (a packet still without a verdict, which cannot happen
/// once the pipeline is flushed, would count as allowed).
fn report<W: Write + ?Sized>(
    policy: &CompiledPolicy,
    pending: &mut VecDeque<Pending>,
    reported: &mut u64,
    summary: &mut ClassifySummary,
    per_rule: &mut [u64],
    mut json: Option<&mut W>,
    end: bool,
) -> Result<(), String> {
    while pending.front().is_some_and(|p| end || p.verdict.is_some()) {
        let Some(p) = pending.pop_front() else { break };
        *reported += 1;
        let (v, cause) = p.verdict.unwrap_or((Verdict::default(), None));
        summary.packets += 1;
        match v.action {
            Action::Allow => summary.allowed += 1,
            Action::Drop => summary.dropped += 1,
            Action::Reject => {
                summary.dropped += 1;
                summary.rejected += 1;
            }
        }
        // What `"malformed"` names: a packet not read completely, or a fragment refused.
        if v.malformed.is_some() || cause.is_some() {
            summary.malformed += 1;
        }
        let rule = v.rule().and_then(|id| policy.rule(id));
        match v.rule().and_then(|id| per_rule.get_mut(id as usize)) {
            Some(count) => *count += 1,
            None => summary.default_hits += 1,
        }
        if let Some(out) = json.as_deref_mut() {
            let line = PacketLine {
                packet: *reported,
                verdict: v.action.as_str(),
                rule: rule.map(|r| r.name.as_str()),
                reason: rule.map(|r| r.reason.as_str()),
                malformed: cause.map(|c| c.as_str()).or(v.malformed.map(|c| c.as_str())),
                tls: p.hello.as_ref(),
                reject: p.reject,
                limited: rule.is_some_and(|r| r.limit.is_some()),
            };
            let text = serde_json::to_string(&line).map_err(|e| e.to_string())?;
            writeln!(out, "{text}").map_err(|e| format!("writing output: {e}"))?;
        }
    }
    Ok(())
}
