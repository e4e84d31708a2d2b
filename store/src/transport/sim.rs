//! An in-process network for deterministic tests: every send goes through one seeded RNG that
//! decides loss and delay (random delays also reorder), with per-link cuts for partitions.
//!
//! Run it on a current-thread tokio runtime with paused time: delivery is driven by one task
//! that pops messages in (due time, sequence) order, so a seed replays the same schedule.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use raft::eraftpb::{Message, MessageType};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{BoxFuture, Transport};
use crate::node::{Applied, Node};
use crate::{Error, Result};

/// Fault knobs applied to every link.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Probability that a message is lost.
    pub drop_rate: f64,
    /// Smallest one-way delay.
    pub min_delay: Duration,
    /// Largest one-way delay (delays are uniform in between, so messages reorder).
    pub max_delay: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            drop_rate: 0.0,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(3),
        }
    }
}

struct InFlight {
    due: Instant,
    seq: u64,
    msg: Message,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

struct Inner {
    rng: ChaCha8Rng,
    faults: Faults,
    nodes: BTreeMap<u64, Node>,
    cut: BTreeSet<(u64, u64)>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    delivered: u64,
    dropped: u64,
}

impl Inner {
    fn link_up(&self, from: u64, to: u64) -> bool {
        !self.cut.contains(&(from, to)) && self.nodes.contains_key(&to)
    }

    fn delay(&mut self) -> Duration {
        let (lo, hi) = (self.faults.min_delay, self.faults.max_delay);
        if hi <= lo {
            return lo;
        }
        lo + Duration::from_nanos(self.rng.random_range(0..(hi - lo).as_nanos() as u64))
    }
}

/// The simulated network shared by every replica of a test.
pub struct SimNetwork {
    inner: Mutex<Inner>,
    wake: Arc<Notify>,
}

impl SimNetwork {
    /// A network whose every random choice comes from `seed`. Spawns the delivery task on the
    /// current runtime; it ends when the network is dropped.
    pub fn new(seed: u64, faults: Faults) -> Arc<Self> {
        let net = Arc::new(Self {
            inner: Mutex::new(Inner {
                rng: ChaCha8Rng::seed_from_u64(seed),
                faults,
                nodes: BTreeMap::new(),
                cut: BTreeSet::new(),
                queue: BinaryHeap::new(),
                seq: 0,
                delivered: 0,
                dropped: 0,
            }),
            wake: Arc::new(Notify::new()),
        });
        tokio::spawn(deliver(Arc::downgrade(&net)));
        net
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("sim network lock poisoned")
    }

    /// The transport replica `id` uses.
    pub fn transport(self: &Arc<Self>, id: u64) -> Arc<SimTransport> {
        Arc::new(SimTransport {
            id,
            net: self.clone(),
        })
    }

    /// Connects a started replica (replacing a previous incarnation with the same id).
    pub fn register(&self, node: Node) {
        self.lock().nodes.insert(node.id(), node);
    }

    /// Disconnects a replica (it crashed): messages to it are lost.
    pub fn unregister(&self, id: u64) {
        self.lock().nodes.remove(&id);
    }

    /// Changes the fault knobs.
    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// Cuts every link between replicas in different groups (both directions).
    pub fn partition(&self, groups: &[&[u64]]) {
        let mut inner = self.lock();
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i != j {
                    for x in a.iter() {
                        for y in b.iter() {
                            inner.cut.insert((*x, *y));
                        }
                    }
                }
            }
        }
    }

    /// Cuts the one-way link `from -> to`.
    pub fn cut(&self, from: u64, to: u64) {
        self.lock().cut.insert((from, to));
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.lock().cut.clear();
    }

    /// Messages delivered and dropped so far.
    pub fn stats(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.delivered, inner.dropped)
    }

    fn send(&self, from: u64, messages: Vec<Message>) {
        let mut inner = self.lock();
        let now = Instant::now();
        for msg in messages {
            let rate = inner.faults.drop_rate;
            let lost = rate > 0.0 && inner.rng.random_bool(rate);
            if lost || !inner.link_up(from, msg.to) {
                inner.dropped += 1;
                if msg.get_msg_type() == MessageType::MsgSnapshot
                    && let Some(sender) = inner.nodes.get(&from)
                {
                    sender.report_snapshot(msg.to, false);
                }
                continue;
            }
            let due = now + inner.delay();
            inner.seq += 1;
            let seq = inner.seq;
            inner.queue.push(Reverse(InFlight { due, seq, msg }));
        }
        drop(inner);
        self.wake.notify_one();
    }
}

async fn deliver(net: Weak<SimNetwork>) {
    loop {
        let Some(n) = net.upgrade() else { return };
        let next_due = {
            let mut inner = n.lock();
            let now = Instant::now();
            while inner.queue.peek().is_some_and(|Reverse(f)| f.due <= now) {
                let Reverse(f) = inner.queue.pop().expect("peeked");
                let (from, to) = (f.msg.from, f.msg.to);
                if !inner.link_up(from, to) {
                    inner.dropped += 1;
                    continue;
                }
                inner.delivered += 1;
                let snapshot = f.msg.get_msg_type() == MessageType::MsgSnapshot;
                inner.nodes[&to].step(f.msg);
                if snapshot && let Some(sender) = inner.nodes.get(&from) {
                    sender.report_snapshot(to, true);
                }
            }
            inner.queue.peek().map(|Reverse(f)| f.due)
        };
        let notify = n.wake.clone();
        drop(n);
        let wake = notify.notified();
        match next_due {
            Some(due) => {
                tokio::select! {
                biased;
                    _ = tokio::time::sleep_until(due) => {}
                    _ = wake => {}
                }
            }
            None => {
                // Bounded wait so the task notices the network being dropped.
                tokio::select! {
                biased;
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = wake => {}
                }
            }
        }
    }
}

/// Replica `id`'s handle on a [`SimNetwork`].
pub struct SimTransport {
    id: u64,
    net: Arc<SimNetwork>,
}

impl Transport for SimTransport {
    fn send(&self, messages: Vec<Message>) {
        self.net.send(self.id, messages);
    }

    fn set_peer(&self, _id: u64, _address: &str) {}

    fn forward(&self, to: u64, command: Vec<u8>) -> BoxFuture<Result<Applied>> {
        let net = self.net.clone();
        let from = self.id;
        Box::pin(async move {
            let unreachable = || Error::Rpc {
                rpc: "Propose",
                peer: to,
                source: tonic::Status::unavailable("simulated link is down"),
            };
            let (node, delay) = {
                let mut inner = net.lock();
                if !inner.link_up(from, to) {
                    return Err(unreachable());
                }
                let delay = inner.delay();
                (inner.nodes[&to].clone(), delay)
            };
            tokio::time::sleep(delay).await;
            let result = node.propose_local(command).await;
            if !net.lock().link_up(to, from) {
                // The reply is lost: the caller cannot know whether it was applied.
                return Err(unreachable());
            }
            result
        })
    }
}
