//! The config's keys and the plan, without DPDK: who polls which queue, which rings, which TX
//! queue each input leaves by, what is left unused, and every error naming its key.

use std::collections::BTreeSet;

use super::config::Config;
use super::plan::{plan, DistributorInput, DistributorPlan, InputSource, Plan, QueueRef, WorkerInput, WorkerPlan};

fn q(port: usize, queue: u16) -> QueueRef {
    QueueRef { port, queue }
}

fn planned(text: &str) -> Plan {
    let config = Config::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let plan = plan(&config).unwrap_or_else(|e| panic!("{e}\n{text}"));
    check_invariants(&config, &plan);
    plan
}

/// The key of the first error, from parsing or from the plan.
fn error_key(text: &str) -> String {
    match Config::parse(text) {
        Err(e) => e.key,
        Ok(config) => match plan(&config) {
            Err(e) => e.key,
            Ok(p) => panic!("no error: {p:?}\n{text}"),
        },
    }
}

/// What holds for every plan: each input leaves by its worker's TX queue on the ingress
/// port's egress port; every queue is used once or listed as unused; TX queue `k` is worker
/// `k`'s.
fn check_invariants(config: &Config, plan: &Plan) {
    let mut rx_used = BTreeSet::new();
    let mut tx_used = BTreeSet::new();
    for (k, w) in plan.workers.iter().enumerate() {
        assert_eq!(w.lcore, config.workers[k].lcore);
        for t in &w.tx {
            assert_eq!(usize::from(t.queue), k, "worker {k} owns TX queue {k} of each egress port");
            assert!(tx_used.insert(*t), "TX queue {t:?} owned twice");
            assert!(t.queue < config.ports[t.port].tx_queues);
        }
        assert_eq!(w.tx.len(), w.tx.iter().map(|t| t.port).collect::<BTreeSet<_>>().len(), "one TX queue per port");
        for input in &w.inputs {
            assert_eq!(w.tx.get(input.egress), Some(&input.tx), "egress is the index of tx");
            let ingress = match input.source {
                InputSource::RxQueue(r) => {
                    assert!(rx_used.insert(r), "RX queue {r:?} polled twice");
                    assert!(r.queue < config.ports[r.port].rx_queues);
                    r.port
                }
                InputSource::Ring { port, slot } => {
                    assert_eq!(plan.distributor.as_ref().unwrap().ingress[slot], port);
                    port
                }
            };
            let to = &config.forward[&config.ports[ingress].device];
            assert_eq!(&config.ports[input.tx.port].device, to, "leaves by the forward entry's port");
        }
    }
    if let Some(d) = &plan.distributor {
        for i in &d.inputs {
            assert!(rx_used.insert(i.rx), "RX queue {:?} polled twice", i.rx);
            assert_eq!(d.ingress[i.slot], i.rx.port);
        }
    }
    for (used, unused, count) in [
        (&rx_used, &plan.unused_rx, (|p| p.rx_queues) as fn(&super::config::PortEntry) -> u16),
        (&tx_used, &plan.unused_tx, |p| p.tx_queues),
    ] {
        let all: BTreeSet<QueueRef> = config
            .ports
            .iter()
            .enumerate()
            .flat_map(|(port, p)| (0..count(p)).map(move |queue| q(port, queue)))
            .collect();
        let unused: BTreeSet<QueueRef> = unused.iter().copied().collect();
        assert!(used.is_disjoint(&unused));
        assert_eq!(used.union(&unused).copied().collect::<BTreeSet<_>>(), all);
    }
}

const TWO_PORTS: &str = r#"
[[ports]]
device = "a"
[[ports]]
device = "b"
[forward]
a = "b"
b = "a"
[[workers]]
lcore = 1
rx = [{ port = "a" }, { port = "b" }]
"#;

