//! Fences: every droplet learns which droplets are gone, so that it drops the direct paths it
//! learned to them. A live droplet bounces a stale path back to its sender (the data plane's
//! STALE option); a dead or removed one cannot, so without a fence a sender would keep
//! tunnelling into the void until its LRU happened to evict the row.
//!
//! - While a droplet is Unreachable, every other droplet holds `Fence{its ip}`; the rows go
//!   when it is Ready again.
//! - A removed droplet's address (or a droplet's old address after it changed) is *retired*:
//!   fenced on every droplet until each droplet that had not yet applied the fence has
//!   acknowledged the table version carrying it; then the rows go, so removed addresses do
//!   not pile up. A droplet registering with a retired address ends the fence at once (a live
//!   droplet bounces stale paths itself).
//!
//! Fan-out: a droplet's failure or removal writes one row on every droplet (and its return
//! or the fence's end removes it): O(droplets) per failure event, never per endpoint.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::resource::DropletPhase;
use crate::table::{FenceEntry, RowKey, RowValue};
use crate::types::DropletName;

use super::truth::Retired;
use super::{ClusterState, Txn};

impl ClusterState {
    /// Whether direct paths to `ip` must be dropped: a retired address, or an Unreachable
    /// droplet's.
    pub(super) fn fenced(&self, ip: Ipv4Addr) -> bool {
        self.truth.retired.contains_key(&ip)
            || self
                .idx
                .by_ip
                .get(&ip)
                .and_then(|d| self.truth.droplets.get(d))
                .is_some_and(|d| d.phase == DropletPhase::Unreachable)
    }

    /// The row `droplet` must hold under `Fence{ip}`.
    pub(super) fn desired_fence(&self, droplet: &DropletName, ip: Ipv4Addr) -> Option<RowValue> {
        let own = self.truth.droplets.get(droplet)?.spec.ip;
        (own != ip && self.fenced(ip)).then_some(RowValue::Fence(FenceEntry {}))
    }

    /// Every fenced address, sorted.
    pub(super) fn fenced_ips(&self) -> Vec<Ipv4Addr> {
        let mut ips: Vec<Ipv4Addr> = self.truth.retired.keys().copied().collect();
        ips.extend(
            self.truth
                .droplets
                .values()
                .filter(|d| d.phase == DropletPhase::Unreachable)
                .map(|d| d.spec.ip),
        );
        ips.sort_unstable();
        ips.dedup();
        ips
    }

    /// Recomputes `Fence{ip}` on every droplet.
    pub(super) fn touch_fence_everywhere(&self, ip: Ipv4Addr, txn: &mut Txn) {
        for d in self.idx.droplets.keys() {
            txn.touch(d, RowKey::Fence { ip });
        }
    }

    /// Recomputes every fence on `droplet` (a newly registered one).
    pub(super) fn touch_fences_on(&self, droplet: &DropletName, txn: &mut Txn) {
        for ip in self.fenced_ips() {
            txn.touch(droplet, RowKey::Fence { ip });
        }
    }

    /// `ip` no longer belongs to a registered droplet (call after the index forgot it):
    /// fenced until every droplet that may not have applied the fence yet acknowledges it.
    /// A droplet already holding the fence with everything acknowledged need not wait; if no
    /// droplet must, nothing is retired and the rows go in this command.
    pub(super) fn retire(&mut self, ip: Ipv4Addr, txn: &mut Txn) {
        let key = RowKey::Fence { ip };
        let waiting: BTreeMap<DropletName, u64> = self
            .idx
            .droplets
            .iter()
            .filter(|(name, di)| {
                let acked = self.truth.droplets.get(*name).map_or(0, |d| d.acked);
                di.table.table.get(&key).is_none() || acked < self.version(name.as_str())
            })
            .map(|(name, _)| (name.clone(), 0))
            .collect();
        if !waiting.is_empty() {
            self.truth.retired.insert(ip, Retired { waiting });
            txn.retired.push(ip);
        }
        self.touch_fence_everywhere(ip, txn);
    }

    /// A droplet registers with `ip`: a fence on that address ends.
    pub(super) fn unretire(&mut self, ip: Ipv4Addr, txn: &mut Txn) {
        if self.truth.retired.remove(&ip).is_some() {
            self.touch_fence_everywhere(ip, txn);
        }
    }

    /// After the flush: the table version each droplet retiring addresses wait for (the one
    /// this command's deltas brought it to).
    pub(super) fn settle_retired(&mut self, txn: &mut Txn) {
        let t = &mut self.truth;
        for ip in std::mem::take(&mut txn.retired) {
            if let Some(r) = t.retired.get_mut(&ip) {
                for (d, v) in &mut r.waiting {
                    *v = t.versions.get(d).copied().unwrap_or(0);
                }
            }
        }
    }

    /// `droplet` acknowledged `version` (`u64::MAX`: it was removed and will never acknowledge
    /// anything): retired addresses that no longer wait for anyone stop being fenced.
    pub(super) fn release_retired(&mut self, droplet: &DropletName, version: u64, txn: &mut Txn) {
        if self.truth.retired.is_empty() {
            return;
        }
        let mut done = Vec::new();
        for (ip, r) in &mut self.truth.retired {
            if r.waiting.get(droplet).is_some_and(|v| *v <= version) {
                r.waiting.remove(droplet);
                if r.waiting.is_empty() {
                    done.push(*ip);
                }
            }
        }
        for ip in done {
            self.truth.retired.remove(&ip);
            self.touch_fence_everywhere(ip, txn);
        }
    }
}

#[cfg(test)]
mod tests;
