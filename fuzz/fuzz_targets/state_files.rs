//! Any bytes as the control plane's state directory (the snapshot, then a NUL, then the
//! journal): reading it back never panics, and a state that reads back can be written as a
//! snapshot that reads back the same (generation, digest, canonical rules).
#![no_main]

use dataplane::control::{canonical, state};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (snapshot, journal) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(snapshot) = std::str::from_utf8(snapshot) else { return };
    let Ok(saved) = state::restore(snapshot, journal) else { return };
    let json = canonical::to_json(&saved.rules);
    let again = state::restore(&state::snapshot_text(saved.generation, &saved.digest, &json), b"").unwrap();
    assert_eq!((again.generation, &again.digest), (saved.generation, &saved.digest));
    assert_eq!(canonical::to_json(&again.rules), json);
    assert_eq!(saved.files.journal + saved.ignored, journal.len() as u64);
});
