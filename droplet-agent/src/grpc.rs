//! The programming-stream client: register the droplet, keep `Programming.Program` open to
//! the operator leader, apply what it sends through a [`Dataplane`], acknowledge every
//! applied version, heartbeat, and reconnect with seeded exponential backoff, following the
//! leader hint (`alkaid-leader` metadata) on UNAVAILABLE. No map code lives here: the
//! decisions are in [`crate::sync`], the maps behind [`Dataplane`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use alkaid_model::table::Ops;
use alkaid_proto::v1 as pb;
use alkaid_proto::v1::control_client::ControlClient;
use alkaid_proto::v1::programming_client::ProgrammingClient;
use futures::FutureExt;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, ClientTlsConfig};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::backoff::Backoff;
use crate::dataplane::{ApplyReport, Dataplane};
use crate::error::{Error, Result};
use crate::pb::{Key, Row};
use crate::sync::{self, DeltaCheck, MapOp, Tracker};

/// The metadata key in which a non-leader names the leader.
pub const LEADER_METADATA: &str = "alkaid-leader";

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Operator addresses (`http://host:port`), tried in turn.
    pub operators: Vec<String>,
    /// This droplet's name.
    pub droplet: String,
    /// This droplet's registration.
    pub spec: pb::DropletSpec,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// First reconnect delay.
    pub backoff_base: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Jitter seed.
    pub seed: u64,
    /// Connect timeout per attempt.
    pub connect_timeout: Duration,
    /// mTLS to the operators (CA and the agent's identity); `None`: plain HTTP/2.
    pub tls: Option<ClientTlsConfig>,
}

/// What the client has done, published for tests, health and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Applied table version.
    pub version: u64,
    /// Its epoch.
    pub epoch: u64,
    /// The operator of the open stream, if any.
    pub connected: Option<String>,
    /// Full syncs applied.
    pub full_syncs: u64,
    /// Deltas applied.
    pub deltas: u64,
    /// Batches they were applied in (consecutive deltas already received go in one).
    pub delta_batches: u64,
    /// Streams reopened to ask for a full sync after a gap.
    pub resyncs: u64,
    /// Sessions started (successful registrations).
    pub sessions: u64,
    /// The last failure.
    pub last_error: Option<String>,
}

/// Why a session ended.
#[derive(Debug)]
enum End {
    /// The server closed the stream.
    Closed,
    /// We saw a gap and need a full sync.
    Resync,
    /// A non-leader named the leader.
    Redirect(String),
    /// Anything else.
    Failed(Error),
}

/// The programming-stream client.
pub struct Client<D> {
    cfg: ClientConfig,
    dataplane: Arc<D>,
    tracker: Tracker,
    backoff: Backoff,
    status: watch::Sender<Status>,
    // Conversion errors of a full sync's earlier chunks, reported in its one Ack.
    chunk_errors: Vec<String>,
}

impl<D: Dataplane> Client<D> {
    /// A client over `dataplane`, and a receiver of its [`Status`].
    pub fn new(cfg: ClientConfig, dataplane: Arc<D>) -> (Self, watch::Receiver<Status>) {
        let (status, rx) = watch::channel(Status::default());
        let backoff = Backoff::new(cfg.backoff_base, cfg.backoff_max, cfg.seed);
        let client = Self {
            cfg,
            dataplane,
            tracker: Tracker::new(),
            backoff,
            status,
            chunk_errors: Vec::new(),
        };
        (client, rx)
    }

