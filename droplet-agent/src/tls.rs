//! mTLS for the agent's control traffic: the CA that signs the operators' certificates and the
//! agent's own identity, read once at startup into a tonic [`ClientTlsConfig`], and the one
//! place that turns an operator address into a tonic [`Endpoint`] (used by the programming
//! stream and the control API client alike).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::error::{Error, Result};

/// The PEM files of the agent's mTLS settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate the operators' certificates chain to.
    pub ca: PathBuf,
    /// The agent's client certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// Name to verify the operators' certificates against; `None`: the dialed host.
    pub domain: Option<String>,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io("read tls file", path, e))
}

impl TlsFiles {
    /// Reads the files into a client config presenting the agent's identity.
    ///
    /// # Errors
    /// [`Error::Io`] if a file cannot be read.
    pub fn client_config(&self) -> Result<ClientTlsConfig> {
        let mut cfg = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&self.ca)?))
            .identity(Identity::from_pem(read(&self.cert)?, read(&self.key)?));
        if let Some(d) = &self.domain {
            cfg = cfg.domain_name(d.clone());
        }
        Ok(cfg)
    }
}

/// `target` with the scheme TLS asks for: a leader hint or an address written `http://` is
/// dialed `https://` when TLS is on (and the reverse when off).
pub fn with_scheme(target: &str, tls: bool) -> String {
    let bare = target
        .strip_prefix("https://")
        .or_else(|| target.strip_prefix("http://"))
        .unwrap_or(target);
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{bare}")
}

/// A tonic endpoint for `target`, with TLS when `tls` is set.
///
/// # Errors
/// [`Error::Config`] if `target` is not a URL or the TLS settings are refused.
pub fn endpoint(
    target: &str,
    tls: Option<&ClientTlsConfig>,
    connect_timeout: Duration,
) -> Result<Endpoint> {
    let url = with_scheme(target, tls.is_some());
    let bad = |reason: String| Error::Config {
        field: "--operators",
        reason,
    };
    let ep = Endpoint::from_shared(url.clone())
        .map_err(|e| bad(format!("{url:?} is not a URL: {e}")))?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true);
    match tls {
        Some(cfg) => ep
            .tls_config(cfg.clone())
            .map_err(|e| bad(format!("tls for {url}: {e}"))),
        None => Ok(ep),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_follows_tls() {
        assert_eq!(with_scheme("http://a:1", true), "https://a:1");
        assert_eq!(with_scheme("https://a:1", false), "http://a:1");
        assert_eq!(with_scheme("a:1", true), "https://a:1");
        assert_eq!(with_scheme("http://a:1", false), "http://a:1");
    }

    #[test]
    fn missing_files_name_the_path() {
        let f = TlsFiles {
            ca: "/nonexistent/ca.pem".into(),
            cert: "/nonexistent/c.pem".into(),
            key: "/nonexistent/k.pem".into(),
            domain: None,
        };
        let e = f.client_config().unwrap_err().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
