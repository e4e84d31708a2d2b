//! The crate's one error type, and its one mapping to gRPC status codes.

use alkaid_store::Error as StoreError;

/// How a refusal of the model maps to a gRPC code (kept with the reply in the Raft log, so
/// every replica answers a refused command the same way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Refusal {
    /// The request or resource is invalid as written: fix it.
    Invalid,
    /// It names something that does not exist.
    NotFound,
    /// It conflicts with the current state (in use, exhausted, not ready).
    Conflict,
    /// The operator itself failed (corrupt log entry).
    Internal,
}

impl Refusal {
    /// Classifies a model error.
    pub fn of(e: &alkaid_model::Error) -> Self {
        use alkaid_model::Error as M;
        match e {
            M::InvalidName { .. }
            | M::InvalidCidr { .. }
            | M::HostBitsSet { .. }
            | M::PrefixOutOfRange { .. }
            | M::InvalidMac { .. }
            | M::VniOutOfRange { .. }
            | M::DuplicateVni { .. }
            | M::CountOutOfRange { .. }
            | M::SubnetOutsideVpc { .. }
            | M::SubnetOverlap { .. }
            | M::GatewayOutsideSubnet { .. }
            | M::GatewayReserved { .. }
            | M::SubnetNotInVpc { .. }
            | M::IpOutsideSubnet { .. }
            | M::IpReserved { .. }
            | M::Immutable { .. }
            | M::NamespaceBound { .. }
            | M::InvalidResource { .. } => Self::Invalid,
            M::UnknownVpc { .. } | M::UnknownSubnet { .. } | M::UnknownDroplet { .. } => {
                Self::NotFound
            }
            M::VniExhausted { .. }
            | M::DropletNotReady { .. }
            | M::DuplicateDropletIp { .. }
            | M::DropletInUse { .. }
            | M::VpcHasSubnets { .. }
            | M::SubnetHasEndpoints { .. }
            | M::DropletHasEndpoints { .. }
            | M::IpInUse { .. }
            | M::SubnetExhausted { .. }
            | M::EndpointConflict { .. } => Self::Conflict,
            M::CommandDecode { .. } | M::Snapshot { .. } => Self::Internal,
        }
    }
}

/// Everything the operator can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is missing or malformed.
    #[error("invalid request: field {field}: {reason}")]
    InvalidField {
        /// Dotted path of the field, e.g. `resources[0].vpc.spec.cidr`.
        field: String,
        /// What is wrong and how to write it.
        reason: String,
    },
    /// The model refused the command; nothing changed.
    #[error("{message}")]
    Refused {
        /// The class of refusal.
        refusal: Refusal,
        /// The model's message.
        message: String,
    },
    /// The object asked for does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// Kind.
        kind: &'static str,
        /// `name` or `namespace/name`.
        name: String,
    },
    /// This replica is not the leader (programming streams, heartbeats).
    #[error("this replica is not the leader; reconnect to the leader ({})", leader.as_deref().unwrap_or("unknown yet, retry shortly"))]
    NotLeader {
        /// The leader's address, when known.
        leader: Option<String>,
    },
    /// The replicated store failed the request.
    #[error("store {op} failed: {source}")]
    Store {
        /// What the operator was doing.
        op: &'static str,
        /// The leader's address, when known (a hint for clients).
        leader: Option<String>,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A Watch asked for history that is no longer retained.
    #[error(
        "resource version {requested} is too old (oldest retained: {oldest}); list again and watch from its resource_version"
    )]
    TooOld {
        /// Requested version.
        requested: u64,
        /// Oldest version still retained.
        oldest: u64,
    },
    /// A stored reply or log entry could not be decoded.
    #[error("could not decode {what}; replicas run incompatible versions: {source}")]
    Decode {
        /// What was decoded.
        what: &'static str,
        /// The decoder's error.
        #[source]
        source: postcard::Error,
    },
    /// Invalid configuration.
    #[error("invalid configuration: {reason}")]
    Config {
        /// What to fix.
        reason: String,
    },
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path or address.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Result with the operator's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Metadata key carrying the leader's address.
pub const LEADER_KEY: &str = "alkaid-leader";

impl Error {
    /// An [`Error::InvalidField`].
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The leader address this error carries, if any.
    pub fn leader(&self) -> Option<&str> {
        match self {
            Self::NotLeader { leader } | Self::Store { leader, .. } => leader.as_deref(),
            _ => None,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        use tonic::Code;
        let code = match &e {
            Error::InvalidField { .. } | Error::Config { .. } => Code::InvalidArgument,
            Error::Refused { refusal, .. } => match refusal {
                Refusal::Invalid => Code::InvalidArgument,
                Refusal::NotFound => Code::NotFound,
                Refusal::Conflict => Code::FailedPrecondition,
                Refusal::Internal => Code::Internal,
            },
            Error::NotFound { .. } => Code::NotFound,
            Error::NotLeader { .. } => Code::Unavailable,
            Error::Store { source, .. } => match source {
                StoreError::NotLeader { .. }
                | StoreError::ProposalDropped { .. }
                | StoreError::Stopped
                | StoreError::Rpc { .. }
                | StoreError::UnknownPeer { .. }
                | StoreError::Busy { .. } => Code::Unavailable,
                StoreError::Timeout { .. } | StoreError::OutcomeUnknown { .. } => {
                    Code::DeadlineExceeded
                }
                _ => Code::Internal,
            },
            Error::TooOld { .. } => Code::OutOfRange,
            Error::Decode { .. } | Error::Io { .. } => Code::Internal,
        };
        let mut status = tonic::Status::new(code, e.to_string());
        if let Some(leader) = e.leader()
            && let Ok(v) = leader.parse()
        {
            status.metadata_mut().insert(LEADER_KEY, v);
        }
        status
    }
}
