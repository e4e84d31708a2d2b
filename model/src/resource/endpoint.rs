//! `Endpoint`: one pod (or VM, or netns) interface in a subnet, on a droplet.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::{Kind, Object, Phase};
use crate::types::{DropletName, MacAddr};

/// An Endpoint resource (namespaced, in the pod's namespace).
pub type Endpoint = Object<EndpointSpec, EndpointStatus>;

/// Where the endpoint is and what it was given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSpec {
    /// Its VPC.
    pub vpc: String,
    /// Its subnet.
    pub subnet: String,
    /// The droplet hosting it.
    pub droplet: DropletName,
    /// Its allocated address.
    pub ip: Ipv4Addr,
    /// Its MAC, derived from (VNI, IP).
    pub mac: MacAddr,
    /// The pod (or workload) it belongs to.
    pub pod: String,
}

impl Kind for EndpointSpec {
    const KIND: &'static str = "Endpoint";
    const NAMESPACED: bool = true;
}

/// What the operator observed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointStatus {
    /// Lifecycle phase.
    #[serde(default)]
    pub phase: Phase,
    /// Droplets that hold it and have acknowledged, sorted.
    #[serde(default)]
    pub programmed_on: Vec<DropletName>,
}
