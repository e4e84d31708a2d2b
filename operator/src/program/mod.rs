//! The `alkaid.v1.Programming` server: one stream per droplet, on the leader only.
//!
//! | file | role |
//! |---|---|
//! | `mod.rs` | the service: leader check, Hello, one task per stream, replacing older streams |
//! | [`stream`] | the per-stream task: deltas or full sync from the feed, acks in |
//! | [`acks`] | batching acknowledgements into one Raft entry per interval |
//!
//! A Hello carrying this cluster's epoch and a version the leader can continue from
//! (`0 < version <= current`) resumes with exactly the missing deltas (coalesced) when the
//! feed still holds them, else a chunked full sync. The Hello's version also counts as an
//! acknowledgement, so acks lost in a leader change are recovered when agents reconnect.

pub mod acks;
pub mod stream;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alkaid_model::DropletName;
use alkaid_proto::v1 as pb;
use alkaid_proto::v1::programming_server::{Programming, ProgrammingServer};
use tokio::sync::{Notify, mpsc};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::ctx::Ctx;
use crate::error::Error;

/// How long an agent has to send its Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages buffered per stream (a slow agent holds at most this many).
const STREAM_BUFFER: usize = 8;

/// The Programming service of one replica.
#[derive(Clone)]
pub struct ProgrammingService {
    ctx: Arc<Ctx>,
    /// The live stream of each droplet; a new stream replaces (ends) the old one.
    live: Arc<Mutex<HashMap<DropletName, Arc<Notify>>>>,
}

impl ProgrammingService {
    /// A service over `ctx`.
    pub fn new(ctx: Arc<Ctx>) -> Self {
        Self {
            ctx,
            live: Arc::default(),
        }
    }

    /// The tonic server.
    pub fn into_server(self) -> ProgrammingServer<Self> {
        ProgrammingServer::new(self)
    }
}

type ProgramStream = Pin<Box<dyn Stream<Item = Result<pb::ProgramMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Programming for ProgrammingService {
    type ProgramStream = ProgramStream;

    #[tracing::instrument(skip_all)]
    async fn program(
        &self,
        req: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<ProgramStream>, Status> {
        if !self.ctx.is_leader() {
            return Err(Error::NotLeader {
                leader: self.ctx.leader_address(),
            }
            .into());
        }
        let mut inbound = req.into_inner();
        let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
            .await
            .map_err(|_| {
                Status::deadline_exceeded("no Hello within 10s; open the stream with a Hello")
            })??;
        let Some(pb::AgentMessage {
            msg: Some(pb::agent_message::Msg::Hello(hello)),
        }) = first
        else {
            return Err(Error::field("msg", "the first message must be a Hello").into());
        };
        let droplet = crate::pb::droplet_name("hello.droplet", &hello.droplet)?;
        let current = self.ctx.shared.read(|s| {
            s.get_droplet(droplet.as_str())
                .map(|_| s.version(droplet.as_str()))
        });
        let Some(current) = current else {
            return Err(Status::not_found(format!(
                "droplet {droplet:?} is not registered; call RegisterDroplet first"
            )));
        };
        // Resume only inside this cluster's history and not ahead of it.
        let resume =
            (hello.epoch == self.ctx.epoch && hello.version > 0 && hello.version <= current)
                .then_some(hello.version);
        if let Some(v) = resume {
            self.ctx.acks.record(&droplet, v);
        }
        self.ctx.health.beat(&droplet);
        tracing::info!(%droplet, hello = hello.version, current, resume = resume.is_some(), "programming stream opened");
        let replaced = Arc::new(Notify::new());
        if let Some(old) = self
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(droplet.clone(), replaced.clone())
        {
            old.notify_one();
        }
        self.ctx.metrics.stream_opened(&droplet);
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let ctx = self.ctx.clone();
        let live = self.live.clone();
        tokio::spawn(async move {
            stream::run(ctx, droplet.clone(), resume, inbound, tx, replaced.clone()).await;
            let mut live = live.lock().unwrap_or_else(|e| e.into_inner());
            if live
                .get(&droplet)
                .is_some_and(|n| Arc::ptr_eq(n, &replaced))
            {
                live.remove(&droplet);
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}
