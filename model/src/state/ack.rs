//! Acknowledgements: an object is Ready once every droplet that must hold it has applied
//! the table version that introduced it. Cheap: each (droplet, version) keeps the list of
//! objects waiting for it, so an acknowledgement only visits what it completes.

use crate::error::{Error, Result};
use crate::resource::{DropletPhase, Phase};
use crate::types::DropletName;

use super::index::Role;
use super::truth::AckState;
use super::{ClusterState, ObjRef, Reply, StatusChange, Txn};

impl ClusterState {
    /// Droplets that must hold `obj` (sorted, deduplicated), or `None` if it is gone.
    fn must_hold(&self, obj: &ObjRef) -> Option<Vec<DropletName>> {
        let t = &self.truth;
        let mut out: Vec<DropletName> = match obj {
            ObjRef::Vpc(v) => t
                .vpcs
                .get(v)?
                .dividers
                .iter()
                .map(|h| h.droplet.clone())
                .collect(),
            ObjRef::Subnet(s) => {
                let s = t.subnets.get(s)?;
                let v = t.vpcs.get(&s.spec.vpc)?;
                s.bouncers
                    .iter()
                    .chain(&v.dividers)
                    .map(|h| h.droplet.clone())
                    .collect()
            }
            ObjRef::Endpoint(k) => {
                let e = t.endpoints.get(k)?;
                let s = t.subnets.get(&e.subnet)?;
                std::iter::once(e.droplet.clone())
                    .chain(s.bouncers.iter().map(|h| h.droplet.clone()))
                    .collect()
            }
            ObjRef::Droplet(_) => return None,
        };
        out.sort();
        out.dedup();
        Some(out)
    }

    fn ack_state_mut(&mut self, obj: &ObjRef) -> Option<&mut AckState> {
        let t = &mut self.truth;
        match obj {
            ObjRef::Vpc(v) => t.vpcs.get_mut(v).map(|v| &mut v.ack),
            ObjRef::Subnet(s) => t.subnets.get_mut(s).map(|s| &mut s.ack),
            ObjRef::Endpoint(k) => t.endpoints.get_mut(k).map(|e| &mut e.ack),
            ObjRef::Droplet(_) => None,
        }
    }

    /// The phase `obj` shows now.
    pub(super) fn phase_of(&self, obj: &ObjRef) -> Phase {
        let t = &self.truth;
        let from_ack = |placed: bool, ack: &AckState| {
            if !placed {
                Phase::Pending
            } else if ack.waiting.is_empty() {
                Phase::Ready
            } else {
                Phase::Provisioning
            }
        };
        match obj {
            ObjRef::Vpc(v) => t
                .vpcs
                .get(v)
                .map_or(Phase::Pending, |v| from_ack(!v.dividers.is_empty(), &v.ack)),
            ObjRef::Subnet(s) => t
                .subnets
                .get(s)
                .map_or(Phase::Pending, |s| from_ack(!s.bouncers.is_empty(), &s.ack)),
            ObjRef::Endpoint(k) => t
                .endpoints
                .get(k)
                .map_or(Phase::Pending, |e| from_ack(true, &e.ack)),
            ObjRef::Droplet(d) => match t.droplets.get(d).map(|d| d.phase) {
                Some(DropletPhase::Ready) => Phase::Ready,
                Some(DropletPhase::Unreachable) => Phase::Unreachable,
                None => Phase::Pending,
            },
        }
    }

    /// After a flush: stamps new holders with the version that placed them, and starts a new
    /// acknowledgement round for every object whose holders or rows changed.
    pub(super) fn settle(&mut self, txn: &mut Txn) {
        for (role, d) in std::mem::take(&mut txn.placed) {
            let version = self.version(d.as_str());
            let holders = match &role {
                Role::Bouncer(s) => self.truth.subnets.get_mut(s).map(|s| &mut s.bouncers),
                Role::Divider(v) => self.truth.vpcs.get_mut(v).map(|v| &mut v.dividers),
            };
            if let Some(h) = holders.and_then(|hs| hs.iter_mut().find(|h| h.droplet == d)) {
                h.since = version;
            }
        }
        for obj in std::mem::take(&mut txn.restart) {
            let Some(holders) = self.must_hold(&obj) else {
                continue;
            };
            let waiting: Vec<(DropletName, u64)> = holders
                .into_iter()
                .filter_map(|d| {
                    let acked = self.truth.droplets.get(&d)?.acked;
                    let version = self.version(d.as_str());
                    (acked < version).then_some((d, version))
                })
                .collect();
            let ack = self
                .ack_state_mut(&obj)
                .expect("must_hold checked it exists");
            ack.generation = ack.generation.wrapping_add(1);
            let generation = ack.generation;
            ack.waiting = waiting.iter().map(|(d, _)| d.clone()).collect();
            for (d, version) in waiting {
                self.truth
                    .pending
                    .entry(d)
                    .or_default()
                    .entry(version)
                    .or_default()
                    .push((obj.clone(), generation));
            }
            let phase = self.phase_of(&obj);
            txn.status.push(StatusChange { object: obj, phase });
        }
    }

    /// `AckProgrammed`: `droplet` applied its table up to `version`.
    pub(super) fn ack(
        &mut self,
        droplet: &DropletName,
        version: u64,
        txn: &mut Txn,
    ) -> Result<Reply> {
        let current = self.version(droplet.as_str());
        let Some(rec) = self.truth.droplets.get_mut(droplet) else {
            return Err(Error::UnknownDroplet {
                droplet: droplet.to_string(),
            });
        };
        let version = version.min(current);
        if version <= rec.acked {
            return Ok(Reply::Done);
        }
        rec.acked = version;
        self.release_retired(droplet, version, txn);
        let Some(pending) = self.truth.pending.get_mut(droplet) else {
            return Ok(Reply::Done);
        };
        let later = pending.split_off(&(version + 1));
        let done = std::mem::replace(pending, later);
        if pending.is_empty() {
            self.truth.pending.remove(droplet);
        }
        for (obj, generation) in done.into_values().flatten() {
            let Some(ack) = self.ack_state_mut(&obj) else {
                continue;
            };
            if ack.generation != generation {
                continue;
            }
            let before = ack.waiting.len();
            ack.waiting.retain(|d| d != droplet);
            if before > 0 && ack.waiting.is_empty() {
                ack.waiting = Vec::new(); // give the memory back
                let phase = self.phase_of(&obj);
                txn.status.push(StatusChange { object: obj, phase });
            }
        }
        Ok(Reply::Done)
    }
}
