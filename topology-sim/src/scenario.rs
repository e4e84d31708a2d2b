//! Scenario files: the YAML schema (every section `deny_unknown_fields`) and its checks.
//!
//! Parsing catches unknown fields and wrong types (serde names the field and the line);
//! [`Scenario::validate`] catches values the simulation cannot honour, naming the dotted
//! field and the fix. Cluster rules (CIDR ranges, role counts) are the model's own constants.

use std::path::Path;

use alkaid_model::Ipv4Cidr;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

mod check;

/// A whole scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A label for reports; defaults to the file stem.
    #[serde(default)]
    pub name: Option<String>,
    /// Seeds every random choice (`--seed` overrides it).
    pub seed: u64,
    /// Number of droplets (hosts).
    pub droplets: u32,
    /// VPCs.
    pub vpcs: Vpcs,
    /// Subnets of each VPC.
    pub subnets: Subnets,
    /// Endpoints created before the clock starts.
    pub endpoints: Endpoints,
    /// Endpoint creates and deletes while the clock runs.
    #[serde(default)]
    pub churn: Churn,
    /// Droplets lost and returning.
    #[serde(default)]
    pub failures: Vec<Failure>,
    /// Flows between endpoints of one VPC.
    #[serde(default)]
    pub traffic: Traffic,
    /// Programming latency of deltas.
    #[serde(default)]
    pub network: Network,
}

/// How VPC ranges are laid out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CidrLayout {
    /// Every VPC uses `cidr` (tenants reuse the same range, isolated by VNI).
    #[default]
    Overlapping,
    /// VPC i uses the i-th block of `cidr`'s size counting up from `cidr`.
    Disjoint,
}

/// The `vpcs` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vpcs {
    /// How many.
    pub count: u32,
    /// The (first) VPC range, e.g. `10.0.0.0/16`.
    pub cidr: Ipv4Cidr,
    /// `overlapping` (default) or `disjoint`.
    #[serde(default)]
    pub layout: CidrLayout,
    /// Dividers per VPC (default 1).
    #[serde(default = "one")]
    pub dividers: u32,
}

/// The `subnets` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subnets {
    /// Subnets per VPC, carved in order from the VPC range.
    pub per_vpc: u32,
    /// Prefix length of each subnet, e.g. 24.
    pub prefix: u8,
    /// Bouncers per subnet (default 1).
    #[serde(default = "one")]
    pub bouncers: u32,
}

/// The `endpoints` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    /// Endpoints per subnet at the start, on uniformly random droplets.
    pub per_subnet: u32,
}

/// The `churn` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Churn {
    /// Endpoint creates per simulated second (random subnet, random Ready droplet).
    #[serde(default)]
    pub creates_per_sec: f64,
    /// Endpoint deletes per simulated second (random existing endpoint).
    #[serde(default)]
    pub deletes_per_sec: f64,
    /// Seconds of churn.
    #[serde(default)]
    pub duration_s: f64,
}

/// Which droplets a failure takes down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pick {
    /// Uniformly among droplets that hold a bouncer or divider role (so roles must move).
    #[default]
    RoleHolders,
    /// Uniformly among all live droplets.
    Random,
}

/// One entry of `failures`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    /// Simulated second at which the droplets go down.
    pub at_s: f64,
    /// How many droplets go down.
    pub droplets: u32,
    /// `role-holders` (default) or `random`.
    #[serde(default)]
    pub pick: Pick,
    /// Health-check delay before the model marks them Unreachable (default 1000 ms).
    #[serde(default = "detect_default")]
    pub detect_after_ms: f64,
    /// Simulated second at which they come back (absent: they stay down).
    #[serde(default)]
    pub return_at_s: Option<f64>,
}

/// The `traffic` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// Flows, spread evenly over the run (random endpoint, random peer in its VPC).
    #[serde(default)]
    pub flows: u64,
    /// Packets per flow: the first takes the bouncer path, the rest the direct path.
    #[serde(default = "ten")]
    pub packets_per_flow: u32,
}

impl Default for Traffic {
    fn default() -> Self {
        Self {
            flows: 0,
            packets_per_flow: 10,
        }
    }
}

/// The `network` section: delay of one delta = `base_ms + per_row_us * rows + jitter`
/// (jitter exponential with mean `jitter_ms`); each agent then applies rows serially at
/// `apply_rows_per_sec`; its acknowledgement takes `ack_ms` back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Fixed one-way delay of a delta.
    #[serde(default = "base_default")]
    pub base_ms: f64,
    /// Serialization cost per row.
    #[serde(default = "per_row_default")]
    pub per_row_us: f64,
    /// Mean of the exponential jitter.
    #[serde(default = "jitter_default")]
    pub jitter_ms: f64,
    /// Rows one agent writes into its maps per second.
    #[serde(default = "rate_default")]
    pub apply_rows_per_sec: f64,
    /// Delay of an acknowledgement back to the leader.
    #[serde(default = "base_default")]
    pub ack_ms: f64,
}

impl Default for Network {
    fn default() -> Self {
        Self {
            base_ms: base_default(),
            per_row_us: per_row_default(),
            jitter_ms: jitter_default(),
            apply_rows_per_sec: rate_default(),
            ack_ms: base_default(),
        }
    }
}

fn one() -> u32 {
    1
}
fn ten() -> u32 {
    10
}
fn detect_default() -> f64 {
    1000.0
}
fn base_default() -> f64 {
    1.0
}
fn per_row_default() -> f64 {
    2.0
}
fn jitter_default() -> f64 {
    0.5
}
fn rate_default() -> f64 {
    100_000.0
}

impl Scenario {
    /// Parses YAML text; `origin` names it in errors. Does not [`validate`](Self::validate).
    ///
    /// # Errors
    /// [`Error::ParseScenario`] naming the field and line.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        serde_yaml_ng::from_str(text).map_err(|source| Error::ParseScenario {
            path: origin.to_owned(),
            source,
        })
    }

    /// Reads, parses and validates a scenario file; `name` defaults to the file stem.
    ///
    /// # Errors
    /// [`Error::ReadScenario`], [`Error::ParseScenario`] or [`Error::InvalidField`].
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadScenario {
            path: path.to_owned(),
            source,
        })?;
        let mut s = Self::parse(&text, &path.display().to_string())?;
        if s.name.is_none() {
            s.name = path.file_stem().map(|n| n.to_string_lossy().into_owned());
        }
        s.validate()?;
        Ok(s)
    }

    /// Simulated seconds the run lasts: churn, every failure and return, plus one second.
    pub fn duration_s(&self) -> f64 {
        let mut end = self.churn.duration_s;
        for f in &self.failures {
            end = end.max(f.at_s + f.detect_after_ms / 1000.0);
            if let Some(r) = f.return_at_s {
                end = end.max(r);
            }
        }
        if end > 0.0 { end + 1.0 } else { 0.0 }
    }

    /// Endpoints the scenario creates before the clock starts.
    pub fn initial_endpoints(&self) -> u64 {
        u64::from(self.vpcs.count)
            * u64::from(self.subnets.per_vpc)
            * u64::from(self.endpoints.per_subnet)
    }
}
