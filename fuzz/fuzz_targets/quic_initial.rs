//! An arbitrary sequence of client datagrams into one QUIC flow's hello reassembly: no panic,
//! slots always come back. Each datagram is either raw bytes (long-header parsing, coalescing,
//! header protection and AEAD failures) or an arbitrary frame payload sealed into a valid
//! Initial with the flow's keys (frames, CRYPTO placement, overlaps, the hello parser), so the
//! fuzzer gets past the AEAD tag.
#![no_main]

use dataplane::tls::quic::build::{initial_packet, InitialSpec};
use dataplane::tls::quic::{QuicFeed, QuicHello, QuicScratch, Version};
use dataplane::tls::HelloBufferPool;
use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;

static POOL: Mutex<Option<(HelloBufferPool, QuicScratch)>> = Mutex::new(None);
const DCID: &[u8] = b"\x83\x94\xc8\xf0\x3e\x51\x57\x08";

fuzz_target!(|data: &[u8]| {
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let (pool, scratch) = guard.get_or_insert_with(|| {
        let pool = HelloBufferPool::new(2);
        let scratch = QuicScratch::for_pool(&pool);
        (pool, scratch)
    });
    let mut flow = QuicHello::new();
    let mut rest = data;
    // Records: kind (1 byte: bit 0 sealed or raw, bit 1 version 2, bits 2..4 packet number
    // length - 1, the rest the packet number), length (2 bytes), bytes.
    while let [kind, l0, l1, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*l0, *l1])).min(tail.len());
        let (bytes, after) = tail.split_at(len);
        rest = after;
        let datagram = if kind & 1 == 1 {
            let version = if kind & 2 == 0 { Version::V1 } else { Version::V2 };
            let mut spec = InitialSpec::new(version, DCID);
            spec.pn_len = usize::from(kind >> 2 & 3) + 1;
            spec.packet_number = u64::from(kind >> 4);
            initial_packet(&spec, bytes, 0)
        } else {
            bytes.to_vec()
        };
        // Once the hello is settled, later datagrams go where a decided flow's long-header
        // datagrams go: a possible second connection on the same ports.
        let fed = if flow.is_done() {
            flow.feed_again(pool, scratch, &datagram).0
        } else {
            flow.feed(pool, scratch, &datagram)
        };
        match fed {
            QuicFeed::Complete(h) => {
                let _ = (h.sni(), h.cipher_suites().count(), h.alpn().count());
                flow.release(pool);
            }
            QuicFeed::NeedMore | QuicFeed::Finished | QuicFeed::Refused(_) => {}
            QuicFeed::NotInitial | QuicFeed::Invalid(_) | QuicFeed::PoolExhausted => {
                assert!(!flow.holds_slot());
            }
        }
    }
    flow.release(pool);
    assert_eq!(pool.available(), pool.capacity());
});
