//! The Internet checksum (RFC 1071) and the pseudo-header sums of IPv4
//! (RFC 9293 section 3.1, RFC 768) and IPv6 (RFC 8200 section 8.1).
//!
//! Owns only arithmetic: the 16-bit one's-complement sum of byte strings.
//! Must not touch packet layout; the format modules decide which bytes are
//! summed.
//!
//! Sums here are *folded but not inverted* (`u16`), so partial sums of
//! separate pieces combine with [`combine`]. The value sent on the wire is
//! `!sum`. A packet verifies when the sum over it, checksum field included,
//! is `0xffff`.

use super::{IpProtocol, Ipv4Addr, Ipv6Addr};

/// Folds a 64-bit accumulator of 16-bit words into a 16-bit one's-complement
/// sum (RFC 1071 section 4.1: add the carries back in).
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The one's-complement sum of `data` read as big-endian 16-bit words, an
/// odd trailing byte padded with zero (RFC 1071 section 1).
///
/// Combining sums of several pieces with [`combine`] equals the sum of their
/// concatenation only when every piece but the last has even length.
pub fn data(data: &[u8]) -> u16 {
    // The one's-complement sum does not depend on byte order (RFC 1071
    // section 2(B)): sum native-endian 32-bit words eight bytes at a time,
    // fold, and swap into network order once at the end. A u64 accumulator
    // of u32 halves cannot overflow below 2^32 chunks.
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let w = u64::from_ne_bytes(w);
        acc += (w & 0xffff_ffff) + (w >> 32);
    }
    let mut words = chunks.remainder().chunks_exact(2);
    for w in &mut words {
        if let &[a, b] = w {
            acc += u64::from(u16::from_ne_bytes([a, b]));
        }
    }
    if let [last] = words.remainder() {
        acc += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    u16::from_be(fold(acc))
}

/// The plain definition, 16 bits at a time: the reference the fast
/// [`data`] is tested against.
#[cfg(test)]
fn data_reference(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        if let &[hi, lo] = w {
            acc += u64::from(u16::from_be_bytes([hi, lo]));
        }
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    fold(acc)
}

/// Adds partial sums (one's-complement addition is associative and
/// commutative, RFC 1071 section 2).
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u64::from(s)).sum())
}

/// The sum of the IPv4 pseudo-header: source, destination, zero, protocol,
/// and the upper-layer length (RFC 9293 section 3.1, RFC 768).
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, length: u16) -> u16 {
    combine(&[
        data(&src.octets()),
        data(&dst.octets()),
        u16::from(u8::from(protocol)),
        length,
    ])
}

/// The sum of the IPv6 pseudo-header: source, destination, 32-bit
/// upper-layer length, three zero bytes and the next header (RFC 8200
/// section 8.1). `protocol` is the upper-layer protocol, not the first
/// extension header.
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, protocol: IpProtocol, length: u32) -> u16 {
    combine(&[
        data(&src.octets()),
        data(&dst.octets()),
        (length >> 16) as u16,
        length as u16,
        u16::from(u8::from(protocol)),
    ])
}

/// The pseudo-header sum for an upper-layer message of `length` bytes
/// between `src` and `dst`. Fails with `Malformed` when the addresses are of
/// different families or the length does not fit the IPv4 length field.
pub fn pseudo_header(
    src: super::IpAddr,
    dst: super::IpAddr,
    protocol: IpProtocol,
    length: usize,
) -> super::Result<u16> {
    use super::IpAddr::{V4, V6};
    match (src, dst) {
        (V4(s), V4(d)) => {
            let len = u16::try_from(length).map_err(|_| super::Error::Malformed)?;
            Ok(pseudo_header_v4(s, d, protocol, len))
        }
        (V6(s), V6(d)) => {
            let len = u32::try_from(length).map_err(|_| super::Error::Malformed)?;
            Ok(pseudo_header_v6(s, d, protocol, len))
        }
        _ => Err(super::Error::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_the_rfc_1071_worked_example() {
        // RFC 1071 section 3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(data(&bytes), 0xddf2);
        assert_eq!(!data(&bytes), 0x220d);
    }

    #[test]
    fn odd_trailing_byte_is_padded_on_the_right() {
        assert_eq!(data(&[0xab]), 0xab00);
        assert_eq!(data(&[0x01, 0x02, 0x03]), 0x0102 + 0x0300);
    }

    #[test]
    fn carries_wrap_around() {
        assert_eq!(data(&[0xff, 0xff, 0x00, 0x01]), 0x0001);
        assert_eq!(combine(&[0xffff, 0x0002]), 0x0002);
    }

    #[test]
    fn verifies_a_known_ipv4_header() {
        // The widely published example header 192.168.0.1 -> 192.168.0.199,
        // UDP, checksum 0xb861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(data(&hdr), 0xffff);
    }

    #[test]
    fn pseudo_header_rejects_mixed_families() {
        let v4 = crate::wire::IpAddr::V4(Ipv4Addr::LOCALHOST);
        let v6 = crate::wire::IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(
            pseudo_header(v4, v6, IpProtocol::Tcp, 20),
            Err(crate::wire::Error::Malformed)
        );
        assert_eq!(
            pseudo_header(v4, v4, IpProtocol::Tcp, 70000),
            Err(crate::wire::Error::Malformed)
        );
    }

    #[test]
    fn pseudo_header_v6_counts_the_high_half_of_the_length() {
        let a = Ipv6Addr::UNSPECIFIED;
        assert_eq!(pseudo_header_v6(a, a, IpProtocol::Udp, 0x0001_0000), 1 + 17);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn split_at_even_offset_combines_to_whole_sum(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            cut in 0usize..100,
        ) {
            let cut = (cut * 2).min(bytes.len() & !1);
            let (a, b) = bytes.split_at(cut);
            prop_assert_eq!(combine(&[data(a), data(b)]), data(&bytes));
        }

        #[test]
        fn data_with_its_checksum_appended_verifies(
            mut bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            if bytes.len() % 2 == 1 {
                bytes.push(0);
            }
            let ck = !data(&bytes);
            bytes.extend_from_slice(&ck.to_be_bytes());
            prop_assert_eq!(data(&bytes), 0xffff);
        }
    }

    proptest::proptest! {
        #[test]
        fn word_wide_sum_equals_the_16_bit_definition(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000)) {
            proptest::prop_assert_eq!(data(&bytes), data_reference(&bytes));
        }
    }
}
