//! Predicted per-droplet tables in the JSON shape of `alkaid lab tables DROPLET -o json`:
//! `{"droplet", "version", "rows": [{"map", "vni", ...}]}`, one row per BPF map entry, every
//! row carrying its `vni` (0 for PEERS). A model `LocalEndpoint` row becomes two map rows
//! (ENDPOINTS with `local: true`, and AGENT_ENDPOINTS). Fields only a running droplet knows
//! (`ifindex`, `pinDir`, counters, learned DIRECT_PATH rows) are left out: a cross-check
//! compares the fields predicted here. The cross-check against a real lab is pending.

use std::net::Ipv4Addr;

use alkaid_model::{ClusterState, RowKey, RowValue, Table};
use serde::{Deserialize, Serialize};

/// One map row, tagged by its map's name as the lab prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "map", rename_all_fields = "camelCase")]
pub enum Row {
    /// ENDPOINTS: a local endpoint (`local`) or a bouncer directory entry.
    #[serde(rename = "ENDPOINTS")]
    Endpoints {
        /// VPC.
        vni: u32,
        /// Endpoint address.
        ip: String,
        /// Droplet hosting it (directory rows only).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        droplet_ip: Option<String>,
        /// That droplet's MAC, cached from PEERS (directory rows only).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        droplet_mac: Option<String>,
        /// Hosted on this droplet.
        local: bool,
        /// Endpoint MAC.
        mac: String,
    },
    /// AGENT_ENDPOINTS: the endpoint behind a local veth.
    #[serde(rename = "AGENT_ENDPOINTS")]
    AgentEndpoints {
        /// VPC.
        vni: u32,
        /// Endpoint address.
        ip: String,
        /// Endpoint MAC.
        mac: String,
        /// Its subnet.
        subnet: String,
        /// Its gateway.
        gateway: String,
    },
    /// NETWORKS: a subnet's bouncers.
    #[serde(rename = "NETWORKS")]
    Networks {
        /// VPC.
        vni: u32,
        /// Subnet.
        cidr: String,
        /// Gateway.
        gateway: String,
        /// Bouncer droplets, sorted.
        bouncers: Vec<String>,
    },
    /// VPCS: a VPC's dividers.
    #[serde(rename = "VPCS")]
    Vpcs {
        /// VPC.
        vni: u32,
        /// Divider droplets, sorted.
        dividers: Vec<String>,
    },
    /// PEERS: another droplet's underlay MAC; `vni` is 0.
    #[serde(rename = "PEERS")]
    Peers {
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
    /// Map rows in model key order.
    pub rows: Vec<Row>,
}

fn ips(v: &[Ipv4Addr]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

/// The map rows of one model row; `mac_of` gives a droplet's MAC by underlay address.
pub fn map_rows(
    key: &RowKey,
    value: &RowValue,
    mac_of: impl Fn(Ipv4Addr) -> Option<String>,
) -> Vec<Row> {
    let vni = key.vni();
    match (key, value) {
        (RowKey::LocalEndpoint { ip, .. }, RowValue::LocalEndpoint(v)) => vec![
            Row::Endpoints {
                vni,
                ip: ip.to_string(),
                droplet_ip: None,
                droplet_mac: None,
                local: true,
                mac: v.mac.to_string(),
            },
            Row::AgentEndpoints {
                vni,
                ip: ip.to_string(),
                mac: v.mac.to_string(),
                subnet: v.subnet_cidr.to_string(),
                gateway: v.gateway.to_string(),
            },
        ],
        (RowKey::Endpoint { ip, .. }, RowValue::Endpoint(v)) => vec![Row::Endpoints {
            vni,
            ip: ip.to_string(),
            droplet_ip: Some(v.droplet_ip.to_string()),
            droplet_mac: mac_of(v.droplet_ip),
            local: false,
            mac: v.mac.to_string(),
        }],
        (RowKey::Network { cidr, .. }, RowValue::Network(v)) => vec![Row::Networks {
            vni,
            cidr: cidr.to_string(),
            gateway: v.gateway.to_string(),
            bouncers: ips(&v.bouncers),
        }],
        (RowKey::Vpc { .. }, RowValue::Vpc(v)) => vec![Row::Vpcs {
            vni,
            dividers: ips(&v.dividers),
        }],
        (RowKey::Peer { ip }, RowValue::Peer(v)) => vec![Row::Peers {
            vni,
            ip: ip.to_string(),
            mac: v.mac.to_string(),
        }],
        _ => Vec::new(),
    }
}

/// The map rows of `table`.
pub fn rows(table: &Table, mac_of: impl Fn(Ipv4Addr) -> Option<String>) -> Vec<Row> {
    table
        .rows()
        .iter()
        .flat_map(|(k, v)| map_rows(k, v, &mac_of))
        .collect()
}

/// `droplet`'s tables as the model holds them now.
pub fn droplet_tables(state: &ClusterState, droplet: &str) -> Option<DropletTables> {
    let table = state.table(droplet)?;
    let mac_of = |ip: Ipv4Addr| {
        let d = state.droplet_by_ip(ip)?;
        Some(state.get_droplet(d.as_str())?.spec.mac.to_string())
    };
    Some(DropletTables {
        droplet: droplet.to_owned(),
        version: state.version(droplet),
        rows: rows(table, mac_of),
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
        let json = serde_json::to_value(rows(&t, |_| None)).unwrap();
        let arr = json.as_array().unwrap();
        assert_eq!(arr.len(), 2);
        assert_eq!(arr[0]["map"], "VPCS");
        assert_eq!(arr[0]["vni"], 7);
        assert_eq!(arr[0]["dividers"][0], "172.16.0.2");
        assert_eq!(arr[1]["map"], "PEERS");
        assert_eq!(arr[1]["vni"], 0);
        assert!(arr.iter().all(|r| r.get("vni").is_some()));
    }
}
