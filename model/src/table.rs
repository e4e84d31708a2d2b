//! Per-droplet desired tables: exactly the rows a droplet's BPF maps must hold, and the
//! versioned deltas that move a droplet from one table to the next.
//!
//! | row | held by | used for |
//! |---|---|---|
//! | `LocalEndpoint{vni,ip}` | the endpoint's droplet | delivery, anti-spoofing, ARP |
//! | `Endpoint{vni,ip}` | the subnet's bouncers | bouncing to the endpoint's droplet |
//! | `Network{vni,cidr}` | the VPC's dividers; droplets hosting the subnet's endpoints | finding a subnet's bouncers |
//! | `Vpc{vni}` | bouncers of any subnet of the VPC | off-subnet traffic to a divider |
//! | `Peer{ip}` | any droplet whose other rows name that droplet | underlay MAC of the next hop |
//! | `Fence{ip}` | every other droplet, while that droplet is Unreachable or just removed | dropping learned direct paths to it |

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::types::{DropletName, EndpointKey, Ipv4Cidr, MacAddr, Vni};

/// The key of a row; every lookup but `Peer` is scoped by the VPC's VNI.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RowKey {
    /// An endpoint hosted on this droplet.
    LocalEndpoint {
        /// Its VPC.
        vni: Vni,
        /// Its address.
        ip: Ipv4Addr,
    },
    /// An endpoint of a subnet this droplet bounces for.
    Endpoint {
        /// Its VPC.
        vni: Vni,
        /// Its address.
        ip: Ipv4Addr,
    },
    /// A subnet: where its bouncers are.
    Network {
        /// Its VPC.
        vni: Vni,
        /// Its range.
        cidr: Ipv4Cidr,
    },
    /// A VPC: where its dividers are.
    Vpc {
        /// The VPC.
        vni: Vni,
    },
    /// Another droplet on the underlay (VNI 0).
    Peer {
        /// Its underlay address.
        ip: Ipv4Addr,
    },
    /// A droplet that is gone (Unreachable, or removed and not yet acknowledged by every
    /// droplet): no direct path may lead there (VNI 0).
    Fence {
        /// Its underlay address.
        ip: Ipv4Addr,
    },
}

impl RowKey {
    /// The VNI the row belongs to; 0 for substrate rows (`Peer`).
    pub fn vni(&self) -> u32 {
        match self {
            Self::LocalEndpoint { vni, .. }
            | Self::Endpoint { vni, .. }
            | Self::Network { vni, .. }
            | Self::Vpc { vni } => vni.get(),
            Self::Peer { .. } | Self::Fence { .. } => 0,
        }
    }
}

/// An endpoint this droplet hosts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalEndpoint {
    /// Its MAC.
    pub mac: MacAddr,
    /// Its subnet's range (for the agent's on-link decision).
    pub subnet_cidr: Ipv4Cidr,
    /// Its subnet's gateway (answered by the agent's ARP responder).
    pub gateway: Ipv4Addr,
    /// Which endpoint object it is.
    pub endpoint: EndpointKey,
}

/// A directory entry on a bouncer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointEntry {
    /// Underlay address of the droplet hosting the endpoint.
    pub droplet_ip: Ipv4Addr,
    /// The endpoint's MAC.
    pub mac: MacAddr,
}

/// A subnet's bouncers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkEntry {
    /// Underlay addresses of its bouncer droplets, sorted; empty while none is placed.
    pub bouncers: Vec<Ipv4Addr>,
    /// The subnet's gateway.
    pub gateway: Ipv4Addr,
}

/// A VPC's dividers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcEntry {
    /// Underlay addresses of its divider droplets, sorted; empty while none is placed.
    pub dividers: Vec<Ipv4Addr>,
}

/// Another droplet's underlay MAC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerEntry {
    /// Its MAC.
    pub mac: MacAddr,
}

/// A fenced droplet: the row's presence is the whole message. An agent drops every learned
/// direct path to the address when the row arrives; a dead droplet cannot bounce stale paths
/// back itself (see xdp-programs/README.md, direct-path invalidation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceEntry {}

/// The value of a row; the variant always matches the key's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowValue {
    /// For [`RowKey::LocalEndpoint`].
    LocalEndpoint(LocalEndpoint),
    /// For [`RowKey::Endpoint`].
    Endpoint(EndpointEntry),
    /// For [`RowKey::Network`].
    Network(NetworkEntry),
    /// For [`RowKey::Vpc`].
    Vpc(VpcEntry),
    /// For [`RowKey::Peer`].
    Peer(PeerEntry),
    /// For [`RowKey::Fence`].
    Fence(FenceEntry),
}

