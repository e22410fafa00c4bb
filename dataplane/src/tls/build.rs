//! Synthetic but well-formed TLS ClientHello records for generated traffic and tests: the extensions a
//! modern browser sends, optionally with a post-quantum X25519MLKEM768 key share (~1.8 KB).

use rand::rngs::SmallRng;
use rand::Rng;

const X25519: u16 = 0x001d;
const X25519_MLKEM768: u16 = 0x11ec;
const SECP256R1: u16 = 0x0017;

fn u16s(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

/// `len16(body)` prefixed with its 2-byte length.
fn len16(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn extension(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut out = kind.to_be_bytes().to_vec();
    out.extend(len16(body));
    out
}

/// One TLS record (content type 22) holding a ClientHello for `sni`.
pub fn client_hello_record(sni: &str, post_quantum: bool, rng: &mut SmallRng) -> Vec<u8> {
    let mut exts = Vec::new();
    let mut name = vec![0u8];
    name.extend(len16(sni.as_bytes()));
    exts.extend(extension(0x0000, &len16(&name)));
    let groups: &[u16] = if post_quantum { &[X25519_MLKEM768, X25519, SECP256R1] } else { &[X25519, SECP256R1] };
    exts.extend(extension(0x000a, &len16(&u16s(groups))));
    exts.extend(extension(0x000b, &[1, 0]));
    exts.extend(extension(0x000d, &len16(&u16s(&[0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]))));
    let mut alpn = Vec::new();
    for p in [&b"h2"[..], b"http/1.1"] {
        alpn.push(p.len() as u8);
        alpn.extend_from_slice(p);
    }
    exts.extend(extension(0x0010, &len16(&alpn)));
    exts.extend(extension(0x002b, &[4, 0x03, 0x04, 0x03, 0x03]));
    exts.extend(extension(0x002d, &[1, 1]));
    let mut shares = Vec::new();
    if post_quantum {
        let key: Vec<u8> = (0..1216).map(|_| rng.random()).collect();
        shares.extend(X25519_MLKEM768.to_be_bytes());
        shares.extend(len16(&key));
    }
    let key: Vec<u8> = (0..32).map(|_| rng.random()).collect();
    shares.extend(X25519.to_be_bytes());
    shares.extend(len16(&key));
    exts.extend(extension(0x0033, &len16(&shares)));

    let mut hello = vec![0x03, 0x03];
    hello.extend((0..32).map(|_| rng.random::<u8>()));
    hello.push(32);
    hello.extend((0..32).map(|_| rng.random::<u8>()));
    hello.extend(len16(&u16s(&[0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8])));
    hello.extend([1, 0]);
    hello.extend(len16(&exts));

    let mut handshake = vec![1u8];
    handshake.extend(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend(hello);
    let mut record = vec![22u8, 0x03, 0x01];
    record.extend(len16(&handshake));
    record
}
