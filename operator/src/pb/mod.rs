//! Conversions between `alkaid.v1` messages and model types. Inbound conversions validate
//! and name the bad field (`resources[0].vpc.spec.cidr`); outbound ones cannot fail.
//! Model resources and proto messages are both foreign here, so the orphan rule rules out
//! `TryFrom` impls between them: inbound conversions are functions taking the field path,
//! and table rows go through the [`Row`]/[`Key`] newtypes.

mod rows;

use std::net::Ipv4Addr;

use alkaid_model::resource::{
    Bouncer, Condition, Divider, Droplet, Endpoint, Object, ObjectMeta, Subnet, SubnetSpec, Vpc,
    VpcSpec,
};
use alkaid_model::{
    Command, DropletName, EndpointAllocation, EndpointKey, Ipv4Cidr, MacAddr, ObjRef, Vni,
};
use alkaid_proto::v1 as pb;

use crate::error::{Error, Result};
use crate::state::{Metas, ObjMeta};

pub use rows::{Key, Row};

/// The resource kinds, as selected by requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Vpc.
    Vpc,
    /// Subnet.
    Subnet,
    /// Bouncer.
    Bouncer,
    /// Divider.
    Divider,
    /// Droplet.
    Droplet,
    /// Endpoint.
    Endpoint,
}

impl Kind {
    /// Every kind, in watch order.
    pub const ALL: [Kind; 6] = [
        Kind::Vpc,
        Kind::Subnet,
        Kind::Bouncer,
        Kind::Divider,
        Kind::Droplet,
        Kind::Endpoint,
    ];

    /// Reads a `Kind` field; `Ok(None)` for `KIND_UNSPECIFIED`.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for an unknown number.
    pub fn from_pb(field: &str, value: i32) -> Result<Option<Self>> {
        Ok(Some(match pb::Kind::try_from(value) {
            Ok(pb::Kind::Unspecified) => return Ok(None),
            Ok(pb::Kind::Vpc) => Kind::Vpc,
            Ok(pb::Kind::Subnet) => Kind::Subnet,
            Ok(pb::Kind::Bouncer) => Kind::Bouncer,
            Ok(pb::Kind::Divider) => Kind::Divider,
            Ok(pb::Kind::Droplet) => Kind::Droplet,
            Ok(pb::Kind::Endpoint) => Kind::Endpoint,
            Err(_) => return Err(Error::field(field, format!("unknown kind {value}"))),
        }))
    }

    /// Like [`from_pb`](Self::from_pb) but the kind is required.
    ///
    /// # Errors
    /// [`Error::InvalidField`] when unspecified or unknown.
    pub fn required(field: &str, value: i32) -> Result<Self> {
        Self::from_pb(field, value)?
            .ok_or_else(|| Error::field(field, "missing; set KIND_VPC, KIND_SUBNET, ..."))
    }

    /// The kind's name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Vpc => "Vpc",
            Kind::Subnet => "Subnet",
            Kind::Bouncer => "Bouncer",
            Kind::Divider => "Divider",
            Kind::Droplet => "Droplet",
            Kind::Endpoint => "Endpoint",
        }
    }
}

fn required<'a, T>(field: &str, v: Option<&'a T>) -> Result<&'a T> {
    v.ok_or_else(|| Error::field(field, "missing"))
}

fn non_empty(field: &str, s: &str) -> Result<String> {
    if s.is_empty() {
        Err(Error::field(field, "missing"))
    } else {
        Ok(s.to_owned())
    }
}

/// Parses a dotted-quad IPv4 address.
///
/// # Errors
/// [`Error::InvalidField`] naming `field`.
pub fn parse_ip(field: &str, s: &str) -> Result<Ipv4Addr> {
    s.trim().parse().map_err(|_| {
        Error::field(
            field,
            format!("{s:?} is not an IPv4 address; write it like 10.0.0.1"),
        )
    })
}

