//! `Vpc`: an isolated tenant address space with its own VNI (cluster-scoped).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CIDR_PATTERN, Condition, LABEL_PATTERN, Phase, default_one};

/// What the user asks for: `spec` of `alkaid.dev/v1alpha1 Vpc`.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[kube(
    group = "alkaid.dev",
    version = "v1alpha1",
    kind = "Vpc",
    plural = "vpcs",
    shortname = "vpc",
    category = "alkaid",
    status = "VpcStatus",
    derive = "PartialEq",
    doc = "An isolated tenant address space; two VPCs may use the same CIDR.",
    printcolumn(name = "CIDR", type_ = "string", json_path = ".spec.cidr"),
    printcolumn(name = "VNI", type_ = "integer", json_path = ".status.vni"),
    printcolumn(name = "Dividers", type_ = "integer", json_path = ".spec.dividers"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct VpcSpec {
    /// The VPC's address range (/8 to /28); may overlap other VPCs. Immutable.
    #[schemars(regex(pattern = CIDR_PATTERN), length(max = 18))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("cidr is immutable: create a new Vpc instead"))]
    pub cidr: String,
    /// How many divider droplets hold the VPC's subnet table (1..=16).
    #[serde(default = "default_one")]
    #[schemars(range(min = 1, max = 16))]
    pub dividers: u32,
    /// A chosen VNI (1..=16777215); allocated when absent. Immutable once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16_777_215))]
    pub vni: Option<u32>,
    /// Tenant namespaces whose pods join this VPC unless annotated otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = LABEL_PATTERN), length(max = 63)), length(max = 256))]
    pub namespaces: Vec<String>,
}

/// What the operator observed: `status` of a `Vpc`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VpcStatus {
    /// The VNI in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    /// Lifecycle phase.
    #[serde(default)]
    pub phase: Phase,
    /// Droplets holding the divider role, sorted.
    #[serde(default)]
    pub dividers: Vec<String>,
    /// Conditions such as `Accepted` and `Placed`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
