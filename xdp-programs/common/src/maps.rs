//! Map names (as the loader finds them in the object) and capacities.

/// (vni, ip) -> [`crate::EndpointRecord`] ([`crate::EndpointValue`] + cached droplet MAC): local endpoints and, on bouncers, the subnet directory.
pub const ENDPOINTS: &str = "ENDPOINTS";
/// LPM (vni, cidr) -> [`crate::NetworkRecord`] ([`crate::NetworkValue`] + cached MACs): a subnet's bouncers and gateway.
pub const NETWORKS: &str = "NETWORKS";
/// vni -> [`crate::VpcValue`]: the VPC's dividers (held by bouncers).
pub const VPCS: &str = "VPCS";
/// droplet ip -> [`crate::PeerValue`]: outer destination MAC of a droplet.
pub const PEERS: &str = "PEERS";
/// host-side veth ifindex -> [`crate::AgentRecord`] ([`crate::AgentEndpoint`] + its subnet's bouncers): who is behind an `agent` attachment.
pub const AGENT_ENDPOINTS: &str = "AGENT_ENDPOINTS";
/// ARRAY [`crate::agent_slot`]`(ifindex)` -> [`crate::AgentSlot`]: a direct-mapped copy of AGENT_ENDPOINTS, read first by `agent`.
pub const AGENT_SLOTS: &str = "AGENT_SLOTS";
/// ARRAY [`crate::local_slot`]`(vni, ip)` -> [`crate::LocalSlot`]: a direct-mapped copy of the LOCAL rows of ENDPOINTS, read first.
pub const LOCAL_SLOTS: &str = "LOCAL_SLOTS";
/// LRU (vni, ip) -> [`crate::DirectPathValue`]: learned endpoint -> droplet shortcuts.
pub const DIRECT_PATH: &str = "DIRECT_PATH";
/// per-CPU ARRAY [`crate::dp_cache_slot`]`(vni, ip)` -> [`crate::DpCacheEntry`]: DIRECT_PATH hits, valid while DP_GEN is unchanged.
pub const DP_CACHE: &str = "DP_CACHE";
/// ARRAY [0] programs' / [1] loader's generation of DIRECT_PATH (bumped after every change).
pub const DP_GEN: &str = "DP_GEN";
/// per-CPU ARRAY [`crate::dp_cache_slot`]`(vni, ip)` -> [`crate::EpCacheEntry`]: ENDPOINTS hits and misses, valid while EP_GEN is unchanged.
pub const EP_CACHE: &str = "EP_CACHE";
/// ARRAY [0]: the loader's generation of ENDPOINTS (bumped after every change).
pub const EP_GEN: &str = "EP_GEN";
/// ifindex -> ifindex (DEVMAP_HASH): every interface a program may redirect to.
pub const TX_PORTS: &str = "TX_PORTS";
/// [0] -> [`crate::Config`]: this droplet's identity and underlay.
pub const CONFIG: &str = "CONFIG";
/// per-CPU u64 indexed by [`crate::Verdict::index`] and [`crate::DropReason::index`].
pub const STATS: &str = "STATS";

/// Every map name, in a stable order (pinning, dumps).
pub const ALL: [&str; 15] = [
    ENDPOINTS,
    NETWORKS,
    VPCS,
    PEERS,
    AGENT_ENDPOINTS,
    AGENT_SLOTS,
    LOCAL_SLOTS,
    DIRECT_PATH,
    DP_CACHE,
    DP_GEN,
    EP_CACHE,
    EP_GEN,
    TX_PORTS,
    CONFIG,
    STATS,
];

/// Program names in the object.
pub const PROG_AGENT: &str = "agent";
/// Program names in the object.
pub const PROG_TRANSIT: &str = "transit";

/// TC (clsact ingress) variant of `agent`.
pub const PROG_AGENT_TC: &str = "agent_tc";
/// TC (clsact ingress) variant of `transit`.
pub const PROG_TRANSIT_TC: &str = "transit_tc";
/// XDP_PASS, for veth peers of native-mode attachments.
pub const PROG_PASS: &str = "pass";
/// Bench harness wrapper of `agent` (loaded only by the bench).
pub const PROG_BENCH_AGENT: &str = "bench_agent";
/// Bench harness wrapper of `transit` (loaded only by the bench).
pub const PROG_BENCH_TRANSIT: &str = "bench_transit";

/// Capacity of ENDPOINTS (local endpoints plus the directories of the subnets bounced here).
pub const ENDPOINTS_MAX: u32 = 65_536;
/// Capacity of NETWORKS.
pub const NETWORKS_MAX: u32 = 16_384;
/// Capacity of VPCS.
pub const VPCS_MAX: u32 = 4_096;
/// Capacity of PEERS.
pub const PEERS_MAX: u32 = 16_384;
/// Capacity of AGENT_ENDPOINTS (endpoints on one droplet).
pub const AGENT_ENDPOINTS_MAX: u32 = 4_096;
/// Capacity of AGENT_SLOTS (a power of two: [`crate::agent_slot`] masks).
pub const AGENT_SLOTS_MAX: u32 = 4_096;
const _: () = assert!(AGENT_SLOTS_MAX.is_power_of_two());
/// log2 of the capacity of LOCAL_SLOTS (twice AGENT_ENDPOINTS_MAX: few collisions).
pub const LOCAL_SLOTS_BITS: u32 = 13;
/// Capacity of LOCAL_SLOTS.
pub const LOCAL_SLOTS_MAX: u32 = 1 << LOCAL_SLOTS_BITS;
/// log2 of the per-CPU capacity of DP_CACHE and of EP_CACHE.
pub const DP_CACHE_BITS: u32 = 12;
/// Per-CPU capacity of DP_CACHE and of EP_CACHE.
pub const DP_CACHE_MAX: u32 = 1 << DP_CACHE_BITS;
/// Capacity of DIRECT_PATH.
pub const DIRECT_PATH_MAX: u32 = 65_536;
/// Capacity of TX_PORTS.
pub const TX_PORTS_MAX: u32 = 4_096;
/// Number of STATS slots (verdicts at 0.., drop reasons at [`crate::counters::DROP_BASE`]..).
pub const STATS_MAX: u32 = 64;
