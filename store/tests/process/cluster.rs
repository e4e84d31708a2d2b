//! Processes of `alkaid-store-node` and gRPC clients to them.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use alkaid_proto::v1 as pb;
use alkaid_proto::v1::raft_peer_client::RaftPeerClient;
use alkaid_store::kv::KvCommand;
use alkaid_store::transport::grpc::channel;
use tonic::transport::Channel;

/// Microseconds since the first call: the history's clock.
pub fn now_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// A port no other replica of this run was given, free now, and outside the kernel's
/// ephemeral range: a port from `bind(0)` could be handed to some outgoing connection as its
/// source port before the replica binds it, or while a stopped replica is down.
fn free_port() -> u16 {
    use std::sync::Mutex;
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let lo = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let mut given = GIVEN.lock().unwrap();
    // Ports 10000 up to the range; the search starts where the process id says, so
    // concurrent runs rarely probe the same ports.
    let span = u32::from(lo.saturating_sub(10000).max(1));
    let start = std::process::id() % span;
    let port = (0..span)
        .map(|k| (10000 + (start + k) % span) as u16)
        .find(|p| !given.contains(p) && std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below the ephemeral range");
    given.push(port);
    port
}

/// A client of one replica.
#[derive(Clone)]
pub struct Client(RaftPeerClient<Channel>);

impl Client {
    pub async fn propose(
        &mut self,
        command: Vec<u8>,
    ) -> Result<pb::ProposeResponse, tonic::Status> {
        let mut req = tonic::Request::new(pb::ProposeRequest {
            command,
            forwarded: false,
        });
        req.set_timeout(Duration::from_secs(3));
        self.0.propose(req).await.map(|r| r.into_inner())
    }
    pub async fn read(&mut self, query: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
        let mut req = tonic::Request::new(pb::ReadRequest {
            query,
            stale: false,
        });
        req.set_timeout(Duration::from_secs(3));
        self.0.read(req).await.map(|r| r.into_inner().result)
    }
}

struct Proc {
    child: Option<Child>,
    dir: tempfile::TempDir,
    addr: String,
}

/// Replica processes; every child is killed on drop.
pub struct Cluster {
    procs: BTreeMap<u64, Proc>,
    all_peers: BTreeMap<u64, String>,
    snapshot_interval: u64,
    compact_margin: u64,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in self.procs.values_mut() {
            if let Some(mut c) = p.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Cluster {
    pub async fn start(ids: &[u64], snapshot_interval: u64, compact_margin: u64) -> Self {
        let mut c = Cluster {
            procs: BTreeMap::new(),
            all_peers: BTreeMap::new(),
            snapshot_interval,
            compact_margin,
        };
        for id in ids {
            c.all_peers
                .insert(*id, format!("127.0.0.1:{}", free_port()));
        }
        for id in ids {
            let addr = c.all_peers[id].clone();
            c.procs.insert(
                *id,
                Proc {
                    child: None,
                    dir: tempfile::tempdir().unwrap(),
                    addr,
                },
            );
            c.spawn(*id, false);
        }
        c
    }

    fn spawn(&mut self, id: u64, join: bool) {
        let peers: Vec<String> = self
            .all_peers
            .iter()
            .map(|(i, a)| format!("{i}={a}"))
            .collect();
        let p = self.procs.get_mut(&id).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_alkaid-store-node"));
        cmd.arg("--id")
            .arg(id.to_string())
            .arg("--listen")
            .arg(&p.addr)
            .arg("--data-dir")
            .arg(p.dir.path().join("db"))
            .arg("--peers")
            .arg(peers.join(","))
            .arg("--snapshot-interval")
            .arg(self.snapshot_interval.to_string())
            .arg("--compact-margin")
            .arg(self.compact_margin.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if join {
            cmd.arg("--join");
        }
        p.child = Some(cmd.spawn().expect("spawn alkaid-store-node"));
    }

    pub fn ids(&self) -> Vec<u64> {
        self.procs
            .iter()
            .filter(|(_, p)| p.child.is_some())
            .map(|(i, _)| *i)
            .collect()
    }

    pub fn client(&self, id: u64) -> Client {
        Client(RaftPeerClient::new(
            channel(&self.procs[&id].addr, None).unwrap(),
        ))
    }

    pub fn clients(&self) -> Vec<(u64, Client)> {
        self.procs
            .keys()
            .map(|id| (*id, self.client(*id)))
            .collect()
    }

    pub async fn status(&self, id: u64) -> Option<pb::StatusResponse> {
        let mut c = self.client(id).0;
        let mut req = tonic::Request::new(pb::StatusRequest {});
        req.set_timeout(Duration::from_millis(500));
        c.status(req).await.ok().map(|r| r.into_inner())
    }

    pub async fn wait_leader(&self, bound: Duration) -> u64 {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            for id in self.ids() {
                if let Some(s) = self.status(id).await
                    && s.role == "Leader"
                {
                    return id;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no leader within {bound:?}");
    }

    /// kill -9.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.procs.get_mut(&id).unwrap().child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub async fn restart(&mut self, id: u64, join: bool) {
        self.spawn(id, join);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.status(id).await.is_none() {
            assert!(Instant::now() < deadline, "replica {id} did not come back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn wipe(&mut self, id: u64) {
        let dir = self.procs[&id].dir.path().join("db");
        std::fs::remove_dir_all(dir).unwrap();
    }

    pub fn forget(&mut self, id: u64) {
        self.procs.remove(&id);
        self.all_peers.remove(&id);
    }

    async fn on_leader(&self, req: pb::ChangeMembershipRequest) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let leader = self.wait_leader(Duration::from_secs(10)).await;
            let mut c = self.client(leader).0;
            match c.change_membership(req.clone()).await {
                Ok(_) => return,
                Err(e) => assert!(Instant::now() < deadline, "membership change failed: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn remove_member(&self, id: u64) {
        use pb::change_membership_request::Change;
        self.on_leader(pb::ChangeMembershipRequest {
            change: Change::Remove as i32,
            id,
            address: String::new(),
        })
        .await;
    }

    pub async fn add_member(&mut self, id: u64, learner: bool) {
        use pb::change_membership_request::Change;
        if !self.procs.contains_key(&id) {
            let addr = format!("127.0.0.1:{}", free_port());
            self.all_peers.insert(id, addr.clone());
            self.procs.insert(
                id,
                Proc {
                    child: None,
                    dir: tempfile::tempdir().unwrap(),
                    addr,
                },
            );
            self.restart(id, true).await;
        }
        let change = if learner {
            Change::AddLearner
        } else {
            Change::AddVoter
        };
        let address = self.procs[&id].addr.clone();
        self.on_leader(pb::ChangeMembershipRequest {
            change: change as i32,
            id,
            address,
        })
        .await;
    }

    pub async fn wait_caught_up(&self, id: u64, bound: Duration) {
        let leader = self.wait_leader(bound).await;
        let target = self
            .status(leader)
            .await
            .map(|s| s.commit_index)
            .unwrap_or(0);
        let deadline = Instant::now() + bound;
        loop {
            if let Some(s) = self.status(id).await
                && s.applied_index >= target
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "replica {id} did not catch up to {target}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// After the load: every running replica converges to the same values.
    pub async fn assert_replicas_agree(&self, keys: u64) {
        let leader = self.wait_leader(Duration::from_secs(10)).await;
        let target = self.status(leader).await.unwrap().commit_index;
        let mut views = Vec::new();
        for id in self.ids() {
            self.wait_caught_up(id, Duration::from_secs(20)).await;
            let s = self.status(id).await.unwrap();
            assert!(s.applied_index >= target, "replica {id} behind: {s:?}");
            let mut c = self.client(id).0;
            let mut vals = Vec::new();
            for k in 0..keys {
                let q = KvCommand::Get {
                    key: format!("k{k}").into_bytes(),
                }
                .encode();
                let r = c
                    .read(pb::ReadRequest {
                        query: q,
                        stale: true,
                    })
                    .await
                    .unwrap();
                vals.push(r.into_inner().result);
            }
            views.push((id, vals));
        }
        for w in views.windows(2) {
            assert_eq!(
                w[0].1, w[1].1,
                "replicas {} and {} disagree",
                w[0].0, w[1].0
            );
        }
    }
}
