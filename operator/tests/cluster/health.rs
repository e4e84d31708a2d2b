//! A droplet that stops heartbeating becomes Unreachable, its bouncer role moves, the other
//! agents converge; when it comes back it is Ready again.

use std::time::Duration;

use alkaid_model::resource::DropletPhase;
use alkaid_model::resource::Phase;
use alkaid_proto::v1 as pb;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn silent_droplet_is_unreachable_and_its_roles_move() {
    let c = Cluster::start(3, None, |o| {
        o.heartbeat_timeout = Duration::from_millis(800)
    })
    .await;
    let leader = c.leader(WAIT).await;
    let mut agents = agents(&c, 4, Duration::from_millis(100), None);
    let ctx = c.ctx(leader);
    eventually(WAIT, "4 droplets", || {
        ctx.shared.read(|s| s.droplet_names().count() == 4)
    })
    .await;
    let mut api = c.client(leader).await;
    api.apply(pb::ApplyRequest {
        resources: vec![
            vpc("blue", "10.0.0.0/16"),
            subnet("web", "blue", "10.0.1.0/24", 2),
        ],
        dry_run: false,
    })
    .await
    .unwrap();
    let bouncers = |c: &Cluster| {
        c.ctx(leader)
            .shared
            .read(|s| s.get_subnet("web").unwrap().status.unwrap().bouncers)
    };
    let victim = bouncers(&c)[0].to_string();
    let host = (1..=4)
        .map(|i| format!("d{i}"))
        .find(|d| *d != victim)
        .unwrap();
    api.allocate_endpoint(alloc_req("ns", "p1", "web", &host))
        .await
        .unwrap();
    eventually(WAIT, "converged before the fault", || {
        converged(&c, leader, &agents)
    })
    .await;

    agents[&victim].stop();
    eventually(WAIT, "victim Unreachable", || {
        ctx.shared.read(|s| {
            s.get_droplet(&victim).unwrap().status.unwrap().phase == DropletPhase::Unreachable
        })
    })
    .await;
    let now = bouncers(&c);
    assert_eq!(now.len(), 2, "the role was re-placed: {now:?}");
    assert!(!now.iter().any(|d| d.as_str() == victim));
    let live: std::collections::HashMap<String, Agent> = {
        let gone = agents.remove(&victim).unwrap();
        drop(gone);
        agents
    };
    eventually(WAIT, "others converge", || converged(&c, leader, &live)).await;
    eventually(WAIT, "endpoint Ready on the new bouncers", || {
        ctx.shared
            .read(|s| s.get_endpoint("ns", "p1").unwrap().status.unwrap().phase == Phase::Ready)
    })
    .await;

    // It comes back: registers, heartbeats, and is Ready; it full-syncs to its (empty) table.
    let n: u32 = victim.trim_start_matches('d').parse().unwrap();
    let back = Agent::start(
        &victim,
        n,
        c.addrs.clone(),
        None,
        Duration::from_millis(100),
        None,
    );
    eventually(WAIT, "victim Ready again", || {
        ctx.shared
            .read(|s| s.get_droplet(&victim).unwrap().status.unwrap().phase == DropletPhase::Ready)
    })
    .await;
    let mut all = live;
    all.insert(victim.clone(), back);
    eventually(WAIT, "all converge after rejoin", || {
        converged(&c, leader, &all)
    })
    .await;
    drop(all);
    c.shutdown().await;
}

/// A heartbeat sent to a follower reaches the leader (forwarded once), and `lastSeen` is
/// refreshed through Raft at most once per health period however often droplets beat.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follower_forwards_heartbeats_and_last_seen_is_coalesced() {
    let period = Duration::from_millis(100);
    let c = Cluster::start(3, None, |o| o.heartbeat_timeout = period * 4).await;
    let leader = c.leader(WAIT).await;
    let follower = (leader + 1) % 3;
    let spec = pb::DropletSpec {
        ip: "10.200.0.1".into(),
        mac: "02:00:0a:c8:00:01".into(),
        interface: "eth0".into(),
        node: "d1".into(),
    };
    c.client(leader)
        .await
        .register_droplet(pb::RegisterDropletRequest {
            name: "d1".into(),
            spec: Some(spec),
        })
        .await
        .unwrap();
    let ctx = c.ctx(leader);
    let last_seen = || {
        ctx.shared
            .read(|s| s.get_droplet("d1").unwrap().status.unwrap().last_seen)
    };
    let registered = last_seen();
    let from = ctx.shared.applied();
    let started = std::time::Instant::now();
    let mut api = c.client(follower).await;
    for _ in 0..50 {
        api.heartbeat(pb::HeartbeatRequest {
            name: "d1".into(),
            applied_version: 0,
        })
        .await
        .expect("a follower forwards heartbeats to the leader");
    }
    // Unknown droplets are still refused, through the forward.
    let err = api
        .heartbeat(pb::HeartbeatRequest {
            name: "nope".into(),
            applied_version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err}");
    eventually(WAIT, "lastSeen refreshed", || last_seen() > registered).await;
    let elapsed = started.elapsed();
    let d1 = alkaid_model::ObjRef::Droplet(alkaid_model::DropletName::new("d1").unwrap());
    let entries = ctx
        .shared
        .events
        .since(from)
        .unwrap()
        .iter()
        .filter(|ch| ch.touched.contains(&d1))
        .count() as u128;
    assert!(
        entries <= elapsed.as_millis() / period.as_millis() + 2,
        "{entries} lastSeen entries for 51 beats in {elapsed:?}"
    );
    c.shutdown().await;
}
