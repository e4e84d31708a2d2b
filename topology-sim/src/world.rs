//! The seeded world: turns a [`Scenario`] into model [`Command`]s and keeps the simulator's
//! own bookkeeping (which endpoints exist, where, for picking churn and flows). The cluster
//! itself lives only in the real [`ClusterState`]; everything here is derived from the
//! model's replies.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use alkaid_model::resource::{Object, SubnetSpec, VpcSpec};
use alkaid_model::{ClusterState, Command, DropletName, EndpointKey, Ipv4Cidr, MacAddr, Outcome};

use crate::error::{Error, Result};
use crate::pool::Pool;
use crate::scenario::{CidrLayout, Scenario};

/// The name of droplet `i`: `droplet-000042`.
pub fn droplet_name(i: u32) -> DropletName {
    DropletName::new(format!("droplet-{i:06}")).expect("valid name")
}

/// The index in a name made by [`droplet_name`].
pub fn droplet_index(name: &str) -> Option<u32> {
    name.strip_prefix("droplet-")?.parse().ok()
}

/// Underlay address of droplet `i`: 172.16.0.1 upwards.
pub fn droplet_ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0xac10_0001u32 + i)
}

/// The namespace (tenant) of VPC `v`, bound to it.
pub fn namespace(v: u32) -> String {
    format!("tenant-{v}")
}

/// An endpoint the simulator knows of (as the model allocated it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ep {
    /// VPC index.
    pub vpc: u32,
    /// Subnet index (global).
    pub subnet: u32,
    /// Hosting droplet index.
    pub droplet: u32,
    /// Allocated address.
    pub ip: Ipv4Addr,
}

/// Scenario objects by index, and the live endpoints.
#[derive(Debug)]
pub struct World {
    /// The real control-plane state.
    pub state: ClusterState,
    /// Droplet names by index.
    pub droplets: Vec<DropletName>,
    /// VPC names by index.
    pub vpcs: Vec<String>,
    /// Subnet names and their VPC, by global subnet index.
    pub subnets: Vec<(String, u32)>,
    /// Live endpoints by id.
    pub eps: HashMap<u64, Ep>,
    /// Live endpoint ids, for uniform picks.
    pub all: Pool,
    /// Live endpoint ids per VPC, for picking a flow's peer.
    pub by_vpc: Vec<Pool>,
    /// Every command applied, in order, when recording (for replaying through the store).
    pub log: Option<Vec<Command>>,
    next_id: u64,
}

/// Endpoint name of id `id`.
pub fn endpoint_key(vpc: u32, id: u64) -> EndpointKey {
    EndpointKey::new(namespace(vpc), format!("ep-{id}"))
}

fn vpc_cidr(s: &Scenario, v: u32) -> Ipv4Cidr {
    match s.vpcs.layout {
        CidrLayout::Overlapping => s.vpcs.cidr,
        CidrLayout::Disjoint => {
            let base = u64::from(u32::from(s.vpcs.cidr.network()));
            let addr = base + u64::from(v) * s.vpcs.cidr.size();
            Ipv4Cidr::new(Ipv4Addr::from(addr as u32), s.vpcs.cidr.prefix_len())
                .expect("aligned block")
        }
    }
}

impl World {
    /// Applies one command to the model (recording it first if a log is kept).
    pub fn apply(&mut self, cmd: Command) -> Outcome {
        if let Some(log) = &mut self.log {
            log.push(cmd.clone());
        }
        self.state.apply(cmd)
    }

    fn apply_setup(&mut self, what: impl FnOnce() -> String, cmd: Command) -> Result<Outcome> {
        let out = self.apply(cmd);
        match out.reply {
            Ok(_) => Ok(out),
            Err(source) => Err(Error::ModelRefused {
                what: what(),
                source: Box::new(source),
            }),
        }
    }

