//! Conversions between the CRs ([`crate::crd`]) and the control API's messages.
//! Pure and total on the CR side; store objects that break the contract become
//! [`Error::BadStoreObject`] naming the field.

use alkaid_proto::v1 as pb;
use kube::ResourceExt as _;
use pb::resource::Kind as K;

use crate::crd::{
    Bouncer, BouncerSpec, Condition, Divider, DividerSpec, Droplet, DropletPhase, DropletSpec,
    DropletStatus, Endpoint, EndpointSpec, EndpointStatus, Phase, RoleStatus, Subnet, SubnetSpec,
    SubnetStatus, Vpc, VpcSpec, VpcStatus,
};
use crate::error::{Error, Result};

fn meta(name: String, namespace: String) -> Option<pb::ObjectMeta> {
    Some(pb::ObjectMeta {
        name,
        namespace,
        ..Default::default()
    })
}

/// The control API's form of a Vpc spec.
pub fn vpc_spec(spec: &VpcSpec) -> pb::VpcSpec {
    pb::VpcSpec {
        cidr: spec.cidr.clone(),
        dividers: spec.dividers,
        vni: spec.vni,
        namespaces: spec.namespaces.clone(),
    }
}

/// The control API's form of a Subnet spec.
pub fn subnet_spec(spec: &SubnetSpec) -> pb::SubnetSpec {
    pb::SubnetSpec {
        vpc: spec.vpc.clone(),
        cidr: spec.cidr.clone(),
        bouncers: spec.bouncers,
        gateway: spec.gateway.clone(),
    }
}

/// A Vpc CR as the object to apply (spec only: the store owns status).
pub fn vpc_to_pb(vpc: &Vpc) -> pb::Resource {
    pb::Resource {
        kind: Some(K::Vpc(pb::Vpc {
            metadata: meta(vpc.name_any(), String::new()),
            spec: Some(vpc_spec(&vpc.spec)),
            status: None,
        })),
    }
}

/// A Subnet CR as the object to apply (spec only: the store owns status).
pub fn subnet_to_pb(subnet: &Subnet) -> pb::Resource {
    pb::Resource {
        kind: Some(K::Subnet(pb::Subnet {
            metadata: meta(subnet.name_any(), String::new()),
            spec: Some(subnet_spec(&subnet.spec)),
            status: None,
        })),
    }
}

fn conditions(cs: &[pb::Condition]) -> Vec<Condition> {
    cs.iter()
        .map(|c| Condition {
            type_: c.r#type.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
        })
        .collect()
}

fn name_and_ns(m: Option<&pb::ObjectMeta>) -> (String, String) {
    m.map(|m| (m.name.clone(), m.namespace.clone()))
        .unwrap_or_default()
}

fn bad(kind: &'static str, name: &str, field: &'static str, message: &str) -> Error {
    Error::BadStoreObject {
        kind,
        name: name.to_owned(),
        field,
        message: message.to_owned(),
    }
}

fn required<'a>(
    kind: &'static str,
    name: &str,
    field: &'static str,
    v: &'a str,
) -> Result<&'a str> {
    if v.is_empty() {
        Err(bad(kind, name, field, "is empty"))
    } else {
        Ok(v)
    }
}

/// A Vpc's status from the stored object (`None` fields become defaults).
pub fn vpc_status(stored: &pb::Vpc) -> VpcStatus {
    let st = stored.status.clone().unwrap_or_default();
    VpcStatus {
        vni: (st.vni != 0).then_some(st.vni),
        phase: Phase::from_store(&st.phase),
        dividers: st.dividers,
        conditions: conditions(&st.conditions),
        observed_generation: None,
    }
}

/// A Subnet's status from the stored object.
pub fn subnet_status(stored: &pb::Subnet) -> SubnetStatus {
    let st = stored.status.clone().unwrap_or_default();
    SubnetStatus {
        phase: Phase::from_store(&st.phase),
        bouncers: st.bouncers,
        gateway: (!st.gateway.is_empty()).then_some(st.gateway),
        allocated: st.allocated,
        capacity: st.capacity,
        conditions: conditions(&st.conditions),
        observed_generation: None,
    }
}

