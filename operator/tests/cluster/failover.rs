//! Kill the leader mid-stream: agents move to the new leader and converge to exactly what a
//! fresh full sync gives; writes keep working; nothing is lost.

use std::time::Duration;

use alkaid_proto::v1 as pb;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agents_converge_after_the_leader_dies_mid_stream() {
    let mut c = Cluster::start(3, None, |_| {}).await;
    let leader = c.leader(WAIT).await;
    let agents = agents(&c, 6, Duration::from_millis(200), None);
    eventually(WAIT, "6 droplets", || {
        c.ctx(leader)
            .shared
            .read(|s| s.droplet_names().count() == 6)
    })
    .await;
    let survivor = (leader + 1) % 3;
    let mut api = c.client(survivor).await;
    api.apply(pb::ApplyRequest {
        resources: vec![
            vpc("blue", "10.0.0.0/16"),
            subnet("a", "blue", "10.0.1.0/24", 2),
            subnet("b", "blue", "10.0.2.0/24", 2),
        ],
        dry_run: false,
    })
    .await
    .unwrap();
    for i in 0..20 {
        let s = if i % 2 == 0 { "a" } else { "b" };
        api.allocate_endpoint(alloc_req(
            "ns",
            &format!("p{i}"),
            s,
            &format!("d{}", i % 6 + 1),
        ))
        .await
        .unwrap();
    }
    // Mid-stream: more allocations race with the kill.
    let writer = {
        let mut api = c.client(survivor).await;
        tokio::spawn(async move {
            for i in 20..60 {
                let s = if i % 2 == 0 { "a" } else { "b" };
                let req = alloc_req("ns", &format!("p{i}"), s, &format!("d{}", i % 6 + 1));
                // Retry what failed during the election (CNI ADD is idempotent).
                loop {
                    match api.allocate_endpoint(req.clone()).await {
                        Ok(_) => break,
                        Err(e)
                            if matches!(
                                e.code(),
                                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
                            ) =>
                        {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(e) => panic!("allocate p{i}: {e:?}"),
                    }
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    c.kill(leader).await;
    writer.await.unwrap();
    let new_leader = c.leader(WAIT).await;
    assert_ne!(new_leader, leader);
    eventually(WAIT, "agents converge on the new leader", || {
        converged(&c, new_leader, &agents)
    })
    .await;
    let ctx = c.ctx(new_leader);
    assert_eq!(ctx.shared.read(|s| s.endpoint_count()), 60);
    // Every endpoint turns Ready: acks reach the new leader (Hello counts as an ack).
    eventually(WAIT, "all endpoints Ready", || {
        ctx.shared.read(|s| {
            s.list_endpoints(None).iter().all(|e| {
                e.status
                    .as_ref()
                    .is_some_and(|st| st.phase == alkaid_model::resource::Phase::Ready)
            })
        })
    })
    .await;
    // Agents that held a version resumed with deltas rather than starting over.
    let resumed = agents
        .values()
        .filter(|a| a.view.lock().unwrap().sessions >= 2)
        .count();
    assert!(resumed >= 1, "agents reconnected after the kill");
    drop(agents);
    c.shutdown().await;
}

/// Followers that fell behind the compacted log catch up by snapshot while the leader's
/// streams stay open; after the leader dies, one of them leads and streams from its
/// snapshot-restored state: every agent converges, and later allocations reach them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_leader_restored_from_a_snapshot_streams_correctly() {
    let mut c = Cluster::start(3, None, |o| {
        o.node.snapshot_interval = 20;
        o.node.compact_margin = 2;
    })
    .await;
    let leader = c.leader(WAIT).await;
    let agents = agents(&c, 4, Duration::from_millis(200), None);
    eventually(WAIT, "4 droplets", || {
        c.ctx(leader)
            .shared
            .read(|s| s.droplet_names().count() == 4)
    })
    .await;
    let mut api = c.client(leader).await;
    api.apply(pb::ApplyRequest {
        resources: vec![
            vpc("blue", "10.0.0.0/16"),
            subnet("a", "blue", "10.0.1.0/24", 2),
        ],
        dry_run: false,
    })
    .await
    .unwrap();
    let mut n = 0;
    // Each follower in turn misses enough entries that the leader compacts past it.
    for lagging in [(leader + 1) % 3, (leader + 2) % 3] {
        c.kill(lagging).await;
        for _ in 0..60 {
            n += 1;
            api.allocate_endpoint(alloc_req(
                "ns",
                &format!("p{n}"),
                "a",
                &format!("d{}", n % 4 + 1),
            ))
            .await
            .unwrap();
        }
        c.restart(lagging).await;
        let target = c.ctx(leader).shared.applied();
        eventually(WAIT, "the lagging replica caught up", || {
            c.ctx(lagging).shared.applied() >= target
        })
        .await;
        // It was restored from a snapshot: its change ring starts there.
        assert!(
            c.ctx(lagging).shared.events.since(1).is_err(),
            "replica {lagging} replayed the log instead of installing a snapshot"
        );
        eventually(WAIT, "agents current on the leader", || {
            converged(&c, leader, &agents)
        })
        .await;
    }
    c.kill(leader).await;
    let new = c.leader(WAIT).await;
    assert_ne!(new, leader);
    let mut api = c.client(new).await;
    for _ in 0..10 {
        n += 1;
        api.allocate_endpoint(alloc_req(
            "ns",
            &format!("p{n}"),
            "a",
            &format!("d{}", n % 4 + 1),
        ))
        .await
        .unwrap();
    }
    eventually(
        WAIT,
        "agents converged on the snapshot-restored leader",
        || converged(&c, new, &agents),
    )
    .await;
    let want = n as usize;
    assert_eq!(c.ctx(new).shared.read(|s| s.endpoint_count()), want);
    for a in agents.values() {
        assert!(a.view.lock().unwrap().sessions >= 2, "{} moved", a.name);
    }
    c.shutdown().await;
}
