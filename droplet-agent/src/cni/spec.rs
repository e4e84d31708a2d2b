//! CNI 1.0 shapes: the network configuration on stdin, the environment, results, errors.
//!
//! Pure parsing and formatting, shared by the `alkaid-cni` binary and its tests. Error codes
//! follow the spec's well-known list (1 incompatible version, 4 invalid environment
//! variables, 5 I/O, 6 decode failure, 7 invalid network config, 11 try again later); codes
//! from 100 up are ours.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Spec versions this plugin speaks, oldest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.4.0", "1.0.0"];

/// The version used for replies when the request's version is unknown or unsupported.
pub const DEFAULT_VERSION: &str = "1.0.0";

/// The default agent socket, when the network config names none.
pub const DEFAULT_AGENT_SOCKET: &str = "/run/alkaid/cni.sock";

/// A CNI error code: the spec's well-known ones and ours (100 and up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u32", try_from = "u32")]
#[repr(u32)]
pub enum ErrorCode {
    /// 1: the config's cniVersion is not one we speak.
    IncompatibleVersion = 1,
    /// 2: a config field we do not support.
    UnsupportedField = 2,
    /// 3: the container is unknown (CHECK of something never added).
    UnknownContainer = 3,
    /// 4: a required CNI_* variable is missing or invalid.
    InvalidEnv = 4,
    /// 5: reading stdin or talking to the agent failed.
    IoFailure = 5,
    /// 6: stdin is not valid JSON of the expected shape.
    DecodeFailure = 6,
    /// 7: the config decoded but is invalid.
    InvalidConfig = 7,
    /// 11: transient; the runtime should retry (agent or operator unreachable).
    TryAgainLater = 11,
    /// 100: an internal agent error.
    Internal = 100,
    /// 101: the operator refused to allocate the endpoint.
    AllocationFailed = 101,
    /// 102: creating or configuring the interface failed.
    InterfaceFailed = 102,
    /// 103: CHECK found the endpoint not as ADD left it.
    CheckFailed = 103,
}

impl From<ErrorCode> for u32 {
    fn from(c: ErrorCode) -> u32 {
        c as u32
    }
}

impl TryFrom<u32> for ErrorCode {
    type Error = String;
    fn try_from(v: u32) -> Result<Self, String> {
        Ok(match v {
            1 => Self::IncompatibleVersion,
            2 => Self::UnsupportedField,
            3 => Self::UnknownContainer,
            4 => Self::InvalidEnv,
            5 => Self::IoFailure,
            6 => Self::DecodeFailure,
            7 => Self::InvalidConfig,
            11 => Self::TryAgainLater,
            101 => Self::AllocationFailed,
            102 => Self::InterfaceFailed,
            103 => Self::CheckFailed,
            _ => Self::Internal,
        })
    }
}

/// A spec-shaped error: printed as JSON on stdout, with a non-zero exit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CniError {
    /// The version of the reply.
    pub cni_version: String,
    /// The error code.
    pub code: ErrorCode,
    /// A short message.
    pub msg: String,
    /// Longer details (omitted when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    /// An error with the default reply version (fixed up by the plugin before printing).
    pub fn new(code: ErrorCode, msg: impl Into<String>, details: impl Into<String>) -> Self {
        Self {
            cni_version: DEFAULT_VERSION.to_string(),
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }
}

impl fmt::Display for CniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cni error {}: {}", self.code as u32, self.msg)?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for CniError {}

/// The network configuration a runtime writes on stdin.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    /// Spec version of this config.
    #[serde(default)]
    pub cni_version: String,
    /// Network name.
    #[serde(default)]
    pub name: String,
    /// Plugin type (the binary name).
    #[serde(default, rename = "type")]
    pub plugin_type: String,
    /// Where the agent listens (default [`DEFAULT_AGENT_SOCKET`]).
    #[serde(default)]
    pub agent_socket: Option<PathBuf>,
    /// VPC for every pod of this network (else the namespace's binding, else the default).
    #[serde(default)]
    pub vpc: Option<String>,
    /// Subnet for every pod of this network.
    #[serde(default)]
    pub subnet: Option<String>,
    /// Conventional `args` (we read `args.cni`).
    #[serde(default)]
    pub args: Option<ConfArgs>,
    /// Capability arguments from the runtime.
    #[serde(default)]
    pub runtime_config: Option<RuntimeConfig>,
    /// The previous plugin's result (CHECK, chained plugins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_result: Option<serde_json::Value>,
}

/// `args` in the config: `{"cni": {...}}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfArgs {
    /// Per-invocation overrides.
    #[serde(default)]
    pub cni: Option<PodArgs>,
}

/// Per-pod overrides (in `args.cni` or `runtimeConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PodArgs {
    /// VPC override.
    #[serde(default)]
    pub vpc: Option<String>,
    /// Subnet override.
    #[serde(default)]
    pub subnet: Option<String>,
    /// Requested addresses (the `ips` convention); the first IPv4 is used.
    #[serde(default)]
    pub ips: Vec<String>,
}

/// `runtimeConfig`: the `ips` capability, plus our own `alkaid` block.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    /// The `ips` capability.
    #[serde(default)]
    pub ips: Vec<String>,
    /// VPC/subnet chosen by the runtime.
    #[serde(default)]
    pub alkaid: Option<PodArgs>,
}

/// `interfaces[]` of a result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// MAC address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The netns path, for the container-side interface; absent for the host side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

/// `ips[]` of a result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// "4" (0.x results only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// CIDR notation: address/prefix.
    pub address: String,
    /// The gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// `routes[]` of a result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination CIDR.
    pub dst: String,
    /// Next hop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
}

/// `dns` of a result (we set none: the runtime supplies cluster DNS).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Name servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
}

/// An ADD result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CniResult {
    /// Reply version (the request's).
    pub cni_version: String,
    /// Host side first, then the container side.
    pub interfaces: Vec<Interface>,
    /// Addresses.
    pub ips: Vec<IpConfig>,
    /// Routes inside the container.
    pub routes: Vec<Route>,
    /// DNS.
    pub dns: Dns,
}

/// The VERSION reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// Reply version.
    pub cni_version: String,
    /// Every version we speak.
    pub supported_versions: Vec<String>,
}

/// True if `v` is in [`SUPPORTED_VERSIONS`].
pub fn is_supported(v: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&v)
}

/// Parses `CNI_ARGS` (`K1=V1;K2=V2`). Unknown keys are kept (callers ignore what they do
/// not use, as `IgnoreUnknown` asks).
///
/// # Errors
/// A pair without `=` or with an empty key: [`ErrorCode::InvalidEnv`].
pub fn parse_cni_args(s: &str) -> Result<BTreeMap<String, String>, CniError> {
    let mut out = BTreeMap::new();
    for pair in s.split(';').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            _ => {
                return Err(CniError::new(
                    ErrorCode::InvalidEnv,
                    "invalid CNI_ARGS",
                    format!("CNI_ARGS: pair {pair:?} is not KEY=VALUE"),
                ));
            }
        }
    }
    Ok(out)
}

/// Spec rule for container ids and network names: an alphanumeric first character, then
/// alphanumerics, `_`, `.`, `-`.
pub fn is_valid_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Linux interface-name rule: 1..=15 bytes, not `.`/`..`, no `/`, `:` or whitespace.
pub fn is_valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
}
