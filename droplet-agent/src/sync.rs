//! Pure programming-stream logic: what map operations turn what the maps hold into what the
//! operator wants, and whether a delta may be applied on top of the version we hold.
//!
//! No I/O: [`crate::grpc`] feeds messages in and carries the resulting operations to a
//! [`crate::dataplane::Dataplane`].

use alkaid_model::table::Ops;
use alkaid_model::{RowKey, RowValue, Table};

/// One map operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapOp {
    /// Insert or overwrite a row.
    Upsert(RowKey, RowValue),
    /// Remove a row (absent rows are fine).
    Delete(RowKey),
}

/// Orders `ops` so the data plane never holds a row that names a peer it has no MAC for:
/// peer upserts first, then other upserts, then other deletes, then peer deletes.
pub fn plan(ops: Ops) -> Vec<MapOp> {
    let is_peer = |k: &RowKey| matches!(k, RowKey::Peer { .. });
    let (peer_up, other_up): (Vec<_>, Vec<_>) =
        ops.upserts.into_iter().partition(|(k, _)| is_peer(k));
    let (peer_del, other_del): (Vec<_>, Vec<_>) = ops.deletes.into_iter().partition(is_peer);
    peer_up
        .into_iter()
        .chain(other_up)
        .map(|(k, v)| MapOp::Upsert(k, v))
        .chain(other_del.into_iter().chain(peer_del).map(MapOp::Delete))
        .collect()
}

/// Merges consecutive deltas, oldest first, into one: for each key the last operation wins
/// (within a delta, its upserts after its deletes), the operator's own coalescing rule
/// ([`Ops::coalesce`]). The result is what applying them one after another leaves in the
/// maps, in one batch.
pub fn merge(deltas: &[Ops]) -> Ops {
    Ops::coalesce(
        deltas
            .iter()
            .map(|d| (d.upserts.as_slice(), d.deletes.as_slice())),
    )
}

/// The operations for a full sync: `actual` (what the maps hold) to `desired`.
pub fn full_sync(actual: &Table, desired: &Table) -> Vec<MapOp> {
    plan(actual.diff(desired))
}

/// What to do with an incoming delta.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeltaCheck {
    /// It starts at our version: apply it.
    Apply,
    /// We already hold its version (a replay after reconnect): acknowledge, change nothing.
    Stale,
    /// It starts elsewhere: we missed something; ask for a full sync.
    Gap {
        /// Our version.
        ours: u64,
        /// The delta's base.
        base: u64,
    },
}

/// The agent's position in the table history, and a full sync being received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tracker {
    version: u64,
    epoch: u64,
    need_full: bool,
    pending: Option<Pending>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pending {
    version: u64,
    epoch: u64,
    rows: Table,
}

/// A completed full sync, ready to diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullSync {
    /// Its version.
    pub version: u64,
    /// Its epoch.
    pub epoch: u64,
    /// Every desired row.
    pub desired: Table,
}

impl Tracker {
    /// Nothing applied yet: the first Hello asks for a full sync.
    pub fn new() -> Self {
        Self::default()
    }

    /// The applied version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The epoch of the applied version.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// What to put in a Hello: `(version, epoch)`, version 0 when a full sync is needed.
    pub fn hello(&self) -> (u64, u64) {
        if self.need_full {
            (0, self.epoch)
        } else {
            (self.version, self.epoch)
        }
    }

    /// A new stream starts: a half-received full sync is dropped.
    pub fn reset_stream(&mut self) {
        self.pending = None;
    }

    /// Takes one full-sync chunk; returns the whole sync after the chunk marked `last`. A
    /// chunk of another version or epoch restarts the accumulation.
    pub fn full_chunk(
        &mut self,
        version: u64,
        epoch: u64,
        rows: impl IntoIterator<Item = (RowKey, RowValue)>,
        last: bool,
    ) -> Option<FullSync> {
        let p = match &mut self.pending {
            Some(p) if p.version == version && p.epoch == epoch => p,
            slot => slot.insert(Pending {
                version,
                epoch,
                rows: Table::default(),
            }),
        };
        for (k, v) in rows {
            p.rows.insert(k, v);
        }
        if !last {
            return None;
        }
        let p = self.pending.take()?;
        Some(FullSync {
            version: p.version,
            epoch: p.epoch,
            desired: p.rows,
        })
    }

    /// Checks a delta from `base` to `version` against ours.
    pub fn check_delta(&self, base: u64, version: u64) -> DeltaCheck {
        if base == self.version && version > base && !self.need_full {
            DeltaCheck::Apply
        } else if version <= self.version && !self.need_full {
            DeltaCheck::Stale
        } else {
            DeltaCheck::Gap {
                ours: self.version,
                base,
            }
        }
    }

    /// Records that a full sync was applied.
    pub fn applied_full(&mut self, version: u64, epoch: u64) {
        self.version = version;
        self.epoch = epoch;
        self.need_full = false;
    }

    /// Records that a delta was applied.
    pub fn applied_delta(&mut self, version: u64) {
        self.version = version;
    }

    /// Marks that only a full sync can bring us back in line (a gap).
    pub fn require_full(&mut self) {
        self.need_full = true;
        self.pending = None;
    }
}

#[cfg(test)]
mod tests;
