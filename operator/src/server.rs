//! Starting one operator replica: the store replica over [`Machine`], the gRPC servers
//! (RaftPeer, Control, Programming), and the leader's background loops (ack flush, health),
//! plus metrics. Used by `main` and by the tests, which bind their own listeners.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use alkaid_store::transport::grpc::{GrpcTransport, RaftPeerService, TlsConfig};
use alkaid_store::{NodeConfig, SledStorage};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::{Stream, StreamExt as _};

use crate::api::ControlService;
use crate::conn::Conn;
use crate::ctx::Ctx;
use crate::error::{Error, Result};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::program::ProgrammingService;
use crate::program::acks::AckBatcher;
use crate::state::{Machine, Shared};

/// Everything a replica needs (built from the CLI `Config` by `main`, or by tests).
#[derive(Debug, Clone)]
pub struct Options {
    /// Store replica settings (id, Raft peers, timing, batching).
    pub node: NodeConfig,
    /// Control API address of each replica, for leader hints (absent: the Raft address).
    pub control_peers: BTreeMap<u64, String>,
    /// Directory of the sled database.
    pub data_dir: PathBuf,
    /// Mutual TLS for every listener and for peer connections.
    pub tls: Option<TlsConfig>,
    /// Silence after which a droplet is Unreachable.
    pub heartbeat_timeout: Duration,
    /// Least time between two batched acknowledgement proposals (idle acks go at once).
    pub ack_interval: Duration,
    /// Identity of this cluster's table history, shared by all replicas.
    pub epoch: u64,
    /// Rows of deltas retained per droplet for resuming agents.
    pub feed_max_rows: usize,
    /// Applied changes retained for Watch.
    pub max_events: usize,
}

impl Options {
    /// Defaults for everything but the node settings and data directory.
    pub fn new(node: NodeConfig, data_dir: PathBuf) -> Self {
        Self {
            node,
            control_peers: BTreeMap::new(),
            data_dir,
            tls: None,
            heartbeat_timeout: Duration::from_secs(10),
            ack_interval: Duration::from_millis(5),
            epoch: 1,
            feed_max_rows: 65_536,
            max_events: 100_000,
        }
    }
}

/// Bound sockets of a replica.
pub struct Listeners {
    /// RaftPeer (and Control and Programming when `control` is `None`).
    pub raft: TcpListener,
    /// Control and Programming, when served on their own port.
    pub control: Option<TcpListener>,
    /// `/metrics`.
    pub metrics: Option<TcpListener>,
}

/// A running replica.
pub struct Running {
    /// Its shared context.
    pub ctx: Arc<Ctx>,
    tasks: Vec<JoinHandle<()>>,
    /// Cuts every connection the replica serves (on kill, or when this is dropped).
    cut: watch::Sender<bool>,
}

type Incoming = Pin<Box<dyn Stream<Item = std::io::Result<Conn>> + Send>>;

fn incoming(l: TcpListener, cut: &watch::Sender<bool>) -> Incoming {
    let cut = cut.subscribe();
    Box::pin(
        tokio_stream::wrappers::TcpListenerStream::new(l).map(move |s| {
            s.map(|s| {
                // The builder's `tcp_nodelay` only covers listeners tonic binds itself:
                // without this, small stream messages and Raft replies wait out Nagle
                // against delayed ACKs (a ~40 ms tail in the bench).
                let _ = s.set_nodelay(true);
                Conn::new(s, cut.clone())
            })
        }),
    )
}

fn builder(tls: Option<&TlsConfig>) -> Result<tonic::transport::Server> {
    let mut b = tonic::transport::Server::builder().tcp_nodelay(true);
    if let Some(tls) = tls {
        b = b.tls_config(tls.server()).map_err(|e| Error::Config {
            reason: format!("server tls: {e}"),
        })?;
    }
    Ok(b)
}

/// Starts a replica on `listeners`.
///
/// # Errors
/// Storage, configuration and TLS errors.
pub async fn start(opts: Options, listeners: Listeners) -> Result<Running> {
    let shared = Shared::new(opts.feed_max_rows, opts.max_events);
    let storage = SledStorage::open(&opts.data_dir).map_err(|source| Error::Store {
        op: "open the data directory",
        leader: None,
        source,
    })?;
    let id = opts.node.id;
    let transport = GrpcTransport::new(id, opts.tls.clone(), opts.node.queue_depth);
    let node = alkaid_store::start(
        opts.node.clone(),
        storage,
        Machine::new(shared.clone()),
        transport.clone(),
    )
    .map_err(|source| Error::Store {
        op: "start the replica",
        leader: None,
        source,
    })?;
    transport.attach(node.clone());
    let ctx = Arc::new(Ctx {
        node: node.clone(),
        shared,
        control_peers: opts.control_peers.clone(),
        epoch: opts.epoch,
        acks: AckBatcher::default(),
        health: Health::new(opts.heartbeat_timeout),
        metrics: Metrics::new(),
        tls: opts.tls.clone(),
        leader_channel: std::sync::Mutex::new(None),
    });
    let control = ControlService::new(ctx.clone()).into_server();
    let programming = ProgrammingService::new(ctx.clone()).into_server();
    let raft = RaftPeerService::new(node).into_server();
    let mut tasks = Vec::new();
    let cut = watch::channel(false).0;
    let serve = |router: tonic::transport::server::Router, l: TcpListener| {
        let incoming = incoming(l, &cut);
        tokio::spawn(async move {
            if let Err(e) = router.serve_with_incoming(incoming).await {
                tracing::error!(error = %e, "grpc server stopped");
            }
        })
    };
    match listeners.control {
        None => {
            let r = builder(opts.tls.as_ref())?
                .add_service(raft)
                .add_service(control)
                .add_service(programming);
            tasks.push(serve(r, listeners.raft));
        }
        Some(cl) => {
            let r = builder(opts.tls.as_ref())?.add_service(raft);
            tasks.push(serve(r, listeners.raft));
            let c = builder(opts.tls.as_ref())?
                .add_service(control)
                .add_service(programming);
            tasks.push(serve(c, cl));
        }
    }
    tasks.push(tokio::spawn(crate::program::acks::flush_loop(
        ctx.clone(),
        opts.ack_interval,
    )));
    tasks.push(tokio::spawn(crate::health::run(ctx.clone())));
    tasks.push(tokio::spawn(crate::metrics::follow(ctx.clone())));
    if let Some(ml) = listeners.metrics {
        let c = ctx.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve(c, ml, std::future::pending()).await {
                tracing::error!(error = %e, "metrics server stopped");
            }
        }));
    }
    tracing::info!(id, "operator replica started");
    Ok(Running { ctx, tasks, cut })
}

impl Running {
    /// Stops the replica abruptly (like a crash: open streams are cut), then waits for the
    /// store to stop so its data directory can be reopened.
    pub async fn kill(self) {
        self.cut.send_replace(true);
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
        self.ctx.node.shutdown().await;
    }
}
