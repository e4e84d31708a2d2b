//! `alkaid-cni`: the CNI plugin a container runtime executes. It validates its input, asks the
//! local alkaid-agent over a unix socket, and prints a spec-shaped result or error.

use std::io::{Read, Write};
use std::time::Duration;

use alkaid_agent::cni::{plugin, protocol};

/// Longer than any ADD should take (allocation is one Raft commit), shorter than kubelet's
/// own CNI timeout, so the runtime sees our error rather than a kill.
const AGENT_TIMEOUT: Duration = Duration::from_secs(90);

fn main() {
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin).map(|_| stdin);
    let outcome = plugin::run(
        |k| std::env::var(k).ok(),
        read,
        |socket, req| protocol::call(socket, req, AGENT_TIMEOUT),
    );
    let mut out = std::io::stdout().lock();
    // Nothing sensible remains to be done if stdout is gone.
    let _ = out.write_all(outcome.stdout.as_bytes());
    let _ = out.flush();
    std::process::exit(outcome.exit_code);
}
