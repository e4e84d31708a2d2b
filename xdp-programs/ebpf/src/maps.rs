//! The maps (names match `alkaid_xdp_common::maps`) and typed lookups. Values are plain
//! integers, so a row updated concurrently by the agent can at worst be read torn, never unsafe:
//! every index derived from a value is masked before use.

use alkaid_xdp_common::{
    agent_slot, local_slot, maps as m, AgentRecord, AgentSlot, Config, DirectPathValue, EndpointKey, EndpointRecord, NetworkKey,
    LocalSlot, NetworkRecord, PeerValue, VpcValue,
};
use aya_ebpf::{
    macros::map,
    maps::{lpm_trie::Key, Array, DevMapHash, HashMap, LpmTrie, LruHashMap, PerCpuArray},
};

/// (vni, ip) -> endpoint: local endpoints (flag LOCAL, veth ifindex) and bouncer directories.
#[map]
pub static ENDPOINTS: HashMap<EndpointKey, EndpointRecord> =
    HashMap::with_max_entries(m::ENDPOINTS_MAX, 0);
/// LPM (vni, subnet cidr) -> the subnet's bouncers and gateway.
#[map]
pub static NETWORKS: LpmTrie<NetworkKey, NetworkRecord> =
    LpmTrie::with_max_entries(m::NETWORKS_MAX, 0);
/// vni -> the VPC's dividers.
#[map]
pub static VPCS: HashMap<u32, VpcValue> = HashMap::with_max_entries(m::VPCS_MAX, 0);
/// droplet ip -> outer destination MAC.
#[map]
pub static PEERS: HashMap<u32, PeerValue> = HashMap::with_max_entries(m::PEERS_MAX, 0);
/// host-side veth ifindex -> the endpoint behind it (VNI source for `agent`).
#[map]
pub static AGENT_ENDPOINTS: HashMap<u32, AgentRecord> =
    HashMap::with_max_entries(m::AGENT_ENDPOINTS_MAX, 0);
/// agent_slot(ifindex) -> a copy of an AGENT_ENDPOINTS row, read first (an inlined array access).
#[map]
pub static AGENT_SLOTS: Array<AgentSlot> = Array::with_max_entries(m::AGENT_SLOTS_MAX, 0);
/// local_slot(vni, ip) -> a copy of a LOCAL ENDPOINTS row, read first (an inlined array access).
#[map]
pub static LOCAL_SLOTS: Array<LocalSlot> = Array::with_max_entries(m::LOCAL_SLOTS_MAX, 0);
/// LRU (vni, ip) -> droplet: direct paths learned from return-to-sender options.
#[map]
pub static DIRECT_PATH: LruHashMap<EndpointKey, DirectPathValue> =
    LruHashMap::with_max_entries(m::DIRECT_PATH_MAX, 0);
/// ifindex -> ifindex: redirect targets (underlay NIC, endpoint veths).
#[map]
pub static TX_PORTS: DevMapHash = DevMapHash::with_max_entries(m::TX_PORTS_MAX, 0);
/// [0] -> this droplet's config.
#[map]
pub static CONFIG: Array<Config> = Array::with_max_entries(1, 0);
/// Per-CPU counters indexed by Verdict / DropReason.
#[map]
pub static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(m::STATS_MAX, 0);

/// This droplet's config; `None` until the agent has written it (droplet IP still 0).
#[inline(always)]
pub fn config() -> Option<&'static Config> {
    CONFIG.get(0).filter(|c| c.droplet_ip != 0)
}

/// The endpoint behind host veth `ifindex`: its AGENT_SLOTS slot if that holds it, else
/// AGENT_ENDPOINTS. A slot is never rewritten in place (zeroed, then rewritten after a grace
/// period: common `AgentSlot`), so a matching tag comes with that endpoint's own fields.
#[inline(always)]
pub fn agent_endpoint(ifindex: u32) -> Option<&'static AgentRecord> {
    if let Some(slot) = AGENT_SLOTS.get(agent_slot(ifindex)) {
        // An empty slot (tag 0) never answers: no interface has index 0.
        if slot.ifindex == ifindex && ifindex != 0 {
            return Some(&slot.rec);
        }
    }
    // SAFETY: see the module docs: the value is plain data, a torn read is harmless.
    unsafe { AGENT_ENDPOINTS.get(ifindex) }
}

