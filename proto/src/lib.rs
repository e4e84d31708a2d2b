//! `alkaid.v1`: the wire contract between Alkaid's components.
//!
//! | File | Service | Between |
//! |---|---|---|
//! | `resources.proto` | (messages) | resource objects in the shape of the Kubernetes CRs |
//! | `control.proto` | `Control` | `alkaid` CLI / CNI path / agents -> any operator replica |
//! | `programming.proto` | `Programming` | operator leader <-> droplet agent (table deltas, acks) |
//! | `raft.proto` | `RaftPeer` | operator replica <-> replica (raft-rs messages as bytes) |
//!
//! The code is generated at build time with a vendored `protoc`. There is no logic here:
//! conversions to and from `alkaid-model` types live in each consumer's `pb.rs`.
//! Compatibility rule: `v1` is never broken; fields are only added, never renumbered.

#![forbid(unsafe_code)]

/// Generated `alkaid.v1` messages, clients and servers.
#[allow(clippy::all, clippy::pedantic, missing_docs, reason = "generated code")]
pub mod v1 {
    tonic::include_proto!("alkaid.v1");
}
