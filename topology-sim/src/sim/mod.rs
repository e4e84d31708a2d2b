//! The discrete-event simulation: a seeded world driving the real model, simulated agents
//! applying its deltas under the network model, traffic traced through the model's
//! tables, failures injected through `SetDropletPhase`.
//!
//! | file | role |
//! |---|---|
//! | [`event`] | the time-ordered queue |
//! | `setup` | builds the cluster, first full sync of every agent |
//! | `program` | sends deltas to agents, applies them, acknowledges to the model |
//! | `churn` | endpoint creates and deletes |
//! | `failure` | droplets lost, detected, returning; placement comparisons |
//! | `traffic` | flows through `fwd::trace` |
//! | `verify` | every agent table against the model's from-scratch desired tables |
//! | `metrics` | what the run measured, before it becomes a report |

mod churn;
pub mod event;
mod failure;
pub mod metrics;
mod program;
mod setup;
mod traffic;
mod verify;

use std::collections::HashMap;

use alkaid_model::EndpointKey;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::designs::Design;
use crate::designs::full_mesh::FullMesh;
use crate::designs::random::Roles;
use crate::error::Result;
use crate::net::{Agent, NetModel, secs};
use crate::scenario::Scenario;
use crate::world::World;
use event::{Kind, Queue};
use metrics::Metrics;

/// Reports progress of a long run (the binary draws a progress bar; tests ignore it).
pub trait Progress {
    /// A new phase with `total` steps.
    fn phase(&mut self, name: &str, total: u64);
    /// `n` more steps done.
    fn advance(&mut self, n: u64);
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn phase(&mut self, _: &str, _: u64) {}
    fn advance(&mut self, _: u64) {}
}

/// Independent random streams, so enabling one part never shifts another's choices.
#[derive(Debug)]
struct Rngs {
    setup: ChaCha8Rng,
    churn: ChaCha8Rng,
    traffic: ChaCha8Rng,
    fail: ChaCha8Rng,
    net: ChaCha8Rng,
    random: ChaCha8Rng,
}

impl Rngs {
    fn new(seed: u64) -> Self {
        let stream = |n: u64| {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            r.set_stream(n);
            r
        };
        Self {
            setup: stream(1),
            churn: stream(2),
            traffic: stream(3),
            fail: stream(4),
            net: stream(5),
            random: stream(6),
        }
    }
}

/// One run in progress.
pub struct Sim<'a> {
    sc: &'a Scenario,
    /// The world (holding the real model).
    pub w: World,
    agents: Vec<Agent>,
    net: NetModel,
    q: Queue,
    now: u64,
    rng: Rngs,
    /// What was measured.
    pub m: Metrics,
    mesh: Option<FullMesh>,
    random: Option<Roles>,
    /// Churn-created endpoints not yet Ready, with their creation time.
    waiting: HashMap<EndpointKey, u64>,
    /// Deltas sent and not yet applied or lost.
    inflight: u64,
    /// Down droplets and the failure that took them.
    down_in: HashMap<u32, usize>,
    progress: &'a mut dyn Progress,
}

impl<'a> Sim<'a> {
    /// Builds the cluster of `sc` through the model and syncs every agent. `designs`
    /// selects the comparisons (the built design always runs); `record` keeps every
    /// command in `w.log`.
    ///
    /// # Errors
    /// [`crate::Error::ModelRefused`] if the model refuses the scenario's cluster.
    pub fn new(
        sc: &'a Scenario,
        designs: &[Design],
        record: bool,
        progress: &'a mut dyn Progress,
    ) -> Result<Self> {
        let mut rng = Rngs::new(sc.seed);
        progress.phase("structure", 1);
        let w = World::build(sc, record)?;
        progress.advance(1);
        let mesh = designs
            .contains(&Design::FullMesh)
            .then(|| FullMesh::new(w.vpcs.len()));
        let random = designs.contains(&Design::Random).then(|| {
            Roles::random(
                w.subnets.len(),
                w.vpcs.len(),
                sc.subnets.bouncers,
                sc.vpcs.dividers,
                sc.droplets,
                &mut rng.random,
            )
        });
        let mut sim = Self {
            sc,
            w,
            agents: Vec::new(),
            net: NetModel::new(sc.network.clone()),
            q: Queue::default(),
            now: 0,
            rng,
            m: Metrics::new(sc.failures.len()),
            mesh,
            random,
            waiting: HashMap::new(),
            inflight: 0,
            down_in: HashMap::new(),
            progress,
        };
        sim.populate()?;
        sim.initial_sync();
        Ok(sim)
    }

