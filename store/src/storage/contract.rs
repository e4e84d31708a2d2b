//! One storage contract, run against raft-rs's `MemStorage` (the reference) and [`SledStorage`].
//!
//! Each `check_*` function is generic over [`Harness`]; the `contract_tests!` macro instantiates
//! all of them per implementation. Cases follow raft-rs's own `MemStorage` tests: a log whose
//! snapshot is at index 3 term 3 and whose entries are 4, 5, 6 with terms 4, 5, 6.

use raft::eraftpb::{ConfState, Entry, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, Storage, StorageError};

use super::{LogStore, SledStorage};

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: vec![index as u8; 16].into(),
        ..Default::default()
    }
}

fn snapshot(index: u64, term: u64, voters: Vec<u64>) -> Snapshot {
    let mut s = Snapshot::default();
    s.mut_metadata().index = index;
    s.mut_metadata().term = term;
    s.mut_metadata().set_conf_state(ConfState {
        voters,
        ..Default::default()
    });
    s
}

fn compacted<T>() -> raft::Result<T> {
    Err(raft::Error::Store(StorageError::Compacted))
}

fn unavailable<T>() -> raft::Result<T> {
    Err(raft::Error::Store(StorageError::Unavailable))
}

fn ctx() -> GetEntriesContext {
    GetEntriesContext::empty(false)
}

/// The write operations both implementations share, with their own native signatures.
pub(super) trait Harness: Storage + Sized {
    fn fresh() -> Self;
    fn append(&self, ents: &[Entry]);
    fn install(&self, snap: Snapshot) -> raft::Result<()>;
    fn compact(&self, index: u64);

    /// Snapshot at 3 term 3, entries 4..=6 with terms 4..=6.
    fn standard() -> Self {
        let s = Self::fresh();
        s.install(snapshot(3, 3, vec![1, 2, 3])).unwrap();
        s.append(&[entry(4, 4), entry(5, 5), entry(6, 6)]);
        s
    }
}

impl Harness for MemStorage {
    fn fresh() -> Self {
        MemStorage::new()
    }
    fn append(&self, ents: &[Entry]) {
        self.wl().append(ents).unwrap();
    }
    fn install(&self, snap: Snapshot) -> raft::Result<()> {
        self.wl().apply_snapshot(snap)
    }
    fn compact(&self, index: u64) {
        self.wl().compact(index).unwrap();
    }
}

impl Harness for SledStorage {
    fn fresh() -> Self {
        SledStorage::temporary().unwrap()
    }
    fn append(&self, ents: &[Entry]) {
        LogStore::append(self, ents, None).unwrap();
    }
    fn install(&self, snap: Snapshot) -> raft::Result<()> {
        LogStore::apply_snapshot(self, &snap).map_err(|e| match e {
            crate::Error::Raft { source, .. } => source,
            other => panic!("unexpected error {other}"),
        })
    }
    fn compact(&self, index: u64) {
        // The sled store refuses to compact past its snapshot: store one covering the prefix.
        if index > self.first_index().unwrap() {
            let term = self.term(index - 1).unwrap();
            self.store_snapshot(&snapshot(index - 1, term, vec![1, 2, 3]))
                .unwrap();
        }
        LogStore::compact(self, index).unwrap();
    }
}

pub(super) fn check_term<S: Harness>() {
    let s = S::standard();
    assert_eq!(s.term(2), compacted());
    assert_eq!(s.term(3), Ok(3));
    assert_eq!(s.term(4), Ok(4));
    assert_eq!(s.term(6), Ok(6));
    assert_eq!(s.term(7), unavailable());
}

pub(super) fn check_entries<S: Harness>() {
    let s = S::standard();
    let size = protobuf::Message::compute_size(&entry(4, 4)) as u64;
    assert_eq!(s.entries(2, 6, None, ctx()), compacted());
    assert_eq!(s.entries(3, 4, None, ctx()), compacted());
    assert_eq!(s.entries(4, 5, None, ctx()), Ok(vec![entry(4, 4)]));
    assert_eq!(
        s.entries(4, 7, None, ctx()),
        Ok(vec![entry(4, 4), entry(5, 5), entry(6, 6)])
    );
    // max_size: at least one entry is always returned.
    assert_eq!(s.entries(4, 7, 0, ctx()), Ok(vec![entry(4, 4)]));
    assert_eq!(s.entries(4, 7, size, ctx()), Ok(vec![entry(4, 4)]));
    assert_eq!(
        s.entries(4, 7, size * 2, ctx()),
        Ok(vec![entry(4, 4), entry(5, 5)])
    );
}

