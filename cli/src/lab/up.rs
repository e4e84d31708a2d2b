//! `alkaid lab up`: bridge -> droplet namespaces and veths -> PKI -> operators (Raft group)
//! -> agents inside their netns -> wait for a leader and every droplet Ready -> summary.
//! With `--endpoint-hook xdp --xdp-mode native`, the bridge-side ports get the `pass`
//! program before any agent starts ([`super::xdp`]).
//!
//! Idempotent: a lab that is up is only checked (and any process that died is started
//! again); the state file is written after every step so a crash mid-way is cleaned up by
//! `lab down`.

use std::fs::OpenOptions;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alkaid_proto::v1 as pb;
use indicatif::{ProgressBar, ProgressStyle};

use super::state::{DropletState, OperatorState, State, hook_label};
use super::{Lab, certs, net, ports, sys, xdp};
use crate::client::Target;
use crate::config::{Dataplane, EndpointHook, XdpMode};
use crate::error::{Error, Result};

/// What `lab up` was asked for.
#[derive(Clone, Debug)]
pub struct UpOptions {
    /// Droplet count.
    pub droplets: u32,
    /// Operator replicas.
    pub operators: u32,
    /// Agents' data plane.
    pub dataplane: Dataplane,
    /// Mutual TLS wanted.
    pub tls: bool,
    /// Underlay /24.
    pub underlay: Option<ipnet::Ipv4Net>,
    /// Readiness deadline.
    pub timeout: Duration,
    /// Agents' endpoint hook.
    pub endpoint_hook: EndpointHook,
    /// XDP mode of the endpoint veths: `Some` with [`EndpointHook::Xdp`] only.
    pub xdp_mode: Option<XdpMode>,
}

impl UpOptions {
    /// The agent flags choosing the endpoint hook (none for tc, the agent's default). The
    /// underlay keeps the agent's `--xdp-mode-underlay auto`: generic XDP `transit` with the
    /// xdp hook, in either endpoint mode (native endpoints need nothing more from it).
    pub fn hook_args(&self) -> Vec<String> {
        match self.endpoint_hook {
            EndpointHook::Tc => Vec::new(),
            EndpointHook::Xdp => vec![
                "--endpoint-hook".into(),
                "xdp".into(),
                "--xdp-mode-endpoint".into(),
                self.xdp_mode.unwrap_or_default().name().into(),
            ],
        }
    }
}

/// Starts `argv` (optionally inside `netns`, by re-executing ourselves as `lab netns-exec`)
/// detached in its own process group, output appended to `log`. Returns its pid.
///
/// # Errors
/// [`Error::Io`].
pub fn spawn(argv: &[String], netns: Option<&Path>, log: &Path) -> Result<u32> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| Error::io("opening log", log, e))?;
    let err = out
        .try_clone()
        .map_err(|e| Error::io("opening log", log, e))?;
    let mut cmd = match netns {
        Some(ns) => {
            let me = std::env::current_exe().map_err(|e| Error::io("finding", "alkaid", e))?;
            let mut c = Command::new(me);
            c.arg("lab").arg("netns-exec").arg(ns).arg("--").args(argv);
            c
        }
        None => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    // Our ALKAID_* settings (e.g. ALKAID_TLS_CA for the CLI) must not leak into the
    // daemons' env fallbacks.
    for (k, _) in std::env::vars() {
        if k.starts_with("ALKAID_") {
            cmd.env_remove(k);
        }
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| Error::io("starting", &argv[0], e))?;
    Ok(child.id())
}

