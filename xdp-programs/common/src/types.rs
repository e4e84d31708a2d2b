//! Map keys and values. `#[repr(C)]`, explicit padding, sizes asserted at compile time.
//!
//! IPv4 addresses are wire bytes in a `u32` (see the crate docs); VNIs are host-order `u32`.

use core::mem::{align_of, size_of};

/// Maximum bouncers listed per subnet in [`NetworkValue`].
pub const MAX_BOUNCERS: usize = 16;
/// Maximum dividers listed per VPC in [`VpcValue`].
pub const MAX_DIVIDERS: usize = 16;

/// Key of ENDPOINTS and DIRECT_PATH: an endpoint address inside one VPC.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointKey {
    /// VPC VNI (host order, low 24 bits).
    pub vni: u32,
    /// Endpoint IPv4 (wire bytes).
    pub ip: u32,
}
const _: () = assert!(size_of::<EndpointKey>() == 8 && align_of::<EndpointKey>() == 4);

/// [`EndpointValue::flags`]: the endpoint is hosted on this droplet (deliver via `ifindex`).
pub const ENDPOINT_F_LOCAL: u32 = 1;

/// Value of ENDPOINTS. Rows: LocalEndpoint (flag LOCAL, `ifindex` = host-side veth) and
/// Endpoint (bouncer directory: `droplet_ip` hosts it).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EndpointValue {
    /// Droplet hosting the endpoint (wire bytes).
    pub droplet_ip: u32,
    /// Host-side veth ifindex for local endpoints, else 0.
    pub ifindex: u32,
    /// `ENDPOINT_F_*`.
    pub flags: u32,
    /// Endpoint MAC (inner destination MAC on delivery).
    pub mac: [u8; 6],
    /// Zero.
    pub _pad: [u8; 2],
}
const _: () = assert!(size_of::<EndpointValue>() == 20 && align_of::<EndpointValue>() == 4);

/// Data part of the NETWORKS LPM key; the full key is `{prefix_len: u32, NetworkKey}` with
/// `prefix_len = 32 + cidr prefix` (the VNI always matches exactly). See [`network_prefix_len`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetworkKey {
    /// VPC VNI. Any fixed byte order works since all 32 bits are always matched.
    pub vni: u32,
    /// Subnet network address (wire bytes, so prefix bits match in order).
    pub ip: u32,
}
const _: () = assert!(size_of::<NetworkKey>() == 8 && align_of::<NetworkKey>() == 4);

/// LPM prefix length of a NETWORKS key for a subnet of `cidr_prefix` bits.
#[inline(always)]
pub const fn network_prefix_len(cidr_prefix: u32) -> u32 {
    32 + cidr_prefix
}

/// Value of NETWORKS: a subnet's bouncers (on dividers for every subnet of the VPC, and on
/// droplets hosting endpoints of the subnet).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NetworkValue {
    /// Valid entries in `bouncers` (1..=16; 0 = no route).
    pub n_bouncers: u32,
    /// Subnet gateway address (wire bytes); answered by the `agent` ARP responder like any IP.
    pub gateway: u32,
    /// Bouncer droplet IPs (wire bytes).
    pub bouncers: [u32; MAX_BOUNCERS],
}
const _: () = assert!(size_of::<NetworkValue>() == 72 && align_of::<NetworkValue>() == 4);

/// Value of VPCS (key: VNI `u32`): the VPC's dividers (held by the VPC's bouncers).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VpcValue {
    /// Valid entries in `dividers`.
    pub n_dividers: u32,
    /// Divider droplet IPs (wire bytes).
    pub dividers: [u32; MAX_DIVIDERS],
}
const _: () = assert!(size_of::<VpcValue>() == 68 && align_of::<VpcValue>() == 4);

/// Value of PEERS (key: droplet IP `u32`): MAC to put in the outer Ethernet destination.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PeerValue {
    /// Next-hop MAC for that droplet (its NIC on a flat underlay, else the router).
    pub mac: [u8; 6],
    /// Zero.
    pub _pad: [u8; 2],
}
const _: () = assert!(size_of::<PeerValue>() == 8 && align_of::<PeerValue>() == 1);

