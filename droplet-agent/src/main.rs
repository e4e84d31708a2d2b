//! `alkaid-agent`: the per-droplet daemon. Parses and validates its [`Config`], then runs the
//! programming-stream client and the CNI server over one data plane until SIGTERM/SIGINT.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alkaid_agent::alloc::ControlAllocator;
use alkaid_agent::backoff::seed_from;
use alkaid_agent::cni::server;
use alkaid_agent::dataplane::{Dataplane, FakeDataplane};
use alkaid_agent::endpoint::{ENCAP_OVERHEAD, Endpoints, EndpointsConfig};
use alkaid_agent::grpc::{Client, ClientConfig};
use alkaid_agent::shutdown::{self, Shutdown};
use alkaid_agent::tls::TlsFiles;
use alkaid_agent::{Error, netlink};
use alkaid_proto::v1 as pb;
use anyhow::Context;
use clap::{Parser, ValueEnum};
use tonic::transport::{Channel, Endpoint};
use tracing::{info, warn};

/// Which data plane to drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DataplaneKind {
    /// In-memory maps: no packets are forwarded (tests, simulation, dry runs).
    Fake,
    /// The XDP programs and their pinned maps (needs root and a bpffs).
    #[cfg(feature = "xdp")]
    Aya,
}

/// XDP attach mode (see shared/notes/xdp-on-veth.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum XdpMode {
    /// Driver mode.
    Native,
    /// skb mode: keeps TSO, no peer rules.
    Generic,
}

/// XDP on the underlay NIC (see `--xdp-mode-underlay`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum UnderlayXdp {
    /// Off with the tc endpoint hook, generic with the xdp one.
    Auto,
    /// Driver mode.
    Native,
    /// skb mode.
    Generic,
    /// No XDP: `transit_tc` alone (tc endpoint hook only).
    Off,
}

/// Where the endpoint data path runs (see `EndpointHook`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum HookKind {
    /// TC (`agent_tc`, `transit_tc` decap): keeps GSO/TSO, pods keep tx offload.
    Tc,
    /// XDP (`agent`, `transit` decap) in --xdp-mode-endpoint; pods get tx checksum off.
    Xdp,
}

