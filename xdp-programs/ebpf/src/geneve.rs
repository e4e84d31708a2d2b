//! Geneve on the wire: building the outer headers (`agent`) and parsing them with the option
//! TLV walk (`transit`). Formats in `alkaid_xdp_common::wire`.

use alkaid_xdp_common::{
    csum,
    wire::{
        ENCAP_LEN, ETH_LEN, ETH_P_IPV4, GENEVE_HDR_LEN, GENEVE_PORT, GENEVE_PROTO_ETHERNET,
        IPPROTO_UDP, IPV4_LEN, MAX_OPTIONS, OPT_CLASS_ALKAID, OPT_RTS_WORDS, OPT_TYPE_RTS,
        OPT_TYPE_RTS_DIRECT, OPT_TYPE_STALE, OUTER_TTL, SPORT_BASE, SPORT_MASK, UDP_LEN,
    },
    Config, DropReason, Verdict,
};
use aya_ebpf::{
    bindings::{
        bpf_adj_room_mode::BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L2_ETH,
        BPF_F_ADJ_ROOM_ENCAP_L3_IPV4, BPF_F_ADJ_ROOM_ENCAP_L4_UDP, BPF_F_ADJ_ROOM_FIXED_GSO,
    },
    programs::{TcContext, XdpContext},
};

use crate::{
    agent::Encap,
    parse::{self, EthHdr, GeneveHdr, GeneveOpt, Ipv4Hdr, Packet, UdpHdr},
};

/// Everything `agent` prepends, written with one store.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Outer {
    eth: EthHdr,
    ip: Ipv4Hdr,
    udp: UdpHdr,
    gnv: GeneveHdr,
    opt: GeneveOpt,
    rts: [u8; 4],
}
const _: () = assert!(core::mem::size_of::<Outer>() == ENCAP_LEN);

/// The outer headers for an inner frame of `inner_len` bytes (Ethernet included).
#[inline(always)]
pub fn outer(cfg: &Config, e: &Encap, inner_len: usize) -> Outer {
    let (src_ip, dst_ip) = (cfg.droplet_ip, e.target);
    // Wraps for a GSO super-frame over 64 KiB; segmentation rewrites the length per segment.
    let ip_len = (inner_len + ENCAP_LEN - ETH_LEN) as u16;
    let udp_len = ip_len.wrapping_sub(IPV4_LEN as u16);
    // Only the length and the addresses vary: the checksum is computed from them, not by
    // summing a header.
    let ip = Ipv4Hdr {
        vihl: 0x45,
        tos: 0,
        tot_len: ip_len.to_be_bytes(),
        id: [0, 0],
        frag: 0x4000u16.to_be_bytes(), // DF
        ttl: OUTER_TTL,
        proto: IPPROTO_UDP,
        csum: csum::ipv4_encap(ip_len, OUTER_TTL, src_ip, dst_ip),
        src: src_ip.to_ne_bytes(),
        dst: dst_ip.to_ne_bytes(),
    };
    let vni_be = e.vni.to_be_bytes();
    Outer {
        eth: EthHdr {
            dst: e.mac,
            src: cfg.droplet_mac,
            proto: ETH_P_IPV4.to_be_bytes(),
        },
        ip,
        udp: UdpHdr {
            sport: (SPORT_BASE | (e.hash as u16 & SPORT_MASK)).to_be_bytes(),
            dport: GENEVE_PORT.to_be_bytes(),
            len: udp_len.to_be_bytes(),
            csum: [0, 0],
        },
        gnv: GeneveHdr {
            ver_optlen: ((4 + 4 * OPT_RTS_WORDS as usize) / 4) as u8,
            flags: 0,
            proto: GENEVE_PROTO_ETHERNET.to_be_bytes(),
            vni: [vni_be[1], vni_be[2], vni_be[3]],
            rsvd: 0,
        },
        opt: GeneveOpt {
            class: OPT_CLASS_ALKAID.to_be_bytes(),
            // Over a learned direct path the option says so: a droplet that no longer hosts the
            // destination then bounces the packet back (see `transit`).
            typ: if matches!(e.verdict, Verdict::EncapDirect) {
                OPT_TYPE_RTS_DIRECT
            } else {
                OPT_TYPE_RTS
            },
            len: OPT_RTS_WORDS,
        },
        rts: src_ip.to_ne_bytes(),
    }
}

/// XDP: prepends `outer` to the frame (one bpf_xdp_adjust_head, one store).
#[inline(always)]
pub fn encap(ctx: &XdpContext, outer: &Outer) -> Result<(), DropReason> {
    parse::adjust_head(ctx, -(ENCAP_LEN as i32)).ok_or(DropReason::NoHeadroom)?;
    parse::store(ctx, 0, outer).ok_or(DropReason::NoHeadroom)
}