#[test]
fn example_config_parses_and_plans() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/dataplane.toml")).unwrap();
    let c = Config::parse(&text).unwrap();
    assert_eq!(c.workers.len(), 1);
    assert_eq!(c.forward.len(), 2);
    assert_eq!(c.pipeline().malformed, crate::pipeline::MalformedAction::Drop);
    let lenient = Config::parse(&text.replace("malformed = \"drop\"", "malformed = \"default\"")).unwrap();
    assert_eq!(lenient.pipeline().malformed, crate::pipeline::MalformedAction::Default);
    let err = Config::parse(&text.replace("malformed = \"drop\"", "malformed = \"sometimes\"")).unwrap_err();
    assert!(err.to_string().contains("malformed"), "{err}");
    let p = planned(&text);
    assert_eq!(p.workers.len(), 1);
    assert!(p.distributor.is_none());
}

/// The edge profile (ARM64 gateways with 2 GB): it parses, plans, and keeps the sizes its
/// comments and the README's memory table are about.
#[test]
fn edge_profile_parses_and_plans() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/edge.toml")).unwrap();
    let c = Config::parse(&text).unwrap();
    assert_eq!((c.mempool.size, c.mempool.cache), (4095, 128));
    assert_eq!((c.flows.capacity, c.flows.hello_buffers), (262_144, 64));
    assert_eq!((c.fragments.table_size, c.fragments.held_per_worker), (256, 64));
    assert_eq!(c.ports.iter().map(|p| (p.rx_desc, p.tx_desc)).collect::<Vec<_>>(), [(512, 512), (512, 512)]);
    // Every descriptor, the lcores' caches and the held fragments fit in the mempool.
    let descriptors: u32 = c.ports.iter().map(|p| u32::from(p.rx_desc) + u32::from(p.tx_desc)).sum();
    assert!(descriptors + 2 * c.mempool.cache + c.fragments.held_per_worker as u32 <= c.mempool.size);
    assert!(c.eal.windows(2).any(|w| w == ["-m", "32"]), "{:?}", c.eal);
    let p = planned(&text);
    assert_eq!(p.worker_lcores(), vec![1]);
    assert!(p.distributor.is_none());
}

#[test]
fn one_worker_forwarding_both_ways() {
    let p = planned(TWO_PORTS);
    let rx =
        |port, tx_port, egress| WorkerInput { source: InputSource::RxQueue(q(port, 0)), tx: q(tx_port, 0), egress };
    assert_eq!(
        p.workers,
        vec![WorkerPlan { lcore: 1, inputs: vec![rx(0, 1, 0), rx(1, 0, 1)], tx: vec![q(1, 0), q(0, 0)] }]
    );
    assert_eq!(p.distributor, None);
    assert!(p.unused_rx.is_empty() && p.unused_tx.is_empty());
    assert_eq!(p.worker_lcores(), vec![1]);
}

/// Two workers on two queues of each port: worker k polls queue k of both and sends by TX
/// queue k; the third RX queues nobody polls and a third TX queue nobody owns are unused.
#[test]
fn rss_workers_own_their_queues_and_the_rest_is_unused() {
    let text = r#"
[[ports]]
device = "a"
rx_queues = 3
tx_queues = 3
[[ports]]
device = "b"
rx_queues = 3
tx_queues = 2
[forward]
a = "b"
b = "a"
[[workers]]
lcore = 2
rx = [{ port = "b", queue = 1 }, { port = "a", queue = 1 }]
[[workers]]
lcore = 1
rx = [{ port = "a", queue = 0 }, { port = "b", queue = 0 }]
"#;
    let p = planned(text);
    let input = |rx: QueueRef, tx: QueueRef, egress| WorkerInput { source: InputSource::RxQueue(rx), tx, egress };
    assert_eq!(
        p.workers,
        vec![
            WorkerPlan {
                lcore: 2,
                inputs: vec![input(q(1, 1), q(0, 0), 0), input(q(0, 1), q(1, 0), 1)],
                tx: vec![q(0, 0), q(1, 0)],
            },
            WorkerPlan {
                lcore: 1,
                inputs: vec![input(q(0, 0), q(1, 1), 0), input(q(1, 0), q(0, 1), 1)],
                tx: vec![q(1, 1), q(0, 1)],
            },
        ]
    );
    assert_eq!(p.unused_rx, vec![q(0, 2), q(1, 2)]);
    assert_eq!(p.unused_tx, vec![q(0, 2)]);
}