/// The last lines of a log, for error messages.
pub fn tail(log: &Path, n: usize) -> String {
    let t = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = t.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn plan(lab: &Lab, o: &UpOptions) -> Result<State> {
    let underlay = o.underlay.unwrap_or_else(|| lab.default_underlay());
    if underlay.prefix_len() > 26 {
        return Err(Error::Usage("--underlay must be a /26 or larger".into()));
    }
    let base = u32::from(underlay.network());
    let bridge_ip = Ipv4Addr::from(base + 1);
    let dp = o.dataplane;
    let agent = lab.bin("alkaid-agent")?;
    let operator = lab.bin("alkaid-operator")?;
    lab.bin("alkaid-cni")?;
    // mTLS needs the agent to speak it too.
    let agent_help = Command::new(&agent)
        .arg("--help")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let agent_tls = agent_help.contains("--tls-ca");
    let tls_note = match (o.tls, agent_tls) {
        (false, _) => Some("turned off with --no-tls".to_string()),
        (true, false) => Some("off: this alkaid-agent has no --tls-ca/--tls-cert/--tls-key flags yet, and agents must reach the operators".to_string()),
        (true, true) => None,
    };
    let tls_on = tls_note.is_none();
    let pki = if tls_on {
        Some(certs::ensure(
            &lab.dir.join("tls"),
            u64::from(o.operators),
            &[bridge_ip],
        )?)
    } else {
        None
    };
    let mut ops = Vec::new();
    let n = o.operators as usize;
    let mut raft = ports::reserve(&ports::registry(), &lab.name, 2 * n)?;
    let ctl = raft.split_off(n);
    let peers = |ports: &[u16], ip: Ipv4Addr| {
        ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}={ip}:{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    };
    for i in 0..o.operators as usize {
        let id = i as u64 + 1;
        let data_dir = lab.dir.join(format!("operator-{id}"));
        let mut argv = vec![
            s(&operator),
            "--id".into(),
            id.to_string(),
            "--raft-listen".into(),
            format!("127.0.0.1:{}", raft[i]),
            "--peers".into(),
            peers(&raft, Ipv4Addr::LOCALHOST),
            // Control listens on every address: the host dials the bridge IP or loopback,
            // droplets the bridge IP.
            "--control-listen".into(),
            format!("0.0.0.0:{}", ctl[i]),
            "--control-peers".into(),
            peers(&ctl, bridge_ip),
            "--data-dir".into(),
            s(&data_dir),
            "--heartbeat-timeout-ms".into(),
            "3000".into(),
        ];
        if let Some(p) = &pki {
            argv.extend([
                "--tls-ca".into(),
                s(&p.ca),
                "--tls-cert".into(),
                s(&p.operators[i].cert),
                "--tls-key".into(),
                s(&p.operators[i].key),
            ]);
        }
        ops.push(OperatorState {
            id,
            raft: format!("127.0.0.1:{}", raft[i]),
            control: format!("{bridge_ip}:{}", ctl[i]),
            data_dir,
            pid: 0,
            argv,
            log: lab.dir.join(format!("operator-{id}.log")),
            stopped: false,
        });
    }
    let scheme = if tls_on { "https" } else { "http" };
    let operators_arg = ops
        .iter()
        .map(|o| format!("{scheme}://{}", o.control))
        .collect::<Vec<_>>()
        .join(",");
    let mut droplets = Vec::new();
    for i in 1..=o.droplets as usize {
        let name = format!("d{i}");
        let ip = Ipv4Addr::from(base + 10 + i as u32);
        let ddir = lab.dir.join(&name);
        let netns = lab.droplet_netns(&name);
        droplets.push(DropletState {
            name: name.clone(),
            ip,
            mac: String::new(),
            netns_path: sys::netns_path(&netns),
            netns,
            host_veth: lab.host_veth(i),
            pid: 0,
            argv: Vec::new(),
            log: lab.dir.join(format!("agent-{name}.log")),
            cni_socket: ddir.join("cni.sock"),
            pin_dir: lab.pin_root().join(&name),
            stopped: false,
        });
        let d = droplets.last_mut().expect("just pushed");
        let dpname = match dp {
            Dataplane::Aya => "aya",
            Dataplane::Fake => "fake",
        };
        d.argv = vec![
            s(&agent),
            "--droplet".into(),
            name.clone(),
            "--droplet-ip".into(),
            ip.to_string(),
            "--interface".into(),
            "eth0".into(),
            "--operators".into(),
            operators_arg.clone(),
            "--cni-socket".into(),
            s(&d.cni_socket),
            "--state-dir".into(),
            s(&ddir.join("endpoints")),
            "--dataplane".into(),
            dpname.into(),
            "--bpf-pin-dir".into(),
            s(&d.pin_dir),
            "--heartbeat-ms".into(),
            "1000".into(),
            "--backoff-max-ms".into(),
            "2000".into(),
        ];
        d.argv.extend(o.hook_args());
        if let Some(p) = &pki {
            d.argv.extend([
                "--tls-ca".into(),
                s(&p.ca),
                "--tls-cert".into(),
                s(&p.agent.cert),
                "--tls-key".into(),
                s(&p.agent.key),
            ]);
        }
    }
    Ok(State {
        name: lab.name.clone(),
        dir: lab.dir.clone(),
        tag: lab.tag(),
        bridge: lab.bridge(),
        bridge_ip,
        underlay: underlay.to_string(),
        bin_dir: lab.bin_dir.clone(),
        dataplane: dp,
        endpoint_hook: o.endpoint_hook,
        xdp_mode: o.xdp_mode,
        tls: pki.as_ref().map(certs::Pki::cli_files),
        tls_note,
        pin_root: lab.pin_root(),
        operators: ops,
        droplets,
        pods: Vec::new(),
    })
}

fn progress() -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// Brings the lab up (or checks and repairs one that is up) and returns its state.
///
/// # Errors
/// Any step's failure, naming the piece and, for a process that died, its log's last lines.
pub async fn up(lab: &Lab, o: &UpOptions) -> Result<State> {
    super::require_root()?;
    let pb = progress();
    let mut st = match State::load(&lab.dir)? {
        Some(st) => {
            if st.droplets.len() != o.droplets as usize
                || st.operators.len() != o.operators as usize
            {
                pb.finish_and_clear();
                return Err(Error::Lab(format!(
                    "lab {:?} is up with {} droplets and {} operators: run `alkaid lab down` first to change its size",
                    lab.name,
                    st.droplets.len(),
                    st.operators.len()
                )));
            }
            if (st.endpoint_hook, st.xdp_mode) != (o.endpoint_hook, o.xdp_mode) {
                pb.finish_and_clear();
                return Err(Error::Lab(format!(
                    "lab {:?} is up with endpoint hook {}, not {}: run `alkaid lab down` first to change it",
                    lab.name,
                    st.hook_label(),
                    hook_label(o.endpoint_hook, o.xdp_mode)
                )));
            }
            pb.set_message("lab exists: checking it");
            st
        }
        None => {
            pb.set_message("planning");
            std::fs::create_dir_all(&lab.dir).map_err(|e| Error::io("creating", &lab.dir, e))?;
            let st = plan(lab, o)?;
            st.save()?;
            st
        }
    };
    let r = build(lab, &mut st, o, &pb).await;
    pb.finish_and_clear();
    r.map(|()| st)
}

async fn build(_lab: &Lab, st: &mut State, o: &UpOptions, pb: &ProgressBar) -> Result<()> {
    let underlay: ipnet::Ipv4Net = st
        .underlay
        .parse()
        .map_err(|_| Error::Lab(format!("bad underlay {:?} in the state file", st.underlay)))?;
    pb.set_message(format!(
        "bridge {} ({}/{})",
        st.bridge,
        st.bridge_ip,
        underlay.prefix_len()
    ));
    let host = net::connect(None)?;
    let br = net::ensure_bridge(&host, &st.bridge, st.bridge_ip, underlay.prefix_len()).await?;
    for i in 0..st.droplets.len() {
        let d = &st.droplets[i];
        pb.set_message(format!(
            "droplet {}: netns {} and underlay {}",
            d.name, d.netns, d.ip
        ));
        sys::create_netns(&d.netns)?;
        let mac = net::droplet_link(
            &host,
            br,
            &d.host_veth,
            &d.netns_path,
            d.ip,
            underlay.prefix_len(),
        )
        .await?;
        let d = &mut st.droplets[i];
        if !d.argv.iter().any(|a| a == "--droplet-mac") {
            d.argv.extend(["--droplet-mac".into(), mac.clone()]);
        }
        if !d.stopped {
            net::set_up_by_name(&host, &d.host_veth, true).await?;
        }
        d.mac = mac;
        std::fs::create_dir_all(d.cni_socket.parent().unwrap_or(Path::new("/")))
            .map_err(|e| Error::io("creating", &d.cni_socket, e))?;
        st.save()?;
    }
    std::fs::create_dir_all(&st.pin_root).map_err(|e| {
        Error::io(
            "creating (is bpffs mounted on /sys/fs/bpf?)",
            &st.pin_root,
            e,
        )
    })?;
    if st.xdp_mode == Some(XdpMode::Native) {
        pb.set_message("XDP pass on the bridge-side ports (native mode)");
        xdp::pass_on_bridge_ports(&host, st).await?;
    }
    let marker = format!("{}/", st.dir.display());
    for i in 0..st.operators.len() {
        let op = &st.operators[i];
        if op.stopped || sys::alive(op.pid, &marker) {
            continue;
        }
        pb.set_message(format!(
            "operator {} (raft {}, control {})",
            op.id, op.raft, op.control
        ));
        std::fs::create_dir_all(&op.data_dir)
            .map_err(|e| Error::io("creating", &op.data_dir, e))?;
        let pid = spawn(&op.argv, None, &op.log)?;
        st.operators[i].pid = pid;
        st.save()?;
    }
    pb.set_message("waiting for the operators to elect a leader");
    let deadline = Instant::now() + o.timeout;
    let target = Target {
        addrs: st.control_addrs(),
        tls: st.tls.clone(),
    };
    wait_leader(st, &target, deadline).await?;
    for i in 0..st.droplets.len() {
        let d = &st.droplets[i];
        if d.stopped || sys::alive(d.pid, &marker) {
            continue;
        }
        pb.set_message(format!("agent on {}", d.name));
        let pid = spawn(&d.argv, Some(&d.netns_path), &d.log)?;
        st.droplets[i].pid = pid;
        st.save()?;
    }
    pb.set_message("waiting for every droplet to register and be Ready");
    wait_droplets(st, &target, deadline).await
}

fn check_alive(st: &State) -> Result<()> {
    let marker = format!("{}/", st.dir.display());
    for op in st.operators.iter().filter(|o| !o.stopped && o.pid != 0) {
        if !sys::alive(op.pid, &marker) {
            return Err(Error::Lab(format!(
                "operator {} exited; last lines of {}:\n{}",
                op.id,
                op.log.display(),
                tail(&op.log, 15)
            )));
        }
    }
    for d in st.droplets.iter().filter(|d| !d.stopped && d.pid != 0) {
        if !sys::alive(d.pid, &marker) {
            return Err(Error::Lab(format!(
                "the agent of {} exited; last lines of {}:\n{}",
                d.name,
                d.log.display(),
                tail(&d.log, 15)
            )));
        }
    }
    Ok(())
}

/// Waits until some replica reports a leader.
///
/// # Errors
/// [`Error::Timeout`], or a process that died.
pub async fn wait_leader(st: &State, target: &Target, deadline: Instant) -> Result<u64> {
    loop {
        check_alive(st)?;
        if let Ok(mut api) = target.connect().await
            && let Ok(r) = api.cluster_info(pb::ClusterInfoRequest {}).await
            && r.get_ref().leader_id != 0
        {
            return Ok(r.get_ref().leader_id);
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout {
                what: "an operator leader (see the operator-*.log files in the lab directory)"
                    .into(),
                secs: 0,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_droplets(st: &State, target: &Target, deadline: Instant) -> Result<()> {
    let want: Vec<&str> = st
        .droplets
        .iter()
        .filter(|d| !d.stopped)
        .map(|d| d.name.as_str())
        .collect();
    let mut seen = String::new();
    loop {
        check_alive(st)?;
        if let Ok(mut api) = target.connect().await
            && let Ok(r) = api
                .list(pb::ListRequest {
                    kind: pb::Kind::Droplet as i32,
                    namespace: String::new(),
                    stale: false,
                })
                .await
        {
            let ready: Vec<String> = r
                .into_inner()
                .resources
                .iter()
                .filter_map(|r| match &r.kind {
                    Some(pb::resource::Kind::Droplet(d))
                        if d.status.as_ref().is_some_and(|s| s.phase == "Ready") =>
                    {
                        d.metadata.as_ref().map(|m| m.name.clone())
                    }
                    _ => None,
                })
                .collect();
            seen = ready.join(",");
            if want.iter().all(|w| ready.iter().any(|r| r == w)) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(Error::Lab(format!(
                "droplets not Ready in time (Ready: [{seen}], want {}); see the agent-*.log files in {}",
                want.join(","),
                st.dir.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
