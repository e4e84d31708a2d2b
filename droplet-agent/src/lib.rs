//! alkaid-agent: the per-droplet daemon.
//!
//! | Module | Role |
//! |---|---|
//! | [`grpc`] | programming-stream client: register, Program stream, acks, heartbeats, reconnect |
//! | [`backoff`] | seeded exponential backoff with jitter |
//! | [`cni`] | the `alkaid-cni` plugin logic and the agent's CNI socket server |
//! | [`endpoint`] | CNI ADD/DEL/CHECK on the agent side: allocate, veth, attach, records |
//! | [`alloc`] | endpoint allocation: the operator's control API, or a fake |
//! | [`dataplane`] | the `Dataplane` trait (rows, endpoint attach, counters), the in-memory fake, and (feature `xdp`) the aya implementation |
//! | [`pb`] | `alkaid.v1` <-> agent type conversions naming the bad field |
//! | [`netlink`] | veth pairs, netns entry, addresses, routes (rtnetlink) |
//! | [`sync`] | pure: desired vs actual rows -> ordered map operations; delta version checks |
//! | [`netns`] | named network namespaces (create, delete, drop guard) |
//! | [`metrics`] | Prometheus text on `GET /metrics`: stream status and data-plane counters |
//! | [`tls`] | mTLS files -> tonic client TLS config; the one operator-endpoint builder |
//! | [`shutdown`] | one shutdown signal for every task; exiting never detaches XDP |
//! | `sys` | the only `unsafe`: `setns(2)`, `unshare(2)`, `mount(2)` and the ethtool ioctl |
//! | [`error`] | [`Error`] and [`Result`] |
//!
//! Data flow for a new pod: runtime -> `alkaid-cni` -> [`cni::protocol`] over a unix socket
//! -> [`cni::server`] -> [`endpoint::Endpoints`] -> operator `AllocateEndpoint` ->
//! [`netlink::create_veth`] -> data plane attach -> wait for the rows' table version -> reply
//! -> CNI result. Table rows arrive separately: operator -> [`grpc`] -> [`sync`] ->
//! [`dataplane::Dataplane::apply`].

pub mod alloc;
pub mod backoff;
pub mod cni;
pub mod dataplane;
pub mod endpoint;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod netlink;
pub mod netns;
pub mod pb;
pub mod shutdown;
pub mod sync;
mod sys;
pub mod tls;

pub use error::{Error, Result};
