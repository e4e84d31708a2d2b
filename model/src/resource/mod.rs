//! Resource kinds in the shape of the Kubernetes custom resources (group `alkaid.dev`,
//! version `v1alpha1`), one file per kind, and [`Resource`], which reads any of them.

mod droplet;
mod endpoint;
mod meta;
mod role;
mod subnet;
mod vpc;

use serde::{Deserialize, Serialize, Serializer};

pub use droplet::{Droplet, DropletPhase, DropletSpec, DropletStatus};
pub use endpoint::{Endpoint, EndpointSpec, EndpointStatus};
pub use meta::{API_VERSION, Condition, GROUP, Kind, Object, ObjectMeta, Phase, VERSION};
pub use role::{
    Bouncer, BouncerSpec, Divider, DividerSpec, RoleStatus, bouncer_name, divider_name,
};
pub use subnet::{DEFAULT_BOUNCERS, Subnet, SubnetSpec, SubnetStatus};
pub use vpc::{DEFAULT_DIVIDERS, Vpc, VpcSpec, VpcStatus};

/// Any resource, read by its `kind` field (e.g. one document of `alkaid apply -f`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind")]
pub enum Resource {
    /// A VPC.
    Vpc(Vpc),
    /// A subnet.
    Subnet(Subnet),
    /// A bouncer placement.
    Bouncer(Bouncer),
    /// A divider placement.
    Divider(Divider),
    /// A droplet.
    Droplet(Droplet),
    /// An endpoint.
    Endpoint(Endpoint),
}

impl Resource {
    /// The `kind` string.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Vpc(_) => VpcSpec::KIND,
            Self::Subnet(_) => SubnetSpec::KIND,
            Self::Bouncer(_) => BouncerSpec::KIND,
            Self::Divider(_) => DividerSpec::KIND,
            Self::Droplet(_) => DropletSpec::KIND,
            Self::Endpoint(_) => EndpointSpec::KIND,
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Self::Vpc(o) => &o.metadata,
            Self::Subnet(o) => &o.metadata,
            Self::Bouncer(o) => &o.metadata,
            Self::Divider(o) => &o.metadata,
            Self::Droplet(o) => &o.metadata,
            Self::Endpoint(o) => &o.metadata,
        }
    }
}

impl Serialize for Resource {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Each object writes its own `kind`, so the enum adds no tag of its own.
        match self {
            Self::Vpc(o) => o.serialize(s),
            Self::Subnet(o) => o.serialize(s),
            Self::Bouncer(o) => o.serialize(s),
            Self::Divider(o) => o.serialize(s),
            Self::Droplet(o) => o.serialize(s),
            Self::Endpoint(o) => o.serialize(s),
        }
    }
}
