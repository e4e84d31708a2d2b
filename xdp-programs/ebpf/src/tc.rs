//! TC (clsact ingress) variants of the endpoint data path, for bulk TCP: XDP on a veth loses
//! GSO/TSO (ARCHITECTURE.md "Hook choice"), TC keeps it.
//!
//! - `agent_tc` on the host side of an endpoint veth: the same decision as `agent`
//!   ([`crate::agent::decide`]: anti-spoofing, ARP, MTU, next hop, same maps and counters); the
//!   MTU check looks at the GSO segment size, not the super-frame. Encapsulation grows room with
//!   `bpf_skb_adjust_room` as a UDP tunnel carrying Ethernet ([`crate::geneve::encap_tc`]), so
//!   the kernel segments the inner TCP after encapsulation; then `bpf_redirect` to the underlay
//!   NIC, or `bpf_redirect_neigh` over a direct path to a droplet whose MAC is not known here
//!   (the kernel resolves it; also the slow path of XDP `agent`, which passes such frames up).
//!   ARP replies and ICMP "fragmentation needed" ([`crate::icmp`]) go back out of the same
//!   veth; same-droplet peers are reached with `bpf_redirect_peer` (straight into the peer
//!   pod's netns).
//! - `transit_tc` on the underlay NIC: the same decision as `transit`
//!   ([`crate::transit::decide`]); local delivery shrinks the outer headers with
//!   `bpf_skb_adjust_room` and enters the pod with `bpf_redirect_peer` (no second pass through
//!   the host stack or backlog); retargets leave by the same NIC.
//!
//! Checksums: a CHECKSUM_PARTIAL skb keeps its offload state through adjust_room (csum_start
//! moves with the headers), so pods keep tx checksum offload and TSO on this path.

use alkaid_xdp_common::{
    wire::{ETH_LEN, ICMP_QUOTE_LEN, IPPROTO_TCP, IPPROTO_UDP},
    DropReason, Verdict,
};
use aya_ebpf::{
    bindings::{
        bpf_adj_room_mode::BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_DECAP_L3_IPV4,
        BPF_F_ADJ_ROOM_FIXED_GSO, TC_ACT_OK,
    },
    helpers::{bpf_redirect, bpf_redirect_neigh, bpf_redirect_peer, bpf_skb_change_tail},
    programs::TcContext,
};

use crate::{
    agent::{self, Egress},
    geneve, icmp, maps,
    parse::{self, Ipv4Hdr},
    stats,
    transit::{self, Ingress},
};

/// Bytes made linear (and so reachable by direct packet access) before parsing: every header
/// up to the inner L4 ports of a packet with a few Geneve options.
const PULL: u32 = 128;

#[inline(always)]
fn pull(ctx: &TcContext) {
    let len = ctx.len();
    let _ = ctx.pull_data(if len < PULL { len } else { PULL });
}

#[inline(always)]
fn redirect(ifindex: u32) -> i32 {
    // SAFETY: a helper call with plain integer arguments.
    unsafe { bpf_redirect(ifindex, 0) as i32 }
}

/// Out of `ifindex` with the Ethernet header the kernel's FIB and neighbour tables give the
/// outer destination (it resolves the MAC, by ARP if need be, and queues meanwhile).
#[inline(always)]
fn redirect_neigh(ifindex: u32) -> i32 {
    // SAFETY: a helper call with no neighbour parameters (null, length 0): the kernel looks the
    // outer IPv4 destination up itself.
    unsafe { bpf_redirect_neigh(ifindex, core::ptr::null_mut(), 0, 0) as i32 }
}

#[inline(always)]
fn redirect_peer(ifindex: u32) -> i32 {
    // SAFETY: a helper call with plain integer arguments; only valid at TC ingress, which is
    // where both programs are attached.
    unsafe { bpf_redirect_peer(ifindex, 0) as i32 }
}

/// `agent_tc`.
#[inline(always)]
pub fn agent(ctx: &TcContext) -> i32 {
    match try_agent(ctx) {
        Ok(action) => action,
        Err(reason) => stats::drop_tc(reason),
    }
}

