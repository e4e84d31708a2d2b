//! `Droplet`: a host running the agent (cluster-scoped, mirrored from the store, where the
//! agent registered it).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, IPV4_PATTERN, MAC_PATTERN};

/// What the agent reported at registration: `spec` of `alkaid.dev/v1alpha1 Droplet`.
#[derive(CustomResource, JsonSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[kube(
    group = "alkaid.dev",
    version = "v1alpha1",
    kind = "Droplet",
    plural = "droplets",
    shortname = "dl",
    category = "alkaid",
    status = "DropletStatus",
    derive = "PartialEq",
    doc = "A host running the Alkaid agent (registered by the agent itself).",
    printcolumn(name = "IP", type_ = "string", json_path = ".spec.ip"),
    printcolumn(name = "Node", type_ = "string", json_path = ".spec.node"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase")
)]
#[serde(rename_all = "camelCase")]
pub struct DropletSpec {
    /// Underlay address, the outer IP of tunnels to it.
    #[schemars(regex(pattern = IPV4_PATTERN), length(max = 15))]
    pub ip: String,
    /// Underlay MAC of its NIC.
    #[schemars(regex(pattern = MAC_PATTERN), length(max = 17))]
    pub mac: String,
    /// Underlay interface name.
    #[schemars(length(max = 15))]
    pub interface: String,
    /// Kubernetes node (or host) name.
    #[schemars(length(max = 253))]
    pub node: String,
}

/// Health of a droplet as the operator's health checks see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DropletPhase {
    /// Registered and answering; may hold roles.
    #[default]
    Ready,
    /// Stopped answering; its roles moved elsewhere.
    Unreachable,
}

/// What the operator observed: `status` of a `Droplet`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DropletStatus {
    /// Ready or Unreachable.
    #[serde(default)]
    pub phase: DropletPhase,
    /// Opaque "last seen" stamp (unix millis as proposed by the leader).
    #[serde(default)]
    pub last_seen: u64,
    /// Conditions reported by the store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
