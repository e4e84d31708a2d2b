//! `Droplet`: a host running the agent, registered by the agent itself.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::{Kind, Object};
use crate::types::MacAddr;

/// A Droplet resource.
pub type Droplet = Object<DropletSpec, DropletStatus>;

/// What the agent reports at registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DropletSpec {
    /// Underlay address, the outer IP of tunnels to it.
    pub ip: Ipv4Addr,
    /// Underlay MAC of its NIC.
    pub mac: MacAddr,
    /// Underlay interface name.
    pub interface: String,
    /// Kubernetes node (or host) name.
    pub node: String,
}

impl Kind for DropletSpec {
    const KIND: &'static str = "Droplet";
    const NAMESPACED: bool = false;
}

/// Health of a droplet, as the operator's health checks see it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum DropletPhase {
    /// Registered and answering; may hold roles.
    #[default]
    Ready,
    /// Stopped answering; its roles moved elsewhere.
    Unreachable,
}

impl std::fmt::Display for DropletPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// What the operator observed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DropletStatus {
    /// Ready or Unreachable.
    #[serde(default)]
    pub phase: DropletPhase,
    /// Opaque "last seen" stamp supplied by commands (never read from a clock here).
    #[serde(default)]
    pub last_seen: u64,
}
