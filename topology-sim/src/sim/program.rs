//! Programming: the model's deltas travel to the simulated agents under the network model,
//! are applied to their maps in order, and are acknowledged back to the model with
//! `AckProgrammed` (which is how the model turns objects Ready).

use alkaid_model::resource::Phase;
use alkaid_model::{Command, Delta, ObjRef, StatusChange};

use super::Sim;
use super::event::Kind;
use super::metrics::Point;
use crate::net::{delta_rows, to_ms};
use crate::world::droplet_index;

/// What one command's deltas cost.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Sent {
    /// When the last of them is applied (None if none went to a live droplet).
    pub done: Option<u64>,
    /// Deltas sent to live droplets.
    pub deltas: u64,
    /// Rows in them.
    pub rows: u64,
}

impl Sim<'_> {
    /// Sends `deltas` to their agents, except to droplets in `skip` (those take a full
    /// sync instead). Deltas for down droplets are lost; the full sync on return makes up.
    pub(super) fn send(&mut self, deltas: Vec<Delta>, skip: &[u32]) -> Sent {
        let mut sent = Sent::default();
        for delta in deltas {
            let Some(d) = droplet_index(delta.droplet.as_str()) else {
                continue;
            };
            if skip.contains(&d) {
                continue;
            }
            let agent = &mut self.agents[d as usize];
            if !agent.up {
                self.m.deltas_lost += 1;
                continue;
            }
            let rows = delta_rows(&delta);
            let done = self.net.enqueue(agent, self.now, rows, &mut self.rng.net);
            agent.sent = delta.version;
            let generation = agent.generation;
            self.q.push(
                done,
                Kind::Apply {
                    droplet: d,
                    generation,
                    sync: false,
                    delta: Box::new(delta),
                },
            );
            self.inflight += 1;
            sent.done = Some(sent.done.map_or(done, |t: u64| t.max(done)));
            sent.deltas += 1;
            sent.rows += rows as u64;
        }
        self.m.deltas_sent += sent.deltas;
        self.m.rows_sent += sent.rows;
        sent
    }

    /// Sends droplet `d` a full sync of its model table (it reconnected). Returns when it
    /// is applied and how many rows it carried.
    pub(super) fn full_sync(&mut self, d: u32) -> (u64, u64) {
        let name = &self.w.droplets[d as usize];
        let desired = self
            .w
            .state
            .table(name.as_str())
            .cloned()
            .unwrap_or_default();
        let version = self.w.state.version(name.as_str());
        let agent = &mut self.agents[d as usize];
        let ops = agent.table.diff(&desired);
        let rows = ops.upserts.len() + ops.deletes.len();
        let done = self.net.enqueue(agent, self.now, rows, &mut self.rng.net);
        agent.sent = version;
        let delta = Delta {
            droplet: name.clone(),
            version,
            upserts: ops.upserts,
            deletes: ops.deletes,
        };
        let generation = agent.generation;
        self.q.push(
            done,
            Kind::Apply {
                droplet: d,
                generation,
                sync: true,
                delta: Box::new(delta),
            },
        );
        self.inflight += 1;
        (done, rows as u64)
    }

    /// An agent finished applying a delta: its maps change, its acknowledgement leaves.
    pub(super) fn on_apply(&mut self, d: u32, generation: u32, sync: bool, delta: Delta) {
        self.inflight -= 1;
        let agent = &mut self.agents[d as usize];
        if !agent.up || agent.generation != generation {
            return; // the droplet went down meanwhile: lost
        }
        if !sync && delta.version != agent.version + 1 {
            self.m.version_gaps += 1;
        }
        agent.table.apply_delta(&delta);
        agent.version = delta.version;
        let at = self.now + self.net.ack_delay();
        self.q.push(
            at,
            Kind::Ack {
                droplet: d,
                generation,
                version: delta.version,
            },
        );
    }

    /// An acknowledgement reaches the leader: the model records it and may turn objects
    /// Ready.
    pub(super) fn on_ack(&mut self, d: u32, generation: u32, version: u64) {
        let agent = &self.agents[d as usize];
        if !agent.up || agent.generation != generation {
            return;
        }
        let out = self.w.apply(Command::AckProgrammed {
            droplet: self.w.droplets[d as usize].clone(),
            version,
        });
        self.m.commands += 1;
        if let Err(e) = &out.reply {
            self.m.refuse(e);
        }
        self.note_status(&out.status_changes);
    }

    /// Records Ready times of churn-created endpoints.
    pub(super) fn note_status(&mut self, changes: &[StatusChange]) {
        for c in changes {
            if let (ObjRef::Endpoint(k), Phase::Ready) = (&c.object, c.phase)
                && let Some(t0) = self.waiting.remove(k)
            {
                self.m.ready_ms.add(to_ms(self.now - t0));
            }
        }
    }

    /// Records a time-series point.
    pub(super) fn sample(&mut self) {
        let behind = self
            .agents
            .iter()
            .filter(|a| a.up && a.version < a.sent)
            .count() as u64;
        let down = self.agents.iter().filter(|a| !a.up).count() as u64;
        self.m.series.push(Point {
            t_s: self.now as f64 / 1e9,
            inflight_deltas: self.inflight,
            droplets_behind: behind,
            endpoints_not_ready: self.waiting.len() as u64,
            droplets_down: down,
            black_holed: self.m.traffic.black_holed,
        });
    }
}