fn parse_cidr(field: &str, s: &str) -> Result<Ipv4Cidr> {
    if s.is_empty() {
        return Err(Error::field(field, "missing; write it like 10.0.0.0/16"));
    }
    s.parse()
        .map_err(|e: alkaid_model::Error| Error::field(field, e.to_string()))
}

/// Reads a droplet name.
///
/// # Errors
/// [`Error::InvalidField`] when empty or not a DNS-1123 subdomain.
pub fn droplet_name(field: &str, s: &str) -> Result<DropletName> {
    DropletName::new(non_empty(field, s)?).map_err(|e| Error::field(field, e.to_string()))
}

fn meta(field: &str, m: Option<&pb::ObjectMeta>) -> Result<ObjectMeta> {
    let m = required(field, m)?;
    Ok(ObjectMeta {
        name: non_empty(&format!("{field}.name"), &m.name)?,
        namespace: None,
    })
}

/// A user's Vpc message as a model VPC.
///
/// # Errors
/// [`Error::InvalidField`] naming the first bad field under `field`.
pub fn vpc_from_pb(field: &str, v: &pb::Vpc) -> Result<Vpc> {
    let metadata = meta(&format!("{field}.metadata"), v.metadata.as_ref())?;
    let spec = required(&format!("{field}.spec"), v.spec.as_ref())?;
    let vni = spec
        .vni
        .map(|n| {
            Vni::new(u64::from(n))
                .map_err(|e| Error::field(format!("{field}.spec.vni"), e.to_string()))
        })
        .transpose()?;
    Ok(Object {
        metadata,
        spec: VpcSpec {
            cidr: parse_cidr(&format!("{field}.spec.cidr"), &spec.cidr)?,
            dividers: if spec.dividers == 0 {
                alkaid_model::resource::DEFAULT_DIVIDERS
            } else {
                spec.dividers
            },
            vni,
            namespaces: spec.namespaces.clone(),
        },
        status: None,
    })
}

/// A user's Subnet message as a model subnet.
///
/// # Errors
/// [`Error::InvalidField`] naming the first bad field under `field`.
pub fn subnet_from_pb(field: &str, s: &pb::Subnet) -> Result<Subnet> {
    let metadata = meta(&format!("{field}.metadata"), s.metadata.as_ref())?;
    let spec = required(&format!("{field}.spec"), s.spec.as_ref())?;
    let gateway = spec
        .gateway
        .as_deref()
        .map(|g| parse_ip(&format!("{field}.spec.gateway"), g))
        .transpose()?;
    Ok(Object {
        metadata,
        spec: SubnetSpec {
            vpc: non_empty(&format!("{field}.spec.vpc"), &spec.vpc)?,
            cidr: parse_cidr(&format!("{field}.spec.cidr"), &spec.cidr)?,
            bouncers: if spec.bouncers == 0 {
                alkaid_model::resource::DEFAULT_BOUNCERS
            } else {
                spec.bouncers
            },
            gateway,
        },
        status: None,
    })
}

/// The command applying one user resource (Vpc or Subnet).
///
/// # Errors
/// [`Error::InvalidField`] for a missing or malformed field, or an operator-written kind.
pub fn apply_command(field: &str, r: &pb::Resource) -> Result<Command> {
    use pb::resource::Kind as K;
    match required(field, r.kind.as_ref())? {
        K::Vpc(v) => Ok(Command::ApplyVpc(vpc_from_pb(&format!("{field}.vpc"), v)?)),
        K::Subnet(s) => Ok(Command::ApplySubnet(subnet_from_pb(
            &format!("{field}.subnet"),
            s,
        )?)),
        K::Bouncer(_) | K::Divider(_) | K::Droplet(_) | K::Endpoint(_) => Err(Error::field(
            field,
            "only Vpc and Subnet are applied by users; bouncers and dividers are placed by the \
             operator, droplets register through their agent, endpoints come from AllocateEndpoint",
        )),
    }
}

