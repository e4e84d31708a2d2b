//! Typed handles to every map of the object, taken out of the `aya::Ebpf` at load time.
//!
//! Writes are whole-row upserts (`BPF_ANY`): a row is replaced atomically per key, so the
//! programs see either the old or the new value. IPv4 addresses use the common crate's
//! convention (wire bytes in a `u32`); `std::net::Ipv4Addr` is accepted at this API.
//!
//! Derived data. To save lookups per packet, some stored rows carry copies the loader derives
//! (the API still takes and returns the plain rows):
//! - AGENT_ENDPOINTS rows embed their subnet's bouncers ([`AgentRecord`]), refreshed when that
//!   NETWORKS row or an AGENT_ENDPOINTS row is written or removed;
//! - ENDPOINTS, NETWORKS, DIRECT_PATH and the embedded bouncers cache each droplet's outer MAC
//!   (PEERS, else the default peer MAC; zero = unknown, the program then looks PEERS up), filled
//!   when the row is written and rewritten whenever PEERS or the default MAC changes. A
//!   DIRECT_PATH row `transit` learned with the sender's own outer source MAC keeps it while
//!   PEERS has nothing for that droplet.
//!
//! - AGENT_SLOTS and LOCAL_SLOTS copy AGENT_ENDPOINTS and the LOCAL rows of ENDPOINTS into
//!   direct-mapped arrays the programs read first (`slots.rs`), written after the hash row.
//!
//! So any order of writes converges to the same stored rows. The cost is on the control path:
//! a PEERS change rewalks the maps (two syscalls per row), which only happens when a droplet
//! joins, leaves or changes MAC.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap as StdHashMap},
    net::Ipv4Addr,
};

use alkaid_xdp_common::{
    AgentEndpoint, AgentRecord, AgentSlot, Config, DirectPathValue, ENDPOINT_F_LOCAL, EndpointKey,
    EndpointRecord, EndpointValue, Hop, LocalSlot, MAX_BOUNCERS, NetworkKey, NetworkRecord,
    NetworkValue, PeerValue, VpcValue, ip, maps as names, network_prefix_len,
};
use aya::{
    Ebpf, Pod,
    maps::{
        Array, HashMap, IterableMap, MapData, MapError, PerCpuArray,
        lpm_trie::{Key, LpmTrie},
        xdp::DevMapHash,
    },
};

use crate::{
    Error, Result, batch,
    slots::{Slot, Slots},
};

/// Typed access to the data-plane maps.
pub struct Maps {
    endpoints: HashMap<MapData, EndpointKey, EndpointRecord>,
    /// LOCAL_SLOTS, kept in step with the LOCAL rows of `endpoints` (see `slots.rs`).
    local_slots: Slots<LocalSlot>,
    /// The LOCAL rows of ENDPOINTS as stored (a droplet's own endpoints: few), mirrored for
    /// LOCAL_SLOTS: which row inherits a slot that is freed.
    local_rows: BTreeMap<EndpointKey, EndpointRecord>,
    networks: LpmTrie<MapData, NetworkKey, NetworkRecord>,
    vpcs: HashMap<MapData, u32, VpcValue>,
    peers: HashMap<MapData, u32, PeerValue>,
    agent_endpoints: HashMap<MapData, u32, AgentRecord>,
    /// AGENT_SLOTS, kept in step with `agent_endpoints` (see `slots.rs`).
    agent_slots: Slots<AgentSlot>,
    direct_path: HashMap<MapData, EndpointKey, DirectPathValue>,
    /// DP_GEN: `[1]` is ours, bumped after every DIRECT_PATH change so the programs' per-CPU
    /// DP_CACHE of it goes stale (`[0]` is the programs').
    dp_gen: Array<MapData, u64>,
    /// What DP_GEN[1] holds.
    dp_gen_mirror: u64,
    /// EP_GEN: ours alone, bumped after every ENDPOINTS change (the programs' per-CPU
    /// EP_CACHE of ENDPOINTS then goes stale).
    ep_gen: Array<MapData, u64>,
    /// What EP_GEN[0] holds.
    ep_gen_mirror: u64,
    tx_ports: DevMapHash<MapData>,
    config: Array<MapData, Config>,
    pub(crate) stats: PerCpuArray<MapData, u64>,
    /// What PEERS holds (ip -> mac), mirrored: the agent, through this type, is the only
    /// writer of PEERS and CONFIG (the programs never write them), so deriving a row's cached
    /// MACs reads neither map. A directory row then costs one syscall, not two per peer.
    peers_mirror: StdHashMap<u32, [u8; 6]>,
    /// What CONFIG[0] holds (mirrored for the same reason).
    config_mirror: Config,
}

fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T>
where
    T: TryFrom<aya::maps::Map, Error = MapError>,
{
    let map = ebpf.take_map(name).ok_or(Error::MissingMap(name))?;
    T::try_from(map).map_err(|source| Error::Map { name, source })
}

fn map_err(name: &'static str) -> impl FnOnce(MapError) -> Error {
    move |source| Error::Map { name, source }
}

/// `Ok(None)` for a missing key, errors otherwise.
fn optional<T>(r: Result<T, MapError>, name: &'static str) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(MapError::KeyNotFound) => Ok(None),
        Err(source) => Err(Error::Map { name, source }),
    }
}

/// `Ok(false)` if the key was absent.
fn removed(r: Result<(), MapError>, name: &'static str) -> Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(MapError::KeyNotFound) => Ok(false),
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
            Ok(false)
        }
        Err(source) => Err(Error::Map { name, source }),
    }
}

/// Every row of a hash map, batched.
fn all<K: Pod, V: Pod>(map: &impl IterableMap<K, V>, name: &'static str) -> Result<Vec<(K, V)>> {
    batch::lookup_all(map.map().fd()).map_err(|source| Error::Batch {
        name,
        op: "lookup",
        source,
    })
}

fn v4(a: Ipv4Addr) -> u32 {
    ip(a.octets())
}

impl Maps {
    pub(crate) fn take_all(ebpf: &mut Ebpf) -> Result<Self> {
        Self {
            endpoints: take(ebpf, names::ENDPOINTS)?,
            local_slots: Slots::new(take(ebpf, names::LOCAL_SLOTS)?)?,
            local_rows: BTreeMap::new(),
            networks: take(ebpf, names::NETWORKS)?,
            vpcs: take(ebpf, names::VPCS)?,
            peers: take(ebpf, names::PEERS)?,
            agent_endpoints: take(ebpf, names::AGENT_ENDPOINTS)?,
            agent_slots: Slots::new(take(ebpf, names::AGENT_SLOTS)?)?,
            direct_path: take(ebpf, names::DIRECT_PATH)?,
            dp_gen: take(ebpf, names::DP_GEN)?,
            dp_gen_mirror: 0,
            ep_gen: take(ebpf, names::EP_GEN)?,
            ep_gen_mirror: 0,
            tx_ports: take(ebpf, names::TX_PORTS)?,
            config: take(ebpf, names::CONFIG)?,
            stats: take(ebpf, names::STATS)?,
            peers_mirror: StdHashMap::new(),
            config_mirror: Config::default(),
        }
        .with_mirrors()
    }

    /// Reads PEERS and CONFIG once (adopted pinned maps keep a previous agent's rows).
    fn with_mirrors(mut self) -> Result<Self> {
        self.peers_mirror = all(&self.peers, names::PEERS)?
            .into_iter()
            .map(|(k, v)| (k, v.mac))
            .collect();
        self.config_mirror = self.config()?;
        self.dp_gen_mirror = self.dp_gen.get(&1, 0).map_err(map_err(names::DP_GEN))?;
        // Whatever a previous agent did last, caches filled before now are not trusted.
        self.direct_paths_changed()?;
        self.ep_gen_mirror = self.ep_gen.get(&0, 0).map_err(map_err(names::EP_GEN))?;
        self.endpoints_changed()?;
        self.reconcile_agent_slots()?;
        self.reconcile_local_slots()?;
        Ok(self)
    }