/// RSS distribution with several workers: the replies to what arrives on queue q of a port
/// come back on queue q of the port it forwards to, so one worker polls both, and both ports
/// have as many RX queues. One worker, or one-way forwarding, splits nothing.
#[test]
fn rss_workers_poll_both_directions_of_a_queue() {
    let two_queues = |a_rx: &str, b_rx: &str| {
        format!(
            "[[ports]]\ndevice = \"a\"\nrx_queues = 2\ntx_queues = 2\n[[ports]]\ndevice = \"b\"\nrx_queues = 2\n\
             tx_queues = 2\n[forward]\na = \"b\"\nb = \"a\"\n[[workers]]\nlcore = 1\nrx = [{a_rx}]\n\
             [[workers]]\nlcore = 2\nrx = [{b_rx}]\n"
        )
    };
    let q = |port: &str, queue: u16| format!("{{ port = \"{port}\", queue = {queue} }}");
    planned(&two_queues(&[q("a", 0), q("b", 0)].join(", "), &[q("b", 1), q("a", 1)].join(", ")));
    // Worker 0 polls a's queues, worker 1 b's: every connection is split.
    let split = two_queues(&[q("a", 0), q("a", 1)].join(", "), &[q("b", 0), q("b", 1)].join(", "));
    assert_eq!(error_key(&split), "workers[0].rx[0]");
    let err = plan(&Config::parse(&split).unwrap()).unwrap_err().to_string();
    assert!(err.contains("queue 0 of \"a\" is polled by workers[0] but queue 0 of \"b\" by workers[1]"), "{err}");
    // Crossed: queue 0 of a with queue 1 of b.
    let crossed = two_queues(&[q("a", 0), q("b", 1)].join(", "), &[q("b", 0), q("a", 1)].join(", "));
    assert_eq!(error_key(&crossed), "workers[0].rx[0]");
    // As many queues on both sides.
    let uneven = two_queues(&[q("a", 0), q("b", 0)].join(", "), &[q("b", 1), q("a", 1)].join(", ")).replacen(
        "rx_queues = 2",
        "rx_queues = 3",
        1,
    );
    assert_eq!(error_key(&uneven), "ports[0].rx_queues");
    // No reply comes back through the other port (b sends back out of itself).
    planned(&split.replace("b = \"a\"", "b = \"b\""));
}

/// Forwarding one way: the ingress port's TX queue and the egress port's RX queue are unused.
#[test]
fn one_way_forwarding_leaves_the_other_direction_unused() {
    let text = TWO_PORTS.replace("b = \"a\"\n", "").replace(", { port = \"b\" }", "");
    let p = planned(&text);
    assert_eq!(
        p.workers[0].inputs,
        vec![WorkerInput { source: InputSource::RxQueue(q(0, 0)), tx: q(1, 0), egress: 0 }]
    );
    assert_eq!(p.workers[0].tx, vec![q(1, 0)]);
    assert_eq!(p.unused_rx, vec![q(1, 0)]);
    assert_eq!(p.unused_tx, vec![q(0, 0)]);
}

/// Software distribution: ring slots follow the forwarding map's order (by name), each worker
/// reads its rings in port order, and the distributor polls every RX queue of the ingress ports.
#[test]
fn software_distribution_rings_per_worker_and_ingress_port() {
    let text = r#"
distribution = "software"
distributor_lcore = 3
ring_size = 512
[[ports]]
device = "z"
rx_queues = 2
tx_queues = 2
[[ports]]
device = "a"
tx_queues = 2
[[ports]]
device = "spare"
[forward]
z = "a"
a = "z"
[[workers]]
lcore = 1
[[workers]]
lcore = 2
"#;
    let p = planned(text);
    assert_eq!(
        p.distributor,
        Some(DistributorPlan {
            lcore: 3,
            ingress: vec![1, 0],
            inputs: vec![
                DistributorInput { rx: q(1, 0), slot: 0 },
                DistributorInput { rx: q(0, 0), slot: 1 },
                DistributorInput { rx: q(0, 1), slot: 1 },
            ],
            ring_size: 512,
        })
    );
    for (k, w) in p.workers.iter().enumerate() {
        let k16 = u16::try_from(k).unwrap();
        assert_eq!(
            w.inputs,
            vec![
                WorkerInput { source: InputSource::Ring { port: 0, slot: 1 }, tx: q(1, k16), egress: 0 },
                WorkerInput { source: InputSource::Ring { port: 1, slot: 0 }, tx: q(0, k16), egress: 1 },
            ]
        );
        assert_eq!(w.tx, vec![q(1, k16), q(0, k16)]);
    }
    assert_eq!(p.worker_lcores(), vec![1, 2]);
    // The port outside the forwarding map is not polled.
    assert_eq!(p.unused_rx, vec![q(2, 0)]);
    assert_eq!(p.unused_tx, vec![q(2, 0)]);
    assert_eq!(DistributorPlan::ring_name(1, 0), "dist_w1_p0");
}

