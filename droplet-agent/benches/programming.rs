//! Map programming rate including gRPC decode: an in-process operator streams a 1,000,000-row
//! full sync (in 10,000-row chunks), the same full sync again (a reconnect: every row already
//! held, so the cost is listing the maps and diffing), and then 100-row deltas over loopback to
//! the real programming client, which converts, diffs and applies them to a data plane. Deltas
//! come as a burst (sent back to back: the client applies those already received as one
//! batch) and paced (each acknowledged before the next is sent: one apply per delta):
//! - `fake`: the in-memory data plane (the client's own cost: gRPC decode, conversion, diff);
//! - `bpf`: the real one, [`AyaDataplane`] over the real programs and pinned BPF maps, sized
//!   for the rows (root and a bpffs; skipped otherwise, with a message).
//!
//! Peer, in the same run: the same rows programmed the way the original Mizar programs hosts,
//! one row per acknowledged update (here a 1-row delta, acked before the next is sent), on the
//! same data plane (`*_per_row_*`, 10,000 rows). Every figure is the median of three rounds.
//!
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
/// 100-row deltas each acknowledged before the next, per round.
const PACED: u32 = 200;
const PER_ROW: u32 = 10_000;
const ROUNDS: usize = 3;
/// Rows the maps hold at the end: the full sync's, then every round's fresh delta rows.
const TOTAL_ROWS: u32 = ROWS + ROUNDS as u32 * ((DELTAS + PACED) * DELTA_ROWS + PER_ROW);

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

/// A loopback operator, and a programming client connected to it over `dp`.
struct Rig {
    out: Out,
    acks: mpsc::UnboundedReceiver<u64>,
    _stop: oneshot::Sender<()>,
}

async fn rig<D: Dataplane>(dp: Arc<D>) -> Rig {
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
        dp,
    );
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(client.run(async move {
        let _ = stopped.await;
    }));
    let (out, acks) = streams.recv().await.unwrap();
    Rig {
        out,
        acks,
        _stop: stop,
    }
}

fn full_sync(version: u64) -> Vec<pb::ProgramMessage> {
    (0..ROWS / CHUNK)
        .map(|c| pb::ProgramMessage {
            msg: Some(pb::program_message::Msg::FullSync(pb::FullSync {
                version,
                epoch: 1,
                rows: (c * CHUNK..(c + 1) * CHUNK).map(row).collect(),
                last: c + 1 == ROWS / CHUNK,
            })),
        })
        .collect()
}

fn delta(base: u64, rows: impl Iterator<Item = u32>) -> pb::ProgramMessage {
    pb::ProgramMessage {
        msg: Some(pb::program_message::Msg::Delta(pb::Delta {
            base_version: base,
            version: base + 1,
            upserts: rows.map(row).collect(),
            deletes: Vec::new(),
        })),
    }
}

/// Streams `msgs` and waits for the ack of `version`; encoding happened before the clock
/// started (the operator's cost is not the agent's).
async fn timed(r: &mut Rig, msgs: Vec<pb::ProgramMessage>, version: u64) -> Duration {
    let start = Instant::now();
    for m in msgs {
        r.out.send(Ok(m)).await.unwrap();
    }
    ack(&mut r.acks, version).await;
    start.elapsed()
}

