//! ARP responder for `agent`: every pod ARP request is answered with the virtual gateway MAC
//! (gateway and peers alike, since all traffic is routed by IP), sent back into the pod. No
//! ARP leaves the host.

use alkaid_xdp_common::{wire::ETH_P_ARP, wire::ETH_P_IPV4, AgentEndpoint, Config, DropReason};

use crate::parse::{self, ArpHdr, EthHdr, Packet};

const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;

/// Rewrites the request in place into the reply; the caller sends it back to the pod.
#[inline(always)]
pub fn respond<P: Packet>(ctx: &P, ep: &AgentEndpoint, cfg: &Config) -> Result<(), DropReason> {
    let Some(arp) = parse::load::<ArpHdr, P>(ctx, 14) else {
        return Err(DropReason::ArpIgnored);
    };
    if u16::from_be_bytes(arp.htype) != 1
        || u16::from_be_bytes(arp.ptype) != ETH_P_IPV4
        || arp.hlen != 6
        || arp.plen != 4
        || u16::from_be_bytes(arp.op) != ARP_REQUEST
    {
        return Err(DropReason::ArpIgnored);
    }
    if arp.sha != ep.mac {
        return Err(DropReason::SpoofedMac);
    }
    let spa = u32::from_ne_bytes(arp.spa);
    // 0.0.0.0 is an RFC 5227 probe.
    if spa != ep.ip && spa != 0 {
        return Err(DropReason::SpoofedIp);
    }
    // Never claim the pod's own address (duplicate address detection, gratuitous ARP).
    if u32::from_ne_bytes(arp.tpa) == ep.ip {
        return Err(DropReason::ArpIgnored);
    }
    let eth = EthHdr {
        dst: ep.mac,
        src: cfg.gateway_mac,
        proto: ETH_P_ARP.to_be_bytes(),
    };
    let reply = ArpHdr {
        op: ARP_REPLY.to_be_bytes(),
        sha: cfg.gateway_mac,
        spa: arp.tpa,
        tha: arp.sha,
        tpa: arp.spa,
        ..*arp
    };
    if parse::store(ctx, 0, &eth).is_none() || parse::store(ctx, 14, &reply).is_none() {
        return Err(DropReason::ArpIgnored);
    }
    Ok(())
}
