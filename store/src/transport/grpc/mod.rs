//! The tonic transport: [`GrpcTransport`] (client side, one bounded queue and one streaming
//! `Send` call per peer, reconnecting with backoff) and [`RaftPeerService`] (server side of
//! `alkaid.v1.RaftPeer`). Snapshots travel on their own chunked `SendSnapshot` stream.
//! Optional mutual TLS: [`TlsConfig`] (off by default).

mod server;

pub use server::{RaftPeerService, serve};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use alkaid_proto::v1 as pb;
use alkaid_proto::v1::raft_peer_client::RaftPeerClient;
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig,
};
use tracing::Instrument as _;

use super::{BoxFuture, Transport};
use crate::node::{Applied, Node};
use crate::{Error, Result};

pub(crate) const MAX_MESSAGE: usize = 64 << 20;
const SNAPSHOT_CHUNK: usize = 1 << 20;
const BATCH: usize = 256;

/// PEM material for mutual TLS between replicas (and clients).
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// CA that signed every replica's certificate; client certificates are verified with it.
    pub ca_pem: Vec<u8>,
    /// This replica's certificate chain.
    pub cert_pem: Vec<u8>,
    /// This replica's private key.
    pub key_pem: Vec<u8>,
    /// Name expected in peers' certificates.
    pub domain: String,
}

impl TlsConfig {
    /// Server side: present our certificate and require a client certificate from the CA.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
    }

    /// Client side: verify the server with the CA and present our certificate.
    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .domain_name(self.domain.clone())
    }
}

/// Opens a lazily connecting channel to `address` (`host:port`).
///
/// # Errors
///
/// [`Error::Config`] for a malformed address or TLS setup.
pub fn channel(address: &str, tls: Option<&TlsConfig>) -> Result<Channel> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut ep = Endpoint::from_shared(format!("{scheme}://{address}"))
        .map_err(|e| Error::Config {
            reason: format!("peer address {address:?}: {e}"),
        })?
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true);
    if let Some(tls) = tls {
        ep = ep.tls_config(tls.client()).map_err(|e| Error::Config {
            reason: format!("tls for {address}: {e}"),
        })?;
    }
    Ok(ep.connect_lazy())
}

fn client(ch: Channel) -> RaftPeerClient<Channel> {
    RaftPeerClient::new(ch)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
}

struct Link {
    address: String,
    queue: mpsc::Sender<Message>,
    client: RaftPeerClient<Channel>,
}

/// Client side of the gRPC transport. Call [`GrpcTransport::attach`] with the started node so
/// that unreachable peers and snapshot outcomes are reported to it.
pub struct GrpcTransport {
    id: u64,
    tls: Option<TlsConfig>,
    queue_depth: usize,
    links: Mutex<BTreeMap<u64, Link>>,
    node: Arc<OnceLock<Node>>,
}

impl GrpcTransport {
    /// A transport for replica `id`.
    pub fn new(id: u64, tls: Option<TlsConfig>, queue_depth: usize) -> Arc<Self> {
        Arc::new(Self {
            id,
            tls,
            queue_depth,
            links: Mutex::new(BTreeMap::new()),
            node: Arc::new(OnceLock::new()),
        })
    }

    /// Connects feedback (unreachable peers, snapshot status) to the started replica.
    pub fn attach(&self, node: Node) {
        let _ = self.node.set(node);
    }

    fn link(&self, to: u64) -> Option<(mpsc::Sender<Message>, RaftPeerClient<Channel>)> {
        let links = self.links.lock().expect("links lock");
        links.get(&to).map(|l| (l.queue.clone(), l.client.clone()))
    }

    fn report(&self, f: impl FnOnce(&Node)) {
        if let Some(n) = self.node.get() {
            f(n);
        }
    }
}

