//! Spec validation that needs no cluster state beyond what callers pass in. Checks that need
//! the state (unknown VPC, overlaps, duplicate VNI, immutability) live with the commands and
//! use these helpers.

use std::net::Ipv4Addr;

use crate::error::{Error, Result};
use crate::resource::{SubnetSpec, VpcSpec};
use crate::types::Ipv4Cidr;

/// Shortest VPC prefix: keeps endpoint MACs collision-free inside a VPC (24 IP bits).
pub const VPC_PREFIX_MIN: u8 = 8;
/// Longest VPC prefix: leaves room for one smallest subnet.
pub const VPC_PREFIX_MAX: u8 = 28;
/// Shortest subnet prefix.
pub const SUBNET_PREFIX_MIN: u8 = 8;
/// Longest subnet prefix: network, gateway, broadcast and at least one endpoint.
pub const SUBNET_PREFIX_MAX: u8 = 29;
/// Allowed range of `dividers` and `bouncers`.
pub const ROLE_COUNT: std::ops::RangeInclusive<u32> = 1..=16;

/// Checks a DNS-1123 label (namespaces): at most 63 of `[a-z0-9-]`, alphanumeric at both ends.
///
/// # Errors
/// [`Error::InvalidName`] naming the rule broken.
pub fn dns1123_label(kind: &'static str, name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidName {
            kind,
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it must not be empty");
    }
    if name.len() > 63 {
        return bad("it must be at most 63 characters");
    }
    label_chars(name).map_or(Ok(()), bad)
}

/// Checks a DNS-1123 subdomain (object names): at most 253 characters, dot-separated labels.
///
/// # Errors
/// [`Error::InvalidName`] naming the rule broken.
pub fn dns1123_subdomain(kind: &'static str, name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidName {
            kind,
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it must not be empty");
    }
    if name.len() > 253 {
        return bad("it must be at most 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return bad("dots must separate non-empty parts");
        }
        if let Some(reason) = label_chars(label) {
            return bad(reason);
        }
    }
    Ok(())
}

fn label_chars(label: &str) -> Option<&'static str> {
    if !label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("use only lowercase letters, digits and '-'");
    }
    let ends_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    if !ends_ok(label.bytes().next()) || !ends_ok(label.bytes().last()) {
        return Some("it must start and end with a letter or digit");
    }
    None
}

fn prefix(kind: &'static str, name: &str, cidr: Ipv4Cidr, min: u8, max: u8) -> Result<()> {
    let p = cidr.prefix_len();
    if (min..=max).contains(&p) {
        Ok(())
    } else {
        Err(Error::PrefixOutOfRange {
            kind,
            name: name.to_owned(),
            cidr: cidr.to_string(),
            prefix: p,
            min,
            max,
        })
    }
}

fn count(kind: &'static str, name: &str, field: &'static str, value: u32) -> Result<()> {
    if ROLE_COUNT.contains(&value) {
        Ok(())
    } else {
        Err(Error::CountOutOfRange {
            kind,
            name: name.to_owned(),
            field,
            value,
            min: *ROLE_COUNT.start(),
            max: *ROLE_COUNT.end(),
        })
    }
}

/// Checks a VPC on its own: name, prefix range, divider count, namespace names.
///
/// # Errors
/// The first rule broken.
pub fn vpc(name: &str, spec: &VpcSpec) -> Result<()> {
    dns1123_subdomain("vpc", name)?;
    prefix("vpc", name, spec.cidr, VPC_PREFIX_MIN, VPC_PREFIX_MAX)?;
    count("vpc", name, "dividers", spec.dividers)?;
    for ns in &spec.namespaces {
        dns1123_label("namespace", ns)?;
    }
    Ok(())
}

/// Checks a subnet against its VPC's CIDR and returns the gateway it will use.
///
/// # Errors
/// The first rule broken: name, prefix, count, containment, gateway.
pub fn subnet(name: &str, spec: &SubnetSpec, vpc_cidr: Ipv4Cidr) -> Result<Ipv4Addr> {
    dns1123_subdomain("subnet", name)?;
    prefix(
        "subnet",
        name,
        spec.cidr,
        SUBNET_PREFIX_MIN,
        SUBNET_PREFIX_MAX,
    )?;
    count("subnet", name, "bouncers", spec.bouncers)?;
    if !vpc_cidr.contains_cidr(spec.cidr) {
        return Err(Error::SubnetOutsideVpc {
            subnet: name.to_owned(),
            cidr: spec.cidr.to_string(),
            vpc: spec.vpc.clone(),
            vpc_cidr: vpc_cidr.to_string(),
        });
    }
    gateway(name, spec.cidr, spec.gateway)
}

/// The gateway of a subnet: `requested` if it is a host address of `cidr`, else the first host.
///
/// # Errors
/// [`Error::GatewayOutsideSubnet`] or [`Error::GatewayReserved`].
pub fn gateway(name: &str, cidr: Ipv4Cidr, requested: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
    let Some(gw) = requested else {
        return Ok(cidr.addr_at(1));
    };
    if !cidr.contains(gw) {
        return Err(Error::GatewayOutsideSubnet {
            subnet: name.to_owned(),
            gateway: gw,
            cidr: cidr.to_string(),
        });
    }
    let what = if gw == cidr.network() {
        "network"
    } else if gw == cidr.broadcast() {
        "broadcast"
    } else {
        return Ok(gw);
    };
    Err(Error::GatewayReserved {
        subnet: name.to_owned(),
        gateway: gw,
        what,
    })
}

/// Checks that `cidr` overlaps none of `siblings` (the other subnets of the same VPC).
///
/// # Errors
/// [`Error::SubnetOverlap`] naming the first sibling overlapped.
pub fn no_overlap<'a>(
    name: &str,
    vpc: &str,
    cidr: Ipv4Cidr,
    siblings: impl IntoIterator<Item = (&'a str, Ipv4Cidr)>,
) -> Result<()> {
    for (other, other_cidr) in siblings {
        if other != name && cidr.overlaps(other_cidr) {
            return Err(Error::SubnetOverlap {
                subnet: name.to_owned(),
                cidr: cidr.to_string(),
                other: other.to_owned(),
                other_cidr: other_cidr.to_string(),
                vpc: vpc.to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
