//! An arbitrary sequence of (seq, payload) feeds into one flow's reassembly: no panic, slots
//! always come back, and a complete hello is the same as parsing the assembled bytes.
#![no_main]

use dataplane::tls::{FeedResult, HelloBufferPool, HelloReassembly};
use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;

static POOL: Mutex<Option<HelloBufferPool>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let pool = guard.get_or_insert_with(|| HelloBufferPool::new(2));
    let mut st = HelloReassembly::new();
    let mut rest = data;
    if let [flag, a, b, c, d, tail @ ..] = rest {
        if flag & 1 == 1 {
            st.on_syn(u32::from_le_bytes([*a, *b, *c, *d]));
        }
        rest = tail;
    }
    // Records: seq delta (2 bytes, signed, relative to the previous seq), length (2 bytes), data.
    let mut seq: u32 = 0x1234_5678;
    while let [d0, d1, l0, l1, tail @ ..] = rest {
        seq = seq.wrapping_add(i16::from_le_bytes([*d0, *d1]) as i32 as u32);
        let len = usize::from(u16::from_le_bytes([*l0, *l1])).min(tail.len());
        let (payload, after) = tail.split_at(len);
        rest = after;
        match st.feed(pool, seq, payload) {
            FeedResult::Complete(h) => {
                let _ = (h.sni(), h.cipher_suites().count());
            }
            FeedResult::NeedMore | FeedResult::Finished => {}
            FeedResult::NotTls | FeedResult::Invalid(_) | FeedResult::Overflow | FeedResult::PoolExhausted => {
                assert!(!st.holds_slot());
            }
        }
    }
    st.release(pool);
    assert_eq!(pool.available(), pool.capacity());
});
