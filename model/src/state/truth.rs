//! The truth: what snapshots hold. Everything else in [`ClusterState`](super::ClusterState)
//! is derived from it on restore.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::ipam::Ipam;
use crate::resource::{DropletPhase, DropletSpec, SubnetSpec, VpcSpec};
use crate::types::{DropletName, EndpointKey, MacAddr, Vni};

use super::ObjRef;

/// Acknowledgement tracking of one object: it is programmed when `waiting` is empty.
/// `generation` increases each time the set of droplets that must hold it changes, so
/// acknowledgements for an older generation are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AckState {
    pub(crate) generation: u32,
    pub(crate) waiting: Vec<DropletName>,
}

/// One droplet holding a role, and the droplet's table version that first included it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Holder {
    pub(crate) droplet: DropletName,
    pub(crate) since: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VpcRec {
    pub(crate) spec: VpcSpec,
    pub(crate) vni: Vni,
    /// Sorted by droplet name.
    pub(crate) dividers: Vec<Holder>,
    pub(crate) ack: AckState,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SubnetRec {
    pub(crate) spec: SubnetSpec,
    pub(crate) vni: Vni,
    pub(crate) gateway: Ipv4Addr,
    /// Sorted by droplet name.
    pub(crate) bouncers: Vec<Holder>,
    pub(crate) ipam: Ipam,
    pub(crate) ack: AckState,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DropletRec {
    pub(crate) spec: DropletSpec,
    pub(crate) phase: DropletPhase,
    pub(crate) last_seen: u64,
    /// Highest table version the droplet acknowledged.
    pub(crate) acked: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EndpointRec {
    pub(crate) subnet: String,
    pub(crate) droplet: DropletName,
    pub(crate) ip: Ipv4Addr,
    pub(crate) mac: MacAddr,
    pub(crate) pod: String,
    pub(crate) ack: AckState,
}

/// Objects waiting for a droplet to acknowledge a version: (object, generation).
pub(crate) type Waiters = BTreeMap<u64, Vec<(ObjRef, u32)>>;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Truth {
    pub(crate) vpcs: BTreeMap<String, VpcRec>,
    /// Hashed for the hot path; iterate through [`sorted`] where order shows.
    #[serde(with = "sorted_map")]
    pub(crate) subnets: HashMap<String, SubnetRec>,
    #[serde(with = "sorted_map")]
    pub(crate) droplets: HashMap<DropletName, DropletRec>,
    /// Hashed for the hot path (a million entries); iterate through [`sorted`] where order
    /// shows.
    #[serde(with = "sorted_map")]
    pub(crate) endpoints: HashMap<EndpointKey, EndpointRec>,
    /// Table version per droplet; kept after removal so versions never go back.
    #[serde(with = "sorted_map")]
    pub(crate) versions: HashMap<DropletName, u64>,
    #[serde(with = "sorted_map")]
    pub(crate) pending: HashMap<DropletName, Waiters>,
    /// Underlay addresses of removed droplets that some droplet may still hold a direct path
    /// to: each is fenced on every droplet until the droplets listed have acknowledged the
    /// table version (given) that fenced it. Encoded after the rest by the snapshot (format
    /// 2), so format-1 snapshots still restore.
    #[serde(skip)]
    pub(crate) retired: BTreeMap<Ipv4Addr, Retired>,
}

/// A removed droplet's address, fenced until every droplet that may have used it has applied
/// the fence.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Retired {
    /// Droplet -> the table version that must be acknowledged (0 until the command's flush
    /// has assigned it).
    pub(crate) waiting: BTreeMap<DropletName, u64>,
}

/// The entries of a hashed map in key order.
pub(crate) fn sorted<K: Ord, V>(map: &HashMap<K, V>) -> Vec<(&K, &V)> {
    let mut v: Vec<_> = map.iter().collect();
    v.sort_unstable_by(|a, b| a.0.cmp(b.0));
    v
}

/// Serializes a `HashMap` as a key-ordered sequence of pairs, so snapshots are
/// deterministic whatever the hasher does.
mod sorted_map {
    use std::collections::HashMap;
    use std::hash::Hash;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<K, V, S>(map: &HashMap<K, V>, s: S) -> Result<S::Ok, S::Error>
    where
        K: Ord + Serialize,
        V: Serialize,
        S: Serializer,
    {
        s.collect_seq(super::sorted(map))
    }

    pub(crate) fn deserialize<'de, K, V, D>(d: D) -> Result<HashMap<K, V>, D::Error>
    where
        K: Eq + Hash + Deserialize<'de>,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        let pairs = Vec::<(K, V)>::deserialize(d)?;
        Ok(pairs.into_iter().collect())
    }
}