pub(super) fn check_first_last_index<S: Harness>() {
    let s = S::standard();
    assert_eq!(s.first_index(), Ok(4));
    assert_eq!(s.last_index(), Ok(6));
    s.append(&[entry(7, 7)]);
    assert_eq!(s.last_index(), Ok(7));
    s.compact(5);
    assert_eq!(s.first_index(), Ok(5));
    assert_eq!(s.last_index(), Ok(7));
}

pub(super) fn check_compact<S: Harness>() {
    let s = S::standard();
    s.compact(2); // before first_index: no-op
    assert_eq!(s.first_index(), Ok(4));
    s.compact(4); // == first_index: no-op
    assert_eq!(s.first_index(), Ok(4));
    s.compact(6);
    assert_eq!(s.first_index(), Ok(6));
    assert_eq!(s.entries(4, 7, None, ctx()), compacted());
    assert_eq!(s.entries(6, 7, None, ctx()), Ok(vec![entry(6, 6)]));
    assert_eq!(s.term(4), compacted());
    assert_eq!(s.term(6), Ok(6));
}

pub(super) fn check_append_overwrites_suffix<S: Harness>() {
    let s = S::standard();
    // Storage does no conflict detection (raft's log does): an append always replaces
    // everything from its first index on.
    s.append(&[entry(4, 4), entry(5, 5)]);
    assert_eq!(s.last_index(), Ok(5));
    assert_eq!(s.term(6), unavailable());
    s.append(&[entry(5, 7)]);
    assert_eq!(s.last_index(), Ok(5));
    assert_eq!(s.term(5), Ok(7));
    assert_eq!(s.term(6), unavailable());
    // Appending right after the last entry extends the log.
    s.append(&[entry(6, 7), entry(7, 7)]);
    assert_eq!(
        s.entries(4, 8, None, ctx()),
        Ok(vec![entry(4, 4), entry(5, 7), entry(6, 7), entry(7, 7)])
    );
}

pub(super) fn check_snapshot<S: Harness>() {
    let s = S::standard();
    s.install(snapshot(5, 5, vec![1, 2, 3, 4])).unwrap();
    assert_eq!(s.first_index(), Ok(6));
    assert_eq!(s.last_index(), Ok(5));
    assert_eq!(s.term(5), Ok(5));
    assert_eq!(s.term(4), compacted());
    let state = s.initial_state().unwrap();
    assert_eq!(state.conf_state.voters, vec![1, 2, 3, 4]);
    assert_eq!(state.hard_state.commit, 5);
    assert_eq!(state.hard_state.term, 5);
    let snap = s.snapshot(0, 2).unwrap();
    assert_eq!(snap.get_metadata().index, 5);
    assert_eq!(snap.get_metadata().term, 5);
    // An older snapshot than the log is refused.
    assert_eq!(
        s.install(snapshot(4, 4, vec![1])),
        Err(raft::Error::Store(StorageError::SnapshotOutOfDate))
    );
    // The log continues after the snapshot.
    s.append(&[entry(6, 5)]);
    assert_eq!(s.entries(6, 7, None, ctx()), Ok(vec![entry(6, 5)]));
}

macro_rules! contract_tests {
    ($module:ident, $ty:ty) => {
        mod $module {
            use super::*;
            #[test]
            fn term() {
                check_term::<$ty>();
            }
            #[test]
            fn entries() {
                check_entries::<$ty>();
            }
            #[test]
            fn first_last_index() {
                check_first_last_index::<$ty>();
            }
            #[test]
            fn compact() {
                check_compact::<$ty>();
            }
            #[test]
            fn append_overwrites_suffix() {
                check_append_overwrites_suffix::<$ty>();
            }
            #[test]
            fn snapshot() {
                check_snapshot::<$ty>();
            }
        }
    };
}

contract_tests!(mem_storage, MemStorage);
contract_tests!(sled_storage, SledStorage);

/// Sled-only behaviour: errors where `MemStorage` panics, and durability across reopen.
mod sled_only {
    use raft::eraftpb::HardState;

    use super::*;

