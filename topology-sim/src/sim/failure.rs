//! Failures: droplets go down (their agents stop applying and their deltas are lost), the
//! model is told after the detection delay (`SetDropletPhase` Unreachable: it moves their
//! roles), and later they come back (`SetDropletPhase` Ready, then a full sync of their
//! tables). The real placement and random placement are compared at each step.

use std::collections::BTreeSet;

use alkaid_model::Command;
use alkaid_model::resource::DropletPhase;
use rand::seq::SliceRandom;

use super::Sim;
use super::event::Kind;
use crate::designs::RoleLoad;
use crate::designs::random::{Roles, built_roles};
use crate::net::{MS, secs};
use crate::scenario::Pick;
use crate::world::droplet_index;

impl Sim<'_> {
    /// The model's placement now, by index.
    pub(super) fn built(&self) -> Roles {
        built_roles(
            &self.w.state,
            |s| self.w.subnet_index(s),
            |v| self.w.vpc_index(v),
            self.w.subnets.len(),
            self.w.vpcs.len(),
        )
    }

    fn down_mask(&self) -> Vec<bool> {
        self.agents.iter().map(|a| !a.up).collect()
    }

    pub(super) fn load(&self, roles: &Roles) -> RoleLoad {
        let live: Vec<bool> = self.agents.iter().map(|a| a.up).collect();
        roles.load(self.agents.len(), &self.w.endpoints_per_subnet(), &live)
    }

    pub(super) fn on_fail(&mut self, i: usize) {
        let f = &self.sc.failures[i];
        let roles = self.built();
        let mut holders: BTreeSet<u32> = BTreeSet::new();
        if f.pick == Pick::RoleHolders {
            holders.extend(roles.bouncers.iter().chain(&roles.dividers).flatten());
        }
        let up: Vec<u32> = (0..self.sc.droplets).filter(|d| self.is_up(*d)).collect();
        let mut first: Vec<u32> = up.iter().copied().filter(|d| holders.contains(d)).collect();
        let mut rest: Vec<u32> = up
            .iter()
            .copied()
            .filter(|d| !holders.contains(d))
            .collect();
        first.shuffle(&mut self.rng.fail);
        rest.shuffle(&mut self.rng.fail);
        let mut down: Vec<u32> = first
            .into_iter()
            .chain(rest)
            .take(f.droplets as usize)
            .collect();
        down.sort_unstable();
        for d in &down {
            let a = &mut self.agents[*d as usize];
            a.up = false;
            a.generation += 1;
            self.down_in.insert(*d, i);
        }
        let mask = self.down_mask();
        let (sb, vd) = roles.orphaned(&mask);
        let fm = &mut self.m.failures[i];
        fm.built.subnets_without_live_bouncer = sb;
        fm.built.vpcs_without_live_divider = vd;
        if let Some(r) = &self.random {
            let (sb, vd) = r.orphaned(&mask);
            let mut out = crate::designs::PlacementOutcome {
                subnets_without_live_bouncer: sb,
                vpcs_without_live_divider: vd,
                ..Default::default()
            };
            let mut after = r.clone();
            out.roles_moved_on_failure = after.replace_down(&mask, &mut self.rng.random);
            out.load_after_failure = self.load(&after);
            self.m.failures[i].random = Some(out);
            self.random = Some(after);
        }
        let fm = &mut self.m.failures[i];
        fm.down = down;
        fm.at = self.now;
        fm.roles_before = Some(roles);
        let detect = self.now + (f.detect_after_ms * MS as f64).round() as u64;
        self.q.push(detect, Kind::Detect(i));
    }

    pub(super) fn on_detect(&mut self, i: usize) {
        let down = self.m.failures[i].down.clone();
        let mut touched: BTreeSet<String> = BTreeSet::new();
        let (mut done, mut deltas, mut rows) = (None::<u64>, 0, 0);
        for d in &down {
            let out = self.w.apply(Command::SetDropletPhase {
                name: self.w.droplets[*d as usize].clone(),
                phase: DropletPhase::Unreachable,
                seen: self.now / MS,
            });
            self.m.commands += 1;
            if let Err(e) = &out.reply {
                self.m.refuse(e);
                continue;
            }
            self.note_status(&out.status_changes);
            touched.extend(
                out.deltas
                    .iter()
                    .filter(|x| droplet_index(x.droplet.as_str()).is_some_and(|d| self.is_up(d)))
                    .map(|x| x.droplet.to_string()),
            );
            let sent = self.send(out.deltas, &[]);
            deltas += sent.deltas;
            rows += sent.rows;
            done = done.max(sent.done);
        }
        let after = self.built();
        let load = self.load(&after);
        let fm = &mut self.m.failures[i];
        fm.detected = Some(self.now);
        fm.deltas = deltas;
        fm.rows = rows;
        fm.droplets_touched = touched.len() as u64;
        fm.tables_right_at = Some(done.unwrap_or(self.now));
        if let Some(before) = fm.roles_before.take() {
            fm.built.roles_moved_on_failure = after.moved_from(&before);
        }
        fm.built.load_after_failure = load;
        if let Some(r) = self.sc.failures[i].return_at_s {
            self.q.push(secs(r).max(self.now), Kind::Return(i));
        }
    }

    pub(super) fn on_return(&mut self, i: usize) {
        let back = self.m.failures[i].down.clone();
        let before = self.built();
        for d in &back {
            let a = &mut self.agents[*d as usize];
            a.up = true;
            a.generation += 1;
            // A fresh connection: nothing queued on it.
            a.stream_at = self.now;
            a.busy_until = self.now;
            self.down_in.remove(d);
        }
        let mut done: Option<u64> = None;
        let mut deltas = 0;
        for d in &back {
            let out = self.w.apply(Command::SetDropletPhase {
                name: self.w.droplets[*d as usize].clone(),
                phase: DropletPhase::Ready,
                seen: self.now / MS,
            });
            self.m.commands += 1;
            if let Err(e) = &out.reply {
                self.m.refuse(e);
                continue;
            }
            self.note_status(&out.status_changes);
            let sent = self.send(out.deltas, &back);
            deltas += sent.deltas;
            done = done.max(sent.done);
        }
        let mut resync_rows = 0;
        for d in &back {
            let (t, rows) = self.full_sync(*d);
            resync_rows += rows;
            done = done.max(Some(t));
        }
        let after = self.built();
        let load = self.load(&after);
        let random_load = self.random.as_ref().map(|r| self.load(r));
        let fm = &mut self.m.failures[i];
        fm.returned = Some(self.now);
        fm.return_deltas = deltas;
        fm.resync_rows = resync_rows;
        fm.return_right_at = done;
        fm.built.roles_moved_on_return = after.moved_from(&before);
        fm.built.load_after_return = load;
        if let (Some(out), Some(load)) = (&mut fm.random, random_load) {
            // Mizar moves nothing back when droplets return.
            out.roles_moved_on_return = 0;
            out.load_after_return = load;
        }
    }
}
