//! Server side of `alkaid.v1.RaftPeer`: peers' message streams and snapshots go to the
//! replica's [`Node`]; proposals, reads, membership and status serve clients and peers.

use std::pin::Pin;

use alkaid_proto::v1 as pb;
use alkaid_proto::v1::raft_peer_server::{RaftPeer, RaftPeerServer};
use protobuf::Message as _;
use raft::eraftpb::Message;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::{MAX_MESSAGE, TlsConfig};
use crate::node::{MemberChange, Node, ReadConsistency};
use crate::{Error, Result};

/// Server side of `alkaid.v1.RaftPeer` for one replica.
#[derive(Debug, Clone)]
pub struct RaftPeerService {
    node: Node,
}

impl RaftPeerService {
    /// A service delivering to `node`.
    pub fn new(node: Node) -> Self {
        Self { node }
    }

    /// Wraps it in the tonic server type with large message limits.
    pub fn into_server(self) -> RaftPeerServer<Self> {
        RaftPeerServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }
}

fn decode(bytes: &[u8]) -> Result<Message, Status> {
    Message::parse_from_bytes(bytes).map_err(|e| Error::decode("raft message")(e).into())
}

fn member_list(s: &crate::Status) -> Vec<pb::Member> {
    let mut out: Vec<pb::Member> = Vec::new();
    for (ids, voter) in [(&s.voters, true), (&s.learners, false)] {
        for id in ids {
            out.push(pb::Member {
                id: *id,
                address: s.addresses.get(id).cloned().unwrap_or_default(),
                voter,
            });
        }
    }
    out
}

type Resp<T> = std::result::Result<Response<T>, Status>;

#[tonic::async_trait]
impl RaftPeer for RaftPeerService {
    #[tracing::instrument(name = "rpc", skip_all, fields(rpc = "send", id = self.node.id()))]
    async fn send(&self, req: Request<Streaming<pb::RaftBatch>>) -> Resp<pb::RaftSendAck> {
        let mut stream = req.into_inner();
        while let Some(batch) = stream.next().await {
            for bytes in batch?.messages {
                self.node.step(decode(&bytes)?);
            }
        }
        Ok(Response::new(pb::RaftSendAck {}))
    }

    #[tracing::instrument(name = "rpc", skip_all, fields(rpc = "send_snapshot", id = self.node.id()))]
    async fn send_snapshot(
        &self,
        req: Request<Streaming<pb::SnapshotChunk>>,
    ) -> Resp<pb::RaftSendAck> {
        let mut stream = req.into_inner();
        let mut header = None;
        let mut data = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if header.is_none() {
                header = Some(decode(&chunk.message)?);
            }
            data.extend_from_slice(&chunk.data);
            if chunk.last {
                let mut msg = header
                    .take()
                    .ok_or_else(|| Status::invalid_argument("snapshot without header"))?;
                let _span =
                    tracing::info_span!("recv_snapshot", from = msg.from, bytes = data.len())
                        .entered();
                msg.mut_snapshot()
                    .set_data(std::mem::take(&mut data).into());
                self.node.step(msg);
                return Ok(Response::new(pb::RaftSendAck {}));
            }
        }
        Err(Status::invalid_argument(
            "snapshot stream ended before its last chunk",
        ))
    }

    #[tracing::instrument(name = "rpc", skip_all, fields(rpc = "propose", id = self.node.id()))]
    async fn propose(&self, req: Request<pb::ProposeRequest>) -> Resp<pb::ProposeResponse> {
        let req = req.into_inner();
        let applied = if req.forwarded {
            self.node.propose_local(req.command).await?
        } else {
            self.node.propose(req.command).await?
        };
        Ok(Response::new(pb::ProposeResponse {
            index: applied.index,
            reply: applied.reply,
        }))
    }

    #[tracing::instrument(name = "rpc", skip_all, fields(rpc = "read", id = self.node.id()))]
    async fn read(&self, req: Request<pb::ReadRequest>) -> Resp<pb::ReadResponse> {
        let req = req.into_inner();
        let consistency = if req.stale {
            ReadConsistency::Stale
        } else {
            ReadConsistency::Linearizable
        };
        let result = self.node.read(req.query, consistency).await?;
        Ok(Response::new(pb::ReadResponse { result }))
    }

    #[tracing::instrument(name = "rpc", skip_all, fields(rpc = "read_index", id = self.node.id()))]
    async fn read_index(&self, _req: Request<pb::ReadIndexRequest>) -> Resp<pb::ReadIndexResponse> {
        let s = self.node.status();
        if !s.is_leader() {
            return Err(Error::NotLeader {
                id: s.id,
                leader: (s.leader_id != 0).then_some(s.leader_id),
            }
            .into());
        }
        // Confirm leadership with a quorum (an empty linearizable read), then answer.
        self.node
            .read(Vec::new(), ReadConsistency::Linearizable)
            .await?;
        Ok(Response::new(pb::ReadIndexResponse {
            index: self.node.status().commit_index,
        }))
    }

    #[tracing::instrument(name = "rpc", skip_all, fields(rpc = "change_membership", id = self.node.id()))]
    async fn change_membership(
        &self,
        req: Request<pb::ChangeMembershipRequest>,
    ) -> Resp<pb::ChangeMembershipResponse> {
        use pb::change_membership_request::Change;
        let req = req.into_inner();
        let change = match req.change() {
            Change::AddVoter => MemberChange::AddVoter {
                id: req.id,
                address: req.address,
            },
            Change::AddLearner => MemberChange::AddLearner {
                id: req.id,
                address: req.address,
            },
            Change::Remove => MemberChange::Remove { id: req.id },
            Change::Unspecified => return Err(Status::invalid_argument("change is unspecified")),
        };
        let status = self.node.change_membership(change).await?;
        Ok(Response::new(pb::ChangeMembershipResponse {
            members: member_list(&status),
        }))
    }

    async fn status(&self, _req: Request<pb::StatusRequest>) -> Resp<pb::StatusResponse> {
        let s = self.node.status();
        Ok(Response::new(pb::StatusResponse {
            id: s.id,
            leader_id: s.leader_id,
            term: s.term,
            commit_index: s.commit_index,
            applied_index: s.applied_index,
            first_index: s.first_index,
            last_index: s.last_index,
            members: member_list(&s),
            role: s.role,
        }))
    }
}

/// Serves `node` on `listener` until `shutdown` completes.
///
/// # Errors
///
/// [`Error::Config`] for a TLS setup tonic rejects; transport errors as [`Error::Rpc`].
pub async fn serve(
    node: Node,
    listener: tokio::net::TcpListener,
    tls: Option<TlsConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<()> {
    let mut builder = tonic::transport::Server::builder().tcp_nodelay(true);
    if let Some(tls) = &tls {
        builder = builder
            .tls_config(tls.server())
            .map_err(|e| Error::Config {
                reason: format!("server tls: {e}"),
            })?;
    }
    // `Server::tcp_nodelay` only applies to listeners tonic binds itself: without it, Nagle and
    // delayed ACKs add ~40 ms to small responses.
    let incoming: Pin<Box<dyn Stream<Item = std::io::Result<tokio::net::TcpStream>> + Send>> =
        Box::pin(
            tokio_stream::wrappers::TcpListenerStream::new(listener).map(|s| {
                let s = s?;
                s.set_nodelay(true)?;
                Ok(s)
            }),
        );
    let id = node.id();
    builder
        .add_service(RaftPeerService::new(node).into_server())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| Error::Rpc {
            rpc: "serve",
            peer: id,
            source: Status::internal(e.to_string()),
        })
}