/// Value of AGENT_ENDPOINTS (key: host-side veth ifindex `u32`): the endpoint behind the veth
/// the `agent` program is attached to. The VNI used for encapsulation comes from here, never
/// from the packet.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AgentEndpoint {
    /// VPC VNI.
    pub vni: u32,
    /// Endpoint IPv4 (wire bytes): the only source IP it may send from.
    pub ip: u32,
    /// Endpoint MAC: the only source MAC it may send from.
    pub mac: [u8; 6],
    /// Zero.
    pub _pad: [u8; 2],
    /// The endpoint's subnet, as a NETWORKS key: `network_prefix_len(cidr prefix)`.
    pub net_prefix_len: u32,
    /// Subnet network address (wire bytes).
    pub net_ip: u32,
    /// Subnet gateway (wire bytes). Informational: the ARP responder answers for every address.
    pub gateway: u32,
}
const _: () = assert!(size_of::<AgentEndpoint>() == 28 && align_of::<AgentEndpoint>() == 4);

impl AgentEndpoint {
    /// A row; `net_prefix` is the subnet's CIDR prefix length (the NETWORKS key length is
    /// derived from it).
    pub const fn new(
        vni: u32,
        ip: u32,
        mac: [u8; 6],
        net_ip: u32,
        net_prefix: u32,
        gateway: u32,
    ) -> Self {
        Self {
            vni,
            ip,
            mac,
            _pad: [0; 2],
            net_prefix_len: network_prefix_len(net_prefix),
            net_ip,
            gateway,
        }
    }

    /// The NETWORKS key of this endpoint's subnet.
    #[inline(always)]
    pub const fn network_key(&self) -> (u32, NetworkKey) {
        (
            self.net_prefix_len,
            NetworkKey {
                vni: self.vni,
                ip: self.net_ip,
            },
        )
    }
}

/// [`DirectPathValue::flags`]: learned from a return-to-sender option (else control-plane set).
pub const DIRECT_PATH_F_LEARNED: u32 = 1;

/// Value of DIRECT_PATH (key: [`EndpointKey`]): send straight to this droplet.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DirectPathValue {
    /// Droplet hosting the endpoint (wire bytes).
    pub droplet_ip: u32,
    /// `DIRECT_PATH_F_*`.
    pub flags: u32,
    /// Cached outer destination MAC of `droplet_ip` (PEERS, else the default peer MAC), filled
    /// when the row is written; all zero = look PEERS up per packet. Saves a lookup per packet.
    pub mac: [u8; 6],
    /// Zero.
    pub _pad: [u8; 2],
}
const _: () = assert!(size_of::<DirectPathValue>() == 16 && align_of::<DirectPathValue>() == 4);

/// Value of DP_CACHE, a per-CPU direct-mapped cache of DIRECT_PATH lookups (hits, and misses
/// as a zero `path.droplet_ip`) at index
/// [`dp_cache_slot`]`(vni, ip)`: the per-packet DIRECT_PATH lookups (`agent`'s, and the check
/// `transit` makes before learning) become inlined array accesses in the steady state.
///
/// Valid only while both generations still equal DP_GEN's (u64 counters, `[0]` bumped
/// atomically by the programs, `[1]` by the loader, each *after* it changed a DIRECT_PATH row;
/// entries keep their low 32 bits); a program fills
/// an entry only from a lookup, with the generations it read before that lookup. So any
/// change to DIRECT_PATH empties every CPU's cache at once. Per CPU: no entry is written by
/// two CPUs, none is ever read torn.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DpCacheEntry {
    /// The DIRECT_PATH key; `vni` 0 = empty.
    pub key: EndpointKey,
    /// The DIRECT_PATH row as it was; `droplet_ip` 0: there was none.
    pub path: DirectPathValue,
    /// DP_GEN when it was read (low 32 bits): the programs' generation, then the loader's.
    pub gen: [u32; 2],
}
const _: () = assert!(size_of::<DpCacheEntry>() == 32 && align_of::<DpCacheEntry>() == 4);

/// DP_CACHE index of (vni, ip): the same Fibonacci hash as [`local_slot`], its top
/// [`crate::maps::DP_CACHE_BITS`] bits.
#[inline(always)]
pub const fn dp_cache_slot(vni: u32, ip: u32) -> u32 {
    let x = ((vni as u64) << 32) | ip as u64;
    let h = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> (64 - crate::maps::DP_CACHE_BITS)) as u32
}

/// Value of EP_CACHE, a per-CPU direct-mapped cache of ENDPOINTS lookups, hits and misses, at
/// index [`dp_cache_slot`]`(vni, ip)`: a bouncer's directory hits and a divider's misses become
/// inlined array accesses while ENDPOINTS is unchanged. Valid only while `gen` equals EP_GEN
/// (bumped by the loader, the only writer of ENDPOINTS, after every change); filled by the
/// programs from a lookup, with EP_GEN read before it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EpCacheEntry {
    /// The ENDPOINTS key; `vni` 0 = empty.
    pub key: EndpointKey,
    /// The row, if `present`.
    pub rec: EndpointRecord,
    /// 1 if ENDPOINTS had a row, 0 if it had none.
    pub present: u32,
    /// EP_GEN when it was read (low 32 bits).
    pub gen: u32,
}
const _: () = assert!(size_of::<EpCacheEntry>() == 44 && align_of::<EpCacheEntry>() == 4);

