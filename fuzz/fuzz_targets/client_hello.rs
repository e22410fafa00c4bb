//! Any bytes as the client's stream: `parse_stream` must not panic; a complete hello must
//! lie inside the stream or the scratch buffer, and its accessors and fingerprints must run.
#![no_main]

use dataplane::tls::{ja3, ja4, parse_stream, HelloOutcome, MAX_HELLO_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut scratch = [0u8; MAX_HELLO_LEN];
    let scratch_range = scratch.as_ptr_range();
    let outcome = parse_stream(data, &mut scratch);
    if let HelloOutcome::Complete(h) = outcome {
        let body = h.body().as_ptr_range();
        let inside = |r: std::ops::Range<*const u8>| body.start >= r.start && body.end <= r.end;
        assert!(inside(data.as_ptr_range()) || inside(scratch_range));
        let _ = (h.sni(), h.sni_bytes(), h.highest_version(), h.has_ech(), h.ec_point_formats());
        let _ = h.cipher_suites().count() + h.extensions().count() + h.alpn().count();
        let _ = h.supported_groups().count() + h.signature_algorithms().count() + h.key_share_groups().count();
        let j4 = ja4(&h);
        assert_eq!(j4.as_str().len(), 36);
        let _ = ja3(&h).to_string();
    }
});