impl RowValue {
    /// Underlay addresses of other droplets this row sends to (each needs a `Peer` row).
    pub fn peer_ips(&self) -> &[Ipv4Addr] {
        match self {
            Self::Endpoint(e) => std::slice::from_ref(&e.droplet_ip),
            Self::Network(n) => &n.bouncers,
            Self::Vpc(v) => &v.dividers,
            Self::LocalEndpoint(_) | Self::Peer(_) | Self::Fence(_) => &[],
        }
    }
}

/// Upserts and deletes that turn one table into another, in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ops {
    /// Rows to insert or overwrite.
    pub upserts: Vec<(RowKey, RowValue)>,
    /// Rows to remove.
    pub deletes: Vec<RowKey>,
}

impl Ops {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty()
    }

    /// Merges consecutive changes, oldest first, each given as its (upserts, deletes), into
    /// one: for each key the last operation wins (within one change, its upserts after its
    /// deletes). What applying them one after another leaves, in key order.
    pub fn coalesce<'a>(
        changes: impl IntoIterator<Item = (&'a [(RowKey, RowValue)], &'a [RowKey])>,
    ) -> Ops {
        let mut merged: BTreeMap<&RowKey, Option<&RowValue>> = BTreeMap::new();
        for (upserts, deletes) in changes {
            for k in deletes {
                merged.insert(k, None);
            }
            for (k, v) in upserts {
                merged.insert(k, Some(v));
            }
        }
        let mut ops = Ops::default();
        for (k, v) in merged {
            match v {
                Some(v) => ops.upserts.push((k.clone(), v.clone())),
                None => ops.deletes.push(k.clone()),
            }
        }
        ops
    }
}

/// A versioned change to one droplet's table. Versions of a droplet increase by one per
/// delta, so a gap tells the agent to ask for a full sync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// The droplet.
    pub droplet: DropletName,
    /// The table version after applying it.
    pub version: u64,
    /// Rows to insert or overwrite, in key order.
    pub upserts: Vec<(RowKey, RowValue)>,
    /// Rows to remove, in key order.
    pub deletes: Vec<RowKey>,
}

/// One droplet's table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    rows: BTreeMap<RowKey, RowValue>,
}

impl Table {
    /// The rows, in key order.
    pub fn rows(&self) -> &BTreeMap<RowKey, RowValue> {
        &self.rows
    }

    /// One row.
    pub fn get(&self, key: &RowKey) -> Option<&RowValue> {
        self.rows.get(key)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Inserts or overwrites a row, returning the old value.
    pub fn insert(&mut self, key: RowKey, value: RowValue) -> Option<RowValue> {
        self.rows.insert(key, value)
    }

    /// Removes a row, returning it.
    pub fn remove(&mut self, key: &RowKey) -> Option<RowValue> {
        self.rows.remove(key)
    }

    /// Applies `delta`'s upserts and deletes (what an agent does).
    pub fn apply_delta(&mut self, delta: &Delta) {
        for k in &delta.deletes {
            self.rows.remove(k);
        }
        for (k, v) in &delta.upserts {
            self.rows.insert(k.clone(), v.clone());
        }
    }

    /// The operations turning `self` into `desired`.
    pub fn diff(&self, desired: &Table) -> Ops {
        let mut ops = Ops::default();
        for (k, v) in &desired.rows {
            if self.rows.get(k) != Some(v) {
                ops.upserts.push((k.clone(), v.clone()));
            }
        }
        for k in self.rows.keys() {
            if !desired.rows.contains_key(k) {
                ops.deletes.push(k.clone());
            }
        }
        ops
    }
}

impl FromIterator<(RowKey, RowValue)> for Table {
    fn from_iter<I: IntoIterator<Item = (RowKey, RowValue)>>(iter: I) -> Self {
        Self {
            rows: iter.into_iter().collect(),
        }
    }
}

/// A table that counts, per underlay address, how many of its rows send there, so `Peer`
/// rows can be kept incrementally: one exists exactly while its count is above zero.
#[derive(Clone, Debug, Default)]
pub(crate) struct CountedTable {
    pub(crate) table: Table,
    refs: HashMap<Ipv4Addr, u32>,
}

impl CountedTable {
    /// Sets (or with `None` removes) a non-`Peer` row. Returns whether it changed; addresses
    /// whose count crossed zero are pushed to `peers`.
    pub(crate) fn set(
        &mut self,
        key: &RowKey,
        value: Option<RowValue>,
        peers: &mut Vec<Ipv4Addr>,
    ) -> bool {
        let old = self.table.rows.get(key);
        if old == value.as_ref() {
            return false;
        }
        if let Some(old) = old {
            for ip in old.peer_ips() {
                let c = self.refs.get_mut(ip).expect("counted");
                *c -= 1;
                if *c == 0 {
                    self.refs.remove(ip);
                    peers.push(*ip);
                }
            }
        }
        if let Some(new) = &value {
            for ip in new.peer_ips() {
                let c = self.refs.entry(*ip).or_insert(0);
                *c += 1;
                if *c == 1 {
                    peers.push(*ip);
                }
            }
        }
        match value {
            Some(v) => self.table.rows.insert(key.clone(), v),
            None => self.table.rows.remove(key),
        };
        true
    }