fn empty_sync(version: u64) -> Vec<pb::ProgramMessage> {
    vec![pb::ProgramMessage {
        msg: Some(pb::program_message::Msg::FullSync(pb::FullSync {
            version,
            epoch: 1,
            rows: Vec::new(),
            last: true,
        })),
    }]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Every figure for one data plane, printed with `name` (`fake` or `bpf`). The full syncs are
/// medians of [`ROUNDS`] rounds of: 1M rows into empty maps, the same 1M again (all held),
/// then a full sync of nothing (1M removals).
async fn bench<D: Dataplane + 'static>(name: &str, dp: Arc<D>) {
    let mut r = rig(Arc::clone(&dp)).await;
    let (mut full, mut again, mut clear) = (Vec::new(), Vec::new(), Vec::new());
    let mut version = 0;
    for _ in 0..ROUNDS {
        version += 1;
        full.push(timed(&mut r, full_sync(version), version).await);
        assert_eq!(dp.rows().unwrap().len(), ROWS as usize);
        version += 1;
        again.push(timed(&mut r, full_sync(version), version).await);
        version += 1;
        clear.push(timed(&mut r, empty_sync(version), version).await);
        assert_eq!(dp.rows().unwrap().len(), 0);
    }
    let (full, again, clear) = (median(full), median(again), median(clear));
    println!("BENCH {name}_full_sync_1m_rows {:.3} s", full.as_secs_f64());
    println!(
        "BENCH {name}_full_sync_rate {:.0} rows/s",
        f64::from(ROWS) / full.as_secs_f64()
    );
    println!(
        "BENCH {name}_resync_1m_rows_held {:.3} s",
        again.as_secs_f64()
    );
    println!(
        "BENCH {name}_full_sync_remove_1m_rows {:.3} s",
        clear.as_secs_f64()
    );
    version += 1;
    timed(&mut r, full_sync(version), version).await;

    // Deltas: fresh rows every round, so every round writes as many rows.
    let mut next_row = ROWS;
    let mut fresh = |n: u32| {
        let first = next_row;
        next_row += n;
        first..first + n
    };
    let (mut burst, mut paced, mut per_row) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        // A burst: sent back to back, as an operator catching up sends them.
        let deltas: Vec<_> = (0..DELTAS)
            .map(|_| {
                version += 1;
                delta(version - 1, fresh(DELTA_ROWS))
            })
            .collect();
        burst.push(timed(&mut r, deltas, version).await);
        // Paced: each acknowledged before the next is sent (no two can be batched).
        let start = Instant::now();
        for _ in 0..PACED {
            version += 1;
            timed(&mut r, vec![delta(version - 1, fresh(DELTA_ROWS))], version).await;
        }
        paced.push(start.elapsed());
        // The peer: one acknowledged update per row.
        let start = Instant::now();
        for _ in 0..PER_ROW {
            version += 1;
            timed(&mut r, vec![delta(version - 1, fresh(1))], version).await;
        }
        per_row.push(start.elapsed());
    }
    let rate = |rows: u32, t: Duration| f64::from(rows) / t.as_secs_f64();
    let burst = median(burst);
    println!(
        "BENCH {name}_delta_rate {:.0} rows/s",
        rate(DELTAS * DELTA_ROWS, burst)
    );
    println!(
        "BENCH {name}_delta_apply {:.1} us/delta",
        burst.as_secs_f64() * 1e6 / f64::from(DELTAS)
    );
    println!(
        "BENCH {name}_paced_delta_rate {:.0} rows/s",
        rate(PACED * DELTA_ROWS, median(paced))
    );
    println!(
        "BENCH {name}_per_row_update_rate {:.0} rows/s",
        rate(PER_ROW, median(per_row))
    );
    assert_eq!(dp.rows().unwrap().len(), TOTAL_ROWS as usize);
}

#[tokio::main]
async fn main() {
    bench("fake", Arc::new(FakeDataplane::new())).await;
    match bpf::Rig::new().await {
        Ok(rig) => {
            let dp = Arc::new(rig.open());
            bench("bpf", dp).await;
        }
        Err(why) => eprintln!("SKIP bpf data plane: {why}"),
    }
}

/// The real data plane for the bench: a veth pair as the underlay NIC and a pin directory,
/// both removed on drop.
mod bpf {
    use std::path::{Path, PathBuf};

    use alkaid_agent::dataplane::{AyaConfig, AyaDataplane, EndpointHook};
    use alkaid_agent::netlink;

    pub struct Rig {
        cfg: AyaConfig,
        link: String,
    }

    impl Rig {
        pub async fn new() -> Result<Self, String> {
            let uid = std::fs::read_to_string("/proc/self/status")
                .unwrap_or_default()
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned));
            if uid.as_deref() != Some("0") {
                return Err("needs root (CAP_BPF, CAP_NET_ADMIN)".into());
            }
            if !Path::new("/sys/fs/bpf").is_dir() {
                return Err("needs a bpffs at /sys/fs/bpf".into());
            }
            let link = format!("alkb{}", std::process::id());
            let h = netlink::connect(Path::new("/")).map_err(|e| e.to_string())?;
            h.link()
                .add()
                .veth(link.clone(), format!("{link}p"))
                .execute()
                .await
                .map_err(|e| e.to_string())?;
            let ifindex = netlink::link_by_name(&h, &link)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("veth vanished")?
                .header
                .index;
            let rows = super::TOTAL_ROWS;
            let cfg = AyaConfig {
                pin_dir: PathBuf::from(format!("/sys/fs/bpf/{link}")),
                droplet_ip: "192.168.0.1".parse().unwrap(),
                droplet_mac: [2, 0, 0, 0, 0, 1],
                underlay_ifindex: ifindex,
                underlay_ifname: link.clone(),
                underlay_mtu: 1500,
                gateway_mac: [2, 0xa1, 0xca, 0x1d, 0, 1],
                // The agent's default with the tc hook (`--xdp-mode-underlay auto`).
                underlay_mode: None,
                endpoint_mode: alkaid_xdp::Mode::Generic,
                endpoint_hook: EndpointHook::Tc,
                map_sizes: alkaid_xdp::MapSizes {
                    endpoints: rows.next_power_of_two(),
                    ..alkaid_xdp::MapSizes::default()
                },
            };
            Ok(Self { cfg, link })
        }

        pub fn open(&self) -> AyaDataplane {
            AyaDataplane::open(self.cfg.clone()).expect("open the aya data plane")
        }
    }

    impl Drop for Rig {
        fn drop(&mut self) {
            netlink::delete_host_links_blocking(vec![self.link.clone()]);
            let _ = std::fs::remove_dir_all(&self.cfg.pin_dir);
        }
    }
}
