//! Resource kinds as users type them (`vpcs`, `vpc`, `v`, ...) and as the wire knows them.

use alkaid_proto::v1 as pb;

use crate::error::{Error, Result};

/// One of the six resource kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `Vpc`.
    Vpc,
    /// `Subnet`.
    Subnet,
    /// `Bouncer`.
    Bouncer,
    /// `Divider`.
    Divider,
    /// `Droplet`.
    Droplet,
    /// `Endpoint`.
    Endpoint,
}

impl Kind {
    /// Every kind, in display order.
    pub const ALL: [Kind; 6] = [
        Kind::Vpc,
        Kind::Subnet,
        Kind::Bouncer,
        Kind::Divider,
        Kind::Droplet,
        Kind::Endpoint,
    ];

    /// Reads `vpcs`, `vpc`, `Vpc`, `v`, ... (plural, singular, short, any case).
    ///
    /// # Errors
    /// [`Error::Usage`] listing the known kinds.
    pub fn parse(s: &str) -> Result<Self> {
        let k = match s.to_ascii_lowercase().as_str() {
            "vpcs" | "vpc" | "v" => Kind::Vpc,
            "subnets" | "subnet" | "sn" | "net" => Kind::Subnet,
            "bouncers" | "bouncer" | "b" | "bo" => Kind::Bouncer,
            "dividers" | "divider" | "dv" | "div" => Kind::Divider,
            "droplets" | "droplet" | "dr" | "d" => Kind::Droplet,
            "endpoints" | "endpoint" | "ep" | "eps" => Kind::Endpoint,
            _ => {
                return Err(Error::Usage(format!(
                    "unknown resource kind {s:?}: use one of vpcs, subnets, bouncers, dividers, droplets, endpoints"
                )));
            }
        };
        Ok(k)
    }

    /// The `kind` field, e.g. `Vpc`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Vpc => "Vpc",
            Kind::Subnet => "Subnet",
            Kind::Bouncer => "Bouncer",
            Kind::Divider => "Divider",
            Kind::Droplet => "Droplet",
            Kind::Endpoint => "Endpoint",
        }
    }

    /// The plural users type, e.g. `vpcs`.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Vpc => "vpcs",
            Kind::Subnet => "subnets",
            Kind::Bouncer => "bouncers",
            Kind::Divider => "dividers",
            Kind::Droplet => "droplets",
            Kind::Endpoint => "endpoints",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        self == Kind::Endpoint
    }

    /// The wire enum.
    pub fn pb(self) -> pb::Kind {
        match self {
            Kind::Vpc => pb::Kind::Vpc,
            Kind::Subnet => pb::Kind::Subnet,
            Kind::Bouncer => pb::Kind::Bouncer,
            Kind::Divider => pb::Kind::Divider,
            Kind::Droplet => pb::Kind::Droplet,
            Kind::Endpoint => pb::Kind::Endpoint,
        }
    }

    /// The kind of a wire resource.
    pub fn of(r: &pb::Resource) -> Option<Self> {
        use pb::resource::Kind as K;
        Some(match r.kind.as_ref()? {
            K::Vpc(_) => Kind::Vpc,
            K::Subnet(_) => Kind::Subnet,
            K::Bouncer(_) => Kind::Bouncer,
            K::Divider(_) => Kind::Divider,
            K::Droplet(_) => Kind::Droplet,
            K::Endpoint(_) => Kind::Endpoint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve() {
        for (s, k) in [
            ("vpcs", Kind::Vpc),
            ("VPC", Kind::Vpc),
            ("subnet", Kind::Subnet),
            ("bouncers", Kind::Bouncer),
            ("dv", Kind::Divider),
            ("droplet", Kind::Droplet),
            ("ep", Kind::Endpoint),
        ] {
            assert_eq!(Kind::parse(s).unwrap(), k, "{s}");
        }
        let e = Kind::parse("pods").unwrap_err().to_string();
        assert!(e.contains("vpcs, subnets"), "{e}");
    }
}