    /// Registers the droplets and creates the VPCs and subnets (no endpoints yet). With
    /// `record`, every command applied from now on is kept in [`World::log`].
    ///
    /// # Errors
    /// [`Error::ModelRefused`] if the model refuses a command.
    pub fn build(s: &Scenario, record: bool) -> Result<Self> {
        let mut w = Self {
            state: ClusterState::new(),
            droplets: (0..s.droplets).map(droplet_name).collect(),
            vpcs: Vec::new(),
            subnets: Vec::new(),
            eps: HashMap::new(),
            all: Pool::default(),
            by_vpc: Vec::new(),
            log: record.then(Vec::new),
            next_id: 0,
        };
        for i in 0..s.droplets {
            let ip = droplet_ip(i);
            let o = ip.octets();
            let cmd = Command::RegisterDroplet {
                name: w.droplets[i as usize].clone(),
                ip,
                mac: MacAddr([0x02, 0, o[0], o[1], o[2], o[3]]),
                interface: "eth0".into(),
                node: format!("node-{i}"),
                seen: 0,
            };
            w.apply_setup(|| format!("registering droplet {i}"), cmd)?;
        }
        let sub_size = 1u64 << (32 - u32::from(s.subnets.prefix));
        for v in 0..s.vpcs.count {
            let name = format!("vpc-{v}");
            let cidr = vpc_cidr(s, v);
            let mut spec = VpcSpec::new(cidr);
            spec.dividers = s.vpcs.dividers;
            spec.namespaces = vec![namespace(v)];
            let cmd = Command::ApplyVpc(Object::new(name.clone(), spec));
            w.apply_setup(|| format!("vpc {name}"), cmd)?;
            for k in 0..s.subnets.per_vpc {
                let sname = format!("vpc-{v}-s{k}");
                let net = u64::from(u32::from(cidr.network())) + u64::from(k) * sub_size;
                let scidr = Ipv4Cidr::new(Ipv4Addr::from(net as u32), s.subnets.prefix)
                    .expect("aligned block");
                let mut spec = SubnetSpec::new(name.clone(), scidr);
                spec.bouncers = s.subnets.bouncers;
                let cmd = Command::ApplySubnet(Object::new(sname.clone(), spec));
                w.apply_setup(|| format!("subnet {sname}"), cmd)?;
                w.subnets.push((sname, v));
            }
            w.vpcs.push(name);
            w.by_vpc.push(Pool::default());
        }
        Ok(w)
    }

    /// The command creating a new endpoint in `subnet` on `droplet`, and its id.
    pub fn create_cmd(&mut self, subnet: u32, droplet: u32) -> (u64, Command) {
        let id = self.next_id;
        self.next_id += 1;
        let (sname, vpc) = &self.subnets[subnet as usize];
        let key = endpoint_key(*vpc, id);
        let cmd = Command::AllocateEndpoint {
            namespace: key.namespace,
            name: key.name.clone(),
            vpc: self.vpcs[*vpc as usize].clone(),
            subnet: sname.clone(),
            droplet: self.droplets[droplet as usize].clone(),
            ip: None,
            pod: key.name,
        };
        (id, cmd)
    }

    /// Records an endpoint the model allocated.
    pub fn created(&mut self, id: u64, ep: Ep) {
        self.eps.insert(id, ep);
        self.all.insert(id);
        self.by_vpc[ep.vpc as usize].insert(id);
    }

    /// The command releasing endpoint `id`.
    pub fn delete_cmd(&self, id: u64) -> Option<Command> {
        let ep = self.eps.get(&id)?;
        let key = endpoint_key(ep.vpc, id);
        Some(Command::ReleaseEndpoint {
            namespace: key.namespace,
            name: key.name,
        })
    }

    /// Forgets a released endpoint.
    pub fn deleted(&mut self, id: u64) -> Option<Ep> {
        let ep = self.eps.remove(&id)?;
        self.all.remove(id);
        self.by_vpc[ep.vpc as usize].remove(id);
        Some(ep)
    }

    /// Index of a VPC named by [`World::build`] (`vpc-V`).
    pub fn vpc_index(&self, name: &str) -> Option<usize> {
        let v: usize = name.strip_prefix("vpc-")?.parse().ok()?;
        (v < self.vpcs.len()).then_some(v)
    }

    /// Global index of a subnet named by [`World::build`] (`vpc-V-sK`).
    pub fn subnet_index(&self, name: &str) -> Option<usize> {
        let (v, k) = name.strip_prefix("vpc-")?.split_once("-s")?;
        let (v, k): (usize, usize) = (v.parse().ok()?, k.parse().ok()?);
        let per = self.subnets.len() / self.vpcs.len().max(1);
        (v < self.vpcs.len() && k < per).then_some(v * per + k)
    }

    /// Endpoints per subnet index, for design comparisons.
    pub fn endpoints_per_subnet(&self) -> Vec<u64> {
        let mut n = vec![0u64; self.subnets.len()];
        for ep in self.eps.values() {
            n[ep.subnet as usize] += 1;
        }
        n
    }
}
