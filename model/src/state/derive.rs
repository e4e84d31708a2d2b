//! Table derivation, two ways: [`desired_row`](ClusterState::desired_row) recomputes one row
//! of one droplet through the indexes (what `apply` uses), and
//! [`desired_tables`](ClusterState::desired_tables) rebuilds every table from the objects
//! alone (what restore and the tests use). Property tests check that the two agree.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use crate::table::{
    EndpointEntry, FenceEntry, LocalEndpoint, NetworkEntry, PeerEntry, RowKey, RowValue, Table,
    VpcEntry,
};
use crate::types::DropletName;

use super::ClusterState;
use super::index::Role;
use super::truth::{Holder, SubnetRec, Truth};

fn holder_ips(truth: &Truth, holders: &[Holder]) -> Vec<Ipv4Addr> {
    let mut ips: Vec<Ipv4Addr> = holders
        .iter()
        .filter_map(|h| truth.droplets.get(&h.droplet).map(|d| d.spec.ip))
        .collect();
    ips.sort_unstable();
    ips
}

fn network_entry(truth: &Truth, s: &SubnetRec) -> NetworkEntry {
    NetworkEntry {
        bouncers: holder_ips(truth, &s.bouncers),
        gateway: s.gateway,
    }
}

impl ClusterState {
    /// The value `droplet` must hold under non-`Peer` `key` now, found through the indexes.
    pub(super) fn desired_row(&self, droplet: &DropletName, key: &RowKey) -> Option<RowValue> {
        let t = &self.truth;
        match *key {
            RowKey::LocalEndpoint { vni, ip } => {
                let (_, subnet) = self.idx.subnet_at(vni, ip)?;
                let ek = self.idx.subnets.get(subnet)?.eps.get(&ip)?;
                let e = t.endpoints.get(ek)?;
                let s = t.subnets.get(subnet)?;
                (e.droplet == *droplet).then(|| {
                    RowValue::LocalEndpoint(LocalEndpoint {
                        mac: e.mac,
                        subnet_cidr: s.spec.cidr,
                        gateway: s.gateway,
                        endpoint: ek.clone(),
                    })
                })
            }
            RowKey::Endpoint { vni, ip } => {
                let (_, subnet) = self.idx.subnet_at(vni, ip)?;
                let s = t.subnets.get(subnet)?;
                if !s.bouncers.iter().any(|h| h.droplet == *droplet) {
                    return None;
                }
                let ek = self.idx.subnets.get(subnet)?.eps.get(&ip)?;
                let e = t.endpoints.get(ek)?;
                Some(RowValue::Endpoint(EndpointEntry {
                    droplet_ip: t.droplets.get(&e.droplet)?.spec.ip,
                    mac: e.mac,
                }))
            }
            RowKey::Network { vni, cidr } => {
                let subnet = self.idx.subnet_by_cidr.get(&(vni, cidr))?;
                let s = t.subnets.get(subnet)?;
                let v = t.vpcs.get(&s.spec.vpc)?;
                let divider = v.dividers.iter().any(|h| h.droplet == *droplet);
                let host = self
                    .idx
                    .subnets
                    .get(subnet)
                    .is_some_and(|i| i.hosts.contains_key(droplet));
                (divider || host).then(|| RowValue::Network(network_entry(t, s)))
            }
            RowKey::Vpc { vni } => {
                let vpc = self.idx.vnis.owner(vni)?;
                let roles = &self.idx.droplets.get(droplet)?.roles;
                let bouncer_here = roles.iter().any(|r| match r {
                    Role::Bouncer(s) => t.subnets.get(s).is_some_and(|s| s.spec.vpc == vpc),
                    Role::Divider(_) => false,
                });
                bouncer_here.then(|| {
                    RowValue::Vpc(VpcEntry {
                        dividers: holder_ips(t, &t.vpcs[vpc].dividers),
                    })
                })
            }
            RowKey::Fence { ip } => self.desired_fence(droplet, ip),
            RowKey::Peer { .. } => None,
        }
    }

    /// Every registered droplet's desired table, computed from scratch from the objects
    /// (no index, no incremental state). O(size of the state).
    pub fn desired_tables(&self) -> BTreeMap<DropletName, Table> {
        let t = &self.truth;
        let mut tables: BTreeMap<DropletName, Table> = t
            .droplets
            .keys()
            .map(|d| (d.clone(), Table::default()))
            .collect();
        let mut put = |d: &DropletName, k: RowKey, v: RowValue| {
            if let Some(table) = tables.get_mut(d) {
                table.insert(k, v);
            }
        };
        let mut hosting: BTreeMap<&str, BTreeSet<&DropletName>> = BTreeMap::new();
        for (key, e) in &t.endpoints {
            let s = &t.subnets[&e.subnet];
            let host_ip = t.droplets[&e.droplet].spec.ip;
            put(
                &e.droplet,
                RowKey::LocalEndpoint {
                    vni: s.vni,
                    ip: e.ip,
                },
                RowValue::LocalEndpoint(LocalEndpoint {
                    mac: e.mac,
                    subnet_cidr: s.spec.cidr,
                    gateway: s.gateway,
                    endpoint: key.clone(),
                }),
            );
            for b in &s.bouncers {
                put(
                    &b.droplet,
                    RowKey::Endpoint {
                        vni: s.vni,
                        ip: e.ip,
                    },
                    RowValue::Endpoint(EndpointEntry {
                        droplet_ip: host_ip,
                        mac: e.mac,
                    }),
                );
            }
            hosting
                .entry(e.subnet.as_str())
                .or_default()
                .insert(&e.droplet);
        }
        for (name, s) in &t.subnets {
            let v = &t.vpcs[&s.spec.vpc];
            let key = RowKey::Network {
                vni: s.vni,
                cidr: s.spec.cidr,
            };
            let net = RowValue::Network(network_entry(t, s));
            for d in &v.dividers {
                put(&d.droplet, key.clone(), net.clone());
            }
            for d in hosting.get(name.as_str()).into_iter().flatten() {
                put(d, key.clone(), net.clone());
            }
            let vpc_row = RowValue::Vpc(VpcEntry {
                dividers: holder_ips(t, &v.dividers),
            });
            for b in &s.bouncers {
                put(&b.droplet, RowKey::Vpc { vni: s.vni }, vpc_row.clone());
            }
        }
        let macs: BTreeMap<Ipv4Addr, crate::types::MacAddr> = t
            .droplets
            .values()
            .map(|d| (d.spec.ip, d.spec.mac))
            .collect();
        let fenced = self.fenced_ips();
        for (name, table) in &mut tables {
            let own = t.droplets[name].spec.ip;
            for &ip in fenced.iter().filter(|ip| **ip != own) {
                table.insert(RowKey::Fence { ip }, RowValue::Fence(FenceEntry {}));
            }
            let peers: BTreeSet<Ipv4Addr> = table
                .rows()
                .values()
                .flat_map(|v| v.peer_ips().iter().copied())
                .filter(|ip| *ip != own)
                .collect();
            for ip in peers {
                if let Some(&mac) = macs.get(&ip) {
                    table.insert(RowKey::Peer { ip }, RowValue::Peer(PeerEntry { mac }));
                }
            }
        }
        tables
    }

    /// One droplet's desired table computed from scratch (O(size of the state); use
    /// [`table`](ClusterState::table) for the maintained copy). Empty if unknown.
    pub fn desired_table(&self, droplet: &str) -> Table {
        self.desired_tables().remove(droplet).unwrap_or_default()
    }
}