/// Many shapes: every plan keeps the invariants (each queue used once or unused, each input
/// leaves by its worker's queue on the forward entry's port).
#[test]
fn plans_of_many_shapes_keep_the_invariants() {
    for workers in 1..=4u16 {
        for extra in 0..=2u16 {
            for software in [false, true] {
                let queues = workers + extra;
                let mut t = String::new();
                if software {
                    t.push_str("distribution = \"software\"\ndistributor_lcore = 9\n");
                }
                for d in ["p0", "p1", "p2"] {
                    t.push_str(&format!("[[ports]]\ndevice = \"{d}\"\nrx_queues = {queues}\ntx_queues = {queues}\n"));
                }
                t.push_str("[forward]\np0 = \"p1\"\np1 = \"p2\"\np2 = \"p0\"\n");
                for k in 0..workers {
                    t.push_str(&format!("[[workers]]\nlcore = {}\n", k + 1));
                    if !software {
                        let rx: Vec<String> =
                            ["p0", "p1", "p2"].iter().map(|d| format!("{{ port = \"{d}\", queue = {k} }}")).collect();
                        t.push_str(&format!("rx = [{}]\n", rx.join(", ")));
                    }
                }
                let p = planned(&t);
                assert_eq!(p.workers.len(), usize::from(workers));
                assert!(p.workers.iter().all(|w| w.inputs.len() == 3 && w.tx.len() == 3));
                let unused_rx = if software { 0 } else { 3 * usize::from(extra) };
                assert_eq!(p.unused_rx.len(), unused_rx, "{t}");
                assert_eq!(p.unused_tx.len(), 3 * usize::from(extra), "{t}");
            }
        }
    }
}

