//! Logging and tracing: a `tracing-subscriber` fmt layer on stderr filtered by `--log`, plus
//! OpenTelemetry export of spans over OTLP/gRPC when an endpoint is configured.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::error::{Error, Result};

/// Keeps the exporter alive; flushes pending spans when dropped.
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("flushing traces failed: {e}");
        }
    }
}

fn bad(reason: String) -> Error {
    Error::Config { reason }
}

/// Installs the global subscriber; with `otlp_endpoint`, spans are also exported there
/// (batched, in the background) under the service name `alkaid-operator`.
///
/// # Errors
/// [`Error::Config`] for a bad filter or OTLP endpoint, or a second initialisation.
pub fn init(filter: &str, otlp_endpoint: Option<&str>) -> Result<Guard> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| bad(format!("--log {filter:?}: {e}")))?;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let provider = match otlp_endpoint {
        None => None,
        Some(ep) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(ep)
                .build()
                .map_err(|e| bad(format!("--otlp-endpoint {ep:?}: {e}")))?;
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name("alkaid-operator")
                .build();
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource)
                    .build(),
            )
        }
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("alkaid-operator")));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| bad(format!("tracing already initialised: {e}")))?;
    Ok(Guard { provider })
}
