//! `Endpoint`: one pod interface in a subnet, on a droplet (namespaced: the pod's namespace).
//! Written by the operator's endpoint mirror from what the CNI path recorded in the store.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, IPV4_PATTERN, MAC_PATTERN, Phase, SUBDOMAIN_PATTERN};

/// Where the endpoint is and what it was given: `spec` of `alkaid.dev/v1alpha1 Endpoint`.
#[derive(CustomResource, JsonSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[kube(
    group = "alkaid.dev",
    version = "v1alpha1",
    kind = "Endpoint",
    plural = "endpoints",
    shortname = "aep",
    category = "alkaid",
    namespaced,
    status = "EndpointStatus",
    derive = "PartialEq",
    doc = "One pod interface in a subnet, on a droplet (written by the operator).",
    printcolumn(name = "Pod", type_ = "string", json_path = ".spec.pod"),
    printcolumn(name = "VPC", type_ = "string", json_path = ".spec.vpc"),
    printcolumn(name = "Subnet", type_ = "string", json_path = ".spec.subnet"),
    printcolumn(name = "IP", type_ = "string", json_path = ".spec.ip"),
    printcolumn(name = "Droplet", type_ = "string", json_path = ".spec.droplet"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase")
)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSpec {
    /// Its VPC.
    #[schemars(regex(pattern = SUBDOMAIN_PATTERN), length(min = 1, max = 253))]
    pub vpc: String,
    /// Its subnet.
    #[schemars(regex(pattern = SUBDOMAIN_PATTERN), length(min = 1, max = 253))]
    pub subnet: String,
    /// The droplet hosting it.
    #[schemars(regex(pattern = SUBDOMAIN_PATTERN), length(min = 1, max = 253))]
    pub droplet: String,
    /// Its allocated address.
    #[schemars(regex(pattern = IPV4_PATTERN), length(max = 15))]
    pub ip: String,
    /// Its MAC, derived from (VNI, IP).
    #[schemars(regex(pattern = MAC_PATTERN), length(max = 17))]
    pub mac: String,
    /// The pod (or workload) it belongs to.
    #[schemars(length(min = 1, max = 253))]
    pub pod: String,
}

/// What the operator observed: `status` of an `Endpoint`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointStatus {
    /// Lifecycle phase.
    #[serde(default)]
    pub phase: Phase,
    /// Droplets that hold it and have acknowledged, sorted.
    #[serde(default)]
    pub programmed_on: Vec<String>,
    /// Conditions reported by the store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
