//! Full mesh: a comparison model of the usual overlay, where every droplet hosting an
//! endpoint of a VPC holds a row for every endpoint of that VPC (and a peer row for every
//! other droplet of the VPC). Fed with the endpoints the real model allocated.

use std::collections::HashMap;

use crate::bytes::RowCounts;
use crate::stats::Counts;

/// Per VPC: which droplets host how many of its endpoints.
#[derive(Clone, Debug, Default)]
pub struct FullMesh {
    hosts: Vec<HashMap<u32, u32>>,
    eps: Vec<u64>,
    /// Droplets touched per endpoint add while the cluster is populated.
    pub setup_add: Counts,
    /// Droplets touched per endpoint add during churn.
    pub churn_add: Counts,
    /// Droplets touched per endpoint delete during churn.
    pub churn_delete: Counts,
}

impl FullMesh {
    /// An empty mesh of `vpcs` VPCs.
    pub fn new(vpcs: usize) -> Self {
        Self {
            hosts: vec![HashMap::new(); vpcs],
            eps: vec![0; vpcs],
            ..Self::default()
        }
    }

    /// An endpoint of `vpc` appears on `droplet`: every droplet of the VPC (the host
    /// included) gets its row. Returns the droplets touched.
    pub fn add(&mut self, vpc: u32, droplet: u32) -> u64 {
        let h = &mut self.hosts[vpc as usize];
        *h.entry(droplet).or_insert(0) += 1;
        self.eps[vpc as usize] += 1;
        h.len() as u64
    }

    /// An endpoint of `vpc` on `droplet` goes: every droplet of the VPC drops its row.
    /// Returns the droplets touched.
    pub fn remove(&mut self, vpc: u32, droplet: u32) -> u64 {
        let h = &mut self.hosts[vpc as usize];
        let touched = h.len() as u64;
        if let Some(n) = h.get_mut(&droplet) {
            *n -= 1;
            if *n == 0 {
                h.remove(&droplet);
            }
        }
        self.eps[vpc as usize] = self.eps[vpc as usize].saturating_sub(1);
        touched
    }

    /// Rows per droplet. Peer rows are bounded by `min(droplets - 1, sum over the
    /// droplet's VPCs of (hosts - 1))`: the exact union is too costly at scale, and endpoint
    /// rows dominate anyway.
    pub fn tables(&self, droplets: usize) -> Vec<RowCounts> {
        let mut rows = vec![RowCounts::default(); droplets];
        for (hosts, &eps) in self.hosts.iter().zip(&self.eps) {
            let peers = hosts.len().saturating_sub(1) as u64;
            for (&d, &local) in hosts {
                let r = &mut rows[d as usize];
                r.local_endpoint += u64::from(local);
                r.endpoint += eps - u64::from(local);
                r.peer += peers;
            }
        }
        let cap = droplets.saturating_sub(1) as u64;
        for r in &mut rows {
            r.peer = r.peer.min(cap);
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fan_out_grows_with_hosts() {
        let mut m = FullMesh::new(2);
        assert_eq!(m.add(0, 1), 1);
        assert_eq!(m.add(0, 2), 2);
        assert_eq!(m.add(0, 2), 2);
        assert_eq!(m.add(0, 3), 3);
        assert_eq!(m.add(1, 3), 1);
        let t = m.tables(4);
        assert_eq!(t[2].local_endpoint, 2);
        assert_eq!(t[2].endpoint, 2);
        assert_eq!(t[2].peer, 2);
        assert_eq!(t[3].local_endpoint, 2);
        assert_eq!(t[3].endpoint, 3);
        assert_eq!(t[3].peer, 2);
        assert_eq!(t[0].total(), 0);
        assert_eq!(m.remove(0, 1), 3);
        assert_eq!(m.remove(0, 2), 2);
        assert_eq!(m.tables(4)[3].endpoint, 1);
    }
}
