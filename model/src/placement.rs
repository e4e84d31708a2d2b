//! Placement of roles (a subnet's bouncers, a VPC's dividers) on droplets.
//!
//! Rendezvous (highest-random-weight) hashing ranks droplets per object with a fixed,
//! platform-independent hash, so every replica and every run ranks alike and a droplet
//! joining or leaving changes only the rankings that involve it. A load bound keeps any
//! droplet from carrying far more roles than the mean: the highest-ranked candidates whose
//! load is below `ceil(mean * 1.25) + 1` win; only if too few qualify are the others used.
//! Callers keep placements sticky: this module only picks additions and removals.

use crate::types::DropletName;

/// 64-bit FNV-1a of `s`, finished with the SplitMix64 mixer. Stable across platforms.
pub fn name_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// SplitMix64's finalizer: a bijective avalanche mix.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hash of a role object key: `kind` is `"bouncer"` or `"divider"`, `name` the subnet or VPC.
pub fn object_hash(kind: &str, name: &str) -> u64 {
    mix(name_hash(kind) ^ name_hash(name).rotate_left(1))
}

/// Rendezvous score of a droplet for an object; higher ranks first.
pub fn score(object: u64, droplet: u64) -> u64 {
    mix(object ^ droplet.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The most roles a droplet may hold before it stops being preferred:
/// `ceil(mean * 1.25) + 1`, where `mean = (placed + adding) / ready`.
pub fn load_bound(placed: u64, adding: u64, ready: u64) -> u32 {
    let ready = ready.max(1);
    let total = placed + adding;
    let bound = (total * 5).div_ceil(ready * 4) + 1;
    u32::try_from(bound).unwrap_or(u32::MAX)
}

/// A droplet that may take a role: Ready and not already holding this object's role.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// Its name.
    pub name: &'a DropletName,
    /// `name_hash` of its name, precomputed.
    pub hash: u64,
    /// Roles it holds now.
    pub load: u32,
}

/// Keeps the `n` highest (score, name) pairs, best first.
struct TopN<'a> {
    n: usize,
    best: Vec<(u64, &'a DropletName)>,
}

impl<'a> TopN<'a> {
    fn offer(&mut self, score: u64, name: &'a DropletName) {
        if self.n == 0 {
            return;
        }
        let better = |a: &(u64, &DropletName), b: &(u64, &DropletName)| {
            a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
        };
        let item = (score, name);
        if self.best.len() == self.n && !better(&item, &self.best[self.n - 1]) {
            return;
        }
        let at = self.best.partition_point(|e| better(e, &item));
        self.best.insert(at, item);
        self.best.truncate(self.n);
    }
}

/// Picks up to `n` distinct droplets for `object` among `candidates`: the highest-ranked
/// within `bound`, then (only if too few are within it) the highest-ranked of the rest.
/// O(candidates * n) with tiny constants.
pub fn pick<'a>(
    object: u64,
    candidates: impl IntoIterator<Item = Candidate<'a>>,
    n: usize,
    bound: u32,
) -> Vec<DropletName> {
    let mut within = TopN {
        n,
        best: Vec::with_capacity(n + 1),
    };
    let mut over = TopN {
        n,
        best: Vec::with_capacity(n + 1),
    };
    for c in candidates {
        let s = score(object, c.hash);
        if c.load < bound {
            within.offer(s, c.name);
        } else {
            over.offer(s, c.name);
        }
    }
    let mut out: Vec<DropletName> = within.best.into_iter().map(|(_, d)| d.clone()).collect();
    let missing = n - out.len();
    out.extend(over.best.into_iter().take(missing).map(|(_, d)| d.clone()));
    out
}

/// Of `holders` (name and name hash), the `n` lowest-ranked for `object`: the ones
/// scale-in removes.
pub fn lowest_ranked(object: u64, holders: &[(DropletName, u64)], n: usize) -> Vec<DropletName> {
    let mut ranked: Vec<(u64, &DropletName)> = holders
        .iter()
        .map(|(d, h)| (score(object, *h), d))
        .collect();
    ranked.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)));
    ranked.into_iter().take(n).map(|(_, d)| d.clone()).collect()
}

#[cfg(test)]
mod tests;