/// The fields of `RegisterDroplet`: address, MAC, interface, node.
///
/// # Errors
/// [`Error::InvalidField`] naming the bad field.
pub fn droplet_spec(spec: Option<&pb::DropletSpec>) -> Result<(Ipv4Addr, MacAddr, String, String)> {
    let spec = required("spec", spec)?;
    let ip = parse_ip("spec.ip", &spec.ip)?;
    let mac = spec
        .mac
        .parse()
        .map_err(|e: alkaid_model::Error| Error::field("spec.mac", e.to_string()))?;
    Ok((ip, mac, spec.interface.clone(), spec.node.clone()))
}

fn out_meta(m: &ObjectMeta, meta: ObjMeta) -> Option<pb::ObjectMeta> {
    Some(pb::ObjectMeta {
        name: m.name.clone(),
        namespace: m.namespace.clone().unwrap_or_default(),
        generation: meta.generation,
        resource_version: meta.resource_version,
        labels: Default::default(),
    })
}

fn conditions(cs: &[Condition]) -> Vec<pb::Condition> {
    cs.iter()
        .map(|c| pb::Condition {
            r#type: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
        })
        .collect()
}

fn names(ds: &[DropletName]) -> Vec<String> {
    ds.iter().map(ToString::to_string).collect()
}

/// Any model object, for the outbound direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Obj {
    /// A VPC.
    Vpc(Vpc),
    /// A subnet.
    Subnet(Subnet),
    /// A bouncer.
    Bouncer(Bouncer),
    /// A divider.
    Divider(Divider),
    /// A droplet.
    Droplet(Droplet),
    /// An endpoint, with the droplets that must hold it but have not acknowledged yet.
    Endpoint(Endpoint, Vec<DropletName>),
}

impl Obj {
    /// `(namespace, name)`.
    pub fn key(&self) -> (String, String) {
        let m = match self {
            Obj::Vpc(o) => &o.metadata,
            Obj::Subnet(o) => &o.metadata,
            Obj::Bouncer(o) => &o.metadata,
            Obj::Divider(o) => &o.metadata,
            Obj::Droplet(o) => &o.metadata,
            Obj::Endpoint(o, _) => &o.metadata,
        };
        (m.namespace.clone().unwrap_or_default(), m.name.clone())
    }

    /// The model object whose [`ObjMeta`] this object shows: itself, or for a bouncer or
    /// divider the subnet or VPC it serves (placements change with their owner).
    pub fn owner(&self) -> Option<ObjRef> {
        Some(match self {
            Obj::Vpc(o) => ObjRef::Vpc(o.metadata.name.clone()),
            Obj::Subnet(o) => ObjRef::Subnet(o.metadata.name.clone()),
            Obj::Bouncer(o) => ObjRef::Subnet(o.spec.subnet.clone()),
            Obj::Divider(o) => ObjRef::Vpc(o.spec.vpc.clone()),
            Obj::Droplet(o) => ObjRef::Droplet(DropletName::new(&o.metadata.name).ok()?),
            Obj::Endpoint(o, _) => ObjRef::Endpoint(EndpointKey::new(
                o.metadata.namespace.as_deref().unwrap_or_default(),
                &o.metadata.name,
            )),
        })
    }

    /// This object's metadata out of `metas`.
    pub fn meta_in(&self, metas: &Metas) -> ObjMeta {
        self.owner().map(|o| metas.get(&o)).unwrap_or_default()
    }

