//! `agent`: egress of one endpoint (XDP on the host side of its veth).
//!
//! ARP -> [`crate::arp`]. IPv4: anti-spoofing (source MAC and IP must be the endpoint's), MTU
//! check, then by destination (vni from the endpoint's AGENT_SLOTS / AGENT_ENDPOINTS row, never
//! from the packet):
//! 1. DIRECT_PATH -> encapsulate to the learned droplet (the steady state: one hash lookup per
//!    packet, this one; the endpoint comes from its AGENT_SLOTS slot, an inlined array access,
//!    and the row caches the droplet's MAC), with the
//!    RTS_DIRECT option type so a droplet that no longer hosts the destination bounces it back
//!    (see `transit`). A row whose droplet MAC nothing here knows (learned from a packet
//!    that came through a bouncer, no PEERS row) is sent through the kernel's neighbour
//!    resolution: `agent_tc` by `bpf_redirect_neigh`, XDP `agent` by passing the frame to
//!    `agent_tc` behind it (`CONFIG_F_TC_AGENT`); without that, skipped (next steps), never a
//!    drop.
//! 2. ENDPOINTS row flagged LOCAL -> rewrite Ethernet, redirect into its veth.
//! 3. ENDPOINTS row (this droplet bounces that subnet) -> encapsulate to its droplet.
//! 4. A bouncer of the endpoint's subnet by flow hash, from the list the loader keeps in the
//!    endpoint's own record (no NETWORKS or PEERS lookup); if that is this droplet, resolve the
//!    next hop here ([`crate::route::resolve`]) instead of sending to ourselves.
//!
//! Then redirect to the underlay NIC through TX_PORTS. A LOCAL endpoint never has a DIRECT_PATH
//! row (the loader removes it when it writes the LOCAL row, and learning skips our own IP), so
//! checking DIRECT_PATH first does not change where a packet goes.

use alkaid_xdp_common::{
    hash::{flow_hash, pick},
    wire::{ETH_LEN, ETH_P_ARP, ETH_P_IPV4, ICMP_REPLY_LEN, IPPROTO_TCP, IPPROTO_UDP, OVERHEAD},
    Config, DropReason, Verdict, CONFIG_F_TC_AGENT, ENDPOINT_F_LOCAL, MAX_BOUNCERS,
};
use aya_ebpf::{bindings::xdp_action, programs::XdpContext};

use crate::{
    arp, geneve, icmp, maps,
    parse::{self, Aligned, EthHdr, Ipv4Hdr, Packet},
    route, stats,
};

#[inline(always)]
pub fn run(ctx: &XdpContext) -> u32 {
    match try_run(ctx) {
        Ok(action) => action,
        Err(reason) => stats::drop(reason),
    }
}

/// Where a pod's frame goes, decided by [`decide`]; the XDP and TC programs carry it out.
pub enum Egress {
    /// An ARP reply was written in place: send it back into the pod (out of the veth it came
    /// in on: XDP devmap redirect, TC `bpf_redirect`).
    ArpReply,
    /// Same-droplet destination, Ethernet already rewritten: deliver via this host veth.
    Local { ifindex: u32 },
    /// Too large with DF set: answer the pod with ICMP "fragmentation needed"
    /// ([`crate::icmp`]) out of the veth it came in on.
    FragNeeded(icmp::Pod),
    /// Encapsulate and send to the underlay.
    Encap(Encap),
}

/// Outer header parameters of an encapsulation.
pub struct Encap {
    pub target: u32,
    /// Outer destination MAC; zero with `neigh`.
    pub mac: [u8; 6],
    pub vni: u32,
    pub hash: u32,
    pub verdict: Verdict,
    /// Over a direct path to a droplet whose MAC nothing here knows: the kernel resolves it
    /// (TC: `bpf_redirect_neigh`; XDP: passed to `agent_tc`).
    pub neigh: bool,
}

