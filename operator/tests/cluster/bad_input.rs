//! Malformed requests, invalid resources, unknown subnets and exhausted subnets: each a
//! clear error, and nothing stored.

use std::time::Duration;

use alkaid_proto::v1 as pb;
use tonic::Code;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

async fn names(
    api: &mut alkaid_proto::v1::control_client::ControlClient<tonic::transport::Channel>,
    kind: pb::Kind,
) -> Vec<String> {
    let l = api
        .list(pb::ListRequest {
            kind: kind as i32,
            namespace: String::new(),
            stale: false,
        })
        .await
        .unwrap()
        .into_inner();
    l.resources
        .into_iter()
        .map(|r| match r.kind.unwrap() {
            pb::resource::Kind::Vpc(o) => o.metadata.unwrap().name,
            pb::resource::Kind::Subnet(o) => o.metadata.unwrap().name,
            pb::resource::Kind::Endpoint(o) => o.metadata.unwrap().name,
            pb::resource::Kind::Droplet(o) => o.metadata.unwrap().name,
            pb::resource::Kind::Bouncer(o) => o.metadata.unwrap().name,
            pb::resource::Kind::Divider(o) => o.metadata.unwrap().name,
        })
        .collect()
}

fn expect(r: Result<impl std::fmt::Debug, tonic::Status>, code: Code, needle: &str) {
    let e = r.expect_err("the request must be refused");
    assert_eq!(e.code(), code, "{e:?}");
    assert!(
        e.message().contains(needle),
        "{:?} should mention {needle:?}",
        e.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_refused_clearly_and_stores_nothing() {
    let c = Cluster::start(3, None, |_| {}).await;
    let leader = c.leader(WAIT).await;
    let _agents = agents(&c, 1, Duration::from_millis(200), None);
    let mut api = c.client((leader + 1) % 3).await;
    eventually(WAIT, "droplet registered", || {
        c.ctx(leader)
            .shared
            .read(|s| s.droplet_names().count() == 1)
    })
    .await;

    // Malformed requests.
    expect(
        api.apply(pb::ApplyRequest {
            resources: vec![],
            dry_run: false,
        })
        .await,
        Code::InvalidArgument,
        "resources",
    );
    expect(
        api.apply(pb::ApplyRequest {
            resources: vec![pb::Resource { kind: None }],
            dry_run: false,
        })
        .await,
        Code::InvalidArgument,
        "resources[0]: missing",
    );
    let mut no_spec = vpc("v", "10.0.0.0/16");
    if let Some(pb::resource::Kind::Vpc(v)) = no_spec.kind.as_mut() {
        v.spec = None;
    }
    expect(
        api.apply(pb::ApplyRequest {
            resources: vec![no_spec],
            dry_run: false,
        })
        .await,
        Code::InvalidArgument,
        "resources[0].vpc.spec: missing",
    );
    expect(
        api.apply(pb::ApplyRequest {
            resources: vec![vpc("v", "10.0.0/16")],
            dry_run: false,
        })
        .await,
        Code::InvalidArgument,
        "resources[0].vpc.spec.cidr",
    );
    // A bad second document refuses the first too.
    expect(
        api.apply(pb::ApplyRequest {
            resources: vec![
                vpc("ok", "10.0.0.0/16"),
                subnet("s", "ok", "10.1.0.300/24", 1),
            ],
            dry_run: false,
        })
        .await,
        Code::InvalidArgument,
        "resources[1].subnet.spec.cidr",
    );
    expect(
        api.get(pb::GetRequest {
            kind: 0,
            name: "x".into(),
            namespace: String::new(),
            stale: false,
        })
        .await,
        Code::InvalidArgument,
        "kind",
    );
    expect(
        api.allocate_endpoint(alloc_req("ns", "e", "s", "")).await,
        Code::InvalidArgument,
        "droplet",
    );
    expect(
        api.allocate_endpoint(pb::AllocateEndpointRequest {
            ip: "10.0.0".into(),
            ..alloc_req("ns", "e", "s", "d1")
        })
        .await,
        Code::InvalidArgument,
        "ip",
    );
    expect(
        api.register_droplet(pb::RegisterDropletRequest {
            name: "dx".into(),
            spec: Some(pb::DropletSpec {
                ip: "1.2.3.4".into(),
                mac: "zz".into(),
                ..Default::default()
            }),
        })
        .await,
        Code::InvalidArgument,
        "spec.mac",
    );

    // Invalid resources: refused by the model, nothing stored.
    api.apply(pb::ApplyRequest {
        resources: vec![vpc("blue", "10.0.0.0/16")],
        dry_run: false,
    })
    .await
    .unwrap();
    expect(
        api.apply(pb::ApplyRequest {
            resources: vec![subnet("out", "blue", "10.9.0.0/24", 1)],
            dry_run: false,
        })
        .await,
        Code::InvalidArgument,
        "is not inside vpc",
    );
    expect(
        api.apply(pb::ApplyRequest {
            resources: vec![subnet("orphan", "nope", "10.0.1.0/24", 1)],
            dry_run: false,
        })
        .await,
        Code::NotFound,
        "does not exist",
    );
    expect(
        api.apply(pb::ApplyRequest {
            resources: vec![subnet("many", "blue", "10.0.1.0/24", 99)],
            dry_run: false,
        })
        .await,
        Code::InvalidArgument,
        "out of range",
    );
    // Dry run validates and stores nothing.
    api.apply(pb::ApplyRequest {
        resources: vec![subnet("dry", "blue", "10.0.2.0/24", 1)],
        dry_run: true,
    })
    .await
    .unwrap();
    assert_eq!(names(&mut api, pb::Kind::Vpc).await, vec!["blue"]);
    assert!(names(&mut api, pb::Kind::Subnet).await.is_empty());

    // CNI allocate for an unknown subnet.
    expect(
        api.allocate_endpoint(alloc_req("ns", "e1", "nope", "d1"))
            .await,
        Code::NotFound,
        "subnet \"nope\"",
    );
    expect(
        api.allocate_endpoint(alloc_req("ns", "e1", "", "d1")).await,
        Code::NotFound,
        "no subnet",
    );
    // An exhausted subnet: a /29 holds 5 endpoints.
    api.apply(pb::ApplyRequest {
        resources: vec![subnet("tiny", "blue", "10.0.3.0/29", 1)],
        dry_run: false,
    })
    .await
    .unwrap();
    for i in 0..5 {
        api.allocate_endpoint(alloc_req("ns", &format!("e{i}"), "tiny", "d1"))
            .await
            .unwrap();
    }
    expect(
        api.allocate_endpoint(alloc_req("ns", "e5", "tiny", "d1"))
            .await,
        Code::FailedPrecondition,
        "no free address",
    );
    expect(
        api.allocate_endpoint(alloc_req("ns", "e6", "tiny", "unknown-droplet"))
            .await,
        Code::NotFound,
        "not registered",
    );
    let mut eps = names(&mut api, pb::Kind::Endpoint).await;
    eps.sort();
    assert_eq!(eps, vec!["e0", "e1", "e2", "e3", "e4"]);
    // Deleting a subnet with endpoints is refused.
    expect(
        api.delete(pb::DeleteRequest {
            kind: pb::Kind::Subnet as i32,
            name: "tiny".into(),
            namespace: String::new(),
        })
        .await,
        Code::FailedPrecondition,
        "release them first",
    );
    expect(
        api.delete(pb::DeleteRequest {
            kind: pb::Kind::Vpc as i32,
            name: "ghost".into(),
            namespace: String::new(),
        })
        .await,
        Code::NotFound,
        "not found",
    );
    c.shutdown().await;
}