/// An Endpoint CR (spec and status) from a stored endpoint.
///
/// # Errors
/// [`Error::BadStoreObject`] if a required field is empty.
pub fn endpoint_from_pb(ep: &pb::Endpoint) -> Result<Endpoint> {
    let (name, ns) = name_and_ns(ep.metadata.as_ref());
    let k = "endpoint";
    required(k, &name, "metadata.name", &name)?;
    required(k, &name, "metadata.namespace", &ns)?;
    let spec = ep
        .spec
        .clone()
        .ok_or_else(|| bad(k, &name, "spec", "is missing"))?;
    for (field, v) in [
        ("spec.vpc", &spec.vpc),
        ("spec.subnet", &spec.subnet),
        ("spec.droplet", &spec.droplet),
        ("spec.ip", &spec.ip),
        ("spec.mac", &spec.mac),
        ("spec.pod", &spec.pod),
    ] {
        required(k, &name, field, v)?;
    }
    let st = ep.status.clone().unwrap_or_default();
    let mut cr = Endpoint::new(
        &name,
        EndpointSpec {
            vpc: spec.vpc,
            subnet: spec.subnet,
            droplet: spec.droplet,
            ip: spec.ip,
            mac: spec.mac,
            pod: spec.pod,
        },
    );
    cr.metadata.namespace = Some(ns);
    cr.status = Some(EndpointStatus {
        phase: Phase::from_store(&st.phase),
        programmed_on: st.programmed_on,
        conditions: conditions(&st.conditions),
    });
    Ok(cr)
}

/// A Bouncer CR from a stored bouncer.
///
/// # Errors
/// [`Error::BadStoreObject`] if a required field is empty.
pub fn bouncer_from_pb(b: &pb::Bouncer) -> Result<Bouncer> {
    let (name, _) = name_and_ns(b.metadata.as_ref());
    required("bouncer", &name, "metadata.name", &name)?;
    let spec = b.spec.clone().unwrap_or_default();
    required("bouncer", &name, "spec.subnet", &spec.subnet)?;
    required("bouncer", &name, "spec.droplet", &spec.droplet)?;
    let mut cr = Bouncer::new(
        &name,
        BouncerSpec {
            subnet: spec.subnet,
            droplet: spec.droplet,
        },
    );
    cr.status = Some(role_status(b.status.as_ref()));
    Ok(cr)
}

/// A Divider CR from a stored divider.
///
/// # Errors
/// [`Error::BadStoreObject`] if a required field is empty.
pub fn divider_from_pb(d: &pb::Divider) -> Result<Divider> {
    let (name, _) = name_and_ns(d.metadata.as_ref());
    required("divider", &name, "metadata.name", &name)?;
    let spec = d.spec.clone().unwrap_or_default();
    required("divider", &name, "spec.vpc", &spec.vpc)?;
    required("divider", &name, "spec.droplet", &spec.droplet)?;
    let mut cr = Divider::new(
        &name,
        DividerSpec {
            vpc: spec.vpc,
            droplet: spec.droplet,
        },
    );
    cr.status = Some(role_status(d.status.as_ref()));
    Ok(cr)
}

fn role_status(s: Option<&pb::RoleStatus>) -> RoleStatus {
    RoleStatus {
        phase: Phase::from_store(s.map_or("", |s| s.phase.as_str())),
    }
}

/// A Droplet CR from a stored droplet.
///
/// # Errors
/// [`Error::BadStoreObject`] if a required field is empty.
pub fn droplet_from_pb(d: &pb::Droplet) -> Result<Droplet> {
    let (name, _) = name_and_ns(d.metadata.as_ref());
    let k = "droplet";
    required(k, &name, "metadata.name", &name)?;
    let spec = d.spec.clone().unwrap_or_default();
    required(k, &name, "spec.ip", &spec.ip)?;
    required(k, &name, "spec.mac", &spec.mac)?;
    let st = d.status.clone().unwrap_or_default();
    let mut cr = Droplet::new(
        &name,
        DropletSpec {
            ip: spec.ip,
            mac: spec.mac,
            interface: spec.interface,
            node: spec.node,
        },
    );
    cr.status = Some(DropletStatus {
        phase: if st.phase == "Unreachable" {
            DropletPhase::Unreachable
        } else {
            DropletPhase::Ready
        },
        last_seen: st.last_seen,
        conditions: conditions(&st.conditions),
    });
    Ok(cr)
}

#[cfg(test)]
mod tests;
