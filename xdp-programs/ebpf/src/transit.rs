//! `transit`: ingress of the droplet (XDP on the underlay NIC).
//!
//! Anything that is not IPv4/UDP/6081 to this droplet's IP is XDP_PASSed untouched, whatever
//! its IPv4 header's IHL says (only UDP to us is held to it), and so is a later fragment. Overlay
//! packets: Geneve parse with the option walk ([`crate::geneve::parse`]), then by (vni, inner
//! dst):
//! 1. Local endpoint -> learn (vni, inner src) -> RTS droplet into DIRECT_PATH, set the inner
//!    MACs, strip the outer headers, redirect into the endpoint's veth. With
//!    `CONFIG_F_TC_DECAP` the packet is passed up instead, for `transit_tc` to decapsulate.
//! 2. Remote endpoint (we bounce its subnet) -> retarget the outer header to its droplet.
//! 3. [`crate::route::resolve`]: NETWORKS -> a bouncer (divider, or stale direct path bounced
//!    back to the directory), VPCS -> a divider, else unknown VNI.
//!
//! 4. Stale direct paths: an RTS_DIRECT packet (sent over a learned DIRECT_PATH row) for an
//!    endpoint not hosted here is turned around to its sender as STALE ([`stale_bounce`]); a
//!    STALE packet for one of our endpoints deletes the row and goes to a bouncer
//!    ([`stale_resend`]).
//!
//! Retargets decrement the outer TTL (<= 1 dropped), set outer src to this droplet, fix the
//! IPv4 checksum incrementally, zero the UDP checksum, and XDP_TX.
//!
//! [`decide`] holds all of it except the final action, and is shared with `transit_tc`.

use alkaid_xdp_common::{
    csum,
    hash::pick,
    wire::{
        ETH_LEN, ETH_P_IPV4, GENEVE_HDR_LEN, GENEVE_PORT, IPPROTO_UDP, IPV4_LEN, OPT_RTS_WORDS,
        OPT_TYPE_RTS, OPT_TYPE_RTS_DIRECT, OPT_TYPE_STALE, UDP_LEN,
    },
    Config, DropReason, Hop, Verdict, CONFIG_F_TC_DECAP, ENDPOINT_F_LOCAL, MAX_BOUNCERS,
};
use aya_ebpf::{bindings::xdp_action, programs::XdpContext};

use crate::{
    agent::l4_hash,
    geneve, maps,
    parse::{self, Aligned, EthHdr, Ipv4Hdr, Packet, UdpHdr},
    route, stats,
};

#[inline(always)]
pub fn run(ctx: &XdpContext) -> u32 {
    match try_run(ctx) {
        Ok(action) => action,
        Err(reason) => stats::drop(reason),
    }
}

/// What to do with a frame that arrived on the underlay.
pub enum Ingress {
    /// Not overlay traffic for us: to the kernel untouched.
    Pass,
    /// For a local endpoint: the new inner Ethernet header is `eth`; strip `inner_off` bytes
    /// and deliver via host veth `ifindex`.
    Local {
        inner_off: usize,
        eth: EthHdr,
        ifindex: u32,
    },
    /// Outer headers rewritten for the next hop: send back out of the NIC.
    Forward(Verdict),
}

#[inline(always)]
fn try_run(ctx: &XdpContext) -> Result<u32, DropReason> {
    let Some(cfg) = maps::config() else {
        // Not configured yet: behave as if absent.
        stats::verdict(Verdict::Passthrough);
        return Ok(xdp_action::XDP_PASS);
    };
    match decide(ctx, cfg)? {
        Ingress::Pass => {
            stats::verdict(Verdict::Passthrough);
            Ok(xdp_action::XDP_PASS)
        }
        Ingress::Local { .. } if cfg.flags & CONFIG_F_TC_DECAP != 0 => {
            stats::verdict(Verdict::PassToTc);
            Ok(xdp_action::XDP_PASS)
        }
        Ingress::Local {
            inner_off,
            eth,
            ifindex,
        } => {
            parse::store_eth(ctx, inner_off, &eth).ok_or(DropReason::InnerTruncated)?;
            parse::adjust_head(ctx, inner_off as i32).ok_or(DropReason::InnerTruncated)?;
            let action = maps::TX_PORTS
                .redirect(ifindex, 0)
                .map_err(|_| DropReason::NoTxPort)?;
            stats::verdict(Verdict::Decap);
            Ok(action)
        }
        Ingress::Forward(v) => {
            stats::verdict(v);
            Ok(xdp_action::XDP_TX)
        }
    }
}

