//! `alkaid-operator`: one replica of the Alkaid control plane. Standalone by default; with
//! `--kubernetes` the leader also runs the Kubernetes controllers of `alkaid-operator-k8s`,
//! which talk to this replica's control API.

use std::sync::Arc;
use std::time::Duration;

use alkaid_operator::ctx::Ctx;
use anyhow::Context as _;
use clap::Parser as _;

/// Runs the Kubernetes controllers while this replica leads (only the leader writes to
/// Kubernetes); restarts them after an error or a leadership change.
async fn kubernetes(
    ctx: Arc<Ctx>,
    endpoint: String,
    tls: Option<tonic::transport::ClientTlsConfig>,
    default_vpc: String,
) {
    let mut status = ctx.node.watch_status();
    loop {
        let leading = status.wait_for(|s| s.is_leader()).await.is_ok();
        if !leading {
            return;
        }
        let control = match alkaid_operator_k8s::GrpcControl::connect_lazy(&endpoint, tls.clone()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "kubernetes controllers cannot reach the control api");
                return;
            }
        };
        tracing::info!("leading: starting the kubernetes controllers");
        let k8s = alkaid_operator_k8s::K8sConfig {
            default_vpc: default_vpc.clone(),
            ..alkaid_operator_k8s::K8sConfig::default()
        };
        let run = alkaid_operator_k8s::run(k8s, control);
        tokio::select! {
            r = run => if let Err(e) = r {
                tracing::error!(error = %e, "kubernetes controllers stopped; restarting in 5s");
                tokio::time::sleep(Duration::from_secs(5)).await;
            },
            _ = async { status.wait_for(|s| !s.is_leader()).await.map(|_| ()) } => {
                tracing::info!("no longer leading: kubernetes controllers stopped");
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = alkaid_operator::config::Config::parse();
    let _telemetry =
        alkaid_operator::telemetry::init(&config.log, config.otlp_endpoint.as_deref())?;
    let v = config.validate()?;
    let bind = |a: std::net::SocketAddr| async move {
        tokio::net::TcpListener::bind(a)
            .await
            .with_context(|| format!("binding {a}"))
    };
    let listeners = alkaid_operator::Listeners {
        raft: bind(v.raft_listen).await?,
        control: match v.control_listen {
            Some(a) => Some(bind(a).await?),
            None => None,
        },
        metrics: match v.metrics_listen {
            Some(a) => Some(bind(a).await?),
            None => None,
        },
    };
    let running = alkaid_operator::start(v.options.clone(), listeners).await?;
    tracing::info!(
        id = config.id,
        raft = %v.raft_listen,
        control = %v.control_endpoint,
        kubernetes = config.kubernetes,
        "alkaid-operator running"
    );
    if config.kubernetes {
        let tls = v.options.tls.as_ref().map(|t| t.client());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoint = format!("{scheme}://{}", v.control_endpoint);
        tokio::spawn(kubernetes(
            running.ctx.clone(),
            endpoint,
            tls,
            config.default_vpc.clone(),
        ));
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    tracing::info!("shutting down");
    running.kill().await;
    Ok(())
}
