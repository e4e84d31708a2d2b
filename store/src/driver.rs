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
    Snapshot { peer: u64, delivered: bool },
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
        inbound: in_tx,
        status: status_rx,
        transport: transport.clone(),
        timeout: config.client_timeout,
    };
    let driver = Driver {
        peer,
        transport,
        status: status_tx,
        config,
    };
    tokio::spawn(driver.run(req_rx, in_rx));
    Ok(node)
}

struct Driver<S: LogStore, M: StateMachine> {
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

    fn on_ready(&mut self) -> Result<()> {
        if !self.peer.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.peer.raw.ready();
        // 1. The leader's messages may be sent before its own fsync (raft thesis 10.2.1).
        self.send(ready.take_messages());
        // 2. A snapshot from the leader replaces the log and the state machine.
        let mut must_sync = ready.must_sync();
        if !ready.snapshot().is_empty() {
            let snap = ready.snapshot().clone();
            self.peer.raw.store().apply_snapshot(&snap)?;
            self.peer.restore(&snap)?;
            must_sync = true;
        }
        // 3. Entries committed (and already persisted) earlier.
        self.peer.apply(ready.take_committed_entries())?;
        // 4. New entries and hard state: one atomic batch, one fsync.
        let entries = ready.take_entries();
        let store = self.peer.raw.store();
        if !entries.is_empty() || ready.hs().is_some() {
            store.append(&entries, ready.hs())?;
        }
        if must_sync {
            store.sync()?;
        }
        self.peer.on_read_states(ready.take_read_states());
        // 5. Votes and append responses only after the fsync.
        self.send(ready.take_persisted_messages());
        let mut light = self.peer.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.peer.raw.store().set_commit(commit)?;
        }
        self.send(light.take_messages());
        self.peer.apply(light.take_committed_entries())?;
        self.peer.raw.advance_apply();
        self.after_apply()
    }

    fn after_apply(&mut self) -> Result<()> {
        if self.peer.members_changed {
            self.peer.members_changed = false;
            for (id, addr) in &self.peer.members {
                self.transport.set_peer(*id, addr);
            }
        }
        if let Some(snap) = self.peer.maybe_snapshot(self.config.snapshot_interval)? {
            let store = self.peer.raw.store();
            store.store_snapshot(&snap)?;
            let index = snap.get_metadata().index;
            let compact = (index + 1).saturating_sub(self.config.compact_margin);
            if compact > store.first_index().map_err(Error::raft("first index"))? {
                store.compact(compact)?;
            }
            tracing::debug!(
                id = self.config.id,
                index,
                compact,
                "snapshot taken, log compacted"
            );
        }
        Ok(())
    }
}
