//! Finding and connecting to an operator's control API, with mutual TLS when configured.

use std::path::PathBuf;
use std::time::Duration;

use alkaid_proto::v1::control_client::ControlClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::error::{Error, Result};

/// PEM files for mutual TLS.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TlsFiles {
    /// The CA that signed the operators' certificates.
    pub ca: PathBuf,
    /// Our certificate.
    pub cert: PathBuf,
    /// Our key.
    pub key: PathBuf,
    /// The name the operators' certificates carry.
    pub domain: String,
}

/// Where the operators are: tried in order until one answers.
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// `host:port` (or `http(s)://host:port`) of each replica.
    pub addrs: Vec<String>,
    /// Client certificate, when the operators require mTLS.
    pub tls: Option<TlsFiles>,
}

fn read(path: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io("reading", path, e))
}

impl Target {
    fn endpoint(&self, addr: &str) -> Result<Endpoint> {
        let bare = addr
            .trim_start_matches("http://")
            .trim_start_matches("https://");
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut ep = Endpoint::from_shared(format!("{scheme}://{bare}"))
            .map_err(|_| Error::Usage(format!("operator address {addr:?} must be host:port")))?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(30));
        if let Some(t) = &self.tls {
            let cfg = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read(&t.ca)?))
                .identity(Identity::from_pem(read(&t.cert)?, read(&t.key)?))
                .domain_name(t.domain.clone());
            ep = ep.tls_config(cfg).map_err(|source| Error::Connect {
                addr: addr.to_string(),
                source,
            })?;
        }
        Ok(ep)
    }

    /// Connects to the first replica that accepts a connection.
    ///
    /// # Errors
    /// [`Error::NoServer`] with no addresses; [`Error::Connect`] for the last failure.
    pub async fn connect(&self) -> Result<ControlClient<Channel>> {
        let mut last = None;
        for addr in &self.addrs {
            match self.endpoint(addr)?.connect().await {
                Ok(ch) => return Ok(ControlClient::new(ch)),
                Err(source) => {
                    last = Some(Error::Connect {
                        addr: addr.clone(),
                        source,
                    })
                }
            }
        }
        Err(last.unwrap_or(Error::NoServer))
    }
}

/// Wraps a failed call with what was being done; the server's message stays verbatim.
pub fn rpc(what: impl Into<String>) -> impl FnOnce(tonic::Status) -> Error {
    let what = what.into();
    move |status| Error::Rpc {
        what,
        status: Box::new(status),
    }
}
