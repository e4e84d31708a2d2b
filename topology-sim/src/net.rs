//! The network and agent model: when a delta sent at `t` is applied on its droplet.
//!
//! A droplet's programming stream is ordered, so a delta arrives no earlier than the one
//! before it: `arrive = max(previous arrival, t + base + per_row * rows + jitter)`. The agent
//! applies deltas one at a time at `apply_rows_per_sec`: `done = max(arrive, agent free) +
//! rows / rate`. Times are integer nanoseconds of simulated clock.

use alkaid_model::{Delta, Table};
use rand::Rng;

use crate::scenario::Network;

/// Nanoseconds per millisecond.
pub const MS: u64 = 1_000_000;
/// Nanoseconds per second.
pub const SEC: u64 = 1_000_000_000;

/// Seconds (as in scenario files) to nanoseconds.
pub fn secs(s: f64) -> u64 {
    (s * SEC as f64).round() as u64
}

/// Nanoseconds to milliseconds.
pub fn to_ms(ns: u64) -> f64 {
    ns as f64 / MS as f64
}

/// One simulated droplet agent: what its maps hold and when its stream is free.
#[derive(Clone, Debug, Default)]
pub struct Agent {
    /// The rows the agent has applied (its BPF maps).
    pub table: Table,
    /// Whether the droplet is up (a down droplet's deltas are lost).
    pub up: bool,
    /// Bumped when the droplet goes down or comes back, so work scheduled before is dropped.
    pub generation: u32,
    /// Highest table version applied.
    pub version: u64,
    /// Version of the last delta sent (the agent is behind while `version < sent`).
    pub sent: u64,
    /// Arrival time of the last delta sent on the stream.
    pub stream_at: u64,
    /// When the agent finishes the work queued so far.
    pub busy_until: u64,
}

/// The latency model of one scenario.
#[derive(Clone, Debug)]
pub struct NetModel {
    cfg: Network,
}

impl NetModel {
    /// Builds the model.
    pub fn new(cfg: Network) -> Self {
        Self { cfg }
    }

    /// One-way delay of a message carrying `rows` rows.
    pub fn delay(&self, rows: usize, rng: &mut impl Rng) -> u64 {
        let jitter = if self.cfg.jitter_ms > 0.0 {
            // Exponential with the configured mean; 1 - u is in (0, 1].
            let u: f64 = rng.random();
            -(1.0 - u).ln() * self.cfg.jitter_ms
        } else {
            0.0
        };
        let ms = self.cfg.base_ms + self.cfg.per_row_us * rows as f64 / 1000.0 + jitter;
        (ms * MS as f64).round() as u64
    }

    /// Time the agent needs to write `rows` rows.
    pub fn apply_time(&self, rows: usize) -> u64 {
        (rows as f64 / self.cfg.apply_rows_per_sec * SEC as f64).round() as u64
    }

    /// Delay of an acknowledgement.
    pub fn ack_delay(&self) -> u64 {
        (self.cfg.ack_ms * MS as f64).round() as u64
    }

    /// Queues `rows` rows sent at `now` on `agent`'s stream; returns when they are applied.
    pub fn enqueue(&self, agent: &mut Agent, now: u64, rows: usize, rng: &mut impl Rng) -> u64 {
        let arrive = agent.stream_at.max(now + self.delay(rows, rng));
        agent.stream_at = arrive;
        let done = arrive.max(agent.busy_until) + self.apply_time(rows);
        agent.busy_until = done;
        done
    }
}

/// Rows a delta changes.
pub fn delta_rows(d: &Delta) -> usize {
    d.upserts.len() + d.deletes.len()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn model() -> NetModel {
        NetModel::new(Network {
            base_ms: 1.0,
            per_row_us: 10.0,
            jitter_ms: 0.0,
            apply_rows_per_sec: 1000.0,
            ack_ms: 2.0,
        })
    }

    #[test]
    fn stream_is_fifo_and_agent_serial() {
        let m = model();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut a = Agent::default();
        // 100 rows: 1 ms + 1 ms on the wire, then 100 ms to apply.
        let d1 = m.enqueue(&mut a, 0, 100, &mut rng);
        assert_eq!(d1, 2 * MS + 100 * MS);
        // A 1-row delta sent right after waits for the first to be applied.
        let d2 = m.enqueue(&mut a, 0, 1, &mut rng);
        assert_eq!(d2, d1 + MS);
        assert_eq!(m.ack_delay(), 2 * MS);
        assert_eq!(secs(1.5), 1_500 * MS);
        assert!((to_ms(d2) - 103.0).abs() < 1e-9);
    }

    #[test]
    fn jitter_is_positive_and_seeded() {
        let m = NetModel::new(Network::default());
        let mut r1 = ChaCha8Rng::seed_from_u64(7);
        let mut r2 = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..100 {
            let a = m.delay(0, &mut r1);
            assert!(a >= MS);
            assert_eq!(a, m.delay(0, &mut r2));
        }
    }
}
