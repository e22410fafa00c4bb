//! The fragment evasions of issue 18 in one capture, for `classify` (`classify_cli.rs`) and
//! `run` (`run_dataplane.rs`): each frame with the verdict `classify --json` gives it, its
//! `"malformed"` cause if any, and whether `run` forwards it. Rule: [`drop_445`], default
//! ALLOW.
#![allow(dead_code)]

use dataplane::wire::build::{tcp_segment_v4, udp_v4};
use dataplane::wire::fragment_build::{even_pieces, ipv4_fragments, Piece};
use dataplane::wire::ip_proto;
use dataplane::wire::tcp_flags::SYN;

pub const CLIENT: [u8; 4] = [192, 168, 1, 10];
pub const SERVER: [u8; 4] = [10, 0, 0, 5];

/// DROP TCP 445 from anywhere.
pub fn drop_445() -> String {
    dataplane_tests::rule_yaml("no-smb", "  ports: [{protocol: TCP, port: 445}]\n  action: DROP\n  reason: smb\n")
}

pub struct Frame {
    pub bytes: Vec<u8>,
    pub verdict: &'static str,
    pub rule: Option<&'static str>,
    pub cause: Option<&'static str>,
}

fn syn(dport: u16, payload: usize) -> Vec<u8> {
    tcp_segment_v4(CLIENT, SERVER, 40000 + dport, dport, SYN, 1, &vec![0x55; payload])
}

fn frags(dport: u16, ident: u16, payload: usize, pieces: &[Piece]) -> Vec<Vec<u8>> {
    ipv4_fragments(CLIENT, SERVER, ip_proto::TCP, ident, &syn(dport, payload), pieces)
}

const fn piece(start: usize, end: usize, more: bool) -> Piece {
    Piece { start, end, more }
}

/// The capture, in file order; `released` lists the frames `run` sends after the others
/// of their burst (held, then released when their first fragment came), in that order.
pub fn capture() -> (Vec<Frame>, Vec<usize>) {
    let f = |bytes: &Vec<u8>, verdict, rule, cause| Frame { bytes: bytes.clone(), verdict, rule, cause };
    let mut frames = Vec::new();
    // nmap -f: the first fragment holds 8 bytes of the TCP header.
    let tiny = frags(445, 1, 0, &even_pieces(20, 8));
    frames.push(f(&tiny[0], "DROP", None, Some("tiny-fragment")));
    frames.push(f(&tiny[1], "DROP", None, Some("fragment-offset-8")));
    frames.push(f(&tiny[2], "DROP", None, Some("tiny-fragment")));
    // A fragmented SYN to 445: every fragment dropped by the rule; to 80: forwarded.
    for frame in frags(445, 2, 40, &even_pieces(60, 24)) {
        frames.push(f(&frame, "DROP", Some("no-smb"), None));
    }
    for frame in frags(80, 3, 40, &even_pieces(60, 24)) {
        frames.push(f(&frame, "ALLOW", None, None));
    }
    // Out of order: the later fragments are held until the first one.
    let mut ooo = frags(443, 4, 40, &even_pieces(60, 24));
    ooo.reverse();
    let released = vec![frames.len(), frames.len() + 1];
    for frame in &ooo {
        frames.push(f(frame, "ALLOW", None, None));
    }
    // Overlap: the second fragment rewrites the first one's last bytes.
    let overlap = frags(80, 5, 40, &[piece(0, 24, true), piece(16, 40, true), piece(40, 60, false)]);
    frames.push(f(&overlap[0], "ALLOW", None, None));
    frames.push(f(&overlap[1], "DROP", None, Some("overlap")));
    frames.push(f(&overlap[2], "DROP", None, Some("overlap")));
    // A fragment whose first fragment never comes.
    let orphan = frags(80, 6, 40, &[piece(24, 60, false)]);
    frames.push(f(&orphan[0], "DROP", None, Some("fragment-timeout")));
    frames.push(f(&udp_v4(CLIENT, SERVER, 5353, 53, b"q"), "ALLOW", None, None));
    (frames, released)
}