    fn schedule_run(&mut self) {
        let sc = self.sc;
        let dur = secs(sc.duration_s());
        if sc.churn.duration_s > 0.0 {
            if sc.churn.creates_per_sec > 0.0 {
                let t = self.churn_gap(sc.churn.creates_per_sec);
                self.q.push(t, Kind::Create);
            }
            if sc.churn.deletes_per_sec > 0.0 {
                let t = self.churn_gap(sc.churn.deletes_per_sec);
                self.q.push(t, Kind::Delete);
            }
        }
        for (i, f) in sc.failures.iter().enumerate() {
            self.q.push(secs(f.at_s), Kind::Fail(i));
        }
        if sc.traffic.flows > 0 {
            self.q.push(self.flow_time(0, dur), Kind::Flow(0));
        }
        if dur > 0 {
            self.q.push(0, Kind::Sample);
        }
    }

    fn flow_time(&self, n: u64, dur: u64) -> u64 {
        // Flow n at the middle of its share of the run.
        ((n as f64 + 0.5) / self.sc.traffic.flows as f64 * dur as f64) as u64
    }

    /// Runs the clock until every event (including in-flight deltas and acks) is done,
    /// then verifies every table.
    pub fn run(&mut self) {
        self.schedule_run();
        let dur = secs(self.sc.duration_s());
        let step = (dur / 200).max(1);
        self.progress.phase("simulate", dur.max(1) / step.max(1));
        let mut shown = 0;
        while let Some(ev) = self.q.pop() {
            self.now = ev.at;
            let ticks = (self.now.min(dur) / step).saturating_sub(shown);
            if ticks > 0 {
                self.progress.advance(ticks);
                shown += ticks;
            }
            match ev.kind {
                Kind::Create => self.on_create(),
                Kind::Delete => self.on_delete(),
                Kind::Flow(n) => {
                    self.on_flow();
                    if n + 1 < self.sc.traffic.flows {
                        self.q.push(self.flow_time(n + 1, dur), Kind::Flow(n + 1));
                    }
                }
                Kind::Fail(i) => self.on_fail(i),
                Kind::Detect(i) => self.on_detect(i),
                Kind::Return(i) => self.on_return(i),
                Kind::Apply {
                    droplet,
                    generation,
                    sync,
                    delta,
                } => self.on_apply(droplet, generation, sync, *delta),
                Kind::Ack {
                    droplet,
                    generation,
                    version,
                } => self.on_ack(droplet, generation, version),
                Kind::Sample => {
                    self.sample();
                    if self.now + step <= dur {
                        self.q.push(self.now + step, Kind::Sample);
                    }
                }
            }
        }
        self.m.end_ns = self.now;
        self.progress.phase("verify", 1);
        self.verify();
        self.progress.advance(1);
    }

    /// The scenario being run.
    pub fn scenario(&self) -> &Scenario {
        self.sc
    }

    /// Whether droplet `d` is up.
    pub fn is_up(&self, d: u32) -> bool {
        self.agents.get(d as usize).is_some_and(|a| a.up)
    }

    /// The full-mesh comparison, if enabled.
    pub fn mesh(&self) -> Option<&FullMesh> {
        self.mesh.as_ref()
    }

    /// The random placement, if enabled.
    pub fn random_roles(&self) -> Option<&Roles> {
        self.random.as_ref()
    }
}
