//! mTLS: the agent presents its certificate to an operator that requires one, and an agent
//! without one is refused (and says so in its status) instead of being served.

use std::sync::Arc;

use alkaid_agent::dataplane::{Dataplane, FakeDataplane};
use alkaid_agent::tls::TlsFiles;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use super::{Server, full, start_agent_with, table, vpc};

struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(params, ca_key);
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca: ca.pem(),
        server: leaf(vec!["localhost".into(), "127.0.0.1".into()]),
        client: leaf(vec!["agent.alkaid".into()]),
    }
}

fn server_tls(p: &Pki) -> ServerTlsConfig {
    ServerTlsConfig::new()
        .identity(Identity::from_pem(&p.server.0, &p.server.1))
        .client_ca_root(Certificate::from_pem(&p.ca))
}

fn https(server: &Server) -> String {
    format!("https://{}", server.addr)
}

#[tokio::test]
async fn mtls_stream_with_the_agents_certificate() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let write = |n: &str, pem: &str| {
        let path = dir.path().join(n);
        std::fs::write(&path, pem).unwrap();
        path
    };
    // Through the same file-reading path the binary uses.
    let files = TlsFiles {
        ca: write("ca.pem", &p.ca),
        cert: write("agent.pem", &p.client.0),
        key: write("agent-key.pem", &p.client.1),
        domain: None,
    };
    let mut server =
        Server::start_with("127.0.0.1:0".parse().unwrap(), None, Some(server_tls(&p))).await;
    // Given as http://: TLS turns it into https://.
    let mut agent = start_agent_with(
        vec![server.url()],
        Arc::new(FakeDataplane::new()),
        Some(files.client_config().unwrap()),
    );
    let mut s = server.session().await;
    assert_eq!(s.hello.droplet, "d1");
    s.send(full(2, 1, &[vpc(1, 1)], true)).await;
    assert_eq!(s.ack().await.version, 2);
    let st = agent.wait("version 2 over mTLS", |s| s.version == 2).await;
    assert_eq!(
        st.connected,
        Some(server.url()),
        "the address as configured"
    );
    assert_eq!(agent.dp.rows().unwrap(), table(&[vpc(1, 1)]));
}

#[tokio::test]
async fn refused_without_a_client_certificate() {
    let p = pki();
    let server =
        Server::start_with("127.0.0.1:0".parse().unwrap(), None, Some(server_tls(&p))).await;
    // Trusts the server, but presents no identity.
    let no_identity = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&p.ca));
    let mut agent = start_agent_with(
        vec![https(&server)],
        Arc::new(FakeDataplane::new()),
        Some(no_identity),
    );
    let st = agent
        .wait("a refused attempt", |s| s.last_error.is_some())
        .await;
    assert_eq!(st.sessions, 0, "registered without a client certificate");
    assert_eq!(st.connected, None);

    // Plain HTTP/2 to the TLS server fails too.
    let mut plain = start_agent_with(vec![server.url()], Arc::new(FakeDataplane::new()), None);
    let st = plain
        .wait("a refused plain attempt", |s| s.last_error.is_some())
        .await;
    assert_eq!(st.sessions, 0);
}
