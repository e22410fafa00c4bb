//! Per-flow reassembly of the client's CRYPTO stream from its Initial packets, and the
//! ClientHello parsed from it.
//!
//! A hello that spans datagrams is kept in a slot of the worker's [`HelloBufferPool`], the
//! pool TCP reassembly takes its buffers from ([`SLOT_LEN`] bytes each, the same bound). A
//! worker also owns one [`QuicScratch`], allocated once: the pieces present in each slot, a
//! scratch stream buffer and the [`MAX_INITIAL_LEN`] decryption scratch. Each UDP flow keeps a small `Copy` [`QuicHello`]
//! (the version and DCID its keys come from, the largest packet number, a slot index) and
//! feeds it each client datagram with [`QuicHello::feed`].
//!
//! A datagram's CRYPTO frames are placed by offset, in any order; a datagram whose bytes
//! disagree with bytes already present is refused ([`QuicFeed::Refused`]: the pipeline drops
//! it alone), as is one carrying another connection's Initial. An Initial no server can open
//! (wrong keys, a cut header) is skipped; only what a server would read and we cannot (a
//! forbidden frame in an authenticated packet, the bounds) fails the reading. While a flow holds no
//! slot its datagram is assembled in the scratch stream: a hello complete within one
//! datagram (the common case, however its frames are split or shuffled) never takes a slot.
//! A hello left incomplete is copied into a slot, which later datagrams fill.
//!
//! Slot lifetime, as in [`super::super::reassembly`]: `feed` returns the slot on every
//! terminal outcome except [`QuicFeed::Complete`], whose hello may borrow it; after
//! evaluating the hello the caller calls [`QuicHello::release`], and it must also call
//! `release` when a flow with a pending hello closes, expires or is evicted.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::frames::CryptoFrames;
use super::packet::{PacketType, Packets, Version, MAX_CID_LEN};
use super::protection::InitialKeys;
use super::{QuicError, MAX_INITIAL_LEN};
use crate::tls::client_hello::{ClientHello, HelloOutcome, InvalidHello};
use crate::tls::reassembly::{HelloBufferPool, SlotBook, NO_SLOT};
use crate::tls::stream::parse_handshake;

/// Bytes of CRYPTO stream a flow may buffer: the ClientHello message must fit (as over TCP).
pub const SLOT_LEN: usize = crate::tls::reassembly::SLOT_LEN;
/// Disjoint pieces of CRYPTO stream tracked per flow (a gap-free prefix counts as one).
pub const MAX_PIECES: usize = 16;
/// Client datagrams a flow may send before its ClientHello is complete. While the hello is
/// awaited the flow's packets pass, so without a bound a client that never finishes it (0-RTT
/// or Initials with PING frames only, say) would keep a channel open past the TLS rules. Real
/// clients finish within their first two or three datagrams; retransmissions of a lost one
/// stay well inside eight.
pub const MAX_DATAGRAMS: u8 = 8;
/// Initial keys derived per datagram at most. A client's datagram carries one connection's
/// packets (RFC 9000 section 12.2): its keys, and after a Retry those of the new ID. Each
/// derivation costs about a microsecond, so a datagram of tiny Initials each to another ID
/// would cost a hundred; one that needs more than this is refused unread.
pub const MAX_KEY_DERIVATIONS: u8 = 3;

/// The stream bytes present: sorted, disjoint, non-adjacent `[start, end)` ranges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pieces {
    ranges: [(u16, u16); MAX_PIECES],
    n: u8,
}

impl Pieces {
    fn as_slice(&self) -> &[(u16, u16)] {
        self.ranges.get(..usize::from(self.n)).unwrap_or(&[])
    }

    /// Bytes present from offset 0 without a gap.
    pub fn contiguous(&self) -> usize {
        match self.as_slice().first() {
            Some(&(0, end)) => usize::from(end),
            _ => 0,
        }
    }

    /// One past the highest byte present.
    pub fn end(&self) -> usize {
        self.as_slice().last().map_or(0, |r| usize::from(r.1))
    }

