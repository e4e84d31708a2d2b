//! The data plane behind one trait: the aya implementation over the real BPF maps, and an
//! in-memory fake for tests and simulation. Only `aya.rs` touches BPF (through the
//! `alkaid-xdp` loader, behind the default `xdp` feature).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use alkaid_model::Table;
use ipnet::Ipv4Net;

use crate::error::Result;
use crate::sync::MapOp;

#[cfg(feature = "xdp")]
pub mod aya;
pub mod fake;

#[cfg(feature = "xdp")]
pub use self::aya::{AyaConfig, AyaDataplane};
pub use fake::{ApplyHold, FakeDataplane};

/// Where the endpoint data path runs (ARCHITECTURE.md "Hook choice").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndpointHook {
    /// TC clsact ingress: `agent_tc` on each host veth, and `transit_tc` on the underlay NIC
    /// (alone, or behind XDP `transit`, which then keeps the retargets). Keeps GSO/TSO:
    /// measured 0.92-1.15x the kernel's VXLAN on single-stream TCP, ~0.15x for XDP on veth.
    #[default]
    Tc,
    /// XDP `agent` on each host veth and `transit` delivering locally (pods need tx
    /// checksum offload off, xdp-on-veth rule 5).
    Xdp,
}

/// An endpoint interface on this droplet: the host end of its veth, where the `agent`
/// program runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointAttachment {
    /// Host-side veth name.
    pub host_ifname: String,
    /// Host-side veth ifindex.
    pub host_ifindex: u32,
    /// The endpoint's VPC.
    pub vni: u32,
    /// The endpoint's address.
    pub ip: Ipv4Addr,
    /// The endpoint's MAC.
    pub mac: [u8; 6],
    /// The endpoint's subnet (network address and prefix).
    pub subnet: Ipv4Net,
    /// The subnet's gateway.
    pub gateway: Ipv4Addr,
}

/// Per-name counters (verdicts and drop reasons summed over CPUs).
pub type Counters = BTreeMap<String, u64>;

/// The outcome of [`Dataplane::apply`]: rows that failed do not stop the others.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Operations that took effect.
    pub applied: usize,
    /// One message per failed operation (sent back in the Ack).
    pub errors: Vec<String>,
}

/// What the agent does to packets. Implementations are internally synchronized: every method
/// takes `&self` and may be called from the programming stream and the CNI server at once.
pub trait Dataplane: Send + Sync + 'static {
    /// Applies `ops` in order. Idempotent: upserting a row that is already there and
    /// deleting one that is absent both succeed. A failed row is reported and skipped.
    ///
    /// # Errors
    /// [`crate::Error::Dataplane`] only if the maps are unusable as a whole.
    fn apply(&self, ops: &[MapOp]) -> Result<ApplyReport>;

    /// What the maps actually hold now, as table rows (for the full-sync diff and dumps).
    ///
    /// # Errors
    /// [`crate::Error::Dataplane`] if the maps cannot be read.
    fn rows(&self) -> Result<Table>;

    /// After a full sync: removes what no table row names but a previous agent may have left
    /// (attachments of interfaces not attached now, learned paths that can no longer be
    /// right). Returns how many were removed. The default has nothing to prune.
    ///
    /// # Errors
    /// [`crate::Error::Dataplane`] if the maps cannot be read or written.
    fn prune(&self) -> Result<usize> {
        Ok(0)
    }

    /// Attaches the `agent` program to an endpoint's host veth and records its ifindex for
    /// local delivery. Idempotent: attaching the same interface again replaces the entry.
    ///
    /// # Errors
    /// [`crate::Error::Dataplane`] if the program or maps refuse.
    ///
    /// # Panics
    /// Never.
    fn attach_endpoint(&self, ep: &EndpointAttachment) -> Result<()>;

    /// Forgets an endpoint interface (the veth itself is deleted by the caller; the link
    /// goes with it). Returns whether it was attached.
    ///
    /// # Errors
    /// [`crate::Error::Dataplane`] if the maps refuse.
    fn detach_endpoint(&self, ep: &EndpointAttachment) -> Result<bool>;

    /// The attached endpoints, by host ifname.
    ///
    /// # Errors
    /// [`crate::Error::Dataplane`] if the maps cannot be read.
    fn endpoints(&self) -> Result<Vec<EndpointAttachment>>;

    /// Per-reason counters.
    ///
    /// # Errors
    /// [`crate::Error::Dataplane`] if the maps cannot be read.
    fn counters(&self) -> Result<Counters>;
}
