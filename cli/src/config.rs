//! The one clap [`Config`] of the `alkaid` binary (global flags have `ALKAID_*` fallbacks).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::Format;

/// Alkaid: multi-tenant virtual networks. Talks to an operator, or runs a lab cluster.
#[derive(Debug, Parser)]
#[command(name = "alkaid", version, about)]
pub struct Config {
    /// Operator control API (host:port; comma-separated for several replicas). Default: the
    /// lab's operators.
    #[arg(long, env = "ALKAID_SERVER", global = true, value_delimiter = ',')]
    pub server: Vec<String>,
    /// CA certificate (PEM) for mutual TLS with --server.
    #[arg(long, env = "ALKAID_TLS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long, env = "ALKAID_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long, env = "ALKAID_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
    /// Name in the operators' certificates.
    #[arg(
        long,
        env = "ALKAID_TLS_DOMAIN",
        global = true,
        default_value = "localhost"
    )]
    pub tls_domain: String,
    /// Which lab (several can run side by side).
    #[arg(long, env = "ALKAID_LAB", global = true, default_value = "default")]
    pub lab: String,
    /// The lab's state directory (default /run/alkaid-lab/LAB).
    #[arg(long, env = "ALKAID_LAB_DIR", global = true)]
    pub lab_dir: Option<PathBuf>,
    /// Where alkaid-operator, alkaid-agent and alkaid-cni are (default: next to this binary).
    #[arg(long, env = "ALKAID_BIN_DIR", global = true)]
    pub bin_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update resources from YAML files (multi-document; `-` is stdin).
    Apply {
        /// Manifest files.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<String>,
        /// Validate on the server only; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete the resources in files, or one by kind and name.
    Delete {
        /// Manifest files.
        #[arg(short = 'f', long = "filename", conflicts_with_all = ["kind", "name"])]
        files: Vec<String>,
        /// Kind (vpcs, subnets, ...).
        #[arg(required_unless_present = "files")]
        kind: Option<String>,
        /// Name.
        #[arg(required_unless_present = "files")]
        name: Option<String>,
        /// Namespace (endpoints).
        #[arg(short = 'n', long, default_value = "")]
        namespace: String,
    },
    /// List resources of a kind, or show one.
    Get {
        /// vpcs, subnets, bouncers, dividers, droplets or endpoints (singular and short forms work).
        kind: String,
        /// One object.
        name: Option<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
        /// Namespace (endpoints; empty: all).
        #[arg(short = 'n', long, default_value = "")]
        namespace: String,
    },
    /// Show one resource in detail.
    Describe {
        /// Kind.
        kind: String,
        /// Name.
        name: String,
        /// Namespace (endpoints).
        #[arg(short = 'n', long, default_value = "")]
        namespace: String,
    },
    /// A real multi-droplet cluster on this machine (network namespaces; needs root).
    Lab(LabArgs),
}

/// `alkaid lab ...`
#[derive(Debug, Args)]
pub struct LabArgs {
    /// Lab command.
    #[command(subcommand)]
    pub command: LabCommand,
}

/// Which data plane lab agents run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataplane {
    /// The XDP programs (real forwarding).
    Aya,
    /// In-memory maps (control plane only; no packets are forwarded).
    Fake,
}

/// Where lab agents run the endpoint data path (the agent's `--endpoint-hook`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum EndpointHook {
    /// `agent_tc` on host veths, `transit_tc` on the underlay (keeps GSO/TSO).
    #[default]
    Tc,
    /// XDP `agent` on host veths (`agent_tc` behind it as the slow path), XDP `transit`
    /// (generic) on the underlay; pods run with tx checksum offload off.
    Xdp,
}

/// XDP attach mode of the endpoint veths with `--endpoint-hook xdp` (the agent's
/// `--xdp-mode-endpoint`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// skb mode: no rules for the veth peers.
    #[default]
    Generic,
    /// Driver mode: the lab puts the `pass` program on the bridge side of every droplet's
    /// underlay veth (shared/notes/xdp-on-veth.md rules 1-2).
    Native,
}

impl XdpMode {
    /// The name on the command line (`generic`, `native`), as the agent takes it too.
    pub fn name(self) -> &'static str {
        match self {
            Self::Generic => "generic",
            Self::Native => "native",
        }
    }
}

/// Start or stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Action {
    /// Bring it back.
    Start,
    /// Take it down.
    Stop,
    /// Droplets only: kill the agent (SIGKILL) and start it again, network untouched.
    Restart,
}

