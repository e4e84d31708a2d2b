//! ARP responder for `agent`: every pod ARP request is answered with the virtual gateway MAC
//! (gateway and peers alike, since all traffic is routed by IP), XDP_TX back into the pod. No
//! ARP leaves the host.

use alkaid_xdp_common::{
    wire::ETH_P_ARP, wire::ETH_P_IPV4, AgentEndpoint, Config, DropReason, Verdict,
};
use aya_ebpf::bindings::xdp_action;

use crate::{
    parse::{self, ArpHdr, EthHdr},
    stats,
};
use aya_ebpf::programs::XdpContext;

const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;

#[inline(always)]
pub fn respond(ctx: &XdpContext, ep: &AgentEndpoint, cfg: &Config) -> u32 {
    let Some(arp) = parse::load::<ArpHdr>(ctx, 14) else {
        return stats::drop(DropReason::ArpIgnored);
    };
    if u16::from_be_bytes(arp.htype) != 1
        || u16::from_be_bytes(arp.ptype) != ETH_P_IPV4
        || arp.hlen != 6
        || arp.plen != 4
        || u16::from_be_bytes(arp.op) != ARP_REQUEST
    {
        return stats::drop(DropReason::ArpIgnored);
    }
    if arp.sha != ep.mac {
        return stats::drop(DropReason::SpoofedMac);
    }
    let spa = u32::from_ne_bytes(arp.spa);
    // 0.0.0.0 is an RFC 5227 probe.
    if spa != ep.ip && spa != 0 {
        return stats::drop(DropReason::SpoofedIp);
    }
    // Never claim the pod's own address (duplicate address detection, gratuitous ARP).
    if u32::from_ne_bytes(arp.tpa) == ep.ip {
        return stats::drop(DropReason::ArpIgnored);
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
        ..arp
    };
    if parse::store(ctx, 0, &eth).is_none() || parse::store(ctx, 14, &reply).is_none() {
        return stats::drop(DropReason::ArpIgnored);
    }
    stats::verdict(Verdict::ArpReply);
    xdp_action::XDP_TX
}
