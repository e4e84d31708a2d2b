//! Bytes a table row costs in the droplet's BPF maps, from the real `#[repr(C)]` key and
//! value types of `alkaid-xdp-common` (`core::mem::size_of`, key plus value, without the
//! kernel's per-entry overhead).
//!
//! | row | map entries |
//! |---|---|
//! | `LocalEndpoint` | ENDPOINTS (`EndpointKey` -> `EndpointRecord`) and AGENT_ENDPOINTS (`u32` -> `AgentRecord`) |
//! | `Endpoint` | ENDPOINTS (`EndpointKey` -> `EndpointRecord`) |
//! | `Network` | NETWORKS (LPM `u32` prefix + `NetworkKey` -> `NetworkRecord`) |
//! | `Vpc` | VPCS (`u32` -> `VpcValue`) |
//! | `Peer` | PEERS (`u32` -> `PeerValue`) |
//! | `Fence` | none: the agent drops the direct paths to that droplet (0 bytes) |
//!
//! The `*Record` types are what the maps store: the value the agent writes plus MACs and
//! bouncers the loader caches next to it. AGENT_SLOTS and LOCAL_SLOTS (the array copies of a
//! droplet's own endpoints the programs read first) are preallocated, a fixed ~1.2 MB per
//! droplet whatever its rows, so no row is charged for them.

use core::mem::size_of;

use alkaid_model::{RowKey, Table};
use alkaid_xdp_common::{
    AgentRecord, EndpointKey, EndpointRecord, NetworkKey, NetworkRecord, PeerValue, VpcValue,
};
use serde::{Deserialize, Serialize};

/// Bytes of one ENDPOINTS entry.
pub const ENDPOINT_ROW: usize = size_of::<EndpointKey>() + size_of::<EndpointRecord>();
/// Bytes of a local endpoint: its ENDPOINTS entry plus its AGENT_ENDPOINTS entry.
pub const LOCAL_ENDPOINT_ROW: usize = ENDPOINT_ROW + size_of::<u32>() + size_of::<AgentRecord>();
/// Bytes of one NETWORKS entry (the LPM key carries a `u32` prefix length).
pub const NETWORK_ROW: usize =
    size_of::<u32>() + size_of::<NetworkKey>() + size_of::<NetworkRecord>();
/// Bytes of one VPCS entry.
pub const VPC_ROW: usize = size_of::<u32>() + size_of::<VpcValue>();
/// Bytes of one PEERS entry.
pub const PEER_ROW: usize = size_of::<u32>() + size_of::<PeerValue>();

/// Bytes of a row with this key.
pub fn row_bytes(key: &RowKey) -> usize {
    match key {
        RowKey::LocalEndpoint { .. } => LOCAL_ENDPOINT_ROW,
        RowKey::Endpoint { .. } => ENDPOINT_ROW,
        RowKey::Network { .. } => NETWORK_ROW,
        RowKey::Vpc { .. } => VPC_ROW,
        RowKey::Peer { .. } => PEER_ROW,
        RowKey::Fence { .. } => 0,
    }
}

/// The per-row sizes, for the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowSizes {
    /// `LocalEndpoint`.
    pub local_endpoint: usize,
    /// `Endpoint`.
    pub endpoint: usize,
    /// `Network`.
    pub network: usize,
    /// `Vpc`.
    pub vpc: usize,
    /// `Peer`.
    pub peer: usize,
}

/// The sizes this build uses.
pub fn row_sizes() -> RowSizes {
    RowSizes {
        local_endpoint: LOCAL_ENDPOINT_ROW,
        endpoint: ENDPOINT_ROW,
        network: NETWORK_ROW,
        vpc: VPC_ROW,
        peer: PEER_ROW,
    }
}

/// Rows of one table by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    /// `LocalEndpoint` rows.
    pub local_endpoint: u64,
    /// `Endpoint` rows (bouncer directory).
    pub endpoint: u64,
    /// `Network` rows.
    pub network: u64,
    /// `Vpc` rows.
    pub vpc: u64,
    /// `Peer` rows.
    pub peer: u64,
    /// `Fence` rows (no map entry).
    #[serde(default)]
    pub fence: u64,
}

impl RowCounts {
    /// Counts the rows of `table`.
    pub fn of(table: &Table) -> Self {
        let mut c = Self::default();
        for k in table.rows().keys() {
            match k {
                RowKey::LocalEndpoint { .. } => c.local_endpoint += 1,
                RowKey::Endpoint { .. } => c.endpoint += 1,
                RowKey::Network { .. } => c.network += 1,
                RowKey::Vpc { .. } => c.vpc += 1,
                RowKey::Peer { .. } => c.peer += 1,
                RowKey::Fence { .. } => c.fence += 1,
            }
        }
        c
    }

    /// All rows.
    pub fn total(&self) -> u64 {
        self.local_endpoint + self.endpoint + self.network + self.vpc + self.peer + self.fence
    }

    /// Bytes in the maps.
    pub fn bytes(&self) -> u64 {
        self.local_endpoint * LOCAL_ENDPOINT_ROW as u64
            + self.endpoint * ENDPOINT_ROW as u64
            + self.network * NETWORK_ROW as u64
            + self.vpc * VPC_ROW as u64
            + self.peer * PEER_ROW as u64
    }

    /// Adds another table's counts.
    pub fn add(&mut self, o: &Self) {
        self.local_endpoint += o.local_endpoint;
        self.endpoint += o.endpoint;
        self.network += o.network;
        self.vpc += o.vpc;
        self.peer += o.peer;
        self.fence += o.fence;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_xdp_types() {
        // The xdp crate asserts these sizes at compile time; restate them so a layout
        // change shows up here too.
        assert_eq!(ENDPOINT_ROW, 8 + 28);
        assert_eq!(LOCAL_ENDPOINT_ROW, 36 + 4 + 224);
        assert_eq!(NETWORK_ROW, 4 + 8 + 168);
        assert_eq!(VPC_ROW, 4 + 68);
        assert_eq!(PEER_ROW, 4 + 8);
        let c = RowCounts {
            local_endpoint: 1,
            endpoint: 2,
            network: 1,
            vpc: 1,
            peer: 3,
            fence: 2,
        };
        assert_eq!(c.total(), 10);
        assert_eq!(
            c.bytes(),
            264 + 72 + 180 + 72 + 36,
            "fences hold no map entry"
        );
    }
}
