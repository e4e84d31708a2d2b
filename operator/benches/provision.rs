//! End-to-end provisioning through three replicas with 100 simulated agents.
//!
//! Clients find the leader with ClusterInfo and send AllocateEndpoint there (as a client
//! following the `alkaid-leader` hint does), each with a chosen address so the agents' rows
//! can be matched before the reply arrives. Latency runs from the request to the moment every
//! holder (the endpoint's droplet and its subnet's bouncers) has applied the version that
//! holds the endpoint. One measured run per concurrency level in
//! `ALKAID_BENCH_CONCURRENCY` (default `8,16,32,64`); `ALKAID_BENCH_SPREAD=1` spreads
//! clients over all three replicas instead (followers forward), for comparison.
//! Prints `BENCH <name> <value> <unit>` lines, suffixed `_c<concurrency>`.

#[path = "../tests/cluster/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alkaid_model::{DropletName, RowKey};
use alkaid_proto::v1 as pb;
use alkaid_proto::v1::control_client::ControlClient;
use harness::*;
use hdrhistogram::Histogram;
use tonic::transport::Channel;

const AGENTS: u32 = 100;
const SUBNETS: u32 = 10;
const PER_SUBNET: u32 = 800;
const WARMUP_PER_SUBNET: u32 = 50;

/// Concurrency levels to measure (comma-separated in `ALKAID_BENCH_CONCURRENCY`).
fn levels() -> Vec<usize> {
    std::env::var("ALKAID_BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "8,16,32,64".into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("ALKAID_BENCH_CONCURRENCY: comma-separated counts")
        })
        .collect()
}

struct Pending {
    start: Instant,
    waiting: Vec<DropletName>,
}

type Tracker = Arc<Mutex<(HashMap<Ipv4Addr, Pending>, Histogram<u64>, usize)>>;

/// Request to AllocateEndpoint reply (committed and applied on the leader), in µs: the
/// part of the latency before streaming.
type Replies = Arc<Mutex<Histogram<u64>>>;

fn on_apply(t: Tracker) -> OnApply {
    Arc::new(move |d: &DropletName, keys: &[RowKey]| {
        let mut g = t.lock().unwrap();
        let (pending, hist, done) = &mut *g;
        for k in keys {
            let ip = match k {
                RowKey::LocalEndpoint { ip, .. } | RowKey::Endpoint { ip, .. } => *ip,
                _ => continue,
            };
            let Some(p) = pending.get_mut(&ip) else {
                continue;
            };
            p.waiting.retain(|w| w != d);
            if p.waiting.is_empty() {
                let p = pending.remove(&ip).unwrap();
                hist.record(p.start.elapsed().as_micros() as u64).unwrap();
                *done += 1;
            }
        }
    })
}

/// Where the `w`th client sends: the leader ClusterInfo names, or replica `w % 3` when
/// spreading.
async fn target(c: &Cluster, w: usize, spread: bool) -> ControlClient<Channel> {
    if spread {
        return c.client(w % 3).await;
    }
    let info = c
        .client(w % 3)
        .await
        .cluster_info(pb::ClusterInfoRequest {})
        .await
        .expect("cluster info")
        .into_inner();
    ControlClient::new(channel(&info.leader_address, None).await)
}