    /// Record `[s, e)` as present, merging what it overlaps or touches.
    fn add(&mut self, s: u16, e: u16) -> Result<(), QuicError> {
        let mut out = [(0u16, 0u16); MAX_PIECES];
        let mut n = 0usize;
        let (mut ms, mut me) = (s, e);
        let mut placed = false;
        for &(a, b) in self.as_slice() {
            if b < ms {
                *out.get_mut(n).ok_or(QuicError::Fragmented)? = (a, b);
                n += 1;
            } else if a > me {
                if !placed {
                    *out.get_mut(n).ok_or(QuicError::Fragmented)? = (ms, me);
                    n += 1;
                    placed = true;
                }
                *out.get_mut(n).ok_or(QuicError::Fragmented)? = (a, b);
                n += 1;
            } else {
                ms = ms.min(a);
                me = me.max(b);
            }
        }
        if !placed {
            *out.get_mut(n).ok_or(QuicError::Fragmented)? = (ms, me);
            n += 1;
        }
        self.ranges = out;
        self.n = n as u8;
        Ok(())
    }
}

/// Place CRYPTO data at `offset` of the stream held in `buf` (whose length is the bound).
pub fn place(buf: &mut [u8], pieces: &mut Pieces, offset: u64, data: &[u8]) -> Result<(), QuicError> {
    if data.is_empty() {
        return Ok(());
    }
    let s = usize::try_from(offset).map_err(|_| QuicError::Overflow)?;
    let e = s.checked_add(data.len()).ok_or(QuicError::Overflow)?;
    if e > buf.len() || e > usize::from(u16::MAX) {
        return Err(QuicError::Overflow);
    }
    for &(a, b) in pieces.as_slice() {
        let (lo, hi) = (usize::from(a).max(s), usize::from(b).min(e));
        if lo < hi && buf.get(lo..hi) != data.get(lo - s..hi - s) {
            return Err(QuicError::Conflict);
        }
    }
    let mut next = *pieces;
    next.add(s as u16, e as u16)?;
    if let Some(dst) = buf.get_mut(s..e) {
        dst.copy_from_slice(data);
    }
    *pieces = next;
    Ok(())
}

/// The QUIC side of one worker's hello reassembly, allocated once. The stream buffers
/// themselves are the slots of the worker's [`HelloBufferPool`], shared with TCP and bounded
/// the same way; this holds what only QUIC needs: the pieces present in each slot, the stream
/// of the flow being fed while it holds no slot, the decryption scratch and the last keys.
pub struct QuicScratch {
    /// Indexed by slot number of the shared pool.
    pieces: Vec<Pieces>,
    stream: Vec<u8>,
    stream_pieces: Pieces,
    /// Decryption scratch: one Initial at a time.
    packet: Vec<u8>,
    /// The keys derived last, with the version and DCID they came from: a hello that spans
    /// datagrams sends them back to back, and the derivation is most of an Initial's cost.
    last_keys: Option<(Version, [u8; MAX_CID_LEN], u8, InitialKeys)>,
}

impl QuicScratch {
    /// The scratch for flows whose slots come from `pool`.
    pub fn for_pool(pool: &HelloBufferPool) -> QuicScratch {
        QuicScratch {
            pieces: vec![Pieces::default(); pool.capacity()],
            stream: vec![0; SLOT_LEN],
            stream_pieces: Pieces::default(),
            packet: vec![0; MAX_INITIAL_LEN],
            last_keys: None,
        }
    }

    /// The memory the scratch holds beyond its own struct (allocated at creation, never again).
    pub fn memory_bytes(&self) -> usize {
        self.pieces.capacity() * size_of::<Pieces>() + self.stream.capacity() + self.packet.capacity()
    }
}

/// What [`QuicHello::feed`] concluded.
// Returned by value and consumed at once; boxing the hello would allocate per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum QuicFeed<'p> {
    /// The hello is not complete yet (or this datagram held no Initial of a started flow).
    NeedMore,
    /// The hello is complete (it may borrow the flow's slot: call [`QuicHello::release`]
    /// after evaluating it).
    Complete(ClientHello<'p>),
    /// The flow's first datagram holds no QUIC v1/v2 long-header packet: not a QUIC
    /// connection as far as TLS policy goes.
    NotInitial,
    /// The Initials do not carry a readable ClientHello (the pipeline's `tls_fail`).
    Invalid(QuicError),
    /// No buffer was free to reassemble a hello that spans datagrams.
    PoolExhausted,
    /// The hello was already delivered by an earlier `feed`.
    Finished,
    /// The pipeline must drop this datagram (and only it); the reading goes on. UDP datagrams
    /// are independent: a server reads the ones it gets whatever we thought of the others, so
    /// one we cannot take into the hello being read must not reach it.
    Refused(Refusal),
}

