//! `alkaid-store-node`: one replica of a KV store on `alkaid-store`, serving `alkaid.v1.RaftPeer`
//! for peers and clients (Propose with a postcard `KvCommand`, Read with a `KvCommand::Get`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use alkaid_store::kv::KvStateMachine;
use alkaid_store::transport::grpc::{GrpcTransport, TlsConfig, serve};
use alkaid_store::{Bootstrap, NodeConfig, SledStorage};
use anyhow::{Context, bail};
use clap::Parser;

/// One replica of the Alkaid store (KV state machine).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Config {
    /// This replica's raft id.
    #[arg(long, env = "ALKAID_STORE_ID")]
    id: u64,
    /// Address to listen on, host:port.
    #[arg(long, env = "ALKAID_STORE_LISTEN")]
    listen: String,
    /// Directory of the sled database.
    #[arg(long, env = "ALKAID_STORE_DATA_DIR")]
    data_dir: PathBuf,
    /// Peers as id=host:port, comma separated (may include this replica).
    #[arg(long, env = "ALKAID_STORE_PEERS", value_delimiter = ',')]
    peers: Vec<String>,
    /// Start empty and wait to be added by a membership change (instead of bootstrapping
    /// with the peers as the initial voters).
    #[arg(long, env = "ALKAID_STORE_JOIN")]
    join: bool,
    /// Raft tick in milliseconds.
    #[arg(long, env = "ALKAID_STORE_TICK_MS", default_value_t = 20)]
    tick_ms: u64,
    /// Snapshot every N applied entries.
    #[arg(
        long,
        env = "ALKAID_STORE_SNAPSHOT_INTERVAL",
        default_value_t = 100_000
    )]
    snapshot_interval: u64,
    /// Entries kept behind a snapshot.
    #[arg(long, env = "ALKAID_STORE_COMPACT_MARGIN", default_value_t = 5_000)]
    compact_margin: u64,
    /// CA certificate (PEM) for mutual TLS; with --tls-cert and --tls-key enables TLS.
    #[arg(long, env = "ALKAID_STORE_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// This replica's certificate (PEM).
    #[arg(long, env = "ALKAID_STORE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// This replica's key (PEM).
    #[arg(long, env = "ALKAID_STORE_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Name expected in peer certificates.
    #[arg(long, env = "ALKAID_STORE_TLS_DOMAIN", default_value = "localhost")]
    tls_domain: String,
}

impl Config {
    fn validate(&self) -> anyhow::Result<(NodeConfig, Option<TlsConfig>)> {
        let mut peers = BTreeMap::new();
        for p in &self.peers {
            let (id, addr) = p
                .split_once('=')
                .with_context(|| format!("peer {p:?} must be id=host:port"))?;
            peers.insert(
                id.parse::<u64>()
                    .with_context(|| format!("peer id in {p:?}"))?,
                addr.to_string(),
            );
        }
        let bootstrap = if self.join {
            Bootstrap::Join
        } else {
            Bootstrap::Initial(peers.keys().copied().collect())
        };
        let mut cfg = NodeConfig::new(self.id, peers, bootstrap);
        cfg.tick_interval = Duration::from_millis(self.tick_ms);
        cfg.snapshot_interval = self.snapshot_interval;
        cfg.compact_margin = self.compact_margin;
        cfg.validate()?;
        let tls = match (&self.tls_ca, &self.tls_cert, &self.tls_key) {
            (None, None, None) => None,
            (Some(ca), Some(cert), Some(key)) => Some(TlsConfig {
                ca_pem: std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?,
                cert_pem: std::fs::read(cert)
                    .with_context(|| format!("reading {}", cert.display()))?,
                key_pem: std::fs::read(key)
                    .with_context(|| format!("reading {}", key.display()))?,
                domain: self.tls_domain.clone(),
            }),
            _ => bail!("--tls-ca, --tls-cert and --tls-key go together"),
        };
        Ok((cfg, tls))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = Config::parse();
    let (cfg, tls) = config.validate()?;
    let storage = SledStorage::open(&config.data_dir)
        .with_context(|| format!("opening {}", config.data_dir.display()))?;
    let transport = GrpcTransport::new(cfg.id, tls.clone(), cfg.queue_depth);
    let node = alkaid_store::start(cfg, storage, KvStateMachine::new(), transport.clone())?;
    transport.attach(node.clone());
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    eprintln!(
        "alkaid-store-node {} listening on {}",
        config.id, config.listen
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve(node.clone(), listener, tls, shutdown).await?;
    node.shutdown().await;
    Ok(())
}
