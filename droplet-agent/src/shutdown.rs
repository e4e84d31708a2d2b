//! Graceful shutdown: one signal fans out to every task.
//!
//! Exiting must not disturb forwarding: the agent stops serving CNI and closes its
//! programming stream, but it never detaches XDP programs or unpins maps. With pinned links
//! and maps (xdp-on-veth rule 8) the programs keep forwarding with the last applied tables
//! while the agent is down, and a restarted agent adopts them and full-syncs by diff.

use tokio::sync::watch;

/// A shutdown trigger shared by the agent's tasks.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// Not yet triggered.
    pub fn new() -> Self {
        Self {
            tx: watch::channel(false).0,
        }
    }

    /// Triggers shutdown (idempotent).
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether shutdown was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once shutdown is triggered (at once if it already was).
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            // An error means the sender is gone, which also means shutdown.
            let _ = rx.wait_for(|down| *down).await;
        }
    }
}

/// Completes on SIGTERM or SIGINT.
///
/// # Errors
/// If the signal handlers cannot be installed.
pub async fn signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_waiter_wakes_including_late_ones() {
        let s = Shutdown::new();
        let early = tokio::spawn(s.wait());
        assert!(!s.is_triggered());
        s.trigger();
        s.trigger();
        early.await.unwrap();
        s.wait().await;
        assert!(s.is_triggered());
    }
}
