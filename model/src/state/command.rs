//! Commands: every change to the cluster, as committed to the Raft log; and what applying
//! one returns.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::resource::{Droplet, DropletPhase, Phase, Subnet, Vpc};
use crate::table::Delta;
use crate::types::{DropletName, EndpointKey, Ipv4Cidr, MacAddr, Vni};

/// One change, applied in log order by [`ClusterState::apply`](super::ClusterState::apply).
/// Encodes with postcard (or any serde format).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create or update a VPC (status ignored).
    ApplyVpc(Vpc),
    /// Delete a VPC; refused while it has subnets.
    DeleteVpc {
        /// VPC name.
        name: String,
    },
    /// Create or update a subnet (status ignored).
    ApplySubnet(Subnet),
    /// Delete a subnet; refused while it has endpoints.
    DeleteSubnet {
        /// Subnet name.
        name: String,
    },
    /// An agent registers (or re-registers) its droplet; it becomes Ready.
    RegisterDroplet {
        /// Droplet name.
        name: DropletName,
        /// Underlay address.
        ip: Ipv4Addr,
        /// Underlay MAC.
        mac: MacAddr,
        /// Underlay interface.
        interface: String,
        /// Node name.
        node: String,
        /// Opaque "last seen" stamp.
        seen: u64,
    },
    /// An agent is alive; only `lastSeen` changes.
    DropletHeartbeat {
        /// Droplet name.
        name: DropletName,
        /// Opaque "last seen" stamp.
        seen: u64,
    },
    /// Health checks decided a droplet is Ready or Unreachable. Unreachable moves its roles.
    SetDropletPhase {
        /// Droplet name.
        name: DropletName,
        /// New phase.
        phase: DropletPhase,
        /// Opaque "last seen" stamp.
        seen: u64,
    },
    /// Forget a droplet; refused while it hosts endpoints. Its roles move.
    RemoveDroplet {
        /// Droplet name.
        name: DropletName,
    },
    /// Allocate an endpoint (CNI ADD). Idempotent for identical arguments.
    AllocateEndpoint {
        /// The pod's namespace.
        namespace: String,
        /// Endpoint name.
        name: String,
        /// VPC.
        vpc: String,
        /// Subnet of that VPC.
        subnet: String,
        /// Hosting droplet.
        droplet: DropletName,
        /// A requested address, or `None` to allocate one.
        ip: Option<Ipv4Addr>,
        /// The pod (or workload) name.
        pod: String,
    },
    /// Release an endpoint (CNI DEL). Idempotent.
    ReleaseEndpoint {
        /// Namespace.
        namespace: String,
        /// Endpoint name.
        name: String,
    },
    /// A droplet applied its table up to `version`.
    AckProgrammed {
        /// Droplet name.
        droplet: DropletName,
        /// Highest version applied.
        version: u64,
    },
}

impl Command {
    /// The postcard encoding, for the Raft log.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("commands always encode")
    }

    /// Decodes [`to_bytes`](Self::to_bytes) output.
    ///
    /// # Errors
    /// [`Error::CommandDecode`] if the bytes are not a command.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        postcard::from_bytes(bytes).map_err(|source| Error::CommandDecode { source })
    }
}

/// What an endpoint allocation gives the CNI plugin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointAllocation {
    /// Namespace and name.
    pub endpoint: EndpointKey,
    /// VPC.
    pub vpc: String,
    /// Subnet.
    pub subnet: String,
    /// Hosting droplet.
    pub droplet: DropletName,
    /// Address.
    pub ip: Ipv4Addr,
    /// MAC.
    pub mac: MacAddr,
    /// Subnet gateway.
    pub gateway: Ipv4Addr,
    /// Subnet range (its prefix length is the interface's).
    pub subnet_cidr: Ipv4Cidr,
    /// The VPC's VNI.
    pub vni: Vni,
}

impl EndpointAllocation {
    /// Prefix length for the interface address.
    pub fn prefix_len(&self) -> u8 {
        self.subnet_cidr.prefix_len()
    }
}

/// The successful answer to a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(
    clippy::large_enum_variant,
    reason = "replies are short-lived; boxing would only add allocations"
)]
pub enum Reply {
    /// The VPC as it is now.
    Vpc(Vpc),
    /// The subnet as it is now.
    Subnet(Subnet),
    /// The droplet as it is now.
    Droplet(Droplet),
    /// The endpoint allocated (or already allocated with the same arguments).
    Endpoint(EndpointAllocation),
    /// A delete or release; `existed` is false when there was nothing to delete.
    Deleted {
        /// Whether the object existed.
        existed: bool,
    },
    /// A heartbeat or acknowledgement was recorded.
    Done,
}

/// An object whose status changed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ObjRef {
    /// A VPC.
    Vpc(String),
    /// A subnet.
    Subnet(String),
    /// A droplet.
    Droplet(DropletName),
    /// An endpoint.
    Endpoint(EndpointKey),
}

/// A status change the leader writes back (e.g. to Kubernetes). Counters such as a subnet's
/// `allocated` are not reported here; they are current whenever the object is read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The object.
    pub object: ObjRef,
    /// Its phase now (droplets: Ready or Unreachable).
    pub phase: Phase,
}

/// Everything one command produced. A refused command (`reply` is `Err`) changed nothing
/// and has no status changes or deltas.
#[derive(Debug)]
pub struct Outcome {
    /// The answer.
    pub reply: Result<Reply, Error>,
    /// Status changes, in order.
    pub status_changes: Vec<StatusChange>,
    /// Per-droplet table deltas, ordered by droplet name.
    pub deltas: Vec<Delta>,
}
