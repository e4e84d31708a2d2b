//! The simulated cluster used by every sim test.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alkaid_store::kv::{KvCommand, KvReply, KvStateMachine};
use alkaid_store::transport::sim::{Faults, SimNetwork};
use alkaid_store::{
    Bootstrap, MemberChange, Node, NodeConfig, ReadConsistency, SledStorage, StateMachine,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Seeds to run: `ALKAID_SIM_SEED` or a fixed list.
pub fn seeds() -> Vec<u64> {
    match std::env::var("ALKAID_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("ALKAID_SIM_SEED must be a u64")],
        Err(_) => vec![1, 2, 3],
    }
}

/// Every command applied anywhere, by index: (first replica that applied it, command).
type History = Arc<Mutex<BTreeMap<u64, (u64, Vec<u8>)>>>;

/// KV state machine that checks every applied command against all replicas' history.
struct RecordingSm {
    id: u64,
    kv: KvStateMachine,
    history: History,
    conflicts: Arc<Mutex<Vec<String>>>,
}

impl StateMachine for RecordingSm {
    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8> {
        let mut h = self.history.lock().unwrap();
        match h.get(&index) {
            Some((other, cmd)) if cmd != command => self.conflicts.lock().unwrap().push(format!(
                "index {index}: replica {} applied {:?}, replica {other} applied {:?}",
                self.id,
                String::from_utf8_lossy(command),
                String::from_utf8_lossy(cmd)
            )),
            Some(_) => {}
            None => {
                h.insert(index, (self.id, command.to_vec()));
            }
        }
        self.kv.apply(index, command)
    }
    fn query(&self, q: &[u8]) -> Vec<u8> {
        self.kv.query(q)
    }
    fn snapshot(&self) -> Vec<u8> {
        self.kv.snapshot()
    }
    fn restore(&mut self, data: &[u8]) -> alkaid_store::Result<()> {
        self.kv.restore(data)
    }
}

/// A cluster of replicas on a [`SimNetwork`].
pub struct Cluster {
    pub seed: u64,
    pub net: Arc<SimNetwork>,
    nodes: Arc<Mutex<BTreeMap<u64, Node>>>,
    stores: BTreeMap<u64, SledStorage>,
    history: History,
    conflicts: Arc<Mutex<Vec<String>>>,
    acked: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    initial: Vec<u64>,
    writes: u64,
}

fn addr(id: u64) -> String {
    format!("sim-{id}")
}

impl Cluster {
    pub async fn new(seed: u64, n: u64, faults: Faults) -> Self {
        eprintln!("sim seed {seed} (rerun with ALKAID_SIM_SEED={seed})");
        let mut c = Self {
            seed,
            net: SimNetwork::new(seed, faults),
            nodes: Default::default(),
            stores: BTreeMap::new(),
            history: Default::default(),
            conflicts: Default::default(),
            acked: Default::default(),
            stop: Arc::new(AtomicBool::new(false)),
            initial: (1..=n).collect(),
            writes: 0,
        };
        for id in 1..=n {
            c.start_node(id, Bootstrap::Initial(c.initial.clone()));
        }
        c
    }

    fn start_node(&mut self, id: u64, bootstrap: Bootstrap) {
        let peers = self.initial.iter().map(|i| (*i, addr(*i))).collect();
        let mut cfg = NodeConfig::new(id, peers, bootstrap);
        // raft-rs randomizes election timeouts with an unseeded RNG: pin a distinct,
        // seed-derived timeout per replica so that a seed replays exactly.
        cfg.async_persist = false;
        cfg.heartbeat_tick = 2;
        cfg.election_tick = 10;
        let election = 10 + ((self.seed + id * 3) % 11) as usize;
        cfg.election_tick_range = Some((election, election + 1));
        cfg.snapshot_interval = 64;
        cfg.compact_margin = 16;
        cfg.client_timeout = Duration::from_secs(2);
        cfg.request_timeout_ticks = 75;
        let store = self
            .stores
            .entry(id)
            .or_insert_with(|| SledStorage::temporary().unwrap())
            .clone();
        let sm = RecordingSm {
            id,
            kv: KvStateMachine::new(),
            history: self.history.clone(),
            conflicts: self.conflicts.clone(),
        };
        let node = alkaid_store::start(cfg, store, sm, self.net.transport(id))
            .unwrap_or_else(|e| panic!("seed {}: start {id}: {e}", self.seed));
        self.net.register(node.clone());
        self.nodes.lock().unwrap().insert(id, node);
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.lock().unwrap().keys().copied().collect()
    }

    pub fn node(&self, id: u64) -> Node {
        self.nodes.lock().unwrap()[&id].clone()
    }

    pub async fn run_for(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    /// Clients writing unique keys through random replicas until `finish`.
    pub fn spawn_load(&self, clients: u64) -> Vec<JoinHandle<()>> {
        (0..clients)
            .map(|c| {
                let nodes = self.nodes.clone();
                let acked = self.acked.clone();
                let stop = self.stop.clone();
                let mut rng = ChaCha8Rng::seed_from_u64(self.seed * 1000 + c);
                tokio::spawn(async move {
                    let mut n = 0u64;
                    // Bounded: at most 100k operations, and `stop` ends it earlier.
                    while !stop.load(Ordering::Relaxed) && n < 100_000 {
                        n += 1;
                        let node = {
                            let nodes = nodes.lock().unwrap();
                            let ids: Vec<&Node> = nodes.values().collect();
                            ids[rng.random_range(0..ids.len())].clone()
                        };
                        let key = format!("c{c}-{n}").into_bytes();
                        let cmd = KvCommand::Put {
                            key: key.clone(),
                            value: b"v".to_vec(),
                        };
                        if node.propose(cmd.encode()).await.is_ok() {
                            acked.lock().unwrap().push(key);
                        }
                        tokio::time::sleep(Duration::from_millis(rng.random_range(1..10))).await;
                    }
                })
            })
            .collect()
    }

    fn leader_among(&self, ids: &[u64]) -> Option<u64> {
        let nodes = self.nodes.lock().unwrap();
        ids.iter()
            .filter_map(|id| nodes.get(id).map(|n| n.status()))
            .filter(|s| s.is_leader())
            .max_by_key(|s| s.term)
            .map(|s| s.id)
    }

    pub async fn wait_leader(&self, bound: Duration) -> u64 {
        let ids = self.ids();
        self.wait_leader_among(&ids, bound).await
    }

    pub async fn wait_leader_among(&self, ids: &[u64], bound: Duration) -> u64 {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(l) = self.leader_among(ids) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "seed {}: no leader among {ids:?} within {bound:?}",
                self.seed
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A fresh write must commit within `bound` (liveness).
    pub async fn assert_progress(&mut self, bound: Duration) {
        self.writes += 1;
        let key = format!("probe-{}", self.writes).into_bytes();
        let cmd = KvCommand::Put {
            key: key.clone(),
            value: b"p".to_vec(),
        };
        let deadline = Instant::now() + bound;
        let mut last_err = None;
        while Instant::now() < deadline {
            let leader = self.leader_among(&self.ids());
            let node = leader.map(|l| self.node(l));
            if let Some(node) = node {
                match node.propose_local(cmd.encode()).await {
                    Ok(_) => {
                        self.acked.lock().unwrap().push(key);
                        return;
                    }
                    Err(e) => last_err = Some(e.to_string()),
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "seed {}: no write committed within {bound:?} (last error: {last_err:?})",
            self.seed
        );
    }

    pub async fn crash(&mut self, id: u64) {
        let node = self.nodes.lock().unwrap().remove(&id).expect("running");
        self.net.unregister(id);
        node.shutdown().await;
    }

    pub async fn restart(&mut self, id: u64) {
        self.start_node(id, Bootstrap::Join);
    }

    async fn on_leader(&self, change: MemberChange) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let leader = self.wait_leader(Duration::from_secs(3)).await;
            match self.node(leader).change_membership(change.clone()).await {
                Ok(_) => return,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "seed {}: membership change {change:?} failed: {e}",
                    self.seed
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn add(&mut self, id: u64, learner: bool) {
        if !self.nodes.lock().unwrap().contains_key(&id) {
            self.start_node(id, Bootstrap::Join);
        }
        let change = if learner {
            MemberChange::AddLearner {
                id,
                address: addr(id),
            }
        } else {
            MemberChange::AddVoter {
                id,
                address: addr(id),
            }
        };
        self.on_leader(change).await;
    }

    pub async fn replace(&mut self, dead: u64, new: u64) {
        self.on_leader(MemberChange::Remove { id: dead }).await;
        self.add(new, false).await;
    }

    pub async fn remove(&mut self, id: u64) {
        self.on_leader(MemberChange::Remove { id }).await;
        // Let the removal reach the others before the removed replica goes away.
        self.run_for(Duration::from_millis(200)).await;
        self.crash(id).await;
    }

    pub async fn wait_caught_up(&self, id: u64, bound: Duration) {
        let leader = self.wait_leader(bound).await;
        let target = self.node(leader).status().commit_index;
        let deadline = Instant::now() + bound;
        while self.node(id).status().applied_index < target {
            assert!(
                Instant::now() < deadline,
                "seed {}: replica {id} did not catch up to {target}: {:?}",
                self.seed,
                self.node(id).status()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn snapshots_taken(&self) -> usize {
        let nodes = self.nodes.lock().unwrap();
        nodes
            .values()
            .filter(|n| n.status().first_index > 2)
            .count()
    }

    /// Stops the load, heals, waits for convergence and checks safety.
    pub async fn finish(&mut self, load: Vec<JoinHandle<()>>) {
        self.stop.store(true, Ordering::Relaxed);
        for h in load {
            tokio::time::timeout(Duration::from_secs(10), h)
                .await
                .unwrap_or_else(|_| panic!("seed {}: a client did not stop", self.seed))
                .unwrap();
        }
        self.net.heal();
        self.net.set_faults(Faults::default());
        self.assert_progress(Duration::from_secs(3)).await;
        let leader = self.wait_leader(Duration::from_secs(3)).await;
        let target = self.node(leader).status().commit_index;
        for id in self.ids() {
            self.wait_caught_up_to(id, target).await;
        }
        let conflicts = self.conflicts.lock().unwrap().clone();
        assert!(
            conflicts.is_empty(),
            "seed {}: safety violated: {conflicts:#?}",
            self.seed
        );
        let acked = self.acked.lock().unwrap().clone();
        assert!(
            !acked.is_empty(),
            "seed {}: no write was acknowledged",
            self.seed
        );
        for id in self.ids() {
            let node = self.node(id);
            for key in &acked {
                let q = KvCommand::Get { key: key.clone() }.encode();
                let reply = node.read(q, ReadConsistency::Stale).await.unwrap();
                assert!(
                    matches!(KvReply::decode(&reply), Some(KvReply::Value(Some(_)))),
                    "seed {}: acknowledged write {:?} missing on replica {id}",
                    self.seed,
                    String::from_utf8_lossy(key)
                );
            }
        }
        eprintln!(
            "seed {}: ok: {} acknowledged writes, {} indexes applied, net {:?}",
            self.seed,
            acked.len(),
            self.history.lock().unwrap().len(),
            self.net.stats()
        );
        for id in self.ids() {
            self.crash(id).await;
        }
    }

    async fn wait_caught_up_to(&self, id: u64, target: u64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.node(id).status().applied_index < target {
            assert!(
                Instant::now() < deadline,
                "seed {}: replica {id} stuck below {target}: {:?}",
                self.seed,
                self.node(id).status()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