/// The agent's configuration; every flag has an `ALKAID_*` environment fallback.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "alkaid-agent",
    version,
    about = "Alkaid per-droplet agent",
    args_override_self = true
)]
struct Config {
    /// This droplet's name (a DNS-1123 subdomain, usually the node name).
    #[arg(long, env = "ALKAID_DROPLET")]
    droplet: String,
    /// This droplet's underlay IPv4 address.
    #[arg(long, env = "ALKAID_DROPLET_IP")]
    droplet_ip: Ipv4Addr,
    /// This droplet's underlay MAC (aa:bb:cc:dd:ee:ff).
    #[arg(long, env = "ALKAID_DROPLET_MAC", default_value = "")]
    droplet_mac: String,
    /// The underlay interface (where `transit` runs).
    #[arg(long, env = "ALKAID_INTERFACE", default_value = "eth0")]
    interface: String,
    /// The Kubernetes node, if any.
    #[arg(long, env = "ALKAID_NODE", default_value = "")]
    node: String,
    /// Operator control API addresses, comma-separated (http://host:port).
    #[arg(long, env = "ALKAID_OPERATORS", value_delimiter = ',', required = true)]
    operators: Vec<String>,
    /// The unix socket the alkaid-cni plugin talks to.
    #[arg(
        long,
        env = "ALKAID_CNI_SOCKET",
        default_value = "/run/alkaid/cni.sock"
    )]
    cni_socket: PathBuf,
    /// Where per-interface CNI records are kept.
    #[arg(
        long,
        env = "ALKAID_STATE_DIR",
        default_value = "/run/alkaid/endpoints"
    )]
    state_dir: PathBuf,
    /// Underlay MTU; endpoints get this minus the Geneve overhead (58).
    #[arg(long, env = "ALKAID_UNDERLAY_MTU", default_value_t = 1500)]
    underlay_mtu: u32,
    /// Heartbeat period in milliseconds.
    #[arg(long, env = "ALKAID_HEARTBEAT_MS", default_value_t = 5000)]
    heartbeat_ms: u64,
    /// First reconnect delay in milliseconds.
    #[arg(long, env = "ALKAID_BACKOFF_BASE_MS", default_value_t = 200)]
    backoff_base_ms: u64,
    /// Longest reconnect delay in milliseconds.
    #[arg(long, env = "ALKAID_BACKOFF_MAX_MS", default_value_t = 10_000)]
    backoff_max_ms: u64,
    /// The data plane implementation.
    #[arg(long, env = "ALKAID_DATAPLANE", value_enum, default_value = "fake")]
    dataplane: DataplaneKind,
    /// bpffs directory for pinned maps and links (`--dataplane aya`).
    #[arg(long, env = "ALKAID_BPF_PIN_DIR", default_value = "/sys/fs/bpf/alkaid")]
    bpf_pin_dir: PathBuf,
    /// The virtual gateway MAC every pod ARP is answered with.
    #[arg(long, env = "ALKAID_GATEWAY_MAC", default_value = "02:a1:ca:1d:00:01")]
    gateway_mac: String,
    /// XDP on the underlay NIC: native (driver XDP: bouncer and divider retargets leave with
    /// XDP_TX before any skb exists; for NICs with an XDP driver), generic, or off (`transit_tc`
    /// alone; needs --endpoint-hook tc). auto: off with the tc hook (measured on a veth
    /// underlay: generic XDP in front of `transit_tc` cost 2-28% of the small-packet rate
    /// and gained nothing), generic with the xdp hook.
    #[arg(
        long,
        env = "ALKAID_XDP_MODE_UNDERLAY",
        value_enum,
        default_value = "auto"
    )]
    xdp_mode_underlay: UnderlayXdp,
    /// Hook of the endpoint data path: tc (default; keeps GSO/TSO, measured 0.92-1.15x the
    /// kernel's VXLAN TCP throughput) or xdp (then in --xdp-mode-endpoint).
    #[arg(long, env = "ALKAID_ENDPOINT_HOOK", value_enum, default_value = "tc")]
    endpoint_hook: HookKind,
    /// XDP mode on endpoint veths (with --endpoint-hook xdp).
    #[arg(
        long,
        env = "ALKAID_XDP_MODE_ENDPOINT",
        value_enum,
        default_value = "generic"
    )]
    xdp_mode_endpoint: XdpMode,
    /// Capacity of ENDPOINTS: local endpoints plus the directories of the subnets this
    /// droplet bounces (~100 bytes of kernel memory per slot, allocated up front). Pinned maps
    /// keep the capacity they were created with.
    #[cfg(feature = "xdp")]
    #[arg(
        long,
        env = "ALKAID_MAX_ENDPOINTS",
        default_value_t = alkaid_xdp_common::maps::ENDPOINTS_MAX,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    max_endpoints: u32,
    /// Capacity of DIRECT_PATH (an LRU: a full map evicts the coldest flow's path).
    #[cfg(feature = "xdp")]
    #[arg(
        long,
        env = "ALKAID_MAX_DIRECT_PATHS",
        default_value_t = alkaid_xdp_common::maps::DIRECT_PATH_MAX,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    max_direct_paths: u32,
    /// Capacity of NETWORKS (subnets routed here).
    #[cfg(feature = "xdp")]
    #[arg(
        long,
        env = "ALKAID_MAX_NETWORKS",
        default_value_t = alkaid_xdp_common::maps::NETWORKS_MAX,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    max_networks: u32,
    /// Capacity of PEERS (droplets).
    #[cfg(feature = "xdp")]
    #[arg(
        long,
        env = "ALKAID_MAX_PEERS",
        default_value_t = alkaid_xdp_common::maps::PEERS_MAX,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    max_peers: u32,
    /// Serve Prometheus metrics on this address (e.g. 0.0.0.0:9464); unset: no metrics.
    #[arg(long, env = "ALKAID_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// CA certificate (PEM) the operators' certificates chain to; with --tls-cert and
    /// --tls-key turns on mTLS to the operators (addresses are then dialed https://).
    #[arg(long, env = "ALKAID_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// This agent's client certificate (PEM) for mTLS.
    #[arg(long, env = "ALKAID_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// This agent's private key (PEM) for mTLS.
    #[arg(long, env = "ALKAID_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Name the operators' certificates are verified against (default: the dialed host).
    #[arg(long, env = "ALKAID_TLS_DOMAIN")]
    tls_domain: Option<String>,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "ALKAID_LOG", default_value = "info")]
    log: String,
}

