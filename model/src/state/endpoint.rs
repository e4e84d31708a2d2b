//! `AllocateEndpoint` and `ReleaseEndpoint`: the hot path. Each touches only the hosting
//! droplet and the subnet's bouncers, through indexes: O(bouncers * log n).

use std::net::Ipv4Addr;

use crate::error::{Error, Result};
use crate::ipam::Refusal;
use crate::resource::DropletPhase;
use crate::table::RowKey;
use crate::types::{DropletName, EndpointKey, MacAddr};
use crate::validate;

use super::truth::{AckState, EndpointRec};
use super::{ClusterState, EndpointAllocation, ObjRef, Reply, Txn};

impl ClusterState {
    fn endpoint_rows(&self, key: &EndpointKey, txn: &mut Txn) {
        let e = &self.truth.endpoints[key];
        let s = &self.truth.subnets[&e.subnet];
        let (vni, ip) = (s.vni, e.ip);
        txn.touch(&e.droplet, RowKey::LocalEndpoint { vni, ip });
        txn.touch(
            &e.droplet,
            RowKey::Network {
                vni,
                cidr: s.spec.cidr,
            },
        );
        for b in &s.bouncers {
            txn.touch(&b.droplet, RowKey::Endpoint { vni, ip });
        }
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "mirrors the fields of Command::AllocateEndpoint"
    )]
    pub(super) fn allocate_endpoint(
        &mut self,
        namespace: String,
        name: String,
        vpc: String,
        subnet: String,
        droplet: DropletName,
        ip: Option<Ipv4Addr>,
        pod: String,
        txn: &mut Txn,
    ) -> Result<Reply> {
        validate::dns1123_label("namespace", &namespace)?;
        validate::dns1123_subdomain("endpoint", &name)?;
        let key = EndpointKey::new(namespace, name);
        let referrer = || format!("endpoint {key}");
        if !self.truth.vpcs.contains_key(&vpc) {
            return Err(Error::UnknownVpc {
                referrer: referrer(),
                vpc,
            });
        }
        let Some(s) = self.truth.subnets.get(&subnet) else {
            return Err(Error::UnknownSubnet {
                referrer: referrer(),
                subnet,
            });
        };
        if s.spec.vpc != vpc {
            return Err(Error::SubnetNotInVpc {
                referrer: referrer(),
                subnet,
                vpc,
                actual: s.spec.vpc.clone(),
            });
        }
        if let Some(e) = self.truth.endpoints.get(&key) {
            // CNI ADD is retried: the same request gets the same answer.
            let conflict = |field, existing: String, requested: String| Error::EndpointConflict {
                endpoint: key.to_string(),
                field,
                existing,
                requested,
            };
            if e.subnet != subnet {
                return Err(conflict("subnet", e.subnet.clone(), subnet));
            }
            if e.droplet != droplet {
                return Err(conflict(
                    "droplet",
                    e.droplet.to_string(),
                    droplet.to_string(),
                ));
            }
            if e.pod != pod {
                return Err(conflict("pod", e.pod.clone(), pod));
            }
            if let Some(ip) = ip
                && ip != e.ip
            {
                return Err(conflict("ip", e.ip.to_string(), ip.to_string()));
            }
            let alloc = self
                .endpoint_allocation(&key.namespace, &key.name)
                .expect("exists");
            return Ok(Reply::Endpoint(alloc));
        }
        match self.truth.droplets.get(&droplet) {
            None => {
                return Err(Error::UnknownDroplet {
                    droplet: droplet.to_string(),
                });
            }
            Some(d) if d.phase != DropletPhase::Ready => {
                return Err(Error::DropletNotReady {
                    droplet: droplet.to_string(),
                    phase: d.phase.to_string(),
                });
            }
            Some(_) => {}
        }
        let addr = match ip {
            Some(ip) => match s.ipam.check(ip) {
                None => ip,
                Some(Refusal::Outside) => {
                    return Err(Error::IpOutsideSubnet {
                        ip,
                        subnet,
                        cidr: s.spec.cidr.to_string(),
                    });
                }
                Some(Refusal::Reserved(what)) => {
                    return Err(Error::IpReserved { ip, subnet, what });
                }
                Some(Refusal::InUse) => {
                    let by = self.idx.subnets[&subnet]
                        .eps
                        .get(&ip)
                        .map_or_else(|| "unknown".to_owned(), ToString::to_string);
                    return Err(Error::IpInUse { ip, subnet, by });
                }
            },
            None => s.ipam.peek().ok_or_else(|| Error::SubnetExhausted {
                subnet: subnet.clone(),
                cidr: s.spec.cidr.to_string(),
                capacity: s.ipam.capacity(),
            })?,
        };
        // Validated: now change things.
        let vni = s.vni;
        let s = self.truth.subnets.get_mut(&subnet).expect("checked");
        if ip.is_some() {
            s.ipam.take(addr).expect("checked free");
        } else {
            let got = s.ipam.allocate();
            debug_assert_eq!(got, Some(addr));
        }
        let sidx = self.idx.subnets.get_mut(&subnet).expect("indexed");
        sidx.eps.insert(addr, key.clone());
        *sidx.hosts.entry(droplet.clone()).or_insert(0) += 1;
        self.idx
            .droplets
            .get_mut(&droplet)
            .expect("indexed")
            .endpoints += 1;
        let (subnet_name, droplet_name) = (subnet.clone(), droplet.clone());
        self.truth.endpoints.insert(
            key.clone(),
            EndpointRec {
                subnet,
                droplet,
                ip: addr,
                mac: MacAddr::for_endpoint(vni, addr),
                pod,
                ack: AckState::default(),
            },
        );
        self.endpoint_rows(&key, txn);
        let s = &self.truth.subnets[&subnet_name];
        let alloc = EndpointAllocation {
            endpoint: key.clone(),
            vpc,
            subnet: subnet_name,
            droplet: droplet_name,
            ip: addr,
            mac: MacAddr::for_endpoint(vni, addr),
            gateway: s.gateway,
            subnet_cidr: s.spec.cidr,
            vni,
        };
        txn.restart.insert(ObjRef::Endpoint(key));
        Ok(Reply::Endpoint(alloc))
    }

    pub(super) fn release_endpoint(
        &mut self,
        namespace: String,
        name: String,
        txn: &mut Txn,
    ) -> Result<Reply> {
        let key = EndpointKey::new(namespace, name);
        if !self.truth.endpoints.contains_key(&key) {
            return Ok(Reply::Deleted { existed: false });
        }
        self.endpoint_rows(&key, txn);
        let e = self.truth.endpoints.remove(&key).expect("checked");
        let s = self
            .truth
            .subnets
            .get_mut(&e.subnet)
            .expect("endpoint's subnet");
        s.ipam.release(e.ip);
        let sidx = self.idx.subnets.get_mut(&e.subnet).expect("indexed");
        sidx.eps.remove(&e.ip);
        if let Some(n) = sidx.hosts.get_mut(&e.droplet) {
            *n -= 1;
            if *n == 0 {
                sidx.hosts.remove(&e.droplet);
            }
        }
        if let Some(d) = self.idx.droplets.get_mut(&e.droplet) {
            d.endpoints -= 1;
        }
        Ok(Reply::Deleted { existed: true })
    }
}
