//! `Vpc`: an isolated tenant address space with its own VNI.

use serde::{Deserialize, Serialize};

use super::{Condition, Kind, Object, Phase};
use crate::types::{DropletName, Ipv4Cidr, Vni};

/// A VPC resource.
pub type Vpc = Object<VpcSpec, VpcStatus>;

/// Default number of dividers per VPC.
pub const DEFAULT_DIVIDERS: u32 = 1;

fn default_dividers() -> u32 {
    DEFAULT_DIVIDERS
}

/// What the user asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VpcSpec {
    /// The VPC's address range (/8 to /28); may overlap other VPCs.
    pub cidr: Ipv4Cidr,
    /// How many divider droplets hold the VPC's subnet table (1..=16).
    #[serde(default = "default_dividers")]
    pub dividers: u32,
    /// A chosen VNI; allocated when absent.
    #[serde(default)]
    pub vni: Option<Vni>,
    /// Tenant namespaces whose pods join this VPC by default.
    #[serde(default)]
    pub namespaces: Vec<String>,
}

impl VpcSpec {
    /// A spec with defaults for everything but the CIDR.
    pub fn new(cidr: Ipv4Cidr) -> Self {
        Self {
            cidr,
            dividers: DEFAULT_DIVIDERS,
            vni: None,
            namespaces: Vec::new(),
        }
    }
}

impl Kind for VpcSpec {
    const KIND: &'static str = "Vpc";
    const NAMESPACED: bool = false;
}

/// What the operator observed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VpcStatus {
    /// The VNI in use.
    #[serde(default)]
    pub vni: Option<Vni>,
    /// Lifecycle phase.
    #[serde(default)]
    pub phase: Phase,
    /// Droplets holding the divider role, sorted.
    #[serde(default)]
    pub dividers: Vec<DropletName>,
    /// Conditions such as `Placed`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}
