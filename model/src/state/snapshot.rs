//! Snapshot and restore. A snapshot is the postcard encoding of the truth only; restore
//! rebuilds indexes and tables from it, so a restored state equals the original and behaves
//! identically on further commands.
//!
//! Format 2 = format 1 (the truth's serialized fields) followed by the retired addresses;
//! format 1 restores with none retired.

use crate::error::{Error, Result};
use crate::table::CountedTable;

use super::ClusterState;
use super::index::Index;
use super::truth::Truth;

/// Leading bytes of every snapshot: format name and version.
const MAGIC: &[u8; 8] = b"ALKAID\x00\x02";
/// Leading bytes of format-1 snapshots (no retired addresses).
const MAGIC_V1: &[u8; 8] = b"ALKAID\x00\x01";

impl ClusterState {
    /// Encodes the truth: objects, allocations, placements, versions, pending acks.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        postcard::to_io(&self.truth, &mut out).expect("writing to a Vec cannot fail");
        postcard::to_io(&self.truth.retired, &mut out).expect("writing to a Vec cannot fail");
        out
    }

    /// Rebuilds a state from [`snapshot`](Self::snapshot) bytes.
    ///
    /// # Errors
    /// [`Error::Snapshot`] if the bytes are not a snapshot of this format.
    pub fn restore(bytes: &[u8]) -> Result<Self> {
        let bad = |source| Error::Snapshot { source };
        let (body, v2) = match (
            bytes.strip_prefix(MAGIC.as_slice()),
            bytes.strip_prefix(MAGIC_V1.as_slice()),
        ) {
            (Some(body), _) => (body, true),
            (None, Some(body)) => (body, false),
            (None, None) => return Err(bad(postcard::Error::DeserializeBadEncoding)),
        };
        let (mut truth, rest): (Truth, _) = postcard::take_from_bytes(body).map_err(bad)?;
        if v2 {
            truth.retired = postcard::from_bytes(rest).map_err(bad)?;
        } else if !rest.is_empty() {
            return Err(bad(postcard::Error::DeserializeBadEncoding));
        }
        let mut state = Self {
            idx: Index::rebuild(&truth),
            truth,
        };
        for (name, table) in state.desired_tables() {
            state.idx.droplets.get_mut(&name).expect("indexed").table =
                CountedTable::from_table(table);
        }
        Ok(state)
    }

    /// Whether two states hold the same truth and the same tables.
    pub fn same_as(&self, other: &Self) -> bool {
        self.truth == other.truth
            && self.idx.droplets.len() == other.idx.droplets.len()
            && self.idx.droplets.iter().all(|(name, x)| {
                other
                    .idx
                    .droplets
                    .get(name)
                    .is_some_and(|y| x.table.table == y.table.table)
            })
    }
}
