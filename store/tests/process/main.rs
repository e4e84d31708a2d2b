//! Real-process tests: replicas of `alkaid-store-node` as separate processes on 127.0.0.1,
//! each with its own sled directory, under load from concurrent gRPC clients. Faults: kill -9
//! of the leader and its restart; a replica killed, its directory wiped, replaced by a new
//! member that catches up by snapshot; members added and removed. The client history is
//! checked for linearizability (per key, `checker.rs`) and every acknowledged write must be
//! visible. Every child process is killed by a Drop guard, even on panic.

mod checker;
mod cluster;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use alkaid_store::kv::{KvCommand, KvReply};
use checker::{Event, Op};
use cluster::{Cluster, now_us};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const KEYS: u64 = 24;
const CLIENTS: u64 = 6;

async fn client(
    mut cluster_clients: Vec<(u64, cluster::Client)>,
    seed: u64,
    c: u64,
    stop: Arc<AtomicBool>,
) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed * 100 + c);
    let mut history = Vec::new();
    let mut n = 0u64;
    // Bounded in count; `stop` ends it earlier.
    while !stop.load(Ordering::Relaxed) && n < 20_000 {
        n += 1;
        let key = format!("k{}", rng.random_range(0..KEYS)).into_bytes();
        let i = rng.random_range(0..cluster_clients.len());
        let (_, cl) = &mut cluster_clients[i];
        let invoke = now_us();
        if rng.random_bool(0.5) {
            let value = format!("c{c}-{n}").into_bytes();
            let cmd = KvCommand::Put {
                key: key.clone(),
                value: value.clone(),
            };
            match cl.propose(cmd.encode()).await {
                Ok(_) => history.push(Event {
                    key,
                    op: Op::Put(value),
                    invoke,
                    ret: Some(now_us()),
                }),
                Err(s) if s.code() == tonic::Code::FailedPrecondition => {}
                // Unknown outcome: may apply at any later time, or never.
                Err(_) => history.push(Event {
                    key,
                    op: Op::Put(value),
                    invoke,
                    ret: None,
                }),
            }
        } else {
            let q = KvCommand::Get { key: key.clone() }.encode();
            if let Ok(bytes) = cl.read(q).await
                && let Some(KvReply::Value(v)) = KvReply::decode(&bytes)
            {
                history.push(Event {
                    key,
                    op: Op::Get(v),
                    invoke,
                    ret: Some(now_us()),
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(1..8))).await;
    }
    history
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_kill_restart_wipe_membership_linearizable() {
    let seed: u64 = std::env::var("ALKAID_PROCESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(42);
    eprintln!("process test seed {seed} (rerun with ALKAID_PROCESS_SEED={seed})");
    let mut cluster = Cluster::start(&[1, 2, 3], 200, 50).await;
    cluster.wait_leader(Duration::from_secs(15)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for c in 0..CLIENTS {
        let clients = cluster.clients();
        handles.push(tokio::spawn(client(clients, seed, c, stop.clone())));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 1. kill -9 the leader, let the others elect, restart it.
    let leader = cluster.wait_leader(Duration::from_secs(10)).await;
    eprintln!("kill -9 leader {leader}");
    cluster.kill(leader);
    let new_leader = cluster.wait_leader(Duration::from_secs(10)).await;
    assert_ne!(new_leader, leader);
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.restart(leader, false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 2. A follower dies and its disk is wiped: remove it, add a fresh member (new id) that
    //    catches up by snapshot, promote it to voter.
    let leader = cluster.wait_leader(Duration::from_secs(10)).await;
    let victim = cluster.ids().into_iter().find(|i| *i != leader).unwrap();
    eprintln!("kill -9 and wipe {victim}");
    cluster.kill(victim);
    cluster.wipe(victim);
    cluster.remove_member(victim).await;
    cluster.forget(victim);
    cluster.add_member(4, true).await;
    cluster.wait_caught_up(4, Duration::from_secs(20)).await;
    let st = cluster.status(4).await.unwrap();
    assert!(
        st.first_index > 1,
        "replica 4 should have been seeded by a snapshot: {st:?}"
    );
    cluster.add_member(4, false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    stop.store(true, Ordering::Relaxed);
    let mut history = Vec::new();
    for h in handles {
        history.extend(
            tokio::time::timeout(Duration::from_secs(20), h)
                .await
                .expect("client stuck")
                .unwrap(),
        );
    }
    let acked = history
        .iter()
        .filter(|e| matches!(e.op, Op::Put(_)) && e.ret.is_some())
        .count();
    let unknown = history.iter().filter(|e| e.ret.is_none()).count();
    eprintln!(
        "history: {} ops, {acked} acknowledged writes, {unknown} unknown",
        history.len()
    );
    assert!(acked > 100, "too little load got through: {acked}");

    // Final reads of every key are part of the history: an acknowledged write lost would
    // make the history non-linearizable.
    let mut clients = cluster.clients();
    for k in 0..KEYS {
        let key = format!("k{k}").into_bytes();
        let invoke = now_us();
        let bytes = clients[0]
            .1
            .read(KvCommand::Get { key: key.clone() }.encode())
            .await
            .expect("final read");
        let Some(KvReply::Value(v)) = KvReply::decode(&bytes) else {
            panic!("bad reply")
        };
        history.push(Event {
            key,
            op: Op::Get(v),
            invoke,
            ret: Some(now_us()),
        });
    }
    checker::check(&history).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    cluster.assert_replicas_agree(KEYS).await;
}
