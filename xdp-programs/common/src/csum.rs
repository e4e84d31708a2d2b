//! Internet checksum (RFC 1071) and incremental update (RFC 1624), on native-order 16-bit words
//! read from wire bytes with `u16::from_ne_bytes` (the one's-complement sum is byte-order
//! independent, so the result is written back with `to_ne_bytes`).

/// Folds a 32-bit one's-complement accumulator to 16 bits.
#[inline(always)]
pub const fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// Checksum of a 20-byte IPv4 header whose checksum field is zero; returns wire bytes.
#[inline(always)]
pub fn ipv4_header(h: &[u8; 20]) -> [u8; 2] {
    let mut sum = 0u32;
    let mut i = 0;
    while i < 20 {
        sum += u16::from_ne_bytes([h[i], h[i + 1]]) as u32;
        i += 2;
    }
    (!fold(sum)).to_ne_bytes()
}

/// Checksum of the outer IPv4 header `agent` builds (version 4, IHL 5, TOS 0, id 0, DF, the
/// given TTL, protocol UDP) from its variable fields only: no header bytes are read. `src` and
/// `dst` as stored in maps; returns wire bytes.
#[inline(always)]
pub const fn ipv4_encap(tot_len: u16, ttl: u8, src: u32, dst: u32) -> [u8; 2] {
    let b = tot_len.to_be_bytes();
    let sum = u16::from_ne_bytes([0x45, 0]) as u32
        + u16::from_ne_bytes([0x40, 0]) as u32
        + u16::from_ne_bytes([ttl, 17]) as u32
        + u16::from_ne_bytes(b) as u32
        + (src & 0xffff)
        + (src >> 16)
        + (dst & 0xffff)
        + (dst >> 16);
    (!fold(sum)).to_ne_bytes()
}

/// Checksum over any byte slice (odd length padded with zero); returns wire bytes. A header
/// including a correct checksum field sums to `[0, 0]`.
pub fn of_bytes(b: &[u8]) -> [u8; 2] {
    let mut sum = 0u32;
    let mut chunks = b.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_ne_bytes([c[0], c[1]]) as u32;
    }
    if let [last] = chunks.remainder() {
        sum += u16::from_ne_bytes([*last, 0]) as u32;
    }
    (!fold(sum)).to_ne_bytes()
}

/// RFC 1624 eqn. 3: new checksum after one 16-bit word changed from `old` to `new`.
#[inline(always)]
pub const fn replace16(csum: [u8; 2], old: u16, new: u16) -> [u8; 2] {
    let hc = u16::from_ne_bytes(csum);
    let sum = (!hc) as u32 + (!old) as u32 + new as u32;
    (!fold(sum)).to_ne_bytes()
}

/// Same as [`replace16`] for a 32-bit field (an IPv4 address as stored in maps).
#[inline(always)]
pub const fn replace32(csum: [u8; 2], old: u32, new: u32) -> [u8; 2] {
    let c = replace16(csum, old as u16, new as u16);
    replace16(c, (old >> 16) as u16, (new >> 16) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr() -> [u8; 20] {
        [
            0x45, 0, 0, 0x54, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]
    }

    #[test]
    fn full_checksum_verifies() {
        let mut h = hdr();
        let c = ipv4_header(&h);
        h[10..12].copy_from_slice(&c);
        assert_eq!(of_bytes(&h), [0, 0]);
    }

    #[test]
    fn encap_header_checksum_matches_full() {
        let src = u32::from_ne_bytes([192, 168, 0, 10]);
        let dst = u32::from_ne_bytes([192, 168, 0, 255]);
        for len in [20u16, 86, 1500, 0xffff] {
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&len.to_be_bytes());
            h[6] = 0x40;
            h[8] = 64;
            h[9] = 17;
            h[12..16].copy_from_slice(&src.to_ne_bytes());
            h[16..20].copy_from_slice(&dst.to_ne_bytes());
            assert_eq!(ipv4_encap(len, 64, src, dst), ipv4_header(&h), "len {len}");
        }
    }

    #[test]
    fn incremental_matches_full() {
        let mut h = hdr();
        let c = ipv4_header(&h);
        h[10..12].copy_from_slice(&c);
        // TTL decrement.
        let old = u16::from_ne_bytes([h[8], h[9]]);
        h[8] -= 1;
        let new = u16::from_ne_bytes([h[8], h[9]]);
        let c2 = replace16([h[10], h[11]], old, new);
        h[10..12].copy_from_slice(&c2);
        assert_eq!(of_bytes(&h), [0, 0]);
        // Destination rewrite.
        let old_ip = u32::from_ne_bytes([h[16], h[17], h[18], h[19]]);
        let new_ip = u32::from_ne_bytes([192, 168, 7, 9]);
        h[16..20].copy_from_slice(&new_ip.to_ne_bytes());
        let c3 = replace32([h[10], h[11]], old_ip, new_ip);
        h[10..12].copy_from_slice(&c3);
        assert_eq!(of_bytes(&h), [0, 0]);
    }
}
