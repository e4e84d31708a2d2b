//! Predicted per-droplet tables in the JSON shape `alkaid lab tables DROPLET -o json` is to
//! print: one object per droplet, its rows flat, every row carrying its `vni` (0 for the
//! substrate `peer` rows). The cross-check against a real lab compares these rows with the
//! lab's; it is pending until the lab exists.

use alkaid_model::{ClusterState, RowKey, RowValue, Table};
use serde::{Deserialize, Serialize};

/// One map row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Row {
    /// An endpoint hosted here (ENDPOINTS with the local flag, and AGENT_ENDPOINTS).
    LocalEndpoint {
        /// VPC.
        vni: u32,
        /// Endpoint address.
        ip: String,
        /// Endpoint MAC.
        mac: String,
        /// Its subnet.
        subnet_cidr: String,
        /// Its gateway.
        gateway: String,
    },
    /// A bouncer directory row (ENDPOINTS).
    Endpoint {
        /// VPC.
        vni: u32,
        /// Endpoint address.
        ip: String,
        /// Droplet hosting it.
        droplet_ip: String,
        /// Endpoint MAC.
        mac: String,
    },
    /// A subnet's bouncers (NETWORKS).
    Network {
        /// VPC.
        vni: u32,
        /// Subnet.
        cidr: String,
        /// Bouncer droplets, sorted.
        bouncers: Vec<String>,
        /// Gateway.
        gateway: String,
    },
    /// A VPC's dividers (VPCS).
    Vpc {
        /// VPC.
        vni: u32,
        /// Divider droplets, sorted.
        dividers: Vec<String>,
    },
    /// Another droplet's underlay MAC (PEERS); `vni` is 0.
    Peer {
        /// Always 0 (substrate).
        vni: u32,
        /// Its underlay address.
        ip: String,
        /// Its MAC.
        mac: String,
    },
}

/// One droplet's predicted tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropletTables {
    /// Droplet name.
    pub droplet: String,
    /// Table version in the model.
    pub version: u64,
    /// Rows in key order.
    pub rows: Vec<Row>,
}

fn ips(v: &[std::net::Ipv4Addr]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

/// Converts one row; `None` if key and value kinds disagree (never for model tables).
pub fn row(key: &RowKey, value: &RowValue) -> Option<Row> {
    let vni = key.vni();
    Some(match (key, value) {
        (RowKey::LocalEndpoint { ip, .. }, RowValue::LocalEndpoint(v)) => Row::LocalEndpoint {
            vni,
            ip: ip.to_string(),
            mac: v.mac.to_string(),
            subnet_cidr: v.subnet_cidr.to_string(),
            gateway: v.gateway.to_string(),
        },
        (RowKey::Endpoint { ip, .. }, RowValue::Endpoint(v)) => Row::Endpoint {
            vni,
            ip: ip.to_string(),
            droplet_ip: v.droplet_ip.to_string(),
            mac: v.mac.to_string(),
        },
        (RowKey::Network { cidr, .. }, RowValue::Network(v)) => Row::Network {
            vni,
            cidr: cidr.to_string(),
            bouncers: ips(&v.bouncers),
            gateway: v.gateway.to_string(),
        },
        (RowKey::Vpc { .. }, RowValue::Vpc(v)) => Row::Vpc {
            vni,
            dividers: ips(&v.dividers),
        },
        (RowKey::Peer { ip }, RowValue::Peer(v)) => Row::Peer {
            vni,
            ip: ip.to_string(),
            mac: v.mac.to_string(),
        },
        _ => return None,
    })
}

/// The rows of `table` in the lab's shape.
pub fn rows(table: &Table) -> Vec<Row> {
    table.rows().iter().filter_map(|(k, v)| row(k, v)).collect()
}

/// `droplet`'s tables as the model holds them now.
pub fn droplet_tables(state: &ClusterState, droplet: &str) -> Option<DropletTables> {
    let table = state.table(droplet)?;
    Some(DropletTables {
        droplet: droplet.to_owned(),
        version: state.version(droplet),
        rows: rows(table),
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use alkaid_model::table::{PeerEntry, VpcEntry};
    use alkaid_model::{MacAddr, Vni};

    use super::*;

    #[test]
    fn every_row_carries_its_vni() {
        let t: Table = [
            (
                RowKey::Vpc {
                    vni: Vni::new(7).unwrap(),
                },
                RowValue::Vpc(VpcEntry {
                    dividers: vec![Ipv4Addr::new(172, 16, 0, 2)],
                }),
            ),
            (
                RowKey::Peer {
                    ip: Ipv4Addr::new(172, 16, 0, 2),
                },
                RowValue::Peer(PeerEntry {
                    mac: MacAddr([2, 0, 0, 0, 0, 2]),
                }),
            ),
        ]
        .into_iter()
        .collect();
        let json = serde_json::to_value(rows(&t)).unwrap();
        let arr = json.as_array().unwrap();
        assert_eq!(arr.len(), 2);
        assert_eq!(arr[0]["kind"], "vpc");
        assert_eq!(arr[0]["vni"], 7);
        assert_eq!(arr[1]["kind"], "peer");
        assert_eq!(arr[1]["vni"], 0);
        assert!(arr.iter().all(|r| r.get("vni").is_some()));
    }
}
