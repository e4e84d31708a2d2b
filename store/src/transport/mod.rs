//! How replicas reach each other.
//!
//! A [`Transport`] moves raft messages out of a replica and forwards proposals to the leader;
//! incoming traffic is handed to the receiving replica's [`crate::Node`] (`step`,
//! `propose_local`, `report_*`). Implementations: [`sim`] (in-process, seeded faults) and
//! [`grpc`] (tonic, the `RaftPeer` service).

pub mod grpc;
pub mod sim;

use std::future::Future;
use std::pin::Pin;

use raft::eraftpb::Message;

use crate::Result;
use crate::node::Applied;

/// A boxed future returned by [`Transport::forward`].
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The outgoing side of a replica's network.
pub trait Transport: Send + Sync + 'static {
    /// Queues `messages` for their `to` peers. Never blocks; a message may be lost (raft
    /// retransmits). A failed snapshot must be reported with `Node::report_snapshot`.
    fn send(&self, messages: Vec<Message>);

    /// Records (or updates) the address of peer `id`.
    fn set_peer(&self, id: u64, address: &str);

    /// Sends `command` to the leader `to` and returns its reply once applied there.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Rpc`] when the leader cannot be reached (outcome unknown unless the
    /// error says it is definite), or the leader's own error.
    fn forward(&self, to: u64, command: Vec<u8>) -> BoxFuture<Result<Applied>>;
}