/// Why a datagram is refused ([`QuicFeed::Refused`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refusal {
    /// An Initial of another connection (another Destination Connection ID, opening with keys
    /// of its own) while this flow's hello is being read. One hello is read at a time, and a
    /// client does not interleave two connections' first flights on one 5-tuple; passing it
    /// unread would hand the server a hello nobody inspected.
    OtherConnection,
    /// CRYPTO data that disagrees with bytes already read at the same offsets: the server
    /// could keep either version, so it only ever gets the one read.
    Disagrees,
    /// Initials under more connection IDs than [`MAX_KEY_DERIVATIONS`] lets one datagram open.
    ConnectionIds,
}

/// What a datagram held (in increasing order of what it tells).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    /// No version 1/2 long-header packet.
    Nothing,
    /// Version 1/2 long-header packets, no Initial that opens (0-RTT overtaking the Initial;
    /// an Initial no server can open, which is skipped as the server skips it).
    OtherQuic,
    /// At least one Initial opened.
    Initial,
    /// A datagram to refuse ([`QuicFeed::Refused`]).
    Refused(Refusal),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// No Initial seen yet.
    #[default]
    Idle,
    Collecting,
    Complete,
    NotInitial,
    Failed(QuicError),
    PoolExhausted,
}

/// Per-flow state: 36 bytes, `Copy`, kept in the flow entry. A flow whose first datagram
/// holds no v1/v2 long-header packet is settled as [`QuicFeed::NotInitial`]; a 0-RTT or
/// Handshake packet before any Initial is `NeedMore`. Every outcome but `NeedMore` is final,
/// as over TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuicHello {
    phase: Phase,
    version: Version,
    dcid_len: u8,
    /// The Destination Connection ID of the client's first Initial: the keys come from it.
    dcid: [u8; MAX_CID_LEN],
    slot: u16,
    /// One more than the largest packet number opened; 0 before any.
    next_pn: u32,
    /// Client datagrams fed so far (up to [`MAX_DATAGRAMS`]), and [`RETRY_SEEN`].
    datagrams: u8,
}

/// In `QuicHello::datagrams`: the server answered with a Retry, so one Initial to a new
/// Destination Connection ID, carrying the Retry's token, continues the connection.
const RETRY_SEEN: u8 = 0x80;

impl Default for QuicHello {
    fn default() -> Self {
        QuicHello::new()
    }
}

impl QuicHello {
    pub const fn new() -> QuicHello {
        QuicHello {
            phase: Phase::Idle,
            version: Version::V1,
            dcid_len: 0,
            dcid: [0; MAX_CID_LEN],
            slot: NO_SLOT,
            next_pn: 0,
            datagrams: 0,
        }
    }

    /// True once a terminal outcome was reached (nothing more to feed).
    pub fn is_done(&self) -> bool {
        !matches!(self.phase, Phase::Idle | Phase::Collecting)
    }

    /// True while the flow holds a pool slot.
    pub fn holds_slot(&self) -> bool {
        self.slot != NO_SLOT
    }

    /// The version of the flow's Initials, once one was seen.
    pub fn version(&self) -> Option<Version> {
        (self.phase != Phase::Idle && self.phase != Phase::NotInitial).then_some(self.version)
    }

    /// The DCID the flow's keys come from (empty before the first Initial).
    pub fn original_dcid(&self) -> &[u8] {
        self.dcid.get(..usize::from(self.dcid_len)).unwrap_or(&[])
    }

    /// Return the slot (if any) to the pool. Call after a `Complete` hello was evaluated and
    /// when the flow goes away; harmless otherwise.
    pub fn release(&mut self, pool: &mut HelloBufferPool) {
        pool.parts_mut().1.give_back(&mut self.slot);
    }

