//! The crate's one error type. Messages are lowercase and say what to do next.

use std::time::Duration;

/// Errors of the replicated store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The sled database could not be opened, read or written.
    #[error("storage i/o failed during {op}; check the data directory and disk: {source}")]
    Sled {
        /// What the store was doing.
        op: &'static str,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
    /// Raft-rs refused an operation or a storage call failed inside raft.
    #[error("raft rejected {op}: {source}")]
    Raft {
        /// What the store was doing.
        op: &'static str,
        /// The raft-rs error.
        #[source]
        source: raft::Error,
    },
    /// A raft message or stored record could not be decoded.
    #[error(
        "could not decode {what}; the data is corrupt or from an incompatible version: {source}"
    )]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The protobuf error.
        #[source]
        source: protobuf::ProtobufError,
    },
    /// This replica is not the leader and could not forward the request.
    /// The request was never proposed: it is safe to retry on the leader.
    #[error("replica {id} is not the leader (leader hint: {leader:?}); retry on the leader")]
    NotLeader {
        /// This replica.
        id: u64,
        /// The leader this replica knows of, if any.
        leader: Option<u64>,
    },
    /// The entry proposed at `index` in `term` was overwritten by another leader's entry: the
    /// command was not applied. Safe to retry.
    #[error("proposal at index {index} term {term} was overwritten after a leader change; retry")]
    ProposalDropped {
        /// Log index the proposal had.
        index: u64,
        /// Term the proposal had.
        term: u64,
    },
    /// The outcome of the request is unknown (it may or may not have been applied).
    #[error(
        "no answer within {after:?}; the outcome is unknown, read before retrying a non-idempotent write"
    )]
    Timeout {
        /// How long the caller waited.
        after: Duration,
    },
    /// This replica proposed the entry at `index` but then lost its log there to a snapshot:
    /// the command may or may not have been applied.
    #[error("outcome of the proposal at index {index} is unknown; read before retrying")]
    OutcomeUnknown {
        /// The log index of the proposal.
        index: u64,
    },
    /// The replica's driver task has stopped (shut down or failed).
    #[error("replica has stopped; restart it or use another replica")]
    Stopped,
    /// The replica is overloaded: its bounded queues are full.
    #[error("replica {id} is overloaded; back off and retry")]
    Busy {
        /// This replica.
        id: u64,
    },
    /// A gRPC call to a peer failed.
    #[error("rpc {rpc} to peer {peer} failed: {source}")]
    Rpc {
        /// The rpc name.
        rpc: &'static str,
        /// The peer id.
        peer: u64,
        /// The gRPC status.
        #[source]
        source: tonic::Status,
    },
    /// A peer id has no known address.
    #[error("no address known for peer {peer}; pass it in the peer list")]
    UnknownPeer {
        /// The peer id.
        peer: u64,
    },
    /// The state machine refused a snapshot.
    #[error("state machine could not restore a snapshot: {reason}")]
    Restore {
        /// Why.
        reason: String,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {reason}")]
    Config {
        /// Why.
        reason: String,
    },
}

impl Error {
    /// Whether the request certainly had no effect, so that retrying cannot apply it twice.
    pub fn is_definite_failure(&self) -> bool {
        match self {
            Error::NotLeader { .. } | Error::ProposalDropped { .. } | Error::Busy { .. } => true,
            // The leader a proposal was forwarded to answered that it certainly did not apply it.
            Error::Rpc { source, .. } => source.code() == tonic::Code::FailedPrecondition,
            _ => false,
        }
    }

    /// The leader a refusal points at: this replica's hint on [`Error::NotLeader`], or the
    /// hint a remote replica put on its refusal of a forwarded request.
    pub fn leader_hint(&self) -> Option<u64> {
        match self {
            Error::NotLeader { leader, .. } => *leader,
            Error::Rpc { source, .. } if source.code() == tonic::Code::FailedPrecondition => source
                .metadata()
                .get(LEADER_HINT_KEY)?
                .to_str()
                .ok()?
                .parse()
                .ok(),
            _ => None,
        }
    }

    pub(crate) fn sled(op: &'static str) -> impl FnOnce(sled::Error) -> Error {
        move |source| Error::Sled { op, source }
    }

    pub(crate) fn raft(op: &'static str) -> impl FnOnce(raft::Error) -> Error {
        move |source| Error::Raft { op, source }
    }

    pub(crate) fn decode(what: &'static str) -> impl FnOnce(protobuf::ProtobufError) -> Error {
        move |source| Error::Decode { what, source }
    }
}

/// Result with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Metadata key carrying the leader hint on a `NotLeader` status.
pub const LEADER_HINT_KEY: &str = "alkaid-leader";

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        use tonic::Code;
        let code = match &e {
            // FailedPrecondition means "certainly not applied": clients may retry elsewhere.
            Error::NotLeader { .. } | Error::ProposalDropped { .. } => Code::FailedPrecondition,
            Error::Busy { .. } => Code::ResourceExhausted,
            Error::Timeout { .. } | Error::OutcomeUnknown { .. } => Code::DeadlineExceeded,
            Error::Rpc { source, .. } if source.code() == Code::FailedPrecondition => {
                Code::FailedPrecondition
            }
            Error::Stopped | Error::Rpc { .. } | Error::UnknownPeer { .. } => Code::Unavailable,
            Error::Config { .. } => Code::InvalidArgument,
            Error::Sled { .. }
            | Error::Raft { .. }
            | Error::Decode { .. }
            | Error::Restore { .. } => Code::Internal,
        };
        let mut status = tonic::Status::new(code, e.to_string());
        if let Error::NotLeader {
            leader: Some(leader),
            ..
        } = &e
            && let Ok(v) = leader.to_string().parse()
        {
            status.metadata_mut().insert(LEADER_HINT_KEY, v);
        }
        status
    }
}
