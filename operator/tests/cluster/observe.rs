//! What operators of the cluster see: `/metrics` names the series dashboards use.

use std::time::Duration;

use alkaid_proto::v1 as pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

/// The value of the first sample line starting with `series`.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_name_provisioning_latency_stream_lag_and_raft_state() {
    let c = Cluster::start(3, None, |_| {}).await;
    let leader = c.leader(WAIT).await;
    let agents = agents(&c, 3, Duration::from_millis(200), None);
    let ctx = c.replicas[leader].as_ref().unwrap().ctx.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(alkaid_operator::metrics::serve(
        ctx.clone(),
        listener,
        std::future::pending(),
    ));
    eventually(WAIT, "3 droplets", || {
        ctx.shared.read(|s| s.droplet_names().count() == 3)
    })
    .await;
    let mut api = c.client(leader).await;
    api.apply(pb::ApplyRequest {
        resources: vec![
            vpc("blue", "10.0.0.0/16"),
            subnet("web", "blue", "10.0.1.0/24", 2),
        ],
        dry_run: false,
    })
    .await
    .unwrap();
    api.allocate_endpoint(alloc_req("ns", "p1", "web", "d1"))
        .await
        .unwrap();
    eventually(WAIT, "p1 Ready", || {
        ctx.shared.read(|s| {
            s.get_endpoint("ns", "p1")
                .and_then(|e| e.status)
                .is_some_and(|st| st.phase == alkaid_model::resource::Phase::Ready)
        })
    })
    .await;
    let body = scrape(addr).await;
    assert_eq!(
        sample(&body, "alkaid_provisioning_seconds_count"),
        Some(1.0),
        "{body}"
    );
    assert!(
        body.contains("alkaid_provisioning_seconds_bucket{le="),
        "{body}"
    );
    for d in ["d1", "d2", "d3"] {
        let lag = sample(
            &body,
            &format!("alkaid_stream_lag_versions{{droplet=\"{d}\"}}"),
        );
        assert!(lag.is_some(), "no stream lag for {d}: {body}");
    }
    assert_eq!(sample(&body, "alkaid_raft_leader"), Some(1.0), "{body}");
    assert!(sample(&body, "alkaid_raft_term").is_some_and(|t| t >= 1.0));
    let commit = sample(&body, "alkaid_raft_commit_index").unwrap();
    let applied = sample(&body, "alkaid_raft_applied_index").unwrap();
    assert!(commit >= applied && applied > 0.0, "{body}");
    assert_eq!(sample(&body, "alkaid_streams"), Some(3.0), "{body}");
    server.abort();
    drop(agents);
    c.shutdown().await;
}
