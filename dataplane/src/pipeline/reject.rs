//! The answers to a burst's REJECT verdicts, rate limited: a per-worker token bucket (one
//! token per rejected packet answered, whether with one reply or two), refilled from the
//! caller's clock read once per burst (the worker's TSC, the capture's timestamps offline).
//! Past the rate a rejected packet is a plain drop, counted (`rejects.limited`), so the
//! gateway cannot be made an amplifier. The replies are written (`wire::reply`) into fixed
//! buffers owned here, for the caller to send (the worker copies each into an mbuf).
//! Nothing runs unless a burst has a REJECT verdict.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::{Verdict, MAX_BURST};
use crate::counters::{Counter, Counters};
use crate::policy::Action;
use crate::wire::reply::{write_replies, ReplyKind, Silent, MAX_REPLY_LEN};

/// A rate and a burst: of answered rejections per worker (`[reject]`), or of new connections
/// per source (`spec.limit`, `pipeline::limits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateConfig {
    /// Tokens earned per second (0: none).
    pub rate: u32,
    /// How many may be taken at once after a quiet spell (the bucket's size).
    pub burst: u32,
}

/// The rate of answered rejections, per worker.
pub type RejectConfig = RateConfig;

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig { rate: 100, burst: 20 }
    }
}

/// A token bucket's rate in fixed point: one token is `ticks_per_second` units of credit, and
/// each tick of the clock adds `rate` units, so refilling needs no division. The state it
/// fills is a [`Credit`], kept apart so that a table of buckets stores only credits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenRate {
    rate: u128,
    /// Credit of one token.
    token: u128,
    /// Credit of a full bucket.
    full: u128,
}

/// A bucket's state under a [`TokenRate`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Credit {
    credit: u128,
    last: Option<u64>,
}

impl TokenRate {
    /// `config.burst` tokens at most, refilled at `config.rate` per second of a clock that
    /// ticks `ticks_per_second` times a second.
    pub fn new(config: RateConfig, ticks_per_second: u64) -> TokenRate {
        let token = u128::from(ticks_per_second.max(1));
        TokenRate { rate: u128::from(config.rate), token, full: token * u128::from(config.burst) }
    }

    /// A full bucket.
    pub fn full(&self) -> Credit {
        Credit { credit: self.full, last: None }
    }

    /// Adds what the clock's ticks since the last refill earned (a clock going back earns
    /// nothing).
    pub fn refill(&self, c: &mut Credit, now: u64) {
        if let Some(last) = c.last {
            let earned = u128::from(now.saturating_sub(last)) * self.rate;
            c.credit = (c.credit + earned).min(self.full);
        }
        c.last = Some(now);
    }

    /// Takes a token if there is one.
    pub fn take(&self, c: &mut Credit) -> bool {
        let ok = c.credit >= self.token;
        if ok {
            c.credit -= self.token;
        }
        ok
    }

    /// Keeps `c` within a full bucket of this rate (after a change of rate).
    pub fn clamp(&self, c: &mut Credit) {
        c.credit = c.credit.min(self.full);
    }

    /// Whether the bucket is full (refilled first): its owner has been quiet for a while.
    pub fn is_full(&self, c: &mut Credit, now: u64) -> bool {
        self.refill(c, now);
        c.credit >= self.full
    }
}

/// One token bucket: a [`TokenRate`] and its [`Credit`].
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: TokenRate,
    credit: Credit,
}

impl TokenBucket {
    /// A full bucket of `config.burst` tokens, refilled at `config.rate` per second of a clock
    /// that ticks `ticks_per_second` times a second.
    pub fn new(config: RateConfig, ticks_per_second: u64) -> TokenBucket {
        let rate = TokenRate::new(config, ticks_per_second);
        TokenBucket { rate, credit: rate.full() }
    }

    /// Adds what the clock's ticks since the last refill earned (a clock going back earns
    /// nothing).
    pub fn refill(&mut self, now: u64) {
        self.rate.refill(&mut self.credit, now);
    }

    /// Takes a token if there is one.
    pub fn take(&mut self) -> bool {
        self.rate.take(&mut self.credit)
    }
}

/// Where a reply goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toward {
    /// Back to the rejected packet's sender: out the port it came in by.
    Sender,
    /// On to its receiver (the server of a TCP connection it already holds): out the port
    /// the packet was going to.
    Receiver,
}

