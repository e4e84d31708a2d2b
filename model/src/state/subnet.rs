//! `ApplySubnet` and `DeleteSubnet`.

use crate::error::{Error, Result};
use crate::ipam::Ipam;
use crate::resource::{Object, Subnet};
use crate::table::RowKey;
use crate::validate;

use super::index::{Role, SubnetIdx};
use super::truth::{AckState, SubnetRec};
use super::{ClusterState, ObjRef, Reply, Txn};

impl ClusterState {
    pub(super) fn apply_subnet(&mut self, subnet: Subnet, txn: &mut Txn) -> Result<Reply> {
        let name = subnet.metadata.name;
        let spec = subnet.spec;
        validate::dns1123_subdomain("subnet", &name)?;
        let Some(vpc) = self.truth.vpcs.get(&spec.vpc) else {
            return Err(Error::UnknownVpc {
                referrer: format!("subnet {name:?}"),
                vpc: spec.vpc,
            });
        };
        let (vni, vpc_cidr) = (vpc.vni, vpc.spec.cidr);
        let reply = Reply::Subnet(Object::new(name.clone(), spec.clone()));
        if let Some(rec) = self.truth.subnets.get(&name) {
            let immutable = |field, old: String, new: String| Error::Immutable {
                kind: "subnet",
                name: name.clone(),
                field,
                old,
                new,
                hint: "; create a new subnet instead",
            };
            if spec.vpc != rec.spec.vpc {
                return Err(immutable("vpc", rec.spec.vpc.clone(), spec.vpc.clone()));
            }
            if spec.cidr != rec.spec.cidr {
                return Err(immutable(
                    "cidr",
                    rec.spec.cidr.to_string(),
                    spec.cidr.to_string(),
                ));
            }
            let gateway = validate::subnet(&name, &spec, vpc_cidr)?;
            if gateway != rec.gateway {
                return Err(immutable(
                    "gateway",
                    rec.gateway.to_string(),
                    gateway.to_string(),
                ));
            }
            if spec == rec.spec {
                return Ok(reply);
            }
            let rescale = spec.bouncers != rec.spec.bouncers;
            self.truth.subnets.get_mut(&name).expect("checked").spec = spec;
            if rescale {
                self.rescale(&Role::Bouncer(name), txn);
            }
            return Ok(reply);
        }
        let gateway = validate::subnet(&name, &spec, vpc_cidr)?;
        let siblings = self.idx.vpc_subnets.get(&spec.vpc).into_iter().flatten();
        validate::no_overlap(
            &name,
            &spec.vpc,
            spec.cidr,
            siblings.map(|s| (s.as_str(), self.truth.subnets[s].spec.cidr)),
        )?;
        // Validated: now change things.
        let cidr = spec.cidr;
        for h in &vpc.dividers {
            txn.touch(&h.droplet, RowKey::Network { vni, cidr });
        }
        self.idx
            .vpc_subnets
            .entry(spec.vpc.clone())
            .or_default()
            .insert(name.clone());
        self.idx.subnet_by_cidr.insert((vni, cidr), name.clone());
        self.idx.subnets.insert(name.clone(), SubnetIdx::default());
        self.truth.subnets.insert(
            name.clone(),
            SubnetRec {
                spec,
                vni,
                gateway,
                bouncers: Vec::new(),
                ipam: Ipam::new(cidr, gateway),
                ack: AckState::default(),
            },
        );
        txn.restart.insert(ObjRef::Subnet(name.clone()));
        self.place_more(&Role::Bouncer(name), txn);
        Ok(reply)
    }

    pub(super) fn delete_subnet(&mut self, name: &str, txn: &mut Txn) -> Result<Reply> {
        let Some(rec) = self.truth.subnets.get(name) else {
            return Ok(Reply::Deleted { existed: false });
        };
        let count = self.idx.subnets.get(name).map_or(0, |s| s.eps.len());
        if count > 0 {
            return Err(Error::SubnetHasEndpoints {
                subnet: name.to_owned(),
                count,
            });
        }
        let (vni, cidr) = (rec.vni, rec.spec.cidr);
        let bouncers: Vec<_> = rec.bouncers.iter().map(|h| h.droplet.clone()).collect();
        if let Some(v) = self.truth.vpcs.get(&rec.spec.vpc) {
            for h in &v.dividers {
                txn.touch(&h.droplet, RowKey::Network { vni, cidr });
            }
        }
        let role = Role::Bouncer(name.to_owned());
        self.drop_holders(&role, &bouncers, txn);
        let rec = self.truth.subnets.remove(name).expect("checked");
        if let Some(s) = self.idx.vpc_subnets.get_mut(&rec.spec.vpc) {
            s.remove(name);
        }
        self.idx.subnet_by_cidr.remove(&(vni, cidr));
        self.idx.subnets.remove(name);
        self.idx.underplaced.remove(&role);
        Ok(Reply::Deleted { existed: true })
    }
}