#[test]
fn config_errors_name_the_key() {
    let base = TWO_PORTS;
    planned(base);
    let err = |t: &str| error_key(t);
    assert_eq!(err(&base.replace("b = \"a\"", "")), "forward.b");
    assert_eq!(err(&base.replace("b = \"a\"", "b = \"c\"")), "forward.b");
    assert_eq!(err(&base.replace("b = \"a\"", "c = \"a\"")), "forward.c");
    assert_eq!(err(&base.replace("{ port = \"b\" }", "{ port = \"b\", queue = 1 }")), "workers[0].rx[1].queue");
    assert_eq!(err(&base.replace("{ port = \"b\" }", "{ port = \"c\" }")), "workers[0].rx[1].port");
    assert_eq!(err(&base.replace("{ port = \"b\" }", "{ port = \"a\" }")), "workers[0].rx[1]");
    assert_eq!(err(&base.replace("rx = [{ port = \"a\" }, { port = \"b\" }]", "rx = []")), "workers[0].rx");
    assert_eq!(err(&format!("distribution = \"software\"\ndistributor_lcore = 2\n{base}")), "workers[0].rx");
    assert_eq!(err(&format!("[mempool]\nsize = 10\n{base}")), "mempool.size");
    assert_eq!(err(&format!("default_action = \"MAYBE\"\n{base}")), "default_action");
    // REJECT is a rule's action only.
    assert_eq!(err(&format!("default_action = \"REJECT\"\n{base}")), "default_action");
    assert_eq!(err(&format!("[reject]\nrate = 1000001\n{base}")), "reject.rate");
    assert_eq!(err(&format!("[reject]\nrate = 1\nburst = 0\n{base}")), "reject.burst");
    assert_eq!(err(&format!("[reject]\nrates = 1\n{base}")), "reject.rates");
    assert_eq!(err(&format!("midstream = \"ignore\"\n{base}")), "midstream");
    assert_eq!(
        Config::parse(&format!("midstream = \"drop\"\n{base}")).unwrap().pipeline().midstream,
        crate::pipeline::Midstream::Drop
    );
    assert_eq!(err(&base.replace("device = \"b\"", "device = \"b\"\nrx_queues = 0")), "ports[1].rx_queues");
    assert_eq!(err(&base.replace("device = \"b\"", "device = \"a\"")), "ports[1].device");
    assert_eq!(
        err(&format!("{base}[[workers]]\nlcore = 2\nrx = []\n")
            .replace("device = \"b\"", "device = \"b\"\nrx_queues = 2")),
        "workers[1].rx"
    );
    // An lcore given two roles.
    assert_eq!(err(&format!("{base}[[workers]]\nlcore = 1\nrx = []\n")), "workers[1].lcore");
    assert_eq!(err(&format!("distributor_lcore = 2\n{base}")), "distributor_lcore");
    // Two workers sending to a port with one TX queue.
    let two = base.replace(
        "rx = [{ port = \"a\" }, { port = \"b\" }]",
        "rx = [{ port = \"a\" }]\n[[workers]]\nlcore = 2\nrx = [{ port = \"b\" }]",
    );
    assert_eq!(err(&two), "ports[0].tx_queues");
    assert_eq!(err(&two.replace("device = \"a\"", "device = \"a\"\ntx_queues = 2")), "ports[1].tx_queues");
    // With a TX queue each, worker 0 polls a and worker 1 polls b: each connection split.
    assert_eq!(
        err(&two
            .replace("device = \"a\"", "device = \"a\"\ntx_queues = 2")
            .replace("device = \"b\"", "device = \"b\"\ntx_queues = 2")),
        "workers[0].rx[0]"
    );
}

#[test]
fn software_distribution_errors_name_the_key() {
    let software = "distribution = \"software\"\ndistributor_lcore = 3\n".to_owned()
        + &TWO_PORTS.replace("rx = [{ port = \"a\" }, { port = \"b\" }]", "");
    planned(&software);
    let err = |t: &str| error_key(t);
    assert_eq!(err(&software.replace("distributor_lcore = 3\n", "")), "distributor_lcore");
    assert_eq!(err(&software.replace("distributor_lcore = 3", "distributor_lcore = 1")), "distributor_lcore");
    assert_eq!(err(&format!("ring_size = 16\n{software}")), "ring_size");
    assert_eq!(err(&format!("{software}[[workers]]\nlcore = 2\n")), "ports[0].tx_queues");
    assert_eq!(err(&software.replace("a = \"b\"", "a = \"x\"")), "forward.a");
}

/// The messages say what is wrong, as `dataplane run` prints them.
#[test]
fn plan_errors_say_what_is_wrong() {
    let message = |t: &str| plan(&Config::parse(t).unwrap()).unwrap_err().to_string();
    assert_eq!(
        message(&TWO_PORTS.replace("{ port = \"b\" }", "{ port = \"b\", queue = 4 }")),
        "workers[0].rx[1].queue: queue 4 out of range: port \"b\" has rx_queues = 1"
    );
    assert_eq!(
        message(&TWO_PORTS.replace("b = \"a\"", "")),
        "forward.b: port \"b\" receives traffic but is not in the forwarding map"
    );
    assert_eq!(message(&TWO_PORTS.replace("b = \"a\"", "b = \"c\"")), "forward.b: \"c\" is not a port in `ports`");
    assert_eq!(
        message(&TWO_PORTS.replace("{ port = \"b\" }", "{ port = \"a\" }")),
        "workers[0].rx[1]: queue 0 of port \"a\" is polled by two workers"
    );
}
