//! `Bouncer`: one droplet holding one subnet's endpoint directory (cluster-scoped,
//! operator-written, mirrored from the store; users only read it).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{RoleStatus, SUBDOMAIN_PATTERN};

/// Where a bouncer is: `spec` of `alkaid.dev/v1alpha1 Bouncer`.
#[derive(CustomResource, JsonSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[kube(
    group = "alkaid.dev",
    version = "v1alpha1",
    kind = "Bouncer",
    plural = "bouncers",
    category = "alkaid",
    status = "RoleStatus",
    derive = "PartialEq",
    doc = "One droplet holding one subnet's endpoint directory (written by the operator).",
    printcolumn(name = "Subnet", type_ = "string", json_path = ".spec.subnet"),
    printcolumn(name = "Droplet", type_ = "string", json_path = ".spec.droplet"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase")
)]
#[serde(rename_all = "camelCase")]
pub struct BouncerSpec {
    /// The subnet served.
    #[schemars(regex(pattern = SUBDOMAIN_PATTERN), length(min = 1, max = 253))]
    pub subnet: String,
    /// The droplet holding the role.
    #[schemars(regex(pattern = SUBDOMAIN_PATTERN), length(min = 1, max = 253))]
    pub droplet: String,
}