    /// Runs until `shutdown` completes, reconnecting as needed.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        if self.cfg.operators.is_empty() {
            warn!("no operator addresses configured; the programming stream stays closed");
            return shutdown.await;
        }
        // Liveness does not depend on the stream: heartbeats keep flowing (to any replica;
        // followers pass them to the leader) while the stream reconnects after a failover,
        // so a new leader does not declare this droplet Unreachable meanwhile.
        let _heartbeats = AbortOnDrop(tokio::spawn(heartbeats(
            self.cfg.clone(),
            self.status.subscribe(),
        )));
        let mut index = 0usize;
        let mut redirect: Option<String> = None;
        let mut redirects = 0u32;
        loop {
            let target = redirect
                .take()
                .unwrap_or_else(|| self.cfg.operators[index % self.cfg.operators.len()].clone());
            let span = info_span!("program", operator = %target, droplet = %self.cfg.droplet);
            let end = tokio::select! {
                () = &mut shutdown => return,
                end = self.session(&target).instrument(span) => end,
            };
            self.status.send_modify(|s| s.connected = None);
            let delay = match end {
                End::Resync => {
                    self.status.send_modify(|s| s.resyncs += 1);
                    Duration::ZERO
                }
                // Hints can chase a moving leader; after a few in a row, back off.
                End::Redirect(leader) if redirects < 3 => {
                    info!(%leader, "following leader hint");
                    redirects += 1;
                    redirect = Some(leader);
                    Duration::ZERO
                }
                End::Redirect(leader) => {
                    redirects = 0;
                    redirect = Some(leader);
                    self.backoff.next_delay()
                }
                End::Closed => {
                    index += 1;
                    self.backoff.next_delay()
                }
                End::Failed(e) => {
                    warn!(error = %e, "programming session failed");
                    self.status
                        .send_modify(|s| s.last_error = Some(e.to_string()));
                    index += 1;
                    self.backoff.next_delay()
                }
            };
            if delay > Duration::ZERO {
                debug!(?delay, "reconnecting after backoff");
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }

    async fn session(&mut self, target: &str) -> End {
        let channel = match connect(target, self.cfg.tls.as_ref(), self.cfg.connect_timeout).await {
            Ok(c) => c,
            Err(e) => return End::Failed(e),
        };
        let register = pb::RegisterDropletRequest {
            name: self.cfg.droplet.clone(),
            spec: Some(self.cfg.spec.clone()),
        };
        if let Err(s) = ControlClient::new(channel.clone())
            .register_droplet(register)
            .await
        {
            return from_status(target, "RegisterDroplet", s);
        }
        self.status.send_modify(|s| s.sessions += 1);

        self.tracker.reset_stream();
        self.chunk_errors.clear();
        let (tx, rx) = mpsc::channel(64);
        let (version, epoch) = self.tracker.hello();
        let hello = pb::AgentMessage {
            msg: Some(pb::agent_message::Msg::Hello(pb::Hello {
                droplet: self.cfg.droplet.clone(),
                version,
                epoch,
            })),
        };
        // The receiver is alive until `program` consumes it below.
        let _ = tx.send(hello).await;
        let mut inbound = match ProgrammingClient::new(channel)
            .program(ReceiverStream::new(rx))
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) => return from_status(target, "Program", s),
        };
        info!(version, epoch, "programming stream open");
        self.status
            .send_modify(|s| s.connected = Some(target.to_string()));
        // A message read while batching deltas that was not one to add to the batch.
        let mut lookahead = None;
        loop {
            let next = match lookahead.take() {
                Some(m) => m,
                None => inbound.message().await,
            };
            let msg = match next {
                Ok(Some(m)) => m,
                Ok(None) => return End::Closed,
                Err(s) => return from_status(target, "Program", s),
            };
            let acked = match msg.msg {
                Some(pb::program_message::Msg::FullSync(fs)) => self.on_full_sync(fs).await,
                Some(pb::program_message::Msg::Delta(d)) => {
                    let batch = if self.tracker.check_delta(d.base_version, d.version)
                        == DeltaCheck::Apply
                    {
                        more_deltas(d, || inbound.message().now_or_never(), &mut lookahead)
                    } else {
                        vec![d]
                    };
                    self.on_deltas(batch).await
                }
                None => continue,
            };
            let ack = match acked {
                Ok(Some(ack)) => ack,
                Ok(None) => continue,
                Err(end) => return end,
            };
            let msg = pb::AgentMessage {
                msg: Some(pb::agent_message::Msg::Ack(ack)),
            };
            if tx.send(msg).await.is_err() {
                return End::Closed;
            }
        }
    }

    async fn on_full_sync(&mut self, fs: pb::FullSync) -> Result<Option<pb::Ack>, End> {
        let mut errors = Vec::new();
        let rows = fs.rows.iter().filter_map(|r| match Row::try_from(r) {
            Ok(Row(k, v)) => Some((k, v)),
            Err(e) => {
                errors.push(e.to_string());
                None
            }
        });
        let rows: Vec<_> = rows.collect();
        self.chunk_errors.append(&mut errors);
        let Some(done) = self.tracker.full_chunk(fs.version, fs.epoch, rows, fs.last) else {
            return Ok(None);
        };
        let mut errors = std::mem::take(&mut self.chunk_errors);
        let dp = Arc::clone(&self.dataplane);
        let report = blocking(move || {
            let actual = dp.rows()?;
            let mut report = dp.apply(&sync::full_sync(&actual, &done.desired))?;
            match dp.prune() {
                Ok(0) => {}
                Ok(n) => debug!(pruned = n, "stale attachments and paths removed"),
                Err(e) => report.errors.push(e.to_string()),
            }
            Ok(report)
        })
        .await
        .map_err(End::Failed)?;
        self.tracker.applied_full(fs.version, fs.epoch);
        self.backoff.reset();
        info!(
            version = fs.version,
            applied = report.applied,
            failed = report.errors.len(),
            "full sync applied"
        );
        self.status.send_modify(|s| {
            s.version = fs.version;
            s.epoch = fs.epoch;
            s.full_syncs += 1;
        });
        errors.extend(report.errors);
        Ok(Some(pb::Ack {
            version: fs.version,
            errors,
        }))
    }

    /// Applies `batch` (consecutive deltas, each based on the one before) as one batch and
    /// acknowledges the last version: acks are cumulative.
    async fn on_deltas(&mut self, batch: Vec<pb::Delta>) -> Result<Option<pb::Ack>, End> {
        let Some(first) = batch.first() else {
            return Ok(None);
        };
        match self.tracker.check_delta(first.base_version, first.version) {
            DeltaCheck::Apply => {}
            DeltaCheck::Stale => {
                debug!(
                    base = first.base_version,
                    version = first.version,
                    "stale delta ignored"
                );
                return Ok(None);
            }
            DeltaCheck::Gap { ours, base } => {
                warn!(
                    ours,
                    base,
                    version = first.version,
                    "delta gap, asking for a full sync"
                );
                self.tracker.require_full();
                return Err(End::Resync);
            }
        }
        let mut errors = Vec::new();
        let version = batch.last().map_or(first.version, |d| d.version);
        let count = batch.len() as u64;
        let deltas: Vec<Ops> = batch.iter().map(|d| delta_ops(d, &mut errors)).collect();
        let ops = if deltas.len() == 1 {
            deltas.into_iter().next().unwrap_or_default()
        } else {
            sync::merge(&deltas)
        };
        let plan: Vec<MapOp> = sync::plan(ops);
        let dp = Arc::clone(&self.dataplane);
        let report = blocking(move || dp.apply(&plan))
            .await
            .map_err(End::Failed)?;
        self.tracker.applied_delta(version);
        self.status.send_modify(|s| {
            s.version = version;
            s.deltas += count;
            s.delta_batches += 1;
        });
        errors.extend(report.errors);
        Ok(Some(pb::Ack { version, errors }))
    }
}

