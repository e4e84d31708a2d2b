//! The binary's one clap [`Config`] (every flag has an `ALKAID_*` environment fallback),
//! validated into [`Options`] plus the addresses to bind. Parsed only in `main`: the library
//! never reads the environment.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use alkaid_store::transport::grpc::TlsConfig;
use alkaid_store::{Bootstrap, NodeConfig};
use clap::Parser;

use crate::error::{Error, Result};
use crate::server::Options;

/// One replica of the Alkaid operator (standalone, or with `--kubernetes`).
#[derive(Debug, Clone, Parser)]
#[command(name = "alkaid-operator", version, about)]
pub struct Config {
    /// This replica's Raft id (non-zero, unique, never reused): a number, or a StatefulSet
    /// pod name such as `alkaid-operator-2`, whose ordinal N gives id N+1.
    #[arg(long, env = "ALKAID_ID", value_parser = parse_replica_id)]
    pub id: u64,
    /// Raft peer transport listen address; also serves the control API unless
    /// --control-listen is given.
    #[arg(long, env = "ALKAID_RAFT_LISTEN", default_value = "0.0.0.0:7100")]
    pub raft_listen: String,
    /// Raft peers as id=host:port, comma separated (may include this replica).
    #[arg(long, env = "ALKAID_PEERS", value_delimiter = ',', required = true)]
    pub peers: Vec<String>,
    /// Control API and programming streams on their own address.
    #[arg(long, env = "ALKAID_CONTROL_LISTEN")]
    pub control_listen: Option<String>,
    /// Control addresses of the replicas as id=host:port (for leader hints) when
    /// --control-listen is used.
    #[arg(long, env = "ALKAID_CONTROL_PEERS", value_delimiter = ',')]
    pub control_peers: Vec<String>,
    /// Directory of the sled database.
    #[arg(long, env = "ALKAID_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Start empty and wait to be added by a membership change.
    #[arg(long, env = "ALKAID_JOIN")]
    pub join: bool,
    /// CA certificate (PEM): with --tls-cert and --tls-key turns on mutual TLS for the
    /// control API, programming streams and Raft transport.
    #[arg(long, env = "ALKAID_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// This replica's certificate chain (PEM).
    #[arg(long, env = "ALKAID_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// This replica's private key (PEM).
    #[arg(long, env = "ALKAID_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Name expected in peers' certificates.
    #[arg(long, env = "ALKAID_TLS_DOMAIN", default_value = "localhost")]
    pub tls_domain: String,
    /// VPC for pods with no annotation in a namespace no VPC binds (`--kubernetes`).
    #[arg(long, env = "ALKAID_DEFAULT_VPC", default_value = "default")]
    pub default_vpc: String,
    /// Prometheus /metrics listen address.
    #[arg(long, env = "ALKAID_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// OTLP gRPC endpoint for traces, e.g. http://otel-collector:4317.
    #[arg(long, env = "ALKAID_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Milliseconds without heartbeats after which a droplet is Unreachable.
    #[arg(long, env = "ALKAID_HEARTBEAT_TIMEOUT_MS", default_value_t = 10_000)]
    pub heartbeat_timeout_ms: u64,
    /// Raft tick in milliseconds.
    #[arg(long, env = "ALKAID_TICK_MS", default_value_t = 20)]
    pub tick_ms: u64,
    /// Least milliseconds between batched acknowledgement proposals (an ack arriving when
    /// idle is proposed at once).
    #[arg(long, env = "ALKAID_ACK_INTERVAL_MS", default_value_t = 5)]
    pub ack_interval_ms: u64,
    /// Identity of this cluster's table history (same on every replica; change it when the
    /// cluster is rebuilt from empty data so agents full-sync).
    #[arg(long, env = "ALKAID_EPOCH", default_value_t = 1)]
    pub epoch: u64,
    /// Also run the Kubernetes controllers.
    #[arg(long, env = "ALKAID_KUBERNETES")]
    pub kubernetes: bool,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "ALKAID_LOG", default_value = "info")]
    pub log: String,
}

/// A validated configuration: library options and what to bind.
#[derive(Debug, Clone)]
pub struct Validated {
    /// Replica options.
    pub options: Options,
    /// Raft listen address.
    pub raft_listen: SocketAddr,
    /// Separate control listen address.
    pub control_listen: Option<SocketAddr>,
    /// Metrics listen address.
    pub metrics_listen: Option<SocketAddr>,
    /// The address clients use for this replica's control API (for the k8s controllers).
    pub control_endpoint: String,
}

