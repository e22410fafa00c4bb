//! The policy mailbox without DPDK: threads stand in for worker lcores.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::Duration;

use super::config::Config;
use super::Workers;
use crate::pipeline::Midstream;
use crate::policy::{Action, CompiledPolicy, RuleSet};

fn policy(action: Action) -> CompiledPolicy {
    CompiledPolicy::compile(RuleSet::new(Vec::new()), action).unwrap()
}

#[test]
fn publish_is_adopted_by_every_worker_and_old_policies_are_freed_on_the_control_side() {
    let workers = Arc::new(Workers::new(vec![1, 2, 3], 1));
    let stop = Arc::new(AtomicBool::new(false));
    let mut first = Vec::new();
    let lcores: Vec<_> = (0..3)
        .map(|k| {
            let mailbox = workers.mailbox(k).unwrap();
            let mut initial = Arc::new(policy(Action::Allow));
            Arc::get_mut(&mut initial).unwrap().set_generation(1);
            first.push(Arc::downgrade(&initial));
            let stop = stop.clone();
            thread::spawn(move || {
                let mut current = initial;
                let mut adopted = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if mailbox.adopt(&mut current) {
                        adopted.push(current.generation());
                    }
                    thread::yield_now();
                }
                (adopted, current.generation(), current.default_action())
            })
        })
        .collect();

    let g2 = workers.publish(policy(Action::Drop));
    assert_eq!(g2, 2);
    assert!(workers.wait_adopted(g2, Duration::from_secs(10)));
    assert_eq!(workers.adopted(), vec![2, 2, 2]);
    // The replaced generation-1 policies came back and were freed here.
    workers.reclaim();
    assert!(first.iter().all(|w: &Weak<CompiledPolicy>| w.upgrade().is_none()));

    // Several publications in a row: the latest wins; nothing is lost or leaked.
    let mut last = 0;
    for _ in 0..50 {
        last = workers.publish(policy(Action::Allow));
    }
    assert_eq!(last, 52);
    assert_eq!(workers.generation(), 52);
    assert!(workers.wait_adopted(last, Duration::from_secs(10)));
    stop.store(true, Ordering::Relaxed);
    for t in lcores {
        let (adopted, generation, action) = t.join().unwrap();
        assert_eq!(generation, 52);
        assert_eq!(action, Action::Allow);
        assert!(adopted.windows(2).all(|w| w[0] < w[1]), "generations only grow: {adopted:?}");
        assert_eq!(adopted.first(), Some(&2));
    }
    workers.reclaim();
}

#[test]
fn wait_adopted_times_out_when_a_worker_does_not_adopt() {
    let workers = Workers::new(vec![1], 1);
    let g = workers.publish(policy(Action::Allow));
    assert!(!workers.wait_adopted(g, Duration::from_millis(20)));
}

#[test]
fn example_config_parses() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/dataplane.toml")).unwrap();
    let c = Config::parse(&text).unwrap();
    assert_eq!(c.workers.len(), 1);
    assert_eq!(c.forward.len(), 2);
}

#[test]
fn config_errors_name_the_key() {
    let base = r#"
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
    Config::parse(base).unwrap();
    let err = |t: &str| Config::parse(t).unwrap_err().key;
    assert_eq!(err(&base.replace("b = \"a\"", "")), "forward.b");
    assert_eq!(err(&base.replace("b = \"a\"", "b = \"c\"")), "forward.b");
    assert_eq!(err(&base.replace("{ port = \"b\" }", "{ port = \"b\", queue = 1 }")), "workers[0].rx[1].queue");
    assert_eq!(err(&base.replace("{ port = \"b\" }", "{ port = \"c\" }")), "workers[0].rx[1].port");
    assert_eq!(err(&base.replace("{ port = \"b\" }", "{ port = \"a\" }")), "workers[0].rx[1]");
    assert_eq!(err(&format!("distribution = \"software\"\n{base}")), "workers[0].rx");
    assert_eq!(err(&format!("[mempool]\nsize = 10\n{base}")), "mempool.size");
    assert_eq!(err(&format!("default_action = \"MAYBE\"\n{base}")), "default_action");
    assert_eq!(err(&format!("midstream = \"ignore\"\n{base}")), "midstream");
    assert_eq!(Config::parse(&format!("midstream = \"drop\"\n{base}")).unwrap().pipeline().midstream, Midstream::Drop);
    assert_eq!(
        err(&format!("{base}[[workers]]\nlcore = 2\nrx = []\n")
            .replace("device = \"b\"", "device = \"b\"\nrx_queues = 2")),
        "workers[1].rx"
    );
    // Two workers sending to a port with one TX queue.
    let two = base.replace(
        "rx = [{ port = \"a\" }, { port = \"b\" }]",
        "rx = [{ port = \"a\" }]\n[[workers]]\nlcore = 2\nrx = [{ port = \"b\" }]",
    );
    assert_eq!(err(&two), "ports[0].tx_queues");
}
