//! Prometheus text on `GET /metrics`: the programming stream's [`Status`] and the data
//! plane's per-reason counters. A minimal HTTP/1.0 responder; nothing else is served.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, info};

use crate::dataplane::{Counters, Dataplane};
use crate::grpc::Status;

/// Renders the metrics page.
pub fn render(status: &Status, counters: &Counters, endpoints: usize) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "alkaid_agent_table_version",
        "gauge",
        "Applied table version.",
        status.version,
    );
    metric(
        "alkaid_agent_table_epoch",
        "gauge",
        "Epoch of the applied version.",
        status.epoch,
    );
    metric(
        "alkaid_agent_connected",
        "gauge",
        "1 while the programming stream is open.",
        u64::from(status.connected.is_some()),
    );
    metric(
        "alkaid_agent_full_syncs_total",
        "counter",
        "Full syncs applied.",
        status.full_syncs,
    );
    metric(
        "alkaid_agent_deltas_total",
        "counter",
        "Deltas applied.",
        status.deltas,
    );
    metric(
        "alkaid_agent_delta_batches_total",
        "counter",
        "Batches the deltas were applied in (deltas already received are applied together).",
        status.delta_batches,
    );
    metric(
        "alkaid_agent_resyncs_total",
        "counter",
        "Streams reopened after a gap.",
        status.resyncs,
    );
    metric(
        "alkaid_agent_sessions_total",
        "counter",
        "Programming sessions started.",
        status.sessions,
    );
    metric(
        "alkaid_agent_endpoints",
        "gauge",
        "Attached endpoint interfaces.",
        endpoints as u64,
    );
    let _ = writeln!(
        out,
        "# HELP alkaid_dataplane_packets_total Packets per XDP verdict or drop reason.\n\
         # TYPE alkaid_dataplane_packets_total counter"
    );
    for (name, value) in counters {
        let _ = writeln!(
            out,
            "alkaid_dataplane_packets_total{{counter=\"{name}\"}} {value}"
        );
    }
    out
}

/// Serves `listener` until `shutdown` completes.
pub async fn serve<D: Dataplane>(
    listener: TcpListener,
    status: watch::Receiver<Status>,
    dataplane: Arc<D>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    info!(addr = ?listener.local_addr().ok(), "metrics listening");
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let page = {
                    let st = status.borrow().clone();
                    let counters = dataplane.counters().unwrap_or_default();
                    let n = dataplane.endpoints().map(|e| e.len()).unwrap_or_default();
                    render(&st, &counters, n)
                };
                tokio::spawn(async move {
                    if let Err(e) = respond(stream, page).await {
                        debug!(error = %e, "metrics request failed");
                    }
                });
            }
        }
    }
}

async fn respond(mut stream: TcpStream, page: String) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let reply = if head.starts_with(b"GET /metrics ") || head.starts_with(b"GET /metrics?") {
        format!(
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{page}",
            page.len()
        )
    } else {
        "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
    };
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::FakeDataplane;

    #[test]
    fn renders_status_and_counters() {
        let st = Status {
            version: 7,
            connected: Some("http://x".into()),
            ..Status::default()
        };
        let counters = [("drop.spoofed_source".to_string(), 3)]
            .into_iter()
            .collect();
        let page = render(&st, &counters, 2);
        assert!(page.contains("\nalkaid_agent_table_version 7\n"), "{page}");
        assert!(page.contains("\nalkaid_agent_connected 1\n"));
        assert!(page.contains("\nalkaid_agent_endpoints 2\n"));
        assert!(
            page.contains("alkaid_dataplane_packets_total{counter=\"drop.spoofed_source\"} 3\n")
        );
    }

    #[tokio::test]
    async fn serves_metrics_and_404s_the_rest() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_tx, rx) = watch::channel(Status::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            rx,
            Arc::new(FakeDataplane::new()),
            async move {
                let _ = stopped.await;
            },
        ));
        let get = |path: &'static str| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let page = get("/metrics").await;
        assert!(page.starts_with("HTTP/1.0 200 OK"), "{page}");
        assert!(page.contains("alkaid_agent_table_version 0"));
        assert!(get("/").await.starts_with("HTTP/1.0 404"));
        let _ = stop.send(());
        server.await.unwrap();
    }
}
