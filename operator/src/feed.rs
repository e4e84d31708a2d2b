//! The bounded per-droplet delta log that feeds the programming streams.
//!
//! Every replica fills it while applying the log (so a new leader already holds recent
//! deltas), and stream tasks pull from it at their own pace: a slow agent never makes the
//! applier wait, and it costs no memory beyond the droplet's capped backlog. Past the cap the
//! oldest deltas are dropped; an agent that still needed them gets a full sync instead.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use alkaid_model::table::Ops;
use alkaid_model::{Delta, DropletName, RowKey, RowValue};
use tokio::sync::watch;

/// What an agent at some version needs next.
#[derive(Debug, PartialEq, Eq)]
pub enum Since {
    /// Nothing: it is current (or ahead, which the caller treats as a mismatch).
    UpToDate,
    /// These deltas, in version order, starting right after the asked version.
    Deltas(Vec<Arc<Delta>>),
    /// The deltas it needs are no longer retained: send a full sync.
    Gone,
}

struct Log {
    deltas: VecDeque<Arc<Delta>>,
    rows: usize,
    /// Versions up to and including `floor` are not retained.
    floor: u64,
    latest: watch::Sender<u64>,
}

impl Log {
    fn new(version: u64) -> Self {
        Self {
            deltas: VecDeque::new(),
            rows: 0,
            floor: version,
            latest: watch::channel(version).0,
        }
    }
}

/// Per-droplet retained deltas, capped at `max_rows` rows per droplet.
pub struct Feed {
    logs: Mutex<HashMap<DropletName, Log>>,
    max_rows: usize,
}

fn rows_of(d: &Delta) -> usize {
    d.upserts.len() + d.deletes.len()
}