/// The `transit` decision, shared by XDP and TC. Learns direct paths and rewrites the outer
/// headers of forwarded packets; never moves the packet head.
#[inline(always)]
pub fn decide<P: Packet>(ctx: &P, cfg: &Config) -> Result<Ingress, DropReason> {
    let eth: Aligned<EthHdr> = parse::load(ctx, 0).ok_or(DropReason::EthTruncated)?;
    if u16::from_be_bytes(eth.proto) != ETH_P_IPV4 {
        return Ok(Ingress::Pass);
    }
    let ip: Aligned<Ipv4Hdr> = parse::load(ctx, ETH_LEN).ok_or(DropReason::Ipv4Truncated)?;
    // Destination and protocol sit at fixed offsets: whatever is not UDP to us goes to the
    // kernel untouched, a malformed header included (the kernel judges its own traffic).
    if ip.dst() != cfg.droplet_ip || ip.proto != IPPROTO_UDP {
        return Ok(Ingress::Pass);
    }
    let ihl = ip.header_len().ok_or(DropReason::Ipv4BadIhl)?;
    let frag = u16::from_be_bytes(ip.frag);
    if frag & 0x1fff != 0 {
        // A later fragment: no UDP header to tell overlay from not; the kernel reassembles.
        return Ok(Ingress::Pass);
    }
    let udp_off = ETH_LEN + ihl;
    let udp: Aligned<UdpHdr> = parse::load(ctx, udp_off).ok_or(DropReason::UdpTruncated)?;
    if u16::from_be_bytes(udp.dport) != GENEVE_PORT {
        return Ok(Ingress::Pass);
    }
    if frag & 0x2000 != 0 {
        return Err(DropReason::Ipv4Fragment);
    }
    let tun = geneve::parse(ctx, udp_off)?;
    let inner_off = tun.inner_off;
    let inner_eth: Aligned<EthHdr> =
        parse::load(ctx, inner_off).ok_or(DropReason::InnerTruncated)?;
    if u16::from_be_bytes(inner_eth.proto) != ETH_P_IPV4 {
        return Err(DropReason::NotIpv4);
    }
    let inner_ip_off = inner_off + ETH_LEN;
    let inner: Aligned<Ipv4Hdr> =
        parse::load(ctx, inner_ip_off).ok_or(DropReason::InnerTruncated)?;
    let inner_ihl = inner.header_len().ok_or(DropReason::Ipv4BadIhl)?;
    let vni = tun.vni;
    let dst = inner.dst();

    if tun.rts_typ == OPT_TYPE_STALE {
        return stale_resend(ctx, cfg, &ip, &tun, &inner, inner_ip_off, inner_ihl);
    }

    if let Some(rec) = maps::endpoint(vni, dst) {
        let ep = &rec.ep;
        if ep.flags & ENDPOINT_F_LOCAL != 0 {
            // Straight from the sender (not via a bouncer or divider): its outer source MAC is
            // the next hop back to it.
            let direct_mac = (ip.src() == tun.rts).then_some(eth.src);
            if tun.rts != 0
                && tun.rts != cfg.droplet_ip
                && maps::learn_direct_path(cfg, vni, inner.src(), tun.rts, direct_mac)
            {
                stats::verdict(Verdict::LearnDirectPath);
            }
            return Ok(Ingress::Local {
                inner_off,
                eth: EthHdr {
                    dst: ep.mac,
                    src: cfg.gateway_mac,
                    proto: inner_eth.proto,
                },
                ifindex: ep.ifindex,
            });
        }
        if tun.rts_typ == OPT_TYPE_RTS_DIRECT {
            return stale_bounce(ctx, cfg, &eth, &ip, &tun);
        }
        // Never to ourselves, nor to 0.0.0.0 (a row being written into an empty slot).
        if ep.droplet_ip == cfg.droplet_ip || ep.droplet_ip == 0 {
            return Err(DropReason::NoRoute);
        }
        let hop = Hop {
            ip: ep.droplet_ip,
            mac: rec.droplet_mac,
            _pad: [0; 2],
        };
        return retarget(ctx, cfg, &ip, &hop, Verdict::BouncerRetarget);
    }
    if tun.rts_typ == OPT_TYPE_RTS_DIRECT {
        return stale_bounce(ctx, cfg, &eth, &ip, &tun);
    }
    let hash = l4_hash(ctx, inner_ip_off, &inner, inner_ihl);
    let (hop, verdict) = route::resolve(vni, dst, hash, cfg.droplet_ip)?;
    retarget(ctx, cfg, &ip, &hop, verdict)
}

