//! The agent's CNI socket: one JSON-lines request/reply per connection (see
//! [`super::protocol`]), each served on its own task.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::{debug, info, warn};

use super::protocol::{AgentReply, AgentRequest, MAX_LINE};
use super::spec::{CniError, ErrorCode};
use crate::alloc::Allocator;
use crate::dataplane::Dataplane;
use crate::endpoint::Endpoints;
use crate::error::{Error, Result};

/// Binds the CNI socket at `path`, replacing a stale socket file left by a previous agent.
///
/// # Errors
/// [`Error::Io`] if the directory or socket cannot be created.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create socket dir", dir, e))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => debug!(path = %path.display(), "removed stale socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("remove stale socket", path, e)),
    }
    UnixListener::bind(path).map_err(|e| Error::io("bind", path, e))
}

/// Serves `listener` until `shutdown` completes. In-flight requests finish on their own
/// tasks; the plugin retries on a refused connection (code 11).
pub async fn serve<A: Allocator, D: Dataplane>(
    listener: UnixListener,
    endpoints: Arc<Endpoints<A, D>>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    info!("cni server listening");
    loop {
        tokio::select! {
            () = &mut shutdown => {
                info!("cni server stopping");
                return;
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let eps = Arc::clone(&endpoints);
                    tokio::spawn(async move {
                        if let Err(e) = serve_one(stream, &eps).await {
                            warn!(error = %e, "cni connection failed");
                        }
                    });
                }
                Err(e) => warn!(error = %e, "cni accept failed"),
            }
        }
    }
}

async fn serve_one<A: Allocator, D: Dataplane>(
    stream: UnixStream,
    endpoints: &Endpoints<A, D>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(MAX_LINE))
        .read_line(&mut line)
        .await?;
    if super::dump::is_dump(&line) {
        let reply = match endpoints.dump() {
            Ok(d) => super::dump::DumpReply::Dump(d),
            Err(e) => super::dump::DumpReply::Error(e.to_string()),
        };
        let mut out = serde_json::to_vec(&reply).map_err(std::io::Error::other)?;
        out.push(b'\n');
        write.write_all(&out).await?;
        return write.shutdown().await;
    }
    let reply = match serde_json::from_str::<AgentRequest>(line.trim_end()) {
        Ok(req) => endpoints.handle(req).await,
        Err(e) => AgentReply::Error(CniError::new(
            ErrorCode::DecodeFailure,
            "the agent cannot decode the plugin's request",
            e.to_string(),
        )),
    };
    let mut out = serde_json::to_vec(&reply).map_err(std::io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}
