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
