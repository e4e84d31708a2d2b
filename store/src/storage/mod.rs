//! Durable raft log storage.
//!
//! raft-rs reads the log through [`raft::Storage`]; the driver writes it through [`LogStore`].
//! [`SledStorage`] is the production implementation. The contract suite in `contract.rs` runs
//! the same tests against raft-rs's `MemStorage` (the reference semantics) and [`SledStorage`].

mod sled_store;

#[cfg(test)]
mod contract;

pub use sled_store::SledStorage;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};

use crate::Result;

/// The write side of the raft log, used by the driver. Reads go through [`raft::Storage`].
/// Clones share the same store (the driver's fsync thread holds one).
///
/// Writes become durable only after [`LogStore::sync`]: the driver syncs once per `Ready`
/// (group commit) before sending any message that depends on the written state.
pub trait LogStore: raft::Storage + Clone + Send + Sync + 'static {
    /// Whether the store already holds a raft state (a restart rather than a first start).
    fn is_initialized(&self) -> Result<bool>;

    /// Bootstraps an empty store with the initial membership and the state machine's initial
    /// snapshot, at index 1 term 1 (as raft-rs's `MemStorage::initialize_with_conf_state`),
    /// so that replicas added later catch up through a snapshot.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Config`] if the store is already initialized.
    fn bootstrap(&self, conf_state: ConfState, data: Vec<u8>) -> Result<()>;

    /// Appends `entries` (truncating any conflicting suffix) and writes `hard_state`, atomically.
    ///
    /// # Errors
    ///
    /// Fails if the entries would overwrite compacted entries or leave a gap.
    fn append(&self, entries: &[Entry], hard_state: Option<&HardState>) -> Result<()>;

    /// Installs a snapshot received from the leader: replaces the log, the membership and the
    /// stored snapshot.
    fn apply_snapshot(&self, snapshot: &Snapshot) -> Result<()>;

    /// Stores a snapshot this replica created from its state machine; the log is kept.
    fn store_snapshot(&self, snapshot: &Snapshot) -> Result<()>;

    /// The latest stored snapshot (metadata and data), if any.
    fn latest_snapshot(&self) -> Result<Option<Snapshot>>;

    /// Discards entries before `compact_index`. A no-op when `compact_index <= first_index`.
    ///
    /// # Errors
    ///
    /// Fails if `compact_index` is beyond the stored snapshot index + 1 (entries that no
    /// snapshot covers would be lost) or beyond `last_index + 1`.
    fn compact(&self, compact_index: u64) -> Result<()>;

    /// Makes every write so far durable (fsync).
    fn sync(&self) -> Result<()>;
}
