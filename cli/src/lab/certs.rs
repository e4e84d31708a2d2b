//! The lab's PKI: a CA made at `lab up`, and certificates signed by it for each operator
//! replica, the agents and the CLI. Everything is `localhost`-named: clients verify with that
//! name whatever address they dial.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::client::TlsFiles;
use crate::error::{Error, Result};

/// The name in every certificate.
pub const DOMAIN: &str = "localhost";

/// A written key pair: (cert, key) paths.
#[derive(Clone, Debug)]
pub struct Pair {
    /// Certificate (PEM).
    pub cert: PathBuf,
    /// Key (PEM).
    pub key: PathBuf,
}

/// Paths of the lab's certificates.
#[derive(Clone, Debug)]
pub struct Pki {
    /// CA certificate.
    pub ca: PathBuf,
    /// One per operator replica, in id order.
    pub operators: Vec<Pair>,
    /// Shared by the agents.
    pub agent: Pair,
    /// The CLI's.
    pub cli: Pair,
}

impl Pki {
    /// What the CLI presents.
    pub fn cli_files(&self) -> TlsFiles {
        TlsFiles {
            ca: self.ca.clone(),
            cert: self.cli.cert.clone(),
            key: self.cli.key.clone(),
            domain: DOMAIN.into(),
        }
    }
}

fn write(path: &Path, pem: &str) -> Result<()> {
    std::fs::write(path, pem).map_err(|e| Error::io("writing", path, e))
}

fn leaf(dir: &Path, name: &str, ips: &[Ipv4Addr], ca: &Issuer<'_, KeyPair>) -> Result<Pair> {
    let mut sans = vec![DOMAIN.to_string(), "127.0.0.1".to_string()];
    sans.extend(ips.iter().map(ToString::to_string));
    let mut params = CertificateParams::new(sans)?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("alkaid-lab {name}"));
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, ca)?;
    let pair = Pair {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}-key.pem")),
    };
    write(&pair.cert, &cert.pem())?;
    write(&pair.key, &key.serialize_pem())?;
    Ok(pair)
}

/// Makes (or, when `dir/ca.pem` exists, reuses the paths of) the lab's PKI in `dir`.
///
/// # Errors
/// I/O or certificate generation.
pub fn ensure(dir: &Path, operators: u64, ips: &[Ipv4Addr]) -> Result<Pki> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    let pair = |n: &str| Pair {
        cert: dir.join(format!("{n}.pem")),
        key: dir.join(format!("{n}-key.pem")),
    };
    let pki = Pki {
        ca: dir.join("ca.pem"),
        operators: (1..=operators)
            .map(|i| pair(&format!("operator-{i}")))
            .collect(),
        agent: pair("agent"),
        cli: pair("cli"),
    };
    let complete = pki.ca.exists()
        && [&pki.agent, &pki.cli]
            .iter()
            .chain(pki.operators.iter().collect::<Vec<_>>().iter())
            .all(|p| p.cert.exists() && p.key.exists());
    if complete {
        return Ok(pki);
    }
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "alkaid-lab CA");
    let cert = params.self_signed(&key)?;
    write(&pki.ca, &cert.pem())?;
    let issuer = Issuer::new(params, key);
    for i in 1..=operators {
        leaf(dir, &format!("operator-{i}"), ips, &issuer)?;
    }
    leaf(dir, "agent", ips, &issuer)?;
    leaf(dir, "cli", &[], &issuer)?;
    Ok(pki)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_ca_and_leaves_once() {
        let d = tempfile::tempdir().unwrap();
        let p = ensure(d.path(), 3, &[Ipv4Addr::new(198, 18, 1, 1)]).unwrap();
        assert_eq!(p.operators.len(), 3);
        let ca = std::fs::read_to_string(&p.ca).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        let again = ensure(d.path(), 3, &[]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&again.ca).unwrap(),
            ca,
            "existing PKI is kept"
        );
    }
}
