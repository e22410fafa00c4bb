//! What reading a QUIC client Initial costs, per step, on one core: the Initial keys from the
//! DCID (HKDF-SHA256 x5 + AES key schedules), opening one 1200-byte Initial with ready keys
//! (header protection + AES-128-GCM), and a whole `QuicHello::feed` of a one-datagram hello
//! (keys + open + frames + ClientHello parse); the TCP parse of the same hello for scale.
//!
//!   cargo run --release -p dataplane --no-default-features --example quic_initial_cost
use dataplane::tls::quic::build::{client_hello_message, crypto_frame, initial_packet, InitialSpec};
use dataplane::tls::quic::protection::ClientSecrets;
use dataplane::tls::quic::{InitialKeys, LongPacket, QuicFeed, QuicHello, QuicScratch, Version, MAX_INITIAL_LEN};
use dataplane::tls::{parse_handshake, HelloOutcome};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::hint::black_box;

#[path = "common/timing.rs"]
mod timing;
use timing::time;

fn main() {
    let dcid = b"\x83\x94\xc8\xf0\x3e\x51\x57\x08";
    let mut rng = SmallRng::seed_from_u64(1);
    let hello = client_hello_message("www.example.com", false, &mut rng);
    let datagram = initial_packet(&InitialSpec::new(Version::V1, dcid), &crypto_frame(0, &hello), 1162);
    println!("hello {} bytes, datagram {} bytes", hello.len(), datagram.len());
    let iters = 20_000;

    time("HKDF: client secrets (5 HKDF ops)", iters, || {
        black_box(ClientSecrets::derive(Version::V1, black_box(dcid)).ok());
    });
    time("InitialKeys::client (HKDF + AES key schedules)", iters, || {
        black_box(InitialKeys::client(Version::V1, black_box(dcid)).ok());
    });
    let keys = InitialKeys::client(Version::V1, dcid).ok();
    let packet = match LongPacket::parse(&datagram) {
        dataplane::tls::quic::packet::Parse::Packet(p) => p,
        _ => return,
    };
    let mut scratch = vec![0u8; MAX_INITIAL_LEN];
    time("open 1200-byte Initial (HP + AES-128-GCM)", iters, || {
        if let Some(k) = &keys {
            black_box(k.open(black_box(&packet), None, &mut scratch).map(|o| o.packet_number).ok());
        }
    });
    // Two flows alternating: every datagram derives its keys.
    let other = initial_packet(
        &InitialSpec::new(Version::V1, b"\x01\x02\x03\x04\x05\x06\x07\x08"),
        &crypto_frame(0, &hello),
        1162,
    );
    let mut pool = dataplane::tls::HelloBufferPool::new(16);
    let mut scratch = QuicScratch::for_pool(&pool);
    let mut feed = |d: &[u8]| {
        let mut flow = QuicHello::new();
        match flow.feed(&mut pool, &mut scratch, black_box(d)) {
            QuicFeed::Complete(h) => {
                black_box(h.sni());
            }
            other => panic!("{other:?}"),
        }
        flow.release(&mut pool);
    };
    let mut flip = false;
    time("QuicHello::feed, one-datagram hello (cold keys)", iters, || {
        flip = !flip;
        feed(if flip { &datagram } else { &other });
    });
    time("QuicHello::feed, same DCID again (cached keys)", iters, || feed(&datagram));
    time("parse_handshake of the same hello (TCP's parse)", iters, || {
        if let HelloOutcome::Complete(h) = parse_handshake(black_box(&hello)) {
            black_box(h.sni());
        }
    });
}