    /// Bumps DP_GEN[1]: called after every change to DIRECT_PATH (also after a failed one,
    /// which may have changed part of it).
    fn direct_paths_changed(&mut self) -> Result<()> {
        self.dp_gen_mirror = self.dp_gen_mirror.wrapping_add(1);
        self.dp_gen
            .set(1, self.dp_gen_mirror, 0)
            .map_err(map_err(names::DP_GEN))
    }

    /// Bumps EP_GEN[0]: called after every change to ENDPOINTS (also after a failed one).
    fn endpoints_changed(&mut self) -> Result<()> {
        self.ep_gen_mirror = self.ep_gen_mirror.wrapping_add(1);
        self.ep_gen
            .set(0, self.ep_gen_mirror, 0)
            .map_err(map_err(names::EP_GEN))
    }

    /// LOCAL_SLOTS made to match the LOCAL rows of ENDPOINTS (as for AGENT_SLOTS).
    fn reconcile_local_slots(&mut self) -> Result<()> {
        self.local_rows = self
            .endpoint_records()?
            .into_iter()
            .filter(|(_, r)| r.ep.flags & ENDPOINT_F_LOCAL != 0)
            .collect();
        let held: Vec<EndpointKey> = self.local_slots.held().collect();
        let keys: Vec<EndpointKey> = held
            .into_iter()
            .chain(self.local_rows.keys().copied())
            .collect();
        self.sync_local_slots(keys)
    }

    /// Writes the slots of `keys` from `local_rows`; a slot one of them frees goes to another
    /// LOCAL row that maps to it.
    fn sync_local_slots(&mut self, keys: Vec<EndpointKey>) -> Result<()> {
        let wants: Vec<_> = keys
            .iter()
            .map(|k| (*k, self.local_rows.get(k).copied()))
            .collect();
        self.local_slots.apply(wants)?;
        let freed: BTreeSet<u32> = keys
            .iter()
            .filter(|k| !self.local_rows.contains_key(k))
            .map(|k| LocalSlot::index(*k))
            .filter(|i| self.local_slots.is_free(*i))
            .collect();
        if freed.is_empty() {
            return Ok(());
        }
        let heirs: Vec<_> = self
            .local_rows
            .iter()
            .filter(|(k, _)| freed.contains(&LocalSlot::index(**k)))
            .map(|(k, r)| (*k, Some(*r)))
            .collect();
        self.local_slots.apply(heirs)
    }

    /// Records what ENDPOINTS now holds at `k` (`None`: no LOCAL row) in `local_rows`.
    fn note_endpoint(&mut self, k: EndpointKey, stored: Option<&EndpointRecord>) {
        match stored.filter(|r| r.ep.flags & ENDPOINT_F_LOCAL != 0) {
            Some(r) => self.local_rows.insert(k, *r),
            None => self.local_rows.remove(&k),
        };
    }

    /// AGENT_SLOTS made to match AGENT_ENDPOINTS: slots of rows that are gone or differ are
    /// zeroed and refilled, rows without a slot take their free one (a previous agent may
    /// have stopped between the two maps' writes, or predate AGENT_SLOTS).
    fn reconcile_agent_slots(&mut self) -> Result<()> {
        let rows = all(&self.agent_endpoints, names::AGENT_ENDPOINTS)?;
        let live: std::collections::BTreeSet<u32> = rows.iter().map(|(k, _)| *k).collect();
        let gone: Vec<u32> = self
            .agent_slots
            .held()
            .filter(|i| !live.contains(i))
            .collect();
        let wants = gone
            .into_iter()
            .map(|i| (i, None))
            .chain(rows.into_iter().map(|(k, v)| (k, Some(v))));
        self.agent_slots.apply(wants)
    }

    /// Writes CONFIG[0]. A changed default peer MAC refreshes every cached MAC.
    pub fn set_config(&mut self, cfg: &Config) -> Result<()> {
        let old = self.config_mirror;
        self.config.set(0, cfg, 0).map_err(map_err(names::CONFIG))?;
        self.config_mirror = *cfg;
        if old.default_peer_mac != cfg.default_peer_mac {
            self.refresh_macs()?;
        }
        Ok(())
    }