/// `alkaid lab` commands.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build the lab (idempotent) and print where everything is.
    Up {
        /// Number of droplets.
        #[arg(long, default_value_t = 3)]
        droplets: u32,
        /// Number of operator replicas (the Raft group).
        #[arg(long, default_value_t = 3)]
        operators: u32,
        /// Agents' data plane.
        #[arg(long, value_enum, default_value = "aya")]
        dataplane: Dataplane,
        /// Turn mutual TLS off.
        #[arg(long)]
        no_tls: bool,
        /// Underlay /24 (default derived from the lab name, inside 198.18.0.0/15).
        #[arg(long)]
        underlay: Option<ipnet::Ipv4Net>,
        /// Seconds to wait for the cluster to be ready.
        #[arg(long, default_value_t = 90)]
        timeout: u64,
        /// Every agent's endpoint data path: tc (the agent's default) or xdp.
        #[arg(long, value_enum, default_value = "tc")]
        endpoint_hook: EndpointHook,
        /// XDP mode of the endpoint veths with --endpoint-hook xdp (default generic; refused
        /// with tc). native also attaches the `pass` program to the bridge-side port of every
        /// droplet's underlay veth, as a NIC with an XDP driver would accept the frames.
        #[arg(long, value_enum)]
        xdp_mode: Option<XdpMode>,
    },
    /// Remove everything the lab made (works after a crash, with or without the state file).
    Down,
    /// What the lab holds and whether it runs.
    Status {
        /// Output format (table or json).
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
    },
    /// Pods: network namespaces wired by the real alkaid-cni.
    #[command(subcommand)]
    Pod(PodCommand),
    /// Run a command inside a pod's network namespace.
    Exec {
        /// Pod name.
        pod: String,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// What a droplet's BPF maps hold now, and its counters.
    Tables {
        /// Droplet name.
        droplet: String,
        /// Output format (table or json).
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
    },
    /// Fault injection: stop = agent killed and underlay link down; start = both back.
    Droplet {
        /// start or stop.
        action: Action,
        /// Droplet name.
        name: String,
    },
    /// Fault injection: stop or start operator replica N (its Raft id).
    Operator {
        /// start or stop.
        action: Action,
        /// Replica id (1-based).
        id: u64,
    },
    /// Start the echo service inside a pod (answers with the pod's name over TCP, UDP and
    /// HTTP; see `lab probe`).
    Serve {
        /// Pod name.
        pod: String,
        /// Base port (TCP/UDP; HTTP on +1, bulk sink on +2).
        #[arg(long, default_value_t = crate::lab::echo::PORT)]
        port: u16,
    },
    /// Ask an echo service who answers: prints the pod name (bulk: name, bytes, checksum).
    Probe {
        /// tcp, udp, http or bulk.
        proto: String,
        /// Address (IP or IP:PORT).
        addr: String,
        /// Run from inside this pod.
        #[arg(long)]
        from: Option<String>,
        /// Bytes to send (bulk).
        #[arg(long, default_value_t = 1 << 20)]
        bytes: u64,
        /// Per-operation timeout in milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
    /// Internal: the echo server itself.
    #[command(hide = true)]
    EchoServer {
        /// The name to answer with.
        #[arg(long)]
        name: String,
        /// Base port.
        #[arg(long, default_value_t = crate::lab::echo::PORT)]
        port: u16,
        /// Created once the sockets are bound.
        #[arg(long)]
        ready_file: Option<PathBuf>,
        /// Lets `lab pod del` / `lab down` find this process.
        #[arg(long, default_value = "")]
        marker: String,
    },
    /// Internal: enter a network namespace, then exec a command.
    #[command(hide = true)]
    NetnsExec {
        /// Path of the netns (e.g. /run/netns/NAME).
        netns: PathBuf,
        /// The command.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

/// `alkaid lab pod ...`
#[derive(Debug, Subcommand)]
pub enum PodCommand {
    /// Create a pod on a droplet through CNI ADD.
    Add {
        /// Pod name.
        name: String,
        /// Droplet that hosts it.
        #[arg(long)]
        droplet: String,
        /// VPC (default: the namespace binding, else the default VPC).
        #[arg(long)]
        vpc: Option<String>,
        /// Subnet.
        #[arg(long)]
        subnet: Option<String>,
        /// A fixed address instead of an allocated one.
        #[arg(long)]
        ip: Option<std::net::Ipv4Addr>,
        /// Kubernetes-style namespace of the pod.
        #[arg(long, default_value = "default")]
        namespace: String,
        /// Output format (table or json).
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
    },
    /// Remove a pod (CNI DEL, then its netns).
    Del {
        /// Pod name.
        name: String,
    },
    /// List the lab's pods.
    List {
        /// Output format (table or json).
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
    },
}

impl Config {
    /// Checks what clap cannot.
    ///
    /// # Errors
    /// [`crate::Error::Usage`] naming the flag.
    pub fn validate(&self) -> crate::Result<()> {
        let tls = [&self.tls_ca, &self.tls_cert, &self.tls_key];
        if tls.iter().any(|t| t.is_some()) && !tls.iter().all(|t| t.is_some()) {
            return Err(crate::Error::Usage(
                "--tls-ca, --tls-cert and --tls-key go together".into(),
            ));
        }
        let ok = !self.lab.is_empty()
            && self.lab.len() <= 32
            && self
                .lab
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(crate::Error::Usage(format!(
                "--lab {:?}: use 1-32 lowercase letters, digits or '-'",
                self.lab
            )));
        }
        if let Command::Lab(LabArgs {
            command:
                LabCommand::Up {
                    droplets,
                    operators,
                    dataplane,
                    endpoint_hook,
                    xdp_mode,
                    ..
                },
        }) = &self.command
        {
            if *endpoint_hook == EndpointHook::Tc && xdp_mode.is_some() {
                return Err(crate::Error::Usage(
                    "--xdp-mode goes with --endpoint-hook xdp (the tc hook runs no XDP at the endpoints)"
                        .into(),
                ));
            }
            if *endpoint_hook == EndpointHook::Xdp && *dataplane == Dataplane::Fake {
                return Err(crate::Error::Usage(
                    "--endpoint-hook xdp needs --dataplane aya (the fake data plane attaches nothing)"
                        .into(),
                ));
            }
            if !(1..=64).contains(droplets) {
                return Err(crate::Error::Usage("--droplets must be 1..=64".into()));
            }
            if !(1..=7).contains(operators) {
                return Err(crate::Error::Usage("--operators must be 1..=7".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_interface() {
        let ok: &[&[&str]] = &[
            &["alkaid", "apply", "-f", "a.yaml", "-f", "b.yaml"],
            &["alkaid", "delete", "-f", "a.yaml"],
            &["alkaid", "delete", "vpc", "blue"],
            &["alkaid", "get", "subnets", "-o", "wide"],
            &["alkaid", "get", "vpc", "blue", "-o", "json"],
            &["alkaid", "describe", "subnet", "web"],
            &["alkaid", "lab", "up", "--droplets", "4", "--operators", "3"],
            &["alkaid", "lab", "up", "--endpoint-hook", "xdp"],
            &[
                "alkaid",
                "lab",
                "up",
                "--endpoint-hook",
                "xdp",
                "--xdp-mode",
                "native",
            ],
            &["alkaid", "lab", "up", "--endpoint-hook", "tc"],
            &["alkaid", "lab", "status", "-o", "json"],
            &[
                "alkaid",
                "lab",
                "pod",
                "add",
                "p1",
                "--droplet",
                "d1",
                "--vpc",
                "blue",
                "--subnet",
                "s",
                "--ip",
                "10.0.0.5",
                "-o",
                "json",
            ],
            &["alkaid", "lab", "pod", "del", "p1"],
            &[
                "alkaid", "lab", "exec", "p1", "--", "ping", "-c1", "10.0.0.6",
            ],
            &["alkaid", "lab", "tables", "d1", "-o", "json"],
            &["alkaid", "lab", "droplet", "stop", "d2"],
            &["alkaid", "lab", "operator", "start", "1"],
        ];
        for args in ok {
            let c = Config::try_parse_from(*args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            c.validate().unwrap();
        }
        let c = Config::try_parse_from(["alkaid", "--lab", "Bad_Name", "lab", "down"]).unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("--lab"));
        let refused: &[(&[&str], &str)] = &[
            (&["--xdp-mode", "native"], "--endpoint-hook xdp"),
            (
                &["--endpoint-hook", "tc", "--xdp-mode", "generic"],
                "--endpoint-hook xdp",
            ),
            (
                &["--endpoint-hook", "xdp", "--dataplane", "fake"],
                "--dataplane aya",
            ),
        ];
        for (args, want) in refused {
            let c = Config::try_parse_from(["alkaid", "lab", "up"].iter().chain(args.iter()))
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }
}
