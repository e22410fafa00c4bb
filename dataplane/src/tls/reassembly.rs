//! Per-flow ClientHello reassembly across TCP segments.
//!
//! A worker owns one [`HelloBufferPool`]: `slots` buffers of [`SLOT_LEN`] bytes and a scratch
//! buffer, allocated once. Each flow keeps a small `Copy` [`HelloReassembly`] in its flow entry
//! and feeds it the client's payload with the segment's sequence number. The common case (the
//! whole hello in the first segment) is parsed straight from the packet and never takes a
//! buffer; otherwise the flow takes a slot, segments are placed by sequence number (in order
//! or not, retransmissions and overlaps allowed: bytes already contiguous are kept, "first
//! wins"), and the hello is parsed once the bytes before it are contiguous.
//!
//! Slot lifetime: a slot is returned to the pool by `feed` itself on every terminal outcome
//! except [`FeedResult::Complete`], whose hello borrows the slot; after evaluating it, the
//! caller calls [`HelloReassembly::release`]. The caller must also call `release` when a flow
//! with a pending hello closes, expires or is evicted.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::client_hello::{ClientHello, HelloOutcome, InvalidHello};
use super::stream::{parse_stream, parse_stream_in_place};

/// Bytes of client stream a flow may buffer: the ClientHello with its record headers must fit.
pub const SLOT_LEN: usize = 16 * 1024;
/// Out-of-order ranges remembered per flow (beyond the contiguous prefix).
pub const OOO_RANGES: usize = 3;
/// The slot number of a flow that holds none (TCP and QUIC reassembly alike).
pub(crate) const NO_SLOT: u16 = u16::MAX;

/// A buffer index in a [`HelloBufferPool`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotId(u16);

/// Pool usage counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolCounters {
    pub acquired: u64,
    pub released: u64,
    pub exhausted: u64,
}

/// The free list of a pool of `u16`-numbered slots: the TCP hello buffers here and the QUIC
/// hello buffers (`tls::quic`) both keep their slots with one.
pub(crate) struct SlotBook {
    free: Vec<u16>,
    in_use: Vec<bool>,
    pub(crate) counters: PoolCounters,
}

impl SlotBook {
    pub(crate) fn memory_bytes(&self) -> usize {
        self.free.capacity() * size_of::<u16>() + self.in_use.capacity()
    }

    /// `slots` free slots, allocated now and never again.
    pub(crate) fn new(slots: usize) -> SlotBook {
        let mut free = Vec::with_capacity(slots);
        // Popped from the end: slot 0 is handed out first.
        free.extend((0..slots as u16).rev());
        SlotBook { free, in_use: vec![false; slots], counters: PoolCounters::default() }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.in_use.len()
    }

    pub(crate) fn available(&self) -> usize {
        self.free.len()
    }

    pub(crate) fn acquire(&mut self) -> Option<u16> {
        match self.free.pop() {
            Some(i) => {
                if let Some(u) = self.in_use.get_mut(usize::from(i)) {
                    *u = true;
                }
                self.counters.acquired += 1;
                Some(i)
            }
            None => {
                self.counters.exhausted += 1;
                None
            }
        }
    }

    /// Take back the slot a flow holds in `slot`, if any, and mark it as holding none.
    pub(crate) fn give_back(&mut self, slot: &mut u16) {
        if *slot != NO_SLOT {
            self.release(*slot);
            *slot = NO_SLOT;
        }
    }

    pub(crate) fn release(&mut self, i: u16) {
        if let Some(u) = self.in_use.get_mut(usize::from(i)) {
            if *u {
                *u = false;
                // Never grows: at most `slots` indices are ever free, and the capacity is that.
                self.free.push(i);
                self.counters.released += 1;
            }
        }
    }
}

/// Preallocated reassembly buffers of one worker.
pub struct HelloBufferPool {
    data: Vec<u8>,
    scratch: Vec<u8>,
    book: SlotBook,
}

impl HelloBufferPool {
    /// Most buffers a pool holds (slot numbers are `u16`, one value marks "none").
    pub const MAX_SLOTS: usize = NO_SLOT as usize;

    /// A pool of `slots` buffers (at most [`Self::MAX_SLOTS`]), allocated now and never again.
    pub fn new(slots: usize) -> HelloBufferPool {
        let slots = slots.min(Self::MAX_SLOTS);
        HelloBufferPool { data: vec![0; slots * SLOT_LEN], scratch: vec![0; SLOT_LEN], book: SlotBook::new(slots) }
    }

    pub fn capacity(&self) -> usize {
        self.book.capacity()
    }

    /// The memory the pool holds (allocated at creation, never again).
    pub fn memory_bytes(&self) -> usize {
        self.data.capacity() + self.scratch.capacity() + self.book.memory_bytes()
    }

    /// Slots currently free.
    pub fn available(&self) -> usize {
        self.book.available()
    }

    pub fn counters(&self) -> PoolCounters {
        self.book.counters
    }

    /// Take a free slot.
    pub fn acquire(&mut self) -> Option<SlotId> {
        self.book.acquire().map(SlotId)
    }

