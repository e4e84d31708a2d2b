//! `alkaid-operator`: one replica of the Alkaid control plane.

use anyhow::Context as _;
use clap::Parser as _;

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
        "alkaid-operator running (standalone{})",
        if config.kubernetes { " + kubernetes" } else { "" }
    );
    if config.kubernetes {
        anyhow::bail!("--kubernetes: the Kubernetes controllers are not linked into this build");
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    tracing::info!("shutting down");
    running.kill().await;
    Ok(())
}
