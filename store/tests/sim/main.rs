//! Deterministic simulated-network tests: real drivers, sled storage in temporary files, the
//! seeded [`SimNetwork`], and tokio's paused clock (every wait is in virtual time).
//!
//! Safety: every replica records each applied `(index, command)`; no two replicas (nor one
//! replica before and after a restart) may apply different commands at one index, and every
//! acknowledged write must be in the final state. Liveness: after healing, a write commits
//! within a bound in virtual time.
//!
//! Seeds: `ALKAID_SIM_SEED=<n>` runs one seed; otherwise a fixed list. Every failure message
//! names its seed.

mod harness;

use std::time::Duration;

use alkaid_store::transport::sim::Faults;
use harness::{Cluster, seeds};

/// Virtual time within which a healed cluster must commit again (election timeout is 10
/// ticks of 20 ms; this is 15 election timeouts).
const LIVENESS_BOUND: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn partition_minority_then_heal() {
    for seed in seeds() {
        let mut c = Cluster::new(seed, 3, Faults::default()).await;
        let load = c.spawn_load(4);
        c.run_for(Duration::from_millis(500)).await;
        let leader = c.wait_leader(LIVENESS_BOUND).await;
        let others: Vec<u64> = c.ids().into_iter().filter(|i| *i != leader).collect();
        // Old leader alone in the minority; the majority elects a new leader and goes on.
        c.net.partition(&[&[leader], &others]);
        c.run_for(Duration::from_millis(800)).await;
        let new_leader = c.wait_leader_among(&others, LIVENESS_BOUND).await;
        assert_ne!(
            new_leader, leader,
            "seed {seed}: minority leader kept leading"
        );
        c.assert_progress(LIVENESS_BOUND).await;
        c.net.heal();
        c.assert_progress(LIVENESS_BOUND).await;
        c.finish(load).await;
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn leader_isolation_one_way_links() {
    for seed in seeds() {
        let mut c = Cluster::new(seed, 3, Faults::default()).await;
        let load = c.spawn_load(4);
        c.run_for(Duration::from_millis(500)).await;
        let leader = c.wait_leader(LIVENESS_BOUND).await;
        // The leader can still send but hears nothing: check_quorum must depose it.
        for id in c.ids() {
            if id != leader {
                c.net.cut(id, leader);
            }
        }
        c.run_for(Duration::from_millis(1000)).await;
        c.assert_progress(LIVENESS_BOUND).await;
        c.net.heal();
        c.assert_progress(LIVENESS_BOUND).await;
        c.run_for(Duration::from_millis(1000)).await;
        c.finish(load).await;
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn message_loss_delay_and_reorder() {
    for seed in seeds() {
        let faults = Faults {
            drop_rate: 0.15,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(15),
        };
        let mut c = Cluster::new(seed, 5, faults).await;
        let load = c.spawn_load(6);
        c.run_for(Duration::from_secs(2)).await;
        c.net.set_faults(Faults::default());
        c.assert_progress(LIVENESS_BOUND).await;
        let (delivered, dropped) = c.net.stats();
        assert!(
            dropped > 0 && delivered > 0,
            "seed {seed}: faults not exercised"
        );
        c.finish(load).await;
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn restarts_with_kept_storage_and_snapshots() {
    for seed in seeds() {
        let mut c = Cluster::new(seed, 3, Faults::default()).await;
        let load = c.spawn_load(4);
        let leader = c.wait_leader(LIVENESS_BOUND).await;
        let follower = c.ids().into_iter().find(|i| *i != leader).unwrap();
        c.crash(follower).await;
        // Enough writes that the others snapshot and compact past the crashed replica.
        c.run_for(Duration::from_secs(2)).await;
        c.restart(follower).await;
        c.assert_progress(LIVENESS_BOUND).await;
        // Now crash the leader, then bring it back.
        let leader = c.wait_leader(LIVENESS_BOUND).await;
        c.crash(leader).await;
        c.assert_progress(LIVENESS_BOUND).await;
        c.restart(leader).await;
        c.run_for(Duration::from_millis(500)).await;
        assert!(
            c.snapshots_taken() > 0,
            "seed {seed}: the test did not exercise snapshots"
        );
        c.finish(load).await;
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn membership_add_replace_remove() {
    for seed in seeds() {
        let mut c = Cluster::new(seed, 3, Faults::default()).await;
        let load = c.spawn_load(3);
        c.run_for(Duration::from_secs(1)).await;
        // A new replica joins as a learner, catches up (by snapshot), becomes a voter.
        c.add(4, true).await;
        c.wait_caught_up(4, LIVENESS_BOUND).await;
        c.add(4, false).await;
        // Replace a dead follower: crash 2 for good, remove it, add 5.
        let leader = c.wait_leader(LIVENESS_BOUND).await;
        let dead = c
            .ids()
            .into_iter()
            .find(|i| *i != leader && *i != 4)
            .unwrap();
        c.crash(dead).await;
        c.replace(dead, 5).await;
        c.wait_caught_up(5, LIVENESS_BOUND).await;
        c.assert_progress(LIVENESS_BOUND).await;
        // Remove the leader itself: the rest elect a new one.
        let leader = c.wait_leader(LIVENESS_BOUND).await;
        c.remove(leader).await;
        c.assert_progress(LIVENESS_BOUND).await;
        c.finish(load).await;
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn overwritten_proposal_fails_as_dropped_not_applied() {
    for seed in seeds() {
        let mut c = Cluster::new(seed, 3, Faults::default()).await;
        let leader = c.wait_leader(LIVENESS_BOUND).await;
        let others: Vec<u64> = c.ids().into_iter().filter(|i| *i != leader).collect();
        c.net.partition(&[&[leader], &others]);
        // The isolated leader appends this entry but can never commit it.
        let old = c.node(leader);
        let cmd = alkaid_store::kv::KvCommand::Put {
            key: b"lost".to_vec(),
            value: b"x".to_vec(),
        };
        let pending = tokio::spawn(async move { old.propose_local(cmd.encode()).await });
        c.wait_leader_among(&others, LIVENESS_BOUND).await;
        c.assert_progress(LIVENESS_BOUND).await;
        c.assert_progress(LIVENESS_BOUND).await;
        c.net.heal();
        let result = pending.await.unwrap();
        match result {
            Err(alkaid_store::Error::ProposalDropped { .. }) => {}
            other => panic!("seed {seed}: expected ProposalDropped, got {other:?}"),
        }
        c.assert_progress(LIVENESS_BOUND).await;
        for id in c.ids() {
            let q = alkaid_store::kv::KvCommand::Get {
                key: b"lost".to_vec(),
            };
            let reply = c
                .node(id)
                .read(q.encode(), alkaid_store::ReadConsistency::Stale)
                .await
                .unwrap();
            assert_eq!(
                alkaid_store::kv::KvReply::decode(&reply),
                Some(alkaid_store::kv::KvReply::Value(None)),
                "seed {seed}: a dropped proposal was applied on replica {id}"
            );
        }
        c.finish(Vec::new()).await;
    }
}
