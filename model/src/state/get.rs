//! Reading objects back as resources, with status filled in.

use crate::resource::{
    Bouncer, BouncerSpec, Condition, Divider, DividerSpec, Droplet, DropletStatus, Endpoint,
    EndpointSpec, EndpointStatus, Object, ObjectMeta, Phase, RoleStatus, Subnet, SubnetStatus, Vpc,
    VpcStatus, bouncer_name, divider_name,
};
use crate::types::{DropletName, EndpointKey};

use super::command::EndpointAllocation;
use super::truth::{Holder, sorted};
use super::{ClusterState, ObjRef, Reply};

fn placed_condition(role: &str, placed: usize, wanted: u32, ready: u64) -> Condition {
    if placed >= wanted as usize {
        Condition {
            type_: "Placed".into(),
            status: "True".into(),
            reason: "Placed".into(),
            message: format!("all {wanted} {role}s placed"),
        }
    } else {
        Condition {
            type_: "Placed".into(),
            status: "False".into(),
            reason: "NotEnoughReadyDroplets".into(),
            message: format!(
                "placed {placed} of {wanted} {role}s: only {ready} ready droplets; \
                 the rest are placed when droplets join"
            ),
        }
    }
}

fn names(holders: &[Holder]) -> Vec<DropletName> {
    holders.iter().map(|h| h.droplet.clone()).collect()
}

impl ClusterState {
    /// A VPC with its status.
    pub fn get_vpc(&self, name: &str) -> Option<Vpc> {
        let v = self.truth.vpcs.get(name)?;
        Some(Object {
            metadata: ObjectMeta {
                name: name.to_owned(),
                namespace: None,
            },
            spec: v.spec.clone(),
            status: Some(VpcStatus {
                vni: Some(v.vni),
                phase: self.phase_of(&ObjRef::Vpc(name.to_owned())),
                dividers: names(&v.dividers),
                conditions: vec![placed_condition(
                    "divider",
                    v.dividers.len(),
                    v.spec.dividers,
                    self.idx.ready,
                )],
            }),
        })
    }

    /// Every VPC, by name.
    pub fn list_vpcs(&self) -> Vec<Vpc> {
        self.truth
            .vpcs
            .keys()
            .filter_map(|n| self.get_vpc(n))
            .collect()
    }

    /// A subnet with its status.
    pub fn get_subnet(&self, name: &str) -> Option<Subnet> {
        let s = self.truth.subnets.get(name)?;
        Some(Object {
            metadata: ObjectMeta {
                name: name.to_owned(),
                namespace: None,
            },
            spec: s.spec.clone(),
            status: Some(SubnetStatus {
                phase: self.phase_of(&ObjRef::Subnet(name.to_owned())),
                bouncers: names(&s.bouncers),
                gateway: Some(s.gateway),
                allocated: s.ipam.allocated(),
                capacity: s.ipam.capacity(),
                conditions: vec![placed_condition(
                    "bouncer",
                    s.bouncers.len(),
                    s.spec.bouncers,
                    self.idx.ready,
                )],
            }),
        })
    }

    /// Every subnet, by name.
    pub fn list_subnets(&self) -> Vec<Subnet> {
        sorted(&self.truth.subnets)
            .into_iter()
            .filter_map(|(n, _)| self.get_subnet(n))
            .collect()
    }

    fn role_phase(&self, h: &Holder) -> Phase {
        match self.truth.droplets.get(&h.droplet) {
            Some(d) if d.acked >= h.since => Phase::Ready,
            Some(_) => Phase::Provisioning,
            None => Phase::Pending,
        }
    }

    /// Every bouncer placement, by subnet then droplet. Named `<subnet>.<droplet>`.
    pub fn list_bouncers(&self) -> Vec<Bouncer> {
        let mut out = Vec::new();
        for (sn, s) in sorted(&self.truth.subnets) {
            for h in &s.bouncers {
                let mut o = Object::new(
                    bouncer_name(sn, &h.droplet),
                    BouncerSpec {
                        subnet: sn.clone(),
                        droplet: h.droplet.clone(),
                    },
                );
                o.status = Some(RoleStatus {
                    phase: self.role_phase(h),
                });
                out.push(o);
            }
        }
        out
    }