/// What became of one rejected packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Answered: a reply to the sender, and one to the receiver when `receiver`.
    Replied { kind: ReplyKind, receiver: bool },
    /// Never answered (see `wire::reply`): dropped alone.
    Silent(Silent),
    /// Over the rate: dropped alone.
    Limited,
}

impl Answer {
    /// Its name in `classify --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Replied { kind: ReplyKind::TcpRst, receiver: false } => "tcp-rst",
            Answer::Replied { kind: ReplyKind::TcpRst, receiver: true } => "tcp-rst-both",
            Answer::Replied { kind: ReplyKind::Icmp, .. } => "icmp-prohibited",
            Answer::Silent(Silent::Unreadable) => "silent-unreadable",
            Answer::Silent(Silent::IcmpError) => "silent-icmp-error",
            Answer::Silent(Silent::Reset) => "silent-reset",
            Answer::Silent(Silent::NotUnicast) => "silent-not-unicast",
            Answer::Silent(Silent::NonFirstFragment) => "silent-non-first-fragment",
            Answer::Limited => "limited",
        }
    }
}

/// One reply written, in [`Rejecter::replies`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The rejected packet's index in the burst.
    pub packet: usize,
    pub toward: Toward,
    pub kind: ReplyKind,
    len: usize,
}

/// Replies a burst may need: two per packet at most.
pub const SLOTS: usize = 2 * MAX_BURST;

/// One worker's rejections: its bucket and the buffers of a burst's replies, allocated once.
pub struct Rejecter {
    bucket: TokenBucket,
    buffers: Box<[[u8; MAX_REPLY_LEN]]>,
    replies: [Reply; SLOTS],
    n: usize,
    /// `answers[i]`: what became of packet `i` of the last burst, if it was rejected.
    answers: [Option<Answer>; MAX_BURST],
}

impl Rejecter {
    pub fn new(config: RejectConfig, ticks_per_second: u64) -> Rejecter {
        let empty = Reply { packet: 0, toward: Toward::Sender, kind: ReplyKind::Icmp, len: 0 };
        Rejecter {
            bucket: TokenBucket::new(config, ticks_per_second),
            buffers: vec![[0u8; MAX_REPLY_LEN]; SLOTS].into_boxed_slice(),
            replies: [empty; SLOTS],
            n: 0,
            answers: [None; MAX_BURST],
        }
    }

    /// Answers the REJECT verdicts of a burst (at most [`MAX_BURST`] packets; `verdicts[i]` is
    /// `packets[i]`'s) at clock reading `now`; the replies are then in [`Rejecter::replies`].
    /// Counts the rejected packets that were not answered (limited, silent).
    pub fn answer<P: AsRef<[u8]>>(&mut self, packets: &[P], verdicts: &[Verdict], now: u64, counters: &mut Counters) {
        self.n = 0;
        self.answers = [None; MAX_BURST];
        let mut refilled = false;
        // Packet `i`'s replies are written into buffers `2i` and `2i + 1`.
        let buffers = self.buffers.chunks_exact_mut(2);
        let slots = self.answers.iter_mut().zip(buffers);
        for (i, ((pkt, v), (answer, pair))) in packets.iter().zip(verdicts).zip(slots).enumerate() {
            if v.action != Action::Reject {
                continue;
            }
            let [sender, receiver] = pair else { continue };
            // Silence costs no token: only what is answered counts against the rate.
            let written = match write_replies(pkt.as_ref(), sender, receiver) {
                Err(why) => {
                    counters.add(Counter::RejectSilent, 1);
                    *answer = Some(Answer::Silent(why));
                    continue;
                }
                Ok(w) => w,
            };
            if !refilled {
                self.bucket.refill(now);
                refilled = true;
            }
            if !self.bucket.take() {
                counters.add(Counter::RejectLimited, 1);
                *answer = Some(Answer::Limited);
                continue;
            }
            let receiver = written.to_receiver > 0;
            *answer = Some(Answer::Replied { kind: written.kind, receiver });
            let kind = written.kind;
            if let Some(r) = self.replies.get_mut(self.n) {
                *r = Reply { packet: i, toward: Toward::Sender, kind, len: written.to_sender };
                self.n += 1;
            }
            if receiver {
                if let Some(r) = self.replies.get_mut(self.n) {
                    *r = Reply { packet: i, toward: Toward::Receiver, kind, len: written.to_receiver };
                    self.n += 1;
                }
            }
        }
    }

