//! Batching acknowledgements: stream tasks record the highest version each droplet applied;
//! the leader's flush loop proposes them as one [`Entry::Acks`]. An ack arriving when the
//! loop is idle is proposed at once (no timer in the Ready path); acks arriving while one
//! entry is in flight wait for it and go out together in the next, at most one entry per
//! `interval`, so status turns Ready with a bounded number of Raft entries however many
//! agents acknowledge.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use alkaid_model::DropletName;
use tokio::sync::Notify;
use tracing::Instrument as _;

use crate::ctx::Ctx;
use crate::state::Entry;

/// Pending acknowledgements, highest version per droplet.
#[derive(Default)]
pub struct AckBatcher {
    pending: Mutex<HashMap<DropletName, u64>>,
    wake: Notify,
}

impl AckBatcher {
    /// Records that `droplet` applied its table up to `version`, and wakes the flush loop.
    pub fn record(&self, droplet: &DropletName, version: u64) {
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            match p.get_mut(droplet) {
                Some(v) => *v = (*v).max(version),
                None => {
                    p.insert(droplet.clone(), version);
                }
            }
        }
        self.wake.notify_one();
    }

    /// Waits until something was recorded since the last wait (returns at once if so).
    pub async fn recorded(&self) {
        self.wake.notified().await;
    }

    /// Takes everything pending, sorted by droplet (deterministic entries).
    pub fn take(&self) -> Vec<(DropletName, u64)> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(DropletName, u64)> = p.drain().collect();
        out.sort();
        out
    }

    /// Puts back acks whose proposal failed (unless newer ones arrived meanwhile).
    pub fn restore(&self, acks: Vec<(DropletName, u64)>) {
        for (d, v) in acks {
            self.record(&d, v);
        }
    }
}

/// Drops acks the model already has (or that are ahead of the table, which cannot be).
fn useful(ctx: &Ctx, acks: Vec<(DropletName, u64)>) -> Vec<(DropletName, u64)> {
    ctx.shared.read(|s| {
        acks.into_iter()
            .filter(|(d, v)| {
                s.get_droplet(d.as_str()).is_some() && *v <= s.version(d.as_str()) && *v > 0
            })
            .collect()
    })
}

/// The leader's flush loop: proposes what is pending as soon as something is, one entry in
/// flight at a time and at most one per `interval`. On a follower it only discards (agents
/// re-acknowledge through Hello when they move to the new leader).
pub async fn flush_loop(ctx: std::sync::Arc<Ctx>, interval: Duration) {
    let mut last = tokio::time::Instant::now();
    loop {
        ctx.acks.recorded().await;
        // Rate bound only: when idle for `interval` already, this does not wait.
        tokio::time::sleep_until(last + interval).await;
        last = tokio::time::Instant::now();
        let acks = ctx.acks.take();
        if acks.is_empty() || !ctx.is_leader() {
            continue;
        }
        let acks = useful(&ctx, acks);
        if acks.is_empty() {
            continue;
        }
        let n = acks.len();
        let span = tracing::debug_span!("flush_acks", n);
        let res = ctx
            .propose(&Entry::Acks(acks.clone()))
            .instrument(span)
            .await;
        if let Err(e) = res {
            tracing::debug!(error = %e, n, "ack flush failed; retrying next interval");
            if ctx.is_leader() {
                ctx.acks.restore(acks);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_highest_version_per_droplet_sorted() {
        let b = AckBatcher::default();
        let d = |n: &str| DropletName::new(n).unwrap();
        b.record(&d("b"), 3);
        b.record(&d("a"), 5);
        b.record(&d("b"), 2);
        b.record(&d("b"), 7);
        assert_eq!(b.take(), vec![(d("a"), 5), (d("b"), 7)]);
        assert!(b.take().is_empty());
        b.restore(vec![(d("a"), 1)]);
        b.record(&d("a"), 4);
        assert_eq!(b.take(), vec![(d("a"), 4)]);
    }
}
