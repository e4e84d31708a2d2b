//! Typed handles to every map of the object, taken out of the `aya::Ebpf` at load time.
//!
//! Writes are whole-row upserts (`BPF_ANY`): a row is replaced atomically per key, so the
//! programs see either the old or the new value. IPv4 addresses use the common crate's
//! convention (wire bytes in a `u32`); `std::net::Ipv4Addr` is accepted at this API.

use std::net::Ipv4Addr;

use alkaid_xdp_common::{
    AgentEndpoint, Config, DirectPathValue, EndpointKey, EndpointValue, NetworkKey, NetworkValue,
    PeerValue, VpcValue, ip, maps as names, network_prefix_len,
};
use aya::{
    Ebpf,
    maps::{
        Array, HashMap, MapData, MapError, PerCpuArray,
        lpm_trie::{Key, LpmTrie},
        xdp::DevMapHash,
    },
};

use crate::{Error, Result};

/// Typed access to the data-plane maps.
pub struct Maps {
    endpoints: HashMap<MapData, EndpointKey, EndpointValue>,
    networks: LpmTrie<MapData, NetworkKey, NetworkValue>,
    vpcs: HashMap<MapData, u32, VpcValue>,
    peers: HashMap<MapData, u32, PeerValue>,
    agent_endpoints: HashMap<MapData, u32, AgentEndpoint>,
    direct_path: HashMap<MapData, EndpointKey, DirectPathValue>,
    tx_ports: DevMapHash<MapData>,
    config: Array<MapData, Config>,
    pub(crate) stats: PerCpuArray<MapData, u64>,
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

fn v4(a: Ipv4Addr) -> u32 {
    ip(a.octets())
}

impl Maps {
    pub(crate) fn take_all(ebpf: &mut Ebpf) -> Result<Self> {
        Ok(Self {
            endpoints: take(ebpf, names::ENDPOINTS)?,
            networks: take(ebpf, names::NETWORKS)?,
            vpcs: take(ebpf, names::VPCS)?,
            peers: take(ebpf, names::PEERS)?,
            agent_endpoints: take(ebpf, names::AGENT_ENDPOINTS)?,
            direct_path: take(ebpf, names::DIRECT_PATH)?,
            tx_ports: take(ebpf, names::TX_PORTS)?,
            config: take(ebpf, names::CONFIG)?,
            stats: take(ebpf, names::STATS)?,
        })
    }

    /// Writes CONFIG[0].
    pub fn set_config(&mut self, cfg: &Config) -> Result<()> {
        self.config.set(0, cfg, 0).map_err(map_err(names::CONFIG))
    }

    /// Reads CONFIG[0].
    pub fn config(&self) -> Result<Config> {
        self.config.get(&0, 0).map_err(map_err(names::CONFIG))
    }

    /// Upserts an ENDPOINTS row (LocalEndpoint with `ENDPOINT_F_LOCAL`, or bouncer directory).
    pub fn upsert_endpoint(&mut self, vni: u32, addr: Ipv4Addr, v: &EndpointValue) -> Result<()> {
        let k = EndpointKey { vni, ip: v4(addr) };
        self.endpoints
            .insert(k, v, 0)
            .map_err(map_err(names::ENDPOINTS))
    }

    /// Removes an ENDPOINTS row; `false` if absent.
    pub fn remove_endpoint(&mut self, vni: u32, addr: Ipv4Addr) -> Result<bool> {
        let k = EndpointKey { vni, ip: v4(addr) };
        removed(self.endpoints.remove(&k), names::ENDPOINTS)
    }

    /// Reads an ENDPOINTS row.
    pub fn endpoint(&self, vni: u32, addr: Ipv4Addr) -> Result<Option<EndpointValue>> {
        let k = EndpointKey { vni, ip: v4(addr) };
        optional(self.endpoints.get(&k, 0), names::ENDPOINTS)
    }

    /// All ENDPOINTS rows.
    pub fn endpoints(&self) -> Result<Vec<(EndpointKey, EndpointValue)>> {
        self.endpoints
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err(names::ENDPOINTS))
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
        self.networks
            .insert(&k, v, 0)
            .map_err(map_err(names::NETWORKS))
    }

    /// Removes a NETWORKS row; `false` if absent.
    pub fn remove_network(&mut self, vni: u32, net: Ipv4Addr, prefix: u8) -> Result<bool> {
        let k = Self::net_key(vni, net, prefix)?;
        removed(self.networks.remove(&k), names::NETWORKS)
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

    /// Upserts PEERS: the outer destination MAC for droplet `addr`.
    pub fn upsert_peer(&mut self, addr: Ipv4Addr, mac: [u8; 6]) -> Result<()> {
        let v = PeerValue { mac, _pad: [0; 2] };
        self.peers
            .insert(v4(addr), v, 0)
            .map_err(map_err(names::PEERS))
    }

    /// Removes a PEERS row; `false` if absent.
    pub fn remove_peer(&mut self, addr: Ipv4Addr) -> Result<bool> {
        removed(self.peers.remove(&v4(addr)), names::PEERS)
    }

    /// Upserts AGENT_ENDPOINTS: the endpoint behind host-side veth `ifindex`.
    pub fn upsert_agent_endpoint(&mut self, ifindex: u32, v: &AgentEndpoint) -> Result<()> {
        self.agent_endpoints
            .insert(ifindex, v, 0)
            .map_err(map_err(names::AGENT_ENDPOINTS))
    }

    /// Removes an AGENT_ENDPOINTS row; `false` if absent.
    pub fn remove_agent_endpoint(&mut self, ifindex: u32) -> Result<bool> {
        removed(
            self.agent_endpoints.remove(&ifindex),
            names::AGENT_ENDPOINTS,
        )
    }

    /// Reads a DIRECT_PATH row.
    pub fn direct_path(&self, vni: u32, addr: Ipv4Addr) -> Result<Option<DirectPathValue>> {
        let k = EndpointKey { vni, ip: v4(addr) };
        optional(self.direct_path.get(&k, 0), names::DIRECT_PATH)
    }

    /// All DIRECT_PATH rows.
    pub fn direct_paths(&self) -> Result<Vec<(EndpointKey, DirectPathValue)>> {
        self.direct_path
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err(names::DIRECT_PATH))
    }

    /// Sets a direct path by hand (control plane knows better than traffic).
    pub fn set_direct_path(&mut self, vni: u32, addr: Ipv4Addr, droplet: Ipv4Addr) -> Result<()> {
        let k = EndpointKey { vni, ip: v4(addr) };
        let v = DirectPathValue {
            droplet_ip: v4(droplet),
            flags: 0,
        };
        self.direct_path
            .insert(k, v, 0)
            .map_err(map_err(names::DIRECT_PATH))
    }

    /// Forgets the direct path to (vni, addr): the next packet goes to a bouncer again. Called by
    /// the agent when the control plane says the endpoint moved or was deleted, on every droplet
    /// that may have learned it. `false` if there was none.
    pub fn invalidate_direct_path(&mut self, vni: u32, addr: Ipv4Addr) -> Result<bool> {
        let k = EndpointKey { vni, ip: v4(addr) };
        removed(self.direct_path.remove(&k), names::DIRECT_PATH)
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
        let mut n = 0;
        for k in stale {
            if removed(self.direct_path.remove(&k), names::DIRECT_PATH)? {
                n += 1;
            }
        }
        Ok(n)
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
