//! Droplet health, decided on the leader's clock (the model never reads a clock).
//!
//! Agents prove they are alive with heartbeats and with any message on their programming
//! stream ([`Health::beat`]). Every `timeout / 4` the leader runs the pure [`decide`] over
//! the droplets' phases and last beats: a Ready droplet silent for `timeout` is proposed
//! Unreachable (the model re-places its roles and the new tables stream out); an
//! Unreachable droplet that beats again is proposed Ready. A replica that just became
//! leader gives every droplet a full `timeout` of grace, since it never saw their beats.
//!
//! Followers pass heartbeats on to the leader (see the Control API). The leader also
//! refreshes the droplets' `lastSeen` through Raft, coalesced: once per period, one
//! [`Entry::Seen`] names every droplet heard from since the last one, so `lastSeen` lags by
//! at most `timeout / 4` and costs at most one entry per period (however many droplets).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alkaid_model::resource::DropletPhase;
use alkaid_model::{Command, DropletName};
use tokio::time::Instant;

use crate::ctx::Ctx;
use crate::state::Entry;

/// Wall-clock milliseconds since the Unix epoch, stamped into `lastSeen`.
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[derive(Default)]
struct Beats {
    /// Last sign of life per droplet.
    last: HashMap<DropletName, Instant>,
    /// Droplets heard from since `lastSeen` was last recorded.
    fresh: BTreeSet<DropletName>,
}

/// Last heartbeat per droplet, as seen by this replica.
pub struct Health {
    last: Mutex<Beats>,
    /// Silence after which a droplet is Unreachable.
    pub timeout: Duration,
}

impl Health {
    /// A tracker declaring droplets Unreachable after `timeout` of silence.
    pub fn new(timeout: Duration) -> Self {
        Self {
            last: Mutex::new(Beats::default()),
            timeout,
        }
    }

    /// Records a sign of life from `droplet` now.
    pub fn beat(&self, droplet: &DropletName) {
        let now = Instant::now();
        let mut b = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match b.last.get_mut(droplet) {
            Some(t) => *t = now,
            None => {
                b.last.insert(droplet.clone(), now);
            }
        }
        if !b.fresh.contains(droplet) {
            b.fresh.insert(droplet.clone());
        }
    }

    fn snapshot(&self) -> HashMap<DropletName, Instant> {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last
            .clone()
    }

    /// The droplets heard from since the last call, in name order.
    pub fn take_fresh(&self) -> Vec<DropletName> {
        let mut b = self.last.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut b.fresh).into_iter().collect()
    }
}

/// The phase changes to propose now. `since` is when this replica became leader.
pub fn decide(
    now: Instant,
    since: Instant,
    timeout: Duration,
    droplets: &[(DropletName, DropletPhase)],
    last: &HashMap<DropletName, Instant>,
) -> Vec<(DropletName, DropletPhase)> {
    let mut out = Vec::new();
    for (d, phase) in droplets {
        // Beats from before this leadership do not count against a droplet.
        let seen = last.get(d).copied().unwrap_or(since).max(since);
        let silent = now.saturating_duration_since(seen) >= timeout;
        let beat_recently = last.get(d).is_some_and(|t| *t >= since && !silent);
        match phase {
            DropletPhase::Ready if silent => out.push((d.clone(), DropletPhase::Unreachable)),
            DropletPhase::Unreachable if beat_recently => {
                out.push((d.clone(), DropletPhase::Ready));
            }
            _ => {}
        }
    }
    out
}

/// The leader's health loop.
pub async fn run(ctx: Arc<Ctx>) {
    let period = (ctx.health.timeout / 4).max(Duration::from_millis(10));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut since: Option<Instant> = None;
    loop {
        tick.tick().await;
        if !ctx.is_leader() {
            since = None;
            ctx.health.take_fresh();
            continue;
        }
        let since = *since.get_or_insert_with(Instant::now);
        let droplets: Vec<(DropletName, DropletPhase)> = ctx.shared.read(|s| {
            s.list_droplets()
                .into_iter()
                .filter_map(|d| {
                    let name = DropletName::new(d.metadata.name).ok()?;
                    Some((name, d.status.map(|s| s.phase).unwrap_or_default()))
                })
                .collect()
        });
        let changes = decide(
            Instant::now(),
            since,
            ctx.health.timeout,
            &droplets,
            &ctx.health.snapshot(),
        );
        for (name, phase) in changes {
            tracing::info!(droplet = %name, %phase, "droplet health changed");
            let cmd = Command::SetDropletPhase {
                name: name.clone(),
                phase,
                seen: unix_millis(),
            };
            if let Err(e) = ctx.propose(&Entry::Command(cmd)).await {
                tracing::warn!(droplet = %name, error = %e, "could not record droplet health; retrying");
            }
        }
        let droplets = ctx.health.take_fresh();
        if !droplets.is_empty() {
            let seen = Entry::Seen {
                droplets,
                at: unix_millis(),
            };
            if let Err(e) = ctx.propose(&seen).await {
                // The next beats refresh it; lastSeen is informational only.
                tracing::debug!(error = %e, "could not record lastSeen");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: &str) -> DropletName {
        DropletName::new(n).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn silence_then_rejoin() {
        let timeout = Duration::from_secs(3);
        let h = Health::new(timeout);
        let since = Instant::now();
        let mut phases = vec![(d("a"), DropletPhase::Ready), (d("b"), DropletPhase::Ready)];
        h.beat(&d("a"));
        h.beat(&d("b"));
        tokio::time::advance(Duration::from_secs(2)).await;
        h.beat(&d("a"));
        assert!(decide(Instant::now(), since, timeout, &phases, &h.snapshot()).is_empty());
        tokio::time::advance(Duration::from_millis(1500)).await;
        // b silent for 3.5s, a for 1.5s.
        let got = decide(Instant::now(), since, timeout, &phases, &h.snapshot());
        assert_eq!(got, vec![(d("b"), DropletPhase::Unreachable)]);
        phases[1].1 = DropletPhase::Unreachable;
        // Still silent: nothing more to do.
        assert!(decide(Instant::now(), since, timeout, &phases, &h.snapshot()).is_empty());
        h.beat(&d("a"));
        h.beat(&d("b"));
        let got = decide(Instant::now(), since, timeout, &phases, &h.snapshot());
        assert_eq!(got, vec![(d("b"), DropletPhase::Ready)]);
    }

    #[tokio::test(start_paused = true)]
    async fn new_leader_gives_grace() {
        let timeout = Duration::from_secs(3);
        let h = Health::new(timeout);
        h.beat(&d("a")); // seen long before this leadership
        tokio::time::advance(Duration::from_secs(60)).await;
        let since = Instant::now();
        let phases = vec![
            (d("a"), DropletPhase::Ready),
            (d("never"), DropletPhase::Ready),
        ];
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(decide(Instant::now(), since, timeout, &phases, &h.snapshot()).is_empty());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            decide(Instant::now(), since, timeout, &phases, &h.snapshot()).len(),
            2
        );
    }
}
