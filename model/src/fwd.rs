//! A table-level forwarding simulator: walks a packet through the per-droplet tables with
//! the rules the XDP programs follow, and nothing else (the state is consulted only to find
//! the sender and to map underlay addresses to droplet names).
//!
//! At the sender's droplet: a `LocalEndpoint` for (vni, dst) delivers locally; otherwise the
//! `Network` row of the sender's own subnet names its bouncers, one picked by flow hash.
//! At every later droplet, in order: `LocalEndpoint` delivers; an `Endpoint` row forwards to
//! the hosting droplet; the longest-prefix `Network` row forwards to that subnet's bouncers
//! (if this droplet is one of them, it is authoritative and the address has no endpoint);
//! the `Vpc` row forwards to a divider (if this droplet is one, there is no such subnet).
//! Every hop to another droplet needs a `Peer` row for its underlay address.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::state::ClusterState;
use crate::table::{RowKey, RowValue, Table};
use crate::types::{DropletName, EndpointKey, Ipv4Cidr, Vni};

/// Hops after which a packet is considered looping.
pub const HOP_LIMIT: usize = 8;

/// What a droplet did with the packet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HopAction {
    /// Sender's droplet: sent to one of its subnet's bouncers (`Network` row).
    ToBouncer,
    /// Forwarded to the droplet hosting the destination (`Endpoint` row).
    Bounce,
    /// Forwarded to the destination subnet's bouncers (`Network` row, longest prefix).
    Divide,
    /// Forwarded to one of the VPC's dividers (`Vpc` row).
    ToDivider,
    /// Delivered to a local endpoint (`LocalEndpoint` row).
    Deliver {
        /// The endpoint reached.
        endpoint: EndpointKey,
    },
}

/// One droplet on the path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    /// The droplet.
    pub droplet: DropletName,
    /// What it did.
    pub action: HopAction,
}

/// Why a packet was dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DropReason {
    /// The sending endpoint does not exist.
    UnknownSender,
    /// A droplet has no row for the destination.
    NoRoute {
        /// Where.
        droplet: DropletName,
    },
    /// The subnet has no bouncer placed.
    NoBouncer {
        /// Where.
        droplet: DropletName,
    },
    /// The VPC has no divider placed.
    NoDivider {
        /// Where.
        droplet: DropletName,
    },
    /// An authoritative bouncer has no endpoint at the destination.
    NoEndpoint {
        /// Where.
        droplet: DropletName,
    },
    /// A droplet lacks the `Peer` row for its next hop.
    NoPeer {
        /// Where.
        droplet: DropletName,
        /// The next hop's underlay address.
        ip: Ipv4Addr,
    },
    /// A next hop's underlay address belongs to no droplet.
    UnknownUnderlay {
        /// The address.
        ip: Ipv4Addr,
    },
    /// More than [`HOP_LIMIT`] hops.
    Loop,
}

fn pick(ips: &[Ipv4Addr], flow_hash: u32) -> Ipv4Addr {
    ips[flow_hash as usize % ips.len()]
}

fn longest_network(table: &Table, vni: Vni, dst: Ipv4Addr) -> Option<(Ipv4Cidr, &RowValue)> {
    let lo = RowKey::Network {
        vni,
        cidr: Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0).expect("valid"),
    };
    let hi = RowKey::Network {
        vni,
        cidr: Ipv4Cidr::new(Ipv4Addr::BROADCAST, 32).expect("valid"),
    };
    table
        .rows()
        .range(lo..=hi)
        .filter_map(|(k, v)| match k {
            RowKey::Network { cidr, .. } if cidr.contains(dst) => Some((*cidr, v)),
            _ => None,
        })
        .max_by_key(|(c, _)| c.prefix_len())
}

/// Walks a packet from endpoint `from` to `dst` in `from`'s VPC.
///
/// # Errors
/// The [`DropReason`] where the tables drop it.
pub fn trace(
    state: &ClusterState,
    from: &EndpointKey,
    dst: Ipv4Addr,
    flow_hash: u32,
) -> Result<Vec<Hop>, DropReason> {
    let sender = state
        .endpoint_allocation(&from.namespace, &from.name)
        .ok_or(DropReason::UnknownSender)?;
    let vni = sender.vni;
    let mut hops = Vec::new();
    let mut cur = sender.droplet.clone();
    let empty = Table::default();
    let table_of = |d: &DropletName| state.table(d.as_str()).unwrap_or(&empty);
    let own_ip = |d: &DropletName| {
        state
            .get_droplet(d.as_str())
            .map(|o| o.spec.ip)
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    };
    let local = |t: &Table| match t.get(&RowKey::LocalEndpoint { vni, ip: dst }) {
        Some(RowValue::LocalEndpoint(le)) => Some(le.endpoint.clone()),
        _ => None,
    };

    // The sender's droplet.
    let t = table_of(&cur);
    if let Some(endpoint) = local(t) {
        hops.push(Hop {
            droplet: cur,
            action: HopAction::Deliver { endpoint },
        });
        return Ok(hops);
    }
    let mut next = match t.get(&RowKey::Network {
        vni,
        cidr: sender.subnet_cidr,
    }) {
        Some(RowValue::Network(n)) if n.bouncers.is_empty() => {
            return Err(DropReason::NoBouncer { droplet: cur });
        }
        Some(RowValue::Network(n)) => pick(&n.bouncers, flow_hash),
        _ => return Err(DropReason::NoRoute { droplet: cur }),
    };
    let mut action = HopAction::ToBouncer;

    for _ in 0..HOP_LIMIT {
        // Leave `cur` towards `next`.
        let me = own_ip(&cur);
        if next != me && table_of(&cur).get(&RowKey::Peer { ip: next }).is_none() {
            return Err(DropReason::NoPeer {
                droplet: cur,
                ip: next,
            });
        }
        hops.push(Hop {
            droplet: cur,
            action,
        });
        cur = state
            .droplet_by_ip(next)
            .cloned()
            .ok_or(DropReason::UnknownUnderlay { ip: next })?;
        let me = next;
        let t = table_of(&cur);
        if let Some(endpoint) = local(t) {
            hops.push(Hop {
                droplet: cur,
                action: HopAction::Deliver { endpoint },
            });
            return Ok(hops);
        }
        if let Some(RowValue::Endpoint(e)) = t.get(&RowKey::Endpoint { vni, ip: dst }) {
            next = e.droplet_ip;
            action = HopAction::Bounce;
            continue;
        }
        if let Some((_, RowValue::Network(n))) = longest_network(t, vni, dst) {
            if n.bouncers.contains(&me) {
                return Err(DropReason::NoEndpoint { droplet: cur });
            }
            if n.bouncers.is_empty() {
                return Err(DropReason::NoBouncer { droplet: cur });
            }
            next = pick(&n.bouncers, flow_hash);
            action = HopAction::Divide;
            continue;
        }
        if let Some(RowValue::Vpc(v)) = t.get(&RowKey::Vpc { vni }) {
            if v.dividers.contains(&me) {
                return Err(DropReason::NoRoute { droplet: cur });
            }
            if v.dividers.is_empty() {
                return Err(DropReason::NoDivider { droplet: cur });
            }
            next = pick(&v.dividers, flow_hash);
            action = HopAction::ToDivider;
            continue;
        }
        return Err(DropReason::NoRoute { droplet: cur });
    }
    Err(DropReason::Loop)
}