/// Most deltas, and rows in them, applied as one batch: bounds how long the first waits.
const BATCH_DELTAS: usize = 1_024;
const BATCH_ROWS: usize = 65_536;

/// A read from the programming stream.
type Next = std::result::Result<Option<pb::ProgramMessage>, tonic::Status>;

/// `first`, then every delta already received that follows on from the one before, up to
/// [`BATCH_DELTAS`] and [`BATCH_ROWS`]. `ready` returns a message only if one is there without
/// waiting (`message().now_or_never()`: `message` is cancel safe, an unfinished read stays
/// buffered). Anything else read is left in `lookahead` for the caller.
fn more_deltas(
    first: pb::Delta,
    mut ready: impl FnMut() -> Option<Next>,
    lookahead: &mut Option<Next>,
) -> Vec<pb::Delta> {
    let mut rows = first.upserts.len() + first.deletes.len();
    let mut batch = vec![first];
    while batch.len() < BATCH_DELTAS && rows < BATCH_ROWS {
        let Some(next) = ready() else {
            break;
        };
        match next {
            Ok(Some(pb::ProgramMessage {
                msg: Some(pb::program_message::Msg::Delta(d)),
            })) if batch
                .last()
                .is_some_and(|last| d.base_version == last.version) =>
            {
                rows += d.upserts.len() + d.deletes.len();
                batch.push(d);
            }
            other => {
                *lookahead = Some(other);
                break;
            }
        }
    }
    batch
}

