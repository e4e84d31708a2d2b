//! Test and bench harness: three real operator replicas (gRPC transport, sled in temp
//! dirs) in this process, simulated agents, and waiting on conditions with deadlines.

#![allow(
    dead_code,
    reason = "shared by several test binaries and the bench; each uses a part"
)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alkaid_model::{DropletName, RowKey, Table};
use alkaid_operator::pb::{Key, Row};
use alkaid_operator::{Listeners, Options, Running};
use alkaid_proto::v1 as pb;
use alkaid_proto::v1::control_client::ControlClient;
use alkaid_proto::v1::programming_client::ProgrammingClient;
use alkaid_store::transport::grpc::TlsConfig;
use alkaid_store::{Bootstrap, NodeConfig};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// Polls `f` every 5 ms until it holds, failing after `within`.
pub async fn eventually<F: FnMut() -> bool>(within: Duration, what: &str, mut f: F) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Three (or n) replicas.
pub struct Cluster {
    pub addrs: Vec<String>,
    pub replicas: Vec<Option<Running>>,
    pub tls: Option<TlsConfig>,
    /// Each replica's options, to restart it on its data.
    opts: Vec<Options>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    /// Starts `n` replicas; `tune` adjusts each replica's options.
    pub async fn start(n: u64, tls: Option<TlsConfig>, tune: impl Fn(&mut Options)) -> Self {
        let mut listeners = Vec::new();
        let mut peers = BTreeMap::new();
        for id in 1..=n {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            peers.insert(id, l.local_addr().unwrap().to_string());
            listeners.push(l);
        }
        let mut replicas = Vec::new();
        let mut dirs = Vec::new();
        let mut all_opts = Vec::new();
        for (i, l) in listeners.into_iter().enumerate() {
            let id = i as u64 + 1;
            let dir = tempfile::tempdir().unwrap();
            let mut node = NodeConfig::new(
                id,
                peers.clone(),
                Bootstrap::Initial(peers.keys().copied().collect()),
            );
            node.tick_interval = Duration::from_millis(10);
            let mut opts = Options::new(node, dir.path().to_path_buf());
            opts.tls = tls.clone();
            opts.heartbeat_timeout = Duration::from_secs(30);
            tune(&mut opts);
            all_opts.push(opts.clone());
            let running = alkaid_operator::start(
                opts,
                Listeners {
                    raft: l,
                    control: None,
                    metrics: None,
                },
            )
            .await
            .unwrap();
            replicas.push(Some(running));
            dirs.push(dir);
        }
        let c = Self {
            addrs: peers.into_values().collect(),
            replicas,
            tls,
            opts: all_opts,
            _dirs: dirs,
        };
        c.leader(Duration::from_secs(10)).await;
        c
    }

    /// Index of the live leader, once there is one every live replica agrees on.
    pub async fn leader(&self, within: Duration) -> usize {
        let mut found = None;
        eventually(within, "a leader every live replica knows", || {
            found = self
                .replicas
                .iter()
                .enumerate()
                .find_map(|(i, r)| r.as_ref().filter(|r| r.ctx.is_leader()).map(|_| i));
            found.is_some_and(|l| {
                let id = self.replicas[l].as_ref().unwrap().ctx.node.id();
                self.replicas
                    .iter()
                    .flatten()
                    .all(|r| r.ctx.node.status().leader_id == id)
            })
        })
        .await;
        found.unwrap()
    }

    pub fn ctx(&self, i: usize) -> &alkaid_operator::ctx::Ctx {
        &self.replicas[i].as_ref().expect("replica is running").ctx
    }

    pub async fn channel(&self, i: usize) -> Channel {
        channel(&self.addrs[i], self.tls.as_ref()).await
    }

    pub async fn client(&self, i: usize) -> ControlClient<Channel> {
        ControlClient::new(self.channel(i).await)
    }

    pub async fn kill(&mut self, i: usize) {
        if let Some(r) = self.replicas[i].take() {
            r.kill().await;
        }
    }

    /// Starts a killed replica again on its data directory and address.
    pub async fn restart(&mut self, i: usize) {
        assert!(self.replicas[i].is_none(), "replica {i} is running");
        // While it was down, a peer's reconnect may hold its port for a moment as its source
        // port: retry for a while.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let raft = loop {
            match tokio::net::TcpListener::bind(&self.addrs[i]).await {
                Ok(l) => break l,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    eprintln!("binding {}: {e}; retrying", self.addrs[i]);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("binding {}: {e}", self.addrs[i]),
            }
        };
        let running = alkaid_operator::start(
            self.opts[i].clone(),
            Listeners {
                raft,
                control: None,
                metrics: None,
            },
        )
        .await
        .unwrap();
        self.replicas[i] = Some(running);
    }

    pub async fn shutdown(mut self) {
        for i in 0..self.replicas.len() {
            self.kill(i).await;
        }
    }
}

