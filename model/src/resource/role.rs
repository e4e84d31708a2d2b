//! `Bouncer` and `Divider`: operator-written records of where a role was placed.

use serde::{Deserialize, Serialize};

use super::{Kind, Object, Phase};
use crate::types::DropletName;

/// A Bouncer resource: one droplet holding one subnet's endpoint directory.
pub type Bouncer = Object<BouncerSpec, RoleStatus>;
/// A Divider resource: one droplet holding one VPC's subnet table.
pub type Divider = Object<DividerSpec, RoleStatus>;

/// Where a bouncer is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BouncerSpec {
    /// The subnet served.
    pub subnet: String,
    /// The droplet holding the role.
    pub droplet: DropletName,
}

impl Kind for BouncerSpec {
    const KIND: &'static str = "Bouncer";
    const NAMESPACED: bool = false;
}

/// Where a divider is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DividerSpec {
    /// The VPC served.
    pub vpc: String,
    /// The droplet holding the role.
    pub droplet: DropletName,
}

impl Kind for DividerSpec {
    const KIND: &'static str = "Divider";
    const NAMESPACED: bool = false;
}

/// Status of a role: Ready once its droplet acknowledged the tables that placed it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleStatus {
    /// Lifecycle phase.
    #[serde(default)]
    pub phase: Phase,
}

/// Object name of the bouncer of `subnet` on `droplet`.
pub fn bouncer_name(subnet: &str, droplet: &DropletName) -> String {
    format!("{subnet}.{droplet}")
}

/// Object name of the divider of `vpc` on `droplet`.
pub fn divider_name(vpc: &str, droplet: &DropletName) -> String {
    format!("{vpc}.{droplet}")
}
