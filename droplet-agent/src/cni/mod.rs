//! CNI: the `alkaid-cni` plugin's logic and the agent's side of its socket.
//!
//! | Module | Role |
//! |---|---|
//! | [`spec`] | CNI 1.0 config, result, error and version shapes (pure) |
//! | [`plugin`] | env + stdin -> agent request -> stdout + exit code (pure but for one closure) |
//! | [`protocol`] | the JSON-lines request/reply exchanged over the agent's unix socket |
//! | [`dump`] | `{"command":"DUMP"}`: the data plane's rows, endpoints and counters |
//! | [`server`] | the agent's listener: requests -> [`crate::endpoint`] -> replies |

pub mod dump;
pub mod plugin;
pub mod protocol;
pub mod server;
pub mod spec;
