//! The policy mailbox without DPDK: threads stand in for worker lcores.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::Duration;

use super::Workers;
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
fn top_talkers_go_round_in_two_buffers_per_worker() {
    use crate::pipeline::talkers::{Source, Talkers};
    let workers = Workers::new(vec![1, 2], 1);
    let mailbox = workers.mailbox(1).unwrap();
    let mut live = Talkers::default();
    live.connections.add(Source::v4(7), 3);
    // Nothing posted yet: empty copies.
    assert!(workers.with_talkers(|c| c.len() == 2 && c.iter().all(|t| t.connections.entries().is_empty())));
    // Worker 1 fills the copy it was asked for; a second post finds no buffer and copies nothing.
    mailbox.post_talkers(&live);
    live.connections.add(Source::v4(7), 1);
    mailbox.post_talkers(&live);
    let counts =
        |c: &[&Talkers]| c.iter().map(|t| t.connections.entries().first().map(|e| e.count)).collect::<Vec<_>>();
    assert_eq!(workers.with_talkers(counts), vec![None, Some(3)]);
    // The held copy went back: the next post fills it, and the answer moves on.
    mailbox.post_talkers(&live);
    assert_eq!(workers.with_talkers(counts), vec![None, Some(4)]);
    // Still two buffers: one held, one asked for.
    assert_eq!((mailbox.talkers_asked.len(), mailbox.talkers_posted.len()), (1, 0));
}
