//! The per-worker flow table: fixed capacity, preallocated, set-associative buckets.
//!
//! Both directions of a connection share one entry (the key is the 5-tuple in canonical
//! order). Entries expire lazily by idle time; when a bucket is full the stalest entry is
//! evicted and counted, so forwarding never stops for lack of room.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::policy::compile::Decision;
use crate::policy::Action;
use crate::tls::HelloReassembly;
use crate::wire::{tcp_flags, IpPair, PacketSummary};

/// Entries per bucket: one probe reads one bucket's signatures (one cache line).
pub const WAYS: usize = 8;

/// The connection's 5-tuple with the lower (address, port) end first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    lo_addr: u128,
    hi_addr: u128,
    lo_port: u16,
    hi_port: u16,
    protocol: u8,
    v6: bool,
}

impl FlowKey {
    /// The key of a packet, and whether the packet travels from the `lo` end to the `hi` end.
    pub fn of(p: &PacketSummary) -> (FlowKey, bool) {
        let (src, dst, v6) = match p.addrs {
            IpPair::V4 { src, dst } => (u128::from(src), u128::from(dst), false),
            IpPair::V6 { src, dst } => (src, dst, true),
        };
        let forward = (src, p.src_port) <= (dst, p.dst_port);
        let (lo, hi) =
            if forward { ((src, p.src_port), (dst, p.dst_port)) } else { ((dst, p.dst_port), (src, p.src_port)) };
        let key = FlowKey { lo_addr: lo.0, hi_addr: hi.0, lo_port: lo.1, hi_port: hi.1, protocol: p.protocol, v6 };
        (key, forward)
    }

    /// A symmetric hash (both directions give the same value): the key is canonical.
    pub fn hash(&self) -> u32 {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let ports = (u64::from(self.lo_port) << 24) | (u64::from(self.hi_port) << 8) | u64::from(self.protocol);
        let mut h: u64 = 0x243f_6a88_85a3_08d3;
        for w in
            [self.lo_addr as u64, (self.lo_addr >> 64) as u64, self.hi_addr as u64, (self.hi_addr >> 64) as u64, ports]
        {
            h = (h ^ w).wrapping_mul(K);
            h ^= h >> 29;
        }
        // murmur3's finaliser: every input bit reaches every output bit.
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        (h >> 32) as u32
    }
}

/// Minimal TCP state: enough to pick the idle timeout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TcpState {
    /// Seen from one side only (or a UDP flow).
    #[default]
    Opening,
    /// Packets seen in both directions.
    Established,
    /// FIN or RST seen.
    Closing,
}

/// One connection.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowEntry {
    key: FlowKey,
    pub last_seen_ms: u64,
    /// The decision, valid for `generation` of the policy.
    pub action: Action,
    pub rule: u32,
    pub generation: u64,
    /// Waiting for the ClientHello: packets pass, client payload feeds `hello`.
    pub pending: bool,
    /// ClientHello reassembly state (holds a pool buffer while collecting).
    pub hello: HelloReassembly,
    /// True when the initiator is the key's `lo` end.
    pub initiator_is_lo: bool,
    pub state: TcpState,
    seen_lo_to_hi: bool,
    seen_hi_to_lo: bool,
}

impl FlowEntry {
    pub fn decision(&self) -> Decision {
        if self.pending {
            return Decision::pending();
        }
        Decision::new(self.action, (self.rule != u32::MAX).then_some(self.rule))
    }

    pub fn set_decision(&mut self, d: Decision, generation: u64) {
        self.action = d.action;
        self.rule = d.rule().unwrap_or(u32::MAX);
        self.pending = d.pending;
        self.generation = generation;
    }

    /// Update state for a packet of this flow travelling lo->hi when `forward`.
    pub fn observe(&mut self, forward: bool, flags: u8, protocol: u8, now_ms: u64) {
        self.last_seen_ms = now_ms;
        if forward {
            self.seen_lo_to_hi = true;
        } else {
            self.seen_hi_to_lo = true;
        }
        if protocol == crate::wire::ip_proto::TCP && flags & (tcp_flags::FIN | tcp_flags::RST) != 0 {
            self.state = TcpState::Closing;
        } else if self.state == TcpState::Opening && self.seen_lo_to_hi && self.seen_hi_to_lo {
            self.state = TcpState::Established;
        }
    }
}