impl Config {
    /// The mTLS files, when all three are set (see [`Config::validate`]).
    fn tls(&self) -> Option<TlsFiles> {
        match (&self.tls_ca, &self.tls_cert, &self.tls_key) {
            (Some(ca), Some(cert), Some(key)) => Some(TlsFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
                domain: self.tls_domain.clone(),
            }),
            _ => None,
        }
    }

    /// Checks what clap cannot.
    fn validate(&self) -> Result<(), Error> {
        let bad = |field, reason: String| Err(Error::Config { field, reason });
        if let Err(e) = alkaid_model::DropletName::new(self.droplet.clone()) {
            return bad("--droplet", e.to_string());
        }
        if !self.droplet_mac.is_empty() {
            alkaid_agent::pb::parse_mac("--droplet-mac", &self.droplet_mac)?;
        }
        alkaid_agent::pb::parse_mac("--gateway-mac", &self.gateway_mac)?;
        for op in &self.operators {
            if !(op.starts_with("http://") || op.starts_with("https://"))
                || Endpoint::from_shared(op.clone()).is_err()
            {
                return bad("--operators", format!("{op:?} is not an http(s):// URL"));
            }
        }
        if !(576 + ENCAP_OVERHEAD..=65_535).contains(&self.underlay_mtu) {
            return bad(
                "--underlay-mtu",
                format!(
                    "{} is outside {}..=65535",
                    self.underlay_mtu,
                    576 + ENCAP_OVERHEAD
                ),
            );
        }
        let tls_set = [&self.tls_ca, &self.tls_cert, &self.tls_key]
            .iter()
            .filter(|f| f.is_some())
            .count();
        if tls_set != 0 && tls_set != 3 {
            return bad(
                "--tls-ca/--tls-cert/--tls-key",
                "give all three (mTLS to the operators) or none (plain HTTP/2)".into(),
            );
        }
        if let Some(files) = self.tls() {
            for path in [&files.ca, &files.cert, &files.key] {
                if !path.is_file() {
                    return bad(
                        "--tls-ca/--tls-cert/--tls-key",
                        format!("{} is not a readable file", path.display()),
                    );
                }
            }
        }
        if self.xdp_mode_underlay == UnderlayXdp::Off && self.endpoint_hook == HookKind::Xdp {
            return bad(
                "--xdp-mode-underlay",
                "off needs --endpoint-hook tc (the XDP endpoint path decapsulates in XDP)".into(),
            );
        }
        if self.heartbeat_ms == 0 || self.backoff_base_ms == 0 {
            return bad(
                "--heartbeat-ms/--backoff-base-ms",
                "must be positive".into(),
            );
        }
        if self.backoff_base_ms > self.backoff_max_ms {
            return bad(
                "--backoff-max-ms",
                "must be at least --backoff-base-ms".into(),
            );
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cfg = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cfg.log).context("invalid --log filter")?,
        )
        .init();
    cfg.validate()?;
    if cfg.droplet_mac.is_empty() {
        // A DaemonSet cannot pass the NIC's MAC: read it from the underlay interface.
        cfg.droplet_mac = underlay_mac(&cfg.interface).await?;
        info!(interface = %cfg.interface, mac = %cfg.droplet_mac, "droplet mac from the underlay interface");
    }
    run(cfg).await
}

/// The MAC of the underlay interface, as `aa:bb:cc:dd:ee:ff`.
async fn underlay_mac(interface: &str) -> anyhow::Result<String> {
    let host = netlink::connect(std::path::Path::new("/")).context("cannot open netlink")?;
    let link = netlink::link_by_name(&host, interface)
        .await?
        .with_context(|| format!("underlay interface {interface} not found: pass --interface"))?;
    let mac = netlink::link_mac(&link);
    anyhow::ensure!(
        mac.len() == 6,
        "underlay interface {interface} has no MAC address: pass --droplet-mac"
    );
    Ok(alkaid_agent::pb::format_mac(&mac))
}

async fn run(cfg: Config) -> anyhow::Result<()> {
    match cfg.dataplane {
        DataplaneKind::Fake => run_with(cfg, Arc::new(FakeDataplane::new())).await,
        #[cfg(feature = "xdp")]
        DataplaneKind::Aya => {
            let dp = open_aya(&cfg).await?;
            run_with(cfg, Arc::new(dp)).await
        }
    }
}