    /// The `alkaid.v1.Resource`, stamped with `meta` (resource version, generation).
    pub fn to_pb(&self, meta: ObjMeta) -> pb::Resource {
        use pb::resource::Kind as K;
        let kind = match self {
            Obj::Vpc(o) => K::Vpc(pb::Vpc {
                metadata: out_meta(&o.metadata, meta),
                spec: Some(pb::VpcSpec {
                    cidr: o.spec.cidr.to_string(),
                    dividers: o.spec.dividers,
                    vni: o.spec.vni.map(Vni::get),
                    namespaces: o.spec.namespaces.clone(),
                }),
                status: o.status.as_ref().map(|s| pb::VpcStatus {
                    vni: s.vni.map_or(0, Vni::get),
                    phase: s.phase.to_string(),
                    dividers: names(&s.dividers),
                    conditions: conditions(&s.conditions),
                }),
            }),
            Obj::Subnet(o) => K::Subnet(pb::Subnet {
                metadata: out_meta(&o.metadata, meta),
                spec: Some(pb::SubnetSpec {
                    vpc: o.spec.vpc.clone(),
                    cidr: o.spec.cidr.to_string(),
                    bouncers: o.spec.bouncers,
                    gateway: o.spec.gateway.map(|g| g.to_string()),
                }),
                status: o.status.as_ref().map(|s| pb::SubnetStatus {
                    phase: s.phase.to_string(),
                    bouncers: names(&s.bouncers),
                    gateway: s.gateway.map(|g| g.to_string()).unwrap_or_default(),
                    allocated: s.allocated,
                    capacity: s.capacity,
                    conditions: conditions(&s.conditions),
                }),
            }),
            Obj::Bouncer(o) => K::Bouncer(pb::Bouncer {
                metadata: out_meta(&o.metadata, meta),
                spec: Some(pb::BouncerSpec {
                    subnet: o.spec.subnet.clone(),
                    droplet: o.spec.droplet.to_string(),
                }),
                status: o.status.as_ref().map(|s| pb::RoleStatus {
                    phase: s.phase.to_string(),
                }),
            }),
            Obj::Divider(o) => K::Divider(pb::Divider {
                metadata: out_meta(&o.metadata, meta),
                spec: Some(pb::DividerSpec {
                    vpc: o.spec.vpc.clone(),
                    droplet: o.spec.droplet.to_string(),
                }),
                status: o.status.as_ref().map(|s| pb::RoleStatus {
                    phase: s.phase.to_string(),
                }),
            }),
            Obj::Droplet(o) => K::Droplet(pb::Droplet {
                metadata: out_meta(&o.metadata, meta),
                spec: Some(pb::DropletSpec {
                    ip: o.spec.ip.to_string(),
                    mac: o.spec.mac.to_string(),
                    interface: o.spec.interface.clone(),
                    node: o.spec.node.clone(),
                }),
                status: o.status.as_ref().map(|s| pb::DropletStatus {
                    phase: s.phase.to_string(),
                    last_seen: s.last_seen,
                    conditions: Vec::new(),
                }),
            }),
            Obj::Endpoint(o, waiting) => K::Endpoint(endpoint_to_pb(o, waiting, meta)),
        };
        pb::Resource { kind: Some(kind) }
    }
}

fn endpoint_to_pb(o: &Endpoint, waiting: &[DropletName], meta: ObjMeta) -> pb::Endpoint {
    let conditions = if waiting.is_empty() {
        Vec::new()
    } else {
        vec![pb::Condition {
            r#type: "Programmed".into(),
            status: "False".into(),
            reason: "WaitingForAcknowledgement".into(),
            message: format!(
                "waiting for droplets {} to acknowledge the tables holding it",
                names(waiting).join(", ")
            ),
        }]
    };
    pb::Endpoint {
        metadata: out_meta(&o.metadata, meta),
        spec: Some(pb::EndpointSpec {
            vpc: o.spec.vpc.clone(),
            subnet: o.spec.subnet.clone(),
            droplet: o.spec.droplet.to_string(),
            ip: o.spec.ip.to_string(),
            mac: o.spec.mac.to_string(),
            pod: o.spec.pod.clone(),
        }),
        status: o.status.as_ref().map(|s| pb::EndpointStatus {
            phase: s.phase.to_string(),
            programmed_on: names(&s.programmed_on),
            conditions,
        }),
    }
}

/// The CNI answer for an allocation.
pub fn allocation_to_pb(
    a: &EndpointAllocation,
    endpoint: pb::Endpoint,
    droplet_version: u64,
) -> pb::AllocateEndpointResponse {
    pb::AllocateEndpointResponse {
        endpoint: Some(endpoint),
        vni: a.vni.get(),
        gateway: a.gateway.to_string(),
        prefix_len: u32::from(a.prefix_len()),
        droplet_version,
    }
}

#[cfg(test)]
mod tests;
