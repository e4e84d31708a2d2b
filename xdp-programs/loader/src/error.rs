//! Errors of the loader.

use std::path::PathBuf;

/// Loader errors; messages say what to check.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object failed to load (verifier, map creation, privileges).
    #[error("loading the eBPF object failed (needs root or CAP_BPF+CAP_NET_ADMIN)")]
    Load(#[source] aya::EbpfError),
    /// A program is missing from the object or failed to load.
    #[error("program `{name}`: {source}")]
    Program {
        name: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    /// A map is missing from the object.
    #[error("map `{0}` missing from the eBPF object (loader and object out of sync)")]
    MissingMap(&'static str),
    /// A map operation failed.
    #[error("map `{name}`: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    /// A batched map operation (BPF_MAP_*_BATCH) failed.
    #[error("map `{name}`: batch {op}: {source}")]
    Batch {
        name: &'static str,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A devmap operation failed.
    #[error("map `TX_PORTS`: {0}")]
    TxPorts(#[source] aya::maps::xdp::XdpMapError),
    /// Pinning failed.
    #[error("pinning at {path}: {source}")]
    Pin {
        path: PathBuf,
        #[source]
        source: aya::pin::PinError,
    },
    /// Filesystem error around a pin directory.
    #[error("pin directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Adding the clsact qdisc failed.
    #[error("adding the clsact qdisc on {interface}: {source}")]
    Tc {
        interface: String,
        #[source]
        source: aya::programs::tc::TcError,
    },
    /// An argument out of range (prefix length, too many bouncers...).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
