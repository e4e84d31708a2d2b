//! The gRPC transport in one process: three replicas on loopback with mutual TLS (certificates
//! made with the `openssl` command; the test says so and passes vacuously when it is
//! missing). Proposals are forwarded follower -> leader over TLS, reads are linearizable, and
//! a client without a certificate, or without TLS, is refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use alkaid_proto::v1 as pb;
use alkaid_proto::v1::raft_peer_client::RaftPeerClient;
use alkaid_store::kv::{KvCommand, KvReply, KvStateMachine};
use alkaid_store::transport::grpc::{GrpcTransport, TlsConfig, channel, serve};
use alkaid_store::{Bootstrap, Node, NodeConfig, ReadConsistency, SledStorage};
use tokio::sync::oneshot;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A CA and one certificate for `localhost`, usable as server and client certificate.
fn make_certs(dir: &Path) -> Option<TlsConfig> {
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n",
    )
    .ok()?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ok = openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
        ]
        .concat()
        .into_iter()
        .chain([
            "-subj",
            "/CN=alkaid-test-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ])
        .collect::<Vec<_>>(),
    ) && openssl(
        dir,
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "node.key",
                "-out",
                "node.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    ) && openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "node.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "node.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    if !ok {
        return None;
    }
    Some(TlsConfig {
        ca_pem: std::fs::read(dir.join("ca.pem")).ok()?,
        cert_pem: std::fs::read(dir.join("node.pem")).ok()?,
        key_pem: std::fs::read(dir.join("node.key")).ok()?,
        domain: "localhost".into(),
    })
}

struct Replica {
    node: Node,
    stop: Option<oneshot::Sender<()>>,
}

/// Waits until one replica leads and every replica knows it.
async fn wait_leader(nodes: &BTreeMap<u64, Replica>) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let leader = nodes.values().find(|r| r.node.status().is_leader());
        if let Some(leader) = leader.map(|r| r.node.id())
            && nodes.values().all(|r| r.node.status().leader_id == leader)
        {
            return leader;
        }
        assert!(
            Instant::now() < deadline,
            "no leader known to all over TLS within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let Some(tls) = make_certs(dir.path()) else {
        eprintln!("NOTE: `openssl` unavailable: mutual TLS test not run");
        return;
    };
    let mut listeners = BTreeMap::new();
    let mut peers = BTreeMap::new();
    for id in 1..=3u64 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        peers.insert(id, format!("localhost:{}", l.local_addr().unwrap().port()));
        listeners.insert(id, l);
    }
    let mut nodes = BTreeMap::new();
    for (id, listener) in listeners {
        let mut cfg = NodeConfig::new(id, peers.clone(), Bootstrap::Initial(vec![1, 2, 3]));
        cfg.election_tick = 10;
        cfg.heartbeat_tick = 2;
        let transport = GrpcTransport::new(id, Some(tls.clone()), 1024);
        let node = alkaid_store::start(
            cfg,
            SledStorage::temporary().unwrap(),
            KvStateMachine::new(),
            transport.clone(),
        )
        .unwrap();
        transport.attach(node.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(node.clone(), listener, Some(tls.clone()), async {
            let _ = stopped.await;
        }));
        nodes.insert(
            id,
            Replica {
                node,
                stop: Some(stop),
            },
        );
    }
    let leader = wait_leader(&nodes).await;
    let follower = nodes.keys().copied().find(|i| *i != leader).unwrap();
    for i in 0..20u64 {
        let cmd = KvCommand::Put {
            key: format!("k{i}").into_bytes(),
            value: i.to_string().into_bytes(),
        };
        nodes[&follower]
            .node
            .propose(cmd.encode())
            .await
            .expect("forwarded proposal over TLS");
    }
    let other = nodes
        .keys()
        .copied()
        .find(|i| *i != leader && *i != follower)
        .unwrap();
    let got = nodes[&other]
        .node
        .read(
            KvCommand::Get {
                key: b"k19".to_vec(),
            }
            .encode(),
            ReadConsistency::Linearizable,
        )
        .await
        .unwrap();
    assert_eq!(
        KvReply::decode(&got),
        Some(KvReply::Value(Some(b"19".to_vec())))
    );

    // A TLS client with the right CA but no certificate of its own is refused...
    let addr = &peers[&leader];
    let no_cert = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&tls.ca_pem))
        .domain_name("localhost");
    let ch = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(no_cert)
        .unwrap()
        .connect_lazy();
    assert!(
        RaftPeerClient::new(ch)
            .status(pb::StatusRequest {})
            .await
            .is_err()
    );
    // ...and so is a plaintext client; a client with a certificate gets through.
    let plain = channel(addr, None).unwrap();
    assert!(
        RaftPeerClient::new(plain)
            .status(pb::StatusRequest {})
            .await
            .is_err()
    );
    let with_cert = channel(addr, Some(&tls)).unwrap();
    let st = RaftPeerClient::new(with_cert)
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(st.commit_index >= 20);

    for r in nodes.values_mut() {
        r.node.shutdown().await;
        let _ = r.stop.take().map(|s| s.send(()));
    }
}
