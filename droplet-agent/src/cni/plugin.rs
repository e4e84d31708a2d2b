//! The `alkaid-cni` plugin logic: environment + stdin in, stdout + exit code out.
//!
//! Pure apart from the `call` closure that reaches the agent, so every path (bad JSON,
//! missing variables, version negotiation, result shaping) is unit-tested without a socket.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::protocol::{AgentReply, AgentRequest, Command, EndpointInfo};
use super::spec::{
    CniError, CniResult, DEFAULT_AGENT_SOCKET, DEFAULT_VERSION, Dns, ErrorCode, Interface,
    IpConfig, NetConf, Route, SUPPORTED_VERSIONS, VersionInfo, is_supported, is_valid_id,
    is_valid_ifname, parse_cni_args,
};

/// What the binary prints and how it exits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Printed on stdout (a result, a version reply, an error, or nothing for DEL/CHECK).
    pub stdout: String,
    /// 0 on success, 1 on a CNI error.
    pub exit_code: i32,
}

/// The plugin's parsed invocation, before it reaches the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The reply version.
    pub version: String,
    /// The agent socket.
    pub socket: PathBuf,
    /// The request for the agent.
    pub request: AgentRequest,
    /// `prevResult`'s first address, for CHECK.
    pub prev_address: Option<String>,
}

/// Runs one plugin invocation. `env` reads variables, `stdin` is what the runtime wrote,
/// `call` sends a request to the agent.
pub fn run(
    env: impl Fn(&str) -> Option<String>,
    stdin: std::io::Result<Vec<u8>>,
    call: impl FnOnce(&Path, &AgentRequest) -> Result<AgentReply, CniError>,
) -> Outcome {
    let mut version = DEFAULT_VERSION.to_string();
    match execute(&env, stdin, call, &mut version) {
        Ok(stdout) => Outcome {
            stdout,
            exit_code: 0,
        },
        Err(mut e) => {
            e.cni_version = version;
            Outcome {
                stdout: to_json(&e),
                exit_code: 1,
            }
        }
    }
}

fn execute(
    env: &impl Fn(&str) -> Option<String>,
    stdin: std::io::Result<Vec<u8>>,
    call: impl FnOnce(&Path, &AgentRequest) -> Result<AgentReply, CniError>,
    version: &mut String,
) -> Result<String, CniError> {
    let command = env("CNI_COMMAND").unwrap_or_default();
    let stdin = stdin
        .map_err(|e| CniError::new(ErrorCode::IoFailure, "cannot read stdin", e.to_string()))?;
    if command == "VERSION" {
        return Ok(version_reply(&stdin));
    }
    let command = match command.as_str() {
        "ADD" => Command::Add,
        "DEL" => Command::Del,
        "CHECK" => Command::Check,
        "" => return Err(env_error("CNI_COMMAND", "is not set")),
        other => {
            return Err(env_error(
                "CNI_COMMAND",
                &format!("{other:?} is not one of ADD, DEL, CHECK, VERSION"),
            ));
        }
    };
    let inv = parse(env, &stdin, command, version)?;
    let reply = call(&inv.socket, &inv.request)?;
    let info = match reply {
        AgentReply::Error(e) => return Err(e),
        AgentReply::Ok(info) => info,
    };
    match (command, info) {
        (Command::Del, _) => Ok(String::new()),
        (Command::Check, info) => {
            if let (Some(prev), Some(info)) = (&inv.prev_address, &info)
                && *prev != info.address.to_string()
            {
                return Err(CniError::new(
                    ErrorCode::CheckFailed,
                    "endpoint address differs from prevResult",
                    format!("prevResult has {prev}, the endpoint has {}", info.address),
                ));
            }
            Ok(String::new())
        }
        (Command::Add, Some(info)) => Ok(to_json(&result_for(&inv.version, &info))),
        (Command::Add, None) => Err(CniError::new(
            ErrorCode::Internal,
            "the alkaid agent returned no endpoint for ADD",
            "",
        )),
    }
}

