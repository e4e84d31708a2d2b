//! [`ClusterState`]: the deterministic state machine every operator replica runs.
//!
//! `apply` validates a [`Command`] completely before changing anything, then mutates the
//! truth, records which (droplet, row) pairs it may have affected, and finally recomputes
//! exactly those rows (`derive.rs`) into the per-droplet tables, producing versioned deltas.
//! Acknowledgement tracking (`ack.rs`) turns objects Ready once every droplet holding them
//! has applied the version that introduced them.

mod ack;
mod command;
mod derive;
mod droplet;
mod endpoint;
mod fence;
mod get;
mod index;
mod roles;
mod snapshot;
mod subnet;
mod truth;
mod vpc;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

pub use command::{Command, EndpointAllocation, ObjRef, Outcome, Reply, StatusChange};

use crate::table::{Delta, RowKey, RowValue, Table};
use crate::types::DropletName;
use index::{Index, Role};
use truth::Truth;

/// The whole control-plane state: objects, allocations, placements, table versions (the
/// truth), plus indexes and per-droplet tables derived from it.
#[derive(Clone, Debug, Default)]
pub struct ClusterState {
    truth: Truth,
    idx: Index,
}

/// Scratch of one command: what it touched.
#[derive(Default)]
struct Txn {
    touched: BTreeMap<DropletName, BTreeSet<RowKey>>,
    restart: BTreeSet<ObjRef>,
    placed: Vec<(Role, DropletName)>,
    status: Vec<StatusChange>,
    /// Addresses retired by this command (their waits get versions after the flush).
    retired: Vec<Ipv4Addr>,
}

impl Txn {
    fn touch(&mut self, droplet: &DropletName, key: RowKey) {
        if let Some(keys) = self.touched.get_mut(droplet) {
            keys.insert(key);
        } else {
            self.touched.insert(droplet.clone(), BTreeSet::from([key]));
        }
    }
}

impl ClusterState {
    /// An empty cluster.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one command. Deterministic: the same commands in the same order give the same
    /// outcomes and state on every replica. A refused command changes nothing.
    pub fn apply(&mut self, cmd: Command) -> Outcome {
        let mut txn = Txn::default();
        let reply = match cmd {
            Command::ApplyVpc(v) => self.apply_vpc(v, &mut txn),
            Command::DeleteVpc { name } => self.delete_vpc(&name, &mut txn),
            Command::ApplySubnet(s) => self.apply_subnet(s, &mut txn),
            Command::DeleteSubnet { name } => self.delete_subnet(&name, &mut txn),
            Command::RegisterDroplet {
                name,
                ip,
                mac,
                interface,
                node,
                seen,
            } => self.register_droplet(name, ip, mac, interface, node, seen, &mut txn),
            Command::DropletHeartbeat { name, seen } => self.heartbeat(&name, seen),
            Command::SetDropletPhase { name, phase, seen } => {
                self.set_droplet_phase(&name, phase, seen, &mut txn)
            }
            Command::RemoveDroplet { name } => self.remove_droplet(&name, &mut txn),
            Command::AllocateEndpoint {
                namespace,
                name,
                vpc,
                subnet,
                droplet,
                ip,
                pod,
            } => self.allocate_endpoint(namespace, name, vpc, subnet, droplet, ip, pod, &mut txn),
            Command::ReleaseEndpoint { namespace, name } => {
                self.release_endpoint(namespace, name, &mut txn)
            }
            Command::AckProgrammed { droplet, version } => self.ack(&droplet, version, &mut txn),
        };
        match reply {
            Err(e) => Outcome {
                reply: Err(e),
                status_changes: Vec::new(),
                deltas: Vec::new(),
            },
            Ok(reply) => {
                let deltas = self.flush(&txn);
                self.settle(&mut txn);
                self.settle_retired(&mut txn);
                // Replies built before the flush may lack the final phase; refresh them.
                let reply = self.refresh(reply);
                Outcome {
                    reply: Ok(reply),
                    status_changes: txn.status,
                    deltas,
                }
            }
        }
    }

    /// Recomputes every touched row, updates the tables and returns the deltas.
    fn flush(&mut self, txn: &Txn) -> Vec<Delta> {
        let mut deltas = Vec::new();
        for (droplet, keys) in &txn.touched {
            let Some(rec) = self.truth.droplets.get(droplet) else {
                continue; // removed by this command: its table is gone
            };
            let own_ip = rec.spec.ip;
            let wanted: Vec<(&RowKey, Option<RowValue>)> = keys
                .iter()
                .map(|k| (k, self.desired_row(droplet, k)))
                .collect();
            let didx = self.idx.droplets.get_mut(droplet).expect("indexed");
            let mut changes: BTreeMap<RowKey, Option<RowValue>> = BTreeMap::new();
            let mut peers: Vec<Ipv4Addr> = Vec::new();
            for (k, v) in wanted {
                if didx.table.set(k, v.clone(), &mut peers) {
                    changes.insert(k.clone(), v);
                }
            }
            peers.sort_unstable();
            peers.dedup();
            for ip in peers {
                let key = RowKey::Peer { ip };
                let want = if ip != own_ip && didx.table.refers_to(ip) {
                    self.idx
                        .by_ip
                        .get(&ip)
                        .and_then(|d| self.truth.droplets.get(d))
                        .map(|d| RowValue::Peer(crate::table::PeerEntry { mac: d.spec.mac }))
                } else {
                    None
                };
                if didx.table.set_peer(&key, want.clone()) {
                    changes.insert(key, want);
                }
            }
            if changes.is_empty() {
                continue;
            }
            let version = match self.truth.versions.get_mut(droplet) {
                Some(v) => v,
                None => self.truth.versions.entry(droplet.clone()).or_insert(0),
            };
            *version += 1;
            let mut delta = Delta {
                droplet: droplet.clone(),
                version: *version,
                upserts: Vec::new(),
                deletes: Vec::new(),
            };
            for (k, v) in changes {
                match v {
                    Some(v) => delta.upserts.push((k, v)),
                    None => delta.deletes.push(k),
                }
            }
            deltas.push(delta);
        }
        deltas
    }

    /// The current table version of `droplet` (0 before its first delta).
    pub fn version(&self, droplet: &str) -> u64 {
        self.truth.versions.get(droplet).copied().unwrap_or(0)
    }

    /// The incrementally maintained table of `droplet`, if it is registered.
    pub fn table(&self, droplet: &str) -> Option<&Table> {
        self.idx.droplets.get(droplet).map(|d| &d.table.table)
    }

    /// The registered droplet with underlay address `ip`.
    pub fn droplet_by_ip(&self, ip: Ipv4Addr) -> Option<&DropletName> {
        self.idx.by_ip.get(&ip)
    }

    /// Names of all registered droplets, sorted.
    pub fn droplet_names(&self) -> impl Iterator<Item = &DropletName> {
        truth::sorted(&self.truth.droplets)
            .into_iter()
            .map(|(k, _)| k)
    }

    /// The VPC bound to `namespace` through its `namespaces` list.
    pub fn vpc_for_namespace(&self, namespace: &str) -> Option<&str> {
        self.idx.namespaces.get(namespace).map(String::as_str)
    }

    /// Number of endpoints.
    pub fn endpoint_count(&self) -> usize {
        self.truth.endpoints.len()
    }
}

#[cfg(test)]
mod tests;
