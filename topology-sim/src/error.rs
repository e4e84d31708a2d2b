//! The crate's one error type. Messages are lowercase and say what to change.

use std::path::PathBuf;

/// Everything the simulator can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    ReadScenario {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The scenario is not valid YAML for the schema (unknown field, wrong type, ...).
    #[error("scenario {path}: {source}; see topology-sim/README.md for the schema")]
    ParseScenario {
        /// The file (or `<inline>`).
        path: String,
        /// What serde found.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A field parsed but its value cannot be simulated.
    #[error("field `{field}` = {value}: {fix}")]
    InvalidField {
        /// Dotted path of the field, e.g. `subnets.prefix`.
        field: String,
        /// The value given.
        value: String,
        /// What to do instead.
        fix: String,
    },
    /// The real model refused a setup command: the scenario describes an invalid cluster.
    #[error("the model refused {what}: {source}")]
    ModelRefused {
        /// The command, in words.
        what: String,
        /// The model's reason (boxed: the model's errors are large).
        #[source]
        source: Box<alkaid_model::Error>,
    },
    /// A droplet named on the command line does not exist in the scenario.
    #[error("unknown droplet {name:?}; droplets are named {example} (0-based, zero-padded)")]
    UnknownDroplet {
        /// The name given.
        name: String,
        /// A valid name.
        example: String,
    },
    /// A design name that is not known.
    #[error("unknown design {name:?}; use built, full-mesh or random")]
    UnknownDesign {
        /// The name given.
        name: String,
    },
    /// Writing a report file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Drawing a plot failed.
    #[error("cannot draw plot {path}: {message}")]
    Plot {
        /// The file.
        path: PathBuf,
        /// The drawing backend's message.
        message: String,
    },
    /// The replicated store failed while replaying a run.
    #[error("replicated store replay failed at {what}: {message}")]
    Store {
        /// The step.
        what: &'static str,
        /// The store's message.
        message: String,
    },
    /// JSON encoding failed (never expected: every report type encodes).
    #[error("cannot encode {what} as JSON: {source}")]
    Json {
        /// What was encoded.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::InvalidField`].
    pub fn field(field: impl Into<String>, value: impl ToString, fix: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            value: value.to_string(),
            fix: fix.into(),
        }
    }
}
