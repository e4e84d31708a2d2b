//! Geneve on the wire: building the outer headers (`agent`) and parsing them with the option
//! TLV walk (`transit`). Formats in `alkaid_xdp_common::wire`.

use alkaid_xdp_common::{
    csum,
    wire::{
        ENCAP_LEN, ETH_LEN, ETH_P_IPV4, GENEVE_HDR_LEN, GENEVE_PORT, GENEVE_PROTO_ETHERNET,
        IPPROTO_UDP, IPV4_LEN, MAX_OPTIONS, OPT_CLASS_ALKAID, OPT_RTS_LEN, OPT_RTS_WORDS,
        OPT_TYPE_RTS, OPT_TYPE_RTS_DIRECT, OPT_TYPE_STALE, OUTER_TTL, SPORT_BASE, SPORT_MASK,
        UDP_LEN,
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
    parse::{self, be16, mac48, ne32, Aligned, EthHdr, GeneveHdr, GeneveOpt, Packet},
};

/// Everything `agent` prepends (the [`ENCAP_LEN`] = 58 bytes of outer Ethernet, IPv4, UDP,
/// Geneve and the RTS option), as 7 full words and 2 bytes in the 8th.
pub type Outer = parse::Words<8>;

/// The outer headers for an inner frame of `inner_len` bytes (Ethernet included), built in
/// registers. Byte offsets are the wire format of `alkaid_xdp_common::wire`.
#[inline(always)]
pub fn outer(cfg: &Config, e: &Encap, inner_len: usize) -> Outer {
    let (src_ip, dst_ip) = (cfg.droplet_ip, e.target);
    // Wraps for a GSO super-frame over 64 KiB; segmentation rewrites the length per segment.
    let ip_len = (inner_len + ENCAP_LEN - ETH_LEN) as u16;
    let udp_len = ip_len.wrapping_sub(IPV4_LEN as u16);
    // Over a learned direct path the option says so: a droplet that no longer hosts the
    // destination then bounces the packet back (see `transit`).
    let opt_type = if matches!(e.verdict, Verdict::EncapDirect | Verdict::EncapNeigh) {
        OPT_TYPE_RTS_DIRECT
    } else {
        OPT_TYPE_RTS
    };
    let mut h = Outer::new();
    // Ethernet.
    h.put(0, 6, mac48(&e.mac));
    h.put(6, 6, mac48(&cfg.droplet_mac));
    h.put(12, 2, be16(ETH_P_IPV4));
    // IPv4: version/IHL 0x45, TOS 0, length, id 0, DF, TTL, UDP, checksum, addresses. Only
    // the length and the addresses vary: the checksum is computed from them.
    h.put(14, 1, 0x45);
    h.put(16, 2, be16(ip_len));
    h.put(20, 2, be16(0x4000));
    h.put(22, 1, u64::from(OUTER_TTL));
    h.put(23, 1, u64::from(IPPROTO_UDP));
    let csum = csum::ipv4_encap(ip_len, OUTER_TTL, src_ip, dst_ip);
    h.put(24, 2, u64::from(u16::from_ne_bytes(csum)));
    h.put(26, 4, ne32(src_ip));
    h.put(30, 4, ne32(dst_ip));
    // UDP: entropy in the source port, checksum 0.
    h.put(34, 2, be16(SPORT_BASE | (e.hash as u16 & SPORT_MASK)));
    h.put(36, 2, be16(GENEVE_PORT));
    h.put(38, 2, be16(udp_len));
    // Geneve: version 0, option length in words, Ethernet, VNI (24 bits), then the RTS option.
    h.put(42, 1, (OPT_RTS_LEN / 4) as u64);
    h.put(44, 2, be16(GENEVE_PROTO_ETHERNET));
    h.put(46, 3, u64::from((e.vni << 8).to_be()));
    h.put(50, 2, be16(OPT_CLASS_ALKAID));
    h.put(52, 1, u64::from(opt_type));
    h.put(53, 1, u64::from(OPT_RTS_WORDS));
    h.put(54, 4, ne32(src_ip));
    h
}

/// Stores `outer` at the start of the packet: 7 word stores and a 2-byte one.
#[inline(always)]
fn write_outer<P: Packet>(ctx: &P, outer: &Outer) -> Result<(), DropReason> {
    let s = parse::span::<ENCAP_LEN, _>(ctx, 0).ok_or(DropReason::NoHeadroom)?;
    let w = &outer.0;
    s.put_u64::<0>(w[0]);
    s.put_u64::<8>(w[1]);
    s.put_u64::<16>(w[2]);
    s.put_u64::<24>(w[3]);
    s.put_u64::<32>(w[4]);
    s.put_u64::<40>(w[5]);
    s.put_u64::<48>(w[6]);
    s.put_u16::<56>(w[7] as u16);
    Ok(())
}

/// XDP: prepends `outer` to the frame (one bpf_xdp_adjust_head, eight stores).
#[inline(always)]
pub fn encap(ctx: &XdpContext, outer: &Outer) -> Result<(), DropReason> {
    parse::adjust_head(ctx, -(ENCAP_LEN as i32)).ok_or(DropReason::NoHeadroom)?;
    write_outer(ctx, outer)
}

/// TC: grows room after the Ethernet header with `bpf_skb_adjust_room`, telling the kernel it
/// is a UDP tunnel over IPv4 carrying Ethernet (so GSO segments the inner TCP and fixes the
/// outer lengths per segment: TSO/GSO survive encapsulation), then writes `outer` at 0 and the
/// original Ethernet header behind it as the inner one. `gso_size` is kept (FIXED_GSO): the
/// pod MTU already leaves room for the overhead.
///
/// A pod running a tunnel of its own (VXLAN, Geneve, GRE inside the pod) sends frames the
/// kernel already marks encapsulated (for a checksum left to offload), and it refuses to
/// describe a tunnel in a tunnel. Such a frame outside GSO still gets the room, without the
/// description: its pending checksum's offsets count from the buffer's head and stay right,
/// and nothing segments it. A GSO frame of a pod's own tunnel stays refused (segmenting it
/// after our headers went on would go wrong on a real NIC): the agent turns tunnel
/// segmentation off on pods' interfaces, so their kernel segments first.
#[inline(always)]
pub fn encap_tc(ctx: &TcContext, outer: &Outer, gso_size: u32) -> Result<(), DropReason> {
    let inner_eth: Aligned<EthHdr> = parse::load(ctx, 0).ok_or(DropReason::EthTruncated)?;
    let flags = (BPF_F_ADJ_ROOM_FIXED_GSO
        | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4
        | BPF_F_ADJ_ROOM_ENCAP_L4_UDP
        | BPF_F_ADJ_ROOM_ENCAP_L2_ETH) as u64
        | ((ETH_LEN as u64) << 56); // BPF_F_ADJ_ROOM_ENCAP_L2(inner MAC header length)
    if ctx
        .adjust_room(ENCAP_LEN as i32, BPF_ADJ_ROOM_MAC, flags)
        .is_err()
    {
        if gso_size != 0 {
            return Err(DropReason::NoHeadroom);
        }
        ctx.adjust_room(ENCAP_LEN as i32, BPF_ADJ_ROOM_MAC, 0)
            .map_err(|_| DropReason::NoHeadroom)?;
    }
    write_outer(ctx, outer)?;
    parse::store_eth(ctx, ENCAP_LEN, &inner_eth).ok_or(DropReason::NoHeadroom)
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
    let gnv: Aligned<GeneveHdr> = parse::load(ctx, gnv_off).ok_or(DropReason::GeneveTruncated)?;
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
        let o: Aligned<GeneveOpt> =
            parse::load(ctx, opts_off + off).ok_or(DropReason::GeneveTruncated)?;
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
            let ip: Aligned<[u8; 4]> =
                parse::load(ctx, opts_off + off + 4).ok_or(DropReason::GeneveTruncated)?;
            rts = u32::from_ne_bytes(*ip);
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
