//! Keeping roles placed: sticky placement through [`placement`], and the rows each
//! placement change touches.

use crate::placement::{self, Candidate};
use crate::table::RowKey;
use crate::types::DropletName;

use super::index::Role;
use super::truth::Holder;
use super::{ClusterState, ObjRef, Txn};

impl ClusterState {
    fn holders(&self, role: &Role) -> Option<&Vec<Holder>> {
        match role {
            Role::Bouncer(s) => self.truth.subnets.get(s).map(|s| &s.bouncers),
            Role::Divider(v) => self.truth.vpcs.get(v).map(|v| &v.dividers),
        }
    }

    fn holders_mut(&mut self, role: &Role) -> Option<&mut Vec<Holder>> {
        match role {
            Role::Bouncer(s) => self.truth.subnets.get_mut(s).map(|s| &mut s.bouncers),
            Role::Divider(v) => self.truth.vpcs.get_mut(v).map(|v| &mut v.dividers),
        }
    }

    fn target(&self, role: &Role) -> usize {
        let n = match role {
            Role::Bouncer(s) => self.truth.subnets.get(s).map_or(0, |s| s.spec.bouncers),
            Role::Divider(v) => self.truth.vpcs.get(v).map_or(0, |v| v.spec.dividers),
        };
        n as usize
    }

    fn mark_underplaced(&mut self, role: &Role) {
        let placed = self.holders(role).map_or(0, Vec::len);
        if self.holders(role).is_some() && placed < self.target(role) {
            self.idx.underplaced.insert(role.clone());
        } else {
            self.idx.underplaced.remove(role);
        }
    }

    /// Adds holders on Ready droplets until `role` has its target count or no candidate is
    /// left. O(droplets) per call.
    pub(super) fn place_more(&mut self, role: &Role, txn: &mut Txn) {
        let Some(holders) = self.holders(role) else {
            return;
        };
        let want = self.target(role).saturating_sub(holders.len());
        if want > 0 {
            let bound = placement::load_bound(self.idx.total_roles, want as u64, self.idx.ready);
            let candidates = self
                .idx
                .droplets
                .iter()
                .filter(|(n, d)| d.ready && !holders.iter().any(|h| h.droplet == **n))
                .map(|(n, d)| Candidate {
                    name: n,
                    hash: d.hash,
                    load: d.roles.len() as u32,
                });
            let picked = placement::pick(role.hash(), candidates, want, bound);
            if !picked.is_empty() {
                for d in &picked {
                    let di = self.idx.droplets.get_mut(d).expect("candidate indexed");
                    di.roles.insert(role.clone());
                    self.idx.total_roles += 1;
                    txn.placed.push((role.clone(), d.clone()));
                }
                let holders = self.holders_mut(role).expect("checked above");
                holders.extend(picked.iter().map(|d| Holder {
                    droplet: d.clone(),
                    since: 0,
                }));
                holders.sort_by(|a, b| a.droplet.cmp(&b.droplet));
                self.holders_changed(role, &picked, txn);
            }
        }
        self.mark_underplaced(role);
    }

    /// Removes `which` from the holders of `role`.
    pub(super) fn drop_holders(&mut self, role: &Role, which: &[DropletName], txn: &mut Txn) {
        let Some(holders) = self.holders_mut(role) else {
            return;
        };
        holders.retain(|h| !which.contains(&h.droplet));
        for d in which {
            if let Some(di) = self.idx.droplets.get_mut(d)
                && di.roles.remove(role)
            {
                self.idx.total_roles -= 1;
            }
        }
        self.holders_changed(role, which, txn);
        self.mark_underplaced(role);
    }

    /// Brings `role` to its target count: scale-in drops the lowest-ranked holders,
    /// scale-out adds the best candidates. Existing holders otherwise stay.
    pub(super) fn rescale(&mut self, role: &Role, txn: &mut Txn) {
        let Some(holders) = self.holders(role) else {
            return;
        };
        let target = self.target(role);
        if holders.len() > target {
            let ranked: Vec<(DropletName, u64)> = holders
                .iter()
                .map(|h| {
                    let hash = self
                        .idx
                        .droplets
                        .get(&h.droplet)
                        .map_or_else(|| placement::name_hash(h.droplet.as_str()), |d| d.hash);
                    (h.droplet.clone(), hash)
                })
                .collect();
            let gone = placement::lowest_ranked(role.hash(), &ranked, holders.len() - target);
            self.drop_holders(role, &gone, txn);
        } else {
            self.place_more(role, txn);
        }
    }

    /// Moves every role of `droplet` (already marked not Ready) to other droplets.
    pub(super) fn evacuate(&mut self, droplet: &DropletName, txn: &mut Txn) {
        let roles: Vec<Role> = self
            .idx
            .droplets
            .get(droplet)
            .map(|d| d.roles.iter().cloned().collect())
            .unwrap_or_default();
        for r in &roles {
            self.drop_holders(r, std::slice::from_ref(droplet), txn);
        }
        for r in &roles {
            self.place_more(r, txn);
        }
    }

    /// Gives roles short of holders a chance to fill up (after a droplet became Ready).
    pub(super) fn fill_underplaced(&mut self, txn: &mut Txn) {
        let roles: Vec<Role> = self.idx.underplaced.iter().cloned().collect();
        for r in &roles {
            self.place_more(r, txn);
        }
    }

    /// Records the rows that change when `changed` droplets gain or lose `role`.
    fn holders_changed(&self, role: &Role, changed: &[DropletName], txn: &mut Txn) {
        match role {
            Role::Bouncer(name) => {
                let Some(s) = self.truth.subnets.get(name) else {
                    return;
                };
                let (vni, cidr) = (s.vni, s.spec.cidr);
                let sidx = &self.idx.subnets[name];
                for d in changed {
                    for ip in sidx.eps.keys() {
                        txn.touch(d, RowKey::Endpoint { vni, ip: *ip });
                    }
                    txn.touch(d, RowKey::Vpc { vni });
                }
                if let Some(v) = self.truth.vpcs.get(&s.spec.vpc) {
                    for h in &v.dividers {
                        txn.touch(&h.droplet, RowKey::Network { vni, cidr });
                    }
                }
                for host in sidx.hosts.keys() {
                    txn.touch(host, RowKey::Network { vni, cidr });
                }
                txn.restart.insert(ObjRef::Subnet(name.clone()));
                for ek in sidx.eps.values() {
                    txn.restart.insert(ObjRef::Endpoint(ek.clone()));
                }
            }
            Role::Divider(name) => {
                let Some(v) = self.truth.vpcs.get(name) else {
                    return;
                };
                let vni = v.vni;
                for sn in self.idx.vpc_subnets.get(name).into_iter().flatten() {
                    let s = &self.truth.subnets[sn];
                    for d in changed {
                        txn.touch(
                            d,
                            RowKey::Network {
                                vni,
                                cidr: s.spec.cidr,
                            },
                        );
                    }
                    for b in &s.bouncers {
                        txn.touch(&b.droplet, RowKey::Vpc { vni });
                    }
                    txn.restart.insert(ObjRef::Subnet(sn.clone()));
                }
                txn.restart.insert(ObjRef::Vpc(name.clone()));
            }
        }
    }
}