/// Idle timeouts, in milliseconds. Defaults follow VPP's session timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTimeouts {
    pub tcp_established_ms: u64,
    pub tcp_transitory_ms: u64,
    pub udp_ms: u64,
}

impl Default for FlowTimeouts {
    fn default() -> Self {
        FlowTimeouts { tcp_established_ms: 7_440_000, tcp_transitory_ms: 240_000, udp_ms: 300_000 }
    }
}

/// Flow table counters, written only by the owning worker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCounters {
    pub created: u64,
    pub expired: u64,
    pub evicted: u64,
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    /// 0 marks a free way; otherwise the entry's hash with the low bit forced to 1.
    sig: [u32; WAYS],
    entries: [FlowEntry; WAYS],
}

/// A flow table of fixed capacity.
pub struct FlowTable {
    buckets: Vec<Bucket>,
    mask: usize,
    timeouts: FlowTimeouts,
    pub counters: FlowCounters,
    live: usize,
    /// Reassembly states of entries dropped (expired, evicted) while holding a hello buffer;
    /// the owner returns their buffers with [`FlowTable::drain_displaced`]. Preallocated.
    displaced: Vec<HelloReassembly>,
}

/// Room for the buffers displaced between two drains (the pipeline drains once per burst).
const DISPLACED_CAPACITY: usize = 256;

/// Where an entry lives: bucket and way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot(u32);

impl FlowTable {
    /// Room for at least `capacity` flows (rounded up to a power-of-two number of buckets).
    pub fn new(capacity: usize, timeouts: FlowTimeouts) -> FlowTable {
        let buckets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        FlowTable {
            buckets: vec![Bucket::default(); buckets],
            mask: buckets - 1,
            timeouts,
            counters: FlowCounters::default(),
            live: 0,
            displaced: Vec::with_capacity(DISPLACED_CAPACITY),
        }
    }

    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    /// Flows currently held (expired ones are counted until they are found or replaced).
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Hand each displaced reassembly state to `release` (which returns its buffer).
    pub fn drain_displaced(&mut self, mut release: impl FnMut(&mut HelloReassembly)) {
        for h in self.displaced.iter_mut() {
            release(h);
        }
        self.displaced.clear();
    }

    /// Remember a dropped entry's hello buffer; never grows past the preallocated room.
    fn displace(&mut self, e: &FlowEntry) {
        if e.hello.holds_slot() && self.displaced.len() < self.displaced.capacity() {
            self.displaced.push(e.hello);
        }
    }

    fn signature(hash: u32) -> u32 {
        hash | 1
    }

    fn bucket_index(&self, hash: u32) -> usize {
        // The hash is fully mixed: its low bits pick the bucket; the signature keeps all of them.
        hash as usize & self.mask
    }

    fn expired(&self, e: &FlowEntry, now_ms: u64) -> bool {
        let timeout = match (e.key.protocol, e.state) {
            (crate::wire::ip_proto::TCP, TcpState::Established) => self.timeouts.tcp_established_ms,
            (crate::wire::ip_proto::TCP, _) => self.timeouts.tcp_transitory_ms,
            _ => self.timeouts.udp_ms,
        };
        now_ms.saturating_sub(e.last_seen_ms) > timeout
    }

    /// Look up a burst: `out[i]` is the slot of `keys[i]` if it is present and live.
    /// All buckets are read before any key is compared, so their cache misses overlap.
    pub fn lookup_burst(&mut self, keys: &[(FlowKey, u32)], now_ms: u64, out: &mut [Option<Slot>]) {
        let mut first_sig = [0u32; 64];
        for (chunk_keys, chunk_out) in keys.chunks(64).zip(out.chunks_mut(64)) {
            for ((_, hash), s) in chunk_keys.iter().zip(first_sig.iter_mut()) {
                let b = self.bucket_index(*hash);
                *s = self.buckets.get(b).map_or(0, |b| b.sig[0]);
            }
            std::hint::black_box(&first_sig);
            for ((key, hash), o) in chunk_keys.iter().zip(chunk_out.iter_mut()) {
                *o = self.lookup(key, *hash, now_ms);
            }
        }
    }

