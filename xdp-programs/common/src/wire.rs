//! On-the-wire constants: Geneve, the return-to-sender option, encapsulation overhead.
//!
//! Outer packet built by `agent`:
//! `Ethernet(14) | IPv4(20, DF, TTL 64) | UDP(8, dst 6081, src from flow hash, csum 0) |
//!  Geneve(8, ver 0, opt_len 2, proto 0x6558, VNI) | RTS option(8) | inner Ethernet frame`.
//!
//! The return-to-sender (RTS) option, TLV per RFC 8926 section 3.5:
//! `class 0xFFF1 (experimental range) | type 0x01 (critical bit clear) | rsvd 0, len 1 |
//!  sender droplet IPv4 (4 bytes)`. Receivers that do not know it skip it.

/// Geneve UDP destination port (IANA).
pub const GENEVE_PORT: u16 = 6081;
/// Geneve protocol type: transparent Ethernet bridging.
pub const GENEVE_PROTO_ETHERNET: u16 = 0x6558;
/// Geneve base header length.
pub const GENEVE_HDR_LEN: usize = 8;
/// Alkaid option class (RFC 8926 experimental-use range).
pub const OPT_CLASS_ALKAID: u16 = 0xFFF1;
/// Return-to-sender option type (critical bit 0x80 clear: ignorable by others).
pub const OPT_TYPE_RTS: u8 = 0x01;
/// Return-to-sender, sent over a learned DIRECT_PATH row (same layout as [`OPT_TYPE_RTS`]). A
/// droplet that gets it for an endpoint it does not host knows the sender's row is stale and
/// turns the packet around as [`OPT_TYPE_STALE`].
pub const OPT_TYPE_RTS_DIRECT: u8 = 0x02;
/// "Stale direct path" bounce-back (same layout; the data is still the original sender, to
/// whom the packet is now addressed): the receiver deletes DIRECT_PATH (vni, inner dst) and
/// re-sends the inner frame to a bouncer with a plain [`OPT_TYPE_RTS`].
pub const OPT_TYPE_STALE: u8 = 0x03;
/// RTS option data length in 4-byte words (the sender droplet's IPv4).
pub const OPT_RTS_WORDS: u8 = 1;
/// RTS option total length (header + data).
pub const OPT_RTS_LEN: usize = 4 + 4 * OPT_RTS_WORDS as usize;
/// Maximum option TLVs walked per packet (verifier bound); more is `GeneveMalformed`.
pub const MAX_OPTIONS: usize = 8;

/// Ethernet header length.
pub const ETH_LEN: usize = 14;
/// IPv4 header length without options.
pub const IPV4_LEN: usize = 20;
/// UDP header length.
pub const UDP_LEN: usize = 8;
/// Bytes `agent` prepends to the inner frame.
pub const ENCAP_LEN: usize = ETH_LEN + IPV4_LEN + UDP_LEN + GENEVE_HDR_LEN + OPT_RTS_LEN;
/// Underlay IP bytes added to an inner IP packet: 50 (inner Ethernet, outer IPv4, UDP, Geneve)
/// plus the RTS option. Pod MTU = underlay MTU - OVERHEAD.
pub const OVERHEAD: u32 = (ETH_LEN + IPV4_LEN + UDP_LEN + GENEVE_HDR_LEN + OPT_RTS_LEN) as u32;
const _: () = assert!(OVERHEAD == 58 && ENCAP_LEN == 58);

/// TTL of a freshly encapsulated outer header.
pub const OUTER_TTL: u8 = 64;
/// Outer UDP source ports are `SPORT_BASE | (flow hash & SPORT_MASK)` (RFC 8086 range).
pub const SPORT_BASE: u16 = 0xC000;
/// See [`SPORT_BASE`].
pub const SPORT_MASK: u16 = 0x3FFF;

/// EtherTypes.
pub const ETH_P_IPV4: u16 = 0x0800;
/// EtherTypes.
pub const ETH_P_ARP: u16 = 0x0806;
/// IP protocol numbers.
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol numbers.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol numbers.
pub const IPPROTO_UDP: u8 = 17;

/// ICMP "destination unreachable" / "fragmentation needed" (RFC 792, RFC 1191).
pub const ICMP_DEST_UNREACH: u8 = 3;
/// Code of [`ICMP_DEST_UNREACH`]: fragmentation needed and DF set.
pub const ICMP_FRAG_NEEDED: u8 = 4;
/// ICMP header length.
pub const ICMP_LEN: usize = 8;
/// What an ICMP error from `agent` quotes: the original IPv4 header (no options) and the first
/// 8 bytes of its payload.
pub const ICMP_QUOTE_LEN: usize = IPV4_LEN + 8;
/// Length of the "fragmentation needed" frame `agent` sends back into a pod.
pub const ICMP_REPLY_LEN: usize = ETH_LEN + IPV4_LEN + ICMP_LEN + ICMP_QUOTE_LEN;
