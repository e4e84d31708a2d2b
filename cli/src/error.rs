//! The crate's [`Error`]: every variant names what failed and, where it can, what to do.

use std::path::PathBuf;

/// Errors of the `alkaid` library parts (client, output, lab).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad command-line value.
    #[error("{0}")]
    Usage(String),
    /// No operator address was given and no lab is up.
    #[error(
        "no operator to talk to: pass --server HOST:PORT, set ALKAID_SERVER, or run `alkaid lab up`"
    )]
    NoServer,
    /// Connecting to an operator failed.
    #[error(
        "cannot reach the operator at {addr}: {source} (is it running? try `alkaid lab status`)"
    )]
    Connect {
        /// The address tried.
        addr: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// The operator answered with an error; its message is shown verbatim.
    #[error("{what}: {}", .status.message())]
    Rpc {
        /// What was being done.
        what: String,
        /// The server's answer.
        #[source]
        status: Box<tonic::Status>,
    },
    /// A manifest could not be read as Alkaid resources.
    #[error("{file}: document {doc}: {reason}")]
    Manifest {
        /// The file.
        file: String,
        /// 1-based document index inside the file.
        doc: usize,
        /// What is wrong.
        reason: String,
    },
    /// File or process I/O.
    #[error("{what} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A netlink request failed.
    #[error("netlink: {what}: {source}")]
    Netlink {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: nix::Error,
    },
    /// Something the lab needs is missing or in the wrong state.
    #[error("{0}")]
    Lab(String),
    /// A condition was not met before its deadline.
    #[error("timed out after {secs}s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The deadline.
        secs: u64,
    },
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    Cert(#[from] rcgen::Error),
    /// JSON (state file, CNI result) could not be read or written.
    #[error("{what}: {source}")]
    Json {
        /// What was being read or written.
        what: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Loading or attaching an XDP program (the lab's `pass` on its bridge-side ports) failed.
    #[error("{what}: {source}")]
    Xdp {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: Box<alkaid_xdp::Error>,
    },
    /// Reading a pinned BPF map failed.
    #[error("reading BPF map {path}: {reason}")]
    Bpf {
        /// The pin path.
        path: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// An [`Error::Io`].
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Sys`].
    pub fn sys(what: impl Into<String>, source: nix::Error) -> Self {
        Self::Sys {
            what: what.into(),
            source,
        }
    }

    /// An [`Error::Netlink`].
    pub fn netlink(what: impl Into<String>, source: rtnetlink::Error) -> Self {
        Self::Netlink {
            what: what.into(),
            source: Box::new(source),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
