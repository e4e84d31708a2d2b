//! The maps (names match `alkaid_xdp_common::maps`) and typed lookups. Values are plain
//! integers, so a row updated concurrently by the agent can at worst be read torn, never unsafe:
//! every index derived from a value is masked before use.

use alkaid_xdp_common::{
    agent_slot, dp_cache_slot, local_slot, maps as m, AgentRecord, AgentSlot, Config,
    DirectPathValue, DpCacheEntry, EndpointKey, EndpointRecord, EpCacheEntry, LocalSlot,
    NetworkKey, NetworkRecord, PeerValue, VpcValue,
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
/// Per CPU, dp_cache_slot(vni, ip) -> a DIRECT_PATH hit and the DP_GEN it was read at.
#[map]
pub static DP_CACHE: PerCpuArray<DpCacheEntry> = PerCpuArray::with_max_entries(m::DP_CACHE_MAX, 0);
/// [0] the programs', [1] the loader's generation of DIRECT_PATH.
#[map]
pub static DP_GEN: Array<u64> = Array::with_max_entries(2, 0);
/// Per CPU, dp_cache_slot(vni, ip) -> an ENDPOINTS lookup's result and the EP_GEN it was read at.
#[map]
pub static EP_CACHE: PerCpuArray<EpCacheEntry> = PerCpuArray::with_max_entries(m::DP_CACHE_MAX, 0);
/// [0] the loader's generation of ENDPOINTS.
#[map]
pub static EP_GEN: Array<u64> = Array::with_max_entries(1, 0);
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

/// ENDPOINTS (vni, ip): its LOCAL_SLOTS slot if that holds it (this droplet's endpoints;
/// slots are never rewritten in place, see [`agent_endpoint`]), else this CPU's EP_CACHE if
/// it was filled at the current EP_GEN, else the hash map (and the result cached, hit or miss,
/// with EP_GEN read before the lookup: a change racing with it bumps EP_GEN).
#[inline(always)]
pub fn endpoint(vni: u32, ip: u32) -> Option<&'static EndpointRecord> {
    if let Some(slot) = LOCAL_SLOTS.get(local_slot(vni, ip)) {
        // An empty slot (VNI 0) never answers: no VPC has VNI 0.
        if slot.key.vni == vni && slot.key.ip == ip && vni != 0 {
            return Some(&slot.rec);
        }
    }
    let gen = EP_GEN.get(0).copied().unwrap_or(0) as u32;
    let i = dp_cache_slot(vni, ip);
    if let Some(e) = EP_CACHE.get(i) {
        if e.key.vni == vni && e.key.ip == ip && e.gen == gen && vni != 0 {
            return if e.present != 0 { Some(&e.rec) } else { None };
        }
    }
    let key = EndpointKey { vni, ip };
    // SAFETY: see the module docs.
    let found = unsafe { ENDPOINTS.get(key) };
    // Looked up again rather than kept across the hash lookup: fewer live registers.
    if let Some(e) = EP_CACHE.get_ptr_mut(i) {
        let fill = EpCacheEntry {
            key,
            rec: found.copied().unwrap_or_default(),
            present: found.is_some() as u32,
            gen,
        };
        // SAFETY: this CPU's entry, valid for the program's run; programs run with preemption
        // off, one at a time per CPU, so nothing else writes it meanwhile.
        unsafe { *e = fill };
    }
    found
}

/// DP_GEN now: the programs' and the loader's generation of DIRECT_PATH (u64 counters, the
/// BPF target's only atomic width; an entry keeps their low 32 bits).
#[inline(always)]
fn dp_gen() -> [u32; 2] {
    [
        DP_GEN.get(0).copied().unwrap_or(0) as u32,
        DP_GEN.get(1).copied().unwrap_or(0) as u32,
    ]
}

