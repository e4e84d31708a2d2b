//! [`Ctx`]: what every server task shares: the store handle, the applied state, the leader's
//! side-effect helpers (acks, health) and metrics. Also the write path (propose with retry
//! of definite failures) and the read barrier.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alkaid_model::Reply;
use alkaid_proto::v1::control_client::ControlClient;
use alkaid_store::transport::grpc::TlsConfig;
use alkaid_store::{Node, ReadConsistency};
use tonic::transport::Channel;

use crate::error::{Error, Result};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::program::acks::AckBatcher;
use crate::state::{Entry, Shared, decode_reply};

/// How long a write or barrier keeps retrying definite failures (no leader during an
/// election) before giving up with UNAVAILABLE.
const RETRY_FOR: Duration = Duration::from_secs(5);

/// Shared context of one operator replica.
pub struct Ctx {
    /// The store replica.
    pub node: Node,
    /// The applied state.
    pub shared: Arc<Shared>,
    /// Control API address of each replica (for leader hints); missing entries fall back to
    /// the replica's Raft address (right when both are served on one port).
    pub control_peers: BTreeMap<u64, String>,
    /// Identity of this cluster's table history (sent to agents in every full sync).
    pub epoch: u64,
    /// Acknowledgements waiting to be proposed.
    pub acks: AckBatcher,
    /// Heartbeats seen by this replica.
    pub health: Health,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Client TLS for calls to other replicas (forwarded heartbeats).
    pub tls: Option<TlsConfig>,
    /// A channel to the leader's control API, reused while the leader stays the same.
    pub leader_channel: Mutex<Option<(String, Channel)>>,
}

impl Ctx {
    /// The leader's control address, if a leader is known.
    pub fn leader_address(&self) -> Option<String> {
        let s = self.node.status();
        if s.leader_id == 0 {
            return None;
        }
        self.control_peers
            .get(&s.leader_id)
            .or_else(|| s.addresses.get(&s.leader_id))
            .cloned()
    }

    /// A Control client for the current leader (a cached lazy channel), if one is known.
    ///
    /// # Errors
    /// [`Error::Store`] (config) for an address or TLS setup the channel refuses.
    pub fn leader_client(&self) -> Result<Option<ControlClient<Channel>>> {
        let Some(address) = self.leader_address() else {
            return Ok(None);
        };
        let mut cached = self
            .leader_channel
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((a, ch)) = cached.as_ref()
            && *a == address
        {
            return Ok(Some(ControlClient::new(ch.clone())));
        }
        let ch = alkaid_store::transport::grpc::channel(&address, self.tls.as_ref())
            .map_err(|e| self.store_error("connect to the leader", e))?;
        *cached = Some((address, ch.clone()));
        Ok(Some(ControlClient::new(ch)))
    }

    /// Whether this replica leads now.
    pub fn is_leader(&self) -> bool {
        self.node.status().is_leader()
    }

    fn store_error(&self, op: &'static str, source: alkaid_store::Error) -> Error {
        Error::Store {
            op,
            leader: self.leader_address(),
            source,
        }
    }

    /// Proposes `entry` and returns the model's reply once it is applied here too (so the
    /// caller reads its own write on this replica).
    ///
    /// # Errors
    /// [`Error::Refused`] when the model refused it (nothing changed); [`Error::Store`] when
    /// no leader could take it in time or the outcome is unknown.
    pub async fn propose(&self, entry: &Entry) -> Result<Reply> {
        let bytes = entry.to_bytes();
        let deadline = tokio::time::Instant::now() + RETRY_FOR;
        let mut backoff = Duration::from_millis(10);
        let applied = loop {
            match self.node.propose(bytes.clone()).await {
                Ok(a) => break a,
                Err(e) if e.is_definite_failure() && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(200));
                }
                Err(e) => return Err(self.store_error("propose", e)),
            }
        };
        self.wait_applied(applied.index).await?;
        decode_reply(&applied.reply)
    }

    /// Waits until this replica has applied `index`.
    ///
    /// # Errors
    /// [`Error::Store`] (timeout) if it does not within the retry window.
    pub async fn wait_applied(&self, index: u64) -> Result<()> {
        let mut rx = self.shared.subscribe_applied();
        let wait = rx.wait_for(|a| *a >= index);
        match tokio::time::timeout(RETRY_FOR, wait).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(self.store_error(
                "catch up",
                alkaid_store::Error::Timeout { after: RETRY_FOR },
            )),
        }
    }

    /// A read barrier: after it, this replica's state includes every write committed before
    /// the call (ReadIndex), unless `stale`. Returns the applied index to read at.
    ///
    /// # Errors
    /// [`Error::Store`] when no leader confirms in time.
    pub async fn barrier(&self, stale: bool) -> Result<u64> {
        if stale {
            return Ok(self.shared.applied());
        }
        let deadline = tokio::time::Instant::now() + RETRY_FOR;
        loop {
            match self
                .node
                .read(Vec::new(), ReadConsistency::Linearizable)
                .await
            {
                Ok(_) => return Ok(self.shared.applied()),
                Err(e) if e.is_definite_failure() && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(self.store_error("read", e)),
            }
        }
    }
}
