//! Predicted per-droplet tables in the JSON shape of `alkaid lab tables DROPLET -o json`:
//! `{"droplet", "version", "rows": [{"map", "vni", ...}]}`, one row per BPF map entry, every
//! row carrying its `vni` (0 for PEERS). A model `LocalEndpoint` row becomes two map rows
//! (ENDPOINTS with `local: true`, and AGENT_ENDPOINTS). Fields only a running droplet knows
//! (`ifindex`, `pinDir`, counters, learned DIRECT_PATH rows) are left out: a cross-check
//! compares the fields predicted here (`cli/tests/crosscheck` does, against a real lab).
//!
//! A [`World`] is an explicit cluster history (droplets by name, IP and MAC; VPCs and subnets
//! applied; endpoints allocated, in order) replayed through the real `ClusterState::apply`,
//! so a prediction can be made for a cluster that exists elsewhere (a lab).

use std::net::Ipv4Addr;

use alkaid_model::{
    ClusterState, Command, DropletName, MacAddr, Resource, RowKey, RowValue, Table,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An explicit cluster history: `topology-sim predict-tables --world FILE` (YAML or JSON).
/// Droplets register first (in order, all Ready), then `steps` apply in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    /// Droplets, registered in this order before any step.
    pub droplets: Vec<WorldDroplet>,
    /// VPC/Subnet applies and endpoint allocations, in the order the cluster saw them.
    #[serde(default)]
    pub steps: Vec<Step>,
}

/// A droplet as its agent registers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldDroplet {
    /// Droplet name.
    pub name: DropletName,
    /// Underlay address.
    pub ip: Ipv4Addr,
    /// Underlay MAC (`02:00:..`).
    pub mac: MacAddr,
    /// Underlay interface (`eth0` if left out).
    #[serde(default = "default_interface")]
    pub interface: String,
    /// Node name (the droplet's name if left out).
    #[serde(default)]
    pub node: Option<String>,
}

fn default_interface() -> String {
    "eth0".into()
}

fn default_namespace() -> String {
    "default".into()
}

/// One step of a [`World`]'s history: exactly one of `apply` and `endpoint`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Create or update a VPC or Subnet (the manifest object, as `alkaid apply` takes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply: Option<Resource>,
    /// Allocate an endpoint (CNI ADD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<WorldEndpoint>,
}

/// An endpoint allocation; give `ip` to pin the address a real cluster handed out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldEndpoint {
    /// Namespace (`default` if left out).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Endpoint name.
    pub name: String,
    /// VPC.
    pub vpc: String,
    /// Subnet of that VPC.
    pub subnet: String,
    /// Hosting droplet.
    pub droplet: DropletName,
    /// The address to allocate (the model picks one if left out).
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    /// Pod name (the endpoint's name if left out).
    #[serde(default)]
    pub pod: Option<String>,
}

impl World {
    /// Parses a world file's text (YAML or JSON); `path` names it in errors.
    ///
    /// # Errors
    /// [`Error::ParseScenario`] if the text does not fit the schema.
    pub fn parse(path: &str, text: &str) -> Result<Self> {
        serde_yaml_ng::from_str(text).map_err(|source| Error::ParseScenario {
            path: path.to_owned(),
            source,
        })
    }