/// Marks DIRECT_PATH changed, after the change: every CPU's DP_CACHE goes stale at once.
#[inline(always)]
fn direct_path_changed() {
    if let Some(p) = DP_GEN.get_ptr_mut(0) {
        // Other CPUs bump it too: an atomic add (BPF_ATOMIC | BPF_ADD, no fetch). Inline asm:
        // the bpfel target offers atomic loads and stores only, no read-modify-write.
        // SAFETY: `p` is a u64 map value (8-byte aligned), valid for the program's run; the
        // instruction writes only there.
        unsafe {
            core::arch::asm!(
                "lock *(u64 *)({p} + 0) += {one}",
                p = in(reg) p,
                one = in(reg) 1u64,
                options(nostack, preserves_flags)
            );
        }
    }
}

/// DIRECT_PATH (vni, ip), through this CPU's DP_CACHE: an entry read at the current DP_GEN is
/// what the map held (no change since, by anyone); otherwise the map is looked up and the
/// result, hit or miss, cached with the generations read before the lookup (a change racing
/// with it bumps them).
#[inline(always)]
pub fn direct_path(vni: u32, ip: u32) -> Option<DirectPathValue> {
    let gen = dp_gen();
    let slot = dp_cache_slot(vni, ip);
    if let Some(e) = DP_CACHE.get(slot) {
        // An empty entry (VNI 0) never answers.
        if e.key.vni == vni && e.key.ip == ip && e.gen == gen && vni != 0 {
            return (e.path.droplet_ip != 0).then_some(e.path);
        }
    }
    let key = EndpointKey { vni, ip };
    // SAFETY: see the module docs.
    let found = unsafe { DIRECT_PATH.get(key) }.copied();
    if let Some(e) = DP_CACHE.get_ptr_mut(slot) {
        // A miss is cached as droplet 0 (no row has it: learning needs a sender droplet).
        let path = found.unwrap_or_default();
        // SAFETY: this CPU's entry; programs run with preemption off, one at a time per CPU.
        unsafe { *e = DpCacheEntry { key, path, gen } };
    }
    found
}

/// Learns or refreshes (vni, ip) -> droplet; writes only when the row changes (in the steady
/// state no lookup at all: [`direct_path`] answers from DP_CACHE). The row caches the droplet's
/// outer MAC: PEERS (or the default MAC) if it has one, else `direct_mac`, the outer source MAC
/// of a packet that came straight from that droplet (no PEERS row is needed for a learned
/// path). With neither (the first packets between two droplets come through a bouncer, and
/// only bouncers and dividers get PEERS rows) the row is learned with a zero MAC: the sender
/// has the kernel resolve it, the reply then arrives straight from that droplet, and both ends
/// learn each other's MAC from it.
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
    // The steady state: the row is there with its MAC (no further lookup).
    let same = cur.is_some_and(|c| c.droplet_ip == droplet_ip);
    if same && cur.is_some_and(|c| c.mac != [0u8; 6]) {
        return false;
    }
    let mac = peer_mac(cfg, droplet_ip).or(direct_mac);
    if same && mac.is_none() {
        return false; // a MAC-less row, and still no MAC to add
    }
    let v = DirectPathValue {
        droplet_ip,
        flags: alkaid_xdp_common::DIRECT_PATH_F_LEARNED,
        // Zero: the sender's `agent` has the kernel resolve it (see `agent::Encap::neigh`).
        mac: mac.unwrap_or([0; 6]),
        _pad: [0; 2],
    };
    let learned = DIRECT_PATH.insert(&key, &v, 0).is_ok();
    direct_path_changed();
    learned
}

/// Deletes DIRECT_PATH (vni, ip) if it points at `droplet_ip`; true if it did.
#[inline(always)]
pub fn forget_direct_path(vni: u32, ip: u32, droplet_ip: u32) -> bool {
    match direct_path(vni, ip) {
        Some(cur) if cur.droplet_ip == droplet_ip => {
            let gone = DIRECT_PATH.remove(&EndpointKey { vni, ip }).is_ok();
            direct_path_changed();
            gone
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