/// A droplet with a cached outer destination MAC (all zero = not cached: look PEERS up).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Hop {
    /// Droplet IPv4 (wire bytes).
    pub ip: u32,
    /// Outer destination MAC for it, or zero.
    pub mac: [u8; 6],
    /// Zero.
    pub _pad: [u8; 2],
}
const _: () = assert!(size_of::<Hop>() == 12 && align_of::<Hop>() == 4);

/// Value of AGENT_ENDPOINTS as stored: the [`AgentEndpoint`] the agent wrote, plus its
/// subnet's bouncers with their MACs, derived by the loader from NETWORKS and PEERS (refreshed
/// when either changes). `agent` then needs no NETWORKS or PEERS lookup per packet.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AgentRecord {
    /// What the agent wrote.
    pub ep: AgentEndpoint,
    /// Valid entries in `bouncers` (0 = the subnet has no NETWORKS row here: no route).
    pub n_bouncers: u32,
    /// The subnet's bouncers, in NETWORKS order.
    pub bouncers: [Hop; MAX_BOUNCERS],
}
const _: () = assert!(size_of::<AgentRecord>() == 224 && align_of::<AgentRecord>() == 4);

/// Value of AGENT_SLOTS: a direct-mapped copy of an AGENT_ENDPOINTS row in an ARRAY, at index
/// [`agent_slot`]`(ifindex)`, so `agent` finds its endpoint with an array access the verifier
/// inlines instead of a hash lookup (one helper call and three kernel calls fewer per packet).
/// AGENT_ENDPOINTS stays authoritative: a slot another ifindex holds, or an empty one
/// (`ifindex` 0, which no interface has), sends the program there.
///
/// Slots are written only by the loader, never changed in place: a slot that changes is
/// zeroed first and rewritten only after an RCU grace period, so a program never reads one
/// endpoint's tag with another's fields (see the loader's `slots` module).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AgentSlot {
    /// Host-side veth ifindex of the row held here; 0 = empty.
    pub ifindex: u32,
    /// The stored AGENT_ENDPOINTS row.
    pub rec: AgentRecord,
}
const _: () = assert!(size_of::<AgentSlot>() == 228 && align_of::<AgentSlot>() == 4);

/// AGENT_SLOTS index of host veth `ifindex`. Interface indexes are allocated sequentially per
/// namespace, so the endpoints alive on a droplet rarely collide.
#[inline(always)]
pub const fn agent_slot(ifindex: u32) -> u32 {
    ifindex & (crate::maps::AGENT_SLOTS_MAX - 1)
}

/// Value of ENDPOINTS as stored: the [`EndpointValue`] the agent wrote plus the cached MAC of
/// its droplet (loader-derived from PEERS; zero = look up), for the bouncer retarget.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EndpointRecord {
    /// What the agent wrote.
    pub ep: EndpointValue,
    /// Outer destination MAC of `ep.droplet_ip`, or zero.
    pub droplet_mac: [u8; 6],
    /// Zero.
    pub _pad: [u8; 2],
}
const _: () = assert!(size_of::<EndpointRecord>() == 28 && align_of::<EndpointRecord>() == 4);

/// Value of LOCAL_SLOTS: a direct-mapped copy of a LOCAL ENDPOINTS row (an endpoint hosted on
/// this droplet) in an ARRAY at index [`local_slot`]`(vni, ip)`, read first wherever the
/// programs look a local endpoint up (delivery after decapsulation, same-droplet traffic).
/// ENDPOINTS stays authoritative; an empty slot has `key.vni` 0 (no VPC has VNI 0). Same
/// write protocol as [`AgentSlot`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LocalSlot {
    /// The ENDPOINTS key of the row held here; `vni` 0 = empty.
    pub key: EndpointKey,
    /// The stored ENDPOINTS row (flag LOCAL).
    pub rec: EndpointRecord,
}
const _: () = assert!(size_of::<LocalSlot>() == 36 && align_of::<LocalSlot>() == 4);

