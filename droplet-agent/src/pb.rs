//! Conversions between `alkaid.v1` messages and the agent's types, each naming the bad field.

use std::net::Ipv4Addr;

use alkaid_proto::v1 as pb;
use ipnet::Ipv4Net;

use crate::alloc::Allocation;
use crate::error::{Error, Result};

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidField {
        field,
        reason: reason.into(),
    }
}

/// Parses a MAC written `aa:bb:cc:dd:ee:ff`.
///
/// # Errors
/// [`Error::InvalidField`] naming `field`.
pub fn parse_mac(field: &'static str, s: &str) -> Result<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err(invalid(field, format!("{s:?} is not a MAC address")));
    }
    for (b, p) in mac.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16)
            .map_err(|_| invalid(field, format!("{s:?} is not a MAC address")))?;
    }
    Ok(mac)
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The allocation in an `AllocateEndpointResponse`.
///
/// # Errors
/// [`Error::InvalidField`] naming the missing or malformed field.
pub fn allocation_from_pb(resp: &pb::AllocateEndpointResponse) -> Result<Allocation> {
    let spec = resp
        .endpoint
        .as_ref()
        .and_then(|e| e.spec.as_ref())
        .ok_or_else(|| invalid("endpoint.spec", "missing"))?;
    let ip: Ipv4Addr = spec.ip.parse().map_err(|_| {
        invalid(
            "endpoint.spec.ip",
            format!("{:?} is not an IPv4 address", spec.ip),
        )
    })?;
    let prefix = u8::try_from(resp.prefix_len)
        .ok()
        .filter(|p| (1..=32).contains(p))
        .ok_or_else(|| invalid("prefix_len", format!("{} is not 1..=32", resp.prefix_len)))?;
    let gateway: Ipv4Addr = resp.gateway.parse().map_err(|_| {
        invalid(
            "gateway",
            format!("{:?} is not an IPv4 address", resp.gateway),
        )
    })?;
    if resp.vni == 0 || resp.vni > 0x00ff_ffff {
        return Err(invalid("vni", format!("{} is not 1..=16777215", resp.vni)));
    }
    let mac = if spec.mac.is_empty() {
        None
    } else {
        Some(parse_mac("endpoint.spec.mac", &spec.mac)?)
    };
    Ok(Allocation {
        address: Ipv4Net::new(ip, prefix).map_err(|e| invalid("prefix_len", e.to_string()))?,
        gateway,
        vni: resp.vni,
        mac,
        droplet_version: resp.droplet_version,
    })
}