    /// Return a slot (releasing a free slot again is ignored).
    pub fn release(&mut self, id: SlotId) {
        self.book.release(id.0)
    }

    /// Slot `i`'s bytes and the free list, for the QUIC reassembly (`tls::quic::assembly`),
    /// which takes its buffers from the same pool.
    pub(crate) fn parts_mut(&mut self) -> (&mut [u8], &mut SlotBook) {
        (&mut self.data, &mut self.book)
    }

    /// The bytes of a slot.
    pub fn slot(&self, id: SlotId) -> &[u8] {
        let at = usize::from(id.0) * SLOT_LEN;
        self.data.get(at..at + SLOT_LEN).unwrap_or(&[])
    }
}

/// What [`HelloReassembly::feed`] concluded.
// Returned by value and consumed at once; boxing the hello would allocate per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum FeedResult<'p> {
    /// The hello is not complete yet.
    NeedMore,
    /// The hello is complete (it borrows the payload or the flow's slot: call
    /// [`HelloReassembly::release`] after evaluating it).
    Complete(ClientHello<'p>),
    /// The client stream does not start with a TLS handshake record.
    NotTls,
    /// A handshake record that is not a well-formed ClientHello.
    Invalid(InvalidHello),
    /// The hello (with its record headers) does not fit in [`SLOT_LEN`] bytes.
    Overflow,
    /// No buffer was free to reassemble this flow's hello.
    PoolExhausted,
    /// The hello was already delivered by an earlier `feed`.
    Finished,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// No base sequence number yet.
    #[default]
    Unset,
    Collecting,
    Complete,
    NotTls,
    Invalid(InvalidHello),
    Overflow,
    PoolExhausted,
}

/// Per-flow reassembly state: 24 bytes, `Copy`, kept in the flow entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelloReassembly {
    base_seq: u32,
    slot: u16,
    /// Bytes from `base_seq` that are present without a gap.
    contiguous: u16,
    /// Out-of-order ranges `[start, end)` of offsets from `base_seq`; `end == 0` marks a free entry.
    ooo: [(u16, u16); OOO_RANGES],
    phase: Phase,
}

impl Default for HelloReassembly {
    fn default() -> Self {
        HelloReassembly::new()
    }
}

impl HelloReassembly {
    pub const fn new() -> HelloReassembly {
        HelloReassembly { base_seq: 0, slot: NO_SLOT, contiguous: 0, ooo: [(0, 0); OOO_RANGES], phase: Phase::Unset }
    }

    /// The client's SYN was seen: its first payload byte has sequence number `seq + 1`.
    /// Without it, the first payload segment fed sets the base (so a flow whose first data
    /// segment is lost or reordered before the SYN-less pickup is misread as not TLS).
    pub fn on_syn(&mut self, syn_seq: u32) {
        if self.phase == Phase::Unset {
            self.base_seq = syn_seq.wrapping_add(1);
            self.phase = Phase::Collecting;
        }
    }

    /// True once a terminal outcome was reached (nothing more to feed).
    pub fn is_done(&self) -> bool {
        !matches!(self.phase, Phase::Unset | Phase::Collecting)
    }

    /// True while the flow holds a pool slot.
    pub fn holds_slot(&self) -> bool {
        self.slot != NO_SLOT
    }

    /// Sequence number of the client's first payload byte, once known.
    pub fn base_seq(&self) -> Option<u32> {
        (self.phase != Phase::Unset).then_some(self.base_seq)
    }

    /// Return the slot (if any) to the pool. Call after a `Complete` hello was evaluated and
    /// when the flow goes away; harmless otherwise.
    pub fn release(&mut self, pool: &mut HelloBufferPool) {
        pool.book.give_back(&mut self.slot);
    }

