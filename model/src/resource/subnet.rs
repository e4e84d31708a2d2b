//! `Subnet`: a range of a VPC whose endpoint directory lives on its bouncers.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::{Condition, Kind, Object, Phase};
use crate::types::{DropletName, Ipv4Cidr};

/// A Subnet resource.
pub type Subnet = Object<SubnetSpec, SubnetStatus>;

/// Default number of bouncers per subnet.
pub const DEFAULT_BOUNCERS: u32 = 1;

fn default_bouncers() -> u32 {
    DEFAULT_BOUNCERS
}

/// What the user asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetSpec {
    /// The VPC it belongs to.
    pub vpc: String,
    /// Its range (/8 to /29), inside the VPC's and not overlapping a sibling.
    pub cidr: Ipv4Cidr,
    /// How many bouncer droplets hold its endpoint directory (1..=16).
    #[serde(default = "default_bouncers")]
    pub bouncers: u32,
    /// The gateway address; the first host address when absent.
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
}

impl SubnetSpec {
    /// A spec with defaults for everything but the VPC and CIDR.
    pub fn new(vpc: impl Into<String>, cidr: Ipv4Cidr) -> Self {
        Self {
            vpc: vpc.into(),
            cidr,
            bouncers: DEFAULT_BOUNCERS,
            gateway: None,
        }
    }
}

impl Kind for SubnetSpec {
    const KIND: &'static str = "Subnet";
    const NAMESPACED: bool = false;
}

/// What the operator observed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetStatus {
    /// Lifecycle phase.
    #[serde(default)]
    pub phase: Phase,
    /// Droplets holding the bouncer role, sorted.
    #[serde(default)]
    pub bouncers: Vec<DropletName>,
    /// The gateway in use.
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// Endpoints allocated.
    #[serde(default)]
    pub allocated: u64,
    /// Allocatable addresses (size minus network, gateway, broadcast).
    #[serde(default)]
    pub capacity: u64,
    /// Conditions such as `Placed`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}
