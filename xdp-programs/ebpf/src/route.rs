//! Next hop for (vni, dst) when ENDPOINTS has no row: the divider/bouncer logic of the packet
//! walk, shared by `transit` and by `agent` when this droplet is the chosen bouncer.

use alkaid_xdp_common::{hash::pick, DropReason, NetworkValue, Verdict, MAX_BOUNCERS};

use crate::maps;

/// True if `ip` is one of the network's bouncers.
#[inline(always)]
fn is_bouncer(net: &NetworkValue, ip: u32) -> bool {
    let n = net.n_bouncers as usize;
    for i in 0..MAX_BOUNCERS {
        if i >= n {
            break;
        }
        if net.bouncers[i] == ip {
            return true;
        }
    }
    false
}

/// Picks a bouncer of `net` by flow hash, never `self_ip`'s own entry being required: the
/// caller already knows this droplet is not one of them.
#[inline(always)]
pub fn pick_bouncer(net: &NetworkValue, hash: u32) -> Option<u32> {
    let n = net.n_bouncers;
    if n == 0 {
        return None;
    }
    let n = if n > MAX_BOUNCERS as u32 {
        MAX_BOUNCERS as u32
    } else {
        n
    };
    Some(net.bouncers[pick(hash, n)])
}

/// Resolves the droplet to send (vni, dst) to:
/// 1. NETWORKS covers dst and this droplet is not among that subnet's bouncers -> a bouncer
///    (we are a divider, or a droplet hit by a stale direct path: bounce to the directory).
///    If we are one of its bouncers our directory is authoritative -> `NoRoute`.
/// 2. VPCS has the VNI -> a divider (never ourselves).
/// 3. Nothing here mentions the VNI -> `UnknownVni`.
#[inline(always)]
pub fn resolve(vni: u32, dst: u32, hash: u32, self_ip: u32) -> Result<(u32, Verdict), DropReason> {
    if let Some(net) = maps::network_lpm(vni, dst) {
        if is_bouncer(net, self_ip) {
            return Err(DropReason::NoRoute);
        }
        let b = pick_bouncer(net, hash).ok_or(DropReason::NoRoute)?;
        return Ok((b, Verdict::NetworkForward));
    }
    if let Some(vpc) = maps::vpc(vni) {
        let n = vpc.n_dividers;
        if n == 0 {
            return Err(DropReason::NoRoute);
        }
        let n = if n > 16 { 16 } else { n };
        let d = vpc.dividers[pick(hash, n)];
        if d == self_ip {
            return Err(DropReason::NoRoute);
        }
        return Ok((d, Verdict::DividerForward));
    }
    Err(DropReason::UnknownVni)
}
