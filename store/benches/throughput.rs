//! Write throughput and commit latency of a three-replica `alkaid-store-node` cluster on
//! loopback (fsync on, 256-byte values) at 1, 16 and 64 concurrent clients, and the same
//! workload, from the same load generator, against a three-member etcd cluster (Debian's
//! `etcd`), printed as `BENCH <name> <value> <unit>` lines with the ratio.
//!
//! `cargo bench -p alkaid-store`. Knobs: `ALKAID_BENCH_SECS` (measure time per point,
//! default 4), `ALKAID_BENCH_CLIENTS` (default `1,16,64`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alkaid_proto::v1 as pb;
use alkaid_proto::v1::raft_peer_client::RaftPeerClient;
use alkaid_store::kv::KvCommand;
use alkaid_store::transport::grpc::channel;
use tonic::transport::Channel;

const VALUE: usize = 256;
const CONNS: usize = 8;

/// Kills every child on drop, even on panic.
struct Procs(Vec<Child>, Vec<tempfile::TempDir>);
impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[derive(Clone, PartialEq, prost::Message)]
struct EtcdPut {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct EtcdPutResp {}
#[derive(Clone, PartialEq, prost::Message)]
struct EtcdStatusReq {}
#[derive(Clone, PartialEq, prost::Message)]
struct EtcdHeader {
    #[prost(uint64, tag = "2")]
    member_id: u64,
}
#[derive(Clone, PartialEq, prost::Message)]
struct EtcdStatus {
    #[prost(message, optional, tag = "1")]
    header: Option<EtcdHeader>,
    #[prost(uint64, tag = "4")]
    leader: u64,
}

async fn unary<Q: prost::Message + 'static, R: prost::Message + Default + 'static>(
    ch: Channel,
    path: &'static str,
    req: Q,
) -> Result<R, tonic::Status> {
    let mut g = tonic::client::Grpc::new(ch);
    g.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let codec = tonic_prost::ProstCodec::<Q, R>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    g.unary(tonic::Request::new(req), path, codec)
        .await
        .map(|r| r.into_inner())
}

#[derive(Clone)]
enum Target {
    Alkaid(Vec<RaftPeerClient<Channel>>),
    Etcd(Vec<Channel>),
}

impl Target {
    async fn put(&self, conn: usize, key: Vec<u8>, value: Vec<u8>) -> bool {
        match self {
            Target::Alkaid(cs) => {
                let command = KvCommand::Put { key, value }.encode();
                let mut c = cs[conn % cs.len()].clone();
                c.propose(pb::ProposeRequest {
                    command,
                    forwarded: false,
                })
                .await
                .is_ok()
            }
            Target::Etcd(cs) => {
                let ch = cs[conn % cs.len()].clone();
                unary::<_, EtcdPutResp>(ch, "/etcdserverpb.KV/Put", EtcdPut { key, value })
                    .await
                    .is_ok()
            }
        }
    }
}

struct Point {
    writes_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn run_point(target: &Target, clients: usize, secs: u64) -> Point {
    let warmup = Duration::from_millis(700);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let t = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0u64;
            // Bounded by `end` and by a count.
            while Instant::now() < end && i < 10_000_000 {
                i += 1;
                let key = format!("bench-{c}-{}", i % 1000).into_bytes();
                let t0 = Instant::now();
                let ok = t.put(c, key, vec![b'x'; VALUE]).await;
                let t1 = Instant::now();
                if ok && t0 >= measure_from && t1 <= end {
                    lat.push(t1 - t0);
                }
                if !ok {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    Point {
        writes_per_sec: all.len() as f64 / secs as f64,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

async fn wait<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} not ready within 30s");
}

async fn start_alkaid() -> (Procs, Target) {
    let addrs: Vec<String> = (0..3).map(|_| format!("127.0.0.1:{}", port())).collect();
    let peers: Vec<String> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect();
    let mut procs = Procs(Vec::new(), Vec::new());
    for (i, addr) in addrs.iter().enumerate() {
        let dir = tempfile::tempdir_in(
            std::env::var("ALKAID_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_alkaid-store-node"))
            .args([
                "--id",
                &(i + 1).to_string(),
                "--listen",
                addr,
                "--peers",
                &peers.join(","),
            ])
            .arg("--data-dir")
            .arg(dir.path().join("db"))
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn alkaid-store-node");
        procs.0.push(child);
        procs.1.push(dir);
    }
    let leader = wait("alkaid leader", || {
        let addrs = addrs.clone();
        async move {
            for a in &addrs {
                let mut c = RaftPeerClient::new(channel(a, None).unwrap());
                if let Ok(s) = c.status(pb::StatusRequest {}).await
                    && s.get_ref().role == "Leader"
                {
                    return Some(a.clone());
                }
            }
            None
        }
    })
    .await;
    let conns = (0..CONNS)
        .map(|_| RaftPeerClient::new(channel(&leader, None).unwrap()))
        .collect();
    (procs, Target::Alkaid(conns))
}

async fn start_etcd() -> Option<(Procs, Target)> {
    if Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        return None;
    }
    let client: Vec<u16> = (0..3).map(|_| port()).collect();
    let peer: Vec<u16> = (0..3).map(|_| port()).collect();
    let cluster: Vec<String> = (0..3)
        .map(|i| format!("m{i}=http://127.0.0.1:{}", peer[i]))
        .collect();
    let mut procs = Procs(Vec::new(), Vec::new());
    for i in 0..3 {
        let dir = tempfile::tempdir_in(
            std::env::var("ALKAID_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()),
        )
        .unwrap();
        let curl = format!("http://127.0.0.1:{}", client[i]);
        let purl = format!("http://127.0.0.1:{}", peer[i]);
        let child = Command::new("etcd")
            .args(["--name", &format!("m{i}")])
            .arg("--data-dir")
            .arg(dir.path())
            .args([
                "--listen-client-urls",
                &curl,
                "--advertise-client-urls",
                &curl,
            ])
            .args([
                "--listen-peer-urls",
                &purl,
                "--initial-advertise-peer-urls",
                &purl,
            ])
            .args([
                "--initial-cluster",
                &cluster.join(","),
                "--initial-cluster-state",
                "new",
            ])
            .args([
                "--initial-cluster-token",
                "alkaid-bench",
                "--log-level",
                "error",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        procs.0.push(child);
        procs.1.push(dir);
    }
    let leader = wait("etcd leader", || {
        let client = client.clone();
        async move {
            for p in &client {
                let Ok(ch) = channel(&format!("127.0.0.1:{p}"), None) else {
                    continue;
                };
                if let Ok(s) =
                    unary::<_, EtcdStatus>(ch, "/etcdserverpb.Maintenance/Status", EtcdStatusReq {})
                        .await
                    && s.leader != 0
                    && s.header.as_ref().is_some_and(|h| h.member_id == s.leader)
                {
                    return Some(*p);
                }
            }
            None
        }
    })
    .await;
    let addr = format!("127.0.0.1:{leader}");
    let conns = (0..CONNS).map(|_| channel(&addr, None).unwrap()).collect();
    Some((procs, Target::Etcd(conns)))
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful: run only
    // under `cargo bench` so the test suite stays fast.
    if !std::env::args().any(|a| a == "--bench") {
        println!("throughput: skipped (run with cargo bench)");
        return;
    }
    let secs: u64 = std::env::var("ALKAID_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let levels: Vec<usize> = std::env::var("ALKAID_BENCH_CLIENTS")
        .unwrap_or_else(|_| "1,16,64".into())
        .split(',')
        .map(|s| s.trim().parse().expect("client count"))
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (procs, alkaid) = start_alkaid().await;
        let mut ours = Vec::new();
        for &n in &levels {
            let p = run_point(&alkaid, n, secs).await;
            println!("BENCH alkaid_writes_per_sec_c{n} {:.0} writes/s", p.writes_per_sec);
            println!("BENCH alkaid_p50_ms_c{n} {:.2} ms", p.p50_ms);
            println!("BENCH alkaid_p99_ms_c{n} {:.2} ms", p.p99_ms);
            ours.push(p);
        }
        drop(procs);
        let Some((procs, etcd)) = start_etcd().await else {
            println!("NOTE etcd not found on PATH (scripts/setup.sh installs etcd-server): etcd figures skipped");
            return;
        };
        for (i, &n) in levels.iter().enumerate() {
            let p = run_point(&etcd, n, secs).await;
            println!("BENCH etcd_writes_per_sec_c{n} {:.0} writes/s", p.writes_per_sec);
            println!("BENCH etcd_p50_ms_c{n} {:.2} ms", p.p50_ms);
            println!("BENCH etcd_p99_ms_c{n} {:.2} ms", p.p99_ms);
            println!("BENCH ratio_writes_per_sec_c{n} {:.2} alkaid/etcd", ours[i].writes_per_sec / p.writes_per_sec);
            println!("BENCH ratio_p99_c{n} {:.2} alkaid/etcd", ours[i].p99_ms / p.p99_ms);
        }
        drop(procs);
    });
}
