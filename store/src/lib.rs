//! `alkaid-store`: a replicated state machine on tikv raft-rs, sled and tonic.
//!
//! # Layout and data flow
//!
//! | Module | Role |
//! |---|---|
//! | [`state_machine`] | the [`StateMachine`] trait the application implements |
//! | [`kv`] | a small KV state machine for tests, benchmarks and the demo node |
//! | [`storage`] | [`LogStore`]: the durable raft log ([`SledStorage`]) |
//! | `peer` | wraps `raft::RawNode`: no I/O, turns a `Ready` into a plan of effects |
//! | `driver` | the tokio task: receive -> step -> persist (one fsync per batch) -> send -> apply -> advance |
//! | [`node`] | [`Node`]: the cloneable client handle (propose, read, membership, status) |
//! | [`transport`] | [`Transport`] trait; `sim` (in-process, seeded faults) and `grpc` (tonic) |
//! | [`config`] | [`NodeConfig`]: raft timing, batching, snapshot interval |
//! | [`error`] | [`Error`] and [`Result`] |
//!
//! A proposal enters through [`Node::propose`] (forwarded to the leader if this replica is a
//! follower), is batched by the driver with other proposals into one `Ready`, persisted with a
//! single fsync, replicated, and answered with the state machine's reply once applied.

#![forbid(unsafe_code)]

pub mod config;
mod driver;
pub mod error;
pub mod kv;
pub mod node;
mod peer;
pub mod state_machine;
pub mod storage;
pub mod transport;

pub use config::{Bootstrap, NodeConfig};
pub use driver::start;
pub use error::{Error, Result};
pub use node::{Applied, MemberChange, Node, ReadConsistency, Status};
pub use state_machine::StateMachine;
pub use storage::{LogStore, SledStorage};
pub use transport::Transport;