/// TC: grows room after the Ethernet header with `bpf_skb_adjust_room`, telling the kernel it
/// is a UDP tunnel over IPv4 carrying Ethernet (so GSO segments the inner TCP and fixes the
/// outer lengths per segment: TSO/GSO survive encapsulation), then writes `outer` at 0 and the
/// original Ethernet header behind it as the inner one. `gso_size` is kept (FIXED_GSO): the
/// pod MTU already leaves room for the overhead.
#[inline(always)]
pub fn encap_tc(ctx: &TcContext, outer: &Outer) -> Result<(), DropReason> {
    let inner_eth: EthHdr = parse::load(ctx, 0).ok_or(DropReason::EthTruncated)?;
    let flags = (BPF_F_ADJ_ROOM_FIXED_GSO
        | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4
        | BPF_F_ADJ_ROOM_ENCAP_L4_UDP
        | BPF_F_ADJ_ROOM_ENCAP_L2_ETH) as u64
        | ((ETH_LEN as u64) << 56); // BPF_F_ADJ_ROOM_ENCAP_L2(inner MAC header length)
    ctx.adjust_room(ENCAP_LEN as i32, BPF_ADJ_ROOM_MAC, flags)
        .map_err(|_| DropReason::NoHeadroom)?;
    parse::store(ctx, 0, outer).ok_or(DropReason::NoHeadroom)?;
    parse::store(ctx, ENCAP_LEN, &inner_eth).ok_or(DropReason::NoHeadroom)
}

/// A parsed overlay packet addressed to this droplet.
pub struct Tunnel {
    /// VNI (host order).
    pub vni: u32,
    /// Return-to-sender droplet (0 if the option was absent).
    pub rts: u32,
    /// Type of the return-to-sender option (`OPT_TYPE_RTS`, `_RTS_DIRECT` or `_STALE`; 0 if
    /// absent).
    pub rts_typ: u8,
    /// The RTS option is the first option (as `agent` sends it): only then do the stale bounce
    /// and the resend rewrite its type byte (at a fixed distance from the UDP header).
    pub rts_first: bool,
    /// Offset of the inner Ethernet header.
    pub inner_off: usize,
}

/// Parses UDP (already known to be to port 6081 at `udp_off`), the Geneve header and its
/// options. Unknown options are skipped; lengths that overrun the option area are rejected.
#[inline(always)]
pub fn parse<P: Packet>(ctx: &P, udp_off: usize) -> Result<Tunnel, DropReason> {
    let gnv_off = udp_off + UDP_LEN;
    let gnv: GeneveHdr = parse::load(ctx, gnv_off).ok_or(DropReason::GeneveTruncated)?;
    if gnv.ver_optlen >> 6 != 0 || u16::from_be_bytes(gnv.proto) != GENEVE_PROTO_ETHERNET {
        return Err(DropReason::GeneveMalformed);
    }
    let opt_len = ((gnv.ver_optlen & 0x3f) as usize) * 4;
    let opts_off = gnv_off + GENEVE_HDR_LEN;
    let mut off = 0usize;
    let mut rts = 0u32;
    let mut rts_typ = 0u8;
    let mut rts_first = false;
    for _ in 0..MAX_OPTIONS {
        if off >= opt_len {
            break;
        }
        let o: GeneveOpt = parse::load(ctx, opts_off + off).ok_or(DropReason::GeneveTruncated)?;
        let words = (o.len & 0x1f) as usize;
        let olen = 4 + words * 4;
        if off + olen > opt_len {
            return Err(DropReason::GeneveBadOptLen);
        }
        let typ = o.typ & 0x7f;
        if u16::from_be_bytes(o.class) == OPT_CLASS_ALKAID
            && (typ == OPT_TYPE_RTS || typ == OPT_TYPE_RTS_DIRECT || typ == OPT_TYPE_STALE)
        {
            if words != OPT_RTS_WORDS as usize {
                return Err(DropReason::GeneveBadOptLen);
            }
            let ip: [u8; 4] =
                parse::load(ctx, opts_off + off + 4).ok_or(DropReason::GeneveTruncated)?;
            rts = u32::from_ne_bytes(ip);
            rts_typ = typ;
            rts_first = off == 0;
        }
        off += olen;
    }
    if off < opt_len {
        return Err(DropReason::GeneveMalformed);
    }
    let vni = u32::from_be_bytes([0, gnv.vni[0], gnv.vni[1], gnv.vni[2]]);
    Ok(Tunnel {
        vni,
        rts,
        rts_typ,
        rts_first,
        inner_off: opts_off + opt_len,
    })
}