/// Inner 5-tuple hash. Fragments and other protocols hash with ports 0 so every piece of a
/// datagram takes the same path.
#[inline(always)]
pub fn l4_hash<P: Packet>(ctx: &P, ip_off: usize, ip: &Ipv4Hdr, ihl: usize) -> u32 {
    let (mut sport, mut dport) = (0u16, 0u16);
    if (ip.proto == IPPROTO_TCP || ip.proto == IPPROTO_UDP) && !ip.is_fragment() {
        if let Some(p) = parse::load::<[u8; 4], _>(ctx, ip_off + ihl) {
            sport = u16::from_be_bytes([p[0], p[1]]);
            dport = u16::from_be_bytes([p[2], p[3]]);
        }
    }
    flow_hash(ip.src(), ip.dst(), sport, dport, ip.proto)
}

#[inline(always)]
fn try_run(ctx: &XdpContext) -> Result<u32, DropReason> {
    let cfg = maps::config().ok_or(DropReason::NoConfig)?;
    let ifindex = ctx.ingress_ifindex() as u32;
    let neigh = cfg.flags & CONFIG_F_TC_AGENT != 0;
    let egress = decide(ctx, ifindex, cfg, neigh, |ctx, _, _| {
        (parse::frame_len(ctx) - ETH_LEN) as u32
    })?;
    match egress {
        Egress::ArpReply => {
            // Back into the pod by a devmap redirect to the ingress veth, not XDP_TX: in
            // native mode an XDP_TX on a veth is lost unless the pod's end runs an XDP
            // program (xdp-on-veth rule 2), while a redirect needs only GRO there (rule 1),
            // which the droplet agent turns on.
            let action = maps::TX_PORTS
                .redirect(ifindex, 0)
                .map_err(|_| DropReason::NoTxPort)?;
            stats::verdict(Verdict::ArpReply);
            Ok(action)
        }
        Egress::FragNeeded(pod) => {
            // Grow in front for the IPv4 and ICMP headers (the quote, the original IPv4
            // header, then sits where the reply has it), cut the rest.
            let len = parse::frame_len(ctx);
            parse::adjust_head(ctx, -(icmp::GROW as i32)).ok_or(DropReason::NoHeadroom)?;
            parse::adjust_tail(ctx, ICMP_REPLY_LEN as i32 - (len + icmp::GROW) as i32)
                .ok_or(DropReason::TooBig)?;
            icmp::write(ctx, &pod, cfg)?;
            let action = maps::TX_PORTS
                .redirect(ifindex, 0)
                .map_err(|_| DropReason::NoTxPort)?;
            stats::verdict(Verdict::IcmpFragNeeded);
            Ok(action)
        }
        Egress::Local { ifindex } => {
            let action = maps::TX_PORTS
                .redirect(ifindex, 0)
                .map_err(|_| DropReason::NoTxPort)?;
            stats::verdict(Verdict::LocalDeliver);
            Ok(action)
        }
        Egress::Encap(e) if e.neigh => {
            // Untouched, for `agent_tc` behind us: only the kernel can resolve the next hop.
            stats::verdict(Verdict::PassToTc);
            Ok(xdp_action::XDP_PASS)
        }
        Egress::Encap(e) => {
            geneve::encap(ctx, &geneve::outer(cfg, &e, parse::frame_len(ctx)))?;
            let action = maps::TX_PORTS
                .redirect(cfg.underlay_ifindex, 0)
                .map_err(|_| DropReason::NoTxPort)?;
            stats::verdict(e.verdict);
            Ok(action)
        }
    }
}

