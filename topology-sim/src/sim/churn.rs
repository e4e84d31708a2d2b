//! Endpoint churn: creates (random subnet, random live droplet) and deletes (random
//! endpoint) arriving as Poisson processes, applied to the model; their fan-out and
//! programming times are measured.

use alkaid_model::Reply;
use rand::Rng;

use super::Sim;
use super::event::Kind;
use crate::net::{SEC, secs, to_ms};
use crate::world::{Ep, endpoint_key};

/// Tries at finding a live droplet by random probing before giving up on one create.
const PROBES: usize = 64;

impl Sim<'_> {
    /// Nanoseconds to the next arrival of a Poisson process of `rate` per second.
    pub(super) fn churn_gap(&mut self, rate: f64) -> u64 {
        let u: f64 = self.rng.churn.random();
        let s = -(1.0 - u).ln() / rate;
        ((s * SEC as f64) as u64).max(1)
    }

    fn next_churn(&mut self, rate: f64, kind: Kind) {
        let at = self.now + self.churn_gap(rate);
        if at <= secs(self.sc.churn.duration_s) {
            self.q.push(at, kind);
        }
    }

    fn live_droplet(&mut self) -> Option<u32> {
        (0..PROBES)
            .map(|_| self.rng.churn.random_range(0..self.sc.droplets))
            .find(|d| self.agents[*d as usize].up)
    }

    pub(super) fn on_create(&mut self) {
        self.next_churn(self.sc.churn.creates_per_sec, Kind::Create);
        let subnet = self.rng.churn.random_range(0..self.w.subnets.len() as u32);
        let Some(d) = self.live_droplet() else {
            *self.m.refused.entry("NoLiveDroplet".into()).or_insert(0) += 1;
            return;
        };
        let (id, cmd) = self.w.create_cmd(subnet, d);
        let out = self.w.apply(cmd);
        self.m.commands += 1;
        let alloc = match out.reply {
            Ok(Reply::Endpoint(a)) => a,
            Ok(_) => return,
            Err(e) => {
                self.m.refuse(&e);
                return;
            }
        };
        self.m.creates += 1;
        let vpc = self.w.subnets[subnet as usize].1;
        self.w.created(
            id,
            Ep {
                vpc,
                subnet,
                droplet: d,
                ip: alloc.ip,
            },
        );
        self.m.churn_add.add(out.deltas.len() as u64);
        if let Some(mesh) = &mut self.mesh {
            let n = mesh.add(vpc, d);
            mesh.churn_add.add(n);
        }
        self.waiting.insert(alloc.endpoint, self.now);
        self.note_status(&out.status_changes);
        let sent = self.send(out.deltas, &[]);
        if let Some(done) = sent.done {
            self.m.programmed_add_ms.add(to_ms(done - self.now));
        }
    }

    pub(super) fn on_delete(&mut self) {
        self.next_churn(self.sc.churn.deletes_per_sec, Kind::Delete);
        let Some(id) = self.w.all.pick(&mut self.rng.churn) else {
            return;
        };
        let Some(cmd) = self.w.delete_cmd(id) else {
            return;
        };
        let out = self.w.apply(cmd);
        self.m.commands += 1;
        if let Err(e) = &out.reply {
            self.m.refuse(e);
            return;
        }
        self.m.deletes += 1;
        let ep = self.w.deleted(id).expect("picked from the live set");
        self.waiting.remove(&endpoint_key(ep.vpc, id));
        self.m.churn_delete.add(out.deltas.len() as u64);
        if let Some(mesh) = &mut self.mesh {
            let n = mesh.remove(ep.vpc, ep.droplet);
            mesh.churn_delete.add(n);
        }
        let sent = self.send(out.deltas, &[]);
        if let Some(done) = sent.done {
            self.m.programmed_delete_ms.add(to_ms(done - self.now));
        }
    }
}