    /// Find a live entry; an expired one found on the way is freed.
    pub fn lookup(&mut self, key: &FlowKey, hash: u32, now_ms: u64) -> Option<Slot> {
        let b = self.bucket_index(hash);
        let sig = Self::signature(hash);
        let way = {
            let bucket = self.buckets.get(b)?;
            (0..WAYS)
                .find(|&w| bucket.sig.get(w) == Some(&sig) && bucket.entries.get(w).is_some_and(|e| e.key == *key))?
        };
        let expired = self.buckets.get(b).and_then(|bk| bk.entries.get(way)).is_some_and(|e| self.expired(e, now_ms));
        if expired {
            if let Some(old) = self.buckets.get(b).and_then(|bk| bk.entries.get(way)).copied() {
                self.displace(&old);
            }
            if let Some(s) = self.buckets.get_mut(b).and_then(|bk| bk.sig.get_mut(way)) {
                *s = 0;
            }
            self.live -= 1;
            self.counters.expired += 1;
            return None;
        }
        Some(Slot((b * WAYS + way) as u32))
    }

    /// Insert a new flow (the caller has checked it is absent). Takes a free way, else an
    /// expired one, else evicts the stalest entry of the bucket.
    pub fn insert(&mut self, key: FlowKey, hash: u32, initiator_is_lo: bool, now_ms: u64) -> Slot {
        let b = self.bucket_index(hash);
        let mut victim = 0;
        let mut reuse_expired = false;
        if let Some(bucket) = self.buckets.get(b) {
            if let Some(free) = bucket.sig.iter().position(|&s| s == 0) {
                victim = free;
                self.live += 1;
            } else if let Some(old) =
                (0..WAYS).find(|&w| bucket.entries.get(w).is_some_and(|e| self.expired(e, now_ms)))
            {
                victim = old;
                reuse_expired = true;
            } else {
                // Stalest first, but dropped connections last: a dropped connection pushed out
                // would come back mid-stream, where its client bytes no longer look like TLS.
                victim = (0..WAYS)
                    .min_by_key(|&w| {
                        bucket.entries.get(w).map_or((false, 0), |e| (e.action == Action::Drop, e.last_seen_ms))
                    })
                    .unwrap_or(0);
                self.counters.evicted += 1;
            }
        }
        if reuse_expired {
            self.counters.expired += 1;
        }
        if let Some(old) = self.buckets.get(b).and_then(|bk| bk.entries.get(victim)).copied() {
            if self.buckets.get(b).and_then(|bk| bk.sig.get(victim)).is_some_and(|&s| s != 0) {
                self.displace(&old);
            }
        }
        self.counters.created += 1;
        if let Some(bucket) = self.buckets.get_mut(b) {
            if let (Some(s), Some(e)) = (bucket.sig.get_mut(victim), bucket.entries.get_mut(victim)) {
                *s = Self::signature(hash);
                *e = FlowEntry { key, last_seen_ms: now_ms, initiator_is_lo, ..FlowEntry::default() };
            }
        }
        Slot((b * WAYS + victim) as u32)
    }

    /// Whether `slot` still holds the flow `key` (an insertion may have reused it).
    pub fn holds(&self, slot: Slot, key: &FlowKey) -> bool {
        let (b, w) = (slot.0 as usize / WAYS, slot.0 as usize % WAYS);
        self.buckets.get(b).is_some_and(|bk| {
            bk.sig.get(w).is_some_and(|&s| s != 0) && bk.entries.get(w).is_some_and(|e| e.key == *key)
        })
    }

    pub fn entry_mut(&mut self, slot: Slot) -> Option<&mut FlowEntry> {
        let (b, w) = (slot.0 as usize / WAYS, slot.0 as usize % WAYS);
        self.buckets.get_mut(b).and_then(|bk| bk.entries.get_mut(w))
    }
}
