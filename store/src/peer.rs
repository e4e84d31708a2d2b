//! [`Peer`]: raft-rs's `RawNode` plus the state machine and the tables of waiting requests.
//! No I/O and no async: the driver feeds it events and performs the storage writes and sends.

use std::collections::{BTreeMap, HashMap};

use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType, Snapshot,
};
use raft::{RawNode, StateRole};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::node::{Applied, MemberChange, Status};
use crate::{Error, LogStore, Result, StateMachine};

pub(crate) type ProposeTx = oneshot::Sender<Result<Applied>>;
pub(crate) type ReadTx = oneshot::Sender<Result<Vec<u8>>>;

/// What the store puts in a raft snapshot: the member addresses and the application state.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct SnapshotData {
    pub members: BTreeMap<u64, String>,
    pub state: Vec<u8>,
}

impl SnapshotData {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("encoding into a Vec cannot fail")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        postcard::from_bytes(bytes).map_err(|e| Error::Restore {
            reason: format!("store snapshot envelope: {e}"),
        })
    }
}

struct Pending {
    term: u64,
    deadline: u64,
    tx: ProposeTx,
}

struct PendingRead {
    query: Vec<u8>,
    deadline: u64,
    tx: ReadTx,
}

/// A replica's raft node, state machine and waiting requests.
pub(crate) struct Peer<S: LogStore, M: StateMachine> {
    pub raw: RawNode<S>,
    pub sm: M,
    pub members: BTreeMap<u64, String>,
    pub conf_state: ConfState,
    pub applied: u64,
    last_snapshot: u64,
    ticks: u64,
    timeout_ticks: u64,
    timeout: std::time::Duration,
    proposals: BTreeMap<u64, Pending>,
    /// Reads waiting for a ReadIndex answer, by request context.
    reads: HashMap<u64, Vec<PendingRead>>,
    read_deadlines: BTreeMap<u64, u64>,
    /// Reads with a known read index, waiting for `applied >= index`.
    ready_reads: Vec<(u64, PendingRead)>,
    next_read_ctx: u64,
    /// Set when membership changed, so the driver updates the transport.
    pub members_changed: bool,
}

impl<S: LogStore, M: StateMachine> Peer<S, M> {
    pub fn new(
        raw: RawNode<S>,
        sm: M,
        members: BTreeMap<u64, String>,
        applied: u64,
        timeout_ticks: u64,
        tick: std::time::Duration,
    ) -> Self {
        let conf_state = raw.raft.prs().conf().to_conf_state();
        Self {
            raw,
            sm,
            members,
            conf_state,
            applied,
            last_snapshot: applied,
            ticks: 0,
            timeout_ticks,
            timeout: tick * timeout_ticks as u32,
            proposals: BTreeMap::new(),
            reads: HashMap::new(),
            read_deadlines: BTreeMap::new(),
            ready_reads: Vec::new(),
            next_read_ctx: 1,
            members_changed: true,
        }
    }

    pub fn id(&self) -> u64 {
        self.raw.raft.id
    }

    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    fn not_leader(&self) -> Error {
        let leader = self.raw.raft.leader_id;
        Error::NotLeader {
            id: self.id(),
            leader: (leader != 0).then_some(leader),
        }
    }

    /// Proposes a command; the reply arrives on `tx` once the entry is applied.
    pub fn propose(&mut self, command: Vec<u8>, tx: ProposeTx) {
        let _span = tracing::debug_span!("propose", id = self.id(), len = command.len()).entered();
        if !self.is_leader() {
            let _ = tx.send(Err(self.not_leader()));
            return;
        }
        if let Err(e) = self.raw.propose(vec![], command) {
            let _ = tx.send(Err(Error::raft("propose")(e)));
            return;
        }
        self.track(tx);
    }

    fn track(&mut self, tx: ProposeTx) {
        let index = self.raw.raft.raft_log.last_index();
        let pending = Pending {
            term: self.raw.raft.term,
            deadline: self.ticks + self.timeout_ticks,
            tx,
        };
        self.proposals.insert(index, pending);
    }

