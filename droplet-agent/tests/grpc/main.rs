//! The programming-stream client against an in-process fake operator (tonic on 127.0.0.1)
//! with the fake data plane: full sync, deltas, a gap forcing a resync, a server restart,
//! a leader redirect. Every wait is on a condition with a deadline.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use alkaid_agent::dataplane::{Dataplane, FakeDataplane};
use alkaid_agent::grpc::{Client, ClientConfig, LEADER_METADATA, Status as ClientStatus};
use alkaid_agent::pb::{Key, Row};
use alkaid_model::table::{PeerEntry, VpcEntry};
use alkaid_model::{MacAddr, RowKey, RowValue, Table, Vni};
use alkaid_proto::v1 as pb;
use alkaid_proto::v1::control_server::{Control, ControlServer};
use alkaid_proto::v1::programming_server::{Programming, ProgrammingServer};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status};

mod tls;

const DEADLINE: Duration = Duration::from_secs(15);

type Out = mpsc::Sender<Result<pb::ProgramMessage, Status>>;

/// One Program stream as the fake operator sees it.
struct Session {
    hello: pb::Hello,
    out: Out,
    acks: mpsc::UnboundedReceiver<pb::Ack>,
}

impl Session {
    async fn send(&self, m: pb::program_message::Msg) {
        self.out
            .send(Ok(pb::ProgramMessage { msg: Some(m) }))
            .await
            .unwrap();
    }

    async fn ack(&mut self) -> pb::Ack {
        tokio::time::timeout(DEADLINE, self.acks.recv())
            .await
            .expect("ack in time")
            .expect("stream open")
    }
}

#[derive(Clone)]
struct FakeOperator {
    sessions: mpsc::UnboundedSender<Session>,
    heartbeats: watch::Sender<u64>,
    leader: Option<String>,
}

fn unimplemented<T>() -> Result<T, Status> {
    Err(Status::unimplemented("fake"))
}

#[tonic::async_trait]
impl Control for FakeOperator {
    async fn apply(
        &self,
        _: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        unimplemented()
    }
    async fn delete(
        &self,
        _: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        unimplemented()
    }
    async fn get(&self, _: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        unimplemented()
    }
    async fn list(
        &self,
        _: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        unimplemented()
    }
    type WatchStream = ReceiverStream<Result<pb::WatchEvent, Status>>;
    async fn watch(
        &self,
        _: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        unimplemented()
    }
    async fn allocate_endpoint(
        &self,
        _: Request<pb::AllocateEndpointRequest>,
    ) -> Result<Response<pb::AllocateEndpointResponse>, Status> {
        unimplemented()
    }
    async fn release_endpoint(
        &self,
        _: Request<pb::ReleaseEndpointRequest>,
    ) -> Result<Response<pb::ReleaseEndpointResponse>, Status> {
        // Nothing is ever allocated here.
        Err(Status::not_found("no such endpoint"))
    }
    async fn register_droplet(
        &self,
        req: Request<pb::RegisterDropletRequest>,
    ) -> Result<Response<pb::RegisterDropletResponse>, Status> {
        if let Some(leader) = &self.leader {
            let mut s = Status::unavailable("not the leader");
            s.metadata_mut()
                .insert(LEADER_METADATA, leader.parse().unwrap());
            return Err(s);
        }
        assert_eq!(req.get_ref().name, "d1");
        Ok(Response::new(pb::RegisterDropletResponse::default()))
    }
    async fn heartbeat(
        &self,
        _: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        self.heartbeats.send_modify(|n| *n += 1);
        Ok(Response::new(pb::HeartbeatResponse {}))
    }
    async fn cluster_info(
        &self,
        _: Request<pb::ClusterInfoRequest>,
    ) -> Result<Response<pb::ClusterInfoResponse>, Status> {
        unimplemented()
    }
}

#[tonic::async_trait]
impl Programming for FakeOperator {
    type ProgramStream = ReceiverStream<Result<pb::ProgramMessage, Status>>;

