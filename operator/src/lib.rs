//! # alkaid-operator: the Alkaid control plane
//!
//! One replica of the operator: a store replica whose state machine is
//! [`alkaid_model::ClusterState`], the control API, the droplets' programming streams and
//! droplet health. Kubernetes controllers live in the separate `alkaid-operator-k8s` crate
//! and talk to the control API.
//!
//! ## Layout and data flow
//!
//! | module | role |
//! |---|---|
//! | [`state`] | [`state::Machine`]: the store's state machine over `ClusterState`; log [`state::Entry`]s, replies, [`state::Shared`] |
//! | [`feed`] | bounded per-droplet delta log filled while applying; coalescing |
//! | [`pb`] | `alkaid.v1` <-> model conversions naming the bad field |
//! | [`api`] | the `Control` server: writes through Raft, reads behind a ReadIndex barrier, Watch |
//! | [`program`] | the `Programming` server: one task per droplet stream, acks batched into Raft |
//! | [`health`] | heartbeats on the leader's clock -> `SetDropletPhase` |
//! | [`ctx`] | what the servers share; the propose/barrier helpers |
//! | [`server`] | starting a replica: store, gRPC servers, background loops |
//! | [`conn`] | accepted connections a killed replica cuts (as a crash would) |
//! | [`metrics`], [`telemetry`] | Prometheus `/metrics`; tracing and OTLP export |
//! | [`config`] | the binary's clap `Config` and its validation into [`server::Options`] |
//! | [`error`] | [`Error`], and its one mapping to gRPC status codes |
//!
//! A write (Apply, AllocateEndpoint, ...) becomes an [`state::Entry`], is proposed through
//! the store (forwarded to the leader), and is applied on every replica by
//! [`state::Machine`], which captures the per-droplet deltas into the [`feed`] and the
//! touched objects into the change ring. On the leader, each droplet's stream task pulls
//! its deltas from the feed and sends them, coalesced, to the agent; agents' acks are
//! batched and proposed back, and the model turns objects Ready.

#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod conn;
pub mod ctx;
pub mod error;
pub mod feed;
pub mod health;
pub mod metrics;
pub mod pb;
pub mod program;
pub mod server;
pub mod state;
pub mod telemetry;

pub use error::{Error, Result};
pub use server::{Listeners, Options, Running, start};