    /// Reads CONFIG[0].
    pub fn config(&self) -> Result<Config> {
        self.config.get(&0, 0).map_err(map_err(names::CONFIG))
    }

    /// Upserts an ENDPOINTS row (LocalEndpoint with `ENDPOINT_F_LOCAL`, or bouncer directory).
    /// A LOCAL row also removes any DIRECT_PATH row for the address (the endpoint is here now;
    /// `agent` checks DIRECT_PATH first).
    pub fn upsert_endpoint(&mut self, vni: u32, addr: Ipv4Addr, v: &EndpointValue) -> Result<()> {
        let k = EndpointKey { vni, ip: v4(addr) };
        let rec = self.endpoint_record(v);
        let r = self
            .endpoints
            .insert(k, rec, 0)
            .map_err(map_err(names::ENDPOINTS));
        self.endpoints_changed()?;
        r?;
        self.note_endpoint(k, Some(&rec));
        self.sync_local_slots(vec![k])?;
        if v.flags & ENDPOINT_F_LOCAL != 0 {
            let r = removed(self.direct_path.remove(&k), names::DIRECT_PATH);
            self.direct_paths_changed()?;
            r?;
        }
        Ok(())
    }

    /// [`Maps::upsert_endpoint`] for many rows, thousands per syscall (a full sync's
    /// directory). Rows are written in order; on error, the rows before the failing one are
    /// written.
    pub fn upsert_endpoints(&mut self, rows: &[(EndpointKey, EndpointValue)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let records: Vec<(EndpointKey, EndpointRecord)> = rows
            .iter()
            .map(|(k, v)| (*k, self.endpoint_record(v)))
            .collect();
        let written = batch::update(self.endpoints.map().fd(), &records);
        self.endpoints_changed()?;
        // Only rows the kernel took count (all of them unless it failed part way).
        let touched: Vec<EndpointKey> = records
            .iter()
            .filter(|(k, r)| r.ep.flags & ENDPOINT_F_LOCAL != 0 || self.local_rows.contains_key(k))
            .map(|(k, _)| *k)
            .collect();
        if written.is_ok() {
            for (k, r) in &records {
                if r.ep.flags & ENDPOINT_F_LOCAL != 0 || self.local_rows.contains_key(k) {
                    self.note_endpoint(*k, Some(r));
                }
            }
            self.sync_local_slots(touched)?;
        } else {
            // Unknown how far the batch got: re-read those rows.
            for k in &touched {
                let stored = optional(self.endpoints.get(k, 0), names::ENDPOINTS)?;
                self.note_endpoint(*k, stored.as_ref());
            }
            self.sync_local_slots(touched)?;
        }
        written.map_err(|source| Error::Batch {
            name: names::ENDPOINTS,
            op: "update",
            source,
        })?;
        let local: Vec<EndpointKey> = rows
            .iter()
            .filter(|(_, v)| v.flags & ENDPOINT_F_LOCAL != 0)
            .map(|(k, _)| *k)
            .collect();
        self.delete_direct_paths(&local)?;
        Ok(())
    }

    /// Removes many ENDPOINTS rows (absent ones are skipped); returns how many there were.
    pub fn remove_endpoints(&mut self, keys: &[EndpointKey]) -> Result<usize> {
        if keys.is_empty() {
            return Ok(0);
        }
        let n = batch::delete(self.endpoints.map().fd(), keys);
        self.endpoints_changed()?;
        let touched: Vec<EndpointKey> = keys
            .iter()
            .filter(|k| self.local_rows.contains_key(k))
            .copied()
            .collect();
        for k in &touched {
            let stored = match n {
                Ok(_) => None,
                Err(_) => optional(self.endpoints.get(k, 0), names::ENDPOINTS)?,
            };
            self.note_endpoint(*k, stored.as_ref());
        }
        self.sync_local_slots(touched)?;
        n.map_err(|source| Error::Batch {
            name: names::ENDPOINTS,
            op: "delete",
            source,
        })
    }

    fn endpoint_record(&self, v: &EndpointValue) -> EndpointRecord {
        let droplet_mac = if v.flags & ENDPOINT_F_LOCAL != 0 {
            [0; 6]
        } else {
            self.resolve_mac(v.droplet_ip)
        };
        EndpointRecord {
            ep: *v,
            droplet_mac,
            _pad: [0; 2],
        }
    }

    /// Removes an ENDPOINTS row; `false` if absent.
    pub fn remove_endpoint(&mut self, vni: u32, addr: Ipv4Addr) -> Result<bool> {
        let k = EndpointKey { vni, ip: v4(addr) };
        let gone = removed(self.endpoints.remove(&k), names::ENDPOINTS);
        self.endpoints_changed()?;
        let gone = gone?;
        if self.local_rows.contains_key(&k) {
            self.note_endpoint(k, None);
            self.sync_local_slots(vec![k])?;
        }
        Ok(gone)
    }

    /// Reads an ENDPOINTS row.
    pub fn endpoint(&self, vni: u32, addr: Ipv4Addr) -> Result<Option<EndpointValue>> {
        let k = EndpointKey { vni, ip: v4(addr) };
        Ok(optional(self.endpoints.get(&k, 0), names::ENDPOINTS)?.map(|r| r.ep))
    }

    /// All ENDPOINTS rows.
    pub fn endpoints(&self) -> Result<Vec<(EndpointKey, EndpointValue)>> {
        Ok(self
            .endpoint_records()?
            .into_iter()
            .map(|(k, r)| (k, r.ep))
            .collect())
    }

    fn endpoint_records(&self) -> Result<Vec<(EndpointKey, EndpointRecord)>> {
        all(&self.endpoints, names::ENDPOINTS)
    }

    fn net_key(vni: u32, net: Ipv4Addr, prefix: u8) -> Result<Key<NetworkKey>> {
        if prefix > 32 {
            return Err(Error::Invalid(format!("prefix length {prefix} > 32")));
        }
        let masked = if prefix == 0 {
            0
        } else {
            u32::from(net) & (u32::MAX << (32 - prefix))
        };
        let ip = ip(Ipv4Addr::from(masked).octets());
        Ok(Key::new(
            network_prefix_len(prefix.into()),
            NetworkKey { vni, ip },
        ))
    }

    /// Upserts the NETWORKS row of subnet `net/prefix` in `vni`.
    pub fn upsert_network(
        &mut self,
        vni: u32,
        net: Ipv4Addr,
        prefix: u8,
        v: &NetworkValue,
    ) -> Result<()> {
        if v.n_bouncers as usize > alkaid_xdp_common::MAX_BOUNCERS {
            return Err(Error::Invalid(format!("{} bouncers > 16", v.n_bouncers)));
        }
        let k = Self::net_key(vni, net, prefix)?;
        let rec = self.network_record(v);
        self.networks
            .insert(&k, rec, 0)
            .map_err(map_err(names::NETWORKS))?;
        self.refresh_agent_records(Some(&k))
    }

    /// Removes a NETWORKS row; `false` if absent.
    pub fn remove_network(&mut self, vni: u32, net: Ipv4Addr, prefix: u8) -> Result<bool> {
        let k = Self::net_key(vni, net, prefix)?;
        let was = removed(self.networks.remove(&k), names::NETWORKS)?;
        self.refresh_agent_records(Some(&k))?;
        Ok(was)
    }

    /// Reads the NETWORKS row of subnet `net/prefix` in `vni`.
    pub fn network(&self, vni: u32, net: Ipv4Addr, prefix: u8) -> Result<Option<NetworkValue>> {
        let k = Self::net_key(vni, net, prefix)?;
        Ok(optional(self.networks.get(&k, 0), names::NETWORKS)?.map(|r| r.net))
    }

    fn network_record(&self, v: &NetworkValue) -> NetworkRecord {
        let mut rec = NetworkRecord {
            net: *v,
            bouncer_macs: [[0; 6]; MAX_BOUNCERS],
        };
        let n = (v.n_bouncers as usize).min(MAX_BOUNCERS);
        for i in 0..n {
            rec.bouncer_macs[i] = self.resolve_mac(v.bouncers[i]);
        }
        rec
    }

    /// Upserts the VPCS row of `vni`.
    pub fn upsert_vpc(&mut self, vni: u32, v: &VpcValue) -> Result<()> {
        if v.n_dividers as usize > alkaid_xdp_common::MAX_DIVIDERS {
            return Err(Error::Invalid(format!("{} dividers > 16", v.n_dividers)));
        }
        self.vpcs.insert(vni, v, 0).map_err(map_err(names::VPCS))
    }

    /// Removes the VPCS row of `vni`; `false` if absent.
    pub fn remove_vpc(&mut self, vni: u32) -> Result<bool> {
        removed(self.vpcs.remove(&vni), names::VPCS)
    }

    /// Upserts PEERS: the outer destination MAC for droplet `addr`. A new or changed MAC is
    /// copied into every row that caches it (see the module docs).
    pub fn upsert_peer(&mut self, addr: Ipv4Addr, mac: [u8; 6]) -> Result<()> {
        let v = PeerValue { mac, _pad: [0; 2] };
        self.peers
            .insert(v4(addr), v, 0)
            .map_err(map_err(names::PEERS))?;
        if self.peers_mirror.insert(v4(addr), mac) != Some(mac) {
            self.refresh_macs()?;
        }
        Ok(())
    }

    /// Removes a PEERS row; `false` if absent. Cached copies fall back to the default MAC (or
    /// none).
    pub fn remove_peer(&mut self, addr: Ipv4Addr) -> Result<bool> {
        let was = removed(self.peers.remove(&v4(addr)), names::PEERS)?;
        if self.peers_mirror.remove(&v4(addr)).is_some() || was {
            self.refresh_macs()?;
        }
        Ok(was)
    }

    /// What the programs would use as the outer MAC of `droplet` (zero = none).
    fn resolve_mac(&self, droplet: u32) -> [u8; 6] {
        self.peers_mirror
            .get(&droplet)
            .copied()
            .unwrap_or(self.config_mirror.default_peer_mac)
    }

    /// Rewrites every cached MAC that differs from what PEERS and CONFIG say now.
    fn refresh_macs(&mut self) -> Result<()> {
        for (k, mut rec) in self.endpoint_records()? {
            if rec.ep.flags & ENDPOINT_F_LOCAL != 0 {
                continue;
            }
            let mac = self.resolve_mac(rec.ep.droplet_ip);
            if mac != rec.droplet_mac {
                rec.droplet_mac = mac;
                let r = self
                    .endpoints
                    .insert(k, rec, 0)
                    .map_err(map_err(names::ENDPOINTS));
                self.endpoints_changed()?;
                r?;
            }
        }
        let nets = self
            .networks
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err(names::NETWORKS))?;
        for (k, rec) in nets {
            let fresh = self.network_record(&rec.net);
            if fresh != rec {
                self.networks
                    .insert(&k, fresh, 0)
                    .map_err(map_err(names::NETWORKS))?;
            }
        }
        for (k, mut v) in self.direct_paths()? {
            // No PEERS row (nor default): keep a MAC `transit` learned from the droplet's own
            // packets; a learned path never needs PEERS.
            let mac = self.resolve_mac(v.droplet_ip);
            if mac != v.mac && mac != [0; 6] {
                v.mac = mac;
                // The row may have been evicted or invalidated meanwhile: re-adding it is harmless
                // (it is what the program would learn again).
                let r = self
                    .direct_path
                    .insert(k, v, 0)
                    .map_err(map_err(names::DIRECT_PATH));
                self.direct_paths_changed()?;
                r?;
            }
        }
        self.refresh_agent_records(None)
    }

