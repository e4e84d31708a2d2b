use super::*;

fn vpc_msg(name: &str, cidr: &str) -> pb::Resource {
    pb::Resource {
        kind: Some(pb::resource::Kind::Vpc(pb::Vpc {
            metadata: Some(pb::ObjectMeta {
                name: name.into(),
                ..Default::default()
            }),
            spec: Some(pb::VpcSpec {
                cidr: cidr.into(),
                ..Default::default()
            }),
            status: None,
        })),
    }
}

#[test]
fn bad_fields_are_named() {
    let mut no_spec = vpc_msg("v", "10.0.0.0/16");
    if let Some(pb::resource::Kind::Vpc(v)) = no_spec.kind.as_mut() {
        v.spec = None;
    }
    let mut bad_gw = pb::Resource {
        kind: Some(pb::resource::Kind::Subnet(pb::Subnet {
            metadata: Some(pb::ObjectMeta {
                name: "s".into(),
                ..Default::default()
            }),
            spec: Some(pb::SubnetSpec {
                vpc: "v".into(),
                cidr: "10.0.1.0/24".into(),
                bouncers: 0,
                gateway: Some("10.0.1".into()),
            }),
            status: None,
        })),
    };
    let cases: Vec<(pb::Resource, &str)> = vec![
        (pb::Resource { kind: None }, "r: missing"),
        (vpc_msg("", "10.0.0.0/16"), "r.vpc.metadata.name: missing"),
        (vpc_msg("v", "10.0.0/16"), "r.vpc.spec.cidr: invalid CIDR"),
        (
            vpc_msg("v", "10.0.0.1/16"),
            "r.vpc.spec.cidr: 10.0.0.1/16 has host bits",
        ),
        (vpc_msg("v", ""), "r.vpc.spec.cidr: missing"),
        (no_spec, "r.vpc.spec: missing"),
        (bad_gw.clone(), "r.subnet.spec.gateway"),
    ];
    for (msg, want) in cases {
        let e = apply_command("r", &msg).unwrap_err().to_string();
        assert!(e.contains(want), "want {want:?} in {e:?}");
    }
    if let Some(pb::resource::Kind::Subnet(s)) = bad_gw.kind.as_mut() {
        s.spec.as_mut().unwrap().gateway = None;
    }
    let Command::ApplySubnet(s) = apply_command("r", &bad_gw).unwrap() else {
        panic!("expected a subnet");
    };
    assert_eq!(s.spec.bouncers, alkaid_model::resource::DEFAULT_BOUNCERS);
    assert!(Kind::required("kind", 0).is_err());
    assert!(Kind::from_pb("kind", 99).is_err());
    assert!(droplet_spec(None).unwrap_err().to_string().contains("spec"));
}

#[test]
fn outbound_round_trips_the_spec() {
    let Command::ApplyVpc(v) = apply_command("r", &vpc_msg("v", "10.0.0.0/16")).unwrap() else {
        panic!("expected a vpc");
    };
    let back = Obj::Vpc(v.clone()).to_pb(crate::state::ObjMeta {
        resource_version: 7,
        generation: 2,
    });
    let pb::resource::Kind::Vpc(pv) = back.kind.as_ref().unwrap() else {
        panic!("expected a vpc");
    };
    assert_eq!(pv.metadata.as_ref().unwrap().resource_version, 7);
    assert_eq!(pv.metadata.as_ref().unwrap().generation, 2);
    let again = vpc_from_pb("r", pv).unwrap();
    assert_eq!(again.spec, v.spec);
}
