//! Any bytes as the control plane's state directory (the snapshot, then a NUL, then the
//! journal): reading it back never panics, and a state that reads back is a valid set whose
//! digest is the one recorded.
#![no_main]

use dataplane::control::{canonical, state};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (snapshot, journal) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(snapshot) = std::str::from_utf8(snapshot) else { return };
    if let Ok(saved) = state::restore(snapshot, journal) {
        assert_eq!(saved.digest, canonical::digest(&saved.rules));
        assert!(saved.files.journal as usize <= journal.len());
    }
});
