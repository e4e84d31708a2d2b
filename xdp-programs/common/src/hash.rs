//! The flow hash used to pick a bouncer or divider and the outer UDP source port. Same code in
//! the programs and in tests, so a test knows which bouncer a flow goes to.

#[inline(always)]
const fn mix(h: u32, k: u32) -> u32 {
    let k = k
        .wrapping_mul(0xcc9e_2d51)
        .rotate_left(15)
        .wrapping_mul(0x1b87_3593);
    (h ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

/// murmur3-style hash of an inner 5-tuple. `src`/`dst` as stored in maps (wire bytes), ports in
/// host order (0 for non-TCP/UDP and for fragments), `proto` the IP protocol.
#[inline(always)]
pub const fn flow_hash(src: u32, dst: u32, sport: u16, dport: u16, proto: u8) -> u32 {
    let mut h = mix(0x9747_b28c, src);
    h = mix(h, dst);
    h = mix(h, ((sport as u32) << 16) | dport as u32);
    h = mix(h, proto as u32);
    h ^= 16;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Picks one of `n` (1..=16) entries by hash: `(hash * n) >> 32` (Lemire's reduction). No
/// modulo: the verifier can bound a multiply-and-shift, not a remainder.
#[inline(always)]
pub const fn pick(hash: u32, n: u32) -> usize {
    ((hash as u64 * n as u64) >> 32) as usize
}