#[cfg(feature = "xdp")]
async fn open_aya(cfg: &Config) -> anyhow::Result<alkaid_agent::dataplane::AyaDataplane> {
    use alkaid_agent::dataplane::{AyaConfig, AyaDataplane};
    use alkaid_agent::pb::parse_mac;
    let host = netlink::connect(std::path::Path::new("/")).context("cannot open netlink")?;
    let nic = netlink::link_by_name(&host, &cfg.interface)
        .await?
        .with_context(|| format!("underlay interface {} not found", cfg.interface))?;
    let mode = |m| match m {
        XdpMode::Native => alkaid_xdp::Mode::Native,
        XdpMode::Generic => alkaid_xdp::Mode::Generic,
    };
    let aya_cfg = AyaConfig {
        pin_dir: cfg.bpf_pin_dir.clone(),
        droplet_ip: cfg.droplet_ip,
        droplet_mac: parse_mac("--droplet-mac", &cfg.droplet_mac)?,
        underlay_ifindex: nic.header.index,
        underlay_ifname: cfg.interface.clone(),
        underlay_mtu: cfg.underlay_mtu,
        gateway_mac: parse_mac("--gateway-mac", &cfg.gateway_mac)?,
        underlay_mode: match (cfg.xdp_mode_underlay, cfg.endpoint_hook) {
            (UnderlayXdp::Native, _) => Some(alkaid_xdp::Mode::Native),
            (UnderlayXdp::Generic, _) | (UnderlayXdp::Auto, HookKind::Xdp) => {
                Some(alkaid_xdp::Mode::Generic)
            }
            (UnderlayXdp::Off, _) | (UnderlayXdp::Auto, HookKind::Tc) => None,
        },
        endpoint_mode: mode(cfg.xdp_mode_endpoint),
        endpoint_hook: match cfg.endpoint_hook {
            HookKind::Tc => alkaid_agent::dataplane::EndpointHook::Tc,
            HookKind::Xdp => alkaid_agent::dataplane::EndpointHook::Xdp,
        },
        map_sizes: alkaid_xdp::MapSizes {
            endpoints: cfg.max_endpoints,
            networks: cfg.max_networks,
            direct_paths: cfg.max_direct_paths,
            peers: cfg.max_peers,
        },
    };
    // Loading runs the verifier: seconds, off the async workers.
    Ok(tokio::task::spawn_blocking(move || AyaDataplane::open(aya_cfg)).await??)
}

