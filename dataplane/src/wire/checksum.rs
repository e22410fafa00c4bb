//! The Internet checksum (RFC 1071). Not used by `parse_frame` (NICs verify checksums); it
//! serves the builder and checks in tests and tools.

/// One's-complement sum of `data` as big-endian 16-bit words (odd tail padded with zero),
/// added to `initial`, not yet folded.
pub fn sum(initial: u32, data: &[u8]) -> u32 {
    let mut acc = u64::from(initial);
    let mut words = data.chunks_exact(2);
    for word in &mut words {
        if let [hi, lo] = word {
            acc += u64::from(u16::from_be_bytes([*hi, *lo]));
        }
    }
    if let [last] = words.remainder() {
        acc += u64::from(u16::from_be_bytes([*last, 0]));
    }
    fold_to_u32(acc)
}

fn fold_to_u32(mut acc: u64) -> u32 {
    while acc > 0xffff_ffff {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
    }
    acc as u32
}

/// Fold a sum to 16 bits and complement it: the value written into a checksum field.
pub fn finish(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The checksum of `data` alone (an IPv4 header, an ICMPv4 message).
pub fn internet(data: &[u8]) -> u16 {
    finish(sum(0, data))
}

/// Sum of the IPv4 pseudo-header for TCP/UDP.
pub fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], protocol: u8, length: u16) -> u32 {
    let acc = sum(sum(0, &src), &dst);
    acc + u32::from(protocol) + u32::from(length)
}

/// Sum of the IPv6 pseudo-header for TCP/UDP/ICMPv6.
pub fn pseudo_header_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, length: u32) -> u32 {
    let acc = sum(sum(0, &src), &dst);
    let acc = sum(acc, &length.to_be_bytes());
    acc + u32::from(next_header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the sum of these words is 0xddf2, checksum 0x220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(finish(sum(0, &data)), !0xddf2);
        assert_eq!(internet(&data), 0x220d);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(0, &[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn data_with_its_checksum_sums_to_zero() {
        let mut data = vec![0x45, 0x00, 0x00, 0x1c, 0xab, 0xcd, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1];
        data.extend_from_slice(&[10, 0, 0, 2]);
        let c = internet(&data).to_be_bytes();
        data.splice(10..12, c);
        assert_eq!(internet(&data), 0);
    }
}
