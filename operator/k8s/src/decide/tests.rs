use std::time::Duration;

use alkaid_proto::v1 as pb;
use pb::resource::Kind as K;

use super::*;

fn subnet(name: &str, vpc: &str) -> pb::Resource {
    pb::Resource {
        kind: Some(K::Subnet(pb::Subnet {
            metadata: Some(pb::ObjectMeta {
                name: name.into(),
                ..Default::default()
            }),
            spec: Some(pb::SubnetSpec {
                vpc: vpc.into(),
                cidr: "10.0.1.0/24".into(),
                ..Default::default()
            }),
            status: None,
        })),
    }
}

fn endpoint(ns: &str, name: &str, subnet: &str) -> pb::Resource {
    pb::Resource {
        kind: Some(K::Endpoint(pb::Endpoint {
            metadata: Some(pb::ObjectMeta {
                name: name.into(),
                namespace: ns.into(),
                ..Default::default()
            }),
            spec: Some(pb::EndpointSpec {
                subnet: subnet.into(),
                ..Default::default()
            }),
            status: None,
        })),
    }
}

#[test]
fn blockers_are_the_children_only_sorted() {
    let subnets = [subnet("b", "blue"), subnet("x", "red"), subnet("a", "blue")];
    assert_eq!(vpc_blockers("blue", &subnets), ["a", "b"]);
    assert!(vpc_blockers("green", &subnets).is_empty());
    let eps = [
        endpoint("t1", "p2", "web"),
        endpoint("t0", "p1", "web"),
        endpoint("t0", "p3", "db"),
    ];
    assert_eq!(subnet_blockers("web", &eps), ["t0/p1", "t1/p2"]);
    assert!(subnet_blockers("none", &eps).is_empty());
    // A kind mix-up never blocks.
    assert!(vpc_blockers("blue", &eps).is_empty());
}

#[test]
fn blocked_message_names_children_and_the_fix() {
    let one = blocked_message("subnet", "web", "endpoints", &["t0/p1".into()]);
    assert_eq!(
        one,
        "subnet \"web\" still has 1 endpoints (t0/p1); delete them first, deletion continues once they are gone"
    );
    let many: Vec<String> = (0..7).map(|i| format!("s{i}")).collect();
    let msg = blocked_message("vpc", "blue", "subnets", &many);
    assert!(
        msg.contains("7 subnets (s0, s1, s2, s3, s4 and 2 more)"),
        "{msg}"
    );
}

#[test]
fn spec_matches_compares_specs_only() {
    let a = subnet("a", "blue");
    let mut stored = a.clone();
    if let Some(K::Subnet(s)) = stored.kind.as_mut() {
        s.status = Some(pb::SubnetStatus {
            phase: "Ready".into(),
            ..Default::default()
        });
    }
    assert!(spec_matches(&a, &stored));
    assert!(!spec_matches(&a, &subnet("a", "red")));
    assert!(!spec_matches(&a, &endpoint("n", "a", "s")));
}

#[test]
fn statuses() {
    let (phase, conds) = refused("subnet \"a\": cidr is outside vpc \"blue\"");
    assert_eq!(phase, Phase::Failed);
    assert_eq!(conds.len(), 1);
    assert_eq!(conds[0].status, "False");
    assert_eq!(conds[0].reason, INVALID_SPEC);
    assert!(conds[0].message.contains("outside vpc"));
    let acc = accepted(vec![
        Condition::new("Placed", true, "Placed", "on d1"),
        Condition::new(ACCEPTED, false, "Stale", ""),
    ]);
    assert_eq!(acc.len(), 2);
    assert_eq!(
        (acc[0].type_.as_str(), acc[0].status.as_str()),
        (ACCEPTED, "True")
    );
    assert_eq!(acc[1].type_, "Placed");
}

#[test]
fn timing() {
    assert_eq!(backoff(0), Duration::from_secs(1));
    assert_eq!(backoff(1), Duration::from_secs(1));
    assert_eq!(backoff(2), Duration::from_secs(2));
    assert_eq!(backoff(5), Duration::from_secs(16));
    assert_eq!(backoff(30), Duration::from_secs(300));
    assert!(requeue_after(Phase::Provisioning) < requeue_after(Phase::Ready));
    assert!(became_ready(None, Phase::Ready));
    assert!(became_ready(Some(Phase::Provisioning), Phase::Ready));
    assert!(!became_ready(Some(Phase::Ready), Phase::Ready));
    assert!(!became_ready(None, Phase::Provisioning));
}