    /// Proposes a membership change (leader only).
    pub fn change_membership(&mut self, change: MemberChange, tx: ProposeTx) {
        let _span = tracing::info_span!("change_membership", id = self.id(), ?change).entered();
        if !self.is_leader() {
            let _ = tx.send(Err(self.not_leader()));
            return;
        }
        if let MemberChange::Remove { id } = change
            && id == self.id()
        {
            // raft-rs 0.7 panics when a leader persists entries after applying its own
            // removal: hand leadership over first; the caller retries on the new leader.
            let target = self.best_voter_except_self();
            if let Some(target) = target {
                self.raw.transfer_leader(target);
            }
            let _ = tx.send(Err(Error::NotLeader {
                id: self.id(),
                leader: target,
            }));
            return;
        }
        let mut cc = ConfChange::default();
        match change {
            MemberChange::AddVoter { id, address } => {
                cc.set_change_type(ConfChangeType::AddNode);
                cc.node_id = id;
                cc.context = address.into_bytes().into();
            }
            MemberChange::AddLearner { id, address } => {
                cc.set_change_type(ConfChangeType::AddLearnerNode);
                cc.node_id = id;
                cc.context = address.into_bytes().into();
            }
            MemberChange::Remove { id } => {
                cc.set_change_type(ConfChangeType::RemoveNode);
                cc.node_id = id;
            }
        }
        if let Err(e) = self.raw.propose_conf_change(vec![], cc) {
            let _ = tx.send(Err(Error::raft("propose membership change")(e)));
            return;
        }
        self.track(tx);
    }

    /// Starts a batch of linearizable reads with one ReadIndex round.
    pub fn read_index(&mut self, batch: Vec<(Vec<u8>, ReadTx)>) {
        if batch.is_empty() {
            return;
        }
        if self.raw.raft.leader_id == 0 {
            for (_, tx) in batch {
                let _ = tx.send(Err(self.not_leader()));
            }
            return;
        }
        let ctx = self.next_read_ctx;
        self.next_read_ctx += 1;
        let deadline = self.ticks + self.timeout_ticks;
        let reads = batch
            .into_iter()
            .map(|(query, tx)| PendingRead {
                query,
                deadline,
                tx,
            })
            .collect();
        self.reads.insert(ctx, reads);
        self.read_deadlines.insert(ctx, deadline);
        self.raw.read_index(ctx.to_be_bytes().to_vec());
    }

    /// Answers a stale read from the local state machine right away.
    pub fn read_stale(&self, query: &[u8]) -> Vec<u8> {
        self.sm.query(query)
    }

    /// Records the read indexes raft confirmed.
    pub fn on_read_states(&mut self, states: Vec<raft::ReadState>) {
        for rs in states {
            let Ok(bytes) = <[u8; 8]>::try_from(rs.request_ctx.as_slice()) else {
                continue;
            };
            let ctx = u64::from_be_bytes(bytes);
            self.read_deadlines.remove(&ctx);
            if let Some(reads) = self.reads.remove(&ctx) {
                self.ready_reads
                    .extend(reads.into_iter().map(|r| (rs.index, r)));
            }
        }
        self.serve_reads();
    }

