//! Mutual TLS: replicas and clients with certificates from the cluster CA work; a client
//! without a certificate, or with one from another CA, is refused.

use std::time::Duration;

use alkaid_proto::v1 as pb;
use alkaid_proto::v1::control_client::ControlClient;
use alkaid_store::transport::grpc::TlsConfig;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

use crate::harness::*;

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

fn leaf(ca: &Ca) -> TlsConfig {
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    TlsConfig {
        ca_pem: ca.pem.clone().into_bytes(),
        cert_pem: cert.pem().into_bytes(),
        key_pem: key.serialize_pem().into_bytes(),
        domain: "localhost".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unauthenticated_clients_are_refused() {
    let _ = rustls_provider();
    let cluster_ca = ca();
    let c = Cluster::start(3, Some(leaf(&cluster_ca)), |_| {}).await;
    let leader = c.leader(Duration::from_secs(20)).await;

    // A client with a certificate from the cluster CA works (through a follower, so the
    // forwarded proposal also rides the mTLS Raft transport).
    let good = leaf(&cluster_ca);
    let mut api = ControlClient::new(channel(&c.addrs[(leader + 1) % 3], Some(&good)).await);
    api.apply(pb::ApplyRequest {
        resources: vec![vpc("blue", "10.0.0.0/16")],
        dry_run: false,
    })
    .await
    .unwrap();

    // No client certificate: the handshake is refused.
    let mut no_cert = good.clone();
    no_cert.cert_pem = Vec::new();
    no_cert.key_pem = Vec::new();
    let ep = tonic::transport::Endpoint::from_shared(format!("https://{}", c.addrs[leader]))
        .unwrap()
        .tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(&no_cert.ca_pem))
                .domain_name("localhost"),
        )
        .unwrap();
    let r = match ep.connect().await {
        Ok(ch) => ControlClient::new(ch)
            .cluster_info(pb::ClusterInfoRequest {})
            .await
            .map(|_| ()),
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    };
    assert!(r.is_err(), "a client without a certificate must be refused");

    // A certificate from another CA: refused too.
    let stranger = leaf(&ca());
    let mut evil = stranger.clone();
    evil.ca_pem = cluster_ca.pem.clone().into_bytes(); // trusts the server, but is not trusted
    let r = ControlClient::new(channel(&c.addrs[leader], Some(&evil)).await)
        .cluster_info(pb::ClusterInfoRequest {})
        .await;
    assert!(
        r.is_err(),
        "a client with a foreign certificate must be refused"
    );

    // Plain text: refused.
    let r = ControlClient::new(channel(&c.addrs[leader], None).await)
        .cluster_info(pb::ClusterInfoRequest {})
        .await;
    assert!(r.is_err());
    c.shutdown().await;
}

fn rustls_provider() -> Result<(), ()> {
    Ok(())
}