#[inline(always)]
fn try_agent(ctx: &TcContext) -> Result<i32, DropReason> {
    let cfg = maps::config().ok_or(DropReason::NoConfig)?;
    pull(ctx);
    // SAFETY: the context the kernel passed to this invocation.
    let (ifindex, gso_size) = unsafe { ((*ctx.skb.skb).ifindex, (*ctx.skb.skb).gso_size) };
    let len = ctx.len();
    let egress = agent::decide(ctx, ifindex, cfg, true, |ctx, ip: &Ipv4Hdr, ihl| {
        if gso_size == 0 {
            return len - ETH_LEN as u32;
        }
        // A GSO super-frame: each segment is gso_size of payload behind these headers.
        let l4 = match ip.proto {
            IPPROTO_TCP => {
                parse::load::<u8, _>(ctx, ETH_LEN + ihl + 12).map_or(60, |b| u32::from(*b >> 4) * 4)
            }
            IPPROTO_UDP => 8,
            _ => 0,
        };
        gso_size + ihl as u32 + l4
    })?;
    match egress {
        Egress::ArpReply => {
            stats::verdict(Verdict::ArpReply);
            Ok(redirect(ifindex))
        }
        Egress::Local { ifindex } => {
            stats::verdict(Verdict::LocalDeliver);
            Ok(redirect_peer(ifindex))
        }
        Egress::FragNeeded(pod) => {
            // Cut to the Ethernet header and the quote (linearizes, drops GSO), then grow the
            // IPv4 and ICMP headers' room after the Ethernet header: the quote, the original
            // IPv4 header, then sits where the reply has it.
            // SAFETY: a helper call on the context the kernel passed to this invocation.
            let rc =
                unsafe { bpf_skb_change_tail(ctx.skb.skb, (ETH_LEN + ICMP_QUOTE_LEN) as u32, 0) };
            if rc != 0 {
                return Err(DropReason::TooBig);
            }
            ctx.adjust_room(icmp::GROW as i32, BPF_ADJ_ROOM_MAC, 0)
                .map_err(|_| DropReason::NoHeadroom)?;
            icmp::write(ctx, &pod, cfg)?;
            stats::verdict(Verdict::IcmpFragNeeded);
            Ok(redirect(ifindex))
        }
        Egress::Encap(e) => {
            geneve::encap_tc(ctx, &geneve::outer(cfg, &e, len as usize), gso_size)?;
            stats::verdict(e.verdict);
            Ok(if e.neigh {
                redirect_neigh(cfg.underlay_ifindex)
            } else {
                redirect(cfg.underlay_ifindex)
            })
        }
    }
}

/// `transit_tc`.
#[inline(always)]
pub fn transit(ctx: &TcContext) -> i32 {
    match try_transit(ctx) {
        Ok(action) => action,
        Err(reason) => stats::drop_tc(reason),
    }
}

#[inline(always)]
fn try_transit(ctx: &TcContext) -> Result<i32, DropReason> {
    let Some(cfg) = maps::config() else {
        stats::verdict(Verdict::Passthrough);
        return Ok(TC_ACT_OK);
    };
    pull(ctx);
    match transit::decide(ctx, cfg)? {
        Ingress::Pass => {
            stats::verdict(Verdict::Passthrough);
            Ok(TC_ACT_OK)
        }
        Ingress::Local {
            inner_off,
            eth,
            ifindex,
        } => {
            // Removes everything between the outer Ethernet header and the inner IPv4 header
            // (outer IPv4, UDP, Geneve, options, inner Ethernet), then writes the delivery
            // Ethernet header over the outer one.
            let flags = (BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_DECAP_L3_IPV4) as u64;
            ctx.adjust_room(-(inner_off as i32), BPF_ADJ_ROOM_MAC, flags)
                .map_err(|_| DropReason::InnerTruncated)?;
            parse::store_eth(ctx, 0, &eth).ok_or(DropReason::InnerTruncated)?;
            stats::verdict(Verdict::Decap);
            Ok(redirect_peer(ifindex))
        }
        Ingress::Forward(v) => {
            stats::verdict(v);
            // SAFETY: the context the kernel passed to this invocation.
            Ok(redirect(unsafe { (*ctx.skb.skb).ifindex }))
        }
    }
}
