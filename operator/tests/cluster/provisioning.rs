//! Apply resources, attach agents, allocate endpoints, watch them turn Ready.

use std::time::Duration;

use alkaid_proto::v1 as pb;
use tokio_stream::StreamExt as _;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

fn bound_vpc(name: &str, cidr: &str, ns: &str) -> pb::Resource {
    let mut r = vpc(name, cidr);
    if let Some(pb::resource::Kind::Vpc(v)) = r.kind.as_mut() {
        v.spec.as_mut().unwrap().namespaces.push(ns.into());
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn endpoints_turn_ready_and_agents_hold_the_desired_tables() {
    let c = Cluster::start(3, None, |_| {}).await;
    let leader = c.leader(WAIT).await;
    let follower = (leader + 1) % 3;
    let agents = agents(&c, 4, Duration::from_millis(200), None);
    let mut api = c.client(follower).await;
    eventually(WAIT, "4 droplets registered", || {
        c.ctx(follower)
            .shared
            .read(|s| s.droplet_names().count() == 4)
    })
    .await;

    // Apply through a follower: forwarded to the leader, answered once applied here.
    let applied = api
        .apply(pb::ApplyRequest {
            resources: vec![
                bound_vpc("blue", "10.0.0.0/16", "team-a"),
                subnet("web", "blue", "10.0.1.0/24", 2),
            ],
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(applied.resources.len(), 2);

    // Watch endpoints from now on, on the other follower.
    let mut watcher = c.client((leader + 2) % 3).await;
    let list = watcher
        .list(pb::ListRequest {
            kind: pb::Kind::Endpoint as i32,
            namespace: String::new(),
            stale: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(list.resources.is_empty());
    let mut events = watcher
        .watch(pb::WatchRequest {
            kind: pb::Kind::Endpoint as i32,
            resource_version: list.resource_version,
        })
        .await
        .unwrap()
        .into_inner();

    let mut names = Vec::new();
    for i in 0..12 {
        let name = format!("pod-{i}");
        let d = format!("d{}", i % 4 + 1);
        let r = api
            .allocate_endpoint(alloc_req("team-a", &name, "", &d))
            .await
            .unwrap()
            .into_inner();
        let ep = r.endpoint.unwrap();
        assert_eq!(ep.spec.as_ref().unwrap().subnet, "web");
        assert_eq!(r.prefix_len, 24);
        assert!(r.droplet_version > 0);
        names.push(name);
    }
    // Idempotent CNI ADD: the same request, the same answer.
    let again = api
        .allocate_endpoint(alloc_req("team-a", "pod-0", "", "d1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.endpoint.unwrap().spec.unwrap().ip, "10.0.1.2");

    // Every endpoint turns Ready on the watch.
    let mut ready = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while ready.len() < names.len() {
        let ev = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("watch events in time")
            .unwrap()
            .unwrap();
        if let Some(pb::resource::Kind::Endpoint(e)) = ev.resource.and_then(|r| r.kind)
            && e.status.as_ref().is_some_and(|s| s.phase == "Ready")
        {
            let st = e.status.unwrap();
            assert!(
                st.programmed_on.len() >= 2,
                "holder and bouncers: {:?}",
                st.programmed_on
            );
            ready.insert(e.metadata.unwrap().name);
        }
    }
    // Get agrees, on any replica, linearizably.
    let got = c
        .client(leader)
        .await
        .get(pb::GetRequest {
            kind: pb::Kind::Endpoint as i32,
            name: "pod-3".into(),
            namespace: "team-a".into(),
            stale: false,
        })
        .await
        .unwrap()
        .into_inner();
    let Some(pb::resource::Kind::Endpoint(e)) = got.resource.unwrap().kind else {
        panic!("an endpoint")
    };
    assert_eq!(e.status.unwrap().phase, "Ready");
    let subnet_now = api
        .get(pb::GetRequest {
            kind: pb::Kind::Subnet as i32,
            name: "web".into(),
            namespace: String::new(),
            stale: true,
        })
        .await
        .unwrap()
        .into_inner();
    let Some(pb::resource::Kind::Subnet(s)) = subnet_now.resource.unwrap().kind else {
        panic!("a subnet")
    };
    assert_eq!(s.status.as_ref().unwrap().allocated, 12);
    assert_eq!(s.status.unwrap().bouncers.len(), 2);

    eventually(WAIT, "agents converge", || converged(&c, leader, &agents)).await;

    // Release is idempotent and frees the address.
    let mut leader_api = c.client(leader).await;
    let r = leader_api
        .release_endpoint(pb::ReleaseEndpointRequest {
            namespace: "team-a".into(),
            name: "pod-0".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.released);
    let r = leader_api
        .release_endpoint(pb::ReleaseEndpointRequest {
            namespace: "team-a".into(),
            name: "pod-0".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!r.released);
    eventually(WAIT, "agents converge after release", || {
        converged(&c, leader, &agents)
    })
    .await;

    let info = api
        .cluster_info(pb::ClusterInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.members.len(), 3);
    assert_eq!(info.leader_address, c.addrs[leader]);
    drop(agents);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn followers_refuse_streams_with_the_leader_address() {
    let c = Cluster::start(3, None, |_| {}).await;
    let leader = c.leader(WAIT).await;
    let follower = (leader + 1) % 3;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(pb::AgentMessage {
        msg: Some(pb::agent_message::Msg::Hello(pb::Hello {
            droplet: "d1".into(),
            version: 0,
            epoch: 0,
        })),
    })
    .await
    .unwrap();
    let err =
        alkaid_proto::v1::programming_client::ProgrammingClient::new(c.channel(follower).await)
            .program(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    let hint = err
        .metadata()
        .get("alkaid-leader")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(hint, c.addrs[leader]);
    c.shutdown().await;
}