/// The `agent` decision, shared by XDP and TC: anti-spoofing, ARP, MTU, next hop. `ifindex`
/// is the host veth the frame came in on; `neigh` says whether the caller can have the kernel
/// resolve a next hop's MAC (see [`Encap::neigh`]); `segment_len(ctx, ip, ihl)` is the largest
/// IP packet this frame will be on the wire (the frame itself in XDP; a GSO segment in TC).
#[inline(always)]
pub fn decide<P: Packet>(
    ctx: &P,
    ifindex: u32,
    cfg: &Config,
    neigh: bool,
    segment_len: impl FnOnce(&P, &Ipv4Hdr, usize) -> u32,
) -> Result<Egress, DropReason> {
    let rec = maps::agent_endpoint(ifindex).ok_or(DropReason::NoEndpoint)?;
    let ep = &rec.ep;
    let eth: Aligned<EthHdr> = parse::load(ctx, 0).ok_or(DropReason::EthTruncated)?;
    if eth.src != ep.mac {
        return Err(DropReason::SpoofedMac);
    }
    let proto = u16::from_be_bytes(eth.proto);
    if proto == ETH_P_ARP {
        arp::respond(ctx, ep, cfg)?;
        return Ok(Egress::ArpReply);
    }
    if proto != ETH_P_IPV4 {
        return Err(DropReason::NotIpv4);
    }
    let ip: Aligned<Ipv4Hdr> = parse::load(ctx, ETH_LEN).ok_or(DropReason::Ipv4Truncated)?;
    let ihl = ip.header_len().ok_or(DropReason::Ipv4BadIhl)?;
    if ip.src() != ep.ip {
        return Err(DropReason::SpoofedIp);
    }
    if segment_len(ctx, &ip, ihl) + OVERHEAD > cfg.mtu {
        if icmp::answers(ctx, &ip, ihl) {
            return Ok(Egress::FragNeeded(icmp::Pod {
                mac: ep.mac,
                ip: ep.ip,
                gateway: ep.gateway,
            }));
        }
        return Err(DropReason::TooBig);
    }
    let dst = ip.dst();
    let vni = ep.vni;
    let hash = l4_hash(ctx, ETH_LEN, &ip, ihl);

    // A direct path to a droplet whose MAC nothing here knows (learned from a packet that
    // came through a bouncer, with no PEERS row for its droplet) goes through the kernel's
    // neighbour resolution where the caller has it, else through a bouncer as if it were
    // absent; never dropped.
    let direct = maps::direct_path(vni, dst)
        .map(|p| (p.droplet_ip, maps::hop_mac(cfg, p.droplet_ip, &p.mac)));
    if let Some((target, None)) = direct {
        if neigh && target != cfg.droplet_ip && target != 0 {
            return Ok(Egress::Encap(Encap {
                target,
                mac: [0; 6],
                vni,
                hash,
                verdict: Verdict::EncapNeigh,
                neigh: true,
            }));
        }
    }
    let (target, cached_mac, verdict) = if let Some((ip, Some(mac))) = direct {
        (ip, mac, Verdict::EncapDirect)
    } else if let Some(d) = maps::endpoint(vni, dst) {
        if d.ep.flags & ENDPOINT_F_LOCAL != 0 {
            let out = EthHdr {
                dst: d.ep.mac,
                src: cfg.gateway_mac,
                proto: eth.proto,
            };
            parse::store_eth(ctx, 0, &out).ok_or(DropReason::EthTruncated)?;
            return Ok(Egress::Local {
                ifindex: d.ep.ifindex,
            });
        }
        (d.ep.droplet_ip, d.droplet_mac, Verdict::EncapResolved)
    } else {
        let n = route::clamp(rec.n_bouncers, MAX_BOUNCERS).ok_or(DropReason::NoRoute)?;
        let b = &rec.bouncers[pick(hash, n) & (MAX_BOUNCERS - 1)];
        if b.ip != cfg.droplet_ip {
            (b.ip, b.mac, Verdict::EncapBouncer)
        } else {
            let (hop, _) = route::resolve(vni, dst, hash, cfg.droplet_ip)?;
            (hop.ip, hop.mac, Verdict::EncapResolved)
        }
    };
    // Never to ourselves, nor to 0.0.0.0 (an unset bouncer entry).
    if target == cfg.droplet_ip || target == 0 {
        return Err(DropReason::NoRoute);
    }
    let mac = maps::hop_mac(cfg, target, &cached_mac).ok_or(DropReason::NoPeerMac)?;
    Ok(Egress::Encap(Encap {
        target,
        mac,
        vni,
        hash,
        verdict,
        neigh: false,
    }))
}
