use alkaid_proto::v1 as pb;

use super::*;
use crate::crd::{Phase, VpcSpec};

#[test]
fn vpc_round_trip_to_the_wire() {
    let vpc = Vpc::new(
        "blue",
        VpcSpec {
            cidr: "10.0.0.0/16".into(),
            dividers: 2,
            vni: Some(7001),
            namespaces: vec!["team-a".into()],
        },
    );
    let r = vpc_to_pb(&vpc);
    let Some(pb::resource::Kind::Vpc(v)) = r.kind else {
        panic!("not a vpc")
    };
    assert_eq!(v.metadata.unwrap().name, "blue");
    let spec = v.spec.unwrap();
    assert_eq!(
        (spec.cidr.as_str(), spec.dividers, spec.vni),
        ("10.0.0.0/16", 2, Some(7001))
    );
    assert!(v.status.is_none(), "the operator never writes store status");
}

#[test]
fn statuses_from_the_store() {
    let v = pb::Vpc {
        status: Some(pb::VpcStatus {
            vni: 0,
            phase: "Weird".into(),
            dividers: vec!["d1".into()],
            conditions: vec![],
        }),
        ..Default::default()
    };
    let st = vpc_status(&v);
    assert_eq!(st.vni, None, "vni 0 means not allocated yet");
    assert_eq!(st.phase, Phase::Pending, "unknown phases read as Pending");
    let s = pb::Subnet {
        status: Some(pb::SubnetStatus {
            phase: "Ready".into(),
            gateway: "10.0.1.1".into(),
            allocated: 3,
            capacity: 253,
            ..Default::default()
        }),
        ..Default::default()
    };
    let st = subnet_status(&s);
    assert_eq!(st.phase, Phase::Ready);
    assert_eq!(st.gateway.as_deref(), Some("10.0.1.1"));
    assert_eq!((st.allocated, st.capacity), (3, 253));
}

fn endpoint(ns: &str, ip: &str) -> pb::Endpoint {
    pb::Endpoint {
        metadata: Some(pb::ObjectMeta {
            name: "p1".into(),
            namespace: ns.into(),
            ..Default::default()
        }),
        spec: Some(pb::EndpointSpec {
            vpc: "blue".into(),
            subnet: "web".into(),
            droplet: "d1".into(),
            ip: ip.into(),
            mac: "02:00:0a:00:01:05".into(),
            pod: "p1".into(),
        }),
        status: Some(pb::EndpointStatus {
            phase: "Ready".into(),
            programmed_on: vec!["d1".into()],
            conditions: vec![],
        }),
    }
}

#[test]
fn endpoint_from_the_store() {
    let cr = endpoint_from_pb(&endpoint("team-a", "10.0.1.5")).unwrap();
    assert_eq!(cr.metadata.namespace.as_deref(), Some("team-a"));
    assert_eq!(cr.spec.ip, "10.0.1.5");
    assert_eq!(cr.status.unwrap().programmed_on, ["d1"]);
}

#[test]
fn bad_store_objects_name_the_field() {
    let err = endpoint_from_pb(&endpoint("", "10.0.1.5")).unwrap_err();
    assert!(err.to_string().contains("metadata.namespace"), "{err}");
    let err = endpoint_from_pb(&endpoint("team-a", "")).unwrap_err();
    assert!(err.to_string().contains("spec.ip"), "{err}");
    let err = droplet_from_pb(&pb::Droplet::default()).unwrap_err();
    assert!(err.to_string().contains("metadata.name"), "{err}");
}

#[test]
fn roles_and_droplets_from_the_store() {
    let b = bouncer_from_pb(&pb::Bouncer {
        metadata: Some(pb::ObjectMeta {
            name: "web.d1".into(),
            ..Default::default()
        }),
        spec: Some(pb::BouncerSpec {
            subnet: "web".into(),
            droplet: "d1".into(),
        }),
        status: Some(pb::RoleStatus {
            phase: "Ready".into(),
        }),
    })
    .unwrap();
    assert_eq!(b.status.unwrap().phase, Phase::Ready);
    let d = droplet_from_pb(&pb::Droplet {
        metadata: Some(pb::ObjectMeta {
            name: "d1".into(),
            ..Default::default()
        }),
        spec: Some(pb::DropletSpec {
            ip: "192.168.0.10".into(),
            mac: "02:00:00:00:00:01".into(),
            interface: "eth0".into(),
            node: "n1".into(),
        }),
        status: Some(pb::DropletStatus {
            phase: "Unreachable".into(),
            last_seen: 5,
            conditions: vec![],
        }),
    })
    .unwrap();
    assert_eq!(
        d.status.unwrap().phase,
        crate::crd::DropletPhase::Unreachable
    );
}
