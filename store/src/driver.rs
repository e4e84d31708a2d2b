//! The driver: one tokio task per replica that owns the [`Peer`] and does its I/O, in
//! raft-rs's documented `Ready` order:
//!
//! 1. receive: block for one event, then drain what is queued (up to `max_batch`), stepping
//!    every message and proposal into raft: this is the group commit;
//! 2. `ready()`: send the leader's messages (they may precede the local fsync), install a
//!    received snapshot, apply committed entries, append the new entries and hard state in one
//!    sled batch and fsync once, then send the messages that needed the fsync;
//! 3. `advance()`: record the commit index, send, apply, `advance_apply()`;
//! 4. snapshot and compact every `snapshot_interval` applied entries.

use std::sync::Arc;

use raft::eraftpb::Message;
use raft::{RawNode, SnapshotStatus};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::MissedTickBehavior;

use crate::config::{Bootstrap, NodeConfig};
use crate::node::{MemberChange, Node, ReadConsistency};
use crate::peer::{Peer, ProposeTx, ReadTx, SnapshotData};
use crate::transport::Transport;
use crate::{Error, LogStore, Result, StateMachine};

/// A client request to the driver.
pub(crate) enum Request {
    Propose {
        command: Vec<u8>,
        tx: ProposeTx,
    },
    Read {
        query: Vec<u8>,
        consistency: ReadConsistency,
        tx: ReadTx,
    },
    ChangeMembership {
        change: MemberChange,
        tx: ProposeTx,
    },
    Shutdown(oneshot::Sender<()>),
}

/// Traffic from peers and transport feedback.
pub(crate) enum Inbound {
    Message(Box<Message>),
    Unreachable(u64),
    Snapshot {
        peer: u64,
        delivered: bool,
    },
    /// Every ready up to this number is durable (from the persister thread).
    Persisted(u64),
    /// The persister could not fsync: the replica must stop.
    PersistFailed,
}

/// The fsync thread: takes (ready number, messages that wait for it), fsyncs once for
/// everything queued, reports `Persisted` to the driver (before sending, so that any answer
/// to these messages reaches the driver after it), then sends the messages.
fn spawn_persister<S: LogStore>(
    id: u64,
    store: S,
    transport: Arc<dyn Transport>,
    inbound: mpsc::Sender<Inbound>,
) -> std::sync::mpsc::Sender<(u64, Vec<Message>)> {
    let (tx, rx) = std::sync::mpsc::channel::<(u64, Vec<Message>)>();
    let runtime = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name(format!("alkaid-fsync-{id}"))
        .spawn(move || {
            let _guard = runtime.enter();
            while let Ok((mut number, mut messages)) = rx.recv() {
                while let Ok((n, m)) = rx.try_recv() {
                    number = n;
                    messages.extend(m);
                }
                let t = std::time::Instant::now();
                if let Err(e) = store.sync() {
                    tracing::error!(id, error = %e, "fsync failed");
                    let _ = inbound.blocking_send(Inbound::PersistFailed);
                    return;
                }
                let took = t.elapsed();
                if took > std::time::Duration::from_millis(20) {
                    tracing::warn!(id, ?took, "slow fsync");
                }
                if inbound.blocking_send(Inbound::Persisted(number)).is_err() {
                    return;
                }
                if !messages.is_empty() {
                    transport.send(messages);
                }
            }
        })
        .expect("spawning the fsync thread");
    tx
}

/// Starts a replica: recovers the state machine from `storage` (bootstrapping it on a first
/// start), then spawns the driver task on the current tokio runtime.
///
/// # Errors
///
/// [`Error::Config`] for an invalid config; storage and restore errors.
pub fn start<S, M>(
    config: NodeConfig,
    storage: S,
    mut sm: M,
    transport: Arc<dyn Transport>,
) -> Result<Node>
where
    S: LogStore,
    M: StateMachine,
{
    config.validate()?;
    let mut members = config.peers.clone();
    if !storage.is_initialized()?
        && let Bootstrap::Initial(voters) = &config.bootstrap
    {
        let cs = raft::eraftpb::ConfState {
            voters: voters.clone(),
            ..Default::default()
        };
        let data = SnapshotData {
            members: members.clone(),
            state: sm.snapshot(),
        };
        storage.bootstrap(cs, data.encode())?;
    }
    let mut applied = 0;
    if let Some(snap) = storage.latest_snapshot()? {
        let data = SnapshotData::decode(snap.get_data())?;
        sm.restore(&data.state)?;
        members.extend(data.members);
        applied = snap.get_metadata().index;
    }
    for (id, addr) in &members {
        transport.set_peer(*id, addr);
    }
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let raw = RawNode::new(&config.raft_config(applied), storage, &logger)
        .map_err(Error::raft("start raft node"))?;
    let peer = Peer::new(
        raw,
        sm,
        members,
        applied,
        config.request_timeout_ticks,
        config.tick_interval,
    );
    let (req_tx, req_rx) = mpsc::channel(config.queue_depth);
    let (in_tx, in_rx) = mpsc::channel(config.queue_depth);
    let (status_tx, status_rx) = watch::channel(peer.status());
    let node = Node {
        id: config.id,
        requests: req_tx,
        inbound: in_tx.clone(),
        status: status_rx,
        transport: transport.clone(),
        timeout: config.client_timeout,
    };
    let persister = config.async_persist.then(|| {
        spawn_persister(
            config.id,
            peer.raw.store().clone(),
            transport.clone(),
            in_tx,
        )
    });
    let driver = Driver {
        stats: Stats::default(),
        persister,
        last_submitted: 0,
        last_persisted: 0,
        failed: false,
        peer,
        transport,
        status: status_tx,
        config,
    };
    tokio::spawn(driver.run(req_rx, in_rx));
    Ok(node)
}