/// A replica id: a number, or a StatefulSet pod name `<name>-<ordinal>` (id = ordinal + 1,
/// since Raft ids are non-zero), so a StatefulSet can pass `metadata.name` straight in.
fn parse_replica_id(s: &str) -> std::result::Result<u64, String> {
    if let Ok(id) = s.parse::<u64>() {
        return Ok(id);
    }
    s.rsplit_once('-')
        .and_then(|(_, ordinal)| ordinal.parse::<u64>().ok())
        .and_then(|ordinal| ordinal.checked_add(1))
        .ok_or_else(|| {
            format!("{s:?} is neither a number nor a StatefulSet pod name like alkaid-operator-0")
        })
}

fn bad(reason: impl Into<String>) -> Error {
    Error::Config {
        reason: reason.into(),
    }
}

fn addr(flag: &str, s: &str) -> Result<SocketAddr> {
    s.parse()
        .map_err(|_| bad(format!("{flag} {s:?} must be ip:port, e.g. 0.0.0.0:7100")))
}

fn id_map(flag: &str, items: &[String]) -> Result<BTreeMap<u64, String>> {
    let mut out = BTreeMap::new();
    for p in items {
        let (id, a) = p
            .split_once('=')
            .ok_or_else(|| bad(format!("{flag} entry {p:?} must be id=host:port")))?;
        let id: u64 = id
            .parse()
            .map_err(|_| bad(format!("{flag} entry {p:?}: id must be a number")))?;
        if a.rsplit_once(':')
            .is_none_or(|(_, port)| port.parse::<u16>().is_err())
        {
            return Err(bad(format!(
                "{flag} entry {p:?}: address must be host:port"
            )));
        }
        out.insert(id, a.to_string());
    }
    Ok(out)
}

fn read(path: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        what: format!("reading {}", path.display()),
        source,
    })
}