    #[test]
    fn append_gap_and_compacted_are_errors() {
        let s = SledStorage::standard();
        assert!(LogStore::append(&s, &[entry(9, 9)], None).is_err());
        assert!(LogStore::append(&s, &[entry(3, 3)], None).is_err());
        assert_eq!(s.entries(4, 9, None, ctx()), unavailable());
        // Compacting past the stored snapshot would lose entries no snapshot covers.
        assert!(LogStore::compact(&s, 6).is_err());
    }

    #[test]
    fn reopen_after_drop_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStorage::open(dir.path()).unwrap();
            assert!(!s.is_initialized().unwrap());
            let mut snap = snapshot(3, 3, vec![1, 2, 3]);
            snap.set_data(b"state".to_vec().into());
            s.install(snap).unwrap();
            let hs = HardState {
                term: 6,
                vote: 2,
                commit: 5,
                ..Default::default()
            };
            LogStore::append(&s, &[entry(4, 4), entry(5, 5), entry(6, 6)], Some(&hs)).unwrap();
            Harness::compact(&s, 5);
            s.sync().unwrap();
        }
        let s = SledStorage::open(dir.path()).unwrap();
        assert!(s.is_initialized().unwrap());
        let state = s.initial_state().unwrap();
        assert_eq!((state.hard_state.term, state.hard_state.vote), (6, 2));
        assert_eq!(state.hard_state.commit, 5);
        assert_eq!(s.first_index(), Ok(5));
        assert_eq!(s.last_index(), Ok(6));
        assert_eq!(s.term(4), Ok(4));
        assert_eq!(
            s.entries(5, 7, None, ctx()),
            Ok(vec![entry(5, 5), entry(6, 6)])
        );
        let snap = s.latest_snapshot().unwrap().unwrap();
        assert_eq!(snap.get_metadata().index, 4);
    }

    #[test]
    fn bootstrap_once() {
        let s = SledStorage::temporary().unwrap();
        let cs = ConfState {
            voters: vec![1, 2, 3],
            ..Default::default()
        };
        s.bootstrap(cs.clone(), b"init".to_vec()).unwrap();
        assert!(s.bootstrap(cs, vec![]).is_err());
        assert_eq!(s.first_index(), Ok(2));
        assert_eq!(s.last_index(), Ok(1));
        assert_eq!(s.term(1), Ok(1));
        assert_eq!(&s.snapshot(0, 2).unwrap().data[..], b"init");
    }
}

/// Random sequences of appends (with overwrites) and compactions give the same observable
/// log on `MemStorage` and on sled.
mod equivalence {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// Append `n` entries with `term`, starting `back` entries before `last + 1`.
        Append { back: u64, n: u64, term: u64 },
        /// Compact at `first + k` (clamped to `last`).
        Compact { k: u64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u64..4, 1u64..5, 1u64..4).prop_map(|(back, n, term)| Op::Append { back, n, term }),
            1 => (0u64..6).prop_map(|k| Op::Compact { k }),
        ]
    }

    fn observe<S: Harness>(s: &S) -> (u64, u64, Vec<raft::Result<u64>>, raft::Result<Vec<Entry>>) {
        let first = s.first_index().unwrap();
        let last = s.last_index().unwrap();
        let terms = (first..=last + 1).map(|i| s.term(i)).collect();
        // MemStorage panics on an empty range of an empty log: only read non-empty ranges.
        let entries = if last >= first {
            s.entries(first, last + 1, None, ctx())
        } else {
            Ok(Vec::new())
        };
        (first, last, terms, entries)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn mem_and_sled_agree(ops in proptest::collection::vec(op(), 1..30)) {
            let mem = MemStorage::standard();
            let sled = SledStorage::standard();
            let mut term_base = 6;
            for op in ops {
                let first = mem.first_index().unwrap();
                let last = mem.last_index().unwrap();
                match op {
                    Op::Append { back, n, term } => {
                        let start = (last + 1).saturating_sub(back).max(first);
                        term_base += term;
                        let ents: Vec<Entry> = (start..start + n).map(|i| entry(i, term_base)).collect();
                        Harness::append(&mem, &ents);
                        Harness::append(&sled, &ents);
                    }
                    Op::Compact { k } => {
                        // Keep one entry: MemStorage forgets where the log ends when every
                        // entry is compacted (it falls back to its snapshot's index); sled
                        // keeps the truncated index and term.
                        let index = (first + k).min(last);
                        Harness::compact(&mem, index);
                        Harness::compact(&sled, index);
                    }
                }
                prop_assert_eq!(observe(&mem), observe(&sled));
            }
        }
    }
}
