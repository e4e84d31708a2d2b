//! Control API and programming streams over real sockets, against three real store
//! replicas (gRPC transport, sled in temp dirs) with simulated agents.

mod bad_input;
mod failover;
mod harness;
mod health;
mod observe;
mod provisioning;
mod tls;