/// Parses and validates the config and environment for ADD, DEL and CHECK. Sets `version`
/// to the config's version as soon as it is known to be supported, so errors use it.
///
/// # Errors
/// Spec-shaped errors: 6 bad JSON, 1 unsupported version, 7 invalid config, 4 bad env.
pub fn parse(
    env: &impl Fn(&str) -> Option<String>,
    stdin: &[u8],
    command: Command,
    version: &mut String,
) -> Result<Invocation, CniError> {
    let conf: NetConf = serde_json::from_slice(stdin).map_err(|e| {
        CniError::new(
            ErrorCode::DecodeFailure,
            "cannot decode the network configuration on stdin",
            format!("{e}; expected a JSON object with cniVersion, name and type"),
        )
    })?;
    if conf.cni_version.is_empty() {
        return Err(config_error("cniVersion is missing"));
    }
    if !is_supported(&conf.cni_version) {
        return Err(CniError::new(
            ErrorCode::IncompatibleVersion,
            format!("incompatible CNI version {:?}", conf.cni_version),
            format!("this plugin supports {SUPPORTED_VERSIONS:?}"),
        ));
    }
    version.clone_from(&conf.cni_version);
    if !is_valid_id(&conf.name) {
        return Err(config_error(
            "name must start with a letter or digit and hold only letters, digits, '_', '.', '-'",
        ));
    }
    if conf.plugin_type.is_empty() {
        return Err(config_error("type is missing"));
    }

    let container_id = required(env, "CNI_CONTAINERID")?;
    if !is_valid_id(&container_id) {
        return Err(env_error(
            "CNI_CONTAINERID",
            "must start with a letter or digit and hold only letters, digits, '_', '.', '-'",
        ));
    }
    let ifname = required(env, "CNI_IFNAME")?;
    if !is_valid_ifname(&ifname) {
        return Err(env_error(
            "CNI_IFNAME",
            "must be 1-15 bytes without '/', ':' or whitespace",
        ));
    }
    let netns = match command {
        Command::Del => env("CNI_NETNS")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        Command::Add | Command::Check => Some(PathBuf::from(required(env, "CNI_NETNS")?)),
    };
    let cni_args = parse_cni_args(&env("CNI_ARGS").unwrap_or_default())?;

    // Precedence, lowest first: config, args.cni, runtimeConfig.alkaid / ips, CNI_ARGS.
    let from_args = conf
        .args
        .as_ref()
        .and_then(|a| a.cni.clone())
        .unwrap_or_default();
    let rc = conf.runtime_config.clone().unwrap_or_default();
    let rc_alkaid = rc.alkaid.clone().unwrap_or_default();
    let pick = |a: &Option<String>, b: &Option<String>, c: &Option<String>| {
        c.clone().or_else(|| b.clone()).or_else(|| a.clone())
    };
    let vpc = pick(&conf.vpc, &from_args.vpc, &rc_alkaid.vpc);
    let subnet = pick(&conf.subnet, &from_args.subnet, &rc_alkaid.subnet);
    let ips: Vec<&String> = cni_args
        .get("IP")
        .into_iter()
        .chain(rc.ips.iter())
        .chain(rc_alkaid.ips.iter())
        .chain(from_args.ips.iter())
        .collect();
    let ip = match ips.first() {
        None => None,
        Some(s) => Some(parse_ip(s)?),
    };

    Ok(Invocation {
        version: conf.cni_version.clone(),
        socket: conf
            .agent_socket
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_AGENT_SOCKET)),
        prev_address: conf
            .prev_result
            .as_ref()
            .and_then(|p| p.pointer("/ips/0/address"))
            .and_then(|a| a.as_str())
            .map(str::to_string),
        request: AgentRequest {
            command,
            container_id,
            netns,
            ifname,
            network: conf.name.clone(),
            namespace: cni_args
                .get("K8S_POD_NAMESPACE")
                .filter(|s| !s.is_empty())
                .cloned()
                .unwrap_or_else(|| "default".to_string()),
            pod: cni_args
                .get("K8S_POD_NAME")
                .filter(|s| !s.is_empty())
                .cloned(),
            vpc,
            subnet,
            ip,
        },
    })
}

/// Shapes an agent reply into a result of `version`: host veth first, the container
/// interface second (the address's `interface` index), a default route via the gateway.
pub fn result_for(version: &str, info: &EndpointInfo) -> CniResult {
    let legacy = version.starts_with("0.");
    CniResult {
        cni_version: version.to_string(),
        interfaces: vec![
            Interface {
                name: info.host_ifname.clone(),
                mac: Some(info.host_mac.clone()),
                sandbox: None,
            },
            Interface {
                name: info.ifname.clone(),
                mac: Some(info.mac.clone()),
                sandbox: Some(info.netns.display().to_string()),
            },
        ],
        ips: vec![IpConfig {
            version: legacy.then(|| "4".to_string()),
            address: info.address.to_string(),
            gateway: Some(info.gateway.to_string()),
            interface: Some(1),
        }],
        routes: vec![Route {
            dst: "0.0.0.0/0".to_string(),
            gw: Some(info.gateway.to_string()),
        }],
        dns: Dns::default(),
    }
}

/// The VERSION reply: in the requested version when we speak it.
pub fn version_reply(stdin: &[u8]) -> String {
    let asked = serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| {
            v.get("cniVersion")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .filter(|v| is_supported(v))
        .unwrap_or_else(|| DEFAULT_VERSION.to_string());
    to_json(&VersionInfo {
        cni_version: asked,
        supported_versions: SUPPORTED_VERSIONS.iter().map(|s| s.to_string()).collect(),
    })
}

fn parse_ip(s: &str) -> Result<Ipv4Addr, CniError> {
    let addr = s.split_once('/').map_or(s, |(a, _)| a);
    addr.parse().map_err(|_| {
        config_error(&format!(
            "requested ip {s:?} is not an IPv4 address (a.b.c.d or a.b.c.d/n)"
        ))
    })
}

fn required(env: &impl Fn(&str) -> Option<String>, var: &str) -> Result<String, CniError> {
    env(var)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| env_error(var, "is not set"))
}

fn env_error(var: &str, what: &str) -> CniError {
    CniError::new(
        ErrorCode::InvalidEnv,
        format!("invalid environment variable {var}"),
        format!("{var} {what}"),
    )
}

fn config_error(what: &str) -> CniError {
    CniError::new(
        ErrorCode::InvalidConfig,
        "invalid network configuration",
        what,
    )
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Serializing our own plain structs cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests;