/// A delta's rows, those that do not parse reported into `errors`.
fn delta_ops(d: &pb::Delta, errors: &mut Vec<String>) -> Ops {
    let mut ops = Ops::default();
    for r in &d.upserts {
        match Row::try_from(r) {
            Ok(Row(k, v)) => ops.upserts.push((k, v)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    for k in &d.deletes {
        match Key::try_from(k) {
            Ok(Key(k)) => ops.deletes.push(k),
            Err(e) => errors.push(e.to_string()),
        }
    }
    ops
}

async fn blocking(f: impl FnOnce() -> Result<ApplyReport> + Send + 'static) -> Result<ApplyReport> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(Error::Dataplane {
            op: "apply",
            message: format!("apply task failed: {e}"),
        })
    })
}

async fn connect(
    target: &str,
    tls: Option<&ClientTlsConfig>,
    timeout: Duration,
) -> Result<Channel> {
    crate::tls::endpoint(target, tls, timeout)?
        .connect()
        .await
        .map_err(|source| Error::Connect {
            endpoint: target.to_string(),
            source,
        })
}

/// The leader named in an UNAVAILABLE status, as a URL.
pub fn leader_hint(status: &tonic::Status) -> Option<String> {
    if status.code() != tonic::Code::Unavailable {
        return None;
    }
    let v = status
        .metadata()
        .get(LEADER_METADATA)?
        .to_str()
        .ok()?
        .trim();
    if v.is_empty() {
        None
    } else if v.contains("://") {
        Some(v.to_string())
    } else {
        Some(format!("http://{v}"))
    }
}

fn from_status(target: &str, op: &'static str, s: tonic::Status) -> End {
    match leader_hint(&s) {
        // Compared without the scheme: the hint says http:// whether or not TLS is on.
        Some(leader)
            if crate::tls::with_scheme(&leader, true) != crate::tls::with_scheme(target, true) =>
        {
            End::Redirect(leader)
        }
        _ => End::Failed(Error::Grpc {
            op,
            endpoint: target.to_string(),
            source: Box::new(s),
        }),
    }
}