pub async fn channel(addr: &str, tls: Option<&TlsConfig>) -> Channel {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut ep = tonic::transport::Endpoint::from_shared(format!("{scheme}://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true);
    if let Some(t) = tls {
        ep = ep.tls_config(t.client()).unwrap();
    }
    ep.connect_lazy()
}

/// Builders of request messages.
pub fn vpc(name: &str, cidr: &str) -> pb::Resource {
    pb::Resource {
        kind: Some(pb::resource::Kind::Vpc(pb::Vpc {
            metadata: Some(pb::ObjectMeta {
                name: name.into(),
                ..Default::default()
            }),
            spec: Some(pb::VpcSpec {
                cidr: cidr.into(),
                ..Default::default()
            }),
            status: None,
        })),
    }
}

pub fn subnet(name: &str, vpc: &str, cidr: &str, bouncers: u32) -> pb::Resource {
    pb::Resource {
        kind: Some(pb::resource::Kind::Subnet(pb::Subnet {
            metadata: Some(pb::ObjectMeta {
                name: name.into(),
                ..Default::default()
            }),
            spec: Some(pb::SubnetSpec {
                vpc: vpc.into(),
                cidr: cidr.into(),
                bouncers,
                gateway: None,
            }),
            status: None,
        })),
    }
}

pub fn alloc_req(ns: &str, name: &str, subnet: &str, droplet: &str) -> pb::AllocateEndpointRequest {
    pb::AllocateEndpointRequest {
        namespace: ns.into(),
        name: name.into(),
        vpc: String::new(),
        subnet: subnet.into(),
        droplet: droplet.into(),
        ip: String::new(),
        pod: name.into(),
    }
}

/// What a simulated agent holds.
#[derive(Default, Debug)]
pub struct AgentView {
    pub version: u64,
    pub epoch: u64,
    pub table: Table,
    pub full_syncs: u64,
    pub deltas: u64,
    pub sessions: u64,
}

/// Called with the keys an agent just applied and acknowledged.
pub type OnApply = Arc<dyn Fn(&DropletName, &[RowKey]) + Send + Sync>;

/// A simulated droplet agent: registers, heartbeats, applies deltas to a model table, acks.
pub struct Agent {
    pub name: DropletName,
    pub view: Arc<Mutex<AgentView>>,
    task: JoinHandle<()>,
}

impl Agent {
    /// Starts the agent of droplet `name` (underlay `10.200.x.y` from `n`) against `addrs`.
    pub fn start(
        name: &str,
        n: u32,
        addrs: Vec<String>,
        tls: Option<TlsConfig>,
        heartbeat: Duration,
        on_apply: Option<OnApply>,
    ) -> Self {
        let name = DropletName::new(name).unwrap();
        let view = Arc::new(Mutex::new(AgentView::default()));
        let ip = std::net::Ipv4Addr::from(0x0ac8_0000 + n);
        let o = ip.octets();
        let spec = pb::DropletSpec {
            ip: ip.to_string(),
            mac: format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]),
            interface: "eth0".into(),
            node: name.to_string(),
        };
        let task = tokio::spawn(agent_loop(
            name.clone(),
            spec,
            addrs,
            tls,
            heartbeat,
            view.clone(),
            on_apply,
        ));
        Self { name, view, task }
    }

    /// Stops the agent (like a crashed host: no more heartbeats or acks).
    pub fn stop(&self) {
        self.task.abort();
    }

    pub fn snapshot(&self) -> (u64, Table) {
        let v = self.view.lock().unwrap();
        (v.version, v.table.clone())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn agent_loop(
    name: DropletName,
    spec: pb::DropletSpec,
    addrs: Vec<String>,
    tls: Option<TlsConfig>,
    heartbeat: Duration,
    view: Arc<Mutex<AgentView>>,
    on_apply: Option<OnApply>,
) {
    let mut target = addrs[0].clone();
    let mut next = 0usize;
    loop {
        let hint = session(
            &name,
            &spec,
            &target,
            tls.as_ref(),
            heartbeat,
            &view,
            on_apply.as_ref(),
        )
        .await;
        match hint {
            Some(leader) if !leader.is_empty() => target = leader,
            _ => {
                next = (next + 1) % addrs.len();
                target = addrs[next].clone();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// One connection; returns a leader hint when told to go elsewhere.
async fn session(
    name: &DropletName,
    spec: &pb::DropletSpec,
    target: &str,
    tls: Option<&TlsConfig>,
    heartbeat: Duration,
    view: &Arc<Mutex<AgentView>>,
    on_apply: Option<&OnApply>,
) -> Option<String> {
    let hint = |s: &tonic::Status| {
        s.metadata()
            .get("alkaid-leader")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let ch = channel(target, tls).await;
    let mut control = ControlClient::new(ch.clone());
    let reg = pb::RegisterDropletRequest {
        name: name.to_string(),
        spec: Some(spec.clone()),
    };
    if let Err(s) = control.register_droplet(reg).await {
        return hint(&s);
    }
    let (version, epoch) = {
        let v = view.lock().unwrap();
        (v.version, v.epoch)
    };
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tx.send(pb::AgentMessage {
        msg: Some(pb::agent_message::Msg::Hello(pb::Hello {
            droplet: name.to_string(),
            version,
            epoch,
        })),
    })
    .await
    .ok()?;
    let mut inbound = match ProgrammingClient::new(ch.clone())
        .program(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(s) => return hint(&s),
    };
    view.lock().unwrap().sessions += 1;
    let hb_name = name.to_string();
    let hb = tokio::spawn(async move {
        loop {
            let _ = control
                .heartbeat(pb::HeartbeatRequest {
                    name: hb_name.clone(),
                    applied_version: 0,
                })
                .await;
            tokio::time::sleep(heartbeat).await;
        }
    });
    let _hb = AbortOnDrop(hb);
    let mut pending: Vec<(RowKey, alkaid_model::RowValue)> = Vec::new();
    loop {
        let msg = match inbound.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return None,
            Err(s) => return hint(&s),
        };
        let (ack, keys) = match msg.msg {
            Some(pb::program_message::Msg::FullSync(fs)) => {
                for r in &fs.rows {
                    let Row(k, v) = Row::try_from(r).expect("leader sends valid rows");
                    pending.push((k, v));
                }
                if !fs.last {
                    continue;
                }
                let rows = std::mem::take(&mut pending);
                let keys: Vec<RowKey> = rows.iter().map(|(k, _)| k.clone()).collect();
                let mut v = view.lock().unwrap();
                v.table = rows.into_iter().collect();
                v.version = fs.version;
                v.epoch = fs.epoch;
                v.full_syncs += 1;
                (fs.version, keys)
            }
            Some(pb::program_message::Msg::Delta(d)) => {
                let mut v = view.lock().unwrap();
                if d.base_version != v.version {
                    // A gap: ask for a full sync on a new stream.
                    v.version = 0;
                    return None;
                }
                let mut keys = Vec::new();
                for k in &d.deletes {
                    let Key(k) = Key::try_from(k).expect("valid key");
                    v.table.remove(&k);
                    keys.push(k);
                }
                for r in &d.upserts {
                    let Row(k, val) = Row::try_from(r).expect("valid row");
                    v.table.insert(k.clone(), val);
                    keys.push(k);
                }
                v.version = d.version;
                v.deltas += 1;
                (d.version, keys)
            }
            None => continue,
        };
        if let Some(f) = on_apply {
            f(name, &keys);
        }
        let ackmsg = pb::AgentMessage {
            msg: Some(pb::agent_message::Msg::Ack(pb::Ack {
                version: ack,
                errors: vec![],
            })),
        };
        if tx.send(ackmsg).await.is_err() {
            return None;
        }
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts `n` agents named `d1..dn`.
pub fn agents(
    c: &Cluster,
    n: u32,
    heartbeat: Duration,
    on_apply: Option<OnApply>,
) -> HashMap<String, Agent> {
    (1..=n)
        .map(|i| {
            let name = format!("d{i}");
            (
                name.clone(),
                Agent::start(
                    &name,
                    i,
                    c.addrs.clone(),
                    c.tls.clone(),
                    heartbeat,
                    on_apply.clone(),
                ),
            )
        })
        .collect()
}

/// Whether every agent holds exactly the leader's desired table at its current version.
pub fn converged(c: &Cluster, leader: usize, agents: &HashMap<String, Agent>) -> bool {
    let ctx = c.ctx(leader);
    agents.values().all(|a| {
        let (version, table) = a.snapshot();
        ctx.shared.read(|s| {
            version == s.version(a.name.as_str()) && table == s.desired_table(a.name.as_str())
        })
    })
}
