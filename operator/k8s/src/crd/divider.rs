//! `Divider`: one droplet holding one VPC's subnet table (cluster-scoped,
//! operator-written, mirrored from the store; users only read it).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{RoleStatus, SUBDOMAIN_PATTERN};

/// Where a divider is: `spec` of `alkaid.dev/v1alpha1 Divider`.
#[derive(CustomResource, JsonSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[kube(
    group = "alkaid.dev",
    version = "v1alpha1",
    kind = "Divider",
    plural = "dividers",
    category = "alkaid",
    status = "RoleStatus",
    derive = "PartialEq",
    doc = "One droplet holding one VPC's subnet table (written by the operator).",
    printcolumn(name = "VPC", type_ = "string", json_path = ".spec.vpc"),
    printcolumn(name = "Droplet", type_ = "string", json_path = ".spec.droplet"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase")
)]
#[serde(rename_all = "camelCase")]
pub struct DividerSpec {
    /// The VPC served.
    #[schemars(regex(pattern = SUBDOMAIN_PATTERN), length(min = 1, max = 253))]
    pub vpc: String,
    /// The droplet holding the role.
    #[schemars(regex(pattern = SUBDOMAIN_PATTERN), length(min = 1, max = 253))]
    pub droplet: String,
}