impl Transport for GrpcTransport {
    fn send(&self, messages: Vec<Message>) {
        for msg in messages {
            let to = msg.to;
            let Some((queue, client)) = self.link(to) else {
                self.report(|n| n.report_unreachable(to));
                continue;
            };
            if msg.get_msg_type() == MessageType::MsgSnapshot {
                let node = self.node.clone();
                tokio::spawn(async move {
                    let ok = send_snapshot(client, msg).await;
                    if let Some(n) = node.get() {
                        n.report_snapshot(to, ok);
                    }
                });
            } else if queue.try_send(msg).is_err() {
                // Full queue: raft retransmits; tell it the peer is slow.
                self.report(|n| n.report_unreachable(to));
            }
        }
    }

    fn set_peer(&self, id: u64, address: &str) {
        if id == self.id {
            return;
        }
        let mut links = self.links.lock().expect("links lock");
        if links.get(&id).is_some_and(|l| l.address == address) {
            return;
        }
        let ch = match channel(address, self.tls.as_ref()) {
            Ok(ch) => ch,
            Err(e) => {
                tracing::warn!(peer = id, error = %e, "ignoring peer with a bad address");
                return;
            }
        };
        let (queue, rx) = mpsc::channel(self.queue_depth);
        let client = client(ch);
        tokio::spawn(peer_loop(
            self.id,
            id,
            client.clone(),
            rx,
            self.node.clone(),
        ));
        // Replacing the link drops the old queue, which ends the old peer loop.
        links.insert(
            id,
            Link {
                address: address.to_string(),
                queue,
                client,
            },
        );
    }

    fn forward(&self, to: u64, command: Vec<u8>) -> BoxFuture<Result<Applied>> {
        let link = self.link(to);
        Box::pin(async move {
            let Some((_, mut client)) = link else {
                return Err(Error::UnknownPeer { peer: to });
            };
            let req = pb::ProposeRequest {
                command,
                forwarded: true,
            };
            let resp = client.propose(req).await.map_err(|source| Error::Rpc {
                rpc: "Propose",
                peer: to,
                source,
            })?;
            let resp = resp.into_inner();
            Ok(Applied {
                index: resp.index,
                reply: resp.reply,
            })
        })
    }
}

/// One long-lived `Send` stream per peer; reopened with backoff when it breaks.
async fn peer_loop(
    from: u64,
    to: u64,
    client: RaftPeerClient<Channel>,
    mut queue: mpsc::Receiver<Message>,
    node: Arc<OnceLock<Node>>,
) {
    let mut backoff = Duration::from_millis(20);
    loop {
        let (tx, rx) = mpsc::channel::<pb::RaftBatch>(64);
        let mut c = client.clone();
        let call = tokio::spawn(async move { c.send(ReceiverStream::new(rx)).await });
        loop {
            let Some(first) = queue.recv().await else {
                call.abort();
                return; // the transport dropped this link
            };
            let mut messages = vec![first.write_to_bytes().expect("encode raft message")];
            while messages.len() < BATCH {
                match queue.try_recv() {
                    Ok(m) => messages.push(m.write_to_bytes().expect("encode raft message")),
                    Err(_) => break,
                }
            }
            let batch = pb::RaftBatch { from, to, messages };
            if call.is_finished() || tx.send(batch).await.is_err() {
                break;
            }
            backoff = Duration::from_millis(20);
        }
        if let Some(n) = node.get() {
            n.report_unreachable(to);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

async fn send_snapshot(mut client: RaftPeerClient<Channel>, mut msg: Message) -> bool {
    let data = msg.mut_snapshot().take_data();
    let (from, to) = (msg.from, msg.to);
    let header = msg.write_to_bytes().expect("encode snapshot message");
    let mut chunks: Vec<pb::SnapshotChunk> = data
        .chunks(SNAPSHOT_CHUNK)
        .map(|c| pb::SnapshotChunk {
            from,
            to,
            message: Vec::new(),
            data: c.to_vec(),
            last: false,
        })
        .collect();
    if chunks.is_empty() {
        chunks.push(pb::SnapshotChunk {
            from,
            to,
            ..Default::default()
        });
    }
    chunks[0].message = header;
    chunks.last_mut().expect("non-empty").last = true;
    let span = tracing::info_span!("send_snapshot", from, to, bytes = data.len());
    client
        .send_snapshot(tokio_stream::iter(chunks))
        .instrument(span)
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "snapshot not delivered"))
        .is_ok()
}
