//! Before the clock starts: the scenario's endpoints are created through the model (their
//! fan-out recorded), then every agent takes a full sync of its table, as a freshly
//! connected agent does, and acknowledges it.

use alkaid_model::{Command, Reply};
use rand::Rng;

use super::Sim;
use crate::bytes::RowCounts;
use crate::error::{Error, Result};
use crate::net::Agent;
use crate::world::Ep;

/// Agents acknowledge after every this many setup endpoints, as running agents would, so
/// the model's acknowledgement bookkeeping stays small.
const ACK_EVERY: u64 = 100_000;

impl Sim<'_> {
    /// Creates `endpoints.per_subnet` endpoints in every subnet on random droplets.
    pub(super) fn populate(&mut self) -> Result<()> {
        let per = u64::from(self.sc.endpoints.per_subnet);
        let subnets = self.w.subnets.len() as u32;
        let total = per * u64::from(subnets);
        self.progress.phase("endpoints", total);
        let mut made = 0u64;
        // Round-robin over subnets so every subnet grows evenly, as a live cluster would.
        for _ in 0..per {
            for s in 0..subnets {
                let d = self.rng.setup.random_range(0..self.sc.droplets);
                let (id, cmd) = self.w.create_cmd(s, d);
                let out = self.w.apply(cmd);
                self.m.commands += 1;
                let alloc = match out.reply {
                    Ok(Reply::Endpoint(a)) => a,
                    Ok(other) => unreachable!("allocate answered {other:?}"),
                    Err(source) => {
                        return Err(Error::ModelRefused {
                            what: format!(
                                "endpoint {made} in subnet {}",
                                self.w.subnets[s as usize].0
                            ),
                            source: Box::new(source),
                        });
                    }
                };
                let vpc = self.w.subnets[s as usize].1;
                self.w.created(
                    id,
                    Ep {
                        vpc,
                        subnet: s,
                        droplet: d,
                        ip: alloc.ip,
                    },
                );
                self.m.setup_add.add(out.deltas.len() as u64);
                if let Some(mesh) = &mut self.mesh {
                    let n = mesh.add(vpc, d);
                    mesh.setup_add.add(n);
                }
                made += 1;
                if made.is_multiple_of(ACK_EVERY) {
                    self.ack_all();
                }
                if made.is_multiple_of(4096) {
                    self.progress.advance(4096);
                }
            }
        }
        self.progress.advance(made % 4096);
        self.ack_all();
        Ok(())
    }

    /// Every droplet acknowledges its current version.
    fn ack_all(&mut self) {
        for i in 0..self.w.droplets.len() {
            let d = &self.w.droplets[i];
            let version = self.w.state.version(d.as_str());
            if version > 0 {
                let droplet = d.clone();
                let out = self.w.apply(Command::AckProgrammed { droplet, version });
                self.m.commands += 1;
                debug_assert!(out.reply.is_ok());
            }
        }
    }

    /// Every agent connects and takes a full sync of its table; the steady-state table
    /// sizes are recorded.
    pub(super) fn initial_sync(&mut self) {
        self.progress.phase("sync", self.w.droplets.len() as u64);
        self.agents = Vec::with_capacity(self.w.droplets.len());
        self.m.steady_rows = Vec::with_capacity(self.w.droplets.len());
        for d in &self.w.droplets {
            let table = self.w.state.table(d.as_str()).cloned().unwrap_or_default();
            let version = self.w.state.version(d.as_str());
            self.m.steady_rows.push(RowCounts::of(&table));
            self.agents.push(Agent {
                table,
                up: true,
                version,
                sent: version,
                ..Agent::default()
            });
            self.progress.advance(1);
        }
        let n = self.w.droplets.len();
        if let Some(mesh) = &self.mesh {
            self.m.steady_mesh_rows = mesh.tables(n);
        }
        self.m.steady_built = self.load(&self.built());
        self.m.steady_random = self.random.as_ref().map(|r| self.load(r));
        self.m.traffic.bouncer_packets = vec![0; n];
        self.m.traffic.divider_packets = vec![0; n];
    }
}
