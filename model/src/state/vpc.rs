//! `ApplyVpc` and `DeleteVpc`.

use crate::error::{Error, Result};
use crate::resource::{Object, Vpc};
use crate::validate;

use super::index::Role;
use super::truth::{AckState, VpcRec};
use super::{ClusterState, Reply, Txn};

impl ClusterState {
    pub(super) fn apply_vpc(&mut self, vpc: Vpc, txn: &mut Txn) -> Result<Reply> {
        let name = vpc.metadata.name;
        let spec = vpc.spec;
        validate::vpc(&name, &spec)?;
        for ns in &spec.namespaces {
            if let Some(other) = self.idx.namespaces.get(ns)
                && *other != name
            {
                return Err(Error::NamespaceBound {
                    namespace: ns.clone(),
                    other: other.clone(),
                });
            }
        }
        let reply = Reply::Vpc(Object::new(name.clone(), spec.clone()));
        if let Some(rec) = self.truth.vpcs.get(&name) {
            // Update: check everything first.
            if let Some(vni) = spec.vni
                && vni != rec.vni
            {
                return Err(Error::Immutable {
                    kind: "vpc",
                    name,
                    field: "vni",
                    old: rec.vni.to_string(),
                    new: vni.to_string(),
                    hint: "; delete and recreate the vpc to change it",
                });
            }
            let subnets = self.idx.vpc_subnets.get(&name).map_or(0, |s| s.len());
            if spec.cidr != rec.spec.cidr && subnets > 0 {
                return Err(Error::Immutable {
                    kind: "vpc",
                    name,
                    field: "cidr",
                    old: rec.spec.cidr.to_string(),
                    new: spec.cidr.to_string(),
                    hint: "; delete its subnets first",
                });
            }
            if spec == rec.spec {
                return Ok(reply);
            }
            let rescale = spec.dividers != rec.spec.dividers;
            for ns in &rec.spec.namespaces {
                self.idx.namespaces.remove(ns);
            }
            for ns in &spec.namespaces {
                self.idx.namespaces.insert(ns.clone(), name.clone());
            }
            self.truth.vpcs.get_mut(&name).expect("checked").spec = spec;
            if rescale {
                self.rescale(&Role::Divider(name), txn);
            }
            return Ok(reply);
        }
        let vni = match spec.vni {
            Some(vni) => {
                self.idx.vnis.check(vni, &name)?;
                vni
            }
            None => self.idx.vnis.peek(&name)?,
        };
        // Validated: now change things.
        self.idx.vnis.reserve(vni, &name)?;
        for ns in &spec.namespaces {
            self.idx.namespaces.insert(ns.clone(), name.clone());
        }
        self.idx
            .vpc_subnets
            .insert(name.clone(), Default::default());
        self.truth.vpcs.insert(
            name.clone(),
            VpcRec {
                spec,
                vni,
                dividers: Vec::new(),
                ack: AckState::default(),
            },
        );
        txn.restart.insert(super::ObjRef::Vpc(name.clone()));
        self.place_more(&Role::Divider(name), txn);
        Ok(reply)
    }

    pub(super) fn delete_vpc(&mut self, name: &str, txn: &mut Txn) -> Result<Reply> {
        let Some(rec) = self.truth.vpcs.get(name) else {
            return Ok(Reply::Deleted { existed: false });
        };
        if let Some(subnets) = self.idx.vpc_subnets.get(name)
            && let Some(first) = subnets.first()
        {
            return Err(Error::VpcHasSubnets {
                vpc: name.to_owned(),
                count: subnets.len(),
                first: first.clone(),
            });
        }
        let dividers: Vec<_> = rec.dividers.iter().map(|h| h.droplet.clone()).collect();
        let role = Role::Divider(name.to_owned());
        self.drop_holders(&role, &dividers, txn);
        let rec = self.truth.vpcs.remove(name).expect("checked");
        self.idx.vnis.release(rec.vni);
        for ns in &rec.spec.namespaces {
            self.idx.namespaces.remove(ns);
        }
        self.idx.vpc_subnets.remove(name);
        self.idx.underplaced.remove(&role);
        Ok(Reply::Deleted { existed: true })
    }
}