    /// Upserts AGENT_ENDPOINTS: the endpoint behind host-side veth `ifindex`. Its subnet's
    /// bouncers are copied in from NETWORKS (and kept in step by later NETWORKS writes).
    pub fn upsert_agent_endpoint(&mut self, ifindex: u32, v: &AgentEndpoint) -> Result<()> {
        let rec = self.agent_record_for(v)?;
        self.agent_endpoints
            .insert(ifindex, rec, 0)
            .map_err(map_err(names::AGENT_ENDPOINTS))?;
        self.agent_slots.apply([(ifindex, Some(rec))])
    }

    /// Reads an AGENT_ENDPOINTS row (as written, without the derived bouncers).
    pub fn agent_endpoint(&self, ifindex: u32) -> Result<Option<AgentEndpoint>> {
        Ok(optional(
            self.agent_endpoints.get(&ifindex, 0),
            names::AGENT_ENDPOINTS,
        )?
        .map(|r| r.ep))
    }

    /// The stored AGENT_ENDPOINTS row for `ifindex`: the endpoint plus the derived bouncers.
    pub fn agent_record(&self, ifindex: u32) -> Result<Option<AgentRecord>> {
        optional(
            self.agent_endpoints.get(&ifindex, 0),
            names::AGENT_ENDPOINTS,
        )
    }

