//! Prometheus metrics, served as text on `/metrics`:
//!
//! | metric | meaning |
//! |---|---|
//! | `alkaid_provisioning_seconds` | AllocateEndpoint request to the endpoint turning Ready (all holders acknowledged), histogram |
//! | `alkaid_stream_lag_versions{droplet}` | table versions the droplet's agent is behind, as of its last ack |
//! | `alkaid_streams` | open programming streams |
//! | `alkaid_full_syncs_total`, `alkaid_deltas_coalesced_total` | stream work |
//! | `alkaid_raft_term`, `alkaid_raft_commit_index`, `alkaid_raft_applied_index`, `alkaid_raft_leader` | Raft state of this replica |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use alkaid_model::resource::Phase;
use alkaid_model::{DropletName, EndpointKey, ObjRef};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ctx::Ctx;

type Labels = Vec<(String, String)>;

/// Most allocations whose Ready time is awaited at once (older ones are not measured).
const MAX_PENDING: usize = 100_000;

/// This replica's metrics.
pub struct Metrics {
    registry: Registry,
    provisioning: Histogram,
    lag: Family<Labels, Gauge>,
    streams: Gauge,
    full_syncs: Counter,
    coalesced: Counter,
    term: Gauge,
    commit: Gauge,
    applied: Gauge,
    leader: Gauge,
    pending: Mutex<HashMap<EndpointKey, Instant>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn labels(d: &DropletName) -> Labels {
    vec![("droplet".to_owned(), d.to_string())]
}

fn gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("alkaid");
        let provisioning = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let lag = Family::<Labels, Gauge>::default();
        let (streams, term, commit, applied, leader) = Default::default();
        let (full_syncs, coalesced) = Default::default();
        registry.register_with_unit(
            "provisioning",
            "AllocateEndpoint request to the endpoint turning Ready",
            prometheus_client::registry::Unit::Seconds,
            provisioning.clone(),
        );
        registry.register(
            "stream_lag_versions",
            "Table versions an agent is behind",
            lag.clone(),
        );
        registry.register(
            "streams",
            "Open programming streams",
            Clone::clone(&streams),
        );
        registry.register("full_syncs", "Full syncs sent", Clone::clone(&full_syncs));
        registry.register(
            "deltas_coalesced",
            "Deltas sent, before coalescing",
            Clone::clone(&coalesced),
        );
        registry.register("raft_term", "Raft term", Clone::clone(&term));
        registry.register(
            "raft_commit_index",
            "Raft commit index",
            Clone::clone(&commit),
        );
        registry.register(
            "raft_applied_index",
            "Raft applied index",
            Clone::clone(&applied),
        );
        registry.register(
            "raft_leader",
            "1 when this replica leads",
            Clone::clone(&leader),
        );
        Self {
            registry,
            provisioning,
            lag,
            streams,
            full_syncs,
            coalesced,
            term,
            commit,
            applied,
            leader,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// An allocation was answered; its Ready time is measured from `started`.
    pub fn allocated(&self, key: EndpointKey, started: Instant) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.len() < MAX_PENDING {
            p.insert(key, started);
        }
    }

    /// Stops waiting for an endpoint (released).
    pub fn forget(&self, key: &EndpointKey) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    fn ready(&self, key: &EndpointKey) {
        let started = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        if let Some(t) = started {
            self.provisioning.observe(t.elapsed().as_secs_f64());
        }
    }

    /// A stream opened.
    pub fn stream_opened(&self, _d: &DropletName) {
        self.streams.inc();
    }

    /// A stream closed.
    pub fn stream_closed(&self, d: &DropletName) {
        self.streams.dec();
        self.lag.remove(&labels(d));
    }

    /// The droplet's agent is `lag` versions behind.
    pub fn stream_lag(&self, d: &DropletName, lag: u64) {
        self.lag.get_or_create(&labels(d)).set(gauge(lag));
    }

    /// A full sync was sent.
    pub fn full_sync(&self) {
        self.full_syncs.inc();
    }

    /// `n` deltas went out as one.
    pub fn delta_sent(&self, n: usize) {
        self.coalesced.inc_by(n as u64);
    }

    /// The text exposition, with Raft gauges refreshed from `status`.
    pub fn render(&self, status: &alkaid_store::Status) -> String {
        self.term.set(gauge(status.term));
        self.commit.set(gauge(status.commit_index));
        self.applied.set(gauge(status.applied_index));
        self.leader.set(i64::from(status.is_leader()));
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// Follows applied changes and observes provisioning latency when endpoints turn Ready.
pub async fn follow(ctx: Arc<Ctx>) {
    let mut wake = ctx.shared.events.subscribe();
    let mut cursor = ctx.shared.applied();
    loop {
        match ctx.shared.events.since(cursor) {
            Ok(changes) => {
                for c in changes {
                    cursor = c.index;
                    for s in &c.status {
                        if let (ObjRef::Endpoint(k), Phase::Ready) = (&s.object, s.phase) {
                            ctx.metrics.ready(k);
                        }
                    }
                }
            }
            Err(_) => cursor = ctx.shared.applied(),
        }
        if wake.changed().await.is_err() {
            return;
        }
    }
}

/// Serves `/metrics` on `listener` until `shutdown`.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    ctx: Arc<Ctx>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let ctx = ctx.clone();
            async move {
                (
                    [(
                        "content-type",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    ctx.metrics.render(&ctx.node.status()),
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
