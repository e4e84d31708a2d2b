//! Indexes derived from the truth, rebuilt on restore: lookups by VNI, CIDR, IP and
//! namespace; per-subnet endpoints and hosts; per-droplet roles and tables.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use crate::placement;
use crate::table::CountedTable;
use crate::types::{DropletName, EndpointKey, Ipv4Cidr, Vni};
use crate::vni::VniPool;

use super::truth::Truth;

/// A role object: the bouncers of a subnet or the dividers of a VPC.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Role {
    Bouncer(String),
    Divider(String),
}

impl Role {
    pub(crate) fn hash(&self) -> u64 {
        match self {
            Self::Bouncer(s) => placement::object_hash("bouncer", s),
            Self::Divider(v) => placement::object_hash("divider", v),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct SubnetIdx {
    /// Endpoints by address.
    pub(crate) eps: BTreeMap<Ipv4Addr, EndpointKey>,
    /// How many endpoints of the subnet each droplet hosts.
    pub(crate) hosts: BTreeMap<DropletName, u32>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct DropletIdx {
    pub(crate) hash: u64,
    pub(crate) ready: bool,
    pub(crate) roles: BTreeSet<Role>,
    pub(crate) endpoints: u32,
    pub(crate) table: CountedTable,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Index {
    pub(crate) vnis: VniPool,
    pub(crate) vpc_subnets: BTreeMap<String, BTreeSet<String>>,
    pub(crate) subnet_by_cidr: BTreeMap<(Vni, Ipv4Cidr), String>,
    pub(crate) namespaces: BTreeMap<String, String>,
    pub(crate) subnets: HashMap<String, SubnetIdx>,
    /// Hashed: placement visits every droplet but ranks them in a total order, so the
    /// iteration order never shows.
    pub(crate) droplets: HashMap<DropletName, DropletIdx>,
    pub(crate) by_ip: HashMap<Ipv4Addr, DropletName>,
    pub(crate) underplaced: BTreeSet<Role>,
    pub(crate) total_roles: u64,
    pub(crate) ready: u64,
}

impl Index {
    /// Rebuilds everything but the tables from the truth.
    pub(crate) fn rebuild(truth: &Truth) -> Self {
        let mut idx = Self::default();
        for (name, d) in &truth.droplets {
            let ready = d.phase == crate::resource::DropletPhase::Ready;
            idx.ready += u64::from(ready);
            idx.by_ip.insert(d.spec.ip, name.clone());
            idx.droplets.insert(
                name.clone(),
                DropletIdx {
                    hash: placement::name_hash(name.as_str()),
                    ready,
                    ..DropletIdx::default()
                },
            );
        }
        for (name, v) in &truth.vpcs {
            idx.vnis
                .reserve(v.vni, name)
                .expect("vnis in a snapshot are unique");
            idx.vpc_subnets.entry(name.clone()).or_default();
            for ns in &v.spec.namespaces {
                idx.namespaces.insert(ns.clone(), name.clone());
            }
            idx.add_holders(
                &Role::Divider(name.clone()),
                v.dividers.iter().map(|h| &h.droplet),
            );
            if v.dividers.len() < v.spec.dividers as usize {
                idx.underplaced.insert(Role::Divider(name.clone()));
            }
        }
        for (name, s) in &truth.subnets {
            idx.vpc_subnets
                .entry(s.spec.vpc.clone())
                .or_default()
                .insert(name.clone());
            idx.subnet_by_cidr
                .insert((s.vni, s.spec.cidr), name.clone());
            idx.subnets.insert(name.clone(), SubnetIdx::default());
            idx.add_holders(
                &Role::Bouncer(name.clone()),
                s.bouncers.iter().map(|h| &h.droplet),
            );
            if s.bouncers.len() < s.spec.bouncers as usize {
                idx.underplaced.insert(Role::Bouncer(name.clone()));
            }
        }
        for (key, e) in &truth.endpoints {
            let s = idx
                .subnets
                .get_mut(&e.subnet)
                .expect("endpoint's subnet exists");
            s.eps.insert(e.ip, key.clone());
            *s.hosts.entry(e.droplet.clone()).or_insert(0) += 1;
            if let Some(d) = idx.droplets.get_mut(&e.droplet) {
                d.endpoints += 1;
            }
        }
        idx
    }

    fn add_holders<'a>(&mut self, role: &Role, holders: impl Iterator<Item = &'a DropletName>) {
        for d in holders {
            if let Some(di) = self.droplets.get_mut(d) {
                di.roles.insert(role.clone());
                self.total_roles += 1;
            }
        }
    }

    /// The subnet of VPC `vni` whose range holds `ip`.
    pub(crate) fn subnet_at(&self, vni: Vni, ip: Ipv4Addr) -> Option<(&Ipv4Cidr, &String)> {
        let probe = Ipv4Cidr::new(ip, 32).expect("a /32 has no host bits");
        self.subnet_by_cidr
            .range(..=(vni, probe))
            .next_back()
            .filter(|((v, c), _)| *v == vni && c.contains(ip))
            .map(|((_, c), s)| (c, s))
    }
}
