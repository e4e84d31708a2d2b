//! The flow hash used to pick a bouncer or divider and the outer UDP source port. Same code in
//! the programs and in tests, so a test knows which bouncer a flow goes to.

/// Hash of an inner 5-tuple: the 104 bits folded into two 64-bit words, then a
/// multiply-xorshift finalizer (the 64-bit mixer of splitmix64). `src`/`dst` as stored in maps
/// (wire bytes), ports in host order (0 for non-TCP/UDP and for fragments), `proto` the IP
/// protocol.
///
/// Why this one: it is about 15 BPF instructions where murmur3 took about 90 (BPF has no
/// rotate instruction, and every instruction counts at line rate), and it still spreads flows
/// evenly over 1..=16 bouncers and the 14 bits of outer source port that ECMP hashes on
/// (checked in this module's tests).
#[inline(always)]
pub const fn flow_hash(src: u32, dst: u32, sport: u16, dport: u16, proto: u8) -> u32 {
    let addrs = ((src as u64) << 32) | dst as u64;
    let rest = ((sport as u64) << 24) | ((dport as u64) << 8) | proto as u64;
    let mut h = addrs ^ rest.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (h ^ (h >> 31)) as u32
}

/// Picks one of `n` (1..=16) entries by hash: `(hash * n) >> 32` (Lemire's reduction). No
/// modulo: the verifier can bound a multiply-and-shift, not a remainder.
#[inline(always)]
pub const fn pick(hash: u32, n: u32) -> usize {
    ((hash as u64 * n as u64) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flows that differ in one field only (the common case: many clients to one service
    /// port, or one client's ephemeral ports) land evenly on 16 bouncers and spread over the
    /// 14-bit outer source port.
    #[test]
    fn spreads_similar_flows_evenly() {
        let src = u32::from_ne_bytes([10, 0, 1, 5]);
        let dst = u32::from_ne_bytes([10, 0, 2, 9]);
        let host = |i: u32| u32::from_ne_bytes([10, 1, (i >> 8) as u8, i as u8]);
        let flows: [&dyn Fn(u32) -> u32; 3] = [
            &|i| flow_hash(src, dst, 32_768 + i as u16, 443, 6),
            &|i| flow_hash(host(i), dst, 40_000, 80, 6),
            &|i| flow_hash(src, host(i), 40_000, 53, 17),
        ];
        const N: u32 = 16_000;
        for (f, flow) in flows.iter().enumerate() {
            let mut per_bouncer = [0u32; 16];
            let mut ports = [false; 1 << 14];
            for i in 0..N {
                let h = flow(i);
                per_bouncer[pick(h, 16)] += 1;
                ports[(h & 0x3fff) as usize] = true;
            }
            let (min, max) = (
                *per_bouncer.iter().min().unwrap(),
                *per_bouncer.iter().max().unwrap(),
            );
            // 1,000 expected per bouncer; a fair hash stays well within +-15%.
            assert!(
                min > 850 && max < 1_150,
                "family {f}: uneven over 16 bouncers: {per_bouncer:?}"
            );
            // 16,000 draws from 16,384 ports: a uniform hash fills about 10,300 of them.
            let distinct = ports.iter().filter(|p| **p).count();
            assert!(distinct > 9_500, "family {f}: {distinct} distinct ports");
        }
    }

    #[test]
    fn pick_stays_in_range() {
        for n in 1..=16 {
            for h in [0, 1, u32::MAX / 2, u32::MAX - 1, u32::MAX] {
                assert!(pick(h, n) < n as usize);
            }
        }
    }
}