/// Sends a heartbeat every `cfg.heartbeat` for as long as the client runs. Each beat goes to
/// the replica that took the last one; on failure the next replica is tried at once, each at
/// most once per beat, so one dead or partitioned replica costs no beat.
async fn heartbeats(cfg: ClientConfig, status: watch::Receiver<Status>) {
    let mut tick = tokio::time::interval(cfg.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let n = cfg.operators.len();
    let mut index = 0usize;
    let mut client: Option<ControlClient<Channel>> = None;
    loop {
        tick.tick().await;
        for _ in 0..n {
            let target = &cfg.operators[index % n];
            let mut c = match client.take() {
                Some(c) => c,
                None => match connect(target, cfg.tls.as_ref(), cfg.connect_timeout).await {
                    Ok(ch) => ControlClient::new(ch),
                    Err(e) => {
                        debug!(operator = %target, error = %e, "heartbeat connect failed");
                        index += 1;
                        continue;
                    }
                },
            };
            let req = pb::HeartbeatRequest {
                name: cfg.droplet.clone(),
                applied_version: status.borrow().version,
            };
            match tokio::time::timeout(cfg.heartbeat.max(cfg.connect_timeout), c.heartbeat(req))
                .await
            {
                Ok(Ok(_)) => {
                    client = Some(c);
                    break;
                }
                Ok(Err(e)) => debug!(operator = %target, error = %e, "heartbeat failed"),
                Err(_) => debug!(operator = %target, "heartbeat timed out"),
            }
            index += 1;
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    fn delta(base: u64, rows: usize) -> pb::Delta {
        pb::Delta {
            base_version: base,
            version: base + 1,
            upserts: vec![pb::Row::default(); rows],
            deletes: Vec::new(),
        }
    }

    fn msg(d: pb::Delta) -> Next {
        Ok(Some(pb::ProgramMessage {
            msg: Some(pb::program_message::Msg::Delta(d)),
        }))
    }

    /// Runs [`more_deltas`] over `queued` (what is already received); returns the batch's
    /// versions, the lookahead and how many messages are left unread.
    fn batch(first: pb::Delta, queued: Vec<Next>) -> (Vec<u64>, Option<Next>, usize) {
        let mut queued = VecDeque::from(queued);
        let mut lookahead = None;
        let b = more_deltas(first, || queued.pop_front(), &mut lookahead);
        (
            b.iter().map(|d| d.version).collect(),
            lookahead,
            queued.len(),
        )
    }

    #[test]
    fn batches_the_deltas_already_received_that_chain() {
        let (versions, lookahead, left) =
            batch(delta(5, 1), vec![msg(delta(6, 1)), msg(delta(7, 1))]);
        assert_eq!(versions, vec![6, 7, 8]);
        assert!(lookahead.is_none());
        assert_eq!(left, 0);
    }

    #[test]
    fn stops_at_anything_else_and_keeps_it() {
        // A replay (base 5 again) is not part of the chain.
        let (versions, lookahead, left) =
            batch(delta(5, 1), vec![msg(delta(5, 1)), msg(delta(6, 1))]);
        assert_eq!(versions, vec![6]);
        assert!(matches!(lookahead, Some(Ok(Some(_)))));
        assert_eq!(left, 1);
        // A full sync, the end of the stream, an error: kept for the caller, in order.
        let full = Ok(Some(pb::ProgramMessage {
            msg: Some(pb::program_message::Msg::FullSync(pb::FullSync::default())),
        }));
        for next in [full, Ok(None), Err(tonic::Status::internal("x"))] {
            let kind = format!("{next:?}");
            let (versions, lookahead, _) = batch(delta(5, 1), vec![msg(delta(6, 1)), next]);
            assert_eq!(versions, vec![6, 7], "{kind}");
            assert_eq!(format!("{:?}", lookahead.unwrap()), kind);
        }
    }

    #[test]
    fn batches_are_bounded() {
        let queued = (6..6 + 2 * BATCH_DELTAS as u64)
            .map(|b| msg(delta(b, 1)))
            .collect();
        let (versions, _, left) = batch(delta(5, 1), queued);
        assert_eq!(versions.len(), BATCH_DELTAS);
        assert_eq!(left, BATCH_DELTAS + 1);
        let queued = (6..10).map(|b| msg(delta(b, BATCH_ROWS / 2))).collect();
        let (versions, _, left) = batch(delta(5, BATCH_ROWS / 2), queued);
        assert_eq!(versions.len(), 2, "stops once the rows reach the bound");
        assert_eq!(left, 3);
    }
}