/// ENDPOINTS (vni, ip): its LOCAL_SLOTS slot if that holds it (this droplet's endpoints),
/// else the hash map. Slots are never rewritten in place (see [`agent_endpoint`]).
#[inline(always)]
pub fn endpoint(vni: u32, ip: u32) -> Option<&'static EndpointRecord> {
    if let Some(slot) = LOCAL_SLOTS.get(local_slot(vni, ip)) {
        // An empty slot (VNI 0) never answers: no VPC has VNI 0.
        if slot.key.vni == vni && slot.key.ip == ip && vni != 0 {
            return Some(&slot.rec);
        }
    }
    // SAFETY: see the module docs.
    unsafe { ENDPOINTS.get(EndpointKey { vni, ip }) }
}

#[inline(always)]
pub fn direct_path(vni: u32, ip: u32) -> Option<&'static DirectPathValue> {
    // SAFETY: see the module docs.
    unsafe { DIRECT_PATH.get(EndpointKey { vni, ip }) }
}

/// Learns or refreshes (vni, ip) -> droplet; writes only when the row changes (one lookup per
/// packet in the steady state). The row caches the droplet's outer MAC: PEERS (or the default
/// MAC) if it has one, else `direct_mac`, the outer source MAC of a packet that came straight
/// from that droplet (no PEERS row is needed for a learned path). With neither, nothing usable
/// can be learned: a row pointing elsewhere is stale (the endpoint moved) and is removed, so
/// replies go through a bouncer.
#[inline(always)]
pub fn learn_direct_path(
    cfg: &Config,
    vni: u32,
    ip: u32,
    droplet_ip: u32,
    direct_mac: Option<[u8; 6]>,
) -> bool {
    let key = EndpointKey { vni, ip };
    let cur = direct_path(vni, ip);
    if let Some(cur) = cur {
        if cur.droplet_ip == droplet_ip && cur.mac != [0u8; 6] {
            return false;
        }
    }
    let Some(mac) = peer_mac(cfg, droplet_ip).or(direct_mac) else {
        if let Some(cur) = cur {
            if cur.droplet_ip != droplet_ip {
                let _ = DIRECT_PATH.remove(&key);
            }
        }
        return false;
    };
    let v = DirectPathValue {
        droplet_ip,
        flags: alkaid_xdp_common::DIRECT_PATH_F_LEARNED,
        mac,
        _pad: [0; 2],
    };
    DIRECT_PATH.insert(&key, &v, 0).is_ok()
}

/// Deletes DIRECT_PATH (vni, ip) if it points at `droplet_ip`; true if it did.
#[inline(always)]
pub fn forget_direct_path(vni: u32, ip: u32, droplet_ip: u32) -> bool {
    match direct_path(vni, ip) {
        Some(cur) if cur.droplet_ip == droplet_ip => {
            DIRECT_PATH.remove(&EndpointKey { vni, ip }).is_ok()
        }
        _ => false,
    }
}

/// Longest-prefix match of (vni, ip).
#[inline(always)]
pub fn network_lpm(vni: u32, ip: u32) -> Option<&'static NetworkRecord> {
    NETWORKS.get(Key::new(64, NetworkKey { vni, ip }))
}

#[inline(always)]
pub fn vpc(vni: u32) -> Option<&'static VpcValue> {
    // SAFETY: see the module docs.
    unsafe { VPCS.get(vni) }
}

/// Outer destination MAC for a droplet: PEERS, else the configured default, else `None`.
#[inline(always)]
pub fn peer_mac(cfg: &Config, droplet_ip: u32) -> Option<[u8; 6]> {
    // SAFETY: see the module docs.
    if let Some(p) = unsafe { PEERS.get(droplet_ip) } {
        return Some(p.mac);
    }
    if cfg.default_peer_mac != [0u8; 6] {
        return Some(cfg.default_peer_mac);
    }
    None
}

/// `cached` if set (a MAC the loader or a learn copied from PEERS), else [`peer_mac`].
#[inline(always)]
pub fn hop_mac(cfg: &Config, droplet_ip: u32, cached: &[u8; 6]) -> Option<[u8; 6]> {
    if *cached != [0u8; 6] {
        return Some(*cached);
    }
    peer_mac(cfg, droplet_ip)
}