    /// The contiguous client bytes buffered so far (empty while the hello was never buffered).
    pub fn assembled<'p>(&self, pool: &'p HelloBufferPool) -> &'p [u8] {
        if self.slot == NO_SLOT {
            return &[];
        }
        pool.slot(SlotId(self.slot)).get(..usize::from(self.contiguous)).unwrap_or(&[])
    }

    /// Feed one client->server segment's payload, `seq` being its TCP sequence number.
    pub fn feed<'p>(&mut self, pool: &'p mut HelloBufferPool, seq: u32, payload: &'p [u8]) -> FeedResult<'p> {
        match self.phase {
            Phase::Unset | Phase::Collecting => {}
            Phase::Complete => return FeedResult::Finished,
            Phase::NotTls => return FeedResult::NotTls,
            Phase::Invalid(e) => return FeedResult::Invalid(e),
            Phase::Overflow => return FeedResult::Overflow,
            Phase::PoolExhausted => return FeedResult::PoolExhausted,
        }
        if payload.is_empty() {
            return FeedResult::NeedMore;
        }
        if self.phase == Phase::Unset {
            self.base_seq = seq;
            self.phase = Phase::Collecting;
        }
        // Offset from the base; a segment starting before it (a retransmission reaching back
        // over the SYN) is trimmed.
        let mut payload = payload;
        let delta = seq.wrapping_sub(self.base_seq) as i32;
        let start = if delta < 0 {
            let skip = delta.unsigned_abs() as usize;
            match payload.get(skip..) {
                Some(rest) if !rest.is_empty() => payload = rest,
                _ => return FeedResult::NeedMore,
            }
            0usize
        } else {
            delta as usize
        };

        // Fast path: the first segment, parsed in place without taking a buffer.
        if start == 0 && self.slot == NO_SLOT && self.contiguous == 0 {
            if let Some(outcome) = parse_stream_in_place(payload, SLOT_LEN) {
                match outcome {
                    HelloOutcome::NeedMore => {}
                    HelloOutcome::Complete(hello) => {
                        self.phase = Phase::Complete;
                        return FeedResult::Complete(hello);
                    }
                    other => return self.finish(pool, other),
                }
            }
        }

        if start >= SLOT_LEN {
            // Beyond the bound: if the hello needed these bytes, it overflows once the
            // buffer is full and contiguous.
            return FeedResult::NeedMore;
        }
        let end = (start + payload.len()).min(SLOT_LEN);
        if self.slot == NO_SLOT {
            match pool.book.acquire() {
                Some(slot) => self.slot = slot,
                None => {
                    self.phase = Phase::PoolExhausted;
                    return FeedResult::PoolExhausted;
                }
            }
        }
        let HelloBufferPool { data, scratch, book } = pool;
        let slot_at = usize::from(self.slot) * SLOT_LEN;
        let contiguous = usize::from(self.contiguous);
        // First wins: bytes already in the contiguous prefix stay as they are.
        let copy_from = start.max(contiguous);
        if copy_from < end {
            if let (Some(dst), Some(src)) =
                (data.get_mut(slot_at + copy_from..slot_at + end), payload.get(copy_from - start..end - start))
            {
                dst.copy_from_slice(src);
            }
        }
        if !self.add_range(start as u16, end as u16) {
            return FeedResult::NeedMore;
        }
        let stream = data.get(slot_at..slot_at + usize::from(self.contiguous)).unwrap_or(&[]);
        match parse_stream(stream, scratch) {
            HelloOutcome::Complete(hello) => {
                self.phase = Phase::Complete;
                FeedResult::Complete(hello)
            }
            HelloOutcome::NeedMore if usize::from(self.contiguous) >= SLOT_LEN => {
                self.phase = Phase::Overflow;
                book.give_back(&mut self.slot);
                FeedResult::Overflow
            }
            HelloOutcome::NeedMore => FeedResult::NeedMore,
            HelloOutcome::NotTls => {
                self.phase = Phase::NotTls;
                book.give_back(&mut self.slot);
                FeedResult::NotTls
            }
            HelloOutcome::Invalid(InvalidHello::TooLarge) => {
                self.phase = Phase::Overflow;
                book.give_back(&mut self.slot);
                FeedResult::Overflow
            }
            HelloOutcome::Invalid(e) => {
                self.phase = Phase::Invalid(e);
                book.give_back(&mut self.slot);
                FeedResult::Invalid(e)
            }
        }
    }

    /// A terminal outcome other than `Complete`: record it and give the slot back.
    fn finish<'p>(&mut self, pool: &mut HelloBufferPool, outcome: HelloOutcome<'_>) -> FeedResult<'p> {
        let (phase, result) = match outcome {
            HelloOutcome::NotTls => (Phase::NotTls, FeedResult::NotTls),
            HelloOutcome::Invalid(InvalidHello::TooLarge) => (Phase::Overflow, FeedResult::Overflow),
            HelloOutcome::Invalid(e) => (Phase::Invalid(e), FeedResult::Invalid(e)),
            HelloOutcome::NeedMore | HelloOutcome::Complete(_) => return FeedResult::NeedMore,
        };
        self.phase = phase;
        self.release(pool);
        result
    }

    /// Record `[start, end)` as present. Returns true when the contiguous prefix grew.
    fn add_range(&mut self, start: u16, end: u16) -> bool {
        if start >= end {
            return false;
        }
        if start <= self.contiguous {
            if end <= self.contiguous {
                return false;
            }
            self.contiguous = end;
            // Absorb the out-of-order ranges the prefix now reaches.
            let mut grew = true;
            while grew {
                grew = false;
                for r in self.ooo.iter_mut() {
                    if r.1 != 0 && r.0 <= self.contiguous {
                        self.contiguous = self.contiguous.max(r.1);
                        *r = (0, 0);
                        grew = true;
                    }
                }
            }
            return true;
        }
        // Merge with the ranges it overlaps or touches, then store it.
        let (mut s, mut e) = (start, end);
        for r in self.ooo.iter_mut() {
            if r.1 != 0 && r.0 <= e && s <= r.1 {
                s = s.min(r.0);
                e = e.max(r.1);
                *r = (0, 0);
            }
        }
        if let Some(free) = self.ooo.iter_mut().find(|r| r.1 == 0) {
            *free = (s, e);
        }
        // No free entry: the range is forgotten; a retransmission brings it back.
        false
    }
}
