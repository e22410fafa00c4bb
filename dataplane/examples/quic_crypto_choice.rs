//! Why `ring` opens QUIC Initials: the three primitives an Initial needs, timed with `ring`
//! (what `tls::quic` uses) and with RustCrypto's `hkdf`/`sha2`, `aes` and `aes-gcm`, on the same
//! inputs in the same run. Each pair is checked to give the same bytes first.
//!
//!   cargo run --release -p dataplane --no-default-features --example quic_crypto_choice
use aes::cipher::{BlockEncrypt, KeyInit};
use aes_gcm::aead::AeadInPlace;
use dataplane::tls::quic::protection::ClientSecrets;
use dataplane::tls::quic::Version;
use ring::aead::quic::{HeaderProtectionKey, AES_128};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use std::hint::black_box;

#[path = "common/timing.rs"]
mod timing;
use timing::time;

const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f,
    0x0a,
];

/// HKDF-Expand-Label with an empty context, with RustCrypto.
fn expand_label(prk: &hkdf::Hkdf<sha2::Sha256>, label: &[u8], out: &mut [u8]) {
    let mut info = Vec::with_capacity(32);
    info.extend((out.len() as u16).to_be_bytes());
    info.push((6 + label.len()) as u8);
    info.extend(b"tls13 ");
    info.extend(label);
    info.push(0);
    prk.expand(&info, out).expect("HKDF output length");
}

/// The client's Initial secret, key, IV and header protection key, with RustCrypto.
fn rustcrypto_secrets(dcid: &[u8]) -> ([u8; 32], [u8; 16], [u8; 12], [u8; 16]) {
    let (_, initial) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(&SALT_V1), dcid);
    let mut secret = [0u8; 32];
    expand_label(&initial, b"client in", &mut secret);
    let client = hkdf::Hkdf::<sha2::Sha256>::from_prk(&secret).expect("PRK length");
    let (mut key, mut iv, mut hp) = ([0u8; 16], [0u8; 12], [0u8; 16]);
    expand_label(&client, b"quic key", &mut key);
    expand_label(&client, b"quic iv", &mut iv);
    expand_label(&client, b"quic hp", &mut hp);
    (secret, key, iv, hp)
}

fn main() {
    let dcid = b"\x83\x94\xc8\xf0\x3e\x51\x57\x08";
    let iters = 20_000;
    let ours = ClientSecrets::derive(Version::V1, dcid).expect("derive");
    let theirs = rustcrypto_secrets(dcid);
    assert_eq!((ours.secret, ours.key, ours.iv, ours.hp), theirs, "both derive the RFC 9001 secrets");

    println!("-- Initial keys from a DCID (HKDF-SHA256 extract + 4 expands, then the key schedules)");
    let r1 = time("ring: secrets + AES-GCM key + HP key", iters, || {
        let s = ClientSecrets::derive(Version::V1, black_box(dcid)).expect("derive");
        black_box(LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &s.key).expect("key")));
        black_box(HeaderProtectionKey::new(&AES_128, &s.hp).expect("hp"));
    });
    let c1 = time("RustCrypto: secrets + Aes128Gcm + Aes128", iters, || {
        let (_, key, _, hp) = rustcrypto_secrets(black_box(dcid));
        black_box(aes_gcm::Aes128Gcm::new_from_slice(&key).expect("key"));
        black_box(aes::Aes128::new_from_slice(&hp).expect("hp"));
    });

    println!("-- header protection mask (AES-128 of a 16-byte sample)");
    let sample = [0x5au8; 16];
    let ring_hp = HeaderProtectionKey::new(&AES_128, &ours.hp).expect("hp");
    let rc_hp = aes::Aes128::new_from_slice(&ours.hp).expect("hp");
    let mut block = aes::Block::from(sample);
    rc_hp.encrypt_block(&mut block);
    assert_eq!(ring_hp.new_mask(&sample).expect("mask"), block[..5], "same mask");
    let r2 = time("ring: HeaderProtectionKey::new_mask", iters * 10, || {
        black_box(ring_hp.new_mask(black_box(&sample)).ok());
    });
    let c2 = time("RustCrypto: Aes128::encrypt_block", iters * 10, || {
        let mut b = aes::Block::from(*black_box(&sample));
        rc_hp.encrypt_block(&mut b);
        black_box(b);
    });

    println!("-- AES-128-GCM open of a 1162-byte Initial payload (a 1200-byte datagram)");
    let ring_key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &ours.key).expect("key"));
    let rc_key = aes_gcm::Aes128Gcm::new_from_slice(&ours.key).expect("key");
    let aad = [0xc3u8; 26];
    let mut sealed = vec![0x06u8; 1162 - 16];
    let tag = ring_key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(ours.iv), Aad::from(&aad), &mut sealed)
        .expect("seal");
    let mut buf = sealed.clone();
    let rc_tag = aes_gcm::Tag::from_slice(tag.as_ref());
    rc_key.decrypt_in_place_detached(aes_gcm::Nonce::from_slice(&ours.iv), &aad, &mut buf, rc_tag).expect("open");
    assert_eq!(buf, vec![0x06u8; 1162 - 16], "RustCrypto opens what ring sealed");
    let mut with_tag = sealed.clone();
    with_tag.extend(tag.as_ref());
    let mut scratch = with_tag.clone();
    let r3 = time("ring: LessSafeKey::open_in_place", iters, || {
        scratch.copy_from_slice(&with_tag);
        black_box(ring_key.open_in_place(Nonce::assume_unique_for_key(ours.iv), Aad::from(&aad), &mut scratch).ok());
    });
    let c3 = time("RustCrypto: Aes128Gcm::decrypt_in_place_detached", iters, || {
        buf.copy_from_slice(&sealed);
        let nonce = aes_gcm::Nonce::from_slice(&ours.iv);
        black_box(rc_key.decrypt_in_place_detached(nonce, &aad, &mut buf, rc_tag).ok());
    });
    println!("RustCrypto / ring: keys {:.2}x, mask {:.2}x, open {:.2}x", c1 / r1, c2 / r2, c3 / r3);
}