async fn run_with<D: Dataplane>(cfg: Config, dataplane: Arc<D>) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();

    let tls = cfg
        .tls()
        .map(|f| f.client_config())
        .transpose()
        .context("cannot read the mTLS files")?;
    let endpoints: Vec<Endpoint> = cfg
        .operators
        .iter()
        .map(|o| alkaid_agent::tls::endpoint(o, tls.as_ref(), Duration::from_secs(5)))
        .collect::<Result<_, _>>()
        .context("invalid operator address")?;
    // Any replica accepts AllocateEndpoint (followers forward to the leader); the allocator
    // skips one that cannot be reached.
    let control: Vec<Channel> = endpoints.into_iter().map(|e| e.connect_lazy()).collect();
    let host = netlink::connect(std::path::Path::new("/")).context("cannot open netlink")?;
    let (client, status) = Client::new(
        ClientConfig {
            operators: cfg.operators.clone(),
            droplet: cfg.droplet.clone(),
            spec: pb::DropletSpec {
                ip: cfg.droplet_ip.to_string(),
                mac: cfg.droplet_mac.clone(),
                interface: cfg.interface.clone(),
                node: cfg.node.clone(),
            },
            heartbeat: Duration::from_millis(cfg.heartbeat_ms),
            backoff_base: Duration::from_millis(cfg.backoff_base_ms),
            backoff_max: Duration::from_millis(cfg.backoff_max_ms),
            seed: seed_from(&cfg.droplet),
            connect_timeout: Duration::from_secs(5),
            tls: tls.clone(),
        },
        Arc::clone(&dataplane),
    );
    let eps = Arc::new(
        Endpoints::new(
            EndpointsConfig {
                state_dir: cfg.state_dir.clone(),
                mtu: cfg.underlay_mtu - ENCAP_OVERHEAD,
                pod_tx_checksum_off: cfg.endpoint_hook == HookKind::Xdp,
            },
            ControlAllocator::with_replicas(control, cfg.droplet.clone()),
            Arc::clone(&dataplane),
            host,
        )
        .wait_programmed(status.clone(), Duration::from_secs(10)),
    );
    // Before the first full sync: the data plane must know the local interfaces again.
    eps.restore()
        .await
        .context("cannot restore endpoint attachments")?;
    let listener = server::bind(&cfg.cni_socket)?;
    let cni = tokio::spawn(server::serve(listener, eps, shutdown.wait()));

    let metrics = match cfg.metrics_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind metrics on {addr}"))?;
            Some(tokio::spawn(alkaid_agent::metrics::serve(
                listener,
                status,
                Arc::clone(&dataplane),
                shutdown.wait(),
            )))
        }
        None => None,
    };
    let programming = tokio::spawn(client.run(shutdown.wait()));
    info!(droplet = %cfg.droplet, mtls = tls.is_some(), socket = %cfg.cni_socket.display(), "agent running");

    let why = shutdown::signal()
        .await
        .context("cannot install signal handlers")?;
    info!(
        signal = why,
        "shutting down; XDP programs and maps stay in place"
    );
    shutdown.trigger();
    if let Some(m) = metrics {
        let _ = m.await;
    }
    for (name, task) in [("cni", cni), ("programming", programming)] {
        if let Err(e) = task.await {
            warn!(task = name, error = %e, "task ended abnormally");
        }
    }
    if let Err(e) = std::fs::remove_file(&cfg.cni_socket) {
        warn!(error = %e, "cannot remove the cni socket");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// deploy/agent/daemonset.yaml must start this binary: every `ALKAID_*` variable it sets
    /// is a flag of this `Config`, and the values parse and validate (TLS files aside).
    #[test]
    fn daemonset_env_matches_the_flags() {
        use clap::CommandFactory as _;
        let yaml = include_str!("../../deploy/agent/daemonset.yaml");
        let command = Config::command();
        let mut args = vec!["alkaid-agent".to_string()];
        let mut lines = yaml.lines().peekable();
        while let Some(line) = lines.next() {
            let Some(name) = line.trim().strip_prefix("- name: ALKAID_") else {
                continue;
            };
            let env = format!("ALKAID_{name}");
            let next = lines.peek().map(|l| l.trim()).unwrap_or_default();
            let value = match next.strip_prefix("value: ") {
                Some(v) => v.trim_matches('"').to_string(),
                // valueFrom: fieldRef (spec.nodeName, status.hostIP), as a node gets them.
                None if env == "ALKAID_DROPLET_IP" => "10.0.0.5".to_string(),
                None => "node-1".to_string(),
            };
            if env.starts_with("ALKAID_TLS_") && env != "ALKAID_TLS_DOMAIN" {
                continue; // files mounted from a Secret; validated by the mTLS tests
            }
            let arg = command
                .get_arguments()
                .find(|a| a.get_env().is_some_and(|e| e == env.as_str()))
                .unwrap_or_else(|| panic!("daemonset sets {env}, which no flag reads"));
            args.push(format!("--{}", arg.get_long().expect("long flag")));
            args.push(value);
        }
        let config = Config::try_parse_from(&args)
            .unwrap_or_else(|e| panic!("daemonset env does not parse: {e}\n{args:?}"));
        config
            .validate()
            .unwrap_or_else(|e| panic!("daemonset env does not validate: {e}"));
    }

    fn parse(args: &[&str]) -> Config {
        let mut all = vec![
            "alkaid-agent",
            "--droplet",
            "d1",
            "--droplet-ip",
            "192.168.0.1",
            "--operators",
            "http://10.0.0.1:7000,http://10.0.0.2:7000",
        ];
        all.extend_from_slice(args);
        Config::try_parse_from(all).unwrap()
    }

    #[test]
    fn defaults_validate() {
        let c = parse(&[]);
        assert_eq!(c.operators.len(), 2);
        assert_eq!(c.underlay_mtu, 1500);
        c.validate().unwrap();
    }

    #[test]
    fn invalid_values_are_refused_naming_the_flag() {
        let cases: [(&[&str], &str); 8] = [
            (&["--droplet", "Not_A_Name"], "--droplet"),
            (
                &["--xdp-mode-underlay", "off", "--endpoint-hook", "xdp"],
                "--xdp-mode-underlay",
            ),
            (&["--operators", "10.0.0.1:7000"], "--operators"),
            (&["--underlay-mtu", "500"], "--underlay-mtu"),
            (
                &["--backoff-base-ms", "500", "--backoff-max-ms", "100"],
                "--backoff-max-ms",
            ),
            (&["--droplet-mac", "zz"], "--droplet-mac"),
            (
                &["--tls-ca", "/etc/hostname"],
                "--tls-ca/--tls-cert/--tls-key",
            ),
            (
                &[
                    "--tls-ca",
                    "/nonexistent/ca",
                    "--tls-cert",
                    "/nonexistent/c",
                    "--tls-key",
                    "/nonexistent/k",
                ],
                "/nonexistent/ca",
            ),
        ];
        for (args, flag) in cases {
            let err = parse(args).validate().unwrap_err().to_string();
            assert!(err.contains(flag), "{args:?}: {err}");
        }
    }
}
