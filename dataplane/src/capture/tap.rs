//! Arming a capture on the workers. Each worker has a [`Tap`] in its mailbox: the id of the
//! capture armed (0: none), the id the worker has taken up, and the [`Session`] offered to it
//! (its filter and its own [`Ring`]).
//!
//! The worker reads the armed id once per loop (a plain atomic load, no read-modify-write)
//! and, only when it changed, takes the session offered or lets the old one go
//! ([`WorkerTap::follow`]); per burst it tests one local `Option` (a branch always taken the
//! same way while nothing is armed). The control side keeps its own reference to every
//! session until the worker has let go of it, so a worker never frees one.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use super::filter::Filter;
use super::ring::Ring;
use crate::counters::{Counter, Counters};
use crate::pipeline::Verdict;
use crate::policy::CompiledPolicy;

/// One capture on one worker: what to copy, and where.
pub struct Session {
    /// The capture's id (never 0).
    pub id: u64,
    pub filter: Filter,
    pub ring: Ring,
    /// The capture's count: once this worker has copied that many, it has supplied all the
    /// file can hold and copies (and misses) no more.
    limit: u64,
}

impl Session {
    /// A session with a ring of `slots`, copying at most `count` packets (`None`: no limit).
    pub fn new(id: u64, filter: Filter, slots: usize, count: Option<u64>) -> Session {
        Session { id, filter, ring: Ring::new(slots), limit: count.unwrap_or(u64::MAX) }
    }

    /// Copies the packets of a decided burst that the filter keeps (`frames[i]` decided by
    /// `verdicts[i]`), except those marked in `skip` (bit i: packet i has no verdict yet, a
    /// held fragment, copied when it gets one). Received at `tsc`.
    #[inline(never)]
    pub fn copy_burst<P: AsRef<[u8]>>(
        &self,
        frames: &[P],
        verdicts: &[Verdict],
        skip: u64,
        policy: &CompiledPolicy,
        tsc: u64,
        counters: &mut Counters,
    ) {
        for (i, (frame, verdict)) in frames.iter().zip(verdicts).enumerate() {
            if skip.checked_shr(i as u32).unwrap_or(0) & 1 == 0 {
                self.copy(frame.as_ref(), verdict, policy, tsc, counters);
            }
        }
    }

    /// Copies one decided packet if the filter keeps it; a full ring counts it missed.
    #[inline]
    pub fn copy(&self, frame: &[u8], verdict: &Verdict, policy: &CompiledPolicy, tsc: u64, counters: &mut Counters) {
        if self.ring.copied() < self.limit && self.filter.matches(verdict, policy, frame) {
            let counter = if self.ring.copy(frame, tsc) { Counter::CaptureCopied } else { Counter::CaptureMissed };
            counters.add(counter, 1);
        }
    }
}

/// What the control side and one worker share about captures.
pub struct Tap {
    /// The capture the worker is to copy for (0: none).
    armed: AtomicU64,
    /// The capture the worker has taken up (0: none), stored by the worker.
    adopted: AtomicU64,
    /// The session of the armed capture, until the worker takes it.
    offer: ArrayQueue<Arc<Session>>,
}

impl Default for Tap {
    fn default() -> Self {
        Tap { armed: AtomicU64::new(0), adopted: AtomicU64::new(0), offer: ArrayQueue::new(1) }
    }
}

impl Tap {
    /// Offers `session` to the worker and arms it (a session offered before and not taken is
    /// dropped here).
    pub fn arm(&self, session: Arc<Session>) {
        let id = session.id;
        drop(self.offer.force_push(session));
        self.armed.store(id, Ordering::Release);
    }

    /// Tells the worker to stop copying (it lets its session go at its next loop).
    pub fn disarm(&self) {
        self.armed.store(0, Ordering::Release);
    }

    /// The capture the worker has taken up (0: none).
    pub fn adopted(&self) -> u64 {
        self.adopted.load(Ordering::Acquire)
    }
}

/// The worker's side: the session it copies into, if any.
#[derive(Default)]
pub struct WorkerTap {
    id: u64,
    session: Option<Arc<Session>>,
}

impl WorkerTap {
    /// Once per loop: follows the armed id of `tap` (one load; the rest only on a change).
    #[inline]
    pub fn follow(&mut self, tap: &Tap) {
        let armed = tap.armed.load(Ordering::Acquire);
        if armed != self.id {
            self.change(tap, armed);
        }
    }

    /// Takes up capture `armed` (0: none). The session let go is still held by the control
    /// side, which frees it once `adopted` says the worker moved on.
    #[cold]
    #[inline(never)]
    fn change(&mut self, tap: &Tap, armed: u64) {
        self.session = None;
        if armed != 0 {
            while let Some(s) = tap.offer.pop() {
                if s.id == armed {
                    self.session = Some(s);
                    break;
                }
            }
        }
        self.id = armed;
        tap.adopted.store(armed, Ordering::Release);
    }

    /// The session to copy into, while a capture is armed.
    #[inline(always)]
    pub fn session(&self) -> Option<&Session> {
        self.session.as_deref()
    }
}
