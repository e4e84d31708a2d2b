//! Traffic: each flow picks a random endpoint on a live droplet and a random peer of its
//! VPC; its first packet is walked through the model's tables by `fwd::trace` (sender ->
//! bouncer [-> divider -> bouncer] -> destination); the destination learns the sender from
//! the return-to-sender option and the sender learns back from the reply, so every later
//! packet of the flow takes the direct path, as the data plane does.

use alkaid_model::fwd::{self, HopAction};
use alkaid_xdp_common::hash::flow_hash;
use rand::Rng;

use super::Sim;
use crate::world::{droplet_index, endpoint_key};

/// Tries at finding a sender on a live droplet.
const PROBES: usize = 16;

impl Sim<'_> {
    pub(super) fn on_flow(&mut self) {
        let t = &mut self.m.traffic;
        t.flows += 1;
        let rng = &mut self.rng.traffic;
        let sender = (0..PROBES).find_map(|_| {
            let id = self.w.all.pick(rng)?;
            let ep = self.w.eps[&id];
            self.agents[ep.droplet as usize].up.then_some((id, ep))
        });
        let Some((a, ea)) = sender else {
            *t.drops.entry("NoLiveSender".into()).or_insert(0) += 1;
            return;
        };
        let peers = &self.w.by_vpc[ea.vpc as usize];
        let mut b = peers.pick(rng).unwrap_or(a);
        if b == a && peers.len() > 1 {
            b = peers.pick(rng).unwrap_or(a);
        }
        let eb = self.w.eps[&b];
        let sport: u16 = rng.random();
        let hash = flow_hash(
            u32::from_ne_bytes(ea.ip.octets()),
            u32::from_ne_bytes(eb.ip.octets()),
            sport,
            80,
            6,
        );
        let hops = match fwd::trace(&self.w.state, &endpoint_key(ea.vpc, a), eb.ip, hash) {
            Ok(h) => h,
            Err(reason) => {
                let dbg = format!("{reason:?}");
                let kind = dbg.split([' ', '{', '(']).next().unwrap_or("Drop");
                *t.drops.entry(kind.to_owned()).or_insert(0) += 1;
                return;
            }
        };
        let idx: Vec<u32> = hops
            .iter()
            .filter_map(|h| droplet_index(h.droplet.as_str()))
            .collect();
        let last = idx.len().saturating_sub(1);
        if let Some(pos) = idx.iter().position(|d| !self.agents[*d as usize].up) {
            let d = idx[pos];
            if pos == last {
                t.to_down_host += 1;
            } else {
                t.black_holed += 1;
                if let Some(f) = self.down_in.get(&d) {
                    self.m.failures[*f].black_holed += 1;
                }
            }
            return;
        }
        let p = u64::from(self.sc.traffic.packets_per_flow);
        t.delivered += 1;
        t.packets += p;
        t.path_droplets.add(hops.len() as u64);
        if hops.len() == 1 {
            t.local += 1;
            t.local_packets += p;
            return;
        }
        t.via_roles += 1;
        t.direct += p - 1;
        for (h, d) in hops.iter().zip(&idx) {
            match h.action {
                HopAction::Bounce | HopAction::ToDivider => t.bouncer_packets[*d as usize] += 1,
                HopAction::Divide => t.divider_packets[*d as usize] += 1,
                HopAction::ToBouncer | HopAction::Deliver { .. } => {}
            }
        }
    }
}
