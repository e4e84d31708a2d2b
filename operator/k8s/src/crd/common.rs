//! Pieces shared by every kind: phase, conditions, and the string patterns the schemas use.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An IPv4 CIDR `a.b.c.d/n` (form only; range and containment are the store's to judge).
pub const CIDR_PATTERN: &str = r"^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])/([0-9]|[12][0-9]|3[0-2])$";
/// A dotted-quad IPv4 address.
pub const IPV4_PATTERN: &str = r"^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$";
/// A MAC address `aa:bb:cc:dd:ee:ff`.
pub const MAC_PATTERN: &str = r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$";
/// A DNS-1123 label (namespace names).
pub const LABEL_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// A DNS-1123 subdomain (object and droplet names).
pub const SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// Lifecycle phase shown in `status.phase` (the model's `Phase`, as strings).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
pub enum Phase {
    /// Accepted, but not placed anywhere yet (e.g. no ready droplet).
    #[default]
    Pending,
    /// Placed; waiting for droplets to acknowledge their tables.
    Provisioning,
    /// Every droplet that must hold it has acknowledged.
    Ready,
    /// A droplet that stopped answering.
    Unreachable,
    /// Cannot make progress without user action (e.g. the store refused the spec).
    Failed,
}

impl Phase {
    /// Reads the store's phase string; unknown or empty strings are `Pending`, so a newer
    /// store never breaks an older operator.
    pub fn from_store(s: &str) -> Self {
        match s {
            "Provisioning" => Self::Provisioning,
            "Ready" => Self::Ready,
            "Unreachable" => Self::Unreachable,
            "Failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// A status condition. No `lastTransitionTime`: statuses are derived from the store and
/// must be equal when the store is, so reconciles stay idempotent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Accepted` or `Placed`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase machine-readable reason.
    #[serde(default)]
    pub reason: String,
    /// Human-readable explanation.
    #[serde(default)]
    pub message: String,
}

impl Condition {
    /// A condition with the given fields.
    pub fn new(type_: &str, status: bool, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_: type_.to_owned(),
            status: if status { "True" } else { "False" }.to_owned(),
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}

/// Status of a `Bouncer` or `Divider`: Ready once its droplet acknowledged the tables that
/// placed it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleStatus {
    /// Lifecycle phase.
    #[serde(default)]
    pub phase: Phase,
}

pub(crate) fn default_one() -> u32 {
    1
}
