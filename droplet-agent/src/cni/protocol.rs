//! The plugin <-> agent socket protocol.
//!
//! One request per connection on a unix stream socket: the plugin writes one JSON
//! [`AgentRequest`] followed by `\n`, the agent answers with one JSON [`AgentReply`] followed
//! by `\n` and closes. Replies are version-neutral ([`EndpointInfo`]); the plugin shapes them
//! into the result version the runtime asked for. JSON lines keep the plugin free of any
//! async runtime or gRPC stack: it starts, talks, and exits in a few milliseconds.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::spec::{CniError, ErrorCode};

/// Longest accepted line, either direction (a request is well under 4 KiB).
pub const MAX_LINE: u64 = 1 << 20;

/// The CNI operations the agent serves (VERSION is answered by the plugin alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Command {
    /// Create the endpoint.
    Add,
    /// Remove it (idempotent).
    Del,
    /// Verify it.
    Check,
}

/// What the plugin asks of the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRequest {
    /// The operation.
    pub command: Command,
    /// CNI_CONTAINERID.
    pub container_id: String,
    /// CNI_NETNS (may be absent on DEL).
    #[serde(default)]
    pub netns: Option<PathBuf>,
    /// CNI_IFNAME.
    pub ifname: String,
    /// The network config's `name`.
    pub network: String,
    /// The pod's namespace (K8S_POD_NAMESPACE, else `default`).
    pub namespace: String,
    /// The pod's name (K8S_POD_NAME), if known.
    #[serde(default)]
    pub pod: Option<String>,
    /// Requested VPC.
    #[serde(default)]
    pub vpc: Option<String>,
    /// Requested subnet.
    #[serde(default)]
    pub subnet: Option<String>,
    /// Requested address.
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
}

/// What the agent created: enough to build any result version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointInfo {
    /// `namespace/name` of the Endpoint object.
    pub endpoint: String,
    /// Host-side veth name.
    pub host_ifname: String,
    /// Host-side veth MAC.
    pub host_mac: String,
    /// Container-side interface name.
    pub ifname: String,
    /// Container-side MAC.
    pub mac: String,
    /// The netns path.
    pub netns: PathBuf,
    /// Address and subnet prefix length.
    pub address: Ipv4Net,
    /// The subnet's gateway.
    pub gateway: Ipv4Addr,
    /// The container interface's MTU.
    pub mtu: u32,
    /// The VPC's VNI.
    pub vni: u32,
}

/// The agent's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AgentReply {
    /// Success; ADD and CHECK carry the endpoint, DEL carries none.
    Ok(Option<EndpointInfo>),
    /// A spec-shaped error.
    Error(CniError),
}

/// Sends `req` to the agent at `socket` and waits up to `timeout` for the reply.
///
/// # Errors
/// A missing or refusing socket is [`ErrorCode::TryAgainLater`] (the agent is starting or
/// restarting); a broken exchange is [`ErrorCode::IoFailure`].
pub fn call(socket: &Path, req: &AgentRequest, timeout: Duration) -> Result<AgentReply, CniError> {
    let io_err = |what: &str, e: std::io::Error| {
        let code = match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                ErrorCode::TryAgainLater
            }
            _ => ErrorCode::IoFailure,
        };
        CniError::new(
            code,
            format!("cannot {what} the alkaid agent at {}", socket.display()),
            format!("{e}; is alkaid-agent running on this node?"),
        )
    };
    let mut stream = UnixStream::connect(socket).map_err(|e| io_err("connect to", e))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| io_err("configure the socket to", e))?;
    let mut line = serde_json::to_vec(req).map_err(|e| {
        CniError::new(
            ErrorCode::Internal,
            "cannot encode agent request",
            e.to_string(),
        )
    })?;
    line.push(b'\n');
    stream.write_all(&line).map_err(|e| io_err("write to", e))?;
    let mut reply = String::new();
    BufReader::new(stream.take(MAX_LINE))
        .read_line(&mut reply)
        .map_err(|e| io_err("read from", e))?;
    serde_json::from_str(reply.trim_end()).map_err(|e| {
        CniError::new(
            ErrorCode::IoFailure,
            "the alkaid agent sent an unreadable reply",
            format!("{e}: {reply:?}"),
        )
    })
}