/// LOCAL_SLOTS index of (vni, ip): Fibonacci hashing of the two words (a multiply and a
/// shift: a few BPF instructions), top bits kept.
#[inline(always)]
pub const fn local_slot(vni: u32, ip: u32) -> u32 {
    let x = ((vni as u64) << 32) | ip as u64;
    let h = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> (64 - crate::maps::LOCAL_SLOTS_BITS)) as u32
}

/// Value of NETWORKS as stored: the [`NetworkValue`] the agent wrote plus the cached MAC of
/// each bouncer (loader-derived from PEERS; zero = look up), for the divider forward.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NetworkRecord {
    /// What the agent wrote.
    pub net: NetworkValue,
    /// `bouncer_macs[i]` is the outer destination MAC of `net.bouncers[i]`, or zero.
    pub bouncer_macs: [[u8; 6]; MAX_BOUNCERS],
}
const _: () = assert!(size_of::<NetworkRecord>() == 168 && align_of::<NetworkRecord>() == 4);

/// [`Config::flags`]: local deliveries are decapsulated by `transit_tc` (TC ingress on the
/// underlay NIC, keeps GSO and uses bpf_redirect_peer) rather than by XDP `transit`, which then
/// passes them up (verdict `pass_to_tc`) and keeps only the retarget paths.
pub const CONFIG_F_TC_DECAP: u32 = 1;

/// [`Config::flags`]: `agent_tc` runs behind XDP `agent` on every endpoint veth, so XDP can
/// pass it (verdict `pass_to_tc`) the frames whose next hop only the kernel can resolve: a
/// direct path to a droplet with no known MAC, sent by `bpf_redirect_neigh` (verdict
/// `encap_neigh`). Without it such frames go through a bouncer.
pub const CONFIG_F_TC_AGENT: u32 = 2;

/// Value of CONFIG[0]: this droplet.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Config {
    /// This droplet's underlay IPv4 (wire bytes): outer source, and what `transit` accepts.
    pub droplet_ip: u32,
    /// Underlay NIC ifindex (must be in TX_PORTS): where `agent` redirects encapsulated frames.
    pub underlay_ifindex: u32,
    /// Underlay MTU (IP bytes). Inner IP packets above `mtu - wire::OVERHEAD` are dropped.
    pub mtu: u32,
    /// `CONFIG_F_*`.
    pub flags: u32,
    /// Underlay NIC MAC: outer source MAC.
    pub droplet_mac: [u8; 6],
    /// The virtual gateway MAC every pod ARP is answered with, and the inner source MAC on
    /// delivery.
    pub gateway_mac: [u8; 6],
    /// Outer destination MAC when PEERS has no row for the target droplet (an underlay
    /// router); all zero = no fallback, drop with `NoPeerMac`.
    pub default_peer_mac: [u8; 6],
    /// Zero.
    pub _pad: [u8; 2],
}
const _: () = assert!(size_of::<Config>() == 36 && align_of::<Config>() == 4);

/// XDP metadata the bench harness wrappers read (never the real programs): after each run,
/// the 16 bits at `dst_low_offset` in the frame (the low half of an IPv4 destination, big
/// endian) step to the next address within `mask`, so a `repeat` loop cycles through
/// `mask + 1` destinations (flows) instead of one. Written by the bench in host order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BenchFlows {
    pub dst_low_offset: u16,
    pub mask: u16,
}
const _: () = assert!(size_of::<BenchFlows>() == 4 && align_of::<BenchFlows>() == 2);

#[cfg(test)]
mod tests {
    use super::*;

    /// The endpoints a droplet hosts are typically a few hundred addresses of a few subnets:
    /// they should take distinct LOCAL_SLOTS slots almost always, and same addresses in other
    /// VPCs other slots.
    #[test]
    fn local_slots_spread_a_droplets_endpoints() {
        let mut used = [0u8; crate::maps::LOCAL_SLOTS_MAX as usize];
        let mut collisions = 0;
        for vni in [1u32, 2, 7001, 16_777_215] {
            for third in 0..2u8 {
                for last in 1..=250u8 {
                    let i = local_slot(vni, u32::from_ne_bytes([10, 0, third, last])) as usize;
                    if used[i] > 0 {
                        collisions += 1;
                    }
                    used[i] += 1;
                }
            }
        }
        // 2,000 keys into 8,192 slots: a uniform hash collides about 220 times.
        assert!(collisions < 300, "{collisions} collisions");
    }

    #[test]
    fn agent_slots_are_the_low_bits() {
        assert_eq!(agent_slot(1), 1);
        assert_eq!(agent_slot(1 + crate::maps::AGENT_SLOTS_MAX), 1);
    }
}
