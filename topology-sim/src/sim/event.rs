//! The event queue of the discrete-event loop: events ordered by simulated time, ties
//! broken by insertion order, so a run is a pure function of the scenario and seed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use alkaid_model::Delta;

/// What happens at an instant.
#[derive(Debug)]
pub enum Kind {
    /// A churn endpoint create.
    Create,
    /// A churn endpoint delete.
    Delete,
    /// Flow number `n` starts.
    Flow(u64),
    /// Failure `i` takes its droplets down.
    Fail(usize),
    /// Health checks notice failure `i`: the model marks its droplets Unreachable.
    Detect(usize),
    /// The droplets of failure `i` come back.
    Return(usize),
    /// An agent finishes applying a delta (or a full sync, built as a delta).
    Apply {
        /// Droplet index.
        droplet: u32,
        /// Agent generation when sent.
        generation: u32,
        /// Whether this is a full sync (replaces the agent's version).
        sync: bool,
        /// The rows.
        delta: Box<Delta>,
    },
    /// An acknowledgement reaches the leader.
    Ack {
        /// Droplet index.
        droplet: u32,
        /// Agent generation when sent.
        generation: u32,
        /// Version applied.
        version: u64,
    },
    /// Record a time-series point.
    Sample,
}

/// An event at a time.
#[derive(Debug)]
pub struct Event {
    /// Simulated nanoseconds.
    pub at: u64,
    seq: u64,
    /// What happens.
    pub kind: Kind,
}

impl PartialEq for Event {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Event {
    /// Reversed, so the max-heap pops the earliest event first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// The pending events.
#[derive(Debug, Default)]
pub struct Queue {
    heap: BinaryHeap<Event>,
    seq: u64,
}

impl Queue {
    /// Schedules `kind` at `at`.
    pub fn push(&mut self, at: u64, kind: Kind) {
        self.seq += 1;
        self.heap.push(Event {
            at,
            seq: self.seq,
            kind,
        });
    }

    /// The earliest event.
    pub fn pop(&mut self) -> Option<Event> {
        self.heap.pop()
    }

    /// Time of the earliest event.
    pub fn peek_at(&self) -> Option<u64> {
        self.heap.peek().map(|e| e.at)
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_ties_in_order() {
        let mut q = Queue::default();
        q.push(5, Kind::Flow(0));
        q.push(1, Kind::Flow(1));
        q.push(5, Kind::Flow(2));
        q.push(3, Kind::Flow(3));
        assert_eq!(q.peek_at(), Some(1));
        let order: Vec<u64> = std::iter::from_fn(|| q.pop())
            .map(|e| match e.kind {
                Kind::Flow(n) => n,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(order, vec![1, 3, 0, 2]);
        assert!(q.is_empty());
    }
}