impl Feed {
    /// An empty feed retaining at most `max_rows` rows of deltas per droplet.
    pub fn new(max_rows: usize) -> Self {
        Self {
            logs: Mutex::new(HashMap::new()),
            max_rows: max_rows.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DropletName, Log>> {
        self.logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends the deltas of one applied command and wakes the droplets' streams.
    pub fn push(&self, deltas: Vec<Delta>) {
        let mut logs = self.lock();
        for d in deltas {
            let log = logs
                .entry(d.droplet.clone())
                .or_insert_with(|| Log::new(d.version - 1));
            let version = d.version;
            if version != log.latest.borrow().wrapping_add(1) {
                // A gap (cannot happen with an intact log): forget what we had.
                log.deltas.clear();
                log.rows = 0;
                log.floor = version - 1;
            }
            log.rows += rows_of(&d);
            log.deltas.push_back(Arc::new(d));
            while log.rows > self.max_rows {
                let Some(old) = log.deltas.pop_front() else {
                    break;
                };
                log.rows -= rows_of(&old);
                log.floor = old.version;
            }
            log.latest.send_replace(version);
        }
    }

    /// Forgets every retained delta and restarts each droplet's log at its current version
    /// (after a snapshot was installed: the deltas in between are unknown here).
    pub fn reset(&self, versions: impl IntoIterator<Item = (DropletName, u64)>) {
        let mut logs = self.lock();
        for log in logs.values_mut() {
            log.deltas.clear();
            log.rows = 0;
        }
        for (d, v) in versions {
            let log = logs.entry(d).or_insert_with(|| Log::new(v));
            log.floor = v;
            log.latest.send_replace(v);
        }
    }

    /// A receiver of `droplet`'s latest version, starting at `current` if the droplet has
    /// no log yet.
    pub fn subscribe(&self, droplet: &DropletName, current: u64) -> watch::Receiver<u64> {
        let mut logs = self.lock();
        logs.entry(droplet.clone())
            .or_insert_with(|| Log::new(current))
            .latest
            .subscribe()
    }

    /// The deltas after `version`.
    pub fn since(&self, droplet: &DropletName, version: u64) -> Since {
        let logs = self.lock();
        let Some(log) = logs.get(droplet) else {
            return Since::Gone;
        };
        let latest = *log.latest.borrow();
        if version >= latest {
            return Since::UpToDate;
        }
        if version < log.floor {
            return Since::Gone;
        }
        let skip = (version - log.floor) as usize;
        Since::Deltas(log.deltas.range(skip..).cloned().collect())
    }

    /// Rows currently retained for `droplet` (for metrics and tests).
    pub fn retained_rows(&self, droplet: &str) -> usize {
        self.lock().get(droplet).map_or(0, |l| l.rows)
    }
}

/// Merges consecutive deltas into one: for each key, the last operation wins
/// ([`Ops::coalesce`]). Returns the final version, the upserts and the deletes, in key order.
pub fn coalesce(deltas: &[Arc<Delta>]) -> (u64, Vec<(RowKey, RowValue)>, Vec<RowKey>) {
    let version = deltas.last().map_or(0, |d| d.version);
    let ops = Ops::coalesce(
        deltas
            .iter()
            .map(|d| (d.upserts.as_slice(), d.deletes.as_slice())),
    );
    (version, ops.upserts, ops.deletes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alkaid_model::Vni;
    use alkaid_model::table::{PeerEntry, VpcEntry};
    use std::net::Ipv4Addr;

    fn d(name: &str) -> DropletName {
        DropletName::new(name).unwrap()
    }

    fn delta(v: u64, up: &[u32], del: &[u32]) -> Delta {
        let key = |n: u32| RowKey::Vpc {
            vni: Vni::new(u64::from(n)).unwrap(),
        };
        Delta {
            droplet: d("a"),
            version: v,
            upserts: up
                .iter()
                .map(|n| {
                    (
                        key(*n),
                        RowValue::Vpc(VpcEntry {
                            dividers: vec![Ipv4Addr::from(v as u32)],
                        }),
                    )
                })
                .collect(),
            deletes: del.iter().map(|n| key(*n)).collect(),
        }
    }

    #[test]
    fn since_serves_exactly_the_missing_deltas() {
        let feed = Feed::new(100);
        feed.push(vec![delta(1, &[1], &[])]);
        feed.push(vec![delta(2, &[2], &[])]);
        feed.push(vec![delta(3, &[], &[1])]);
        let Since::Deltas(ds) = feed.since(&d("a"), 1) else {
            panic!("expected deltas");
        };
        assert_eq!(ds.iter().map(|d| d.version).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(feed.since(&d("a"), 3), Since::UpToDate);
        assert_eq!(feed.since(&d("b"), 0), Since::Gone);
    }

    #[test]
    fn cap_drops_oldest_and_forces_full_sync() {
        let feed = Feed::new(3);
        for v in 1..=5 {
            feed.push(vec![delta(v, &[v as u32], &[])]);
        }
        assert_eq!(feed.retained_rows("a"), 3);
        assert_eq!(feed.since(&d("a"), 1), Since::Gone);
        assert!(matches!(feed.since(&d("a"), 2), Since::Deltas(ref v) if v.len() == 3));
        feed.reset([(d("a"), 5)]);
        assert_eq!(feed.retained_rows("a"), 0);
        assert_eq!(feed.since(&d("a"), 4), Since::Gone);
        assert_eq!(feed.since(&d("a"), 5), Since::UpToDate);
    }

    #[test]
    fn coalesce_keeps_last_operation_per_key() {
        let ds: Vec<Arc<Delta>> = vec![
            Arc::new(delta(4, &[1, 2], &[])),
            Arc::new(delta(5, &[], &[1])),
            Arc::new(delta(6, &[3], &[2])),
            Arc::new(delta(7, &[2], &[])),
        ];
        let (v, up, del) = coalesce(&ds);
        assert_eq!(v, 7);
        assert_eq!(up.len(), 2); // 2 (re-added) and 3
        assert_eq!(del.len(), 1); // 1
        let _ = PeerEntry {
            mac: alkaid_model::MacAddr([0; 6]),
        };
    }
}