    /// Sets a `Peer` row (not counted).
    pub(crate) fn set_peer(&mut self, key: &RowKey, value: Option<RowValue>) -> bool {
        if self.table.rows.get(key) == value.as_ref() {
            return false;
        }
        match value {
            Some(v) => self.table.rows.insert(key.clone(), v),
            None => self.table.rows.remove(key),
        };
        true
    }

    /// Whether any row sends to `ip`.
    pub(crate) fn refers_to(&self, ip: Ipv4Addr) -> bool {
        self.refs.contains_key(&ip)
    }

    /// Builds the counts for a table computed from scratch.
    pub(crate) fn from_table(table: Table) -> Self {
        let mut refs: HashMap<Ipv4Addr, u32> = HashMap::new();
        for v in table.rows.values() {
            for ip in v.peer_ips() {
                *refs.entry(*ip).or_insert(0) += 1;
            }
        }
        Self { table, refs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vni(v: u64) -> Vni {
        Vni::new(v).unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn diff_then_apply_reaches_desired() {
        let a: Table = [
            (
                RowKey::Vpc { vni: vni(5) },
                RowValue::Vpc(VpcEntry {
                    dividers: vec![ip("192.168.0.1")],
                }),
            ),
            (
                RowKey::Peer {
                    ip: ip("192.168.0.1"),
                },
                RowValue::Peer(PeerEntry {
                    mac: MacAddr([2, 0, 0, 0, 0, 1]),
                }),
            ),
        ]
        .into_iter()
        .collect();
        let b: Table = [(
            RowKey::Vpc { vni: vni(5) },
            RowValue::Vpc(VpcEntry {
                dividers: vec![ip("192.168.0.2")],
            }),
        )]
        .into_iter()
        .collect();
        let ops = a.diff(&b);
        assert_eq!(ops.upserts.len(), 1);
        assert_eq!(ops.deletes.len(), 1);
        let mut t = a.clone();
        t.apply_delta(&Delta {
            droplet: DropletName::new("d1").unwrap(),
            version: 1,
            upserts: ops.upserts,
            deletes: ops.deletes,
        });
        assert_eq!(t, b);
        assert!(b.diff(&b).is_empty());
        assert_eq!(RowKey::Peer { ip: ip("1.1.1.1") }.vni(), 0);
        assert_eq!(RowKey::Vpc { vni: vni(5) }.vni(), 5);
    }

    #[test]
    fn counted_table_tracks_peers() {
        let mut t = CountedTable::default();
        let mut peers = Vec::new();
        let k1 = RowKey::Vpc { vni: vni(1) };
        let k2 = RowKey::Vpc { vni: vni(2) };
        let v = |d: &[&str]| {
            Some(RowValue::Vpc(VpcEntry {
                dividers: d.iter().map(|s| ip(s)).collect(),
            }))
        };
        assert!(t.set(&k1, v(&["10.9.0.1"]), &mut peers));
        assert_eq!(peers, vec![ip("10.9.0.1")]);
        peers.clear();
        assert!(t.set(&k2, v(&["10.9.0.1", "10.9.0.2"]), &mut peers));
        assert_eq!(peers, vec![ip("10.9.0.2")]);
        peers.clear();
        assert!(!t.set(&k2, v(&["10.9.0.1", "10.9.0.2"]), &mut peers));
        assert!(t.set(&k1, None, &mut peers));
        assert!(peers.is_empty() && t.refers_to(ip("10.9.0.1")));
        assert!(t.set(&k2, None, &mut peers));
        assert_eq!(peers, vec![ip("10.9.0.1"), ip("10.9.0.2")]);
        assert!(t.table.is_empty());
    }
}
