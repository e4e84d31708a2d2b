//! Conversions between `alkaid.v1` messages and the agent's types, each naming the bad field.

use std::net::Ipv4Addr;

use alkaid_model::table::{
    EndpointEntry, FenceEntry, LocalEndpoint, NetworkEntry, PeerEntry, VpcEntry,
};
use alkaid_model::{EndpointKey, Ipv4Cidr, MacAddr, RowKey, RowValue, Vni};
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

/// A table row as the agent holds it: a model key and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row(pub RowKey, pub RowValue);

/// A model row key, convertible to and from `alkaid.v1.RowKey`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key(pub RowKey);

fn vni(field: &'static str, v: u32) -> Result<Vni> {
    Vni::new(u64::from(v)).map_err(|e| invalid(field, e.to_string()))
}

fn cidr(field: &'static str, c: &pb::VniCidr) -> Result<Ipv4Cidr> {
    let len = u8::try_from(c.prefix_len)
        .map_err(|_| invalid(field, format!("prefix {} > 32", c.prefix_len)))?;
    Ipv4Cidr::new(Ipv4Addr::from(c.ip), len).map_err(|e| invalid(field, e.to_string()))
}

fn mac6(field: &'static str, b: &[u8]) -> Result<MacAddr> {
    <[u8; 6]>::try_from(b)
        .map(MacAddr)
        .map_err(|_| invalid(field, format!("{} bytes, expected 6", b.len())))
}

fn ips(v: &[u32]) -> Vec<Ipv4Addr> {
    v.iter().map(|i| Ipv4Addr::from(*i)).collect()
}

impl TryFrom<&pb::RowKey> for Key {
    type Error = Error;

    fn try_from(k: &pb::RowKey) -> Result<Self> {
        use pb::row_key::Key as K;
        Ok(Key(
            match k.key.as_ref().ok_or_else(|| invalid("key", "missing"))? {
                K::LocalEndpoint(v) => RowKey::LocalEndpoint {
                    vni: vni("key.local_endpoint.vni", v.vni)?,
                    ip: Ipv4Addr::from(v.ip),
                },
                K::Endpoint(v) => RowKey::Endpoint {
                    vni: vni("key.endpoint.vni", v.vni)?,
                    ip: Ipv4Addr::from(v.ip),
                },
                K::Network(v) => RowKey::Network {
                    vni: vni("key.network.vni", v.vni)?,
                    cidr: cidr("key.network", v)?,
                },
                K::Vpc(v) => RowKey::Vpc {
                    vni: vni("key.vpc", *v)?,
                },
                K::Peer(ip) => RowKey::Peer {
                    ip: Ipv4Addr::from(*ip),
                },
                K::Fence(ip) => RowKey::Fence {
                    ip: Ipv4Addr::from(*ip),
                },
            },
        ))
    }
}

impl From<&Key> for pb::RowKey {
    fn from(k: &Key) -> Self {
        use pb::row_key::Key as K;
        let key = match &k.0 {
            RowKey::LocalEndpoint { vni, ip } => K::LocalEndpoint(pb::VniIp {
                vni: vni.get(),
                ip: u32::from(*ip),
            }),
            RowKey::Endpoint { vni, ip } => K::Endpoint(pb::VniIp {
                vni: vni.get(),
                ip: u32::from(*ip),
            }),
            RowKey::Network { vni, cidr } => K::Network(pb::VniCidr {
                vni: vni.get(),
                ip: u32::from(cidr.network()),
                prefix_len: u32::from(cidr.prefix_len()),
            }),
            RowKey::Vpc { vni } => K::Vpc(vni.get()),
            RowKey::Peer { ip } => K::Peer(u32::from(*ip)),
            RowKey::Fence { ip } => K::Fence(u32::from(*ip)),
        };
        pb::RowKey { key: Some(key) }
    }
}

impl TryFrom<&pb::Row> for Row {
    type Error = Error;

    fn try_from(r: &pb::Row) -> Result<Self> {
        use pb::row::Value as V;
        let Key(key) = Key::try_from(
            r.key
                .as_ref()
                .ok_or_else(|| invalid("row.key", "missing"))?,
        )?;
        let value = match (
            &key,
            r.value
                .as_ref()
                .ok_or_else(|| invalid("row.value", "missing"))?,
        ) {
            (RowKey::LocalEndpoint { .. }, V::LocalEndpoint(v)) => {
                let subnet = v
                    .subnet
                    .as_ref()
                    .ok_or_else(|| invalid("row.local_endpoint.subnet", "missing"))?;
                RowValue::LocalEndpoint(LocalEndpoint {
                    mac: mac6("row.local_endpoint.mac", &v.mac)?,
                    subnet_cidr: cidr("row.local_endpoint.subnet", subnet)?,
                    gateway: Ipv4Addr::from(v.gateway),
                    endpoint: EndpointKey::new(v.namespace.clone(), v.name.clone()),
                })
            }
            (RowKey::Endpoint { .. }, V::Endpoint(v)) => RowValue::Endpoint(EndpointEntry {
                droplet_ip: Ipv4Addr::from(v.droplet_ip),
                mac: mac6("row.endpoint.mac", &v.mac)?,
            }),
            (RowKey::Network { .. }, V::Network(v)) => RowValue::Network(NetworkEntry {
                bouncers: ips(&v.bouncers),
                gateway: Ipv4Addr::from(v.gateway),
            }),
            (RowKey::Vpc { .. }, V::Vpc(v)) => RowValue::Vpc(VpcEntry {
                dividers: ips(&v.dividers),
            }),
            (RowKey::Peer { .. }, V::Peer(v)) => RowValue::Peer(PeerEntry {
                mac: mac6("row.peer.mac", &v.mac)?,
            }),
            (RowKey::Fence { .. }, V::Fence(_)) => RowValue::Fence(FenceEntry {}),
            _ => return Err(invalid("row.value", "its kind does not match the key's")),
        };
        Ok(Row(key, value))
    }
}

impl From<&Row> for pb::Row {
    fn from(r: &Row) -> Self {
        use pb::row::Value as V;
        let value = match &r.1 {
            RowValue::LocalEndpoint(v) => V::LocalEndpoint(pb::LocalEndpointEntry {
                mac: v.mac.0.to_vec(),
                subnet: Some(pb::VniCidr {
                    vni: r.0.vni(),
                    ip: u32::from(v.subnet_cidr.network()),
                    prefix_len: u32::from(v.subnet_cidr.prefix_len()),
                }),
                gateway: u32::from(v.gateway),
                namespace: v.endpoint.namespace.clone(),
                name: v.endpoint.name.clone(),
            }),
            RowValue::Endpoint(v) => V::Endpoint(pb::EndpointEntry {
                droplet_ip: u32::from(v.droplet_ip),
                mac: v.mac.0.to_vec(),
            }),
            RowValue::Network(v) => V::Network(pb::NetworkEntry {
                bouncers: v.bouncers.iter().map(|i| u32::from(*i)).collect(),
                gateway: u32::from(v.gateway),
            }),
            RowValue::Vpc(v) => V::Vpc(pb::VpcEntry {
                dividers: v.dividers.iter().map(|i| u32::from(*i)).collect(),
            }),
            RowValue::Peer(v) => V::Peer(pb::PeerEntry {
                mac: v.mac.0.to_vec(),
            }),
            RowValue::Fence(_) => V::Fence(pb::FenceEntry {}),
        };
        pb::Row {
            key: Some(pb::RowKey::from(&Key(r.0.clone()))),
            value: Some(value),
        }
    }
}

#[cfg(test)]
mod tests;
