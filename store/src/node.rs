//! [`Node`]: the cloneable handle through which clients, transports and tests talk to a
//! replica's driver task.

use std::sync::Arc;
use std::time::Duration;

use raft::eraftpb::Message;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument as _;

use crate::driver::{Inbound, Request};
use crate::transport::Transport;
use crate::{Error, Result};

/// How many times one proposal follows a "not the leader, try N" refusal before giving up.
pub const MAX_LEADER_HOPS: usize = 3;

/// A command applied by the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The log index of the command.
    pub index: u64,
    /// The state machine's reply.
    pub reply: Vec<u8>,
}

/// A membership change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// Add (or promote a learner to) a voter reachable at `address`.
    AddVoter {
        /// Its raft id (never reuse a removed id).
        id: u64,
        /// Its peer address, `host:port`.
        address: String,
    },
    /// Add a non-voting learner reachable at `address`.
    AddLearner {
        /// Its raft id.
        id: u64,
        /// Its peer address, `host:port`.
        address: String,
    },
    /// Remove a voter or learner.
    Remove {
        /// Its raft id.
        id: u64,
    },
}

/// How a read is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadConsistency {
    /// ReadIndex: confirmed with a quorum, then served once this replica applied that far.
    Linearizable,
    /// From this replica's state right now; may miss recent writes.
    Stale,
}

/// A point-in-time view of a replica.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// This replica.
    pub id: u64,
    /// The leader it knows of (0: none).
    pub leader_id: u64,
    /// Current term.
    pub term: u64,
    /// `Leader`, `Follower`, `Candidate` or `PreCandidate`.
    pub role: String,
    /// Highest index known committed.
    pub commit_index: u64,
    /// Highest index applied to the state machine.
    pub applied_index: u64,
    /// First index still in the log.
    pub first_index: u64,
    /// Last index in the log.
    pub last_index: u64,
    /// Voting members.
    pub voters: Vec<u64>,
    /// Learners.
    pub learners: Vec<u64>,
    /// Known member addresses.
    pub addresses: std::collections::BTreeMap<u64, String>,
}

impl Status {
    /// Whether this replica is the leader.
    pub fn is_leader(&self) -> bool {
        self.leader_id == self.id && self.role == "Leader"
    }
}

/// Handle to a running replica. Cheap to clone; the replica stops on [`Node::shutdown`].
#[derive(Clone)]
pub struct Node {
    pub(crate) id: u64,
    pub(crate) requests: mpsc::Sender<Request>,
    pub(crate) inbound: mpsc::Sender<Inbound>,
    pub(crate) status: watch::Receiver<Status>,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) timeout: Duration,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("id", &self.id).finish()
    }
}

