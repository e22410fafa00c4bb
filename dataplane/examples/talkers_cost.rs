//! The cost of one top-talkers update (`SpaceSaving::add`, what each policy drop pays) by
//! traffic shape, beside exact counting in a `HashMap` measured in the same run (the plain
//! way, which grows with every source and so cannot run on a worker).
//!
//!     cargo run --release -p dataplane --example talkers_cost [UPDATES] [SHAPE]
//!
//! SHAPE (`one`, `16` or `new`) runs that shape alone: under callgrind, `updates` alone then
//! counts the instructions of that shape's updates (`scripts/talkers-cost.sh`).
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use dataplane::pipeline::talkers::{Source, SpaceSaving, TOP_ENTRIES};

/// The sources of `n` updates: one sender, 16 senders in turn, or every update a new sender
/// (a spoofed flood: past k, each one replaces the least counted entry).
fn stream(shape: &str, n: u32) -> Vec<Source> {
    (0..n)
        .map(|i| match shape {
            "one source" => Source::v4(0x0a00_0001),
            "16 sources" => Source::v4(0x0a00_0000 | (i % 16)),
            _ => Source::v4(0x0b00_0000 ^ i.wrapping_mul(0x9e37_79b9)),
        })
        .collect()
}

#[inline(never)]
fn updates(sketch: &mut SpaceSaving, sources: &[Source]) {
    for &s in sources {
        black_box(sketch.add(s, 1));
    }
}

#[inline(never)]
fn exact(map: &mut HashMap<Source, u64>, sources: &[Source]) {
    for &s in sources {
        *map.entry(s).or_default() += 1;
    }
}

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2_000_000);
    let only = std::env::args().nth(2);
    println!("{n} updates per shape, k = {TOP_ENTRIES}");
    for shape in ["one source", "16 sources", "new source each"] {
        if only.as_ref().is_some_and(|o| !shape.starts_with(o.as_str())) {
            continue;
        }
        let sources = stream(shape, n);
        let mut sketch = SpaceSaving::new(TOP_ENTRIES, false);
        let t = Instant::now();
        updates(&mut sketch, &sources);
        let sketch_ns = t.elapsed().as_nanos() as f64 / f64::from(n);
        let mut map = HashMap::new();
        let t = Instant::now();
        exact(&mut map, &sources);
        let map_ns = t.elapsed().as_nanos() as f64 / f64::from(n);
        println!(
            "{shape:>16}: space-saving {sketch_ns:5.1} ns/update ({} entries)   exact HashMap {map_ns:5.1} ns/update ({} entries)",
            sketch.entries().len(),
            black_box(map.len())
        );
    }
}