    fn fail<'p>(&mut self, book: &mut SlotBook, e: QuicError) -> QuicFeed<'p> {
        let e = match e {
            QuicError::Hello(InvalidHello::TooLarge) => QuicError::Overflow,
            e => e,
        };
        self.phase = Phase::Failed(e);
        book.give_back(&mut self.slot);
        QuicFeed::Invalid(e)
    }

    /// Feed one client->server UDP datagram (its payload); a hello that spans datagrams takes
    /// a slot of `pool`.
    pub fn feed<'p>(
        &mut self,
        pool: &'p mut HelloBufferPool,
        scratch: &'p mut QuicScratch,
        datagram: &[u8],
    ) -> QuicFeed<'p> {
        match self.phase {
            Phase::Idle | Phase::Collecting => {}
            Phase::Complete => return QuicFeed::Finished,
            Phase::NotInitial => return QuicFeed::NotInitial,
            Phase::Failed(e) => return QuicFeed::Invalid(e),
            Phase::PoolExhausted => return QuicFeed::PoolExhausted,
        }
        let (data, book) = pool.parts_mut();
        self.datagrams += 1;
        if self.datagrams & !RETRY_SEEN > MAX_DATAGRAMS {
            return self.fail(book, QuicError::Unfinished);
        }
        // A refused datagram never reaches the server, so nothing of it may stay: the bytes it
        // placed before the refusal (in the flow's slot), the ID it adopted. Else the reading
        // would hold bytes the server lacks, which the client could later send otherwise.
        let before = *self;
        let kept = scratch.pieces.get(usize::from(self.slot)).copied();
        match self.absorb(data, scratch, datagram) {
            Ok(Seen::Initial) => {}
            Ok(Seen::Refused(r)) => {
                *self = before;
                if let (Some(k), Some(p)) = (kept, scratch.pieces.get_mut(usize::from(self.slot))) {
                    *p = k;
                }
                return QuicFeed::Refused(r);
            }
            Ok(Seen::Nothing) if self.phase == Phase::Idle => {
                self.phase = Phase::NotInitial;
                return QuicFeed::NotInitial;
            }
            // Another QUIC packet type (a 0-RTT datagram overtaking the Initial, say), or no
            // Initial in a later datagram: nothing to read, nothing settled.
            Ok(Seen::OtherQuic | Seen::Nothing) => return QuicFeed::NeedMore,
            Err(e) => return self.fail(book, e),
        }
        let QuicScratch { pieces, stream, stream_pieces, .. } = scratch;
        if self.slot == NO_SLOT {
            let stream: &'p [u8] = stream;
            match parse_handshake(stream.get(..stream_pieces.contiguous()).unwrap_or(&[])) {
                HelloOutcome::NeedMore => {}
                outcome => return self.conclude(book, outcome),
            }
            if stream_pieces.n == 0 {
                return QuicFeed::NeedMore;
            }
            // Incomplete: the stream moves to a slot of its own.
            let Some(slot) = book.acquire() else {
                self.phase = Phase::PoolExhausted;
                return QuicFeed::PoolExhausted;
            };
            self.slot = slot;
            let at = usize::from(slot) * SLOT_LEN;
            let end = stream_pieces.end();
            if let (Some(dst), Some(src)) = (data.get_mut(at..at + end), stream.get(..end)) {
                dst.copy_from_slice(src);
            }
            if let Some(p) = pieces.get_mut(usize::from(slot)) {
                *p = *stream_pieces;
            }
            return QuicFeed::NeedMore;
        }
        let at = usize::from(self.slot) * SLOT_LEN;
        let have = pieces.get(usize::from(self.slot)).map_or(0, Pieces::contiguous);
        let data: &'p [u8] = data;
        self.conclude(book, parse_handshake(data.get(at..at + have).unwrap_or(&[])))
    }

    /// Feed a client datagram of a flow already decided (by this hello, or as not QUIC): it may
    /// begin another QUIC connection on the same ports, whose hello is then read as the first
    /// was. A datagram whose Initials are all sent to the DCID read last (that connection's
    /// retransmissions), or open with no keys of their own (the first connection's later
    /// Initials, sent to the server's chosen ID under its keys; forgeries no server opens),
    /// leaves the state as it was and gives `NeedMore`; one refused (another connection's
    /// Initial coalesced with them) leaves it as it was too. While a second hello is being
    /// read, it is fed as the first was. The flag says whether this datagram started a new
    /// reading.
    pub fn feed_again<'p>(
        &mut self,
        pool: &'p mut HelloBufferPool,
        scratch: &'p mut QuicScratch,
        datagram: &[u8],
    ) -> (QuicFeed<'p>, bool) {
        if !self.is_done() {
            return (self.feed(pool, scratch, datagram), false);
        }
        // Any Initial to another ID, not only the first: a server may read a coalesced packet
        // behind one of the connection read last (by its own ID, or by the first packet's when
        // that is, say, a 0-RTT packet of the other connection).
        let other_id = Packets::new(datagram)
            .map_while(Result::ok)
            .any(|p| p.packet_type() == PacketType::Initial && p.dcid() != self.original_dcid());
        if !other_id {
            return (QuicFeed::NeedMore, false);
        }
        let mut fresh = QuicHello::new();
        let fed = fresh.feed(pool, scratch, datagram);
        if let QuicFeed::Refused(_) = fed {
            // Dropped unread (two connections' Initials in one datagram, too many IDs):
            // nothing started.
            return (fed, false);
        }
        if fresh.phase == Phase::Idle {
            // Nothing opened: not a connection a server would start.
            return (QuicFeed::NeedMore, false);
        }
        *self = fresh;
        (fed, true)
    }

    /// A datagram from the server while the hello is read: a Retry lets one Initial continue
    /// the connection under a new Destination Connection ID (with the Retry's token).
    pub fn note_server_datagram(&mut self, datagram: &[u8]) {
        if self.phase == Phase::Collecting {
            if let Some(Ok(p)) = Packets::new(datagram).next() {
                if p.packet_type() == PacketType::Retry && p.version() == self.version {
                    self.datagrams |= RETRY_SEEN;
                }
            }
        }
    }

    /// Record the outcome of a parse of the flow's stream.
    fn conclude<'p>(&mut self, book: &mut SlotBook, outcome: HelloOutcome<'p>) -> QuicFeed<'p> {
        match outcome {
            HelloOutcome::NeedMore => QuicFeed::NeedMore,
            HelloOutcome::Complete(hello) => {
                self.phase = Phase::Complete;
                QuicFeed::Complete(hello)
            }
            HelloOutcome::NotTls => self.fail(book, QuicError::Hello(InvalidHello::NotClientHello)),
            HelloOutcome::Invalid(e) => self.fail(book, QuicError::Hello(e)),
        }
    }

    fn adopt_dcid(&mut self, dcid: &[u8]) {
        self.dcid = [0; MAX_CID_LEN];
        self.dcid_len = dcid.len().min(MAX_CID_LEN) as u8;
        if let Some(d) = self.dcid.get_mut(..dcid.len()) {
            d.copy_from_slice(dcid);
        }
    }

    /// Open the datagram's Initials and place their CRYPTO data in the flow's stream (its
    /// slot, or the scratch stream), saying what the datagram held.
    fn absorb(&mut self, data: &mut [u8], scratch: &mut QuicScratch, datagram: &[u8]) -> Result<Seen, QuicError> {
        let QuicScratch { pieces, stream, stream_pieces: scratch_pieces, packet, last_keys } = scratch;
        let (buf, stream_pieces): (&mut [u8], &mut Pieces) = if self.slot == NO_SLOT {
            *scratch_pieces = Pieces::default();
            (stream.as_mut_slice(), scratch_pieces)
        } else {
            let at = usize::from(self.slot) * SLOT_LEN;
            match (data.get_mut(at..at + SLOT_LEN), pieces.get_mut(usize::from(self.slot))) {
                (Some(b), Some(p)) => (b, p),
                _ => return Err(QuicError::Overflow),
            }
        };
        let mut seen = Seen::Nothing;
        let mut budget = MAX_KEY_DERIVATIONS;
        for p in Packets::new(datagram) {
            // A header no server can read ends the walk (it drops the rest as well).
            let Ok(p) = p else {
                seen = seen.max(Seen::OtherQuic);
                break;
            };
            if p.packet_type() != PacketType::Initial {
                seen = seen.max(Seen::OtherQuic);
                continue;
            }
            let opened = if self.phase == Phase::Idle {
                // The first Initial that opens makes the connection: its version and DCID.
                let Some(k) = cached_keys(last_keys, p.version(), p.dcid(), &mut budget)? else {
                    return Ok(Seen::Refused(Refusal::ConnectionIds));
                };
                match k.open(&p, None, packet) {
                    Ok(o) => {
                        self.version = p.version();
                        self.adopt_dcid(p.dcid());
                        self.phase = Phase::Collecting;
                        o
                    }
                    Err(QuicError::Decrypt) => {
                        seen = seen.max(Seen::OtherQuic);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            } else {
                // The connection's Initials open with its keys, whatever DCID they are sent to
                // (the client moves to the server's chosen ID once it answers).
                let Some(k) = cached_keys(last_keys, self.version, self.original_dcid(), &mut budget)? else {
                    return Ok(Seen::Refused(Refusal::ConnectionIds));
                };
                let largest = self.next_pn.checked_sub(1).map(u64::from);
                match k.open(&p, largest, packet) {
                    Ok(o) => o,
                    Err(QuicError::Decrypt) => {
                        let Some(own) = cached_keys(last_keys, p.version(), p.dcid(), &mut budget)? else {
                            return Ok(Seen::Refused(Refusal::ConnectionIds));
                        };
                        match own.open(&p, None, packet) {
                            // After a Retry the client's keys come from the Retry's connection
                            // ID (RFC 9001 section 5.2) and its Initials carry the Retry token:
                            // adopt the new ID and start the stream afresh.
                            Ok(o) if self.datagrams & RETRY_SEEN != 0 && !p.token().is_empty() => {
                                self.datagrams &= !RETRY_SEEN;
                                self.version = p.version();
                                self.adopt_dcid(p.dcid());
                                *stream_pieces = Pieces::default();
                                self.next_pn = 0;
                                o
                            }
                            // Another connection's Initial.
                            Ok(_) => return Ok(Seen::Refused(Refusal::OtherConnection)),
                            // No server opens it (forged, corrupt): skipped, as it skips it.
                            Err(QuicError::Decrypt) => {
                                seen = seen.max(Seen::OtherQuic);
                                continue;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    Err(e) => return Err(e),
                }
            };
            seen = Seen::Initial;
            let pn = u32::try_from(opened.packet_number).unwrap_or(u32::MAX - 1);
            self.next_pn = self.next_pn.max(pn + 1);
            for f in CryptoFrames::new(opened.payload) {
                let f = f?;
                match place(buf, stream_pieces, f.offset, f.data) {
                    Err(QuicError::Conflict) => return Ok(Seen::Refused(Refusal::Disagrees)),
                    // Past what is tracked: a hello already whole is the one the server reads.
                    Err(e @ (QuicError::Fragmented | QuicError::Overflow)) => {
                        let whole = buf.get(..stream_pieces.contiguous()).unwrap_or(&[]);
                        if matches!(parse_handshake(whole), HelloOutcome::Complete(_)) {
                            return Ok(Seen::Initial);
                        }
                        return Err(e);
                    }
                    placed => placed?,
                }
            }
        }
        Ok(seen)
    }
}

/// The keys of `version` and `dcid`, derived unless they were the last ones; `None` when a
/// derivation is needed and `budget` (derivations left for this datagram) is spent.
fn cached_keys<'k>(
    cache: &'k mut Option<(Version, [u8; MAX_CID_LEN], u8, InitialKeys)>,
    version: Version,
    dcid: &[u8],
    budget: &mut u8,
) -> Result<Option<&'k InitialKeys>, QuicError> {
    let hit = matches!(cache, Some((v, id, len, _)) if *v == version && id.get(..usize::from(*len)) == Some(dcid));
    if !hit {
        let Some(left) = budget.checked_sub(1) else { return Ok(None) };
        *budget = left;
        let keys = InitialKeys::client(version, dcid)?;
        let mut id = [0u8; MAX_CID_LEN];
        if let Some(d) = id.get_mut(..dcid.len()) {
            d.copy_from_slice(dcid);
        }
        *cache = Some((version, id, dcid.len() as u8, keys));
    }
    match cache {
        Some((_, _, _, keys)) => Ok(Some(keys)),
        None => Err(QuicError::Decrypt),
    }
}
