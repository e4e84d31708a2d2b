//! Geneve on the wire: building the outer headers (`agent`) and parsing them with the option
//! TLV walk (`transit`). Formats in `alkaid_xdp_common::wire`.

use alkaid_xdp_common::{
    csum,
    wire::{
        ENCAP_LEN, ETH_LEN, ETH_P_IPV4, GENEVE_HDR_LEN, GENEVE_PORT, GENEVE_PROTO_ETHERNET,
        IPPROTO_UDP, IPV4_LEN, MAX_OPTIONS, OPT_CLASS_ALKAID, OPT_RTS_WORDS, OPT_TYPE_RTS,
        OUTER_TTL, SPORT_BASE, SPORT_MASK, UDP_LEN,
    },
    DropReason,
};
use aya_ebpf::programs::XdpContext;

use crate::parse::{self, EthHdr, GeneveHdr, GeneveOpt, Ipv4Hdr, UdpHdr};

/// Everything `agent` prepends, written with one store.
#[repr(C)]
#[derive(Clone, Copy)]
struct Outer {
    eth: EthHdr,
    ip: Ipv4Hdr,
    udp: UdpHdr,
    gnv: GeneveHdr,
    opt: GeneveOpt,
    rts: [u8; 4],
}
const _: () = assert!(core::mem::size_of::<Outer>() == ENCAP_LEN);

/// Prepends Ethernet/IPv4/UDP/Geneve/RTS to the current frame. `hash` feeds the UDP source port.
#[inline(always)]
pub fn encap(
    ctx: &XdpContext,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src_ip: u32,
    dst_ip: u32,
    vni: u32,
    hash: u32,
) -> Result<(), DropReason> {
    let inner_len = parse::frame_len(ctx);
    parse::adjust_head(ctx, -(ENCAP_LEN as i32)).ok_or(DropReason::NoHeadroom)?;
    let ip_len = (inner_len + ENCAP_LEN - ETH_LEN) as u16;
    let udp_len = ip_len - IPV4_LEN as u16;
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
    let vni_be = vni.to_be_bytes();
    let outer = Outer {
        eth: EthHdr {
            dst: dst_mac,
            src: src_mac,
            proto: ETH_P_IPV4.to_be_bytes(),
        },
        ip,
        udp: UdpHdr {
            sport: (SPORT_BASE | (hash as u16 & SPORT_MASK)).to_be_bytes(),
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
            typ: OPT_TYPE_RTS,
            len: OPT_RTS_WORDS,
        },
        rts: src_ip.to_ne_bytes(),
    };
    parse::store(ctx, 0, &outer).ok_or(DropReason::NoHeadroom)
}

/// A parsed overlay packet addressed to this droplet.
pub struct Tunnel {
    /// VNI (host order).
    pub vni: u32,
    /// Return-to-sender droplet (0 if the option was absent).
    pub rts: u32,
    /// Offset of the inner Ethernet header.
    pub inner_off: usize,
}

/// Parses UDP (already known to be to port 6081 at `udp_off`), the Geneve header and its
/// options. Unknown options are skipped; lengths that overrun the option area are rejected.
#[inline(always)]
pub fn parse(ctx: &XdpContext, udp_off: usize) -> Result<Tunnel, DropReason> {
    let gnv_off = udp_off + UDP_LEN;
    let gnv: GeneveHdr = parse::load(ctx, gnv_off).ok_or(DropReason::GeneveTruncated)?;
    if gnv.ver_optlen >> 6 != 0 || u16::from_be_bytes(gnv.proto) != GENEVE_PROTO_ETHERNET {
        return Err(DropReason::GeneveMalformed);
    }
    let opt_len = ((gnv.ver_optlen & 0x3f) as usize) * 4;
    let opts_off = gnv_off + GENEVE_HDR_LEN;
    let mut off = 0usize;
    let mut rts = 0u32;
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
        if u16::from_be_bytes(o.class) == OPT_CLASS_ALKAID && o.typ & 0x7f == OPT_TYPE_RTS {
            if words != OPT_RTS_WORDS as usize {
                return Err(DropReason::GeneveBadOptLen);
            }
            let ip: [u8; 4] =
                parse::load(ctx, opts_off + off + 4).ok_or(DropReason::GeneveTruncated)?;
            rts = u32::from_ne_bytes(ip);
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
        inner_off: opts_off + opt_len,
    })
}
