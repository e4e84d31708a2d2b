//! One programming stream: the task serving one droplet's agent on the leader.
//!
//! It tracks `sent`, the version the agent holds once it applies what was sent, and pulls
//! from the [`Feed`](crate::feed::Feed) at its own pace: everything committed since `sent`
//! goes out as one coalesced delta, or as a chunked full sync when the feed no longer has
//! it. Nothing is queued per agent beyond a small channel, so a slow agent only delays
//! itself, and no lock is held across a send.

use std::sync::Arc;

use alkaid_model::{DropletName, Table};
use alkaid_proto::v1 as pb;
use tokio::sync::{Notify, mpsc};
use tonic::{Status, Streaming};

use crate::ctx::Ctx;
use crate::error::Error;
use crate::feed::{Since, coalesce};
use crate::pb::{Key, Row};

/// Rows per `FullSync` chunk.
pub const CHUNK_ROWS: usize = 1024;

type Out = mpsc::Sender<Result<pb::ProgramMessage, Status>>;

fn delta_msg(
    base: u64,
    version: u64,
    up: Vec<(alkaid_model::RowKey, alkaid_model::RowValue)>,
    del: Vec<alkaid_model::RowKey>,
) -> pb::ProgramMessage {
    pb::ProgramMessage {
        msg: Some(pb::program_message::Msg::Delta(pb::Delta {
            base_version: base,
            version,
            upserts: up
                .into_iter()
                .map(|(k, v)| pb::Row::from(&Row(k, v)))
                .collect(),
            deletes: del.into_iter().map(|k| pb::RowKey::from(&Key(k))).collect(),
        })),
    }
}

/// The chunks of a full sync of `table` at `version`.
pub fn full_sync_msgs(table: &Table, version: u64, epoch: u64) -> Vec<pb::ProgramMessage> {
    let rows: Vec<pb::Row> = table
        .rows()
        .iter()
        .map(|(k, v)| pb::Row::from(&Row(k.clone(), v.clone())))
        .collect();
    let mut chunks: Vec<Vec<pb::Row>> = Vec::new();
    let mut it = rows.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(CHUNK_ROWS).collect());
    }
    if chunks.is_empty() {
        chunks.push(Vec::new());
    }
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, rows)| pb::ProgramMessage {
            msg: Some(pb::program_message::Msg::FullSync(pb::FullSync {
                version,
                epoch,
                rows,
                last: i + 1 == n,
            })),
        })
        .collect()
}

/// Why a stream ended.
enum End {
    /// The agent went away or a newer stream replaced this one.
    Gone,
    /// Tell the agent (leader lost, droplet removed).
    Tell(Status),
}

/// Serves `droplet` until the agent leaves, a newer stream replaces this one, or this
/// replica stops leading. `hello_version` is 0 (or an epoch mismatch) to force a full sync.
pub async fn run(
    ctx: Arc<Ctx>,
    droplet: DropletName,
    mut sent: Option<u64>,
    mut inbound: Streaming<pb::AgentMessage>,
    out: Out,
    replaced: Arc<Notify>,
) {
    let mut latest = ctx.shared.read(|s| {
        let v = s.version(droplet.as_str());
        ctx.shared.feed.subscribe(&droplet, v)
    });
    let mut status = ctx.node.watch_status();
    let end = loop {
        // Send what the agent is missing, if anything.
        match catch_up(&ctx, &droplet, &mut sent, &out).await {
            Ok(()) => {}
            Err(end) => break end,
        }
        tokio::select! {
            r = latest.changed() => if r.is_err() { break End::Gone },
            msg = inbound.message() => match msg {
                Ok(Some(m)) => on_agent(&ctx, &droplet, m),
                Ok(None) | Err(_) => break End::Gone,
            },
            r = status.changed() => {
                if r.is_err() || !status.borrow().is_leader() {
                    break End::Tell(Error::NotLeader { leader: ctx.leader_address() }.into());
                }
            }
            () = replaced.notified() => break End::Gone,
        }
    };
    if let End::Tell(s) = end {
        let _ = out.send(Err(s)).await;
    }
    ctx.metrics.stream_closed(&droplet);
    tracing::debug!(%droplet, "programming stream closed");
}

fn on_agent(ctx: &Ctx, droplet: &DropletName, m: pb::AgentMessage) {
    ctx.health.beat(droplet);
    if let Some(pb::agent_message::Msg::Ack(a)) = m.msg {
        if !a.errors.is_empty() {
            tracing::warn!(%droplet, version = a.version, errors = ?a.errors, "agent could not apply some rows");
        }
        ctx.acks.record(droplet, a.version);
        let current = ctx.shared.read(|s| s.version(droplet.as_str()));
        ctx.metrics
            .stream_lag(droplet, current.saturating_sub(a.version));
    }
}

/// Sends deltas (or a full sync) until `sent` reaches the current version.
async fn catch_up(
    ctx: &Ctx,
    droplet: &DropletName,
    sent: &mut Option<u64>,
    out: &Out,
) -> Result<(), End> {
    loop {
        let since = match *sent {
            Some(v) => ctx.shared.feed.since(droplet, v),
            None => Since::Gone,
        };
        match since {
            Since::UpToDate => return Ok(()),
            Since::Deltas(ds) if ds.first().map(|d| d.version) == sent.map(|v| v + 1) => {
                let base = sent.unwrap_or(0);
                let (version, up, del) = coalesce(&ds);
                ctx.metrics.delta_sent(ds.len());
                out.send(Ok(delta_msg(base, version, up, del)))
                    .await
                    .map_err(|_| End::Gone)?;
                *sent = Some(version);
            }
            Since::Deltas(_) | Since::Gone => {
                let snap = ctx.shared.read(|s| {
                    s.get_droplet(droplet.as_str())?;
                    Some((
                        s.version(droplet.as_str()),
                        s.table(droplet.as_str()).cloned().unwrap_or_default(),
                    ))
                });
                let Some((version, table)) = snap else {
                    return Err(End::Tell(Status::not_found(format!(
                        "droplet {droplet:?} is no longer registered; register it again"
                    ))));
                };
                ctx.metrics.full_sync();
                for m in full_sync_msgs(&table, version, ctx.epoch) {
                    out.send(Ok(m)).await.map_err(|_| End::Gone)?;
                }
                *sent = Some(version);
            }
        }
    }
}
