//! Next hop for (vni, dst) when ENDPOINTS has no row: the divider/bouncer logic of the packet
//! walk, shared by `transit` and by `agent` when this droplet is the chosen bouncer.
//!
//! A next hop is a [`Hop`]: the droplet and the MAC cached for it in the row it came from (zero
//! if none, then [`crate::maps::hop_mac`] looks PEERS up).

use alkaid_xdp_common::{
    hash::pick, DropReason, Hop, NetworkRecord, Verdict, MAX_BOUNCERS, MAX_DIVIDERS,
};

use crate::maps;

/// True if `ip` is one of the network's bouncers.
#[inline(always)]
fn is_bouncer(net: &NetworkRecord, ip: u32) -> bool {
    let n = net.net.n_bouncers as usize;
    for i in 0..MAX_BOUNCERS {
        if i >= n {
            break;
        }
        if net.net.bouncers[i] == ip {
            return true;
        }
    }
    false
}

/// `n` clamped to `1..=max`, or `None` for 0.
#[inline(always)]
pub fn clamp(n: u32, max: usize) -> Option<u32> {
    match n {
        0 => None,
        n if n > max as u32 => Some(max as u32),
        n => Some(n),
    }
}

/// Picks a bouncer of `net` by flow hash.
#[inline(always)]
fn pick_bouncer(net: &NetworkRecord, hash: u32) -> Option<Hop> {
    let n = clamp(net.net.n_bouncers, MAX_BOUNCERS)?;
    let i = pick(hash, n) & (MAX_BOUNCERS - 1);
    Some(Hop {
        ip: net.net.bouncers[i],
        mac: net.bouncer_macs[i],
        _pad: [0; 2],
    })
}

/// Resolves the droplet to send (vni, dst) to:
/// 1. NETWORKS covers dst and this droplet is not among that subnet's bouncers -> a bouncer
///    (we are a divider, or a droplet hit by a stale direct path: bounce to the directory).
///    If we are one of its bouncers our directory is authoritative -> `NoRoute`.
/// 2. VPCS has the VNI -> a divider (never ourselves).
/// 3. Nothing here mentions the VNI -> `UnknownVni`.
#[inline(always)]
pub fn resolve(vni: u32, dst: u32, hash: u32, self_ip: u32) -> Result<(Hop, Verdict), DropReason> {
    if let Some(net) = maps::network_lpm(vni, dst) {
        if is_bouncer(net, self_ip) {
            return Err(DropReason::NoRoute);
        }
        let b = pick_bouncer(net, hash).ok_or(DropReason::NoRoute)?;
        return Ok((b, Verdict::NetworkForward));
    }
    if let Some(vpc) = maps::vpc(vni) {
        let n = clamp(vpc.n_dividers, MAX_DIVIDERS).ok_or(DropReason::NoRoute)?;
        let d = vpc.dividers[pick(hash, n) & (MAX_DIVIDERS - 1)];
        if d == self_ip {
            return Err(DropReason::NoRoute);
        }
        let hop = Hop {
            ip: d,
            mac: [0; 6],
            _pad: [0; 2],
        };
        return Ok((hop, Verdict::DividerForward));
    }
    Err(DropReason::UnknownVni)
}
