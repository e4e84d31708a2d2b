//! Map programming rate including gRPC decode: an in-process operator streams a 1,000,000-row
//! full sync (in 10,000-row chunks) and then 100-row deltas over loopback to the real
//! programming client, which converts, diffs and applies them to the fake data plane.
//! Prints `BENCH <name> <value> <unit>` lines. Targets: >= 250,000 rows/s, 1M-row sync < 5 s.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alkaid_agent::dataplane::{Dataplane, FakeDataplane};
use alkaid_agent::grpc::{Client, ClientConfig};
use alkaid_agent::pb::Row;
use alkaid_model::table::EndpointEntry;
use alkaid_model::{MacAddr, RowKey, RowValue, Vni};
use alkaid_proto::v1 as pb;
use alkaid_proto::v1::control_server::{Control, ControlServer};
use alkaid_proto::v1::programming_server::{Programming, ProgrammingServer};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status};

const ROWS: u32 = 1_000_000;
const CHUNK: u32 = 10_000;
const DELTAS: u32 = 2_000;
const DELTA_ROWS: u32 = 100;

type Out = mpsc::Sender<Result<pb::ProgramMessage, Status>>;

#[derive(Clone)]
struct Op {
    streams: mpsc::UnboundedSender<(Out, mpsc::UnboundedReceiver<u64>)>,
}

fn no<T>() -> Result<T, Status> {
    Err(Status::unimplemented("bench"))
}

#[tonic::async_trait]
impl Control for Op {
    async fn apply(
        &self,
        _: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        no()
    }
    async fn delete(
        &self,
        _: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        no()
    }
    async fn get(&self, _: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        no()
    }
    async fn list(
        &self,
        _: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        no()
    }
    type WatchStream = ReceiverStream<Result<pb::WatchEvent, Status>>;
    async fn watch(
        &self,
        _: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        no()
    }
    async fn allocate_endpoint(
        &self,
        _: Request<pb::AllocateEndpointRequest>,
    ) -> Result<Response<pb::AllocateEndpointResponse>, Status> {
        no()
    }
    async fn release_endpoint(
        &self,
        _: Request<pb::ReleaseEndpointRequest>,
    ) -> Result<Response<pb::ReleaseEndpointResponse>, Status> {
        no()
    }
    async fn register_droplet(
        &self,
        _: Request<pb::RegisterDropletRequest>,
    ) -> Result<Response<pb::RegisterDropletResponse>, Status> {
        Ok(Response::new(pb::RegisterDropletResponse::default()))
    }
    async fn heartbeat(
        &self,
        _: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        Ok(Response::new(pb::HeartbeatResponse {}))
    }
    async fn cluster_info(
        &self,
        _: Request<pb::ClusterInfoRequest>,
    ) -> Result<Response<pb::ClusterInfoResponse>, Status> {
        no()
    }
}

#[tonic::async_trait]
impl Programming for Op {
    type ProgramStream = ReceiverStream<Result<pb::ProgramMessage, Status>>;
    async fn program(
        &self,
        req: Request<tonic::Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::ProgramStream>, Status> {
        let mut inbound = req.into_inner();
        let (out, rx) = mpsc::channel(8);
        let (acks_tx, acks) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(m)) = inbound.message().await {
                if let Some(pb::agent_message::Msg::Ack(a)) = m.msg {
                    let _ = acks_tx.send(a.version);
                }
            }
        });
        let _ = self.streams.send((out, acks));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

fn row(i: u32) -> pb::Row {
    let key = RowKey::Endpoint {
        vni: Vni::new(u64::from(1 + i / 65_536)).unwrap(),
        ip: Ipv4Addr::from(0x0a00_0000 | (i % 65_536)),
    };
    let value = RowValue::Endpoint(EndpointEntry {
        droplet_ip: Ipv4Addr::new(192, 168, 0, 2),
        mac: MacAddr([2, 0, 0, 0, 0, 2]),
    });
    pb::Row::from(&Row(key, value))
}

async fn ack(acks: &mut mpsc::UnboundedReceiver<u64>, want: u64) {
    while let Some(v) = acks.recv().await {
        if v >= want {
            return;
        }
    }
    panic!("stream closed before ack {want}");
}

#[tokio::main]
async fn main() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stx, mut streams) = mpsc::unbounded_channel();
    let op = Op { streams: stx };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ControlServer::new(op.clone()))
            .add_service(ProgrammingServer::new(op).max_decoding_message_size(64 << 20))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let dp = Arc::new(FakeDataplane::new());
    let (client, _status) = Client::new(
        ClientConfig {
            operators: vec![format!("http://{addr}")],
            droplet: "bench".into(),
            spec: pb::DropletSpec::default(),
            heartbeat: Duration::from_secs(60),
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            seed: 1,
            connect_timeout: Duration::from_secs(5),
            tls: None,
        },
        Arc::clone(&dp),
    );
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(client.run(async move {
        let _ = stopped.await;
    }));
    let (out, mut acks) = streams.recv().await.unwrap();

    // Encoding happens before the clock starts: the operator's cost is not ours.
    let chunks: Vec<pb::ProgramMessage> = (0..ROWS / CHUNK)
        .map(|c| pb::ProgramMessage {
            msg: Some(pb::program_message::Msg::FullSync(pb::FullSync {
                version: 1,
                epoch: 1,
                rows: (c * CHUNK..(c + 1) * CHUNK).map(row).collect(),
                last: c + 1 == ROWS / CHUNK,
            })),
        })
        .collect();
    let start = Instant::now();
    for m in chunks {
        out.send(Ok(m)).await.unwrap();
    }
    ack(&mut acks, 1).await;
    let full = start.elapsed();
    assert_eq!(dp.rows().unwrap().len(), ROWS as usize);
    println!("BENCH agent_full_sync_1m_rows {:.3} s", full.as_secs_f64());
    println!(
        "BENCH agent_full_sync_rate {:.0} rows/s",
        f64::from(ROWS) / full.as_secs_f64()
    );

    let deltas: Vec<pb::ProgramMessage> = (0..DELTAS)
        .map(|d| pb::ProgramMessage {
            msg: Some(pb::program_message::Msg::Delta(pb::Delta {
                base_version: u64::from(d) + 1,
                version: u64::from(d) + 2,
                upserts: (0..DELTA_ROWS)
                    .map(|r| row(ROWS + d * DELTA_ROWS + r))
                    .collect(),
                deletes: Vec::new(),
            })),
        })
        .collect();
    let start = Instant::now();
    for m in deltas {
        out.send(Ok(m)).await.unwrap();
    }
    ack(&mut acks, u64::from(DELTAS) + 1).await;
    let t = start.elapsed();
    println!(
        "BENCH agent_delta_rate {:.0} rows/s",
        f64::from(DELTAS * DELTA_ROWS) / t.as_secs_f64()
    );
    println!(
        "BENCH agent_delta_apply {:.1} us/delta",
        t.as_secs_f64() * 1e6 / f64::from(DELTAS)
    );
}