    /// Reads and parses a world file.
    ///
    /// # Errors
    /// [`Error::ReadScenario`] or [`Error::ParseScenario`].
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadScenario {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// The model commands of this history, in order.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for an applied object that is not a Vpc or Subnet.
    pub fn commands(&self) -> Result<Vec<Command>> {
        let mut cmds = Vec::with_capacity(self.droplets.len() + self.steps.len());
        for d in &self.droplets {
            cmds.push(Command::RegisterDroplet {
                name: d.name.clone(),
                ip: d.ip,
                mac: d.mac,
                interface: d.interface.clone(),
                node: d.node.clone().unwrap_or_else(|| d.name.to_string()),
                seen: 0,
            });
        }
        for (i, s) in self.steps.iter().enumerate() {
            cmds.push(match (&s.apply, &s.endpoint) {
                (Some(Resource::Vpc(v)), None) => Command::ApplyVpc(v.clone()),
                (Some(Resource::Subnet(v)), None) => Command::ApplySubnet(v.clone()),
                (Some(other), None) => {
                    return Err(Error::field(
                        format!("steps[{i}].apply.kind"),
                        other.kind(),
                        "apply only Vpc and Subnet objects; droplets go in `droplets`, \
                         endpoints in `endpoint` steps",
                    ));
                }
                (None, Some(e)) => Command::AllocateEndpoint {
                    namespace: e.namespace.clone(),
                    name: e.name.clone(),
                    vpc: e.vpc.clone(),
                    subnet: e.subnet.clone(),
                    droplet: e.droplet.clone(),
                    ip: e.ip,
                    pod: e.pod.clone().unwrap_or_else(|| e.name.clone()),
                },
                _ => {
                    return Err(Error::field(
                        format!("steps[{i}]"),
                        "(both or neither)",
                        "give exactly one of `apply` and `endpoint` per step",
                    ));
                }
            });
        }
        Ok(cmds)
    }

    /// Replays the history through the real `ClusterState::apply`.
    ///
    /// # Errors
    /// [`Error::ModelRefused`] naming the first command the model refused.
    pub fn replay(&self) -> Result<ClusterState> {
        let mut state = ClusterState::new();
        for (i, cmd) in self.commands()?.into_iter().enumerate() {
            let what = format!("world command {i} ({})", describe(&cmd));
            if let Err(e) = state.apply(cmd).reply {
                return Err(Error::ModelRefused {
                    what,
                    source: Box::new(e),
                });
            }
        }
        Ok(state)
    }
}

fn describe(cmd: &Command) -> String {
    match cmd {
        Command::RegisterDroplet { name, .. } => format!("register droplet {name}"),
        Command::ApplyVpc(v) => format!("apply vpc {}", v.metadata.name),
        Command::ApplySubnet(s) => format!("apply subnet {}", s.metadata.name),
        Command::AllocateEndpoint {
            namespace, name, ..
        } => format!("allocate endpoint {namespace}/{name}"),
        other => format!("{other:?}"),
    }
}

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

/// The map rows of `table`. ENDPOINTS has one entry per (vni, ip): where the droplet both
/// hosts an endpoint and holds its directory entry (it is a bouncer of the endpoint's
/// subnet), the local endpoint wins, as in the agent.
pub fn rows(table: &Table, mac_of: impl Fn(Ipv4Addr) -> Option<String>) -> Vec<Row> {
    table
        .rows()
        .iter()
        .filter(|(k, _)| match k {
            RowKey::Endpoint { vni, ip } => table
                .get(&RowKey::LocalEndpoint { vni: *vni, ip: *ip })
                .is_none(),
            _ => true,
        })
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

    const WORLD: &str = r#"
droplets:
  - {name: d1, ip: 10.99.0.2, mac: "02:00:0a:63:00:02"}
  - {name: d2, ip: 10.99.0.3, mac: "02:00:0a:63:00:03", interface: eth1}
  - {name: d3, ip: 10.99.0.4, mac: "02:00:0a:63:00:04"}
steps:
  - apply: {apiVersion: alkaid.dev/v1alpha1, kind: Vpc, metadata: {name: blue}, spec: {cidr: 10.0.0.0/16, dividers: 1}}
  - apply: {apiVersion: alkaid.dev/v1alpha1, kind: Subnet, metadata: {name: blue-a}, spec: {vpc: blue, cidr: 10.0.1.0/24, bouncers: 2}}
  - apply: {apiVersion: alkaid.dev/v1alpha1, kind: Vpc, metadata: {name: red}, spec: {cidr: 10.0.0.0/16, dividers: 2}}
  - apply: {apiVersion: alkaid.dev/v1alpha1, kind: Subnet, metadata: {name: red-a}, spec: {vpc: red, cidr: 10.0.1.0/24, bouncers: 1}}
  - endpoint: {name: b1, vpc: blue, subnet: blue-a, droplet: d1, ip: 10.0.1.2}
  - endpoint: {name: r1, vpc: red, subnet: red-a, droplet: d2, ip: 10.0.1.2}
  - endpoint: {name: b2, vpc: blue, subnet: blue-a, droplet: d3}
"#;

    #[test]
    fn world_replays_through_the_model() {
        let w = World::parse("<inline>", WORLD).unwrap();
        assert_eq!(w.commands().unwrap().len(), 10);
        let state = w.replay().unwrap();
        // The same commands applied by hand give the same tables: replay adds nothing.
        let mut by_hand = ClusterState::new();
        for c in w.commands().unwrap() {
            by_hand.apply(c).reply.unwrap();
        }
        for d in ["d1", "d2", "d3"] {
            let t = droplet_tables(&state, d).unwrap();
            assert_eq!(Some(&t), droplet_tables(&by_hand, d).as_ref());
            // Every droplet knows the other two droplets' MACs.
            let peers = t
                .rows
                .iter()
                .filter(|r| matches!(r, Row::Peers { .. }))
                .count();
            assert!(peers >= 2, "{d}: {peers} PEERS rows");
        }
        // d1 hosts b1 locally; d2 hosts r1 at the same address in another VPC.
        let local = |d: &str| -> Vec<(u32, String)> {
            droplet_tables(&state, d)
                .unwrap()
                .rows
                .into_iter()
                .filter_map(|r| match r {
                    Row::Endpoints {
                        vni,
                        ip,
                        local: true,
                        ..
                    } => Some((vni, ip)),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(local("d1").len(), 1);
        assert_eq!(local("d2").len(), 1);
        assert_eq!(local("d1")[0].1, local("d2")[0].1);
        assert_ne!(local("d1")[0].0, local("d2")[0].0);
        // b2 got an address from the model; blue-a's two bouncers hold both blue-a
        // endpoints' directory entries, except where the bouncer hosts the endpoint: the
        // map has one ENDPOINTS entry per (vni, ip) and the local one wins.
        let blue = local("d1")[0].0;
        let mut dirs = 0;
        for d in ["d1", "d2", "d3"] {
            let rows = droplet_tables(&state, d).unwrap().rows;
            let mut keys: Vec<(u32, String)> = rows
                .iter()
                .filter_map(|r| match r {
                    Row::Endpoints { vni, ip, .. } => Some((*vni, ip.clone())),
                    _ => None,
                })
                .collect();
            let n = keys.len();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), n, "{d}: one ENDPOINTS row per (vni, ip)");
            dirs += rows
                .iter()
                .filter(|r| matches!(r, Row::Endpoints { local: false, vni, .. } if *vni == blue))
                .count();
            dirs += state
                .table(d)
                .unwrap()
                .rows()
                .keys()
                .filter(|k| match k {
                    RowKey::Endpoint { vni, ip } => {
                        vni.get() == blue
                            && state
                                .table(d)
                                .unwrap()
                                .get(&RowKey::LocalEndpoint { vni: *vni, ip: *ip })
                                .is_some()
                    }
                    _ => false,
                })
                .count();
        }
        assert_eq!(dirs, 4, "2 bouncers x 2 blue-a endpoints");
    }

    #[test]
    fn a_local_endpoint_masks_its_directory_entry() {
        let vni = Vni::new(7).unwrap();
        let ip = Ipv4Addr::new(10, 0, 1, 2);
        let mac = MacAddr::for_endpoint(vni, ip);
        let t: Table = [
            (
                RowKey::Endpoint { vni, ip },
                RowValue::Endpoint(alkaid_model::table::EndpointEntry {
                    droplet_ip: Ipv4Addr::new(172, 16, 0, 1),
                    mac,
                }),
            ),
            (
                RowKey::LocalEndpoint { vni, ip },
                RowValue::LocalEndpoint(alkaid_model::table::LocalEndpoint {
                    mac,
                    subnet_cidr: "10.0.1.0/24".parse().unwrap(),
                    gateway: Ipv4Addr::new(10, 0, 1, 1),
                    endpoint: alkaid_model::EndpointKey::new("default", "b1"),
                }),
            ),
        ]
        .into_iter()
        .collect();
        let r = rows(&t, |_| None);
        let endpoints: Vec<&Row> = r
            .iter()
            .filter(|r| matches!(r, Row::Endpoints { .. }))
            .collect();
        assert_eq!(endpoints.len(), 1, "{r:?}");
        assert!(matches!(endpoints[0], Row::Endpoints { local: true, .. }));
        assert_eq!(r.len(), 2, "ENDPOINTS (local) + AGENT_ENDPOINTS");
    }

    #[test]
    fn world_refuses_what_it_cannot_replay() {
        let bad_kind = WORLD.replace(
            "  - endpoint: {name: b2",
            "  - apply: {apiVersion: alkaid.dev/v1alpha1, kind: Droplet, metadata: {name: d9}, spec: {ip: 10.99.0.9, mac: \"02:00:00:00:00:09\", interface: eth0, node: d9}}\n  - endpoint: {name: b2",
        );
        let e = World::parse("<inline>", &bad_kind)
            .unwrap()
            .commands()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("steps[6].apply.kind") && e.contains("Droplet"),
            "{e}"
        );
        let unknown_subnet =
            WORLD.replace("subnet: blue-a, droplet: d3", "subnet: nope, droplet: d3");
        let e = World::parse("<inline>", &unknown_subnet)
            .unwrap()
            .replay()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("world command 9") && e.contains("default/b2"),
            "{e}"
        );
        let e = World::parse("<inline>", "droplets: []\nsteps: [{}]\n")
            .unwrap()
            .commands()
            .unwrap_err()
            .to_string();
        assert!(e.contains("exactly one"), "{e}");
        let e = World::parse("<inline>", "droplets: []\nextra: 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("extra"), "{e}");
    }
}
