//! Replays a run's command log through the real replicated store (feature `store`):
//! three `alkaid-store` replicas (raft-rs, sled, the in-process simulated transport, tokio's
//! paused clock), each applying the committed log to its own `ClusterState`. Every command
//! is proposed to the leader in the simulation's order; at the end every replica must hold
//! exactly the state the simulation reached (`ClusterState::same_as`).
//!
//! Meant for small scenarios: each command is one Raft entry persisted in sled, proposed
//! one at a time (small.yaml: about 1,900 commands in a few seconds).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::report::StoreCheck;
use alkaid_model::{ClusterState, Command};
use alkaid_store::transport::sim::{Faults, SimNetwork};
use alkaid_store::{Bootstrap, Node, NodeConfig, SledStorage, StateMachine};

/// Replicas in the group.
const REPLICAS: u64 = 3;

/// The model as a replicated state machine; its state stays readable from outside.
struct ModelMachine {
    state: Arc<Mutex<ClusterState>>,
}

impl StateMachine for ModelMachine {
    fn apply(&mut self, _index: u64, command: &[u8]) -> Vec<u8> {
        // Reply: 1 = accepted, 0 = refused by the model, 2 = not a command.
        let Ok(cmd) = Command::from_bytes(command) else {
            return vec![2];
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        vec![u8::from(state.apply(cmd).reply.is_ok())]
    }

    fn query(&self, _query: &[u8]) -> Vec<u8> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (state.endpoint_count() as u64).to_le_bytes().to_vec()
    }

    fn snapshot(&self) -> Vec<u8> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .snapshot()
    }

    fn restore(&mut self, data: &[u8]) -> alkaid_store::Result<()> {
        let s = ClusterState::restore(data).map_err(|e| alkaid_store::Error::Restore {
            reason: e.to_string(),
        })?;
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = s;
        Ok(())
    }
}

fn store_err(what: &'static str) -> impl Fn(alkaid_store::Error) -> Error {
    move |e| Error::Store {
        what,
        message: e.to_string(),
    }
}

fn config(id: u64, seed: u64) -> NodeConfig {
    let peers = (1..=REPLICAS).map(|i| (i, format!("sim-{i}"))).collect();
    let mut cfg = NodeConfig::new(id, peers, Bootstrap::Initial((1..=REPLICAS).collect()));
    cfg.async_persist = false;
    cfg.heartbeat_tick = 2;
    cfg.election_tick = 10;
    // raft-rs draws election timeouts from an unseeded RNG: pin one per replica.
    let election = 10 + ((seed + id * 3) % 11) as usize;
    cfg.election_tick_range = Some((election, election + 1));
    // Snapshots of a large state are costly; take few.
    cfg.snapshot_interval = 100_000;
    cfg.client_timeout = Duration::from_secs(30);
    cfg
}

/// Proposes `log` in order to a fresh 3-replica store and compares every replica's final
/// state with `reference` (the simulation's).
///
/// # Errors
/// [`Error::Store`] if the store fails to start, elect a leader or commit.
pub fn replay(log: &[Command], reference: &ClusterState, seed: u64) -> Result<StoreCheck> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| Error::Store {
            what: "runtime",
            message: e.to_string(),
        })?;
    rt.block_on(async {
        let net = SimNetwork::new(seed, Faults::default());
        let mut nodes: Vec<Node> = Vec::new();
        let mut states = Vec::new();
        for id in 1..=REPLICAS {
            let state = Arc::new(Mutex::new(ClusterState::new()));
            let sm = ModelMachine {
                state: state.clone(),
            };
            let storage = SledStorage::temporary().map_err(store_err("storage"))?;
            let node = alkaid_store::start(config(id, seed), storage, sm, net.transport(id))
                .map_err(store_err("start"))?;
            net.register(node.clone());
            nodes.push(node);
            states.push(state);
        }
        let leader = wait_leader(&nodes).await?;
        let mut refused = 0u64;
        // One proposal at a time: the store orders the log, not the arrival of concurrent
        // proposals, and the replay must keep the simulation's order (with 256 in flight
        // the replicas diverged from the simulation).
        for cmd in log {
            let applied = leader
                .propose(cmd.to_bytes())
                .await
                .map_err(store_err("propose"))?;
            refused += u64::from(applied.reply.first() != Some(&1));
        }
        // Followers apply what the leader committed a little later.
        let mut replicas_match = false;
        for _ in 0..200 {
            replicas_match = states.iter().all(|s| {
                s.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .same_as(reference)
            });
            if replicas_match {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for n in &nodes {
            n.shutdown().await;
        }
        Ok(StoreCheck {
            replicas: REPLICAS,
            commands: log.len() as u64,
            refused,
            replicas_match,
        })
    })
}

async fn wait_leader(nodes: &[Node]) -> Result<Node> {
    for _ in 0..500 {
        if let Some(n) = nodes.iter().find(|n| n.status().is_leader()) {
            return Ok(n.clone());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(Error::Store {
        what: "election",
        message: "no leader within 10 s of simulated time".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Design;
    use crate::scenario::Scenario;
    use crate::sim::Quiet;

    #[test]
    fn the_store_replicas_reach_the_simulated_state() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/small.yaml");
        let mut sc = Scenario::load(&path).unwrap();
        sc.traffic.flows = 0;
        let mut quiet = Quiet;
        let (sim, rep) = crate::run_recording(&sc, &[Design::Built], true, &mut quiet).unwrap();
        let log = sim.w.log.as_ref().unwrap();
        assert_eq!(log.len() as u64, rep.cluster.commands + setup_commands(&sc));
        let check = replay(log, &sim.w.state, sc.seed).unwrap();
        assert!(check.replicas_match, "{check:?}");
        assert_eq!(check.refused, rep.cluster.refused.values().sum::<u64>());
    }

    /// Structure commands (droplets, VPCs, subnets) are logged but not counted in
    /// `cluster.commands`.
    fn setup_commands(sc: &Scenario) -> u64 {
        u64::from(sc.droplets) + u64::from(sc.vpcs.count) * (1 + u64::from(sc.subnets.per_vpc))
    }
}