/// A packet sent over a direct path (RTS_DIRECT) for an endpoint this droplet does not host:
/// the sender's DIRECT_PATH row is stale. Turn the packet around, unchanged but for the outer
/// header and the option type (STALE): the sender deletes the row and re-sends the frame to a
/// bouncer ([`stale_resend`]), so the packet still arrives and nothing waits for LRU aging.
/// Direct packets come straight from their sender, so its outer source MAC is the way back.
#[inline(always)]
fn stale_bounce<P: Packet>(
    ctx: &P,
    cfg: &Config,
    eth: &EthHdr,
    ip: &Ipv4Hdr,
    tun: &geneve::Tunnel,
) -> Result<Ingress, DropReason> {
    if tun.rts == 0 || tun.rts == cfg.droplet_ip {
        return Err(DropReason::NoRoute);
    }
    let hop = Hop {
        ip: tun.rts,
        mac: if ip.src() == tun.rts { eth.src } else { [0; 6] },
        _pad: [0; 2],
    };
    if !tun.rts_first {
        return Err(DropReason::GeneveMalformed);
    }
    let out = retarget(ctx, cfg, ip, &hop, Verdict::StaleBounce)?;
    set_rts_type(ctx, ip, OPT_TYPE_STALE)?;
    Ok(out)
}

/// A STALE bounce-back of a frame one of our endpoints sent over a direct path: delete
/// DIRECT_PATH (vni, inner dst) if it still points at the droplet that bounced it, and send the
/// frame to a bouncer of the endpoint's subnet (picked by the same flow hash `agent` uses)
/// with a plain RTS option. Accepted only if the option names us and the inner source is one
/// of our endpoints.
#[inline(always)]
fn stale_resend<P: Packet>(
    ctx: &P,
    cfg: &Config,
    ip: &Ipv4Hdr,
    tun: &geneve::Tunnel,
    inner: &Ipv4Hdr,
    inner_ip_off: usize,
    inner_ihl: usize,
) -> Result<Ingress, DropReason> {
    if tun.rts != cfg.droplet_ip || !tun.rts_first {
        return Err(DropReason::StaleNotOurs);
    }
    let vni = tun.vni;
    let dst = inner.dst();
    let src = maps::endpoint(vni, inner.src())
        .filter(|r| r.ep.flags & ENDPOINT_F_LOCAL != 0)
        .ok_or(DropReason::StaleNotOurs)?;
    let rec = maps::agent_endpoint(src.ep.ifindex).ok_or(DropReason::NoEndpoint)?;
    maps::forget_direct_path(vni, dst, ip.src());
    let hash = l4_hash(ctx, inner_ip_off, inner, inner_ihl);
    let n = route::clamp(rec.n_bouncers, MAX_BOUNCERS).ok_or(DropReason::NoRoute)?;
    let b = &rec.bouncers[pick(hash, n) & (MAX_BOUNCERS - 1)];
    let hop = if b.ip != cfg.droplet_ip {
        *b
    } else {
        // We bounce that subnet: our directory, else the divider logic.
        match maps::endpoint(vni, dst) {
            Some(d) if d.ep.flags & ENDPOINT_F_LOCAL == 0 && d.ep.droplet_ip != cfg.droplet_ip => {
                Hop {
                    ip: d.ep.droplet_ip,
                    mac: d.droplet_mac,
                    _pad: [0; 2],
                }
            }
            _ => route::resolve(vni, dst, hash, cfg.droplet_ip)?.0,
        }
    };
    let out = retarget(ctx, cfg, ip, &hop, Verdict::StaleResend)?;
    set_rts_type(ctx, ip, OPT_TYPE_RTS)?;
    Ok(out)
}