/// Counters logged at debug level, to see how well proposals are batched.
#[derive(Default)]
struct Stats {
    readies: u64,
    entries: u64,
    syncs: u64,
    sync_time: std::time::Duration,
    ready_time: std::time::Duration,
    since: Option<std::time::Instant>,
}

impl Stats {
    fn maybe_log(&mut self, id: u64) {
        let since = *self.since.get_or_insert_with(std::time::Instant::now);
        if since.elapsed() < std::time::Duration::from_secs(2) {
            return;
        }
        tracing::debug!(
            id,
            readies = self.readies,
            entries = self.entries,
            syncs = self.syncs,
            sync_us = self.sync_time.as_micros() as u64 / self.syncs.max(1),
            ready_us = self.ready_time.as_micros() as u64 / self.readies.max(1),
            "driver stats (per-sync and per-ready averages)"
        );
        *self = Stats::default();
    }
}

struct Driver<S: LogStore, M: StateMachine> {
    stats: Stats,
    /// The fsync thread (`None`: fsync inline, for deterministic simulation).
    persister: Option<std::sync::mpsc::Sender<(u64, Vec<Message>)>>,
    /// Highest ready number handed to the persister, and highest it confirmed.
    last_submitted: u64,
    last_persisted: u64,
    failed: bool,
    peer: Peer<S, M>,
    transport: Arc<dyn Transport>,
    status: watch::Sender<crate::node::Status>,
    config: NodeConfig,
}