    async fn program(
        &self,
        req: Request<tonic::Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::ProgramStream>, Status> {
        let mut inbound = req.into_inner();
        let hello = match inbound.message().await? {
            Some(pb::AgentMessage {
                msg: Some(pb::agent_message::Msg::Hello(h)),
            }) => h,
            other => {
                return Err(Status::invalid_argument(format!(
                    "expected hello, got {other:?}"
                )));
            }
        };
        let (out, rx) = mpsc::channel(16);
        let (ack_tx, acks) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(m)) = inbound.message().await {
                if let Some(pb::agent_message::Msg::Ack(a)) = m.msg {
                    let _ = ack_tx.send(a);
                }
            }
        });
        let _ = self.sessions.send(Session { hello, out, acks });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
    sessions: mpsc::UnboundedReceiver<Session>,
    heartbeats: watch::Receiver<u64>,
}

/// Listens on `addr`. A restarted server's port is retried for a while: while it was down, one
/// of the agent's reconnects may hold it for a moment as its source port.
async fn listen(addr: SocketAddr) -> tokio::net::TcpListener {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_reuseaddr(true).unwrap();
        match sock.bind(addr) {
            Ok(()) => return sock.listen(64).unwrap(),
            Err(e) if addr.port() != 0 && tokio::time::Instant::now() < deadline => {
                eprintln!("binding {addr}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("binding {addr}: {e}"),
        }
    }
}

impl Server {
    async fn start(addr: SocketAddr, leader: Option<String>) -> Self {
        Self::start_with(addr, leader, None).await
    }

    async fn start_with(
        addr: SocketAddr,
        leader: Option<String>,
        tls: Option<tonic::transport::ServerTlsConfig>,
    ) -> Self {
        let listener = listen(addr).await;
        let addr = listener.local_addr().unwrap();
        let (stx, sessions) = mpsc::unbounded_channel();
        let (htx, heartbeats) = watch::channel(0);
        let op = FakeOperator {
            sessions: stx,
            heartbeats: htx,
            leader,
        };
        let task = tokio::spawn(async move {
            let mut builder = tonic::transport::Server::builder();
            if let Some(tls) = tls {
                builder = builder.tls_config(tls).expect("server tls config");
            }
            let _ = builder
                .add_service(ControlServer::new(op.clone()))
                .add_service(ProgrammingServer::new(op))
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await;
        });
        Self {
            addr,
            task,
            sessions,
            heartbeats,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn session(&mut self) -> Session {
        tokio::time::timeout(DEADLINE, self.sessions.recv())
            .await
            .expect("agent connected in time")
            .unwrap()
    }

    /// Kills the server and every connection, as a crash would.
    async fn kill(mut self) -> SocketAddr {
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        task.abort();
        let _ = task.await;
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Agent {
    dp: Arc<FakeDataplane>,
    status: watch::Receiver<ClientStatus>,
    _stop: oneshot::Sender<()>,
}

fn start_agent(operators: Vec<String>, dp: Arc<FakeDataplane>) -> Agent {
    start_agent_with(operators, dp, None)
}

fn start_agent_with(
    operators: Vec<String>,
    dp: Arc<FakeDataplane>,
    tls: Option<tonic::transport::ClientTlsConfig>,
) -> Agent {
    let cfg = ClientConfig {
        operators,
        droplet: "d1".into(),
        spec: pb::DropletSpec {
            ip: "192.168.0.1".into(),
            ..Default::default()
        },
        heartbeat: Duration::from_millis(20),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(200),
        seed: 1,
        connect_timeout: Duration::from_secs(2),
        tls,
    };
    let (client, status) = Client::new(cfg, Arc::clone(&dp));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(client.run(async move {
        let _ = stopped.await;
    }));
    Agent {
        dp,
        status,
        _stop: stop,
    }
}

impl Agent {
    async fn wait(&mut self, what: &str, f: impl FnMut(&ClientStatus) -> bool) -> ClientStatus {
        let mut rx = self.status.clone();
        match tokio::time::timeout(DEADLINE, rx.wait_for(f)).await {
            Ok(st) => st.unwrap().clone(),
            Err(_) => panic!("timed out waiting for {what}: {:?}", *self.status.borrow()),
        }
    }
}

fn vpc(n: u64, d: u8) -> (RowKey, RowValue) {
    (
        RowKey::Vpc {
            vni: Vni::new(n).unwrap(),
        },
        RowValue::Vpc(VpcEntry {
            dividers: vec![Ipv4Addr::new(192, 168, 0, d)],
        }),
    )
}

fn peer(d: u8) -> (RowKey, RowValue) {
    (
        RowKey::Peer {
            ip: Ipv4Addr::new(192, 168, 0, d),
        },
        RowValue::Peer(PeerEntry {
            mac: MacAddr([2, 0, 0, 0, 0, d]),
        }),
    )
}

fn wire(rows: &[(RowKey, RowValue)]) -> Vec<pb::Row> {
    rows.iter()
        .map(|(k, v)| pb::Row::from(&Row(k.clone(), v.clone())))
        .collect()
}

fn table(rows: &[(RowKey, RowValue)]) -> Table {
    rows.iter().cloned().collect()
}

fn full(
    version: u64,
    epoch: u64,
    rows: &[(RowKey, RowValue)],
    last: bool,
) -> pb::program_message::Msg {
    pb::program_message::Msg::FullSync(pb::FullSync {
        version,
        epoch,
        rows: wire(rows),
        last,
    })
}

fn delta(
    base: u64,
    version: u64,
    up: &[(RowKey, RowValue)],
    del: &[(RowKey, RowValue)],
) -> pb::program_message::Msg {
    pb::program_message::Msg::Delta(pb::Delta {
        base_version: base,
        version,
        upserts: wire(up),
        deletes: del
            .iter()
            .map(|(k, _)| pb::RowKey::from(&Key(k.clone())))
            .collect(),
    })
}

#[tokio::test]
async fn full_sync_in_chunks_then_deltas() {
    let mut server = Server::start("127.0.0.1:0".parse().unwrap(), None).await;
    let dp = Arc::new(FakeDataplane::new());
    // What pinned maps held before: a stray row and a stale value.
    dp.set_rows(table(&[vpc(1, 9), vpc(99, 1)]));
    let mut agent = start_agent(vec![server.url()], Arc::clone(&dp));
    let mut s = server.session().await;
    assert_eq!((s.hello.droplet.as_str(), s.hello.version), ("d1", 0));
    let mut first = full(5, 1, &[vpc(1, 1), vpc(2, 1)], false);
    if let pb::program_message::Msg::FullSync(f) = &mut first {
        f.rows.push(pb::Row {
            key: None,
            value: None,
        });
    }
    s.send(first).await;
    s.send(full(5, 1, &[peer(1)], true)).await;
    let ack = s.ack().await;
    assert_eq!(ack.version, 5);
    assert_eq!(
        ack.errors.len(),
        1,
        "a bad row of an earlier chunk is reported: {:?}",
        ack.errors
    );
    assert_eq!(
        agent.dp.rows().unwrap(),
        table(&[vpc(1, 1), vpc(2, 1), peer(1)])
    );

    s.send(delta(5, 6, &[vpc(3, 1)], &[vpc(2, 1)])).await;
    assert_eq!(s.ack().await.version, 6);
    assert_eq!(
        agent.dp.rows().unwrap(),
        table(&[vpc(1, 1), vpc(3, 1), peer(1)])
    );

    // A replayed delta changes nothing and is not acknowledged again.
    s.send(delta(5, 6, &[vpc(7, 1)], &[])).await;
    // A bad row is reported in the ack; the good ones still apply.
    let mut d = delta(6, 7, &[vpc(4, 1)], &[]);
    if let pb::program_message::Msg::Delta(d) = &mut d {
        d.upserts.push(pb::Row {
            key: None,
            value: None,
        });
    }
    s.send(d).await;
    let ack = s.ack().await;
    assert_eq!(ack.version, 7, "the replay was not acked");
    assert_eq!(ack.errors.len(), 1, "{:?}", ack.errors);
    assert!(ack.errors[0].contains("row.key"), "{:?}", ack.errors);
    assert_eq!(
        agent.dp.rows().unwrap(),
        table(&[vpc(1, 1), vpc(3, 1), vpc(4, 1), peer(1)])
    );
    let st = agent.wait("version 7", |s| s.version == 7).await;
    assert_eq!((st.full_syncs, st.deltas), (1, 2));
    tokio::time::timeout(DEADLINE, server.heartbeats.wait_for(|n| *n >= 2))
        .await
        .expect("heartbeats")
        .unwrap();
}

/// Deltas that arrive while one is being applied go into the maps as one batch: the result
/// is the table the deltas make one after another, and the acks are cumulative and in order.
#[tokio::test]
async fn deltas_received_during_an_apply_are_batched_in_order() {
    let mut server = Server::start("127.0.0.1:0".parse().unwrap(), None).await;
    let dp = Arc::new(FakeDataplane::new());
    let mut agent = start_agent(vec![server.url()], Arc::clone(&dp));
    let mut s = server.session().await;
    s.send(full(5, 1, &[vpc(1, 1), peer(1)], true)).await;
    assert_eq!(s.ack().await.version, 5);

    let mut want: BTreeMap<RowKey, RowValue> = [vpc(1, 1), peer(1)].into_iter().collect();
    let held = dp.hold_applies();
    // The same few keys upserted, overwritten and deleted across the deltas.
    for v in 5..25u64 {
        let k = 1 + v % 4;
        let up = [vpc(k, v as u8)];
        let del = if v % 3 == 0 {
            vec![vpc(1 + (v + 1) % 4, 0)]
        } else {
            vec![]
        };
        for (k, _) in &del {
            want.remove(k);
        }
        want.extend(up.iter().cloned());
        s.send(delta(v, v + 1, &up, &del)).await;
    }
    drop(held);
    let mut last = 5;
    while last < 25 {
        let ack = s.ack().await;
        assert!(
            ack.version > last,
            "acks in order: {} after {last}",
            ack.version
        );
        assert!(ack.errors.is_empty(), "{:?}", ack.errors);
        last = ack.version;
    }
    assert_eq!(last, 25);
    assert_eq!(
        agent.dp.rows().unwrap(),
        want.into_iter().collect::<Table>()
    );
    let st = agent.wait("version 25", |s| s.version == 25).await;
    assert_eq!(st.deltas, 20);
    assert!(
        (1..=20).contains(&st.delta_batches),
        "{} batches",
        st.delta_batches
    );
}

#[tokio::test]
async fn gap_forces_a_full_resync() {
    let mut server = Server::start("127.0.0.1:0".parse().unwrap(), None).await;
    let mut agent = start_agent(vec![server.url()], Arc::new(FakeDataplane::new()));
    let mut s = server.session().await;
    s.send(full(5, 1, &[vpc(1, 1)], true)).await;
    assert_eq!(s.ack().await.version, 5);
    s.send(delta(7, 8, &[vpc(2, 1)], &[])).await;
    let mut s2 = server.session().await;
    assert_eq!(
        (s2.hello.version, s2.hello.epoch),
        (0, 1),
        "a gap asks for a full sync"
    );
    assert_eq!(
        agent.dp.rows().unwrap(),
        table(&[vpc(1, 1)]),
        "the gapped delta was not applied"
    );
    s2.send(full(8, 1, &[vpc(1, 1), vpc(2, 1)], true)).await;
    assert_eq!(s2.ack().await.version, 8);
    let st = agent.wait("version 8", |s| s.version == 8).await;
    assert_eq!(st.resyncs, 1);
    assert_eq!(agent.dp.rows().unwrap(), table(&[vpc(1, 1), vpc(2, 1)]));
}

#[tokio::test]
async fn server_restart_reconnects_and_converges() {
    let mut server = Server::start("127.0.0.1:0".parse().unwrap(), None).await;
    let mut agent = start_agent(vec![server.url()], Arc::new(FakeDataplane::new()));
    let mut s = server.session().await;
    s.send(full(3, 1, &[vpc(1, 1), peer(1)], true)).await;
    assert_eq!(s.ack().await.version, 3);
    drop(s);
    let addr = server.kill().await;
    agent.wait("disconnect", |s| s.connected.is_none()).await;

    let mut server = Server::start(addr, None).await;
    let mut s = server.session().await;
    assert_eq!(
        (s.hello.version, s.hello.epoch),
        (3, 1),
        "reconnect says what it holds"
    );
    // The new leader's tables were rebuilt: a new epoch and different rows.
    s.send(full(10, 2, &[vpc(2, 2), peer(2)], true)).await;
    assert_eq!(s.ack().await.version, 10);
    let st = agent
        .wait("converged", |s| s.version == 10 && s.epoch == 2)
        .await;
    assert!(st.sessions >= 2);
    assert_eq!(agent.dp.rows().unwrap(), table(&[vpc(2, 2), peer(2)]));
    s.send(delta(10, 11, &[vpc(3, 2)], &[])).await;
    assert_eq!(s.ack().await.version, 11);
}

#[tokio::test]
async fn follows_the_leader_hint() {
    let mut leader = Server::start("127.0.0.1:0".parse().unwrap(), None).await;
    let follower = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        Some(leader.addr.to_string()),
    )
    .await;
    let mut agent = start_agent(vec![follower.url()], Arc::new(FakeDataplane::new()));
    let mut s = leader.session().await;
    s.send(full(1, 1, &[vpc(1, 1)], true)).await;
    assert_eq!(s.ack().await.version, 1);
    let st = agent.wait("on the leader", |s| s.version == 1).await;
    assert_eq!(st.connected, Some(leader.url()));
}

/// Liveness does not wait for the stream: while no programming stream can open (the only
/// live replica is a follower pointing at a dead leader, as during an election), heartbeats
/// still reach that live replica, past a dead one listed first.
#[tokio::test]
async fn heartbeats_continue_while_the_stream_is_down() {
    let dead = Server::start("127.0.0.1:0".parse().unwrap(), None).await;
    let dead_url = dead.url();
    let dead_addr = dead.kill().await;
    let mut follower =
        Server::start("127.0.0.1:0".parse().unwrap(), Some(dead_addr.to_string())).await;
    let agent = start_agent(
        vec![dead_url, follower.url()],
        Arc::new(FakeDataplane::new()),
    );
    tokio::time::timeout(DEADLINE, follower.heartbeats.wait_for(|n| *n >= 5))
        .await
        .expect("heartbeats reached the live replica without a stream")
        .unwrap();
    let st = agent.status.borrow().clone();
    assert_eq!(st.sessions, 0, "no stream should have opened: {st:?}");
    assert!(st.connected.is_none(), "{st:?}");
    assert!(
        follower.sessions.try_recv().is_err(),
        "the follower accepted a stream"
    );
}

#[tokio::test]
async fn release_skips_an_unreachable_replica_and_a_missing_endpoint_is_success() {
    use alkaid_agent::alloc::{Allocator, ControlAllocator};
    let server = Server::start("127.0.0.1:0".parse().unwrap(), None).await;
    // A replica that is down: its port was free a moment ago.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let lazy = |url: String| {
        tonic::transport::Endpoint::from_shared(url)
            .unwrap()
            .connect_timeout(Duration::from_secs(2))
            .connect_lazy()
    };
    let alloc = ControlAllocator::with_replicas(
        vec![lazy(format!("http://{dead}")), lazy(server.url())],
        "d1",
    );
    assert!(!alloc.release("team", "gone").await.unwrap());
    // Again: now starting from the replica that answered.
    assert!(!alloc.release("team", "gone").await.unwrap());
}