/// Rewrites the type byte of the first Geneve option (the RTS option, see `rts_first`),
/// together with its length byte (always `OPT_RTS_WORDS` there): a 1-byte store compiles to a
/// bounds check the verifier does not follow.
#[inline(always)]
fn set_rts_type<P: Packet>(ctx: &P, ip: &Ipv4Hdr, typ: u8) -> Result<(), DropReason> {
    let ihl = ((ip.vihl & 0x0f) as usize) * 4;
    let off = ETH_LEN + ihl + UDP_LEN + GENEVE_HDR_LEN + 2;
    parse::span::<2, _>(ctx, off)
        .ok_or(DropReason::GeneveTruncated)?
        .put_u16::<0>(u16::from_ne_bytes([typ, OPT_RTS_WORDS]));
    Ok(())
}

/// Rewrites the outer headers for `hop`: outer MACs, src = us, dst = target, TTL - 1,
/// checksum updated incrementally (valid for any IHL), UDP checksum zeroed (IPv4 allows it).
#[inline(always)]
fn retarget<P: Packet>(
    ctx: &P,
    cfg: &Config,
    ip: &Ipv4Hdr,
    hop: &Hop,
    verdict: Verdict,
) -> Result<Ingress, DropReason> {
    if ip.ttl <= 1 {
        return Err(DropReason::TtlExceeded);
    }
    let target = hop.ip;
    let mac = maps::hop_mac(cfg, target, &hop.mac).ok_or(DropReason::NoPeerMac)?;
    let ttl = ip.ttl - 1;
    let mut c = csum::replace16(
        ip.csum,
        u16::from_ne_bytes([ip.ttl, ip.proto]),
        u16::from_ne_bytes([ttl, ip.proto]),
    );
    c = csum::replace32(c, ip.src(), cfg.droplet_ip);
    c = csum::replace32(c, ip.dst(), target);
    // Outer Ethernet (the EtherType stays IPv4) and the IPv4 fields that change, from
    // registers.
    let s = parse::span::<{ ETH_LEN + IPV4_LEN }, _>(ctx, 0).ok_or(DropReason::Ipv4Truncated)?;
    s.put_mac::<0>(&mac);
    s.put_mac::<6>(&cfg.droplet_mac);
    s.put_u16::<22>(u16::from_ne_bytes([ttl, ip.proto]));
    s.put_u16::<24>(u16::from_ne_bytes(c));
    s.put_u32::<26>(cfg.droplet_ip);
    s.put_u32::<30>(target);
    // UDP checksum field: outer IHL is 5 on everything we accept from our own senders, but
    // honour the real IHL.
    let ihl = ((ip.vihl & 0x0f) as usize) * 4;
    parse::span::<2, _>(ctx, ETH_LEN + ihl + 6)
        .ok_or(DropReason::UdpTruncated)?
        .put_u16::<0>(0);
    Ok(Ingress::Forward(verdict))
}