async fn run(
    c: &Cluster,
    t: &Tracker,
    bouncers: &HashMap<u32, Vec<DropletName>>,
    range: std::ops::Range<u32>,
    tag: &str,
    (concurrency, spread): (usize, bool),
    replies: &Replies,
) -> Duration {
    let jobs: Vec<(u32, u32)> = (0..SUBNETS)
        .flat_map(|s| range.clone().map(move |i| (s, i)))
        .collect();
    let n = jobs.len();
    let jobs = Arc::new(Mutex::new(jobs.into_iter()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let mut api = target(c, w, spread).await;
        let jobs = jobs.clone();
        let t = t.clone();
        let replies = replies.clone();
        let bouncers = bouncers.clone();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            loop {
                let Some((s, i)) = jobs.lock().unwrap().next() else {
                    return;
                };
                let ip = Ipv4Addr::new(10, s as u8, (2 + i / 250) as u8, (2 + i % 250) as u8);
                let droplet = DropletName::new(format!("d{}", (s * 7 + i) % AGENTS + 1)).unwrap();
                let mut waiting = bouncers[&s].clone();
                waiting.push(droplet.clone());
                waiting.sort();
                waiting.dedup();
                let start = Instant::now();
                t.lock().unwrap().0.insert(ip, Pending { start, waiting });
                let req = pb::AllocateEndpointRequest {
                    namespace: "bench".into(),
                    name: format!("{tag}-{s}-{i}"),
                    vpc: "blue".into(),
                    subnet: format!("s{s}"),
                    droplet: droplet.to_string(),
                    ip: ip.to_string(),
                    pod: format!("{tag}-{s}-{i}"),
                };
                api.allocate_endpoint(req).await.expect("allocate");
                let us = start.elapsed().as_micros() as u64;
                replies.lock().unwrap().record(us).unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = t.lock().unwrap().0.len();
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} of {n} endpoints never acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    started.elapsed()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = Cluster::start(3, None, |o| o.node.snapshot_interval = 1_000_000).await;
        let leader = c.leader(Duration::from_secs(10)).await;
        let tracker: Tracker =
            Arc::new(Mutex::new((HashMap::new(), Histogram::new(3).unwrap(), 0)));
        let agents = agents(
            &c,
            AGENTS,
            Duration::from_secs(1),
            Some(on_apply(tracker.clone())),
        );
        eventually(Duration::from_secs(30), "agents registered", || {
            c.ctx(leader)
                .shared
                .read(|s| s.droplet_names().count() == AGENTS as usize)
        })
        .await;
        let mut api = c.client(leader).await;
        let mut resources = vec![vpc("blue", "10.0.0.0/8")];
        for s in 0..SUBNETS {
            resources.push(subnet(
                &format!("s{s}"),
                "blue",
                &format!("10.{s}.0.0/16"),
                2,
            ));
        }
        api.apply(pb::ApplyRequest {
            resources,
            dry_run: false,
        })
        .await
        .unwrap();
        let bouncers: HashMap<u32, Vec<DropletName>> = (0..SUBNETS)
            .map(|s| {
                (
                    s,
                    c.ctx(leader).shared.read(|st| {
                        st.get_subnet(&format!("s{s}"))
                            .unwrap()
                            .status
                            .unwrap()
                            .bouncers
                    }),
                )
            })
            .collect();
        let spread = std::env::var("ALKAID_BENCH_SPREAD").is_ok_and(|v| v == "1");
        let warm = 0..WARMUP_PER_SUBNET;
        let replies: Replies = Arc::new(Mutex::new(Histogram::new(3).unwrap()));
        run(
            &c,
            &tracker,
            &bouncers,
            warm,
            "warm",
            (16, spread),
            &replies,
        )
        .await;
        let mut next = WARMUP_PER_SUBNET;
        for n in levels() {
            {
                let mut g = tracker.lock().unwrap();
                g.1.reset();
                g.2 = 0;
                replies.lock().unwrap().reset();
            }
            let range = next..next + PER_SUBNET;
            next += PER_SUBNET;
            let tag = format!("c{n}");
            let took = run(&c, &tracker, &bouncers, range, &tag, (n, spread), &replies).await;
            let g = tracker.lock().unwrap();
            let done = g.2 as f64;
            let ms = |q: f64| g.1.value_at_quantile(q) as f64 / 1000.0;
            println!(
                "BENCH provision_endpoints_per_sec_c{n} {:.0} endpoints/s",
                done / took.as_secs_f64()
            );
            println!("BENCH provision_p50_ms_c{n} {:.2} ms", ms(0.50));
            println!("BENCH provision_p99_ms_c{n} {:.2} ms", ms(0.99));
            println!(
                "BENCH provision_max_ms_c{n} {:.2} ms",
                g.1.max() as f64 / 1000.0
            );
            println!("BENCH provision_endpoints_c{n} {} endpoints", g.2);
            let r = replies.lock().unwrap();
            let rms = |q: f64| r.value_at_quantile(q) as f64 / 1000.0;
            println!("BENCH provision_reply_p50_ms_c{n} {:.2} ms", rms(0.50));
            println!("BENCH provision_reply_p99_ms_c{n} {:.2} ms", rms(0.99));
        }
        // Status turns Ready too (acks batched through Raft).
        let ctx = c.ctx(leader);
        eventually(Duration::from_secs(30), "all endpoints Ready", || {
            ctx.shared.read(|s| {
                s.list_endpoints(Some("bench")).iter().all(|e| {
                    e.status
                        .as_ref()
                        .is_some_and(|st| st.phase == alkaid_model::resource::Phase::Ready)
                })
            })
        })
        .await;
        drop(agents);
        c.shutdown().await;
    });
}
