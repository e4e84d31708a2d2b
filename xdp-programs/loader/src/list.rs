//! Listing every row map through its pin, as the plain row types the [`crate::Maps`] API
//! takes (stored records stripped of their derived caches): what the maps ACTUALLY hold, for
//! the droplet agent's full-sync diff (so a sync removes rows a previous agent left behind in
//! any map) and for dumps. Opens its own handles from the bpffs pins, so it needs no loaded
//! [`crate::Programs`] and sees whatever any process wrote.

use std::net::Ipv4Addr;
use std::path::Path;

use alkaid_xdp_common::{
    AgentEndpoint, AgentRecord, DirectPathValue, EndpointKey, EndpointRecord, EndpointValue,
    NetworkKey, NetworkRecord, NetworkValue, PeerValue, VpcValue, ip_octets, maps as names,
};
use aya::Pod;
use aya::maps::{HashMap, IterableMap, Map, MapData, MapError, lpm_trie::LpmTrie};

use crate::{Error, Result, batch};

/// One NETWORKS row: subnet `net/prefix` of `vni`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkRow {
    /// The VPC.
    pub vni: u32,
    /// Network address.
    pub net: Ipv4Addr,
    /// CIDR prefix length (0..=32).
    pub prefix: u8,
    /// Its bouncers.
    pub value: NetworkValue,
}

/// Every row of the row maps, each list sorted by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// ENDPOINTS (local endpoints and bouncer directory).
    pub endpoints: Vec<(EndpointKey, EndpointValue)>,
    /// NETWORKS (LPM).
    pub networks: Vec<NetworkRow>,
    /// VPCS: vni -> dividers.
    pub vpcs: Vec<(u32, VpcValue)>,
    /// PEERS: droplet IPv4 (map representation) -> MAC.
    pub peers: Vec<(Ipv4Addr, [u8; 6])>,
    /// AGENT_ENDPOINTS: host veth ifindex -> endpoint.
    pub agent_endpoints: Vec<(u32, AgentEndpoint)>,
    /// DIRECT_PATH: learned (vni, ip) -> droplet.
    pub direct_paths: Vec<(EndpointKey, DirectPathValue)>,
}

fn open(dir: &Path, name: &'static str) -> Result<Map> {
    let map_err = |source| Error::Map { name, source };
    let data = MapData::from_pin(dir.join(name)).map_err(map_err)?;
    Map::from_map_data(data).map_err(map_err)
}

fn hash_rows<K: Pod + Ord, V: Pod>(dir: &Path, name: &'static str) -> Result<Vec<(K, V)>> {
    let map: HashMap<MapData, K, V> =
        HashMap::try_from(open(dir, name)?).map_err(|source| Error::Map { name, source })?;
    let mut rows = batch::lookup_all(map.map().fd()).map_err(|source| Error::Batch {
        name,
        op: "lookup",
        source,
    })?;
    rows.sort_unstable_by_key(|(k, _)| *k);
    Ok(rows)
}

fn collect<T>(it: impl Iterator<Item = Result<T, MapError>>, name: &'static str) -> Result<Vec<T>> {
    it.collect::<Result<Vec<_>, _>>()
        .map_err(|source| Error::Map { name, source })
}

fn v4(ip: u32) -> Ipv4Addr {
    Ipv4Addr::from(ip_octets(ip))
}

/// Lists the row maps pinned in `dir` (the directory given to [`crate::Programs::load_pinned`]).
///
/// # Errors
/// [`Error::Map`] if a map is not pinned there, has another type, or cannot be read.
pub fn list_pinned(dir: &Path) -> Result<Listing> {
    let endpoints = hash_rows::<EndpointKey, EndpointRecord>(dir, names::ENDPOINTS)?
        .into_iter()
        .map(|(k, r)| (k, r.ep))
        .collect();
    let trie: LpmTrie<MapData, NetworkKey, NetworkRecord> =
        LpmTrie::try_from(open(dir, names::NETWORKS)?).map_err(|source| Error::Map {
            name: names::NETWORKS,
            source,
        })?;
    let mut networks: Vec<NetworkRow> = collect(trie.iter(), names::NETWORKS)?
        .into_iter()
        .map(|(k, r)| {
            let data = k.data();
            NetworkRow {
                vni: data.vni,
                net: v4(data.ip),
                // Keys are {32 + cidr prefix, (vni, ip)}: the VNI is always matched.
                prefix: k.prefix_len().saturating_sub(32).min(32) as u8,
                value: r.net,
            }
        })
        .collect();
    networks.sort_by_key(|n| (n.vni, n.net, n.prefix));
    let mut peers: Vec<(Ipv4Addr, [u8; 6])> = hash_rows::<u32, PeerValue>(dir, names::PEERS)?
        .into_iter()
        .map(|(k, v)| (v4(k), v.mac))
        .collect();
    peers.sort();
    Ok(Listing {
        endpoints,
        networks,
        vpcs: hash_rows(dir, names::VPCS)?,
        peers,
        agent_endpoints: hash_rows::<u32, AgentRecord>(dir, names::AGENT_ENDPOINTS)?
            .into_iter()
            .map(|(k, r)| (k, r.ep))
            .collect(),
        direct_paths: hash_rows(dir, names::DIRECT_PATH)?,
    })
}