    fn agent_record_for(&self, v: &AgentEndpoint) -> Result<AgentRecord> {
        let key = Key::new(
            v.net_prefix_len,
            NetworkKey {
                vni: v.vni,
                ip: v.net_ip,
            },
        );
        let mut rec = AgentRecord {
            ep: *v,
            ..AgentRecord::default()
        };
        if let Some(net) = optional(self.networks.get(&key, 0), names::NETWORKS)? {
            let n = (net.net.n_bouncers as usize).min(MAX_BOUNCERS);
            rec.n_bouncers = n as u32;
            for i in 0..n {
                rec.bouncers[i] = Hop {
                    ip: net.net.bouncers[i],
                    mac: net.bouncer_macs[i],
                    _pad: [0; 2],
                };
            }
        }
        Ok(rec)
    }

    /// Recomputes the embedded bouncers of the AGENT_ENDPOINTS rows of subnet `only` (all rows
    /// if `None`), writing those that changed.
    fn refresh_agent_records(&mut self, only: Option<&Key<NetworkKey>>) -> Result<()> {
        let mut changed = Vec::new();
        for (ifindex, rec) in all(&self.agent_endpoints, names::AGENT_ENDPOINTS)? {
            if let Some(k) = only {
                let d = k.data();
                if rec.ep.net_prefix_len != k.prefix_len()
                    || rec.ep.vni != d.vni
                    || rec.ep.net_ip != d.ip
                {
                    continue;
                }
            }
            let fresh = self.agent_record_for(&rec.ep)?;
            if fresh != rec {
                self.agent_endpoints
                    .insert(ifindex, fresh, 0)
                    .map_err(map_err(names::AGENT_ENDPOINTS))?;
                changed.push((ifindex, Some(fresh)));
            }
        }
        // One grace period for every slot that changed.
        self.agent_slots.apply(changed)
    }

