//! The agent library's one error type.

use std::path::PathBuf;

/// Everything the agent library can fail with. Messages are lowercase and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A netlink request failed.
    #[error("netlink {op} failed for {target}: {source}")]
    Netlink {
        /// What was being done (`create veth`, `add address`, ...).
        op: &'static str,
        /// The link, address or route concerned.
        target: String,
        /// The netlink error (boxed: it is large).
        #[source]
        source: Box<rtnetlink::Error>,
    },

    /// Entering, opening or using a network namespace failed.
    #[error(
        "network namespace {path}: {op} failed (does the netns exist, and are we root?): {source}"
    )]
    Netns {
        /// The namespace path (`/var/run/netns/x`, `/proc/<pid>/ns/net`).
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The ethtool ioctl failed.
    #[error("ethtool {op} on {ifname} failed: {source}")]
    Ethtool {
        /// The setting.
        op: &'static str,
        /// The interface (inside the pod netns).
        ifname: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A link that must exist does not.
    #[error("link {name} not found{}", in_netns.as_ref().map(|p| format!(" in netns {}", p.display())).unwrap_or_default())]
    LinkNotFound {
        /// The link name.
        name: String,
        /// The netns looked in (None: the agent's own).
        in_netns: Option<PathBuf>,
    },

    /// CHECK found the interface not as ADD left it.
    #[error("endpoint check failed: {what}")]
    CheckFailed {
        /// What differs.
        what: String,
    },

    /// A local file (CNI records, sockets) could not be read or written.
    #[error("{op} {path} failed: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A message (CNI request, record) could not be encoded or decoded.
    #[error("invalid {what} JSON: {source}")]
    Json {
        /// What was being decoded.
        what: &'static str,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// A message from the operator did not convert (a row, an allocation).
    #[error("invalid field {field} from the operator: {reason}")]
    InvalidField {
        /// The proto field path, e.g. `row.key.endpoint.vni`.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },

    /// The allocation backend (the operator's control API) refused or failed.
    #[error("endpoint allocation failed for {namespace}/{name}: {message}")]
    Allocation {
        /// Endpoint namespace.
        namespace: String,
        /// Endpoint name.
        name: String,
        /// What the backend said.
        message: String,
        /// True when retrying later may succeed (operator unreachable, no leader).
        transient: bool,
    },

    /// A gRPC call to the operator failed.
    #[error("grpc {op} to {endpoint} failed: {source}")]
    Grpc {
        /// The RPC.
        op: &'static str,
        /// The operator address.
        endpoint: String,
        /// The status.
        #[source]
        source: Box<tonic::Status>,
    },

    /// Connecting to the operator failed.
    #[error("cannot connect to operator at {endpoint}: {source}")]
    Connect {
        /// The operator address.
        endpoint: String,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },

    /// The data plane refused an operation.
    #[error("data plane {op} failed: {message}")]
    Dataplane {
        /// What was being done.
        op: &'static str,
        /// Why.
        message: String,
    },

    /// Invalid configuration.
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The flag or field.
        field: &'static str,
        /// Why, and what to do.
        reason: String,
    },
}

/// `Result` with the agent's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an rtnetlink error with what was being done.
    pub fn netlink(op: &'static str, target: impl Into<String>, source: rtnetlink::Error) -> Self {
        Self::Netlink {
            op,
            target: target.into(),
            source: Box::new(source),
        }
    }

    /// Wraps an I/O error with the file and what was being done.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
