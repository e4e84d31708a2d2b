//! `Subnet`: a range of a VPC whose endpoint directory lives on its bouncers (cluster-scoped).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CIDR_PATTERN, Condition, IPV4_PATTERN, Phase, SUBDOMAIN_PATTERN, default_one};

/// What the user asks for: `spec` of `alkaid.dev/v1alpha1 Subnet`.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[kube(
    group = "alkaid.dev",
    version = "v1alpha1",
    kind = "Subnet",
    plural = "subnets",
    shortname = "sn",
    category = "alkaid",
    status = "SubnetStatus",
    derive = "PartialEq",
    doc = "A range of a VPC; its endpoint directory lives on its bouncer droplets.",
    printcolumn(name = "VPC", type_ = "string", json_path = ".spec.vpc"),
    printcolumn(name = "CIDR", type_ = "string", json_path = ".spec.cidr"),
    printcolumn(name = "Bouncers", type_ = "integer", json_path = ".spec.bouncers"),
    printcolumn(name = "Allocated", type_ = "integer", json_path = ".status.allocated"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("!has(self.gateway) || cidr(self.cidr).containsIP(self.gateway)")
        .message("gateway must be inside cidr")
)]
#[serde(rename_all = "camelCase")]
pub struct SubnetSpec {
    /// The VPC it belongs to. Immutable.
    #[schemars(regex(pattern = SUBDOMAIN_PATTERN), length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("vpc is immutable: create a new Subnet instead"))]
    pub vpc: String,
    /// Its range (/8 to /29), inside the VPC's and not overlapping a sibling. Immutable.
    #[schemars(regex(pattern = CIDR_PATTERN), length(max = 18))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("cidr is immutable: create a new Subnet instead"))]
    pub cidr: String,
    /// How many bouncer droplets hold its endpoint directory (1..=16).
    #[serde(default = "default_one")]
    #[schemars(range(min = 1, max = 16))]
    pub bouncers: u32,
    /// The gateway address; the first host address when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = IPV4_PATTERN), length(max = 15))]
    pub gateway: Option<String>,
}

/// What the operator observed: `status` of a `Subnet`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubnetStatus {
    /// Lifecycle phase.
    #[serde(default)]
    pub phase: Phase,
    /// Droplets holding the bouncer role, sorted.
    #[serde(default)]
    pub bouncers: Vec<String>,
    /// The gateway in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Endpoints allocated.
    #[serde(default)]
    pub allocated: u64,
    /// Allocatable addresses (size minus network, gateway, broadcast).
    #[serde(default)]
    pub capacity: u64,
    /// Conditions such as `Accepted` and `Placed`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
