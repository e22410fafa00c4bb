//! A tiny measurement for software distribution: rte_ring (SPSC, bursts of 32) against
//! crossbeam-queue's ArrayQueue (one push/pop per item, it has no burst API), moving
//! pointer-sized owned handles between two threads and back. Prints figures; asserts only
//! that every item made the round trip. Run with
//! `cargo test --release -p dataplane-tests --test run_ring_measure -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::Instant;

use crossbeam_queue::ArrayQueue;
use dataplane::dpdk::{Burst, Eal, Ring};

const ITEMS: usize = 512;
const ROUNDS: usize = 2_000_000;

fn rte_ring_rate() -> f64 {
    let (fwd_tx, fwd_rx) = Ring::<Box<u64>>::spsc("measure_fwd", 1024).unwrap();
    let (back_tx, back_rx) = Ring::<Box<u64>>::spsc("measure_back", 1024).unwrap();
    let echo = std::thread::spawn(move || {
        let mut b = Burst::<Box<u64>, 32>::new();
        let mut moved = 0;
        while moved < ROUNDS {
            fwd_rx.dequeue_burst(&mut b);
            while !b.is_empty() {
                moved += back_tx.enqueue_burst(&mut b);
            }
        }
    });
    let mut b = Burst::<Box<u64>, 32>::new();
    let mut pool: Vec<Box<u64>> = (0..ITEMS as u64).map(Box::new).collect();
    let start = Instant::now();
    let (mut sent, mut got) = (0, 0);
    while got < ROUNDS {
        while sent < ROUNDS && !b.is_full() {
            match pool.pop() {
                Some(x) => b.push(x).ok().unwrap(),
                None => break,
            }
        }
        sent += fwd_tx.enqueue_burst(&mut b);
        let mut r = Burst::<Box<u64>, 32>::new();
        got += back_rx.dequeue_burst(&mut r);
        while let Some(x) = r.pop() {
            pool.push(x);
        }
    }
    let rate = ROUNDS as f64 / start.elapsed().as_secs_f64();
    echo.join().unwrap();
    while let Some(x) = b.pop() {
        pool.push(x);
    }
    assert_eq!(pool.len(), ITEMS);
    rate
}

fn crossbeam_rate() -> f64 {
    let fwd = Arc::new(ArrayQueue::<Box<u64>>::new(1024));
    let back = Arc::new(ArrayQueue::<Box<u64>>::new(1024));
    let (f2, b2) = (fwd.clone(), back.clone());
    let echo = std::thread::spawn(move || {
        let mut moved = 0;
        while moved < ROUNDS {
            for _ in 0..32 {
                let Some(x) = f2.pop() else { break };
                let mut x = x;
                while let Err(y) = b2.push(x) {
                    x = y;
                }
                moved += 1;
            }
        }
    });
    let mut pool: Vec<Box<u64>> = (0..ITEMS as u64).map(Box::new).collect();
    let start = Instant::now();
    let (mut sent, mut got) = (0, 0);
    while got < ROUNDS {
        for _ in 0..32 {
            if sent >= ROUNDS {
                break;
            }
            let Some(x) = pool.pop() else { break };
            match fwd.push(x) {
                Ok(()) => sent += 1,
                Err(x) => {
                    pool.push(x);
                    break;
                }
            }
        }
        for _ in 0..32 {
            let Some(x) = back.pop() else { break };
            pool.push(x);
            got += 1;
        }
    }
    let rate = ROUNDS as f64 / start.elapsed().as_secs_f64();
    echo.join().unwrap();
    assert_eq!(pool.len(), ITEMS);
    rate
}

#[test]
#[ignore = "a measurement: prints figures, run by hand"]
fn rte_ring_vs_crossbeam_array_queue() {
    // The main lcore may run on either CPU, and so may the threads it spawns (their affinity
    // is inherited): the two ends must not share one CPU.
    let prefix = format!("ring-measure-{}", std::process::id());
    let args = ["--no-huge", "--no-shconf", "--no-pci", "--file-prefix", &prefix, "-m", "256", "--lcores", "0@(0-1)"];
    let _eal = Eal::init(args).unwrap();
    for round in 0..3 {
        let r = rte_ring_rate();
        let c = crossbeam_rate();
        println!(
            "round {round}: rte_ring SPSC bursts of 32: {:.1} Mitems/s   crossbeam ArrayQueue: {:.1} Mitems/s   ratio {:.2}x",
            r / 1e6,
            c / 1e6,
            r / c
        );
    }
}