impl Node {
    /// This replica's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The latest status.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// A watch of the status, to wait for conditions (leader known, index applied).
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Request) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let fut = async {
            self.requests
                .send(make(tx))
                .await
                .map_err(|_| Error::Stopped)?;
            rx.await.map_err(|_| Error::Stopped)?
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| Error::Timeout {
                after: self.timeout,
            })?
    }

    /// Proposes `command` and returns the state machine's reply once it is applied.
    /// A follower forwards the command to the leader it knows. While leadership moves, a
    /// refusal that names another leader is followed (at most [`MAX_LEADER_HOPS`] times,
    /// all within the request timeout): a refusal is a definite failure, so retrying cannot
    /// apply the command twice.
    ///
    /// # Errors
    ///
    /// [`Error::NotLeader`] when no leader is known (retry later); [`Error::Timeout`] or
    /// [`Error::OutcomeUnknown`] when the outcome is unknown; see
    /// [`Error::is_definite_failure`].
    pub async fn propose(&self, command: Vec<u8>) -> Result<Applied> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut target = self.status.borrow().leader_id;
        let mut hops = 0;
        loop {
            let attempt = self.propose_via(target, command.clone());
            let result = tokio::time::timeout_at(deadline, attempt)
                .await
                .map_err(|_| Error::Timeout {
                    after: self.timeout,
                })?;
            let Err(err) = result else {
                return result;
            };
            match err.leader_hint() {
                Some(next) if next != target && hops < MAX_LEADER_HOPS => {
                    tracing::debug!(
                        id = self.id,
                        from = target,
                        to = next,
                        "following leader hint"
                    );
                    target = next;
                    hops += 1;
                }
                _ => return Err(err),
            }
        }
    }

    /// One attempt: locally when `leader` is this replica or unknown, else forwarded.
    async fn propose_via(&self, leader: u64, command: Vec<u8>) -> Result<Applied> {
        if leader == 0 || leader == self.id {
            return self.propose_local(command).await;
        }
        let span = tracing::debug_span!("forward", from = self.id, to = leader);
        self.transport
            .forward(leader, command)
            .instrument(span)
            .await
    }

    /// Proposes on this replica only (no forwarding): fails with [`Error::NotLeader`] on a
    /// follower. Transports call this for forwarded proposals.
    pub async fn propose_local(&self, command: Vec<u8>) -> Result<Applied> {
        self.call(|tx| Request::Propose { command, tx }).await
    }

    /// Reads with `query` through [`crate::StateMachine::query`].
    ///
    /// # Errors
    ///
    /// [`Error::NotLeader`] when no leader is known for a linearizable read; [`Error::Timeout`].
    pub async fn read(&self, query: Vec<u8>, consistency: ReadConsistency) -> Result<Vec<u8>> {
        self.call(|tx| Request::Read {
            query,
            consistency,
            tx,
        })
        .await
    }

    /// Changes the membership (leader only), returning once the change is applied here.
    ///
    /// # Errors
    ///
    /// [`Error::NotLeader`] on a follower; [`Error::Raft`] if a change is still pending.
    pub async fn change_membership(&self, change: MemberChange) -> Result<Status> {
        self.call(|tx| Request::ChangeMembership { change, tx })
            .await?;
        Ok(self.status())
    }

    /// Replaces a dead member: removes `dead`, then adds `id` at `address` as a voter.
    ///
    /// # Errors
    ///
    /// As [`Node::change_membership`].
    pub async fn replace(&self, dead: u64, id: u64, address: String) -> Result<Status> {
        self.change_membership(MemberChange::Remove { id: dead })
            .await?;
        self.change_membership(MemberChange::AddVoter { id, address })
            .await
    }

    /// Delivers a raft message from a peer. Never blocks: when the queue is full the message
    /// is dropped (raft retransmits).
    pub fn step(&self, message: Message) {
        let _ = self.inbound.try_send(Inbound::Message(Box::new(message)));
    }

    /// Tells the driver that `peer` could not be reached.
    pub fn report_unreachable(&self, peer: u64) {
        let _ = self.inbound.try_send(Inbound::Unreachable(peer));
    }

    /// Tells the driver whether a snapshot sent to `peer` arrived.
    pub fn report_snapshot(&self, peer: u64, delivered: bool) {
        let _ = self.inbound.try_send(Inbound::Snapshot { peer, delivered });
    }

    /// Stops the driver task and waits for it to exit.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.requests.send(Request::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::transport::BoxFuture;

    /// Answers each forward with the next scripted answer, recording the targets.
    struct ScriptedTransport {
        answers: Mutex<Vec<Result<Applied>>>,
        targets: Mutex<Vec<u64>>,
    }

    impl Transport for ScriptedTransport {
        fn send(&self, _: Vec<Message>) {}
        fn set_peer(&self, _: u64, _: &str) {}
        fn forward(&self, to: u64, _: Vec<u8>) -> BoxFuture<Result<Applied>> {
            self.targets.lock().unwrap().push(to);
            let answer = self.answers.lock().unwrap().remove(0);
            Box::pin(async move { answer })
        }
    }

    fn refusal_from(peer: u64, hint: u64) -> Error {
        let status = tonic::Status::from(Error::NotLeader {
            id: peer,
            leader: Some(hint),
        });
        Error::Rpc {
            rpc: "Propose",
            peer,
            source: status,
        }
    }

    /// A replica 1 that believes `known_leader` leads, whose own driver refuses with
    /// `local_hint`, and whose forwards get `answers` in order.
    fn node(
        known_leader: u64,
        local_hint: Option<u64>,
        answers: Vec<Result<Applied>>,
    ) -> (Node, Arc<ScriptedTransport>) {
        let (requests, mut rx) = mpsc::channel(8);
        let status = Status {
            id: 1,
            leader_id: known_leader,
            ..Status::default()
        };
        let (status_tx, status) = watch::channel(status);
        tokio::spawn(async move {
            let _status_tx = status_tx;
            while let Some(req) = rx.recv().await {
                if let Request::Propose { tx, .. } = req {
                    let _ = tx.send(Err(Error::NotLeader {
                        id: 1,
                        leader: local_hint,
                    }));
                }
            }
        });
        let (inbound, _) = mpsc::channel(1);
        let transport = Arc::new(ScriptedTransport {
            answers: Mutex::new(answers),
            targets: Mutex::new(Vec::new()),
        });
        let node = Node {
            id: 1,
            requests,
            inbound,
            status,
            transport: transport.clone(),
            timeout: Duration::from_secs(5),
        };
        (node, transport)
    }

    fn applied(index: u64) -> Result<Applied> {
        Ok(Applied {
            index,
            reply: b"ok".to_vec(),
        })
    }

    #[tokio::test]
    async fn a_refusal_naming_the_leader_is_followed() {
        // Leader unknown here; the driver knows it is 2; 2 has just handed over to 3.
        let (node, transport) = node(0, Some(2), vec![Err(refusal_from(2, 3)), applied(7)]);
        let got = node.propose(b"put".to_vec()).await.unwrap();
        assert_eq!(got.index, 7);
        assert_eq!(*transport.targets.lock().unwrap(), vec![2, 3]);
    }

    #[tokio::test]
    async fn hints_that_go_round_in_circles_end_after_the_hop_limit() {
        let answers = (0..10)
            .map(|i| Err(refusal_from(2 + i % 2, 3 - i % 2)))
            .collect();
        let (node, transport) = node(2, None, answers);
        let err = node.propose(b"put".to_vec()).await.unwrap_err();
        assert!(err.is_definite_failure(), "{err}");
        assert_eq!(transport.targets.lock().unwrap().len(), MAX_LEADER_HOPS + 1);
    }

    #[tokio::test]
    async fn no_hint_is_returned_at_once() {
        let (node, transport) = node(0, None, Vec::new());
        let err = node.propose(b"put".to_vec()).await.unwrap_err();
        assert!(
            matches!(err, Error::NotLeader { leader: None, .. }),
            "{err}"
        );
        assert!(transport.targets.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_leader_is_not_retried_here() {
        let unreachable = Error::Rpc {
            rpc: "Propose",
            peer: 2,
            source: tonic::Status::unavailable("connection refused"),
        };
        let (node, transport) = node(2, None, vec![Err(unreachable)]);
        let err = node.propose(b"put".to_vec()).await.unwrap_err();
        assert!(!err.is_definite_failure(), "{err}");
        assert_eq!(*transport.targets.lock().unwrap(), vec![2]);
    }
}
