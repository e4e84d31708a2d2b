//! ICMP "fragmentation needed" for `agent`: a pod packet too large for the underlay once
//! encapsulated, with DF set, is turned in place into the error a router on the path would
//! send (RFC 1191): from the subnet's gateway, quoting the packet's IPv4 header and 8 bytes of
//! its payload, carrying the pod MTU (the underlay MTU minus the encapsulation overhead). The
//! pod's path MTU discovery then shrinks its packets (TCP its segment size) instead of the flow
//! stalling on silent drops; nothing leaves the host. Answered only for packets without IP
//! options, and never for an ICMP message other than an echo (no error about an error); the
//! rest is dropped and counted as `too_big`, as are packets without DF (we cannot fragment).
//!
//! The caller reshapes the frame first (XDP: `bpf_xdp_adjust_head` and `_tail`; TC:
//! `bpf_skb_change_tail`, then `bpf_skb_adjust_room`) so that it is [`ICMP_REPLY_LEN`] bytes
//! with the quote already in place at [`QUOTE_AT`]: only the three new headers are written.

use alkaid_xdp_common::{
    csum,
    wire::{
        ETH_LEN, ETH_P_IPV4, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMP_LEN, ICMP_QUOTE_LEN,
        IPPROTO_ICMP, IPV4_LEN, OVERHEAD,
    },
    Config, DropReason,
};

use crate::parse::{self, EthHdr, Ipv4Hdr, Packet};

/// Where the quote (the original IPv4 header) sits in the reply.
pub const QUOTE_AT: usize = ETH_LEN + IPV4_LEN + ICMP_LEN;
/// Bytes the reply needs in front of the quote that the original frame does not have.
pub const GROW: usize = IPV4_LEN + ICMP_LEN;

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
/// Type of service of the reply: internetwork control, as routers send ICMP errors.
const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;
const REPLY_TTL: u8 = 64;

/// The pod a reply goes to.
#[derive(Clone, Copy)]
pub struct Pod {
    pub mac: [u8; 6],
    pub ip: u32,
    pub gateway: u32,
}

/// Whether the too-large packet with header `ip` (of length `ihl`, at ETH_LEN) gets an answer.
#[inline(always)]
pub fn answers<P: Packet>(ctx: &P, ip: &Ipv4Hdr, ihl: usize) -> bool {
    let df = u16::from_be_bytes(ip.frag) & 0x4000 != 0;
    if !df || ihl != IPV4_LEN {
        return false;
    }
    if ip.proto != IPPROTO_ICMP {
        return true;
    }
    matches!(
        parse::load::<u8, _>(ctx, ETH_LEN + IPV4_LEN).map(|t| *t),
        Some(ICMP_ECHO_REQUEST | ICMP_ECHO_REPLY)
    )
}

/// Writes the Ethernet, IPv4 and ICMP headers of the reply to `pod` in front of the quote.
#[inline(always)]
pub fn write<P: Packet>(ctx: &P, pod: &Pod, cfg: &Config) -> Result<(), DropReason> {
    let quote = parse::load::<[u8; ICMP_QUOTE_LEN], _>(ctx, QUOTE_AT).ok_or(DropReason::TooBig)?;
    let mtu = (cfg.mtu.saturating_sub(OVERHEAD) as u16).to_be_bytes();
    let mut sum = u16::from_ne_bytes([ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED]) as u32
        + u16::from_ne_bytes(mtu) as u32;
    let mut i = 0;
    while i < ICMP_QUOTE_LEN {
        sum += u16::from_ne_bytes([quote[i], quote[i + 1]]) as u32;
        i += 2;
    }
    let icmp_csum = (!csum::fold(sum)).to_ne_bytes();
    let icmp = [
        ICMP_DEST_UNREACH,
        ICMP_FRAG_NEEDED,
        icmp_csum[0],
        icmp_csum[1],
        0,
        0,
        mtu[0],
        mtu[1],
    ];
    let tot_len = ((IPV4_LEN + ICMP_LEN + ICMP_QUOTE_LEN) as u16).to_be_bytes();
    let (src, dst) = (pod.gateway.to_ne_bytes(), pod.ip.to_ne_bytes());
    let mut ip = [
        0x45,
        TOS_INTERNETWORK_CONTROL,
        tot_len[0],
        tot_len[1],
        0,
        0,
        0,
        0,
        REPLY_TTL,
        IPPROTO_ICMP,
        0,
        0,
        src[0],
        src[1],
        src[2],
        src[3],
        dst[0],
        dst[1],
        dst[2],
        dst[3],
    ];
    let c = csum::ipv4_header(&ip);
    ip[10] = c[0];
    ip[11] = c[1];
    let eth = EthHdr {
        dst: pod.mac,
        src: cfg.gateway_mac,
        proto: ETH_P_IPV4.to_be_bytes(),
    };
    parse::store_eth(ctx, 0, &eth).ok_or(DropReason::TooBig)?;
    parse::store(ctx, ETH_LEN, &ip).ok_or(DropReason::TooBig)?;
    parse::store(ctx, ETH_LEN + IPV4_LEN, &icmp).ok_or(DropReason::TooBig)
}