    /// Removes an AGENT_ENDPOINTS row; `false` if absent. Its slot is zeroed first; a row that
    /// shares that slot then takes it.
    pub fn remove_agent_endpoint(&mut self, ifindex: u32) -> Result<bool> {
        let held = self.agent_slots.get(ifindex).is_some();
        self.agent_slots.apply([(ifindex, None)])?;
        let gone = removed(
            self.agent_endpoints.remove(&ifindex),
            names::AGENT_ENDPOINTS,
        )?;
        if held {
            let slot = alkaid_xdp_common::agent_slot(ifindex);
            let heir = all(&self.agent_endpoints, names::AGENT_ENDPOINTS)?
                .into_iter()
                .find(|(k, _)| alkaid_xdp_common::agent_slot(*k) == slot);
            if let Some((k, rec)) = heir {
                self.agent_slots.apply([(k, Some(rec))])?;
            }
        }
        Ok(gone)
    }

    /// The AGENT_SLOTS copy of `ifindex`'s row, if its slot holds it (tests, diagnostics).
    pub fn agent_slot(&self, ifindex: u32) -> Option<AgentRecord> {
        self.agent_slots.get(ifindex).copied()
    }

    /// The LOCAL_SLOTS copy of ENDPOINTS (vni, addr), if its slot holds it (tests,
    /// diagnostics).
    pub fn local_slot(&self, vni: u32, addr: Ipv4Addr) -> Option<EndpointRecord> {
        self.local_slots
            .get(EndpointKey { vni, ip: v4(addr) })
            .copied()
    }

