//! The application state replicated by the log.

use crate::Result;

/// A deterministic state machine fed with the committed log.
///
/// The driver calls [`apply`](StateMachine::apply) exactly once per committed normal entry, in
/// log order, on every replica. After a restart the driver restores the last snapshot from
/// storage and re-applies the committed entries after it, so implementations keep no durable
/// state of their own.
///
/// Determinism is the contract: the same sequence of `apply` calls from the same `restore`d
/// state must produce the same replies and the same later `snapshot` bytes on every replica. No
/// wall clocks, no unseeded randomness, no iteration over unordered maps in outputs.
pub trait StateMachine: Send + 'static {
    /// Applies one committed command at log `index` and returns the reply sent to the proposer.
    ///
    /// A command the state machine cannot decode must not panic: return an error reply.
    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8>;

    /// Answers a read-only query against the current state (used by linearizable and stale
    /// reads). Must not change the state.
    fn query(&self, query: &[u8]) -> Vec<u8>;

    /// Serializes the whole state. Called every `snapshot_interval` applied entries.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the whole state with a snapshot produced by [`snapshot`](StateMachine::snapshot).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Restore`] if the bytes are not a valid snapshot; the replica then stops.
    fn restore(&mut self, data: &[u8]) -> Result<()>;
}
