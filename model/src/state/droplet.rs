//! `RegisterDroplet`, `DropletHeartbeat`, `SetDropletPhase`, `RemoveDroplet`.

use std::net::Ipv4Addr;

use crate::error::{Error, Result};
use crate::placement;
use crate::resource::{DropletPhase, DropletSpec, Object};
use crate::types::{DropletName, MacAddr};

use super::index::DropletIdx;
use super::truth::DropletRec;
use super::{ClusterState, ObjRef, Reply, StatusChange, Txn};

impl ClusterState {
    fn droplet_reply(&self, name: &DropletName) -> Reply {
        let spec = self.truth.droplets[name].spec.clone();
        Reply::Droplet(Object::new(name.to_string(), spec))
    }

    fn unknown(name: &DropletName) -> Error {
        Error::UnknownDroplet {
            droplet: name.to_string(),
        }
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "mirrors the fields of Command::RegisterDroplet"
    )]
    pub(super) fn register_droplet(
        &mut self,
        name: DropletName,
        ip: Ipv4Addr,
        mac: MacAddr,
        interface: String,
        node: String,
        seen: u64,
        txn: &mut Txn,
    ) -> Result<Reply> {
        if let Some(other) = self.idx.by_ip.get(&ip)
            && *other != name
        {
            return Err(Error::DuplicateDropletIp {
                droplet: name.to_string(),
                ip,
                other: other.to_string(),
            });
        }
        let spec = DropletSpec {
            ip,
            mac,
            interface,
            node,
        };
        if let Some(rec) = self.truth.droplets.get(&name) {
            let di = &self.idx.droplets[&name];
            let changed = if rec.spec.ip != ip {
                Some("ip")
            } else if rec.spec.mac != mac {
                Some("mac")
            } else {
                None
            };
            if let Some(field) = changed
                && (di.endpoints > 0 || !di.roles.is_empty())
            {
                return Err(Error::DropletInUse {
                    droplet: name.to_string(),
                    field,
                    endpoints: di.endpoints as usize,
                    roles: di.roles.len(),
                });
            }
            // Validated: now change things.
            let old_ip = rec.spec.ip;
            self.idx.by_ip.remove(&old_ip);
            self.idx.by_ip.insert(ip, name.clone());
            let was = rec.phase;
            let rec = self.truth.droplets.get_mut(&name).expect("checked");
            rec.spec = spec;
            rec.last_seen = seen;
            if old_ip != ip {
                // Paths learned to the old address lead nowhere now.
                self.unretire(ip, txn);
                self.retire(old_ip, txn);
            }
            if was == DropletPhase::Unreachable {
                self.become_ready(&name, txn);
            }
            return Ok(self.droplet_reply(&name));
        }
        self.unretire(ip, txn);
        self.idx.by_ip.insert(ip, name.clone());
        self.idx.droplets.insert(
            name.clone(),
            DropletIdx {
                hash: placement::name_hash(name.as_str()),
                ready: true,
                ..DropletIdx::default()
            },
        );
        self.idx.ready += 1;
        self.truth.droplets.insert(
            name.clone(),
            DropletRec {
                spec,
                phase: DropletPhase::Ready,
                last_seen: seen,
                acked: 0,
            },
        );
        self.touch_fences_on(&name, txn);
        txn.status.push(StatusChange {
            object: ObjRef::Droplet(name.clone()),
            phase: crate::resource::Phase::Ready,
        });
        self.fill_underplaced(txn);
        Ok(self.droplet_reply(&name))
    }

    fn become_ready(&mut self, name: &DropletName, txn: &mut Txn) {
        let rec = self.truth.droplets.get_mut(name).expect("exists");
        rec.phase = DropletPhase::Ready;
        let ip = rec.spec.ip;
        self.touch_fence_everywhere(ip, txn);
        self.idx.droplets.get_mut(name).expect("exists").ready = true;
        self.idx.ready += 1;
        txn.status.push(StatusChange {
            object: ObjRef::Droplet(name.clone()),
            phase: crate::resource::Phase::Ready,
        });
        // Returning droplets take no roles back; they only fill roles short of holders.
        self.fill_underplaced(txn);
    }

    fn become_unreachable(&mut self, name: &DropletName, txn: &mut Txn) {
        let rec = self.truth.droplets.get_mut(name).expect("exists");
        rec.phase = DropletPhase::Unreachable;
        let ip = rec.spec.ip;
        self.touch_fence_everywhere(ip, txn);
        self.idx.droplets.get_mut(name).expect("exists").ready = false;
        self.idx.ready -= 1;
        txn.status.push(StatusChange {
            object: ObjRef::Droplet(name.clone()),
            phase: crate::resource::Phase::Unreachable,
        });
        self.evacuate(name, txn);
    }

    pub(super) fn heartbeat(&mut self, name: &DropletName, seen: u64) -> Result<Reply> {
        let rec = self
            .truth
            .droplets
            .get_mut(name)
            .ok_or_else(|| Self::unknown(name))?;
        rec.last_seen = seen;
        Ok(Reply::Done)
    }

    pub(super) fn set_droplet_phase(
        &mut self,
        name: &DropletName,
        phase: DropletPhase,
        seen: u64,
        txn: &mut Txn,
    ) -> Result<Reply> {
        let rec = self
            .truth
            .droplets
            .get_mut(name)
            .ok_or_else(|| Self::unknown(name))?;
        rec.last_seen = seen;
        match (rec.phase, phase) {
            (DropletPhase::Ready, DropletPhase::Unreachable) => self.become_unreachable(name, txn),
            (DropletPhase::Unreachable, DropletPhase::Ready) => self.become_ready(name, txn),
            _ => {}
        }
        Ok(self.droplet_reply(name))
    }

    pub(super) fn remove_droplet(&mut self, name: &DropletName, txn: &mut Txn) -> Result<Reply> {
        let Some(di) = self.idx.droplets.get(name) else {
            return Ok(Reply::Deleted { existed: false });
        };
        if di.endpoints > 0 {
            return Err(Error::DropletHasEndpoints {
                droplet: name.to_string(),
                count: di.endpoints as usize,
            });
        }
        if di.ready {
            self.idx.droplets.get_mut(name).expect("exists").ready = false;
            self.idx.ready -= 1;
        }
        self.evacuate(name, txn);
        let rec = self
            .truth
            .droplets
            .remove(name)
            .expect("indexed droplets exist");
        self.idx.droplets.remove(name);
        self.idx.by_ip.remove(&rec.spec.ip);
        self.truth.pending.remove(name);
        // Gone for good: fence its address, and stop waiting for its acknowledgements.
        self.release_retired(name, u64::MAX, txn);
        self.retire(rec.spec.ip, txn);
        Ok(Reply::Deleted { existed: true })
    }
}