    /// Reads a DIRECT_PATH row.
    pub fn direct_path(&self, vni: u32, addr: Ipv4Addr) -> Result<Option<DirectPathValue>> {
        let k = EndpointKey { vni, ip: v4(addr) };
        optional(self.direct_path.get(&k, 0), names::DIRECT_PATH)
    }

    /// All DIRECT_PATH rows.
    pub fn direct_paths(&self) -> Result<Vec<(EndpointKey, DirectPathValue)>> {
        all(&self.direct_path, names::DIRECT_PATH)
    }

    /// Sets a direct path by hand (control plane knows better than traffic).
    pub fn set_direct_path(&mut self, vni: u32, addr: Ipv4Addr, droplet: Ipv4Addr) -> Result<()> {
        let k = EndpointKey { vni, ip: v4(addr) };
        let v = DirectPathValue {
            droplet_ip: v4(droplet),
            flags: 0,
            mac: self.resolve_mac(v4(droplet)),
            _pad: [0; 2],
        };
        let r = self
            .direct_path
            .insert(k, v, 0)
            .map_err(map_err(names::DIRECT_PATH));
        self.direct_paths_changed()?;
        r
    }

    /// Forgets the direct path to (vni, addr): the next packet goes to a bouncer again. Called by
    /// the agent when the control plane says the endpoint moved or was deleted, on every droplet
    /// that may have learned it. `false` if there was none.
    pub fn invalidate_direct_path(&mut self, vni: u32, addr: Ipv4Addr) -> Result<bool> {
        let k = EndpointKey { vni, ip: v4(addr) };
        let r = removed(self.direct_path.remove(&k), names::DIRECT_PATH);
        self.direct_paths_changed()?;
        r
    }

    /// Forgets every direct path that points at `droplet` (the droplet disappeared). Returns how
    /// many were removed.
    pub fn invalidate_direct_paths_via(&mut self, droplet: Ipv4Addr) -> Result<usize> {
        let d = v4(droplet);
        let stale: Vec<EndpointKey> = self
            .direct_paths()?
            .into_iter()
            .filter(|(_, v)| v.droplet_ip == d)
            .map(|(k, _)| k)
            .collect();
        self.delete_direct_paths(&stale)
    }

    /// [`Maps::invalidate_direct_path`] for many keys (absent ones skipped); returns how many
    /// there were.
    pub fn delete_direct_paths(&mut self, keys: &[EndpointKey]) -> Result<usize> {
        // Batch deletion stops at every absent key (a syscall each); past a few hundred keys,
        // listing the (LRU-bounded) map once is cheaper, then only present keys are deleted.
        let present: Vec<EndpointKey>;
        let keys = if keys.len() > 256 {
            let held: std::collections::HashSet<EndpointKey> =
                self.direct_paths()?.into_iter().map(|(k, _)| k).collect();
            present = keys.iter().filter(|k| held.contains(k)).copied().collect();
            &present[..]
        } else {
            keys
        };
        if keys.is_empty() {
            return Ok(0);
        }
        let r = batch::delete(self.direct_path.map().fd(), keys).map_err(|source| Error::Batch {
            name: names::DIRECT_PATH,
            op: "delete",
            source,
        });
        self.direct_paths_changed()?;
        r
    }

    /// Allows redirects to `ifindex` (the underlay NIC and every endpoint's host-side veth).
    pub fn add_tx_port(&mut self, ifindex: u32) -> Result<()> {
        self.tx_ports
            .insert(ifindex, ifindex, None, 0)
            .map_err(Error::TxPorts)
    }

    /// Removes a redirect target; `false` if absent.
    pub fn remove_tx_port(&mut self, ifindex: u32) -> Result<bool> {
        removed(self.tx_ports.remove(ifindex), names::TX_PORTS)
    }
}