    fn serve_reads(&mut self) {
        let applied = self.applied;
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ready_reads)
            .into_iter()
            .partition(|(index, _)| *index <= applied);
        self.ready_reads = later;
        for (_, r) in now {
            let _ = r.tx.send(Ok(self.sm.query(&r.query)));
        }
    }

    /// One logical tick: raft timers and request deadlines.
    pub fn tick(&mut self) {
        self.raw.tick();
        self.ticks += 1;
        let now = self.ticks;
        let after = self.timeout;
        while let Some((&index, p)) = self.proposals.first_key_value() {
            if p.deadline > now {
                break;
            }
            // Proposals are tracked in index order and deadlines grow with time, so the
            // oldest index expires first (approximately; later ones are checked next tick).
            let p = self.proposals.remove(&index).expect("present");
            let _ = p.tx.send(Err(Error::Timeout { after }));
        }
        let expired: Vec<u64> = self
            .read_deadlines
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(c, _)| *c)
            .collect();
        for ctx in expired {
            self.read_deadlines.remove(&ctx);
            for r in self.reads.remove(&ctx).unwrap_or_default() {
                let _ = r.tx.send(Err(Error::Timeout { after }));
            }
        }
        let (expired, live): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ready_reads)
            .into_iter()
            .partition(|(_, r)| r.deadline <= now);
        self.ready_reads = live;
        for (_, r) in expired {
            let _ = r.tx.send(Err(Error::Timeout { after }));
        }
    }

    /// Installs a snapshot received from the leader into the state machine.
    pub fn restore(&mut self, snap: &Snapshot) -> Result<()> {
        let _span =
            tracing::info_span!("restore", id = self.id(), index = snap.get_metadata().index)
                .entered();
        let data = SnapshotData::decode(snap.get_data())?;
        self.sm.restore(&data.state)?;
        self.members = data.members;
        self.members_changed = true;
        self.conf_state = snap.get_metadata().get_conf_state().clone();
        self.applied = snap.get_metadata().index;
        self.last_snapshot = self.applied;
        // Proposals this replica led at covered indexes: their outcome is unknown here.
        let covered: Vec<u64> = self
            .proposals
            .range(..=self.applied)
            .map(|(i, _)| *i)
            .collect();
        for index in covered {
            let p = self.proposals.remove(&index).expect("present");
            let _ = p.tx.send(Err(Error::OutcomeUnknown { index }));
        }
        self.serve_reads();
        Ok(())
    }

    /// Applies committed entries in order, answering the proposals this replica made.
    pub fn apply(&mut self, entries: Vec<Entry>) -> Result<()> {
        for e in entries {
            if e.index <= self.applied {
                continue;
            }
            let _span = tracing::trace_span!("apply", id = self.id(), index = e.index).entered();
            let reply = match e.get_entry_type() {
                EntryType::EntryNormal if e.data.is_empty() => Vec::new(),
                EntryType::EntryNormal => self.sm.apply(e.index, &e.data),
                EntryType::EntryConfChange => {
                    let cc = ConfChange::parse_from_bytes(&e.data)
                        .map_err(Error::decode("conf change"))?;
                    self.apply_conf_change(&cc)?;
                    Vec::new()
                }
                EntryType::EntryConfChangeV2 => {
                    let cc = ConfChangeV2::parse_from_bytes(&e.data)
                        .map_err(Error::decode("conf change v2"))?;
                    self.conf_state = self
                        .raw
                        .apply_conf_change(&cc)
                        .map_err(Error::raft("apply conf change"))?;
                    Vec::new()
                }
            };
            self.applied = e.index;
            if let Some(p) = self.proposals.remove(&e.index) {
                let result = if p.term == e.term {
                    Ok(Applied {
                        index: e.index,
                        reply,
                    })
                } else {
                    Err(Error::ProposalDropped {
                        index: e.index,
                        term: p.term,
                    })
                };
                let _ = p.tx.send(result);
            }
        }
        self.serve_reads();
        Ok(())
    }

    fn apply_conf_change(&mut self, cc: &ConfChange) -> Result<()> {
        self.conf_state = self
            .raw
            .apply_conf_change(cc)
            .map_err(Error::raft("apply conf change"))?;
        let (context, node) = (&cc.context, cc.node_id);
        match cc.get_change_type() {
            ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                if !context.is_empty() {
                    self.members
                        .insert(node, String::from_utf8_lossy(context).into_owned());
                }
            }
            ConfChangeType::RemoveNode => {
                self.members.remove(&node);
            }
        }
        self.members_changed = true;
        // A leader that removed itself hands leadership to the most caught-up voter.
        if self.is_leader()
            && !self.conf_state.voters.contains(&self.id())
            && let Some(target) = self.best_voter_except_self()
        {
            self.raw.transfer_leader(target);
        }
        Ok(())
    }

    fn best_voter_except_self(&self) -> Option<u64> {
        let voters = &self.conf_state.voters;
        self.raw
            .raft
            .prs()
            .iter()
            .filter(|(id, _)| **id != self.id() && voters.contains(id))
            .max_by_key(|(id, pr)| (pr.matched, std::cmp::Reverse(**id)))
            .map(|(id, _)| *id)
    }

    /// A snapshot of the state machine at `applied`, when `interval` entries were applied
    /// since the last one.
    pub fn maybe_snapshot(&mut self, interval: u64) -> Result<Option<Snapshot>> {
        if self.applied < self.last_snapshot + interval {
            return Ok(None);
        }
        let _span = tracing::info_span!("snapshot", id = self.id(), index = self.applied).entered();
        let term = raft::Storage::term(self.raw.store(), self.applied)
            .map_err(Error::raft("snapshot term"))?;
        let mut snap = Snapshot::default();
        let data = SnapshotData {
            members: self.members.clone(),
            state: self.sm.snapshot(),
        };
        snap.set_data(data.encode().into());
        let meta = snap.mut_metadata();
        meta.index = self.applied;
        meta.term = term;
        meta.set_conf_state(self.conf_state.clone());
        self.last_snapshot = self.applied;
        Ok(Some(snap))
    }

    /// A point-in-time view for [`crate::Node::status`].
    pub fn status(&self) -> Status {
        let raft = &self.raw.raft;
        let voters: Vec<u64> = self.conf_state.voters.clone();
        Status {
            id: raft.id,
            leader_id: raft.leader_id,
            term: raft.term,
            role: format!("{:?}", raft.state),
            commit_index: raft.raft_log.committed,
            applied_index: self.applied,
            first_index: raft::Storage::first_index(self.raw.store()).unwrap_or(0),
            last_index: raft.raft_log.last_index(),
            voters,
            learners: self.conf_state.learners.clone(),
            addresses: self.members.clone(),
        }
    }
}
