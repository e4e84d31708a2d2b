//! The crate's [`Error`], the control API's [`ControlError`], and their metric labels.

use alkaid_proto::v1 as pb;

/// What a reconcile, a mirror pass or startup can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("kubernetes api call failed while {action}: {source}")]
    Kube {
        /// What the call was for, e.g. `patching vpc status`.
        action: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },

    /// A control API call failed.
    #[error("control api {call} failed: {source}")]
    Control {
        /// The RPC, e.g. `apply`.
        call: &'static str,
        /// What the control API said.
        #[source]
        source: ControlError,
    },

    /// The finalizer wrapper failed (adding/removing the finalizer, or apply/cleanup).
    /// Boxed because it contains this type (as controller-rs does).
    #[error("finalizer of {kind} {name:?} failed: {source}")]
    Finalizer {
        /// Resource kind.
        kind: &'static str,
        /// Object name.
        name: String,
        /// kube-runtime's finalizer error, wrapping ours.
        #[source]
        source: Box<kube::runtime::finalizer::Error<Error>>,
    },

    /// Deleting the object must wait for its children; retried until they are gone.
    #[error("{kind} {name:?} cannot be deleted yet: {reason}")]
    DeletionBlocked {
        /// Resource kind.
        kind: &'static str,
        /// Object name.
        name: String,
        /// Which children remain, in words.
        reason: String,
    },

    /// The store returned an object this operator cannot represent as a CR.
    #[error("store object {kind} {name:?} has a bad field {field}: {message}")]
    BadStoreObject {
        /// Resource kind.
        kind: &'static str,
        /// Object name (may be empty if that is what is wrong).
        name: String,
        /// The field at fault.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },

    /// A Kubernetes object lacks a field the operator needs (name, namespace).
    #[error("{kind} object has no {field}; this is a bug in whatever created it")]
    MissingField {
        /// Resource kind.
        kind: &'static str,
        /// The missing field.
        field: &'static str,
    },

    /// A CRD is not installed, found at startup.
    #[error("crd {crd} is not installed ({source}); run `kubectl apply -k deploy/` first")]
    CrdMissing {
        /// CRD name, e.g. `vpcs.alkaid.dev`.
        crd: String,
        /// The failed list call.
        #[source]
        source: kube::Error,
    },

    /// Connecting to the control API failed.
    #[error(
        "cannot connect to the control api at {endpoint}: {source}; check the endpoint and tls settings"
    )]
    Connect {
        /// The endpoint URI.
        endpoint: String,
        /// tonic's transport error.
        #[source]
        source: tonic::transport::Error,
    },

    /// The configuration is unusable.
    #[error("invalid kubernetes configuration: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },

    /// A pod's network cannot be chosen from its annotations and the VPC bindings.
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short label for the `alkaid_k8s_reconcile_errors_total` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube { .. } => "kube",
            Self::Control { source, .. } => source.metric_label(),
            Self::Finalizer { source, .. } => match source.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.metric_label(),
                _ => "finalizer",
            },
            Self::DeletionBlocked { .. } => "deletion_blocked",
            Self::BadStoreObject { .. } => "bad_store_object",
            Self::MissingField { .. } => "missing_field",
            Self::CrdMissing { .. } => "crd_missing",
            Self::Connect { .. } => "connect",
            Self::Config { .. } => "config",
            Self::Network(_) => "network",
        }
    }

    /// Whether this is (or wraps) [`Error::DeletionBlocked`]: expected, retried at a steady
    /// pace rather than with growing backoff.
    pub fn is_deletion_blocked(&self) -> bool {
        self.metric_label() == "deletion_blocked"
    }

    pub(crate) fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let action = action.into();
        move |source| Self::Kube { action, source }
    }

    pub(crate) fn control(call: &'static str) -> impl FnOnce(ControlError) -> Self {
        move |source| Self::Control { call, source }
    }
}

/// What a [`ControlPlane`](crate::control::ControlPlane) call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The store refused the request (INVALID_ARGUMENT); `message` is for the user as is.
    #[error("refused: {message}")]
    Invalid {
        /// The store's explanation.
        message: String,
    },
    /// The object does not exist.
    #[error("not found: {message}")]
    NotFound {
        /// The store's explanation.
        message: String,
    },
    /// Any other RPC failure (unavailable, no leader, deadline): retried.
    #[error("rpc failed ({}): {}", .0.code(), .0.message())]
    Rpc(#[source] tonic::Status),
    /// The reply lacked something the contract promises.
    #[error("malformed reply: {message}")]
    Malformed {
        /// What was missing.
        message: String,
    },
}

impl ControlError {
    /// A short metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "control_invalid",
            Self::NotFound { .. } => "control_not_found",
            Self::Rpc(_) => "control_rpc",
            Self::Malformed { .. } => "control_malformed",
        }
    }
}

impl From<tonic::Status> for ControlError {
    fn from(status: tonic::Status) -> Self {
        match status.code() {
            tonic::Code::InvalidArgument => Self::Invalid {
                message: status.message().to_owned(),
            },
            tonic::Code::NotFound => Self::NotFound {
                message: status.message().to_owned(),
            },
            _ => Self::Rpc(status),
        }
    }
}

/// The kind's name as it appears in messages.
pub(crate) fn kind_name(kind: pb::Kind) -> &'static str {
    match kind {
        pb::Kind::Vpc => "vpc",
        pb::Kind::Subnet => "subnet",
        pb::Kind::Bouncer => "bouncer",
        pb::Kind::Divider => "divider",
        pb::Kind::Droplet => "droplet",
        pb::Kind::Endpoint => "endpoint",
        pb::Kind::Unspecified => "resource",
    }
}
