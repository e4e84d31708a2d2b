//! The lab's state file: everything `lab up` made (pids, namespaces, links, pins, dirs), so
//! `lab down` can remove it all and every other command can find it.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::client::TlsFiles;
use crate::config::{Dataplane, EndpointHook, XdpMode};
use crate::error::{Error, Result};

/// One operator replica.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorState {
    /// Raft id (1-based).
    pub id: u64,
    /// Raft transport address.
    pub raft: String,
    /// Control API address (reachable from the host and every droplet).
    pub control: String,
    /// Its sled directory.
    pub data_dir: PathBuf,
    /// Process id (0 when stopped).
    pub pid: u32,
    /// The command line, to start it again.
    pub argv: Vec<String>,
    /// Log file.
    pub log: PathBuf,
    /// Stopped on purpose (`lab operator stop`).
    #[serde(default)]
    pub stopped: bool,
}

/// One droplet: a netns with an underlay veth on the bridge and an agent.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DropletState {
    /// Droplet name (`d1`, ...).
    pub name: String,
    /// Underlay address.
    pub ip: Ipv4Addr,
    /// Underlay MAC (of `eth0` inside the netns).
    pub mac: String,
    /// Netns name.
    pub netns: String,
    /// Netns path.
    pub netns_path: PathBuf,
    /// Bridge-side veth in the root netns.
    pub host_veth: String,
    /// Agent pid (0 when stopped).
    pub pid: u32,
    /// The agent's command line.
    pub argv: Vec<String>,
    /// Agent log.
    pub log: PathBuf,
    /// CNI socket.
    pub cni_socket: PathBuf,
    /// bpffs directory for its pins.
    pub pin_dir: PathBuf,
    /// Stopped on purpose (`lab droplet stop`).
    #[serde(default)]
    pub stopped: bool,
}

/// One pod.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodState {
    /// Pod name.
    pub name: String,
    /// Kubernetes-style namespace.
    pub namespace: String,
    /// Address (no prefix).
    pub ip: String,
    /// Address with prefix.
    pub address: String,
    /// Gateway.
    pub gateway: String,
    /// MAC of its eth0.
    pub mac: String,
    /// Netns path.
    pub netns: PathBuf,
    /// Hosting droplet.
    pub droplet: String,
    /// VPC.
    pub vpc: String,
    /// Subnet.
    pub subnet: String,
    /// CNI_CONTAINERID used.
    pub container_id: String,
}

/// The whole lab.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// Lab name.
    pub name: String,
    /// State directory.
    pub dir: PathBuf,
    /// Short tag in every link name.
    pub tag: String,
    /// Underlay bridge.
    pub bridge: String,
    /// Bridge address (the host side of the underlay).
    pub bridge_ip: Ipv4Addr,
    /// Underlay CIDR.
    pub underlay: String,
    /// Where binaries come from.
    pub bin_dir: PathBuf,
    /// Agents' data plane.
    pub dataplane: Dataplane,
    /// Agents' endpoint hook (`--endpoint-hook`; state files from before it: tc).
    #[serde(default)]
    pub endpoint_hook: EndpointHook,
    /// XDP mode of the endpoint veths, with the xdp hook only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xdp_mode: Option<XdpMode>,
    /// Client certificate for the CLI when mTLS is on.
    pub tls: Option<TlsFiles>,
    /// Why mTLS is off, when it is.
    #[serde(default)]
    pub tls_note: Option<String>,
    /// bpffs root of this lab's pins.
    pub pin_root: PathBuf,
    /// Operator replicas.
    pub operators: Vec<OperatorState>,
    /// Droplets.
    pub droplets: Vec<DropletState>,
    /// Pods.
    #[serde(default)]
    pub pods: Vec<PodState>,
}

impl State {
    /// `DIR/state.json`.
    pub fn file(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    /// Reads the state file; `Ok(None)` when there is none.
    ///
    /// # Errors
    /// Unreadable or corrupt file.
    pub fn load(dir: &Path) -> Result<Option<State>> {
        let f = Self::file(dir);
        match std::fs::read(&f) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| Error::Json {
                    what: format!("reading {} (remove it with `alkaid lab down`)", f.display()),
                    source,
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading", f, e)),
        }
    }

    /// Writes the state file atomically (temp file + rename).
    ///
    /// # Errors
    /// I/O.
    pub fn save(&self) -> Result<()> {
        let f = Self::file(&self.dir);
        let tmp = f.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|source| Error::Json {
            what: "encoding the lab state".into(),
            source,
        })?;
        std::fs::write(&tmp, bytes).map_err(|e| Error::io("writing", &tmp, e))?;
        std::fs::rename(&tmp, &f).map_err(|e| Error::io("writing", &f, e))
    }

    /// A droplet by name.
    ///
    /// # Errors
    /// [`Error::Lab`] listing the droplets.
    pub fn droplet(&self, name: &str) -> Result<&DropletState> {
        self.droplets
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| {
                let all: Vec<_> = self.droplets.iter().map(|d| d.name.as_str()).collect();
                Error::Lab(format!(
                    "no droplet {name:?} in lab {}: it has {}",
                    self.name,
                    all.join(", ")
                ))
            })
    }

    /// A pod by name.
    ///
    /// # Errors
    /// [`Error::Lab`] when there is none.
    pub fn pod(&self, name: &str) -> Result<&PodState> {
        self.pods.iter().find(|p| p.name == name).ok_or_else(|| {
            Error::Lab(format!(
                "no pod {name:?} in lab {} (see `alkaid lab pod list`)",
                self.name
            ))
        })
    }

    /// The endpoint hook as `lab status` and messages show it: `tc`, `xdp (generic)`,
    /// `xdp (native)`.
    pub fn hook_label(&self) -> String {
        hook_label(self.endpoint_hook, self.xdp_mode)
    }

    /// Control addresses of the running replicas, then the stopped ones.
    pub fn control_addrs(&self) -> Vec<String> {
        let mut v: Vec<_> = self
            .operators
            .iter()
            .filter(|o| !o.stopped)
            .map(|o| o.control.clone())
            .collect();
        v.extend(
            self.operators
                .iter()
                .filter(|o| o.stopped)
                .map(|o| o.control.clone()),
        );
        v
    }
}

/// `tc`, `xdp (generic)` or `xdp (native)`.
pub fn hook_label(hook: EndpointHook, mode: Option<XdpMode>) -> String {
    match (hook, mode) {
        (EndpointHook::Tc, _) => "tc".into(),
        (EndpointHook::Xdp, m) => format!("xdp ({})", m.unwrap_or_default().name()),
    }
}
