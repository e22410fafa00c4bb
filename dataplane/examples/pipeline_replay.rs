//! The workers' pipeline replaying a capture in a loop, without DPDK: one warm-up pass (the
//! flows are created), then `--passes` passes over known flows, in bursts of 32.
//!
//! `scripts/instructions.sh` runs it under callgrind, which counts the instructions of the
//! `replay` function only: a figure that does not move with the other tenants of a shared
//! machine, where cycle counts move by 10-15%.
//!
//!     cargo run --release -p dataplane --example pipeline_replay -- RULES PCAP [PASSES] [CAPACITY]
use dataplane::counters::Counter;
use dataplane::pcap::PcapFrames;
use dataplane::pipeline::{Pipeline, PipelineConfig, Verdict, MAX_BURST};
use dataplane::policy::{load_policy, Action, CompiledPolicy};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// One pass over the capture; returns the packets allowed.
#[inline(never)]
fn replay(pipeline: &mut Pipeline, policy: &CompiledPolicy, bursts: &[Vec<&[u8]>], now_ms: u64) -> u64 {
    let mut verdicts = [Verdict::default(); MAX_BURST];
    let mut allowed = 0;
    for burst in bursts {
        let vs = &mut verdicts[..burst.len()];
        pipeline.process_burst(policy, burst, now_ms, vs);
        allowed += vs.iter().filter(|v| !v.action.denies()).count() as u64;
    }
    allowed
}

/// The warm-up pass, a separate function so that callgrind can leave it out.
#[inline(never)]
fn warm_up(pipeline: &mut Pipeline, policy: &CompiledPolicy, bursts: &[Vec<&[u8]>], now_ms: u64) -> u64 {
    replay(pipeline, policy, bursts, now_ms)
}

fn run(args: &[String]) -> Result<(), String> {
    let [rules, pcap, rest @ ..] = args else {
        return Err("usage: pipeline_replay RULES PCAP [PASSES] [FLOW_CAPACITY]".into());
    };
    let number =
        |i: usize, default: usize| rest.get(i).map_or(Ok(default), |s| s.parse().map_err(|e| format!("{s}: {e}")));
    let (passes, capacity) = (number(0, 2)?, number(1, 131072)?);
    let policy = load_policy(&[PathBuf::from(rules)], Action::Allow).map_err(|e| e.to_string())?;
    let mut frames = PcapFrames::open(Path::new(pcap))?;
    let mut packets = Vec::new();
    let mut batch = Vec::new();
    while frames.next_batch(&mut batch, MAX_BURST)? > 0 {
        packets.extend(batch.iter().map(|f| f.data.clone()));
    }
    let bursts: Vec<Vec<&[u8]>> = packets.chunks(MAX_BURST).map(|c| c.iter().map(Vec::as_slice).collect()).collect();
    let mut pipeline = Pipeline::new(PipelineConfig { flow_capacity: capacity, ..PipelineConfig::default() });
    warm_up(&mut pipeline, &policy, &bursts, 1000);
    let start = Instant::now();
    let mut allowed = 0;
    for _ in 0..passes {
        allowed += replay(&mut pipeline, &policy, &bursts, 1000);
    }
    let n = (packets.len() * passes) as u64;
    let ns = start.elapsed().as_nanos() as f64 / n.max(1) as f64;
    println!("replayed {n} packets ({passes} passes after a warm-up pass): {allowed} allowed, {ns:.1} ns/packet");
    let c = pipeline.totals();
    println!(
        "flows {} (created {}, evicted {}, expired {}), classified {}",
        c.get(Counter::Flows),
        c.get(Counter::FlowsCreated),
        c.get(Counter::Evictions),
        c.get(Counter::Expired),
        c.get(Counter::Classified)
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipeline_replay: {e}");
            ExitCode::from(2)
        }
    }
}