    /// The last burst's replies, in packet order (a packet's reply to its sender first), each
    /// with its bytes.
    pub fn replies(&self) -> impl Iterator<Item = (Reply, &[u8])> + '_ {
        self.replies.iter().take(self.n).map(|r| {
            let buffer = self.buffers.get(2 * r.packet + usize::from(r.toward == Toward::Receiver));
            (*r, buffer.and_then(|b| b.get(..r.len)).unwrap_or(&[]))
        })
    }

    /// Forgets the last burst's replies (once sent).
    pub fn clear(&mut self) {
        self.n = 0;
    }

    /// How many replies the last burst has.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// What became of packet `i` of the last burst, if it was rejected.
    pub fn answer_of(&self, i: usize) -> Option<Answer> {
        self.answers.get(i).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used)]
    use super::*;
    use crate::wire::build;
    use crate::wire::tcp_flags;

    fn verdicts(actions: &[Action]) -> Vec<Verdict> {
        actions.iter().map(|&action| Verdict::new(action, Some(0), None)).collect()
    }

    #[test]
    fn the_bucket_gives_its_burst_then_the_rate() {
        let mut b = TokenBucket::new(RejectConfig { rate: 10, burst: 3 }, 1000);
        b.refill(0);
        assert_eq!((0..5).filter(|_| b.take()).count(), 3);
        // 10 per second: one token per 100 ticks.
        b.refill(99);
        assert!(!b.take());
        b.refill(100);
        assert!(b.take() && !b.take());
        // A long quiet spell fills it to the burst, no more; a clock going back earns nothing.
        b.refill(1_000_000);
        b.refill(5);
        assert_eq!((0..10).filter(|_| b.take()).count(), 3);
        let mut none = TokenBucket::new(RejectConfig { rate: 0, burst: 0 }, 1000);
        none.refill(u64::MAX);
        assert!(!none.take());
    }

    #[test]
    fn a_burst_of_rejects_gets_exactly_the_bucket_and_the_rest_is_counted_limited() {
        let packets: Vec<Vec<u8>> = (0..10u16)
            .map(|i| build::tcp_v4([10, 0, 0, 1], [10, 0, 0, 2], 1000 + i, 443, tcp_flags::SYN, 1, &[]))
            .collect();
        let mut actions = vec![Action::Reject; 10];
        actions[0] = Action::Allow;
        actions[5] = Action::Drop;
        let mut r = Rejecter::new(RejectConfig { rate: 1, burst: 4 }, 1_000_000);
        let mut counters = Counters::default();
        r.answer(&packets, &verdicts(&actions), 0, &mut counters);
        let sent: Vec<usize> = r.replies().map(|(reply, _)| reply.packet).collect();
        assert_eq!(sent, vec![1, 2, 3, 4]);
        assert_eq!(counters.get(Counter::RejectLimited), 4);
        assert_eq!(r.answer_of(0), None);
        assert_eq!(r.answer_of(5), None);
        assert_eq!(r.answer_of(6), Some(Answer::Limited));
        assert_eq!(r.answer_of(1), Some(Answer::Replied { kind: ReplyKind::TcpRst, receiver: false }));
        let (_, bytes) = r.replies().next().unwrap();
        assert_eq!(bytes.len(), 54);
        assert_eq!(&bytes[34..36], &443u16.to_be_bytes());
        assert_eq!(&bytes[36..38], &1001u16.to_be_bytes());
        // One second later: one more.
        r.answer(&packets, &verdicts(&actions), 1_000_000, &mut counters);
        assert_eq!(r.len(), 1);
        assert_eq!(counters.get(Counter::RejectLimited), 4 + 7);
    }

    #[test]
    fn silent_rejects_take_no_token() {
        let rst = build::tcp_v4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, tcp_flags::RST, 1, &[]);
        let hello = build::FrameBuilder { tcp_ack: 77, ..build::FrameBuilder::new() }.tcp_v4(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            1,
            443,
            tcp_flags::ACK,
            5,
            &[0x16; 10],
        );
        let packets = [rst.clone(), rst, hello];
        let mut r = Rejecter::new(RejectConfig { rate: 0, burst: 1 }, 1);
        let mut counters = Counters::default();
        r.answer(&packets, &verdicts(&[Action::Reject; 3]), 0, &mut counters);
        assert_eq!(counters.get(Counter::RejectSilent), 2);
        assert_eq!(r.answer_of(0), Some(Answer::Silent(Silent::Reset)));
        let replies: Vec<(usize, Toward)> = r.replies().map(|(reply, _)| (reply.packet, reply.toward)).collect();
        assert_eq!(replies, vec![(2, Toward::Sender), (2, Toward::Receiver)]);
    }
}