impl Config {
    /// Checks every flag and builds the replica options (reading TLS files).
    ///
    /// # Errors
    /// [`Error::Config`] naming the flag to fix; [`Error::Io`] for unreadable TLS files.
    pub fn validate(&self) -> Result<Validated> {
        if self.id == 0 {
            return Err(bad("--id must be non-zero"));
        }
        let peers = id_map("--peers", &self.peers)?;
        if !self.join && !peers.contains_key(&self.id) {
            return Err(bad(format!(
                "--peers must include this replica (id {})",
                self.id
            )));
        }
        let control_peers = id_map("--control-peers", &self.control_peers)?;
        let raft_listen = addr("--raft-listen", &self.raft_listen)?;
        let control_listen = self
            .control_listen
            .as_deref()
            .map(|a| addr("--control-listen", a))
            .transpose()?;
        let metrics_listen = self
            .metrics_listen
            .as_deref()
            .map(|a| addr("--metrics-listen", a))
            .transpose()?;
        if self.heartbeat_timeout_ms < 100 {
            return Err(bad("--heartbeat-timeout-ms must be at least 100"));
        }
        if self.tick_ms == 0 || self.ack_interval_ms == 0 {
            return Err(bad("--tick-ms and --ack-interval-ms must be positive"));
        }
        let tls = match (&self.tls_ca, &self.tls_cert, &self.tls_key) {
            (None, None, None) => None,
            (Some(ca), Some(cert), Some(key)) => Some(TlsConfig {
                ca_pem: read(ca)?,
                cert_pem: read(cert)?,
                key_pem: read(key)?,
                domain: self.tls_domain.clone(),
            }),
            _ => return Err(bad("--tls-ca, --tls-cert and --tls-key go together")),
        };
        let bootstrap = if self.join {
            Bootstrap::Join
        } else {
            Bootstrap::Initial(peers.keys().copied().collect())
        };
        let mut node = NodeConfig::new(self.id, peers.clone(), bootstrap);
        node.tick_interval = Duration::from_millis(self.tick_ms);
        node.validate().map_err(|e| bad(e.to_string()))?;
        let local = |a: SocketAddr| {
            if a.ip().is_unspecified() {
                format!("127.0.0.1:{}", a.port())
            } else {
                a.to_string()
            }
        };
        let control_endpoint = control_peers
            .get(&self.id)
            .cloned()
            .unwrap_or_else(|| local(control_listen.unwrap_or(raft_listen)));
        let mut options = Options::new(node, self.data_dir.clone());
        options.control_peers = control_peers;
        options.tls = tls;
        options.heartbeat_timeout = Duration::from_millis(self.heartbeat_timeout_ms);
        options.ack_interval = Duration::from_millis(self.ack_interval_ms);
        options.epoch = self.epoch;
        Ok(Validated {
            options,
            raft_listen,
            control_listen,
            metrics_listen,
            control_endpoint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        let mut v = vec!["alkaid-operator"];
        v.extend_from_slice(args);
        Config::try_parse_from(v).unwrap()
    }

    #[test]
    fn replica_id_from_number_or_statefulset_pod_name() {
        assert_eq!(parse_replica_id("3"), Ok(3));
        assert_eq!(parse_replica_id("alkaid-operator-0"), Ok(1));
        assert_eq!(parse_replica_id("alkaid-operator-12"), Ok(13));
        assert!(parse_replica_id("alkaid-operator").is_err());
        assert!(parse_replica_id("").is_err());
    }

    /// deploy/operator/statefulset.yaml must start this binary: every `ALKAID_*` variable it
    /// sets is a flag of this `Config`, and the values parse and validate (TLS files aside).
    #[test]
    fn statefulset_env_matches_the_flags() {
        use clap::CommandFactory as _;
        let yaml = include_str!("../../deploy/operator/statefulset.yaml");
        let command = Config::command();
        let mut args = vec!["alkaid-operator".to_string()];
        let mut lines = yaml.lines().peekable();
        while let Some(line) = lines.next() {
            let Some(name) = line.trim().strip_prefix("- name: ALKAID_") else {
                continue;
            };
            let env = format!("ALKAID_{name}");
            let next = lines.peek().map(|l| l.trim()).unwrap_or_default();
            let value = match next.strip_prefix("value: ") {
                Some(v) => v.trim_matches('"').to_string(),
                // valueFrom: fieldRef metadata.name, as the StatefulSet's first pod gets it.
                None => "alkaid-operator-0".to_string(),
            };
            if env.starts_with("ALKAID_TLS_") {
                continue; // files mounted from a Secret; validated by the mTLS tests
            }
            let arg = command
                .get_arguments()
                .find(|a| a.get_env().is_some_and(|e| e == env.as_str()))
                .unwrap_or_else(|| panic!("statefulset sets {env}, which no flag reads"));
            args.push(format!("--{}", arg.get_long().expect("long flag")));
            args.push(value);
        }
        let config = Config::try_parse_from(&args)
            .unwrap_or_else(|e| panic!("statefulset env does not parse: {e}\n{args:?}"));
        assert_eq!(config.id, 1);
        config
            .validate()
            .unwrap_or_else(|e| panic!("statefulset env does not validate: {e}"));
    }

    #[test]
    fn validates_flags() {
        let ok = parse(&[
            "--id",
            "1",
            "--peers",
            "1=127.0.0.1:7100,2=127.0.0.1:7101",
            "--data-dir",
            "/tmp/x",
        ]);
        let v = ok.validate().unwrap();
        assert_eq!(v.options.node.peers.len(), 2);
        assert_eq!(v.control_endpoint, "127.0.0.1:7100");
        let cases: &[(&[&str], &str)] = &[
            (
                &["--id", "0", "--peers", "1=a:1", "--data-dir", "x"],
                "--id",
            ),
            (
                &["--id", "3", "--peers", "1=a:1", "--data-dir", "x"],
                "include this replica",
            ),
            (
                &["--id", "1", "--peers", "1=nope", "--data-dir", "x"],
                "host:port",
            ),
            (
                &[
                    "--id",
                    "1",
                    "--peers",
                    "1=a:1",
                    "--data-dir",
                    "x",
                    "--tls-ca",
                    "ca.pem",
                ],
                "go together",
            ),
            (
                &[
                    "--id",
                    "1",
                    "--peers",
                    "1=a:1",
                    "--data-dir",
                    "x",
                    "--raft-listen",
                    "x",
                ],
                "--raft-listen",
            ),
        ];
        for (args, want) in cases {
            let e = parse(args).validate().unwrap_err().to_string();
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }
}