impl<S: LogStore, M: StateMachine> Driver<S, M> {
    async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request>,
        mut inbound: mpsc::Receiver<Inbound>,
    ) {
        let id = self.config.id;
        let mut ticker = tokio::time::interval(self.config.tick_interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut shutdown = None;
        loop {
            let mut reads = Vec::new();
            tokio::select! {
                biased;
                _ = ticker.tick() => self.peer.tick(),
                Some(msg) = inbound.recv() => self.on_inbound(msg),
                Some(req) = requests.recv() => {
                    if let Some(tx) = self.on_request(req, &mut reads) { shutdown = Some(tx); }
                }
                else => break,
            }
            // Group commit: everything already queued joins this Ready and its one fsync.
            for _ in 0..self.config.max_batch {
                match inbound.try_recv() {
                    Ok(msg) => self.on_inbound(msg),
                    Err(_) => break,
                }
            }
            for _ in 0..self.config.max_batch {
                if shutdown.is_some() {
                    break;
                }
                match requests.try_recv() {
                    Ok(req) => {
                        if let Some(tx) = self.on_request(req, &mut reads) {
                            shutdown = Some(tx);
                        }
                    }
                    Err(_) => break,
                }
            }
            self.peer.read_index(reads);
            if self.failed {
                tracing::error!(id, "replica stopped: fsync failed");
                break;
            }
            if let Err(e) = self.on_ready() {
                tracing::error!(id, error = %e, "replica stopped on a storage or raft error");
                break;
            }
            self.status.send_if_modified(|s| {
                let new = self.peer.status();
                let changed = *s != new;
                *s = new;
                changed
            });
            if let Some(tx) = shutdown.take() {
                let _ = tx.send(());
                break;
            }
        }
        tracing::info!(id, "replica driver exited");
    }

    fn on_inbound(&mut self, msg: Inbound) {
        match msg {
            Inbound::Message(m) => {
                let _span =
                    tracing::trace_span!("step", id = self.config.id, from = m.from).entered();
                // Errors here are messages from unknown or removed peers; raft ignores them.
                let _ = self.peer.raw.step(*m);
            }
            Inbound::Unreachable(peer) => self.peer.raw.report_unreachable(peer),
            Inbound::Persisted(number) => {
                self.last_persisted = self.last_persisted.max(number);
                self.peer.raw.on_persist_ready(number);
            }
            Inbound::PersistFailed => self.failed = true,
            Inbound::Snapshot { peer, delivered } => {
                let status = if delivered {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                self.peer.raw.report_snapshot(peer, status);
            }
        }
    }

    fn on_request(
        &mut self,
        req: Request,
        reads: &mut Vec<(Vec<u8>, ReadTx)>,
    ) -> Option<oneshot::Sender<()>> {
        match req {
            Request::Propose { command, tx } => self.peer.propose(command, tx),
            Request::Read {
                query,
                consistency: ReadConsistency::Linearizable,
                tx,
            } => reads.push((query, tx)),
            Request::Read {
                query,
                consistency: ReadConsistency::Stale,
                tx,
            } => {
                let _ = tx.send(Ok(self.peer.read_stale(&query)));
            }
            Request::ChangeMembership { change, tx } => self.peer.change_membership(change, tx),
            Request::Shutdown(tx) => return Some(tx),
        }
        None
    }

    fn send(&self, msgs: Vec<Message>) {
        if !msgs.is_empty() {
            self.transport.send(msgs);
        }
    }

    /// Handles readies until raft has nothing more (bounded), then snapshots if due.
    fn on_ready(&mut self) -> Result<()> {
        for _ in 0..8 {
            if !self.peer.raw.has_ready() {
                break;
            }
            self.handle_ready()?;
        }
        self.stats.maybe_log(self.config.id);
        self.after_apply()
    }

    fn handle_ready(&mut self) -> Result<()> {
        let started = std::time::Instant::now();
        let mut ready = self.peer.raw.ready();
        let number = ready.number();
        // 1. The leader's messages may be sent before its own fsync (raft thesis 10.2.1).
        self.send(ready.take_messages());
        // 2. A snapshot from the leader replaces the log and the state machine.
        let mut inline_sync = self.persister.is_none();
        let has_snapshot = !ready.snapshot().is_empty();
        if has_snapshot {
            let snap = ready.snapshot().clone();
            self.peer.raw.store().apply_snapshot(&snap)?;
            self.peer.restore(&snap)?;
            // raft only accepts `applied` = snapshot index once the snapshot is persisted.
            inline_sync = true;
        }
        let must_sync = ready.must_sync() || has_snapshot;
        // 3. Entries committed (and already persisted) earlier.
        self.peer.apply(ready.take_committed_entries())?;
        // 4. New entries and hard state: one atomic sled batch (durable at the next fsync).
        let entries = ready.take_entries();
        self.stats.entries += entries.len() as u64;
        if !entries.is_empty() || ready.hs().is_some() {
            self.peer.raw.store().append(&entries, ready.hs())?;
        }
        self.peer.on_read_states(ready.take_read_states());
        let persisted = ready.take_persisted_messages();
        self.peer.raw.advance_append_async(ready);
        // 5. Votes and append responses only after the fsync covering this ready.
        let outstanding = self.last_submitted > self.last_persisted;
        if !must_sync && !outstanding {
            self.send(persisted);
            self.peer.raw.on_persist_ready(number);
        } else if inline_sync {
            let t = std::time::Instant::now();
            self.peer.raw.store().sync()?;
            self.stats.syncs += 1;
            self.stats.sync_time += t.elapsed();
            self.last_persisted = self.last_persisted.max(number);
            self.send(persisted);
            self.peer.raw.on_persist_ready(number);
        } else if let Some(persister) = &self.persister {
            self.stats.syncs += 1;
            self.last_submitted = number;
            if persister.send((number, persisted)).is_err() {
                return Err(Error::Stopped);
            }
        }
        self.peer.raw.advance_apply_to(self.peer.applied);
        self.stats.readies += 1;
        self.stats.ready_time += started.elapsed();
        Ok(())
    }

    fn after_apply(&mut self) -> Result<()> {
        if self.peer.members_changed {
            self.peer.members_changed = false;
            for (id, addr) in &self.peer.members {
                self.transport.set_peer(*id, addr);
            }
        }
        if let Some(snap) = self.peer.maybe_snapshot(self.config.snapshot_interval)? {
            let t = std::time::Instant::now();
            let store = self.peer.raw.store();
            store.store_snapshot(&snap)?;
            let index = snap.get_metadata().index;
            let compact = (index + 1).saturating_sub(self.config.compact_margin);
            if compact > store.first_index().map_err(Error::raft("first index"))? {
                store.compact(compact)?;
            }
            tracing::info!(
                id = self.config.id,
                index,
                compact,
                took = ?t.elapsed(),
                bytes = snap.get_data().len(),
                "snapshot taken, log compacted"
            );
        }
        Ok(())
    }
}