    /// Every divider placement, by VPC then droplet. Named `<vpc>.<droplet>`.
    pub fn list_dividers(&self) -> Vec<Divider> {
        let mut out = Vec::new();
        for (vn, v) in &self.truth.vpcs {
            for h in &v.dividers {
                let mut o = Object::new(
                    divider_name(vn, &h.droplet),
                    DividerSpec {
                        vpc: vn.clone(),
                        droplet: h.droplet.clone(),
                    },
                );
                o.status = Some(RoleStatus {
                    phase: self.role_phase(h),
                });
                out.push(o);
            }
        }
        out
    }

    /// A droplet with its status.
    pub fn get_droplet(&self, name: &str) -> Option<Droplet> {
        let d = self.truth.droplets.get(name)?;
        Some(Object {
            metadata: ObjectMeta {
                name: name.to_owned(),
                namespace: None,
            },
            spec: d.spec.clone(),
            status: Some(DropletStatus {
                phase: d.phase,
                last_seen: d.last_seen,
            }),
        })
    }

    /// Every droplet, by name.
    pub fn list_droplets(&self) -> Vec<Droplet> {
        sorted(&self.truth.droplets)
            .into_iter()
            .filter_map(|(n, _)| self.get_droplet(n.as_str()))
            .collect()
    }

    /// An endpoint with its status.
    pub fn get_endpoint(&self, namespace: &str, name: &str) -> Option<Endpoint> {
        let key = EndpointKey::new(namespace, name);
        let e = self.truth.endpoints.get(&key)?;
        let s = &self.truth.subnets[&e.subnet];
        let mut programmed_on: Vec<DropletName> = std::iter::once(&e.droplet)
            .chain(s.bouncers.iter().map(|h| &h.droplet))
            .filter(|d| !e.ack.waiting.contains(d))
            .cloned()
            .collect();
        programmed_on.sort();
        programmed_on.dedup();
        Some(Object {
            metadata: ObjectMeta {
                name: name.to_owned(),
                namespace: Some(namespace.to_owned()),
            },
            spec: EndpointSpec {
                vpc: s.spec.vpc.clone(),
                subnet: e.subnet.clone(),
                droplet: e.droplet.clone(),
                ip: e.ip,
                mac: e.mac,
                pod: e.pod.clone(),
            },
            status: Some(EndpointStatus {
                phase: self.phase_of(&ObjRef::Endpoint(key)),
                programmed_on,
            }),
        })
    }

    /// Endpoints, by namespace then name; all namespaces when `namespace` is `None`.
    pub fn list_endpoints(&self, namespace: Option<&str>) -> Vec<Endpoint> {
        let mut keys: Vec<&EndpointKey> = self
            .truth
            .endpoints
            .keys()
            .filter(|k| namespace.is_none_or(|ns| k.namespace == ns))
            .collect();
        keys.sort_unstable();
        keys.into_iter()
            .filter_map(|k| self.get_endpoint(&k.namespace, &k.name))
            .collect()
    }

    /// What the CNI plugin needs about an existing endpoint.
    pub fn endpoint_allocation(&self, namespace: &str, name: &str) -> Option<EndpointAllocation> {
        let key = EndpointKey::new(namespace, name);
        let e = self.truth.endpoints.get(&key)?;
        let s = &self.truth.subnets[&e.subnet];
        Some(EndpointAllocation {
            endpoint: key,
            vpc: s.spec.vpc.clone(),
            subnet: e.subnet.clone(),
            droplet: e.droplet.clone(),
            ip: e.ip,
            mac: e.mac,
            gateway: s.gateway,
            subnet_cidr: s.spec.cidr,
            vni: s.vni,
        })
    }

    /// Re-reads the object a reply carries so it shows the state after the command.
    pub(super) fn refresh(&self, reply: Reply) -> Reply {
        match reply {
            Reply::Vpc(v) => self.get_vpc(v.name()).map_or(Reply::Vpc(v), Reply::Vpc),
            Reply::Subnet(s) => self
                .get_subnet(s.name())
                .map_or(Reply::Subnet(s), Reply::Subnet),
            Reply::Droplet(d) => self
                .get_droplet(d.name())
                .map_or(Reply::Droplet(d), Reply::Droplet),
            other => other,
        }
    }
}
