//! `dataplane classify`: the workers' pipeline run single-threaded over a pcap file.

use super::{HelloObserver, Pipeline, PipelineConfig, Verdict, MAX_BURST};
use crate::pcap::{Frame, PcapFrames};
use crate::policy::{Action, CompiledPolicy};
use crate::tls::{self, ClientHello};
use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// Totals of one offline run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClassifySummary {
    pub packets: u64,
    pub allowed: u64,
    pub dropped: u64,
    pub malformed: u64,
    /// Packets decided by each rule, in evaluation order (rules with no hit included).
    pub hits: Vec<(String, u64)>,
    /// Packets decided by the default action.
    pub default_hits: u64,
}

#[derive(Serialize)]
struct PacketLine<'a> {
    packet: u64,
    verdict: &'static str,
    rule: Option<&'a str>,
    reason: Option<&'a str>,
    /// Why the packet could not be read completely (`wire::MalformedCause`'s word).
    #[serde(skip_serializing_if = "Option::is_none")]
    malformed: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<&'a TlsSummary>,
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
}

impl TlsSummary {
    pub fn of(h: &ClientHello<'_>) -> TlsSummary {
        TlsSummary {
            sni: h.sni().map(str::to_string),
            alpn: h.alpn().map(|p| String::from_utf8_lossy(p).into_owned()).collect(),
            version: tls::version_str(h.highest_version())
                .map_or_else(|| format!("0x{:04x}", h.highest_version()), str::to_string),
            ech: h.has_ech(),
            ja3: tls::ja3(h).to_string(),
            ja4: tls::ja4(h).as_str().to_string(),
        }
    }
}

/// Collects the hellos of one batch by packet index (offline only: allocation is fine here).
struct HelloLog(Vec<Option<TlsSummary>>);

impl HelloObserver for HelloLog {
    fn hello(&mut self, packet: usize, hello: &ClientHello<'_>) {
        if let Some(slot) = self.0.get_mut(packet) {
            *slot = Some(TlsSummary::of(hello));
        }
    }
}

/// Classify every frame of `pcap` in file order. With `json`, one JSON object per packet is
/// written to `out` as it is decided.
pub fn classify_pcap(
    policy: &CompiledPolicy,
    pcap: &Path,
    config: PipelineConfig,
    json: Option<&mut dyn Write>,
) -> Result<ClassifySummary, String> {
    let mut frames = PcapFrames::open(pcap)?;
    let mut pipeline = Pipeline::new(config);
    let mut batch: Vec<Frame> = Vec::with_capacity(MAX_BURST);
    let mut verdicts: Vec<Verdict> = Vec::with_capacity(MAX_BURST);
    let mut per_rule = vec![0u64; policy.rule_set().len()];
    let mut summary = ClassifySummary::default();
    let mut json = json;
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
        for (v, hello) in verdicts.iter().zip(&hellos.0) {
            summary.packets += 1;
            match v.action {
                Action::Allow => summary.allowed += 1,
                Action::Drop => summary.dropped += 1,
            }
            if v.malformed.is_some() {
                summary.malformed += 1;
            }
            let rule = v.rule.and_then(|id| policy.rule(id));
            match v.rule.and_then(|id| per_rule.get_mut(id as usize)) {
                Some(count) => *count += 1,
                None => summary.default_hits += 1,
            }
            if let Some(out) = json.as_deref_mut() {
                let line = PacketLine {
                    packet: summary.packets,
                    verdict: v.action.as_str(),
                    rule: rule.map(|r| r.name.as_str()),
                    reason: rule.map(|r| r.reason.as_str()),
                    malformed: v.malformed.map(|c| c.as_str()),
                    tls: hello.as_ref(),
                };
                let text = serde_json::to_string(&line).map_err(|e| e.to_string())?;
                writeln!(out, "{text}").map_err(|e| format!("writing output: {e}"))?;
            }
        }
    }
    summary.hits = policy.rule_set().rules().iter().zip(per_rule).map(|(r, n)| (r.name.clone(), n)).collect();
    Ok(summary)
}
