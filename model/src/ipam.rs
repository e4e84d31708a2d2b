//! Per-subnet IP allocation. The network, gateway and broadcast addresses are reserved.
//!
//! Allocation is O(log n) per address and never scans the subnet: a cursor walks through
//! never-used offsets, released offsets below the cursor wait in `free` (lowest reused first),
//! and explicitly requested offsets ahead of the cursor wait in `ahead` so the cursor skips
//! them. Everything is ordered, so allocation is deterministic.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::types::Ipv4Cidr;

/// Why a requested address cannot be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not inside the subnet.
    Outside,
    /// The network, gateway or broadcast address (the `&str` says which).
    Reserved(&'static str),
    /// Already allocated.
    InUse,
}

/// The allocator of one subnet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipam {
    cidr: Ipv4Cidr,
    gateway: u32,
    /// Offsets below `next` are either allocated, reserved, or in `free`.
    next: u32,
    free: BTreeSet<u32>,
    /// Allocated offsets at or above `next`.
    ahead: BTreeSet<u32>,
    allocated: u64,
}

impl Ipam {
    /// An empty allocator for `cidr` with `gateway` reserved (callers validated both).
    pub fn new(cidr: Ipv4Cidr, gateway: Ipv4Addr) -> Self {
        Self {
            cidr,
            gateway: cidr.offset_of(gateway),
            next: 1,
            free: BTreeSet::new(),
            ahead: BTreeSet::new(),
            allocated: 0,
        }
    }

    /// Allocatable addresses: all but network, gateway and broadcast.
    pub fn capacity(&self) -> u64 {
        self.cidr.size() - 3
    }

    /// Addresses allocated now.
    pub fn allocated(&self) -> u64 {
        self.allocated
    }

    fn last(&self) -> u32 {
        (self.cidr.size() - 1) as u32
    }

    /// Why `ip` cannot be taken, if it cannot.
    pub fn check(&self, ip: Ipv4Addr) -> Option<Refusal> {
        if !self.cidr.contains(ip) {
            return Some(Refusal::Outside);
        }
        let off = self.cidr.offset_of(ip);
        if off == 0 {
            Some(Refusal::Reserved("network"))
        } else if off == self.last() {
            Some(Refusal::Reserved("broadcast"))
        } else if off == self.gateway {
            Some(Refusal::Reserved("gateway"))
        } else if (off < self.next && !self.free.contains(&off)) || self.ahead.contains(&off) {
            Some(Refusal::InUse)
        } else {
            None
        }
    }

    /// Takes the requested `ip`.
    ///
    /// # Errors
    /// The [`Refusal`] reason; nothing changes then.
    pub fn take(&mut self, ip: Ipv4Addr) -> Result<(), Refusal> {
        if let Some(r) = self.check(ip) {
            return Err(r);
        }
        let off = self.cidr.offset_of(ip);
        if off < self.next {
            self.free.remove(&off);
        } else {
            self.ahead.insert(off);
        }
        self.allocated += 1;
        Ok(())
    }

    /// The address [`allocate`](Self::allocate) would return, changing nothing.
    pub fn peek(&self) -> Option<Ipv4Addr> {
        if let Some(&off) = self.free.first() {
            return Some(self.cidr.addr_at(off));
        }
        let mut off = self.next;
        while off < self.last() {
            if off != self.gateway && !self.ahead.contains(&off) {
                return Some(self.cidr.addr_at(off));
            }
            off += 1;
        }
        None
    }

    /// Allocates the lowest free address; `None` when the subnet is full.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        if let Some(off) = self.free.pop_first() {
            self.allocated += 1;
            return Some(self.cidr.addr_at(off));
        }
        while self.next < self.last() {
            let off = self.next;
            self.next += 1;
            // Each offset is passed once, so skipping is amortized O(1) per allocation.
            if off == self.gateway || self.ahead.remove(&off) {
                continue;
            }
            self.allocated += 1;
            return Some(self.cidr.addr_at(off));
        }
        None
    }

    /// Frees `ip` (callers only free what they allocated).
    pub fn release(&mut self, ip: Ipv4Addr) {
        let off = self.cidr.offset_of(ip);
        let was_held = if off < self.next {
            self.free.insert(off)
        } else {
            self.ahead.remove(&off)
        };
        if was_held {
            self.allocated -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[derive(Debug)]
    enum Op {
        Alloc(Option<&'static str>),
        Take(&'static str, Result<(), Refusal>),
        Release(&'static str),
    }

    #[test]
    fn allocation_table() {
        use Op::*;
        let cidr: Ipv4Cidr = "10.0.0.0/29".parse().unwrap(); // .1 gw, .2-.6 hosts, .7 bcast
        let mut ipam = Ipam::new(cidr, ip("10.0.0.1"));
        assert_eq!(ipam.capacity(), 5);
        let ops = [
            Alloc(Some("10.0.0.2")),
            Take("10.0.0.4", Ok(())),
            Take("10.0.0.4", Err(Refusal::InUse)),
            Take("10.0.0.2", Err(Refusal::InUse)),
            Take("10.0.0.0", Err(Refusal::Reserved("network"))),
            Take("10.0.0.1", Err(Refusal::Reserved("gateway"))),
            Take("10.0.0.7", Err(Refusal::Reserved("broadcast"))),
            Take("10.0.1.3", Err(Refusal::Outside)),
            Alloc(Some("10.0.0.3")),
            Alloc(Some("10.0.0.5")), // skips .4, taken on request
            Release("10.0.0.3"),
            Alloc(Some("10.0.0.3")), // freed and reused
            Alloc(Some("10.0.0.6")),
            Alloc(None), // exhausted
            Release("10.0.0.5"),
            Take("10.0.0.5", Ok(())),
            Alloc(None),
        ];
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Alloc(want) => assert_eq!(ipam.allocate(), want.map(ip), "op {i} {op:?}"),
                Take(a, want) => assert_eq!(ipam.take(ip(a)), want, "op {i} {op:?}"),
                Release(a) => ipam.release(ip(a)),
            }
        }
        assert_eq!(ipam.allocated(), 5);
    }

    #[test]
    fn custom_gateway_and_release_ahead() {
        let cidr: Ipv4Cidr = "10.0.0.0/29".parse().unwrap();
        let mut ipam = Ipam::new(cidr, ip("10.0.0.6"));
        assert_eq!(ipam.take(ip("10.0.0.5")), Ok(()));
        ipam.release(ip("10.0.0.5"));
        let got: Vec<_> = std::iter::from_fn(|| ipam.allocate()).collect();
        let want: Vec<_> = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]
            .map(ip)
            .to_vec();
        assert_eq!(got, want);
    }

    #[test]
    fn peek_matches_allocate() {
        let cidr: Ipv4Cidr = "10.0.0.0/28".parse().unwrap();
        let mut ipam = Ipam::new(cidr, ip("10.0.0.1"));
        ipam.take(ip("10.0.0.2")).unwrap();
        ipam.take(ip("10.0.0.3")).unwrap();
        loop {
            let p = ipam.peek();
            assert_eq!(p, ipam.allocate());
            if p.is_none() {
                break;
            }
        }
        assert_eq!(ipam.allocated(), ipam.capacity());
    }
}
