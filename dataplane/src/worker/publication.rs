//! The control side of the running workers: policy publication through their mailboxes,
//! the generations they adopted, their published counters and the per-rule counts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::fastpath::Mailbox;
use crate::counters::Counters;
use crate::pipeline::talkers::Talkers;
use crate::policy::hits::RuleTotals;
use crate::policy::{Action, CompiledPolicy};
use std::collections::HashMap;

/// The control side of the running workers: policy publication and counters.
///
/// `publish` and `wait_adopted` take `&self`, so an HTTP control plane can share this
/// behind an `Arc`.
pub struct Workers {
    mailboxes: Vec<Arc<Mailbox>>,
    lcores: Vec<u32>,
    generation: Mutex<u64>,
    /// Every policy published that some worker may still count into, the latest last (the
    /// per-rule counters live in the policies).
    published: Mutex<Vec<Arc<CompiledPolicy>>>,
    /// Per-rule counts of the policies no worker runs any more.
    retired: Mutex<RuleTotals>,
    /// The top talkers each worker last posted (see [`Workers::with_talkers`]); boxed as
    /// they travel through the mailboxes, swapped without a copy.
    #[allow(clippy::vec_box)]
    talkers: Mutex<Vec<Box<Talkers>>>,
}

impl Workers {
    /// Control state for workers on `lcores`, all starting with policy `generation`. The
    /// lcore side of each worker is [`Workers::lcore_side`]`(k)`.
    pub fn new(lcores: Vec<u32>, generation: u64) -> Workers {
        let mailboxes: Vec<Arc<Mailbox>> =
            (0..lcores.len()).map(|lane| Arc::new(Mailbox::new(generation, lane))).collect();
        // Two copies per worker: one here, one asked of (or filled by) the worker.
        for m in &mailboxes {
            let _ = m.talkers_asked.push(Box::default());
        }
        let talkers = Mutex::new(mailboxes.iter().map(|_| Box::default()).collect());
        Workers {
            talkers,
            mailboxes,
            lcores,
            generation: Mutex::new(generation),
            published: Mutex::new(Vec::new()),
            retired: Mutex::new(RuleTotals::default()),
        }
    }

    /// The policy the workers start with (or the next one), given its per-rule counters and
    /// listed as published, so its counts are kept once no worker runs it.
    pub fn share(&self, mut policy: CompiledPolicy) -> Arc<CompiledPolicy> {
        policy.attach_hits(self.mailboxes.len());
        let policy = Arc::new(policy);
        lock(&self.published).push(policy.clone());
        policy
    }

    /// Packets per (rule name, action) since start, over every generation (see
    /// [`crate::policy::hits`]).
    pub fn rule_packets(&self) -> HashMap<(String, Action), u64> {
        self.retire_unused();
        let published = lock(&self.published);
        lock(&self.retired).snapshot(published.iter().map(|p| &**p))
    }

    /// New connections limited per rule name since start (rules with `spec.limit`).
    pub fn rule_limited(&self) -> HashMap<String, u64> {
        self.retire_unused();
        let published = lock(&self.published);
        lock(&self.retired).snapshot_limited(published.iter().map(|p| &**p))
    }

    /// Folds the counts of the policies no worker runs any more into the retired totals,
    /// and frees them.
    fn retire_unused(&self) {
        let mut published = lock(&self.published);
        let mut retired = lock(&self.retired);
        let latest = published.len().saturating_sub(1);
        let mut k = 0;
        published.retain(|p| {
            // Only this list holds it: every worker has moved on and given it back.
            let gone = k < latest && Arc::strong_count(p) == 1;
            k += 1;
            if gone {
                retired.retire(p);
            }
            !gone
        });
    }

    /// Hands `policy` to every worker as the next generation; returns that generation.
    /// Each worker adopts it at its next quiescent point (once per loop) without dropping or
    /// delaying packets. A policy published before and not adopted yet is replaced (and
    /// freed here). Policies the workers gave back are freed here too, never on a worker.
    pub fn publish(&self, policy: CompiledPolicy) -> u64 {
        self.publish_as(policy, None).unwrap_or_default()
    }

    /// [`Workers::publish`] with the generation chosen by the caller (the control API's
    /// `generation`): `Some(g)` must be above the last one published, else nothing is
    /// published and the result is `None`. `None` takes the next one.
    pub fn publish_as(&self, mut policy: CompiledPolicy, chosen: Option<u64>) -> Option<u64> {
        let mut generation = lock(&self.generation);
        match chosen {
            Some(g) if g <= *generation => return None,
            Some(g) => *generation = g,
            None => *generation += 1,
        }
        policy.set_generation(*generation);
        let policy = self.share(policy);
        for m in &self.mailboxes {
            drop(m.policies.force_push(policy.clone()));
        }
        // Only references dropped here: folding counts and freeing wait for `reclaim`, off
        // the update's path.
        self.drop_returned();
        Some(*generation)
    }

    /// Waits until every worker runs `generation` or a later one; false on timeout. Workers
    /// adopt at the top of their next loop, within microseconds: the first 2 ms are spent
    /// polling (a sleep on a busy control CPU can overshoot by a millisecond), then it sleeps.
    /// The old policies are freed afterwards ([`Workers::reclaim`]), not while waiting.
    pub fn wait_adopted(&self, generation: u64, timeout: Duration) -> bool {
        let started = Instant::now();
        loop {
            if self.mailboxes.iter().all(|m| m.adopted() >= generation) {
                return true;
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return false;
            }
            if waited < Duration::from_millis(2) {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    /// The last generation published.
    pub fn generation(&self) -> u64 {
        *lock(&self.generation)
    }

    /// The generation each worker runs, in worker order.
    pub fn adopted(&self) -> Vec<u64> {
        self.mailboxes.iter().map(|m| m.adopted()).collect()
    }

    /// The lcore of each worker, in worker order.
    pub fn lcores(&self) -> &[u32] {
        &self.lcores
    }

    /// The counters each worker last posted, in worker order.
    pub fn counters(&self) -> Vec<Counters> {
        self.mailboxes.iter().map(|m| m.counters()).collect()
    }

    /// Calls `f` with the top talkers of each worker, in worker order: the copies posted
    /// since the last call replace the ones held, which go back to their workers to be filled
    /// again. A worker fills its copy when it next posts its counters (within microseconds
    /// while it polls), so calling this every second gives copies about a second apart.
    pub fn with_talkers<R>(&self, f: impl FnOnce(&[&Talkers]) -> R) -> R {
        let mut latest = lock(&self.talkers);
        for (m, held) in self.mailboxes.iter().zip(latest.iter_mut()) {
            if let Some(fresh) = m.talkers_posted.pop() {
                let old = std::mem::replace(held, fresh);
                let _ = m.talkers_asked.push(old);
            }
        }
        let copies: Vec<&Talkers> = latest.iter().map(|t| &**t).collect();
        f(&copies)
    }

    /// Worker `k`'s mailbox, for its lcore.
    pub fn mailbox(&self, k: usize) -> Option<Arc<Mailbox>> {
        self.mailboxes.get(k).cloned()
    }

    /// Frees the policies the workers have given back (their counts kept).
    pub fn reclaim(&self) {
        self.drop_returned();
        self.retire_unused();
    }

    /// Drops the workers' references to the policies they gave back (cheap: the published
    /// list still holds each; [`Workers::reclaim`] frees them).
    fn drop_returned(&self) {
        for m in &self.mailboxes {
            while let Some(old) = m.returns.pop() {
                drop(old);
            }
        }
    }
}

/// A lock that a panicked holder did not poison for good (the data are counters and lists).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
